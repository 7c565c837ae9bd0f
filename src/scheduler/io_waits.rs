//! The driver's side of task-control and integration operations ([`IoOp`]): each is one future
//! in the driver's [`super::op_waits::OpWaits`].
//!
//! Sub-tasks (spec §3.5, decisions §8 Q8): the child is admitted like any task (committed
//! first, idempotent on its id, so a parent that asks again after a crash attaches to the
//! child it started), with the parent's id as `parentTaskRecordId`. A parent that waits for
//! its child is answered by the driver when the child's end is committed (no polling); while
//! it waits for nothing but children and sites it is parked (its run slot is free for the
//! child) and loaded again when the child ends. Stopping a parent stops the child it awaits.

use super::admission::request_hash;
use super::driver::{Completion, Driver};
use super::op_waits::{OpDone, OpEnd};
use super::{Command, Control, ControlError, Shared, SubmitError, SubmitRequest};
use crate::api::rds_query::record_json;
use crate::engine::Reply;
use crate::integrations::{IoOp, IoReply, ScriptCall, TaskAction, TaskOp};
use crate::limits::SCRIPT_BUSY_RETRY_MS;
use crate::limits::{
    MODBUS_RETRY_DELAY_MS, SUB_TASKS_LIVE_PER_RUN_MAX, SUB_TASK_DEPTH_MAX, TASK_CONTROL_RETRY_MS,
};
use crate::modbus::{ModbusAction, ModbusOp, ModbusValue, OutputShape};
use crate::script::{result_object, CallContext, ScriptError};
use crate::store::TaskRecord;
use serde_json::{json, Value};
use tokio::sync::oneshot;

impl Driver {
    /// A future-driven wait ended: its answer goes to the run.
    pub(super) fn op_done(&mut self, done: OpDone) {
        if !self.op_waits.finish(&done) {
            return; // cancelled meanwhile
        }
        match done.end {
            OpEnd::Answer(reply) => self.deliver(&done.run, done.fiber, done.token, reply),
            OpEnd::ChildRunning => self.park_if_only_sites(&done.run),
            OpEnd::Cancelled => {}
        }
    }

    /// Starts the wait `token` of `fiber` of run `id` for `op` (its step is committed).
    pub(super) fn start_io_op(&mut self, id: &str, fiber: u32, token: u64, op: IoOp) {
        if let Some(child) = op.awaited_child() {
            self.op_waits
                .awaits_child(id, fiber, token, child.to_string());
        }
        let shared = self.shared.clone();
        let run = id.to_string();
        self.op_waits.start(id, fiber, token, async move {
            let reply = match op {
                IoOp::Task(op) => task_op(&shared, &run, op).await,
                IoOp::Http(op) => Some(crate::integrations::http::perform(&shared.http, &op).await),
                IoOp::Modbus { op, shape } => Some(modbus_op(&shared, &op, shape).await),
                IoOp::Script(call) => Some(script_call(&shared, &run, call).await),
            };
            match reply {
                Some(reply) => OpEnd::Answer(Reply::Io(reply)),
                None => OpEnd::ChildRunning,
            }
        });
    }

    /// Run `id` ended with record status `code`: the parents waiting for it get the answer;
    /// a parked `parent` is loaded again to take it.
    pub(super) fn run_ended(&mut self, id: &str, code: i32, parent: Option<String>) {
        for (run, fiber, token) in self.op_waits.take_waits_for_child(id) {
            let answer = IoReply::Value(json!({"id": id, "status": code}));
            self.deliver(&run, fiber, token, Reply::Io(answer));
        }
        if let Some(parent) = parent {
            if !self.slots.contains_key(&parent) {
                self.sites.wake(parent);
            }
        }
    }

    /// Stops sub-task `child` because the parent waiting for it was stopped (§8 Q8).
    pub(super) fn stop_child(&mut self, child: String) {
        let (tx, rx) = oneshot::channel();
        self.control(child.clone(), Control::Stop, tx);
        self.inflight.push(Box::pin(async move {
            match rx.await {
                Ok(Ok(_)) | Ok(Err(ControlError::IllegalState { .. })) => {}
                Ok(Err(e)) => log::warn!("sub-task {child}: not stopped with its parent: {e}"),
                Err(_) => log::warn!("sub-task {child}: not stopped with its parent"),
            }
            Completion::Done
        }));
    }
}

/// A Modbus read or write, once, or a wait, read every `MODBUS_RETRY_DELAY_MS` here until the
/// value matches. A transport error ends either: the block marks its record 1007 and asks
/// again after the retry delay (spec §3.10).
async fn modbus_op(shared: &Shared, op: &ModbusOp, shape: OutputShape) -> IoReply {
    let result = match op.action {
        // The block marks itself 1007 on a transport error and asks again after the delay.
        ModbusAction::Wait { .. } => shared
            .modbus
            .wait_or_fail(op, MODBUS_RETRY_DELAY_MS)
            .await
            .map(|()| ModbusValue::Written),
        _ => shared.modbus.execute(op).await,
    };
    match result {
        Ok(value) => IoReply::Value(crate::modbus::output(shape, &value)),
        Err(e) if e.is_transport() => IoReply::Transport(format!("{}: {e}", op.target)),
        Err(e) => IoReply::Failed(format!("{}: {e}", op.target)),
    }
}

/// A script call with RDS's argument (spec §3.4); the answer is the members of the returned
/// `result` object, or null without one. A full call queue is waited out (a retry every
/// `SCRIPT_BUSY_RETRY_MS`, inside the block's cancellable wait).
async fn script_call(shared: &Shared, run: &str, call: ScriptCall) -> IoReply {
    let Some(pool) = shared.scripts.get() else {
        return failed("scripts are not available here (no script runtime was started)");
    };
    let rec = match record(shared, run).await {
        Ok(Some(rec)) => rec,
        Ok(None) => return failed(format!("task record {run} is gone")),
        Err(reply) => return reply,
    };
    let arg = json!({"eventData": call.event_data, "taskId": rec.def_id,
        "taskRecord": record_json(&rec), "blockVo": call.block});
    let ctx = CallContext {
        task_id: rec.def_id.clone(),
        record_id: run.to_string(),
        block_id: call.block["blockName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    let returned = loop {
        match pool
            .call(&call.function, arg.to_string(), ctx.clone())
            .await
        {
            Err(ScriptError::Busy { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(SCRIPT_BUSY_RETRY_MS)).await
            }
            other => break other,
        }
    };
    match returned.and_then(|v| result_object(&v)) {
        Ok(Some(members)) => IoReply::Value(Value::Object(members)),
        Ok(None) => IoReply::Value(Value::Null),
        Err(ScriptError::NotFound(name)) if call.missing_ok => {
            log::warn!("run {run}: no script function {name}: the event goes out, nothing merged");
            IoReply::Value(Value::Null)
        }
        Err(e) => failed(format!("{}: {e}", call.function)),
    }
}

fn failed(reason: impl Into<String>) -> IoReply {
    IoReply::Failed(reason.into())
}

async fn record(shared: &Shared, id: &str) -> Result<Option<TaskRecord>, IoReply> {
    let id = id.to_string();
    shared
        .store
        .read(move |rx| rx.task(&id))
        .await
        .map_err(|e| failed(format!("store: {e}")))
}

/// Runs one task-control operation of run `run`; `None` for a sub-task that is admitted and
/// runs on (the driver answers when it ends).
async fn task_op(shared: &Shared, run: &str, op: TaskOp) -> Option<IoReply> {
    let result = match op {
        TaskOp::Child {
            def_id,
            child_id,
            inputs,
            wait,
            seq,
        } => {
            let child = Child {
                def_id,
                id: child_id,
                inputs,
                origin: format!("{run}/{seq}"),
            };
            start_child(shared, run, child, wait).await
        }
        TaskOp::Control { target, action } => control(shared, target, action).await.map(Some),
        TaskOp::Record { target } => record(shared, &target)
            .await
            .map(|r| Some(r.map_or(Value::Null, |r| record_json(&r)))),
        TaskOp::Exists { target } => record(shared, &target)
            .await
            .map(|r| Some(Value::Bool(r.is_some()))),
        TaskOp::ByOutOrder { out_order } => shared
            .store
            .read(move |rx| rx.tasks_by_out_order_no(&out_order))
            .await
            .map(|ids| Some(json!(ids)))
            .map_err(|e| failed(format!("store: {e}"))),
        TaskOp::InputParam { target, key } => match record(shared, &target).await {
            Ok(Some(r)) => Ok(Some(input_param(&r.input_params, &key))),
            Ok(None) => Err(failed(format!("no task record {target}"))),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(Some(v)) => Some(IoReply::Value(v)),
        Ok(None) => None,
        Err(reply) => Some(reply),
    }
}

/// The stored `inputParams` entry named `key` (spec §3.5): `{found, value}`.
fn input_param(stored: &str, key: &str) -> Value {
    let entries: Value = serde_json::from_str(stored).unwrap_or(Value::Null);
    let entry = entries
        .as_array()
        .and_then(|list| list.iter().find(|e| e.get("name") == Some(&json!(key))));
    match entry {
        Some(e) => json!({"found": true, "value": e.get("defaultValue").cloned()}),
        None => json!({"found": false}),
    }
}

/// A sub-task to start.
struct Child {
    def_id: String,
    id: String,
    inputs: serde_json::Map<String, Value>,
    /// `<parent>/<block record>`: which block asks.
    origin: String,
}

async fn start_child(
    shared: &Shared,
    run: &str,
    child: Child,
    wait: bool,
) -> Result<Option<Value>, IoReply> {
    let Child {
        def_id,
        id: child_id,
        inputs,
        origin,
    } = child;
    let parent = record(shared, run)
        .await?
        .ok_or_else(|| failed(format!("task record {run} is gone")))?;
    let taken = || {
        failed(format!(
            "taskRecordId {child_id} is taken by another task record"
        ))
    };
    let ours = request_hash(&def_id, &inputs, 1, Some(&origin));
    match record(shared, &child_id).await? {
        // This block started it already (asked again after a restart): attach, whatever
        // became of its definition since.
        Some(known) if known.request_hash.as_deref() == Some(ours.as_str()) => {}
        Some(_) => return Err(taken()),
        None => {
            check_bounds(shared, &parent).await?;
            let req = SubmitRequest {
                def_id: Some(def_id.clone()),
                inputs,
                priority: Some(1),
                task_id: Some(child_id.clone()),
                parent_id: Some(run.to_string()),
                root_id: Some(parent.root_id.clone().unwrap_or_else(|| run.to_string())),
                origin: Some(origin),
                ..SubmitRequest::default()
            };
            match super::admission::submit(shared, req).await {
                Ok(_) => {}
                Err(SubmitError::UnknownDefinition(_)) => {
                    return Err(failed(format!("subTaskNo: no task definition {def_id}")))
                }
                Err(SubmitError::IdConflict(_)) => return Err(taken()),
                Err(e) => return Err(failed(format!("sub-task {child_id} not started: {e}"))),
            }
        }
    }
    if !wait {
        return Ok(Some(json!({"id": child_id})));
    }
    // Already over (asked again after a restart)? Otherwise the driver answers when the
    // child's end is committed.
    match record(shared, &child_id).await? {
        Some(r) if r.status.is_terminal() => Ok(Some(json!({"id": child_id, "status": r.code}))),
        Some(_) => Ok(None),
        None => Err(failed(format!("sub-task {child_id} is gone"))),
    }
}

/// A new child of `parent` would stay within `SUB_TASK_DEPTH_MAX` and
/// `SUB_TASKS_LIVE_PER_RUN_MAX`.
async fn check_bounds(shared: &Shared, parent: &TaskRecord) -> Result<(), IoReply> {
    let mut depth = 1;
    let mut above = parent.parent_id.clone();
    while let Some(id) = above {
        depth += 1;
        if depth > SUB_TASK_DEPTH_MAX {
            return Err(failed(format!(
                "sub-task would be nested {depth} levels deep, over SUB_TASK_DEPTH_MAX \
                 ({SUB_TASK_DEPTH_MAX})"
            )));
        }
        above = record(shared, &id).await?.and_then(|r| r.parent_id);
    }
    let id = parent.id.clone();
    let live = shared
        .store
        .read(move |rx| rx.live_children(&id))
        .await
        .map_err(|e| failed(format!("store: {e}")))?;
    if live >= SUB_TASKS_LIVE_PER_RUN_MAX {
        return Err(failed(format!(
            "{live} sub-tasks of this task are running: SUB_TASKS_LIVE_PER_RUN_MAX \
             ({SUB_TASKS_LIVE_PER_RUN_MAX})"
        )));
    }
    Ok(())
}

/// Stop, pause or resume another run through the driver, as an operator would; `true` when
/// it took effect, `false` when the run does not exist or its state does not allow it.
async fn control(shared: &Shared, target: String, action: TaskAction) -> Result<Value, IoReply> {
    let action = match action {
        TaskAction::Stop => Control::Stop,
        TaskAction::Pause => Control::Pause,
        TaskAction::Resume => Control::Resume,
    };
    loop {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::Control {
            id: target.clone(),
            action,
            reply: tx,
        };
        if shared.commands.send(cmd).await.is_err() {
            return Err(failed("the scheduler is shutting down"));
        }
        return match rx.await {
            Ok(Ok(_)) => Ok(Value::Bool(true)),
            Ok(Err(ControlError::NotFound(_) | ControlError::IllegalState { .. })) => {
                Ok(Value::Bool(false))
            }
            // A bound of the driver (e.g. CONTROL_LOADS_MAX): ask again shortly, as an
            // operator would; the block's wait stays cancellable meanwhile.
            Ok(Err(ControlError::Busy(_))) => {
                tokio::time::sleep(std::time::Duration::from_millis(TASK_CONTROL_RETRY_MS)).await;
                continue;
            }
            Ok(Err(e)) => Err(failed(format!("task {target}: {e}"))),
            Err(_) => Err(failed("the scheduler is shutting down")),
        };
    }
}
