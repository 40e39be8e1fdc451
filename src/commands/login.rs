//! `jit login [--server URL]`: checks a token with the broker, then keeps it in the keychain.

use std::io::Read;

use crate::client::Client;
use crate::domain::token::{ExposeSecret, SecretString};
use crate::error::{CommandError, ExitKind};
use crate::keychain::Keychain;
use crate::session::{self, StoredLogin};
use crate::ui;
use clap::Args;

use crate::commands::args::JsonFlag;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The broker's URL (default: $JIT_SERVER)
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// A CA certificate (PEM) to trust for this broker beyond the system's
    /// roots; remembered with the login (default: $JIT_CA_FILE)
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub json: JsonFlag,
}

fn read_token(server: &str) -> Result<SecretString, CommandError> {
    let token = if ui::can_prompt() {
        dialoguer::Password::new()
            .with_prompt(format!("Token for {server}"))
            .interact()
            .map_err(|e| CommandError::unexpected(format!("cannot read the token: {e}")))?
    } else {
        let mut input = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut input)
            .map_err(|e| CommandError::bad_input(format!("cannot read the token from stdin: {e}")))?;
        input
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(CommandError::bad_input("no token given")
            .hint("type or paste the token an admin gave you, or pipe it: `jit login --server URL < token-file`"));
    }
    if token.contains(char::is_whitespace) {
        return Err(CommandError::bad_input("the token contains whitespace; paste just the token"));
    }
    Ok(SecretString::from(token))
}

pub async fn cmd_login(args: &LoginArgs) -> Result<(), CommandError> {
    let server = args
        .server
        .clone()
        .or_else(|| std::env::var("JIT_SERVER").ok().filter(|s| !s.trim().is_empty()))
        .ok_or_else(|| CommandError::bad_input("no broker URL").hint("pass --server URL (or set JIT_SERVER)"))?;
    let server = server.trim().trim_end_matches('/').to_string();
    let ca_file = args.ca_file.clone().or_else(|| std::env::var_os("JIT_CA_FILE").filter(|v| !v.is_empty()).map(Into::into));
    let ca_file = ca_file.map(|p| std::fs::canonicalize(&p).unwrap_or(p));
    // Check the URL and open the keychain before asking for anything.
    Client::new(&server, None, ca_file.as_deref())?;
    let keychain = Keychain::open()?;
    let token = read_token(&server)?;
    let user = Client::new(&server, Some(token.clone()), ca_file.as_deref())?.whoami().await.map_err(|e| {
        let err = CommandError::from(e);
        if err.kind == ExitKind::NotAllowed {
            CommandError::new(ExitKind::NotAllowed, format!("{server} refused this token: {}", err.message))
        } else {
            err
        }
    })?;
    let previous = session::load(&keychain).ok().flatten();
    let fingerprint = crate::domain::token::fingerprint(token.expose_secret());
    session::save(&keychain, &StoredLogin { server: server.clone(), token, ca_file, user: Some(user.name.clone()) })?;
    // One stored login serves every shell of this OS user: say whose this
    // one replaces, and keep the cache to the right person's credentials.
    let replaced =
        previous.as_ref().filter(|p| !(session::same_server(&p.server, &server) && p.user.as_deref() == Some(user.name.as_str())));
    let old = previous.as_ref().map(|p| crate::domain::token::fingerprint(p.token.expose_secret()));
    let removed = match replaced {
        Some(_) => crate::credcache::forget_login(&keychain, old.as_deref())?,
        None => 0,
    };
    crate::credcache::adopt_login(fingerprint, old.filter(|_| replaced.is_none()))?;
    if let Some(warning) = keychain.file_warning() {
        eprintln!("{warning}");
    }
    let replaced_json = replaced.map(|p| serde_json::json!({"server": p.server, "user": p.user}));
    if args.json.json {
        return crate::output::print_json(
            &serde_json::json!({"server": server, "user": user, "keychain": keychain.backend().name(), "replaced": replaced_json}),
        );
    }
    if let Some(p) = replaced {
        let who = p.user.as_deref().map(|u| format!("{u}'s login")).unwrap_or_else(|| "the login".to_string());
        eprintln!(
            "replacing {who} at {}: one login serves every shell of this OS user; {removed} cached git credential(s) of that login removed",
            p.server
        );
    }
    eprintln!(
        "{}",
        ui::success(&format!("Logged in to {server} as {} (token kept in the {} keychain)", user.name, keychain.backend().name()))
    );
    Ok(())
}
