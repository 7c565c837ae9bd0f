//! The context a block's behaviour works through: its evaluated parameters with the spec's
//! conversions, its frame's private state, the run's outputs, variables and log, and the host.

use super::state::{Frame, RunState};
use super::{Host, LogLevel, Raise, Record, StepOutput};
use crate::fleet::ops::FleetReply;
use crate::flow::expr::{Expr, Scope};
use crate::flow::model::{Block, Flow, KvPart, ParamSource};
use crate::limits::{
    BLOCK_INPUTS_BYTES_MAX, FRAME_DATA_BYTES_MAX, LOG_LINE_BYTES_MAX, STATE_DESCRIPTION_BYTES_MAX,
};
use crate::sites::SiteReply;
use crate::value::{self, Map, Value};

/// Requests a behaviour makes of the engine itself (beyond its own frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Request {
    /// `StopOtherBranch`: end the other branches of the nearest enclosing parallel block.
    StopOtherBranches,
}

/// A block's view of the run while the engine drives it.
pub struct Cx<'a> {
    pub(super) flow: &'a Flow,
    pub(super) run: &'a mut RunState,
    pub(super) out: &'a mut StepOutput,
    pub(super) host: &'a mut dyn Host,
    pub(super) fiber: usize,
    pub(super) frame: usize,
    pub(super) params: Map,
    /// The answer to the block's site operation (only during `woke` after a reply).
    pub(super) reply: Option<super::Reply>,
    pub(super) requests: Vec<Request>,
}

impl Cx<'_> {
    /// The block being driven.
    pub fn block(&self) -> &Block {
        let idx = self.run.fibers[self.fiber].frames[self.frame].block;
        self.flow.block(idx)
    }

    /// The block's frame: private state kept across steps and checkpoints.
    pub fn frame(&mut self) -> &mut Frame {
        &mut self.run.fibers[self.fiber].frames[self.frame]
    }

    /// Evaluated parameters (only during `start`); null values are absent.
    pub fn params(&self) -> &Map {
        &self.params
    }

    /// The answer to the site operation the block waited for (`None` after a timer or
    /// another kind of answer).
    pub fn take_site_reply(&mut self) -> Option<SiteReply> {
        match self.reply.take() {
            Some(super::Reply::Site(r)) => Some(r),
            _ => None,
        }
    }

    /// The answer to the fleet operation the block waited for (`None` after a timer or another
    /// kind of answer).
    pub fn take_fleet_reply(&mut self) -> Option<FleetReply> {
        match self.reply.take() {
            Some(super::Reply::Fleet(r)) => Some(r),
            _ => None,
        }
    }

    /// The answer to the task-control or integration operation the block waited for (`None`
    /// after a timer or another kind of answer).
    pub fn take_io_reply(&mut self) -> Option<crate::integrations::IoReply> {
        match self.reply.take() {
            Some(super::Reply::Io(r)) => Some(r),
            _ => None,
        }
    }

    /// This block's private data (what [`Cx::keep`] stored).
    pub fn own_data(&self) -> &Value {
        &self.run.fibers[self.fiber].frames[self.frame].data
    }

    /// This block's record number: unique in the run and kept across restarts, so ids derived
    /// from it (fleet orders and actions) name the same thing after a crash.
    pub fn seq(&self) -> u64 {
        self.run.fibers[self.fiber].frames[self.frame].seq
    }

    /// The private data of the nearest enclosing block of type `kind`: this fiber's frames
    /// below this block, then those of the fibers it was forked from.
    pub fn enclosing_data(&self, kind: &str) -> Option<&Value> {
        let mut fiber = self.fiber;
        let mut below = self.frame;
        loop {
            let f = &self.run.fibers[fiber];
            for frame in f.frames[..below].iter().rev() {
                if !frame.is_base() && self.flow.block(frame.block).kind.name == kind {
                    return Some(&frame.data);
                }
            }
            let (parent, at) = f.parent?;
            fiber = self.run.fiber_pos(parent)?;
            below = (at as usize + 1).min(self.run.fibers[fiber].frames.len());
        }
    }

    /// Marks this block's record with `status` without ending it (1007: a robot action failed
    /// and waits for an operator).
    pub fn mark_block(&mut self, status: i32, reason: String) {
        let seq = self.seq();
        self.out.records.push(Record::BlockStatus {
            seq,
            status,
            reason: truncate(reason, LOG_LINE_BYTES_MAX),
        });
    }

    /// The id of the run (a site lock's owner).
    pub fn run_id(&self) -> &str {
        &self.run.id
    }

    /// A parameter as resolved, `None` when null.
    pub fn any_param(&self, name: &str) -> Option<&Value> {
        self.params.get(name).filter(|v| !v.is_null())
    }

    /// A parameter's string form (spec §2.2 to_string).
    pub fn str_param(&self, name: &str) -> Option<String> {
        self.any_param(name).and_then(value::to_java_string)
    }

    /// A required string parameter.
    pub fn req_str(&self, name: &str) -> Result<String, Raise> {
        self.str_param(name)
            .ok_or_else(|| Raise::Failure(format!("parameter {name} is required but is null")))
    }

    /// A long parameter (`Long.parseLong` of the string form).
    pub fn long_param(&self, name: &str) -> Result<Option<i64>, Raise> {
        match self.any_param(name) {
            None => Ok(None),
            Some(v) => {
                value::to_long(v).map_err(|e| Raise::Failure(format!("parameter {name}: {e}")))
            }
        }
    }

    /// An int parameter (`Integer.parseInt` of the string form).
    pub fn int_param(&self, name: &str) -> Result<Option<i32>, Raise> {
        match self.any_param(name) {
            None => Ok(None),
            Some(v) => {
                value::to_int(v).map_err(|e| Raise::Failure(format!("parameter {name}: {e}")))
            }
        }
    }

    /// A boolean parameter (`Boolean.parseBoolean`); `None` when null.
    pub fn bool_param(&self, name: &str) -> Option<bool> {
        self.any_param(name).map(value::to_bool)
    }

    /// Evaluates a parameter again (loop conditions, spec §3.3 `WhileBp`).
    pub fn eval_param(&mut self, name: &str) -> Result<Value, Raise> {
        let block = self.block();
        let Some(param) = block.param(name) else {
            return Ok(Value::Null);
        };
        let scope = scope(self.run);
        eval_source(&param.source, &scope)
            .map_err(|e| Raise::Failure(format!("parameter {name}: {e}")))
    }

    /// Replaces `blocks.<name>` with `outputs`.
    pub fn set_outputs(&mut self, outputs: Map) -> Result<(), Raise> {
        let name = self.block().name.clone();
        self.run.set_outputs(&name, outputs).map_err(Raise::Failure)
    }

    /// Sets `task.variables[name]`.
    pub fn set_variable(&mut self, name: &str, value: Value) -> Result<(), Raise> {
        self.run.set_variable(name, value).map_err(Raise::Failure)?;
        self.out.records.push(Record::VariablesChanged);
        Ok(())
    }

    /// Writes a task log line attributed to this block (truncated at `LOG_LINE_BYTES_MAX`).
    pub fn log(&mut self, level: LogLevel, message: String) {
        let block = self.run.fibers[self.fiber].frames[self.frame].block;
        self.out.records.push(Record::Log {
            level,
            block: Some(block),
            message: truncate(message, LOG_LINE_BYTES_MAX),
        });
    }

    /// Sets the run's `stateDescription` (truncated at `STATE_DESCRIPTION_BYTES_MAX`).
    pub fn set_state_description(&mut self, text: String) {
        let text = truncate(text, STATE_DESCRIPTION_BYTES_MAX);
        self.run.state_description = Some(text.clone());
        self.out.records.push(Record::StateDescription(text));
    }

    /// Sets `taskInputs` members (`TriggerTaskEventBp`); the whole of them stays under
    /// `TASK_INPUTS_BYTES_MAX`, or nothing is set and the block fails naming it.
    pub fn set_task_inputs(&mut self, members: &Map) -> Result<(), Raise> {
        if members.is_empty() {
            return Ok(());
        }
        let mut inputs = self.run.task_inputs.clone();
        for (k, v) in members {
            inputs.insert(k.clone(), v.clone());
        }
        let max = crate::limits::TASK_INPUTS_BYTES_MAX;
        let bytes = value::approx_bytes(&Value::Object(inputs.clone()));
        if bytes > max {
            return Err(Raise::Failure(format!(
                "taskInputs would take {bytes} bytes, over TASK_INPUTS_BYTES_MAX ({max})"
            )));
        }
        self.run.task_inputs = inputs;
        let text = Value::Object(members.clone()).to_string();
        self.out.records.push(Record::TaskInputs(text));
        Ok(())
    }

    /// Publishes a `task-event` (`TriggerTaskEventBp`) with the step: `/api/events` and
    /// webhooks get `{taskId, block, event, eventData, result}` (values cut at
    /// `RECORD_VALUE_BYTES_MAX`).
    pub fn publish_task_event(
        &mut self,
        name: &str,
        data: &Value,
        result: &Value,
    ) -> Result<(), Raise> {
        let max = crate::limits::RECORD_VALUE_BYTES_MAX;
        let cut = |v: &Value| match value::approx_bytes(v) <= max {
            true => v.clone(),
            false => Value::String(value::to_json_truncated(v, max)),
        };
        let block = self.block().name.clone();
        let payload = serde_json::json!({"taskId": self.run.id, "block": block, "event": name,
            "eventData": cut(data), "result": cut(result)});
        self.out
            .records
            .push(Record::TaskEvent(payload.to_string()));
        Ok(())
    }

    /// Sets the run's `outOrderNo` (`SetOutOrderNoBp`; truncated at `OUT_ORDER_NO_BYTES_MAX`).
    pub fn set_out_order_no(&mut self, text: String) {
        let text = truncate(text, crate::limits::OUT_ORDER_NO_BYTES_MAX);
        self.out.records.push(Record::OutOrderNo(text));
    }

    /// The host: clock, ids, data cache.
    pub fn host(&mut self) -> &mut dyn Host {
        self.host
    }

    /// Stores a data cache entry in memory and (through the step's records) on disk.
    pub fn cache_set(&mut self, key: &str, value: String) -> Result<(), Raise> {
        self.host.cache_set(key, &value).map_err(Raise::Failure)?;
        self.out.records.push(Record::CacheSet {
            key: key.to_string(),
            value,
        });
        Ok(())
    }

    /// Removes a data cache entry.
    pub fn cache_delete(&mut self, key: &str) {
        self.host.cache_delete(key);
        self.out.records.push(Record::CacheDelete {
            key: key.to_string(),
        });
    }

    /// Sets the run's priority (record, ready level and site waits follow with the step).
    pub fn set_run_priority(&mut self, priority: i64) {
        self.run.task.insert("priority".into(), priority.into());
        self.out.records.push(Record::Priority(priority));
    }

    /// RDS `run_status`: 1000 while running.
    pub fn run_status(&self) -> i32 {
        self.run.run_status
    }

    /// Whether later blocks may run (RDS `exec_ok`) and the run is still running.
    pub fn still_running(&self) -> bool {
        self.run.exec_ok && self.run.run_status == super::code::RUNNING
    }

    /// `ReturnBp`: later blocks are skipped and the run ends normally (1003).
    pub fn end_run_normally(&mut self) {
        self.run.exec_ok = false;
        self.run.set_run_status(super::code::FINISHED);
    }

    /// A synchronous sub-task ended 1001 or 1004 (SubTaskFailure, spec §3.2): like `ReturnBp`
    /// later blocks are skipped, but the run ends with `code` and `reason`.
    pub fn end_run_with(&mut self, code: i32, reason: String) {
        self.run.exec_ok = false;
        self.run.set_run_status(code);
        self.run.end_reason = Some(reason);
    }

    /// `SuspendTaskBp` on its own run: the run pauses once this step is done (its waits are
    /// cancelled and issued again on resume, spec §4.6).
    pub fn pause_run(&mut self) {
        self.run.paused = true;
    }

    /// `SkipToComponent`: skip forward to the block named `name`.
    pub fn set_skip_target(&mut self, name: String) {
        self.run.skip_target = Some(name);
    }

    /// Keeps `data` in this block's frame (a loop's list, a request kept for its retries) in
    /// place of what it kept before, refusing it when the run's frames would hold more than
    /// `FRAME_DATA_BYTES_MAX`.
    pub fn keep(&mut self, data: Value) -> Result<(), Raise> {
        let held: usize = self
            .run
            .fibers
            .iter()
            .flat_map(|f| f.frames.iter())
            .filter(|f| !f.data.is_null())
            .map(|f| value::approx_bytes(&f.data))
            .sum();
        // What this frame keeps now is replaced, so it does not count.
        let own = match self.frame().data.is_null() {
            true => 0,
            false => value::approx_bytes(&self.frame().data),
        };
        let wanted = value::approx_bytes(&data);
        if held - own + wanted > FRAME_DATA_BYTES_MAX {
            return Err(Raise::Failure(format!(
                "{wanted} bytes of block data refused (a loop's list, a request kept for its \
                 retries): the run's blocks would hold more than FRAME_DATA_BYTES_MAX \
                 ({FRAME_DATA_BYTES_MAX}) bytes"
            )));
        }
        self.frame().data = data;
        Ok(())
    }

    /// `StopOtherBranch`: asks the engine to end the sibling branches once this call returns.
    pub fn stop_other_branches(&mut self) {
        self.requests.push(Request::StopOtherBranches);
    }
}

/// The expression scope of a run.
pub(super) fn scope(run: &RunState) -> Scope<'_> {
    Scope {
        task_inputs: &run.task_inputs,
        blocks: &run.blocks,
        variables: &run.variables,
        task: &run.task,
    }
}

/// Resolves one parameter (spec §2.1 step 4).
pub(super) fn eval_source(source: &ParamSource, scope: &Scope<'_>) -> Result<Value, String> {
    match source {
        ParamSource::Null => Ok(Value::Null),
        ParamSource::Simple(s) => Ok(Value::String(s.clone())),
        ParamSource::Expr(e) => eval_expr(e, scope),
        ParamSource::KeyValue(entries) => {
            let mut map = Map::new();
            for entry in entries {
                let key = match kv_part(&entry.key, scope)? {
                    Value::String(s) => s,
                    other => value::to_display_string(&other),
                };
                let mut v = kv_part(&entry.value, scope)?;
                if entry.object {
                    if let Value::String(s) = &v {
                        v = serde_json::from_str(s).map_err(|e| {
                            format!("value of key '{key}' is not a JSON object: {e}")
                        })?;
                    }
                }
                map.insert(key, v);
            }
            Ok(Value::Object(map))
        }
    }
}

fn kv_part(part: &KvPart, scope: &Scope<'_>) -> Result<Value, String> {
    match part {
        KvPart::Literal(v) => Ok(v.clone()),
        KvPart::Expr(e) => eval_expr(e, scope),
    }
}

fn eval_expr(e: &Expr, scope: &Scope<'_>) -> Result<Value, String> {
    e.eval(scope)
        .map_err(|err| format!("expression `{}`: {err}", value::clip(e.text())))
}

/// Evaluates every parameter of `block` (spec §2.1: all of them, once, at block start). Their
/// total size is bounded by `BLOCK_INPUTS_BYTES_MAX`.
pub(super) fn evaluate_params(block: &Block, run: &RunState) -> Result<Map, String> {
    let scope = scope(run);
    let mut map = Map::new();
    let mut bytes = 0usize;
    for p in &block.params {
        let v = eval_source(&p.source, &scope).map_err(|e| format!("parameter {}: {e}", p.name))?;
        if !v.is_null() {
            bytes += value::approx_bytes(&v) + p.name.len();
            if bytes > BLOCK_INPUTS_BYTES_MAX {
                return Err(format!(
                    "parameter {}: the parameters take more than BLOCK_INPUTS_BYTES_MAX \
                     ({BLOCK_INPUTS_BYTES_MAX}) bytes",
                    p.name
                ));
            }
            map.insert(p.name.clone(), v);
        }
    }
    Ok(map)
}

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut cut = max.saturating_sub(3);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push('…');
    s
}
