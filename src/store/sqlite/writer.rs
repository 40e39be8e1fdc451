//! Group commit for SQLite: one thread owns the only connection that writes.
//!
//! Callers hand it write jobs (plain functions of a connection). It runs every
//! job queued at that moment in one transaction, each inside its own savepoint
//! (a job that fails rolls back alone), then commits once: concurrent decisions
//! share one `fsync` instead of taking turns at SQLite's write lock. A caller
//! hears its job's result only after that commit, so every acknowledged
//! decision is durable. With one writer there is no lock to wait for, and the
//! jobs still run one after another, so each sees the one before it (the audit
//! chain never forks, and a compare-and-set is exact). The thread calls SQLite
//! directly: a statement costs a function call, not a hand-off between threads.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::audit;
use crate::domain::audit::Checkpoint;
use crate::store::chain::Chain;
use crate::store::latency::{Latency, Op};
use crate::store::{StoreError, StoreResult};

/// The most jobs one transaction takes; more wait for the next.
const MAX_BATCH: usize = 256;

/// Answers a job's caller once the batch's commit is known.
type Answer = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// A write job with its result type erased, so one queue holds them all.
trait Job: Send {
    /// Runs inside the batch's transaction: whether it succeeded, and how to
    /// answer its caller after the commit.
    fn run(self: Box<Self>, conn: &Connection, chain: &mut Chain) -> (bool, Answer);
    /// Answers without running: the batch could not start or was abandoned.
    fn refuse(self: Box<Self>, why: &str);
}

struct Work<T, F> {
    work: F,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Work<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut Chain) -> StoreResult<T> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection, chain: &mut Chain) -> (bool, Answer) {
        let Work { work, reply } = *self;
        let result = work(conn, chain);
        let succeeded = result.is_ok();
        let answer: Answer = Box::new(move |commit| {
            let _ = reply.send(match commit {
                Ok(()) => result,
                // Its own error says more than the batch's.
                Err(why) => result.and(Err(StoreError::Unavailable(why.to_string()))),
            });
        });
        (succeeded, answer)
    }

    fn refuse(self: Box<Self>, why: &str) {
        let _ = self.reply.send(Err(StoreError::Unavailable(why.to_string())));
    }
}

enum Message {
    Job(Box<dyn Job>),
    Close(oneshot::Sender<()>),
}

/// The handle writes go through; cheap to share.
pub struct Writer {
    queue: mpsc::Sender<Message>,
    latency: Latency,
}

pub const STOPPED: &str = "the database writer has stopped";

impl Writer {
    /// Starts the writer thread on `conn` (opened like every connection).
    pub fn start(conn: Connection, chain: Chain, latency: Latency) -> std::io::Result<Writer> {
        let (queue, jobs) = mpsc::channel();
        std::thread::Builder::new().name("jit-db-writer".into()).spawn(move || run(conn, chain, jobs))?;
        Ok(Writer { queue, latency })
    }

    /// Runs `work` in a transaction shared with whatever else is queued, and
    /// returns its result once that transaction has committed. A job that
    /// returns an error leaves no trace: its savepoint is rolled back.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Chain) -> StoreResult<T> + Send + 'static,
    {
        let _timer = self.latency.time(Op::Write);
        let (reply, answer) = oneshot::channel();
        self.queue.send(Message::Job(Box::new(Work { work, reply }))).map_err(|_| StoreError::Unavailable(STOPPED.into()))?;
        answer.await.map_err(|_| StoreError::Unavailable(STOPPED.into()))?
    }

    /// Finishes the jobs already queued, then closes the connection.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

fn run(conn: Connection, mut chain: Chain, queue: mpsc::Receiver<Message>) {
    let mut closing = None;
    while closing.is_none() {
        let Ok(first) = queue.recv() else { break };
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Job(job) => batch.push(job),
                Message::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&conn, &mut chain, batch);
        }
    }
    // Anything sent after the close is refused; then nothing more can be sent.
    while let Ok(message) = queue.try_recv() {
        if let Message::Job(job) = message {
            job.refuse(STOPPED);
        }
    }
    drop(queue);
    let _ = conn.close();
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

fn execute(conn: &Connection, sql: &str) -> Result<(), String> {
    conn.execute_batch(sql).map_err(|e| StoreError::from(e).to_string())
}

/// One transaction for the whole batch, a savepoint per job, and one signed
/// checkpoint of the audit chain's head at the end.
fn commit_batch(conn: &Connection, chain: &mut Chain, batch: Vec<Box<dyn Job>>) {
    let since = chain.mark();
    let mut answers = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut abandoned = execute(conn, "BEGIN IMMEDIATE").err();
    if abandoned.is_none() {
        for job in jobs.by_ref() {
            if let Err(why) = execute(conn, "SAVEPOINT job") {
                job.refuse(&why);
                abandoned = Some(why);
                break;
            }
            let before = chain.mark();
            // A job that panics is a failed job, not a dead writer.
            let (succeeded, answer) = catch_unwind(AssertUnwindSafe(|| job.run(conn, chain))).unwrap_or_else(|_| {
                tracing::error!("a database write panicked; it was rolled back");
                (false, Box::new(|_| ()))
            });
            answers.push(answer);
            if !succeeded {
                // Whatever it wrote goes.
                chain.reset(before);
            }
            let end = if succeeded { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
            // If even that fails (SQLite may have ended the whole transaction,
            // e.g. on a full disk, or a job ended it itself) the batch goes.
            if let Err(why) = execute(conn, end) {
                abandoned = Some(why);
                break;
            }
        }
    }
    let outcome = match abandoned {
        None => commit(conn, chain.checkpoint_since(&since)),
        Some(why) => Err(why),
    };
    match &outcome {
        Ok(Some(checkpoint)) => chain.committed(checkpoint.clone()),
        Ok(None) => {}
        Err(_) => {
            // Nothing of this batch was written; the next batch starts clean.
            let _ = conn.execute_batch("ROLLBACK");
            chain.reset(None);
        }
    }
    tracing::debug!(jobs = answers.len(), committed = outcome.is_ok(), "group commit");
    let outcome = outcome.as_ref().map(|_| ()).map_err(String::as_str);
    for answer in answers {
        answer(outcome);
    }
    for job in jobs {
        job.refuse(outcome.err().unwrap_or(STOPPED));
    }
}

/// Writes the batch's checkpoint (if its head moved) and commits; returns the checkpoint.
fn commit(conn: &Connection, checkpoint: Option<Checkpoint>) -> Result<Option<Checkpoint>, String> {
    if let Some(cp) = &checkpoint {
        audit::insert_checkpoint(conn, cp).map_err(|e| e.to_string())?;
    }
    execute(conn, "COMMIT")?;
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempfile::TempDir, Writer, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = super::super::db::open_connection(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (n INTEGER);
             CREATE TABLE audit_checkpoints (seq INTEGER PRIMARY KEY, hash TEXT, at TEXT, signature TEXT);",
        )
        .unwrap();
        let reads = super::super::db::open_connection(&path).unwrap();
        (dir, Writer::start(conn, Chain::new(ed25519_dalek::SigningKey::from_bytes(&[7; 32])), Latency::default()).unwrap(), reads)
    }

    fn insert(n: i64, then: StoreResult<i64>) -> impl FnOnce(&Connection, &mut Chain) -> StoreResult<i64> {
        move |tx, _| {
            tx.execute("INSERT INTO t (n) VALUES (?)", [n])?;
            then
        }
    }

    fn count(reads: &Connection) -> i64 {
        reads.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    /// A job that holds the writer until `release` runs (after the jobs
    /// joined after it are queued), so those queue up and share one batch.
    fn held(w: &Writer) -> (impl Future<Output = StoreResult<i64>> + '_, impl Future<Output = ()>) {
        let (gate, opened) = std::sync::mpsc::channel::<()>();
        let held = w.write(move |_, _| {
            let _ = opened.recv();
            Ok(0)
        });
        let release = async move {
            tokio::task::yield_now().await;
            let _ = gate.send(());
        };
        (held, release)
    }

    #[tokio::test]
    async fn a_failed_job_leaves_no_trace_and_its_batch_commits_the_rest() {
        let (_dir, w, reads) = writer();
        let (held, release) = held(&w);
        let (_, _, a, b, c) = tokio::join!(
            held,
            release,
            w.write(insert(1, Ok(1))),
            w.write(insert(2, Err(StoreError::Conflict))),
            w.write(insert(3, Ok(3)))
        );
        assert_eq!(a.unwrap(), 1);
        assert!(matches!(b, Err(StoreError::Conflict)), "the job's own error reaches its caller");
        assert_eq!(c.unwrap(), 3);
        let mut stmt = reads.prepare("SELECT n FROM t ORDER BY n").unwrap();
        let rows: Vec<i64> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows, vec![1, 3], "the failed job's insert was rolled back, the others committed");
    }

    #[tokio::test]
    async fn nothing_is_acknowledged_before_it_is_committed_and_the_close_is_final() {
        let (_dir, w, reads) = writer();
        w.write(insert(1, Ok(1))).await.unwrap();
        // Once the caller has its answer, another connection sees the row.
        assert_eq!(count(&reads), 1);
        w.close().await;
        let after = w.write(insert(2, Ok(2))).await;
        assert!(matches!(after, Err(StoreError::Unavailable(ref m)) if m == STOPPED), "{after:?}");
    }

    #[tokio::test]
    async fn a_batch_whose_commit_fails_acknowledges_nothing() {
        let (_dir, w, reads) = writer();
        // A job that ends the transaction itself makes the rest of its batch fail.
        fn sabotage(tx: &Connection, _: &mut Chain) -> StoreResult<()> {
            tx.execute("INSERT INTO t (n) VALUES (9)", [])?;
            tx.execute_batch("RELEASE job; ROLLBACK")?;
            Ok(())
        }
        // The held job may commit alone or with the rest; the three after it share a batch.
        let (held, release) = held(&w);
        let (_, _, a, b, c) = tokio::join!(held, release, w.write(insert(1, Ok(1))), w.write(sabotage), w.write(insert(2, Ok(2))));
        for acknowledged in [a.map(|_| ()), b] {
            assert!(matches!(acknowledged, Err(StoreError::Unavailable(_))), "{acknowledged:?}");
        }
        // The job after the sabotage never ran: it hears why, not that the writer stopped.
        assert!(matches!(c, Err(StoreError::Unavailable(ref why)) if why != STOPPED && why.contains("savepoint")), "{c:?}");
        assert_eq!(count(&reads), 0);
        // The writer goes on with a clean transaction.
        assert_eq!(w.write(insert(5, Ok(5))).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn a_job_that_panics_is_rolled_back_and_the_writer_goes_on() {
        let (_dir, w, reads) = writer();
        let panicked = w
            .write(|tx, _| -> StoreResult<()> {
                tx.execute("INSERT INTO t (n) VALUES (1)", []).unwrap();
                panic!("a bug in a job")
            })
            .await;
        assert!(matches!(panicked, Err(StoreError::Unavailable(_))), "{panicked:?}");
        assert_eq!(w.write(insert(2, Ok(2))).await.unwrap(), 2);
        assert_eq!(count(&reads), 1, "only the second job's row");
    }
}
