//! The seams hold: only the broker opens the store's door, and the broker
//! speaks no HTTP. A grep, so a shortcut fails the build's tests at once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Whether `word` occurs in `line` as a whole path segment or identifier
/// (`http::` but not `smart_http::`, `Store` but not `StoreError`).
fn has_word(line: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        before.is_none_or(|c| !ident(c)) && (word.ends_with(':') || after.is_none_or(|c| !ident(c)))
    })
}

/// Code lines (comments dropped) of a file.
fn code(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

#[test]
fn the_word_check_sees_whole_words_only() {
    assert!(has_word("use axum::http::StatusCode;", "http::"));
    assert!(has_word("use axum::http::StatusCode;", "StatusCode"));
    assert!(!has_word("use crate::domain::smart_http::Service;", "http::"));
    assert!(has_word("store: Arc<dyn Store>,", "dyn Store"));
    assert!(!has_word("use crate::store::StoreError;", "crate::store::Store"));
    assert!(has_word("use crate::store::Store;", "crate::store::Store"));
}

#[test]
fn only_the_broker_touches_the_store() {
    let allowed = [src().join("server/broker"), src().join("store")];
    let mut offenders = vec![];
    for file in rust_files(&src()) {
        if allowed.iter().any(|dir| file.starts_with(dir)) {
            continue;
        }
        for (n, line) in code(&file) {
            if has_word(&line, "dyn Store")
                || line.contains(".store.")
                || has_word(&line, "SqliteStore")
                || has_word(&line, "crate::store::Store")
            {
                offenders.push(format!("{}:{n}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "store access outside the broker:\n{}", offenders.join("\n"));
}

/// The records the broker keeps live in `domain::records`: nothing outside
/// the broker and the store names the store module at all.
#[test]
fn nothing_but_the_broker_names_the_store_module() {
    let allowed = [src().join("server/broker"), src().join("store"), src().join("lib.rs")];
    let mut offenders = vec![];
    for file in rust_files(&src()) {
        if allowed.iter().any(|dir| file.starts_with(dir)) {
            continue;
        }
        for (n, line) in code(&file) {
            if has_word(&line, "crate::store::") || has_word(&line, "store::") && line.contains("use ") {
                offenders.push(format!("{}:{n}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "the store module named outside the broker:\n{}", offenders.join("\n"));
}

#[test]
fn the_broker_speaks_no_http() {
    let mut offenders = vec![];
    for file in rust_files(&src().join("server/broker")) {
        for (n, line) in code(&file) {
            if ["axum", "http::", "StatusCode", "hyper", "IntoResponse"].iter().any(|word| has_word(&line, word)) {
                offenders.push(format!("{}:{n}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "HTTP inside the broker:\n{}", offenders.join("\n"));
}

#[test]
fn each_provider_is_one_file_registered_by_kind() {
    let providers = src().join("providers");
    let registry = std::fs::read_to_string(providers.join("mod.rs")).unwrap();
    for file in rust_files(&providers) {
        let name = file.file_stem().unwrap().to_str().unwrap();
        assert!(registry.contains(&format!("pub mod {name};")) || name == "mod", "{name}.rs is not declared in providers/mod.rs");
        // What the API-calling providers share is no provider of its own.
        if name == "mod" || name == "host_api" {
            continue;
        }
        assert!(registry.contains(&format!("{name}::KIND")), "{name}.rs has no entry in providers::KINDS");
    }
}

/// No two modules import each other, directly or round a circle (the
/// commands once imported their flags back from `cli.rs`, which imports
/// every command; the store's writer once knew the SQLite file that started it).
#[test]
fn the_modules_import_in_one_direction() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/module-cycles.py");
    let out = std::process::Command::new("python3").arg(&script).output().expect("python3 runs scripts/module-cycles.py");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "import circles:\n{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains(" 0 circle(s)"), "{report}");
}

/// Every environment variable the code reads is in `environment::VARIABLES`
/// (which `--help` is rendered from), and every listed one is read.
#[test]
fn every_environment_variable_read_is_listed_for_help() {
    let listed: BTreeSet<&str> = jit::environment::VARIABLES.iter().map(|v| v.name).collect();
    let mut read = BTreeSet::new();
    let mut files = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("environment.rs") || test_only(&path) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // `var("X")`, `var_os("X")`, `env("X")` (session's helper), `try_from_env("X")`, `env::var(k)` aside.
        // (`.env("X", …)` sets a child's variable: not a read.)
        for opener in ["var(\"", "var_os(\"", "env(\"", "from_env(\""] {
            for (at, _) in text.match_indices(opener) {
                if opener == "env(\"" && text[..at].ends_with('.') {
                    continue;
                }
                let name = text[at + opener.len()..].split('"').next().unwrap();
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
                    read.insert(name.to_string());
                }
            }
        }
    }
    let unlisted: Vec<&String> = read.iter().filter(|n| !listed.contains(n.as_str())).collect();
    assert!(unlisted.is_empty(), "read but not in environment::VARIABLES (so not in --help): {unlisted:?}");
    // Read for jit by the `dirs` crate (data_dir, home_dir), not by jit's own code.
    const READ_BY_DIRS: [&str; 2] = ["HOME", "XDG_DATA_HOME"];
    let unread: Vec<&&str> = listed.iter().filter(|n| !read.contains(**n) && !READ_BY_DIRS.contains(n)).collect();
    assert!(unread.is_empty(), "listed but never read: {unread:?}");
}

/// Whether `file` is a module compiled only for tests: its `mod` line in the
/// parent module follows `#[cfg(test)]` (what it reads is the tests', not jit's).
fn test_only(file: &Path) -> bool {
    let Some(name) = file.file_stem().and_then(|s| s.to_str()) else { return false };
    let dir = file.parent().unwrap();
    let parents = [dir.join("mod.rs"), dir.with_extension("rs"), dir.join("lib.rs")];
    parents.iter().filter(|p| p.as_path() != file).filter_map(|p| std::fs::read_to_string(p).ok()).any(|parent| {
        let lines: Vec<&str> = parent.lines().map(str::trim).collect();
        lines.windows(2).any(|w| w[0] == "#[cfg(test)]" && (w[1] == format!("mod {name};") || w[1].ends_with(&format!(" mod {name};"))))
    })
}
