//! An audit event as a syslog message (RFC 5424), framed for a stream
//! (octet counting, RFC 5425/6587), for a SIEM's syslog receiver.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME jit - ACTION [jit@32473 seq=… actor=… …] summary`:
//! facility authpriv (10) — access control is what this log is about — at
//! `warning` for refusals and failures and `notice` for the rest; the
//! event's fields as structured data (escaped as the RFC says), the one-line
//! summary as the message. Nothing here is a secret: audit events hold none.

use super::audit::AuditEvent;

/// Facility authpriv (10), times eight.
const AUTHPRIV: u8 = 10 * 8;
/// An enterprise number for the structured data's id (Private Enterprise Numbers
/// are assigned by IANA; 32473 is the one RFC 5612 reserves for documentation).
pub const SD_ID: &str = "jit@32473";

/// Warning for what went wrong or was refused, notice for everything else.
fn severity(action: &str) -> u8 {
    let bad = action.ends_with("_failed") || action.ends_with("_refused") || matches!(action, "auth_failures" | "denied");
    if bad { 4 } else { 5 }
}

/// A structured-data parameter value, escaped (`"`, `\` and `]` take a backslash).
fn param(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A header field: printable US-ASCII, at most `max` long, `-` when empty.
fn header(value: &str, max: usize) -> String {
    let cleaned: String = value.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if cleaned.is_empty() { "-".to_string() } else { cleaned }
}

/// One event as an RFC 5424 message from `hostname`.
pub fn message(event: &AuditEvent, hostname: &str, summary: &str) -> String {
    let pri = AUTHPRIV + severity(&event.action);
    let mut sd = format!("[{SD_ID} seq=\"{}\" actor=\"{}\"", event.seq, param(&event.actor));
    for (name, value) in [
        ("repo", event.repo.clone()),
        ("level", event.level.clone()),
        ("request", event.request_id.map(|r| r.to_string())),
        ("grant", event.grant_id.map(|g| g.to_string())),
    ] {
        if let Some(value) = value {
            sd += &format!(" {name}=\"{}\"", param(&value));
        }
    }
    sd += &format!(" hash=\"{}\"]", param(&event.hash));
    let text: String = summary.chars().filter(|c| !c.is_control()).collect();
    // The BOM says the message is UTF-8, as the RFC asks.
    format!("<{pri}>1 {} {} jit - {} {sd} \u{feff}{text}", header(&event.at, 64), header(hostname, 255), header(&event.action, 32))
}

/// A message framed for a TCP or TLS stream: its length in octets, a space, the message.
pub fn framed(message: &str) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Level;
    use crate::domain::audit::{Action, GENESIS, NewEvent};

    fn event(action: Action, actor: &str) -> AuditEvent {
        let mut e = NewEvent::new(actor, action);
        e.repo = Some("acme/api".into());
        e.level = Some(Level::Write);
        e.request_id = Some(4);
        AuditEvent::chain(&e, 12, "2026-12-06T19:00:00.123Z".into(), GENESIS)
    }

    #[test]
    fn an_event_is_one_rfc5424_message_with_its_fields_as_structured_data() {
        let e = event(Action::Approved, "carol");
        let m = message(&e, "broker-1", "carol approved #4: alice write access to acme/api for 1h");
        let expected = format!(
            "<85>1 2026-12-06T19:00:00.123Z broker-1 jit - approved [jit@32473 seq=\"12\" actor=\"carol\" repo=\"acme/api\" level=\"write\" request=\"4\" hash=\"{}\"] \u{feff}carol approved #4: alice write access to acme/api for 1h",
            e.hash
        );
        assert_eq!(m, expected);
        assert!(message(&event(Action::HostRevokeFailed, "broker"), "h", "x").starts_with("<84>1 "), "failures are warnings");
        assert!(message(&event(Action::Denied, "bob"), "h", "x").starts_with("<84>1 "));
    }

    #[test]
    fn what_a_person_typed_cannot_break_the_frame_or_the_structured_data() {
        let m = message(&event(Action::Requested, "mal\"lo]ry\\"), "", "line one\nline two");
        assert!(m.contains("actor=\"mal\\\"lo\\]ry\\\\\""), "{m}");
        assert!(m.contains(" - jit - requested "), "an empty host name is `-`: {m}");
        assert!(m.ends_with("line oneline two"), "no newline inside a message: {m}");
        let framed = framed(&m);
        let (len, rest) = std::str::from_utf8(&framed).unwrap().split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert_eq!(rest.len(), m.len(), "octets, not characters");
    }
}
