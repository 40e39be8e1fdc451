//! The approval pages in a real browser: Debian's chromium driven by
//! `playwright-core` (`contract/approval-page.mjs`) with a phone's viewport,
//! signing in with a token and through a real OpenID provider, approving
//! one request with a comment and denying another, against a live broker
//! whose records must then say exactly that.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::idp::TestIdp;
use crate::common::{TestBroker, gateway_policy};

fn contract_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contract")
}

/// Runs the browser through `scenario`; what each page showed.
fn browse(scenario: Value) -> Value {
    assert!(std::path::Path::new("/usr/bin/chromium").exists(), "Debian's chromium is not installed (.ci/run installs it)");
    assert!(
        contract_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run scripts/contract-tools (scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let out = std::process::Command::new("node").arg(contract_dir().join("approval-page.mjs")).arg(&path).output().unwrap();
    let seen: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    assert!(seen.get("error").is_none(), "the browser stopped: {seen}");
    seen
}

/// alice's write request (approved in the browser) and dave's (denied there).
async fn two_requests(b: &TestBroker) -> (i64, i64) {
    let approve = b.request("alice", "demo", "write", "1h", Some("release 1.2")).await["id"].as_i64().unwrap();
    let deny = b.request("dave", "demo", "write", "2h", Some("hotfix")).await["id"].as_i64().unwrap();
    (approve, deny)
}

/// What every run of the scenario must have shown, and the broker must now hold.
async fn check(b: &TestBroker, seen: &Value, approver: &str, (approve, deny): (i64, i64)) {
    let text = |page: &str| seen[page]["text"].as_str().unwrap_or_default().to_string();
    let signed_out = seen["signedOut"]["url"].as_str().unwrap();
    assert!(signed_out.ends_with(&format!("/sign-in?next=%2Frequests%2F{approve}")), "{signed_out}");
    let page = text("signedIn");
    for fact in ["alice", "demo", "write", "every ref", "1h", "release 1.2", "demo-write", "group:reviewers, alice", "0 of 1"] {
        assert!(page.contains(fact), "the request page does not show `{fact}`: {page}");
    }
    assert_eq!(seen["signedIn"]["buttons"], json!(["Sign out", "Approve", "Deny"]));
    // Readable on a phone: nothing wider than its screen.
    let (wide, screen) = (seen["signedIn"]["scrollWidth"].as_i64().unwrap(), seen["signedIn"]["clientWidth"].as_i64().unwrap());
    assert!(wide <= screen, "the page scrolls sideways on a phone: {wide} > {screen}");
    let cookie = seen["cookies"].as_array().unwrap().iter().find(|c| c["name"] == "jit_web").cloned().expect("the sign-in cookie");
    assert_eq!((cookie["httpOnly"].as_bool(), cookie["sameSite"].as_str()), (Some(true), Some("Lax")), "{cookie}");
    assert!(text("approved").contains("Your approval is recorded.") && text("approved").contains("approved"), "{}", text("approved"));
    assert!(text("denyWithoutReason").contains("A denial needs a comment"), "{}", text("denyWithoutReason"));
    assert!(text("denied").contains("You denied it."), "{}", text("denied"));
    assert!(text("list").contains("Nothing waits for your decision."), "{}", text("list"));

    let approved = b.get("admin", &format!("/v1/requests/{approve}")).await.body;
    assert_eq!(approved["status"], "approved", "{approved}");
    assert_eq!((approved["approvals"][0]["by"].as_str(), approved["approvals"][0]["comment"].as_str()), (Some(approver), Some("ship it")));
    let denied = b.get("admin", &format!("/v1/requests/{deny}")).await.body;
    assert_eq!(
        (denied["status"].as_str(), denied["decided_by"].as_str(), denied["decision_note"].as_str()),
        (Some("denied"), Some(approver), Some("not during the freeze"))
    );
}

/// The scenario the browser plays; with `JIT_SCREENSHOTS=DIR`, each page is kept there as a PNG to look at.
fn scenario(b: &TestBroker, ids: (i64, i64), sign_in: Value) -> Value {
    let shots = std::env::var("JIT_SCREENSHOTS").ok();
    json!({"base": b.url, "approve": ids.0, "deny": ids.1, "comment": "ship it", "reason": "not during the freeze", "signIn": sign_in, "screenshots": shots})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_signs_in_with_a_token_and_decides_on_a_phone() {
    let b = TestBroker::start_gateway("1h").await;
    let ids = two_requests(&b).await;
    let seen = tokio::task::spawn_blocking({
        let s = scenario(&b, ids, json!({"token": b.token("bob")}));
        move || browse(s)
    })
    .await
    .unwrap();
    check(&b, &seen, "bob", ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_signs_in_through_the_identity_provider_and_decides() {
    let mut idp = TestIdp::start(&[("rita", &["reviewers"])]);
    let policy =
        gateway_policy("1h").replacen("[server]\n", &format!("[server]\nsealing_key_file = \"{}\"\n", idp.sealing_key_file().display()), 1);
    let b = TestBroker::start_with(&format!("{policy}{}", idp.broker_config("1h", "12h"))).await;
    idp.register_redirect(&format!("{}/v1/auth/callback", b.url), "k2");
    let ids = two_requests(&b).await;
    let seen = tokio::task::spawn_blocking({
        let s = scenario(&b, ids, json!({"idp": {"username": "rita", "password": "pw-rita"}}));
        move || browse(s)
    })
    .await
    .unwrap();
    check(&b, &seen, "rita", ids).await;
    let signed_in = b.audit().await.into_iter().find(|e| e["action"] == "signed_in").expect("a broker session began");
    assert_eq!(signed_in["actor"], "rita", "{signed_in}");
}
