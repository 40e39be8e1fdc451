//! The broker's API fuzzed from its own description: Schemathesis (PyPI,
//! pinned in `contract/requirements.txt`, installed by
//! `scripts/contract-tools`) reads `/v1/openapi.json` from a live broker and
//! sends a bounded, seeded set of generated requests — examples, the
//! description's edge cases and random ones, valid and invalid, with and
//! without a token — then checks every answer: no 5xx, every status code
//! and body as described, invalid input refused, valid input accepted.

use std::process::{Command, Stdio};

use crate::common::{TestBroker, gateway_policy};

/// Generated cases per operation and phase: enough to reach every
/// parameter's edges, few enough for CI (about 15 s a run here).
const EXAMPLES_PER_OPERATION: &str = "25";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_in_the_api() {
    let _turn = crate::common::MACHINE.lock().await;
    let st = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contract/.venv/bin/st");
    assert!(st.exists(), "Schemathesis is not installed: run scripts/contract-tools (scripts/test does)");
    // Generated wrong tokens are failed logins: a limit high enough that the
    // run tests the handlers, not only the guard in front of them (whose 429
    // the description also lists); and long-polls held a second, not a minute.
    let policy = gateway_policy("1h").replacen("[server]\n", "[server]\nauth_failures_per_minute = 1000000\nmax_wait = \"1s\"\n", 1);
    let b = TestBroker::start_with(&policy).await;
    // Something to find behind the ids the generator tries first: a grant
    // (request 1, approved) and a pending request (2).
    let first = b.request("alice", "demo", "write", "1h", Some("fuzzing")).await;
    b.approve("bob", first["id"].as_i64().unwrap()).await;
    b.request("alice", "demo", "admin", "1h", Some("fuzzing")).await;

    let dir = tempfile::tempdir().unwrap();
    // One worker: with two, Hypothesis parses lambdas' source on two threads
    // at once, which CPython 3.11's `ast` does not survive ("AST constructor
    // recursion depth mismatch", a runtime error of the tool, not of the API).
    let out = Command::new(&st)
        .args(["run", &format!("{}/v1/openapi.json", b.url)])
        .args(["--checks", "all", "--max-examples", EXAMPLES_PER_OPERATION, "--seed", "20261206", "--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--header", &format!("Authorization: Bearer {}", b.token("admin"))])
        .args(["--max-failures", "100"])
        .env("NO_COLOR", "1")
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "Schemathesis found failures in the API:\n{report}");
    // It ran for real: every operation, and cases generated for them.
    let document: serde_json::Value = reqwest::get(format!("{}/v1/openapi.json", b.url)).await.unwrap().json().await.unwrap();
    let methods = ["get", "put", "post", "delete", "patch"];
    let operations: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().keys().filter(|k| methods.contains(&k.as_str())).count())
        .sum();
    // Every operation but the description's own address, which Schemathesis leaves out.
    let tested = operations - 1;
    assert!(report.contains(&format!("Tested: {tested}")), "{tested} of {operations} operations tested:\n{report}");
    let generated: usize = report.lines().find_map(|l| l.split_once(" generated").and_then(|(n, _)| n.trim().parse().ok())).unwrap_or(0);
    assert!(generated > 20 * tested, "{generated} cases for {tested} operations:\n{report}");
    eprintln!("{}", report.lines().skip_while(|l| !l.contains("SUMMARY")).collect::<Vec<_>>().join("\n"));
}
