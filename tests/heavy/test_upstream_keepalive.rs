//! The upstream proxy against a host that closes idle keep-alive connections
//! (an operator's first week, 1): lighttpd with a 2-second idle limit, and 30
//! ref listings spaced from 1.5 to 2.5 s apart, across that limit. Before the
//! proxy sent a request again on a fresh connection, about half of those
//! landing after the limit failed with "the host could not be reached".

use serde_json::json;

use crate::common::TestBroker;
use crate::common::upstream::TestUpstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_requests_across_a_two_second_idle_limit_all_pass() {
    let upstream = TestUpstream::start_with_idle_limit(&["acme/api"], 2);
    let b = TestBroker::start_with(&upstream.fronting_policy()).await;
    let grant = b.request("alice", "acme/api", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let minted = b.post("alice", &format!("/v1/grants/{grant}/credentials"), json!({})).await;
    let (user, password) = (minted.body["username"].as_str().unwrap().to_string(), minted.body["password"].as_str().unwrap().to_string());
    let url = format!("{}/git/acme/api.git/info/refs?service=git-upload-pack", b.url);
    // A new client each time, as each git command is: only the broker's
    // connections to the host are reused.
    let mut failed = Vec::new();
    for n in 0..30u64 {
        // The sleep is the contract: 1.5 s to 2.5 s, either side of the host's limit.
        tokio::time::sleep(std::time::Duration::from_millis(1500 + (n % 11) * 100)).await;
        let answer = reqwest::Client::new().get(&url).basic_auth(&user, Some(&password)).send().await.unwrap();
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        if status != 200 || !body.contains("refs/heads/main") {
            failed.push(format!("request {n}: {status} {}", body.lines().next().unwrap_or_default()));
        }
    }
    assert!(failed.is_empty(), "{} of 30 failed:\n{}", failed.len(), failed.join("\n"));
    let upstream_failures = b.audit().await.into_iter().filter(|e| e["action"] == "git_upstream_failed").count();
    assert_eq!(upstream_failures, 0);
}
