//! Broker logs, kept and searched for secrets. In-process brokers log (at
//! debug, so every line the code can write is written) into one buffer for
//! the whole test binary; spawned brokers' stderr is kept per process. Both
//! are searched when their broker goes away: for anything shaped like a jit
//! token or gateway password, and for every secret a test registered.

use std::sync::{Mutex, OnceLock};

static LOG: Mutex<String> = Mutex::new(String::new());
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Starts collecting the in-process brokers' logs (once per test binary) and
/// returns where the log ends now, for [`check_since`].
pub fn mark() -> usize {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("jit=debug"))
            .with_ansi(false)
            .with_writer(|| Collector)
            .try_init();
    });
    LOG.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Registers a secret that no log may contain (tokens and passwords of jit's
/// own shapes are found without this).
pub fn secret(s: &str) {
    if token_shaped(s) {
        return;
    }
    SECRETS.lock().unwrap_or_else(|e| e.into_inner()).push(s.to_string());
}

/// Searches the in-process log written since `mark`.
pub fn check_since(mark: usize) {
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    check(log.get(mark..).unwrap_or(""), "the broker's log");
}

/// Panics, naming the line, if `text` holds a secret.
pub fn check(text: &str, what: &str) {
    let secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    for line in text.lines() {
        let shaped = token_shaped(line);
        let registered = secrets.iter().any(|s| line.contains(s.as_str()));
        assert!(!shaped && !registered, "a secret leaked into {what}: {line}");
    }
}

/// Whether `line` holds a jit token (`jit_` + 43) or gateway password (`jitgw_` + 43).
fn token_shaped(line: &str) -> bool {
    ["jit_", "jitgw_"].iter().any(|prefix| {
        line.match_indices(prefix).any(|(at, _)| {
            let rest = &line[at + prefix.len()..];
            rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_').count() >= 43
        })
    })
}

struct Collector;

impl std::io::Write for Collector {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    let token = format!("jit_{}", "A".repeat(43));
    assert!(token_shaped(&format!("user created token={token}")));
    assert!(token_shaped(&format!("password=jitgw_{}", "b-_".repeat(15))));
    assert!(!token_shaped("JIT_LOG=debug jit_short jitgw_"));
    secret("upstream-Pa55word");
    assert!(std::panic::catch_unwind(|| check("upstream said: upstream-Pa55word", "a log")).is_err());
    check("nothing here", "a log");
}
