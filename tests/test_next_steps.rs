//! A new user follows the dev broker's printed next steps, exactly as
//! printed, in real terminals (bash in a pty) with `jit` on PATH, and ends
//! with a successful `git push`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use rexpect::session::{PtyReplSession, spawn_command};

use crate::common::{ChildGuard, TestEnvironment};

const PROMPT: &str = "JITSTEP$ ";

/// A bash in a pty with the sealed environment and `jit` on PATH.
fn terminal(env: &TestEnvironment) -> PtyReplSession {
    let jit_dir = std::path::Path::new(env!("CARGO_BIN_EXE_jit")).parent().unwrap().display().to_string();
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile"])
        .env_clear()
        .envs(&env.env)
        .env("PATH", format!("{jit_dir}:{}", env.env["PATH"]))
        .env("PS1", PROMPT)
        .env("TERM", "xterm")
        .env("INPUTRC", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.com")
        .current_dir(env.work_dir());
    let session = spawn_command(cmd, Some(60_000)).unwrap();
    let mut repl = PtyReplSession::new(session, PROMPT.to_string()).quit_command(Some("exit".into())).echo_on(false);
    repl.wait_for_prompt().unwrap();
    repl
}

/// Runs one printed line and checks it succeeded; returns what it showed.
fn step(env: &TestEnvironment, t: &mut PtyReplSession, line: &str) -> String {
    t.send_line(line).unwrap();
    let shown = t.wait_for_prompt().unwrap_or_else(|e| panic!("`{line}` did not finish: {e}"));
    t.send_line("echo \"rc=$?\"").unwrap();
    let rc = t.wait_for_prompt().unwrap();
    env.record_screen(&shown);
    assert!(rc.contains("rc=0"), "`{line}` failed:\n{shown}");
    shown
}

/// The command lines of the block that follows `heading`.
fn block<'a>(steps: &'a [String], heading: &str) -> Vec<&'a str> {
    steps.iter().skip_while(|l| !l.starts_with(heading)).skip(1).take_while(|l| l.starts_with("  ")).map(|l| l.trim_start()).collect()
}

#[test]
fn the_printed_next_steps_work_as_printed_up_to_git_push() {
    let env = TestEnvironment::new();
    let data = env.root.path().join("dev");
    let mut broker = Command::new(env!("CARGO_BIN_EXE_jit"))
        .args(["server", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("JIT_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(broker.stdout.take().unwrap()).lines();
    let _guard = ChildGuard::logged(broker);
    let mut steps = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let last = line.starts_with("Stop the broker");
        steps.push(line);
        if last {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    for user in ["alice", "bob", "admin"] {
        env.secret(std::fs::read_to_string(data.join("tokens").join(user)).unwrap().trim());
    }

    let alice_steps = block(&steps, "Next steps, in another terminal, as alice:");
    let bob_steps = block(&steps, "In a third terminal, as bob:");
    let admin_steps = block(&steps, "Then, as alice");
    assert_eq!((alice_steps.len(), bob_steps.len(), admin_steps.len()), (6, 1, 2), "{steps:#?}");

    let mut alice = terminal(&env);
    let (write_request, before) = alice_steps.split_last().unwrap();
    for line in before {
        step(&env, &mut alice, line);
    }
    // The write request waits for a reviewer.
    alice.send_line(write_request).unwrap();
    alice.exp_string("can approve)").unwrap();

    let mut bob = terminal(&env);
    bob.send_line(bob_steps[0]).unwrap();
    bob.exp_string("Which request?").unwrap();
    bob.exp_string("trying jit").unwrap();
    crate::common::keys(&mut bob, "-icanon", "\r");
    bob.exp_string("Approve write on demo for alice?").unwrap();
    crate::common::keys(&mut bob, "-icanon", "y");
    bob.exp_string("approved #").unwrap();
    bob.wait_for_prompt().unwrap();

    alice.exp_string("Approved by bob: write on demo").unwrap();
    alice.wait_for_prompt().unwrap();
    step(&env, &mut alice, "echo 'tried jit' >> README.md && git commit -qam 'try jit'");
    let pushed = step(&env, &mut alice, "git push");
    assert!(pushed.contains("main -> main"), "{pushed}");

    for line in admin_steps {
        step(&env, &mut bob, line);
    }
}
