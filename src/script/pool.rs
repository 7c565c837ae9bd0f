//! `ScriptPool`: a fixed number of slot threads, each owning one QuickJS runtime, fed by one
//! bounded queue of jobs (script calls, and script-file operations so their validation and disk
//! IO never run on a tokio thread). A full queue refuses at once. The scripts generation counter
//! tells every slot to reload before its next job after a script file changed.

use super::slot::Slot;
use super::{CallContext, ScriptConfig, ScriptError, ScriptHost, ScriptStore};
use crate::limits::{SCRIPT_ARG_BYTES_MAX, SCRIPT_THREAD_STACK_BYTES};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

type Reply<T> = oneshot::Sender<Result<T, ScriptError>>;

/// A script-file operation run on a slot thread.
type StoreJob = Box<dyn FnOnce(&ScriptStore) + Send>;

enum Job {
    Call {
        function: String,
        arg: String,
        cx: CallContext,
        reply: Reply<serde_json::Value>,
    },
    Store(StoreJob),
    /// Answers the bytes the slot's runtime holds (after loading).
    Memory(Reply<usize>),
}

/// The script runtime pool. Cheap to share behind an `Arc`; [`ScriptPool::shutdown`] stops it.
pub struct ScriptPool {
    config: ScriptConfig,
    store: Arc<ScriptStore>,
    sender: Mutex<Option<SyncSender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    generation: Arc<AtomicU64>,
    stopping: Arc<AtomicBool>,
}

impl ScriptPool {
    /// Starts `config.slots` slot threads; each loads every script of `store` at once.
    pub fn start(
        config: ScriptConfig,
        store: ScriptStore,
        host: Arc<dyn ScriptHost>,
    ) -> Result<ScriptPool, ScriptError> {
        assert!(config.slots > 0 && config.queue_max > 0, "{config:?}");
        let (sender, receiver) = mpsc::sync_channel::<Job>(config.queue_max);
        let receiver = Arc::new(Mutex::new(receiver));
        let store = Arc::new(store);
        let generation = Arc::new(AtomicU64::new(1));
        let stopping = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(config.slots);
        for i in 0..config.slots {
            let (host, store) = (host.clone(), store.clone());
            let (rx, generation, stop) = (receiver.clone(), generation.clone(), stopping.clone());
            // The slot (and its runtime, which is not `Send`) is built on its own thread.
            let spawned = std::thread::Builder::new()
                .name(format!("script-{i}"))
                .stack_size(SCRIPT_THREAD_STACK_BYTES)
                .spawn(move || {
                    let slot = Slot::new(config, host, store, stop.clone());
                    slot_loop(slot, &rx, &generation, &stop)
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    stopping.store(true, Relaxed);
                    return Err(ScriptError::Io(format!(
                        "cannot start a script thread: {e}"
                    )));
                }
            }
        }
        Ok(ScriptPool {
            config,
            store,
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(threads),
            generation,
            stopping,
        })
    }

    /// The pool's bounds.
    pub fn config(&self) -> ScriptConfig {
        self.config
    }

    /// The scripts folder.
    pub fn store(&self) -> &Arc<ScriptStore> {
        &self.store
    }

    /// The scripts generation (bumped by [`ScriptPool::reload`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Tells every slot to reload the scripts folder before its next job.
    pub fn reload(&self) {
        self.generation.fetch_add(1, Relaxed);
    }

    /// Calls script function `function` (`boot.<folder>.<fn>` names `<fn>`) with the one
    /// string argument `arg_json`; the function's return value as JSON (`undefined` → null).
    pub async fn call(
        &self,
        function: &str,
        arg_json: String,
        ctx: CallContext,
    ) -> Result<serde_json::Value, ScriptError> {
        if arg_json.len() > SCRIPT_ARG_BYTES_MAX {
            return Err(ScriptError::TooLarge {
                what: "SCRIPT_ARG_BYTES_MAX",
                limit: SCRIPT_ARG_BYTES_MAX,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Call {
            function: function.to_string(),
            arg: arg_json,
            cx: ctx,
            reply,
        })?;
        answer.await.map_err(|_| ScriptError::Closed)?
    }

    /// Runs `op` on the scripts folder on a slot thread (validation compiles with QuickJS and
    /// writes are synced to disk: neither belongs on a tokio thread). Queued like a call.
    pub async fn with_store<T, F>(&self, op: F) -> Result<T, ScriptError>
    where
        T: Send + 'static,
        F: FnOnce(&ScriptStore) -> Result<T, ScriptError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Store(Box::new(move |store| {
            let _ = reply.send(op(store));
        })))?;
        answer.await.map_err(|_| ScriptError::Closed)?
    }

    /// Validates and writes script `name` (see [`ScriptStore::put`]); the slots reload before
    /// their next call. Whether the file is new.
    pub async fn put_script(&self, name: String, source: String) -> Result<bool, ScriptError> {
        let generation = self.generation.clone();
        self.with_store(move |store| {
            let created = store.put(&name, &source)?;
            // Bumped before the answer: a call made after it sees the new script.
            generation.fetch_add(1, Relaxed);
            Ok(created)
        })
        .await
    }

    /// Deletes script `name`; the slots reload before their next call.
    pub async fn delete_script(&self, name: String) -> Result<(), ScriptError> {
        let generation = self.generation.clone();
        self.with_store(move |store| {
            store.delete(&name)?;
            generation.fetch_add(1, Relaxed);
            Ok(())
        })
        .await
    }

    /// The heap bytes of the runtime of the slot that takes this job, after it loaded the
    /// scripts (for measurements and status).
    pub async fn memory_used(&self) -> Result<usize, ScriptError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Memory(reply))?;
        answer.await.map_err(|_| ScriptError::Closed)?
    }

    fn submit(&self, job: Job) -> Result<(), ScriptError> {
        let sender = self.sender.lock().expect("script sender lock");
        let sender = sender.as_ref().ok_or(ScriptError::Closed)?;
        sender.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => ScriptError::Busy {
                limit: self.config.queue_max,
            },
            TrySendError::Disconnected(_) => ScriptError::Closed,
        })
    }

    /// Stops the pool: a running script is interrupted, queued jobs are answered `Closed`, and
    /// the slot threads are awaited for at most `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Relaxed);
        self.sender.lock().expect("script sender lock").take();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let all_done = self
                .threads
                .lock()
                .expect("script threads lock")
                .iter()
                .all(JoinHandle::is_finished);
            if all_done || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let threads = std::mem::take(&mut *self.threads.lock().expect("script threads lock"));
        for t in threads {
            if t.is_finished() {
                let _ = t.join();
            } else {
                log::error!("a script thread did not stop within the grace period");
            }
        }
    }
}

impl Drop for ScriptPool {
    /// Without [`ScriptPool::shutdown`]: the threads are told to stop and left to end on their
    /// own (a thread inside a host call cannot be waited for here without blocking).
    fn drop(&mut self) {
        self.stopping.store(true, Relaxed);
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
    }
}

/// One slot thread: takes jobs until the queue is closed and drained.
fn slot_loop(
    mut slot: Slot,
    rx: &Mutex<Receiver<Job>>,
    generation: &AtomicU64,
    stopping: &AtomicBool,
) {
    if let Err(e) = slot.ensure_loaded(generation.load(Relaxed)) {
        log::error!("script runtime: {e}");
    }
    loop {
        // The lock is held only while waiting for the next job, never while running one.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if stopping.load(Relaxed) {
            answer_closed(job);
            continue;
        }
        match job {
            Job::Call {
                function,
                arg,
                cx,
                reply,
            } => {
                let mut out = slot.call(generation.load(Relaxed), &function, arg, cx);
                if stopping.load(Relaxed) && out.is_err() {
                    out = Err(ScriptError::Closed);
                }
                let _ = reply.send(out);
            }
            Job::Store(op) => op(slot.store()),
            Job::Memory(reply) => {
                let out = slot.ensure_loaded(generation.load(Relaxed));
                let _ = reply.send(out.map(|()| slot.memory_used()));
            }
        }
    }
}

fn answer_closed(job: Job) {
    match job {
        Job::Call { reply, .. } => {
            let _ = reply.send(Err(ScriptError::Closed));
        }
        // Dropping the job drops its reply sender: the caller sees `Closed`.
        Job::Store(_) => {}
        Job::Memory(reply) => {
            let _ = reply.send(Err(ScriptError::Closed));
        }
    }
}
