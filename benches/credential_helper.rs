//! Benchmark: the credential helper git runs (`git-credential-jit get`, the
//! small binary `jit setup` configures) for a cached credential, against
//! `git credential-store get`, in the same run, on the same machine; with
//! `jit credential get` (the full CLI, what it hands the slow path to) beside.
//!
//! Run it inside a session keyring (the kernel keyutils store needs one):
//!
//! ```sh
//! keyctl session - cargo bench --bench credential_helper
//! keyctl session - cargo bench --bench credential_helper -- --quick  # CI's guard
//! ```
//!
//! With `--quick` it runs fewer rounds and exits 1 when `git-credential-jit get`
//! takes more than 3x `git credential-store get` (a loose bound, so noise
//! cannot trip it; the target is 1x).
//!
//! It starts a real broker in-process with the demo repo behind its gateway,
//! logs in and requests read access with the real `jit` binary (so the
//! credential is in the kernel keyring and the local index, exactly as git
//! finds it), stores an equivalent credential with `git credential-store`,
//! then runs both helpers alternately and reports medians and the ratio.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use common::{percentile, us};
use jit::domain::token::ExposeSecret;
use jit::server::broker::NewUser;
use jit::server::{Broker, ServerConfig, launch_with_listener};

const RUNS: usize = 300;
const WARMUP: usize = 20;
/// CI's bound on the ratio of medians, in `--quick` mode.
const GUARD_RATIO: f64 = 3.0;

fn run(cmd: &mut Command, stdin: &str) -> (Duration, String) {
    let started = Instant::now();
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (elapsed, String::from_utf8(out.stdout).unwrap())
}

fn main() {
    if common::listing_only() {
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (runs, warmup) = if quick { (60, 5) } else { (RUNS, WARMUP) };
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let home = root.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let envs: Vec<(&str, String)> = vec![
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", home.display().to_string()),
        ("XDG_DATA_HOME", data.display().to_string()),
        ("GIT_CONFIG_GLOBAL", home.join(".gitconfig").display().to_string()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("JIT_KEYRING", "keyutils".into()),
        ("JIT_KEYRING_NAMESPACE", format!("bench-{}", std::process::id())),
    ];
    let jit = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jit"));
        c.env_clear().envs(envs.iter().map(|(k, v)| (*k, v.as_str()))).args(args);
        c
    };

    // A real broker with the demo repo behind its gateway.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let broker_dir = root.path().join("broker");
    let policy = format!(
        "[gateway]\nrepos_dir = \"{}/repos\"\n\n[[rule]]\nrepos = [\"demo\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"8h\"\n",
        broker_dir.display()
    );
    let mut config = ServerConfig::from_toml(&policy, Path::new("bench.toml"), Some(broker_dir.clone())).unwrap();
    std::fs::create_dir_all(config.gateway_dir().unwrap()).unwrap();
    jit::server::dev::create_demo_repo(&config).unwrap();
    let (url, token, _handle) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.listen = listener.local_addr().unwrap();
        let broker = Arc::new(Broker::open(config).await.unwrap());
        let alice = NewUser { name: "alice".into(), ..NewUser::default() };
        let (_, token) = broker.create_user("bench", alice, false, None).await.unwrap();
        let handle = launch_with_listener(broker, listener).await.unwrap();
        (handle.url(), token, handle)
    });

    let (_, out) = run(jit(&["login", "--server", &url]).stdout(Stdio::null()), token.expose_secret());
    drop(out);
    let login = jit(&["whoami"]).output().unwrap();
    if !login.status.success() {
        eprintln!("the keychain is not usable here: {}", String::from_utf8_lossy(&login.stderr));
        eprintln!("run inside a session keyring: keyctl session - cargo bench --bench credential_helper");
        std::process::exit(1);
    }
    let requested = jit(&["request", "demo", "--level", "read", "--for", "1h"]).output().unwrap();
    assert!(requested.status.success(), "{}", String::from_utf8_lossy(&requested.stderr));

    let host = url.trim_start_matches("http://");
    let query = format!("protocol=http\nhost={host}\npath=git/demo.git\n\n");
    let (_, answer) = run(&mut jit(&["credential", "get"]), &query);
    let password = answer.lines().find_map(|l| l.strip_prefix("password=")).expect("jit answers for the cached grant").to_string();

    // The baseline: git's plain-text store holding an equivalent credential.
    let store_file = root.path().join("git-credentials");
    let git_store = |op: &str| {
        let mut c = Command::new("git");
        c.env_clear().envs(envs.iter().map(|(k, v)| (*k, v.as_str()))).args(["credential-store", "--file"]).arg(&store_file).arg(op);
        c
    };
    run(&mut git_store("store"), &format!("protocol=http\nhost={host}\npath=git/demo.git\nusername=alice\npassword={password}\n\n"));
    let (_, baseline_answer) = run(&mut git_store("get"), &query);
    assert!(baseline_answer.contains(&password), "credential-store answers too");

    let helper = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_git-credential-jit"));
        c.env_clear().envs(envs.iter().map(|(k, v)| (*k, v.as_str()))).arg("get");
        c
    };
    let (mut helper_times, mut jit_times, mut store_times, mut spawn_times) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..warmup + runs {
        let (h, out) = run(&mut helper(), &query);
        assert!(out.contains(&password), "git-credential-jit answers from the cache");
        let (j, out) = run(&mut jit(&["credential", "get"]), &query);
        assert!(out.contains(&password));
        let (s, _) = run(&mut git_store("get"), &query);
        let (t, _) = run(&mut Command::new("true"), "");
        if i >= warmup {
            helper_times.push(h);
            jit_times.push(j);
            store_times.push(s);
            spawn_times.push(t);
        }
    }
    for v in [&mut helper_times, &mut jit_times, &mut store_times, &mut spawn_times] {
        v.sort();
    }
    let (hm, jm, sm, tm) =
        (percentile(&helper_times, 0.5), percentile(&jit_times, 0.5), percentile(&store_times, 0.5), percentile(&spawn_times, 0.5));
    println!("credential helper, cached credential, {runs} runs each (alternating, after {warmup} warm-up runs)");
    println!("{:<32} {:>10} {:>10} {:>10}", "", "median", "p10", "p90");
    for (name, v) in [
        ("git-credential-jit get", &helper_times),
        ("jit credential get (full CLI)", &jit_times),
        ("git credential-store get", &store_times),
        ("true (process spawn floor)", &spawn_times),
    ] {
        println!("{name:<32} {:>8.0}µs {:>8.0}µs {:>8.0}µs", us(percentile(v, 0.5)), us(percentile(v, 0.1)), us(percentile(v, 0.9)));
    }
    println!("ratio git-credential-jit / credential-store (medians): {:.2}x", us(hm) / us(sm));
    println!("ratio above the spawn floor:                          {:.2}x", (us(hm) - us(tm)) / (us(sm) - us(tm)));
    println!("ratio jit credential / credential-store (medians):    {:.2}x", us(jm) / us(sm));
    let _ = jit(&["logout"]).output();
    let ratio = us(hm) / us(sm);
    if quick && ratio > GUARD_RATIO {
        eprintln!("regression: git-credential-jit get takes {ratio:.2}x git credential-store get (the guard allows {GUARD_RATIO}x)");
        std::process::exit(1);
    }
}
