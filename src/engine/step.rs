//! The step function: applies one event to a run and drives its ready fibers until each waits,
//! parks or the step budget (`STEP_OPS_MAX`) runs out. Implements the generic block algorithm of
//! spec §3.1 and the outcome classes of §3.2 without recursion over the block tree.

use super::cx::{evaluate_params, Cx, Request};
use super::state::{Fiber, FiberState, Frame, Mode, RunState};
use super::{
    block_code, code, Action, Class, Effect, EffectKind, Ended, Event, Fork, Host, Outcome, Raise,
    Raised, Record, StepOutput, Wait,
};
use crate::blocks::Behaviour;
use crate::flow::model::{BlockIdx, Branch, Flow};
use crate::limits::{
    FIBERS_MAX, LOG_LINE_BYTES_MAX, RECORD_VALUE_BYTES_MAX, STEP_OPS_MAX, STEP_RECORD_BYTES_MAX,
};
use crate::value::{self, Map, Value};

/// Applies `event` to `run` and advances it. The returned records must be persisted, together
/// with the run's new state, before the returned effects are started.
pub fn step(flow: &Flow, run: &mut RunState, event: Event, host: &mut dyn Host) -> StepOutput {
    let mut engine = Engine {
        flow,
        run,
        host,
        out: StepOutput::default(),
        budget: STEP_OPS_MAX,
        record_bytes: 0,
    };
    engine.handle(event);
    engine.run_fibers();
    let outcome = engine.outcome();
    let StepOutput {
        effects, cancelled, ..
    } = &mut engine.out;
    // A wait issued and cancelled in the same step (a staggered copy whose parallel block failed
    // at once) must not be started: the scheduler starts effects after applying cancellations.
    effects.retain(|e| !cancelled.contains(&e.token));
    engine.out.outcome = Some(outcome);
    engine.out
}

struct Engine<'a> {
    flow: &'a Flow,
    run: &'a mut RunState,
    host: &'a mut dyn Host,
    out: StepOutput,
    budget: usize,
    /// Bytes of the records produced so far (bounded by `STEP_RECORD_BYTES_MAX`).
    record_bytes: usize,
}

/// Which behaviour hook to call.
enum Hook {
    Start(Map),
    BranchDone,
    Woke,
    Joined,
    Break,
    Caught(Raised),
}

impl Engine<'_> {
    // ----- events -------------------------------------------------------------------------

    fn handle(&mut self, event: Event) {
        if self.run.ended.is_some() {
            return;
        }
        match event {
            Event::Start => self.start_root(),
            Event::Continue => {}
            Event::Woke { fiber, token } => self.woke(fiber, token),
            Event::Stop => self.terminate(code::STOPPED, block_code::STOP, "stopped"),
            Event::ManualEnd => self.terminate(code::MANUAL_END, block_code::END, "manual end"),
            Event::Pause => self.run.paused = true,
            Event::Resume => {
                self.run.paused = false;
                self.reissue_waits();
            }
            Event::Retry => {
                if self.run.interrupted.take().is_some() {
                    self.reissue_waits();
                }
            }
            Event::Recover => {
                if !self.run.paused && self.run.interrupted.is_none() {
                    self.reissue_waits();
                }
            }
        }
    }

    fn start_root(&mut self) {
        if !self.run.fibers.is_empty() {
            return;
        }
        let seq = self.alloc_seq();
        let mut root = Frame::new(0, seq);
        root.end = self.flow.block(0).branch(Branch::Default).len() as u32;
        self.out.records.push(Record::BlockStarted {
            seq,
            block: 0,
            iteration: String::new(),
            inputs: String::new(),
        });
        self.run.fibers.push(Fiber {
            id: 0,
            parent: None,
            key: String::new(),
            frames: vec![root],
            state: FiberState::Ready,
        });
        self.run.next_fiber = 1;
    }

    fn woke(&mut self, fid: u32, token: u64) {
        let Some(pos) = self.run.fiber_pos(fid) else {
            return;
        };
        let fiber = &mut self.run.fibers[pos];
        let Some(top) = fiber.frames.last_mut() else {
            return;
        };
        if top.mode != Mode::Waiting || top.wait.map(|w| w.0) != Some(token) {
            return; // stale: the wait was cancelled or already answered
        }
        top.wait = None;
        top.mode = Mode::Serial;
        fiber.state = FiberState::Ready;
        if top.is_base() {
            return; // a staggered parallel-repeat copy may start now
        }
        let result = self.call(fid, Hook::Woke);
        self.apply(fid, result);
    }

    /// Stop or manual end: later blocks are skipped, waits end at once, the run unwinds.
    fn terminate(&mut self, run_status: i32, block_status: i32, reason: &str) {
        self.run.exec_ok = false;
        self.run.set_run_status(run_status);
        self.run.paused = false;
        self.run.interrupted = None;
        self.run
            .end_reason
            .get_or_insert_with(|| reason.to_string());
        self.abort_waits(block_status, reason);
    }

    /// Ends every waiting block with `status`; their fibers continue (and skip what follows).
    fn abort_waits(&mut self, status: i32, reason: &str) {
        let waiting: Vec<u32> = self
            .run
            .fibers
            .iter()
            .filter(|f| f.state == FiberState::Waiting)
            .map(|f| f.id)
            .collect();
        for fid in waiting {
            let pos = self.pos(fid);
            let fiber = &mut self.run.fibers[pos];
            fiber.state = FiberState::Ready;
            let top = fiber.frames.last_mut().expect("waiting fiber has a frame");
            if let Some((token, _)) = top.wait.take() {
                self.out.cancelled.push(token);
            }
            top.mode = Mode::Serial;
            if !top.is_base() {
                self.finish_block(fid, status, reason.to_string());
            }
        }
    }

    fn reissue_waits(&mut self) {
        for fiber in &self.run.fibers {
            if fiber.state != FiberState::Waiting {
                continue;
            }
            if let Some((token, kind)) = fiber.frames.last().and_then(|f| f.wait) {
                self.out.effects.push(Effect {
                    fiber: fiber.id,
                    token,
                    kind,
                });
            }
        }
    }

    // ----- driving fibers -----------------------------------------------------------------

    fn blocked(&self) -> bool {
        self.run.ended.is_some()
            || self.run.interrupted.is_some()
            || (self.run.paused && self.run.exec_ok)
    }

    fn run_fibers(&mut self) {
        while self.budget > 0 && !self.blocked() {
            let Some(fid) = self
                .run
                .fibers
                .iter()
                .find(|f| f.state == FiberState::Ready)
                .map(|f| f.id)
            else {
                break;
            };
            self.run_fiber(fid);
        }
    }

    fn run_fiber(&mut self, fid: u32) {
        while self.budget > 0 && !self.blocked() {
            let Some(pos) = self.run.fiber_pos(fid) else {
                return;
            };
            let fiber = &self.run.fibers[pos];
            if fiber.state != FiberState::Ready {
                return;
            }
            self.budget -= 1;
            let before = self.out.records.len();
            self.run_op(fid);
            self.account(before);
        }
    }

    /// Counts the bytes of the records since `before`; past `STEP_RECORD_BYTES_MAX` the step
    /// yields.
    fn account(&mut self, before: usize) {
        let added: usize = self.out.records[before..].iter().map(Record::bytes).sum();
        self.record_bytes += added;
        if self.record_bytes > STEP_RECORD_BYTES_MAX {
            self.budget = 0;
        }
    }

    /// One engine operation on fiber `fid`: start its next child, or end its branch.
    fn run_op(&mut self, fid: u32) {
        let fiber = &self.run.fibers[self.pos(fid)];
        let top = fiber.frames.last().expect("live fiber has a frame");
        debug_assert_eq!(top.mode, Mode::Serial);
        if top.child < top.end {
            let branch = Branch::ALL[top.branch as usize];
            let child = self.flow.block(top.block).branch(branch)[top.child as usize];
            self.enter(fid, child);
        } else if top.is_base() {
            self.fiber_done(fid);
        } else {
            let result = self.call(fid, Hook::BranchDone);
            self.apply(fid, result);
        }
    }

    /// The generic block algorithm (spec §3.1) for `child`, the next child of `fid`'s top frame.
    fn enter(&mut self, fid: u32, child: BlockIdx) {
        let block = self.flow.block(child);
        if let Some(target) = &self.run.skip_target {
            if block.name.eq_ignore_ascii_case(target) {
                self.run.skip_target = None;
            } else if !self.has_named_descendant(child, target) {
                self.advance(fid);
                return;
            }
        }
        if !self.run.exec_ok {
            self.advance(fid);
            return;
        }
        let seq = self.alloc_seq();
        let iteration = self.iteration_key(fid);
        let pos = self.pos(fid);
        self.run.fibers[pos].frames.push(Frame::new(child, seq));
        self.run.push_path(&block.name);
        match evaluate_params(block, self.run) {
            Ok(params) => {
                let inputs = if params.is_empty() {
                    String::new()
                } else {
                    value::to_json_truncated(&Value::Object(params.clone()), RECORD_VALUE_BYTES_MAX)
                };
                self.out.records.push(Record::BlockStarted {
                    seq,
                    block: child,
                    iteration,
                    inputs,
                });
                let result = if block.kind.behaviour.is_some() {
                    self.call(fid, Hook::Start(params))
                } else {
                    Err(Raise::Failure(format!(
                        "block type {} is not supported yet",
                        block.block_type
                    )))
                };
                self.apply(fid, result);
            }
            Err(message) => {
                self.out.records.push(Record::BlockStarted {
                    seq,
                    block: child,
                    iteration,
                    inputs: String::new(),
                });
                self.raise(fid, Raise::Failure(message));
            }
        }
    }

    fn behaviour(&self, block: BlockIdx) -> &'static dyn Behaviour {
        self.flow
            .block(block)
            .kind
            .behaviour
            .expect("compile admits only runnable kinds")
    }

    fn call(&mut self, fid: u32, hook: Hook) -> Result<Action, Raise> {
        let pos = self.pos(fid);
        let frame = self.run.fibers[pos].frames.len() - 1;
        let behaviour = self.behaviour(self.run.fibers[pos].frames[frame].block);
        let (params, hook) = match hook {
            Hook::Start(params) => (params, None),
            other => (Map::new(), Some(other)),
        };
        let mut cx = Cx {
            flow: self.flow,
            run: self.run,
            out: &mut self.out,
            host: self.host,
            fiber: pos,
            frame,
            params,
            requests: Vec::new(),
        };
        let result = match hook {
            None => behaviour.start(&mut cx),
            Some(Hook::BranchDone) => behaviour.branch_done(&mut cx),
            Some(Hook::Woke) => behaviour.woke(&mut cx),
            Some(Hook::Joined) => behaviour.joined(&mut cx),
            Some(Hook::Break) => behaviour.on_break(&mut cx),
            Some(Hook::Caught(raised)) => behaviour.on_caught(&mut cx, Raise::Again(raised)),
            Some(Hook::Start(_)) => unreachable!("start handled above"),
        };
        let requests = std::mem::take(&mut cx.requests);
        for request in requests {
            match request {
                Request::StopOtherBranches => self.stop_other_branches(fid),
            }
        }
        result
    }

    fn apply(&mut self, fid: u32, result: Result<Action, Raise>) {
        match result {
            Ok(Action::Done) => self.finish_block(fid, block_code::END, String::new()),
            Ok(Action::RunBranch(branch)) => {
                let pos = self.pos(fid);
                let top = self.run.fibers[pos].frames.last_mut().expect("frame");
                top.mode = Mode::Serial;
                top.branch = branch as u8;
                top.child = 0;
                top.end = self.flow.block(top.block).branch(branch).len() as u32;
            }
            Ok(Action::Wait(Wait::Timer { ms })) => {
                let until_ms = self.host.now_ms().saturating_add(ms.max(0));
                self.wait(fid, EffectKind::Timer { until_ms });
            }
            Ok(Action::Fork(fork)) => self.fork(fid, fork),
            Err(raise) => self.raise(fid, raise),
        }
    }

    fn wait(&mut self, fid: u32, kind: EffectKind) {
        let token = self.alloc_token();
        let pos = self.pos(fid);
        let fiber = &mut self.run.fibers[pos];
        let top = fiber.frames.last_mut().expect("frame");
        top.mode = Mode::Waiting;
        top.wait = Some((token, kind));
        fiber.state = FiberState::Waiting;
        self.out.effects.push(Effect {
            fiber: fid,
            token,
            kind,
        });
    }

    /// Ends the top block of `fid` with `status` and moves its parent on to the next child.
    fn finish_block(&mut self, fid: u32, status: i32, reason: String) {
        let frame = self.end_frame(fid, status, reason);
        let pos = self.pos(fid);
        match self.run.fibers[pos].frames.last_mut() {
            Some(parent) => parent.child += 1,
            None => {
                debug_assert_eq!(frame.block, 0);
                self.finish_run();
            }
        }
    }

    /// Pops the top frame of `fid`, writing its end record. The root frame's status follows the
    /// run's status (spec §4.9).
    fn end_frame(&mut self, fid: u32, status: i32, reason: String) -> Frame {
        let pos = self.pos(fid);
        let frame = self.run.fibers[pos].frames.pop().expect("frame to end");
        let depth = self.run.fibers[pos].frames.len() as u32;
        self.cancel_forks(fid, depth);
        if frame.is_base() {
            return frame;
        }
        let (status, reason) = if frame.block == 0 {
            let status = match self.run.run_status {
                code::STOPPED => block_code::STOP,
                code::FAILED => block_code::END_ERROR,
                _ => block_code::END,
            };
            (status, self.run.end_reason.clone().unwrap_or_default())
        } else {
            (status, reason)
        };
        let name = &self.flow.block(frame.block).name;
        let outputs = (status == block_code::END)
            .then(|| self.run.blocks.get(name))
            .flatten()
            .map(|v| value::to_json_truncated(v, RECORD_VALUE_BYTES_MAX));
        self.out.records.push(Record::BlockEnded {
            seq: frame.seq,
            block: frame.block,
            status,
            reason: crate::engine::cx::truncate(reason, LOG_LINE_BYTES_MAX),
            outputs,
        });
        frame
    }

    fn finish_run(&mut self) {
        let (code, default_reason, manual_end) = match self.run.run_status {
            code::STOPPED => (code::STOPPED, "stopped", false),
            code::FAILED => (code::FAILED, "failed", false),
            code::MANUAL_END => (code::FINISHED, "manual end", true),
            _ => (code::FINISHED, "[RootBp]end", false),
        };
        let reason = self
            .run
            .end_reason
            .clone()
            .unwrap_or_else(|| default_reason.to_string());
        self.run.fibers.clear();
        self.run.skip_target = None;
        self.run.paused = false;
        self.run.ended = Some(Ended {
            code,
            reason,
            manual_end,
        });
    }

    fn advance(&mut self, fid: u32) {
        let pos = self.pos(fid);
        self.run.fibers[pos].frames.last_mut().expect("frame").child += 1;
    }

    // ----- parallel fibers ----------------------------------------------------------------

    fn fork(&mut self, fid: u32, fork: Fork) {
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
    fn fiber_done(&mut self, fid: u32) {
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
    fn forks_above(&self, fid: u32, depth: u32) -> Vec<u32> {
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
    fn cancel_forks(&mut self, fid: u32, depth: u32) {
        for id in self.forks_above(fid, depth) {
            self.cancel_fiber(id, block_code::STOP, "cancelled: its parallel block ended");
        }
    }

    fn cancel_fiber(&mut self, fid: u32, status: i32, reason: &str) {
        let Some(pos) = self.run.fiber_pos(fid) else {
            return;
        };
        let mut fiber = self.run.fibers.remove(pos);
        while let Some(frame) = fiber.frames.pop() {
            if let Some((token, _)) = frame.wait {
                self.out.cancelled.push(token);
            }
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
    fn stop_other_branches(&mut self, fid: u32) {
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

    fn is_fork_of(&self, id: u32, ancestor: u32) -> bool {
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

    // ----- outcomes -----------------------------------------------------------------------

    fn raise(&mut self, fid: u32, raise: Raise) {
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

    fn raise_break(&mut self, fid: u32) {
        self.end_frame(fid, block_code::END, String::new());
        loop {
            let pos = self.pos(fid);
            let fiber = &self.run.fibers[pos];
            let top = fiber.frames.last().expect("frame below a break");
            if top.is_base() {
                // A break cannot leave a parallel branch: it fails the parallel block (§3.2).
                let (parent, _) = fiber.parent.expect("base frames belong to forked fibers");
                self.cancel_fiber(fid, block_code::END, "break");
                let message = "BreakBp outside a loop ended a parallel branch".to_string();
                return self.raise(parent, Raise::Failure(message));
            }
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

    fn raise_failure(&mut self, fid: u32, raised: Raised) {
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

    /// The nearest `TryCatchBp` frame above the raiser (excluded), crossing fork points.
    fn find_catcher(&self, fid: u32) -> Option<(u32, u32)> {
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

    fn catches(&self, frame: &Frame) -> bool {
        let behaviour = self.behaviour(frame.block);
        behaviour.catches_failures() && frame.phase == crate::blocks::TRY_PHASE
    }

    /// Unwinds from the raiser up to (not including) the catcher frame: blocks on the failing
    /// path end 1004, other branches inside the catcher are cancelled (1001).
    fn unwind_to(&mut self, fid: u32, cfid: u32, cdepth: u32, reason: &str) {
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
        let mut first = fid == cfid;
        loop {
            let pos = self.pos(cfid);
            if self.run.fibers[pos].frames.len() as u32 <= cdepth + 1 {
                break;
            }
            let why = if first { reason } else { "failed below" };
            first = false;
            self.end_frame(cfid, block_code::END_ERROR, why.to_string());
        }
        let pos = self.pos(cfid);
        let fiber = &mut self.run.fibers[pos];
        fiber.state = FiberState::Ready;
        let top = fiber.frames.last_mut().expect("catcher frame");
        top.mode = Mode::Serial;
        top.pending = 0;
    }

    fn outcome(&mut self) -> Outcome {
        if let Some(ended) = &self.run.ended {
            return Outcome::Ended(ended.clone());
        }
        if let Some(reason) = &self.run.interrupted {
            let reason = reason.clone();
            self.cancel_all_waits();
            return Outcome::Interrupted { reason };
        }
        if self.run.paused {
            self.cancel_all_waits();
            return Outcome::Paused;
        }
        if self.run.fibers.iter().any(|f| f.state == FiberState::Ready) {
            Outcome::More
        } else {
            Outcome::Waiting
        }
    }

    fn cancel_all_waits(&mut self) {
        for fiber in &self.run.fibers {
            if let Some((token, _)) = fiber.frames.last().and_then(|f| f.wait) {
                self.out.cancelled.push(token);
            }
        }
        self.out.effects.clear();
    }

    // ----- helpers ------------------------------------------------------------------------

    fn pos(&self, fid: u32) -> usize {
        self.run.fiber_pos(fid).expect("fiber exists")
    }

    fn alloc_seq(&mut self) -> u64 {
        let seq = self.run.next_seq;
        self.run.next_seq += 1;
        seq
    }

    fn alloc_token(&mut self) -> u64 {
        let token = self.run.next_token;
        self.run.next_token += 1;
        token
    }

    fn has_named_descendant(&self, block: BlockIdx, name: &str) -> bool {
        self.flow.blocks.iter().enumerate().any(|(i, b)| {
            b.name.eq_ignore_ascii_case(name) && self.flow.is_descendant(i as u32, block)
        })
    }

    /// Where a block record sits: the fiber key plus the iteration of every enclosing loop.
    fn iteration_key(&self, fid: u32) -> String {
        let fiber = &self.run.fibers[self.pos(fid)];
        let mut key = fiber.key.clone();
        for frame in &fiber.frames {
            if frame.index > 0 {
                key.push_str(&self.flow.block(frame.block).name);
                key.push('#');
                key.push_str(&frame.index.to_string());
                key.push('/');
            }
        }
        key
    }
}
