//! Repository names and clone URLs, and how one is resolved to the other.
//!
//! A repo is known to the broker by a short `name` (`demo`, `acme/api`) and,
//! usually, a clone URL. People may type any of `acme/api`,
//! `github.com/acme/api` or `https://github.com/acme/api.git`; all resolve to
//! the same repo. Clone URLs are compared in a normalized form (lower-case
//! host, default port dropped, no trailing `.git` or `/`) and nothing looser:
//! the credential helper relies on [`CloneUrl`] equality being exact. One
//! host's rule is part of that form: Bitbucket Data Center serves
//! `…/scm/KEY/slug` whatever the case of its key and slug, and its own clone
//! URLs show the key in lower case where its pages show it upper, so such a
//! path is kept in lower case (and `host/KEY/slug` or `KEY/slug` name it too).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    #[error("invalid clone URL `{input}`: {reason}")]
    BadUrl { input: String, reason: String },
    #[error("invalid repo name `{0}`: use letters, digits, `-`, `_`, `.` and `/` between path parts")]
    BadName(String),
    #[error("unknown repo `{input}`{}", did_you_mean(.suggestion))]
    Unknown { input: String, suggestion: Option<String> },
    #[error("repo `{input}` is ambiguous: it could be {candidates}; use the full name")]
    Ambiguous { input: String, candidates: String },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
}

/// The known repo name closest to what was typed, if one is close enough to be a typo.
fn closest<'a>(input: &str, repos: &'a [RepoSpec]) -> Option<&'a str> {
    let typed = input.trim_end_matches('/').trim_end_matches(".git");
    repos
        .iter()
        .map(|r| (strsim::damerau_levenshtein(typed, &r.name), r.name.as_str()))
        .filter(|(distance, name)| *distance > 0 && *distance <= 2.max(name.len() / 4))
        .min()
        .map(|(_, name)| name)
}

fn unknown(input: &str, repos: &[RepoSpec]) -> RepoError {
    RepoError::Unknown { input: input.to_string(), suggestion: closest(input, repos).map(str::to_string) }
}

/// A normalized clone URL: the identity of a repo at a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloneUrl {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
}

impl CloneUrl {
    /// Parses an `http`/`https` clone URL. Userinfo, queries and fragments are
    /// refused: a clone URL carrying them is a look-alike, not a repo.
    pub fn parse(input: &str) -> Result<Self, RepoError> {
        let bad = |reason: &str| RepoError::BadUrl { input: input.to_string(), reason: reason.to_string() };
        let url = url::Url::parse(input).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("only http and https clone URLs are supported"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("a clone URL must not carry a user name or password"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a clone URL must not have a query or fragment"));
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        Self::from_parts(url.scheme(), host, url.port(), url.path()).map_err(|_| bad("no repository path"))
    }

    /// Builds from the pieces git hands a credential helper (`protocol`,
    /// `host` with an optional `:port`, `path`).
    pub fn from_parts(scheme: &str, host: &str, port: Option<u16>, path: &str) -> Result<Self, RepoError> {
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        let port = port.filter(|p| Some(*p) != default_port);
        let mut path = path.trim_matches('/');
        path = path.strip_suffix(".git").unwrap_or(path);
        path = path.trim_end_matches('/');
        if path.is_empty() || host.is_empty() {
            return Err(RepoError::BadUrl { input: format!("{scheme}://{host}/{path}"), reason: "empty host or path".into() });
        }
        let path = match scm_split(path) {
            Some((base, short)) => format!("{base}scm/{}", short.to_ascii_lowercase()),
            None => path.to_string(),
        };
        Ok(CloneUrl { scheme, host: host.to_ascii_lowercase(), port, path })
    }

    /// `KEY/slug` of a Bitbucket Data Center path (`…/scm/KEY/slug`), the
    /// way people name its repo without the `scm/`.
    pub fn scm_short_path(&self) -> Option<&str> {
        scm_split(&self.path).map(|(_, short)| short)
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// `host` or `host:port` when the port is not the scheme's default.
    /// The port, its scheme's default when the URL names none.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.scheme == "https" { 443 } else { 80 })
    }

    pub fn host_with_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// `host/path` (with `:port` when not default), the form people type.
    pub fn host_path(&self) -> String {
        format!("{}/{}", self.host_with_port(), self.path)
    }

    /// Whether the URL is on a loopback address, where plain http is acceptable.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            || self.host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).is_some_and(|h| h == "::1")
    }
}

impl fmt::Display for CloneUrl {
    /// The canonical clone URL, always with `.git`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}.git", self.scheme, self.host_with_port(), self.path)
    }
}

impl Serialize for CloneUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CloneUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CloneUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A Bitbucket Data Center path split before its `scm/`: what comes before
/// (a context path, with its slash) and `KEY/slug` after.
fn scm_split(path: &str) -> Option<(&str, &str)> {
    let mut from_end = path.rmatch_indices('/');
    let (_, _) = from_end.next()?;
    let (key_start, _) = from_end.next()?;
    let before = &path[..key_start];
    let base = match before.rsplit_once('/') {
        Some((base, scm)) if scm.eq_ignore_ascii_case("scm") => &path[..base.len() + 1],
        None if before.eq_ignore_ascii_case("scm") => "",
        _ => return None,
    };
    Some((base, &path[key_start + 1..]))
}

/// A repo the broker knows: its short name, its clone URL when it has one,
/// and the provider (by name) that makes grants on it real.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSpec {
    pub name: String,
    pub url: Option<CloneUrl>,
    #[serde(default)]
    pub provider: Option<String>,
    /// Where the code lives when the gateway fronts another host (`url` is
    /// then the gateway's URL for it); people may name the repo by either.
    #[serde(default)]
    pub upstream: Option<CloneUrl>,
}

impl RepoSpec {
    /// Every URL the repo is known by: the one git uses, and where the code lives.
    pub fn urls(&self) -> impl Iterator<Item = &CloneUrl> {
        self.url.iter().chain(self.upstream.iter())
    }
}

/// `host` and `path` (no `.git`) of an SSH remote: `user@host:path` (scp
/// style) or `ssh://[user@]host[:port]/path`.
pub fn ssh_host_path(input: &str) -> Option<(String, String)> {
    let (host, path) = if let Some(rest) = input.strip_prefix("ssh://") {
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        (host.split_once(':').map_or(host, |(h, _)| h), path)
    } else {
        let (authority, path) = input.split_once(':')?;
        if authority.contains('/') || !authority.contains('@') {
            return None;
        }
        (authority.rsplit_once('@').map(|(_, h)| h)?, path)
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).trim_end_matches('/');
    (!host.is_empty() && !path.is_empty()).then(|| (host.to_ascii_lowercase(), path.to_string()))
}

/// Checks a short repo name: path parts of `[A-Za-z0-9._-]`, no `..`, no empty part.
pub fn validate_name(name: &str) -> Result<(), RepoError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok { Ok(()) } else { Err(RepoError::BadName(name.to_string())) }
}

/// Resolves what a person typed to one of the known repos.
///
/// Order: a full URL compares by [`CloneUrl`]; an exact short name wins; a
/// `host/owner/name` form compares against each URL's host and path; and
/// finally a short name matches a repo whose URL path ends with it, if only
/// one does.
pub fn resolve<'a>(input: &str, repos: &'a [RepoSpec]) -> Result<&'a RepoSpec, RepoError> {
    let input = input.trim();
    if let Some((host, path)) = ssh_host_path(input) {
        return repos
            .iter()
            .find(|r| r.urls().any(|u| u.host() == host && u.path() == path))
            .ok_or_else(|| RepoError::Unknown { input: input.to_string(), suggestion: None });
    }
    if input.contains("://") {
        let url = CloneUrl::parse(input)?;
        return repos
            .iter()
            .find(|r| r.urls().any(|u| *u == url))
            .ok_or_else(|| RepoError::Unknown { input: input.to_string(), suggestion: None });
    }
    let trimmed = input.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix(".git").unwrap_or(trimmed);
    if let Some(r) = repos.iter().find(|r| r.name == trimmed) {
        return Ok(r);
    }
    let lowered_host = match trimmed.split_once('/') {
        Some((host, path)) => format!("{}/{path}", host.to_ascii_lowercase()),
        None => trimmed.to_string(),
    };
    // Bitbucket Data Center's repos, also without their `scm/`, in any case.
    let scm_named = |u: &CloneUrl, typed: &str| u.scm_short_path().is_some_and(|short| short.eq_ignore_ascii_case(typed));
    let scm_hosted = |u: &CloneUrl| {
        let scm_path = |p: &str| scm_named(u, p) || (u.scm_short_path().is_some() && u.path().eq_ignore_ascii_case(p));
        lowered_host.split_once('/').is_some_and(|(h, p)| h == u.host_with_port() && scm_path(p))
    };
    if let Some(r) = repos.iter().find(|r| r.urls().any(|u| u.host_path() == lowered_host || scm_hosted(u))) {
        return Ok(r);
    }
    let suffix = format!("/{trimmed}");
    let ends_with = |path: &str| path == trimmed || format!("/{path}").ends_with(&suffix);
    let scm_ends_with = |u: &CloneUrl| u.scm_short_path().is_some_and(|short| format!("/{short}").ends_with(&suffix.to_ascii_lowercase()));
    let matches: Vec<&RepoSpec> = repos.iter().filter(|r| r.urls().any(|u| ends_with(u.path()) || scm_ends_with(u))).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(unknown(input, repos)),
        many => Err(RepoError::Ambiguous {
            input: input.to_string(),
            candidates: many.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, url: &str) -> RepoSpec {
        RepoSpec { name: name.into(), url: Some(CloneUrl::parse(url).unwrap()), provider: None, upstream: None }
    }

    #[test]
    fn normalizes_clone_urls() {
        let a = CloneUrl::parse("https://GitHub.com/acme/api.git").unwrap();
        let b = CloneUrl::parse("https://github.com:443/acme/api/").unwrap();
        let c = CloneUrl::parse("https://github.com/acme/api").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_string(), "https://github.com/acme/api.git");
        assert_eq!(a.host_path(), "github.com/acme/api");
    }

    #[test]
    fn keeps_what_distinguishes_repos() {
        let base = CloneUrl::parse("https://github.com/acme/api.git").unwrap();
        for other in [
            "http://github.com/acme/api.git",
            "https://github.com:8443/acme/api.git",
            "https://gitlab.com/acme/api.git",
            "https://evilgithub.com/acme/api.git",
            "https://github.com/acme/api-evil.git",
            "https://github.com/acme/API.git",
            "https://github.com/acme/api.git.evil",
        ] {
            assert_ne!(CloneUrl::parse(other).unwrap(), base, "{other}");
        }
    }

    #[test]
    fn refuses_look_alike_urls() {
        for bad in [
            "https://user:pw@github.com/acme/api.git",
            "https://github.com@evil.com/acme/api.git",
            "https://github.com/acme/api.git?x=1",
            "ssh://github.com/acme/api.git",
            "https://github.com/",
            "not a url",
        ] {
            assert!(CloneUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_schemes_default_port_is_no_port() {
        // As git hands them to the helper: `host=github.com:443`.
        let canonical = CloneUrl::parse("https://github.com/acme/api.git").unwrap();
        assert_eq!(CloneUrl::from_parts("https", "github.com", Some(443), "acme/api").unwrap(), canonical);
        assert_eq!(CloneUrl::from_parts("HTTPS", "GitHub.com", None, "/acme/api.git/").unwrap(), canonical);
        let plain = CloneUrl::from_parts("http", "127.0.0.1", Some(80), "git/demo.git").unwrap();
        assert_eq!(plain.host_with_port(), "127.0.0.1");
        assert_eq!(CloneUrl::from_parts("http", "127.0.0.1", Some(443), "git/demo").unwrap().host_with_port(), "127.0.0.1:443");
    }

    #[test]
    fn loopback_detection() {
        assert!(CloneUrl::parse("http://127.0.0.1:8420/git/demo.git").unwrap().is_loopback());
        assert!(CloneUrl::parse("http://localhost/git/demo.git").unwrap().is_loopback());
        assert!(CloneUrl::parse("http://[::1]:80/git/demo.git").unwrap().is_loopback());
        assert!(!CloneUrl::parse("http://example.com/git/demo.git").unwrap().is_loopback());
    }

    #[test]
    fn resolves_every_spelling_to_one_repo() {
        let repos = vec![spec("acme/api", "https://github.com/acme/api.git"), spec("demo", "http://127.0.0.1:8420/git/demo.git")];
        for input in [
            "acme/api",
            "github.com/acme/api",
            "GitHub.com/acme/api.git",
            "https://github.com/acme/api.git",
            "https://github.com/acme/api",
            "api",
        ] {
            assert_eq!(resolve(input, &repos).unwrap().name, "acme/api", "{input}");
        }
        assert_eq!(resolve("demo", &repos).unwrap().name, "demo");
        assert_eq!(resolve("127.0.0.1:8420/git/demo", &repos).unwrap().name, "demo");
        assert_eq!(resolve("http://127.0.0.1:8420/git/demo.git", &repos).unwrap().name, "demo");
    }

    #[test]
    fn a_bitbucket_data_center_repo_is_named_with_or_without_scm_in_any_case() {
        let repos = vec![
            spec("acme/api", "https://bitbucket.example.com/scm/ACME/api.git"),
            spec("tools", "https://git.example.com/bitbucket/scm/OPS/Tools.git"),
            spec("cloud", "https://bitbucket.org/acme/web.git"),
        ];
        for input in [
            "bitbucket.example.com/ACME/api",
            "bitbucket.example.com/acme/api",
            "bitbucket.example.com/scm/ACME/api",
            "ACME/api",
            "acme/api",
            "https://bitbucket.example.com/scm/acme/api.git",
            "https://bitbucket.example.com/scm/ACME/api.git",
            "https://Bitbucket.example.com/SCM/Acme/API",
        ] {
            assert_eq!(resolve(input, &repos).unwrap().name, "acme/api", "{input}");
        }
        for input in ["OPS/tools", "git.example.com/bitbucket/scm/ops/tools", "https://git.example.com/bitbucket/scm/ops/tools.git"] {
            assert_eq!(resolve(input, &repos).unwrap().name, "tools", "{input}");
        }
        for input in ["acme/web", "bitbucket.org/acme/web", "https://bitbucket.org/acme/web.git"] {
            assert_eq!(resolve(input, &repos).unwrap().name, "cloud", "{input}");
        }
        // The canonical form is Data Center's own clone URL; nothing but the `scm/` form is folded.
        assert_eq!(repos[0].url.as_ref().unwrap().to_string(), "https://bitbucket.example.com/scm/acme/api.git");
        assert_eq!(repos[1].url.as_ref().unwrap().scm_short_path(), Some("ops/tools"));
        assert_ne!(
            CloneUrl::parse("https://github.com/Acme/API.git").unwrap(),
            CloneUrl::parse("https://github.com/acme/api.git").unwrap()
        );
        assert_eq!(CloneUrl::parse("https://github.com/scm/api.git").unwrap().scm_short_path(), None, "two segments are not KEY/slug");
        assert!(resolve("bitbucket.example.com/ACME/api-evil", &repos).is_err());
        assert!(resolve("CME/api", &repos).is_err(), "a suffix must start at a path boundary");
    }

    #[test]
    fn a_fronted_repo_resolves_by_the_gateway_url_where_the_code_lives_and_its_ssh_forms() {
        let mut fronted = spec("acme/api", "http://127.0.0.1:8420/git/acme/api.git");
        fronted.upstream = Some(CloneUrl::parse("https://git.example.com/acme/api.git").unwrap());
        let repos = vec![fronted, spec("acme/api-tools", "https://git.example.com/acme/api-tools.git")];
        for input in [
            "https://git.example.com/acme/api.git",
            "https://git.example.com/acme/api",
            "git.example.com/acme/api",
            "http://127.0.0.1:8420/git/acme/api.git",
            "git@git.example.com:acme/api.git",
            "git@git.example.com:acme/api",
            "ssh://git@git.example.com/acme/api.git",
            "ssh://git@Git.Example.com:2222/acme/api.git/",
        ] {
            assert_eq!(resolve(input, &repos).unwrap().name, "acme/api", "{input}");
        }
        assert_eq!(resolve("git@git.example.com:acme/api-tools.git", &repos).unwrap().name, "acme/api-tools");
        for other in ["git@git.example.com:acme/api.github.git", "git@other.example.com:acme/api.git", "ssh://git@git.example.com/acme"] {
            assert!(resolve(other, &repos).is_err(), "{other}");
        }
    }

    #[test]
    fn ssh_forms_are_read_and_nothing_else_is() {
        assert_eq!(ssh_host_path("git@h:a/b.git"), Some(("h".into(), "a/b".into())));
        assert_eq!(ssh_host_path("ssh://h/a/b"), Some(("h".into(), "a/b".into())));
        assert_eq!(ssh_host_path("ssh://u@h:22/a/b.git"), Some(("h".into(), "a/b".into())));
        for not_ssh in ["acme/api", "h:a/b", "https://h/a/b.git", "github.com/acme/api", "git@h:", "ssh://h/", "x/git@h:a/b.git"] {
            assert_eq!(ssh_host_path(not_ssh), None, "{not_ssh}");
        }
    }

    #[test]
    fn unknown_and_ambiguous_names_are_errors() {
        let repos = vec![spec("acme/api", "https://github.com/acme/api.git"), spec("other/api", "https://gitlab.com/other/api.git")];
        assert_eq!(resolve("acme/web", &repos), Err(RepoError::Unknown { input: "acme/web".into(), suggestion: None }));
        let typo = resolve("acme/apj", &repos).unwrap_err().to_string();
        assert_eq!(typo, "unknown repo `acme/apj`; did you mean `acme/api`?");
        assert!(resolve("zzz", &repos).unwrap_err().to_string().ends_with("`zzz`"), "nothing close: no guess");
        // Long names allow more typos: a quarter of their length.
        let long = vec![spec("platform/payments-service", "https://git.example.com/platform/payments-service.git")];
        let typo = resolve("platform/paymnets-servcie-x", &long).unwrap_err().to_string();
        assert!(typo.ends_with("did you mean `platform/payments-service`?"), "{typo}");
        assert!(matches!(resolve("api", &repos), Err(RepoError::Ambiguous { .. })));
        assert!(resolve("https://github.com/acme/api-evil.git", &repos).is_err());
        assert!(resolve("cme/api", &repos).is_err(), "a suffix must start at a path boundary");
    }

    #[test]
    fn validates_short_names() {
        for good in ["demo", "acme/api", "a.b-c_d/e"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "/demo", "demo/", "a//b", "../x", "a/../b", "sp ace", "a;b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
