//! `jit login`, `logout`, `whoami`, and the keychain behind them.

use std::process::Command;

use crate::common::{TestBroker, cli_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_whoami_logout_round_trip_through_the_kernel_keyring() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success().stderr_has("Logged in").stderr_has("as alice").stderr_has("keyutils");
    // A new process finds the token: it is in the kernel keyring, not in memory.
    let who = env.run(&["whoami"]);
    who.success();
    assert!(who.stdout.starts_with("alice (groups: developers)"), "{}", who.stdout);
    let key = Command::new("keyctl").args(["search", "@s", "user", &format!("keyring:login@jit-{}", env.namespace)]).output().unwrap();
    assert!(key.status.success(), "no key in the session keyring: {}", String::from_utf8_lossy(&key.stderr));
    let json = env.run(&["whoami", "--json"]);
    assert_eq!(json.json()["user"]["name"], "alice");
    assert_eq!(json.json()["server"], b.url.as_str());
    // Nothing was written to disk in the clear.
    for entry in walk(env.root.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(!bytes.windows(b.token("alice").len()).any(|w| w == b.token("alice").as_bytes()), "token on disk in {}", entry.display());
    }
    env.run(&["logout"]).success().stderr_has("Logged out");
    env.run(&["whoami"]).code(5).stderr_has("not logged in").stderr_has("jit login");
    env.run(&["logout"]).success().stderr_has("Not logged in");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refuses_bad_tokens_and_stores_nothing() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let fake = "jit_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    env.secret(fake);
    env.run_with(&["login", "--server", &b.url], &[], Some(fake)).code(5).stderr_has("refused this token");
    env.run(&["whoami"]).code(5).stderr_has("not logged in");
    env.run_with(&["login", "--server", &b.url], &[], Some("  \n")).code(2).stderr_has("no token given");
    env.run_with(&["login", "--server", &b.url], &[], Some("two words")).code(2).stderr_has("whitespace");
    env.run_with(&["login"], &[], Some(b.token("alice"))).code(2).stderr_has("no broker URL").stderr_has("--server");
    env.run_with(&["login", "--server", "ftp://x"], &[], Some(b.token("alice"))).code(2).stderr_has("http or https");
    env.run_with(&["login", "--server", "http://127.0.0.1:9"], &[], Some(b.token("alice"))).code(1).stderr_has("cannot reach the broker");
    env.run_with(&["login", "--server", &b.url], &[("JIT_KEYRING", "memory")], Some(b.token("alice")))
        .code(2)
        .stderr_has("unknown JIT_KEYRING value `memory`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_overrides_the_stored_login_without_leaking_it() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    // JIT_TOKEN wins over the stored token.
    let who = env.run_with(&["whoami"], &[("JIT_TOKEN", b.token("bob"))], None);
    assert!(who.success().stdout.starts_with("bob"), "{}", who.stdout);
    // JIT_SERVER and JIT_TOKEN together need no login at all.
    let fresh = cli_env(&b);
    let who = fresh.run_with(&["whoami"], &[("JIT_SERVER", &b.url), ("JIT_TOKEN", b.token("carol"))], None);
    assert!(who.success().stdout.starts_with("carol"));
    // JIT_SERVER pointing elsewhere never receives the stored token.
    let other = TestBroker::start().await;
    env.run_with(&["whoami"], &[("JIT_SERVER", &other.url)], None).code(5).stderr_has("never sent to another server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_fallback_is_explicit_warned_and_private() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let run = env.run_with(&["login", "--server", &b.url], &[("JIT_KEYRING", "file")], Some(b.token("dave")));
    run.success().stderr_has("warning: JIT_KEYRING=file").stderr_has("0600");
    let path = env.data_dir().join("jit").join("secrets.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let who = env.run_with(&["whoami"], &[("JIT_KEYRING", "file")], None);
    assert!(who.success().stdout.starts_with("dave"));
    // Another backend does not see it: there is no silent fallback between stores.
    env.run(&["whoami"]).code(5);
    env.run_with(&["logout"], &[("JIT_KEYRING", "file")], None).success();
    env.run_with(&["whoami"], &[("JIT_KEYRING", "file")], None).code(5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_secret_service_is_a_clear_error_not_a_hang() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let started = std::time::Instant::now();
    let run = env.run_with(
        &["login", "--server", &b.url],
        &[("JIT_KEYRING", "secret-service"), ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")],
        Some(b.token("alice")),
    );
    run.code(1).stderr_has("secret-service keychain");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_says_whose_it_replaces_and_git_answers_only_for_the_right_person() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    env.run(&["setup"]).success();
    env.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    let work = env.work_dir();
    env.git(&work, &["clone", &b.demo_url(), "demo"]).success();
    let repo = work.join("demo");

    // A shell with someone else's JIT_TOKEN is never answered with alice's credential.
    let as_bob = [("JIT_TOKEN", b.token("bob"))];
    let fetch = env.git_with(&repo, &["fetch", "origin"], &as_bob);
    assert_ne!(fetch.code, 0, "bob's shell fetched with alice's credential");
    assert!(fetch.stderr.contains("jit: you have no grant on demo"), "{}", fetch.stderr);
    env.git(&repo, &["fetch", "origin"]).success();

    // bob logs in on the same machine: he is told whose login he replaces.
    let replaced = env.login(&b.url, b.token("bob"));
    replaced.success();
    assert!(replaced.stderr.contains(&format!("replacing alice's login at {}", b.url)), "{}", replaced.stderr);
    assert!(replaced.stderr.contains("1 cached git credential(s) of that login removed"), "{}", replaced.stderr);
    // git now answers for bob, who has no grant: said as that, never as alice's grant having ended.
    let fetch = env.git(&repo, &["fetch", "origin"]);
    assert_ne!(fetch.code, 0);
    assert!(fetch.stderr.contains("jit: you have no grant on demo"), "{}", fetch.stderr);
    assert!(!fetch.stderr.contains("ended"), "{}", fetch.stderr);
    // alice back: her live grant is found at the broker and git works again.
    let back = env.login(&b.url, b.token("alice"));
    back.success();
    assert!(back.stderr.contains("replacing bob's login"), "{}", back.stderr);
    env.git(&repo, &["fetch", "origin"]).success();
    // The same person logging in again replaces nobody, and keeps the cache.
    let again = env.run_with(&["login", "--server", &b.url, "--json"], &[], Some(b.token("alice"))).success().json();
    assert_eq!(again["replaced"], serde_json::Value::Null);
}
