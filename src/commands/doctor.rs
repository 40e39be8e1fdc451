//! `jit doctor`: checks this machine's side, one line per check, each failure
//! with its fix: the keychain, git and what it supports, the helper's place in
//! git's config for each host the broker guards, the broker, the token, and
//! the clock against the broker's.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::api::Repo;
use crate::client::Client;
use crate::commands::args::JsonFlag;
use crate::domain::repo::CloneUrl;
use crate::error::{CommandError, ExitKind};
use crate::keychain::Keychain;
use crate::ui;

/// How far the local clock may be from the broker's before it matters: the
/// helper decides locally whether a cached credential is still fresh.
const MAX_SKEW_SECS: i64 = 5;

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check { name, ok: true, detail: detail.into(), fix: None }
}

fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name, ok: false, detail: detail.into(), fix: Some(fix.into()) }
}

fn check_keychain() -> Check {
    match Keychain::open().and_then(|k| k.check_writable().map(|_| k)) {
        Ok(k) => pass("keychain", format!("{}, writable", k.describe())),
        Err(e) => fail(
            "keychain",
            e.to_string(),
            e.hint().unwrap_or_else(|| "set JIT_KEYRING to a keychain this machine has (keyutils on headless Linux)".into()),
        ),
    }
}

fn check_git() -> Check {
    let Some(text) = crate::git::installed_version() else {
        return fail("git", "git is not on PATH", "install git 2.46 or later");
    };
    // Grants whose host takes only Bearer tokens (Bitbucket Data Center): unusable before 2.46.
    let bearer_only = crate::credcache::Index::load().bearer_repos();
    let needed_by = if bearer_only.is_empty() {
        String::new()
    } else {
        format!("; {} take(s) the credential only as a Bearer token, which needs it", bearer_only.join(", "))
    };
    match crate::git::parse_version(&text) {
        Some(v) if v >= crate::git::AUTHTYPE_VERSION => {
            pass("git", format!("{text}: password_expiry_utc, authtype and ephemeral credentials"))
        }
        Some(v) if v >= (2, 41) => fail(
            "git",
            format!("{text}: no ephemeral credentials or Bearer tokens (git 2.46){needed_by}"),
            "upgrade git; until then a storage helper after jit may keep the short-lived password, and Bearer-only hosts are reached through the broker's gateway",
        ),
        Some(_) => fail("git", format!("{text}: no password_expiry_utc (git 2.41){needed_by}"), "upgrade git to 2.46 or later"),
        None => fail("git", format!("cannot read `{text}`"), "install git 2.46 or later"),
    }
}

/// Whether git asks jit first for `host` (jit's helper right after a reset) with `useHttpPath`.
fn check_helper(host: &str) -> Check {
    let path = match crate::git::config::global_config_path() {
        Ok(p) => p,
        Err(e) => return fail("git config", e.to_string(), "set HOME or GIT_CONFIG_GLOBAL"),
    };
    let status = crate::git::config::helper_status(&path, host);
    match status {
        Ok(s) if s.jit_first && s.use_http_path => pass("git config", format!("{host}: jit answers first, with the repo path")),
        Ok(s) if s.jit_first => {
            fail("git config", format!("{host}: useHttpPath is off, so jit cannot tell repos apart"), "run `jit setup`")
        }
        Ok(_) => fail("git config", format!("{host}: git does not ask jit first"), "run `jit setup`"),
        Err(e) => fail("git config", e.to_string(), "fix the file, then run `jit setup`"),
    }
}

async fn check_broker(client: &Client) -> (Check, Option<DateTime<Utc>>) {
    let started = Instant::now();
    match client.health_with_date().await {
        Ok((health, date)) => {
            let ms = started.elapsed().as_millis();
            (pass("broker", format!("{} answers ({} {}, {ms} ms)", client.base(), health.status, health.version)), date)
        }
        Err(e) => {
            let e = CommandError::from(e);
            (
                fail(
                    "broker",
                    e.message,
                    e.hints.first().cloned().unwrap_or_else(|| "start the broker, or fix `jit login --server`".into()),
                ),
                None,
            )
        }
    }
}

fn check_clock(broker_date: Option<DateTime<Utc>>, sent: DateTime<Utc>) -> Check {
    let Some(theirs) = broker_date else {
        return fail("clock", "the broker sent no Date header", "nothing to do unless git credentials expire at odd times");
    };
    // HTTP dates have whole seconds: compare with the midpoint of the exchange.
    let ours = sent + (Utc::now() - sent) / 2;
    let skew = (ours - theirs).num_seconds();
    if skew.abs() <= MAX_SKEW_SECS {
        pass("clock", format!("within {MAX_SKEW_SECS}s of the broker's"))
    } else {
        fail("clock", format!("{skew:+}s from the broker's"), "sync this machine's clock (NTP); expiry is the broker's clock")
    }
}

pub async fn cmd_doctor(args: &JsonFlag) -> Result<(), CommandError> {
    let mut checks = vec![check_keychain(), check_git()];
    let client = super::client();
    let mut hosts: Vec<String> = Vec::new();
    match &client {
        Err(e) => checks.push(fail("login", e.message.clone(), "run `jit login --server URL`, or set JIT_SERVER and JIT_TOKEN")),
        Ok(client) => {
            let sent = Utc::now();
            let (broker, date) = check_broker(client).await;
            let reachable = broker.ok;
            checks.push(broker);
            if reachable {
                checks.push(check_clock(date, sent));
                match tokio::time::timeout(Duration::from_secs(10), client.whoami_session()).await {
                    Ok(Ok(who)) => checks.push(pass(
                        "token",
                        match &who.session {
                            Some(s) => format!(
                                "valid: you are {}, signed in through {} until {}",
                                who.user.name,
                                s.issuer,
                                crate::ui::local_time(s.ends_at)
                            ),
                            None => format!("valid: you are {}", who.user.name),
                        },
                    )),
                    Ok(Err(e)) => {
                        let e = CommandError::from(e);
                        checks.push(fail("token", e.message, "run `jit login` with a current token"))
                    }
                    Err(_) => checks.push(fail("token", "the broker did not answer in time", "try again")),
                }
                if let Ok(repos) = client.repos().await {
                    hosts = hosts_of(&repos);
                }
            }
        }
    }
    if hosts.is_empty() {
        hosts = crate::credcache::Index::load().repos.keys().filter_map(|u| CloneUrl::parse(u).ok()).map(|u| host_of(&u)).collect();
        hosts.sort();
        hosts.dedup();
    }
    checks.extend(hosts.iter().map(|h| check_helper(h)));
    let failed = checks.iter().filter(|c| !c.ok).count();
    if args.json {
        crate::output::print_json(&checks)?;
    } else {
        for c in &checks {
            let mark = if c.ok { ui::success(&format!("{}: {}", c.name, c.detail)) } else { format!("✘ {}: {}", c.name, c.detail) };
            println!("{mark}");
            if let Some(fix) = &c.fix {
                println!("  fix: {fix}");
            }
        }
    }
    if failed > 0 {
        return Err(CommandError::new(ExitKind::Unexpected, format!("{failed} of {} checks failed", checks.len())));
    }
    Ok(())
}

fn host_of(url: &CloneUrl) -> String {
    format!("{}://{}", url.scheme(), url.host_with_port())
}

fn hosts_of(repos: &[Repo]) -> Vec<String> {
    let mut hosts: Vec<String> =
        repos.iter().filter_map(|r| r.clone_url.as_deref()).filter_map(|u| CloneUrl::parse(u).ok()).map(|u| host_of(&u)).collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_beyond_five_seconds_fails() {
        let now = Utc::now();
        assert!(check_clock(Some(now), now).ok);
        assert!(!check_clock(Some(now - chrono::Duration::seconds(30)), now).ok);
        assert!(!check_clock(None, now).ok);
    }
}
