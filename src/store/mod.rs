//! The only module that touches SQLite (rusqlite, r2d2): schema and migrations, the single
//! group-committing writer thread, the read pool, and typed operations on definitions, tasks,
//! block records, logs, checkpoints and the data cache, with history pruning.
//!
//! Writes go through [`Store::write`]: the closure runs inside the writer's transaction (in its
//! own savepoint) and the call returns only once that transaction is committed. Reads go through
//! [`Store::read`] on a small pool, each inside one read transaction (a consistent snapshot).
//! The public API is plain Rust types; no rusqlite type leaves this module.

mod cache;
mod defs;
mod error;
mod model;
mod outbox;
mod prune;
mod queries;
mod records;
mod schema;
mod site_ops;
mod site_requests;
mod sites;
mod tasks;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_history;
#[cfg(test)]
mod tests_queries;
#[cfg(test)]
mod tests_site_ops;
#[cfg(test)]
mod tests_site_requests;
#[cfg(test)]
mod tests_sites;

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, Semaphore};

pub use error::StoreError;
pub use model::*;
pub use schema::{SCHEMA_VERSION, SQLITE_VERSION_MIN};
pub use site_requests::{Served, SiteRequest, SiteWaiter, Submitted};
pub use sites::{
    HeldByEndedRun, LockOutcome, Site, SiteActor, SiteFilter, SiteLogEntry, UnlockOutcome,
};

use crate::limits;
use error::Result;
use schema::Pragmas;
use writer::{Counters, Msg, Writer};

/// Bytes of one message in the writer queue, without what its job captures (for the memory
/// budget, `crate::budget`).
pub(crate) const WRITER_MSG_BYTES: usize = std::mem::size_of::<Msg>();

/// Where the writer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterMode {
    /// One std thread owns the write connection and group-commits queued jobs.
    Thread,
    /// Each write runs synchronously in the caller as its own transaction, and reads run in the
    /// caller too: nothing leaves the calling thread, for deterministic tests on paused time.
    Inline,
}

/// How to open a store. Build with [`StoreOptions::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub path: PathBuf,
    /// `synchronous=FULL` (default). NORMAL loses recently acknowledged commits on power loss.
    pub synchronous_full: bool,
    pub writer: WriterMode,
    /// Read connections (default `READ_POOL_SIZE`).
    pub read_pool_size: u32,
    /// Caps the writer's periodic pruning enforces (default from `limits.rs`).
    pub history_caps: HistoryCaps,
    /// Commits between pruning passes (default `PRUNE_EVERY_COMMITS`).
    pub prune_every_commits: u64,
}

impl StoreOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StoreOptions {
            path: path.into(),
            synchronous_full: true,
            writer: WriterMode::Thread,
            read_pool_size: limits::READ_POOL_SIZE,
            history_caps: HistoryCaps::default(),
            prune_every_commits: limits::PRUNE_EVERY_COMMITS,
        }
    }
}

/// Read access inside one read transaction (or inside a write transaction, via `Tx`).
pub struct Rx<'c> {
    conn: &'c Connection,
}

/// Write access inside the writer's transaction. Derefs to [`Rx`], so reads see the job's own
/// uncommitted changes.
pub struct Tx<'c> {
    rx: Rx<'c>,
    /// Outbox events of site changes made in this job, for the caller to publish once the
    /// write is committed (`take_site_events`): at most `SITE_EVENTS_PER_WRITE_MAX`, the last
    /// one always the newest.
    site_events: Vec<OutboxEvent>,
    /// The sites this job changed, for waking site waiters (`take_site_changes`).
    site_changes: SiteChanges,
}

/// Which sites a write changed: their ids (at most `SITE_EVENTS_PER_WRITE_MAX`), or `all`
/// when there were more (then every site waiter is checked again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteChanges {
    pub ids: Vec<String>,
    pub all: bool,
}

impl SiteChanges {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && !self.all
    }

    /// Adds one changed site; past `SITE_EVENTS_PER_WRITE_MAX` ids this becomes `all`.
    pub fn add(&mut self, site_id: &str) {
        if self.all || self.ids.iter().any(|id| id == site_id) {
            return;
        }
        if self.ids.len() >= limits::SITE_EVENTS_PER_WRITE_MAX {
            self.ids = Vec::new();
            self.all = true;
        } else {
            self.ids.push(site_id.to_string());
        }
    }

    /// Adds every change of `other`.
    pub fn merge(&mut self, other: SiteChanges) {
        if other.all {
            self.ids = Vec::new();
            self.all = true;
        }
        for id in &other.ids {
            self.add(id);
        }
    }
}

impl<'c> Tx<'c> {
    fn new(conn: &'c Connection) -> Self {
        Tx {
            rx: Rx { conn },
            site_events: Vec::new(),
            site_changes: SiteChanges::default(),
        }
    }

    /// The sites changed so far in this job (taken, not copied).
    pub fn take_site_changes(&mut self) -> SiteChanges {
        std::mem::take(&mut self.site_changes)
    }

    /// Keeps `event` for publishing, within `SITE_EVENTS_PER_WRITE_MAX` (the newest replaces
    /// the last kept one when full).
    fn keep_site_event(&mut self, site_id: &str, event: OutboxEvent) {
        self.site_changes.add(site_id);
        if self.site_events.len() < limits::SITE_EVENTS_PER_WRITE_MAX {
            self.site_events.push(event);
        } else if let Some(last) = self.site_events.last_mut() {
            *last = event;
        }
    }

    /// The outbox events of the site changes made so far in this job (taken, not copied).
    pub fn take_site_events(&mut self) -> Vec<OutboxEvent> {
        std::mem::take(&mut self.site_events)
    }
}

impl<'c> Deref for Tx<'c> {
    type Target = Rx<'c>;
    fn deref(&self) -> &Rx<'c> {
        &self.rx
    }
}

/// A handle to the store; cheap to clone, Send + Sync.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    mode: WriterMode,
    sender: RwLock<Option<mpsc::Sender<Msg>>>,
    stopping: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    inline: Mutex<Option<Writer>>,
    pool: r2d2::Pool<SqliteConnectionManager>,
    read_permits: Arc<Semaphore>,
    read_pool_size: u32,
    counters: Arc<Counters>,
    closed: AtomicBool,
    /// Test hook: this many next `write` calls fail without touching the database.
    #[cfg(test)]
    fail_writes: std::sync::atomic::AtomicUsize,
}

impl Store {
    /// Opens (creating the directory and file if needed) and brings the schema up to date.
    pub fn open(opts: StoreOptions) -> Result<Store> {
        schema::check_sqlite_version(rusqlite::version_number())?;
        if let Some(dir) = opts.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        }
        let pragmas = Pragmas {
            synchronous_full: opts.synchronous_full,
            read_only: false,
        };
        let mut conn = schema::open_connection(&opts.path, pragmas)?;
        schema::set_hard_heap_limit(&conn)?;
        schema::migrate(&mut conn)?;
        let pool_size = opts.read_pool_size.max(1);
        let pool = open_pool(&opts, pool_size)?;
        let counters = Arc::new(Counters::default());
        let writer = Writer::new(
            conn,
            counters.clone(),
            opts.history_caps,
            opts.prune_every_commits,
        );
        let stopping = Arc::new(AtomicBool::new(false));
        let (sender, thread, inline) = match opts.writer {
            WriterMode::Inline => (None, None, Some(writer)),
            WriterMode::Thread => {
                let (tx, rx) = mpsc::channel(limits::WRITER_QUEUE_MAX);
                let stop = stopping.clone();
                let handle = std::thread::Builder::new()
                    .name("vwed-store-writer".into())
                    .spawn(move || writer.run_thread(rx, stop))
                    .map_err(|e| StoreError::Io(format!("spawn writer thread: {e}")))?;
                (Some(tx), Some(handle), None)
            }
        };
        Ok(Store {
            inner: Arc::new(Inner {
                mode: opts.writer,
                sender: RwLock::new(sender),
                stopping,
                thread: Mutex::new(thread),
                inline: Mutex::new(inline),
                pool,
                read_permits: Arc::new(Semaphore::new(pool_size as usize)),
                read_pool_size: pool_size,
                counters,
                closed: AtomicBool::new(false),
                #[cfg(test)]
                fail_writes: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `f` in the writer's transaction; Ok only once the transaction is durable. Waits while
    /// the writer queue is full. Dropping the future after the job was queued does not cancel it.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R> + Send + 'static,
    {
        #[cfg(test)]
        if self.take_injected_failure() {
            return Err(StoreError::Io("injected write failure".into()));
        }
        if self.inner.mode == WriterMode::Inline {
            return self.write_inline(f);
        }
        let sender = self.sender()?;
        let (job, answer) = writer::job(f);
        sender
            .send(Msg::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        drop(sender);
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// `write` for non-async callers. In Thread mode it blocks the calling thread, so it must not
    /// be called from inside a tokio worker (tokio panics if it is).
    pub fn write_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R> + Send + 'static,
    {
        if self.inner.mode == WriterMode::Inline {
            return self.write_inline(f);
        }
        let sender = self.sender()?;
        let (job, answer) = writer::job(f);
        sender
            .blocking_send(Msg::Job(job))
            .map_err(|_| StoreError::Closed)?;
        drop(sender);
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    fn sender(&self) -> Result<mpsc::Sender<Msg>> {
        let guard = self.inner.sender.read().unwrap_or_else(|e| e.into_inner());
        guard.clone().ok_or(StoreError::Closed)
    }

    fn write_inline<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R> + Send + 'static,
    {
        let mut guard = self.inner.inline.lock().unwrap_or_else(|e| e.into_inner());
        let writer = guard.as_mut().ok_or(StoreError::Closed)?;
        let (job, mut answer) = writer::job(f);
        writer.run_one(job);
        answer.try_recv().map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a pooled connection in one read transaction, on a blocking thread. At most
    /// `read_pool_size` reads run at once; more wait for a permit. (Inline mode: in the caller.)
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Rx<'_>) -> Result<R> + Send + 'static,
    {
        if self.inner.mode == WriterMode::Inline {
            return self.read_blocking(f);
        }
        let permits = self.inner.read_permits.clone();
        let permit = permits
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.read_now(f)
        });
        match task.await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// `read` on the calling thread (waits up to `READ_CONNECTION_WAIT_MS` for a connection).
    pub fn read_blocking<R>(&self, f: impl FnOnce(&Rx<'_>) -> Result<R>) -> Result<R> {
        self.inner.read_now(f)
    }

    /// Test hook: the next `n` calls of [`Store::write`] fail with an I/O error.
    #[cfg(test)]
    pub(crate) fn inject_write_failures(&self, n: usize) {
        self.inner.fail_writes.store(n, Relaxed);
    }

    #[cfg(test)]
    fn take_injected_failure(&self) -> bool {
        self.inner
            .fail_writes
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// A snapshot of the store's counters.
    pub fn stats(&self) -> StoreStats {
        let c = &self.inner.counters;
        let (len, cap) = match &*self.inner.sender.read().unwrap_or_else(|e| e.into_inner()) {
            Some(s) => (s.max_capacity() - s.capacity(), s.max_capacity()),
            None => (0, 0),
        };
        StoreStats {
            writer_queue_len: len,
            writer_queue_capacity: cap,
            commits: c.commits.load(Relaxed),
            jobs: c.jobs.load(Relaxed),
            largest_batch: c.largest_batch.load(Relaxed),
            failed_jobs: c.failed_jobs.load(Relaxed),
            failed_commits: c.failed_commits.load(Relaxed),
            read_pool_size: self.inner.read_pool_size,
            reads_in_use: c.reads_in_use.load(Relaxed),
            reads_in_use_peak: c.reads_in_use_peak.load(Relaxed),
            reads: c.reads.load(Relaxed),
            prune_passes: c.prune_passes.load(Relaxed),
            pruned_tasks: c.pruned_tasks.load(Relaxed),
            pruned_block_records: c.pruned_block_records.load(Relaxed),
            pruned_task_logs: c.pruned_task_logs.load(Relaxed),
        }
    }

    /// Stops the writer: queued jobs still run and commit, then the thread exits and is joined.
    /// Later writes and reads fail with `Closed`. Blocks the caller while the queue drains.
    pub fn close(&self) {
        self.inner.close();
    }

    /// The linked SQLite library's version, e.g. "3.53.2".
    pub fn sqlite_version() -> &'static str {
        rusqlite::version()
    }
}

fn open_pool(opts: &StoreOptions, size: u32) -> Result<r2d2::Pool<SqliteConnectionManager>> {
    let pragmas = Pragmas {
        synchronous_full: opts.synchronous_full,
        read_only: true,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let manager = SqliteConnectionManager::file(&opts.path)
        .with_flags(flags)
        .with_init(move |c| schema::apply_pragmas(c, pragmas));
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(size))
        .idle_timeout(None)
        .max_lifetime(None)
        .test_on_check_out(false)
        .connection_timeout(Duration::from_millis(limits::READ_CONNECTION_WAIT_MS))
        .build(manager)
        .map_err(|e| StoreError::Sqlite(format!("opening read pool: {e}")))
}

impl Inner {
    fn read_now<R>(&self, f: impl FnOnce(&Rx<'_>) -> Result<R>) -> Result<R> {
        if self.closed.load(Relaxed) {
            return Err(StoreError::Closed);
        }
        let conn = self.pool.get()?;
        let c = &self.counters;
        c.reads.fetch_add(1, Relaxed);
        let now = c.reads_in_use.fetch_add(1, Relaxed) + 1;
        c.reads_in_use_peak.fetch_max(now, Relaxed);
        let _in_use = InUse(c);
        let _snapshot = ReadTx::begin(&conn)?;
        f(&Rx { conn: &conn })
    }

    fn close(&self) {
        self.closed.store(true, Relaxed);
        self.stopping.store(true, Relaxed);
        let sender = self
            .sender
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(s) = sender {
            // Full queue: the writer sees `stopping` after its current batch instead.
            let _ = s.try_send(Msg::Stop);
        }
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                log::error!("store: writer thread panicked");
            }
        }
        drop(self.inline.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

/// Decrements the in-use read gauge when a read ends, however it ends.
struct InUse<'a>(&'a Counters);

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        self.0.reads_in_use.fetch_sub(1, Relaxed);
    }
}

/// One read transaction; rolled back (= ended, nothing to undo) on drop, even on panic, so a
/// pooled connection never goes back to the pool inside a transaction.
struct ReadTx<'a>(&'a Connection);

impl<'a> ReadTx<'a> {
    fn begin(conn: &'a Connection) -> Result<Self> {
        writer::exec(conn, "BEGIN")?;
        Ok(ReadTx(conn))
    }
}

impl Drop for ReadTx<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = writer::exec(self.0, "ROLLBACK");
        }
    }
}
