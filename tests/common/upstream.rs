//! [`TestUpstream`]: a real git host on loopback — Debian's lighttpd running
//! `git http-backend` behind HTTP Basic auth — for the gateway to front.
//! Anonymous requests get 401, so only a client with the host's password
//! (the broker, or a test acting as someone with their own account there)
//! can read or write it.

use std::path::{Path, PathBuf};

use crate::common::{ChildGuard, init_bare_repo};

/// The broker's identity at the host.
pub const BOT_USER: &str = "jit-bot";
/// Someone with their own account at the host, for repos jit does not guard.
pub const HUMAN_USER: &str = "hannah";

pub struct TestUpstream {
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub bot_password: String,
    pub human_password: String,
    _server: ChildGuard,
}

impl TestUpstream {
    /// A host with a bare repo for each of `repos` (`acme/api` is
    /// `<url>/acme/api.git`, one commit on `main`).
    pub fn start(repos: &[&str]) -> TestUpstream {
        Self::start_with(repos, "")
    }

    /// A host that closes a keep-alive connection once it has sat idle `secs` seconds.
    pub fn start_with_idle_limit(repos: &[&str], secs: u32) -> TestUpstream {
        Self::start_with(repos, &format!("server.max-keep-alive-idle = {secs}\n"))
    }

    /// As [`TestUpstream::start`], with `extra` lines of lighttpd configuration.
    fn start_with(repos: &[&str], extra: &str) -> TestUpstream {
        let dir = tempfile::tempdir().unwrap();
        for name in repos {
            init_bare_repo(&dir.path().join(format!("repos/{name}.git")));
        }
        let bot_password = format!("bot-{}", random_hex());
        let human_password = format!("human-{}", random_hex());
        crate::common::logs::secret(&bot_password);
        std::fs::write(dir.path().join("users"), format!("{BOT_USER}:{bot_password}\n{HUMAN_USER}:{human_password}\n")).unwrap();
        // A port picked by the OS, then handed to lighttpd; retried in the rare
        // case another process takes it in between.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let conf = dir.path().join("lighttpd.conf");
            std::fs::write(&conf, lighttpd_conf(dir.path(), port) + extra).unwrap();
            let child = std::process::Command::new(lighttpd())
                .args(["-D", "-f"])
                .arg(&conf)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("lighttpd is installed (.ci/run installs it)");
            let mut server = ChildGuard::new(child);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if server.try_wait().unwrap().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let url = format!("http://127.0.0.1:{port}");
                    return TestUpstream { dir, url, bot_password, human_password, _server: server };
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        panic!("lighttpd did not start: {}", std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default());
    }

    /// Where `repo` lives at the host: `http://127.0.0.1:PORT/acme/api.git`.
    pub fn repo_url(&self, repo: &str) -> String {
        format!("{}/{repo}.git", self.url)
    }

    /// The bare repository on the host's disk, for checking what landed.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.dir.path().join(format!("repos/{repo}.git"))
    }

    /// A `[[provider]]` section for this host, named `corp`, its password in a file.
    pub fn provider_section(&self) -> String {
        let file = self.dir.path().join("bot.token");
        std::fs::write(&file, format!("{}\n", self.bot_password)).unwrap();
        format!("[[provider]]\nname = \"corp\"\nkind = \"upstream\"\nusername = \"{BOT_USER}\"\npassword_file = \"{}\"\n", file.display())
    }

    /// A broker policy fronting `acme/api` (and nothing else) on this host:
    /// developers read it at will, reviewers approve writes.
    pub fn fronting_policy(&self) -> String {
        let rules = r#"
[[rule]]
name = "api-read"
repos = ["acme/api"]
levels = ["read"]
requesters = ["group:developers"]
auto_approve = true
max_duration = "8h"

[[rule]]
name = "api-write"
repos = ["acme/api"]
levels = ["write"]
requesters = ["group:developers"]
approvers = ["group:reviewers"]
max_duration = "8h"
"#;
        let repo = format!("[[repo]]\nname = \"acme/api\"\nurl = \"{}\"\nprovider = \"corp\"\n", self.repo_url("acme/api"));
        format!("[server]\npending_ttl = \"1h\"\n\n{}\n{repo}{rules}", self.provider_section())
    }

    /// `git` run against the host's disk, outside any sandbox: `rev-parse`, `log`.
    pub fn git_on_disk(&self, repo: &str, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(self.repo_dir(repo))
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

fn lighttpd() -> &'static str {
    if Path::new("/usr/sbin/lighttpd").exists() { "/usr/sbin/lighttpd" } else { "lighttpd" }
}

fn git_http_backend() -> String {
    let out = std::process::Command::new("git").arg("--exec-path").output().unwrap();
    format!("{}/git-http-backend", String::from_utf8(out.stdout).unwrap().trim())
}

/// Basic auth on every path. Answers stream; a request body is collected
/// (in the test's directory) before `git http-backend` starts, since
/// lighttpd answers 411 to a chunked body it would have to stream to a CGI,
/// and git sends every push larger than its post buffer chunked.
fn lighttpd_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    let backend = git_http_backend();
    format!(
        r#"server.document-root = "{d}"
server.port = {port}
server.bind = "127.0.0.1"
server.modules = ("mod_auth", "mod_authn_file", "mod_alias", "mod_setenv", "mod_cgi")
server.errorlog = "{d}/error.log"
server.upload-dirs = ("{d}")
server.stream-request-body = 0
server.stream-response-body = 2
auth.backend = "plain"
auth.backend.plain.userfile = "{d}/users"
auth.require = ( "/" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
alias.url = ( "/" => "{backend}/" )
cgi.assign = ( "" => "" )
setenv.add-environment = ( "GIT_PROJECT_ROOT" => "{d}/repos", "GIT_HTTP_EXPORT_ALL" => "1", "GIT_CONFIG_NOSYSTEM" => "1", "HOME" => "{d}" )
"#
    )
}

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}
