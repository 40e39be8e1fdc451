//! `jit util completions DIR` and `jit util man DIR` (hidden): generate the
//! committed `completions/` and `man/` from the clap definitions.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::CommandError;
use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum UtilCommand {
    /// Write completions for every shell into DIR
    Completions { dir: PathBuf },
    /// Write one man page per command into DIR
    Man { dir: PathBuf },
}

pub fn cmd_util(cmd: &UtilCommand) -> Result<(), CommandError> {
    match cmd {
        UtilCommand::Completions { dir } => write_completions(dir),
        UtilCommand::Man { dir } => write_man_pages(dir),
    }
}

pub fn write_completions(dir: &Path) -> Result<(), CommandError> {
    std::fs::create_dir_all(dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
        clap_complete::generate_to(shell, &mut Cli::command(), "jit", dir)?;
    }
    Ok(())
}

/// One page per command and subcommand: `jit.1`, `jit-request.1`, `jit-admin-user-add.1`, …
pub fn write_man_pages(dir: &Path) -> Result<(), CommandError> {
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
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        std::fs::write(dir.join(format!("{name}.1")), out)?;
        Ok(())
    }
    render(Cli::command(), "jit".to_string(), "jit".to_string(), dir)
}
