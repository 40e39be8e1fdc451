//! The engines side by side, and what losing a part costs (`--engines`, and
//! the full run): request → approve → mint cycles and approval wake-ups on
//! SQLite, on PostgreSQL with one broker, and with two brokers behind
//! haproxy (the config docs/operating.md shows); then, under load, the
//! database gone for 10 s, and one of two brokers killed.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{Api, Settings, approval_latency, load, team};
use crate::common::{BrokerProcess, ms, percentile};

/// A throwaway PostgreSQL cluster (`scripts/test-postgres`), stopped when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub url: String,
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test-postgres");

impl Cluster {
    pub fn start() -> Option<Cluster> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(SCRIPT).arg("start").arg(dir.path().join("pg")).output().ok()?;
        if !out.status.success() {
            eprintln!("PostgreSQL rows skipped: {}", String::from_utf8_lossy(&out.stderr).trim());
            return None;
        }
        Some(Cluster { url: String::from_utf8(out.stdout).unwrap().trim().to_string(), dir })
    }

    /// A new database's URL.
    pub fn database(&self, name: &str) -> String {
        let out = std::process::Command::new("psql").arg(&self.url).args(["-qc", &format!("CREATE DATABASE {name}")]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        self.url.replace("/postgres", &format!("/{name}"))
    }

    fn control(&self, what: &str) {
        let out = std::process::Command::new(SCRIPT).arg(what).arg(self.dir.path().join("pg")).output().unwrap();
        assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(SCRIPT).arg("stop").arg(self.dir.path().join("pg")).output();
    }
}

/// haproxy with docs/operating.md's config, in front of `backends`; killed when dropped.
struct Balancer {
    child: std::process::Child,
    url: String,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn balancer(dir: &Path, backends: &[&str]) -> Option<Balancer> {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operating.md")).unwrap();
    let block = docs.split("<!-- haproxy:begin -->").nth(1)?.split("<!-- haproxy:end -->").next()?;
    let port = crate::common::free_port();
    let mut config: Vec<String> = block
        .trim()
        .trim_matches('`')
        .lines()
        .filter(|l| !l.trim_start().starts_with("server "))
        .map(|l| l.replace("bind 127.0.0.1:8400", &format!("bind 127.0.0.1:{port}")))
        .collect();
    for (i, url) in backends.iter().enumerate() {
        config.push(format!("    server r{i} {} check", url.trim_start_matches("http://")));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config.join("\n") + "\n").unwrap();
    let child = match std::process::Command::new("haproxy").arg("-db").arg("-f").arg(&path).stdout(std::process::Stdio::null()).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("two-broker rows skipped: haproxy: {e}");
            return None;
        }
    };
    crate::common::wait_for_port(port);
    // Every broker found healthy before the load starts.
    std::thread::sleep(Duration::from_millis(800));
    Some(Balancer { child, url: format!("http://127.0.0.1:{port}") })
}

/// The brokers' config: the run's, with the balancer trusted and one audit key.
fn replica_config(config: &str, dir: &Path) -> String {
    let key = dir.join("audit.key");
    std::fs::write(&key, hex::encode([9u8; 32])).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    config.replacen("[server]\n", &format!("[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\naudit_key_file = \"{}\"\n", key.display()), 1)
}

pub fn engines_comparison(binary: &Path, config: &str, settings: &Settings) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let cluster = Cluster::start();
    println!();
    println!("{:<58} {:>12} {:>10} {:>10}", "the engines, in this run", "rate", "p50", "p99");
    let row = |label: String, rate: f64, p50: Duration, p99: Duration| {
        println!("{label:<58} {rate:>10.0}/s {:>8.3}ms {:>8.3}ms", ms(p50), ms(p99));
    };
    let wake_row = |label: String, (p50, p99): (Duration, Duration)| {
        println!("{label:<58} {:>12} {:>8.3}ms {:>8.3}ms", "", ms(p50), ms(p99));
    };

    // SQLite, then PostgreSQL with one broker: each its own broker and database.
    let mut engines = vec![("SQLite", None)];
    if let Some(cluster) = &cluster {
        engines.push(("PostgreSQL, one broker", Some(cluster.database("bench_one"))));
    }
    for (label, url) in engines {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(&str, &str)> = url.as_deref().map(|u| vec![("JIT_DATABASE_URL", u)]).unwrap_or_default();
        let broker = BrokerProcess::start_binary_with(binary, dir.path(), config, &env);
        let api = Api { http: reqwest::Client::new(), url: broker.url.clone() };
        let (cycles, wake) = runtime.block_on(async {
            let (devs, reviewers) = team(&api, &broker.admin_token).await;
            let cycles = cycle_load(&api, &devs, &reviewers, settings.cycle_secs).await;
            (cycles, approval_latency(&api, &api, &devs[1], &reviewers[1], settings.approvals).await.0)
        });
        row(format!("request → approve → mint, 8 clients, {label}"), cycles.rate, cycles.p50, cycles.p99);
        wake_row(format!("  approve → long-polling requester returns, {label}"), wake);
    }
    let Some(cluster) = cluster else { return };

    // Two brokers on one database behind haproxy.
    let dir = tempfile::tempdir().unwrap();
    let two = replica_config(config, dir.path());
    let url = cluster.database("bench_two");
    let env = [("JIT_DATABASE_URL", url.as_str())];
    let a = BrokerProcess::start_binary_with(binary, &dir.path().join("a"), &two, &env);
    let mut b = BrokerProcess::join(binary, &dir.path().join("b"), &two, &env, &a.admin_token);
    let Some(lb) = balancer(dir.path(), &[&a.url, &b.url]) else { return };
    let through = Api { http: reqwest::Client::new(), url: lb.url.clone() };
    let (on_a, on_b) = (Api { http: reqwest::Client::new(), url: a.url.clone() }, Api { http: reqwest::Client::new(), url: b.url.clone() });
    runtime.block_on(async {
        let (devs, reviewers) = team(&through, &a.admin_token).await;
        let cycles = cycle_load(&through, &devs, &reviewers, settings.cycle_secs).await;
        row("request → approve → mint, 8 clients, PostgreSQL, two behind haproxy".into(), cycles.rate, cycles.p50, cycles.p99);
        let wake = approval_latency(&on_b, &on_a, &devs[1], &reviewers[1], settings.approvals).await.0;
        wake_row("  approve on one broker → requester long-polling the other".into(), wake);

        // One of the two killed under load.
        println!();
        let killer = {
            let pid = b.pid();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
                Instant::now()
            })
        };
        let timeline = timed_cycles(&through, &devs, &reviewers, Duration::from_secs(9)).await;
        let killed_at = killer.await.unwrap();
        report_loss("one of two brokers killed (SIGKILL) at 3 s", "the kill", &timeline, killed_at, killed_at);
    });
    b.child.0.kill().ok();
    drop(lb);

    // The database gone for 10 s under load, on one broker.
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.database("bench_outage");
    let broker = BrokerProcess::start_binary_with(binary, dir.path(), config, &[("JIT_DATABASE_URL", url.as_str())]);
    let api = Api { http: reqwest::Client::new(), url: broker.url.clone() };
    runtime.block_on(async {
        let (devs, reviewers) = team(&api, &broker.admin_token).await;
        let cluster = std::sync::Arc::new(cluster);
        let outage = {
            let cluster = cluster.clone();
            tokio::task::spawn_blocking(move || {
                std::thread::sleep(Duration::from_secs(3));
                cluster.control("pause");
                let gone = Instant::now();
                std::thread::sleep(Duration::from_secs(10));
                cluster.control("resume");
                (gone, Instant::now())
            })
        };
        let health_during = {
            let url = broker.url.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(8)).await;
                reqwest::get(format!("{url}/healthz")).await.map(|r| r.status().as_u16()).unwrap_or(0)
            })
        };
        let timeline = timed_cycles(&api, &devs, &reviewers, Duration::from_secs(22)).await;
        let (gone, back) = outage.await.unwrap();
        report_loss("the database gone for 10 s (pg_ctl stop -m fast, then start)", "it was back", &timeline, gone, back);
        println!("  /healthz while it was gone: HTTP {}", health_during.await.unwrap());
    });
}

/// The 8-client cycles, warmed up first.
async fn cycle_load(
    api: &Api,
    devs: &std::sync::Arc<Vec<String>>,
    reviewers: &std::sync::Arc<Vec<String>>,
    secs: u64,
) -> super::LoadResult {
    for _ in 0..20 {
        api.cycle(&devs[0], &reviewers[0]).await;
    }
    load(secs, 8, {
        let (api, devs, reviewers) = (api.clone(), devs.clone(), reviewers.clone());
        move |n| {
            let (api, devs, reviewers) = (api.clone(), devs.clone(), reviewers.clone());
            async move { api.cycle(&devs[n], &reviewers[n]).await }
        }
    })
    .await
}

/// Each cycle's start, how long it took, and whether it succeeded, for `span`.
async fn timed_cycles(
    api: &Api,
    devs: &std::sync::Arc<Vec<String>>,
    reviewers: &std::sync::Arc<Vec<String>>,
    span: Duration,
) -> Vec<(Instant, Duration, bool)> {
    let until = Instant::now() + span;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..8 {
        let (api, dev, reviewer) = (api.clone(), devs[n].clone(), reviewers[n].clone());
        tasks.spawn(async move {
            let mut seen = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let ok = api.try_cycle(&dev, &reviewer).await;
                seen.push((t, t.elapsed(), ok));
                if !ok {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            seen
        });
    }
    let mut all = Vec::new();
    while let Some(seen) = tasks.join_next().await {
        all.extend(seen.unwrap());
    }
    all.sort_by_key(|(t, _, _)| *t);
    all
}

/// Cycles/s before `from` and after recovery, what failed, how fast failures
/// answered, and how long after `to` (`since`) the first cycle succeeded.
fn report_loss(what: &str, since: &str, timeline: &[(Instant, Duration, bool)], from: Instant, to: Instant) {
    let start = timeline.first().map(|(t, _, _)| *t).unwrap_or(from);
    let before = timeline.iter().filter(|(t, _, ok)| *t < from && *ok).count();
    let rate_before = before as f64 / (from - start).as_secs_f64().max(0.001);
    let mut failures: Vec<Duration> = timeline.iter().filter(|(_, _, ok)| !ok).map(|(_, d, _)| *d).collect();
    failures.sort();
    let recovered = timeline.iter().find(|(t, _, ok)| *t >= to && *ok).map(|(t, d, _)| (*t + *d).saturating_duration_since(to));
    let end = timeline.last().map(|(t, d, _)| *t + *d).unwrap_or(to);
    let after_from = to + recovered.unwrap_or_default();
    let after = timeline.iter().filter(|(t, _, ok)| *t >= after_from && *ok).count();
    let rate_after = after as f64 / (end.saturating_duration_since(after_from)).as_secs_f64().max(0.001);
    println!("{what}:");
    println!("  cycles/s before {rate_before:.0}, after {rate_after:.0}; {} cycles failed", failures.len());
    if !failures.is_empty() {
        println!(
            "  a failed cycle answered in {:.1} ms (p50), {:.1} ms (p99)",
            ms(percentile(&failures, 0.5)),
            ms(percentile(&failures, 0.99))
        );
    }
    match recovered {
        Some(d) => println!("  first full cycle {:.0} ms after {since}", ms(d)),
        None => println!("  no cycle succeeded afterwards"),
    }
}
