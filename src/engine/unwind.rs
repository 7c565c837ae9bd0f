//! Outcomes (spec §3.2): raising failures, throws and breaks, finding the `TryCatchBp` or loop
//! that takes them, unwinding the frames and fibers in between, or parking the run as
//! interrupted or ending it.

use super::state::{FiberState, Frame, Mode};
use super::step::{Engine, Hook};
use super::{block_code, code, Class, EffectKind, Outcome, Raise, Raised, Record};

impl Engine<'_> {
    pub(super) fn raise(&mut self, fid: u32, raise: Raise) {
        let pos = self.pos(fid);
        let top = self.run.fibers[pos].frames.last().expect("raiser frame");
        let block = self.flow.block(top.block);
        let (block_type, name) = (&block.block_type, &block.name);
        // RDS's form `[<blockType>]Block Run Failure:<message>`, the message naming the block.
        let raised = match raise {
            Raise::Break => return self.raise_break(fid),
            Raise::Failure(m) => Raised {
                class: Class::Failure,
                reason: format!("[{block_type}]Block Run Failure:{name}: {m}"),
            },
            Raise::EndError(m) => Raised {
                class: Class::EndError,
                reason: format!("[{block_type}]{name}: {m}"),
            },
            Raise::Throw(m) => Raised {
                class: Class::Throw,
                reason: format!("[{block_type}]:{m}"),
            },
            Raise::Again(raised) => raised,
        };
        self.raise_failure(fid, raised);
    }

    pub(super) fn raise_break(&mut self, fid: u32) {
        if self.break_would_leave_its_branch(fid) {
            // A break cannot leave a parallel branch: it is a block failure (§3.2: it fails the
            // parallel block), raised from the `BreakBp` itself, so the other branches keep
            // what they finished and a retry runs only the `BreakBp` again.
            let message = "BreakBp is not inside a loop of its parallel branch".to_string();
            return self.raise(fid, Raise::Failure(message));
        }
        self.end_frame(fid, block_code::END, String::new());
        loop {
            let pos = self.pos(fid);
            let fiber = &self.run.fibers[pos];
            let top = fiber.frames.last().expect("frame below a break");
            if top.block == 0 {
                self.run.exec_ok = false;
                self.run.set_run_status(code::FAILED);
                self.run.end_reason =
                    Some("[RootBp]Block Run Failure:BreakBp outside a loop".to_string());
                self.abort_waits(block_code::END_ERROR, "run failed");
                return self.finish_block(fid, block_code::END_ERROR, String::new());
            }
            if self.behaviour(top.block).catches_break() {
                let result = self.call(fid, Hook::Break);
                return self.apply(fid, result);
            }
            self.end_frame(fid, block_code::END, "break".to_string());
        }
    }

    /// Whether a break from the top of `fid` would reach the base of a parallel branch before
    /// any loop that takes it.
    fn break_would_leave_its_branch(&self, fid: u32) -> bool {
        let fiber = &self.run.fibers[self.pos(fid)];
        let below = &fiber.frames[..fiber.frames.len() - 1];
        for frame in below.iter().rev() {
            if frame.is_base() {
                return true;
            }
            if self.behaviour(frame.block).catches_break() {
                return false;
            }
        }
        false
    }

    pub(super) fn raise_failure(&mut self, fid: u32, raised: Raised) {
        if !self.run.exec_ok {
            // The run is already ending (stop, manual end, return, failure): an error now is no
            // outcome of its own and is not caught (spec §3.2 Stop row, §3.3 TryCatchBp 5). A
            // `TryCatchBp` re-raising after its `catch` was cut short by a stop gets here.
            let status = match self.run.run_status {
                code::FAILED => block_code::END_ERROR,
                code::MANUAL_END => block_code::END,
                _ => block_code::STOP,
            };
            let pos = self.pos(fid);
            self.run.fibers[pos].state = FiberState::Ready;
            return self.finish_block(fid, status, raised.reason);
        }
        if let Some((cfid, cdepth)) = self.find_catcher(fid) {
            self.unwind_to(fid, cfid, cdepth, &raised.reason);
            let result = self.call(cfid, Hook::Caught(raised));
            return self.apply(cfid, result);
        }
        if raised.class == Class::Failure && !self.run.periodic {
            let depth = self.run.fibers[self.pos(fid)].frames.len() - 1;
            if self.rewind_raiser(fid) {
                return self.park(fid, depth, raised.reason);
            }
            // BlockFailure: the run waits for an operator (1006); the failed block runs again
            // on retry, so its frame is dropped without moving the parent on.
            let frame = self.end_frame(fid, block_code::END_ERROR, raised.reason.clone());
            self.out.records.push(Record::BlockStatus {
                seq: frame.seq,
                status: block_code::INTERRUPT,
                reason: format!("blockInterrupt:{}", raised.reason),
            });
            let pos = self.pos(fid);
            self.run.fibers[pos].state = FiberState::Ready;
            self.run.interrupted = Some(raised.reason);
            return;
        }
        self.run.exec_ok = false;
        self.run.set_run_status(code::FAILED);
        self.run.end_reason = Some(raised.reason.clone());
        let pos = self.pos(fid);
        self.run.fibers[pos].state = FiberState::Ready;
        self.finish_block(fid, block_code::END_ERROR, raised.reason);
        self.abort_waits(block_code::END_ERROR, "run failed");
    }

    /// Lets the raising block rewind its own frame instead of being dropped (see
    /// `Behaviour::rewind_on_interrupt`).
    fn rewind_raiser(&mut self, fid: u32) -> bool {
        let pos = self.pos(fid);
        let frame = self.run.fibers[pos]
            .frames
            .last_mut()
            .expect("raiser frame");
        let block = self.flow.block(frame.block);
        let behaviour = block.kind.behaviour.expect("runnable");
        if frame.is_base() || !behaviour.rewind_on_interrupt(frame, block) {
            return false;
        }
        frame.mode = Mode::Serial;
        // The frames it stashed when catching go back on the stack, so retry resumes at the
        // failed block itself.
        let stash = std::mem::take(&mut frame.stash);
        self.run.fibers[pos].frames.extend(stash);
        true
    }

    /// Parks the run as interrupted with the raiser's frame (at `depth`) kept open (its record
    /// says so).
    fn park(&mut self, fid: u32, depth: usize, reason: String) {
        let pos = self.pos(fid);
        let seq = self.run.fibers[pos].frames[depth].seq;
        self.out.records.push(Record::BlockStatus {
            seq,
            status: block_code::INTERRUPT,
            reason: format!("blockInterrupt:{reason}"),
        });
        self.run.fibers[pos].state = FiberState::Ready;
        self.run.interrupted = Some(reason);
    }

    /// The nearest `TryCatchBp` frame above the raiser (excluded), crossing fork points.
    pub(super) fn find_catcher(&self, fid: u32) -> Option<(u32, u32)> {
        let mut fiber = &self.run.fibers[self.pos(fid)];
        let mut below = fiber.frames.len() - 1;
        loop {
            for i in (0..below).rev() {
                let frame = &fiber.frames[i];
                if !frame.is_base() && self.catches(frame) {
                    return Some((fiber.id, i as u32));
                }
            }
            let (parent, depth) = fiber.parent?;
            fiber = &self.run.fibers[self.pos(parent)];
            below = depth as usize;
        }
    }

    pub(super) fn catches(&self, frame: &Frame) -> bool {
        let behaviour = self.behaviour(frame.block);
        behaviour.catches_failures() && frame.phase == crate::blocks::TRY_PHASE
    }

    /// Unwinds from the raiser up to (not including) the catcher frame: blocks on the failing
    /// path end 1004, other branches inside the catcher are cancelled (1001).
    pub(super) fn unwind_to(&mut self, fid: u32, cfid: u32, cdepth: u32, reason: &str) {
        let mut lineage = vec![fid];
        let mut cur = fid;
        while cur != cfid {
            let (p, _) = self.run.fibers[self.pos(cur)]
                .parent
                .expect("catcher is an ancestor");
            lineage.push(p);
            cur = p;
        }
        // The failing path: the raiser's fiber and its ancestors up to the catcher's fiber.
        for &id in &lineage {
            if id == cfid {
                break;
            }
            let mut first = id == fid;
            while !self.run.fibers[self.pos(id)].frames.is_empty() {
                let why = if first { reason } else { "failed below" };
                first = false;
                self.end_frame(id, block_code::END_ERROR, why.to_string());
            }
            let pos = self.pos(id);
            self.run.fibers.remove(pos);
        }
        // In the catcher's own fiber the failed block ends 1004; when the failure came from this
        // fiber, the blocks between it and the catcher stay open in the catcher's stash (a retry
        // after a re-raise resumes among them); otherwise they end 1004 now.
        let same_fiber = fid == cfid;
        let mut first = same_fiber;
        let mut stash = Vec::new();
        loop {
            let pos = self.pos(cfid);
            let len = self.run.fibers[pos].frames.len() as u32;
            if len <= cdepth + 1 {
                break;
            }
            if same_fiber && !first {
                let frame = self.run.fibers[pos]
                    .frames
                    .pop()
                    .expect("frame above the catcher");
                stash.push(frame);
                continue;
            }
            let raiser_at = len as usize - 1;
            if first && same_fiber && self.rewind_raiser(fid) {
                // A `TryCatchBp` re-raising into an outer one stays open too, with the frames it
                // stashed (now back above it), so a retry resumes at the block that failed.
                first = false;
                let frames = &mut self.run.fibers[pos].frames;
                stash.extend(frames.drain(raiser_at..).rev());
                continue;
            }
            let why = if first { reason } else { "failed below" };
            first = false;
            self.end_frame(cfid, block_code::END_ERROR, why.to_string());
        }
        stash.reverse();
        let pos = self.pos(cfid);
        let fiber = &mut self.run.fibers[pos];
        fiber.state = FiberState::Ready;
        let top = fiber.frames.last_mut().expect("catcher frame");
        top.mode = Mode::Serial;
        top.pending = 0;
        top.stash = stash;
    }

    pub(super) fn outcome(&mut self) -> Outcome {
        if let Some(ended) = &self.run.ended {
            return Outcome::Ended(ended.clone());
        }
        if let Some(reason) = &self.run.interrupted {
            let reason = reason.clone();
            self.cancel_all_waits();
            return Outcome::Interrupted { reason };
        }
        if self.run.pause_pending && !self.unpausable_in_flight() {
            // The HTTP request or script call a pause waited for has answered (spec §4.6).
            self.run.pause_pending = false;
            self.run.paused = true;
        }
        if self.run.paused {
            self.cancel_all_waits();
            return Outcome::Paused;
        }
        if self.run.pause_pending {
            return Outcome::Waiting;
        }
        if self.run.fibers.iter().any(|f| f.state == FiberState::Ready) {
            Outcome::More
        } else {
            Outcome::Waiting
        }
    }

    /// Whether a fiber waits for work a pause cannot cut short (an HTTP request or a script
    /// call in flight).
    pub(super) fn unpausable_in_flight(&self) -> bool {
        self.run
            .fibers
            .iter()
            .any(|f| f.state == FiberState::Waiting && !pausable(f))
    }

    /// Cancels every wait a pause may cut short (the blocks stay current and wait again on
    /// resume), leaving the HTTP requests and script calls in flight.
    pub(super) fn cancel_pausable_waits(&mut self) {
        for fiber in &self.run.fibers {
            if fiber.state != FiberState::Waiting || !pausable(fiber) {
                continue;
            }
            if let Some((token, _)) = fiber.frames.last().and_then(|f| f.wait.as_ref()) {
                self.out.cancelled.push(*token);
            }
        }
        self.out.effects.clear();
    }

    pub(super) fn cancel_all_waits(&mut self) {
        for fiber in &self.run.fibers {
            if let Some((token, _)) = fiber.frames.last().and_then(|f| f.wait.as_ref()) {
                self.out.cancelled.push(*token);
            }
        }
        self.out.effects.clear();
    }
}

/// Whether a pause may cut `fiber`'s wait short (all but an HTTP request or script call).
fn pausable(fiber: &super::state::Fiber) -> bool {
    !matches!(
        fiber.frames.last().and_then(|t| t.wait.as_ref()),
        Some((_, EffectKind::Io(op))) if !op.pausable()
    )
}
