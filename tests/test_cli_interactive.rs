//! What a person sees at a terminal: the hidden token prompt, the approve
//! picker and its confirmation, and the waiting spinner, driven through a real
//! pseudo-terminal.

use rexpect::session::PtySession;

use crate::common::{TestBroker, TestEnvironment, cli_env};

fn terminal(env: &TestEnvironment, args: &[&str], extra: &[(&str, &str)]) -> PtySession {
    let mut cmd = env.command(args);
    cmd.envs(extra.iter().copied()).env("TERM", "xterm");
    rexpect::session::spawn_command(cmd, Some(20_000)).unwrap()
}

/// Reads to the end of the session and returns everything shown since the last expectation.
fn finish(mut session: PtySession) -> (String, String) {
    // A session that never ends is a failure (the prompt hung), not an empty screen.
    let rest = session.exp_eof().unwrap_or_else(|e| panic!("the command did not finish: {e}"));
    let status = format!("{:?}", session.process().wait().unwrap());
    (rest, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_asks_for_the_token_without_echoing_it() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let mut session = terminal(&env, &["login", "--server", &b.url], &[]);
    let before = session.exp_string("Token for").unwrap();
    crate::common::keys(&mut session, "-echo", &format!("{}\r", b.token("alice")));
    let shown = session.exp_string("Logged in").unwrap();
    let (rest, status) = finish(session);
    assert!(status.contains("Exited") && status.ends_with(", 0)"), "{status}");
    env.record_screen(&format!("{before}{shown}{rest}"));
    assert!(rest.contains("as alice"), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approve_picker_shows_details_and_asks_before_approving() {
    let b = TestBroker::start().await;
    b.request("alice", "demo", "write", "2h", Some("hotfix INC-42")).await;
    b.request("dave", "demo", "admin", "30m", Some("rotate deploy key")).await;
    let env = cli_env(&b);
    let bob = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("bob"))];

    // Declining changes nothing.
    let mut session = terminal(&env, &["approve"], &bob);
    session.exp_string("Which request?").unwrap();
    session.exp_string("hotfix INC-42").unwrap();
    crate::common::keys(&mut session, "-icanon", "\r");
    session.exp_string("Approve admin on demo for dave?").unwrap();
    crate::common::keys(&mut session, "-icanon", "n");
    let (rest, status) = finish(session);
    assert!(status.ends_with(", 4)"), "{status}: {rest}");
    assert_eq!(b.get("admin", "/v1/requests/2").await.body["status"], "pending");

    // Down to alice's request, see its details, confirm.
    let mut session = terminal(&env, &["approve", "--comment", "go ahead"], &bob);
    session.exp_string("Which request?").unwrap();
    session.exp_string("hotfix INC-42").unwrap();
    crate::common::keys(&mut session, "-icanon", "\x1b[B\r");
    let details = session.exp_string("Approve write on demo for alice?").unwrap();
    for line in ["requester: alice", "refs:      every ref", "for:       2h", "reason:    hotfix INC-42"] {
        assert!(details.contains(line), "{line} missing from:\n{details}");
    }
    crate::common::keys(&mut session, "-icanon", "y");
    session.exp_string("approved #1").unwrap();
    let (_, status) = finish(session);
    assert!(status.ends_with(", 0)"), "{status}");
    let req = b.get("alice", "/v1/requests/1").await.body;
    assert_eq!(req["status"], "approved");
    assert_eq!(req["approvals"][0]["comment"], "go ahead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spinner_says_who_can_approve_until_someone_does() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let alice = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("alice"))];
    let mut session = terminal(&env, &["request", "demo", "--level", "write", "--for", "1h", "--reason", "fix"], &alice);
    session.exp_string("Waiting for approval of #1 (group:reviewers, alice can approve)").unwrap();
    assert_eq!(b.approve("carol", 1).await.status, 200);
    session.exp_string("Approved by carol: write on demo until").unwrap();
    let (_, status) = finish(session);
    assert!(status.ends_with(", 0)"), "{status}");
}
