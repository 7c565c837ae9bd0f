//! Turns one engine step into one store write: block records, logs, cache changes, task fields,
//! the status change and the checkpoint, all in the same transaction (design §4: the checkpoint
//! is written with the block records it covers).

use super::{RunEvent, RunEventKind};
use crate::engine::{code, Ended, Outcome, Record, RunState, StepOutput};
use crate::flow::model::Flow;
use crate::limits::BLOCK_RECORDS_PER_RUN_MAX;
use crate::store::{
    BlockStart, OutboxEvent, SiteActor, SiteChanges, StoreError, TaskFields, TaskStatus, Tx,
};
use serde_json::json;

/// Block records a run writes between two prunings of its own records once it is past
/// `BLOCK_RECORDS_PER_RUN_MAX`.
const PRUNE_STRIDE: u64 = 256;

/// One block record operation, with everything the store needs, owned.
enum Op {
    Started(BlockStart),
    Ended {
        seq: i64,
        name: String,
        block_type: String,
        status: i32,
        reason: String,
        outputs: Option<String>,
    },
    Status {
        seq: i64,
        status: i32,
        reason: String,
    },
    Log {
        block: Option<String>,
        level: i32,
        message: String,
    },
    CacheSet(String, String),
    CacheDelete(String),
    Priority(i64),
    /// `taskInputs` members (JSON object) merged into the stored inputs.
    TaskInputs(String),
    /// A `task-event` payload for the outbox.
    TaskEvent(String),
}

/// The status a run's record takes after a step, with code and reason.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub status: TaskStatus,
    pub code: i32,
    pub reason: Option<String>,
    pub manual_end: bool,
}

/// The record status for a step outcome.
pub fn status_for(outcome: &Outcome) -> StatusChange {
    let (status, code, reason, manual_end) = match outcome {
        Outcome::More | Outcome::Waiting => (TaskStatus::Running, code::RUNNING, None, false),
        Outcome::Paused => (
            TaskStatus::Paused,
            code::PAUSED,
            Some("[RootBp]paused".to_string()),
            false,
        ),
        Outcome::Interrupted { reason } => (
            TaskStatus::Interrupted,
            code::INTERRUPTED,
            Some(reason.clone()),
            false,
        ),
        Outcome::Ended(Ended {
            code,
            reason,
            manual_end,
        }) => {
            let status = match *code {
                code::STOPPED => TaskStatus::Stopped,
                code::FAILED => TaskStatus::Failed,
                _ => TaskStatus::Finished,
            };
            (status, *code, Some(reason.clone()), *manual_end)
        }
    };
    StatusChange {
        status,
        code,
        reason,
        manual_end,
    }
}

/// A prepared write for one step.
pub struct StepWrite {
    run: String,
    ops: Vec<Op>,
    fields: TaskFields,
    status: Option<StatusChange>,
    /// The checkpoint, or `None` when the run ended (the checkpoint is deleted).
    checkpoint: Option<String>,
    prune_records: bool,
    /// The step started the run (its start time is recorded).
    started: bool,
    /// The run ended and its definition's release policy releases the sites it holds.
    release_sites: bool,
    /// What becomes of the run's site requests.
    site_requests: SiteRequests,
    now_ms: i64,
}

/// The run's rows in the site wait queue after a step.
#[derive(Debug, Default)]
struct SiteRequests {
    /// Answers taken and waits cancelled by the step.
    closed: Vec<u64>,
    /// Paused or interrupted: the run leaves every queue (untaken answers stay).
    leave: bool,
    /// Ended: every row goes.
    end: bool,
}

impl StepWrite {
    /// Prepares the write for `out`, the step that brought `run` to its current state.
    /// `status_changed` is false when the record already has the outcome's status.
    pub fn new(
        flow: &Flow,
        run: &RunState,
        out: &StepOutput,
        status: Option<StatusChange>,
        now_ms: i64,
    ) -> Result<StepWrite, String> {
        let mut ops = Vec::with_capacity(out.records.len());
        let mut fields = TaskFields::default();
        for record in &out.records {
            match record {
                Record::BlockStarted {
                    seq,
                    block,
                    iteration,
                    inputs,
                } => {
                    let b = flow.block(*block);
                    ops.push(Op::Started(BlockStart {
                        task_id: run.id.clone(),
                        seq: *seq as i64,
                        block_id: b.id,
                        block_name: b.name.clone(),
                        block_type: b.block_type.clone(),
                        iteration: iteration.clone(),
                        inputs: (!inputs.is_empty()).then(|| inputs.clone()),
                        started_ms: now_ms,
                    }));
                }
                Record::BlockEnded {
                    seq,
                    block,
                    status,
                    reason,
                    outputs,
                } => ops.push(Op::Ended {
                    seq: *seq as i64,
                    name: flow.block(*block).name.clone(),
                    block_type: flow.block(*block).block_type.clone(),
                    status: *status,
                    reason: reason.clone(),
                    outputs: outputs.clone(),
                }),
                Record::BlockStatus {
                    seq,
                    status,
                    reason,
                } => ops.push(Op::Status {
                    seq: *seq as i64,
                    status: *status,
                    reason: reason.clone(),
                }),
                Record::Log {
                    level,
                    block,
                    message,
                } => ops.push(Op::Log {
                    block: block.map(|b| flow.block(b).name.clone()),
                    level: *level as i32,
                    message: message.clone(),
                }),
                Record::VariablesChanged => {
                    fields.variables =
                        Some(serde_json::Value::Object(run.variables.clone()).to_string())
                }
                Record::StateDescription(text) => fields.state_description = Some(text.clone()),
                Record::OutOrderNo(text) => fields.out_order_no = Some(text.clone()),
                Record::CacheSet { key, value } => {
                    ops.push(Op::CacheSet(key.clone(), value.clone()))
                }
                Record::CacheDelete { key } => ops.push(Op::CacheDelete(key.clone())),
                Record::Priority(p) => ops.push(Op::Priority(*p)),
                Record::TaskInputs(text) => ops.push(Op::TaskInputs(text.clone())),
                Record::TaskEvent(text) => ops.push(Op::TaskEvent(text.clone())),
            }
        }
        let started = out
            .records
            .iter()
            .any(|r| matches!(r, Record::BlockStarted { block: 0, .. }));
        let ended = matches!(out.outcome, Some(Outcome::Ended(_)));
        let release_sites = match &out.outcome {
            Some(Outcome::Ended(e)) => flow.release.releases(e.code, e.manual_end),
            _ => false,
        };
        // Pause and interrupt cancel waits that resume and retry issue again with the same
        // tokens: the run only leaves the queues, keeping answers it has not taken yet.
        let leave = matches!(
            out.outcome,
            Some(Outcome::Paused | Outcome::Interrupted { .. })
        );
        // A flow without site blocks never has site requests: no statements for them.
        let sites = flow.uses_sites;
        let site_requests = SiteRequests {
            closed: if leave || !sites {
                Vec::new()
            } else {
                out.cancelled.clone()
            },
            leave: leave && sites,
            end: ended && sites,
        };
        let checkpoint = if ended {
            None
        } else {
            Some(serde_json::to_string(run).map_err(|e| format!("checkpoint: {e}"))?)
        };
        Ok(StepWrite {
            run: run.id.clone(),
            ops,
            fields,
            status,
            checkpoint,
            // Past the per-run cap, prune whenever a step crosses a multiple of 256 records.
            prune_records: run.next_seq as usize > BLOCK_RECORDS_PER_RUN_MAX
                && out.records.iter().any(
                    |r| matches!(r, Record::BlockStarted { seq, .. } if seq % PRUNE_STRIDE == 0),
                ),
            started,
            release_sites,
            site_requests,
            now_ms,
        })
    }

    /// The step took the answer of the site request `token`: its row goes with the step.
    pub fn took_site_answer(&mut self, token: u64) {
        self.site_requests.closed.push(token);
    }

    /// Applies the write inside the writer's transaction; the outbox events it appended and
    /// the sites it changed (released at the end).
    pub fn apply(self, tx: &mut Tx<'_>) -> Result<(Vec<OutboxEvent>, SiteChanges), StoreError> {
        let id = self.run.as_str();
        let now = self.now_ms;
        let mut events = Vec::new();
        if self.started {
            tx.set_task_started(id, now)?;
        }
        for op in &self.ops {
            match op {
                Op::Started(start) => {
                    tx.block_started(start)?;
                    let payload = json!({"taskId": id, "seq": start.seq, "block": start.block_name,
                        "blockType": start.block_type, "status": 1000});
                    events.push(tx.outbox_append("block", Some(id), &payload.to_string(), now)?);
                }
                Op::Ended {
                    seq,
                    name,
                    block_type,
                    status,
                    reason,
                    outputs,
                } => {
                    let why = (!reason.is_empty()).then_some(reason.as_str());
                    tx.block_ended(id, *seq, *status, why, outputs.as_deref(), now)?;
                    let payload = json!({"taskId": id, "seq": seq, "block": name,
                        "blockType": block_type, "status": status, "reason": why});
                    events.push(tx.outbox_append("block", Some(id), &payload.to_string(), now)?);
                }
                Op::Status {
                    seq,
                    status,
                    reason,
                } => {
                    tx.block_status(id, *seq, *status, Some(reason))?;
                }
                Op::Log {
                    block,
                    level,
                    message,
                } => tx.task_log(id, block.as_deref(), *level, message, self.now_ms)?,
                Op::CacheSet(key, value) => tx.cache_set(key, value, self.now_ms)?,
                Op::CacheDelete(key) => {
                    tx.cache_delete(key)?;
                }
                Op::Priority(p) => {
                    tx.set_task_priority(id, *p, super::level_of(*p))?;
                    tx.site_requests_priority(id, *p)?;
                }
                Op::TaskInputs(members) => tx.merge_task_inputs(id, members)?,
                Op::TaskEvent(payload) => {
                    events.push(tx.outbox_append("task-event", Some(id), payload, now)?);
                }
            }
        }
        let fields = &self.fields;
        if fields.variables.is_some()
            || fields.state_description.is_some()
            || fields.out_order_no.is_some()
        {
            tx.set_task_fields(id, &self.fields)?;
        }
        if let Some(text) = &self.fields.state_description {
            let payload = json!({"taskId": id, "stateDescription": text});
            events.push(tx.outbox_append("task-state", Some(id), &payload.to_string(), now)?);
        }
        if let Some(change) = &self.status {
            tx.set_task_status(
                id,
                change.status,
                change.code,
                change.reason.as_deref(),
                now,
            )?;
            if change.manual_end {
                tx.set_manual_end(id)?;
            }
            events.push(task_event(tx, id, change, now)?);
        }
        match &self.checkpoint {
            Some(state) => tx.put_checkpoint(id, state, self.now_ms)?,
            None => tx.delete_checkpoint(id)?,
        }
        if self.prune_records {
            tx.prune_task_block_records(id, BLOCK_RECORDS_PER_RUN_MAX)?;
        }
        if self.release_sites {
            // Same transaction as the terminal status: a crash cannot leave an ended run
            // holding sites its policy releases.
            let by = SiteActor {
                who: id,
                why: "run ended; released by the definition's release policy",
            };
            let released = tx.site_unlock_owned(id, by, now)?;
            if !released.is_empty() {
                log::info!("task {id}: released sites {released:?}");
            }
            events.extend(tx.take_site_events());
        }
        let sr = &self.site_requests;
        if sr.end {
            tx.site_requests_end(id)?;
        } else {
            if !sr.closed.is_empty() {
                tx.site_requests_close(id, &sr.closed)?;
            }
            if sr.leave {
                tx.site_requests_leave(id)?;
            }
        }
        Ok((events, tx.take_site_changes()))
    }
}

/// Appends the outbox event of a run's status change.
pub(super) fn task_event(
    tx: &mut Tx<'_>,
    id: &str,
    change: &StatusChange,
    now_ms: i64,
) -> Result<OutboxEvent, StoreError> {
    let payload = json!({"taskId": id, "status": change.status.as_str(), "code": change.code,
        "reason": change.reason, "manualEnd": change.manual_end});
    tx.outbox_append("task", Some(id), &payload.to_string(), now_ms)
}

/// The events a committed step publishes.
pub(super) fn run_events(
    id: &str,
    flow: &Flow,
    records: &[Record],
    status: Option<&StatusChange>,
) -> Vec<RunEvent> {
    let mut out = Vec::new();
    let ev = |kind| RunEvent {
        run: id.to_string(),
        kind,
    };
    for r in records {
        match r {
            Record::BlockStarted { block, .. } => {
                let b = flow.block(*block);
                out.push(ev(RunEventKind::BlockStarted {
                    name: b.name.clone(),
                    block_type: b.block_type.clone(),
                }));
            }
            Record::BlockEnded {
                block,
                status,
                reason,
                ..
            } => {
                let b = flow.block(*block);
                out.push(ev(RunEventKind::BlockEnded {
                    name: b.name.clone(),
                    block_type: b.block_type.clone(),
                    status: *status,
                    reason: reason.clone(),
                }));
            }
            Record::Log { message, .. } => out.push(ev(RunEventKind::Log {
                message: message.clone(),
            })),
            _ => {}
        }
    }
    if let Some(change) = status {
        out.push(ev(RunEventKind::Status {
            status: change.status,
            code: change.code,
            reason: change.reason.clone(),
        }));
    }
    out
}
