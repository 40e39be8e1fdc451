//! Which URLs git sends to the gateway instead of the host, as git's
//! `url.<base>.insteadOf` entries.
//!
//! `insteadOf` is a prefix match (the longest matching alias wins), so the
//! alias `https://host/acme/api` alone would also capture
//! `https://host/acme/api-tools.git`, `…/api.github` and `…/api/sub`. Every
//! such continuation gets a *fence*: a longer alias that rewrites the URL to
//! itself. What is left to the gateway is exactly the repo's own forms:
//! `https://host/acme/api`, `…/api.git`, either with a trailing `/`, and the
//! SSH forms `git@host:acme/api.git` and `ssh://git@host/acme/api.git`.

use std::collections::BTreeMap;

use super::repo::CloneUrl;

/// Characters that can continue a URL path past a repo's name (RFC 3986
/// unreserved, sub-delims, `:`, `@` and `%`; never `"` or `\`, which a git
/// config subsection could not hold unescaped).
const CONTINUATIONS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@%/";

/// One fronted repo: where git is sent, and where the code lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fronted {
    /// The gateway's clone URL (`https://jit.example.com/git/acme/api.git`).
    pub gateway: String,
    pub upstream: CloneUrl,
}

/// The `insteadOf` entries for `repos`: alias → base (the URL it becomes).
/// A repo's own forms map to its gateway URL; fences map to themselves. A
/// repo's own alias always wins over another repo's fence.
pub fn rewrites(repos: &[Fronted]) -> BTreeMap<String, String> {
    let mut fences = BTreeMap::new();
    let mut own = BTreeMap::new();
    for repo in repos {
        let u = &repo.upstream;
        let https = format!("{}://{}/{}", u.scheme(), u.host_with_port(), u.path());
        let scp = format!("git@{}:{}.git", u.host(), u.path());
        let ssh = format!("ssh://git@{}/{}.git", u.host(), u.path());
        own.insert(https.clone(), repo.gateway.clone());
        own.insert(format!("{https}.git"), repo.gateway.clone());
        own.insert(scp.clone(), repo.gateway.clone());
        own.insert(ssh.clone(), repo.gateway.clone());
        fence_https(&https, &mut fences);
        fence_after(&scp, &mut fences);
        fence_after(&ssh, &mut fences);
    }
    fences.extend(own);
    fences
}

/// Fences for `https://host/acme/api` with and without `.git`: anything
/// longer is another repo, except `.git` itself and a trailing `/`. One fence
/// on `…/api.` covers every `…/api.x` but `…/api.git`, whose own alias is longer.
fn fence_https(base: &str, fences: &mut BTreeMap<String, String>) {
    for c in CONTINUATIONS.chars().filter(|c| *c != '.' && *c != '/') {
        fence(format!("{base}{c}"), fences);
    }
    for c in CONTINUATIONS.chars() {
        fence(format!("{base}/{c}"), fences);
    }
    fence(format!("{base}."), fences);
    fence_after(&format!("{base}.git"), fences);
}

/// Fences every continuation of `alias` but a lone trailing `/`.
fn fence_after(alias: &str, fences: &mut BTreeMap<String, String>) {
    for c in CONTINUATIONS.chars() {
        if c == '/' {
            for d in CONTINUATIONS.chars() {
                fence(format!("{alias}/{d}"), fences);
            }
        } else {
            fence(format!("{alias}{c}"), fences);
        }
    }
}

fn fence(alias: String, fences: &mut BTreeMap<String, String>) {
    fences.insert(alias.clone(), alias);
}

/// What git makes of `url` with `rewrites`: the longest matching alias's base
/// followed by the rest of the URL, or `url` as it is.
pub fn rewrite(url: &str, rewrites: &BTreeMap<String, String>) -> String {
    rewrites
        .iter()
        .filter(|(alias, _)| url.starts_with(alias.as_str()))
        .max_by_key(|(alias, _)| alias.len())
        .map(|(alias, base)| format!("{base}{}", &url[alias.len()..]))
        .unwrap_or_else(|| url.to_string())
}

/// The entries as a git config file (`[url "BASE"]` / `insteadOf = ALIAS`).
pub fn config_text(rewrites: &BTreeMap<String, String>) -> String {
    let mut by_base: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (alias, base) in rewrites {
        by_base.entry(base).or_default().push(alias);
    }
    let mut out = String::from(
        "# Written by `jit setup`: git reaches these repos through jit's gateway.\n# Remove with `jit setup --uninstall`; edits here are overwritten.\n",
    );
    for (base, aliases) in by_base {
        out.push_str(&format!("[url \"{base}\"]\n"));
        for alias in aliases {
            // Quoted: `;` and `#` would otherwise start a comment.
            out.push_str(&format!("\tinsteadOf = \"{alias}\"\n"));
        }
    }
    out
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
        let map = rewrites(&[api()]);
        for url in [
            "https://git.example.com/acme/api",
            "https://git.example.com/acme/api.git",
            "git@git.example.com:acme/api.git",
            "ssh://git@git.example.com/acme/api.git",
        ] {
            assert_eq!(rewrite(url, &map), GW, "{url}");
            assert_eq!(rewrite(&format!("{url}/"), &map), format!("{GW}/"), "{url}/");
        }
        assert_eq!(rewrite("https://git.example.com/acme/api.git/", &map), format!("{GW}/"));
    }

    #[test]
    fn no_other_repository_is_captured() {
        let map = rewrites(&[api()]);
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
            "https://git.example.com/acme/ap.git",
            "https://git.example.com/acme/apis",
            "https://other.example.com/acme/api.git",
            "git@git.example.com:acme/api-tools.git",
            "git@git.example.com:acme/api.github.git",
            "git@git.example.com:acme/api.git.old",
            "ssh://git@git.example.com/acme/api.github.git",
            "ssh://git@git.example.com/acme/api-tools.git",
        ] {
            assert_eq!(rewrite(url, &map), url, "{url} was captured");
        }
    }

    #[test]
    fn two_fronted_repos_with_one_name_inside_the_other_each_go_to_their_own() {
        let tools = Fronted {
            gateway: "https://jit.example.com/git/acme/api-tools.git".into(),
            upstream: CloneUrl::parse("https://git.example.com/acme/api-tools.git").unwrap(),
        };
        let map = rewrites(&[api(), tools.clone()]);
        assert_eq!(rewrite("https://git.example.com/acme/api-tools.git", &map), tools.gateway);
        assert_eq!(rewrite("git@git.example.com:acme/api-tools.git", &map), tools.gateway);
        assert_eq!(rewrite("https://git.example.com/acme/api.git", &map), GW);
        assert_eq!(rewrite("https://git.example.com/acme/api-toolsx.git", &map), "https://git.example.com/acme/api-toolsx.git");
    }

    #[test]
    fn the_config_file_groups_aliases_by_target() {
        let map = rewrites(&[api()]);
        let text = config_text(&map);
        let gateway_section = text.split(&format!("[url \"{GW}\"]\n")).nth(1).unwrap();
        let own: Vec<&str> = gateway_section.lines().take_while(|l| l.starts_with('\t')).collect();
        assert_eq!(
            own,
            [
                "\tinsteadOf = \"git@git.example.com:acme/api.git\"",
                "\tinsteadOf = \"https://git.example.com/acme/api\"",
                "\tinsteadOf = \"https://git.example.com/acme/api.git\"",
                "\tinsteadOf = \"ssh://git@git.example.com/acme/api.git\"",
            ]
        );
        assert!(text.contains("[url \"https://git.example.com/acme/api-\"]\n\tinsteadOf = \"https://git.example.com/acme/api-\"\n"));
        assert!(text.lines().all(|l| l.starts_with('#') || l.matches('"').count() == 2), "every name and value quoted");
        // Each repo costs git about this many lines of config to read.
        assert!(map.len() < 1000, "{}", map.len());
    }
}
