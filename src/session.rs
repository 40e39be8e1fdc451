//! Who the CLI talks to, as whom: the stored login and the environment.
//!
//! `jit login` keeps `{server, token}` in the keychain under `login`.
//! `JIT_SERVER` and `JIT_TOKEN` override it for CI and scripts. The stored
//! token is only ever sent to the server it was stored for: pointing
//! `JIT_SERVER` elsewhere without `JIT_TOKEN` is "not logged in", never a leak
//! of the stored token to another host.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::domain::token::{ExposeSecret, SecretString, expose_secret};
use crate::error::{CommandError, ExitKind};
use crate::keychain::{Keychain, KeychainError};

pub const LOGIN_KEY: &str = "login";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredLogin {
    pub server: String,
    #[serde(serialize_with = "expose_secret")]
    pub token: SecretString,
    /// A CA certificate file to trust for this server, beyond the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Who the token is (the broker's answer at login), to say whose login a
    /// new one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Who the CLI talks to, as whom, trusting what.
#[derive(Debug, Clone)]
pub struct Session {
    pub server: String,
    pub token: SecretString,
    /// `JIT_CA_FILE`, else the stored login's.
    pub ca_file: Option<PathBuf>,
}

impl From<KeychainError> for CommandError {
    fn from(e: KeychainError) -> Self {
        let kind = match e {
            KeychainError::UnknownBackend(_) => ExitKind::BadInput,
            _ => ExitKind::Unexpected,
        };
        let hint = e.hint();
        let err = CommandError::new(kind, e.to_string());
        match hint {
            Some(h) => err.hint(h),
            None => err,
        }
    }
}

pub fn load(keychain: &Keychain) -> Result<Option<StoredLogin>, CommandError> {
    match keychain.get(LOGIN_KEY)? {
        None => Ok(None),
        Some(secret) => serde_json::from_str(secret.expose_secret())
            .map(Some)
            .map_err(|_| CommandError::unexpected("the stored login is unreadable").hint("run `jit logout`, then `jit login` again")),
    }
}

pub fn save(keychain: &Keychain, login: &StoredLogin) -> Result<(), CommandError> {
    let json = serde_json::to_string(login).map_err(|e| CommandError::unexpected(e.to_string()))?;
    keychain.set(LOGIN_KEY, &SecretString::from(json))?;
    Ok(())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

pub fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// The server and token to use, from the environment first, then the keychain.
pub fn resolve() -> Result<Session, CommandError> {
    let env_server = env("JIT_SERVER");
    let env_token = env("JIT_TOKEN").map(SecretString::from);
    let env_ca = env("JIT_CA_FILE").map(PathBuf::from);
    if let (Some(server), Some(token)) = (&env_server, &env_token) {
        return Ok(Session { server: server.clone(), token: token.clone(), ca_file: env_ca });
    }
    let stored = load(&Keychain::open()?)?;
    let not_logged_in =
        || CommandError::new(ExitKind::NotAllowed, "not logged in").hint("run `jit login --server URL`, or set JIT_SERVER and JIT_TOKEN");
    let session = |server: String, token: SecretString, login: &StoredLogin| Session {
        server,
        token,
        ca_file: env_ca.clone().or(login.ca_file.clone()),
    };
    match (env_server, env_token, stored) {
        (Some(server), None, Some(login)) if same_server(&server, &login.server) => Ok(session(server, login.token.clone(), &login)),
        (Some(server), None, Some(login)) => Err(CommandError::new(
            ExitKind::NotAllowed,
            format!(
                "not logged in to {server} (the stored login is for {}); the stored token is never sent to another server",
                login.server
            ),
        )
        .hint(format!("run `jit login --server {server}`, or set JIT_TOKEN"))),
        (None, Some(token), Some(login)) => Ok(session(login.server.clone(), token, &login)),
        (None, None, Some(login)) => Ok(session(login.server.clone(), login.token.clone(), &login)),
        _ => Err(not_logged_in()),
    }
}

pub fn client() -> Result<Client, CommandError> {
    let s = resolve()?;
    Ok(Client::new(&s.server, Some(s.token), s.ca_file.as_deref())?)
}
