//! `jit logout`: forgets the stored token (the broker keeps it valid; an admin rotates it to kill it).

use crate::error::CommandError;
use crate::keychain::Keychain;
use crate::session::{self, LOGIN_KEY};

pub fn cmd_logout(json: bool) -> Result<(), CommandError> {
    let keychain = Keychain::open()?;
    let server = session::load(&keychain).ok().flatten().map(|l| l.server);
    let removed = keychain.delete(LOGIN_KEY)?;
    if json {
        return super::print_json(&serde_json::json!({"logged_out": removed, "server": server}));
    }
    match (removed, server) {
        (true, Some(server)) => eprintln!("Logged out of {server}"),
        (true, None) => eprintln!("Logged out"),
        (false, _) => eprintln!("Not logged in; nothing to remove"),
    }
    Ok(())
}
