//! Hostile clients on the wire: connections that trickle headers, more of them
//! than the cap, from several addresses; the broker keeps answering `/healthz`
//! and serving git, and SIGTERM still ends it within its bound.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::common::{ChildGuard, POLICY, TestBroker, cli_env};

const LIMITS: &str = "max_connections = 24\nconnections_per_address = 8\nheader_timeout = \"1s\"\nshutdown_grace = \"1s\"\n";

/// A connection from `source` (another loopback address) that sends a request
/// head one byte at a time and never finishes it.
async fn trickler(source: &str, target: std::net::SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    let mut stream = tokio::time::timeout(Duration::from_secs(2), socket.connect(target)).await.ok()?.ok()?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await.ok()?;
    Some(stream)
}

/// Keeps each stream trickling a byte every 100 ms; counts those the broker closed.
async fn trickle(streams: &mut [TcpStream], for_: Duration) -> usize {
    let end = Instant::now() + for_;
    let mut closed = vec![false; streams.len()];
    while Instant::now() < end {
        for (i, s) in streams.iter_mut().enumerate() {
            if !closed[i] && s.write_all(b"a").await.is_err() {
                closed[i] = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    closed.iter().filter(|c| **c).count()
}

async fn healthz(url: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{url}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_clients_over_the_cap_leave_health_checks_and_git_working() {
    let policy = POLICY.replace("[server]\n", &format!("[server]\n{LIMITS}"));
    let b = TestBroker::start_with_repos(
        &policy.replace(
            "[[repo]]\nname = \"demo\"\nurl = \"http://127.0.0.1:9/git/demo.git\"\n",
            "[gateway]\nrepos_dir = \"{data_dir}/repos\"\n",
        ),
        &[],
    )
    .await;
    let target = b.handle.as_ref().unwrap().addr;
    // Five sources, eight connections each: 40 attempts at a cap of 24.
    let mut streams = Vec::new();
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"] {
        for _ in 0..8 {
            streams.extend(trickler(source, target).await);
        }
    }
    assert!(streams.len() >= 24, "the attack opened {}", streams.len());
    // At the cap, with every slot held by tricklers, /healthz still answers.
    assert_eq!(healthz(&b.url).await, 200, "healthz while held");
    // The header timeout ends every trickler, whatever it sends.
    let closed = trickle(&mut streams, Duration::from_millis(1600)).await;
    assert_eq!(closed, streams.len(), "connections that never finish a request head are closed");
    // And real git goes through.
    let alice = cli_env(&b);
    alice.login(&b.url, b.token("alice")).success();
    alice.run(&["setup"]).success();
    alice.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    alice.git(&alice.work_dir(), &["clone", &b.demo_url(), "demo"]).success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_broker_within_its_grace_while_clients_hold_connections() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jit.toml");
    std::fs::write(&config, POLICY.replace("[server]\n", &format!("[server]\n{LIMITS}"))).unwrap();
    // Port 0, read back from the log: a port picked beforehand could be taken by another test first.
    let child = Command::new(env!("CARGO_BIN_EXE_jit"))
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .env("JIT_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut broker = ChildGuard::logged(child);
    let url = broker.log().listening_url();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let started = Instant::now();
    while healthz(&url).await != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "the broker did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let target: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut streams = Vec::new();
    for source in ["127.0.0.2", "127.0.0.3"] {
        for _ in 0..8 {
            streams.extend(trickler(source, target).await);
        }
    }
    assert!(!streams.is_empty());
    let _ = Command::new("sh").args(["-c", &format!("kill -TERM {}", broker.id())]).status();
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = broker.try_wait().unwrap() {
            break status;
        }
        let _ = trickle(&mut streams, Duration::from_millis(300)).await;
        assert!(asked.elapsed() < Duration::from_secs(10), "SIGTERM did not end the broker within its 1 s grace (+ margin)");
    };
    assert_eq!(status.code(), Some(0));
    assert!(asked.elapsed() < Duration::from_secs(4), "took {:?}", asked.elapsed());
}
