//! The "never hangs" promises under real faults: a broker that accepts and
//! never answers, a D-Bus that never replies, no keyring to keep a secret in,
//! a broker killed while a CLI waits on it.

use std::time::{Duration, Instant};

use crate::common::{Spawned, TestBroker, TestEnvironment, cli_env, jit, spawn_broker};

/// A listener on `addr` that accepts every connection and never says a word.
/// It takes over a port just closed (SO_REUSEADDR, as servers do), so
/// connections of the broker there still in TIME_WAIT do not stop it.
fn silent_listener(addr: std::net::SocketAddr) -> std::thread::JoinHandle<()> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    let listener = socket.listen(64).unwrap().into_std().unwrap();
    listener.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_never_answers_costs_git_five_seconds_not_forever() {
    let mut b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    env.run(&["setup"]).success();
    let addr = b.handle.as_ref().unwrap().addr;
    let url = url::Url::parse(&b.demo_url()).unwrap();
    let input =
        format!("protocol=http\nhost={}:{}\npath={}\n", url.host_str().unwrap(), url.port().unwrap(), url.path().trim_start_matches('/'));
    b.handle.take().unwrap().shutdown().await.unwrap();
    let _silent = silent_listener(addr);
    let started = Instant::now();
    let run = env.run_helper("get", &input);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "git's helpers exit 0: {}", run.stderr);
    assert_eq!(run.stdout, "");
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
    let init = jit().args(["server", "--init-admin", "root", "--config"]).arg(&config).arg("--data-dir").arg(&data).output().unwrap();
    let root = String::from_utf8(init.stdout).unwrap().trim().to_string();
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
