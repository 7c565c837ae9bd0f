//! Ready queues: one fixed-capacity ring of queued run ids per priority level, refilled from the
//! store in admission order, so memory holds a window of the backlog, never all of it. Picking
//! ages waiting runs so low priorities are not starved.

use crate::limits::PRIORITY_LEVELS;
use crate::store::QueuedRef;
use bounded_vec_deque::BoundedVecDeque;

/// The ready-queue level of a priority: clamped to `0..PRIORITY_LEVELS`.
pub fn level_of(priority: i64) -> i64 {
    priority.clamp(0, PRIORITY_LEVELS as i64 - 1)
}

/// One level's ring and what the store may still hold for it.
///
/// Ids enter a ring only from store reads in admission order (`seq > after_seq`). Admissions
/// commit in seq order, so a read sees a prefix of the admitted seqs and nothing is skipped; an
/// admission only marks its level as having more on disk.
struct Level {
    ring: BoundedVecDeque<QueuedRef>,
    /// Highest admission seq read into the ring (refills continue after it).
    after_seq: i64,
    /// The store may hold queued runs of this level that are not in the ring.
    more_on_disk: bool,
    /// A refill read is in flight.
    refilling: bool,
    /// An admission arrived while the refill was in flight (it may not be in its rows).
    missed: bool,
    /// A rescan was asked for while a refill was in flight: its rows are dropped.
    rescan_pending: bool,
}

/// All ready rings.
pub struct Ready {
    levels: Vec<Level>,
    aging_step_ms: i64,
}

impl Ready {
    /// Rings of `capacity` ids per level; every level starts "maybe more on disk".
    pub fn new(capacity: usize, aging_step_ms: i64) -> Ready {
        let levels = (0..PRIORITY_LEVELS)
            .map(|_| Level {
                ring: BoundedVecDeque::new(capacity),
                after_seq: 0,
                more_on_disk: true,
                refilling: false,
                missed: false,
                rescan_pending: false,
            })
            .collect();
        Ready {
            levels,
            aging_step_ms: aging_step_ms.max(1),
        }
    }

    /// A run was admitted at `level`: the next refill of that level reads it.
    pub fn admitted(&mut self, level: i64) {
        let l = &mut self.levels[level as usize];
        l.more_on_disk = true;
        if l.refilling {
            l.missed = true;
        }
    }

    /// Forget what is in memory for `level` and read it again from the start (a run went back
    /// to queued out of admission order: resume, retry, priority change).
    pub fn rescan(&mut self, level: i64) {
        let l = &mut self.levels[level as usize];
        if l.refilling {
            l.rescan_pending = true;
            return;
        }
        l.ring.clear();
        l.after_seq = 0;
        l.more_on_disk = true;
    }

    /// Levels that want a refill now: ring below half, more on disk, no read in flight. Marks
    /// them as refilling; returns (level, after_seq, room).
    pub fn refills_due(&mut self) -> Vec<(i64, i64, usize)> {
        let mut due = Vec::new();
        for (i, l) in self.levels.iter_mut().enumerate() {
            let cap = l.ring.max_len();
            if l.more_on_disk && !l.refilling && l.ring.len() < cap / 2 + 1 {
                l.refilling = true;
                due.push((i as i64, l.after_seq, cap - l.ring.len()));
            }
        }
        due
    }

    /// A refill read returned `rows` (asked for `room`, in seq order).
    pub fn refilled(&mut self, level: i64, rows: Vec<QueuedRef>, room: usize) {
        let l = &mut self.levels[level as usize];
        l.refilling = false;
        if std::mem::take(&mut l.rescan_pending) {
            l.missed = false;
            l.ring.clear();
            l.after_seq = 0;
            l.more_on_disk = true;
            return;
        }
        let got = rows.len();
        let mut full = false;
        for row in rows {
            if row.seq <= l.after_seq {
                continue;
            }
            if l.ring.is_full() {
                full = true;
                break;
            }
            l.after_seq = row.seq;
            l.ring.push_back(row);
        }
        l.more_on_disk = std::mem::take(&mut l.missed) || full || got >= room;
    }

    /// A refill read failed: try again at the next chance.
    pub fn refill_failed(&mut self, level: i64) {
        let l = &mut self.levels[level as usize];
        l.refilling = false;
        l.more_on_disk = true;
    }

    /// Takes the next run to start: the ring head with the highest aged level
    /// (`level + waited / aging_step`), ties to the higher level, then the older run.
    pub fn pop(&mut self, now_ms: i64) -> Option<QueuedRef> {
        let mut best: Option<(i64, i64, i64, usize)> = None;
        for (i, l) in self.levels.iter().enumerate() {
            let Some(head) = l.ring.front() else {
                continue;
            };
            let aged = i as i64 + (now_ms - head.created_ms).max(0) / self.aging_step_ms;
            let key = (aged, i as i64, -head.seq, i);
            if best.is_none_or(|b| (key.0, key.1, key.2) > (b.0, b.1, b.2)) {
                best = Some(key);
            }
        }
        best.and_then(|(_, _, _, i)| self.levels[i].ring.pop_front())
    }

    /// Ids held in memory, over all levels.
    pub fn len(&self) -> usize {
        self.levels.iter().map(|l| l.ring.len()).sum()
    }

    /// Capacity over all levels.
    pub fn capacity(&self) -> usize {
        self.levels.iter().map(|l| l.ring.max_len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(seq: i64, created_ms: i64) -> QueuedRef {
        QueuedRef {
            id: format!("t{seq}"),
            seq,
            priority: 0,
            created_ms,
        }
    }

    #[test]
    fn higher_levels_first_then_admission_order() {
        let mut r = Ready::new(8, 1_000_000);
        r.refills_due();
        r.refilled(1, vec![q(1, 0), q(2, 0)], 8);
        r.refilled(5, vec![q(3, 0)], 8);
        let order: Vec<i64> = std::iter::from_fn(|| r.pop(0)).map(|x| x.seq).collect();
        assert_eq!(order, vec![3, 1, 2]);
    }

    #[test]
    fn aging_lets_an_old_low_priority_run_through() {
        let mut r = Ready::new(8, 1_000);
        r.refills_due();
        r.refilled(0, vec![q(1, 0)], 8);
        r.refilled(3, vec![q(2, 9_000)], 8);
        // At t=10s the level-0 run has aged 10 levels; the level-3 run has aged 1.
        assert_eq!(r.pop(10_000).unwrap().seq, 1);
    }

    #[test]
    fn a_full_ring_leaves_the_rest_on_disk() {
        let mut r = Ready::new(2, 1_000);
        r.refills_due();
        r.refilled(0, vec![q(1, 0), q(2, 0)], 2);
        assert_eq!(r.len(), 2);
        assert_eq!(r.capacity(), 2 * PRIORITY_LEVELS);
        assert!(r.refills_due().is_empty(), "full: no refill");
        r.pop(0);
        r.pop(0);
        let due = r.refills_due();
        assert!(due.contains(&(0, 2, 2)), "{due:?}");
    }

    #[test]
    fn an_admission_during_a_refill_is_not_lost() {
        let mut r = Ready::new(8, 1_000);
        let due = r.refills_due();
        assert!(due.contains(&(1, 0, 8)));
        r.admitted(1); // committed after the refill's read
        r.refilled(1, vec![q(1, 0)], 8);
        assert!(
            r.refills_due().contains(&(1, 1, 7)),
            "a second read follows"
        );
        r.refilled(1, vec![q(2, 0)], 7);
        assert_eq!(r.len(), 2);
        assert!(r.refills_due().is_empty(), "all read");
    }

    #[test]
    fn a_rescan_during_a_refill_drops_its_rows_and_reads_again() {
        let mut r = Ready::new(8, 1_000);
        r.refills_due();
        r.rescan(2);
        r.refilled(2, vec![q(5, 0)], 8);
        assert_eq!(r.len(), 0);
        assert!(r.refills_due().contains(&(2, 0, 8)));
    }

    #[test]
    fn levels_clamp() {
        assert_eq!(level_of(-5), 0);
        assert_eq!(level_of(1), 1);
        assert_eq!(level_of(1_000), PRIORITY_LEVELS as i64 - 1);
    }
}
