//! The crash test: a broker process under load — requests, approvals,
//! denials, revocations, user removals, mints — killed with SIGKILL at random
//! moments, over and over. After every restart each decision the broker
//! acknowledged is there exactly once, and the audit chain verifies against its
//! signed checkpoint; at the end, grants that expired while the broker was
//! dead are ended by the reaper's catch-up, each with one `grant_expired`.
//!
//! The load's choices follow a seed (`JIT_CRASH_SEED` to replay another); the
//! kill moments are wall-clock, so each run crashes at different points.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use ed25519_dalek::VerifyingKey;
use jit::api;
use jit::domain::audit::{AuditEvent, GENESIS, parse_public_key, verify_against, verify_chain};

use crate::common::{Spawned, init_admin, init_bare_repo, spawn_broker, try_call};

/// How many times the broker is killed.
const KILLS: u32 = 100;

const POLICY: &str = r#"
[server]
pending_ttl = "1h"

[gateway]
repos_dir = "{data}/repos"
credential_ttl = "10m"

[[rule]]
name = "read"
repos = ["demo"]
levels = ["read"]
requesters = ["group:developers"]
auto_approve = true
max_duration = "8h"

[[rule]]
name = "write"
repos = ["demo"]
levels = ["write"]
requesters = ["group:developers"]
approvers = ["group:reviewers"]
approvals = 1
max_duration = "8h"
"#;

const DEVELOPERS: [&str; 3] = ["dev0", "dev1", "dev2"];
const REVIEWERS: [&str; 2] = ["bob", "carol"];

/// What the broker acknowledged (answered with success) before it died.
#[derive(Default)]
struct Ledger {
    /// request id → its unique reason
    created: BTreeMap<i64, String>,
    approved: BTreeSet<i64>,
    denied: BTreeSet<i64>,
    revoked: BTreeSet<i64>,
    removed: BTreeSet<String>,
    minted: u32,
}

impl Ledger {
    fn absorb(&mut self, round: Ledger) {
        self.created.extend(round.created);
        self.approved.extend(round.approved);
        self.denied.extend(round.denied);
        self.revoked.extend(round.revoked);
        self.removed.extend(round.removed);
        self.minted += round.minted;
    }
}

type Shared = Arc<Mutex<Ledger>>;

/// A small deterministic generator, so a failure can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len() as u64) as usize])
    }
}

/// One client's view of the broker: `None` once the broker is gone.
struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Option<(u16, Value)> {
        try_call(&self.http, &self.url, &self.token, method, path, body).await
    }
}

/// One HTTP client for the whole test: building one reads the system's
/// certificate store, far too slow to do per call.
fn client(http: &reqwest::Client, url: &str, token: &str) -> Client {
    Client { http: http.clone(), url: url.to_string(), token: token.to_string() }
}

/// A developer: asks for write (reviewed) and read (auto-approved) access for
/// short and long windows, mints credentials, revokes their own grants.
async fn developer(c: Client, name: &str, round: u32, ledger: Shared, mut rng: Rng) {
    for n in 0.. {
        let choice = rng.below(10);
        if choice < 6 {
            let level = if choice < 4 { "write" } else { "read" };
            let duration = *rng.pick(&["1s", "2s", "30m"]).unwrap();
            let reason = format!("r{round}.{name}.{n}");
            let body = json!({"repo": "demo", "level": level, "duration": duration, "reason": reason});
            let Some((status, req)) = c.call(Method::POST, "/v1/requests", Some(body)).await else { return };
            if status == 201 {
                ledger.lock().unwrap().created.insert(req["id"].as_i64().unwrap(), reason);
            }
            continue;
        }
        let Some((_, live)) = c.call(Method::GET, "/v1/grants?live=true", None).await else { return };
        let ids: Vec<i64> = live.as_array().map(|a| a.iter().filter_map(|g| g["id"].as_i64()).collect()).unwrap_or_default();
        let Some(&grant) = rng.pick(&ids) else { continue };
        if choice < 9 {
            let Some((status, _)) = c.call(Method::POST, &format!("/v1/grants/{grant}/credentials"), Some(json!({}))).await else {
                return;
            };
            if status == 201 {
                ledger.lock().unwrap().minted += 1;
            }
        } else {
            let Some((status, _)) = c.call(Method::POST, &format!("/v1/grants/{grant}/revoke"), Some(json!({}))).await else { return };
            if status == 200 {
                ledger.lock().unwrap().revoked.insert(grant);
            }
        }
    }
}

/// A reviewer: approves most pending write requests, denies some.
async fn reviewer(c: Client, ledger: Shared, mut rng: Rng) {
    loop {
        let Some((_, pending)) = c.call(Method::GET, "/v1/requests?reviewable=true&status=pending", None).await else { return };
        let ids: Vec<i64> = pending.as_array().map(|a| a.iter().filter_map(|r| r["id"].as_i64()).collect()).unwrap_or_default();
        let Some(&id) = rng.pick(&ids) else {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        };
        if rng.below(5) == 0 {
            let Some((status, _)) = c.call(Method::POST, &format!("/v1/requests/{id}/deny"), Some(json!({"reason": "not now"}))).await
            else {
                return;
            };
            if status == 200 {
                ledger.lock().unwrap().denied.insert(id);
            }
        } else {
            let Some((status, body)) = c.call(Method::POST, &format!("/v1/requests/{id}/approve"), Some(json!({}))).await else {
                return;
            };
            if status == 200 && body["status"] == "approved" {
                ledger.lock().unwrap().approved.insert(id);
            }
        }
    }
}

/// The admin: adds short-lived colleagues who get read access, then removes
/// most of them while their grants are live.
async fn admin(c: Client, round: u32, ledger: Shared, mut rng: Rng) {
    for n in 0.. {
        let name = format!("tmp{round}x{n}");
        let body = json!({"name": name, "groups": ["developers"]});
        let Some((status, user)) = c.call(Method::POST, "/v1/users", Some(body)).await else { return };
        assert_eq!(status, 201, "{user}");
        let colleague = client(&c.http, &c.url, user["token"].as_str().unwrap());
        let duration = *rng.pick(&["1s", "2s", "1h"]).unwrap();
        let body = json!({"repo": "demo", "level": "read", "duration": duration, "reason": format!("r{round}.{name}")});
        let Some((status, req)) = colleague.call(Method::POST, "/v1/requests", Some(body)).await else { return };
        if status == 201 {
            ledger.lock().unwrap().created.insert(req["id"].as_i64().unwrap(), format!("r{round}.{name}"));
        }
        if rng.below(4) != 0 {
            let Some((status, _)) = c.call(Method::DELETE, &format!("/v1/users/{name}"), None).await else { return };
            if status == 204 {
                ledger.lock().unwrap().removed.insert(name);
            }
        }
    }
}

async fn get(c: &Client, path: &str) -> Value {
    let (status, body) = c.call(Method::GET, path, None).await.expect("the restarted broker answers");
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The audit chain as far as the test has verified it.
struct VerifiedChain {
    seq: i64,
    hash: String,
    key: Option<VerifyingKey>,
}

/// After a restart: the events since the last restart extend the verified
/// chain, and the broker's latest signed checkpoint is exactly its head.
/// (The broker re-verifies the whole chain every tenth round.)
async fn extend_chain(root: &Client, chain: &mut VerifiedChain, round: u32) {
    // The checkpoint first: the reaper may append more while we read.
    let signed: api::AuditCheckpoint = serde_json::from_value(get(root, "/v1/audit/checkpoint").await).unwrap();
    let key = parse_public_key(&signed.public_key).unwrap();
    assert_eq!(*chain.key.get_or_insert(key), key, "after kill {round}: the signing key changed");
    let checkpoint = signed.checkpoint.expect("a log with events has a checkpoint");
    checkpoint.verify(&key).unwrap_or_else(|e| panic!("after kill {round}: {e}"));
    let mut new: Vec<AuditEvent> = vec![];
    loop {
        let after = new.last().map_or(chain.seq, |e| e.seq);
        let page: Vec<AuditEvent> = serde_json::from_value(get(root, &format!("/v1/audit?after={after}&limit=1000")).await).unwrap();
        if page.is_empty() {
            break;
        }
        new.extend(page);
    }
    verify_chain(&new, chain.seq + 1, &chain.hash).unwrap_or_else(|e| panic!("after kill {round}: {e}"));
    // The checkpoint is the head we verified last time, or one of the new events.
    assert!(checkpoint.seq >= chain.seq, "after kill {round}: the broker signed a head behind what it had before");
    if checkpoint.seq == chain.seq {
        assert_eq!(checkpoint.hash, chain.hash, "after kill {round}");
    } else {
        verify_against(&new, &checkpoint).unwrap_or_else(|e| panic!("after kill {round}: {e}"));
    }
    if let Some(last) = new.last() {
        (chain.seq, chain.hash) = (last.seq, last.hash.clone());
    }
}

/// After a restart: what the broker acknowledged in the round it died in is
/// there, one resource at a time.
async fn check_round(root: &Client, acknowledged: &Ledger, round: u32) {
    for (id, reason) in &acknowledged.created {
        let r = get(root, &format!("/v1/requests/{id}")).await;
        assert_eq!(r["reason"].as_str(), Some(reason.as_str()), "after kill {round}");
    }
    for id in &acknowledged.approved {
        let r = get(root, &format!("/v1/requests/{id}")).await;
        assert_eq!(r["status"], "approved", "after kill {round}: {r}");
        assert!(r["grant"]["id"].is_i64(), "after kill {round}: approved without a grant: {r}");
    }
    for id in &acknowledged.denied {
        assert_eq!(get(root, &format!("/v1/requests/{id}")).await["status"], "denied", "after kill {round}");
    }
    for id in &acknowledged.revoked {
        assert_eq!(get(root, &format!("/v1/grants/{id}")).await["status"], "revoked", "after kill {round}");
    }
    check_removed(root, acknowledged, round).await;
}

/// Removed users are gone, and so is every grant they held.
async fn check_removed(root: &Client, acknowledged: &Ledger, round: u32) {
    if acknowledged.removed.is_empty() {
        return;
    }
    let users = get(root, "/v1/users").await;
    for name in &acknowledged.removed {
        assert!(!users.as_array().unwrap().iter().any(|u| u["name"] == *name), "after kill {round}: removed user {name} is back");
        for (id, _) in acknowledged.created.iter().filter(|(_, reason)| reason.ends_with(&format!(".{name}"))) {
            let r = get(root, &format!("/v1/requests/{id}")).await;
            assert!(r["grant"].is_null() || r["grant"]["status"] == "revoked", "after kill {round}: a removed user's grant: {r}");
        }
    }
}

/// Everything acknowledged since the start is there, listed page by page, and
/// no request was stored twice (each has a unique reason).
async fn check_everything(root: &Client, ledger: &Ledger, round: u32) {
    let verify = get(root, "/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "after kill {round}: {verify}");
    let requests = get_all(root, "/v1/requests").await;
    let requests: BTreeMap<i64, &Value> = requests.iter().map(|r| (r["id"].as_i64().unwrap(), r)).collect();
    let mut reasons = BTreeMap::new();
    for r in requests.values() {
        *reasons.entry(r["reason"].as_str().unwrap_or_default()).or_insert(0) += 1;
    }
    assert!(reasons.iter().all(|(_, n)| *n == 1), "after kill {round}: a request was stored twice: {reasons:?}");
    // Acknowledged or not, no request is half-decided: approved exactly when it has a grant.
    for r in requests.values() {
        assert_eq!(r["status"] == "approved", r["grant"].is_object(), "after kill {round}: {r}");
    }
    for (id, reason) in &ledger.created {
        let r = requests.get(id).unwrap_or_else(|| panic!("after kill {round}: acknowledged request {id} is gone"));
        assert_eq!(r["reason"].as_str(), Some(reason.as_str()));
    }
    for id in &ledger.approved {
        assert_eq!(requests[id]["status"], "approved", "after kill {round}");
    }
    for id in &ledger.denied {
        assert_eq!(requests[id]["status"], "denied", "after kill {round}");
    }
    let grants = get_all(root, "/v1/grants?all=true").await;
    for id in &ledger.revoked {
        let g = grants.iter().find(|g| g["id"] == *id).unwrap_or_else(|| panic!("revoked grant {id} is gone"));
        assert_eq!(g["status"], "revoked", "after kill {round}: {g}");
    }
    for g in grants.iter().filter(|g| ledger.removed.contains(g["user"].as_str().unwrap())) {
        assert_eq!(g["status"], "revoked", "after kill {round}: a removed user's grant: {g}");
    }
}

/// Every page of a listing, following `Link: <?…>; rel="next"`.
async fn get_all(c: &Client, path: &str) -> Vec<Value> {
    let (mut items, mut next) = (vec![], Some(path.to_string()));
    while let Some(page) = next.take() {
        let resp = c.http.get(format!("{}{page}", c.url)).bearer_auth(&c.token).send().await.expect("the restarted broker answers");
        assert_eq!(resp.status(), 200, "{page}");
        let link = resp.headers().get("link").map(|l| l.to_str().unwrap().to_string());
        items.extend(resp.json::<Vec<Value>>().await.unwrap());
        if let Some(link) = link {
            let query = link.strip_prefix("<?").and_then(|l| l.strip_suffix(">; rel=\"next\"")).unwrap_or_else(|| panic!("{link}"));
            next = Some(format!("{}?{query}", path.split('?').next().unwrap()));
        }
    }
    items
}

async fn whole_audit_log(root: &Client) -> Vec<Value> {
    let mut events = vec![];
    loop {
        let after = events.last().map_or(0, |e: &Value| e["seq"].as_i64().unwrap());
        let page = get(root, &format!("/v1/audit?after={after}&limit=1000")).await;
        let page = page.as_array().unwrap();
        if page.is_empty() {
            return events;
        }
        events.extend(page.iter().cloned());
    }
}

/// How many events of `action` name each key (`request_id`, `grant_id` or `detail`).
fn count(events: &[Value], action: &str, key: &str) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for e in events.iter().filter(|e| e["action"] == action) {
        *counts.entry(e[key].to_string().trim_matches('"').to_string()).or_insert(0) += 1;
    }
    counts
}

/// The audit log records each acknowledged decision once, and nothing twice.
fn check_exactly_once(events: &[Value], ledger: &Ledger) {
    for (action, key) in [("requested", "request_id"), ("approved", "request_id"), ("granted", "request_id"), ("denied", "request_id")] {
        let counts = count(events, action, key);
        assert!(counts.values().all(|n| *n == 1), "some `{action}` was recorded twice: {counts:?}");
    }
    for action in ["revoked", "grant_expired"] {
        let counts = count(events, action, "grant_id");
        assert!(counts.values().all(|n| *n == 1), "some `{action}` was recorded twice: {counts:?}");
    }
    let removed = count(events, "user_removed", "detail");
    assert!(removed.values().all(|n| *n == 1), "{removed:?}");
    let has = |action: &str, key: &str, id: &str| count(events, action, key).get(id) == Some(&1);
    for id in ledger.created.keys() {
        assert!(has("requested", "request_id", &id.to_string()), "request {id} was never audited");
    }
    for id in &ledger.approved {
        assert!(has("approved", "request_id", &id.to_string()) && has("granted", "request_id", &id.to_string()), "approval of {id}");
    }
    for id in &ledger.denied {
        assert!(has("denied", "request_id", &id.to_string()), "denial of {id}");
    }
    for id in &ledger.revoked {
        assert!(has("revoked", "grant_id", &id.to_string()), "revocation of grant {id}");
    }
    for name in &ledger.removed {
        assert!(removed.get(name) == Some(&1), "removal of {name}");
    }
}

fn write_config(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("data");
    let config = dir.join("jit.toml");
    std::fs::write(&config, POLICY.replace("{data}", &data.display().to_string())).unwrap();
    init_bare_repo(&data.join("repos/demo.git"));
    (config, data)
}

async fn add_user(root: &Client, name: &str, group: &str) -> String {
    let (status, body) = root.call(Method::POST, "/v1/users", Some(json!({"name": name, "groups": [group]}))).await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_at_random_under_load_keeps_every_acknowledged_decision() {
    let _turn = crate::common::MACHINE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = write_config(dir.path());
    let root_token = init_admin(&config, &data);

    let http = reqwest::Client::new();
    let mut broker: Spawned = spawn_broker(&config, &data);
    let mut tokens = BTreeMap::new();
    {
        let root = client(&http, &broker.url, &root_token);
        for (names, group) in [(&DEVELOPERS[..], "developers"), (&REVIEWERS[..], "reviewers")] {
            for name in names {
                tokens.insert(*name, add_user(&root, name, group).await);
            }
        }
    }
    let (round_ledger, mut everything): (Shared, Ledger) = Default::default();
    let mut chain = VerifiedChain { seq: 0, hash: GENESIS.to_string(), key: None };
    let seed = std::env::var("JIT_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    let mut rng = Rng(seed);
    for round in 0..KILLS {
        let mut load = tokio::task::JoinSet::new();
        for name in DEVELOPERS {
            let rng = Rng(rng.below(u64::MAX) | 1);
            load.spawn(developer(client(&http, &broker.url, &tokens[name]), name, round, round_ledger.clone(), rng));
        }
        for name in REVIEWERS {
            load.spawn(reviewer(client(&http, &broker.url, &tokens[name]), round_ledger.clone(), Rng(rng.below(u64::MAX) | 1)));
        }
        load.spawn(admin(client(&http, &broker.url, &root_token), round, round_ledger.clone(), Rng(rng.below(u64::MAX) | 1)));

        // The kill comes from a thread of its own, on time however busy the load keeps this runtime.
        // PostgreSQL commits each decision alone (about a third of SQLite's
        // group-committed rate here), so its rounds live three times as long
        // to do as much between kills.
        let stretch = if crate::common::postgres::enabled() { 3 } else { 1 };
        let delay = Duration::from_millis((5 + rng.below(100)) * stretch);
        let mut victim = broker;
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            victim.kill();
        });
        while let Some(done) = load.join_next().await {
            done.expect("a load task panicked");
        }
        killer.join().unwrap();

        broker = spawn_broker(&config, &data);
        let root = client(&http, &broker.url, &root_token);
        let acknowledged = std::mem::take(&mut *round_ledger.lock().unwrap());
        extend_chain(&root, &mut chain, round).await;
        check_round(&root, &acknowledged, round).await;
        everything.absorb(acknowledged);
        if round % 10 == 9 {
            check_everything(&root, &everything, round).await;
        }
    }

    // Grants that end while the broker is dead are ended by the reaper's
    // catch-up after the restart, exactly once each.
    broker.kill();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let broker = spawn_broker(&config, &data);
    let root = client(&http, &broker.url, &root_token);
    let ended_by_time = |grants: &[Value]| -> BTreeSet<String> {
        let now = chrono::Utc::now();
        grants
            .iter()
            .filter(|g| {
                g["revoked_at"].is_null() && g["expires_at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap() < now
            })
            .map(|g| g["id"].to_string())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (events, expired) = loop {
        let expired = ended_by_time(&get_all(&root, "/v1/grants?all=true").await);
        let events = whole_audit_log(&root).await;
        let recorded: BTreeSet<String> = count(&events, "grant_expired", "grant_id").into_keys().collect();
        if expired.is_subset(&recorded) {
            break (events, expired);
        }
        assert!(std::time::Instant::now() < deadline, "the reaper never ended {:?}", expired.difference(&recorded).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ledger = everything;
    check_everything(&root, &ledger, KILLS).await;
    check_exactly_once(&events, &ledger);
    // Every approved request, acknowledged or not, was granted once in the log.
    let approved: BTreeSet<String> = get_all(&root, "/v1/requests?status=approved").await.iter().map(|r| r["id"].to_string()).collect();
    let granted: BTreeSet<String> = count(&events, "granted", "request_id").into_keys().collect();
    assert_eq!(approved, granted);
    let verify = get(&root, "/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    eprintln!(
        "crash test: {KILLS} kills; acknowledged {} requests, {} approvals, {} denials, {} revocations, {} removals, {} mints; {} grants expired; {} audit events",
        ledger.created.len(),
        ledger.approved.len(),
        ledger.denied.len(),
        ledger.revoked.len(),
        ledger.removed.len(),
        ledger.minted,
        expired.len(),
        events.len()
    );
    // Floors a loaded 2-core machine clears (each kind of decision several
    // times over); typical runs are 2-5x these.
    let did_enough = ledger.approved.len() >= 30
        && ledger.denied.len() >= 5
        && ledger.revoked.len() >= 10
        && ledger.removed.len() >= 5
        && ledger.minted >= 30
        && expired.len() >= 3;
    assert!(did_enough, "the load did too little to prove anything (see the counts above)");
}

/// A burst of concurrent requests is group-committed (many decisions in one
/// transaction); a SIGKILL in the middle of it loses none the broker
/// acknowledged, and the signed audit chain comes back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_during_a_group_committed_burst_keeps_every_acknowledged_decision() {
    const PER_DEVELOPER: usize = 80;
    const KILL_AFTER: usize = 60;
    let _turn = crate::common::MACHINE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, data) = write_config(dir.path());
    let root_token = init_admin(&config, &data);
    let http = reqwest::Client::new();
    let mut broker: Spawned = spawn_broker(&config, &data);
    let root = client(&http, &broker.url, &root_token);
    let mut developers = Vec::new();
    for name in DEVELOPERS {
        developers.push((name, add_user(&root, name, "developers").await));
    }

    // Three rounds: a kill lands between a batch's commit and its answers
    // only some of the time, so a broken promise shows in at least one.
    for round in 0..3 {
        let acknowledged: Arc<Mutex<Vec<(&str, i64)>>> = Arc::default();
        let mut burst = tokio::task::JoinSet::new();
        for (name, token) in &developers {
            for n in 0..PER_DEVELOPER {
                let (dev, name, acknowledged) = (client(&http, &broker.url, token), *name, acknowledged.clone());
                burst.spawn(async move {
                    let body = json!({"repo": "demo", "level": "write", "duration": "1h", "reason": format!("burst {n}")});
                    if let Some((201, created)) = dev.call(Method::POST, "/v1/requests", Some(body)).await {
                        acknowledged.lock().unwrap().push((name, created["id"].as_i64().unwrap()));
                    }
                });
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while acknowledged.lock().unwrap().len() < KILL_AFTER {
            assert!(std::time::Instant::now() < deadline, "the burst never got going");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        broker.kill();
        while burst.join_next().await.is_some() {}
        let acknowledged = acknowledged.lock().unwrap().clone();
        let sent = DEVELOPERS.len() * PER_DEVELOPER;
        assert!(acknowledged.len() < sent, "every request was answered before the kill: it proved nothing");
        let log = broker.child.log().text();
        let largest_batch = log
            .lines()
            .filter(|l| l.contains("group commit"))
            .filter_map(|l| l.split("jobs=").nth(1)?.split_whitespace().next()?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        // SQLite's writer group-commits; PostgreSQL commits each decision on its own connection.
        if !crate::common::postgres::enabled() {
            assert!(largest_batch > 1, "the burst was never group-committed (largest batch {largest_batch})");
        }

        broker = spawn_broker(&config, &data);
        let root = client(&http, &broker.url, &root_token);
        for (name, id) in &acknowledged {
            let request = get(&root, &format!("/v1/requests/{id}")).await;
            assert_eq!(request["requester"], *name, "acknowledged request {id} came back wrong: {request}");
        }
        let verify = get(&root, "/v1/audit/verify").await;
        assert_eq!(verify["ok"], true, "{verify}");
        eprintln!(
            "burst kill {round}: {} of {sent} requests acknowledged before the kill, every one kept; largest group commit {largest_batch} jobs",
            acknowledged.len()
        );
    }
}
