//! `jit policy check|explain`: a config tested before it ships, with the
//! broker's own code and no broker.

use crate::common::jit;

const CONFIG: &str = r#"[server]
data_dir = "{dir}/data"

[gateway]
repos_dir = "{dir}/repos"

[[repo]]
name = "acme/api"
url = "https://git.example.com/acme/api.git"

[[rule]]
name = "api-read"
repos = ["acme/*"]
levels = ["read"]
requesters = ["group:developers"]
auto_approve = true
max_duration = "8h"

[[rule]]
name = "api-write"
repos = ["acme/*"]
levels = ["write"]
requesters = ["group:developers"]
approvers = ["group:reviewers", "carol"]
approvals = 2
reason_required = true
max_duration = "4h"
refs = ["refs/heads/hotfix/*"]
from = ["10.0.0.0/8"]
"#;

fn write(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("repos")).unwrap();
    let path = dir.join("jit.toml");
    std::fs::write(&path, text.replace("{dir}", &dir.display().to_string())).unwrap();
    path
}

fn run(args: &[&str], config: &std::path::Path) -> (Option<i32>, String, String) {
    let out = jit().args(args).arg("--config").arg(config).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn check_says_whether_the_broker_would_start_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), CONFIG);
    let (code, out, _) = run(&["policy", "check"], &config);
    assert_eq!(code, Some(0));
    assert!(out.contains("the broker would start on it (2 rules, 1 repos"), "{out}");
    // Broken the ways the broker refuses: each is exit 2, naming the line.
    for (broken, says) in [
        // Two approvals from one possible approver: it could never be met.
        (CONFIG.replace("approvers = [\"group:reviewers\", \"carol\"]", "approvers = [\"carol\"]"), "line 19"),
        (CONFIG.replace("auto_approve = true", "auto_aprove = true"), "auto_aprove"),
        (CONFIG.replace("levels = [\"read\"]", "levels = [\"reed\"]"), "reed"),
        (CONFIG.replace("max_duration = \"4h\"", "max_duration = \"4 hours\""), "4 hours"),
    ] {
        let config = write(dir.path(), &broken);
        let (code, _, err) = run(&["policy", "check"], &config);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(says), "{says}: {err}");
    }
    let (code, _, err) = run(&["policy", "check"], &dir.path().join("missing.toml"));
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn explain_walks_the_rules_and_says_who_approves_what_and_for_how_long() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), CONFIG);
    let ask = |extra: &[&str]| {
        let mut args = vec!["policy", "explain", "--repo", "acme/api"];
        args.extend_from_slice(extra);
        run(&args, &config)
    };
    let (code, out, err) = ask(&["--user", "alice", "--group", "developers", "--level", "write", "--for", "2h", "--from", "10.1.2.3"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "write on acme/api for alice (groups: developers):",
            "  rule `api-read` (line 11): passed over: it does not grant this level here",
            "  rule `api-write` (line 19) applies",
            "    needs 2 approval(s) from group:reviewers, carol (never the requester's own)",
            "    at most 4h; a reason is required",
            "    refs: refs/heads/hotfix/*",
            "    used from: 10.0.0.0/8",
        ]
    );
    let (code, out, _) = ask(&["--user", "alice", "--group", "developers", "--level", "read"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("rule `api-read` (line 11) applies") && out.contains("approved at once (auto_approve)"), "{out}");
    // Too long, or from outside its networks: the rule refuses it (exit 5).
    let (code, _, err) = ask(&["--user", "alice", "--group", "developers", "--level", "write", "--for", "5h", "--from", "192.0.2.1"]);
    assert_eq!(code, Some(5));
    assert!(err.contains("5h is longer than the 4h it allows; 192.0.2.1 is outside its networks"), "{err}");
    // Nobody's rule: default deny, each rule passed over with its reason.
    let (code, out, _) = ask(&["--user", "mallory", "--level", "write"]);
    assert_eq!(code, Some(5));
    assert!(out.contains("rule `api-write` (line 19): passed over: this person is not among its requesters"), "{out}");
    assert!(out.contains("no rule applies: refused (default deny)"), "{out}");
    // Bad input is named by the flag.
    let (code, _, err) = ask(&["--user", "alice", "--level", "owner"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn test_checks_the_shipped_cases_against_the_dev_policy_and_names_each_that_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), &jit::server::dev::DEV_POLICY.replace("{data_dir}", "{dir}"));
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/dev-policy-cases.toml");
    let out = jit().args(["policy", "test", "--config"]).arg(&config).arg(&cases).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(said.lines().filter(|l| l.starts_with("ok ")).count(), 7, "{said}");

    // Expectations the policy does not meet: each named, exit 1.
    let wrong = std::fs::read_to_string(&cases)
        .unwrap()
        .replace("for = \"9h\"\nexpect = \"denied\"", "for = \"9h\"\nexpect = \"allowed\"")
        .replacen("approvers = [\"group:reviewers\"]", "approvers = [\"group:reviewers\", \"carol\"]", 1)
        .replace(
            "user = \"mallory\"\nrepo = \"demo\"\nlevel = \"read\"\nexpect = \"denied\"",
            "user = \"mallory\"\nrepo = \"demo\"\nlevel = \"read\"\nexpect = \"allowed\"",
        );
    let wrong_file = dir.path().join("wrong.toml");
    std::fs::write(&wrong_file, wrong).unwrap();
    let out = jit().args(["policy", "test", "--config"]).arg(&config).arg(&wrong_file).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("FAIL  case at line 15 (alice read on demo): expected allowed, got denied by rule `demo-read`: 9h is longer than the 8h it allows"), "{said}");
    assert!(
        said.contains(
            "FAIL  case at line 23 (alice write on demo): expected approvers to include carol; rule `demo-write` has group:reviewers"
        ),
        "{said}"
    );
    assert!(said.contains("FAIL  case at line 49 (mallory read on demo): expected allowed, got denied: no rule applies"), "{said}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 of 7 case(s) failed"));

    // A bad cases file is bad input.
    std::fs::write(&wrong_file, "[[case]]\nuser = \"alice\"\nrepo = \"demo\"\nlevel = \"read\"\nexpect = \"maybe\"\n").unwrap();
    let out = jit().args(["policy", "test", "--config"]).arg(&config).arg(&wrong_file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1: expect `maybe`"), "{}", String::from_utf8_lossy(&out.stderr));
}
