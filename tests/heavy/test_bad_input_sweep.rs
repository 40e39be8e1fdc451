//! The bad-input sweep: every endpoint and every command, fed wrong types,
//! huge values, invalid UTF-8, control and bidi characters and traversal in
//! names. Every answer is a 4xx (the API's JSON error shape under `/v1`) or a
//! documented exit code with a message — never a 5xx, a panic or a hang — and
//! the broker is healthy, its audit chain intact, afterwards.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{TestBroker, cli_env, gateway_policy};

/// Every route the router serves (a test below checks the list is complete).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/whoami"),
    ("GET", "/v1/auth"),
    ("POST", "/v1/auth/device"),
    ("POST", "/v1/auth/device/token"),
    ("POST", "/v1/auth/browser"),
    ("POST", "/v1/auth/browser/token"),
    ("GET", "/v1/auth/callback"),
    ("DELETE", "/v1/auth/session"),
    ("GET", "/v1/repos"),
    ("GET", "/v1/users"),
    ("POST", "/v1/users"),
    ("DELETE", "/v1/users/{name}"),
    ("POST", "/v1/users/{name}/token"),
    ("GET", "/v1/requests"),
    ("POST", "/v1/requests"),
    ("GET", "/v1/requests/{id}"),
    ("POST", "/v1/requests/{id}/approve"),
    ("POST", "/v1/requests/{id}/deny"),
    ("POST", "/v1/requests/{id}/cancel"),
    ("GET", "/v1/grants"),
    ("GET", "/v1/grants/failing"),
    ("GET", "/v1/grants/unreviewed"),
    ("GET", "/v1/grants/{id}"),
    ("POST", "/v1/grants/{id}/revoke"),
    ("POST", "/v1/grants/{id}/credentials"),
    ("POST", "/v1/grants/{id}/extend"),
    ("POST", "/v1/grants/{id}/review"),
    ("GET", "/v1/grants/{id}/report"),
    ("GET", "/v1/notifications"),
    ("GET", "/v1/replicas"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/audit/verify"),
    ("GET", "/v1/audit/checkpoint"),
    ("GET", "/requests"),
    ("GET", "/requests/{id}"),
    ("POST", "/requests/{id}"),
    ("POST", "/requests/{id}/review"),
    ("GET", "/sign-in"),
    ("POST", "/sign-in"),
    ("POST", "/sign-in/idp"),
    ("POST", "/sign-out"),
    ("GET", "/git/{*path}"),
    ("POST", "/git/{*path}"),
];

/// Path segments that are not ids, not names, or not anything (raw, as sent).
fn bad_segments() -> Vec<String> {
    let mut v: Vec<String> = [
        "0",
        "-1",
        "abc",
        "1.5",
        "1e3",
        "0x10",
        "99999999999999999999999",
        "%FF",
        "%00",
        "%2E%2E",
        "..",
        ".",
        "%2F",
        "a%2Fb",
        "%0A",
        "%0D%0AX:1",
        "%E2%80%AE",
        "%E2%80%8Bdave",
        "%EF%BB%BF1",
        "1%20",
        "%",
        "%zz",
        "broker",
        "dave%00",
        "-rf",
        "~",
        "*",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("a".repeat(5000));
    v
}

/// Query values of the wrong type or shape, for every parameter any route reads.
fn bad_queries() -> Vec<String> {
    let keys = ["wait", "status", "limit", "before", "after", "since", "all", "live", "mine", "reviewable", "service"];
    let values = [
        "",
        "abc",
        "-1",
        "0",
        "1.5",
        "99999999999999999999",
        "%FF",
        "%00",
        "%E2%80%AE",
        "yes",
        "2",
        "-1s",
        "99999999h",
        "pending%0A",
        "1e9",
        "9999-99-99T99:99:99Z",
    ];
    let mut v: Vec<String> = keys.iter().flat_map(|k| values.iter().map(move |x| format!("{k}={x}"))).collect();
    v.push(format!("limit={}", "9".repeat(4000)));
    v.push("status=pending&status=approved".into());
    v.push("&&&==&".into());
    v.push("%FF=%FF".into());
    v
}

/// JSON values that are the wrong type, or the right type with bad content.
fn bad_json_values() -> Vec<Value> {
    vec![
        json!(1),
        json!(-1),
        json!(1.5e308),
        json!(true),
        Value::Null,
        json!([]),
        json!({}),
        json!(""),
        json!(" "),
        json!("\u{202e}evil"),
        json!("a\u{200b}b"),
        json!("nul\u{0}byte"),
        json!("line\nbreak"),
        json!("../../etc/passwd"),
        json!("😀"),
        json!("x".repeat(3000)),
        json!("x".repeat(70_000)),
    ]
}

/// A valid body for each POST route; the sweep breaks one field at a time.
fn template(path: &str) -> Option<Value> {
    Some(match path {
        "/v1/users" => json!({"name": "sweep", "groups": ["developers"], "admin": false}),
        "/v1/requests" => json!({"repo": "demo", "level": "write", "duration": "1h", "reason": "sweep"}),
        "/v1/requests/{id}/approve" => json!({"comment": "ok"}),
        "/v1/requests/{id}/deny" => json!({"reason": "no"}),
        "/v1/grants/{id}/revoke" => json!({"reason": "done"}),
        "/v1/grants/{id}/extend" => json!({"duration": "30m", "reason": "sweep"}),
        "/v1/grants/{id}/review" => json!({"outcome": "approved", "comment": "sweep"}),
        _ => return None,
    })
}

/// Raw bodies no JSON parser should take quietly.
fn bad_bodies() -> Vec<(Vec<u8>, &'static str)> {
    let json = "application/json";
    vec![
        (b"".to_vec(), json),
        (b"{".to_vec(), json),
        (b"null".to_vec(), json),
        (b"[]".to_vec(), json),
        (b"\"x\"".to_vec(), json),
        (b"{\"repo\": \"\xff\xfe\", \"name\": \"\xc0\xaf\"}".to_vec(), json),
        ("[".repeat(100_000).into_bytes(), json),
        (format!("{{\"reason\": \"{}\"}}", "x".repeat(2_000_000)).into_bytes(), json),
        (b"{\"repo\": 1, \"repo\": 2}".to_vec(), json),
        (b"repo=demo&level=read".to_vec(), "application/x-www-form-urlencoded"),
        (b"{}".to_vec(), "text/plain"),
        (b"{}".to_vec(), "application/json; charset=latin1"),
        (b"\x00\x01\x02".to_vec(), json),
    ]
}

/// One request written by hand, so nothing on the way fixes it up: the
/// status, the body, and how long the answer took.
async fn raw(addr: &str, method: &str, target: &str, headers: &[(String, Vec<u8>)], body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len()).into_bytes();
    for (name, value) in headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.write_all(&head).await.map_err(|e| e.to_string())?;
        // A refused request may be answered before its body is read; that is fine.
        let _ = stream.write_all(body).await;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange).await.map_err(|_| "no answer within 10 s".to_string())??;
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("not an HTTP response: {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.as_bytes().to_vec()).unwrap_or_default();
    Ok((status, body))
}

/// One hand-made request.
struct Case {
    method: &'static str,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

#[derive(Default)]
struct Sweep {
    cases: Vec<Case>,
}

impl Sweep {
    fn add(&mut self, method: &'static str, target: &str, headers: &[(String, Vec<u8>)], body: &[u8]) {
        self.cases.push(Case { method, target: target.to_string(), headers: headers.to_vec(), body: body.to_vec() });
    }

    /// Sends every case, a few at a time; returns the failures and how many
    /// answers had each status.
    async fn run(self, addr: &str) -> (Vec<String>, std::collections::BTreeMap<u16, usize>) {
        use futures_util::StreamExt;
        let answers: Vec<_> = futures_util::stream::iter(self.cases)
            .map(|case| async move {
                let answer = raw(addr, case.method, &case.target, &case.headers, &case.body).await;
                (case, answer)
            })
            .buffer_unordered(4)
            .collect()
            .await;
        let (mut failures, mut statuses) = (vec![], std::collections::BTreeMap::new());
        for (case, answer) in answers {
            if let Ok((status, _)) = &answer {
                *statuses.entry(*status).or_default() += 1;
            }
            if let Some(failure) = judge(&case, answer) {
                failures.push(failure);
            }
        }
        (failures, statuses)
    }
}

/// What is wrong with an answer, if anything.
fn judge(case: &Case, answer: Result<(u16, Vec<u8>), String>) -> Option<String> {
    let what = format!("{} {} (body {} bytes)", case.method, shorten(&case.target), case.body.len());
    // Bytes HTTP forbids in a header value are refused by the HTTP layer
    // itself, before any route: a bare 400 is the right answer there.
    let malformed = case.headers.iter().any(|(_, v)| v.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f));
    match answer {
        Err(e) => Some(format!("{what}: {e}")),
        Ok((status, _)) if malformed => (status != 400).then(|| format!("{what}: a malformed header got {status}")),
        Ok((status, _)) if status >= 500 => Some(format!("{what}: {status}")),
        // The sign-in callback is a page for a person's browser: an HTML
        // page that says what went wrong, never echoing what was sent.
        Ok((status, body)) if status >= 400 && case.target.starts_with("/v1/auth/callback") => {
            let text = String::from_utf8_lossy(&body);
            let page = text.starts_with("<!DOCTYPE html>") && text.contains("Not signed in");
            let echoed = case.target.split(['?', '&', '=']).skip(1).any(|part| part.len() > 3 && text.contains(part));
            (!page || echoed).then(|| format!("{what}: {status}, not the sign-in page, or it echoes the input: {text}"))
        }
        Ok((status, body)) if status >= 400 && case.target.starts_with("/v1/") => {
            let parsed: Option<Value> = serde_json::from_slice(&body).ok();
            let shaped = parsed.as_ref().is_some_and(|b| b["error"]["code"].is_string() && b["error"]["message"].is_string());
            (!shaped).then(|| format!("{what}: {status} without the JSON error shape: {}", String::from_utf8_lossy(&body)))
        }
        Ok(_) => None,
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 300 {
        let cut: String = s.chars().take(120).collect();
        let end: String = s.chars().rev().take(120).collect::<Vec<_>>().into_iter().rev().collect();
        format!("{cut}…({} bytes)…{end}", s.len())
    } else {
        s.to_string()
    }
}

fn bearer(token: &str) -> Vec<(String, Vec<u8>)> {
    vec![("Authorization".into(), format!("Bearer {token}").into_bytes()), ("Content-Type".into(), b"application/json".to_vec())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_bad_input_with_a_4xx() {
    // Generous limits, so the sweep reaches the handlers instead of the rate limiter.
    let policy =
        gateway_policy("1h").replace("[server]\n", "[server]\nauth_failures_per_minute = 1000000\ngit_requests_per_second = 100000\n");
    let b = TestBroker::start_with(&policy).await;
    let pending = b.request("alice", "demo", "write", "1h", Some("sweep")).await["id"].as_i64().unwrap();
    let granted = b.request("alice", "demo", "read", "1h", None).await;
    let grant = granted["grant"]["id"].as_i64().unwrap();
    let credential = b.post("alice", &format!("/v1/grants/{grant}/credentials"), json!({})).await.body;
    let basic = format!("alice:{}", credential["password"].as_str().unwrap());
    let basic = format!("Basic {}", base64_encode(basic.as_bytes()));

    let mut sweep = Sweep::default();
    // Long-polls return at once on a decided request, so a huge `wait` is not a minute's stall.
    let decided = granted["id"].as_i64().unwrap();
    let valid = |path: &str| path.replace("{id}", &pending.to_string()).replace("{name}", "dave").replace("{*path}", "demo.git/info/refs");
    let valid_grant = |path: &str| path.replace("{id}", &grant.to_string());

    for &(method, path) in ROUTES {
        for token in [b.token("admin"), b.token("alice")] {
            let headers =
                if path.starts_with("/git/") { vec![("Authorization".to_string(), basic.clone().into_bytes())] } else { bearer(token) };
            // Path parameters that are not what they should be.
            for seg in bad_segments() {
                if path.contains('{') {
                    let target = path.replace("{id}", &seg).replace("{name}", &seg).replace("{*path}", &format!("{seg}.git/info/refs"));
                    sweep.add(method, &target, &headers, b"{}");
                }
            }
            // Query parameters of the wrong type or shape.
            for query in bad_queries() {
                let target = if path.contains("/grants/") {
                    valid_grant(path)
                } else if path == "/v1/requests/{id}" {
                    path.replace("{id}", &decided.to_string())
                } else {
                    valid(path)
                };
                sweep.add(method, &format!("{target}?{query}"), &headers, b"{}");
            }
            // Bodies with one field broken at a time, and bodies that are not JSON at all.
            if method == "POST" && !path.starts_with("/git/") {
                let target = if path.contains("/grants/") { valid_grant(path) } else { valid(path) };
                if let Some(template) = template(path) {
                    for field in template.as_object().unwrap().keys() {
                        for value in bad_json_values() {
                            let mut body = template.clone();
                            body[field] = value;
                            sweep.add(method, &target, &headers, body.to_string().as_bytes());
                        }
                    }
                }
                for (body, content_type) in bad_bodies() {
                    let mut headers = headers.clone();
                    headers.retain(|(n, _)| n != "Content-Type");
                    headers.push(("Content-Type".into(), content_type.as_bytes().to_vec()));
                    sweep.add(method, &target, &headers, &body);
                }
            }
        }
        // Credentials that are not credentials.
        let target = valid(path);
        for auth in bad_authorizations() {
            sweep.add(method, &target, &[("Authorization".into(), auth)], b"{}");
        }
        sweep.add(method, &target, &[("X-Forwarded-For".into(), b"\xff, ::, 999.1.1.1, ;".to_vec())], b"{}");
    }
    // git's own routes, with a working credential and every other wrong thing.
    let git_headers = vec![("Authorization".to_string(), basic.clone().into_bytes())];
    for target in bad_git_targets() {
        for method in ["GET", "POST"] {
            sweep.add(method, &target, &git_headers, b"0000garbage\xff");
        }
    }
    sweep.add("POST", "/git/demo.git/git-upload-pack", &git_headers, &vec![b'0'; 1 << 20]);
    sweep.add("POST", "/git/demo.git/git-receive-pack", &git_headers, b"00a4garbage");

    let tried = sweep.cases.len();
    let (failures, statuses) = sweep.run(b.url.trim_start_matches("http://")).await;
    eprintln!("bad-input sweep: {tried} requests to {} routes; answers by status: {statuses:?}", ROUTES.len());
    assert!(failures.is_empty(), "{} of {tried} bad requests were mishandled:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(b.get("admin", "/healthz").await.status, 200);
    assert_eq!(b.get("admin", "/v1/audit/verify").await.body["ok"], true);
}

fn bad_authorizations() -> Vec<Vec<u8>> {
    vec![
        b"Bearer".to_vec(),
        b"Bearer ".to_vec(),
        b"Bearer \xff\xfe".to_vec(),
        format!("Bearer {}", "a".repeat(8000)).into_bytes(),
        b"Bearer jit_\x7f".to_vec(),
        b"bearer jit_abc".to_vec(),
        b"Basic".to_vec(),
        b"Basic Og==".to_vec(),
        b"Basic %%%".to_vec(),
        b"Basic YWxpY2U=".to_vec(),
        b"Basic \xff".to_vec(),
        b"Digest username=\"alice\"".to_vec(),
        b"Bearer jit_a, Bearer jit_b".to_vec(),
    ]
}

fn bad_git_targets() -> Vec<String> {
    let mut v: Vec<String> = [
        "/git/../../etc/passwd",
        "/git/demo.git/../../x.git/info/refs",
        "/git/%2e%2e/demo.git/info/refs",
        "/git/demo.git/info/refs?service=git-upload-pack&service=git-receive-pack",
        "/git/demo.git/info/refs?%73ervice=git-receive-pack",
        "/git/demo.git/info/refs?service=%FF",
        "/git/demo.git/info/refs?service=git-upload-archive",
        "/git/demo.git/objects/info/packs",
        "/git/demo.git/HEAD",
        "/git/demo.git/config",
        "/git/demo.git/git-upload-pack/../git-receive-pack",
        "/git/demo.git%00/info/refs",
        "/git/demo.git/info/refs%0A",
        "/git/DEMO.git/info/refs?service=git-upload-pack",
        "/git/.git/info/refs?service=git-upload-pack",
        "/git//demo.git/info/refs?service=git-upload-pack",
        "/git/demo/info/refs?service=git-upload-pack",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("/git/{}.git/info/refs?service=git-upload-pack", "a/".repeat(2000)));
    v
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn the_sweep_covers_every_route() {
    let router = include_str!("../../src/server/router.rs");
    for line in router.lines().filter(|l| l.contains(".route(\"")) {
        let path = line.split('"').nth(1).unwrap();
        assert!(ROUTES.iter().any(|(_, p)| *p == path), "route {path} is not in the bad-input sweep's ROUTES");
    }
}

/// Values no argument of any command should take quietly.
fn bad_arguments() -> Vec<OsString> {
    let mut v: Vec<OsString> =
        ["", " ", "-", "..", "../../etc/passwd", "a\nb", "\u{202e}x", "x\u{200b}", "-1", "0", "99999999999999999999", "😀", "%00"]
            .iter()
            .map(OsString::from)
            .collect();
    v.push(OsString::from_vec(vec![0xff, 0xfe]));
    v.push(OsString::from("x".repeat(100_000)));
    v
}

/// A valid invocation of each command (and who runs it), so each argument can
/// be broken while the rest stay right. `{pending}`, `{grant}`, `{config}`,
/// `{data}`, `{export}`, `{cases}` and `{url}` are filled in.
const INVOCATIONS: &[(&str, &[&str], &str)] = &[
    ("login", &["--server", "{url}"], "alice"),
    ("logout", &[], "alice"),
    ("whoami", &[], "alice"),
    ("request", &["demo", "--level", "read", "--for", "1h", "--reason", "sweep", "--no-wait", "--json"], "alice"),
    ("wait", &["{pending}", "--timeout", "1s"], "alice"),
    ("cancel", &["{pending}"], "alice"),
    ("requests", &["--pending", "--json"], "alice"),
    ("approve", &["{pending}", "--comment", "ok", "--yes"], "bob"),
    ("deny", &["{pending}", "--reason", "no"], "bob"),
    ("review", &["{grant}", "--approve", "--comment", "sweep"], "bob"),
    ("status", &["--json"], "alice"),
    ("extend", &["{grant}", "--for", "30m", "--reason", "sweep", "--no-wait", "--json"], "alice"),
    ("revoke", &["{grant}", "--reason", "done"], "alice"),
    ("repos", &["--json"], "alice"),
    ("setup", &[], "alice"),
    ("credential", &["get"], "alice"),
    ("doctor", &["--json"], "alice"),
    ("server", &["--init-admin", "sweeper", "--config", "{config}", "--data-dir", "{data}"], "admin"),
    ("admin user add", &["newbie", "--group", "developers"], "admin"),
    ("admin user list", &["--json"], "admin"),
    ("admin user remove", &["dave"], "admin"),
    ("admin token rotate", &["dave"], "admin"),
    ("admin grants", &["--failing"], "admin"),
    ("admin notifications", &["--failing"], "admin"),
    ("admin replicas", &["--json"], "admin"),
    ("audit", &["--since", "1h", "--json"], "admin"),
    ("audit grant", &["{grant}", "--json"], "admin"),
    ("audit verify", &["--file", "{export}"], "admin"),
    ("audit key", &[], "admin"),
    ("policy check", &["--config", "{config}"], "admin"),
    ("policy test", &["--config", "{config}", "{cases}"], "admin"),
    (
        "policy explain",
        &[
            "--config",
            "{config}",
            "--user",
            "alice",
            "--group",
            "developers",
            "--repo",
            "x",
            "--level",
            "read",
            "--for",
            "1h",
            "--from",
            "10.0.0.1",
        ],
        "admin",
    ),
];

/// Every command, reached through clap's own tree (so a new one cannot be missed).
fn leaf_commands(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(String, clap::Command)>) {
    let subs: Vec<&clap::Command> = cmd.get_subcommands().collect();
    if subs.is_empty() {
        out.push((path.join(" "), cmd.clone()));
    }
    for sub in subs {
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        leaf_commands(sub, p, out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_answers_bad_input_with_a_documented_exit_code() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    let pending = b.request("alice", "demo", "write", "1h", Some("sweep")).await["id"].to_string();
    let grant = b.request("alice", "demo", "read", "1h", None).await["grant"]["id"].to_string();
    let config = env.write("sweep/jit.toml", "[[repo]]\nname = \"x\"\nurl = \"https://example.com/x.git\"\n");
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    let export = env.write("sweep/export.jsonl", &env.run_with(&["audit", "--json"], &admin, None).success().stdout);
    let data = env.path("sweep/data");
    let cases = env.write("sweep/cases.toml", "[[case]]\nuser = \"alice\"\nrepo = \"x\"\nlevel = \"read\"\nexpect = \"denied\"\n");
    let fill = |s: &str| {
        s.replace("{pending}", &pending)
            .replace("{grant}", &grant)
            .replace("{config}", config.to_str().unwrap())
            .replace("{data}", data.to_str().unwrap())
            .replace("{export}", export.to_str().unwrap())
            .replace("{url}", &b.url)
            .replace("{cases}", cases.to_str().unwrap())
    };

    let mut leaves = vec![];
    leaf_commands(&jit::commands::util::public_command(&<jit::cli::Cli as clap::CommandFactory>::command()), vec![], &mut leaves);
    let (mut tried, mut codes, mut failures) = (0, std::collections::BTreeMap::<i32, usize>::new(), vec![]);
    for (name, cmd) in &leaves {
        let (_, template, user) =
            INVOCATIONS.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no invocation for `jit {name}`"));
        let token = b.token(user).to_string();
        let extra = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", token.as_str())];
        let base: Vec<OsString> = name.split(' ').chain(template.iter().copied()).map(|s| OsString::from(fill(s))).collect();
        let positionals = cmd.get_positionals().count();
        let mut cases: Vec<Vec<OsString>> = vec![];
        for arg in cmd.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
            for bad in bad_arguments() {
                let mut args = base.clone();
                if arg.is_positional() {
                    // Positionals follow the command words, in order.
                    let at = name.split(' ').count() + arg.get_index().unwrap_or(0);
                    if at < args.len() && positionals > 0 && !args[at].to_string_lossy().starts_with("--") {
                        args[at] = bad;
                    } else {
                        args.insert(name.split(' ').count(), bad);
                    }
                } else {
                    let long = format!("--{}", arg.get_long().unwrap());
                    if let Some(i) = args.iter().position(|a| a.to_str() == Some(long.as_str())) {
                        if arg.get_action().takes_values() {
                            args[i + 1] = bad;
                        } else {
                            let mut flag = OsString::from(format!("{long}="));
                            flag.push(&bad);
                            args[i] = flag;
                        }
                    } else if arg.get_action().takes_values() {
                        args.push(long.into());
                        args.push(bad);
                    } else {
                        let mut flag = OsString::from(format!("{long}="));
                        flag.push(&bad);
                        args.push(flag);
                    }
                }
                cases.push(args);
            }
        }
        let mut unknown = base.clone();
        unknown.push("--no-such-flag".into());
        cases.push(unknown);
        for args in cases {
            tried += 1;
            let shown = shorten(&args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" "));
            let prints_a_token = matches!(name.as_str(), "admin user add" | "admin token rotate" | "server" | "credential get");
            let Some(run) = env.run_os(&args, &extra, prints_a_token, Duration::from_secs(20)) else {
                failures.push(format!("jit {shown}: no exit within 20 s"));
                continue;
            };
            *codes.entry(run.code).or_default() += 1;
            if run.code == 0 && std::env::var("SWEEP_SHOW_OK").is_ok() {
                eprintln!("OK: jit {shown}");
            }
            if ![0, 2, 3, 4, 5].contains(&run.code) {
                failures.push(format!("jit {shown}: exit {} ({})", run.code, shorten(run.stderr.trim())));
            } else if run.stderr.contains("panicked") {
                failures.push(format!("jit {shown}: panicked: {}", shorten(run.stderr.trim())));
            } else if run.code != 0 && run.stderr.trim().is_empty() {
                failures.push(format!("jit {shown}: exit {} with nothing on stderr", run.code));
            }
        }
    }
    eprintln!("bad-input sweep: {tried} command lines over {} commands; exit codes: {codes:?}", leaves.len());
    assert!(failures.is_empty(), "{} of {tried} bad command lines were mishandled:\n{}", failures.len(), failures.join("\n"));
}
