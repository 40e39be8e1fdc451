//! `jit request [REPO] --level L --for D [--reason R]`: ask, wait, and on
//! approval keep the credential in the keychain.

use crate::api::{self, AccessRequest};
use crate::cli::RequestArgs;
use crate::client::{Client, ClientError};
use crate::credcache::{self, CachedGrant};
use crate::domain::repo::CloneUrl;
use crate::domain::request::RequestStatus;
use crate::domain::{AccessDuration, Level};
use crate::error::CommandError;
use crate::keychain::Keychain;

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

/// Keeps the approved grant's credential where git's helper finds it: the
/// password in the keychain, keyed by the grant's normalized clone URL, and
/// the grant's metadata in the local index. Repos without a provider that
/// mints credentials (or without a clone URL) need nothing stored.
pub async fn store_credential(client: &Client, req: &AccessRequest) -> Result<(), CommandError> {
    let Some(grant) = &req.grant else { return Ok(()) };
    let Some(url) = grant.clone_url.as_deref().and_then(|u| CloneUrl::parse(u).ok()) else { return Ok(()) };
    let credential = match client.mint_credential(grant.id).await {
        Ok(c) => c,
        // A repo at a host jit does not mint for: the grant alone is the access.
        Err(ClientError::Api { code, .. }) if code == crate::api::codes::CONFLICT => return Ok(()),
        // Someone else's grant (an approver waiting on a request): nothing of ours to keep.
        Err(ClientError::Api { code, .. }) if code == crate::api::codes::NOT_FOUND => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let level: Level = grant.level.parse().map_err(|e: crate::domain::level::UnknownLevel| CommandError::unexpected(e.to_string()))?;
    let cached = CachedGrant {
        server: client.base().to_string(),
        grant_id: grant.id,
        request_id: grant.request_id,
        repo: grant.repo.clone(),
        level,
        granted_at: Some(grant.granted_at),
        grant_expires_at: grant.expires_at,
        username: credential.username.clone(),
        credential_expires_at: credential.expires_at,
    };
    let keychain = Keychain::open()?;
    credcache::store(&keychain, &url.to_string(), cached, &credential.password)?;
    if let Some(warning) = keychain.file_warning() {
        eprintln!("{warning}");
    }
    let host = format!("{}://{}", url.scheme(), url.host_with_port());
    if !crate::git::config::is_installed(&host) {
        eprintln!("hint: git will not ask jit for {host} yet; run `jit setup` once");
    }
    Ok(())
}

/// Drops the cached credential of a grant that ended.
pub fn forget_credential(grant: &api::Grant) {
    if let Ok(keychain) = Keychain::open() {
        let _ = credcache::forget_grant(&keychain, grant.id);
    }
}
