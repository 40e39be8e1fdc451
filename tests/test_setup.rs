//! `jit setup [--uninstall]` on a real global git config, checked with real git.

use crate::common::{TestBroker, TestEnvironment, cli_env};

/// `git config --global --list`: the config's meaning, independent of layout.
fn meaning(env: &TestEnvironment) -> String {
    let run = env.git(&env.work_dir(), &["config", "--global", "--list"]);
    run.stdout
}

/// The helpers git runs for `url`, in order, read from GIT_TRACE.
fn helpers_run_for(env: &TestEnvironment, url: &str) -> Vec<String> {
    let input = format!("url={url}\n\n");
    let mut cmd = std::process::Command::new("git");
    cmd.env_clear().envs(&env.env).env("GIT_TRACE", "1").args(["credential", "fill"]).current_dir(env.work_dir());
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split_once("run_command: ").map(|(_, c)| c.to_string()))
        .filter(|c| c.contains(" get"))
        .map(|c| {
            if c.contains("jit") && c.contains("credential get") {
                "jit".to_string()
            } else {
                c.split("git-credential-")
                    .nth(1)
                    .or_else(|| c.split("git credential-").nth(1))
                    .unwrap_or(&c)
                    .trim_end_matches(" get'")
                    .trim_end_matches(" get")
                    .trim_matches('\'')
                    .to_string()
            }
        })
        .collect()
}

const EXISTING: &str = "[user]\n\tname = Alice\n[credential]\n\thelper = store\n[credential \"https://github.com\"]\n\thelper = cache\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_helpers_survive_after_jit_and_uninstall_restores_them() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    let config = env.home().join(".gitconfig");
    // The user already has a global helper, one scoped to another host, and one scoped to jit's host.
    let original = format!("{EXISTING}[credential \"{}\"]\n\thelper = cache --timeout=60\n", b.url);
    std::fs::write(&config, &original).unwrap();
    let before = meaning(&env);
    env.login(&b.url, b.token("alice")).success();

    env.run(&["setup"]).success();
    let after_once = std::fs::read_to_string(&config).unwrap();
    // For jit's host: jit first, then what the user had, in order (for a
    // path jit does not guard there).
    let unguarded = format!("{}/git/not-a-repo.git", b.url);
    assert_eq!(helpers_run_for(&env, &unguarded), ["jit", "store", "cache --timeout=60"]);
    // For a repo on jit's gateway, which nothing but jit opens, jit says what
    // to do and git stops there: no other helper, no username prompt.
    assert_eq!(helpers_run_for(&env, &b.demo_url()), ["jit"]);
    // github.com is guarded too (acme/api lives there): jit first, then the user's own.
    assert_eq!(helpers_run_for(&env, "https://github.com/acme/api.git"), ["jit", "store", "cache"]);
    // Hosts jit does not guard are untouched.
    assert_eq!(helpers_run_for(&env, "https://gitlab.com/acme/api.git"), ["store"]);
    assert!(meaning(&env).contains(&format!("credential.{}.usehttppath=true", b.url)));

    // Twice changes nothing.
    env.run(&["setup"]).success().stderr_has("already set up");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), after_once);

    env.run(&["setup", "--uninstall"]).success().stderr_has("restored");
    assert_eq!(meaning(&env), before);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original, "byte for byte, when nobody edited it since");
    assert_eq!(helpers_run_for(&env, &b.demo_url()), ["store", "cache --timeout=60"]);
    env.run(&["setup", "--uninstall"]).success().stderr_has("nothing to undo");
    assert_eq!(meaning(&env), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_on_an_empty_config_and_its_bad_inputs() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    // Not logged in: nothing to ask the broker, nothing written.
    env.run(&["setup"]).code(5).stderr_has("not logged in");
    assert!(!env.home().join(".gitconfig").exists() || std::fs::read_to_string(env.home().join(".gitconfig")).unwrap().is_empty());
    env.login(&b.url, b.token("alice")).success();
    let json = env.run(&["setup", "--json"]).success().json();
    assert_eq!(json["hosts"], serde_json::json!([b.url, "https://github.com"]));
    let helper = json["helper"].as_str().unwrap();
    // The small helper binary beside jit, which git runs with the operation appended.
    assert!(helper.starts_with('!') && helper.trim_end_matches('\'').ends_with(env!("CARGO_BIN_EXE_git-credential-jit")), "{helper}");
    assert_eq!(helpers_run_for(&env, &b.demo_url()), ["jit"]);
    env.run(&["setup", "--uninstall"]).success();
    assert_eq!(meaning(&env), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_each_part_and_names_the_fix() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    let checks = |run: &crate::common::Run| -> Vec<(String, bool, String)> {
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
        json.as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_string(), c["ok"].as_bool().unwrap(), c["detail"].as_str().unwrap().to_string()))
            .collect()
    };
    // Logged out: the machine's side passes, the login fails with its fix.
    let run = env.run(&["doctor", "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let found = checks(&run);
    let keychain = found.iter().find(|c| c.0 == "keychain").unwrap();
    assert!(keychain.1 && keychain.2.starts_with("keyutils (") && keychain.2.ends_with(", writable"), "{keychain:?}");
    assert!(found.iter().any(|c| c.0 == "git" && c.1), "{found:?}");
    assert!(found.iter().any(|c| c.0 == "login" && !c.1), "{found:?}");
    assert!(run.stdout.contains("jit login --server URL"), "{}", run.stdout);
    // Logged in and set up: every check passes.
    env.login(&b.url, b.token("alice")).success();
    env.run(&["setup"]).success();
    let run = env.run(&["doctor", "--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let found = checks(&run);
    assert!(found.iter().all(|c| c.1), "{found:?}");
    let names: Vec<&str> = found.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names[..5], ["keychain", "git", "broker", "clock", "token"]);
    assert!(found.iter().any(|c| c.0 == "token" && c.2 == "valid: you are alice"), "{found:?}");
    assert!(found.iter().any(|c| c.0 == "git config" && c.2 == format!("{}: jit answers first, with the repo path", b.url)), "{found:?}");
    // Without the helper in git's config, that check fails and says how to fix it.
    env.run(&["setup", "--uninstall"]).success();
    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains(&format!("✘ git config: {}: git does not ask jit first\n  fix: run `jit setup`", b.url)), "{}", run.stdout);
    assert!(run.stderr.contains("checks failed"), "{}", run.stderr);
}
