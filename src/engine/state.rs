//! The state of one run: context maps, run flags, fibers and their frame stacks. Everything here
//! is serialisable, because it is the checkpoint written after every step.

use super::{EffectKind, Ended};
use crate::flow::model::BlockIdx;
use crate::limits::{
    EXECUTION_PATH_LEN, OUTPUTS_BYTES_MAX, VARIABLES_BYTES_MAX, VARIABLES_ENTRIES_MAX,
};
use crate::value::{approx_bytes, Map, Value};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What a frame is doing between engine operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Running the children `[child, end)` of `branch` one after another.
    Serial,
    /// Waiting for the effect `token`.
    Waiting,
    /// Waiting for `pending` forked fibers.
    Joining,
}

/// One entry of a fiber's explicit stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Frame {
    pub block: BlockIdx,
    /// Block record number; 0 for the base frame of a forked fiber, which has no record.
    pub seq: u64,
    pub mode: Mode,
    pub branch: u8,
    pub child: u32,
    pub end: u32,
    /// Block-private state (loop phase, counters, saved values).
    pub phase: u8,
    pub index: i64,
    pub limit: i64,
    pub data: Value,
    /// The current wait: its token and kind, kept so it can be issued again after a pause or a
    /// restart.
    pub wait: Option<(u64, EffectKind)>,
    pub pending: u32,
    /// Frames a `TryCatchBp` took off the stack when it caught a failure, still open: put back
    /// if a retry resumes inside `try`, ended (1004) when the `TryCatchBp` ends. At most
    /// `BLOCK_DEPTH_MAX` frames.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stash: Vec<Frame>,
}

impl Frame {
    /// A frame for a block that is about to start.
    pub fn new(block: BlockIdx, seq: u64) -> Frame {
        Frame {
            block,
            seq,
            mode: Mode::Serial,
            branch: 0,
            child: 0,
            end: 0,
            phase: 0,
            index: 0,
            limit: 0,
            data: Value::Null,
            wait: None,
            pending: 0,
            stash: Vec::new(),
        }
    }

    /// Whether this is the record-less base frame of a forked fiber.
    pub fn is_base(&self) -> bool {
        self.seq == 0
    }
}

/// Scheduling state of a fiber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FiberState {
    Ready,
    Waiting,
    Joining,
}

/// One branch of execution: the root, a parallel branch or a parallel-repeat copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fiber {
    pub id: u32,
    /// The fiber that forked this one, and the index of the forking frame in its stack.
    pub parent: Option<(u32, u32)>,
    /// Identifies the fiber in block record iteration paths (`"2"`, `"2.1"`, ...).
    pub key: String,
    pub frames: Vec<Frame>,
    pub state: FiberState,
}

/// One run, as checkpointed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub id: String,
    pub periodic: bool,
    pub task_inputs: Map,
    pub blocks: Map,
    pub variables: Map,
    /// `task.*` other than variables: id, defLabel, createdOn, status, taskRecordId, priority.
    pub task: Map,
    /// May later blocks run? (RDS `taskStatus`.)
    pub exec_ok: bool,
    /// 1000 while running, else the terminal code being unwound to (RDS status cache).
    pub run_status: i32,
    pub skip_target: Option<String>,
    pub paused: bool,
    /// A pause asked while an HTTP request or a script call is in flight (spec §4.6): no
    /// fiber moves on, and the pause takes effect (`paused`) once those have answered. Kept in
    /// the checkpoint, so a restart meanwhile issues the call again and still pauses after.
    #[serde(default)]
    pub pause_pending: bool,
    /// Set while the run waits for an operator after a block failure (1006).
    pub interrupted: Option<String>,
    /// The reason a terminal unwind will record.
    pub end_reason: Option<String>,
    pub fibers: Vec<Fiber>,
    pub next_fiber: u32,
    pub next_seq: u64,
    pub next_token: u64,
    /// The last `EXECUTION_PATH_LEN` block names started.
    pub path: VecDeque<String>,
    pub state_description: Option<String>,
    pub ended: Option<Ended>,
    pub variables_bytes: usize,
    pub outputs_bytes: usize,
}

impl RunState {
    /// A run that has not started. `task` holds the `task.*` fields (§2.3) without `variables`.
    pub fn new(id: String, periodic: bool, task_inputs: Map, task: Map) -> RunState {
        RunState {
            id,
            periodic,
            task_inputs,
            blocks: Map::new(),
            variables: Map::new(),
            task,
            exec_ok: true,
            run_status: super::code::RUNNING,
            skip_target: None,
            paused: false,
            pause_pending: false,
            interrupted: None,
            end_reason: None,
            fibers: Vec::new(),
            next_fiber: 0,
            next_seq: 1,
            next_token: 1,
            path: VecDeque::with_capacity(EXECUTION_PATH_LEN),
            state_description: None,
            ended: None,
            variables_bytes: 0,
            outputs_bytes: 0,
        }
    }

    /// Sets `task.variables[name]`, refusing a value that would pass a variables bound.
    pub fn set_variable(&mut self, name: &str, value: Value) -> Result<(), String> {
        let new_bytes = approx_bytes(&value) + name.len();
        let old_bytes = self
            .variables
            .get(name)
            .map_or(0, |v| approx_bytes(v) + name.len());
        if old_bytes == 0 && self.variables.len() >= VARIABLES_ENTRIES_MAX {
            return Err(format!(
                "task variable '{name}' refused: VARIABLES_ENTRIES_MAX ({VARIABLES_ENTRIES_MAX}) \
                 variables already set"
            ));
        }
        let total = self.variables_bytes - old_bytes + new_bytes;
        if total > VARIABLES_BYTES_MAX {
            return Err(format!(
                "task variable '{name}' refused: variables would take {total} bytes, over \
                 VARIABLES_BYTES_MAX ({VARIABLES_BYTES_MAX})"
            ));
        }
        self.variables.insert(name.to_string(), value);
        self.variables_bytes = total;
        Ok(())
    }

    /// Replaces `blocks[name]`, refusing outputs that would pass the outputs bound.
    pub fn set_outputs(&mut self, name: &str, outputs: Map) -> Result<(), String> {
        let value = Value::Object(outputs);
        let new_bytes = approx_bytes(&value) + name.len();
        let old_bytes = self
            .blocks
            .get(name)
            .map_or(0, |v| approx_bytes(v) + name.len());
        let total = self.outputs_bytes - old_bytes + new_bytes;
        if total > OUTPUTS_BYTES_MAX {
            return Err(format!(
                "outputs of {name} refused: block outputs would take {total} bytes, over \
                 OUTPUTS_BYTES_MAX ({OUTPUTS_BYTES_MAX})"
            ));
        }
        self.blocks.insert(name.to_string(), value);
        self.outputs_bytes = total;
        Ok(())
    }

    /// Appends a block name to the execution path ring, evicting the oldest at capacity.
    pub fn push_path(&mut self, name: &str) {
        if self.path.len() == EXECUTION_PATH_LEN {
            self.path.pop_front();
        }
        self.path.push_back(name.to_string());
    }

    /// The fiber with id `id`, by position.
    pub fn fiber_pos(&self, id: u32) -> Option<usize> {
        self.fibers.iter().position(|f| f.id == id)
    }

    /// Records `run_status` also in `task.status`, which expressions read.
    pub fn set_run_status(&mut self, status: i32) {
        self.run_status = status;
        self.task.insert("status".into(), Value::from(status));
    }
}
