//! Task control blocks (spec §3.5): sub-tasks (`SubTask::<definitionId>`), stopping, pausing
//! and resuming other runs, record lookups, `SetOutOrderNoBp`, `MarkTaskStartBp` and
//! `MarkTaskEndBp`. Whatever reads or changes another run is a [`TaskOp`] the scheduler runs
//! (a wait); what touches only the block's own run happens in the step.

use super::{done_with, nonblank, Behaviour, Family, KindSpec, ParamSpec, ParamType as T};
use crate::engine::{code, Action, Cx, Raise, Wait};
use crate::integrations::{IoOp, IoReply, TaskAction, TaskOp};
use crate::value::{Map, Value};
use sha2::{Digest, Sha256};

/// The parameters of `SubTask::<id>` that are not passed to the child.
const SUB_TASK_OWN_PARAMS: [&str; 2] = ["taskRecordId", "ifAsync"];

fn wait(op: TaskOp) -> Result<Action, Raise> {
    Ok(Action::Wait(Wait::Io(Box::new(IoOp::Task(op)))))
}

/// The value the scheduler answered, or the block's failure.
fn answer(cx: &mut Cx<'_>) -> Result<Value, Raise> {
    match cx.take_io_reply() {
        Some(IoReply::Value(v)) => Ok(v),
        Some(IoReply::Failed(reason) | IoReply::Transport(reason)) => Err(Raise::Failure(reason)),
        None => Err(Raise::Failure("no answer to the task operation".into())),
    }
}

fn required(cx: &Cx<'_>, name: &str) -> Result<String, Raise> {
    nonblank(cx, name).ok_or_else(|| Raise::Failure(format!("parameter {name} is empty")))
}

/// `child-<uuid>` derived from the run and the block record, so that a step issued again after
/// a crash names the same child (RDS draws a random UUID).
pub fn derived_child_id(run: &str, seq: u64) -> String {
    let digest = Sha256::digest(format!("{run}\n{seq}").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "child-{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

// ----- SubTask::<definitionId> -----------------------------------------------------------------

#[derive(Debug)]
struct SubTask;

impl Behaviour for SubTask {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let def_id = cx
            .block()
            .block_type
            .strip_prefix("SubTask::")
            .unwrap_or_default()
            .to_string();
        let child_id = match nonblank(cx, "taskRecordId") {
            Some(id) => id,
            None => derived_child_id(cx.run_id(), cx.seq()),
        };
        if child_id == cx.run_id() {
            return Err(Raise::Failure(format!(
                "taskRecordId {child_id} is this task's own id"
            )));
        }
        let inputs: Map = cx
            .params()
            .iter()
            .filter(|(k, _)| !SUB_TASK_OWN_PARAMS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let wait_for_it = !cx.bool_param("ifAsync").unwrap_or(false);
        wait(TaskOp::Child {
            def_id,
            child_id,
            inputs,
            wait: wait_for_it,
            seq: cx.seq(),
        })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let v = answer(cx)?;
        let Some(status) = v.get("status").and_then(Value::as_i64) else {
            return Ok(Action::Done); // started, not awaited
        };
        let child = v.get("id").and_then(Value::as_str).unwrap_or_default();
        match status as i32 {
            c @ (code::STOPPED | code::FAILED) => {
                // SubTaskFailure (spec §3.2): the block ends 1003, the run ends with the
                // child's status.
                let name = &cx.block().name;
                let reason = format!("[SubTask]{name}: sub Task Error: {child} ended {c}");
                cx.end_run_with(c, reason);
                Ok(Action::Done)
            }
            _ => Ok(Action::Done),
        }
    }
}

/// `SubTask::<definitionId>` (any other parameter is an input of the child).
pub static SUB_TASK: KindSpec = KindSpec {
    name: "SubTask",
    family: Family::TaskControl,
    params: &[
        ParamSpec::opt("taskRecordId", T::Str),
        ParamSpec::opt("ifAsync", T::Bool),
    ],
    branches: &[],
    behaviour: Some(&SubTask),
};

// ----- StartTaskBp / StopTaskBp / SuspendTaskBp ------------------------------------------------

#[derive(Debug)]
struct Control {
    action: TaskAction,
    output: &'static str,
}

impl Behaviour for Control {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let target = required(cx, "taskRecordId")?;
        if self.action == TaskAction::Pause && target == cx.run_id() {
            // Pausing itself: the run pauses once this block is done (spec §3.5).
            cx.pause_run();
            return done_with(cx, self.output, Value::Bool(true));
        }
        let action = self.action;
        wait(TaskOp::Control { target, action })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let v = answer(cx)?;
        done_with(cx, self.output, Value::Bool(v.as_bool() == Some(true)))
    }
}

const TARGET: &[ParamSpec] = &[ParamSpec::req("taskRecordId", T::Str)];

/// `StartTaskBp`: resumes a paused run; `startSuccess`.
pub static START_TASK: KindSpec = KindSpec {
    name: "StartTaskBp",
    family: Family::TaskControl,
    params: TARGET,
    branches: &[],
    behaviour: Some(&Control {
        action: TaskAction::Resume,
        output: "startSuccess",
    }),
};

/// `StopTaskBp`: stops a run (this one too); `stopSuccess`.
pub static STOP_TASK: KindSpec = KindSpec {
    name: "StopTaskBp",
    family: Family::TaskControl,
    params: TARGET,
    branches: &[],
    behaviour: Some(&Control {
        action: TaskAction::Stop,
        output: "stopSuccess",
    }),
};

/// `SuspendTaskBp`: pauses a run (this one at its next boundary); `suspendSuccess`.
pub static SUSPEND_TASK: KindSpec = KindSpec {
    name: "SuspendTaskBp",
    family: Family::TaskControl,
    params: TARGET,
    branches: &[],
    behaviour: Some(&Control {
        action: TaskAction::Pause,
        output: "suspendSuccess",
    }),
};

// ----- record lookups --------------------------------------------------------------------------

#[derive(Debug)]
struct GetRecord;

impl Behaviour for GetRecord {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match nonblank(cx, "taskRecordId") {
            Some(target) => wait(TaskOp::Record { target }),
            None => done_with(cx, "taskRecord", Value::String(String::new())),
        }
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let record = match answer(cx)? {
            Value::Null => Value::String(String::new()),
            found => found,
        };
        done_with(cx, "taskRecord", record)
    }
}

/// `GetTaskRecordBp`: `taskRecord` (the record in RDS's shape, "" when not found).
pub static GET_TASK_RECORD: KindSpec = KindSpec {
    name: "GetTaskRecordBp",
    family: Family::TaskControl,
    params: &[ParamSpec::opt("taskRecordId", T::Str)],
    branches: &[],
    behaviour: Some(&GetRecord),
};

#[derive(Debug)]
struct Exists;

impl Behaviour for Exists {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match nonblank(cx, "taskRecordId") {
            Some(target) => wait(TaskOp::Exists { target }),
            None => Ok(Action::Done), // RDS: nothing, no output
        }
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let v = answer(cx)?;
        done_with(
            cx,
            "taskRecordIdIsExist",
            Value::Bool(v.as_bool() == Some(true)),
        )
    }
}

/// `CheckTaskRecordIdIsExistBp`: `taskRecordIdIsExist`.
pub static CHECK_TASK_RECORD_ID: KindSpec = KindSpec {
    name: "CheckTaskRecordIdIsExistBp",
    family: Family::TaskControl,
    params: &[ParamSpec::opt("taskRecordId", T::Str)],
    branches: &[],
    behaviour: Some(&Exists),
};

#[derive(Debug)]
struct ByOutOrder;

impl Behaviour for ByOutOrder {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match cx.str_param("outOrderId") {
            Some(out_order) => wait(TaskOp::ByOutOrder { out_order }),
            // RDS queries `= NULL`: nothing matches.
            None => done_with(cx, "taskRecordIdList", Value::Array(Vec::new())),
        }
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let v = answer(cx)?;
        done_with(cx, "taskRecordIdList", v)
    }
}

/// `GetTaskRecordByOutOrderIdBp`: `taskRecordIdList`, oldest first.
pub static GET_TASK_RECORD_BY_OUT_ORDER: KindSpec = KindSpec {
    name: "GetTaskRecordByOutOrderIdBp",
    family: Family::TaskControl,
    params: &[ParamSpec::opt("outOrderId", T::Str)],
    branches: &[],
    behaviour: Some(&ByOutOrder),
};

#[derive(Debug)]
struct InputParam;

impl Behaviour for InputParam {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let target = required(cx, "taskRecordId")?;
        let key = required(cx, "inputParamsKey")?;
        wait(TaskOp::InputParam { target, key })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let v = answer(cx)?;
        if v.get("found") != Some(&Value::Bool(true)) {
            return Ok(Action::Done); // no entry of that name: no output
        }
        let value = match v.get("value") {
            None | Some(Value::Null) => Value::String(String::new()),
            Some(found) => found.clone(),
        };
        done_with(cx, "inputParamValue", value)
    }
}

/// `GetTaskInputParamsByTaskRecordAndKeyBp`: `inputParamValue`.
pub static GET_TASK_INPUT_PARAM: KindSpec = KindSpec {
    name: "GetTaskInputParamsByTaskRecordAndKeyBp",
    family: Family::TaskControl,
    params: &[
        ParamSpec::req("taskRecordId", T::Str),
        ParamSpec::req("inputParamsKey", T::Str),
    ],
    branches: &[],
    behaviour: Some(&InputParam),
};

// ----- own record ------------------------------------------------------------------------------

#[derive(Debug)]
struct SetOutOrderNo;

impl Behaviour for SetOutOrderNo {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let no = required(cx, "orderNo")?;
        cx.set_out_order_no(no);
        Ok(Action::Done)
    }
}

/// `SetOutOrderNoBp`: the run's `outOrderNo`, saved with the step.
pub static SET_OUT_ORDER_NO: KindSpec = KindSpec {
    name: "SetOutOrderNoBp",
    family: Family::TaskControl,
    params: &[ParamSpec::req("orderNo", T::Str)],
    branches: &[],
    behaviour: Some(&SetOutOrderNo),
};

#[derive(Debug)]
struct MarkStart;

impl Behaviour for MarkStart {
    fn start(&self, _cx: &mut Cx<'_>) -> Result<Action, Raise> {
        // RDS sets `exec_ok` true, which it already is whenever a block runs.
        Ok(Action::Done)
    }
}

/// `MarkTaskStartBp`: no effect (spec §3.5).
pub static MARK_TASK_START: KindSpec = KindSpec {
    name: "MarkTaskStartBp",
    family: Family::TaskControl,
    params: &[],
    branches: &[],
    behaviour: Some(&MarkStart),
};

#[derive(Debug)]
struct MarkEnd;

impl Behaviour for MarkEnd {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        cx.end_run_normally();
        Ok(Action::Done)
    }
}

/// `MarkTaskEndBp`: as `ReturnBp` (spec §8 Q9).
pub static MARK_TASK_END: KindSpec = KindSpec {
    name: "MarkTaskEndBp",
    family: Family::TaskControl,
    params: &[],
    branches: &[],
    behaviour: Some(&MarkEnd),
};
