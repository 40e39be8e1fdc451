//! A real consumer of `/metrics`: Debian's Prometheus (installed by
//! `.ci/run`), run on the scrape config docs/operating.md shows (its target
//! swapped for a test broker), scrapes the broker and answers a query for
//! its series; the target is up with no scrape error, so the OpenMetrics
//! text parses as Prometheus reads it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{ChildGuard, TestBroker};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_broker_on_the_documented_config() {
    let b = TestBroker::start().await;
    let id = b.request("alice", "demo", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", id).await.status, 200);

    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operating.md")).unwrap();
    let block = docs.split("<!-- prometheus:begin -->").nth(1).and_then(|t| t.split("<!-- prometheus:end -->").next()).unwrap();
    let documented = block.trim().trim_start_matches("```yaml").trim_end_matches("```").trim();
    let target = b.url.trim_start_matches("http://");
    let config = documented.replace("jit.example.com:8420", target).replace("scrape_interval: 15s", "scrape_interval: 1s");
    assert!(config.contains(target), "the documented config scrapes jit.example.com:8420");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), &config).unwrap();
    let port = free_port();
    let child = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian: apt-get install prometheus; .ci/run installs it)");
    let _prometheus = ChildGuard::new(child);
    let api = format!("http://127.0.0.1:{port}/api/v1");
    let http = reqwest::Client::new();
    let query = |q: &'static str| {
        let (http, api) = (http.clone(), api.clone());
        async move {
            let resp = http.get(format!("{api}/query")).query(&[("query", q)]).send().await.ok()?;
            let body: serde_json::Value = resp.json().await.ok()?;
            body["data"]["result"].as_array().filter(|r| !r.is_empty()).cloned()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let granted = loop {
        if let Some(result) = query("jit_events_total{action=\"granted\",level=\"write\"}").await {
            break result;
        }
        assert!(Instant::now() < deadline, "Prometheus never had jit_events_total from {target}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(granted[0]["value"][1], "1", "{granted:?}");
    let up = query("up{job=\"jit\"}").await.unwrap();
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    let targets: serde_json::Value = http.get(format!("{api}/targets")).send().await.unwrap().json().await.unwrap();
    let active = &targets["data"]["activeTargets"][0];
    assert_eq!((active["health"].as_str(), active["lastError"].as_str()), (Some("up"), Some("")), "{active}");
    let decisions = query("jit_request_decision_seconds_count").await.unwrap();
    assert!(!decisions.is_empty());
}
