//! The one place that spawns tokio tasks. Every task is named, counted and bounded by
//! `TASKS_TRACKED_MAX`; shutdown waits for all of them. Nothing else in the crate calls
//! `tokio::spawn` (checked by `tests/tidy.rs`).

use crate::limits::TASKS_TRACKED_MAX;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// A running task and its name.
type Tracked = (&'static str, JoinHandle<()>);

/// Tracks spawned tasks. Cheap to clone.
#[derive(Clone)]
pub struct Tasks {
    handles: Arc<Mutex<Vec<Tracked>>>,
    capacity: usize,
}

impl Default for Tasks {
    fn default() -> Tasks {
        Tasks::with_capacity(TASKS_TRACKED_MAX)
    }
}

/// A spawn was refused because the tracker's capacity of tasks are running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManyTasks(pub &'static str, pub usize);

impl std::fmt::Display for TooManyTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot start task {}: {} tasks are running (TASKS_TRACKED_MAX plus one per \
             HTTP connection)",
            self.0, self.1
        )
    }
}

impl std::error::Error for TooManyTasks {}

impl Tasks {
    /// A tracker for `TASKS_TRACKED_MAX` tasks.
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// A tracker for `capacity` tasks (the server adds one per allowed HTTP connection).
    pub fn with_capacity(capacity: usize) -> Tasks {
        Tasks {
            handles: Arc::new(Mutex::new(Vec::new())),
            capacity,
        }
    }

    /// Spawns `fut` as a tracked task named `name`.
    pub fn spawn<F>(&self, name: &'static str, fut: F) -> Result<(), TooManyTasks>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut handles = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        handles.retain(|(_, h)| !h.is_finished());
        if handles.len() >= self.capacity {
            return Err(TooManyTasks(name, self.capacity));
        }
        handles.push((name, tokio::spawn(fut)));
        Ok(())
    }

    /// Tasks still running.
    pub fn len(&self) -> usize {
        let mut handles = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        handles.retain(|(_, h)| !h.is_finished());
        handles.len()
    }

    /// Whether no task is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for every tracked task to end (they are told to stop by their own shutdown signal).
    pub async fn join_all(&self) {
        loop {
            let next = {
                let mut handles = self.handles.lock().unwrap_or_else(|e| e.into_inner());
                handles.pop()
            };
            let Some((name, handle)) = next else {
                return;
            };
            if let Err(e) = handle.await {
                log::error!("task {name} ended abnormally: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spawns_past_the_bound_are_refused() {
        let tasks = Tasks::new();
        let (tx, rx) = tokio::sync::watch::channel(false);
        for _ in 0..TASKS_TRACKED_MAX {
            let mut rx = rx.clone();
            tasks
                .spawn("waiter", async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .unwrap();
        }
        assert_eq!(tasks.len(), TASKS_TRACKED_MAX);
        let refused = tasks.spawn("one too many", async {}).unwrap_err();
        assert!(refused.to_string().contains("TASKS_TRACKED_MAX"));
        assert_eq!(refused.1, TASKS_TRACKED_MAX);
        tx.send(true).unwrap();
        tasks.join_all().await;
        assert!(tasks.is_empty());
        tasks.spawn("again", async {}).unwrap();
    }
}
