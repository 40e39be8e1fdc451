//! `jit request [REPO] --level L --for D [--reason R]`: ask, wait, and on
//! approval keep the credential in the keychain.

use crate::api::{self, AccessRequest};
use crate::cli::RequestArgs;
use crate::client::Client;
use crate::domain::request::RequestStatus;
use crate::domain::{AccessDuration, Level};
use crate::error::CommandError;

/// The `origin` remote of the checkout around the current directory.
fn origin_url() -> Result<String, CommandError> {
    let no_repo = || {
        CommandError::bad_input("no repo given and no `origin` remote here")
            .hint("name the repo: jit request acme/api --level write --for 1h")
    };
    let repo = git2::Repository::discover(".").map_err(|_| no_repo())?;
    let remote = repo.find_remote("origin").map_err(|_| no_repo())?;
    remote.url().map(str::to_string).ok_or_else(no_repo)
}

pub async fn cmd_request(args: &RequestArgs) -> Result<(), CommandError> {
    // Validate everything local before touching the network.
    let level: Level = args.level.parse().map_err(|e: crate::domain::level::UnknownLevel| CommandError::bad_input(e.to_string()))?;
    let duration: AccessDuration =
        args.duration.parse().map_err(|e: crate::domain::duration::DurationError| CommandError::bad_input(format!("--for: {e}")))?;
    let timeout = super::wait::parse_timeout(args.timeout.as_deref())?;
    let repo = match &args.repo {
        Some(r) => r.clone(),
        None => origin_url()?,
    };
    let client = super::client()?;
    let body = api::CreateRequest { repo, level: level.to_string(), duration: duration.to_string(), reason: args.reason.clone() };
    let req = client.create_request(&body).await?;
    if req.status == RequestStatus::Pending && args.no_wait {
        if args.json {
            return super::print_json(&req);
        }
        println!("{}", req.id);
        eprintln!("requested #{}: {} on {} for {}; wait with `jit wait {}`", req.id, req.level, req.repo, req.duration, req.id);
        return Ok(());
    }
    let req = super::wait::wait_for_decision(&client, req, timeout).await?;
    super::wait::finish(&client, &req, args.json).await
}

/// Keeps the approved grant's credential where git's helper finds it. The
/// gateway credential lands with the git integration; until a provider mints
/// one, the grant itself is the access.
pub async fn store_credential(_client: &Client, _req: &AccessRequest) -> Result<(), CommandError> {
    Ok(())
}

/// Drops the cached credential of a grant that ended (no-op until credentials are cached).
pub fn forget_credential(_grant: &api::Grant) {}
