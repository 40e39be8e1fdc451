//! The CGI bridge to `git http-backend`, for bare repositories on this machine.
//!
//! The child gets a clean environment (no user or system git config), only
//! the request's own CGI variables, and its body through a pipe; its answer
//! is parsed for the CGI headers and then streamed to the client as it comes.

use std::path::Path;
use std::process::Stdio;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One request for `git http-backend`.
pub struct CgiRequest<'a> {
    /// `GIT_PROJECT_ROOT`: the directory holding the bare repos.
    pub project_root: &'a Path,
    /// `/NAME.git/info/refs` and the like.
    pub path_info: String,
    pub method: &'a Method,
    /// Only what the gateway validated (`GitRoute::backend_query`), never the client's own.
    pub query: String,
    pub headers: &'a HeaderMap,
    /// Who git logs as the pusher.
    pub remote_user: &'a str,
}

/// Runs `git http-backend` for `request`, feeding it `body`, and streams its answer.
pub async fn run(request: CgiRequest<'_>, body: Body) -> std::io::Result<Response> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", request.project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", &request.path_info)
        .env("REQUEST_METHOD", request.method.as_str())
        .env("QUERY_STRING", &request.query)
        .env("REMOTE_USER", request.remote_user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // No CONTENT_LENGTH: given one, `git http-backend` waits for that many
    // bytes, so a body that ends short (a client gone midway, a push the
    // gateway cut off) left it waiting, then spinning once orphaned. Without
    // it the backend reads to the end of the pipe, which closes with the body.
    for (name, var) in [(header::CONTENT_TYPE, "CONTENT_TYPE"), (header::CONTENT_ENCODING, "HTTP_CONTENT_ENCODING")] {
        if let Some(v) = request.headers.get(name).and_then(|v| v.to_str().ok()) {
            cmd.env(var, v);
        }
    }
    if let Some(v) = request.headers.get("git-protocol").and_then(|v| v.to_str().ok()) {
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
