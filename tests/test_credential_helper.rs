//! `jit credential get|store|erase` through the binary: exact URL matching,
//! the protocol's bad inputs, re-minting and the ended-grant hint. Whatever
//! happens, the helper exits 0 and says nothing unless it answers.

use std::time::Duration;

use crate::common::{Run, TestBroker, TestEnvironment, cli_env};

fn get(env: &TestEnvironment, input: &str) -> Run {
    let run = env.run_helper("get", input);
    assert_eq!(run.code, 0, "the helper must exit 0: {}", run.stderr);
    run
}

fn field<'a>(run: &'a Run, key: &str) -> Option<&'a str> {
    run.stdout.lines().find_map(|l| l.strip_prefix(&format!("{key}=")))
}

/// host:port and path of the demo repo, as git sends them.
fn parts(b: &TestBroker) -> (String, String) {
    (b.url.trim_start_matches("http://").to_string(), "git/demo.git".to_string())
}

/// git's question about the demo repo, as it sends it.
fn demo_query(b: &TestBroker) -> String {
    let (host, path) = parts(b);
    format!("protocol=http\nhost={host}\npath={path}\n")
}

/// How many credentials the broker minted, by its audit log.
async fn minted(b: &TestBroker) -> usize {
    b.audit().await.iter().filter(|e| e["action"] == "credential_minted").count()
}

async fn with_read_grant(b: &TestBroker, duration: &str) -> TestEnvironment {
    let env = cli_env(b);
    env.login(&b.url, b.token("alice")).success();
    env.run(&["request", "demo", "--level", "read", "--for", duration]).success();
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_only_the_exact_repo() {
    let b = TestBroker::start_gateway("1h").await;
    let env = with_read_grant(&b, "1h").await;
    let (host, path) = parts(&b);
    let (hostname, port) = host.split_once(':').unwrap();
    let port: u16 = port.parse().unwrap();

    let ok = get(&env, &format!("protocol=http\nhost={host}\npath={path}\n\n"));
    assert_eq!(field(&ok, "username"), Some("alice"));
    let password = field(&ok, "password").expect("a password").to_string();
    assert!(password.starts_with("jitgw_"));
    env.secret(&password);
    let expiry: i64 = field(&ok, "password_expiry_utc").unwrap().parse().unwrap();
    assert!(expiry > chrono::Utc::now().timestamp());
    // Normal spellings of the same repo.
    for same in [
        format!("protocol=http\nhost={host}\npath=git/demo\n"),
        format!("protocol=http\nhost={host}\npath=git/demo.git/\n"),
        format!("url={}\n", b.demo_url()),
    ] {
        assert_eq!(field(&get(&env, &same), "password"), Some(password.as_str()), "{same}");
    }
    let look_alikes = [
        format!("protocol=https\nhost={host}\npath={path}\n"),
        format!("protocol=http\nhost={hostname}:{}\npath={path}\n", port + 1),
        format!("protocol=http\nhost={hostname}\npath={path}\n"),
        format!("protocol=http\nhost=localhost:{port}\npath={path}\n"),
        format!("protocol=http\nhost=127.0.0.2:{port}\npath={path}\n"),
        format!("protocol=http\nhost=x{host}\npath={path}\n"),
        format!("protocol=http\nhost={host}.evil\npath={path}\n"),
        format!("protocol=http\nhost={host}\npath=git/demo.git/..\n"),
        format!("protocol=http\nhost={host}\npath=git/demo.git/../other.git\n"),
        format!("protocol=http\nhost={host}\npath=git/demo-evil.git\n"),
        format!("protocol=http\nhost={host}\npath=git/demo.git.evil\n"),
        format!("protocol=http\nhost={host}\npath=git/demo.git/info\n"),
        format!("protocol=http\nhost={host}\npath=git\n"),
        format!("protocol=http\nhost={host}\npath=git/de%6Do.git\n"),
        format!("protocol=http\nhost={host}\npath=git%2Fdemo.git\n"),
        format!("protocol=http\nhost={host}\npath=git/./demo.git\n"),
        format!("protocol=http\nhost={host}\nusername=alice\npath={path}\n"),
        format!("url=http://alice@{host}/{path}\n"),
        format!("url=http://alice:x@{host}/{path}\n"),
        format!("protocol=http\nhost={host}\n"),
        format!("protocol=http\nhost={host}\npath=\n"),
        format!("host={host}\npath={path}\n"),
    ];
    for input in &look_alikes {
        let run = get(&env, input);
        assert_eq!(run.stdout, "", "answered a look-alike: {input:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authtype_capable_git_gets_an_ephemeral_pre_encoded_credential() {
    let b = TestBroker::start_gateway("1h").await;
    let env = with_read_grant(&b, "1h").await;
    let (host, path) = parts(&b);
    let run = get(&env, &format!("capability[]=authtype\nprotocol=http\nhost={host}\npath={path}\n"));
    assert_eq!(field(&run, "capability[]"), Some("authtype"));
    assert_eq!(field(&run, "authtype"), Some("Basic"));
    assert_eq!(field(&run, "ephemeral"), Some("1"));
    assert!(field(&run, "password").is_none(), "no password for storage helpers to keep");
    let credential = field(&run, "credential").unwrap().to_string();
    use base64::Engine;
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&credential).unwrap()).unwrap();
    env.secret(&credential);
    let (user, password) = decoded.split_once(':').unwrap();
    env.secret(password);
    assert_eq!(user, "alice");
    // The pre-encoded header is the one git sends: the gateway must accept it as is.
    let info_refs = reqwest::Client::new()
        .get(format!("{}/{path}/info/refs?service=git-upload-pack", b.url))
        .header("Authorization", format!("Basic {credential}"))
        .send()
        .await
        .unwrap();
    assert_eq!(info_refs.status(), 200);
    assert_eq!(info_refs.headers()["content-type"], "application/x-git-upload-pack-advertisement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_protocol_input_is_refused_quietly() {
    let b = TestBroker::start_gateway("1h").await;
    let env = with_read_grant(&b, "1h").await;
    let (host, path) = parts(&b);
    for (input, why) in [
        (format!("protocol=http\nhost={host}\npath={path}\0\n"), "NUL"),
        (format!("protocol=http\nhost={host}\npath={}\n", "a/".repeat(5000)), "longer than"),
        ("protocol http\n".to_string(), "not key=value"),
        ("x=y\n".repeat(300), "more than"),
    ] {
        let run = get(&env, &input);
        assert_eq!(run.stdout, "");
        assert!(run.stderr.contains(why), "{why}: {}", run.stderr);
    }
    // Unknown operations are ignored, as git's protocol says: exit 0, say nothing.
    // (Regression: this used to be a clap usage error, exit 2.)
    for op in ["list", "capability", "frobnicate", ""] {
        let input = format!("protocol=http\nhost={host}\npath={path}\n\n");
        let run = env.run_with(&["credential", op], &[], Some(&input));
        assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, "", ""), "jit credential {op}");
        let run = env.run_helper(op, &input);
        assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, "", ""), "git-credential-jit {op}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_helper_answers_from_the_cache_alone_and_hands_the_rest_to_jit() {
    let b = TestBroker::start_gateway("1h").await;
    let env = with_read_grant(&b, "1h").await;
    let (host, path) = parts(&b);
    let input = format!("protocol=http\nhost={host}\npath={path}\n\n");
    let full = env.run_jit_helper("get", &input);
    let password = field(&full, "password").expect("jit credential answers").to_string();
    // A copy of the small binary with no jit beside it: the cached answer
    // needs nothing else, and is the one jit gives.
    let lone = env.root.path().join("lone");
    std::fs::create_dir(&lone).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_git-credential-jit"), lone.join("git-credential-jit")).unwrap();
    let run_lone = |op: &str, input: &str| {
        // A copy just written may be open in a process another test forked
        // before the copy closed it (ETXTBSY until that process execs): try again.
        let mut tries = 0;
        let out = loop {
            let mut cmd = std::process::Command::new(lone.join("git-credential-jit"));
            cmd.env_clear().envs(&env.env).arg(op);
            match assert_cmd::Command::from_std(cmd).write_stdin(input).timeout(Duration::from_secs(60)).output() {
                Err(e) if e.raw_os_error() == Some(26) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => break other.unwrap(),
            }
        };
        assert_eq!(out.status.code(), Some(0), "the helper exits 0");
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (stdout, stderr) = run_lone("get", &input);
    assert_eq!((stdout.as_str(), stderr.as_str()), (full.stdout.as_str(), ""));
    assert_eq!(field(&get(&env, &input), "password"), Some(password.as_str()));
    // What it settles alone needs no jit either: a URL no broker guards, a store.
    assert_eq!(run_lone("get", "protocol=https\nhost=example.com\npath=a/b.git\n\n"), (String::new(), String::new()));
    assert_eq!(run_lone("store", &input), (String::new(), String::new()));
    // The rest goes to jit: without it, one line says so and git moves on.
    let (stdout, stderr) = run_lone("erase", &input);
    assert!(stdout.is_empty() && stderr.contains("cannot run") && stderr.contains("lone/jit"), "{stderr}");
    let (stdout, stderr) = run_lone("get", "protocol=http\nhost=x\0\n\n");
    assert!(stdout.is_empty() && stderr.contains("cannot run"), "{stderr}");
    // With jit beside it, what jit says about bad input reaches git's stderr.
    let run = get(&env, "protocol=http\nhost=x\0\n\n");
    assert!(run.stderr.contains("NUL"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_cached_means_silence_even_logged_out() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    let run = get(&env, &demo_query(&b));
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let run = get(&env, "protocol=https\nhost=github.com\npath=acme/api.git\n");
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_is_a_no_op_and_erase_forces_a_fresh_credential() {
    let b = TestBroker::start_gateway("1h").await;
    let env = with_read_grant(&b, "1h").await;
    let input = demo_query(&b);
    let first = field(&get(&env, &input), "password").unwrap().to_string();
    env.secret(&first);
    let stored = env.run_helper("store", &format!("{input}username=alice\npassword=something-else\n"));
    assert_eq!((stored.code, stored.stdout.as_str()), (0, ""));
    assert_eq!(field(&get(&env, &input), "password"), Some(first.as_str()), "store must not change anything");
    let minted_before = minted(&b).await;
    env.run_helper("erase", &input).success();
    let second = field(&get(&env, &input), "password").unwrap().to_string();
    env.secret(&second);
    assert_ne!(second, first, "erase must drop the cached password");
    // The new one is cached with its own expiry, and used from then on.
    assert_eq!(field(&get(&env, &input), "password"), Some(second.as_str()));
    let minted_after = minted(&b).await;
    assert_eq!(minted_after, minted_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_credential_on_a_live_grant_is_reminted_and_works() {
    // Credentials live 1 s (the helper judges its cache by the wall clock, so this test waits for real).
    let b = TestBroker::start_gateway("1s").await;
    let env = with_read_grant(&b, "1h").await;
    let input = demo_query(&b);
    let first = get(&env, &input);
    let first_password = field(&first, "password").unwrap().to_string();
    env.secret(&first_password);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The old credential no longer works at the host...
    let old = reqwest::Client::new()
        .get(format!("{}/info/refs?service=git-upload-pack", b.demo_url()))
        .basic_auth("alice", Some(&first_password))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    // ...and the helper mints a new one that does.
    let renewed = get(&env, &input);
    let new_password = field(&renewed, "password").unwrap().to_string();
    env.secret(&new_password);
    assert_ne!(new_password, first_password);
    let fresh = reqwest::Client::new()
        .get(format!("{}/info/refs?service=git-upload-pack", b.demo_url()))
        .basic_auth("alice", Some(&new_password))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    // With no broker to renew from, it says so and answers nothing.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut b = b;
    if let Some(h) = b.handle.take() {
        h.shutdown().await.unwrap();
    }
    let run = get(&env, &input);
    assert_eq!(run.stdout, "quit=1\n", "no credential; git stops rather than prompt");
    assert!(run.stderr.contains("cannot renew the credential for demo"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_near_its_end_is_renewed_first_unless_it_lasts_the_grant() {
    // Credentials live 20 s: always inside the helper's 30 s renewal margin.
    let b = TestBroker::start_gateway("20s").await;
    let env = with_read_grant(&b, "1h").await;
    let input = demo_query(&b);
    let before = minted(&b).await;
    let first = field(&get(&env, &input), "password").unwrap().to_string();
    let second = field(&get(&env, &input), "password").unwrap().to_string();
    assert_ne!(first, second, "a credential about to expire is renewed, not handed to git");
    assert_eq!(minted(&b).await, before + 2);
    // One that lives to its grant's end is used to the end, however close it is.
    let b = TestBroker::start_gateway("1h").await;
    let env = with_read_grant(&b, "20s").await;
    let first = field(&get(&env, &demo_query(&b)), "password").unwrap().to_string();
    let again = field(&get(&env, &demo_query(&b)), "password").unwrap().to_string();
    assert_eq!(first, again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_the_broker_refuses_is_named_and_the_grant_is_kept() {
    let b = TestBroker::start_gateway("20s").await;
    let env = with_read_grant(&b, "1h").await;
    let input = demo_query(&b);
    // alice's token is rotated elsewhere: the broker refuses this login (401),
    // which says nothing about the grant.
    let rotated = b.post("admin", "/v1/users/alice/token", serde_json::json!({})).await;
    assert_eq!(rotated.status, 200);
    env.secret(rotated.body["token"].as_str().unwrap());
    let run = get(&env, &input);
    assert_eq!(run.stdout, "quit=1\n");
    assert!(run.stderr.contains("jit: cannot renew the credential for demo:"), "{}", run.stderr);
    let index = env.credential_index();
    let cached = &index["urls"][b.demo_url()];
    assert_eq!(cached.as_array().map(Vec::len), Some(1), "the grant stays cached: {index}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_request_the_broker_does_not_know_is_dropped_not_reported() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    env.run(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "x", "--no-wait"]).success();
    // The broker's database was restored from before that request: it does not know the id.
    let mut index = env.credential_index();
    index["pending"][0]["request_id"] = 999.into();
    env.write_credential_index(&index);
    let run = get(&env, &demo_query(&b));
    assert_eq!(run.stdout, "quit=1\n");
    assert_eq!(
        run.stderr.trim_end(),
        "jit: you have no grant on demo; ask for one: jit request demo --level read --for 1h (write, to push)"
    );
    assert_eq!(env.credential_index()["pending"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_is_answered_only_for_the_url_it_was_minted_for() {
    let b = TestBroker::start_gateway("1h").await;
    let env = with_read_grant(&b, "1h").await;
    // The cache says an old URL (say, the broker's name before a move) also named demo.
    let mut index = env.credential_index();
    let old = format!("{}/git/old-demo.git", b.url);
    index["repos"][&old] = serde_json::json!({"server": b.url, "repo": "demo"});
    env.write_credential_index(&index);
    // git asks about the old URL: the broker's grant on demo mints for demo's URL, not that one.
    let (host, _) = parts(&b);
    let run = get(&env, &format!("protocol=http\nhost={host}\npath=git/old-demo.git\n"));
    assert_eq!(run.stdout, "quit=1\n", "answered a URL the credential was not minted for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_request_is_followed_until_it_is_decided_and_dropped_only_then() {
    let b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    let requested = env.run(&["request", "demo", "--level", "write", "--for", "1h", "--reason", "x", "--no-wait"]);
    let id: i64 = requested.success().stdout.trim().parse().unwrap();
    let pending = || env.credential_index()["pending"].clone();
    let input = demo_query(&b);
    // The broker refuses this login: the request is not forgotten for that.
    let rotated = b.post("admin", "/v1/users/alice/token", serde_json::json!({})).await;
    let token = rotated.body["token"].as_str().unwrap().to_string();
    env.secret(&token);
    let run = get(&env, &input);
    assert!(run.stderr.contains("the broker could not be asked"), "{}", run.stderr);
    assert_eq!(pending()[0]["request_id"], id);
    // Denied: there is nothing to wait for any more, and git is told there is no grant.
    env.login(&b.url, &token).success();
    assert_eq!(b.deny("bob", id, "not now").await.status, 200);
    let run = get(&env, &input);
    assert_eq!(
        run.stderr.trim_end(),
        "jit: you have no grant on demo; ask for one: jit request demo --level read --for 1h (write, to push)"
    );
    assert_eq!(pending(), serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_grant_gets_no_answer_and_one_line_saying_what_to_do() {
    let b = TestBroker::start_gateway("1h").await;
    let env = with_read_grant(&b, "1s").await;
    let granted = std::time::Instant::now();
    let input = demo_query(&b);
    let live = get(&env, &input);
    if let Some(password) = field(&live, "password") {
        env.secret(password);
    }
    // The helper judges the grant by the wall clock: wait out its second for real.
    tokio::time::sleep((granted + Duration::from_millis(1100)).saturating_duration_since(std::time::Instant::now())).await;
    let run = get(&env, &input);
    // No credential, and git is told to stop: the line says what to do, a prompt would hide it.
    assert_eq!(run.stdout, "quit=1\n");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("jit: your read grant on demo ended at") && run.stderr.contains("jit request demo --level read"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_falls_back_to_the_cache_when_the_broker_is_away() {
    let mut b = TestBroker::start_gateway("1h").await;
    let env = cli_env(&b);
    env.login(&b.url, b.token("alice")).success();
    // Without `jit setup`, the request says git will not use the credential yet.
    env.run(&["request", "demo", "--level", "read", "--for", "1h"]).success().stderr_has("run `jit setup` once");
    let online = env.run(&["status", "--json"]).success().json();
    if let Some(h) = b.handle.take() {
        h.shutdown().await.unwrap();
    }
    // Beside it in the cache: a grant that ended, and a live one from another broker.
    let mut index = env.credential_index();
    let list = index["urls"][b.demo_url()].as_array_mut().unwrap();
    let mut ended = list[0].clone();
    ended["grant_id"] = 98.into();
    ended["grant_expires_at"] = "2020-01-01T00:00:00Z".into();
    let mut elsewhere = list[0].clone();
    elsewhere["grant_id"] = 99.into();
    elsewhere["server"] = "https://other-broker.example".into();
    list.extend([ended, elsewhere]);
    env.write_credential_index(&index);
    let offline = env.run(&["status", "--json"]);
    offline.success().stderr_has("out of reach");
    let offline = offline.json();
    assert_eq!(offline.as_array().unwrap().len(), 1, "only this broker's live grant: {offline}");
    for key in ["id", "request_id", "repo", "level", "expires_at", "granted_at", "clone_url"] {
        assert_eq!(offline[0][key], online[0][key], "{key}");
    }
}
