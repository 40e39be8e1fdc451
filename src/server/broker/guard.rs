//! The broker's guard against guessing and flooding: where a request comes
//! from, how many failed logins a source or a user name may make, how fast one
//! credential may drive git, and a trace of failures in the audit log.
//!
//! Failures are counted per source address and per (address, user name), so
//! nobody elsewhere can lock a user out by failing under their name. A source
//! that failed too often is refused only when what it presents is wrong: a
//! valid credential always passes (credentials are 256-bit random, so the
//! refusals slow down nothing a guesser could win, and someone behind the
//! same address as an attacker keeps working).
//!
//! Each failure is logged (source, user name when one was given, what was
//! wrong; never the secret). The audit log gets one `auth_failures` summary a
//! minute at most, so an admin sees an attack without the log being the thing
//! that floods.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{Broker, BrokerResult};
use crate::domain::audit::{Action, BROKER_ACTOR, NewEvent};
use crate::domain::limits::{FailureLimit, RequestLimit};
use crate::domain::network;

/// What failures are counted by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailureKey {
    Address(IpAddr),
    AddressAndUser(IpAddr, String),
}

/// Sources named in one summary; the rest are counted.
const SUMMARY_TOP: usize = 20;

#[derive(Debug)]
pub struct Guard {
    failures: FailureLimit<FailureKey>,
    git: RequestLimit<i64>,
    /// Failures since the last summary: (source, user name or what was presented) → count.
    tally: BTreeMap<(IpAddr, String), u32>,
    last_summary: Instant,
}

impl Guard {
    pub fn new(failures_per_minute: u32, git_per_second: f64) -> Guard {
        Guard {
            failures: FailureLimit::new(failures_per_minute, Duration::from_secs(60)),
            git: RequestLimit::new(git_per_second, git_per_second * 10.0),
            tally: BTreeMap::new(),
            last_summary: Instant::now(),
        }
    }
}

impl Broker {
    fn guard(&self) -> std::sync::MutexGuard<'_, Guard> {
        self.guard.lock().expect("guard lock")
    }

    /// The client's address: the peer, or what a trusted proxy says it saw.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>) -> Result<IpAddr, network::UnreadableHop> {
        network::client_ip(peer, forwarded_for, &self.config.limits.trusted_proxies)
    }

    /// Counts and logs a failed authentication (never the secret), and says
    /// how long the source must wait before its next failure is even
    /// answered: `Some` when it (or it under this user name) had already
    /// failed too often.
    pub fn auth_failed(&self, addr: IpAddr, user: Option<&str>, why: &str) -> Option<Duration> {
        tracing::warn!(source = %addr, user = user.unwrap_or("-"), reason = why, "authentication failed");
        let now = Instant::now();
        let mut guard = self.guard();
        let by_user = user.map(|u| FailureKey::AddressAndUser(addr, u.to_string()));
        let wait =
            by_user.as_ref().and_then(|key| guard.failures.blocked(key, now)).max(guard.failures.blocked(&FailureKey::Address(addr), now));
        guard.failures.fail(&FailureKey::Address(addr), now);
        if let Some(key) = &by_user {
            guard.failures.fail(key, now);
        }
        *guard.tally.entry((addr, user.map(str::to_string).unwrap_or_else(|| why.to_string()))).or_default() += 1;
        wait
    }

    /// Whether `grant` may make one more git request now, or how long to wait.
    pub fn git_request_allowed(&self, grant: i64) -> Result<(), Duration> {
        self.guard().git.take(&grant, Instant::now())
    }

    /// Writes the failures of the last minute as one `auth_failures` event
    /// (run by the reaper; nothing when there were none).
    pub async fn summarise_auth_failures(&self) -> BrokerResult<()> {
        let tally = {
            let mut guard = self.guard();
            if guard.tally.is_empty() || guard.last_summary.elapsed() < self.config.auth_summary_every {
                return Ok(());
            }
            guard.last_summary = Instant::now();
            std::mem::take(&mut guard.tally)
        };
        let mut by_source: BTreeMap<IpAddr, (u32, Vec<String>)> = BTreeMap::new();
        for ((addr, who), n) in tally {
            let entry = by_source.entry(addr).or_default();
            entry.0 += n;
            entry.1.push(format!("{who} ×{n}"));
        }
        let total: u32 = by_source.values().map(|(n, _)| n).sum();
        let mut sources: Vec<(IpAddr, (u32, Vec<String>))> = by_source.into_iter().collect();
        sources.sort_by_key(|(_, (n, _))| std::cmp::Reverse(*n));
        let shown: Vec<String> =
            sources.iter().take(SUMMARY_TOP).map(|(addr, (n, who))| format!("{addr}: {n} ({})", who.join(", "))).collect();
        let more = sources.len().saturating_sub(SUMMARY_TOP);
        let mut event = NewEvent::new(BROKER_ACTOR, Action::AuthFailures);
        event.detail = Some(format!(
            "{total} failed authentication(s) from {} source(s) since the last summary: {}{}",
            sources.len(),
            shown.join("; "),
            if more > 0 { format!("; and {more} more sources") } else { String::new() }
        ));
        self.store.append_events(vec![event], self.now()).await?;
        Ok(())
    }
}
