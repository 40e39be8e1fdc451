//! The global git config edits of `jit setup`, with git2.
//!
//! For each host jit guards (`scheme://host[:port]`), the section
//! `credential.<host>` gets: an empty `helper` (git's reset of the list so
//! far), `!'<git-credential-jit>'` (or `!'<jit>' credential`), then the
//! helpers the user already had for that host, in their order, so they still
//! serve repos jit has no grant for; and `useHttpPath = true`, so the helper
//! sees which repository git wants.
//!
//! What was in those sections before is saved the first time, and
//! `--uninstall` puts exactly that back. Running setup twice changes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const NEVER_MATCHES: &str = "^jit-setup-never-matches-this-value$";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("git config {path}: {message}")]
    Git { path: PathBuf, message: String },
    #[error("no global git config location (set HOME or GIT_CONFIG_GLOBAL)")]
    NoConfig,
    #[error("setup state {path}: {message}")]
    State { path: PathBuf, message: String },
}

/// The user's global git config file, as git itself chooses it.
pub fn global_config_path() -> Result<PathBuf, SetupError> {
    if let Some(p) = std::env::var_os("GIT_CONFIG_GLOBAL").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let home = dirs::home_dir().ok_or(SetupError::NoConfig)?;
    let dot = home.join(".gitconfig");
    if !dot.exists() {
        let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).unwrap_or_else(|| home.join(".config")).join("git").join("config");
        if xdg.exists() {
            return Ok(xdg);
        }
    }
    Ok(dot)
}

/// What a section held before jit touched it, and what jit wrote there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSection {
    pub helpers: Vec<String>,
    pub use_http_path: Option<String>,
    /// The helper list jit last wrote, so uninstall can tell the user's later additions apart.
    #[serde(default)]
    pub installed: Vec<String>,
}

/// What `uninstall` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uninstalled {
    /// Hosts whose sections were put back.
    pub restored: Vec<String>,
    /// Helpers someone added to jit's sections after setup, kept: (host, helper).
    pub kept: Vec<(String, String)>,
}

/// What jit knows about one config file it edited.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FileState {
    /// The file's text before the first `jit setup` (`None`: there was no file).
    pub original: Option<String>,
    /// The file's text right after jit's last edit.
    pub installed: String,
    /// Per host, what its section held before (for a file edited since).
    pub sections: BTreeMap<String, SavedSection>,
    /// The file of `insteadOf` rewrites jit included from this config, if any.
    #[serde(default)]
    pub rewrites: Option<PathBuf>,
}

/// Saved per config file, so uninstall restores the same file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SetupState {
    pub files: BTreeMap<PathBuf, FileState>,
}

fn state_path() -> Option<PathBuf> {
    crate::fsutil::user_data_dir().map(|d| d.join("setup.json"))
}

impl SetupState {
    pub fn load() -> Result<SetupState, SetupError> {
        let Some(path) = state_path() else { return Ok(SetupState::default()) };
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SetupError::State { path, message: e.to_string() }),
            Err(_) => Ok(SetupState::default()),
        }
    }

    pub fn save(&self) -> Result<(), SetupError> {
        let path = state_path().ok_or(SetupError::NoConfig)?;
        crate::fsutil::replace_private(&path, &serde_json::to_vec_pretty(self).expect("state serializes"))
            .map_err(|e| SetupError::State { path: path.clone(), message: e.to_string() })
    }
}

/// The small helper binary installed beside `jit` (`src/bin/git-credential-jit.rs`).
pub const HELPER_BIN: &str = "git-credential-jit";

/// The helper command for the running binary: `!'/abs/git-credential-jit'`
/// when that binary is beside it (git appends the operation), else
/// `!'/abs/jit' credential`.
pub fn helper_command(exe: &Path) -> String {
    let small = exe.with_file_name(HELPER_BIN);
    if small.is_file() { format!("!{}", shell_word(&small)) } else { format!("!{} credential", shell_word(exe)) }
}

/// The `remote-jit` alias value that runs `link` (a link to jit named
/// `git-remote-jit`) as git's remote helper; git appends the remote's name
/// and URL, and runs it without a shell when the path is plain.
pub fn remote_helper_command(link: &Path) -> String {
    format!("!{}", shell_word(link))
}

/// A path as one word for git's `sh -c`: as it is when plain, else single-quoted.
fn shell_word(path: &Path) -> String {
    let s = path.to_string_lossy();
    let plain = s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | ','));
    if plain { s.into_owned() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// Whether a `helper` value is one `jit setup` wrote, in either form.
fn is_jit_helper(value: &str) -> bool {
    let value = value.trim_end();
    value.starts_with('!')
        && ((value.ends_with(" credential") && value.contains("jit")) || value.trim_end_matches('\'').ends_with(HELPER_BIN))
}

pub struct GitConfig {
    path: PathBuf,
    config: git2::Config,
}

impl GitConfig {
    pub fn open(path: &Path) -> Result<GitConfig, SetupError> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| SetupError::Git { path: path.to_path_buf(), message: e.to_string() })?;
            }
            std::fs::write(path, b"").map_err(|e| SetupError::Git { path: path.to_path_buf(), message: e.to_string() })?;
        }
        let config =
            git2::Config::open(path).map_err(|e| SetupError::Git { path: path.to_path_buf(), message: e.message().to_string() })?;
        Ok(GitConfig { path: path.to_path_buf(), config })
    }

    fn err(&self, e: git2::Error) -> SetupError {
        SetupError::Git { path: self.path.clone(), message: e.message().to_string() }
    }

    pub fn values(&self, name: &str) -> Result<Vec<String>, SetupError> {
        let mut out = Vec::new();
        let mut entries = match self.config.multivar(name, None) {
            Ok(e) => e,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(out),
            Err(e) => return Err(self.err(e)),
        };
        while let Some(entry) = entries.next() {
            let entry = entry.map_err(|e| self.err(e))?;
            out.push(entry.value().unwrap_or("").to_string());
        }
        Ok(out)
    }

    pub fn set_values(&mut self, name: &str, values: &[String]) -> Result<(), SetupError> {
        match self.config.remove_multivar(name, ".*") {
            Ok(()) => {}
            Err(e) if e.code() == git2::ErrorCode::NotFound => {}
            Err(e) => return Err(self.err(e)),
        }
        for v in values {
            self.config.set_multivar(name, NEVER_MATCHES, v).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<String> {
        self.config.get_string(name).ok()
    }

    fn set_or_remove(&mut self, name: &str, value: Option<&str>) -> Result<(), SetupError> {
        match value {
            Some(v) => self.config.set_str(name, v).map_err(|e| self.err(e)),
            None => match self.config.remove(name) {
                Ok(()) => Ok(()),
                Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(()),
                Err(e) => Err(self.err(e)),
            },
        }
    }
}

/// How git's config treats one host, for `jit doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperStatus {
    /// jit's helper is the first git runs for the host (right after a reset).
    pub jit_first: bool,
    pub use_http_path: bool,
}

/// Reads `path` the way git does for `host`: the helpers in order (an empty
/// value resets the list), and `useHttpPath`.
pub fn helper_status(path: &Path, host: &str) -> Result<HelperStatus, SetupError> {
    if !path.exists() {
        return Ok(HelperStatus { jit_first: false, use_http_path: false });
    }
    let config = GitConfig::open(path)?;
    let mut effective: Vec<String> = Vec::new();
    for v in config.values("credential.helper")?.into_iter().chain(config.values(&format!("credential.{host}.helper"))?) {
        if v.is_empty() {
            effective.clear();
        } else {
            effective.push(v);
        }
    }
    let use_http_path =
        config.get(&format!("credential.{host}.useHttpPath")).is_some_and(|v| matches!(v.as_str(), "true" | "yes" | "on" | "1"));
    Ok(HelperStatus { jit_first: effective.first().is_some_and(|h| is_jit_helper(h)), use_http_path })
}

/// Whether the global git config already asks jit for `host`.
pub fn is_installed(host: &str) -> bool {
    let Ok(path) = global_config_path() else { return false };
    if !path.exists() {
        return false;
    }
    GitConfig::open(&path).and_then(|c| c.values(&format!("credential.{host}.helper"))).is_ok_and(|v| v.iter().any(|h| is_jit_helper(h)))
}

/// Installs the helper for `hosts` in the config at `path`; returns the hosts changed.
pub fn install(path: &Path, hosts: &[String], jit_helper: &str, state: &mut SetupState) -> Result<Vec<String>, SetupError> {
    let original = std::fs::read_to_string(path).ok();
    let file_state = state.files.entry(path.to_path_buf()).or_insert_with(|| FileState { original, ..FileState::default() });
    let mut config = GitConfig::open(path)?;
    let global_helpers: Vec<String> = config.values("credential.helper")?;
    let saved_for_file = &mut file_state.sections;
    let mut changed = Vec::new();
    for host in hosts {
        let helper_key = format!("credential.{host}.helper");
        let path_key = format!("credential.{host}.useHttpPath");
        let saved = saved_for_file
            .entry(host.clone())
            .or_insert_with(|| SavedSection {
                helpers: config.values(&helper_key).unwrap_or_default(),
                use_http_path: config.get(&path_key),
                installed: Vec::new(),
            })
            .clone();
        // The list git would have used for this host before jit, in order; an
        // empty value resets what came before it.
        let mut before: Vec<String> = Vec::new();
        for v in global_helpers.iter().chain(saved.helpers.iter()) {
            if v.is_empty() {
                before.clear();
            } else if !is_jit_helper(v) {
                before.push(v.clone());
            }
        }
        let mut desired = vec![String::new(), jit_helper.to_string()];
        desired.extend(before);
        if config.values(&helper_key)? != desired {
            config.set_values(&helper_key, &desired)?;
            changed.push(host.clone());
        }
        if let Some(section) = saved_for_file.get_mut(host) {
            section.installed = desired;
        }
        if config.get(&path_key).as_deref() != Some("true") {
            config.set_or_remove(&path_key, Some("true"))?;
            if !changed.contains(host) {
                changed.push(host.clone());
            }
        }
    }
    drop(config);
    file_state.installed = std::fs::read_to_string(path).unwrap_or_default();
    Ok(changed)
}

/// Writes `text` (the `insteadOf` entries for the repos the gateway fronts)
/// to `file` and includes it from the config at `path`; `None` removes both.
/// Returns whether anything changed. Kept in a file of its own so the user's
/// config gains one line however many entries there are.
pub fn set_rewrites(path: &Path, file: &Path, text: Option<&str>, state: &mut SetupState) -> Result<bool, SetupError> {
    let io = |e: std::io::Error| SetupError::Git { path: file.to_path_buf(), message: e.to_string() };
    let file_state = state
        .files
        .entry(path.to_path_buf())
        .or_insert_with(|| FileState { original: std::fs::read_to_string(path).ok(), ..FileState::default() });
    let mut config = GitConfig::open(path)?;
    let included = config.values("include.path")?.iter().any(|p| Path::new(p) == file);
    let mut changed = false;
    match text {
        Some(text) => {
            if std::fs::read_to_string(file).ok().as_deref() != Some(text) {
                crate::fsutil::replace_private(file, text.as_bytes()).map_err(io)?;
                changed = true;
            }
            if !included {
                config.config.set_multivar("include.path", NEVER_MATCHES, &file.to_string_lossy()).map_err(|e| config.err(e))?;
                changed = true;
            }
            file_state.rewrites = Some(file.to_path_buf());
        }
        None => {
            changed = remove_rewrites(&mut config, file)?;
            file_state.rewrites = None;
        }
    }
    drop(config);
    file_state.installed = std::fs::read_to_string(path).unwrap_or_default();
    Ok(changed)
}

/// Drops the include of `file` from `config`, and the file.
fn remove_rewrites(config: &mut GitConfig, file: &Path) -> Result<bool, SetupError> {
    let includes = config.values("include.path")?;
    let kept: Vec<String> = includes.iter().filter(|p| Path::new(p) != file).cloned().collect();
    let had = includes.len() != kept.len();
    if had {
        // An empty list removes the key: set_values drops every value first.
        config.set_values("include.path", &kept)?;
    }
    let existed = std::fs::remove_file(file).is_ok();
    let _ = std::fs::remove_file(file.with_file_name(crate::domain::url_rewrite::HELPER_LINK));
    Ok(had || existed)
}

/// The helpers in `current` that jit did not write (`installed`), in order:
/// what someone added to jit's section after setup.
fn added_since(current: &[String], installed: &[String]) -> Vec<String> {
    let mut unmatched: Vec<&String> = installed.iter().collect();
    current
        .iter()
        .filter(|v| match unmatched.iter().position(|w| w == v) {
            Some(i) => {
                unmatched.remove(i);
                false
            }
            None => !v.is_empty() && !is_jit_helper(v),
        })
        .cloned()
        .collect()
}

/// Puts back what the sections held before `install`.
///
/// When the file is as jit left it, its original text comes back byte for
/// byte; when someone edited it since, only jit's sections are put back, and
/// a helper someone added to one of them after setup is kept (and reported).
pub fn uninstall(path: &Path, state: &mut SetupState) -> Result<Uninstalled, SetupError> {
    let Some(saved) = state.files.remove(path) else { return Ok(Uninstalled::default()) };
    let io = |e: std::io::Error| SetupError::Git { path: path.to_path_buf(), message: e.to_string() };
    if let Some(file) = &saved.rewrites {
        let _ = std::fs::remove_file(file);
        let _ = std::fs::remove_file(file.with_file_name(crate::domain::url_rewrite::HELPER_LINK));
    }
    if std::fs::read_to_string(path).ok().as_deref() == Some(saved.installed.as_str()) {
        match &saved.original {
            Some(text) => std::fs::write(path, text).map_err(io)?,
            None => std::fs::remove_file(path).map_err(io)?,
        }
        return Ok(Uninstalled { restored: saved.sections.into_keys().collect(), kept: Vec::new() });
    }
    let mut config = GitConfig::open(path)?;
    let mut done = Uninstalled::default();
    if let Some(file) = &saved.rewrites {
        remove_rewrites(&mut config, file)?;
    }
    for (host, section) in saved.sections {
        let key = format!("credential.{host}.helper");
        let extra = added_since(&config.values(&key)?, &section.installed);
        let mut helpers = section.helpers.clone();
        helpers.extend(extra.iter().cloned());
        config.set_values(&key, &helpers)?;
        config.set_or_remove(&format!("credential.{host}.useHttpPath"), section.use_http_path.as_deref())?;
        done.kept.extend(extra.into_iter().map(|h| (host.clone(), h)));
        done.restored.push(host);
    }
    drop(config);
    remove_empty_sections(path);
    Ok(done)
}

/// Removes `[credential "…"]` headers left with nothing under them, so the
/// file reads as it did.
fn remove_empty_sections(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else { return };
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let is_header = (line.starts_with("[credential ") && line.ends_with(']')) || line == "[include]";
        let next_is_header_or_end = lines.get(i + 1).is_none_or(|n| n.trim_start().starts_with('['));
        if is_header && next_is_header_or_end {
            i += 1;
            continue;
        }
        out.push(lines[i]);
        i += 1;
    }
    let mut new = out.join("\n");
    if text.ends_with('\n') && !new.is_empty() {
        new.push('\n');
    }
    if new != text {
        let _ = std::fs::write(path, new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_command_quotes_when_needed() {
        assert_eq!(helper_command(Path::new("/usr/local/bin/jit")), "!/usr/local/bin/jit credential");
        assert_eq!(helper_command(Path::new("/home/a b/jit")), "!'/home/a b/jit' credential");
        assert_eq!(helper_command(Path::new("/x/it's/jit")), r"!'/x/it'\''s/jit' credential");
        assert!(is_jit_helper(&helper_command(Path::new("/home/a b/jit"))));
        assert!(!is_jit_helper("store"));
        assert!(!is_jit_helper("!/usr/bin/git-credential-other"));
    }

    #[test]
    fn the_small_helper_is_used_when_it_is_beside_jit() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("it's bin");
        std::fs::create_dir(&bin).unwrap();
        let jit = bin.join("jit");
        assert!(helper_command(&jit).ends_with("/jit' credential"), "{}", helper_command(&jit));
        std::fs::write(bin.join(HELPER_BIN), b"").unwrap();
        let helper = helper_command(&jit);
        assert_eq!(helper, format!("!'{}/it'\\''s bin/{HELPER_BIN}'", dir.path().display()));
        assert!(is_jit_helper(&helper) && is_jit_helper(&format!("!{}/{HELPER_BIN}", dir.path().display())));
    }

    #[test]
    fn install_is_idempotent_and_uninstall_restores() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitconfig");
        let original = "[credential]\n\thelper = store\n[credential \"https://github.com\"]\n\thelper = cache\n[credential \"http://127.0.0.1:9\"]\n\thelper = osxkeychain\n";
        std::fs::write(&path, original).unwrap();
        let mut state = SetupState::default();
        let hosts = vec!["http://127.0.0.1:9".to_string(), "https://git.example.com".to_string()];
        let changed = install(&path, &hosts, "!/bin/jit credential", &mut state).unwrap();
        assert_eq!(changed, hosts);
        let config = GitConfig::open(&path).unwrap();
        assert_eq!(config.values("credential.http://127.0.0.1:9.helper").unwrap(), ["", "!/bin/jit credential", "store", "osxkeychain"]);
        assert_eq!(config.values("credential.https://git.example.com.helper").unwrap(), ["", "!/bin/jit credential", "store"]);
        assert_eq!(config.values("credential.https://github.com.helper").unwrap(), ["cache"]);
        drop(config);
        let once = std::fs::read_to_string(&path).unwrap();
        assert!(install(&path, &hosts, "!/bin/jit credential", &mut state).unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), once);
        uninstall(&path, &mut state).unwrap();
        let config = GitConfig::open(&path).unwrap();
        assert_eq!(config.values("credential.http://127.0.0.1:9.helper").unwrap(), ["osxkeychain"]);
        assert!(config.values("credential.https://git.example.com.helper").unwrap().is_empty());
        assert!(config.get("credential.http://127.0.0.1:9.useHttpPath").is_none());
        assert_eq!(config.values("credential.helper").unwrap(), ["store"]);
        drop(config);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    }

    #[test]
    fn uninstall_after_the_user_edited_keeps_their_edit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitconfig");
        std::fs::write(&path, "[credential]\n\thelper = store\n").unwrap();
        let mut state = SetupState::default();
        install(&path, &["http://127.0.0.1:9".to_string()], "!/bin/jit credential", &mut state).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("[user]\n\tname = Alice\n");
        std::fs::write(&path, text).unwrap();
        assert!(uninstall(&path, &mut state).unwrap().kept.is_empty());
        let config = GitConfig::open(&path).unwrap();
        assert!(config.values("credential.http://127.0.0.1:9.helper").unwrap().is_empty());
        assert!(config.get("credential.http://127.0.0.1:9.useHttpPath").is_none());
        assert_eq!(config.get("user.name").as_deref(), Some("Alice"));
        assert_eq!(config.values("credential.helper").unwrap(), ["store"]);
        assert!(!std::fs::read_to_string(&path).unwrap().contains("127.0.0.1"));
    }

    #[test]
    fn a_helper_added_to_jits_section_after_setup_is_kept() {
        // Regression: uninstall used to put back the saved list and silently drop this one.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitconfig");
        std::fs::write(&path, "[credential \"http://127.0.0.1:9\"]\n\thelper = cache\n").unwrap();
        let mut state = SetupState::default();
        install(&path, &["http://127.0.0.1:9".to_string()], "!/bin/jit credential", &mut state).unwrap();
        let mut config = GitConfig::open(&path).unwrap();
        let mut helpers = config.values("credential.http://127.0.0.1:9.helper").unwrap();
        helpers.push("osxkeychain".into());
        config.set_values("credential.http://127.0.0.1:9.helper", &helpers).unwrap();
        drop(config);
        let done = uninstall(&path, &mut state).unwrap();
        assert_eq!(done.kept, [("http://127.0.0.1:9".to_string(), "osxkeychain".to_string())]);
        let config = GitConfig::open(&path).unwrap();
        assert_eq!(config.values("credential.http://127.0.0.1:9.helper").unwrap(), ["cache", "osxkeychain"]);
    }

    #[test]
    fn added_since_is_a_multiset_difference() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(added_since(&s(&["", "!jit credential", "store", "store"]), &s(&["", "!jit credential", "store"])), s(&["store"]));
        assert!(added_since(&s(&["", "!jit credential"]), &s(&["", "!jit credential", "cache"])).is_empty());
    }

    #[test]
    fn rewrites_are_one_include_and_go_away_with_uninstall() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitconfig");
        let file = dir.path().join("jit/rewrites.gitconfig");
        let original = "[user]\n\tname = Alice\n";
        std::fs::write(&path, original).unwrap();
        let mut state = SetupState::default();
        install(&path, &["https://jit.example.com".to_string()], "!/bin/jit credential", &mut state).unwrap();
        assert!(set_rewrites(&path, &file, Some("[url \"a\"]\n\tinsteadOf = b\n"), &mut state).unwrap());
        assert!(!set_rewrites(&path, &file, Some("[url \"a\"]\n\tinsteadOf = b\n"), &mut state).unwrap(), "twice changes nothing");
        let config = GitConfig::open(&path).unwrap();
        assert_eq!(config.values("include.path").unwrap(), [file.to_string_lossy()]);
        drop(config);
        assert!(std::fs::read_to_string(&file).unwrap().contains("insteadOf = b"));
        uninstall(&path, &mut state).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
        assert!(!file.exists());

        // Edited since: only jit's include goes, the user's own stays.
        install(&path, &["https://jit.example.com".to_string()], "!/bin/jit credential", &mut state).unwrap();
        set_rewrites(&path, &file, Some("x"), &mut state).unwrap();
        let mut config = GitConfig::open(&path).unwrap();
        config.config.set_multivar("include.path", NEVER_MATCHES, "/home/alice/.gitconfig.local").unwrap();
        drop(config);
        uninstall(&path, &mut state).unwrap();
        assert_eq!(GitConfig::open(&path).unwrap().values("include.path").unwrap(), ["/home/alice/.gitconfig.local"]);
        assert!(!file.exists());
        // No fronted repos any more: the include and the file go.
        install(&path, &["https://jit.example.com".to_string()], "!/bin/jit credential", &mut state).unwrap();
        set_rewrites(&path, &file, Some("x"), &mut state).unwrap();
        assert!(set_rewrites(&path, &file, None, &mut state).unwrap());
        assert_eq!(GitConfig::open(&path).unwrap().values("include.path").unwrap(), ["/home/alice/.gitconfig.local"]);
        assert!(!file.exists());
    }

    #[test]
    fn a_config_that_did_not_exist_is_removed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitconfig");
        let mut state = SetupState::default();
        install(&path, &["https://git.example.com".to_string()], "!/bin/jit credential", &mut state).unwrap();
        assert!(path.exists());
        uninstall(&path, &mut state).unwrap();
        assert!(!path.exists());
    }
}
