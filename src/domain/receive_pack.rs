//! The command list that opens a `git-receive-pack` request: which refs a
//! push changes, from what to what. Pure parsing, so the gateway can audit
//! (and check) a push before a byte of its pack reaches a repository.
//!
//! The shape is git's (`gitprotocol-pack`, "Reference Update Request"):
//! optional `shallow` lines, then either commands — `OLD NEW REFNAME`, the
//! first followed by NUL and the capabilities — or a signed `push-cert` block
//! holding them, then a flush packet; the pack (if any) follows.

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
    pub updates: Vec<RefUpdate>,
    pub capabilities: Vec<String>,
    /// Whether the commands came in a signed push certificate.
    pub signed: bool,
    /// How many bytes of the request the command list took (the pack follows).
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandsError {
    #[error("the push's command list is larger than {MAX_COMMANDS_BYTES} bytes")]
    TooLarge,
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
    if is_zero(old) && is_zero(new) {
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
    let mut commands = Commands { updates: Vec::new(), capabilities: Vec::new(), signed: false, len: 0 };
    let mut first = true;
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
        if first && payload.starts_with(b"shallow ") {
            continue;
        }
        if first && payload.starts_with(b"push-cert\0") {
            let (_, caps) = with_capabilities(payload);
            commands.capabilities = caps;
            commands.signed = true;
            let Some(end) = certificate(buf, at, &mut commands.updates)? else { return Ok(None) };
            at = end;
            first = false;
            continue;
        }
        if commands.signed {
            return Err(malformed("commands after a push certificate"));
        }
        let line = if first {
            let (line, caps) = with_capabilities(payload);
            commands.capabilities = caps;
            line
        } else {
            payload
        };
        first = false;
        commands.updates.push(command(line)?);
    }
}

/// The commands inside a push certificate, up to `push-cert-end`: the header
/// lines, an empty line, the commands, then the signature.
fn certificate(buf: &[u8], mut at: usize, updates: &mut Vec<RefUpdate>) -> Result<Option<usize>, CommandsError> {
    #[derive(PartialEq)]
    enum Part {
        Header,
        Commands,
        Signature,
    }
    let mut part = Part::Header;
    loop {
        let Some((packet, next)) = packet(buf, at)? else { return Ok(None) };
        at = next;
        let Packet::Data(line) = packet else { return Err(malformed("a push certificate ends without `push-cert-end`")) };
        if line.strip_suffix(b"\n").unwrap_or(line) == b"push-cert-end" {
            return Ok(Some(at));
        }
        match part {
            Part::Header if line == b"\n" => part = Part::Commands,
            Part::Commands if line.starts_with(b"-----BEGIN") => part = Part::Signature,
            Part::Commands => updates.push(command(line)?),
            Part::Header | Part::Signature => {}
        }
    }
}

/// Writes `updates` as git's `send-pack` does (for tests and fuzzing).
pub fn encode(updates: &[RefUpdate], capabilities: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, u) in updates.iter().enumerate() {
        let mut line = format!("{} {} {}", u.old, u.new, u.name).into_bytes();
        if i == 0 {
            line.push(0);
            line.extend_from_slice(capabilities.join(" ").as_bytes());
        }
        out.extend_from_slice(format!("{:04x}", line.len() + 4).as_bytes());
        out.extend_from_slice(&line);
    }
    out.extend_from_slice(b"0000");
    out
}

fn pkt_line(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
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
    let sideband = commands.capabilities.iter().any(|c| c == "side-band-64k" || c == "side-band");
    if !sideband {
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
    fn a_refusal_is_reported_in_gits_own_words() {
        let update = |name: &str| RefUpdate { name: name.into(), old: A.into(), new: B.into() };
        let commands = Commands {
            updates: vec![update("refs/heads/main"), update("refs/heads/hotfix/x")],
            capabilities: vec!["report-status".into()],
            signed: false,
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

    #[test]
    fn signed_pushes_are_read_from_their_certificate() {
        let lines = [
            "push-cert\0report-status push-cert=1".to_string(),
            "certificate version 0.1\n".into(),
            "pusher Alice <a@example.com> 1700000000 +0000\n".into(),
            "pushee http://127.0.0.1/git/demo.git\n".into(),
            "nonce 1700000000-abc\n".into(),
            "\n".into(),
            format!("{A} {B} refs/heads/main\n"),
            "-----BEGIN PGP SIGNATURE-----\n".into(),
            "iQEzBAABCAAdFiEE\n".into(),
            "-----END PGP SIGNATURE-----\n".into(),
            "push-cert-end\n".into(),
        ];
        let mut body = Vec::new();
        for l in &lines {
            body.extend_from_slice(format!("{:04x}{l}", l.len() + 4).as_bytes());
        }
        body.extend_from_slice(b"0000");
        let parsed = parse(&body).unwrap().unwrap();
        assert!(parsed.signed);
        assert_eq!(parsed.updates, [update("refs/heads/main", A, B)]);
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
