//! Break-glass with real git and a Slack-shaped receiver on loopback: a
//! `--break-glass` request under a break-glass rule is granted at once (the
//! push works with nobody approving), announced loudly, marked in the audit
//! log, listed until an approver of the rule reviews it (`jit review`,
//! `jit admin grants --unreviewed`), and reminded of daily until then.

use std::time::Duration;

use serde_json::Value;

use crate::common::fake_host::{actions, logged_in};
use crate::common::receiver::Receiver;
use crate::common::{TestBroker, TestEnvironment, eventually, gateway_policy};

const BREAK_GLASS_RULE: &str = "[[rule]]\nname = \"demo-break-glass\"\nrepos = [\"demo\"]\nlevels = [\"write\"]\nrequesters = [\"group:developers\"]\napprovers = [\"group:reviewers\"]\nmax_duration = \"1h\"\nbreak_glass = true\n";

/// The gateway policy with a break-glass rule for the demo repo's write,
/// and a Slack destination taking only the break-glass events.
async fn broker(slack: &Receiver, dir: &std::path::Path) -> TestBroker {
    use std::os::unix::fs::PermissionsExt;
    let url_file = dir.join("slack-url");
    std::fs::write(&url_file, format!("{}/slack", slack.url)).unwrap();
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let policy = format!(
        "{}\n{BREAK_GLASS_RULE}\n[[notify]]\nname = \"incidents\"\nkind = \"slack\"\nurl_file = \"{}\"\nevents = [\"break_glass\", \"break_glass_reviewed\", \"review_reminder\"]\n",
        gateway_policy("1h"),
        url_file.display()
    );
    TestBroker::start_with(&policy).await
}

/// The Slack messages' plain-text fallbacks, in order.
fn said(slack: &Receiver) -> Vec<String> {
    slack.got().iter().map(|(_, body)| body["text"].as_str().unwrap_or("").to_string()).collect()
}

/// alice breaks the glass for write on demo; the grant's id.
fn break_glass(alice: &TestEnvironment) -> i64 {
    let out =
        alice.run(&["request", "demo", "--level", "write", "--for", "30m", "--reason", "INC-77 prod down", "--break-glass", "--json"]);
    out.success().stderr_has("BREAK-GLASS: write on demo granted at once without approval");
    out.json()["grant"]["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_pushes_at_once_is_announced_and_stays_listed_until_reviewed() {
    let slack = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&slack, dir.path()).await;
    let alice = logged_in(&b, "alice");
    alice.run(&["setup"]).success();
    let grant = break_glass(&alice);

    // Nobody approved: git pushes now.
    let work = alice.work_dir();
    alice.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    let clone = work.join("demo");
    alice.git(&clone, &["commit", "--allow-empty", "-q", "-m", "the fix"]).success();
    alice.git(&clone, &["push", "-q", "origin", "HEAD:main"]).success();

    // Marked in the audit log: break_glass, then granted, and no request asking anyone.
    let audit = b.audit().await;
    let names: Vec<&str> =
        audit.iter().filter(|e| e["grant_id"] == grant || e["request_id"].is_number()).map(|e| e["action"].as_str().unwrap()).collect();
    assert!(names.starts_with(&["break_glass", "granted"]), "{names:?}");
    assert!(actions(&audit, "requested").is_empty(), "{names:?}");
    assert_eq!(actions(&audit, "break_glass")[0]["detail"], "for 30m: INC-77 prod down");
    let granted = actions(&audit, "granted")[0]["detail"].as_str().unwrap().to_string();
    assert!(
        granted.starts_with("break-glass, at once, by rule `demo-break-glass` until ")
            && granted.ends_with("to be reviewed by group:reviewers"),
        "{granted}"
    );
    // Loud where people are.
    let messages = eventually(|| async { said(&slack) }, |m| !m.is_empty()).await;
    assert!(messages[0].starts_with("BREAK-GLASS: alice took write access to demo for 30m at once"), "{messages:?}");
    assert!(slack.got()[0].1.to_string().contains(":rotating_light:"), "{:?}", slack.got()[0].1);

    // Waiting for review: listed for the rule's approvers and for admins, not for alice.
    let bob = logged_in(&b, "bob");
    let waiting = bob.run(&["review", "--json"]).success().json();
    assert_eq!(waiting.as_array().unwrap().len(), 1, "{waiting}");
    assert_eq!((waiting[0]["grant"]["id"].as_i64(), waiting[0]["break_glass"].as_bool()), (Some(grant), Some(true)));
    let listed = bob.run(&["requests"]).success().stdout.clone();
    assert!(listed.contains("approved (break-glass)"), "{listed}");
    let table = bob.run(&["review"]).success().stdout.clone();
    assert!(table.contains("INC-77 prod down") && table.contains("demo-break-glass"), "{table}");
    assert!(alice.run(&["review", "--json"]).success().json().as_array().unwrap().is_empty(), "nobody reviews their own");
    let admin = logged_in(&b, "admin");
    assert_eq!(admin.run(&["admin", "grants", "--unreviewed", "--json"]).success().json().as_array().unwrap().len(), 1);
    alice.run(&["admin", "grants", "--unreviewed"]).code(5);

    // Reviewed: alice may not, a flag needs a comment, and once is enough.
    alice.run(&["review", &grant.to_string(), "--approve"]).code(5).stderr_has("cannot review your own");
    let mallory = logged_in(&b, "mallory");
    mallory.run(&["review", &grant.to_string(), "--approve"]).code(2).stderr_has("not found");
    bob.run(&["review", &grant.to_string(), "--flag"]).code(2).stderr_has("needs --comment");
    let reviewed = bob.run(&["review", &grant.to_string(), "--flag", "--comment", "no incident on record", "--json"]).success().json();
    assert_eq!((reviewed["review"]["by"].as_str(), reviewed["review"]["outcome"].as_str()), (Some("bob"), Some("flagged")), "{reviewed}");
    let carol = logged_in(&b, "carol");
    carol.run(&["review", &grant.to_string(), "--approve"]).code(2).stderr_has("already reviewed by bob (flagged)");
    let audit = b.audit().await;
    let review = &actions(&audit, "break_glass_reviewed")[0];
    assert_eq!((review["actor"].as_str(), review["detail"].as_str()), (Some("bob"), Some("flagged: no incident on record")));
    assert_eq!(review["grant_id"].as_i64(), Some(grant));
    let messages = eventually(|| async { said(&slack) }, |m| m.len() >= 2).await;
    assert_eq!(messages[1], "bob flagged break-glass #1: alice write access to demo for 30m", "{messages:?}");
    assert!(bob.run(&["review", "--json"]).success().json().as_array().unwrap().is_empty());
    let none = admin.run(&["admin", "grants", "--unreviewed"]).success().stdout.clone();
    assert!(none.contains("No break-glass grant waits for review"), "{none}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreviewed_break_glass_grant_is_brought_up_once_a_day_until_reviewed() {
    let slack = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&slack, dir.path()).await;
    let alice = logged_in(&b, "alice");
    let grant = break_glass(&alice);
    let reminders = |a: &Vec<Value>| actions(a, "review_reminder").len();

    b.advance(Duration::from_secs(23 * 3600));
    b.reaper_caught_up().await;
    assert_eq!(reminders(&b.audit().await), 0, "not before a day has passed");
    b.advance(Duration::from_secs(3600));
    let audit = eventually(|| b.audit(), |a| reminders(a) == 1).await;
    let reminder = &actions(&audit, "review_reminder")[0];
    assert_eq!(reminder["grant_id"].as_i64(), Some(grant));
    assert!(reminder["detail"].as_str().unwrap().contains(&format!("unreviewed for 1 day(s): jit review {grant}")), "{reminder}");
    let messages = eventually(|| async { said(&slack) }, |m| m.len() >= 2).await;
    assert_eq!(messages[1], "Break-glass #1 is still unreviewed: alice took write access to demo for 30m", "{messages:?}");
    // Once a day, not once a reaper round.
    b.advance(Duration::from_secs(3600));
    b.reaper_caught_up().await;
    assert_eq!(reminders(&b.audit().await), 1);
    b.advance(Duration::from_secs(23 * 3600));
    eventually(|| b.audit(), |a| reminders(a) == 2).await;

    // Reviewed: no more reminders.
    logged_in(&b, "erin").run(&["review", &grant.to_string(), "--approve", "--comment", "INC-77 confirmed"]).success();
    b.advance(Duration::from_secs(2 * 24 * 3600));
    b.reaper_caught_up().await;
    b.reaper_caught_up().await;
    assert_eq!(reminders(&b.audit().await), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_refuses_what_its_rule_does_not_allow_and_review_its_bad_input() {
    let slack = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&slack, dir.path()).await;
    let alice = logged_in(&b, "alice");
    let ask = |env: &TestEnvironment, level: &str, duration: &str, reason: Option<&str>| {
        let mut args = vec!["request", "demo", "--level", level, "--for", duration, "--break-glass", "--no-wait"];
        if let Some(r) = reason {
            args.extend(["--reason", r]);
        }
        env.run(&args)
    };
    ask(&alice, "write", "30m", None).code(5).stderr_has("a break-glass request needs a reason naming the emergency");
    ask(&alice, "admin", "30m", Some("INC-1")).code(5).stderr_has("no break-glass rule covers admin access to `demo`");
    ask(&alice, "write", "2h", Some("INC-1")).code(5).stderr_has("longer than the 1h");
    ask(&logged_in(&b, "mallory"), "write", "30m", Some("INC-1")).code(5).stderr_has("policy does not let mallory request");
    assert!(actions(&b.audit().await, "break_glass").is_empty(), "nothing was granted");

    // An ordinary request is never governed by the break-glass rule.
    let id = b.request("alice", "demo", "write", "30m", Some("release")).await;
    assert_eq!((id["status"].as_str(), id["rule"].as_str()), (Some("pending"), Some("demo-write")), "{id}");
    let ordinary = b.approve("bob", id["id"].as_i64().unwrap()).await.body["grant"]["id"].as_i64().unwrap();
    let bob = logged_in(&b, "bob");
    bob.run(&["review", &ordinary.to_string(), "--approve"]).code(2).stderr_has("was not break-glass");
    bob.run(&["review", "999", "--approve"]).code(2).stderr_has("grant 999 not found");
    bob.run(&["review", &ordinary.to_string()]).code(2).stderr_has("--approve, or --flag --comment TEXT");
    bob.run(&["review", &ordinary.to_string(), "--approve", "--flag"]).code(2);
    bob.run(&["review", "--approve"]).code(2);
    bob.run(&["review", "x", "--approve"]).code(2);
    // The API refuses an outcome it does not know, naming it.
    let bad = b.post("bob", &format!("/v1/grants/{ordinary}/review"), serde_json::json!({"outcome": "fine"})).await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_json"), "{:?}", bad.body);
    assert!(bad.message().contains("unknown variant `fine`, expected `approved` or `flagged`"), "{}", bad.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_glass_grant_is_reviewed_on_its_page_too() {
    use crate::common::web::{csrf, get, location, post, sign_in};
    let slack = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(&slack, dir.path()).await;
    let alice = logged_in(&b, "alice");
    break_glass(&alice);
    let path = "/requests/1";
    let (_, own) = sign_in(&b, b.token("alice"), path).await;
    let mine = get(&b, path, &own).await;
    assert!(mine.text.contains("not yet reviewed") && !mine.text.contains("Flag it"), "nobody reviews their own: {}", mine.text);
    let (_, bob) = sign_in(&b, b.token("bob"), path).await;
    let view = get(&b, path, &bob).await;
    assert!(view.text.contains("granted at once, without approval; not yet reviewed") && view.text.contains("Flag it"), "{}", view.text);
    assert!(!view.text.contains(">Approve<"), "nothing to approve: it was granted");
    let review = format!("{path}/review");
    let token = csrf(&view);
    assert_eq!(post(&b, &review, &bob, &[("csrf", "x"), ("outcome", "flagged"), ("text", "no")]).await.status, 403);
    let bare = post(&b, &review, &bob, &[("csrf", &token), ("outcome", "flagged")]).await;
    assert_eq!(bare.status, 400);
    assert!(bare.text.contains("needs --comment saying what was wrong"), "{}", bare.text);
    assert_eq!(post(&b, &review, &bob, &[("csrf", &token), ("outcome", "fine")]).await.status, 400);
    let done = post(&b, &review, &bob, &[("csrf", &token), ("outcome", "flagged"), ("text", "no incident on record")]).await;
    assert_eq!(location(&done), "/requests/1?said=reviewed");
    let shown = get(&b, "/requests/1?said=reviewed", &bob).await;
    assert!(
        shown.text.contains("Your review is recorded.") && shown.text.contains("flagged by bob: no incident on record"),
        "{}",
        shown.text
    );
    let audit = b.audit().await;
    let reviewed = &actions(&audit, "break_glass_reviewed")[0];
    assert_eq!((reviewed["actor"].as_str(), reviewed["detail"].as_str()), (Some("bob"), Some("flagged: no incident on record")));
    let again = post(&b, &review, &bob, &[("csrf", &token), ("outcome", "approved")]).await;
    assert_eq!(again.status, 409, "{}", again.text);
}
