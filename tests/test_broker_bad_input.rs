//! Every bad input to the API gets a 4xx with a stable code and a clear message.

use reqwest::Method;
use serde_json::json;

use crate::common::TestBroker;

#[tokio::test]
async fn missing_wrong_and_malformed_tokens_are_401() {
    let b = TestBroker::start().await;
    let r = b.send(Method::GET, "/v1/whoami", None, None).await;
    assert_eq!((r.status, r.code()), (401, "unauthenticated"));
    assert!(r.message().contains("missing"), "{}", r.message());
    let r = b.send(Method::GET, "/v1/whoami", Some("jit_not-a-real-token-at-all-but-right-shape-xxxxxx"), None).await;
    assert_eq!((r.status, r.code()), (401, "unauthenticated"));
    assert!(r.message().contains("invalid"), "{}", r.message());
    let raw = reqwest::Client::new().get(format!("{}/v1/whoami", b.url)).header("Authorization", "Basic abc").send().await.unwrap();
    assert_eq!(raw.status(), 401);
    assert_eq!(raw.headers()["www-authenticate"], "Bearer realm=\"jit\"");
    let body: serde_json::Value = raw.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("Bearer"));
}

#[tokio::test]
async fn malformed_json_and_wrong_shapes_are_400() {
    let b = TestBroker::start().await;
    let raw = reqwest::Client::new()
        .post(format!("{}/v1/requests", b.url))
        .bearer_auth(b.token("alice"))
        .header("content-type", "application/json")
        .body("{\"repo\": \"demo\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
    assert!(body["error"]["message"].as_str().unwrap().contains("malformed JSON"));

    let r = b.post("alice", "/v1/requests", json!({"repo": "demo", "level": "write"})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_json"));
    assert!(r.message().contains("duration"), "{}", r.message());

    let raw =
        reqwest::Client::new().post(format!("{}/v1/requests", b.url)).bearer_auth(b.token("alice")).body("repo=demo").send().await.unwrap();
    assert_eq!(raw.status(), 415);
}

#[tokio::test]
async fn unknown_level_bad_duration_and_unknown_repo_say_what_is_accepted() {
    let b = TestBroker::start().await;
    let r = b.post("alice", "/v1/requests", json!({"repo": "demo", "level": "owner", "duration": "1h"})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    assert!(r.message().contains("`owner`") && r.message().contains("read, write, admin"), "{}", r.message());
    for bad in ["soon", "0s", "-1h", "1.5s", ""] {
        let r = b.post("alice", "/v1/requests", json!({"repo": "demo", "level": "read", "duration": bad})).await;
        assert_eq!((r.status, r.code()), (400, "invalid_input"), "{bad}: {}", r.body);
        assert!(r.message().contains("duration"), "{}", r.message());
    }
    let r = b.post("alice", "/v1/requests", json!({"repo": "acme/nope", "level": "read", "duration": "1h"})).await;
    assert_eq!((r.status, r.code()), (404, "unknown_repo"));
    assert!(r.message().contains("acme/nope"));
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_distinct_errors() {
    let b = TestBroker::start().await;
    let r = b.get("alice", "/v1/requests/999").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    assert!(r.message().contains("request 999"));
    let r = b.approve("bob", 999).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = b.get("alice", "/v1/requests/abc").await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    assert!(r.message().contains("`abc`"));
    let r = b.post("alice", "/v1/grants/0/revoke", json!({})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    let r = b.get("alice", "/v1/requests/1?wait=forever").await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    let r = b.get("admin", "/v1/audit?since=yesterday").await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    assert!(r.message().contains("`yesterday`"));
    let r = b.get("alice", "/v1/requests?status=done").await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    let r = b.get("alice", "/v1/nope").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let b = TestBroker::start().await;
    let huge = "x".repeat(200 * 1024);
    let r = b.post("alice", "/v1/requests", json!({"repo": "demo", "level": "write", "duration": "1h", "reason": huge})).await;
    assert_eq!((r.status, r.code()), (413, "body_too_large"));
    let r = b.post("bob", "/v1/requests/1/approve", json!({"comment": huge})).await;
    assert_eq!((r.status, r.code()), (413, "body_too_large"));
    // Under the body limit but over the field limit.
    let long = "y".repeat(3000);
    let r = b.post("alice", "/v1/requests", json!({"repo": "demo", "level": "write", "duration": "1h", "reason": long})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
}

#[tokio::test]
async fn deny_needs_a_reason_and_bad_user_names_are_refused() {
    let b = TestBroker::start().await;
    let req = b.request("alice", "demo", "write", "1h", Some("fix")).await;
    let r = b.deny("bob", req["id"].as_i64().unwrap(), "   ").await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    for bad in ["", "a b", "x/y", "broker", &"n".repeat(65)] {
        let r = b.post("admin", "/v1/users", json!({"name": bad})).await;
        assert_eq!((r.status, r.code()), (400, "invalid_input"), "{bad:?}");
    }
    let r = b.post("admin", "/v1/users", json!({"name": "ok", "groups": ["bad group"]})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
}

#[tokio::test]
async fn credential_minting_refuses_what_is_not_the_callers_live_grant() {
    let b = TestBroker::start_gateway("1h").await;
    let mine = b.request("alice", "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let path = format!("/v1/grants/{mine}/credentials");
    // Someone else's grant looks like no grant at all.
    let r = b.post("dave", &path, json!({})).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = b.send(Method::POST, &path, None, Some(json!({}))).await;
    assert_eq!((r.status, r.code()), (401, "unauthenticated"));
    let r = b.post("alice", "/v1/grants/x/credentials", json!({})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    // A repo no provider mints for.
    let acme = b.request("alice", "acme/api", "read", "1h", None).await;
    let acme_grant = b.approve("carol", acme["id"].as_i64().unwrap()).await.body["grant"]["id"].as_i64().unwrap();
    let r = b.post("alice", &format!("/v1/grants/{acme_grant}/credentials"), json!({})).await;
    assert_eq!((r.status, r.code()), (409, "conflict"));
    assert!(r.message().contains("no provider"), "{}", r.message());
    // An ended grant, with the way to ask again.
    b.post("alice", &format!("/v1/grants/{mine}/revoke"), json!({})).await;
    let r = b.post("alice", &path, json!({})).await;
    assert_eq!((r.status, r.code()), (409, "grant_ended"));
    assert!(r.message().contains("was revoked"), "{}", r.message());
    assert!(r.body["error"]["hint"].as_str().unwrap().contains("jit request demo --level read"));
}

#[tokio::test]
async fn the_gateway_answers_bad_git_requests_plainly() {
    let b = TestBroker::start_gateway("1h").await;
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let cred = b.post("alice", &format!("/v1/grants/{grant}/credentials"), json!({})).await.body;
    let password = cred["password"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let refs = |repo: &str| format!("{}/git/{repo}.git/info/refs?service=git-upload-pack", b.url);
    // No credentials: a Basic challenge, so git asks its helpers; its realm
    // names the service, so jit's helper knows which level to ask for.
    let r = http.get(refs("demo")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"jit fetch\"");
    let r = http.get(format!("{}/git/demo.git/info/refs?service=git-receive-pack", b.url)).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"jit push\"");
    // A malformed header, a wrong password, someone else's name with alice's password.
    let r = http.get(refs("demo")).header("Authorization", "Basic !!!").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(refs("demo")).basic_auth("alice", Some("jitgw_wrong")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(refs("demo")).basic_auth("bob", Some(&password)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("not for this repository"));
    // Unknown repos and anything but smart HTTP: 404 with a plain reason.
    let r = http.get(refs("nope")).basic_auth("alice", Some(&password)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("no repository `nope`"));
    for path in ["/git/demo.git/HEAD", "/git/demo.git/info/refs", "/git/demo.git/objects/info/packs"] {
        let r = http.get(format!("{}{path}", b.url)).basic_auth("alice", Some(&password)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    // The real thing works, and read cannot push.
    let r = http.get(refs("demo")).basic_auth("alice", Some(&password)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{}/git/demo.git/info/refs?service=git-receive-pack", b.url))
        .basic_auth("alice", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    // With the request that would do: the write rule wants a reason and allows up to 8h, so an hour.
    assert!(text.contains("jit: ask for it: jit request demo --level write --for 1h --reason '…'"), "{text}");
}
