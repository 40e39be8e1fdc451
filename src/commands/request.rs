//! `jit request [REPO] --level L --for D [--reason R] [--break-glass]`: ask,
//! wait, and on approval keep the credential in the keychain. Break-glass
//! asks a break-glass rule, which grants at once and is reviewed afterwards.

use crate::api;
use crate::domain::{AccessDuration, Level};
use crate::error::CommandError;
use crate::keychain::Keychain;
use clap::Args;

use crate::commands::args::{LevelParser, WaitFlags, duration_parser};

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Repo: a short name, host/owner/name or a clone URL [default: this checkout's origin]
    pub repo: Option<String>,
    /// Access level
    #[arg(long, value_name = "LEVEL", value_parser = LevelParser)]
    pub level: Level,
    /// How long the access lasts once approved: 90s, 45m, 2h, 1h30m
    #[arg(long = "for", value_name = "DURATION", value_parser = duration_parser(), allow_hyphen_values = true)]
    pub duration: AccessDuration,
    /// Why you need it (some policies require one)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Only these refs (repeatable; `hotfix/*` is refs/heads/hotfix/*), within what the rule allows
    #[arg(long = "ref", value_name = "PATTERN", value_parser = ref_parser)]
    pub refs: Vec<String>,
    /// An emergency: granted at once under a break-glass rule (needs --reason), announced loudly and reviewed afterwards
    #[arg(long)]
    pub break_glass: bool,
    #[command(flatten)]
    pub wait: WaitFlags,
}

/// A ref pattern, checked before it travels (the broker checks it against the rule).
fn ref_parser(s: &str) -> Result<String, String> {
    crate::domain::refs::RefPattern::parse(s).map(|p| p.to_string()).map_err(|e| e.to_string())
}

/// The `origin` remote of the checkout around the current directory.
fn origin_url() -> Result<String, CommandError> {
    let no_repo = || {
        CommandError::bad_input("no repo given and no `origin` remote here")
            .hint("name the repo: jit request REPO --level read --for 1h (`jit repos` lists the repos the broker knows)")
    };
    let repo = git2::Repository::discover(".").map_err(|_| no_repo())?;
    // As written in the config: git's rewrites would hand back `jit::…` for
    // a host whose URLs jit's remote helper routes.
    let config = repo.config().map_err(|_| no_repo())?;
    config.get_string("remote.origin.url").map_err(|_| no_repo())
}

/// An SSH `origin` for a repo whose jit credential is an HTTPS token at the
/// host (GitHub, GitLab installation or project tokens) never meets that
/// credential: git goes with the person's own SSH key. Say so, with the one
/// command that fixes it. (Repos behind jit's gateway need nothing: `jit
/// setup` routes their SSH forms to it.)
async fn warn_if_ssh_cannot_use(client: &crate::client::Client, origin: &str, repo: &str) {
    if crate::domain::repo::ssh_host_path(origin).is_none() {
        return;
    }
    let Ok(repos) = client.repos().await else { return };
    let Some(r) = repos.iter().find(|r| r.name == repo) else { return };
    if let (Some(https), None) = (&r.clone_url, &r.upstream_url) {
        eprintln!(
            "jit: your origin is SSH ({origin}), and jit's credential for {repo} works over HTTPS only; switch once: git remote set-url origin {https}"
        );
    }
}

pub async fn cmd_request(args: &RequestArgs) -> Result<(), CommandError> {
    let origin = if args.repo.is_none() { Some(origin_url()?) } else { None };
    let repo = args.repo.clone().or_else(|| origin.clone()).expect("a repo or an origin");
    let client = super::client()?;
    if !args.wait.no_wait {
        // Before asking: a grant whose credential cannot be kept here would
        // leave git without access, and invite a second request.
        Keychain::open()?.check_writable()?;
    }
    let body = api::CreateRequest {
        repo,
        level: args.level.to_string(),
        duration: args.duration.to_string(),
        reason: args.reason.clone(),
        refs: args.refs.clone(),
        break_glass: args.break_glass,
    };
    let req = client.create_request(&body).await?;
    if req.break_glass && !req.existing {
        eprintln!(
            "jit: BREAK-GLASS: {} on {} granted at once without approval; it is announced, audited, and reviewed afterwards by {}",
            req.level,
            req.repo,
            req.approvers.join(", ")
        );
    }
    if let Some(origin) = &origin {
        warn_if_ssh_cannot_use(&client, origin, &req.repo).await;
    }
    let asked = format!("requested {} on {} for {}", req.level, req.repo, req.duration);
    super::wait::after_asking(&client, req, &args.wait, &asked).await.map(|_| ())
}
