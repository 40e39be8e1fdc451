//! Git's edges: the credential-helper protocol, the remote helper that routes
//! fronted repos' URLs, and the global git config edits `jit setup` makes.

pub mod config;
pub mod credential;
#[cfg(unix)]
pub mod remote_helper;

/// git's first version that sends a helper's credential as its own
/// Authorization scheme (`capability[]=authtype`: Bearer tokens), and keeps
/// an `ephemeral` credential out of storage helpers.
pub const AUTHTYPE_VERSION: (u32, u32) = (2, 46);

/// `git version 2.47.3` → (2, 47).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().nth(2)?;
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// What `git --version` says on this machine, when git runs at all.
pub fn installed_version() -> Option<String> {
    let out = std::process::Command::new("git").arg("--version").output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn git_versions_are_read() {
        assert_eq!(super::parse_version("git version 2.47.3"), Some((2, 47)));
        assert_eq!(super::parse_version("git version 2.39.5 (Apple Git-154)"), Some((2, 39)));
        assert_eq!(super::parse_version("nonsense"), None);
    }
}
