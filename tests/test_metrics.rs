//! `GET /metrics`: what the broker counts (audit events by action, provider
//! and level; time to decision; HTTP answers by route; live grants; pending
//! revocations; notification backlog; the store's latency), and who may read it. A real
//! Prometheus scrapes it in `tests/heavy/test_prometheus_scrape.rs`.

use crate::common::{TestBroker, eventually};

/// The value of the sample `series` (name and labels exactly as written), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

async fn scrape(b: &TestBroker) -> String {
    let resp = reqwest::Client::new().get(format!("{}/metrics", b.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_events_decisions_answers_and_live_grants() {
    let b = TestBroker::start().await;
    // A write approved by bob, a read the policy grants, a write denied, and a request for nothing.
    let write = b.request("alice", "demo", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    assert_eq!(b.approve("bob", write).await.status, 200);
    b.request("alice", "demo", "read", "1h", None).await;
    let denied = b.request("dave", "demo", "write", "1h", Some("try")).await["id"].as_i64().unwrap();
    assert_eq!(b.post("bob", &format!("/v1/requests/{denied}/deny"), serde_json::json!({"reason": "no"})).await.status, 200);
    assert_eq!(b.get("alice", "/v1/requests/999").await.status, 404);

    // The counters follow the audit log: wait until it has reached the last event.
    let caught_up = |t: &String| {
        sample(t, "jit_request_decision_seconds_count{outcome=\"denied\"}") == Some(1.0)
            && sample(t, "jit_events_total{action=\"denied\",provider=\"none\",level=\"write\"}") == Some(1.0)
    };
    let text = eventually(|| scrape(&b), caught_up).await;
    let event =
        |action: &str, level: &str| sample(&text, &format!("jit_events_total{{action=\"{action}\",provider=\"none\",level=\"{level}\"}}"));
    assert_eq!(event("requested", "write"), Some(2.0), "{text}");
    assert_eq!(event("requested", "read"), Some(1.0));
    assert_eq!(event("granted", "write"), Some(1.0));
    assert_eq!(event("denied", "write"), Some(1.0));
    assert_eq!(sample(&text, "jit_request_decision_seconds_count{outcome=\"granted\"}"), Some(1.0));
    assert_eq!(sample(&text, "jit_request_decision_seconds_count{outcome=\"auto\"}"), Some(1.0));
    assert_eq!(sample(&text, "jit_live_grants{provider=\"none\",level=\"write\"}"), Some(1.0));
    assert_eq!(sample(&text, "jit_live_grants{provider=\"none\",level=\"read\"}"), Some(1.0));
    assert_eq!(sample(&text, "jit_revocations_pending"), Some(0.0));
    assert_eq!(sample(&text, "jit_long_polls"), Some(0.0), "none waits now");
    assert!(sample(&text, "jit_reaper_rounds_total").is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(sample(&text, "jit_http_requests_total{route=\"/v1/requests/{id}\",method=\"GET\",status=\"4xx\"}"), Some(1.0));
    assert!(sample(&text, "jit_http_requests_total{route=\"/v1/requests\",method=\"POST\",status=\"2xx\"}").is_some_and(|n| n >= 3.0));
    // Routes, never raw paths: the 999 typed above is nowhere.
    assert!(!text.contains("requests/999"), "{text}");
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_reads_and_writes_are_timed() {
    let b = TestBroker::start().await;
    let writes = |t: &str| sample(t, "jit_store_seconds_count{op=\"write\"}").unwrap_or(0.0);
    let reads = |t: &str| sample(t, "jit_store_seconds_count{op=\"read\"}").unwrap_or(0.0);
    let before = scrape(&b).await;
    assert!(writes(&before) >= 7.0, "the test's seven users were written: {before}");
    let id = b.request("alice", "demo", "write", "1h", Some("fix")).await["id"].as_i64().unwrap();
    assert_eq!(b.get("alice", &format!("/v1/requests/{id}")).await.status, 200);
    let after = scrape(&b).await;
    assert!(writes(&after) > writes(&before), "a request is a write:\n{before}\n{after}");
    assert!(reads(&after) > reads(&before), "reading it back is a read:\n{before}\n{after}");
    let sum = sample(&after, "jit_store_seconds_sum{op=\"write\"}").unwrap();
    assert!(sum > 0.0, "{after}");
    assert_eq!(
        sample(&after, "jit_store_seconds_bucket{le=\"+Inf\",op=\"write\"}"),
        Some(writes(&after)),
        "every write falls in some bucket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_metrics_from_only_an_admin_reads_metrics() {
    let b = TestBroker::start_with(&crate::common::POLICY.replace("[server]\n", "[server]\nmetrics_from = [\"10.0.0.0/8\"]\n")).await;
    let get = |token: Option<String>| {
        let url = format!("{}/metrics", b.url);
        async move {
            let mut req = reqwest::Client::new().get(url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(get(None).await, 401, "loopback is not among metrics_from here");
    assert_eq!(get(Some(b.token("alice").to_string())).await, 403);
    assert_eq!(get(Some(b.token("admin").to_string())).await, 200);
    let bad = jit::server::ServerConfig::from_toml(
        "[server]\nmetrics_from = [\"everyone\"]\n",
        std::path::Path::new("jit.toml"),
        Some("/nonexistent".into()),
    )
    .unwrap_err()
    .to_string();
    assert!(bad.contains("server.metrics_from"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_git_traffic_is_counted_both_ways() {
    let b = TestBroker::start_gateway("1h").await;
    let (alice, clone) = crate::common::alice_with_a_write_clone(&b).await;
    std::fs::write(clone.join("big.bin"), vec![7u8; 200_000]).unwrap();
    alice.git(&clone, &["add", "big.bin"]).success();
    alice.git(&clone, &["commit", "-q", "-m", "big"]).success();
    alice.git(&clone, &["push", "-q", "origin", "main"]).success();
    let text = scrape(&b).await;
    let received = sample(&text, "jit_git_bytes_total{direction=\"received\"}").unwrap_or(0.0);
    let sent = sample(&text, "jit_git_bytes_total{direction=\"sent\"}").unwrap_or(0.0);
    // The push's pack (the file compresses to about a kilobyte) came in; the clone's pack and every ref advertisement went out.
    assert!(received > 500.0, "{text}");
    assert!(sent > 500.0, "{text}");
}
