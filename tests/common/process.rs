//! Brokers as separate processes (`jit server` on a config file), for tests
//! that kill them: a SIGKILL must not take the test process with it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::common::ChildGuard;

use serde_json::Value;

/// The `jit` binary, with no broker or token from the caller's environment.
pub fn jit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jit"));
    cmd.env_remove("JIT_SERVER").env_remove("JIT_TOKEN").env_remove("JIT_DATABASE_URL").env("NO_COLOR", "1");
    cmd
}

/// A broker process on a config file, its URL read from its log; killed
/// when dropped (none outlives a failing test) and its log then searched
/// for secrets.
pub struct Spawned {
    pub child: ChildGuard,
    pub url: String,
}

impl Spawned {
    /// SIGKILL: no graceful anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Initialises `data` with the first admin, `root`, and returns their token.
pub fn init_admin(config: &Path, data: &Path) -> String {
    let out =
        server_on(data).args(["server", "--init-admin", "root", "--config"]).arg(config).arg("--data-dir").arg(data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `jit` to run a broker on `data`: on PostgreSQL when the suite runs on it
/// (`JIT_DATABASE_URL`, one database per data directory).
pub fn server_on(data: &Path) -> std::process::Command {
    let mut command = jit();
    if crate::common::postgres::enabled() {
        command.env("JIT_DATABASE_URL", crate::common::postgres::database_for(data));
    }
    command
}

pub fn spawn_broker(config: &Path, data: &Path) -> Spawned {
    spawn_broker_with(server_on(data), config, data)
}

/// `jit server` from `command` (with what environment it was given: a
/// database, say) on `config` and `data`, its URL read from its log.
pub fn spawn_broker_with(mut command: Command, config: &Path, data: &Path) -> Spawned {
    let child = command
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("JIT_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = ChildGuard::logged(child);
    let url = child.log().listening_url();
    Spawned { child, url }
}

/// A child's stderr, drained as it comes (so the child never blocks on a
/// full pipe) and kept, to wait on and to search for secrets.
pub struct StderrLog {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl StderrLog {
    pub fn read(child: &mut Child) -> StderrLog {
        let lines = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = text.clone();
        let reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        StderrLog { text, reader: Some(reader) }
    }

    /// The first line holding `needle` (waits at most 20 s).
    pub fn until(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(line) = self.text.lock().unwrap().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            assert!(std::time::Instant::now() < deadline, "never logged {needle:?}: {}", self.text.lock().unwrap());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The URL a broker logs once it listens (`… url=https://127.0.0.1:PORT`),
    /// so a test can give it port 0 rather than pick a port another test may take.
    pub fn listening_url(&self) -> String {
        let line = self.until("url=");
        line[line.find("url=").unwrap() + 4..].split_whitespace().next().unwrap().trim_end_matches('/').to_string()
    }

    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Once the child is gone: everything it wrote, searched for secrets.
    pub fn check(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if !std::thread::panicking() {
            crate::common::logs::check(&self.text(), "a spawned broker's log");
        }
    }
}

/// One API call; a transport failure (the broker is gone) is `None`.
pub async fn try_call(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let mut req = http.request(method, format!("{url}{path}")).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.ok()?;
    Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// One API call to a broker that must answer.
pub async fn call(url: &str, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    try_call(&reqwest::Client::new(), url, token, method, path, body).await.expect("the broker answers")
}
