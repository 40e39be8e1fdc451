//! jit's git remote helper: git runs it (`git remote-jit <remote> <url>`,
//! the alias `jit setup` writes, to a link named `git-remote-jit`) for every
//! URL on a host where jit fronts repos, because `jit setup` rewrites those
//! hosts' URLs to `jit::<url>`.
//!
//! It decides once, exactly ([`url_rewrite::route`]), and then gets out of
//! the way by becoming git's own transport: a fronted repo's URL becomes
//! `git-remote-https` on its gateway URL; any other HTTP(S) URL becomes
//! `git-remote-https` on the URL itself (the user's own credentials, as
//! without jit); any other SSH URL is connected as git connects it (the
//! `connect` capability, then ssh run as git runs it: `GIT_SSH_COMMAND`,
//! `GIT_SSH`, `core.sshCommand`, `ssh.variant`). Nothing reaches the broker
//! from here; git's protocol rules (`protocol.*.allow`, `GIT_ALLOW_PROTOCOL`)
//! apply to what it connects to.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::domain::transport::{self, GitConfig, SshProgram, SshTarget, Variant};
use crate::domain::url_rewrite;

/// Why the helper could not hand git on.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("usage: git remote-jit <remote> <url> (git runs this for the URLs `jit setup` routes)")]
    Usage,
    #[error("transport '{0}' not allowed (git's protocol.{0}.allow / GIT_ALLOW_PROTOCOL)")]
    NotAllowed(String),
    #[error(transparent)]
    Ssh(#[from] transport::SshError),
    #[error("git asked jit's remote helper for `{0}`, which it does not offer")]
    Unexpected(String),
    #[error("cannot run {program}: {source}")]
    Run { program: String, source: std::io::Error },
    #[error("talking to git: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the helper for git's arguments. It returns only when git ended the
/// session before a connection, or on failure: otherwise this process has
/// become git's transport.
pub fn run(args: &[OsString]) -> Result<(), HelperError> {
    let [remote, url] = args else { return Err(HelperError::Usage) };
    let (Some(remote), Some(url)) = (remote.to_str(), url.to_str()) else { return Err(HelperError::Usage) };
    let target = url_rewrite::route(url, &crate::credcache::fronted_like(url));
    let target = target.as_deref().unwrap_or(url);
    match target.split_once("://") {
        Some((scheme @ ("http" | "https"), _)) => Err(become_remote_curl(scheme, remote, target)),
        _ => connect_over_ssh(target, &git_config()),
    }
}

fn allowed(scheme: &str, config: &GitConfig) -> Result<(), HelperError> {
    let env = |k: &str| std::env::var(k).ok();
    let ok = transport::protocol_allowed(scheme, env("GIT_ALLOW_PROTOCOL").as_deref(), env("GIT_PROTOCOL_FROM_USER").as_deref(), config);
    if ok { Ok(()) } else { Err(HelperError::NotAllowed(scheme.to_string())) }
}

/// Becomes `git-remote-http(s) <remote> <url>`: what git itself runs for an
/// HTTP(S) URL. It applies git's protocol rules to http and https itself
/// (curl is told which protocols git allows), so they need no check here.
fn become_remote_curl(scheme: &str, remote: &str, url: &str) -> HelperError {
    let program = format!("git-remote-{scheme}");
    let in_exec_path = std::env::var_os("GIT_EXEC_PATH").map(|dir| std::path::Path::new(&dir).join(&program));
    let mut command = match in_exec_path {
        Some(path) if path.is_file() => Command::new(path),
        _ => {
            let mut git = Command::new("git");
            git.arg(format!("remote-{scheme}"));
            git
        }
    };
    let source = command.args([remote, url]).exec();
    HelperError::Run { program, source }
}

/// Speaks the remote-helper protocol up to `connect <service>`, then becomes
/// the ssh git would have run, its stdin and stdout git's connection.
fn connect_over_ssh(url: &str, config: &GitConfig) -> Result<(), HelperError> {
    let target = SshTarget::parse(url)?;
    allowed("ssh", config)?;
    let mut out = std::io::stdout().lock();
    loop {
        let line = read_line()?;
        match line.as_str() {
            "" => return Ok(()),
            "capabilities" => out.write_all(b"connect\n\n")?,
            _ => {
                let Some(service) = line.strip_prefix("connect ") else { return Err(HelperError::Unexpected(line)) };
                if !matches!(service, "git-upload-pack" | "git-receive-pack" | "git-upload-archive") {
                    return Err(HelperError::Unexpected(line));
                }
                out.write_all(b"\n")?;
                out.flush()?;
                let mut ssh = ssh_command(&target, service, config);
                let program = ssh.get_program().to_string_lossy().into_owned();
                return Err(HelperError::Run { program, source: ssh.exec() });
            }
        }
        out.flush()?;
    }
}

/// ssh as git's `connect.c` runs it for `target` and `service`.
fn ssh_command(target: &SshTarget, service: &str, config: &GitConfig) -> Command {
    let env = |k: &str| std::env::var(k).ok();
    let program = SshProgram::choose(env("GIT_SSH_COMMAND").as_deref(), env("GIT_SSH").as_deref(), config);
    let version = transport::protocol_version(service, config);
    let variant = match program.variant(env("GIT_SSH_VARIANT").as_deref(), config) {
        Variant::Auto => {
            let mut probe = vec!["-G".to_string()];
            probe.extend(transport::ssh_options(Variant::Ssh, version));
            probe.push(target.user_host.clone());
            let ok = command(&program.argv(&probe)).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
            if ok.is_ok_and(|s| s.success()) { Variant::Ssh } else { Variant::Simple }
        }
        known => known,
    };
    let mut args = transport::ssh_options(variant, version);
    args.push(target.user_host.clone());
    args.push(target.remote_command(service));
    let mut ssh = command(&program.argv(&args));
    if variant == Variant::Ssh && version > 0 {
        ssh.env("GIT_PROTOCOL", format!("version={version}"));
    }
    ssh
}

fn command(argv: &[String]) -> Command {
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]);
    // git hands its helpers the repository it runs in; its own ssh never gets it.
    for local in ["GIT_DIR", "GIT_PREFIX", "GIT_WORK_TREE", "GIT_INDEX_FILE"] {
        c.env_remove(local);
    }
    c
}

/// One line from git, read a byte at a time: what follows `connect` belongs
/// to ssh, so nothing past the newline may be taken from stdin.
fn read_line() -> Result<String, HelperError> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(std::io::stdin(), &mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(HelperError::Io(e.into())),
        }
    }
    String::from_utf8(line).map_err(|e| HelperError::Unexpected(String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// The config entries the transport rules read, as git resolves them here
/// (`-c` options, the repository's own config, includes).
fn git_config() -> GitConfig {
    let Ok(out) = Command::new("git")
        .args(["config", "-z", "--get-regexp", r"^(core\.sshcommand|ssh\.variant|protocol\.)"])
        .stderr(Stdio::null())
        .output()
    else {
        return BTreeMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split('\0')
        .filter_map(|entry| entry.split_once('\n').map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())))
        .collect()
}
