//! `jit credential get|store|erase`: the git credential helper.
//!
//! The hot path: parse stdin, normalize the URL, look it up in the local
//! index (one small file), read one keychain entry, answer. No async runtime,
//! no network, no logging setup.
//!
//! The broker is asked (once, bounded by [`BROKER_TIMEOUT`], never prompting)
//! only when the cache cannot answer for a URL a broker guards: a credential
//! that expired on a live grant is re-minted; a request of the user's left
//! pending is checked for its grant; with no live grant cached, the broker's
//! live grants on that repo are looked up, minted and cached. When there is
//! still nothing, one line on stderr says what to do (the request to make,
//! the one to wait for, or the grant that ended).
//!
//! Whatever happens, the helper exits 0 and says nothing on stdout unless it
//! answers, so git moves on to its next helper. git's protocol says unknown
//! operations are ignored; they are.

use std::io::{BufReader, Read, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;

use crate::api::codes;
use crate::client::{Client, ClientError};
use crate::credcache::{self, CachedGrant, GuardedRepo, Index, PendingRequest, Pick, pick};
use crate::domain::Level;
use crate::domain::repo::CloneUrl;
use crate::domain::request::RequestStatus;
use crate::domain::smart_http::Service;
use crate::error::CommandError;
use crate::git::credential::{Answer, CredentialQuery, parse, target, write_answer, write_quit};
use crate::keychain::Keychain;
use crate::ui;

#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// `get` (answer git with the credential for the URL on stdin), `store`
    /// (accepted, nothing kept) or `erase` (forget the cached credential); git's
    /// protocol says other operations are ignored, so they are, silently
    #[arg(value_name = "OPERATION")]
    pub operation: String,
}

/// A cached credential this close to expiry is re-minted instead of used.
const RENEW_MARGIN: chrono::Duration = chrono::Duration::seconds(30);
/// The longest the helper waits on the broker.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

pub fn cmd_credential(args: &CredentialArgs) -> Result<(), CommandError> {
    answer(&args.operation, std::io::stdin().lock())
}

/// The whole helper for `op`, reading git's request from `input`: what
/// [`answer_from_cache_alone`] hands on continues here, with what it read.
pub fn answer(op: &str, input: impl Read) -> Result<(), CommandError> {
    if !matches!(op, "get" | "store" | "erase") {
        return Ok(());
    }
    let query = match parse(BufReader::new(input)) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("jit: ignoring credential request: {e}");
            return Ok(());
        }
    };
    // Nothing jit guards: stay silent and let git ask the next helper.
    let Ok(url) = target(&query) else { return Ok(()) };
    match op {
        "get" => get(&query, &url, &mut std::io::stdout().lock()),
        "erase" => erase(&query, &url),
        _ => {} // store: jit keeps nothing it did not mint
    }
    Ok(())
}

/// What `git-credential-jit` (the small binary git runs) does before it hands
/// over to `jit credential`: everything the local cache settles alone. `Ok`:
/// done (answered from a fresh cached credential, or silent for a URL no
/// broker guards, a `store`, an unknown operation). `Err` holds the input read
/// so far, for `jit credential` to take from the start: a broker to ask, a
/// line to explain, a password to drop, input to complain about.
pub fn answer_from_cache_alone(op: &str, input: impl Read, out: &mut impl Write) -> Result<(), Vec<u8>> {
    let mut input = Recorded { inner: input, seen: Vec::new() };
    if !matches!(op, "get" | "erase") {
        return Ok(()); // store: jit keeps nothing it did not mint; unknown: ignored
    }
    let parsed = parse(BufReader::new(&mut input));
    let Ok(query) = parsed else { return Err(input.seen) };
    let Ok(url) = target(&query) else { return Ok(()) };
    if op == "erase" {
        return Err(input.seen);
    }
    let key = url.to_string();
    let now = Utc::now();
    let Local { cached, repo, pending } = Local::read(&key, now);
    match cached {
        Pick::Live(grant) if pending.is_empty() => match Keychain::open().ok().and_then(|k| from_keychain(&k, &key, &grant, now)) {
            // A credential this git cannot send: the full path says why.
            Some(answer) => match write_answer(out, &query, &answer) {
                Ok(()) => {
                    warn_if_ending(&grant, now);
                    Ok(())
                }
                Err(_) => Err(input.seen),
            },
            None => Err(input.seen),
        },
        // Not a URL any broker guards: not ours.
        _ if repo.is_none() => Ok(()),
        _ => Err(input.seen),
    }
}

/// One line on git's stderr when the grant git is using ends within its
/// rule's `warn_before`, at most once a minute per repo. Costs nothing
/// otherwise (no file is read unless a warning is due).
fn warn_if_ending(grant: &CachedGrant, now: DateTime<Utc>) {
    let warn_before = grant.warn_before_secs.unwrap_or(crate::domain::expiry::DEFAULT_WARN_BEFORE_SECS);
    if let Some(line) = crate::domain::expiry::ending_soon(&grant.repo, grant.level, grant.grant_expires_at, now, warn_before)
        && credcache::warn_once(&grant.repo, now)
    {
        eprintln!("{line}");
    }
}

/// What the local index says about a URL.
struct Local {
    /// The grant to answer with.
    cached: Pick,
    /// The repo, when a broker guards the URL.
    repo: Option<GuardedRepo>,
    /// The user's requests left pending on that repo.
    pending: Vec<PendingRequest>,
}

impl Local {
    fn read(key: &str, now: DateTime<Utc>) -> Local {
        let index = Index::load();
        let cached = pick(&index.grants_for(key), now);
        let repo = index.repo_for(key);
        let pending = repo.as_ref().map(|r| index.pending_on(r)).unwrap_or_default();
        Local { cached, repo, pending }
    }
}

/// A reader that keeps what it read, to hand on.
struct Recorded<R> {
    inner: R,
    seen: Vec<u8>,
}

impl<R: Read> Read for Recorded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// The request to make, without guessing at what the policy needs.
fn ask_command(repo: &str, level: &str) -> String {
    format!("jit request {repo} --level {level} --for 1h")
}

/// The request to suggest: for the level git's operation needs when the
/// gateway's challenge said which (fetching or pushing), else for `level`,
/// with the write a push needs beside a read.
fn ask_for(repo: &str, service: Option<Service>, level: Level) -> String {
    match service {
        Some(service) => format!("{} (to {})", ask_command(repo, service.needs().as_str()), service.verb().trim_end_matches("ing")),
        None if level == Level::Read => format!("{} (write, to push)", ask_command(repo, "read")),
        None => ask_command(repo, level.as_str()),
    }
}

fn get(query: &CredentialQuery, url: &CloneUrl, out: &mut impl Write) {
    let key = url.to_string();
    let now = Utc::now();
    let Local { cached, repo, pending } = Local::read(&key, now);
    // The hot path: a live grant, nothing pending.
    let ended_because = match &cached {
        Pick::Live(grant) if pending.is_empty() => match answer_from_cache(&key, grant, now) {
            Ok(answer) => {
                if reply(out, query, &answer, &grant.repo) {
                    warn_if_ending(grant, now);
                }
                return;
            }
            Err(Fallback::Line(line)) => {
                eprintln!("{line}");
                if only_jit_opens(url, &grant.server) {
                    let _ = write_quit(out);
                }
                return;
            }
            Err(Fallback::Ended(why)) => Some(why),
        },
        _ => None,
    };
    // Not a URL any broker guards: not ours.
    let Some(repo) = repo else { return };
    match ask_broker(&key, &repo, &pending, &cached, ended_because, query.service()) {
        Ok(answer) => {
            reply(out, query, &answer, &repo.repo);
        }
        Err(line) => {
            eprintln!("{line}");
            if only_jit_opens(url, &repo.server) {
                let _ = write_quit(out);
            }
        }
    }
}

/// Hands git the credential, or says on stderr why this git cannot take it
/// (git then goes on to the person's own helpers). Whether it was handed.
fn reply(out: &mut impl Write, query: &CredentialQuery, answer: &Answer, repo: &str) -> bool {
    match write_answer(out, query, answer) {
        Ok(()) => true,
        Err(why) => {
            eprintln!("jit: your grant on {repo} cannot be used by this git: {why}");
            false
        }
    }
}

/// Whether `url` is on the broker's own gateway, which nothing but a jit
/// credential opens: there git is told to stop once jit has said what to do,
/// rather than prompt for a username. At a host jit mints tokens for (GitHub,
/// GitLab), the person's own helpers may still hold access of their own, so
/// git goes on to them.
fn only_jit_opens(url: &CloneUrl, server: &str) -> bool {
    let Ok(server) = url::Url::parse(server) else { return false };
    server.scheme() == url.scheme()
        && server.host_str().is_some_and(|h| h.eq_ignore_ascii_case(url.host()))
        && server.port_or_known_default() == Some(url.port_or_default())
}

/// Why the cache alone could not answer.
enum Fallback {
    /// Say this and stop (the broker already told why).
    Line(String),
    /// The broker says this grant has ended (why); look for another live one.
    Ended(String),
}

/// The cached credential of a live grant, when it is fresh and in the keychain.
fn from_keychain(keychain: &Keychain, key: &str, cached: &CachedGrant, now: DateTime<Utc>) -> Option<Answer> {
    // A credential that lives to the end of its grant is used to the end; a
    // shorter one is renewed a little before it expires.
    let lasts_the_grant = cached.credential_expires_at >= cached.grant_expires_at;
    let fresh = now < cached.credential_expires_at && (lasts_the_grant || cached.credential_expires_at - RENEW_MARGIN > now);
    let password = credcache::password(keychain, key, cached.grant_id).ok().flatten().filter(|_| fresh)?;
    Some(Answer {
        username: cached.username.clone(),
        password,
        expires_unix: cached.credential_expires_at.timestamp(),
        scheme: cached.authtype,
    })
}

/// Answers from the cached credential of a live grant, re-minting it when it
/// expired; a grant the broker says has ended falls through to the broker lookup.
fn answer_from_cache(key: &str, cached: &CachedGrant, now: DateTime<Utc>) -> Result<Answer, Fallback> {
    let keychain = Keychain::open().map_err(|e| Fallback::Line(format!("jit: cannot open the keychain: {e}")))?;
    if let Some(answer) = from_keychain(&keychain, key, cached, now) {
        return Ok(answer);
    }
    let cannot = |why: String| Fallback::Line(format!("jit: cannot renew the credential for {}: {why}", cached.repo));
    let client = broker_client(&cached.server).map_err(cannot)?;
    let minted = block_on_broker(client.mint_credential(cached.grant_id)).map_err(cannot)?;
    match minted {
        Err(ClientError::Api { code, message, .. }) if code == codes::GRANT_ENDED || code == codes::NOT_FOUND => {
            let _ = credcache::forget_grant(&keychain, cached.grant_id);
            Err(Fallback::Ended(message))
        }
        Err(e) => Err(cannot(e.to_string())),
        Ok(credential) => {
            // Under the grant the broker answered for (a superseding one, when this one was superseded).
            let refreshed = CachedGrant::of(&cached.server, &credential, client.login_fingerprint()).map_err(|e| cannot(e.to_string()))?;
            credcache::store(&keychain, key, refreshed, &credential.password).map_err(|e| cannot(e.to_string()))?;
            Ok(answer_with(credential))
        }
    }
}

/// The broker client for `server`, with the stored login or the environment's token.
fn broker_client(server: &str) -> Result<Client, String> {
    let session = crate::session::resolve().map_err(|e| e.message)?;
    if session.server.trim_end_matches('/') != server.trim_end_matches('/') {
        return Err(format!("not logged in to {server}"));
    }
    Client::new(&session.server, Some(session.token), session.ca_file.as_deref()).map_err(|e| e.to_string())
}

/// Runs one exchange with the broker on a small runtime of its own, within [`BROKER_TIMEOUT`].
fn block_on_broker<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async { tokio::time::timeout(BROKER_TIMEOUT, f).await }).map_err(|_| "the broker did not answer in time".to_string())
}

/// What the broker knows that the cache did not.
enum Found {
    Credential(Answer),
    /// No live grant; a request of the user's on the repo is still pending.
    Pending(i64, String),
    Nothing,
}

/// The slow path: one bounded conversation with the broker about `repo`.
fn ask_broker(
    key: &str,
    repo: &GuardedRepo,
    pending: &[PendingRequest],
    cached: &Pick,
    ended_because: Option<String>,
    service: Option<Service>,
) -> Result<Answer, String> {
    let ended_line = |g: &CachedGrant| {
        format!(
            "jit: your {} grant on {} ended at {}; ask again: {}",
            g.level,
            g.repo,
            ui::precise_time(g.grant_expires_at),
            ask_for(&g.repo, service, g.level)
        )
    };
    let explain = |found: Option<Found>| match (found, cached) {
        (Some(Found::Pending(id, level)), _) => {
            format!("jit: your request #{id} for {level} on {} is waiting for approval; follow it with `jit wait {id}`", repo.repo)
        }
        (_, Pick::Ended(g)) => ended_line(g),
        (_, Pick::Live(g)) => format!(
            "jit: your {} grant on {} has ended ({}); ask again: {}",
            g.level,
            g.repo,
            ended_because.as_deref().unwrap_or("ended early"),
            ask_for(&g.repo, service, g.level)
        ),
        (_, Pick::Nothing) => {
            format!("jit: you have no grant on {}; ask for one: {}", repo.repo, ask_for(&repo.repo, service, Level::Read))
        }
    };
    let client = match broker_client(&repo.server) {
        Ok(c) => c,
        Err(why) => return Err(format!("{} ({why}: run `jit login --server {}`)", explain(None), repo.server)),
    };
    let keychain = Keychain::open().map_err(|e| format!("jit: cannot open the keychain: {e}"))?;
    match block_on_broker(lookup(&client, &keychain, key, repo, pending)) {
        Ok(Ok(Found::Credential(answer))) => Ok(answer),
        Ok(Ok(found)) => Err(explain(Some(found))),
        Ok(Err(e)) => Err(format!("{} (the broker could not be asked: {e})", explain(None))),
        Err(timeout) => Err(format!("{} (the broker could not be asked: {timeout})", explain(None))),
    }
}

async fn lookup(client: &Client, keychain: &Keychain, key: &str, repo: &GuardedRepo, pending: &[PendingRequest]) -> Result<Found, String> {
    let mut still_pending = None;
    for p in pending {
        match client.request(p.request_id).await {
            Ok(req) if req.status == RequestStatus::Pending => still_pending = Some((req.id, req.level)),
            // Decided (a grant it made is among the live grants below), or not
            // this user's to see (left by someone logged in before): done with.
            Ok(_) => {
                let _ = credcache::forget_pending(&repo.server, p.request_id);
            }
            Err(ClientError::Api { code, .. }) if code == codes::NOT_FOUND => {
                let _ = credcache::forget_pending(&repo.server, p.request_id);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    // The broker lists only grants live now.
    let live = client.grants(false, true).await.map_err(|e| e.to_string())?;
    let best =
        live.into_iter().filter(|g| g.repo == repo.repo).max_by_key(|g| (g.level.parse::<crate::domain::Level>().ok(), g.expires_at));
    if let Some(grant) = best {
        return match credcache::fetch_and_store(client, keychain, &grant).await {
            Ok(Some((url, credential))) if url.to_string() == key => Ok(Found::Credential(answer_with(credential))),
            Ok(_) => Ok(Found::Nothing),
            Err(e) => Err(e.to_string()),
        };
    }
    Ok(match still_pending {
        Some((id, level)) => Found::Pending(id, level),
        None => Found::Nothing,
    })
}

fn answer_with(credential: crate::api::Credential) -> Answer {
    let expires_unix = credential.expires_at.timestamp();
    Answer { username: credential.username, password: credential.password, expires_unix, scheme: credential.authtype }
}

/// git says the credential failed: drop the password it was given, and say
/// why (git itself says only "Authentication failed"), as the next `get`
/// would: the broker is asked once, bounded. A fresh credential it mints is
/// cached for the next try.
fn erase(query: &CredentialQuery, url: &CloneUrl) {
    let key = url.to_string();
    let Pick::Live(g) = pick(&Index::load().grants_for(&key), Utc::now()) else { return };
    if let Ok(kc) = Keychain::open() {
        let _ = credcache::drop_password(&kc, &key, g.grant_id);
    }
    let mut fresh = Vec::new();
    get(query, url, &mut fresh);
    let answered = String::from_utf8_lossy(&fresh).lines().any(|l| l.starts_with("password=") || l.starts_with("credential="));
    if answered {
        eprintln!("jit: git's credential for {} was refused; a fresh one is ready: run the command again", g.repo);
    }
}
