//! `jit util completions DIR` and `jit util man DIR` (hidden): generate the
//! committed `completions/` and `man/` from the clap definitions.

use std::path::Path;

use clap_complete::Shell;

use crate::error::CommandError;
use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum UtilCommand {
    /// Write completions for every shell into DIR
    Completions {
        /// Where the scripts go (the repo's `completions/`)
        dir: PathBuf,
    },
    /// Write one man page per command into DIR
    Man {
        /// Where the pages go (the repo's `man/`)
        dir: PathBuf,
    },
}

/// `full` is the whole command line (`Cli::command()`), handed in so the
/// commands never import the top level that imports them.
pub fn cmd_util(cmd: &UtilCommand, full: clap::Command) -> Result<(), CommandError> {
    let public = public_command(&full);
    match cmd {
        UtilCommand::Completions { dir } => write_completions(dir, &public),
        UtilCommand::Man { dir } => write_man_pages(dir, &public),
    }
}

/// The CLI as people see it: without hidden commands (`util`), which clap's
/// generators would otherwise list. No clap API removes a subcommand, so the
/// root is rebuilt with the visible ones.
pub fn public_command(full: &clap::Command) -> clap::Command {
    let visible: Vec<clap::Command> = full.get_subcommands().filter(|s| !s.is_hide_set()).cloned().collect();
    let text = |t: Option<&clap::builder::StyledStr>| t.map(ToString::to_string).unwrap_or_default();
    clap::Command::new("jit")
        .version(env!("CARGO_PKG_VERSION"))
        .about(text(full.get_about()))
        .long_about(text(full.get_long_about()))
        .after_long_help(text(full.get_after_long_help()))
        .disable_help_subcommand(true)
        .subcommand_required(true)
        .subcommands(visible)
}

pub fn write_completions(dir: &Path, public: &clap::Command) -> Result<(), CommandError> {
    std::fs::create_dir_all(dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
        clap_complete::generate_to(shell, &mut public.clone(), "jit", dir)?;
    }
    Ok(())
}

/// One page per command and subcommand: `jit.1`, `jit-request.1`, `jit-admin-user-add.1`, …
pub fn write_man_pages(dir: &Path, public: &clap::Command) -> Result<(), CommandError> {
    std::fs::create_dir_all(dir)?;
    // Pages of commands that no longer exist go, so the set always matches the CLI.
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("jit") && name.ends_with(".1") {
            std::fs::remove_file(entry.path())?;
        }
    }
    fn render(cmd: clap::Command, name: String, bin: String, dir: &Path) -> Result<(), CommandError> {
        let cmd = cmd.display_name(name.clone()).bin_name(bin.clone());
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            render(sub.clone(), format!("{name}-{}", sub.get_name()), format!("{bin} {}", sub.get_name()), dir)?;
        }
        // NAME already shows the one-line summary; DESCRIPTION gets the rest.
        let about = cmd.get_about().map(ToString::to_string).unwrap_or_default();
        let long = cmd.get_long_about().map(ToString::to_string).unwrap_or_default();
        let cmd = match long.strip_prefix(&about) {
            Some(rest) if !about.is_empty() && !rest.trim().is_empty() => cmd.long_about(rest.trim_start().to_string()),
            _ => cmd,
        };
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        std::fs::write(dir.join(format!("{name}.1")), out)?;
        Ok(())
    }
    render(public.clone(), "jit".to_string(), "jit".to_string(), dir)
}
