//! `jit setup [--uninstall]`: make git ask jit first for the hosts jit guards,
//! and send git for repos the gateway fronts to the gateway (`insteadOf`
//! rewrites of their host URLs, kept in a file of jit's own that the global
//! config includes).

use std::collections::BTreeSet;

use crate::domain::repo::CloneUrl;
use crate::domain::url_rewrite::{self, Fronted};
use crate::error::CommandError;
use crate::git::config::{self, SetupError, SetupState};
use clap::Args;

use crate::commands::args::JsonFlag;

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

/// `scheme://host[:port]` of every clone URL the broker knows, and the repos
/// it fronts on other hosts. The repos themselves are remembered too, so
/// git's helper knows which URLs to ask the broker about before any grant.
async fn guarded() -> Result<(Vec<String>, Vec<Fronted>), CommandError> {
    let client = super::client()?;
    let repos = client.repos().await?;
    crate::credcache::remember_repos(client.base(), &repos)?;
    let mut hosts = BTreeSet::new();
    let mut fronted = Vec::new();
    for repo in repos {
        let Some(url) = repo.clone_url.as_deref().and_then(|u| CloneUrl::parse(u).ok()) else { continue };
        hosts.insert(format!("{}://{}", url.scheme(), url.host_with_port()));
        if let Some(upstream) = repo.upstream_url.as_deref().and_then(|u| CloneUrl::parse(u).ok()) {
            fronted.push(Fronted { gateway: url.to_string(), upstream });
        }
    }
    Ok((hosts.into_iter().collect(), fronted))
}

/// jit's own file of `insteadOf` rewrites, which the global git config includes.
fn rewrites_file() -> Result<std::path::PathBuf, CommandError> {
    crate::fsutil::user_data_dir()
        .map(|d| d.join("url-rewrites.gitconfig"))
        .ok_or_else(|| CommandError::unexpected("no data directory for jit (set HOME)"))
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
    let (hosts, fronted) = guarded().await?;
    let exe = std::env::current_exe().map_err(|e| CommandError::unexpected(format!("cannot find the jit binary: {e}")))?;
    let helper = config::helper_command(&exe);
    let mut changed = config::install(&path, &hosts, &helper, &mut state)?;
    let rewrites = url_rewrite::rewrites(&fronted);
    let text = (!fronted.is_empty()).then(|| url_rewrite::config_text(&rewrites));
    let rewrites_changed = config::set_rewrites(&path, &rewrites_file()?, text.as_deref(), &mut state)?;
    state.save()?;
    let sent: Vec<String> = fronted.iter().map(|f| f.upstream.to_string()).collect();
    if args.json.json {
        return crate::output::print_json(
            &serde_json::json!({"config": path, "hosts": hosts, "changed": changed, "helper": helper, "rewritten": sent}),
        );
    }
    if changed.is_empty() && !rewrites_changed {
        eprintln!("already set up: git asks jit first for {}", hosts.join(", "));
    } else {
        if changed.is_empty() {
            changed.clone_from(&hosts);
        }
        eprintln!("git now asks jit first for {} ({}); undo with `jit setup --uninstall`", changed.join(", "), path.display());
    }
    if rewrites_changed && !sent.is_empty() {
        eprintln!("git reaches {} through jit's gateway, at the URLs you already use (HTTPS and SSH)", sent.join(", "));
    }
    Ok(())
}
