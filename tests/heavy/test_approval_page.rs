//! The approval pages in a real browser: Debian's chromium driven by
//! `playwright-core` (`contract/approval-page.mjs`) with a phone's viewport,
//! opening the link a Slack message carries, signing in with a token and
//! through a real OpenID provider, approving one request with a comment
//! (the requester's waiting `jit request` then returns with the grant) and
//! denying another, against a live broker whose records must then say
//! exactly that. Each page's screenshot is kept in
//! `target/test-artifacts/approval-page/`.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::idp::TestIdp;
use crate::common::receiver::Receiver;
use crate::common::{TestBroker, cli_env, eventually, gateway_policy};

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

/// [`gateway_policy`] (with `extra` in `[server]`) and a Slack destination
/// for requests at `slack`, plus `tail` (more sections).
async fn broker(slack: &Receiver, extra: &str, tail: &str) -> (TestBroker, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("slack-url");
    std::fs::write(&url_file, format!("{}/slack", slack.url)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let policy = gateway_policy("1h").replacen("[server]\n", &format!("[server]\n{extra}"), 1);
    let notify =
        format!("\n[[notify]]\nname = \"chat\"\nkind = \"slack\"\nurl_file = \"{}\"\nevents = [\"requested\"]\n", url_file.display());
    (TestBroker::start_with(&format!("{policy}{tail}{notify}")).await, dir)
}

/// alice asks for write and waits in her terminal (approved in the
/// browser); dave's request is denied there. The waiting `jit request`, the
/// page Slack's button for alice's request opens, and both ids.
async fn two_requests(b: &TestBroker, slack: &Receiver) -> (crate::common::TestEnvironment, crate::common::Watched, String, (i64, i64)) {
    let alice = cli_env(b);
    // A local user's token (the broker may also sign people in through an IdP).
    alice.secret(b.token("alice"));
    alice.run_with(&["login", "--server", &b.url, "--token"], &[], Some(b.token("alice"))).success();
    let waiting = alice.spawn_watched(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "release 1.2"]);
    waiting.line_with("waiting for approval");
    let deny = b.request("dave", "demo", "write", "2h", Some("hotfix")).await["id"].as_i64().unwrap();
    // The button in the Slack message about alice's request: its link is what the approver opens.
    let messages = eventually(|| async { slack.got() }, |m| m.iter().any(|(_, body)| body.to_string().contains("release 1.2"))).await;
    let message = messages.iter().map(|(_, body)| body).find(|body| body.to_string().contains("release 1.2")).unwrap();
    // Kept beside the screenshots: the message as Slack received it.
    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/approval-page");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("slack-message.json"), serde_json::to_string_pretty(message).unwrap()).unwrap();
    let button = message["blocks"].as_array().unwrap().iter().find(|block| block["type"] == "actions").expect("an actions block").clone();
    assert_eq!(button["elements"][0]["text"]["text"], "Approve / Deny", "{button}");
    let open = button["elements"][0]["url"].as_str().unwrap().to_string();
    let approve: i64 = open.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(open, format!("{}/requests/{approve}", b.url));
    (alice, waiting, open, (approve, deny))
}

/// What every run of the scenario must have shown, and the broker must now hold.
async fn check(b: &TestBroker, seen: &Value, approver: &str, (approve, deny): (i64, i64)) {
    assert_eq!(seen["approved"]["url"].as_str().unwrap(), format!("{}/requests/{approve}?said=approved", b.url));
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

/// The scenario the browser plays; each page's screenshot goes to `target/test-artifacts/approval-page/NAME/`.
fn scenario(b: &TestBroker, open: &str, deny: i64, sign_in: Value, name: &str) -> Value {
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/approval-page").join(name);
    std::fs::create_dir_all(&shots).unwrap();
    json!({"base": b.url, "open": open, "deny": deny, "comment": "ship it", "reason": "not during the freeze", "signIn": sign_in, "screenshots": shots})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_opens_slacks_link_signs_in_with_a_token_and_decides_on_a_phone() {
    let slack = Receiver::start().await;
    let (b, _dir) = broker(&slack, "", "").await;
    let (alice, waiting, open, ids) = two_requests(&b, &slack).await;
    let seen = tokio::task::spawn_blocking({
        let s = scenario(&b, &open, ids.1, json!({"token": b.token("bob")}), "token");
        move || browse(s)
    })
    .await
    .unwrap();
    check(&b, &seen, "bob", ids).await;
    // The requester's terminal, waiting all along, has its grant.
    alice.finish(waiting).success().stdout_has("Approved by bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_signs_in_through_the_identity_provider_and_decides() {
    let mut idp = TestIdp::start(&[("rita", &["reviewers"])]);
    let slack = Receiver::start().await;
    let sealing = format!("sealing_key_file = \"{}\"\n", idp.sealing_key_file().display());
    let (b, _dir) = broker(&slack, &sealing, &idp.broker_config("1h", "12h")).await;
    idp.register_redirect(&format!("{}/v1/auth/callback", b.url), "k2");
    let (alice, waiting, open, ids) = two_requests(&b, &slack).await;
    let seen = tokio::task::spawn_blocking({
        let s = scenario(&b, &open, ids.1, json!({"idp": {"username": "rita", "password": "pw-rita"}}), "idp");
        move || browse(s)
    })
    .await
    .unwrap();
    check(&b, &seen, "rita", ids).await;
    alice.finish(waiting).success().stdout_has("Approved by rita");
    let signed_in = b.audit().await.into_iter().find(|e| e["action"] == "signed_in").expect("a broker session began");
    assert_eq!(signed_in["actor"], "rita", "{signed_in}");
}
