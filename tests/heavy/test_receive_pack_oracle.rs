//! The receive-pack command parser against git's own reading (hardening round
//! two, finding 1): the same generated push bodies — plain commands, shallow
//! lines, push certificates in every encoding, packets cut mid-command, stray
//! flushes and junk — go to `domain::receive_pack::parse` and to real
//! `git receive-pack --stateless-rpc`, whose pre-receive hook writes down the
//! updates git would apply (then refuses them, so the repository never
//! changes). Whenever jit accepts a body, git must apply exactly the updates
//! jit read, or none; and the body the gateway forwards in its place (the
//! list re-encoded) must make git apply exactly them.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use jit::domain::receive_pack;
use proptest::prelude::*;

/// A bare repository with two commits (`A`, then `B` on `main`) whose
/// pre-receive hook records its input in `updates` and refuses everything,
/// and an empty pack for bodies that need one.
struct Oracle {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    updates: PathBuf,
    a: String,
    b: String,
    empty_pack: Vec<u8>,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn oracle() -> &'static Oracle {
    static ORACLE: OnceLock<Oracle> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo.git");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q", "--bare", "-b", "main"]);
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["commit", "-q", "--allow-empty", "-m", "a"]);
        let a = git(&work, &["rev-parse", "HEAD"]);
        git(&work, &["commit", "-q", "--allow-empty", "-m", "b"]);
        let b = git(&work, &["rev-parse", "HEAD"]);
        git(&work, &["push", "-q", repo.to_str().unwrap(), "main", "HEAD~1:refs/heads/old"]);
        let updates = dir.path().join("updates");
        let hook = repo.join("hooks/pre-receive");
        std::fs::write(&hook, format!("#!/bin/sh\ncat > '{}'\nexit 1\n", updates.display())).unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let empty_pack = Command::new("git").args(["pack-objects", "--stdout", "-q"]).stdin(Stdio::null()).output().unwrap().stdout;
        assert!(empty_pack.starts_with(b"PACK"), "git made no empty pack");
        Oracle { _dir: dir, repo, updates, a, b, empty_pack }
    })
}

/// The updates git's receive-pack hands its pre-receive hook for `body`
/// (none when it stops before the hook: a protocol error, a bad pack).
fn git_reads(body: &[u8]) -> BTreeSet<String> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let o = oracle();
    let _ = std::fs::remove_file(&o.updates);
    let mut child = Command::new("git")
        .args(["receive-pack", "--stateless-rpc"])
        .arg(&o.repo)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // git may stop reading early (a protocol error); that is an answer too.
    let _ = child.stdin.take().unwrap().write_all(body);
    child.wait().unwrap();
    std::fs::read_to_string(&o.updates).unwrap_or_default().lines().map(str::to_string).collect()
}

fn pkt(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// One piece of a generated body.
#[derive(Debug, Clone)]
enum Piece {
    /// `OLD NEW NAME`, with or without its newline.
    Command {
        old: usize,
        new: usize,
        name: &'static str,
        newline: bool,
    },
    /// A command cut across two packets.
    Split {
        old: usize,
        new: usize,
        name: &'static str,
        at: usize,
    },
    Shallow,
    Flush,
    /// A push certificate hiding (or openly holding) a command, in one of the encodings git reads one way and a packet reader another.
    Certificate {
        encoding: usize,
        old: usize,
        new: usize,
        name: &'static str,
    },
    Junk(&'static str),
}

const NAMES: [&str; 7] =
    ["refs/heads/main", "refs/heads/x", "refs/heads/old", "refs/tags/t", "refs/heads/a b", "main", "refs/heads/x.lock"];
const JUNK: [&str; 6] = ["\n", "-----BEGIN PGP SIGNATURE-----\n", "push-cert-end\n", "shallow 1234\n", "\0report-status", "\n\n"];

fn piece() -> impl Strategy<Value = Piece> {
    let id = 0..3usize;
    let name = proptest::sample::select(NAMES.to_vec());
    prop_oneof![
        6 => (id.clone(), id.clone(), name.clone(), any::<bool>()).prop_map(|(old, new, name, newline)| Piece::Command { old, new, name, newline }),
        1 => (id.clone(), id.clone(), name.clone(), 1..90usize).prop_map(|(old, new, name, at)| Piece::Split { old, new, name, at }),
        1 => Just(Piece::Shallow),
        1 => Just(Piece::Flush),
        2 => (0..4usize, id.clone(), id, name).prop_map(|(encoding, old, new, name)| Piece::Certificate { encoding, old, new, name }),
        1 => proptest::sample::select(JUNK.to_vec()).prop_map(Piece::Junk),
    ]
}

fn encode(pieces: &[Piece], caps: bool) -> Vec<u8> {
    let o = oracle();
    let ids = [o.a.as_str(), o.b.as_str(), "0000000000000000000000000000000000000000"];
    let mut body = Vec::new();
    let mut first = true;
    let mut command_packet = |line: String, body: &mut Vec<u8>| {
        let mut payload = line.into_bytes();
        if first && caps {
            // Capabilities ride on the first command, after a NUL.
            let newline = payload.last() == Some(&b'\n');
            if newline {
                payload.pop();
            }
            payload.extend_from_slice(b"\0report-status");
            if newline {
                payload.push(b'\n');
            }
        }
        first = false;
        body.extend(pkt(&payload));
    };
    for piece in pieces {
        match piece {
            Piece::Command { old, new, name, newline } => {
                command_packet(format!("{} {} {name}{}", ids[*old], ids[*new], if *newline { "\n" } else { "" }), &mut body)
            }
            Piece::Split { old, new, name, at } => {
                let line = format!("{} {} {name}\n", ids[*old], ids[*new]);
                let at = (*at).min(line.len() - 1);
                body.extend(pkt(&line.as_bytes()[..at]));
                body.extend(pkt(&line.as_bytes()[at..]));
            }
            Piece::Shallow => body.extend(pkt(format!("shallow {}", o.a).as_bytes())),
            Piece::Flush => body.extend_from_slice(b"0000"),
            Piece::Certificate { encoding, old, new, name } => {
                let hidden = format!("{} {} {name}", ids[*old], ids[*new]);
                let head = |extra: &str| format!("certificate version 0.1\npusher x 0 +0000\nnonce n\n{extra}");
                let lines = match encoding {
                    0 => vec![head(&format!("\n{hidden}\n"))],
                    1 => vec![
                        head(""),
                        "\n".into(),
                        format!("{} {} refs/heads/x", ids[2], ids[0]),
                        "-----BEGIN x\n".into(),
                        format!("{hidden}\n"),
                    ],
                    2 => vec![head(""), format!("\n{hidden}"), "\n".into()],
                    _ => vec![head(""), "\n".into(), format!("{hidden}\n")],
                };
                body.extend(pkt(b"push-cert\0report-status"));
                for line in lines.iter().map(String::as_str).chain([
                    "-----BEGIN PGP SIGNATURE-----\n",
                    "x\n",
                    "-----END PGP SIGNATURE-----\n",
                    "push-cert-end\n",
                ]) {
                    body.extend(pkt(line.as_bytes()));
                }
            }
            Piece::Junk(j) => body.extend(pkt(j.as_bytes())),
        }
    }
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&o.empty_pack);
    body
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn git_applies_only_what_jit_read(pieces in proptest::collection::vec(piece(), 1..6), caps in any::<bool>()) {
        let body = encode(&pieces, caps);
        let Ok(Some(commands)) = receive_pack::parse(&body) else {
            // Refused by jit: nothing reaches git, whatever git would have made of it.
            return Ok(());
        };
        let read: BTreeSet<String> = commands.updates.iter().map(|u| format!("{} {} {}", u.old, u.new, u.name)).collect();
        let by_git = git_reads(&body);
        prop_assert!(by_git.is_empty() || by_git == read, "jit read {:?}, git would apply {:?} from {:?}", read, by_git, String::from_utf8_lossy(&body));
        // What the gateway forwards instead: the list as parsed, then the rest untouched.
        let mut forwarded = commands.encode();
        forwarded.extend_from_slice(&body[commands.len..]);
        let by_git = git_reads(&forwarded);
        prop_assert!(by_git.is_empty() || by_git == read, "forwarded: jit read {:?}, git would apply {:?}", read, by_git);
        // With a sound pack after it (the rest above may be garbage git stops at),
        // the re-encoded list is read by git exactly as jit read it.
        if commands.shallow.is_empty() {
            let mut clean = commands.encode();
            clean.extend_from_slice(&oracle().empty_pack);
            prop_assert_eq!(&git_reads(&clean), &read, "a list jit accepts is one git reads the same");
        }
    }
}

/// The oracle is real: git reads a certificate's hidden command (the attack
/// the parser refuses), and an honest list as jit does.
#[test]
fn the_oracle_sees_what_git_would_apply() {
    let o = oracle();
    let zero = "0".repeat(40);
    let hidden = encode(&[Piece::Certificate { encoding: 0, old: 1, new: 2, name: "refs/heads/main" }], false);
    assert_eq!(receive_pack::parse(&hidden), Err(receive_pack::CommandsError::Signed));
    assert_eq!(git_reads(&hidden), BTreeSet::from([format!("{} {zero} refs/heads/main", o.b)]));
    let honest = encode(&[Piece::Command { old: 0, new: 1, name: "refs/heads/x", newline: true }], true);
    let read = receive_pack::parse(&honest).unwrap().unwrap();
    assert_eq!(read.updates.len(), 1);
    assert_eq!(git_reads(&honest), BTreeSet::from([format!("{} {} refs/heads/x", o.a, o.b)]));
}
