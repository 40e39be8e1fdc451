//! What people type, checked where it enters: hidden and direction-changing
//! characters never reach an approver, names that could confuse are refused
//! everywhere, a rule that could never pass stops start-up, and the
//! credential helper's URL key meets the same exact-match rules as its path.

use crate::common::{TestBroker, cli_env};
use serde_json::json;
use std::process::Command;

#[tokio::test]
async fn hidden_and_direction_changing_characters_never_reach_an_approver() {
    let b = TestBroker::start().await;
    for reason in ["fix \u{202E}gnp.exe", "zero\u{200B}width", "isolate\u{2066}x\u{2069}"] {
        let r = b.post("alice", "/v1/requests", json!({"repo": "demo", "level": "write", "duration": "1h", "reason": reason})).await;
        assert_eq!((r.status, r.code()), (400, "invalid_input"), "{reason:?}");
        assert!(r.message().contains("invisible or direction-changing character (U+"), "{}", r.message());
    }
    let id = b.request("alice", "demo", "write", "1h", Some("ok")).await["id"].as_i64().unwrap();
    let r = b.post("bob", &format!("/v1/requests/{id}/approve"), json!({"comment": "looks \u{202E}doog"})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    assert_eq!(b.get("alice", "/v1/requests?status=pending").await.body.as_array().unwrap().len(), 1, "nothing decided");
}

#[tokio::test]
async fn names_that_could_confuse_are_refused_everywhere() {
    let b = TestBroker::start().await;
    for name in [".", "..", ".hidden", "-rf", "a\nb", "broker"] {
        let r = b.post("admin", "/v1/users", json!({"name": name})).await;
        assert_eq!((r.status, r.code()), (400, "invalid_input"), "{name:?}: {}", r.body);
    }
    let r = b.post("admin", "/v1/users", json!({"name": "ok", "groups": [".."]})).await;
    assert_eq!(r.status, 400);
    // --init-admin goes through the same door.
    for name in ["..", "broker", "a b"] {
        let dir = tempfile::tempdir().unwrap();
        let out =
            Command::new(env!("CARGO_BIN_EXE_jit")).args(["server", "--init-admin", name, "--data-dir"]).arg(dir.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "no token printed for {name:?}");
    }
}

#[test]
fn a_rule_that_could_never_pass_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jit.toml");
    std::fs::write(
        &config,
        "[[repo]]\nname = \"x\"\n\n[[rule]]\nrepos = [\"x\"]\nlevels = [\"write\"]\nrequesters = [\"alice\"]\napprovers = [\"alice\"]\nmax_duration = \"1h\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_jit"))
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 4") && stderr.contains("alice may request but could never be approved"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helpers_url_key_gets_the_same_exact_match_rules_as_path() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    env.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    let host = b.url.trim_start_matches("http://");
    let exact = env.run_helper("get", &format!("url=http://{host}/git/demo.git\n\n"));
    let password = exact.stdout.lines().find_map(|l| l.strip_prefix("password=")).expect("the exact URL is answered").to_string();
    env.secret(&password);
    for url in [
        format!("http://{host}/git/x/../demo.git"),
        format!("http://{host}/git/./demo.git"),
        format!("http://{host}/git/%2e%2e/git/demo.git"),
        format!("http://{host}/git/demo.git?x=1"),
        format!("http://{host}/git/demo.git#x"),
        format!("http://@{host}/git/demo.git"),
        format!("http://{host}/git\\demo.git"),
        format!("http://{host}/git/demo/.git"),
    ] {
        let run = env.run_helper("get", &format!("url={url}\n\n"));
        assert_eq!((run.code, run.stdout.as_str()), (0, ""), "answered {url}");
    }
    let run = env.run_helper("get", &format!("protocol=http\nhost={host}\npath=git/demo/.git\n\n"));
    assert_eq!(run.stdout, "", "path=git/demo/.git is not demo.git");
}
