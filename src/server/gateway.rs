//! The gateway provider's git side: smart HTTP for the bare repositories the
//! broker guards, through `git http-backend`, checked against live grants.
//!
//! Every request must carry HTTP Basic credentials whose password is a
//! credential the broker minted for one grant (only its hash is stored). The
//! grant must be live now, for this repo and this user; `git-upload-pack`
//! needs read and `git-receive-pack` needs write. No credential, or an ended
//! grant, gets 401 with a Basic challenge so git asks its helpers; too low a
//! level gets 403 with a plain-text message git shows the user.
//!
//! Only the four smart-HTTP endpoints are served (no dumb HTTP), and the CGI
//! child is streamed both ways: a pack never sits whole in memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::broker::Broker;
use crate::domain::Level;
use crate::domain::audit::{Action, NewEvent};
use crate::domain::request::{GrantStatus, grant_status};
use crate::domain::token::TokenHash;
use crate::store::GrantRecord;

/// Which git service a request is for, and the level it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    fn needs(self) -> Level {
        match self {
            Service::UploadPack => Level::Read,
            Service::ReceivePack => Level::Write,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }
}

/// Splits `acme/api.git/info/refs` into the repo name and the rest, and says
/// which service it is; `None` for anything but smart HTTP.
pub fn route(path: &str, method: &Method, query: Option<&str>) -> Option<(String, &'static str, Service)> {
    let (repo, rest) = path.split_once(".git/")?;
    if repo.is_empty() || repo.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return None;
    }
    let service = match (method, rest) {
        (&Method::GET, "info/refs") => match query.unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("service=")) {
            Some("git-upload-pack") => Service::UploadPack,
            Some("git-receive-pack") => Service::ReceivePack,
            _ => return None,
        },
        (&Method::POST, "git-upload-pack") => Service::UploadPack,
        (&Method::POST, "git-receive-pack") => Service::ReceivePack,
        _ => return None,
    };
    let rest: &'static str = if rest == "info/refs" { "info/refs" } else { service.name() };
    Some((repo.to_string(), rest, service))
}

/// Finds the bare repositories under `dir` (`NAME.git`, up to three levels deep).
pub fn discover(dir: &Path) -> std::io::Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if !path.is_dir() {
                continue;
            }
            let rel = path.strip_prefix(root).expect("walked from root").to_string_lossy().replace('\\', "/");
            if let Some(name) = rel.strip_suffix(".git") {
                if path.join("HEAD").is_file() && path.join("objects").is_dir() {
                    out.push(name.to_string());
                }
            } else if depth < 3 {
                walk(root, &path, depth + 1, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, 1, &mut out)?;
    out.sort();
    Ok(out)
}

fn challenge(message: &str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"jit\""));
    r
}

fn plain(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
}

/// The user name and password of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Who may do what: the grant behind the presented credential, if it covers this request.
async fn authorize(broker: &Broker, headers: &HeaderMap, repo: &str, service: Service) -> Result<GrantRecord, Response> {
    let Some((user, password)) = basic_credentials(headers) else {
        return Err(challenge("jit: credentials required; run `jit setup` once, then `jit request` for access"));
    };
    let now = Broker::now();
    let grant = match broker.store.grant_by_credential(&TokenHash::of(&password), now).await {
        Ok(Some(g)) => g,
        Ok(None) => return Err(challenge("jit: this credential is not valid (unknown or expired)")),
        Err(e) => {
            tracing::error!(error = %e, "gateway: credential lookup failed");
            return Err(plain(StatusCode::SERVICE_UNAVAILABLE, "jit: the broker could not check your access; try again".into()));
        }
    };
    if grant.user != user || grant.repo != repo {
        return Err(challenge("jit: this credential is not for this repository"));
    }
    match grant_status(grant.expires_at, grant.revoked_at, now) {
        GrantStatus::Active => {}
        ended => return Err(challenge(&format!("jit: your grant {} on {repo} {}", grant.id, ended.phrase()))),
    }
    if !grant.level.covers(service.needs()) {
        let verb = if service == Service::ReceivePack { "pushing" } else { "fetching" };
        return Err(plain(
            StatusCode::FORBIDDEN,
            format!(
                "jit: your grant on {repo} is {}; {verb} needs {}.\njit: ask for it: jit request {repo} --level {} --for 1h --reason '...'",
                grant.level,
                service.needs(),
                service.needs()
            ),
        ));
    }
    Ok(grant)
}

pub async fn serve(
    State(broker): State<Arc<Broker>>,
    method: Method,
    UrlPath(path): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(dir) = broker.config.gateway_dir.clone() else {
        return plain(StatusCode::NOT_FOUND, "jit: this broker serves no git repositories".into());
    };
    let Some((repo, rest, service)) = route(&path, &method, query.as_deref()) else {
        return plain(StatusCode::NOT_FOUND, "jit: not a git smart-HTTP request this gateway serves".into());
    };
    if !broker.gateway_repos.contains(&repo) {
        return plain(StatusCode::NOT_FOUND, format!("jit: no repository `{repo}` here"));
    }
    let grant = match authorize(&broker, &headers, &repo, service).await {
        Ok(g) => g,
        Err(response) => return response,
    };
    // One audit event per git operation: each starts with exactly one ref advertisement.
    if rest == "info/refs" {
        let action = if service == Service::ReceivePack { Action::GitPush } else { Action::GitFetch };
        let mut event = NewEvent::new(&grant.user, action);
        event.request_id = Some(grant.request_id);
        event.grant_id = Some(grant.id);
        event.repo = Some(repo.clone());
        event.level = Some(grant.level);
        event.detail = Some(service.name().to_string());
        if let Err(e) = broker.store.append_events(vec![event], Broker::now()).await {
            tracing::error!(error = %e, "gateway: audit append failed; refusing the git request");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "jit: the broker could not record this operation; try again".into());
        }
        tracing::info!(user = %grant.user, %repo, service = service.name(), "git operation");
    }
    match run_backend(&dir, &repo, rest, &method, query.as_deref(), &headers, &grant.user, body).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "gateway: git http-backend failed");
            plain(StatusCode::BAD_GATEWAY, "jit: the git backend failed".into())
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_backend(
    dir: &PathBuf,
    repo: &str,
    rest: &str,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    user: &str,
    body: Body,
) -> std::io::Result<Response> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", dir)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{repo}.git/{rest}"))
        .env("REQUEST_METHOD", method.as_str())
        .env("QUERY_STRING", query.unwrap_or(""))
        .env("REMOTE_USER", user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, var) in [
        (header::CONTENT_TYPE, "CONTENT_TYPE"),
        (header::CONTENT_LENGTH, "CONTENT_LENGTH"),
        (header::CONTENT_ENCODING, "HTTP_CONTENT_ENCODING"),
    ] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            cmd.env(var, v);
        }
    }
    if let Some(v) = headers.get("git-protocol").and_then(|v| v.to_str().ok()) {
        cmd.env("GIT_PROTOCOL", v);
    }
    let mut child = cmd.spawn()?;
    // Request body → CGI stdin, chunk by chunk.
    let mut stdin = child.stdin.take().expect("piped");
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    if stdin.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        let _ = stdin.shutdown().await;
    });
    let stderr = child.stderr.take().expect("piped");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::warn!(line = %line, "git http-backend");
        }
    });
    // CGI headers, then the body streamed as it comes.
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut status = StatusCode::OK;
    let mut response_headers = HeaderMap::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).await? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let (Ok(n), Ok(v)) = (header::HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response_headers.append(n, v);
        }
    }
    let stream = futures_util::stream::unfold((stdout, child), |(mut out, mut child)| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match out.read(&mut buf).await {
            Ok(0) => {
                let _ = child.wait().await;
                None
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), (out, child)))
            }
            Err(e) => Some((Err(e), (out, child))),
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_smart_http_routes() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            route("demo.git/info/refs", &get, Some("service=git-upload-pack")),
            Some(("demo".into(), "info/refs", Service::UploadPack))
        );
        assert_eq!(
            route("acme/api.git/info/refs", &get, Some("service=git-receive-pack")),
            Some(("acme/api".into(), "info/refs", Service::ReceivePack))
        );
        assert_eq!(route("demo.git/git-upload-pack", &post, None), Some(("demo".into(), "git-upload-pack", Service::UploadPack)));
        assert_eq!(route("demo.git/git-receive-pack", &post, None), Some(("demo".into(), "git-receive-pack", Service::ReceivePack)));
        for (path, method, query) in [
            ("demo.git/info/refs", &get, None),
            ("demo.git/info/refs", &get, Some("service=git-upload-archive")),
            ("demo.git/HEAD", &get, None),
            ("demo.git/objects/info/packs", &get, None),
            ("demo.git/git-receive-pack", &get, None),
            ("../etc.git/info/refs", &get, Some("service=git-upload-pack")),
            ("a//b.git/git-upload-pack", &post, None),
            ("demo/info/refs", &get, Some("service=git-upload-pack")),
        ] {
            assert_eq!(route(path, method, query), None, "{path} {query:?}");
        }
    }

    #[test]
    fn basic_credentials_parse() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YWxpY2U6cyNjcmV0OngK"));
        let (u, p) = basic_credentials(&h).unwrap();
        assert_eq!(u, "alice");
        assert!(p.starts_with("s#cret"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(basic_credentials(&h).is_none());
    }
}
