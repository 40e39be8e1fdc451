//! A grant keeps the terms it was decided under: the networks its rule
//! confines it to, checked on mint and on every git request; its refs and
//! deletes through later policy changes; and a superseded grant's
//! requester gets the superseding grant's credential.

use crate::common::gateway::{ZERO, git_dir, pkt_bytes, rev};
use crate::common::{TestBroker, release_only_policy};
use serde_json::json;

#[tokio::test]
async fn a_rule_may_confine_its_grants_to_networks() {
    let restricted = |extra_server: &str| {
        crate::common::POLICY
            .replace("[server]\n", &format!("[server]\n{extra_server}"))
            .replace(
                "[[repo]]\nname = \"demo\"\nurl = \"http://127.0.0.1:9/git/demo.git\"\n",
                "[gateway]\nrepos_dir = \"{data_dir}/repos\"\n",
            )
            .replace("name = \"demo-read\"\n", "name = \"demo-read\"\nfrom = [\"10.0.0.0/8\"]\n")
    };
    // Directly from 127.0.0.1: outside 10.0.0.0/8.
    let b = TestBroker::start_with_repos(&restricted(""), &[]).await;
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let r = b.post("alice", &format!("/v1/grants/{grant}/credentials"), json!({})).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    assert!(
        r.message().contains("can be used only from 10.0.0.0/8 (rule `demo-read`); this request came from 127.0.0.1"),
        "{}",
        r.message()
    );
    // A forwarded-for header from a peer that is not a trusted proxy changes nothing.
    let raw = b.mint_forwarded_for("alice", grant, "10.1.2.3").await;
    assert_eq!(raw.status(), 403);
    assert_eq!(b.audit().await.into_iter().filter(|e| e["action"] == "credential_refused").count(), 2);

    // Behind a trusted proxy, the address it saw counts, on minting and on every git request.
    let b = TestBroker::start_with_repos(&restricted("trusted_proxies = [\"127.0.0.1\"]\n"), &[]).await;
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let http = reqwest::Client::new();
    let minted = b.mint_forwarded_for("alice", grant, "10.1.2.3").await;
    assert_eq!(minted.status(), 201);
    let password = minted.json::<serde_json::Value>().await.unwrap()["password"].as_str().unwrap().to_string();
    let refs = format!("{}/git/demo.git/info/refs?service=git-upload-pack", b.url);
    let inside = http.get(&refs).basic_auth("alice", Some(&password)).header("X-Forwarded-For", "10.1.2.3").send().await.unwrap();
    assert_eq!(inside.status(), 200);
    let outside = http.get(&refs).basic_auth("alice", Some(&password)).header("X-Forwarded-For", "192.0.2.9").send().await.unwrap();
    assert_eq!(outside.status(), 403);
    assert!(outside.text().await.unwrap().contains("this request came from 192.0.2.9"));
    let refused: Vec<_> = b.audit().await.into_iter().filter(|e| e["action"] == "git_refused").collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["actor"], "alice");
    assert!(refused[0]["detail"].as_str().unwrap().contains("from 192.0.2.9: outside the rule's networks"), "{}", refused[0]);

    // Regression (hardening round two, finding 2): a client's own header line
    // ahead of the one the proxy appended was read as the address.
    let appended = http
        .get(&refs)
        .basic_auth("alice", Some(&password))
        .header("X-Forwarded-For", "10.1.2.3")
        .header("X-Forwarded-For", "192.0.2.9")
        .send()
        .await
        .unwrap();
    assert_eq!(appended.status(), 403);
    assert!(appended.text().await.unwrap().contains("this request came from 192.0.2.9"));
    // A hop that is no address is refused, never taken for the proxy's own.
    let unknown = http.get(&refs).basic_auth("alice", Some(&password)).header("X-Forwarded-For", "unknown").send().await.unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.unwrap().contains("forwarded for `unknown`, which is not an IP address"));
}

/// Regression (finding 7): a grant found its rule by name, so a policy change
/// (a rule's networks dropped, deletes allowed, a rule renamed into its
/// place) widened grants already live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_grant_keeps_the_terms_it_was_decided_under() {
    let policy = release_only_policy()
        .replace("allow_deletes = true\n", "")
        .replace("[server]\n", "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n")
        .replace("name = \"demo-write\"\n", "name = \"demo-write\"\nfrom = [\"10.0.0.0/8\"]\n");
    let mut b = TestBroker::start_with(&policy).await;
    let id = b.request("alice", "demo", "write", "1h", Some("work")).await["id"].as_i64().unwrap();
    let grant = b.approve("bob", id).await.body["grant"]["id"].as_i64().unwrap();
    let http = reqwest::Client::new();
    let minted = b.mint_forwarded_for("alice", grant, "10.1.2.3").await;
    assert_eq!(minted.status(), 201);
    let password = minted.json::<serde_json::Value>().await.unwrap()["password"].as_str().unwrap().to_string();
    let bare = b.dir.path().join("repos/demo.git");
    git_dir(&bare, &["branch", "release/old", "main"]);
    let main = rev(&bare, "main").unwrap();

    // The rule now allows any network and deletes: the live grant keeps what it was given.
    b.policy = b
        .policy
        .replace("from = [\"10.0.0.0/8\"]\n", "")
        .replace("refs = [\"release/*\"]\n", "refs = [\"release/*\"]\nallow_deletes = true\n");
    b.restart().await;
    let refs = format!("{}/git/demo.git/info/refs?service=git-receive-pack", b.url);
    let outside = http.get(&refs).basic_auth("alice", Some(&password)).header("X-Forwarded-For", "192.0.2.9").send().await.unwrap();
    assert_eq!(outside.status(), 403, "the grant was widened to every network");
    let inside = http.get(&refs).basic_auth("alice", Some(&password)).header("X-Forwarded-For", "10.1.2.3").send().await.unwrap();
    assert_eq!(inside.status(), 200);
    let mut delete = pkt_bytes(&format!("{main} {ZERO} refs/heads/release/old\0report-status"));
    delete.extend_from_slice(b"0000");
    let pushed = http
        .post(format!("{}/git/demo.git/git-receive-pack", b.url))
        .basic_auth("alice", Some(&password))
        .header("X-Forwarded-For", "10.1.2.3")
        .header("Content-Type", "application/x-git-receive-pack-request")
        .body(delete)
        .send()
        .await
        .unwrap();
    let report = pushed.text().await.unwrap();
    assert!(report.contains("ng refs/heads/release/old"), "the grant was widened to deletes: {report}");
    assert_eq!(rev(&bare, "release/old").as_deref(), Some(main.as_str()));
}

/// Regression (finding 14): when a later grant superseded an earlier one
/// before the earlier one's credential was minted, its requester got exit 4,
/// "granted, but the git host did not mint its credential: grant N has ended",
/// with both "ask again" and "grant N stands". Git already answers to the
/// superseding grant; so does minting, and the requester gets exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_grants_requester_gets_the_superseding_credential() {
    let b = TestBroker::start_gateway("1h").await;
    let first = b.request("alice", "demo", "write", "1h", Some("one")).await["id"].as_i64().unwrap();
    let second = b.request("alice", "demo", "write", "2h", Some("two")).await["id"].as_i64().unwrap();
    let superseded = b.approve("bob", first).await.body["grant"]["id"].as_i64().unwrap();
    let superseding = b.approve("bob", second).await.body["grant"]["id"].as_i64().unwrap();
    assert_ne!(superseded, superseding);
    let minted = b.post("alice", &format!("/v1/grants/{superseded}/credentials"), json!({})).await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    assert_eq!(minted.body["grant"]["id"], superseding, "{}", minted.body);

    // The requester still waiting on the first request: granted, credential kept, exit 0.
    let alice = crate::common::cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    let waited = alice.run(&["wait", &first.to_string()]);
    waited.success();
    assert!(!waited.stderr.contains("stands") && !waited.stderr.contains("did not mint"), "{}", waited.stderr);
    let index = alice.credential_index();
    assert!(index.to_string().contains(&format!("\"grant_id\":{superseding}")), "the cache holds the superseding grant: {index}");

    // A grant a person revoked is still ended: no credential, and no claim that it stands.
    let third = b.request("dave", "demo", "write", "1h", Some("three")).await["id"].as_i64().unwrap();
    let revoked = b.approve("bob", third).await.body["grant"]["id"].as_i64().unwrap();
    assert_eq!(b.post("admin", &format!("/v1/grants/{revoked}/revoke"), json!({})).await.status, 200);
    // Even with a live grant now that would have superseded it: only the broker's supersede redirects.
    let fourth = b.request("dave", "demo", "write", "2h", Some("four")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", fourth).await.status, 200);
    let refused = b.post("dave", &format!("/v1/grants/{revoked}/credentials"), json!({})).await;
    assert_eq!((refused.status, refused.code()), (409, "grant_ended"), "{}", refused.body);
    let dave = crate::common::cli_env(&b);
    dave.login(&b.url, b.token("dave")).success();
    let waited = dave.run(&["wait", &third.to_string()]);
    waited.code(4).stderr_has("ended before its credential was minted").stderr_has("ask again");
    assert!(!waited.stderr.contains("stands"), "{}", waited.stderr);
}
