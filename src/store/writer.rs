//! The single writer: owns the write connection, groups queued jobs into one transaction (group
//! commit, one SAVEPOINT per job) and answers each job only once its transaction is durable.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::error::{Result, StoreError};
use super::model::{HistoryCaps, PruneReport};
use super::Tx;
use crate::limits;

/// A message to the writer thread.
pub(crate) enum Msg {
    Job(Box<dyn Job>),
    /// Stop taking new jobs, finish the queued ones, exit.
    Stop,
}

/// A unit of work for the writer: run inside a savepoint, then answered after COMMIT.
pub(crate) trait Job: Send {
    /// Runs the job; false when it failed (its savepoint is rolled back).
    fn run(&mut self, tx: &mut Tx<'_>) -> bool;
    /// Sends the answer: the job's own result if the transaction committed, else `commit`'s error.
    fn answer(self: Box<Self>, commit: &Result<()>);
}

struct FnJob<F, R> {
    f: Option<F>,
    out: Option<Result<R>>,
    reply: oneshot::Sender<Result<R>>,
}

impl<F, R> Job for FnJob<F, R>
where
    F: FnOnce(&mut Tx<'_>) -> Result<R> + Send,
    R: Send,
{
    fn run(&mut self, tx: &mut Tx<'_>) -> bool {
        let f = self.f.take().expect("a job runs once");
        let out = f(tx);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn answer(self: Box<Self>, commit: &Result<()>) {
        let msg = match (commit, self.out) {
            (Err(e), _) => Err(e.clone()),
            (Ok(()), Some(out)) => out,
            (Ok(()), None) => Err(StoreError::Sqlite("job did not run".into())),
        };
        // The caller may have gone away (dropped future); the work is committed regardless.
        let _ = self.reply.send(msg);
    }
}

/// Boxes `f` as a job and returns the receiver of its answer.
pub(crate) fn job<F, R>(f: F) -> (Box<dyn Job>, oneshot::Receiver<Result<R>>)
where
    F: FnOnce(&mut Tx<'_>) -> Result<R> + Send + 'static,
    R: Send + 'static,
{
    let (reply, rx) = oneshot::channel();
    (
        Box::new(FnJob {
            f: Some(f),
            out: None,
            reply,
        }),
        rx,
    )
}

/// Counters shared between the writer, the readers and `Store::stats`.
#[derive(Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub jobs: AtomicU64,
    pub largest_batch: AtomicUsize,
    pub failed_jobs: AtomicU64,
    pub failed_commits: AtomicU64,
    pub reads: AtomicU64,
    pub reads_in_use: AtomicUsize,
    pub reads_in_use_peak: AtomicUsize,
    pub prune_passes: AtomicU64,
    pub pruned_tasks: AtomicU64,
    pub pruned_block_records: AtomicU64,
    pub pruned_task_logs: AtomicU64,
}

/// Runs one cached statement that returns no rows (BEGIN, SAVEPOINT, COMMIT, ...).
pub(crate) fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Rolls back whatever transaction is open; used after errors, so its own error is moot.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            log::warn!("store: rollback failed: {e}");
        }
    }
}

/// The write side: connection, batch buffer and pruning schedule.
pub(crate) struct Writer {
    conn: Connection,
    counters: Arc<Counters>,
    caps: HistoryCaps,
    prune_every: u64,
    since_prune: u64,
    prune_again: bool,
    batch: Vec<Box<dyn Job>>,
}

impl Writer {
    pub fn new(conn: Connection, counters: Arc<Counters>, caps: HistoryCaps, every: u64) -> Self {
        Writer {
            conn,
            counters,
            caps,
            prune_every: every.max(1),
            since_prune: 0,
            prune_again: false,
            batch: Vec::with_capacity(limits::GROUP_COMMIT_MAX),
        }
    }

    /// The writer thread's loop: take a job, drain what else is queued (up to
    /// `GROUP_COMMIT_MAX`), run them as one transaction, repeat until stopped.
    pub fn run_thread(mut self, mut rx: mpsc::Receiver<Msg>, stopping: Arc<AtomicBool>) {
        let mut stop = false;
        while !stop {
            match rx.blocking_recv() {
                Some(Msg::Job(j)) => self.batch.push(j),
                Some(Msg::Stop) | None => stop = true,
            }
            while self.batch.len() < limits::GROUP_COMMIT_MAX {
                match rx.try_recv() {
                    Ok(Msg::Job(j)) => self.batch.push(j),
                    Ok(Msg::Stop) => stop = true,
                    Err(_) => break,
                }
            }
            if stop || stopping.load(Relaxed) {
                // No new sends from here on; what is already queued still runs.
                rx.close();
                stop = true;
            }
            self.run_batch();
            if stop {
                while let Ok(msg) = rx.try_recv() {
                    if let Msg::Job(j) = msg {
                        self.batch.push(j);
                    }
                    if self.batch.len() == limits::GROUP_COMMIT_MAX {
                        self.run_batch();
                    }
                }
                self.run_batch();
            }
        }
        self.shutdown();
    }

    /// Runs one job as its own transaction (Inline mode).
    pub fn run_one(&mut self, job: Box<dyn Job>) {
        self.batch.push(job);
        self.run_batch();
    }

    /// Runs the buffered jobs in one transaction and answers each of them.
    fn run_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        // A job that panicked in Inline mode may have left a transaction open.
        rollback(&self.conn);
        let n = self.batch.len();
        let result = self.execute_batch();
        let c = &self.counters;
        c.jobs.fetch_add(n as u64, Relaxed);
        c.largest_batch.fetch_max(n, Relaxed);
        match &result {
            Ok(()) => {
                c.commits.fetch_add(1, Relaxed);
            }
            Err(e) => {
                c.failed_commits.fetch_add(1, Relaxed);
                log::warn!("store: transaction of {n} jobs failed: {e}");
            }
        }
        for job in self.batch.drain(..) {
            job.answer(&result);
        }
        if result.is_ok() {
            self.after_commit();
        }
    }

    /// BEGIN IMMEDIATE, each job inside its own savepoint, COMMIT.
    fn execute_batch(&mut self) -> Result<()> {
        exec(&self.conn, "BEGIN IMMEDIATE")?;
        let out = self
            .run_jobs_in_savepoints()
            .and_then(|()| Ok(exec(&self.conn, "COMMIT")?));
        if out.is_err() {
            rollback(&self.conn);
        }
        out
    }

    fn run_jobs_in_savepoints(&mut self) -> Result<()> {
        for job in self.batch.iter_mut() {
            exec(&self.conn, "SAVEPOINT job")?;
            let ok = job.run(&mut Tx::new(&self.conn));
            if self.conn.is_autocommit() {
                // Some errors (disk full, I/O) make SQLite roll back the whole transaction.
                return Err(StoreError::Sqlite(
                    "SQLite rolled back the transaction after a job's error".into(),
                ));
            }
            if !ok {
                self.counters.failed_jobs.fetch_add(1, Relaxed);
                exec(&self.conn, "ROLLBACK TO job")?;
            }
            exec(&self.conn, "RELEASE job")?;
        }
        Ok(())
    }

    /// Every `prune_every` commits (or right away while behind), one pruning pass in its own
    /// small transaction.
    fn after_commit(&mut self) {
        self.since_prune += 1;
        if !self.prune_again && self.since_prune < self.prune_every {
            return;
        }
        self.since_prune = 0;
        match self.prune_pass() {
            Ok(r) => {
                self.prune_again = r.more;
                let c = &self.counters;
                c.prune_passes.fetch_add(1, Relaxed);
                c.pruned_tasks.fetch_add(r.tasks as u64, Relaxed);
                c.pruned_block_records
                    .fetch_add(r.block_records as u64, Relaxed);
                c.pruned_task_logs.fetch_add(r.task_logs as u64, Relaxed);
            }
            Err(e) => {
                self.prune_again = false;
                log::warn!("store: pruning pass failed: {e}");
            }
        }
    }

    fn prune_pass(&mut self) -> Result<PruneReport> {
        exec(&self.conn, "BEGIN IMMEDIATE")?;
        let out = Tx::new(&self.conn).prune_history_with(&self.caps, limits::PRUNE_BATCH_ROWS);
        let out = out.and_then(|r| {
            exec(&self.conn, "COMMIT")?;
            Ok(r)
        });
        if out.is_err() {
            rollback(&self.conn);
        }
        out
    }

    /// Checkpoints and truncates the WAL so a closed store leaves a compact file.
    fn shutdown(self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            log::warn!("store: final checkpoint failed: {e}");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        rollback(&self.conn);
    }
}
