//! Hostile clients on the wire: connections that trickle headers, more of them
//! than the cap, from several addresses; the broker keeps answering `/healthz`
//! and serving git, and SIGTERM still ends it within its bound.

use crate::common::{ChildGuard, POLICY, TestBroker, cli_env};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

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

/// Writes a request head and part of its body, then waits for the broker to
/// answer or close: how long that took, or `None` past `limit`.
async fn held_for(url: &str, head: &str, body_part: &[u8], limit: std::time::Duration) -> Option<std::time::Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(url.trim_start_matches("http://")).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body_part).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    // Whatever the broker does first — answer or close — ends the hold.
    match tokio::time::timeout(limit, stream.read(&mut buf)).await {
        Ok(_) => Some(started.elapsed()),
        Err(_) => None,
    }
}

/// Regression (finding 6): git's probe path read its 4-byte body with no
/// timeout, so unauthenticated connections could be held open for nothing.
#[tokio::test]
async fn an_unauthenticated_probe_that_stops_is_not_waited_for() {
    let b = TestBroker::start_gateway("1h").await;
    let limit = std::time::Duration::from_secs(15);
    let probe = "POST /git/demo.git/git-receive-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: 4\r\n\r\n";
    let held = held_for(&b.url, probe, b"00", limit).await.expect("the probe's connection was held past 15 s");
    assert!(held <= std::time::Duration::from_secs(8), "unauthenticated: the shortest wait, {held:?}");
}

#[tokio::test]
async fn a_body_that_stops_coming_is_not_waited_for() {
    let policy = crate::common::gateway_policy("1h").replace("[server]\n", "[server]\nbody_idle_timeout = \"1s\"\n");
    let b = TestBroker::start_with(&policy).await;
    let limit = std::time::Duration::from_secs(15);
    // An API body that stops halfway (the idle limit here is 1 s).
    let token = b.token("alice").to_string();
    let api = format!(
        "POST /v1/requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    let held = held_for(&b.url, &api, b"{\"repo\": \"demo\",", limit).await.expect("a stalled body was waited for past 15 s");
    assert!(held <= std::time::Duration::from_secs(8), "{held:?}");
}

#[tokio::test]
async fn a_long_poll_is_held_no_longer_than_the_cap() {
    let b = TestBroker::start().await;
    let id = b.request("alice", "demo", "write", "1h", Some("x")).await["id"].as_i64().unwrap();
    // A broker holds a long-poll a minute at most; the test broker, a second.
    assert_eq!(jit::server::ServerConfig::new("/tmp".into()).max_wait, Duration::from_secs(60));
    let cap = Duration::from_secs(1);
    let started = Instant::now();
    let path = format!("/v1/requests/{id}?wait=3600s");
    let r = tokio::time::timeout(cap + Duration::from_secs(10), b.get("alice", &path)).await.expect("the cap did not hold");
    assert_eq!(r.body["status"], "pending");
    let held = started.elapsed();
    assert!(held >= cap && held < cap + Duration::from_secs(5), "held {held:?}");
}
