//! The marker beside the database (`jit.db.id`): the identity of the
//! database this data dir was initialised with, and the latest audit
//! checkpoint the broker signed (its high-water mark, outside the database,
//! so deleting checkpoint rows cannot lower it unseen).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::domain::audit::Checkpoint;

pub fn marker_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".id");
    p.into()
}

/// What the marker holds: `ID` on its first line, then
/// `checkpoint SEQ HASH AT SIGNATURE` once the log has been signed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Marker {
    pub id: Option<String>,
    pub checkpoint: Option<Checkpoint>,
}

impl Marker {
    pub fn parse(text: &str) -> Result<Marker, String> {
        let mut lines = text.lines();
        let id = lines.next().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string);
        let checkpoint = match lines.next() {
            None => None,
            Some(line) => match line.split(' ').collect::<Vec<_>>().as_slice() {
                ["checkpoint", seq, hash, at, signature] => Some(Checkpoint {
                    seq: seq.parse().map_err(|_| format!("`{seq}` is not an event number"))?,
                    hash: hash.to_string(),
                    at: at.to_string(),
                    signature: signature.to_string(),
                }),
                _ => return Err("its second line is not `checkpoint SEQ HASH AT SIGNATURE`".into()),
            },
        };
        Ok(Marker { id, checkpoint })
    }

    pub fn text(&self) -> String {
        let mut text = format!("{}\n", self.id.as_deref().unwrap_or_default());
        if let Some(cp) = &self.checkpoint {
            text.push_str(&format!("checkpoint {} {} {} {}\n", cp.seq, cp.hash, cp.at, cp.signature));
        }
        text
    }
}

/// The least time between two writes of the mark. Each write is a file
/// replaced and synced: done for every commit it doubled the disk flushes
/// on the decision's path (approve → requester wakes went from ~4 to ~9 ms).
const MARK_EVERY: Duration = Duration::from_millis(200);

/// Keeps the marker's checkpoint at the latest one committed, beside the
/// writer rather than in its way: the writer hands each new checkpoint over
/// and goes on; a task writes the newest one (replaced atomically, synced),
/// at most every [`MARK_EVERY`]. The mark may trail the database by that
/// long, never lead it: the database commits a checkpoint before the mark
/// can hold it, so a mark ahead of the database always means the database
/// lost what it had acknowledged.
pub struct HighWater {
    latest: tokio::sync::watch::Sender<Option<Checkpoint>>,
}

impl HighWater {
    pub fn start(marker: PathBuf, id: String) -> HighWater {
        let (latest, mut signed) = tokio::sync::watch::channel::<Option<Checkpoint>>(None);
        tokio::spawn(async move {
            loop {
                // Once the writer is gone, the last checkpoint it handed over is still written.
                let open = signed.changed().await.is_ok();
                let Some(cp) = signed.borrow_and_update().clone() else {
                    if open {
                        continue;
                    }
                    return;
                };
                let (path, text) = (marker.clone(), Marker { id: Some(id.clone()), checkpoint: Some(cp) }.text());
                let written = tokio::task::spawn_blocking(move || crate::fsutil::replace_private(&path, text.as_bytes())).await;
                if let Ok(Err(e)) = written {
                    tracing::error!(path = %marker.display(), error = %e, "could not record the audit log's high-water mark");
                }
                if !open {
                    return;
                }
                tokio::time::sleep(MARK_EVERY).await;
            }
        });
        HighWater { latest }
    }

    /// A checkpoint is committed: record it.
    pub fn committed(&self, checkpoint: Checkpoint) {
        self.latest.send_replace(Some(checkpoint));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_what_it_wrote_and_refuses_a_bad_second_line() {
        let cp = Checkpoint { seq: 7, hash: "h".into(), at: "2026-01-01T00:00:00.000Z".into(), signature: "s".into() };
        let marker = Marker { id: Some("abc".into()), checkpoint: Some(cp) };
        assert_eq!(Marker::parse(&marker.text()).unwrap(), marker);
        assert_eq!(Marker::parse("abc\n").unwrap(), Marker { id: Some("abc".into()), checkpoint: None });
        assert!(Marker::parse("abc\ncheckpoint x h at s\n").is_err());
        assert!(Marker::parse("abc\nsomething else\n").is_err());
    }

    #[tokio::test]
    async fn the_mark_follows_the_latest_commit_and_is_written_when_the_writer_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jit.db.id");
        let high_water = HighWater::start(path.clone(), "id".into());
        let cp = |seq| Checkpoint { seq, hash: format!("h{seq}"), at: "t".into(), signature: "s".into() };
        let kept = || std::fs::read_to_string(&path).ok().and_then(|t| Marker::parse(&t).ok()).and_then(|m| m.checkpoint).map(|c| c.seq);
        let kept_within = |want: i64| async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while kept() != Some(want) && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            kept()
        };
        high_water.committed(cp(1));
        assert_eq!(kept_within(1).await, Some(1));
        // Later commits are kept too, the newest of a burst.
        high_water.committed(cp(2));
        high_water.committed(cp(3));
        assert_eq!(kept_within(3).await, Some(3));
        // Gone at once, with a newer checkpoint handed over: that one is kept.
        high_water.committed(cp(4));
        drop(high_water);
        assert_eq!(kept_within(4).await, Some(4));
    }
}
