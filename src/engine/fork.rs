//! Parallel fibers: forking branches and copies, joining them, cancelling the branches of a
//! block that ends abnormally, and `StopOtherBranch`.

use super::state::{Fiber, FiberState, Frame, Mode};
use super::step::{Engine, Hook};
use super::{block_code, EffectKind, Fork, Raise, Record};
use crate::limits::FIBERS_MAX;

impl Engine<'_> {
    pub(super) fn fork(&mut self, fid: u32, fork: Fork) {
        let pos = self.pos(fid);
        let depth = self.run.fibers[pos].frames.len() as u32 - 1;
        let block = self.run.fibers[pos].frames[depth as usize].block;
        // The iteration path of the forking block, loop indices included: a parallel block in a
        // loop forks branches whose records must differ from one round to the next.
        let parent_key = self.iteration_key(fid);
        let (branch, copies, per_child, stagger_ms) = match fork {
            Fork::EachChild(branch) => {
                let n = self.flow.block(block).branch(branch).len() as u32;
                (branch, n, true, 0)
            }
            Fork::Copies {
                branch,
                copies,
                stagger_ms,
            } => (branch, copies, false, stagger_ms),
        };
        if self.run.fibers.len() + copies as usize > FIBERS_MAX {
            let message = format!(
                "{copies} branches refused: the run would have more than FIBERS_MAX \
                 ({FIBERS_MAX}) branches"
            );
            self.raise(fid, Raise::Failure(message));
            return;
        }
        if copies == 0 {
            let result = self.call(fid, Hook::Joined);
            self.apply(fid, result);
            return;
        }
        let len = self.flow.block(block).branch(branch).len() as u32;
        let top = &mut self.run.fibers[pos].frames[depth as usize];
        top.mode = Mode::Joining;
        top.pending = copies;
        self.run.fibers[pos].state = FiberState::Joining;
        for i in 0..copies {
            let id = self.run.next_fiber;
            self.run.next_fiber += 1;
            let mut base = Frame::new(block, 0);
            base.branch = branch as u8;
            (base.child, base.end) = if per_child { (i, i + 1) } else { (0, len) };
            self.run.fibers.push(Fiber {
                id,
                parent: Some((fid, depth)),
                key: format!("{parent_key}{}.{}/", self.flow.block(block).name, i + 1),
                frames: vec![base],
                state: FiberState::Ready,
            });
            if i > 0 && stagger_ms > 0 {
                let until_ms = self.host.now_ms() + stagger_ms * i64::from(i);
                self.wait(id, EffectKind::Timer { until_ms });
            }
        }
    }

    /// A forked fiber ran its branch to the end: tell the forking frame.
    pub(super) fn fiber_done(&mut self, fid: u32) {
        let pos = self.pos(fid);
        let fiber = self.run.fibers.remove(pos);
        let Some((parent, depth)) = fiber.parent else {
            return;
        };
        let ppos = self.pos(parent);
        let frame = &mut self.run.fibers[ppos].frames[depth as usize];
        frame.pending -= 1;
        if frame.pending == 0 {
            frame.mode = Mode::Serial;
            self.run.fibers[ppos].state = FiberState::Ready;
            let result = self.call(parent, Hook::Joined);
            self.apply(parent, result);
        }
    }

    /// Fibers forked (directly or not) from frames of `fid` at index `depth` or above.
    pub(super) fn forks_above(&self, fid: u32, depth: u32) -> Vec<u32> {
        let mut found: Vec<u32> = Vec::new();
        for fiber in &self.run.fibers {
            let mut cur = fiber.parent;
            while let Some((p, d)) = cur {
                if p == fid && d >= depth {
                    found.push(fiber.id);
                    break;
                }
                cur = self
                    .run
                    .fiber_pos(p)
                    .and_then(|pp| self.run.fibers[pp].parent);
            }
        }
        found
    }

    /// Removes the fibers forked from frames of `fid` at `depth` or above, ending their blocks
    /// (1001: cancelled). Used when the forking block ends abnormally.
    pub(super) fn cancel_forks(&mut self, fid: u32, depth: u32) {
        for id in self.forks_above(fid, depth) {
            self.cancel_fiber(id, block_code::STOP, "cancelled: its parallel block ended");
        }
    }

    pub(super) fn cancel_fiber(&mut self, fid: u32, status: i32, reason: &str) {
        let Some(pos) = self.run.fiber_pos(fid) else {
            return;
        };
        let mut fiber = self.run.fibers.remove(pos);
        while let Some(mut frame) = fiber.frames.pop() {
            if let Some((token, _)) = &frame.wait {
                self.out.cancelled.push(*token);
            }
            self.close_stash(&mut frame);
            if !frame.is_base() {
                self.out.records.push(Record::BlockEnded {
                    seq: frame.seq,
                    block: frame.block,
                    status,
                    reason: reason.to_string(),
                    outputs: None,
                });
            }
        }
    }

    /// `StopOtherBranch` (spec §3.3, decision §8 Q7): the other branches of the nearest
    /// enclosing parallel block end as if they had finished.
    pub(super) fn stop_other_branches(&mut self, fid: u32) {
        let pos = self.pos(fid);
        let Some((parent, depth)) = self.run.fibers[pos].parent else {
            return; // not inside a parallel block: nothing to stop
        };
        let siblings: Vec<u32> = self
            .forks_above(parent, depth)
            .into_iter()
            .filter(|&id| id != fid && !self.is_fork_of(id, fid))
            .collect();
        for id in siblings {
            let direct = self
                .run
                .fiber_pos(id)
                .is_some_and(|p| self.run.fibers[p].parent == Some((parent, depth)));
            self.cancel_fiber(id, block_code::STOP, "stopped by other branch");
            if direct {
                let ppos = self.pos(parent);
                self.run.fibers[ppos].frames[depth as usize].pending -= 1;
            }
        }
    }

    pub(super) fn is_fork_of(&self, id: u32, ancestor: u32) -> bool {
        let mut cur = self
            .run
            .fiber_pos(id)
            .and_then(|p| self.run.fibers[p].parent);
        while let Some((p, _)) = cur {
            if p == ancestor {
                return true;
            }
            cur = self
                .run
                .fiber_pos(p)
                .and_then(|pp| self.run.fibers[pp].parent);
        }
        false
    }
}
