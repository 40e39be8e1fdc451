//! `jit credential get|store|erase`: the git credential helper.
//!
//! The hot path: parse stdin, normalize the URL, look it up in the local
//! index (one small file), read one keychain entry, answer. No async runtime,
//! no network, no logging setup. Only an expired credential on a live grant
//! goes to the broker, with a short timeout. Whatever happens, the helper
//! exits 0 and says nothing on stdout unless it answers, so git moves on to
//! its next helper; at most one line on stderr explains an ended grant.

use std::io::{BufReader, Write};
use std::time::Duration;

use chrono::Utc;

use crate::client::{Client, ClientError};
use crate::credcache::{self, CachedGrant, Index, Pick, pick};
use crate::domain::repo::CloneUrl;
use crate::error::CommandError;
use crate::git::credential::{Answer, CredentialQuery, parse, target, write_answer};
use crate::keychain::Keychain;
use crate::ui;
use clap::Subcommand;

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum CredentialOp {
    /// Answer git with the cached credential for the URL on stdin
    Get,
    /// Accept a credential from git (jit keeps nothing it did not mint)
    Store,
    /// Forget the cached credential for the URL on stdin
    Erase,
}

/// A cached credential this close to expiry is re-minted instead of used.
const RENEW_MARGIN: chrono::Duration = chrono::Duration::seconds(30);
/// The longest the helper waits on the broker.
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

pub fn cmd_credential(op: CredentialOp) -> Result<(), CommandError> {
    let query = match parse(BufReader::new(std::io::stdin().lock())) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("jit: ignoring credential request: {e}");
            return Ok(());
        }
    };
    // Nothing jit guards: stay silent and let git ask the next helper.
    let Ok(url) = target(&query) else { return Ok(()) };
    match op {
        CredentialOp::Get => get(&query, &url, &mut std::io::stdout().lock()),
        CredentialOp::Store => {}
        CredentialOp::Erase => erase(&url),
    }
    Ok(())
}

fn ask_again(g: &CachedGrant) -> String {
    format!("jit request {} --level {} --for 1h --reason '…'", g.repo, g.level)
}

fn get(query: &CredentialQuery, url: &CloneUrl, out: &mut impl Write) {
    let key = url.to_string();
    let index = Index::load();
    let Some(grants) = index.urls.get(&key) else { return };
    let now = Utc::now();
    let cached = match pick(grants, now) {
        Pick::Live(g) => g,
        Pick::Ended(g) => {
            eprintln!(
                "jit: your {} grant on {} ended at {}; ask again: {}",
                g.level,
                g.repo,
                ui::local_time(g.grant_expires_at),
                ask_again(&g)
            );
            return;
        }
        Pick::Nothing => return,
    };
    let keychain = match Keychain::open() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("jit: cannot open the keychain: {e}");
            return;
        }
    };
    // A credential that lives to the end of its grant is used to the end; a
    // shorter one is renewed a little before it expires.
    let lasts_the_grant = cached.credential_expires_at >= cached.grant_expires_at;
    let fresh = now < cached.credential_expires_at && (lasts_the_grant || cached.credential_expires_at - RENEW_MARGIN > now);
    if fresh && let Ok(Some(password)) = credcache::password(&keychain, &key, cached.grant_id) {
        let answer = Answer { username: cached.username.clone(), password, expires_unix: cached.credential_expires_at.timestamp() };
        let _ = write_answer(out, query, &answer);
        return;
    }
    match renew(&keychain, &key, &cached) {
        Ok(answer) => {
            let _ = write_answer(out, query, &answer);
        }
        Err(line) => eprintln!("{line}"),
    }
}

/// Mints a fresh credential for a live grant from the broker that issued it.
fn renew(keychain: &Keychain, key: &str, cached: &CachedGrant) -> Result<Answer, String> {
    let cannot = |why: String| format!("jit: cannot renew the credential for {}: {why}", cached.repo);
    let (server, token) = crate::session::resolve().map_err(|e| cannot(e.message))?;
    if server.trim_end_matches('/') != cached.server.trim_end_matches('/') {
        return Err(cannot(format!("not logged in to {}", cached.server)));
    }
    let client = Client::new(&server, Some(token)).map_err(|e| cannot(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| cannot(e.to_string()))?;
    let minted = runtime.block_on(async { tokio::time::timeout(BROKER_TIMEOUT, client.mint_credential(cached.grant_id)).await });
    let credential = match minted {
        Err(_) => return Err(cannot("the broker did not answer in time".into())),
        Ok(Err(ClientError::Api { code, message, .. }))
            if code == crate::api::codes::GRANT_ENDED || code == crate::api::codes::NOT_FOUND =>
        {
            let _ = credcache::forget_grant(keychain, cached.grant_id);
            return Err(format!(
                "jit: your {} grant on {} has ended ({message}); ask again: {}",
                cached.level,
                cached.repo,
                ask_again(cached)
            ));
        }
        Ok(Err(e)) => return Err(cannot(e.to_string())),
        Ok(Ok(c)) => c,
    };
    let refreshed = CachedGrant { credential_expires_at: credential.expires_at, username: credential.username.clone(), ..cached.clone() };
    credcache::store(keychain, key, refreshed, &credential.password).map_err(|e| cannot(e.to_string()))?;
    Ok(Answer { username: credential.username, password: credential.password, expires_unix: credential.expires_at.timestamp() })
}

/// git says the credential failed: drop the password it was given, so the
/// next `get` re-mints (or explains why it cannot).
fn erase(url: &CloneUrl) {
    let key = url.to_string();
    let Some(grants) = Index::load().urls.get(&key).cloned() else { return };
    let Pick::Live(g) = pick(&grants, Utc::now()) else { return };
    if let Ok(kc) = Keychain::open() {
        let _ = credcache::drop_password(&kc, &key, g.grant_id);
    }
}
