//! `jit logout`: forgets the stored token, every cached git credential and the
//! requests left pending to follow (the broker keeps the token valid; an admin
//! rotates it to kill it).

use crate::error::CommandError;
use crate::keychain::Keychain;
use crate::session::{self, LOGIN_KEY};

pub fn cmd_logout(json: bool) -> Result<(), CommandError> {
    let keychain = Keychain::open()?;
    let server = session::load(&keychain).ok().flatten().map(|l| l.server);
    let removed = keychain.delete(LOGIN_KEY)?;
    // Git credentials minted under this login go too.
    let credentials = crate::credcache::forget_all(&keychain)?;
    if json {
        return crate::output::print_json(
            &serde_json::json!({"logged_out": removed, "server": server, "credentials_removed": credentials}),
        );
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
