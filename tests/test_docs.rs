//! The docs and the code agree: every `jit …` command the docs show exists,
//! every command that exists is shown, every config key in a docs example is
//! one the broker accepts, and every key it accepts is in an example. The
//! accepted keys come from the config parser itself (its "unknown field,
//! expected one of …" answer), so a new key cannot be left undocumented.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn docs() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("SECURITY.md"), root.join("ARCHITECTURE.md"), root.join("CONTRIBUTING.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.into_iter().map(|f| (f.clone(), std::fs::read_to_string(&f).unwrap())).collect()
}

/// Fenced blocks of `text` with their language: `(lang, body)`.
fn fenced(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some((lang.trim().to_string(), String::new())),
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    blocks
}

/// Every `jit …` invocation shown: lines of shell blocks, and inline code spans.
fn shown_commands(text: &str) -> Vec<Vec<String>> {
    let mut shown = Vec::new();
    let words = |s: &str| s.split_whitespace().skip(1).map(str::to_string).collect::<Vec<_>>();
    for (lang, body) in fenced(text) {
        if matches!(lang.as_str(), "sh" | "") {
            for line in body.lines() {
                let line = line.trim_start().trim_start_matches("$ ");
                let line = line
                    .split_once("$ ")
                    .map_or(line, |(prompt, rest)| if prompt.ends_with(['$', ' ']) || prompt.is_empty() { rest } else { line });
                if line.starts_with("jit ") {
                    shown.push(words(line));
                }
            }
        }
    }
    let mut outside = String::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            outside.push_str(line);
            outside.push('\n');
        }
    }
    for (i, span) in outside.split('`').enumerate() {
        if i % 2 == 1 && span.starts_with("jit ") {
            shown.push(words(span));
        }
    }
    shown
}

fn public_cli() -> clap::Command {
    jit::commands::util::public_command(&<jit::cli::Cli as clap::CommandFactory>::command())
}

/// The command path `words` names (`["admin", "user", "add"]`), or the first word that is no command.
fn resolve(cli: &clap::Command, words: &[String]) -> Result<Vec<String>, String> {
    let mut at = cli;
    let mut path = Vec::new();
    for word in words {
        if at.get_subcommands().next().is_none() || word.starts_with('-') {
            break;
        }
        match at.find_subcommand(word) {
            Some(sub) => {
                path.push(word.clone());
                at = sub;
            }
            // A group that also runs alone (`jit audit --since 2h`) takes arguments.
            None if path.is_empty() => return Err(word.clone()),
            None => break,
        }
    }
    Ok(path)
}

fn leaves(cmd: &clap::Command, path: Vec<String>, out: &mut BTreeSet<Vec<String>>) {
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if subs.is_empty() {
        out.insert(path);
        return;
    }
    for sub in subs {
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        leaves(sub, p, out);
    }
}

#[test]
fn every_command_the_docs_show_exists_and_every_command_is_shown() {
    let cli = public_cli();
    let mut shown = BTreeSet::new();
    let mut unknown = Vec::new();
    for (file, text) in docs() {
        for words in shown_commands(&text) {
            match resolve(&cli, &words) {
                Ok(path) => {
                    shown.insert(path);
                }
                Err(word) => unknown.push(format!("{}: jit {} (no command `{word}`)", file.display(), words.join(" "))),
            }
        }
    }
    assert!(unknown.is_empty(), "the docs show commands that do not exist:\n{}", unknown.join("\n"));
    let mut all = BTreeSet::new();
    leaves(&cli, Vec::new(), &mut all);
    let missing: Vec<String> = all.iter().filter(|leaf| !shown.contains(*leaf)).map(|l| format!("jit {}", l.join(" "))).collect();
    assert!(missing.is_empty(), "commands no doc shows:\n{}", missing.join("\n"));
}

/// A config section as the docs write it, and as the parser is probed for it.
fn probe(section: &str, kind: Option<&str>) -> String {
    let source = match (section, kind) {
        ("provider", Some(kind)) => format!("[[provider]]\nname = \"p\"\nkind = \"{kind}\"\n__probe__ = 1\n"),
        ("repo" | "rule" | "notify", _) => format!("[[{section}]]\nname = \"x\"\n__probe__ = 1\n"),
        _ => format!("[{section}]\n__probe__ = 1\n"),
    };
    jit::server::ServerConfig::from_toml(&source, Path::new("probe.toml"), Some("/nonexistent".into())).unwrap_err().to_string()
}

/// The keys the parser accepts in a section, from its own refusal of an unknown one.
fn accepted(section: &str, kind: Option<&str>) -> BTreeSet<String> {
    let refusal = probe(section, kind);
    let (_, expected) = refusal.split_once("expected").unwrap_or_else(|| panic!("no key list in: {refusal}"));
    let mut keys: BTreeSet<String> = expected.split('`').skip(1).step_by(2).map(str::to_string).collect();
    if section == "provider" {
        keys.extend(["name".to_string(), "kind".to_string()]);
    }
    keys
}

const PROVIDER_KINDS: [&str; 5] = ["gateway", "upstream", "github", "gitlab", "bitbucket"];

#[test]
fn every_config_key_in_the_docs_is_accepted_and_every_accepted_key_is_documented() {
    // (section, provider kind) -> keys written in a docs example, commented defaults included.
    let mut documented: BTreeMap<(String, Option<String>), BTreeSet<String>> = BTreeMap::new();
    let key_line = |line: &str| -> Option<String> {
        let line = line.trim_start().trim_start_matches('#').trim_start();
        let (key, _) = line.split_once('=')?;
        let key = key.trim();
        (!key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())).then(|| key.to_string())
    };
    for (_, text) in docs() {
        for (lang, body) in fenced(&text) {
            if lang != "toml" {
                continue;
            }
            let mut section: Option<String> = None;
            // A section's keys are filed once its end is reached: a provider's
            // `kind` may come after some of them.
            let mut entries: Vec<(String, String)> = Vec::new();
            let mut kind: Option<String> = None;
            let mut flush = |kind: &Option<String>, entries: &mut Vec<(String, String)>| {
                for (section, key) in entries.drain(..) {
                    documented.entry((section, kind.clone())).or_default().insert(key);
                }
            };
            for line in body.lines() {
                let trimmed = line.trim();
                if trimmed.starts_with('[') {
                    flush(&kind, &mut entries);
                    let name = trimmed.trim_start_matches('[').split(']').next().unwrap_or_default();
                    section = Some(name.to_string());
                    kind = None;
                    continue;
                }
                let Some(section) = &section else { continue };
                if let Some(key) = key_line(line) {
                    if key == "kind" && section == "provider" {
                        kind = line.split('"').nth(1).map(str::to_string);
                    }
                    entries.push((section.clone(), key));
                }
                // An alternative named in a comment: `# or token_env = "…"`.
                if let Some((_, comment)) = line.split_once('#') {
                    for alternative in comment.split("or ").skip(1) {
                        if let Some(key) = key_line(alternative) {
                            entries.push((section.clone(), key));
                        }
                    }
                }
            }
            flush(&kind, &mut entries);
        }
    }
    let known = |section: &str, kind: Option<&str>| -> BTreeSet<String> {
        match (section, kind) {
            ("provider", None) => PROVIDER_KINDS.iter().flat_map(|k| accepted("provider", Some(k))).collect(),
            _ => accepted(section, kind),
        }
    };
    let mut refused = Vec::new();
    for ((section, kind), keys) in &documented {
        let accepts = known(section, kind.as_deref());
        for key in keys.difference(&accepts) {
            refused.push(format!("[{section}] {}{key}", kind.as_deref().map(|k| format!("(kind {k}) ")).unwrap_or_default()));
        }
    }
    assert!(refused.is_empty(), "the docs show config keys the broker refuses:\n{}", refused.join("\n"));

    let mut undocumented = Vec::new();
    let in_docs = |section: &str, kind: Option<&str>, key: &str| {
        documented.iter().any(|((s, k), keys)| s == section && (kind.is_none() || k.as_deref() == kind) && keys.contains(key))
    };
    for section in ["server", "gateway", "repo", "rule", "oidc", "notify", "audit"] {
        for key in accepted(section, None) {
            if !in_docs(section, None, &key) {
                undocumented.push(format!("[{section}] {key}"));
            }
        }
    }
    for kind in ["upstream", "github", "gitlab", "bitbucket"] {
        for key in accepted("provider", Some(kind)) {
            if !in_docs("provider", Some(kind), &key) {
                undocumented.push(format!("[[provider]] kind = \"{kind}\": {key}"));
            }
        }
    }
    assert!(undocumented.is_empty(), "config keys no docs example shows:\n{}", undocumented.join("\n"));
}

/// The placeholders of the first broker's config in docs/operating.md, and
/// what the test puts in their place.
fn first_broker_config(dir: &Path, upstream: &crate::common::upstream::TestUpstream) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operating.md")).unwrap();
    let block = text.split("<!-- first-broker:begin -->").nth(1).and_then(|t| t.split("<!-- first-broker:end -->").next()).unwrap();
    let toml = fenced(block).into_iter().find(|(lang, _)| lang == "toml").unwrap().1;
    let ca = crate::common::tls::TestCa::new("first broker CA");
    let (cert, key) = ca.issue();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    ca.write(dir, "ca.pem");
    std::fs::write(dir.join("corp.token"), format!("{}\n", upstream.bot_password)).unwrap();
    let swaps = [
        // Port 0 (read back from the log): a port picked beforehand could be
        // taken by another test first. `public_url` stays as written: it is
        // only what clone URLs say.
        ("0.0.0.0:8420", "127.0.0.1:0".to_string()),
        ("/var/lib/jit", dir.join("data").display().to_string()),
        ("/etc/jit/cert.pem", dir.join("cert.pem").display().to_string()),
        ("/etc/jit/key.pem", dir.join("key.pem").display().to_string()),
        ("/etc/jit/corp.token", dir.join("corp.token").display().to_string()),
        ("jit-bot", crate::common::upstream::BOT_USER.to_string()),
        ("https://git.example.com/acme/api.git", upstream.repo_url("acme/api")),
    ];
    let mut config = toml;
    for (placeholder, real) in swaps {
        assert!(config.contains(placeholder), "the first broker's config no longer has {placeholder}");
        config = config.replace(placeholder, &real);
    }
    config
}

#[test]
fn the_first_broker_in_the_docs_starts_and_does_what_it_says() {
    let upstream = crate::common::upstream::TestUpstream::start(&["acme/api"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jit.toml");
    std::fs::write(&config, first_broker_config(dir.path(), &upstream)).unwrap();

    // The steps, as the docs give them.
    let out = crate::common::jit().args(["server", "--init-admin", "root", "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let root = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let server = crate::common::jit()
        .args(["server", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let server = crate::common::ChildGuard::logged(server);
    let url = server.log().listening_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let jit = || {
        let mut cmd = crate::common::jit();
        cmd.env("JIT_CA_FILE", dir.path().join("ca.pem")).env("JIT_SERVER", &url);
        cmd
    };
    let add = |name: &str, group: &str| {
        let out = jit().env("JIT_TOKEN", &root).args(["admin", "user", "add", name, "--group", group]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let alice = add("alice", "developers");
    add("bob", "reviewers");

    // What it promises: the repo, at the host's URL through the gateway;
    // developers read at will; writes need a reason and a reviewer.
    let repos = jit().env("JIT_TOKEN", &alice).args(["repos", "--json"]).output().unwrap();
    let repos: serde_json::Value = serde_json::from_slice(&repos.stdout).unwrap();
    assert_eq!(repos[0]["name"], "acme/api");
    assert_eq!(repos[0]["upstream_url"], upstream.repo_url("acme/api"));
    assert_eq!(repos[0]["clone_url"], "https://jit.example.com/git/acme/api.git", "clone URLs name public_url");
    let read = jit().env("JIT_TOKEN", &alice).args(["request", "acme/api", "--level", "read", "--for", "1h", "--json"]).output().unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let write =
        jit().env("JIT_TOKEN", &alice).args(["request", "acme/api", "--level", "write", "--for", "1h", "--no-wait"]).output().unwrap();
    assert_eq!(write.status.code(), Some(5), "{}", String::from_utf8_lossy(&write.stderr));
    assert!(String::from_utf8_lossy(&write.stderr).contains("requires a reason"));
    let asked = jit()
        .env("JIT_TOKEN", &alice)
        .args(["request", "acme/api", "--level", "write", "--for", "1h", "--reason", "hotfix", "--no-wait", "--json"])
        .output()
        .unwrap();
    let asked: serde_json::Value = serde_json::from_slice(&asked.stdout).unwrap();
    assert_eq!(asked["status"], "pending");
    assert_eq!(asked["approvers"], serde_json::json!(["group:reviewers"]), "{asked}");
}
