//! `jit logout`: ends the broker session (when the identity provider signed
//! you in), then forgets the stored token, every cached git credential and the
//! requests left pending to follow. A token an admin issued stays valid at the
//! broker; an admin rotates it to kill it.

use crate::error::CommandError;
use crate::keychain::Keychain;
use crate::session::{self, LOGIN_KEY};

pub async fn cmd_logout(json: bool) -> Result<(), CommandError> {
    let keychain = Keychain::open()?;
    let login = session::load(&keychain).ok().flatten();
    // The session ends at the broker first; a broker out of reach does not keep anyone logged in here.
    let mut session_note = None;
    if let Some(login) = &login {
        let client = crate::client::Client::new(&login.server, Some(login.token.clone()), login.ca_file.as_deref())?;
        if let Err(e) = client.sign_out().await {
            let e = CommandError::from(e);
            // A token the broker no longer takes has no session left to end.
            if e.kind != crate::error::ExitKind::NotAllowed {
                session_note = Some(format!("the broker did not end the session ({}); it ends on its own", e.message));
            }
        }
    }
    let server = login.map(|l| l.server);
    let removed = keychain.delete(LOGIN_KEY)?;
    // Git credentials minted under this login go too.
    let credentials = crate::credcache::forget_all(&keychain)?;
    if json {
        return crate::output::print_json(
            &serde_json::json!({"logged_out": removed, "server": server, "credentials_removed": credentials, "warning": session_note}),
        );
    }
    if let Some(note) = &session_note {
        eprintln!("warning: {note}");
    }
    if credentials > 0 {
        eprintln!("removed {credentials} cached git credential(s)");
    }
    match (removed, server) {
        (true, Some(server)) => eprintln!("Logged out of {server}"),
        (true, None) => eprintln!("Logged out"),
        (false, _) => eprintln!("Not logged in; nothing to remove"),
    }
    Ok(())
}
