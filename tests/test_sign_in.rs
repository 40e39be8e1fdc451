//! Signing in with the company's identity provider, against a real one
//! (npm `oidc-provider`, `tests/common/idp.rs`): the device sign-in end to
//! end, groups from the IdP deciding who approves, a person disabled at the
//! IdP losing their grants within `recheck`, key rotation, and every way a
//! sign-in fails.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::idp::TestIdp;
use crate::common::{TestBroker, TestEnvironment, Watched, cli_env, eventually, gateway_policy};

/// People at the IdP: olivia develops, rita reviews; `bob` is also a local
/// user's name at the broker (the test broker makes alice, bob, … locally).
const PEOPLE: &[(&str, &[&str])] = &[("olivia", &["developers"]), ("rita", &["reviewers"]), ("bob", &["reviewers"])];

async fn broker_with(idp: &TestIdp, recheck: &str) -> TestBroker {
    broker_with_session(idp, recheck, "12h").await
}

async fn broker_with_session(idp: &TestIdp, recheck: &str, session_max: &str) -> TestBroker {
    let policy =
        gateway_policy("1h").replacen("[server]\n", &format!("[server]\nsealing_key_file = \"{}\"\n", idp.sealing_key_file().display()), 1);
    TestBroker::start_with(&format!("{policy}{}", idp.broker_config(recheck, session_max))).await
}

/// An IdP with [`PEOPLE`], a broker checking sessions every `recheck`, and
/// `name` signed in through them, in an environment of their own.
async fn signed_in(name: &str, recheck: &str) -> (TestIdp, TestBroker, TestEnvironment) {
    let idp = TestIdp::start(PEOPLE);
    let b = broker_with(&idp, recheck).await;
    let env = cli_env(&b);
    sign_in(&env, &b, &idp, name).await.success();
    (idp, b, env)
}

/// `jit login` in `env`, the person completing it at the IdP; the finished run.
async fn sign_in(env: &TestEnvironment, b: &TestBroker, idp: &TestIdp, name: &str) -> crate::common::Run {
    let login = env.spawn_watched(&["login", "--server", &b.url, "--no-browser"]);
    let url = code_url(&login);
    idp.sign_in_as(&url, name, &format!("pw-{name}")).await.expect("the person signs in at the IdP");
    env.finish(login)
}

/// The address `jit login` printed that carries the code.
fn code_url(login: &Watched) -> String {
    let line = login.line_with("which carries the code");
    line.split_whitespace().find(|w| w.starts_with("http")).unwrap().trim_end_matches(',').to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_through_the_idp_requests_and_pushes() {
    let idp = TestIdp::start(PEOPLE);
    let b = broker_with(&idp, "1h").await;
    let olivia = cli_env(&b);
    let run = sign_in(&olivia, &b, &idp, "olivia").await;
    run.success().stderr_has(&format!("Logged in to {} as olivia through {}", b.url, idp.issuer));
    let who = olivia.run(&["whoami", "--json"]);
    let who = who.success().json();
    assert_eq!(who["user"]["name"], "olivia");
    assert_eq!(who["user"]["groups"], json!(["developers"]), "groups come from the IdP");
    assert_eq!(who["session"]["issuer"], idp.issuer.as_str());
    olivia.run(&["whoami"]).success().stdout_has(&format!("signed in through {}", idp.issuer));

    // Groups from the IdP decide: olivia (developers) asks, rita (reviewers) approves.
    let rita = cli_env(&b);
    sign_in(&rita, &b, &idp, "rita").await.success();
    let asked = olivia.run(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "hotfix", "--no-wait", "--json"]);
    let id = asked.success().json()["id"].as_i64().unwrap();
    olivia.run(&["approve", &id.to_string()]).code(5);
    rita.run(&["approve", &id.to_string()]).success();

    // Plain git with the session's grant.
    olivia.run(&["setup"]).success();
    let work = olivia.work_dir();
    olivia.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    let clone = work.join("demo");
    std::fs::write(clone.join("fix.txt"), "fixed\n").unwrap();
    olivia.git(&clone, &["add", "fix.txt"]).success();
    olivia.git(&clone, &["commit", "-m", "fix"]).success();
    olivia.git(&clone, &["push", "origin", "HEAD:main"]).success();

    let audit = b.audit().await;
    let actions: Vec<(&str, &str)> = audit.iter().map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap())).collect();
    assert!(actions.contains(&("oidc", "user_added")), "{actions:?}");
    assert!(actions.contains(&("olivia", "signed_in")), "{actions:?}");
    assert!(actions.contains(&("olivia", "git_push")), "{actions:?}");

    // Signing out ends the session at the broker, not only here.
    olivia.run(&["logout"]).success();
    let ended = b.audit().await;
    assert!(ended.iter().any(|e| e["action"] == "session_ended" && e["detail"].as_str().unwrap().contains("signed out")), "{ended:?}");
    // No secret of the IdP's is kept or shown in clear: its client secret,
    // and every access, refresh and ID token it handed out.
    let mut secrets = idp.issued_tokens();
    assert!(secrets.len() >= 6, "two sign-ins' tokens: {}", secrets.len());
    for s in &secrets {
        crate::common::logs::secret(s);
        olivia.secret(s);
    }
    secrets.push(idp.client_secret.clone());
    b.assert_keeps_and_shows_none_of(&secrets).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_the_browser_and_a_replayed_callback_is_refused() {
    let mut idp = TestIdp::start(PEOPLE);
    let b = broker_with(&idp, "1h").await;
    idp.register_redirect(&format!("{}/v1/auth/callback", b.url), "k2");
    let olivia = cli_env(&b);
    let login = olivia.spawn_watched(&["login", "--server", &b.url, "--flow", "browser", "--no-browser"]);
    let url = login.line_with("To sign in, open").split_whitespace().last().unwrap().to_string();
    assert!(url.contains("code_challenge_method=S256") && url.contains("nonce="), "PKCE and a nonce: {url}");
    let callback = idp.sign_in_as(&url, "olivia", "pw-olivia").await.expect("signed in in the browser");
    assert!(callback.starts_with(&format!("{}/v1/auth/callback?", b.url)), "{callback}");
    olivia.finish(login).success().stderr_has(&format!("as olivia through {}", idp.issuer));
    olivia.run(&["whoami"]).success().stdout_has("signed in through");

    // The same callback again (a copied or replayed link) is refused, and audited.
    let replay = reqwest::get(&callback).await.unwrap();
    assert_eq!(replay.status(), 403);
    assert!(replay.text().await.unwrap().contains("came a second time"));
    let refused = b.audit().await.into_iter().find(|e| e["action"] == "sign_in_refused").expect("sign_in_refused");
    assert!(refused["detail"].as_str().unwrap().contains("second time"), "{refused}");
    // A state the broker never sealed is not a sign-in.
    let forged = reqwest::get(format!("{}/v1/auth/callback?state=AAAA&code=x", b.url)).await.unwrap();
    assert_eq!(forged.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_disabled_at_the_idp_loses_session_and_grants_within_recheck() {
    let (mut idp, b, olivia) = signed_in("olivia", "2s").await;
    olivia.run(&["setup"]).success();
    let asked = olivia.run(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "hotfix", "--no-wait", "--json"]);
    let id = asked.success().json()["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", id).await.status, 200);
    let work = olivia.work_dir();
    olivia.git(&work, &["clone", &b.demo_url(), "demo"]).success();

    idp.change_user("olivia", json!({"disabled": true})).await;
    let disabled_at = Instant::now();
    let grant = eventually(
        || async { b.get("admin", &format!("/v1/requests/{id}")).await.body["grant"]["status"].as_str().unwrap_or("").to_string() },
        |s| s == "revoked",
    )
    .await;
    let kept = disabled_at.elapsed();
    assert_eq!(grant, "revoked", "the grant ends when the IdP stops vouching");
    assert!(kept < Duration::from_secs(5), "access kept {kept:?} past recheck = 2s");
    eprintln!("measured: a disabled person kept access {:.2}s after the IdP disabled them (recheck 2s)", kept.as_secs_f64());

    let audit = b.audit().await;
    let ended = audit.iter().find(|e| e["action"] == "session_ended").expect("session_ended");
    assert_eq!(ended["actor"], "oidc");
    assert!(ended["detail"].as_str().unwrap().contains("no longer vouches for olivia"), "{ended}");
    let revoked = audit.iter().find(|e| e["action"] == "revoked" && e["grant_id"].is_number()).expect("revoked");
    assert!(revoked["detail"].as_str().unwrap().contains("invalid_grant"), "the IdP's answer is named: {revoked}");

    // The session token no longer works, and git is told why.
    olivia.run(&["whoami"]).code(5).stderr_has("your session ended at").stderr_has("hint: sign in again: `jit login`");
    let clone = work.join("demo");
    std::fs::write(clone.join("late.txt"), "late\n").unwrap();
    olivia.git(&clone, &["add", "late.txt"]).success();
    olivia.git(&clone, &["commit", "-m", "late"]).success();
    let push = olivia.git(&clone, &["push", "origin", "HEAD:main"]);
    assert_ne!(push.code, 0);
    assert!(push.stderr.contains("jit: cannot renew the credential for demo: your session ended at "), "{}", push.stderr);
    assert!(push.stderr.contains("the identity provider no longer vouches for olivia"), "{}", push.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_session_max_and_its_grants_stay() {
    let idp = TestIdp::start(PEOPLE);
    let b = broker_with_session(&idp, "1h", "1h").await;
    let olivia = cli_env(&b);
    sign_in(&olivia, &b, &idp, "olivia").await.success();
    let asked = olivia.run(&["request", "demo", "--level", "read", "--for", "2h", "--json"]);
    let id = asked.success().json()["id"].as_i64().unwrap();
    b.advance(Duration::from_secs(3600 + 60));
    olivia.run(&["whoami"]).code(5).stderr_has("your session ended at").stderr_has("session_max");
    let grant = b.get("admin", &format!("/v1/requests/{id}")).await.body["grant"]["status"].clone();
    assert_eq!(grant, "active", "approved for the person, not the session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_follow_the_idp_at_the_next_check() {
    let (mut idp, b, rita) = signed_in("rita", "1s").await;
    let first = b.request("alice", "demo", "write", "1h", Some("one")).await["id"].as_i64().unwrap();
    rita.run(&["approve", &first.to_string()]).success();

    idp.change_user("rita", json!({"groups": ["developers"]})).await;
    let groups =
        eventually(|| async { rita.run(&["whoami", "--json"]).json()["user"]["groups"].clone() }, |g| *g == json!(["developers"])).await;
    assert_eq!(groups, json!(["developers"]));
    let second = b.request("alice", "demo", "write", "1h", Some("two")).await["id"].as_i64().unwrap();
    // No longer a reviewer, she cannot even see it (who cannot approve learns nothing of it).
    rita.run(&["approve", &second.to_string()]).code(2).stderr_has(&format!("request {second} not found"));
    let changed = b.audit().await.into_iter().find(|e| e["action"] == "groups_changed").expect("groups_changed");
    assert_eq!(changed["detail"], "rita: reviewers → developers (from the identity provider)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_that_cannot_be_reached_ends_no_session() {
    let (mut idp, b, olivia) = signed_in("olivia", "1s").await;
    idp.stop();
    let sql = if crate::common::postgres::enabled() {
        "SELECT (extract(epoch FROM next_check_at) * 1000)::bigint FROM sessions"
    } else {
        "SELECT next_check_at FROM sessions"
    };
    let next_check = || async { b.query_text(sql).await[0][0].as_deref().unwrap().parse::<i64>().unwrap() };
    let stopped_at = next_check().await;
    // Two checks come and go while the IdP is away (each retried a second later)…
    let later = eventually(next_check, |&at| at >= stopped_at + 2000).await;
    assert!(later >= stopped_at + 2000, "the broker kept asking");
    // …and the session lives on: an outage is not a verdict on the person.
    olivia.run(&["whoami"]).success().stdout_has("olivia");
    assert!(b.audit().await.iter().all(|e| e["action"] != "session_ended"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_keeps_working_when_the_idp_rotates_its_key() {
    let (mut idp, b, _olivia) = signed_in("olivia", "1h").await;
    idp.restart_with_new_key("k2");
    let again = cli_env(&b);
    sign_in(&again, &b, &idp, "olivia").await.success().stderr_has("as olivia");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_jit_will_not_take_are_refused_with_reasons() {
    let mut idp = TestIdp::start(&[("olivia", &["developers"]), ("bob", &["reviewers"]), ("odd", &[])]);
    idp.change_user("odd", json!({"username": "../etc"})).await;
    let b = broker_with(&idp, "1h").await;

    // A name a local user has.
    let env = cli_env(&b);
    sign_in(&env, &b, &idp, "bob").await.code(5).stderr_has("the name `bob` (a local user has it)");
    // A name jit cannot use.
    sign_in(&env, &b, &idp, "odd").await.code(5).stderr_has("cannot be a jit user name");
    let refused: Vec<_> = b.audit().await.into_iter().filter(|e| e["action"] == "sign_in_refused").collect();
    assert_eq!(refused.len(), 2, "{refused:?}");

    // People come from the IdP: a local user is a deliberate service account.
    let add = b.post("admin", "/v1/users", json!({"name": "ci-bot"})).await;
    assert_eq!((add.status, add.code()), (400, "invalid_input"));
    assert!(add.message().contains("--service"), "{}", add.message());
    let admin = cli_env(&b);
    admin.secret(b.token("admin"));
    admin.run_with(&["login", "--server", &b.url, "--token"], &[], Some(b.token("admin"))).success();
    admin.run(&["admin", "user", "add", "ci-bot"]).code(2).stderr_has("added with --service");
    admin.run_printing_token(&["admin", "user", "add", "ci-bot", "--service"], &[]).success();

    // A token where no token is taken; --token still works for service accounts.
    env.run_with(&["login", "--server", &b.url, "--token"], &[], Some("jit_not-a-token")).code(5);
    env.secret(b.token("alice"));
    env.run_with(&["login", "--server", &b.url, "--token"], &[], Some(b.token("alice"))).success().stderr_has("Logged in");
    env.run(&["whoami"]).success().stdout_has("signed in with a token");

    // The IdP down: a new sign-in fails at once with a clear message, nothing hangs.
    idp.stop();
    let started = Instant::now();
    env.run(&["login", "--server", &b.url, "--no-browser"]).code(1).stderr_has("identity provider could not be reached");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_or_expired_sign_in_exits_with_its_own_code() {
    let idp = TestIdp::start(PEOPLE);
    let b = broker_with(&idp, "1h").await;
    let env = cli_env(&b);
    let login = env.spawn_watched(&["login", "--server", &b.url, "--no-browser"]);
    idp.decline(&code_url(&login)).await.unwrap();
    env.finish(login).code(3).stderr_has("error: the sign-in was declined at the identity provider");

    // Nobody finishes: the IdP's code (3 s here, polled every 5 s) runs out.
    let idp = TestIdp::start_with_ttl(PEOPLE, json!({"DeviceCode": 3}));
    let b = broker_with(&idp, "1h").await;
    let login = env.spawn_watched(&["login", "--server", &b.url, "--no-browser"]);
    code_url(&login);
    env.finish(login).code(4).stderr_has("error: the sign-in code expired before");
    env.run(&["whoami"]).code(5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_without_an_idp_says_so() {
    let b = TestBroker::start().await;
    let resp = b.send(reqwest::Method::GET, "/v1/auth", None, None).await;
    assert_eq!((resp.status, resp.body.clone()), (200, json!({"methods": ["token"]})));
    let resp = b.send(reqwest::Method::POST, "/v1/auth/device", None, Some(json!({}))).await;
    assert_eq!((resp.status, resp.code()), (404, "oidc_not_configured"));
    let resp = b.send(reqwest::Method::POST, "/v1/auth/device/token", None, Some(json!({"login": "x"}))).await;
    assert_eq!((resp.status, resp.code()), (404, "oidc_not_configured"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_foreign_sign_in_handle_is_refused() {
    let idp = TestIdp::start(PEOPLE);
    let b = broker_with(&idp, "1h").await;
    for login in ["", "not base64!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let resp = b.send(reqwest::Method::POST, "/v1/auth/device/token", None, Some(json!({"login": login}))).await;
        assert_eq!((resp.status, resp.code()), (400, "invalid_input"), "{login:?}");
    }
    let started = b.send(reqwest::Method::POST, "/v1/auth/device", None, Some(json!({}))).await;
    assert_eq!(started.status, 200);
    let pending = b.send(reqwest::Method::POST, "/v1/auth/device/token", None, Some(json!({"login": started.body["login"]}))).await;
    assert_eq!((pending.status, pending.body["status"].as_str()), (202, Some("pending")));
    assert!(!started.body.to_string().contains("device_code"), "the device code never leaves the broker in clear");
}
