//! Durable admission: a start request is resolved to a pinned definition version, its task
//! inputs are built (§1.4), and the task is committed as queued before the caller hears
//! "accepted". A repeated task id with the same request returns the existing task.

use super::persist::{task_event, StatusChange};
use super::{Command, Shared};
use crate::flow::inputs;
use crate::limits::{TASK_ID_BYTES_MAX, TASK_INPUTS_BYTES_MAX};
use crate::store::{Admit, NewTask, StoreError, TaskStatus};
use crate::value::{self, Map};
use md5::{Digest, Md5};

/// A request to start a run.
#[derive(Debug, Clone, Default)]
pub struct SubmitRequest {
    /// The definition by id (first) or label.
    pub def_id: Option<String>,
    pub def_label: Option<String>,
    /// The request's `inputParams` object.
    pub inputs: Map,
    /// Default 1 (RDS).
    pub priority: Option<i64>,
    /// Client-chosen task id (RDS `taskRecordId`): makes the submission idempotent.
    pub task_id: Option<String>,
    /// Started by the periodic scheduler (ids `period<uuid>`, failures end 1004).
    pub periodic: bool,
    /// Started by a `SubTask` block of this run (its `parentTaskRecordId`).
    pub parent_id: Option<String>,
    /// What started it, when not a client: a sub-task's `<parent>/<block record>`. Part of
    /// what makes two submissions the same request, so only the same block asking again
    /// (after a restart) attaches to the child, never another iteration or block.
    pub origin: Option<String>,
    /// The parent's root (`rootTaskRecordId`); the run's own id when not given.
    pub root_id: Option<String>,
}

/// An accepted submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub id: String,
    /// False when the id already existed with the same request (nothing new was stored).
    pub created: bool,
}

/// A refused submission; nothing was stored.
#[derive(Debug, Clone, PartialEq)]
pub enum SubmitError {
    /// Neither `def_id` nor `def_label` given.
    MissingDefinition,
    UnknownDefinition(String),
    /// The backlog is full (`BACKLOG_MAX` / `Config::backlog_max`).
    QueueFull {
        limit: usize,
    },
    /// The task id exists with a different request.
    IdConflict(String),
    /// Inputs too large, a bad id, or a stored definition that no longer compiles.
    Invalid(String),
    Store(String),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::MissingDefinition => write!(f, "give a definition id or label"),
            SubmitError::UnknownDefinition(d) => write!(f, "no task definition {d}"),
            SubmitError::QueueFull { limit } => {
                write!(
                    f,
                    "queue full: BACKLOG_MAX ({limit}) tasks are waiting to start"
                )
            }
            SubmitError::IdConflict(id) => {
                write!(f, "task id {id} already exists with a different request")
            }
            SubmitError::Invalid(m) => f.write_str(m),
            SubmitError::Store(m) => write!(f, "store: {m}"),
        }
    }
}

impl std::error::Error for SubmitError {}

fn store_err(e: StoreError) -> SubmitError {
    SubmitError::Store(e.to_string())
}

/// Admits `req` (see [`super::Scheduler::submit`]).
pub(super) async fn submit(shared: &Shared, req: SubmitRequest) -> Result<Submitted, SubmitError> {
    let (id_key, label_key) = (req.def_id.clone(), req.def_label.clone());
    if id_key.is_none() && label_key.is_none() {
        return Err(SubmitError::MissingDefinition);
    }
    let def = shared
        .store
        .read(
            move |rx| match id_key.as_deref().map(|id| rx.definition(id)) {
                Some(Ok(Some(d))) => Ok(Some(d)),
                Some(Err(e)) => Err(e),
                _ => match label_key.as_deref() {
                    Some(label) => rx.definition_by_label(label),
                    None => Ok(None),
                },
            },
        )
        .await
        .map_err(store_err)?
        .filter(|d| !d.deleted)
        .ok_or_else(|| {
            SubmitError::UnknownDefinition(
                req.def_id
                    .clone()
                    .or(req.def_label.clone())
                    .unwrap_or_default(),
            )
        })?;
    let flow = shared
        .flows
        .get_or_compile(&def)
        .map_err(SubmitError::Invalid)?;
    let built = inputs::build(&flow.inputs, &req.inputs);
    for w in &built.warnings {
        log::warn!("task of {}: {w}", def.label);
    }
    let stored = built.stored.to_string();
    if stored.len() > TASK_INPUTS_BYTES_MAX {
        return Err(SubmitError::Invalid(format!(
            "inputParams take {} bytes, over TASK_INPUTS_BYTES_MAX ({TASK_INPUTS_BYTES_MAX})",
            stored.len()
        )));
    }
    let id = match &req.task_id {
        Some(id) if id.trim().is_empty() || id.len() > TASK_ID_BYTES_MAX => {
            return Err(SubmitError::Invalid(format!(
                "taskRecordId must be 1 to TASK_ID_BYTES_MAX ({TASK_ID_BYTES_MAX}) bytes"
            )))
        }
        Some(id) => id.clone(),
        None if req.periodic => format!("period{}", uuid::Uuid::new_v4()),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let priority = req.priority.unwrap_or(1);
    let hash = request_hash(&def.id, &req.inputs, priority, req.origin.as_deref());
    let level = super::level_of(priority);
    let created_ms = shared.clock.now_ms();
    let task = NewTask {
        id: id.clone(),
        def_id: def.id.clone(),
        def_label: def.label.clone(),
        def_version: def.version,
        priority,
        level,
        input_params: stored,
        request_hash: Some(hash.clone()),
        created_ms,
        parent_id: req.parent_id.clone(),
        root_id: Some(req.root_id.clone().unwrap_or_else(|| id.clone())),
        periodic: req.periodic,
    };
    let backlog = shared.config.backlog_max;
    let admitted = shared
        .store
        .write(move |tx| {
            let admitted = tx.admit_task(&task, backlog)?;
            let event = match admitted {
                Admit::Inserted { .. } => {
                    let change = StatusChange {
                        status: TaskStatus::Queued,
                        code: crate::engine::code::QUEUED,
                        reason: None,
                        manual_end: false,
                    };
                    Some(task_event(tx, &task.id, &change, created_ms)?)
                }
                _ => None,
            };
            Ok((admitted, event))
        })
        .await
        .map_err(store_err)?;
    let (admitted, event) = admitted;
    if let Some(event) = event {
        let _ = shared.outbox.send(std::sync::Arc::new(event));
    }
    match admitted {
        Admit::Inserted { .. } => {
            // If the driver is gone the task is still stored and starts after a restart.
            let _ = shared.commands.send(Command::Admitted { level }).await;
            Ok(Submitted { id, created: true })
        }
        Admit::Existing(rec) if rec.request_hash.as_deref() == Some(hash.as_str()) => {
            Ok(Submitted { id, created: false })
        }
        Admit::Existing(_) => Err(SubmitError::IdConflict(id)),
        Admit::BacklogFull { limit } => Err(SubmitError::QueueFull { limit }),
    }
}

/// A stable digest of what a submission asked for (definition version aside: a re-sent
/// request after a definition edit is still the same request; a sub-task's origin is part of
/// it).
pub(super) fn request_hash(
    def_id: &str,
    inputs: &Map,
    priority: i64,
    origin: Option<&str>,
) -> String {
    let mut text = format!(
        "{def_id}\n{priority}\n{}",
        value::to_display_string(&serde_json::Value::Object(inputs.clone()))
    );
    if let Some(origin) = origin {
        text.push_str("\norigin ");
        text.push_str(origin);
    }
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
