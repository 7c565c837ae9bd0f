//! The waits the driver runs as futures: fleet operations (`fleet_waits`) and task-control and
//! integration operations (`io_waits`). Each wait is one future in one set the driver polls,
//! cancelled when the wait is (stop, pause, a cancelled branch) or the run is unloaded. Their
//! number is bounded by the loaded runs' fibers (one wait per fiber; a run with such a wait
//! stays loaded, except a parent waiting only for sub-tasks, which is parked).

use crate::engine::Reply;
use futures_util::stream::FuturesUnordered;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::oneshot;

/// How a wait's future ended.
pub(super) enum OpEnd {
    /// The answer for the run.
    Answer(Reply),
    /// The sub-task the wait awaits is admitted and still running: the driver answers when
    /// it ends, and the run may be parked meanwhile.
    ChildRunning,
    Cancelled,
}

/// A wait whose future ended.
pub(super) struct OpDone {
    pub run: String,
    pub fiber: u32,
    pub token: u64,
    pub end: OpEnd,
}

/// A sub-task wait.
struct ChildWait {
    fiber: u32,
    child: String,
    /// The child is admitted (the wait's future is done; the driver answers).
    admitted: bool,
}

type OpFuture = Pin<Box<dyn Future<Output = OpDone> + Send>>;

/// The future-driven waits of every loaded run.
pub(super) struct OpWaits {
    pub futures: FuturesUnordered<OpFuture>,
    /// Dropping a sender cancels its wait.
    cancel: HashMap<(String, u64), oneshot::Sender<()>>,
    /// The fiber and child of each sub-task wait, by (run, token): answered when the child
    /// ends.
    children: HashMap<(String, u64), ChildWait>,
    /// Taken by each robot pause or resume call in turn (tokio's mutex is first come, first
    /// served).
    pub serial: Arc<tokio::sync::Mutex<()>>,
}

impl OpWaits {
    pub fn new() -> OpWaits {
        OpWaits {
            futures: FuturesUnordered::new(),
            cancel: HashMap::new(),
            children: HashMap::new(),
            serial: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Waits in progress.
    pub fn len(&self) -> usize {
        self.cancel.len()
    }

    /// Starts wait `token` of `fiber` of run `id`: `work` runs until it answers or the wait is
    /// cancelled.
    pub fn start(
        &mut self,
        id: &str,
        fiber: u32,
        token: u64,
        work: impl Future<Output = OpEnd> + Send + 'static,
    ) {
        let (tx, rx) = oneshot::channel::<()>();
        self.cancel.insert((id.to_string(), token), tx);
        let run = id.to_string();
        self.futures.push(Box::pin(async move {
            let end = tokio::select! {
                end = work => end,
                _ = rx => OpEnd::Cancelled,
            };
            OpDone {
                run,
                fiber,
                token,
                end,
            }
        }));
    }

    /// Notes that wait `token` of `fiber` of run `id` awaits sub-task `child`.
    pub fn awaits_child(&mut self, id: &str, fiber: u32, token: u64, child: String) {
        let wait = ChildWait {
            fiber,
            child,
            admitted: false,
        };
        self.children.insert((id.to_string(), token), wait);
    }

    /// Whether wait `token` of run `id` awaits a sub-task that is admitted.
    pub fn child_admitted(&self, id: &str, token: u64) -> bool {
        (self.children.get(&(id.to_string(), token))).is_some_and(|w| w.admitted)
    }

    /// Ends (cancels) the waits for sub-task `child`: their (run, fiber, token), to answer.
    pub fn take_waits_for_child(&mut self, child: &str) -> Vec<(String, u32, u64)> {
        let keys: Vec<(String, u64)> = (self.children.iter())
            .filter(|(_, w)| w.child == child)
            .map(|(k, _)| k.clone())
            .collect();
        let mut ended = Vec::with_capacity(keys.len());
        for key in keys {
            self.cancel.remove(&key);
            if let Some(w) = self.children.remove(&key) {
                ended.push((key.0, w.fiber, key.1));
            }
        }
        ended
    }

    /// Cancels the wait `token` of `run`, if any.
    pub fn cancel(&mut self, run: &str, token: u64) {
        let key = (run.to_string(), token);
        self.cancel.remove(&key);
        self.children.remove(&key);
    }

    /// Cancels every wait of `run`.
    pub fn cancel_run(&mut self, run: &str) {
        self.cancel.retain(|(r, _), _| r != run);
        self.children.retain(|(r, _), _| r != run);
    }

    /// A wait's future ended: true when the wait is still wanted (not cancelled meanwhile).
    /// A wait whose child runs on stays, marked admitted; the others are forgotten.
    pub fn finish(&mut self, done: &OpDone) -> bool {
        let key = (done.run.clone(), done.token);
        if matches!(done.end, OpEnd::ChildRunning) {
            if let Some(w) = self.children.get_mut(&key) {
                w.admitted = true;
            }
            return self.cancel.contains_key(&key);
        }
        self.children.remove(&key);
        self.cancel.remove(&key).is_some()
    }
}
