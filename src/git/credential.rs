//! The git credential-helper protocol, and which URLs jit will answer for.
//!
//! Input is `key=value` lines up to a blank line (or EOF). Lines with NUL,
//! over-long lines and too many lines are refused. The parser and writer are
//! generic over `BufRead`/`Write` so they are tested with byte buffers.
//!
//! [`target`] is the security gate: it turns what git sent into a normalized
//! clone URL only when it names one repository exactly: a path is required
//! (never by host alone), no user name, no percent-encoding, dot segments or
//! anything but printable ASCII in the path, and plain `http` only to loopback.

use std::io::{BufRead, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::repo::CloneUrl;
use crate::domain::token::{AuthScheme, ExposeSecret, SecretString};

const MAX_LINE: usize = 8 * 1024;
const MAX_LINES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("credential input line {0} is longer than {MAX_LINE} bytes")]
    LineTooLong(usize),
    #[error("credential input line {0} contains a NUL byte")]
    Nul(usize),
    #[error("credential input line {0} is not key=value")]
    NotKeyValue(usize),
    #[error("credential input has more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("cannot read credential input: {0}")]
    Io(String),
}

/// What git asked about. A `password` git sends (with `store` and `erase`)
/// is not kept: jit never needs it, so it is never in memory to leak.
#[derive(Debug, Clone, Default)]
pub struct CredentialQuery {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub username: Option<String>,
    pub capabilities: Vec<String>,
    /// The challenges of the server's `401` (`wwwauth[]`, git 2.41+).
    pub wwwauth: Vec<String>,
    /// `url=` carried user-info (`user@`, or an empty `@`): never ours.
    pub url_userinfo: bool,
}

impl CredentialQuery {
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c == name)
    }

    /// Whether git is fetching or pushing, when the gateway's challenge said.
    pub fn service(&self) -> Option<crate::domain::smart_http::Service> {
        self.wwwauth.iter().find_map(|c| crate::domain::smart_http::Service::from_challenge(c))
    }
}

/// Reads one credential description.
pub fn parse<R: BufRead>(mut input: R) -> Result<CredentialQuery, ProtocolError> {
    let mut query = CredentialQuery::default();
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        // At most a full line and its `\n`: never more than that is read.
        let n = std::io::Read::take(&mut input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| ProtocolError::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            return Err(ProtocolError::LineTooLong(number));
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if number > MAX_LINES {
            return Err(ProtocolError::TooManyLines);
        }
        if line.contains(&0) {
            return Err(ProtocolError::Nul(number));
        }
        let line = std::str::from_utf8(line).map_err(|_| ProtocolError::NotKeyValue(number))?;
        let (key, value) = line.split_once('=').ok_or(ProtocolError::NotKeyValue(number))?;
        match key {
            "protocol" => query.protocol = Some(value.to_string()),
            "host" => query.host = Some(value.to_string()),
            "path" => query.path = Some(value.to_string()),
            "username" => query.username = Some(value.to_string()),
            "capability[]" => query.capabilities.push(value.to_string()),
            "wwwauth[]" => query.wwwauth.push(value.to_string()),
            "url" => {
                // Same meaning as its parts, split from the raw text without
                // normalising anything, so `target` judges exactly what git
                // sent; a URL that does not split answers nothing.
                match split_url(value) {
                    Some(parts) => {
                        query.protocol = Some(parts.protocol.to_string());
                        query.host = Some(parts.host.to_string());
                        query.path = (!parts.path.is_empty()).then(|| parts.path.to_string());
                        query.url_userinfo = parts.userinfo;
                    }
                    None => query.protocol = None,
                }
            }
            // `password` among them: not kept. Unknown keys are for newer gits and other helpers.
            _ => {}
        }
    }
    Ok(query)
}

/// A `url=` value split into its raw parts.
struct UrlParts<'a> {
    protocol: &'a str,
    host: &'a str,
    path: &'a str,
    userinfo: bool,
}

/// `scheme://[userinfo@]host[:port]/path` split as written: nothing decoded,
/// nothing resolved (`..` stays `..`), so the exact-match rules see the raw text.
fn split_url(raw: &str) -> Option<UrlParts<'_>> {
    let (protocol, rest) = raw.split_once("://")?;
    if protocol.is_empty() || !protocol.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        return None;
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((_, host)) => (true, host),
        None => (false, authority),
    };
    Some(UrlParts { protocol, host, path, userinfo })
}

/// Why jit will not answer for a query (shown only with JIT_DEBUG, never to git).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotOurs {
    #[error("no protocol or host")]
    Incomplete,
    #[error("no path: enable credential.useHttpPath for this host (jit setup does)")]
    NoPath,
    #[error("protocol {0} is not https (or http to loopback)")]
    Protocol(String),
    #[error("the URL carries a user name")]
    Username,
    #[error("the host or path is not a plain one")]
    Suspicious,
}

/// Splits git's `host` value into host and port (`[::1]:8420`, `example.com:8443`).
fn split_host(host: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = host.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((format!("[{inner}]"), port));
    }
    match host.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), Some(p.parse().ok()?))),
        None => Some((host.to_string(), None)),
    }
}

/// The exact clone URL a query names, or why there is none.
pub fn target(query: &CredentialQuery) -> Result<CloneUrl, NotOurs> {
    let (Some(protocol), Some(host)) = (&query.protocol, &query.host) else { return Err(NotOurs::Incomplete) };
    let path = query.path.as_deref().filter(|p| !p.is_empty()).ok_or(NotOurs::NoPath)?;
    if query.url_userinfo || query.username.as_deref().is_some_and(|u| !u.is_empty()) {
        return Err(NotOurs::Username);
    }
    let plain_host = |h: &str| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    // One rule for the raw path, whichever key it came in: no encoding, no
    // query or fragment, no dot segments, no `.git` segment of its own
    // (`demo/.git` is not `demo.git`), one trailing slash at most, nothing
    // invisible or look-alike (printable ASCII only, as repo names are).
    let plain_path = |p: &str| {
        !p.contains(['%', '\\', '?', '#', '@'])
            && p.chars().all(|c| c.is_ascii_graphic())
            && p.strip_suffix('/').unwrap_or(p).split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".." && seg != ".git")
    };
    let (hostname, port) = split_host(host).ok_or(NotOurs::Suspicious)?;
    if !plain_host(&hostname) || !plain_path(path) {
        return Err(NotOurs::Suspicious);
    }
    let url = CloneUrl::from_parts(protocol, &hostname, port, path).map_err(|_| NotOurs::Suspicious)?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if url.is_loopback() => Ok(url),
        other => Err(NotOurs::Protocol(other.to_string())),
    }
}

/// What jit tells git.
#[derive(Clone)]
pub struct Answer {
    pub username: String,
    pub password: SecretString,
    pub expires_unix: i64,
    /// Basic (user name and password), or Bearer (the password alone).
    pub scheme: AuthScheme,
}

/// Tells git to stop: no other helper, no prompt (`quit=1`). For a URL only
/// jit can open, once jit has said what to do: a username prompt would only
/// hide that line.
pub fn write_quit(mut out: impl Write) -> std::io::Result<()> {
    writeln!(out, "quit=1")
}

/// Why jit cannot hand git its credential.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unanswerable {
    /// A Bearer-only host, and a git that cannot send Bearer (it did not
    /// announce `capability[]=authtype`: older than 2.46).
    #[error(
        "this host takes the credential only as a Bearer token, which git sends from version 2.46 on; upgrade git (`jit doctor` checks it), or ask the broker's operator to front the repo with the gateway"
    )]
    GitTooOldForBearer,
}

/// Writes the answer: `username`, `password`, `password_expiry_utc`.
///
/// When git announces `capability[]=authtype` (git ≥ 2.46) the credential is
/// also marked `ephemeral`, and it travels pre-encoded (`authtype=Basic`,
/// `credential=…`) instead of as a password: git's storage helpers
/// (`store`, `cache`) are still asked to store every credential that worked,
/// and they keep any username and password they are given, ephemeral or not.
/// Without a password field there is nothing for them to write to disk. A
/// Bearer credential can only travel that way.
pub fn write_answer(mut out: impl Write, query: &CredentialQuery, answer: &Answer) -> Result<(), Unanswerable> {
    let authtype = query.has_capability("authtype");
    if answer.scheme == AuthScheme::Bearer && !authtype {
        return Err(Unanswerable::GitTooOldForBearer);
    }
    // git reads what it can; a helper whose stdout is gone has nothing left to say.
    let _ = if authtype {
        let (name, credential) = match answer.scheme {
            AuthScheme::Basic => ("Basic", STANDARD.encode(format!("{}:{}", answer.username, answer.password.expose_secret()))),
            AuthScheme::Bearer => ("Bearer", answer.password.expose_secret().to_string()),
        };
        write!(
            out,
            "capability[]=authtype\nauthtype={name}\ncredential={credential}\nephemeral=1\npassword_expiry_utc={}\n",
            answer.expires_unix
        )
    } else {
        write!(
            out,
            "username={}\npassword={}\npassword_expiry_utc={}\n",
            answer.username,
            answer.password.expose_secret(),
            answer.expires_unix
        )
    }
    .and_then(|()| out.flush());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(input: &str) -> CredentialQuery {
        parse(input.as_bytes()).unwrap()
    }

    const REAL: &str = "http://127.0.0.1:8420/git/demo.git";

    fn answers(input: &str) -> bool {
        target(&q(input)).is_ok_and(|u| u == CloneUrl::parse(REAL).unwrap())
    }

    #[test]
    fn parses_up_to_the_blank_line() {
        let query = q("protocol=https\nhost=example.com\npath=a/b.git\ncapability[]=authtype\n\nprotocol=http\n");
        assert_eq!(query.protocol.as_deref(), Some("https"));
        assert_eq!(query.path.as_deref(), Some("a/b.git"));
        assert!(query.has_capability("authtype"));
        assert_eq!(q("protocol=https\r\nhost=x\r\n").host.as_deref(), Some("x"));
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(parse(&b"protocol=https\nhost=a\0b\n"[..]).unwrap_err(), ProtocolError::Nul(2));
        assert_eq!(parse(&b"protocol\n"[..]).unwrap_err(), ProtocolError::NotKeyValue(1));
        let long = format!("path={}\n", "a".repeat(MAX_LINE));
        assert_eq!(parse(long.as_bytes()).unwrap_err(), ProtocolError::LineTooLong(1));
        let many = "x=y\n".repeat(MAX_LINES + 1);
        assert_eq!(parse(many.as_bytes()).unwrap_err(), ProtocolError::TooManyLines);
        assert!(parse(&b"path=\xff\n"[..]).is_err());
    }

    #[test]
    fn a_line_may_be_up_to_max_line_bytes_and_not_one_more() {
        // `path=` and then enough to make the line `len` bytes long.
        let line = |len: usize, end: &str| format!("path={}{end}", "a".repeat(len - "path=".len()));
        // What comes before the `\n` counts, a `\r` too.
        for (end, max) in [("\n", MAX_LINE), ("\r\n", MAX_LINE - 1), ("", MAX_LINE)] {
            let fits = parse(line(max, end).as_bytes()).unwrap_or_else(|e| panic!("{end:?}: {e}"));
            assert_eq!(fits.path.map(|p| p.len()), Some(max - "path=".len()), "{end:?}");
            assert_eq!(parse(line(max + 1, end).as_bytes()).unwrap_err(), ProtocolError::LineTooLong(1), "{end:?}");
        }
        // Long paths are real: a 5,000-byte line is read whole.
        assert_eq!(q(&line(5_000, "\n")).path.unwrap().len(), 5_000 - "path=".len());
        // A line after a full one is still read.
        let two = format!("{}host=x\n", line(MAX_LINE, "\n"));
        assert_eq!(q(&two).host.as_deref(), Some("x"));
    }

    #[test]
    fn up_to_max_lines_are_read() {
        let full = format!("{}host=last\n", "x=y\n".repeat(MAX_LINES - 1));
        for end in ["", "\n", "\nhost=after the blank line\n"] {
            assert_eq!(q(&format!("{full}{end}")).host.as_deref(), Some("last"), "{end:?}");
        }
        assert_eq!(parse(format!("{full}x=y\n").as_bytes()).unwrap_err(), ProtocolError::TooManyLines);
    }

    #[test]
    fn a_password_git_sends_is_not_kept() {
        let query = q("protocol=https\nhost=x\npassword=hunter2\n");
        let shown = format!("{query:?}");
        assert!(!shown.contains("hunter2") && shown.contains(r#"host: Some("x")"#), "{shown}");
    }

    #[test]
    fn answers_the_exact_repo_in_every_normal_spelling() {
        for ok in [
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo.git\n",
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo\n",
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo.git/\n",
            "url=http://127.0.0.1:8420/git/demo.git\n",
        ] {
            assert!(answers(ok), "{ok:?}");
        }
    }

    #[test]
    fn look_alikes_get_no_answer() {
        for bad in [
            "protocol=https\nhost=127.0.0.1:8420\npath=git/demo.git\n",    // other scheme
            "protocol=http\nhost=127.0.0.1:8421\npath=git/demo.git\n",     // other port
            "protocol=http\nhost=127.0.0.1\npath=git/demo.git\n",          // default port
            "protocol=http\nhost=127.0.0.2:8420\npath=git/demo.git\n",     // other host
            "protocol=http\nhost=evil127.0.0.1:8420\npath=git/demo.git\n", // ends with the real host
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo.git/..\n",  // dot segments
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo.git/../x.git\n",
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo-evil.git\n", // suffix
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo.git.evil\n",
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo.git/sub\n", // deeper path
            "protocol=http\nhost=127.0.0.1:8420\npath=git\n",              // prefix
            "protocol=http\nhost=127.0.0.1:8420\npath=git/%64emo.git\n",   // percent-encoding
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo%2egit\n",
            "protocol=http\nhost=127.0.0.1:8420\npath=git//demo.git\n",
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo.git?x\n",
            "protocol=http\nhost=127.0.0.1:8420\nusername=alice\npath=git/demo.git\n", // userinfo
            "url=http://alice@127.0.0.1:8420/git/demo.git\n",
            "protocol=http\nhost=alice@127.0.0.1:8420\npath=git/demo.git\n",
            "protocol=http\nhost=127.0.0.1:8420\n", // useHttpPath off
            "protocol=http\nhost=127.0.0.1:8420\npath=\n",
            "host=127.0.0.1:8420\npath=git/demo.git\n", // no protocol
            "protocol=http\nhost=127.0.0.1:abc\npath=git/demo.git\n",
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo/.git\n",
            // Regression: `url=` was normalised by url::Url first and skipped these rules.
            "url=http://127.0.0.1:8420/git/x/../demo.git\n",
            "url=http://127.0.0.1:8420/git/./demo.git\n",
            "url=http://127.0.0.1:8420/./git/demo.git\n",
            "url=http://127.0.0.1:8420/git/%2e%2e/git/demo.git\n",
            "url=http://127.0.0.1:8420/git/de%6do.git\n",
            "url=http://127.0.0.1:8420/git/demo.git?x=1\n",
            "url=http://127.0.0.1:8420/git/demo.git#frag\n",
            "url=http://@127.0.0.1:8420/git/demo.git\n",
            "url=http://:@127.0.0.1:8420/git/demo.git\n",
            "url=http://127.0.0.1:8420/git\\demo.git\n",
            "url=http://127.0.0.1:8420/git/\tdemo.git\n",
            "url=http://127.0.0.1:8420/git/demo/.git\n",
            // Found by tests/test_properties.rs: more than one trailing slash.
            "protocol=http\nhost=127.0.0.1:8420\npath=git/demo//\n",
            "url=http://127.0.0.1:8420/git/demo.git//\n",
            "url=http://127.0.0.1:8420\n",
            "url=127.0.0.1:8420/git/demo.git\n",
        ] {
            assert!(!answers(bad), "answered {bad:?}");
        }
    }

    #[test]
    fn a_url_without_a_plain_scheme_names_nothing() {
        for bad in ["url=://127.0.0.1:8420/git/demo.git\n", "url=ht tp://127.0.0.1:8420/git/demo.git\n", "url=h_t://x/a.git\n"] {
            let query = q(bad);
            assert_eq!(query.protocol, None, "{bad:?}");
            assert_eq!(target(&query), Err(NotOurs::Incomplete), "{bad:?}");
        }
        assert_eq!(q("url=git+ssh.v2-x://x/a.git\n").protocol.as_deref(), Some("git+ssh.v2-x"));
    }

    #[test]
    fn only_plain_hosts_and_paths_are_judged() {
        let suspicious = |host: &str, path: &str| target(&q(&format!("protocol=https\nhost={host}\npath={path}\n")));
        // What a URL parser would accept or decode in a host is refused before it gets the chance.
        for host in ["exa_mple.com", "example%2ecom", "exa*mple.com", "example.com!", ""] {
            assert_eq!(suspicious(host, "a/b.git"), Err(NotOurs::Suspicious), "{host:?}");
        }
        // Nothing invisible or look-alike in a path: printable ASCII only.
        for path in ["a/b c.git", "a/b\u{a0}c.git", "a/b\u{1}c.git", "a/b\u{7f}c.git", "a/b\u{200b}c.git", "a/\u{430}.git"] {
            assert_eq!(suspicious("example.com", path), Err(NotOurs::Suspicious), "{path:?}");
        }
        assert!(suspicious("git-01.example.com", "a/b.git").is_ok());
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert_eq!(target(&q("protocol=http\nhost=example.com\npath=a/b.git\n")), Err(NotOurs::Protocol("http".into())));
        assert!(target(&q("protocol=https\nhost=example.com\npath=a/b.git\n")).is_ok());
        assert!(target(&q("protocol=http\nhost=localhost:9\npath=a/b.git\n")).is_ok());
        assert!(target(&q("protocol=http\nhost=[::1]:9\npath=a/b.git\n")).is_ok());
        assert_eq!(target(&q("protocol=ftp\nhost=example.com\npath=a/b.git\n")), Err(NotOurs::Protocol("ftp".into())));
    }

    #[test]
    fn answer_format() {
        let answer =
            Answer { username: "alice".into(), password: SecretString::from("pw"), expires_unix: 1_700_000_000, scheme: AuthScheme::Basic };
        let mut out = Vec::new();
        write_answer(&mut out, &q("protocol=https\n"), &answer).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "username=alice\npassword=pw\npassword_expiry_utc=1700000000\n");
        let mut out = Vec::new();
        write_answer(&mut out, &q("capability[]=authtype\n"), &answer).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "capability[]=authtype\nauthtype=Basic\ncredential=YWxpY2U6cHc=\nephemeral=1\npassword_expiry_utc=1700000000\n"
        );
        // A Bearer-only host's token: as git's own Authorization scheme, or not at all.
        let bearer = Answer { scheme: AuthScheme::Bearer, password: SecretString::from("BBDC-tok"), ..answer };
        let mut out = Vec::new();
        write_answer(&mut out, &q("capability[]=authtype\n"), &bearer).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "capability[]=authtype\nauthtype=Bearer\ncredential=BBDC-tok\nephemeral=1\npassword_expiry_utc=1700000000\n"
        );
        let mut out = Vec::new();
        assert_eq!(write_answer(&mut out, &q("protocol=https\n"), &bearer), Err(Unanswerable::GitTooOldForBearer));
        assert!(out.is_empty(), "no password git would send as Basic");
    }
}
