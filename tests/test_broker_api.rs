//! The broker's request lifecycle over HTTP: policy, approvals, decisions,
//! grants, revocation, long-poll and the audit log.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::TestBroker;

fn id(v: &serde_json::Value) -> i64 {
    v["id"].as_i64().unwrap()
}

#[tokio::test]
async fn whole_lifecycle_request_approve_grant_revoke() {
    let b = TestBroker::start().await;
    let req = b.request("dave", "demo", "write", "2h", Some("hotfix INC-42")).await;
    assert_eq!(req["status"], "pending");
    assert_eq!(req["requester"], "dave");
    assert_eq!(req["duration"], "2h");
    assert_eq!(req["approvers"], json!(["group:reviewers", "alice"]));
    assert!(req["grant"].is_null());

    let approved = b.post("bob", &format!("/v1/requests/{}/approve", id(&req)), json!({"comment": "ok, go"})).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    let grant = &approved.body["grant"];
    assert_eq!(grant["user"], "dave");
    assert_eq!(grant["status"], "active");
    // The grant's clock starts at approval.
    let granted_at: chrono::DateTime<chrono::Utc> = grant["granted_at"].as_str().unwrap().parse().unwrap();
    let expires_at: chrono::DateTime<chrono::Utc> = grant["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires_at - granted_at).num_seconds(), 7200);
    let decided_at: chrono::DateTime<chrono::Utc> = approved.body["decided_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(granted_at, decided_at);

    let mine = b.get("dave", "/v1/grants?live=true").await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    let gid = grant["id"].as_i64().unwrap();
    let revoked = b.post("dave", &format!("/v1/grants/{gid}/revoke"), json!({"reason": "done early"})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.body["status"], "revoked");
    assert_eq!(revoked.body["revoked_by"], "dave");
    assert_eq!(b.get("dave", "/v1/grants?live=true").await.body, json!([]));
    // Revoking again says it already ended.
    let again = b.post("dave", &format!("/v1/grants/{gid}/revoke"), json!({})).await;
    assert_eq!((again.status, again.code()), (409, "grant_ended"));

    assert_eq!(b.actions_for(id(&req)).await, ["requested", "approved", "granted", "revoked"]);
}

#[tokio::test]
async fn auto_approve_grants_at_once() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "read", "1h", None).await;
    assert_eq!(req["status"], "approved");
    assert_eq!(req["decided_by"], "policy");
    assert_eq!(req["grant"]["level"], "read");
    assert_eq!(req["grant"]["clone_url"], "http://127.0.0.1:9/git/demo.git");
    assert_eq!(b.actions_for(id(&req)).await, ["requested", "granted"]);
}

#[tokio::test]
async fn every_spelling_of_a_repo_is_one_repo() {
    let b = TestBroker::start().await;
    for spelling in ["acme/api", "github.com/acme/api", "https://github.com/acme/api.git", "https://GitHub.com/acme/api/"] {
        let req = b.request("mallory", spelling, "read", "30m", None).await;
        assert_eq!(req["repo"], "acme/api", "{spelling}");
    }
}

#[tokio::test]
async fn n_of_m_needs_distinct_approvers_and_counts_a_repeat_once() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "admin", "1h", None).await;
    let rid = id(&req);
    let first = b.approve("bob", rid).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["status"], "pending");
    assert_eq!(first.body["approvals"].as_array().unwrap().len(), 1);
    // bob again: counted once, still pending.
    let repeat = b.approve("bob", rid).await;
    assert_eq!(repeat.status, 200);
    assert_eq!(repeat.body["status"], "pending");
    assert_eq!(repeat.body["approvals"].as_array().unwrap().len(), 1);
    let second = b.approve("carol", rid).await;
    assert_eq!(second.body["status"], "approved", "{}", second.body);
    let by: Vec<&str> = second.body["approvals"].as_array().unwrap().iter().map(|a| a["by"].as_str().unwrap()).collect();
    assert_eq!(by, ["bob", "carol"]);
    assert_eq!(b.actions_for(rid).await, ["requested", "approved", "approved", "granted"]);
}

/// A rule that asks each of two principals: another reviewer does not stand
/// in for the missing one, and every answer says what is still missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_from_several_groups_need_each_and_say_what_is_missing() {
    let policy = format!(
        "{}\n[[rule]]\nname = \"secret\"\nrepos = [\"acme/secret\"]\nlevels = [\"write\"]\nrequesters = [\"alice\"]\napprovals = [{{ from = \"group:reviewers\" }}, {{ from = \"mallory\" }}]\nmax_duration = \"1h\"\n",
        crate::common::POLICY
    );
    let b = TestBroker::start_with(&policy).await;
    let req = b.request("alice", "acme/secret", "write", "1h", Some("rotate keys")).await;
    let rid = id(&req);
    assert_eq!(req["approvers"], json!(["group:reviewers", "mallory"]));
    assert_eq!(req["approvals_required"], 2);
    let asked = b.get("alice", &format!("/v1/requests/{rid}")).await.body;
    assert_eq!(asked["needs"], "needs 1 more from group:reviewers and 1 more from mallory");
    let bob = b.approve("bob", rid).await.body;
    assert_eq!((bob["status"].as_str(), bob["needs"].as_str()), (Some("pending"), Some("needs 1 more from mallory")), "{bob}");
    let carol = b.approve("carol", rid).await.body;
    assert_eq!((carol["status"].as_str(), carol["needs"].as_str()), (Some("pending"), Some("needs 1 more from mallory")), "{carol}");
    let r = b.approve("dave", rid).await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "dave is no approver of it, so cannot see it");
    let done = b.approve("mallory", rid).await.body;
    assert_eq!(done["status"], "approved", "{done}");
    assert!(done.get("needs").is_none(), "{done}");
    assert_eq!(b.actions_for(rid).await, ["requested", "approved", "approved", "approved", "granted"]);
    let details: Vec<String> = b
        .audit()
        .await
        .iter()
        .filter(|e| e["action"] == "approved" && e["request_id"] == rid)
        .map(|e| e["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(details[..2], ["approval 1 of 2; needs 1 more from mallory", "approval 1 of 2; needs 1 more from mallory"]);
}

#[tokio::test]
async fn nobody_approves_their_own_request() {
    let b = TestBroker::start().await;
    // alice is a named approver of demo-write, and still cannot approve her own request.
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    let r = b.approve("alice", id(&req)).await;
    assert_eq!((r.status, r.code()), (403, "self_approval"));
    let r = b.deny("alice", id(&req), "changed my mind").await;
    assert_eq!((r.status, r.code()), (403, "self_approval"));
    assert_eq!(b.get("alice", &format!("/v1/requests/{}", id(&req))).await.body["status"], "pending");
}

#[tokio::test]
async fn approvers_outside_the_rule_are_refused() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    // An admin sees every request but decides none unless a rule names them.
    let r = b.approve("admin", id(&req)).await;
    assert_eq!((r.status, r.code()), (403, "not_approver"), "{}", r.body);
    assert!(r.message().contains("group:reviewers"), "{}", r.message());
    let r = b.deny("admin", id(&req), "no").await;
    assert_eq!((r.status, r.code()), (403, "not_approver"), "{}", r.body);
    // Who cannot see it learns nothing, not even that it exists: the answer
    // for a missing id, from approve and deny alike.
    for outsider in ["dave", "mallory"] {
        for r in [b.approve(outsider, id(&req)).await, b.deny(outsider, id(&req), "no").await] {
            assert_eq!((r.status, r.code(), r.message()), (404, "not_found", "request 1 not found"), "{outsider}");
        }
    }
    let missing = b.approve("mallory", 999).await;
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
    // acme/api is approved by carol only: bob, a reviewer elsewhere, may not.
    let req = b.request("dave", "acme/api", "write", "1h", None).await;
    let r = b.approve("bob", id(&req)).await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "bob cannot see it");
    assert_eq!(b.approve("carol", id(&req)).await.body["status"], "approved");
}

#[tokio::test]
async fn policy_refusals_say_why() {
    let b = TestBroker::start().await;
    let ask = |user: &'static str, repo: &'static str, level: &'static str, dur: &'static str, reason: Option<&'static str>| {
        b.post(user, "/v1/requests", json!({"repo": repo, "level": level, "duration": dur, "reason": reason}))
    };
    // Default deny: no rule for acme/secret at all.
    let r = ask("alice", "acme/secret", "read", "1h", None).await;
    assert_eq!((r.status, r.code()), (403, "policy_denied"));
    assert!(r.message().contains("no policy rule") && r.message().contains("acme/secret"), "{}", r.message());
    // A rule covers demo read, but not for mallory.
    let r = ask("mallory", "demo", "read", "1h", None).await;
    assert_eq!((r.status, r.code()), (403, "policy_denied"));
    assert!(r.message().contains("mallory"), "{}", r.message());
    // Over the rule's max duration.
    let r = ask("alice", "demo", "write", "9h", Some("x")).await;
    assert_eq!((r.status, r.code()), (403, "policy_denied"));
    assert!(r.message().contains("9h") && r.message().contains("8h"), "{}", r.message());
    // Reason required.
    let r = ask("alice", "demo", "write", "1h", None).await;
    assert_eq!((r.status, r.code()), (403, "policy_denied"));
    assert!(r.message().contains("reason"), "{}", r.message());
    // Nothing was created by any refusal.
    assert_eq!(b.get("admin", "/v1/requests").await.body, json!([]));
}

#[tokio::test]
async fn a_denied_request_cannot_be_approved() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    let d = b.deny("bob", id(&req), "not during the freeze").await;
    assert_eq!(d.body["status"], "denied");
    assert_eq!(d.body["decision_note"], "not during the freeze");
    let r = b.approve("carol", id(&req)).await;
    assert_eq!((r.status, r.code()), (409, "not_pending"));
    assert!(r.message().contains("denied"));
    assert_eq!(b.get("alice", "/v1/grants").await.body, json!([]));
}

#[tokio::test]
async fn racing_approve_and_deny_end_in_exactly_one_decision() {
    let b = TestBroker::start().await;
    for _ in 0..15 {
        let req = b.request("alice", "demo", "write", "1h", Some("race")).await;
        let rid = id(&req);
        let (a, d) = tokio::join!(b.approve("bob", rid), b.deny("carol", rid, "no"));
        let winners = [a.status, d.status].iter().filter(|s| **s == 200).count();
        assert_eq!(winners, 1, "approve {} {} / deny {} {}", a.status, a.body, d.status, d.body);
        let loser = if a.status == 200 { &d } else { &a };
        assert_eq!((loser.status, loser.code()), (409, "not_pending"));
        let final_status = b.get("alice", &format!("/v1/requests/{rid}")).await.body["status"].clone();
        let actions = b.actions_for(rid).await;
        if final_status == "approved" {
            assert_eq!(actions, ["requested", "approved", "granted"]);
        } else {
            assert_eq!(final_status, "denied");
            assert_eq!(actions, ["requested", "denied"]);
        }
    }
    // Two approvers racing on a 1-of-M rule: one grant, never two.
    for _ in 0..10 {
        let req = b.request("alice", "demo", "write", "1h", Some("race")).await;
        let rid = id(&req);
        let (x, y) = tokio::join!(b.approve("bob", rid), b.approve("carol", rid));
        assert!(x.status == 200 || y.status == 200);
        let grants = b.audit().await.iter().filter(|e| e["request_id"] == rid && e["action"] == "granted").count();
        assert_eq!(grants, 1);
    }
}

#[tokio::test]
async fn cancel_is_for_the_requester_only() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    let r = b.post("bob", &format!("/v1/requests/{}/cancel", id(&req)), json!({})).await;
    assert_eq!((r.status, r.code()), (403, "not_approver"));
    let r = b.post("alice", &format!("/v1/requests/{}/cancel", id(&req)), json!({})).await;
    assert_eq!(r.body["status"], "canceled");
    let r = b.approve("bob", id(&req)).await;
    assert_eq!((r.status, r.code()), (409, "not_pending"));
}

#[tokio::test]
async fn long_poll_returns_the_moment_of_the_decision() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    let rid = id(&req);
    let started = Instant::now();
    let path = format!("/v1/requests/{rid}?wait=30s");
    let waiter = b.get("alice", &path);
    let approver = async {
        b.long_polls_open(1).await;
        b.approve("bob", rid).await
    };
    let (waited, approved) = tokio::join!(waiter, approver);
    let elapsed = started.elapsed();
    assert_eq!(approved.status, 200);
    assert_eq!(waited.status, 200);
    assert_eq!(waited.body["status"], "approved", "{}", waited.body);
    assert!(waited.body["grant"]["id"].is_i64());
    // Woken by the decision, not by the 30 s timeout (a generous bound).
    assert!(elapsed < Duration::from_secs(10), "waited {elapsed:?}");
}

#[tokio::test]
async fn long_poll_does_not_miss_a_decision_made_before_it_started() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    b.deny("bob", id(&req), "no").await;
    // The client last saw `pending`; the call returns at once with the decision.
    let r = b.get("alice", &format!("/v1/requests/{}?wait=30s&status=pending", id(&req))).await;
    assert_eq!(r.body["status"], "denied");
}

#[tokio::test]
async fn long_poll_times_out_with_the_current_state() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    let started = Instant::now();
    // Waits are whole seconds, as every duration jit reads.
    assert_eq!(b.get("alice", &format!("/v1/requests/{}?wait=300ms", id(&req))).await.status, 400);
    let r = b.get("alice", &format!("/v1/requests/{}?wait=1s", id(&req))).await;
    assert_eq!(r.body["status"], "pending");
    assert!(started.elapsed() >= Duration::from_millis(990));
}

#[tokio::test]
async fn pending_requests_expire_after_the_ttl() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    let rid = id(&req);
    // A waiter learns of the expiry (pending_ttl is 1h) without anyone deciding.
    let path = format!("/v1/requests/{rid}?wait=20s");
    let waiter = b.get("alice", &path);
    let clock = async {
        b.long_polls_open(1).await;
        b.advance(Duration::from_secs(3601));
    };
    let started = Instant::now();
    let (r, ()) = tokio::join!(waiter, clock);
    assert_eq!(r.body["status"], "expired", "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(5), "woken by the expiry, not the 20 s wait");
    let r = b.approve("bob", rid).await;
    assert_eq!((r.status, r.code()), (409, "not_pending"));
    assert_eq!(b.actions_for(rid).await, ["requested", "expired"]);
    // The reaper expires requests nobody is watching.
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    b.advance(Duration::from_secs(3601));
    let actions = crate::common::eventually(|| b.actions_for(id(&req)), |a| a.len() == 2).await;
    assert_eq!(actions, ["requested", "expired"]);
}

#[tokio::test]
async fn grants_end_on_time_and_the_expiry_is_logged_once() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "read", "2h", None).await;
    assert_eq!(req["grant"]["status"], "active");
    b.advance(Duration::from_secs(2 * 3600 - 5));
    let g = b.get("alice", &format!("/v1/grants/{}", req["grant"]["id"])).await;
    assert_eq!(g.body["status"], "active", "five seconds left");
    b.advance(Duration::from_secs(6));
    let g = b.get("alice", &format!("/v1/grants/{}", req["grant"]["id"])).await;
    assert_eq!(g.body["status"], "expired");
    assert_eq!(b.get("alice", "/v1/grants?live=true").await.body, json!([]));
    let actions = crate::common::eventually(|| b.actions_for(id(&req)), |a| a.len() == 3).await;
    assert_eq!(actions, ["requested", "granted", "grant_expired"]);
    // Once: the reaper's later passes add nothing.
    b.advance(Duration::from_secs(60));
    b.reaper_caught_up().await;
    assert_eq!(b.actions_for(id(&req)).await, ["requested", "granted", "grant_expired"]);
}

#[tokio::test]
async fn revoke_by_grantee_approver_or_admin_only() {
    let b = TestBroker::start().await;
    let mut grant_ids = vec![];
    for user in ["dave", "alice"] {
        let req = b.request(user, "demo", "read", "1h", None).await;
        grant_ids.push(req["grant"]["id"].as_i64().unwrap());
    }
    // Not the grantee, not an approver for demo read (an auto-approve rule has none), not an admin.
    for outsider in ["mallory", "erin", "bob"] {
        let r = b.post(outsider, &format!("/v1/grants/{}/revoke", grant_ids[0]), json!({})).await;
        assert_eq!((r.status, r.code()), (404, "not_found"), "{outsider}");
    }
    assert_eq!(b.post("dave", &format!("/v1/grants/{}/revoke", grant_ids[0]), json!({})).await.status, 200);
    assert_eq!(b.post("admin", &format!("/v1/grants/{}/revoke", grant_ids[1]), json!({})).await.status, 200);
    // An approver of the repo and level may revoke a write grant.
    let req = b.request("dave", "demo", "write", "1h", Some("x")).await;
    let approved = b.approve("bob", id(&req)).await;
    let gid = approved.body["grant"]["id"].as_i64().unwrap();
    let r = b.post("carol", &format!("/v1/grants/{gid}/revoke"), json!({"reason": "incident over"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["revoked_by"], "carol");
}

#[tokio::test]
async fn listing_mine_reviewable_and_by_status() {
    let b = TestBroker::start().await;
    let w = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    let a = b.request("dave", "acme/api", "write", "1h", None).await;
    let ids = |r: crate::common::Resp| r.body.as_array().unwrap().iter().map(id).collect::<Vec<_>>();
    assert_eq!(ids(b.get("alice", "/v1/requests?mine=true").await), [id(&w)]);
    assert_eq!(ids(b.get("bob", "/v1/requests?reviewable=true&status=pending").await), [id(&w)]);
    assert_eq!(ids(b.get("carol", "/v1/requests?reviewable=true").await), [id(&a), id(&w)]);
    // mallory sees nothing of others' requests.
    assert_eq!(ids(b.get("mallory", "/v1/requests").await), Vec::<i64>::new());
    let r = b.get("mallory", &format!("/v1/requests/{}", id(&w))).await;
    assert_eq!(r.status, 404);
    assert_eq!(ids(b.get("admin", "/v1/requests?status=pending").await).len(), 2);
}

#[tokio::test]
async fn listings_page_newest_first_with_a_next_link() {
    let b = TestBroker::start().await;
    let mut made = vec![];
    for i in 0..5 {
        made.push(id(&b.request("alice", "acme/api", "read", "1h", Some(&format!("r{i}"))).await));
        b.post("alice", &format!("/v1/requests/{}/cancel", made[i]), json!({})).await;
    }
    made.reverse();
    // Pages of two, following the Link header, see each request once, newest first.
    let (mut seen, mut path) = (vec![], Some("/v1/requests?mine=true&limit=2".to_string()));
    while let Some(p) = path.take() {
        let r = b.get("alice", &p).await;
        assert_eq!(r.status, 200, "{}", r.body);
        seen.extend(r.body.as_array().unwrap().iter().map(id));
        if let Some(link) = r.headers.get("link") {
            let link = link.to_str().unwrap();
            let query = link.strip_prefix("<?").and_then(|l| l.strip_suffix(">; rel=\"next\"")).unwrap();
            assert!(query.contains("mine=true") && query.contains("limit=2"), "the next page keeps the query: {link}");
            path = Some(format!("/v1/requests?{query}"));
        }
    }
    assert_eq!(seen, made);
    // Grants page the same way.
    for i in 0..3 {
        let r = b.request("dave", "demo", "read", &format!("{}h", i + 1), None).await;
        assert_eq!(r["status"], "approved");
    }
    let first = b.get("admin", "/v1/grants?all=true&limit=2").await;
    assert_eq!(first.body.as_array().unwrap().len(), 2);
    assert!(first.headers.get("link").unwrap().to_str().unwrap().contains("all=true"));
    let last = b.get("admin", &format!("/v1/grants?all=true&limit=2&before={}", first.body[1]["id"])).await;
    assert_eq!(last.body.as_array().unwrap().len(), 1);
    assert!(last.headers.get("link").is_none(), "a short page is the last");
    // Bad paging is a 400 in the API's own shape, saying what is accepted.
    for bad in ["limit=0", "limit=1001", "limit=abc", "before=0", "before=x", "limit=-1"] {
        for list in ["/v1/requests", "/v1/grants"] {
            let r = b.get("alice", &format!("{list}?{bad}")).await;
            assert_eq!((r.status, r.code()), (400, "invalid_input"), "{list}?{bad}: {}", r.body);
        }
    }
}

#[tokio::test]
async fn admin_manages_users_and_tokens() {
    let b = TestBroker::start().await;
    let r = b.post("admin", "/v1/users", json!({"name": "frank", "groups": ["developers"]})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("jit_") && token.len() == 47);
    let who = b.send(reqwest::Method::GET, "/v1/whoami", Some(&token), None).await;
    assert_eq!(who.body["name"], "frank");
    assert_eq!(who.body["groups"], json!(["developers"]));
    // Duplicate.
    let r = b.post("admin", "/v1/users", json!({"name": "frank"})).await;
    assert_eq!((r.status, r.code()), (409, "conflict"));
    // Rotate: the old token stops working.
    let r = b.post("admin", "/v1/users/frank/token", json!({})).await;
    let new_token = r.body["token"].as_str().unwrap().to_string();
    assert_ne!(new_token, token);
    assert_eq!(b.send(reqwest::Method::GET, "/v1/whoami", Some(&token), None).await.status, 401);
    assert_eq!(b.send(reqwest::Method::GET, "/v1/whoami", Some(&new_token), None).await.status, 200);
    // Remove.
    let r = b.send(reqwest::Method::DELETE, "/v1/users/frank", Some(b.token("admin")), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(b.send(reqwest::Method::GET, "/v1/whoami", Some(&new_token), None).await.status, 401);
    let r = b.send(reqwest::Method::DELETE, "/v1/users/frank", Some(b.token("admin")), None).await;
    assert_eq!(r.status, 404);
    // Non-admins may not.
    let r = b.post("alice", "/v1/users", json!({"name": "eve"})).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    assert_eq!(b.get("alice", "/v1/users").await.status, 403);
    assert_eq!(b.get("alice", "/v1/audit").await.status, 403);
    // The hash, not the token, is what the database holds.
    let db = std::fs::read(b.db_path()).unwrap_or_default();
    let wal = std::fs::read(b.dir.path().join("jit.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(new_token.len()).any(|w| w == new_token.as_bytes()), "token found in the database");
    }
    // (The old token's failed use is summarised as `auth_failures` in its own time.)
    let actions: Vec<String> =
        b.audit().await.iter().map(|e| e["action"].as_str().unwrap().to_string()).filter(|a| a != "auth_failures").collect();
    assert!(actions.ends_with(&["user_added".into(), "token_rotated".into(), "user_removed".into()]), "{actions:?}");
}

#[tokio::test]
async fn audit_chain_verifies_and_detects_a_tampered_row() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    b.approve("bob", id(&req)).await;
    let v = b.get("admin", "/v1/audit/verify").await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
    let total = v.body["events"].as_u64().unwrap();
    assert!(total >= 10);

    // The log refuses updates through SQL...
    let refused = b.try_execute("UPDATE audit_events SET detail = 'nothing' WHERE action = 'requested'").await;
    assert!(refused.unwrap_err().contains("append-only"));
    // ...and someone who removes that guard is still caught.
    b.tamper_with_audit("detail = 'for 1h: routine' WHERE action = 'requested'").await;
    let v = b.get("admin", "/v1/audit/verify").await;
    assert_eq!(v.body["ok"], false);
    let err = v.body["error"].as_str().unwrap();
    assert!(err.contains("altered"), "{err}");
}

#[tokio::test]
async fn the_audit_log_pages_and_filters_by_time_on_the_broker() {
    let b = TestBroker::start().await;
    let before = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Three requests that each end in a grant: no pile-up rule folds them.
    b.request("alice", "demo", "read", "1h", None).await;
    b.request("dave", "demo", "read", "1h", None).await;
    let acme = b.request("mallory", "acme/api", "read", "1h", None).await;
    assert_eq!(b.approve("carol", acme["id"].as_i64().unwrap()).await.status, 200);
    let all = b.audit().await;
    let recent = b.get("admin", &format!("/v1/audit?since={}", before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))).await.body;
    let recent = recent.as_array().unwrap();
    // Seven users were added before `before`; after it, two auto-approved
    // requests (requested, granted) and one approved by carol (requested, approved, granted).
    assert_eq!(recent.len(), 7);
    assert_eq!(recent.len(), all.len() - crate::common::USERS.len());
    let page = b.get("admin", &format!("/v1/audit?after={}&limit=2", recent[0]["seq"])).await.body;
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["seq"], recent[1]["seq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_names_its_request_and_an_error_says_the_same_id() {
    let b = TestBroker::start().await;
    let header = |r: &crate::common::Resp| r.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let ok = b.get("alice", "/v1/whoami").await;
    assert_eq!(ok.status, 200);
    let first = header(&ok);
    assert!(first.len() == 16 && first.bytes().all(|c| c.is_ascii_hexdigit()), "{first:?}");
    let missing = b.get("alice", "/v1/requests/999").await;
    assert_eq!(missing.status, 404);
    let id = header(&missing);
    assert_eq!(missing.body["error"]["request_id"].as_str(), Some(id.as_str()), "{}", missing.body);
    assert_ne!(id, first, "each request its own");
    // A client's own header names nothing on the broker.
    let sent = reqwest::Client::new().get(format!("{}/v1/whoami", b.url)).header("x-request-id", "mine").send().await.unwrap();
    assert_ne!(sent.headers()["x-request-id"], "mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_carrying_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("jit.toml");
    std::fs::write(&config, crate::common::POLICY).unwrap();
    let root = crate::common::init_admin(&config, &data);
    let start = |format: &str| {
        crate::common::server_on(&data)
            .args(["server", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .env("JIT_LOG_FORMAT", format)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A format it does not know: refused by name, before anything starts.
    let refused = start("xml").wait_with_output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("JIT_LOG_FORMAT `xml`: expected text or json"));

    let broker = crate::common::ChildGuard::logged(start("json"));
    let listening: serde_json::Value = serde_json::from_str(&broker.log().until("jit broker listening")).unwrap();
    let url = listening["fields"]["url"].as_str().unwrap().trim_end_matches('/').to_string();
    let resp = reqwest::Client::new().get(format!("{url}/v1/users")).bearer_auth(&root).send().await.unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body = serde_json::json!({"name": "alice", "groups": ["developers"]});
    let added = reqwest::Client::new().post(format!("{url}/v1/users")).bearer_auth(&root).json(&body).send().await.unwrap();
    let added_id = added.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(id, added_id);
    let line = broker.log().until("\"user added\"");
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["span"]["request_id"], added_id.as_str(), "{line}");
    assert_eq!((line["span"]["method"].as_str(), line["span"]["path"].as_str()), (Some("POST"), Some("/v1/users")));
    for text in broker.log().text().lines() {
        serde_json::from_str::<serde_json::Value>(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    }
}
