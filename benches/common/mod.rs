//! What the benchmarks share: a real `jit server` process on loopback, the
//! children they start (killed however the benchmark ends), and reading a
//! process's memory and CPU from `/proc`.

#![allow(dead_code)] // each benchmark uses its own part of this

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child killed when the benchmark ends, however it ends.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cargo test --benches` probes benches with `--list`; nothing to list.
pub fn listing_only() -> bool {
    std::env::args().any(|a| a == "--list")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// User and system CPU time a process has used so far.
pub fn cpu_time(pid: u32) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at `state`.
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    let ticks = |i: usize| rest[i].parse::<u64>().unwrap();
    let hz = 100.0; // USER_HZ on Linux
    (Duration::from_secs_f64(ticks(11) as f64 / hz), Duration::from_secs_f64(ticks(12) as f64 / hz))
}

/// The value at quantile `q` (0..=1) of sorted samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The release `jit server` binary on a loopback port, with its admin's token.
pub struct BrokerProcess {
    pub child: Guard,
    pub url: String,
    pub admin_token: String,
    pub data: PathBuf,
}

impl BrokerProcess {
    /// Initialises a data directory under `dir` with an admin `root`, then
    /// serves `config` (TOML) from it.
    pub fn start(dir: &Path, config: &str) -> BrokerProcess {
        Self::start_binary(Path::new(env!("CARGO_BIN_EXE_jit")), dir, config)
    }

    /// As [`BrokerProcess::start`], with the `jit` binary at `jit` (a baseline build, say).
    pub fn start_binary(jit: &Path, dir: &Path, config: &str) -> BrokerProcess {
        Self::start_binary_with(jit, dir, config, &[])
    }

    /// As [`BrokerProcess::start_binary`], with `env` set for both runs of `jit server`.
    pub fn start_binary_with(jit: &Path, dir: &Path, config: &str, env: &[(&str, &str)]) -> BrokerProcess {
        std::fs::create_dir_all(dir).unwrap();
        let config_path = dir.join("jit.toml");
        std::fs::write(&config_path, config).unwrap();
        let init = Command::new(jit)
            .args(["server", "--init-admin", "root", "--config"])
            .arg(&config_path)
            .arg("--data-dir")
            .arg(dir.join("broker"))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
        let admin_token = String::from_utf8(init.stdout)
            .unwrap()
            .split_whitespace()
            .find(|w| w.starts_with("jit_"))
            .expect("the admin's token")
            .to_string();
        Self::join(jit, dir, config, env, &admin_token)
    }

    /// Another broker on `config` (its database given in `env`), on a data
    /// directory of its own under `dir`, with no admin of its own to make.
    pub fn join(jit: &Path, dir: &Path, config: &str, env: &[(&str, &str)], admin_token: &str) -> BrokerProcess {
        std::fs::create_dir_all(dir).unwrap();
        let config_path = dir.join("jit.toml");
        std::fs::write(&config_path, config).unwrap();
        let data = dir.join("broker");
        let port = free_port();
        let child = Guard(
            Command::new(jit)
                .args(["server", "--listen", &format!("127.0.0.1:{port}"), "--config"])
                .arg(&config_path)
                .arg("--data-dir")
                .arg(&data)
                // JIT_BENCH_LOG (e.g. `jit::store::sqlite::writer=debug`) to look inside a run.
                .env("JIT_LOG", std::env::var("JIT_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for_port(port);
        BrokerProcess { child, url: format!("http://127.0.0.1:{port}"), admin_token: admin_token.to_string(), data }
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }
}
