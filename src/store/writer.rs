//! Group commit for SQLite: one task owns the only connection that writes.
//!
//! Callers hand it write jobs. It runs every job queued at that moment in one
//! transaction, each inside its own savepoint (a job that fails rolls back
//! alone), then commits once: concurrent decisions share one `fsync` instead
//! of taking turns at SQLite's write lock. A caller hears its job's result
//! only after that commit, so every acknowledged decision is durable. With
//! one writer there is no lock to wait for, and the jobs still run one after
//! another, so each sees the one before it (the audit chain never forks, and
//! a compare-and-set is exact).

use futures_util::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::sqlite::Chain;
use super::{StoreError, StoreResult};

/// The most jobs one transaction takes; more wait for the next.
const MAX_BATCH: usize = 256;

/// Answers a job's caller once the batch's commit is known.
type Answer = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// A write job with its result type erased, so one queue holds them all.
trait Job: Send {
    /// Runs inside the batch's transaction: whether it succeeded, and how to
    /// answer its caller after the commit.
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection, chain: &'c mut Chain) -> BoxFuture<'c, (bool, Answer)>;
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
    F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut Chain) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
{
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection, chain: &'c mut Chain) -> BoxFuture<'c, (bool, Answer)> {
        let Work { work, reply } = *self;
        Box::pin(async move {
            let result = work(conn, chain).await;
            let succeeded = result.is_ok();
            let answer: Answer = Box::new(move |commit| {
                let _ = reply.send(match commit {
                    Ok(()) => result,
                    // Its own error says more than the batch's.
                    Err(why) => result.and(Err(StoreError::Unavailable(why.to_string()))),
                });
            });
            (succeeded, answer)
        })
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
    queue: mpsc::UnboundedSender<Message>,
}

const STOPPED: &str = "the database writer has stopped";

impl Writer {
    /// Starts the writer task on `conn` (which must be in WAL mode, like every connection).
    pub fn start(conn: SqliteConnection, chain: Chain) -> Writer {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, chain, jobs));
        Writer { queue }
    }

    /// Runs `work` in a transaction shared with whatever else is queued, and
    /// returns its result once that transaction has committed. A job that
    /// returns an error leaves no trace: its savepoint is rolled back.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection, &'c mut Chain) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
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

async fn run(mut conn: SqliteConnection, mut chain: Chain, mut queue: mpsc::UnboundedReceiver<Message>) {
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = queue.recv().await else { break };
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
            commit_batch(&mut conn, &mut chain, batch).await;
        }
    }
    let _ = conn.close().await;
    if let Some(done) = closing {
        let _ = done.send(());
    }
    // Anything sent after the close is refused.
    queue.close();
    while let Ok(Message::Job(job)) = queue.try_recv() {
        job.refuse(STOPPED);
    }
}

/// Runs `sql` (one or more statements without parameters) in one round trip
/// to the connection's thread.
async fn execute(conn: &mut SqliteConnection, sql: &str) -> Result<(), String> {
    sqlx::query(sql).execute(&mut *conn).await.map(|_| ()).map_err(|e| StoreError::from(e).to_string())
}

/// One transaction for the whole batch, a savepoint per job, and one signed
/// checkpoint of the audit chain's head at the end.
async fn commit_batch(conn: &mut SqliteConnection, chain: &mut Chain, batch: Vec<Box<dyn Job>>) {
    let since = chain.mark();
    let mut answers = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter().peekable();
    // Round trips are the cost here (each statement is a hand-off to
    // SQLite's thread), so one job's end and the next one's start go together.
    let mut next_step = "BEGIN IMMEDIATE; SAVEPOINT job";
    let mut abandoned = None;
    while let Some(job) = jobs.next() {
        if let Err(why) = execute(conn, next_step).await {
            job.refuse(&why);
            abandoned = Some(why);
            break;
        }
        let before = chain.mark();
        let (succeeded, answer) = job.run(conn, chain).await;
        answers.push(answer);
        let last = jobs.peek().is_none();
        next_step = match (succeeded, last) {
            (true, false) => "RELEASE job; SAVEPOINT job",
            (false, false) => "ROLLBACK TO job; RELEASE job; SAVEPOINT job",
            (true, true) => "",
            (false, true) => "ROLLBACK TO job",
        };
        if !succeeded {
            // Whatever it wrote goes; if even that fails (SQLite may have
            // ended the whole transaction, e.g. on a full disk) the batch goes.
            chain.reset(before);
            if last && let Err(why) = execute(conn, next_step).await {
                abandoned = Some(why);
            }
        }
    }
    let outcome = match abandoned {
        None => match chain.sign_if_moved(conn, &since).await {
            Ok(signed) => execute(conn, "COMMIT").await.map(|()| signed),
            Err(e) => Err(e.to_string()),
        },
        Some(why) => Err(why),
    };
    if let Ok(Some(checkpoint)) = &outcome {
        chain.committed(checkpoint.clone());
    }
    if outcome.is_err() {
        // Nothing of this batch was written; the next batch starts clean.
        let _ = execute(conn, "ROLLBACK").await;
        chain.reset(None);
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn writer() -> (tempfile::TempDir, Writer, sqlx::SqlitePool) {
        use sqlx::ConnectOptions;
        let dir = tempfile::tempdir().unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let mut conn = options.clone().connect().await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(&mut conn).await.unwrap();
        let reads = sqlx::SqlitePool::connect_with(options).await.unwrap();
        (dir, Writer::start(conn, Chain::new(ed25519_dalek::SigningKey::from_bytes(&[7; 32]))), reads)
    }

    fn insert(
        n: i64,
        then: StoreResult<i64>,
    ) -> impl for<'c> FnOnce(&'c mut SqliteConnection, &'c mut Chain) -> BoxFuture<'c, StoreResult<i64>> {
        move |tx, _| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (n) VALUES (?)").bind(n).execute(&mut *tx).await?;
                then
            })
        }
    }

    #[tokio::test]
    async fn a_failed_job_leaves_no_trace_and_its_batch_commits_the_rest() {
        let (_dir, w, reads) = writer().await;
        // Queued together, before the writer task first runs: one batch.
        let (a, b, c) = tokio::join!(w.write(insert(1, Ok(1))), w.write(insert(2, Err(StoreError::Conflict))), w.write(insert(3, Ok(3))));
        assert_eq!(a.unwrap(), 1);
        assert!(matches!(b, Err(StoreError::Conflict)), "the job's own error reaches its caller");
        assert_eq!(c.unwrap(), 3);
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT n FROM t ORDER BY n").fetch_all(&reads).await.unwrap();
        assert_eq!(rows, vec![(1,), (3,)], "the failed job's insert was rolled back, the others committed");
    }

    #[tokio::test]
    async fn nothing_is_acknowledged_before_it_is_committed_and_the_close_is_final() {
        let (_dir, w, reads) = writer().await;
        w.write(insert(1, Ok(1))).await.unwrap();
        // Once the caller has its answer, another connection sees the row.
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&reads).await.unwrap();
        assert_eq!(n, 1);
        w.close().await;
        let after = w.write(insert(2, Ok(2))).await;
        assert!(matches!(after, Err(StoreError::Unavailable(ref m)) if m == STOPPED), "{after:?}");
    }

    #[tokio::test]
    async fn a_batch_whose_commit_fails_acknowledges_nothing() {
        let (_dir, w, reads) = writer().await;
        // A job that ends the transaction itself makes the batch's COMMIT fail.
        fn sabotage<'c>(tx: &'c mut SqliteConnection, _: &'c mut Chain) -> BoxFuture<'c, StoreResult<()>> {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (n) VALUES (9)").execute(&mut *tx).await?;
                sqlx::query("RELEASE job").execute(&mut *tx).await?;
                sqlx::query("ROLLBACK").execute(&mut *tx).await?;
                Ok(())
            })
        }
        let (a, b, c) = tokio::join!(w.write(insert(1, Ok(1))), w.write(sabotage), w.write(insert(2, Ok(2))));
        assert!(matches!(a, Err(StoreError::Unavailable(_))), "{a:?}");
        assert!(matches!(b, Err(StoreError::Unavailable(_))), "{b:?}");
        // The job after the sabotage never ran: it hears why, not that the writer stopped.
        assert!(matches!(c, Err(StoreError::Unavailable(ref why)) if why != STOPPED && why.contains("savepoint")), "{c:?}");
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&reads).await.unwrap();
        assert_eq!(n, 0);
        // The writer goes on with a clean transaction.
        assert_eq!(w.write(insert(5, Ok(5))).await.unwrap(), 5);
    }
}
