//! Which URLs git sends to the gateway instead of the host.
//!
//! git's `url.<base>.insteadOf` is a prefix match, so the alias
//! `https://host/acme/api` alone would also capture `…/api-tools.git`,
//! `…/api.github` and `…/api/sub`; fencing every continuation cost ~645
//! config lines per repo, and git reads its config on every command (1,000
//! fronted repos made `git rev-parse` 1.2–1.7 s slower). So the config holds
//! one rewrite per *host*, to jit's remote helper (`jit::<the same URL>`),
//! and the helper decides per URL, exactly, with [`route`]: a fronted repo's
//! own forms go to its gateway URL, anything else goes on to the host
//! unchanged, through git's own transport. The config's size no longer
//! depends on how many repos jit fronts.
//!
//! A repo's own forms: `https://host/acme/api`, `…/api.git`, either with a
//! trailing `/`, and the SSH forms `git@host:acme/api[.git]` and
//! `ssh://git@host/acme/api[.git]` (with a trailing `/` too).

use std::collections::BTreeSet;

use super::repo::CloneUrl;

/// One fronted repo: where git is sent, and where the code lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fronted {
    /// The gateway's clone URL (`https://jit.example.com/git/acme/api.git`).
    pub gateway: String,
    pub upstream: CloneUrl,
}

impl Fronted {
    /// The repo's own URL forms, without a trailing `/`.
    fn own_forms(&self) -> [String; 6] {
        let u = &self.upstream;
        let https = format!("{}://{}/{}", u.scheme(), u.host_with_port(), u.path());
        let scp = format!("git@{}:{}", u.host(), u.path());
        let ssh = format!("ssh://git@{}/{}", u.host(), u.path());
        [format!("{https}.git"), https, format!("{scp}.git"), scp, format!("{ssh}.git"), ssh]
    }

    /// The URL prefixes of the repo's host that git hands jit's helper.
    fn host_prefixes(&self) -> [String; 3] {
        let u = &self.upstream;
        [format!("{}://{}/", u.scheme(), u.host_with_port()), format!("git@{}:", u.host()), format!("ssh://git@{}/", u.host())]
    }
}

/// The prefixes git hands jit's remote helper: each host a fronted repo
/// lives on, in its HTTP(S), scp-like and `ssh://` spellings.
pub fn routed_prefixes(repos: &[Fronted]) -> BTreeSet<String> {
    repos.iter().flat_map(Fronted::host_prefixes).collect()
}

/// Where the helper sends `url`: the gateway URL when `url` is exactly one of
/// a fronted repo's own forms (a trailing `/` kept), `None` when it is
/// anything else, which goes to the host as it is.
pub fn route(url: &str, repos: &[Fronted]) -> Option<String> {
    let (bare, slash) = match url.strip_suffix('/') {
        Some(bare) => (bare, "/"),
        None => (url, ""),
    };
    repos.iter().find(|r| r.own_forms().iter().any(|form| form == bare)).map(|r| format!("{}{slash}", r.gateway))
}

/// What git ends up using for `url` once `jit setup` is in place: `url`
/// itself unless it is on a routed host and [`route`] sends it to a gateway.
pub fn resolve(url: &str, repos: &[Fronted]) -> String {
    let routed = routed_prefixes(repos).iter().any(|p| url.starts_with(p.as_str()));
    routed.then(|| route(url, repos)).flatten().unwrap_or_else(|| url.to_string())
}

/// The scheme that names jit's remote helper in a URL (`jit::https://…`).
pub const HELPER_SCHEME: &str = "jit";

/// The name of the link to jit that `jit setup` makes for git's alias: run
/// under it (no arguments of its own, no shell), jit is the remote helper.
pub const HELPER_LINK: &str = "git-remote-jit";

/// jit's git config file: `remote_helper` (a git alias value,
/// `!'/home/a/.local/share/jit/git-remote-jit'`) answers for the `jit::` URLs the `insteadOf` entries make
/// of every routed prefix. `protocol.jit.allow` lets submodules use them too;
/// the helper then applies git's protocol rules to what it connects to.
pub fn config_text(prefixes: &BTreeSet<String>, remote_helper: &str) -> String {
    let mut out = String::from(
        "# Written by `jit setup`: git hands URLs on these hosts to jit, which sends\n# the repos jit fronts to its gateway and everything else on unchanged.\n# Remove with `jit setup --uninstall`; edits here are overwritten.\n",
    );
    out.push_str(&format!("[alias]\n\tremote-{HELPER_SCHEME} = \"{}\"\n", quote(remote_helper)));
    out.push_str(&format!("[protocol \"{HELPER_SCHEME}\"]\n\tallow = always\n"));
    for prefix in prefixes {
        out.push_str(&format!("[url \"{HELPER_SCHEME}::{0}\"]\n\tinsteadOf = \"{0}\"\n", quote(prefix)));
    }
    out
}

/// A git config value or subsection between double quotes.
fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: &str = "https://jit.example.com/git/acme/api.git";

    fn api() -> Fronted {
        Fronted { gateway: GW.into(), upstream: CloneUrl::parse("https://git.example.com/acme/api.git").unwrap() }
    }

    #[test]
    fn every_form_of_the_repo_goes_to_the_gateway() {
        let repos = [api()];
        for url in [
            "https://git.example.com/acme/api",
            "https://git.example.com/acme/api.git",
            "git@git.example.com:acme/api.git",
            "git@git.example.com:acme/api",
            "ssh://git@git.example.com/acme/api.git",
            "ssh://git@git.example.com/acme/api",
        ] {
            assert_eq!(resolve(url, &repos), GW, "{url}");
            assert_eq!(resolve(&format!("{url}/"), &repos), format!("{GW}/"), "{url}/");
        }
    }

    #[test]
    fn no_other_repository_is_captured() {
        let repos = [api()];
        for url in [
            "https://git.example.com/acme/api-tools.git",
            "https://git.example.com/acme/api-tools",
            "https://git.example.com/acme/api.github",
            "https://git.example.com/acme/api.github.git",
            "https://git.example.com/acme/api.g",
            "https://git.example.com/acme/api.gi.git",
            "https://git.example.com/acme/api.gitx",
            "https://git.example.com/acme/api.git.bak",
            "https://git.example.com/acme/api2.git",
            "https://git.example.com/acme/api_v2",
            "https://git.example.com/acme/api/sub.git",
            "https://git.example.com/acme/api.git/sub.git",
            "https://git.example.com/acme/api//",
            "https://git.example.com/acme/ap.git",
            "https://git.example.com/acme/apis",
            "https://git.example.com/ACME/api.git",
            "https://git.example.com:8443/acme/api.git",
            "http://git.example.com/acme/api.git",
            "https://other.example.com/acme/api.git",
            "git@git.example.com:acme/api-tools.git",
            "git@git.example.com:acme/api.github.git",
            "git@git.example.com:acme/api.git.old",
            "git@git.example.com:/acme/api.git",
            "alice@git.example.com:acme/api.git",
            "ssh://git@git.example.com/acme/api.github.git",
            "ssh://git@git.example.com/acme/api-tools.git",
            "ssh://git@git.example.com:22/acme/api.git",
        ] {
            assert_eq!(resolve(url, &repos), url, "{url} was captured");
        }
    }

    #[test]
    fn two_fronted_repos_with_one_name_inside_the_other_each_go_to_their_own() {
        let tools = Fronted {
            gateway: "https://jit.example.com/git/acme/api-tools.git".into(),
            upstream: CloneUrl::parse("https://git.example.com/acme/api-tools.git").unwrap(),
        };
        let repos = [api(), tools.clone()];
        assert_eq!(resolve("https://git.example.com/acme/api-tools.git", &repos), tools.gateway);
        assert_eq!(resolve("git@git.example.com:acme/api-tools.git", &repos), tools.gateway);
        assert_eq!(resolve("https://git.example.com/acme/api.git", &repos), GW);
        assert_eq!(resolve("https://git.example.com/acme/api-toolsx.git", &repos), "https://git.example.com/acme/api-toolsx.git");
    }

    #[test]
    fn the_config_grows_with_hosts_not_repos() {
        let many: Vec<Fronted> = (0..1000)
            .map(|n| Fronted {
                gateway: format!("https://jit.example.com/git/acme/r{n}.git"),
                upstream: CloneUrl::parse(&format!("https://git.example.com/acme/r{n}.git")).unwrap(),
            })
            .collect();
        let prefixes = routed_prefixes(&many);
        assert_eq!(
            prefixes.iter().map(String::as_str).collect::<Vec<_>>(),
            ["git@git.example.com:", "https://git.example.com/", "ssh://git@git.example.com/"]
        );
        let text = config_text(&prefixes, "!'/opt/my \"jit\"/git-remote-jit'");
        assert!(text.contains("[url \"jit::https://git.example.com/\"]\n\tinsteadOf = \"https://git.example.com/\"\n"), "{text}");
        assert!(text.contains("\tremote-jit = \"!'/opt/my \\\"jit\\\"/git-remote-jit'\"\n"), "{text}");
        assert!(text.contains("[protocol \"jit\"]\n\tallow = always\n"));
        assert!(text.lines().count() < 20, "{text}");
    }

    #[test]
    fn a_port_stays_with_the_https_prefix_and_leaves_the_ssh_ones() {
        let on_port = Fronted { gateway: GW.into(), upstream: CloneUrl::parse("http://127.0.0.1:8081/acme/api.git").unwrap() };
        let prefixes = routed_prefixes(std::slice::from_ref(&on_port));
        assert!(prefixes.contains("http://127.0.0.1:8081/") && prefixes.contains("git@127.0.0.1:"), "{prefixes:?}");
        assert_eq!(route("http://127.0.0.1:8081/acme/api", std::slice::from_ref(&on_port)).as_deref(), Some(GW));
        assert_eq!(route("http://127.0.0.1/acme/api", &[on_port]), None);
    }
}
