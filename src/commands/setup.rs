//! `jit setup [--uninstall]`: make git ask jit first for the hosts jit guards,
//! and send git for repos the gateway fronts to the gateway: the hosts those
//! repos live on are handed to jit's remote helper (one `insteadOf` per host,
//! in a file of jit's own that the global config includes), which routes
//! each URL exactly (see `domain::url_rewrite`).

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

/// jit's own git config file (the remote helper and the hosts it routes),
/// which the global git config includes.
fn rewrites_file() -> Result<std::path::PathBuf, CommandError> {
    crate::fsutil::user_data_dir()
        .map(|d| d.join("url-rewrites.gitconfig"))
        .ok_or_else(|| CommandError::unexpected("no data directory for jit (set HOME)"))
}

/// The link to this binary that git's `remote-jit` alias runs (made when
/// repos are fronted, removed when none are); see `git::remote_helper`.
fn remote_helper_link(exe: &std::path::Path, wanted: bool) -> Result<Option<std::path::PathBuf>, CommandError> {
    let link = rewrites_file()?.with_file_name(crate::domain::url_rewrite::HELPER_LINK);
    let failed = |e: std::io::Error| CommandError::unexpected(format!("cannot link {}: {e}", link.display()));
    if !wanted {
        let _ = std::fs::remove_file(&link);
        return Ok(None);
    }
    if std::fs::read_link(&link).ok().as_deref() != Some(exe) {
        if let Some(dir) = link.parent() {
            crate::fsutil::create_private_dir(dir).map_err(failed)?;
        }
        let _ = std::fs::remove_file(&link);
        #[cfg(unix)]
        std::os::unix::fs::symlink(exe, &link).map_err(failed)?;
        #[cfg(not(unix))]
        return Err(failed(std::io::Error::other("jit routes fronted repos' URLs on Unix systems only")));
    }
    Ok(Some(link))
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
    let prefixes = url_rewrite::routed_prefixes(&fronted);
    let link = remote_helper_link(&exe, !fronted.is_empty())?;
    let text = link.map(|link| url_rewrite::config_text(&prefixes, &config::remote_helper_command(&link)));
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
