//! The API's description (`/v1/openapi.json`), generated from the handlers:
//! every route the router has is in it with each of its methods, nothing
//! it lists is missing from the router, and what it promises matches what
//! the broker answers for a few calls.

use std::collections::BTreeSet;

use crate::common::TestBroker;

/// The approval pages: HTML for people, not part of the API (`server::web`).
const PAGES: &[&str] = &["/requests", "/requests/{id}", "/requests/{id}/review", "/sign-in", "/sign-in/idp", "/sign-out"];

/// (METHOD, path) for every route in src/server/router.rs, git's own protocol and the approval pages aside.
fn routed() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/router.rs")).unwrap();
    let mut out = BTreeSet::new();
    for piece in source.split(".route(\"").skip(1) {
        let (path, rest) = piece.split_once('"').unwrap();
        if path.starts_with("/git/") || PAGES.contains(&path) {
            continue;
        }
        let handlers = rest.split(".route(").next().unwrap_or(rest);
        for method in ["get", "post", "put", "delete"] {
            if handlers.contains(&format!(" {method}("))
                || handlers.contains(&format!("({method}("))
                || handlers.contains(&format!(".{method}("))
            {
                out.insert((method.to_uppercase(), path.to_string()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_description_has_every_route_and_only_routes() {
    let b = TestBroker::start().await;
    let doc: serde_json::Value = reqwest::get(format!("{}/v1/openapi.json", b.url)).await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone())))
        .collect();
    let routed = routed();
    assert!(routed.len() >= 30, "{routed:?}");
    let missing: Vec<_> = routed.difference(&described).collect();
    assert!(missing.is_empty(), "routes the description lacks: {missing:?}");
    let extra: Vec<_> = described.difference(&routed).collect();
    assert!(extra.is_empty(), "described but not routed: {extra:?}");
    // The error shape and the bearer scheme are in it.
    let error = &doc["components"]["schemas"]["ErrorDetail"]["properties"];
    for field in ["code", "message", "hint", "request_id"] {
        assert!(error.get(field).is_some(), "ErrorDetail lacks {field}: {error}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // What one call promises is what it gets: an unknown request is 404 with the error shape.
    let get = &doc["paths"]["/v1/requests/{id}"]["get"];
    assert!(get["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap().ends_with("/ErrorBody"), "{get}");
    let missing_request = b.get("alice", "/v1/requests/999").await;
    assert_eq!((missing_request.status, missing_request.code()), (404, "not_found"));
}
