//! Benchmark: what `jit setup`'s git config costs every git command, with
//! 0 / 100 / 1,000 fronted repos, paired against the same commands with no
//! jit config at all, in the same run.
//!
//! ```sh
//! cargo bench --bench git_config_cost
//! cargo bench --bench git_config_cost -- --quick   # CI's guard
//! ```
//!
//! For each configuration it writes the config `jit setup` writes (the
//! remote helper's alias and one `insteadOf` per routed host, from
//! `domain::url_rewrite`) and the local index the helper routes by, then runs,
//! alternating with the bare configuration each round:
//!
//! - `git rev-parse --git-dir` in a repository unrelated to jit;
//! - `git status --short` in a checkout whose `origin` is a fronted repo;
//! - `git ls-remote` of a repo jit does *not* front on a routed host, over
//!   SSH (a local stand-in for ssh that runs `git-upload-pack`): with jit's
//!   config this goes through `jit remote-helper`, so it shows what the helper
//!   adds to a network command.
//!
//! As a reference it also runs the layout `jit setup` wrote before (fences: a
//! longer `insteadOf` to itself for every continuation of every fronted URL)
//! at 100 repos (local commands only: a fetch with it took ~14 s). It prints medians and the median of the paired differences.
//! With `--quick` it exits 1 when 1,000 repos add more than 5 ms to a local
//! command (the target; today's cost is a fraction of a millisecond).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ms, percentile};
use jit::domain::repo::CloneUrl;
use jit::domain::url_rewrite::{self, Fronted};

const HOST: &str = "git.example.com";
/// CI's bound on what 1,000 fronted repos may add to a local git command.
const GUARD: Duration = Duration::from_millis(5);

fn fronted(n: usize) -> Vec<Fronted> {
    (0..n)
        .map(|i| Fronted {
            gateway: format!("https://jit.example.com/git/acme/repo{i}"),
            upstream: CloneUrl::parse(&format!("https://{HOST}/acme/repo{i}.git")).unwrap(),
        })
        .collect()
}

/// One git environment: a global config and a data directory (jit's index).
struct Setup {
    name: String,
    global: PathBuf,
    data: PathBuf,
}

impl Setup {
    fn bare(root: &Path) -> Setup {
        let dir = root.join("bare");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("gitconfig"), "").unwrap();
        Setup { name: "no jit config".into(), global: dir.join("gitconfig"), data: dir.join("data") }
    }

    /// What `jit setup` writes today for `n` fronted repos.
    fn routed(root: &Path, n: usize) -> Setup {
        let dir = root.join(format!("routed-{n}"));
        let repos = fronted(n);
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join(url_rewrite::HELPER_LINK);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_jit"), &link).unwrap();
        let text = url_rewrite::config_text(&url_rewrite::routed_prefixes(&repos), &format!("!{}", link.display()));
        let index = serde_json::json!({
            "urls": {},
            "repos": repos.iter().map(|r| (r.gateway.clone(), serde_json::json!({"server": "https://jit.example.com", "repo": r.upstream.path(), "upstream": r.upstream.to_string()}))).collect::<serde_json::Map<_, _>>(),
        });
        std::fs::create_dir_all(dir.join("data/jit")).unwrap();
        std::fs::write(dir.join("data/jit/credentials.json"), index.to_string()).unwrap();
        Self::including(dir, format!("jit setup, {n} repos"), &text)
    }

    /// The layout `jit setup` wrote before the remote helper (the reference).
    fn fenced(root: &Path, n: usize) -> Setup {
        let dir = root.join(format!("fenced-{n}"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        Self::including(dir, format!("fences (before), {n} repos"), &fenced_text(&fronted(n)))
    }

    fn including(dir: PathBuf, name: String, text: &str) -> Setup {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("jit.gitconfig"), text).unwrap();
        std::fs::write(dir.join("gitconfig"), format!("[include]\n\tpath = {}\n", dir.join("jit.gitconfig").display())).unwrap();
        Setup { name, global: dir.join("gitconfig"), data: dir.join("data") }
    }

    fn git(&self, dir: &Path, args: &[&str], ssh: &Path) -> Duration {
        let started = Instant::now();
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", &self.global)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("XDG_DATA_HOME", &self.data)
            .env("GIT_SSH_COMMAND", ssh)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(out.status.success(), "{} git {args:?}: {}", self.name, String::from_utf8_lossy(&out.stderr));
        took
    }
}

/// Before: a longer `insteadOf` to itself for every character that can
/// continue each fronted URL form (~640 lines a repo).
fn fenced_text(repos: &[Fronted]) -> String {
    const NEXT: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@%/";
    let mut out = String::new();
    for r in repos {
        let https = format!("https://{HOST}/{}", r.upstream.path());
        let forms = [
            https.clone(),
            format!("{https}.git"),
            format!("git@{HOST}:{}.git", r.upstream.path()),
            format!("ssh://git@{HOST}/{}.git", r.upstream.path()),
        ];
        for form in &forms {
            for c in NEXT.chars() {
                out.push_str(&format!(
                    "[url \"{form}{c}\"]\n\tinsteadOf = \"{form}{c}\"\n[url \"{form}/{c}\"]\n\tinsteadOf = \"{form}/{c}\"\n"
                ));
            }
        }
        out.push_str(&format!("[url \"{}\"]\n", r.gateway));
        for form in &forms {
            out.push_str(&format!("\tinsteadOf = \"{form}\"\n"));
        }
    }
    out
}

fn git_in(dir: &Path, args: &[&str]) {
    let out = Command::new("git").args(args).current_dir(dir).env("GIT_CONFIG_NOSYSTEM", "1").output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

struct Row {
    setup: String,
    command: &'static str,
    bare: Duration,
    with: Duration,
    added: f64,
    added_p90: f64,
}

fn main() {
    if common::listing_only() {
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 30 } else { 150 };
    let root = tempfile::tempdir().unwrap();
    let root = root.path();

    // An unrelated repository, a checkout of a fronted repo, a host's repo over "ssh".
    let unrelated = root.join("unrelated");
    std::fs::create_dir_all(&unrelated).unwrap();
    git_in(&unrelated, &["init", "-q"]);
    let checkout = root.join("checkout");
    std::fs::create_dir_all(&checkout).unwrap();
    git_in(&checkout, &["init", "-q"]);
    git_in(&checkout, &["remote", "add", "origin", &format!("https://{HOST}/acme/repo7.git")]);
    let host_repos = root.join("host");
    std::fs::create_dir_all(host_repos.join("acme")).unwrap();
    git_in(&host_repos.join("acme"), &["init", "-q", "--bare", "tools.git"]);
    git_in(&unrelated, &["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q", "--allow-empty", "-m", "x"]);
    git_in(&unrelated, &["push", "-q", host_repos.join("acme/tools.git").to_str().unwrap(), "HEAD:refs/heads/main"]);
    let ssh = root.join("fake-ssh");
    std::fs::write(
        &ssh,
        format!("#!/bin/sh\n[ \"$1\" = -G ] && exit 0\nfor last; do :; done\ncd '{}' && eval \"$last\"\n", host_repos.display()),
    )
    .unwrap();
    std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let lookalike = format!("git@{HOST}:acme/tools.git");

    let bare = Setup::bare(root);
    let mut setups = vec![Setup::routed(root, 100), Setup::routed(root, 1000)];
    if !quick {
        setups.push(Setup::fenced(root, 100));
    }
    let commands: [(&'static str, &Path, Vec<&str>); 3] = [
        ("rev-parse (unrelated repo)", &unrelated, vec!["rev-parse", "--git-dir"]),
        ("status (fronted checkout)", &checkout, vec!["status", "--short"]),
        ("ls-remote over ssh (not fronted)", &unrelated, vec!["ls-remote", &lookalike]),
    ];

    let mut rows = Vec::new();
    for setup in &setups {
        // The fenced layout takes ~0.1 s a command: fewer rounds tell as much.
        let rounds = if setup.name.starts_with("fences") { rounds / 5 } else { rounds };
        for (command, dir, args) in &commands {
            if setup.name.starts_with("fences") && command.contains("ls-remote") {
                continue; // ~14 s a command: git's rewrite table is quadratic in the number of bases
            }
            let (mut a, mut b, mut diff) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds + 3 {
                // Alternate which goes first, so neither always finds a warm cache.
                let (x, y) = if round % 2 == 0 {
                    let x = bare.git(dir, args, &ssh);
                    (x, setup.git(dir, args, &ssh))
                } else {
                    let y = setup.git(dir, args, &ssh);
                    (bare.git(dir, args, &ssh), y)
                };
                if round >= 3 {
                    a.push(x);
                    b.push(y);
                    diff.push(ms(y) - ms(x));
                }
            }
            a.sort();
            b.sort();
            diff.sort_by(f64::total_cmp);
            rows.push(Row {
                setup: setup.name.clone(),
                command,
                bare: percentile(&a, 0.5),
                with: percentile(&b, 0.5),
                added: diff[diff.len() / 2],
                added_p90: diff[(diff.len() - 1) * 9 / 10],
            });
        }
    }

    println!("{:<26} {:<34} {:>10} {:>10} {:>10} {:>10}", "config", "command", "bare ms", "with ms", "added ms", "added p90");
    for r in &rows {
        println!("{:<26} {:<34} {:>10.2} {:>10.2} {:>10.2} {:>10.2}", r.setup, r.command, ms(r.bare), ms(r.with), r.added, r.added_p90);
    }
    if quick {
        let worst =
            rows.iter().filter(|r| r.setup.contains("1000") && !r.command.contains("ls-remote")).map(|r| r.added).fold(f64::MIN, f64::max);
        if worst > ms(GUARD) {
            eprintln!("FAIL: 1,000 fronted repos add {worst:.2} ms to a local git command (bound {} ms)", ms(GUARD));
            std::process::exit(1);
        }
        println!("ok: 1,000 fronted repos add {worst:.2} ms at most to a local git command (bound {} ms)", ms(GUARD));
    }
}
