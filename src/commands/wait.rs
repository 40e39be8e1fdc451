//! `jit wait ID`: waits for a decision, and the waiting `jit request` shares.
//!
//! The wait is a chain of long-polls, each telling the broker the status we
//! last saw, so a decision made between two polls is returned at once rather
//! than missed. Ctrl-C stops waiting and leaves the request pending.

use std::time::Duration;

use tokio::time::Instant;

use crate::api::AccessRequest;
use crate::client::{Client, ClientError};
use crate::credcache;
use crate::domain::AccessDuration;
use crate::domain::request::RequestStatus;
use crate::domain::token::AuthScheme;
use crate::error::{CommandError, ExitKind};
use crate::keychain::Keychain;
use crate::output::print_json;
use crate::ui;
use clap::Args;

use crate::commands::args::{WaitFlags, duration_parser};

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The request id
    pub id: String,
    /// Stop waiting after this long (the request stays pending)
    #[arg(long, value_name = "DURATION", value_parser = duration_parser(), allow_hyphen_values = true)]
    pub timeout: Option<AccessDuration>,
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
}

/// One long-poll's length; the broker caps it at 60 s.
const POLL: Duration = Duration::from_secs(50);
/// How long a waiting command keeps trying a broker it cannot reach.
const RIDE_OUT: Duration = Duration::from_secs(3);

/// What `jit request` and `jit extend` do once they asked: with `--no-wait`
/// and the request pending, remember it for git's helper and print its id
/// (`asked` says what was asked, for people); else wait for the decision
/// and keep the credential. `Some` with the decided request when it waited.
pub async fn after_asking(
    client: &Client,
    req: AccessRequest,
    flags: &WaitFlags,
    asked: &str,
) -> Result<Option<AccessRequest>, CommandError> {
    if req.status == RequestStatus::Pending && flags.no_wait {
        follow_up_later(client, &req).await;
        if flags.json {
            print_json(&req)?;
        } else {
            println!("{}", req.id);
            eprintln!("{asked} (#{}); wait with `jit wait {}`", req.id, req.id);
        }
        return Ok(None);
    }
    let req = wait_for_decision(client, req, flags.timeout.map(|t| t.as_std())).await?;
    finish(client, &req, flags.json).await?;
    Ok(Some(req))
}

/// Remembers a request left pending, so git's helper picks up its grant once
/// approved (no `jit wait` needed). Best effort: the request stands either way.
pub async fn follow_up_later(client: &Client, req: &AccessRequest) {
    if let Ok(repos) = client.repos().await {
        let _ = credcache::remember_repos(client.base(), &repos);
    }
    let _ = credcache::remember_pending(client.base(), &req.repo, req.id);
}

fn resume_hint(id: i64) -> String {
    format!("resume with `jit wait {id}`, or cancel with `jit cancel {id}`")
}

/// Waits until the request leaves `pending`, the timeout passes or Ctrl-C.
pub async fn wait_for_decision(client: &Client, mut req: AccessRequest, timeout: Option<Duration>) -> Result<AccessRequest, CommandError> {
    if req.status != RequestStatus::Pending {
        return Ok(req);
    }
    let who = if req.approvers.is_empty() { "an approver".to_string() } else { req.approvers.join(", ") };
    let spinner = ui::spinner(format!("Waiting for approval of #{} ({who} can approve)", req.id));
    if spinner.is_none() {
        eprintln!("waiting for approval of #{} ({who} can approve)", req.id);
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let left_pending = req.clone();
    // A broker restarting (a deploy) is ridden out for a few seconds; one that stays away ends the wait.
    let mut unreachable_since: Option<Instant> = None;
    let outcome = loop {
        let poll = match deadline {
            Some(d) => POLL.min(d.saturating_duration_since(Instant::now())),
            None => POLL,
        };
        if poll.is_zero() {
            break Err(CommandError::new(
                ExitKind::TimedOut,
                format!("request #{} is still pending; stopped waiting after --timeout", req.id),
            )
            .hint(resume_hint(req.id)));
        }
        tokio::select! {
            polled = client.wait_request(req.id, req.status.as_str(), poll) => {
                req = match polled {
                    Ok(r) => r,
                    Err(e @ ClientError::Unreachable { .. }) => {
                        let since = *unreachable_since.get_or_insert_with(Instant::now);
                        if since.elapsed() < RIDE_OUT {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                        break Err(CommandError::from(e).hint(format!(
                            "request #{} stays pending on the broker; once it is back, {}",
                            req.id,
                            resume_hint(req.id)
                        )));
                    }
                    Err(e) => return Err(e.into()),
                };
                unreachable_since = None;
                if let Some(s) = &spinner {
                    let n = req.approvals.len();
                    if let Some(needs) = &req.needs {
                        s.set_message(format!("Waiting for approval of #{} ({n} of {} approvals; {needs})", req.id, req.approvals_required));
                    } else if n > 0 {
                        s.set_message(format!("Waiting for approval of #{} ({n} of {} approvals; {who} can approve)", req.id, req.approvals_required));
                    }
                }
                if req.status != RequestStatus::Pending {
                    break Ok(req);
                }
            }
            _ = tokio::signal::ctrl_c() => {
                break Err(CommandError::new(ExitKind::Interrupted, format!("stopped waiting; request #{} is still pending", req.id)).hint(resume_hint(req.id)));
            }
        }
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    if outcome.is_err() {
        follow_up_later(client, &left_pending).await;
    }
    outcome
}

/// Turns a decided request into the command's result: approved is success,
/// everything else is its documented exit code.
pub fn decided(req: &AccessRequest) -> Result<(), CommandError> {
    match req.status {
        RequestStatus::Approved => Ok(()),
        RequestStatus::Denied => {
            let by = req.decided_by.as_deref().unwrap_or("an approver");
            let why = req.decision_note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
            Err(CommandError::new(ExitKind::Denied, format!("request #{} was denied by {by}{why}", req.id)))
        }
        RequestStatus::Expired => {
            Err(CommandError::new(ExitKind::TimedOut, format!("request #{} expired: nobody decided in time", req.id))
                .hint(format!("ask again: jit request {} --level {} --for {}", req.repo, req.level, req.duration)))
        }
        RequestStatus::Canceled => Err(CommandError::new(ExitKind::TimedOut, format!("request #{} was canceled", req.id))),
        RequestStatus::Pending => {
            Err(CommandError::new(ExitKind::TimedOut, format!("request #{} is still pending", req.id)).hint(resume_hint(req.id)))
        }
    }
}

/// The one line printed on approval.
pub fn approved_line(req: &AccessRequest) -> String {
    if req.existing
        && let Some(g) = &req.grant
    {
        return format!(
            "Already granted: {} on {} until {} (grant {}, from request #{}); nothing new was requested",
            g.level,
            g.repo,
            ui::local_time(g.expires_at),
            g.id,
            req.id
        );
    }
    let by = req
        .decided_by
        .as_deref()
        .filter(|b| *b != "policy")
        .map(|b| format!("Approved by {b}"))
        .unwrap_or_else(|| "Approved by policy".into());
    match &req.grant {
        Some(g) => format!(
            "{by}: {}{} on {} until {} ({})",
            g.level,
            super::refs_note(&g.refs),
            g.repo,
            ui::local_time(g.expires_at),
            req.duration
        ),
        None => format!("{by}: {} on {}", req.level, req.repo),
    }
}

/// Why the approved grant's credential is not on this machine.
enum NotKept {
    /// The git host refused or failed to mint (or rate-limits): the grant stands.
    Host(CommandError),
    /// The grant ended (revoked, expired) before its credential was minted.
    Ended(CommandError),
    /// Anything local (the keychain), or the broker out of reach: git fetches it later.
    Local(CommandError),
}

/// Keeps the approved grant's credential where git's helper finds it, and
/// says so when git would not ask jit for that host yet.
async fn keep_credential(client: &Client, req: &AccessRequest) -> Result<(), NotKept> {
    let Some(grant) = &req.grant else { return Ok(()) };
    let keychain = Keychain::open().map_err(|e| NotKept::Local(e.into()))?;
    let fetched = match credcache::fetch_and_store(client, &keychain, grant).await {
        Ok(fetched) => fetched,
        Err(credcache::FetchError::Broker(ClientError::Api { code, message, .. })) if code == crate::api::codes::GRANT_ENDED => {
            return Err(NotKept::Ended(CommandError::new(ExitKind::TimedOut, message)));
        }
        Err(e) => {
            let e = CommandError::from(e);
            return Err(if matches!(e.kind, ExitKind::HostFailed | ExitKind::TimedOut) { NotKept::Host(e) } else { NotKept::Local(e) });
        }
    };
    let Some((url, credential)) = fetched else { return Ok(()) };
    if let Some(warning) = keychain.file_warning() {
        eprintln!("{warning}");
    }
    if credential.authtype == AuthScheme::Bearer
        && let Some(text) = crate::git::installed_version()
        && crate::git::parse_version(&text).is_some_and(|v| v < crate::git::AUTHTYPE_VERSION)
    {
        eprintln!(
            "warning: {} takes this credential only as a Bearer token, which git sends from 2.46 on ({text} here): upgrade git, or ask the broker's operator to front the repo with the gateway",
            url.host_with_port()
        );
    }
    let host = format!("{}://{}", url.scheme(), url.host_with_port());
    if !crate::git::config::is_installed(&host) {
        eprintln!("hint: git will not ask jit for {host} yet; run `jit setup` once");
    }
    Ok(())
}

/// Prints the outcome (JSON or a line), then maps it to the exit code. The
/// grant exists whatever happens to the local copy of its credential: a
/// failure to keep it is a warning (the helper fetches it later), never a
/// failed request that invites a second one. A git host that refused or
/// failed to mint (exit 6, or 4 when it rate-limits) is the exception: git
/// cannot work until the host agrees, and a script must see that; the
/// message says the grant stands. A grant that ended before its credential
/// was minted (revoked meanwhile) exits 4 and says to ask again. (One that
/// was superseded by another of the caller's grants is not ended for this:
/// the broker answers with the superseding grant's credential.)
pub async fn finish(client: &Client, req: &AccessRequest, json: bool) -> Result<(), CommandError> {
    let mut failure = None;
    if req.status == RequestStatus::Approved
        && let Err(not_kept) = keep_credential(client, req).await
    {
        match not_kept {
            NotKept::Local(e) => {
                eprintln!("warning: granted, but the git credential could not be kept on this machine: {}", e.message);
                for hint in &e.hints {
                    eprintln!("hint: {hint}");
                }
                eprintln!("hint: once that is fixed, git fetches the credential by itself (`jit doctor` checks the keychain)");
            }
            other => failure = Some(other),
        }
    }
    if json {
        print_json(req)?;
    } else if req.status == RequestStatus::Approved {
        println!("{}", ui::success(&approved_line(req)));
    }
    match failure {
        Some(NotKept::Host(e)) => {
            let grant = req.grant.as_ref().map(|g| format!("grant {} stands", g.id)).unwrap_or_else(|| "the grant stands".into());
            Err(CommandError { message: format!("granted, but the git host did not mint its credential: {}", e.message), ..e }
                .hint(format!("{grant}: git asks the broker for the credential again by itself (no new request needed)")))
        }
        Some(NotKept::Ended(e)) => {
            Err(CommandError { message: format!("granted, but it ended before its credential was minted: {}", e.message), ..e }
                .hint(format!("ask again: jit request {} --level {} --for {}", req.repo, req.level, req.duration)))
        }
        _ => decided(req),
    }
}

pub async fn cmd_wait(args: &WaitArgs) -> Result<(), CommandError> {
    let id = super::parse_id("request", &args.id)?;
    let client = super::client()?;
    let req = client.request(id).await?;
    let req = wait_for_decision(&client, req, args.timeout.map(|t| t.as_std())).await?;
    finish(&client, &req, args.json).await
}
