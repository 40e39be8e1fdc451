//! Benchmark: the broker at the limits of this machine, against baselines
//! measured in the same run.
//!
//! ```sh
//! cargo bench --bench broker_load            # the full run (~1 min)
//! cargo bench --bench broker_load -- --quick # CI's regression guard
//! cargo bench --bench broker_load -- --engines # only SQLite against PostgreSQL
//! JIT_BENCH_BASELINE=/path/to/older/jit cargo bench --bench broker_load
//!                                             # an earlier build first, in the same run
//! ```
//!
//! It starts the release `jit server` on loopback with SQLite, eight
//! developers and eight reviewers, and measures:
//! - full cycles (request → approve → mint a credential: three HTTP calls,
//!   three durable decisions) with 1 and 8 clients, against one durable
//!   4 KiB write (`fdatasync`) in the broker's data directory and one
//!   authenticated read (`GET /v1/whoami`);
//! - how fast a long-polling requester hears an approval (against how long
//!   the approve call itself takes to answer), alone and while 10,000 others
//!   long-poll one request; how long those 10,000 take to all
//!   be woken, and the broker's memory while it holds them and after.
//!
//! - in the full run, 8-client cycles on two fresh brokers, one without
//!   notifications and one whose webhook receiver accepts connections and
//!   never answers: delivery is off the decision's path, so the two match.
//!
//! Every loop is bounded in count and time; traffic goes to 127.0.0.1 only.
//! With `--quick` it runs shorter and exits 1 when cycles/s falls below a
//! tenth of the target (150/s), so CI catches a collapse, not noise.

mod common;
#[path = "broker_load/replicas.rs"]
mod replicas;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BrokerProcess, cpu_time, ms, percentile, status_kib};
use serde_json::{Value, json};

const TARGET_CYCLES_PER_SEC: f64 = 1500.0;

struct Settings {
    cycle_secs: u64,
    waiters: usize,
    approvals: usize,
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn call(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        self.call(token, reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, token: &str, path: &str) -> Value {
        self.call(token, reqwest::Method::GET, path, None).await
    }

    async fn request(&self, dev: &str) -> i64 {
        let r = self.post(dev, "/v1/requests", json!({"repo": "demo", "level": "write", "duration": "1h", "reason": "bench"})).await;
        r["id"].as_i64().expect("a request id")
    }

    /// One full cycle, as [`Api::cycle`], telling whether it went through instead of panicking.
    async fn try_cycle(&self, dev: &str, reviewer: &str) -> bool {
        let call = |token: &str, path: String, body: Value| {
            self.http.post(format!("{}{path}", self.url)).bearer_auth(token.to_string()).json(&body).send()
        };
        let Ok(r) = call(dev, "/v1/requests".into(), json!({"repo": "demo", "level": "write", "duration": "1h", "reason": "bench"})).await
        else {
            return false;
        };
        let Some(id) = r.json::<Value>().await.ok().and_then(|v| v["id"].as_i64()) else { return false };
        let Ok(r) = call(reviewer, format!("/v1/requests/{id}/approve"), json!({})).await else { return false };
        let Some(grant) = r.json::<Value>().await.ok().and_then(|v| v["grant"]["id"].as_i64()) else { return false };
        let Ok(r) = call(dev, format!("/v1/grants/{grant}/credentials"), json!({})).await else { return false };
        r.json::<Value>().await.ok().is_some_and(|v| v["password"].is_string())
    }

    /// One full cycle: request, approve, mint.
    async fn cycle(&self, dev: &str, reviewer: &str) {
        let id = self.request(dev).await;
        let approved = self.post(reviewer, &format!("/v1/requests/{id}/approve"), json!({})).await;
        let grant = approved["grant"]["id"].as_i64().expect("approved with a grant");
        let minted = self.post(dev, &format!("/v1/grants/{grant}/credentials"), json!({})).await;
        assert!(minted["password"].is_string());
    }
}

fn main() {
    if common::listing_only() {
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let only_engines = std::env::args().any(|a| a == "--engines");
    let mut settings = if quick {
        Settings { cycle_secs: 2, waiters: 500, approvals: 30 }
    } else {
        Settings { cycle_secs: 5, waiters: 10_000, approvals: 200 }
    };
    if let Ok(n) = std::env::var("JIT_BENCH_WAITERS") {
        settings.waiters = n.parse().expect("JIT_BENCH_WAITERS: a number");
    }
    // With a baseline binary (an earlier build), both are measured in this run, the baseline first.
    let mut binaries = Vec::new();
    if let Ok(baseline) = std::env::var("JIT_BENCH_BASELINE") {
        binaries.push(("baseline", std::path::PathBuf::from(baseline)));
    }
    binaries.push(("this build", std::path::PathBuf::from(env!("CARGO_BIN_EXE_jit"))));
    let mut passed = true;
    for (name, binary) in &binaries {
        if binaries.len() > 1 {
            println!("\n== {name}: {}", binary.display());
        }
        let dir = tempfile::tempdir().unwrap();
        let repos = dir.path().join("repos");
        std::fs::create_dir_all(&repos).unwrap();
        let init = std::process::Command::new("git").args(["init", "-q", "--bare"]).arg(repos.join("demo.git")).output().unwrap();
        assert!(init.status.success());
        let config = format!(
            "[server]\npending_ttl = \"1h\"\nmax_connections = {max}\nconnections_per_address = {max}\n\n\
             [gateway]\nrepos_dir = \"{repos}\"\n\n\
             [[rule]]\nname = \"write\"\nrepos = [\"demo\"]\nlevels = [\"write\"]\nrequesters = [\"group:developers\"]\n\
             approvers = [\"group:reviewers\"]\napprovals = 1\nmax_duration = \"8h\"\n",
            max = settings.waiters + 200,
            repos = repos.display()
        );
        if only_engines {
            replicas::engines_comparison(binary, &config, &settings);
            continue;
        }
        let broker = BrokerProcess::start_binary(binary, dir.path(), &config);
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        passed &= runtime.block_on(run(&broker, &settings, quick));
        drop(broker);
        if !quick {
            dead_receiver_comparison(binary, &config, settings.cycle_secs);
            replicas::engines_comparison(binary, &config, &settings);
        }
    }
    if !passed {
        std::process::exit(1);
    }
}

/// Eight developers and eight reviewers, their tokens.
async fn team(api: &Api, admin_token: &str) -> (Arc<Vec<String>>, Arc<Vec<String>>) {
    let mut devs = Vec::new();
    let mut reviewers = Vec::new();
    for n in 0..8 {
        for (prefix, group, into) in [("dev", "developers", &mut devs), ("rev", "reviewers", &mut reviewers)] {
            let body = json!({"name": format!("{prefix}{n}"), "groups": [group]});
            let user = api.post(admin_token, "/v1/users", body).await;
            into.push(user["token"].as_str().unwrap().to_string());
        }
    }
    (Arc::new(devs), Arc::new(reviewers))
}

/// 8-client cycles for `secs` on a broker of its own.
async fn cycles_on(broker: &BrokerProcess, secs: u64) -> LoadResult {
    let api = Api { http: reqwest::Client::new(), url: broker.url.clone() };
    let (devs, reviewers) = team(&api, &broker.admin_token).await;
    for _ in 0..20 {
        api.cycle(&devs[0], &reviewers[0]).await;
    }
    load(secs, 8, move |n| {
        let (api, devs, reviewers) = (api.clone(), devs.clone(), reviewers.clone());
        async move { api.cycle(&devs[n], &reviewers[n]).await }
    })
    .await
}

/// The same 8-client cycles with no notifications and with a webhook whose
/// receiver never answers, each on a fresh broker, in this run.
fn dead_receiver_comparison(binary: &std::path::Path, base_config: &str, secs: u64) {
    // A receiver that takes connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!();
    for (label, notify) in [("no notifications", false), ("a webhook receiver that never answers", true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config.to_string();
        if notify {
            use std::os::unix::fs::PermissionsExt;
            let secret = dir.path().join("webhook-secret");
            std::fs::write(&secret, "bench-secret-0123456789").unwrap();
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
            config.push_str(&format!(
                "\n[[notify]]\nname = \"dead\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret_file = \"{}\"\ntimeout = \"30s\"\n",
                secret.display()
            ));
        }
        let broker = BrokerProcess::start_binary(binary, dir.path(), &config);
        let cycles = runtime.block_on(cycles_on(&broker, secs));
        println!(
            "{:<58} {:>10.0}/s {:>8.3}ms {:>8.3}ms",
            format!("request → approve → mint, 8 clients, {label}"),
            cycles.rate,
            ms(cycles.p50),
            ms(cycles.p99)
        );
    }
}

async fn run(broker: &BrokerProcess, settings: &Settings, quick: bool) -> bool {
    let api = Api { http: reqwest::Client::new(), url: broker.url.clone() };
    let (devs, reviewers) = team(&api, &broker.admin_token).await;
    for _ in 0..20 {
        api.cycle(&devs[0], &reviewers[0]).await; // warm up
    }

    println!("jit broker on SQLite (synchronous=FULL), release build, loopback; {} s per load run", settings.cycle_secs);
    println!("{:<58} {:>12} {:>10} {:>10}", "", "rate", "p50", "p99");
    let fsync = fsync_floor(&broker.data);
    println!("{:<58} {:>12} {:>8.3}ms {:>8.3}ms", "floor: one 4 KiB write + fdatasync", "", ms(fsync.0), ms(fsync.1));
    let reads = load(settings.cycle_secs, 8, {
        let (api, devs) = (api.clone(), devs.clone());
        move |n| {
            let (api, devs) = (api.clone(), devs.clone());
            async move {
                api.get(&devs[n], "/v1/whoami").await;
            }
        }
    })
    .await;
    println!("{:<58} {:>10.0}/s {:>8.3}ms {:>8.3}ms", "baseline: GET /v1/whoami, 8 clients", reads.rate, ms(reads.p50), ms(reads.p99));

    let mut busiest_rate = 0.0;
    for clients in [1, 8] {
        let cpu_before = cpu_time(broker.pid());
        let clients_before = cpu_time(std::process::id());
        let cycles = load(settings.cycle_secs, clients, {
            let (api, devs, reviewers) = (api.clone(), devs.clone(), reviewers.clone());
            move |n| {
                let (api, devs, reviewers) = (api.clone(), devs.clone(), reviewers.clone());
                async move { api.cycle(&devs[n], &reviewers[n]).await }
            }
        })
        .await;
        let cpu_after = cpu_time(broker.pid());
        let clients_after = cpu_time(std::process::id());
        let (user, system) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
        // The clients share the machine's two cores with the broker: what they take is said too.
        let clients_cpu = (clients_after.0 + clients_after.1) - (clients_before.0 + clients_before.1);
        let per_cycle = |d: Duration| ms(d) / cycles.count as f64;
        println!(
            "{:<58} {:>10.0}/s {:>8.3}ms {:>8.3}ms",
            format!("request → approve → mint, {clients} client(s)"),
            cycles.rate,
            ms(cycles.p50),
            ms(cycles.p99)
        );
        println!(
            "{:<58} {:>12}",
            format!("  broker CPU per cycle: {:.2} ms user + {:.2} ms system", per_cycle(user), per_cycle(system)),
            format!("{:.2}x target", cycles.rate / TARGET_CYCLES_PER_SEC)
        );
        println!("{:<58}", format!("  the clients' own CPU per cycle (this process): {:.2} ms", per_cycle(clients_cpu)));
        busiest_rate = cycles.rate; // the 8-client run's, the headline figure
    }

    let (alone, call) = approval_latency(&api, &api, &devs[1], &reviewers[1], settings.approvals).await;
    println!("{:<58} {:>12} {:>8.3}ms {:>8.3}ms", "approve → long-polling requester returns", "", ms(alone.0), ms(alone.1));
    println!("{:<58} {:>12} {:>8.3}ms {:>8.3}ms", "  baseline: the approve call itself, to its answer", "", ms(call.0), ms(call.1));

    // Many long-polls on one request. The earlier runs' keep-alive
    // connections are closed first: the broker closing them while the waves
    // below count its descriptors would leave a wave short for ever.
    drop(api);
    let api = Api { http: reqwest::Client::new(), url: broker.url.clone() };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held_id = api.request(&devs[0]).await;
    let idle_kib = status_kib(broker.pid(), "VmRSS");
    let fds_before = open_fds(broker.pid());
    let waiters_http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut waiters = tokio::task::JoinSet::new();
    // They arrive in waves of 500, each held before the next comes.
    for wave in (0..settings.waiters).collect::<Vec<_>>().chunks(500) {
        for _ in wave {
            let (http, url, token) = (waiters_http.clone(), broker.url.clone(), devs[0].clone());
            waiters.spawn(async move {
                let resp = http.get(format!("{url}/v1/requests/{held_id}?wait=60s")).bearer_auth(token).send().await.expect("long-poll");
                let body: Value = resp.json().await.expect("a request");
                (Instant::now(), body["status"].as_str().unwrap_or("").to_string())
            });
        }
        // Held: the broker has a descriptor for each (give or take the few
        // it opens and closes for itself, which an exact count would wait on for ever).
        let deadline = Instant::now() + Duration::from_secs(10);
        while open_fds(broker.pid()) + FD_SLACK < fds_before + waiters.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // every request read and waiting
    let holding_kib = status_kib(broker.pid(), "VmRSS");

    let (busy, _) = approval_latency(&api, &api, &devs[1], &reviewers[1], settings.approvals).await;
    let approving = Instant::now();
    api.post(&reviewers[0], &format!("/v1/requests/{held_id}/approve"), json!({})).await;
    let mut last = approving;
    let mut woken = 0;
    while let Some(done) = waiters.join_next().await {
        let (at, status) = done.expect("a waiter");
        assert_eq!(status, "approved");
        last = last.max(at);
        woken += 1;
    }
    drop(waiters_http);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_kib = status_kib(broker.pid(), "VmRSS");
    println!(
        "{:<58} {:>12} {:>8.3}ms {:>8.3}ms",
        format!("approve → requester returns, {} others long-polling", settings.waiters),
        "",
        ms(busy.0),
        ms(busy.1)
    );
    println!("{:<58} {:>10.0}ms", format!("{woken} long-polls on one request: all woken after approve"), ms(last - approving));
    println!(
        "broker RSS: {:.1} MiB idle, {:.1} MiB holding {} long-polls, {:.1} MiB 2 s after they returned",
        idle_kib as f64 / 1024.0,
        holding_kib as f64 / 1024.0,
        settings.waiters,
        after_kib as f64 / 1024.0
    );
    if quick && busiest_rate < TARGET_CYCLES_PER_SEC / 10.0 {
        eprintln!("regression: {busiest_rate:.0} cycles/s with 8 clients is below a tenth of the target ({TARGET_CYCLES_PER_SEC}/s)");
        return false;
    }
    true
}

struct LoadResult {
    count: usize,
    rate: f64,
    p50: Duration,
    p99: Duration,
}

/// `clients` loops calling `op(client)` back to back for `secs` seconds.
async fn load<F, Fut>(secs: u64, clients: usize, op: F) -> LoadResult
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..clients {
        let op = op.clone();
        tasks.spawn(async move {
            let mut took = Vec::new();
            while Instant::now() < until && took.len() < 1_000_000 {
                let t = Instant::now();
                op(n).await;
                took.push(t.elapsed());
            }
            took
        });
    }
    let mut all = Vec::new();
    while let Some(took) = tasks.join_next().await {
        all.extend(took.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    LoadResult { count: all.len(), rate: all.len() as f64 / elapsed.as_secs_f64(), p50: percentile(&all, 0.5), p99: percentile(&all, 0.99) }
}

/// From the approve call's start to the long-polling requester's answer, and
/// to the approve call's own answer, `runs` times: (p50, p99) of each.
/// `api` requests and approves; the requester long-polls `waits_on` (the same broker, or another sharing its database).
async fn approval_latency(
    api: &Api,
    waits_on: &Api,
    dev: &str,
    reviewer: &str,
    runs: usize,
) -> ((Duration, Duration), (Duration, Duration)) {
    let mut took = Vec::with_capacity(runs);
    let mut calls = Vec::with_capacity(runs);
    for _ in 0..runs {
        let id = api.request(dev).await;
        let waiter = {
            let (api, dev) = (waits_on.clone(), dev.to_string());
            tokio::spawn(async move {
                let r = api.get(&dev, &format!("/v1/requests/{id}?wait=30s")).await;
                (Instant::now(), r["status"].as_str().unwrap_or("").to_string())
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await; // the long-poll is held
        let approving = Instant::now();
        api.post(reviewer, &format!("/v1/requests/{id}/approve"), json!({})).await;
        calls.push(approving.elapsed());
        let (returned, status) = waiter.await.unwrap();
        assert_eq!(status, "approved");
        took.push(returned.saturating_duration_since(approving));
    }
    took.sort();
    calls.sort();
    ((percentile(&took, 0.5), percentile(&took, 0.99)), (percentile(&calls, 0.5), percentile(&calls, 0.99)))
}

/// Median and p99 of one 4 KiB write + `fdatasync` in `dir` (200 times).
fn fsync_floor(dir: &std::path::Path) -> (Duration, Duration) {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = [7u8; 4096];
    let mut took = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        file.write_all(&block).unwrap();
        file.sync_data().unwrap();
        took.push(t.elapsed());
    }
    std::fs::remove_file(path).unwrap();
    took.sort();
    (percentile(&took, 0.5), percentile(&took, 0.99))
}

/// How far the broker's descriptor count may fall short of one per waiter.
const FD_SLACK: usize = 32;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}
