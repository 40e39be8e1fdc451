//! The command list that opens a `git-receive-pack` request: which refs a
//! push changes, from what to what. Pure parsing, so the gateway can audit
//! (and check) a push before a byte of its pack reaches a repository.
//!
//! The shape is git's (`gitprotocol-pack`, "Reference Update Request"):
//! optional `shallow` lines, then commands — `OLD NEW REFNAME`, the first
//! followed by NUL and the capabilities — then a flush packet; the pack (if
//! any) follows.
//!
//! Two decisions keep jit's reading and git's from ever differing:
//! - A signed push (`push-cert`) is refused. The gateway never advertises
//!   `push-cert`, so no honest client sends one, and git's receive-pack
//!   reads a certificate's commands from the packets' concatenation, where
//!   a packet-by-packet reading can be shown other commands than git applies.
//! - What reaches the repository is never the client's bytes but
//!   [`Commands::encode`]: the list as parsed, written anew, so git can only
//!   apply the updates that were checked.

use std::fmt;

/// The most command-list bytes read before a push is refused as too large
/// (about 8,000 ref updates; git's own limit for one pkt-line is 65,520 bytes).
pub const MAX_COMMANDS_BYTES: usize = 1 << 20;

/// One ref a push changes. Ids are lowercase hex (SHA-1 or SHA-256); the
/// all-zero id means "no object": a creation (old) or a deletion (new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub name: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
    Delete,
}

fn is_zero(id: &str) -> bool {
    id.bytes().all(|b| b == b'0')
}

impl RefUpdate {
    pub fn change(&self) -> Change {
        match (is_zero(&self.old), is_zero(&self.new)) {
            (true, _) => Change::Create,
            (false, true) => Change::Delete,
            (false, false) => Change::Update,
        }
    }

    pub fn is_delete(&self) -> bool {
        self.change() == Change::Delete
    }
}

/// As the audit log writes it: `refs/heads/main 1a2b…→3c4d…`, with full ids.
impl fmt::Display for RefUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.change() {
            Change::Create => write!(f, "{} created at {}", self.name, self.new),
            Change::Update => write!(f, "{} {}→{}", self.name, self.old, self.new),
            Change::Delete => write!(f, "{} deleted (was {})", self.name, self.old),
        }
    }
}

/// A parsed command list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commands {
    /// The `shallow` lines of a push from a shallow clone: object ids.
    pub shallow: Vec<String>,
    pub updates: Vec<RefUpdate>,
    pub capabilities: Vec<String>,
    /// How many bytes of the request the command list took (the pack follows).
    pub len: usize,
}

impl Commands {
    /// The command list as git's `send-pack` writes it, from what was parsed:
    /// what the repository receives in place of the client's own bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for id in &self.shallow {
            out.extend(pkt_line(format!("shallow {id}").as_bytes()));
        }
        let capabilities: Vec<&str> = self.capabilities.iter().map(String::as_str).collect();
        out.extend(encode(&self.updates, &capabilities));
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandsError {
    #[error("the push's command list is larger than {MAX_COMMANDS_BYTES} bytes")]
    TooLarge,
    #[error("signed pushes are not accepted here (this gateway does not offer push certificates); push without --signed")]
    Signed,
    #[error("malformed push request: {0}")]
    Malformed(String),
}

fn malformed(why: impl Into<String>) -> CommandsError {
    CommandsError::Malformed(why.into())
}

/// One pkt-line: `Flush` (`0000`), or a payload.
enum Packet<'a> {
    Flush,
    Data(&'a [u8]),
}

/// Reads the pkt-line at `buf[at..]`: `Ok(None)` when more bytes are needed.
fn packet(buf: &[u8], at: usize) -> Result<Option<(Packet<'_>, usize)>, CommandsError> {
    let Some(head) = buf.get(at..at + 4) else { return Ok(None) };
    let text = std::str::from_utf8(head).map_err(|_| malformed("a packet length is not hex"))?;
    let len = usize::from_str_radix(text, 16).map_err(|_| malformed(format!("packet length `{}` is not hex", text.escape_debug())))?;
    match len {
        0 => Ok(Some((Packet::Flush, at + 4))),
        1..=4 => Err(malformed(format!("packet length {len} has no place in a push's command list"))),
        _ => match buf.get(at + 4..at + len) {
            Some(payload) => Ok(Some((Packet::Data(payload), at + len))),
            None => Ok(None),
        },
    }
}

fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A ref name as git would accept it for a push (a conservative subset of
/// `git check-ref-format`): under `refs/`, no empty or dot-led component, no
/// `..`, no control characters, spaces or `~^:?*[\`, not ending in `/`, `.`
/// or `.lock`.
pub fn is_ref_name(name: &str) -> bool {
    name.starts_with("refs/")
        && name.len() <= 1024
        && !name.contains("..")
        && !name.contains("@{")
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.bytes().any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b))
        && name.split('/').all(|c| !c.is_empty() && !c.starts_with('.'))
}

/// `OLD NEW NAME` (a trailing LF allowed).
fn command(line: &[u8]) -> Result<RefUpdate, CommandsError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| malformed("a command is not UTF-8"))?;
    let mut parts = text.splitn(3, ' ');
    let (Some(old), Some(new), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed(format!("`{}` is not `OLD NEW REFNAME`", text.escape_debug())));
    };
    if !is_object_id(old) || !is_object_id(new) || old.len() != new.len() {
        return Err(malformed(format!("`{}` does not hold two object ids of one kind", text.escape_debug())));
    }
    // git's send-pack never sends a ref that is up to date, and receive-pack
    // passes such a command to no hook: refused, so jit's list is git's.
    if old == new {
        return Err(malformed(format!("`{}` changes nothing", text.escape_debug())));
    }
    if !is_ref_name(name) {
        return Err(malformed(format!("`{}` is not a ref name git would take", name.escape_debug())));
    }
    Ok(RefUpdate { name: name.to_string(), old: old.to_string(), new: new.to_string() })
}

/// Splits `payload` at its first NUL into the command and its capabilities.
fn with_capabilities(payload: &[u8]) -> (&[u8], Vec<String>) {
    match payload.iter().position(|&b| b == 0) {
        Some(nul) => {
            let caps = String::from_utf8_lossy(&payload[nul + 1..]);
            (&payload[..nul], caps.split_whitespace().map(str::to_string).collect())
        }
        None => (payload, Vec::new()),
    }
}

/// Parses the command list at the start of `buf`: `Ok(None)` when it is not
/// all there yet (read more and call again), an error when it never will be.
pub fn parse(buf: &[u8]) -> Result<Option<Commands>, CommandsError> {
    let result = parse_complete(buf);
    match result {
        Ok(None) if buf.len() >= MAX_COMMANDS_BYTES => Err(CommandsError::TooLarge),
        Ok(Some(c)) if c.len > MAX_COMMANDS_BYTES => Err(CommandsError::TooLarge),
        other => other,
    }
}

fn parse_complete(buf: &[u8]) -> Result<Option<Commands>, CommandsError> {
    let mut at = 0;
    let mut commands = Commands { shallow: Vec::new(), updates: Vec::new(), capabilities: Vec::new(), len: 0 };
    loop {
        let Some((packet, next)) = packet(buf, at)? else { return Ok(None) };
        at = next;
        let payload = match packet {
            Packet::Flush => {
                commands.len = at;
                return Ok(Some(commands));
            }
            Packet::Data(p) => p,
        };
        let first = commands.updates.is_empty();
        if payload.starts_with(b"push-cert") {
            return Err(CommandsError::Signed);
        }
        if first && let Some(id) = payload.strip_prefix(b"shallow ") {
            commands.shallow.push(shallow_id(id)?);
            continue;
        }
        let line = if first {
            let (line, caps) = with_capabilities(payload);
            commands.capabilities = caps;
            line
        } else {
            payload
        };
        commands.updates.push(command(line)?);
    }
}

/// The object id of a `shallow` line (a trailing LF allowed).
fn shallow_id(id: &[u8]) -> Result<String, CommandsError> {
    let id = id.strip_suffix(b"\n").unwrap_or(id);
    match std::str::from_utf8(id) {
        Ok(id) if is_object_id(id) => Ok(id.to_string()),
        _ => Err(malformed(format!("`shallow {}` does not name an object", String::from_utf8_lossy(id).escape_debug()))),
    }
}

/// Writes `updates` as git's `send-pack` does, the capabilities after the
/// first, then the flush packet.
pub fn encode(updates: &[RefUpdate], capabilities: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, u) in updates.iter().enumerate() {
        let mut line = format!("{} {} {}", u.old, u.new, u.name).into_bytes();
        if i == 0 {
            line.push(0);
            line.extend_from_slice(capabilities.join(" ").as_bytes());
        }
        out.extend(pkt_line(&line));
    }
    out.extend_from_slice(b"0000");
    out
}

fn pkt_line(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// What git's receive-pack answered about a push (`report-status`, or its v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `unpack ok`, or why the pack was not taken (then nothing landed).
    pub unpack: Result<(), String>,
    /// Each ref git reported: `ok`, or `ng` with its reason.
    pub refs: Vec<(String, Result<(), String>)>,
}

/// Whether the client asked for side-band (then the report is in channel 1).
pub fn uses_sideband(capabilities: &[String]) -> bool {
    capabilities.iter().any(|c| c == "side-band-64k" || c == "side-band")
}

/// Reads the report-status out of receive-pack's answer: demultiplexed from
/// side-band channel 1 first when `sideband`. `None` when there is no whole
/// report in it (git died, or the answer was cut).
pub fn read_report(answer: &[u8], sideband: bool) -> Option<Report> {
    let joined;
    let report = if sideband {
        let mut inner = Vec::new();
        let mut at = 0;
        loop {
            match packet(answer, at).ok()?? {
                (Packet::Flush, _) => break,
                (Packet::Data(p), next) => {
                    if let [1, payload @ ..] = p {
                        inner.extend_from_slice(payload);
                    }
                    at = next;
                }
            }
        }
        joined = inner;
        &joined[..]
    } else {
        answer
    };
    let mut at = 0;
    let mut lines = Vec::new();
    loop {
        match packet(report, at).ok()?? {
            (Packet::Flush, _) => break,
            (Packet::Data(p), next) => {
                lines.push(String::from_utf8_lossy(p.strip_suffix(b"\n").unwrap_or(p)).into_owned());
                at = next;
            }
        }
    }
    let (first, rest) = lines.split_first()?;
    let unpack = match first.strip_prefix("unpack ")? {
        "ok" => Ok(()),
        why => Err(why.to_string()),
    };
    let refs = rest
        .iter()
        .filter_map(|line| match line.split_once(' ')? {
            ("ok", name) => Some((name.to_string(), Ok(()))),
            ("ng", rest) => {
                let (name, why) = rest.split_once(' ').unwrap_or((rest, "rejected"));
                Some((name.to_string(), Err(why.to_string())))
            }
            _ => None, // report-status-v2's `option` lines
        })
        .collect();
    Some(Report { unpack, refs })
}

/// The answer to a push that is refused without reaching the repository: git's
/// report-status (`unpack ok`, then `ng REF REASON` for every ref, so each is
/// shown as `! [remote rejected] REF (REASON)`), in side-band channel 1 when
/// the client asked for side-band. `refused` holds the reason of each update
/// that broke a rule; the others are refused for their company.
pub fn report_refusal(commands: &Commands, refused: &[(String, String)]) -> Vec<u8> {
    let mut report = pkt_line(b"unpack ok\n");
    for update in &commands.updates {
        let reason = refused
            .iter()
            .find(|(name, _)| *name == update.name)
            .map(|(_, why)| why.clone())
            .unwrap_or_else(|| "jit: refused with the rest of this push".to_string());
        report.extend(pkt_line(format!("ng {} {}\n", update.name, reason.replace('\n', " ")).as_bytes()));
    }
    report.extend_from_slice(b"0000");
    if !uses_sideband(&commands.capabilities) {
        return report;
    }
    let limit = if commands.capabilities.iter().any(|c| c == "side-band-64k") { 65515 } else { 995 };
    let mut out = Vec::new();
    for chunk in report.chunks(limit) {
        let mut payload = vec![1u8];
        payload.extend_from_slice(chunk);
        out.extend(pkt_line(&payload));
    }
    out.extend_from_slice(b"0000");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn gits_report_is_read_plain_and_from_side_band() {
        let commands = Commands {
            shallow: Vec::new(),
            updates: vec![
                RefUpdate { name: "refs/heads/main".into(), old: A.into(), new: B.into() },
                RefUpdate { name: "refs/heads/x".into(), old: A.into(), new: B.into() },
            ],
            capabilities: vec!["report-status".into()],
            len: 0,
        };
        // jit's own refusal is git's shape: read back, both refs refused.
        let refused = [("refs/heads/main".to_string(), "jit: no".to_string())];
        let expected = Report {
            unpack: Ok(()),
            refs: vec![
                ("refs/heads/main".into(), Err("jit: no".into())),
                ("refs/heads/x".into(), Err("jit: refused with the rest of this push".into())),
            ],
        };
        assert_eq!(read_report(&report_refusal(&commands, &refused), false), Some(expected.clone()));
        let banded = Commands { capabilities: vec!["side-band-64k".into()], ..commands.clone() };
        assert_eq!(read_report(&report_refusal(&banded, &refused), true), Some(expected));
        // As git writes it, with v2's option lines and progress on channel 2.
        let mut inner = pkt_line(b"unpack ok\n");
        inner.extend(pkt_line(b"ok refs/heads/main\n"));
        inner.extend(pkt_line(b"option refname refs/heads/main\n"));
        inner.extend(pkt_line(b"ng refs/heads/x non-fast-forward\n"));
        inner.extend_from_slice(b"0000");
        let mut banded = pkt_line(b"\x02Resolving deltas\n");
        for chunk in inner.chunks(7) {
            banded.extend(pkt_line(&[&[1u8][..], chunk].concat()));
        }
        banded.extend_from_slice(b"0000");
        let report = read_report(&banded, true).unwrap();
        assert_eq!(report.refs, vec![("refs/heads/main".into(), Ok(())), ("refs/heads/x".into(), Err("non-fast-forward".into()))]);
        let mut failed = pkt_line(b"unpack index-pack abnormal exit\n");
        failed.extend(pkt_line(b"ng refs/heads/main unpacker error\n"));
        failed.extend_from_slice(b"0000");
        assert_eq!(read_report(&failed, false).unwrap().unpack, Err("index-pack abnormal exit".into()));
        // Cut short, or nothing at all: no report.
        assert_eq!(read_report(&inner[..inner.len() - 4], false), None);
        assert_eq!(read_report(b"", false), None);
        assert_eq!(read_report(b"0000", false), None);
    }

    #[test]
    fn a_refusal_is_reported_in_gits_own_words() {
        let update = |name: &str| RefUpdate { name: name.into(), old: A.into(), new: B.into() };
        let commands = Commands {
            updates: vec![update("refs/heads/main"), update("refs/heads/hotfix/x")],
            shallow: Vec::new(),
            capabilities: vec!["report-status".into()],
            len: 0,
        };
        let refused = [("refs/heads/main".to_string(), "jit: your grant allows refs/heads/hotfix/* only".to_string())];
        let plain = String::from_utf8(report_refusal(&commands, &refused)).unwrap();
        assert_eq!(
            plain,
            "000eunpack ok\n0047ng refs/heads/main jit: your grant allows refs/heads/hotfix/* only\n\
             0043ng refs/heads/hotfix/x jit: refused with the rest of this push\n0000"
        );
        let banded = Commands { capabilities: vec!["report-status".into(), "side-band-64k".into()], ..commands };
        let out = report_refusal(&banded, &refused);
        let inner = plain.as_bytes();
        assert_eq!(&out[..5], format!("{:04x}\x01", inner.len() + 5).as_bytes());
        assert_eq!(&out[5..5 + inner.len()], inner);
        assert_eq!(&out[5 + inner.len()..], b"0000");
    }
    const Z: &str = "0000000000000000000000000000000000000000";

    fn update(name: &str, old: &str, new: &str) -> RefUpdate {
        RefUpdate { name: name.into(), old: old.into(), new: new.into() }
    }

    #[test]
    fn a_push_reads_as_its_ref_updates_and_where_the_pack_starts() {
        let updates = vec![update("refs/heads/main", A, B), update("refs/heads/new", Z, A), update("refs/tags/old", B, Z)];
        let mut body = encode(&updates, &["report-status", "side-band-64k", "agent=git/2.47"]);
        let len = body.len();
        body.extend_from_slice(b"PACK\x00\x00\x00\x02");
        let parsed = parse(&body).unwrap().unwrap();
        assert_eq!(parsed.updates, updates);
        assert_eq!(parsed.capabilities, ["report-status", "side-band-64k", "agent=git/2.47"]);
        assert_eq!(parsed.len, len);
        assert_eq!(
            parsed.updates.iter().map(|u| (u.change(), u.to_string())).collect::<Vec<_>>(),
            [
                (Change::Update, format!("refs/heads/main {A}→{B}")),
                (Change::Create, format!("refs/heads/new created at {A}")),
                (Change::Delete, format!("refs/tags/old deleted (was {B})")),
            ]
        );
    }

    #[test]
    fn a_partial_list_asks_for_more_and_never_errs() {
        let body = encode(&[update("refs/heads/main", A, B), update("refs/heads/x", Z, B)], &["report-status"]);
        for cut in 0..body.len() {
            assert_eq!(parse(&body[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse(&body).unwrap().is_some());
    }

    #[test]
    fn sha256_ids_shallow_lines_and_a_trailing_newline_are_git_too() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let line = format!("{a} {b} refs/heads/main\n");
        let mut body = format!("{:04x}shallow {A}", 4 + 8 + 40).into_bytes();
        body.extend_from_slice(format!("{:04x}{line}", line.len() + 4).as_bytes());
        body.extend_from_slice(b"0000");
        let parsed = parse(&body).unwrap().unwrap();
        assert_eq!(parsed.updates, [update("refs/heads/main", &a, &b)]);
    }

    fn pkts(lines: &[String]) -> Vec<u8> {
        let mut body = Vec::new();
        for l in lines {
            body.extend(pkt_line(l.as_bytes()));
        }
        body.extend_from_slice(b"0000");
        body
    }

    /// Regression (hardening round two, finding 1): git reads a certificate's
    /// commands from its packets joined together, so a packet-by-packet
    /// reading could be shown an empty or harmless list while git applied
    /// another. Every certificate is refused, however its packets are cut.
    #[test]
    fn a_push_certificate_is_refused_however_it_is_encoded() {
        let hidden = format!("{A} {Z} refs/heads/main");
        let head = |extra: &str| format!("certificate version 0.1\npusher x 0 +0000\nnonce n\n{extra}");
        let sig =
            ["-----BEGIN PGP SIGNATURE-----\n".to_string(), "x\n".into(), "-----END PGP SIGNATURE-----\n".into(), "push-cert-end\n".into()];
        let encodings = [
            // The command inside a header packet, after the blank line.
            vec![head(&format!("\n{hidden}\n"))],
            // A command without its newline, then a line that only looks like the signature.
            vec![head(""), "\n".into(), format!("{A} {B} refs/heads/hotfix/x"), "-----BEGIN x\n".into(), format!("{hidden}\n")],
            // The blank line and the command in one packet, then a lone newline.
            vec![head(""), format!("\n{hidden}"), "\n".into()],
            // As an honest client would send it.
            vec![head(""), "\n".into(), format!("{hidden}\n")],
        ];
        for (i, cert) in encodings.into_iter().enumerate() {
            let mut lines = vec!["push-cert\0report-status".to_string()];
            lines.extend(cert);
            lines.extend(sig.iter().cloned());
            assert_eq!(parse(&pkts(&lines)), Err(CommandsError::Signed), "encoding {i}");
        }
        for lead in ["push-cert", "push-cert\n", "push-cert\0"] {
            assert_eq!(parse(&pkts(&[lead.to_string()])), Err(CommandsError::Signed), "{lead:?}");
        }
    }

    #[test]
    fn what_reaches_the_repository_is_the_list_as_parsed() {
        // Bytes git would read but jit has no use for (a second NUL, a newline
        // after the capabilities) are not passed on; shallow lines are.
        let line = format!("{A} {B} refs/heads/main\0report-status  atomic\n");
        let mut body = pkts(&[format!("shallow {A}\n"), line, format!("{Z} {B} refs/heads/x\n")]);
        let len = body.len();
        body.extend_from_slice(b"PACK");
        let parsed = parse(&body).unwrap().unwrap();
        assert_eq!(parsed.len, len);
        assert_eq!(parsed.shallow, [A]);
        let canonical =
            pkts(&[format!("shallow {A}"), format!("{A} {B} refs/heads/main\0report-status atomic"), format!("{Z} {B} refs/heads/x")]);
        assert_eq!(parsed.encode(), canonical);
        assert_eq!(parse(&canonical).unwrap().unwrap(), Commands { len: canonical.len(), ..parsed }, "the encoding reads back as itself");
        for bad in ["shallow x", "shallow ", &format!("shallow {A} {B}")] {
            assert!(matches!(parse(&pkts(&[bad.to_string()])), Err(CommandsError::Malformed(_))), "{bad}");
        }
        // After the first command, a shallow line is no command: refused, as git would.
        assert!(matches!(parse(&pkts(&[format!("{A} {B} refs/heads/main"), format!("shallow {A}")])), Err(CommandsError::Malformed(_))));
    }

    #[test]
    fn what_git_would_never_send_is_refused() {
        let one = |line: &str| {
            let mut b = format!("{:04x}{line}", line.len() + 4).into_bytes();
            b.extend_from_slice(b"0000");
            parse(&b)
        };
        for bad in [
            format!("{A} {B}"),
            format!("{A} {B} main"),
            format!("{A} {B} refs/heads/../x"),
            format!("{A} {B} refs/heads/a b"),
            format!("{A} {B} refs/heads/x.lock"),
            format!("{A} {B} refs/heads/"),
            format!("{A} {B} refs/heads/.hidden"),
            format!("{A} {B} refs/heads/\u{1b}[31m"),
            format!("{A} {} refs/heads/x", "b".repeat(64)),
            format!("{Z} {Z} refs/heads/x"),
            format!("{A} {A} refs/heads/x"),
            format!("{} {B} refs/heads/x", "G".repeat(40)),
            format!("{} {B} refs/heads/x", A.to_uppercase().replace('1', "A")),
        ] {
            assert!(matches!(one(&bad), Err(CommandsError::Malformed(_))), "{bad:?}");
        }
        assert!(matches!(parse(b"zzzz"), Err(CommandsError::Malformed(_))));
        assert!(matches!(parse(b"0003"), Err(CommandsError::Malformed(_))));
    }

    #[test]
    fn a_list_of_exactly_the_limit_is_read_and_one_byte_more_is_not() {
        let padded = |n: usize, len: usize| format!("refs/heads/{n:06}/{}", "x".repeat(len - 18));
        let mut updates: Vec<RefUpdate> = Vec::new();
        while encode(&updates, &[]).len() + 700 < MAX_COMMANDS_BYTES {
            updates.push(update(&padded(updates.len(), 500), Z, A));
        }
        // The last command fills the list to the limit exactly: a pkt-line
        // of 4 + 40 + 1 + 40 + 1 + the name's length.
        let name_len = MAX_COMMANDS_BYTES - encode(&updates, &[]).len() - 86;
        let mut exact = updates.clone();
        exact.push(update(&padded(999_999, name_len), Z, A));
        let body = encode(&exact, &[]);
        assert_eq!(body.len(), MAX_COMMANDS_BYTES);
        assert_eq!(parse(&body).unwrap().unwrap().len, MAX_COMMANDS_BYTES);
        let mut over = updates;
        over.push(update(&padded(999_999, name_len + 1), Z, A));
        assert_eq!(parse(&encode(&over, &[])), Err(CommandsError::TooLarge));
    }

    #[test]
    fn control_characters_and_del_are_not_ref_names() {
        for bad in ["refs/heads/a\x01b", "refs/heads/a\x1fb", "refs/heads/a\x7fb", "refs/heads/a\tb"] {
            assert!(!is_ref_name(bad), "{bad:?}");
        }
        assert!(is_ref_name("refs/heads/a!b"), "0x21 is a name character");
    }

    #[test]
    fn an_endless_list_is_too_large() {
        let updates: Vec<RefUpdate> = (0..20_000).map(|i| update(&format!("refs/tags/t{i}"), Z, A)).collect();
        let body = encode(&updates, &[]);
        assert_eq!(parse(&body[..MAX_COMMANDS_BYTES + 10]), Err(CommandsError::TooLarge));
    }
}
