//! The audit archive (`[audit] archive_dir`): the log copied into one file
//! per day as it grows, each closed with the signed checkpoint of its last
//! event and opened with that of the event before its first, so each file
//! verifies on its own with `jit audit verify --file`; a line cut short by a
//! crash is written again, never skipped or doubled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{POLICY, TestBroker, cli_env, eventually};

/// The archive's files, oldest first, and the lines of each.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<serde_json::Value>)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect()).unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            // Whole lines only: the archive may be writing the last one.
            let text = std::fs::read_to_string(&p).unwrap();
            let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            let lines = whole.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            (p, lines)
        })
        .collect()
}

fn closed(lines: &[serde_json::Value]) -> bool {
    lines.last().is_some_and(|l| l.get("checkpoint").is_some())
}

fn seqs(files: &[(PathBuf, Vec<serde_json::Value>)]) -> Vec<i64> {
    files.iter().flat_map(|(_, lines)| lines.iter().filter_map(|l| l["seq"].as_i64())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_days_file_verifies_on_its_own_and_a_cut_line_is_written_again() {
    let archive = tempfile::tempdir().unwrap();
    let dir = archive.path().join("archive");
    let b = TestBroker::start_with(&format!("{POLICY}\n[audit]\narchive_dir = \"{}\"\n", dir.display())).await;
    let env = cli_env(&b);
    let admin = [("JIT_SERVER", b.url.as_str()), ("JIT_TOKEN", b.token("admin"))];
    let key = env.run_with(&["audit", "key"], &admin, None).success().stdout.trim().to_string();
    let verify = |file: &Path| env.run(&["audit", "verify", "--file", file.to_str().unwrap(), "--key", &key]);

    // Day one, then a day later, then another.
    let id = b.request("alice", "demo", "write", "1h", Some("day one")).await["id"].as_i64().unwrap();
    b.approve("bob", id).await;
    b.advance(Duration::from_secs(24 * 3600));
    b.request("alice", "demo", "write", "1h", Some("day two")).await;
    let two = eventually(|| async { files(&dir) }, |f| f.len() == 2 && closed(&f[0].1)).await;
    assert!(!closed(&two[1].1), "today's file stays open");
    let first = verify(&two[0].0);
    first.success().stdout_has("audit chain intact");
    verify(&two[1].0).code(1).stderr_has("no signed checkpoint");

    b.advance(Duration::from_secs(24 * 3600));
    b.request("alice", "demo", "read", "1h", Some("day three")).await;
    let three = eventually(|| async { files(&dir) }, |f| f.len() == 3 && closed(&f[1].1)).await;
    // The middle file, alone: anchored on the signed checkpoint of the event before it, closed by its own.
    let middle = &three[1].0;
    verify(middle).success().stdout_has("anchored on the file's signed checkpoint");
    assert!(three[1].1[0].get("anchor").is_some(), "{:?}", three[1].1[0]);
    assert!(three.iter().all(|(p, _)| p.file_name().unwrap().to_str().unwrap().starts_with("audit-20")), "{three:?}");
    // Altered, an event removed or two swapped, cut at the end, or missing
    // its anchor: it does not verify, and the event where it breaks is named.
    let original = std::fs::read_to_string(middle).unwrap();
    let (first_seq, second_seq) = (three[1].1[1]["seq"].as_i64().unwrap(), three[1].1[2]["seq"].as_i64().unwrap());
    let day_two = three[1].1.iter().find(|e| e["detail"].as_str().is_some_and(|d| d.contains("day two"))).unwrap()["seq"].clone();
    std::fs::write(middle, original.replace("day two", "routine")).unwrap();
    verify(middle).code(1).stderr_has(&format!("event {day_two}")).stderr_has("altered");
    let mut lines: Vec<&str> = original.lines().collect();
    let without_first_event: Vec<&str> = [&lines[..1], &lines[2..]].concat();
    std::fs::write(middle, without_first_event.join("\n") + "\n").unwrap();
    verify(middle).code(1).stderr_has(&format!("expected event {first_seq} here"));
    let swapped: Vec<&str> = [&lines[..1], &[lines[2], lines[1]], &lines[3..]].concat();
    std::fs::write(middle, swapped.join("\n") + "\n").unwrap();
    verify(middle).code(1).stderr_has(&format!("event {second_seq}: expected event {first_seq} here"));
    lines.remove(0);
    std::fs::write(middle, lines.join("\n") + "\n").unwrap();
    verify(middle).code(1).stderr_has("no signed checkpoint vouches for the one before them");
    std::fs::write(middle, &original).unwrap();
    verify(middle).success();

    // A crash mid-line in today's file: the cut event is written again, once.
    let today = three[2].0.clone();
    let text = std::fs::read_to_string(&today).unwrap();
    std::fs::write(&today, &text[..text.len() - 10]).unwrap();
    b.request("dave", "demo", "read", "1h", Some("after the crash")).await;
    let head = env.run_with(&["audit", "--json"], &admin, None).success().stdout.lines().count() as i64 - 1;
    let healed = eventually(|| async { files(&dir) }, |f| seqs(f).last() == Some(&head)).await;
    assert_eq!(seqs(&healed), (1..=head).collect::<Vec<_>>(), "every event once, in order, across the files");
}

#[tokio::test]
async fn an_archive_dir_that_is_a_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let config = format!("[audit]\narchive_dir = \"{}\"\n", file.display());
    let err = jit::server::ServerConfig::from_toml(&config, Path::new("jit.toml"), Some("/nonexistent".into())).unwrap_err().to_string();
    assert!(err.contains("audit.archive_dir") && err.contains("not a directory"), "{err}");
    let unknown = jit::server::ServerConfig::from_toml("[audit]\nretention = \"x\"\n", Path::new("jit.toml"), Some("/nonexistent".into()))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("unknown field `retention`"), "{unknown}");
}
