//! git's own transport rules, for the URLs jit's remote helper passes on
//! unchanged: which protocols git allows (`protocol.*.allow`,
//! `GIT_ALLOW_PROTOCOL`), and how git runs ssh for an SSH URL (the program,
//! its variant's options, the quoted remote command). They follow git's
//! `transport.c` and `connect.c`, so a repo jit does not front behaves as if
//! jit were not there.

use std::collections::BTreeMap;

/// The git config entries these rules read, keys lower-cased as
/// `git config --get-regexp` prints them.
pub type GitConfig = BTreeMap<String, String>;

/// Whether git would let `scheme` be used (`transport.c`,
/// `is_transport_allowed`): `GIT_ALLOW_PROTOCOL` when set, else
/// `protocol.<scheme>.allow`, `protocol.allow`, then git's defaults.
pub fn protocol_allowed(scheme: &str, allow_list: Option<&str>, from_user: Option<&str>, config: &GitConfig) -> bool {
    if let Some(list) = allow_list {
        return list.split(':').any(|s| s == scheme);
    }
    let setting = config.get(&format!("protocol.{scheme}.allow")).or_else(|| config.get("protocol.allow"));
    let user_only = || from_user.is_none_or(git_bool);
    match setting.map(String::as_str) {
        Some("always") => true,
        Some("never") => false,
        Some(_) => user_only(),
        None => match scheme {
            "http" | "https" | "git" | "ssh" => true,
            "ext" => false,
            _ => user_only(),
        },
    }
}

/// git's reading of a boolean environment value.
fn git_bool(value: &str) -> bool {
    !matches!(value.to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off" | "")
}

/// An SSH URL split as git splits it: `[user@]host` and the path the remote
/// command gets (`git@host:acme/api.git` → `acme/api.git`;
/// `ssh://git@host/acme/api.git` → `/acme/api.git`, `ssh://host/~/x` → `~/x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user_host: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    #[error("`{0}` is not an SSH URL jit can pass on (ssh://user@host/path or user@host:path, no port)")]
    NotSsh(String),
    #[error("strange {what} `{value}` blocked")]
    Strange { what: &'static str, value: String },
}

impl SshTarget {
    pub fn parse(url: &str) -> Result<SshTarget, SshError> {
        let not_ssh = || SshError::NotSsh(crate::domain::text::url_without_password(url));
        let (user_host, path) = if let Some(rest) = url.strip_prefix("ssh://") {
            let (user_host, path) = rest.split_once('/').ok_or_else(not_ssh)?;
            let path = format!("/{path}");
            (user_host, if path.starts_with("/~") { path[1..].to_string() } else { path })
        } else if url.contains("://") {
            return Err(not_ssh());
        } else {
            let (user_host, path) = url.split_once(':').ok_or_else(not_ssh)?;
            if user_host.contains('/') {
                return Err(not_ssh());
            }
            (user_host, path.to_string())
        };
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        if host.is_empty() || host.contains([':', '[', ']', '/']) || path.is_empty() || path == "/" {
            return Err(not_ssh());
        }
        // A value git would take for an option of ssh or of the remote command.
        if user_host.starts_with('-') {
            return Err(SshError::Strange { what: "hostname", value: user_host.to_string() });
        }
        if path.starts_with('-') {
            return Err(SshError::Strange { what: "pathname", value: path });
        }
        Ok(SshTarget { user_host: user_host.to_string(), path })
    }

    /// The command ssh runs at the host: `git-upload-pack 'acme/api.git'`.
    pub fn remote_command(&self, service: &str) -> String {
        format!("{service} {}", sq_quote(&self.path))
    }
}

/// git's `sq_quote_buf`: single quotes, with `'` and `!` taken out of them.
pub fn sq_quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\'' | '!' => {
                out.push_str("'\\");
                out.push(c);
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Which ssh program flavour git speaks to, for its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Not known yet: git asks the program (`-G`) whether it takes OpenSSH's options.
    Auto,
    Simple,
    Ssh,
    Plink,
    Putty,
    TortoisePlink,
}

impl Variant {
    /// `ssh.variant` / `GIT_SSH_VARIANT`.
    pub fn named(name: &str) -> Option<Variant> {
        Some(match name {
            "auto" => Variant::Auto,
            "simple" => Variant::Simple,
            "ssh" => Variant::Ssh,
            "plink" => Variant::Plink,
            "putty" => Variant::Putty,
            "tortoiseplink" => Variant::TortoisePlink,
            _ => return None,
        })
    }

    /// From the program's name, as git guesses when no variant is set.
    pub fn of_program(program: &str) -> Variant {
        let base = program.rsplit(['/', '\\']).next().unwrap_or(program).to_ascii_lowercase();
        match base.strip_suffix(".exe").unwrap_or(&base) {
            "ssh" => Variant::Ssh,
            "plink" => Variant::Plink,
            "tortoiseplink" => Variant::TortoisePlink,
            _ => Variant::Auto,
        }
    }
}

/// The ssh program git runs, from where git looks, first found first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshProgram {
    /// `GIT_SSH_COMMAND` or `core.sshCommand`: run by the shell, arguments appended.
    CommandLine(String),
    /// `GIT_SSH`, or the default `ssh`: run directly.
    Program(String),
}

impl SshProgram {
    pub fn choose(git_ssh_command: Option<&str>, git_ssh: Option<&str>, config: &GitConfig) -> SshProgram {
        let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(cmd) = non_empty(git_ssh_command) {
            return SshProgram::CommandLine(cmd);
        }
        if let Some(program) = non_empty(git_ssh) {
            return SshProgram::Program(program);
        }
        match non_empty(config.get("core.sshcommand").map(String::as_str)) {
            Some(cmd) => SshProgram::CommandLine(cmd),
            None => SshProgram::Program("ssh".to_string()),
        }
    }

    /// The variant: set by `GIT_SSH_VARIANT` or `ssh.variant`, else guessed
    /// from the program's name (a command line's first word).
    pub fn variant(&self, env_variant: Option<&str>, config: &GitConfig) -> Variant {
        if let Some(v) = env_variant.or(config.get("ssh.variant").map(String::as_str)).and_then(Variant::named) {
            return v;
        }
        match self {
            SshProgram::Program(p) => Variant::of_program(p),
            SshProgram::CommandLine(cmd) => {
                cmd.split_whitespace().next().map_or(Variant::Auto, |w| Variant::of_program(w.trim_matches(['\'', '"'])))
            }
        }
    }

    /// argv for running it with `args`: the shell form for a command line.
    pub fn argv(&self, args: &[String]) -> Vec<String> {
        match self {
            SshProgram::CommandLine(cmd) => {
                let mut argv = vec!["sh".to_string(), "-c".to_string(), format!("{cmd} \"$@\""), cmd.clone()];
                argv.extend(args.iter().cloned());
                argv
            }
            SshProgram::Program(p) => std::iter::once(p.clone()).chain(args.iter().cloned()).collect(),
        }
    }
}

/// The protocol version git asks the server for: `protocol.version`
/// (default 2); version 2 only for fetching, as git does.
pub fn protocol_version(service: &str, config: &GitConfig) -> u8 {
    let configured = config.get("protocol.version").and_then(|v| v.parse().ok()).unwrap_or(2);
    if configured == 2 && service != "git-upload-pack" { 0 } else { configured }
}

/// The options git gives an ssh of `variant` (never `Auto`; resolve it
/// first): `-o SendEnv=GIT_PROTOCOL` for OpenSSH when a version is asked for
/// (the caller sets `GIT_PROTOCOL=version=N`), `-batch` for TortoisePlink.
pub fn ssh_options(variant: Variant, version: u8) -> Vec<String> {
    let mut args = Vec::new();
    if variant == Variant::Ssh && version > 0 {
        args.extend(["-o".to_string(), "SendEnv=GIT_PROTOCOL".to_string()]);
    }
    if variant == Variant::TortoisePlink {
        args.push("-batch".to_string());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> GitConfig {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn protocols_follow_gits_rules() {
        let none = GitConfig::new();
        assert!(protocol_allowed("https", None, Some("0"), &none), "known safe: always, even from a submodule");
        assert!(protocol_allowed("ssh", None, None, &none));
        assert!(!protocol_allowed("ext", None, None, &none));
        assert!(protocol_allowed("jit", None, None, &none) && !protocol_allowed("jit", None, Some("0"), &none), "unknown: user only");
        assert!(!protocol_allowed("ssh", None, None, &config(&[("protocol.ssh.allow", "never")])));
        assert!(!protocol_allowed("ssh", None, None, &config(&[("protocol.allow", "never")])));
        assert!(protocol_allowed("ssh", None, None, &config(&[("protocol.allow", "never"), ("protocol.ssh.allow", "always")])));
        assert!(!protocol_allowed("ssh", None, Some("false"), &config(&[("protocol.ssh.allow", "user")])));
        assert!(protocol_allowed("ssh", Some("https:ssh"), None, &config(&[("protocol.ssh.allow", "never")])), "the list wins");
        assert!(!protocol_allowed("ssh", Some("https"), None, &none));
        assert!(!protocol_allowed("ssh", Some(""), None, &none));
    }

    #[test]
    fn ssh_urls_split_as_git_splits_them() {
        let t = SshTarget::parse("git@host.example:acme/api.git").unwrap();
        assert_eq!((t.user_host.as_str(), t.path.as_str()), ("git@host.example", "acme/api.git"));
        let t = SshTarget::parse("ssh://git@host.example/acme/api.git").unwrap();
        assert_eq!((t.user_host.as_str(), t.path.as_str()), ("git@host.example", "/acme/api.git"));
        assert_eq!(SshTarget::parse("ssh://git@host.example/~/x.git").unwrap().path, "~/x.git");
        assert_eq!(SshTarget::parse("ssh://git@host.example/~alice/x.git").unwrap().path, "~alice/x.git");
        for bad in ["https://host/x", "ssh://host", "host:", "ssh://git@host:22/x", "a/b:c", "ssh://git@[::1]/x", "git@:x"] {
            assert!(matches!(SshTarget::parse(bad), Err(SshError::NotSsh(_))), "{bad}");
        }
        let refused = SshTarget::parse("ftp://alice:hunter2@host/x").unwrap_err().to_string();
        assert!(refused.contains("ftp://alice:<redacted>@host/x") && !refused.contains("hunter2"), "{refused}");
        for strange in ["-oProxyCommand=x:repo", "git@host:-u x", "ssh://-oProxyCommand=x/repo"] {
            assert!(matches!(SshTarget::parse(strange), Err(SshError::Strange { .. })), "{strange}");
        }
    }

    #[test]
    fn the_remote_command_is_quoted_as_git_quotes_it() {
        let t = SshTarget::parse("git@h:it's/a!b.git").unwrap();
        assert_eq!(t.remote_command("git-upload-pack"), r"git-upload-pack 'it'\''s/a'\!'b.git'");
        assert_eq!(sq_quote("a b"), "'a b'");
    }

    #[test]
    fn the_program_comes_from_where_git_looks_first() {
        let none = GitConfig::new();
        let cfg = config(&[("core.sshcommand", "ssh -i key")]);
        assert_eq!(SshProgram::choose(Some("my-ssh -v"), Some("plink"), &cfg), SshProgram::CommandLine("my-ssh -v".into()));
        assert_eq!(SshProgram::choose(Some(""), Some("plink"), &cfg), SshProgram::Program("plink".into()));
        assert_eq!(SshProgram::choose(None, None, &cfg), SshProgram::CommandLine("ssh -i key".into()));
        assert_eq!(SshProgram::choose(None, None, &none), SshProgram::Program("ssh".into()));
        let argv = SshProgram::CommandLine("ssh -i 'my key'".into()).argv(&["host".into(), "cmd".into()]);
        assert_eq!(argv, ["sh", "-c", "ssh -i 'my key' \"$@\"", "ssh -i 'my key'", "host", "cmd"]);
        assert_eq!(SshProgram::Program("/usr/bin/ssh".into()).argv(&["h".into()]), ["/usr/bin/ssh", "h"]);
    }

    #[test]
    fn variants_are_named_or_guessed_like_git() {
        let none = GitConfig::new();
        assert_eq!(SshProgram::Program("ssh".into()).variant(None, &none), Variant::Ssh);
        assert_eq!(SshProgram::Program("C:\\bin\\PLINK.EXE".into()).variant(None, &none), Variant::Plink);
        assert_eq!(SshProgram::CommandLine("/usr/bin/tortoiseplink -x".into()).variant(None, &none), Variant::TortoisePlink);
        assert_eq!(SshProgram::CommandLine("my-wrapper".into()).variant(None, &none), Variant::Auto);
        assert_eq!(SshProgram::Program("ssh".into()).variant(Some("simple"), &none), Variant::Simple);
        assert_eq!(SshProgram::Program("x".into()).variant(None, &config(&[("ssh.variant", "putty")])), Variant::Putty);
        assert_eq!(SshProgram::Program("ssh".into()).variant(Some("bogus"), &none), Variant::Ssh);
    }

    #[test]
    fn options_follow_the_variant_and_version() {
        let none = GitConfig::new();
        assert_eq!(protocol_version("git-upload-pack", &none), 2);
        assert_eq!(protocol_version("git-receive-pack", &none), 0, "git pushes with v0");
        assert_eq!(protocol_version("git-receive-pack", &config(&[("protocol.version", "1")])), 1);
        assert_eq!(ssh_options(Variant::Ssh, 2), ["-o", "SendEnv=GIT_PROTOCOL"]);
        assert!(ssh_options(Variant::Ssh, 0).is_empty());
        assert!(ssh_options(Variant::Simple, 2).is_empty() && ssh_options(Variant::Plink, 2).is_empty());
        assert_eq!(ssh_options(Variant::TortoisePlink, 0), ["-batch"]);
    }
}
