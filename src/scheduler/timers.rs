//! The one timer structure of the scheduler: every waiting `DelayBp`, loop sleep and staggered
//! start of every loaded run, ordered by deadline. Bounded by construction (at most one wait per
//! fiber of a loaded run) and checked against its capacity.

use std::collections::{BTreeMap, HashMap};

/// What a timer wakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerKey {
    pub run: String,
    pub fiber: u32,
    pub token: u64,
}

/// Timers by deadline (wall-clock ms), with an index for cancellation by (run, token).
pub struct Timers {
    by_time: BTreeMap<(i64, u64), TimerKey>,
    index: HashMap<(String, u64), (i64, u64)>,
    next: u64,
    capacity: usize,
}

impl Timers {
    /// A structure for at most `capacity` timers.
    pub fn new(capacity: usize) -> Timers {
        Timers {
            by_time: BTreeMap::new(),
            index: HashMap::new(),
            next: 0,
            capacity,
        }
    }

    /// Adds a timer; refuses past capacity (a broken invariant: the caller fails the run).
    pub fn insert(&mut self, until_ms: i64, key: TimerKey) -> Result<(), String> {
        if self.by_time.len() >= self.capacity {
            return Err(format!(
                "timer refused: {} timers pending, the capacity (RUNS_ACTIVE_MAX × FIBERS_MAX)",
                self.capacity
            ));
        }
        self.next += 1;
        let slot = (until_ms, self.next);
        self.index.insert((key.run.clone(), key.token), slot);
        self.by_time.insert(slot, key);
        Ok(())
    }

    /// Removes the timer of (run, token), if pending.
    pub fn cancel(&mut self, run: &str, token: u64) {
        if let Some(slot) = self.index.remove(&(run.to_string(), token)) {
            self.by_time.remove(&slot);
        }
    }

    /// Removes every timer of `run`.
    pub fn cancel_run(&mut self, run: &str) {
        let tokens: Vec<u64> = self
            .index
            .keys()
            .filter(|(r, _)| r == run)
            .map(|(_, t)| *t)
            .collect();
        for t in tokens {
            self.cancel(run, t);
        }
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<i64> {
        self.by_time.keys().next().map(|(t, _)| *t)
    }

    /// Removes and returns the timers due at `now_ms`.
    pub fn due(&mut self, now_ms: i64) -> Vec<TimerKey> {
        let mut out = Vec::new();
        while let Some((&(t, n), _)) = self.by_time.first_key_value() {
            if t > now_ms {
                break;
            }
            let key = self.by_time.remove(&(t, n)).expect("present");
            self.index.remove(&(key.run.clone(), key.token));
            out.push(key);
        }
        out
    }

    /// Pending timers.
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(run: &str, token: u64) -> TimerKey {
        TimerKey {
            run: run.into(),
            fiber: 0,
            token,
        }
    }

    #[test]
    fn due_in_deadline_order_and_cancellable() {
        let mut t = Timers::new(10);
        t.insert(30, key("a", 1)).unwrap();
        t.insert(10, key("b", 2)).unwrap();
        t.insert(20, key("a", 3)).unwrap();
        t.cancel("a", 3);
        assert_eq!(t.next_deadline(), Some(10));
        let due: Vec<u64> = t.due(30).into_iter().map(|k| k.token).collect();
        assert_eq!(due, vec![2, 1]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn refuses_past_capacity() {
        let mut t = Timers::new(2);
        t.insert(1, key("a", 1)).unwrap();
        t.insert(1, key("a", 2)).unwrap();
        assert!(t.insert(1, key("a", 3)).unwrap_err().contains("capacity"));
        t.cancel_run("a");
        assert_eq!(t.len(), 0);
        assert_eq!(t.capacity(), 2);
    }
}
