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
    assert!(raw.headers().contains_key("www-authenticate"));
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
    assert_eq!((r.status, r.code()), (400, "unknown_repo"));
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
