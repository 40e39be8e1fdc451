//! The broker's own description (`/v1/openapi.json`) checked by a real
//! consumer: Prism (pinned in `contract/`) serves it as a validating proxy in
//! front of a live broker, and a round of real calls — the happy paths and
//! their refusals — goes through it. Every request and every answer must
//! match the description: Prism logs a `Violation` for any that does not.

use serde_json::json;

use super::test_github_contract::Prism;
use crate::common::TestBroker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_brokers_own_description() {
    let _turn = crate::common::MACHINE.lock().await;
    let b = TestBroker::start_gateway("1h").await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("openapi.json");
    std::fs::write(&spec, reqwest::get(format!("{}/v1/openapi.json", b.url)).await.unwrap().text().await.unwrap()).unwrap();
    let prism = Prism::proxy_with(&spec, &b.url);
    let http = reqwest::Client::new();
    let call = |user: &str, method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut req = http.request(method, format!("{}{path}", prism.url)).bearer_auth(b.token(user));
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move {
            let resp = req.send().await.unwrap();
            resp.status().as_u16()
        }
    };
    use reqwest::Method as M;
    let mut seen = Vec::new();
    for (user, method, path, body, expected) in [
        ("alice", M::GET, "/v1/whoami", None, 200),
        ("alice", M::GET, "/v1/repos", None, 200),
        ("alice", M::POST, "/v1/requests", Some(json!({"repo": "demo", "level": "write", "duration": "1h", "reason": "fix"})), 201),
        ("alice", M::GET, "/v1/requests?mine=true", None, 200),
        ("bob", M::POST, "/v1/requests/1/approve", Some(json!({"comment": "ok"})), 200),
        ("alice", M::GET, "/v1/requests/1", None, 200),
        ("alice", M::GET, "/v1/requests/999", None, 404),
        ("alice", M::GET, "/v1/grants?live=true", None, 200),
        ("alice", M::GET, "/v1/grants/1", None, 200),
        ("alice", M::POST, "/v1/grants/1/credentials", None, 201),
        ("admin", M::GET, "/v1/grants/1/report", None, 200),
        ("alice", M::GET, "/v1/grants/1/report", None, 403),
        ("alice", M::POST, "/v1/grants/1/revoke", Some(json!({"reason": "done"})), 200),
        ("admin", M::GET, "/v1/users", None, 200),
        ("admin", M::POST, "/v1/users", Some(json!({"name": "zoe", "groups": ["developers"]})), 201),
        ("admin", M::POST, "/v1/users/zoe/token", None, 200),
        ("admin", M::DELETE, "/v1/users/zoe", None, 204),
        ("admin", M::GET, "/v1/audit?limit=10", None, 200),
        ("admin", M::GET, "/v1/audit/checkpoint", None, 200),
        ("admin", M::GET, "/v1/audit/verify", None, 200),
        ("admin", M::GET, "/v1/grants/failing", None, 200),
        ("admin", M::GET, "/v1/notifications", None, 200),
        ("admin", M::GET, "/v1/replicas", None, 200),
        ("alice", M::GET, "/v1/users", None, 403),
        ("alice", M::GET, "/v1/auth", None, 200),
        ("alice", M::GET, "/healthz", None, 200),
    ] {
        let got = call(user, method.clone(), path, body).await;
        seen.push(format!("{method} {path} → {got}"));
        assert_eq!(got, expected, "{method} {path} as {user} through Prism:\n{}", prism.log());
    }
    let log = prism.log();
    let violations: Vec<&str> =
        log.lines().filter(|l| l.contains("Violation") || l.contains("did not pass the validation rules")).collect();
    assert!(
        violations.is_empty(),
        "answers or requests that do not match /v1/openapi.json:\n{}\n\ncalls: {seen:#?}",
        violations.join("\n")
    );
    assert_eq!(log.matches("Request received").count(), seen.len(), "every call went through Prism");
}
