//! Brokers as separate processes (`jit server` on a config file), for tests
//! that kill them: a SIGKILL must not take the test process with it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The `jit` binary, with no broker or token from the caller's environment.
pub fn jit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jit"));
    cmd.env_remove("JIT_SERVER").env_remove("JIT_TOKEN").env("NO_COLOR", "1");
    cmd
}

/// A broker process on a config file, its URL read from its log. Killed when
/// dropped, so none outlives a failing test.
pub struct Spawned {
    pub child: Child,
    pub url: String,
}

impl Spawned {
    /// SIGKILL: no graceful anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn_broker(config: &Path, data: &Path) -> Spawned {
    let mut child = jit()
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("JIT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("broker logs its URL").unwrap();
        if let Some(i) = line.find("url=") {
            break line[i + 4..].split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining the log so the broker never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Spawned { child, url }
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
