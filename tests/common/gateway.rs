//! What the gateway tests share: a grant's gateway password (read, or
//! write approved by bob), pkt-lines as text and as bytes, and a bare
//! repository's refs read with git itself; and a broker opened again on a
//! data directory, for the start-up checks.

use crate::common::TestBroker;
use serde_json::json;
use std::path::Path;
use std::process::Command;

pub const ZERO: &str = "0000000000000000000000000000000000000000";

pub fn pkt_line(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

pub fn pkt_bytes(payload: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload.as_bytes());
    out
}

pub fn git_dir(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git").arg("--git-dir").arg(dir).args(args).env("GIT_CONFIG_GLOBAL", "/dev/null").output().unwrap()
}

pub fn rev(dir: &Path, name: &str) -> Option<String> {
    let out = git_dir(dir, &["rev-parse", "--verify", "-q", name]);
    out.status.success().then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
}

/// A read grant's gateway password for `user` on demo (auto-approved).
pub async fn read_password(b: &TestBroker, user: &str) -> String {
    let grant = b.request(user, "demo", "read", "1h", None).await["grant"]["id"].as_i64().unwrap();
    let cred = b.post(user, &format!("/v1/grants/{grant}/credentials"), json!({})).await;
    cred.body["password"].as_str().unwrap().to_string()
}

/// A write grant and a gateway password for `user` on demo (bob approves).
pub async fn write_password(b: &TestBroker, user: &str) -> (i64, String) {
    let id = b.request(user, "demo", "write", "1h", Some("work")).await["id"].as_i64().unwrap();
    let grant = b.approve("bob", id).await.body["grant"]["id"].as_i64().unwrap();
    let cred = b.post(user, &format!("/v1/grants/{grant}/credentials"), json!({})).await;
    (grant, cred.body["password"].as_str().unwrap().to_string())
}

/// The broker on `dir` opened again in-process: its error, if it refuses.
pub async fn open_again(dir: &Path) -> Result<(), String> {
    let config = crate::common::config_for(crate::common::POLICY, dir);
    jit::server::Broker::open(config)
        .await
        .map(drop)
        .map_err(|e| format!("{e}: {}", std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default()))
}
