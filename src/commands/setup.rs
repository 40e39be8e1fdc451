//! `jit setup [--uninstall]`: make git ask jit first for the hosts jit guards.

use std::collections::BTreeSet;

use crate::domain::repo::CloneUrl;
use crate::error::CommandError;
use crate::git::config::{self, SetupError, SetupState};
use clap::Args;

use crate::cli::JsonFlag;

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Remove exactly what `jit setup` added
    #[arg(long)]
    pub uninstall: bool,
    #[command(flatten)]
    pub json: JsonFlag,
}

impl From<SetupError> for CommandError {
    fn from(e: SetupError) -> Self {
        CommandError::unexpected(e.to_string())
    }
}

/// `scheme://host[:port]` of every clone URL the broker knows. The repos
/// themselves are remembered too, so git's helper knows which URLs to ask the
/// broker about before any grant.
async fn guarded_hosts() -> Result<Vec<String>, CommandError> {
    let client = super::client()?;
    let repos = client.repos().await?;
    crate::credcache::remember_repos(client.base(), &repos)?;
    let mut hosts = BTreeSet::new();
    for repo in repos {
        if let Some(url) = repo.clone_url.and_then(|u| CloneUrl::parse(&u).ok()) {
            hosts.insert(format!("{}://{}", url.scheme(), url.host_with_port()));
        }
    }
    Ok(hosts.into_iter().collect())
}

pub async fn cmd_setup(args: &SetupArgs) -> Result<(), CommandError> {
    let path = config::global_config_path()?;
    let mut state = SetupState::load()?;
    if args.uninstall {
        let done = config::uninstall(&path, &mut state)?;
        state.save()?;
        if args.json.json {
            let kept: Vec<_> = done.kept.iter().map(|(host, helper)| serde_json::json!({"host": host, "helper": helper})).collect();
            return crate::output::print_json(&serde_json::json!({"config": path, "restored": done.restored, "kept": kept}));
        }
        if done.restored.is_empty() {
            eprintln!("nothing to undo in {}", path.display());
        } else {
            eprintln!("restored the credential helpers for {} in {}", done.restored.join(", "), path.display());
        }
        for (host, helper) in &done.kept {
            eprintln!("kept `{helper}` for {host}: it was added after `jit setup`");
        }
        return Ok(());
    }
    let hosts = guarded_hosts().await?;
    let exe = std::env::current_exe().map_err(|e| CommandError::unexpected(format!("cannot find the jit binary: {e}")))?;
    let helper = config::helper_command(&exe);
    let changed = config::install(&path, &hosts, &helper, &mut state)?;
    state.save()?;
    if args.json.json {
        return crate::output::print_json(&serde_json::json!({"config": path, "hosts": hosts, "changed": changed, "helper": helper}));
    }
    if changed.is_empty() {
        eprintln!("already set up: git asks jit first for {}", hosts.join(", "));
    } else {
        eprintln!("git now asks jit first for {} ({}); undo with `jit setup --uninstall`", changed.join(", "), path.display());
    }
    Ok(())
}
