//! How the audit log is laid out in the archive (`[audit] archive_dir`):
//! JSON-lines files, one per UTC day, each verifying on its own with `jit
//! audit verify --file`.
//!
//! A file holds a run of the chain without a gap, in sequence order. It
//! opens with an *anchor*, the signed checkpoint of the event just before
//! its first (none for the file that starts the log), and is closed, once the
//! first event of a later day arrives, with the signed checkpoint of its own
//! last event: the two signatures pin both ends, so a file cut short, padded
//! or altered does not verify. Every event of one write shares its time, so
//! a day's last event is always the last of its write, whose checkpoint
//! signs exactly it. Days are the events' own (`at`); with replicas whose
//! clocks differ, an event stamped a moment before midnight that is written
//! after one stamped after it stays in the newer file: sequence order wins.
//! Files are named `audit-DAY-FIRSTSEQ.jsonl` (the sequence number pads to 12
//! digits), so names sort in order and never collide.

use super::audit::AuditEvent;

/// An archive file: its day and the sequence number of its first event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    pub day: String,
    pub first_seq: i64,
}

impl ArchiveFile {
    pub fn name(&self) -> String {
        format!("audit-{}-{:012}.jsonl", self.day, self.first_seq)
    }

    /// The file a name is, if it is one of the archive's.
    pub fn parse(name: &str) -> Option<ArchiveFile> {
        let stem = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
        let (day, seq) = stem.rsplit_once('-')?;
        let valid_day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok();
        let first_seq = seq.parse::<i64>().ok().filter(|s| *s >= 1 && seq.len() == 12)?;
        valid_day.then(|| ArchiveFile { day: day.to_string(), first_seq })
    }
}

/// Where the archive stands: its newest file, the last event in it, and
/// whether it was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: ArchiveFile,
    pub last_seq: i64,
    pub closed: bool,
}

/// The UTC day of an event's time (`2026-12-06T…` → `2026-12-06`).
pub fn day_of(at: &str) -> &str {
    at.get(..10).unwrap_or(at)
}

/// One thing to do to the archive, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// End `file` with the signed checkpoint of its last event, `last_seq`.
    Close { file: ArchiveFile, last_seq: i64 },
    /// Start `file`, anchored on the checkpoint of event `first_seq - 1` (none before event 1).
    Open { file: ArchiveFile },
    /// Write `events[index]` to `file`.
    Append { file: ArchiveFile, index: usize },
}

/// What writing `events` (the next ones after the archive's `position`,
/// none: an empty archive) takes.
pub fn plan(position: Option<&Position>, events: &[AuditEvent]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut open = position.filter(|p| !p.closed).map(|p| p.file.clone());
    let mut last_seq = position.map_or(0, |p| p.last_seq);
    for (index, e) in events.iter().enumerate() {
        let day = day_of(&e.at);
        match &open {
            Some(file) if day > file.day.as_str() => {
                steps.push(Step::Close { file: file.clone(), last_seq });
                open = None;
            }
            _ => {}
        }
        let file = match &open {
            Some(file) => file.clone(),
            None => {
                let file = ArchiveFile { day: day.to_string(), first_seq: e.seq };
                steps.push(Step::Open { file: file.clone() });
                open = Some(file.clone());
                file
            }
        };
        steps.push(Step::Append { file, index });
        last_seq = e.seq;
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{Action, GENESIS, NewEvent};

    fn events(first: i64, times: &[&str]) -> Vec<AuditEvent> {
        times
            .iter()
            .enumerate()
            .map(|(i, at)| AuditEvent::chain(&NewEvent::new("alice", Action::Requested), first + i as i64, at.to_string(), GENESIS))
            .collect()
    }

    fn file(day: &str, first_seq: i64) -> ArchiveFile {
        ArchiveFile { day: day.into(), first_seq }
    }

    #[test]
    fn names_sort_in_order_and_read_back() {
        let f = file("2026-12-06", 42);
        assert_eq!(f.name(), "audit-2026-12-06-000000000042.jsonl");
        assert_eq!(ArchiveFile::parse(&f.name()), Some(f));
        for other in
            ["audit-2026-12-06-42.jsonl", "audit-2026-13-06-000000000042.jsonl", "notes.txt", "audit-2026-12-06-000000000000.jsonl"]
        {
            assert_eq!(ArchiveFile::parse(other), None, "{other}");
        }
        assert!(file("2026-12-06", 999).name() < file("2026-12-07", 1000).name());
    }

    #[test]
    fn the_first_events_open_the_first_file_and_a_new_day_closes_it() {
        let e = events(1, &["2026-12-06T10:00:00.000Z", "2026-12-06T23:59:59.999Z", "2026-12-07T00:00:00.000Z"]);
        let d6 = file("2026-12-06", 1);
        let d7 = file("2026-12-07", 3);
        assert_eq!(
            plan(None, &e),
            [
                Step::Open { file: d6.clone() },
                Step::Append { file: d6.clone(), index: 0 },
                Step::Append { file: d6.clone(), index: 1 },
                Step::Close { file: d6, last_seq: 2 },
                Step::Open { file: d7.clone() },
                Step::Append { file: d7, index: 2 },
            ]
        );
        assert!(plan(None, &[]).is_empty());
    }

    #[test]
    fn an_open_file_goes_on_and_a_closed_one_is_followed_by_the_next() {
        let open = Position { file: file("2026-12-06", 1), last_seq: 7, closed: false };
        let e = events(8, &["2026-12-06T11:00:00.000Z"]);
        assert_eq!(plan(Some(&open), &e), [Step::Append { file: file("2026-12-06", 1), index: 0 }]);
        // Closed (the day had ended); an event stamped that same day by a slower clock starts a file of its own.
        let closed = Position { closed: true, ..open };
        assert_eq!(
            plan(Some(&closed), &e),
            [Step::Open { file: file("2026-12-06", 8) }, Step::Append { file: file("2026-12-06", 8), index: 0 }]
        );
    }

    #[test]
    fn an_earlier_stamp_after_a_later_one_stays_in_sequence() {
        let open = Position { file: file("2026-12-07", 5), last_seq: 5, closed: false };
        let e = events(6, &["2026-12-06T23:59:59.900Z"]);
        assert_eq!(plan(Some(&open), &e), [Step::Append { file: file("2026-12-07", 5), index: 0 }]);
    }
}
