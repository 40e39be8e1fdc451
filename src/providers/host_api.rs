//! What the providers that call a git host's REST API (GitHub, GitLab, Bitbucket)
//! share: one HTTP client's settings, the rule that the API is reached over
//! https, reading the broker's secret for the host, and turning transport
//! failures, rate limits and the host's own messages into words.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

use crate::domain::AccessDuration;
use crate::domain::token::SecretString;

/// How long one API call may take, unless the section says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait a rate limit can ask of the reaper before it tries again anyway.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The API's base URL, checked: https, or plain http on loopback only (the
/// broker's credential travels with every call).
pub fn api_url(url: &str) -> Result<String, String> {
    let url = url.trim_end_matches('/').to_string();
    let parsed = url::Url::parse(&url).map_err(|e| format!("api_url `{url}`: {e}"))?;
    let loopback = parsed.host_str().is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        return Err(format!("api_url `{url}`: the API is reached over https (plain http only on loopback)"));
    }
    Ok(url)
}

/// One client for the provider's calls: bounded, never following a redirect
/// with the broker's credential; `ca_file`'s roots trusted beside the system's.
pub fn client(timeout: Option<&str>, ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    let timeout = match timeout {
        Some(t) => t.parse::<AccessDuration>().map_err(|e| format!("timeout: {e}"))?.as_std(),
        None => DEFAULT_TIMEOUT,
    };
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("jit/", env!("CARGO_PKG_VERSION")));
    trusting(builder, ca_file)?.build().map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// `builder` trusting `ca_file`'s roots too (every client a provider makes for a host).
pub fn trusting(mut builder: reqwest::ClientBuilder, ca_file: Option<&Path>) -> Result<reqwest::ClientBuilder, String> {
    for root in extra_roots(ca_file)? {
        builder = builder.add_root_certificate(root);
    }
    Ok(builder)
}

/// The certificates in `ca_file` (PEM, one or more), trusted in addition to
/// the system's roots: a host behind a company's own CA.
pub fn extra_roots(ca_file: Option<&Path>) -> Result<Vec<reqwest::Certificate>, String> {
    let Some(path) = ca_file else { return Ok(Vec::new()) };
    let pem = std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    let roots =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("ca_file {}: not PEM certificates: {e}", path.display()))?;
    if roots.is_empty() {
        return Err(format!("ca_file {}: no PEM certificate in it", path.display()));
    }
    Ok(roots)
}

/// What was wrong with the host's TLS, when that is why a call failed: in
/// words an admin can act on (and a user can hand to one).
pub fn tls_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    causes(e).into_iter().find_map(|err| err.downcast_ref::<rustls::Error>()).map(describe_tls)
}

/// `e` and everything beneath it. A client's error wraps I/O errors that
/// wrap the real cause (a TLS alert, a reset), and an I/O error's own
/// `source` skips what it wraps, so that is looked into too.
pub fn causes<'e>(e: &'e (dyn std::error::Error + 'static)) -> Vec<&'e (dyn std::error::Error + 'static)> {
    let mut found = Vec::new();
    let mut pending = vec![e];
    while let Some(err) = pending.pop() {
        found.push(err);
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            pending.push(inner);
        }
        pending.extend(err.source());
    }
    found
}

fn describe_tls(e: &rustls::Error) -> String {
    use rustls::CertificateError as Cert;
    match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            Cert::UnknownIssuer => {
                "the host's TLS certificate is signed by an authority the broker does not trust (unknown issuer): give the provider a ca_file with the host's CA".into()
            }
            Cert::NotValidForName | Cert::NotValidForNameContext { .. } => {
                "the host's TLS certificate is not for this host name (name mismatch): check the URL's host".into()
            }
            Cert::Expired | Cert::ExpiredContext { .. } => "the host's TLS certificate has expired".into(),
            Cert::NotValidYet | Cert::NotValidYetContext { .. } => "the host's TLS certificate is not valid yet (check the broker's clock)".into(),
            Cert::Revoked => "the host's TLS certificate is revoked".into(),
            other => format!("the host's TLS certificate was refused ({other:?})"),
        },
        other => format!("the TLS handshake with the host failed ({other})"),
    }
}

/// The broker's secret for the host, from exactly one of a file (`FIELD_file`)
/// or an environment variable (`FIELD_env`); read once, never logged.
pub fn secret_from(
    field: &str,
    file: Option<&PathBuf>,
    var: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SecretString, String> {
    let text = match (file, var) {
        (Some(_), Some(_)) => return Err(format!("set one of {field}_file and {field}_env, not both")),
        (None, None) => return Err(format!("{field}_file or {field}_env: missing (the broker's {field} at the host)")),
        (Some(path), None) => std::fs::read_to_string(path)
            .map_err(|e| format!("{field}_file {}: {e}", path.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        (None, Some(var)) => env(var).ok_or_else(|| format!("{field}_env: the environment variable `{var}` is not set"))?,
    };
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(format!("the {field} is empty or has control characters ({field}_file / {field}_env)"));
    }
    Ok(SecretString::from(text))
}

/// A failed call in words, without the URL.
pub fn transport(e: reqwest::Error) -> String {
    if let Some(problem) = tls_problem(&e) {
        problem
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.without_url().to_string()
    }
}

/// How long the host asked the broker to wait: `Retry-After`, or the reset
/// time of an exhausted rate limit (`remaining` and `reset` name the host's
/// headers for them; the reset is a Unix time).
pub fn rate_limit_wait(headers: &reqwest::header::HeaderMap, remaining: &str, reset: &str) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(secs) = header("retry-after") {
        return Some(Duration::from_secs(secs.max(1)).min(MAX_RETRY_AFTER));
    }
    if header(remaining) == Some(0) {
        let reset = header(reset)?;
        let wait = reset.saturating_sub(Utc::now().timestamp().max(0) as u64).max(1);
        return Some(Duration::from_secs(wait).min(MAX_RETRY_AFTER));
    }
    None
}

/// The host's own message, quoted for ours: printable and bounded (it is
/// shown to the requester and kept in the audit log; it never carries a
/// credential). Empty when the host said nothing.
pub fn quoted(message: Option<&str>) -> String {
    let said: String = message.unwrap_or("").chars().filter(|c| !c.is_control()).take(200).collect();
    if said.is_empty() { String::new() } else { format!(": \"{said}\"") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_pem_certificates() {
        let dir = tempfile::tempdir().unwrap();
        assert!(extra_roots(None).unwrap().is_empty());
        let missing = extra_roots(Some(&dir.path().join("nope.pem"))).unwrap_err();
        assert!(missing.starts_with("ca_file ") && missing.contains("nope.pem"), "{missing}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(extra_roots(Some(&empty)).unwrap_err().contains("no PEM certificate"));
        let mut params = rcgen::CertificateParams::new(vec!["ca.example".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
        let bundle = dir.path().join("ca.pem");
        std::fs::write(&bundle, format!("{}{}", cert.pem(), cert.pem())).unwrap();
        assert_eq!(extra_roots(Some(&bundle)).unwrap().len(), 2);
        assert!(client(None, Some(&bundle)).is_ok());
    }

    #[test]
    fn the_api_is_reached_over_https_or_on_loopback() {
        assert_eq!(api_url("https://api.github.com/").unwrap(), "https://api.github.com");
        assert_eq!(api_url("http://127.0.0.1:9/api/v4").unwrap(), "http://127.0.0.1:9/api/v4");
        assert_eq!(api_url("http://localhost:9").unwrap(), "http://localhost:9");
        assert!(api_url("http://gitlab.example.com").unwrap_err().contains("over https"));
        assert!(api_url("ftp://127.0.0.1").unwrap_err().contains("over https"));
        assert!(api_url("not a url").unwrap_err().starts_with("api_url `not a url`"));
    }

    #[test]
    fn a_secret_comes_from_exactly_one_place() {
        let none = |_: &str| None;
        let file = PathBuf::from("/nonexistent/token");
        assert!(secret_from("token", None, None, none).unwrap_err().starts_with("token_file or token_env: missing"));
        assert!(secret_from("token", Some(&file), Some("T"), none).unwrap_err().contains("not both"));
        assert!(secret_from("token", None, Some("T"), none).unwrap_err().contains("`T` is not set"));
        assert!(secret_from("token", Some(&file), None, none).unwrap_err().starts_with("token_file /nonexistent/token"));
        assert!(secret_from("token", None, Some("T"), |_| Some("a\u{7}b".into())).unwrap_err().contains("control characters"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "glpat-secret\r\n").unwrap();
        use crate::domain::token::ExposeSecret;
        assert_eq!(secret_from("token", Some(&path), None, none).unwrap().expose_secret(), "glpat-secret");
    }

    #[test]
    fn a_rate_limit_says_how_long_to_wait() {
        let mut headers = reqwest::header::HeaderMap::new();
        let wait = |h: &reqwest::header::HeaderMap| rate_limit_wait(h, "x-ratelimit-remaining", "x-ratelimit-reset");
        assert_eq!(wait(&headers), None);
        headers.insert("retry-after", "0".parse().unwrap());
        assert_eq!(wait(&headers), Some(Duration::from_secs(1)), "never zero");
        headers.insert("retry-after", "999999".parse().unwrap());
        assert_eq!(wait(&headers), Some(MAX_RETRY_AFTER));
        headers.clear();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", (Utc::now().timestamp() + 120).to_string().parse().unwrap());
        let w = wait(&headers).unwrap();
        assert!((Duration::from_secs(118)..=Duration::from_secs(120)).contains(&w), "{w:?}");
        headers.insert("x-ratelimit-remaining", "10".parse().unwrap());
        assert_eq!(wait(&headers), None, "not exhausted");
    }

    #[tokio::test]
    async fn the_client_is_bounded_and_follows_no_redirect_with_the_brokers_credential() {
        assert!(client(Some("soon"), None).unwrap_err().starts_with("timeout:"));
        // A host answering with a redirect: the answer is the redirect itself.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/steal\r\nContent-Length: 0\r\n\r\n").await;
            }
        });
        let answer = client(None, None).unwrap().get(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(answer.status(), 302);
        // A host that never answers: cut at the timeout, and said so.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let e = client(Some("1s"), None).unwrap().get(format!("http://{silent_addr}/")).send().await.unwrap_err();
        assert_eq!(transport(e), "timed out");
        drop(silent);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let e = client(None, None).unwrap().get(format!("http://{closed}/")).send().await.unwrap_err();
        assert_eq!(transport(e), "could not connect");
    }

    #[test]
    fn the_hosts_message_is_quoted_printable_and_bounded() {
        assert_eq!(quoted(None), "");
        assert_eq!(quoted(Some("")), "");
        assert_eq!(quoted(Some("down\nfor\tnow")), ": \"downfornow\"");
        assert_eq!(quoted(Some(&"x".repeat(500))).len(), 200 + 4);
    }
}
