//! `completions/` and `man/` are generated from the clap definitions and
//! committed; this fails when they are out of date.
//! Regenerate with: `cargo run -- util completions completions && cargo run -- util man man`.

use std::collections::BTreeMap;
use std::path::Path;

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read_to_string(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    for (kind, dir) in [("completions", "completions"), ("man", "man")] {
        let out = tmp.path().join(dir);
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_jit")).args(["util", kind]).arg(&out).status().unwrap();
        assert!(status.success());
        let fresh = read_dir(&out);
        let committed = read_dir(&root.join(dir));
        assert_eq!(fresh.keys().collect::<Vec<_>>(), committed.keys().collect::<Vec<_>>(), "{dir}/ has other files than the CLI generates");
        for (name, text) in &fresh {
            assert!(committed[name] == *text, "{dir}/{name} is out of date; run `cargo run -- util {kind} {dir}`");
        }
    }
    assert!(read_dir(&root.join("man")).contains_key("jit-request.1"));
}
