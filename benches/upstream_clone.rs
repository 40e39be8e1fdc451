//! Benchmark: `git clone` of a ~100 MB repository four ways, in the same
//! run, on the same machine: from `git daemon` (git's own server, the
//! baseline), from `git http-backend` under lighttpd (a plain HTTP host),
//! through jit's gateway serving the repository itself, and through jit's
//! upstream proxy in front of the lighttpd host; and the broker's memory
//! while it streams.
//!
//! ```sh
//! cargo bench --bench upstream_clone
//! ```
//!
//! The host is Debian's lighttpd running `git http-backend` behind Basic
//! auth on loopback (as in the tests). The broker is the release `jit server`
//! binary, with the same bare repository in its gateway directory and the
//! host's copy behind an `upstream` provider. Clones rotate through the four
//! so all see the same machine; the report is the median time of each, its
//! ratio to `git daemon` and to lighttpd, and the broker's resident memory
//! before and its peak (VmHWM) after.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BrokerProcess, Guard, free_port, ms, status_kib, wait_for_port};

const RUNS: usize = 7;
const REPO_MB: usize = 100;

fn main() {
    if common::listing_only() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let repo = dir.join("repos/acme/api.git");
    make_repo(&repo);

    let port = free_port();
    std::fs::write(dir.join("users"), "jit-bot:bench-bot-password\n").unwrap();
    std::fs::write(dir.join("lighttpd.conf"), lighttpd_conf(dir, port)).unwrap();
    let host = Guard(Command::new("/usr/sbin/lighttpd").arg("-D").arg("-f").arg(dir.join("lighttpd.conf")).spawn().expect("lighttpd"));
    wait_for_port(port);

    // git's own server over its own protocol: the baseline.
    let daemon_port = free_port();
    // Started as `git-daemon` itself: `git daemon` runs it as a child that
    // would outlive the guard's kill.
    let daemon = Guard(
        Command::new(format!("{}/git-daemon", git_exec_path()))
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1", &format!("--port={daemon_port}")])
            .arg(format!("--base-path={}", dir.join("repos").display()))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon"),
    );
    wait_for_port(daemon_port);

    // The same bare repository, served by jit's gateway itself.
    std::fs::create_dir_all(dir.join("local")).unwrap();
    std::os::unix::fs::symlink(&repo, dir.join("local/api.git")).unwrap();

    std::fs::write(dir.join("bot.token"), "bench-bot-password\n").unwrap();
    let config = format!(
        "[gateway]\nrepos_dir = \"{}\"\n\n\
         [[rule]]\nrepos = [\"api\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"8h\"\n\n\
         [[provider]]\nname = \"corp\"\nkind = \"upstream\"\nusername = \"jit-bot\"\npassword_file = \"{}\"\n\n\
         [[repo]]\nname = \"acme/api\"\nurl = \"http://127.0.0.1:{port}/acme/api.git\"\nprovider = \"corp\"\n\n\
         [[rule]]\nrepos = [\"acme/api\"]\nlevels = [\"read\"]\nrequesters = [\"*\"]\nauto_approve = true\nmax_duration = \"8h\"\n",
        dir.join("local").display(),
        dir.join("bot.token").display()
    );
    let broker = BrokerProcess::start(dir, &config);
    let (api, token) = (broker.url.clone(), broker.admin_token.clone());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let post = |path: String, body: serde_json::Value| {
        runtime.block_on(async {
            let r = reqwest::Client::new().post(format!("{api}{path}")).bearer_auth(&token).json(&body).send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json::<serde_json::Value>().await.unwrap()
        })
    };
    let mint = |repo: &str| {
        let grant = post("/v1/requests".into(), serde_json::json!({"repo": repo, "level": "read", "duration": "1h"}));
        let grant_id = grant["grant"]["id"].as_i64().expect("auto-approved");
        let minted = post(format!("/v1/grants/{grant_id}/credentials"), serde_json::json!({}));
        minted["password"].as_str().unwrap().to_string()
    };
    let (proxy_password, gateway_password) = (mint("acme/api"), mint("api"));

    let ways = [
        ("git daemon (git://)", format!("git://127.0.0.1:{daemon_port}/acme/api.git")),
        ("git http-backend under lighttpd", format!("http://jit-bot:bench-bot-password@127.0.0.1:{port}/acme/api.git")),
        ("jit gateway (its own repo)", format!("http://root:{gateway_password}@{}/git/api.git", api.trim_start_matches("http://"))),
        (
            "jit upstream proxy (to lighttpd)",
            format!("http://root:{proxy_password}@{}/git/acme/api.git", api.trim_start_matches("http://")),
        ),
    ];
    let rss_before = status_kib(broker.pid(), "VmRSS");
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); ways.len()];
    for (_, url) in &ways {
        clone(url, &dir.join("warm")); // page cache, pack and every path warm
    }
    for _ in 0..RUNS {
        for (n, (_, url)) in ways.iter().enumerate() {
            times[n].push(clone(url, &dir.join("c")));
        }
    }
    let peak = status_kib(broker.pid(), "VmHWM");
    for v in &mut times {
        v.sort();
    }
    let median = |n: usize| times[n][RUNS / 2].as_secs_f64();
    let mb = pack_mib(&repo);
    println!("git clone of a {mb:.0} MiB pack, {RUNS} runs each, rotating (after one warm-up clone each)");
    println!("{:<34} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10}", "", "median", "min", "max", "throughput", "/ daemon", "/ lighttpd");
    for (n, (name, _)) in ways.iter().enumerate() {
        let v = &times[n];
        println!(
            "{name:<34} {:>7.0}ms {:>7.0}ms {:>7.0}ms {:>7.0}MiB/s {:>9.2}x {:>9.2}x",
            ms(v[RUNS / 2]),
            ms(v[0]),
            ms(v[RUNS - 1]),
            mb / median(n),
            median(n) / median(0),
            median(n) / median(1)
        );
    }
    println!("(time ratios: lower is faster; targets: gateway <= 1.1x git daemon, proxy throughput >= 0.9x its host)");
    println!("broker RSS: {} KiB before the clones, peak {} KiB over {} clones of {mb:.0} MiB each way", rss_before, peak, RUNS);
    drop(broker);
    drop(host);
    drop(daemon);
}

/// A bare repo holding `REPO_MB` MiB of incompressible blobs, in one pack.
fn make_repo(repo: &Path) {
    let work = repo.parent().unwrap().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    for n in 0..REPO_MB / 5 {
        let mut blob = vec![0u8; 5 * 1024 * 1024];
        rand::fill(&mut blob[..]);
        std::fs::write(work.join(format!("blob{n:02}.bin")), blob).unwrap();
        git(&work, &["add", "."]);
        git(&work, &["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", &format!("blob {n}")]);
    }
    git(repo.parent().unwrap(), &["clone", "-q", "--bare", work.to_str().unwrap(), repo.to_str().unwrap()]);
    git(repo, &["repack", "-adq"]);
    std::fs::remove_dir_all(&work).unwrap();
}

fn pack_mib(repo: &Path) -> f64 {
    let packs = repo.join("objects/pack");
    let bytes: u64 = std::fs::read_dir(packs).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    bytes as f64 / (1024.0 * 1024.0)
}

fn git(cwd: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn clone(url: &str, into: &Path) -> Duration {
    let _ = std::fs::remove_dir_all(into);
    let started = Instant::now();
    let out = Command::new("git")
        .args(["clone", "-q", "--bare", url])
        .arg(into)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(out.status.success(), "clone: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(into).unwrap();
    took
}

fn git_exec_path() -> String {
    let exec = Command::new("git").arg("--exec-path").output().unwrap();
    String::from_utf8(exec.stdout).unwrap().trim().to_string()
}

fn lighttpd_conf(dir: &Path, port: u16) -> String {
    let backend = format!("{}/git-http-backend", git_exec_path());
    let d = dir.display();
    format!(
        "server.document-root = \"{d}\"\nserver.port = {port}\nserver.bind = \"127.0.0.1\"\n\
         server.modules = (\"mod_auth\", \"mod_authn_file\", \"mod_alias\", \"mod_setenv\", \"mod_cgi\")\n\
         server.errorlog = \"{d}/error.log\"\nserver.stream-response-body = 2\n\
         auth.backend = \"plain\"\nauth.backend.plain.userfile = \"{d}/users\"\n\
         auth.require = ( \"/\" => ( \"method\" => \"basic\", \"realm\" => \"git\", \"require\" => \"valid-user\" ) )\n\
         alias.url = ( \"/\" => \"{backend}/\" )\ncgi.assign = ( \"\" => \"\" )\n\
         setenv.add-environment = ( \"GIT_PROJECT_ROOT\" => \"{d}/repos\", \"GIT_HTTP_EXPORT_ALL\" => \"1\" )\n"
    )
}
