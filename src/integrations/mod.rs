//! Operations a block hands to the scheduler that are neither site nor fleet operations: task
//! control and sub-tasks (spec §3.5), and the outbound integrations (HTTP §3.9). A block waits
//! with [`crate::engine::Wait::Io`]; the scheduler runs the [`IoOp`] in the waiting fiber's own
//! cancellable future and answers with an [`IoReply`]. Ops are plain data: they are part of a
//! run's checkpoint, so a run restarted after a crash issues the same op again, and each op is
//! written to be safe to repeat (a sub-task is started under an id derived from the run and the
//! block record, so a repeat attaches to the child it already started).

pub mod http;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a waiting block asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IoOp {
    Task(TaskOp),
    /// An HTTP block's request (spec §3.9).
    Http(http::HttpOp),
    /// A Modbus block's read, write or wait (spec §3.10); the answer is the block's
    /// `modbusValue` output in `shape` (null for `None`).
    Modbus {
        op: crate::modbus::ModbusOp,
        shape: crate::modbus::OutputShape,
    },
    /// A script function call (spec §3.4): the answer is the `result` object's members (null
    /// when the function returned no `result`).
    Script(ScriptCall),
}

/// A `ScriptBp`, `ScriptVariablesBp` or `TriggerTaskEventBp` call: the function and the parts
/// of its argument the block knows (the scheduler adds the task record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptCall {
    pub function: String,
    /// `eventData`: the block's `functionArgs` / `eventData` as resolved.
    pub event_data: Value,
    /// `blockVo`: `{blockId, blockName, blockType, remark, maxTimeOut, errorMsg}`.
    pub block: Value,
    /// A function that does not exist answers null (logged) instead of failing the block
    /// (`TriggerTaskEventBp`: the event is still delivered, spec §3.5).
    #[serde(default)]
    pub missing_ok: bool,
}

/// A task-control operation (spec §3.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskOp {
    /// `SubTask::<def_id>`: start the child `child_id` (or attach to it when this run already
    /// started it) with `inputs`; with `wait`, answer only once the child has ended.
    Child {
        def_id: String,
        child_id: String,
        inputs: Map<String, Value>,
        wait: bool,
        /// The block record that asks: only the same one attaches to the child again.
        seq: u64,
    },
    /// `StopTaskBp`, `SuspendTaskBp`, `StartTaskBp` on another run.
    Control { target: String, action: TaskAction },
    /// `GetTaskRecordBp`: the record in RDS's shape, or null.
    Record { target: String },
    /// `CheckTaskRecordIdIsExistBp`.
    Exists { target: String },
    /// `GetTaskRecordByOutOrderIdBp`: ids, oldest first.
    ByOutOrder { out_order: String },
    /// `GetTaskInputParamsByTaskRecordAndKeyBp`: the stored input entry's value.
    InputParam { target: String, key: String },
}

/// The operator actions a block may take on another run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskAction {
    Stop,
    Pause,
    Resume,
}

/// The answer to an [`IoOp`].
#[derive(Debug, Clone, PartialEq)]
pub enum IoReply {
    /// Done; what it yielded (see each op).
    Value(Value),
    /// The op could not be done; the block fails with this reason.
    Failed(String),
    /// A transport error (unreachable device, timeout, exception answer): the block may try
    /// again later (RDS retries Modbus transport errors, spec §3.10).
    Transport(String),
}

impl IoOp {
    /// Whether a run whose waits are all of this kind may give up its slot meanwhile (it is
    /// woken when the awaited thing happens): a sub-task the parent waits for.
    pub fn parks(&self) -> bool {
        matches!(self, IoOp::Task(TaskOp::Child { wait: true, .. }))
    }

    /// Whether a pause may cut this op short. An HTTP request or a script call in flight cannot
    /// be suspended: a pause waits for it to answer (spec §4.6), then takes effect.
    pub fn pausable(&self) -> bool {
        !matches!(self, IoOp::Http(_) | IoOp::Script(_))
    }

    /// The child a waiting parent waits for.
    pub fn awaited_child(&self) -> Option<&str> {
        match self {
            IoOp::Task(TaskOp::Child {
                child_id,
                wait: true,
                ..
            }) => Some(child_id),
            _ => None,
        }
    }
}
