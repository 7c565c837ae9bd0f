//! The run engine: a pure state machine that advances one run of a [`Flow`] given an event and
//! returns what to persist and which waits to start. No IO, no clock reads, no tokio: time, ids
//! and the data cache come in through [`Host`], so runs are deterministic and checkpointable.
//!
//! A run has fibers (the root, each parallel branch, each parallel-repeat copy); each fiber has an
//! explicit frame stack capped at `BLOCK_DEPTH_MAX + 1`. No recursion over user trees.

mod cx;
mod fork;
#[cfg(test)]
mod sim_gen;
#[cfg(test)]
mod sim_regressions;
#[cfg(test)]
mod sim_tests;
mod state;
mod step;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_bounds;
mod unwind;

pub use cx::Cx;
pub use state::{Fiber, FiberState, Frame, Mode, RunState};
pub use step::step;

use crate::fleet::ops::{FleetOp, FleetReply};
use crate::flow::model::{BlockIdx, Branch};
use crate::integrations::{IoOp, IoReply};
use crate::sites::{SiteOp, SiteReply};

use serde::{Deserialize, Serialize};

/// Record status codes (spec §4.1).
pub mod code {
    /// vwed-only: accepted and committed, not started. Outside RDS's 1000–1008 range.
    pub const QUEUED: i32 = 1100;
    pub const RUNNING: i32 = 1000;
    pub const STOPPED: i32 = 1001;
    pub const PAUSED: i32 = 1002;
    pub const FINISHED: i32 = 1003;
    pub const FAILED: i32 = 1004;
    pub const INTERRUPTED: i32 = 1006;
    /// `run_status` during a manual end; the record stores 1003 with a marker.
    pub const MANUAL_END: i32 = 1007;
}

/// Block record status codes (spec §4.1).
pub mod block_code {
    pub const RUNNING: i32 = 1000;
    pub const STOP: i32 = 1001;
    pub const INTERRUPT: i32 = 1002;
    pub const END: i32 = 1003;
    pub const END_ERROR: i32 = 1004;
}

/// What a block asks the engine to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The block ends normally.
    Done,
    /// Run one branch's children serially, then call `branch_done`.
    RunBranch(Branch),
    /// Run branches as parallel fibers, then call `joined`.
    Fork(Fork),
    /// Wait for something outside the engine, then call `woke`.
    Wait(Wait),
}

/// Which fibers a fork starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Fork {
    /// One fiber per child block of the branch (`ParallelFlowBp`).
    EachChild(Branch),
    /// `copies` fibers each running the whole branch serially, the i-th starting after
    /// `i * stagger_ms` (`ParallelRepeatNBp`).
    Copies {
        branch: Branch,
        copies: u32,
        stagger_ms: i64,
    },
}

/// Something a block waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// A timer of this many milliseconds.
    Timer { ms: i64 },
    /// A site operation: the scheduler runs it in the store and answers with
    /// [`Event::Reply`], at once or when a site change lets it through.
    Site(Box<SiteOp>),
    /// A fleet operation: the scheduler runs it against the fleet and answers with
    /// [`Event::Reply`] once it has an answer.
    Fleet(Box<FleetOp>),
    /// A task-control or integration operation: the scheduler runs it and answers with
    /// [`Event::Reply`].
    Io(Box<IoOp>),
}

/// The answer to a [`Wait::Site`], [`Wait::Fleet`] or [`Wait::Io`].
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Site(SiteReply),
    Fleet(FleetReply),
    Io(IoReply),
}

/// How a block ends abnormally (spec §3.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Raise {
    /// BlockFailure: the run becomes `interrupted` (1006) unless caught; periodic runs fail.
    Failure(String),
    /// EndError: the run fails (1004) unless caught.
    EndError(String),
    /// `ThrowExceptionBp`: the run fails (1004) unless caught.
    Throw(String),
    /// `BreakBp`: ends the nearest `WhileBp`/`IterateListBp`.
    Break,
    /// A caught outcome raised again by `TryCatchBp`.
    Again(Raised),
}

/// The class of a failure outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Class {
    Failure,
    EndError,
    Throw,
}

/// A failure outcome with its `endedReason` text, as caught by `TryCatchBp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Raised {
    pub class: Class,
    pub reason: String,
}

/// What the scheduler tells a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// First step of a new run.
    Start,
    /// Keep going after a step that ran out of budget.
    Continue,
    /// The wait `token` of `fiber` completed.
    Woke { fiber: u32, token: u64 },
    /// The site operation `token` of `fiber` was answered (read by the block through
    /// [`Cx::take_site_reply`], [`Cx::take_fleet_reply`]).
    Reply {
        fiber: u32,
        token: u64,
        reply: Reply,
    },
    /// Stop the run (1001).
    Stop,
    /// End the run by hand (1003 with the manual-end marker).
    ManualEnd,
    /// Pause: fibers stop at their next boundary and waits are suspended.
    Pause,
    /// Resume a paused run: suspended waits are issued again.
    Resume,
    /// Retry an interrupted run: the failed block runs again.
    Retry,
    /// The run was loaded from a checkpoint after a restart: issue its waits again.
    Recover,
}

/// A wait the scheduler must start.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub fiber: u32,
    pub token: u64,
    pub kind: EffectKind,
}

/// The kinds of waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EffectKind {
    /// Wake at this wall-clock time (ms since the epoch).
    Timer { until_ms: i64 },
    /// Run this site operation; answered with [`Event::Reply`].
    Site(Box<SiteOp>),
    /// Run this fleet operation; answered with [`Event::Reply`].
    Fleet(Box<FleetOp>),
    /// Run this task-control or integration operation; answered with [`Event::Reply`].
    Io(Box<IoOp>),
}

impl EffectKind {
    /// A timer's deadline.
    pub fn until_ms(&self) -> Option<i64> {
        match self {
            EffectKind::Timer { until_ms } => Some(*until_ms),
            EffectKind::Site(_) | EffectKind::Fleet(_) | EffectKind::Io(_) => None,
        }
    }
}

/// Task log levels (RDS: "1" info, "2" stop, "3" error, "4" warn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info = 1,
    Stop = 2,
    Error = 3,
    Warn = 4,
}

/// Something to persist, produced by a step, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// `inputs` is the evaluated parameters as JSON, cut at `RECORD_VALUE_BYTES_MAX`.
    BlockStarted {
        seq: u64,
        block: BlockIdx,
        iteration: String,
        inputs: String,
    },
    /// `outputs` (normal ends only) is `blocks.<name>` as JSON, cut at `RECORD_VALUE_BYTES_MAX`.
    BlockEnded {
        seq: u64,
        block: BlockIdx,
        status: i32,
        reason: String,
        outputs: Option<String>,
    },
    BlockStatus {
        seq: u64,
        status: i32,
        reason: String,
    },
    Log {
        level: LogLevel,
        block: Option<BlockIdx>,
        message: String,
    },
    /// `task.variables` changed; persist the run's variables.
    VariablesChanged,
    /// `stateDescription` changed.
    StateDescription(String),
    /// `outOrderNo` set (`SetOutOrderNoBp`).
    OutOrderNo(String),
    /// `taskInputs` members set (`TriggerTaskEventBp`): a JSON object; the record's stored
    /// inputs follow for the declared names.
    TaskInputs(String),
    /// A `task-event` for `/api/events` and webhooks (`TriggerTaskEventBp`): its JSON payload.
    TaskEvent(String),
    CacheSet {
        key: String,
        value: String,
    },
    CacheDelete {
        key: String,
    },
    /// The run's priority changed (`CSelectAgvBp` sets it, spec §8 Q20).
    Priority(i64),
}

impl Record {
    /// Heap bytes the record holds (for the per-step bound `STEP_RECORD_BYTES_MAX`).
    pub fn bytes(&self) -> usize {
        let text = match self {
            Record::BlockStarted {
                iteration, inputs, ..
            } => iteration.len() + inputs.len(),
            Record::BlockEnded {
                reason, outputs, ..
            } => reason.len() + outputs.as_ref().map_or(0, String::len),
            Record::BlockStatus { reason, .. } => reason.len(),
            Record::Log { message, .. } => message.len(),
            Record::VariablesChanged => 0,
            Record::StateDescription(text)
            | Record::OutOrderNo(text)
            | Record::TaskInputs(text)
            | Record::TaskEvent(text) => text.len(),
            Record::CacheSet { key, value } => key.len() + value.len(),
            Record::CacheDelete { key } => key.len(),
            Record::Priority(_) => 0,
        };
        std::mem::size_of::<Record>() + text
    }
}

/// Where a run stands after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Fibers are ready but the step budget ran out: step again with [`Event::Continue`].
    More,
    /// Every live fiber waits for an effect.
    Waiting,
    /// Paused: no fiber runs until [`Event::Resume`]; outstanding waits are cancelled.
    Paused,
    /// A block failed (1006): nothing runs until retry, stop or manual end.
    Interrupted { reason: String },
    /// The run is over.
    Ended(Ended),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// `finished` (1003), `failed` (1004) or `stopped` (1001).
    pub code: i32,
    pub reason: String,
    pub manual_end: bool,
}

/// Everything one step produced.
#[derive(Debug, Default)]
pub struct StepOutput {
    pub records: Vec<Record>,
    pub effects: Vec<Effect>,
    /// Wait tokens that are no longer wanted (their timers can be dropped).
    pub cancelled: Vec<u64>,
    pub outcome: Option<Outcome>,
}

/// What the engine needs from the world, passed in so the engine stays pure.
pub trait Host {
    /// Wall-clock time, ms since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// `yyyy-MM-dd HH:mm:ss` in server local time.
    fn local_time(&self, ms: i64) -> String;
    /// A new random UUID v4, lowercase.
    fn uuid(&mut self) -> String;
    /// The data cache value for `key`.
    fn cache_get(&self, key: &str) -> Option<String>;
    /// Stores a cache value; `Err` names the limit that refused it.
    fn cache_set(&mut self, key: &str, value: &str) -> Result<(), String>;
    /// Removes a cache key; whether it existed.
    fn cache_delete(&mut self, key: &str) -> bool;
}
