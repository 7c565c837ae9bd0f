//! The step function: applies one event to a run and drives its ready fibers until each waits,
//! parks or the step budget (`STEP_OPS_MAX`) runs out. Implements the generic block algorithm of
//! spec §3.1 and the outcome classes of §3.2 without recursion over the block tree; forks and
//! joins are in `fork.rs`, raising and unwinding in `unwind.rs`.

use super::cx::{evaluate_params, Cx, Request};
use super::state::{Fiber, FiberState, Frame, Mode, RunState};
use super::{
    block_code, code, Action, Effect, EffectKind, Ended, Event, Host, Raise, Raised, Record, Reply,
    StepOutput, Wait,
};
use crate::blocks::Behaviour;
use crate::flow::model::{BlockIdx, Branch, Flow};
use crate::limits::{
    LOG_LINE_BYTES_MAX, RECORD_VALUE_BYTES_MAX, STEP_OPS_MAX, STEP_RECORD_BYTES_MAX,
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

/// One step in progress: the run, its flow, the host and what the step has produced so far.
pub(super) struct Engine<'a> {
    pub(super) flow: &'a Flow,
    pub(super) run: &'a mut RunState,
    pub(super) host: &'a mut dyn Host,
    pub(super) out: StepOutput,
    pub(super) budget: usize,
    /// Bytes of the records produced so far (bounded by `STEP_RECORD_BYTES_MAX`).
    pub(super) record_bytes: usize,
}

/// Which behaviour hook to call.
pub(super) enum Hook {
    Start(Map),
    BranchDone,
    Woke(Option<Reply>),
    Joined,
    Break,
    Caught(Raised),
}

impl Engine<'_> {
    // ----- events -------------------------------------------------------------------------

    pub(super) fn handle(&mut self, event: Event) {
        if self.run.ended.is_some() {
            return;
        }
        match event {
            Event::Start => self.start_root(),
            Event::Continue => {}
            Event::Woke { fiber, token } => self.woke(fiber, token, None),
            Event::Reply {
                fiber,
                token,
                reply,
            } => self.woke(fiber, token, Some(reply)),
            Event::Stop => self.terminate(code::STOPPED, block_code::STOP, "stopped"),
            Event::ManualEnd => self.terminate(code::MANUAL_END, block_code::END, "manual end"),
            Event::Pause if self.unpausable_in_flight() => {
                // Everything else stops now; the request or call in flight finishes first.
                self.run.pause_pending = true;
                self.cancel_pausable_waits();
            }
            Event::Pause => self.run.paused = true,
            Event::Resume => {
                self.run.paused = false;
                self.run.pause_pending = false;
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

    pub(super) fn start_root(&mut self) {
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

    pub(super) fn woke(&mut self, fid: u32, token: u64, reply: Option<Reply>) {
        let Some(pos) = self.run.fiber_pos(fid) else {
            return;
        };
        let fiber = &mut self.run.fibers[pos];
        let Some(top) = fiber.frames.last_mut() else {
            return;
        };
        if top.mode != Mode::Waiting || top.wait.as_ref().map(|w| w.0) != Some(token) {
            return; // stale: the wait was cancelled or already answered
        }
        top.wait = None;
        top.mode = Mode::Serial;
        fiber.state = FiberState::Ready;
        if top.is_base() {
            return; // a staggered parallel-repeat copy may start now
        }
        let result = self.call(fid, Hook::Woke(reply));
        self.apply(fid, result);
    }

    /// Stop or manual end: later blocks are skipped, waits end at once, the run unwinds.
    pub(super) fn terminate(&mut self, run_status: i32, block_status: i32, reason: &str) {
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
    pub(super) fn abort_waits(&mut self, status: i32, reason: &str) {
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

    pub(super) fn reissue_waits(&mut self) {
        for fiber in &self.run.fibers {
            if fiber.state != FiberState::Waiting {
                continue;
            }
            if let Some((token, kind)) = fiber.frames.last().and_then(|f| f.wait.clone()) {
                self.out.effects.push(Effect {
                    fiber: fiber.id,
                    token,
                    kind,
                });
            }
        }
    }

    // ----- driving fibers -----------------------------------------------------------------

    pub(super) fn blocked(&self) -> bool {
        self.run.ended.is_some()
            || self.run.interrupted.is_some()
            || ((self.run.paused || self.run.pause_pending) && self.run.exec_ok)
    }

    pub(super) fn run_fibers(&mut self) {
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

    pub(super) fn run_fiber(&mut self, fid: u32) {
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
    pub(super) fn account(&mut self, before: usize) {
        let added: usize = self.out.records[before..].iter().map(Record::bytes).sum();
        self.record_bytes += added;
        if self.record_bytes > STEP_RECORD_BYTES_MAX {
            self.budget = 0;
        }
    }

    /// One engine operation on fiber `fid`: start its next child, or end its branch.
    pub(super) fn run_op(&mut self, fid: u32) {
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
    pub(super) fn enter(&mut self, fid: u32, child: BlockIdx) {
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

    pub(super) fn behaviour(&self, block: BlockIdx) -> &'static dyn Behaviour {
        self.flow
            .block(block)
            .kind
            .behaviour
            .expect("compile admits only runnable kinds")
    }

    pub(super) fn call(&mut self, fid: u32, hook: Hook) -> Result<Action, Raise> {
        let pos = self.pos(fid);
        let frame = self.run.fibers[pos].frames.len() - 1;
        let behaviour = self.behaviour(self.run.fibers[pos].frames[frame].block);
        let (params, reply, hook) = match hook {
            Hook::Start(params) => (params, None, None),
            Hook::Woke(reply) => (Map::new(), reply, Some(Hook::Woke(None))),
            other => (Map::new(), None, Some(other)),
        };
        let mut cx = Cx {
            flow: self.flow,
            run: self.run,
            out: &mut self.out,
            host: self.host,
            fiber: pos,
            frame,
            params,
            reply,
            requests: Vec::new(),
        };
        let result = match hook {
            None => behaviour.start(&mut cx),
            Some(Hook::BranchDone) => behaviour.branch_done(&mut cx),
            Some(Hook::Woke(_)) => behaviour.woke(&mut cx),
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

    pub(super) fn apply(&mut self, fid: u32, result: Result<Action, Raise>) {
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
            Ok(Action::Wait(Wait::Site(op))) => self.wait(fid, EffectKind::Site(op)),
            Ok(Action::Wait(Wait::Fleet(op))) => self.wait(fid, EffectKind::Fleet(op)),
            Ok(Action::Wait(Wait::Io(op))) => self.wait(fid, EffectKind::Io(op)),
            Ok(Action::Fork(fork)) => self.fork(fid, fork),
            Err(raise) => self.raise(fid, raise),
        }
    }

    pub(super) fn wait(&mut self, fid: u32, kind: EffectKind) {
        let token = self.alloc_token();
        let pos = self.pos(fid);
        let fiber = &mut self.run.fibers[pos];
        let top = fiber.frames.last_mut().expect("frame");
        top.mode = Mode::Waiting;
        top.wait = Some((token, kind.clone()));
        fiber.state = FiberState::Waiting;
        self.out.effects.push(Effect {
            fiber: fid,
            token,
            kind,
        });
    }

    /// Ends the top block of `fid` with `status` and moves its parent on to the next child.
    pub(super) fn finish_block(&mut self, fid: u32, status: i32, reason: String) {
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
    pub(super) fn end_frame(&mut self, fid: u32, status: i32, reason: String) -> Frame {
        let pos = self.pos(fid);
        let mut frame = self.run.fibers[pos].frames.pop().expect("frame to end");
        let depth = self.run.fibers[pos].frames.len() as u32;
        self.cancel_forks(fid, depth);
        self.close_stash(&mut frame);
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

    /// Ends the frames a `TryCatchBp` stashed when it caught a failure (they failed below it).
    pub(super) fn close_stash(&mut self, frame: &mut Frame) {
        for stashed in std::mem::take(&mut frame.stash).into_iter().rev() {
            self.out.records.push(Record::BlockEnded {
                seq: stashed.seq,
                block: stashed.block,
                status: block_code::END_ERROR,
                reason: "failed below".to_string(),
                outputs: None,
            });
        }
    }

    pub(super) fn finish_run(&mut self) {
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

    pub(super) fn advance(&mut self, fid: u32) {
        let pos = self.pos(fid);
        self.run.fibers[pos].frames.last_mut().expect("frame").child += 1;
    }

    // ----- helpers ------------------------------------------------------------------------

    pub(super) fn pos(&self, fid: u32) -> usize {
        self.run.fiber_pos(fid).expect("fiber exists")
    }

    pub(super) fn alloc_seq(&mut self) -> u64 {
        let seq = self.run.next_seq;
        self.run.next_seq += 1;
        seq
    }

    pub(super) fn alloc_token(&mut self) -> u64 {
        let token = self.run.next_token;
        self.run.next_token += 1;
        token
    }

    pub(super) fn has_named_descendant(&self, block: BlockIdx, name: &str) -> bool {
        self.flow.blocks.iter().enumerate().any(|(i, b)| {
            b.name.eq_ignore_ascii_case(name) && self.flow.is_descendant(i as u32, block)
        })
    }

    /// Where a block record sits: the fiber key plus the iteration of every enclosing loop.
    pub(super) fn iteration_key(&self, fid: u32) -> String {
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
