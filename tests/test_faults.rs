//! The "never hangs" promises under real faults: a broker that accepts and
//! never answers (stopped with SIGSTOP), a D-Bus that never replies, no keyring to keep a secret in,
//! a broker killed while a CLI waits on it.

use std::time::{Duration, Instant};

use crate::common::{Spawned, TestBroker, TestEnvironment, cli_env, spawn_broker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_never_answers_costs_git_five_seconds_not_forever() {
    // A broker process stopped with SIGSTOP: the kernel still accepts
    // connections on its socket, and nothing ever answers them.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("jit.toml");
    std::fs::write(&config, crate::common::gateway_policy("1h").replace("{data_dir}", &data.display().to_string())).unwrap();
    crate::common::init_bare_repo(&data.join("repos/demo.git"));
    let root = crate::common::init_admin(&config, &data);
    let broker: Spawned = spawn_broker(&config, &data);
    let body = serde_json::json!({"name": "alice", "groups": ["developers"]});
    let (_, alice) = crate::common::call(&broker.url, &root, reqwest::Method::POST, "/v1/users", Some(body)).await;
    // Regression: a broker on port 0 named port 0 in its clone URLs.
    let (_, repos) = crate::common::call(&broker.url, &root, reqwest::Method::GET, "/v1/repos", None).await;
    let demo = repos.as_array().unwrap().iter().find(|r| r["name"] == "demo").unwrap();
    assert_eq!(demo["clone_url"], format!("{}/git/demo.git", broker.url));
    let env = TestEnvironment::new();
    env.secret(&root);
    env.login(&broker.url, alice["token"].as_str().unwrap()).success();
    env.run(&["setup"]).success();
    let url = url::Url::parse(&format!("{}/git/demo.git", broker.url)).unwrap();
    let input =
        format!("protocol=http\nhost={}:{}\npath={}\n", url.host_str().unwrap(), url.port().unwrap(), url.path().trim_start_matches('/'));
    let signal = |sig: &str| std::process::Command::new("sh").args(["-c", &format!("kill -{sig} {}", broker.child.id())]).status().unwrap();
    assert!(signal("STOP").success());
    let started = Instant::now();
    let run = env.run_helper("get", &input);
    let took = started.elapsed();
    signal("CONT");
    assert_eq!(run.code, 0, "git's helpers exit 0: {}", run.stderr);
    assert_eq!(run.stdout, "quit=1\n", "no credential");
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(8), "the helper waited {took:?} (its limit is 5 s)");
    assert!(run.stderr.starts_with("jit: "), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dbus_that_never_replies_is_a_clear_error_within_the_keychain_timeout() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bus");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let _silent = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let bus = format!("unix:path={}", socket.display());
    let extra = [("JIT_KEYRING", "secret-service"), ("DBUS_SESSION_BUS_ADDRESS", bus.as_str())];
    let started = Instant::now();
    let run = env.run_with(&["login", "--server", &b.url], &extra, Some(b.token("alice")));
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("secret-service keychain did not answer within 5s"), "{}", run.stderr);
    // And what to do about it.
    assert!(run.stderr.contains("unlock your keychain, or set JIT_KEYRING=keyutils"), "{}", run.stderr);
    assert!(took < Duration::from_secs(9), "login took {took:?} against a silent bus");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_keyring_to_keep_a_secret_in_prints_the_fix() {
    let b = TestBroker::start().await;
    let env = cli_env(&b);
    // A session keyring revoked under the process, so neither it nor the
    // persistent keyring (linked through it) can be used.
    let jit_path = env!("CARGO_BIN_EXE_jit");
    let script = format!("keyctl revoke @s >/dev/null && exec {jit_path} login --server {}", b.url);
    let mut cmd = std::process::Command::new("keyctl");
    cmd.env_clear().envs(&env.env).args(["session", "-", "sh", "-c", &script]);
    let out = assert_cmd::Command::from_std(cmd).write_stdin(b.token("alice")).timeout(Duration::from_secs(20)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    env.record_screen(&stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("keyctl session -") && stderr.contains("JIT_KEYRING=file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_during_a_wait_is_reported_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jit.toml");
    std::fs::write(&config, crate::common::POLICY).unwrap();
    let data = dir.path().join("data");
    let root = crate::common::init_admin(&config, &data);
    let mut broker: Spawned = spawn_broker(&config, &data);
    let (_, alice) = crate::common::call(
        &broker.url,
        &root,
        reqwest::Method::POST,
        "/v1/users",
        Some(serde_json::json!({"name": "alice", "groups": ["developers"]})),
    )
    .await;
    let env = TestEnvironment::new();
    env.secret(&root);
    env.secret(alice["token"].as_str().unwrap());
    env.login(&broker.url, alice["token"].as_str().unwrap()).success();
    let waiting = env.spawn_watched(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "x"]);
    waiting.until("waiting for approval");
    broker.kill();
    let started = Instant::now();
    let run = env.finish(waiting);
    assert!(started.elapsed() < Duration::from_secs(10), "the CLI kept waiting on a dead broker");
    run.code(1).stderr_has("cannot reach the broker").stderr_has("request #1 stays pending").stderr_has("jit wait 1");
}
