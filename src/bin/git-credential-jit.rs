//! `git-credential-jit`: the credential helper git runs for every fetch and
//! push to a host jit guards (`jit setup` configures it).
//!
//! Its start-up is most of the helper's cost, so this binary links only the
//! hot path — parse git's input, look the URL up in the local index, read one
//! keychain entry, answer — and starts in about half the time of the full CLI
//! (`benches/credential_helper.rs`). Everything else (a broker to ask, a line
//! to explain, a password to drop) it hands, with the same input, to
//! `jit credential` beside it. Like that command, it exits 0 whatever happens
//! and writes to stdout only an answer.

use std::io::Write;
use std::process::{Command, Stdio};

fn main() {
    let op = std::env::args().nth(1).unwrap_or_default();
    let handed_over = jit::commands::credential::answer_from_cache_alone(&op, std::io::stdin().lock(), &mut std::io::stdout().lock());
    let Err(input) = handed_over else { return };
    let jit = match std::env::current_exe() {
        Ok(me) => me.with_file_name("jit"),
        Err(e) => return eprintln!("jit: cannot find the jit binary: {e}"),
    };
    let child = Command::new(&jit).args(["credential", &op]).stdin(Stdio::piped()).spawn();
    match child {
        Ok(mut child) => {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(&input);
            }
            let _ = child.wait();
        }
        Err(e) => eprintln!("jit: cannot run {}: {e}", jit.display()),
    }
}
