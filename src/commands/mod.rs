//! One file per command (a group is a folder with one file per subcommand).
//! Each command is an `Args` value plus one function returning
//! `Result<(), CommandError>`; this module dispatches and holds what they share.

pub mod admin;
pub mod audit;
pub mod server;

use serde::Serialize;

use crate::cli::{Cli, Command};
use crate::client::{Client, ClientError};
use crate::domain::token::Secret;
use crate::error::CommandError;

pub fn run(cli: Cli) -> Result<(), CommandError> {
    match cli.command {
        Command::Server(args) => server::cmd_server(&args),
        Command::Admin(cmd) => block_on(admin::run(cmd)),
        Command::Audit(args) => block_on(audit::run(&args)),
    }
}

/// Runs a command's async body on a small runtime of its own. Client commands
/// need one thread: they wait on the network, not on CPU.
pub fn block_on<F: std::future::Future<Output = Result<(), CommandError>>>(
    f: F,
) -> Result<(), CommandError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::unexpected(format!("cannot start the async runtime: {e}")))?
        .block_on(f)
}

/// The broker client for the current user: `JIT_SERVER` and `JIT_TOKEN`.
pub fn client() -> Result<Client, CommandError> {
    let server = std::env::var("JIT_SERVER")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let token = std::env::var("JIT_TOKEN")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|t| Secret::new(t.trim()));
    match (server, token) {
        (Some(server), Some(token)) => Ok(Client::new(&server, Some(token))?),
        _ => Err(ClientError::NotConfigured.into()),
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CommandError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| CommandError::unexpected(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Renders rows as aligned columns (header first); the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let t = super::table(
            &["ID", "NAME"],
            &[
                vec!["1".into(), "alice".into()],
                vec!["100".into(), "bob".into()],
            ],
        );
        assert_eq!(t, "ID   NAME\n1    alice\n100  bob");
    }
}
