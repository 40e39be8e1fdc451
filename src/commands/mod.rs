//! One file per command (a group is a folder with one file per subcommand).
//! Each command is an `Args` value plus one function returning
//! `Result<(), CommandError>`; `cli.rs` dispatches to them, and this module
//! holds what they share (the shared flags and parsers are in [`args`]).

pub mod admin;
pub mod approve;
pub mod args;
pub mod audit;
pub mod cancel;
pub mod credential;
pub mod deny;
pub mod doctor;
pub mod extend;
pub mod login;
pub mod logout;
pub mod policy;
pub mod repos;
pub mod request;
pub mod requests;
pub mod review;
pub mod revoke;
pub mod server;
pub mod setup;
pub mod status;
pub mod util;
pub mod wait;
pub mod whoami;

use crate::client::Client;
use crate::error::CommandError;

/// Runs a command's async body on a small runtime of its own. Client commands
/// need one thread: they wait on the network, not on CPU.
pub fn block_on<F: std::future::Future<Output = Result<(), CommandError>>>(f: F) -> Result<(), CommandError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::unexpected(format!("cannot start the async runtime: {e}")))?
        .block_on(f)
}

/// The broker client for the current user (environment, then stored login).
pub fn client() -> Result<Client, CommandError> {
    crate::session::client()
}

/// Parses a request or grant id typed by a person.
pub fn parse_id(kind: &str, raw: &str) -> Result<i64, CommandError> {
    raw.trim()
        .trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| CommandError::bad_input(format!("invalid {kind} id `{raw}`: expected a number like 12")))
}

/// The caller's live grants a target names: a grant id (that grant,
/// whatever its state: the broker judges it), or a repo in any spelling
/// `jit repos` accepts (every live grant of theirs on it; none is an error).
pub async fn my_live_grants(client: &Client, target: &str) -> Result<Vec<i64>, CommandError> {
    use crate::domain::repo::{CloneUrl, RepoSpec, resolve};
    if target.trim().chars().all(|c| c.is_ascii_digit() || c == '#') {
        return Ok(vec![parse_id("grant", target)?]);
    }
    let repos: Vec<RepoSpec> = client
        .repos()
        .await?
        .into_iter()
        .map(|r| RepoSpec { name: r.name, url: r.clone_url.and_then(|u| CloneUrl::parse(&u).ok()), provider: None, upstream: None })
        .collect();
    let repo = resolve(target, &repos).map_err(|e| CommandError::bad_input(e.to_string()))?;
    let live: Vec<i64> = client.grants(false, true).await?.into_iter().filter(|g| g.repo == repo.name).map(|g| g.id).collect();
    if live.is_empty() {
        return Err(CommandError::bad_input(format!("you have no live grant on {}", repo.name)).hint("`jit status` lists your live grants"));
    }
    Ok(live)
}

/// One line about a request, for people.
pub fn describe_request(r: &crate::api::AccessRequest) -> String {
    let reason = r.reason.as_deref().map(|r| format!(" — \"{r}\"")).unwrap_or_default();
    format!("#{} {} wants {}{} on {} for {}{}", r.id, r.requester, r.level, refs_note(&r.refs), r.repo, r.duration, reason)
}

/// ` (refs/heads/hotfix/* only)` for a grant scoped to refs; nothing for every ref.
pub fn refs_note(refs: &[String]) -> String {
    if refs.is_empty() { String::new() } else { format!(" ({} only)", refs.join(", ")) }
}
