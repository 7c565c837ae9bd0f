//! The RDS-compatible routes (spec §5): `/api/set-order`, `/api/stop-task`, the GET run
//! actions, `/api/setTaskPriority` and the definition routes, all answering RDS's
//! `{code, msg, data}` envelope with HTTP 200 — errors are codes in the body, never statuses.
//! The run queries live in `rds_query.rs`.
//!
//! Codes: 200 success; -1 for every `set-order` failure (as RDS); 9000 for other failures,
//! including a malformed body or a field of the wrong type (the spec leaves those open; 9000 is
//! RDS's generic error with the reason in `msg`); 9019, 9022, 9040–9042 where §5.1 names them.

use super::error::ApiError;
use super::http::{self, Body};
use super::{defs, rds_query, tasks, App};
use crate::flow::load;
use crate::scheduler::{Control, ControlError, SaveError, SubmitError, SubmitRequest};
use crate::store::{StoreError, TaskFilter, TaskStatus};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

/// RDS success.
pub const OK: i64 = 200;
/// `set-order` failures (RDS answers -1 for all of them).
pub const SET_ORDER_FAILED: i64 = -1;
/// Generic failure, the reason in `msg`.
pub const ERROR: i64 = 9000;
/// Duplicate definition label.
pub const DUPLICATE_LABEL: i64 = 9019;
/// A query found nothing (chosen for "no such record/definition"; RDS's "query failed").
pub const QUERY_FAILED: i64 = 9020;
/// A field must be 0 or 1.
pub const NOT_ZERO_OR_ONE: i64 = 9022;
/// `setTaskPriority`: missing or ill-typed input.
pub const PRIORITY_BAD_REQUEST: i64 = 9040;
/// `setTaskPriority`: a record does not exist.
pub const PRIORITY_NOT_FOUND: i64 = 9041;
/// `setTaskPriority`: every record has already ended.
pub const PRIORITY_ALL_ENDED: i64 = 9042;

/// A failed RDS request: the envelope's `code` and `msg`, and optional `data` (diagnostics).
#[derive(Debug)]
pub struct Rds {
    pub code: i64,
    pub msg: String,
    pub data: Value,
}

impl Rds {
    pub fn new(code: i64, msg: impl Into<String>) -> Rds {
        Rds {
            code,
            msg: msg.into(),
            data: Value::Null,
        }
    }

    /// A native error (bad JSON, body too large, store) as `code` with its message.
    pub fn api(code: i64, e: ApiError) -> Rds {
        Rds::new(code, e.message)
    }

    pub fn store(e: StoreError) -> Rds {
        Rds::new(ERROR, e.to_string())
    }
}

/// What an RDS handler produces: `data` on success.
pub type Answer = Result<Value, Rds>;

/// The envelope, HTTP 200 always; `success_msg` is "Success" except for `set-order`.
pub fn reply(success_msg: &str, answer: Answer) -> Response<Body> {
    let body = match answer {
        Ok(data) => json!({"code": OK, "msg": success_msg, "data": data}),
        Err(e) => json!({"code": e.code, "msg": e.msg, "data": e.data}),
    };
    http::json(StatusCode::OK, &body)
}

/// The body as a JSON object; failures answer `code`.
pub async fn object(app: &App, req: Request<Incoming>, code: i64) -> Result<Value, Rds> {
    let body = http::read_json(req, app.config.body_bytes_max)
        .await
        .map_err(|e| Rds::api(code, e))?;
    if !body.is_object() {
        return Err(Rds::new(code, "the body must be a JSON object"));
    }
    Ok(body)
}

/// An optional string field; an empty string counts as absent (RDS clients send "").
pub fn opt_str(body: &Value, field: &str, code: i64) -> Result<Option<String>, Rds> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Rds::new(code, format!("{field} must be a string"))),
    }
}

fn opt_int(body: &Value, field: &str, code: i64) -> Result<Option<i64>, Rds> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| Rds::new(code, format!("{field} must be an integer"))),
    }
}

/// Whether a GET route changes state (suspend/start/restart): the router checks the token.
pub fn mutating_get(seg: &[&str]) -> bool {
    matches!(
        seg,
        ["api", "suspend-task" | "start-task" | "restart-task", _, _]
    )
}

/// `POST /api/set-order`: answers once the run is committed, with `data: {taskRecordId}`
/// (RDS sends no id). A repeat with the same `taskRecordId` and body starts nothing new.
/// `callWorkType`/`callWorkStation` are accepted but not stored.
pub async fn set_order(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("SUCCESS", set_order_answer(app, req).await)
}

async fn set_order_answer(app: &App, req: Request<Incoming>) -> Answer {
    let fail = SET_ORDER_FAILED;
    let body = object(app, req, fail).await?;
    let def_id = opt_str(&body, "taskId", fail)?;
    let def_label = opt_str(&body, "taskLabel", fail)?;
    if def_id.is_none() && def_label.is_none() {
        return Err(Rds::new(
            fail,
            "TaskId And TaskLabel Have At Least One Field That Is Not Empty",
        ));
    }
    let submit = SubmitRequest {
        def_id,
        def_label,
        inputs: tasks::input_params(&body).map_err(|e| Rds::api(fail, e))?,
        priority: opt_int(&body, "priority", fail)?,
        task_id: opt_str(&body, "taskRecordId", fail)?,
        periodic: false,
        ..SubmitRequest::default()
    };
    let submitted = app.sched.submit(submit).await.map_err(|e| {
        let msg = match &e {
            SubmitError::MissingDefinition | SubmitError::UnknownDefinition(_) => {
                format!("No Task Definition Was Queried ({e})")
            }
            SubmitError::IdConflict(_) => format!("Task Instance Id Repeat ({e})"),
            _ => e.to_string(),
        };
        Rds::new(fail, msg)
    })?;
    Ok(json!({"taskRecordId": submitted.id, "created": submitted.created}))
}

/// `releaseSite` must be 0 or 1 (9022). Required by `stop-task`, optional elsewhere. 1 releases
/// every site of each ended run (on top of its definition's policy).
fn release_site(body: &Value, required: bool) -> Result<bool, Rds> {
    match body.get("releaseSite") {
        None | Some(Value::Null) if !required => Ok(false),
        Some(v) if v.as_i64().is_some_and(|n| n == 0 || n == 1) => Ok(v.as_i64() == Some(1)),
        _ => Err(Rds::new(NOT_ZERO_OR_ONE, "releaseSite must be 0 or 1")),
    }
}

/// Ids of the active records (queued, running, paused, interrupted), of one label if given.
async fn active_ids(app: &App, label: Option<String>) -> Result<Vec<String>, Rds> {
    let filter = TaskFilter {
        def_label: label,
        ..TaskFilter::default()
    };
    app.sched
        .store()
        .read(move |rx| {
            let mut ids = Vec::new();
            rds_query::scan(rx, &filter, |r| {
                if !r.status.is_terminal() {
                    ids.push(r.id.clone());
                }
            })?;
            Ok(ids)
        })
        .await
        .map_err(Rds::store)
}

/// Applies `action` to each id, skipping runs that ended meanwhile when `skip_ended`, and
/// releases each one's sites when `release`; the failures, one message each.
async fn apply(
    app: &App,
    ids: &[String],
    action: Control,
    skip_ended: bool,
    release: bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    for id in ids {
        match app.sched.control(id, action).await {
            Ok(_) if release => {
                if let Err(e) = super::sites::release_owned(app, id, "rds-api").await {
                    failures.push(format!("{id}: releasing its sites failed: {e}"));
                }
            }
            Ok(_) => {}
            Err(ControlError::IllegalState { status, .. })
                if skip_ended && status.is_terminal() => {}
            Err(ControlError::NotFound(_)) => {
                failures.push(format!("Incorrect taskRecordId: {id}"))
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    failures
}

fn all_applied(failures: Vec<String>) -> Answer {
    if failures.is_empty() {
        Ok(Value::Null)
    } else {
        Err(Rds::new(ERROR, failures.join("; ")))
    }
}

/// `POST /api/stop-task {releaseSite, taskRecordId | taskLabel}`: one record, or every active
/// record of a label (9000 "No running <label> tasks" when there is none).
pub async fn stop_task(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("Success", stop_task_answer(app, req).await)
}

async fn stop_task_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = object(app, req, ERROR).await?;
    let release = release_site(&body, true)?;
    let record = opt_str(&body, "taskRecordId", ERROR)?;
    let label = opt_str(&body, "taskLabel", ERROR)?;
    match (record, label) {
        (Some(id), _) => all_applied(apply(app, &[id], Control::Stop, false, release).await),
        (None, Some(label)) => {
            let ids = active_ids(app, Some(label.clone())).await?;
            if ids.is_empty() {
                return Err(Rds::new(ERROR, format!("No running {label} tasks")));
            }
            all_applied(apply(app, &ids, Control::Stop, true, release).await)
        }
        (None, None) => Err(Rds::new(
            ERROR,
            "taskRecordId and taskLabel cannot both be null.",
        )),
    }
}

/// `POST /api/manual-end` and `/api/stop-all-task`: `{releaseSite, stopTaskList: [{taskId,
/// taskRecordId}]}`; an empty or absent list means every active record. Listed records that
/// are unknown or cannot take the action answer 9000 naming them (the others are applied).
pub async fn end_many(app: &App, req: Request<Incoming>, action: Control) -> Response<Body> {
    reply("Success", end_many_answer(app, req, action).await)
}

async fn end_many_answer(app: &App, req: Request<Incoming>, action: Control) -> Answer {
    let body = object(app, req, ERROR).await?;
    let release = release_site(&body, false)?;
    let list = match body.get("stopTaskList") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(Rds::new(ERROR, "stopTaskList must be an array")),
    };
    let mut ids = Vec::with_capacity(list.len());
    for item in &list {
        match opt_str(item, "taskRecordId", ERROR)? {
            Some(id) => ids.push(id),
            None => return Err(Rds::new(ERROR, "each stopTaskList item needs taskRecordId")),
        }
    }
    if ids.is_empty() {
        let ids = active_ids(app, None).await?;
        return all_applied(apply(app, &ids, action, true, release).await);
    }
    all_applied(apply(app, &ids, action, false, release).await)
}

/// `GET /api/{suspend|start|restart}-task/{taskId}/{taskRecordId}`: pause, resume, retry.
/// RDS always answers success; vwed answers 9000 for an unknown record or a state that does
/// not allow the action, so a client can tell nothing happened. `taskId` is not checked
/// (RDS keys on the record id).
pub async fn run_action(app: &App, record_id: &str, action: Control) -> Response<Body> {
    let ids = [record_id.to_string()];
    reply(
        "Success",
        all_applied(apply(app, &ids, action, false, false).await),
    )
}

/// `POST /api/setTaskPriority {taskRecordIds, priority}` (§4.11): 9040 when input is missing or
/// ill-typed, 9041 naming unknown records (nothing changed), 9042 when every record has ended;
/// otherwise the records that have not ended get the priority.
pub async fn set_priority(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("Success", set_priority_answer(app, req).await)
}

async fn set_priority_answer(app: &App, req: Request<Incoming>) -> Answer {
    let bad = PRIORITY_BAD_REQUEST;
    let body = object(app, req, bad).await?;
    let ids: Vec<String> = match body.get("taskRecordIds") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| Rds::new(bad, "taskRecordIds must be strings"))?,
        _ => return Err(Rds::new(bad, "taskRecordIds must be a non-empty array")),
    };
    let priority =
        opt_int(&body, "priority", bad)?.ok_or_else(|| Rds::new(bad, "priority is required"))?;
    let wanted = ids.clone();
    let statuses: Vec<Option<TaskStatus>> = app
        .sched
        .store()
        .read(move |rx| {
            let mut out = Vec::with_capacity(wanted.len());
            for id in &wanted {
                out.push(rx.task(id)?.map(|r| r.status));
            }
            Ok(out)
        })
        .await
        .map_err(Rds::store)?;
    let unknown: Vec<&str> = ids
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| s.is_none())
        .map(|(id, _)| id.as_str())
        .collect();
    if !unknown.is_empty() {
        let msg = format!("no task record {}", unknown.join(", "));
        return Err(Rds::new(PRIORITY_NOT_FOUND, msg));
    }
    let open: Vec<&String> = ids
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| s.is_some_and(|s| !s.is_terminal()))
        .map(|(id, _)| id)
        .collect();
    if open.is_empty() {
        return Err(Rds::new(
            PRIORITY_ALL_ENDED,
            "every record has already ended",
        ));
    }
    for id in open {
        match app.sched.set_priority(id, priority).await {
            Ok(_) | Err(ControlError::IllegalState { .. }) => {}
            Err(e) => return Err(Rds::new(ERROR, e.to_string())),
        }
    }
    Ok(Value::Null)
}

/// `POST /api/create-taskdef/createOrUpdateTaskDef`: saves by `id` (a new version when it
/// changed). `data` is `{id, version, changed}` (RDS sends null). A label used by another
/// definition answers 9019; an invalid definition answers 9000 with every diagnostic in `data`.
pub async fn create_or_update_def(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("Success", create_or_update_answer(app, req).await)
}

async fn create_or_update_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = object(app, req, ERROR).await?;
    let raw = match load::load_value(body, "definition").pop() {
        Some(Ok(raw)) => raw,
        Some(Err(e)) => return Err(Rds::new(ERROR, e.message)),
        None => return Err(Rds::new(ERROR, "no definition in the body")),
    };
    let (saved, _warnings) = app.sched.save_definition(raw).await.map_err(|e| {
        let msg = e.to_string();
        match e {
            SaveError::Store(StoreError::Conflict(m)) => Rds::new(DUPLICATE_LABEL, m),
            SaveError::Store(e) => Rds::store(e),
            SaveError::Invalid(diags) => Rds {
                code: ERROR,
                msg,
                data: defs::diagnostics_json(&diags),
            },
        }
    })?;
    Ok(json!({"id": saved.id, "version": saved.version, "changed": saved.changed}))
}

/// `POST /api/queryTaskDefById {"id"}`: `data` is the definition as a JSON string with
/// snake_case keys and `detail` as a string (RDS's row); 9020 when there is none.
pub async fn query_def_by_id(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("Success", query_def_answer(app, req).await)
}

async fn query_def_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = object(app, req, ERROR).await?;
    let id = opt_str(&body, "id", ERROR)?.ok_or_else(|| Rds::new(ERROR, "id is required"))?;
    let id2 = id.clone();
    let def = app
        .sched
        .store()
        .read(move |rx| rx.definition(&id2))
        .await
        .map_err(Rds::store)?
        .filter(|d| !d.deleted)
        .ok_or_else(|| Rds::new(QUERY_FAILED, format!("no task definition {id}")))?;
    let mut row = serde_json::from_str::<Value>(&def.body).unwrap_or_else(|_| json!({}));
    if let Some(detail) = row.get("detail").filter(|d| !d.is_string()) {
        row["detail"] = json!(detail.to_string());
    }
    let extra = json!({"id": def.id, "label": def.label, "version": def.version,
        "periodicTask": i32::from(def.periodic), "ifEnable": i32::from(def.if_enable),
        "period": def.period_ms, "delay": def.delay_ms,
        "createdOn": rds_query::date(Some(def.created_ms)),
        "updatedOn": rds_query::date(Some(def.updated_ms))});
    if let (Some(row), Value::Object(extra)) = (row.as_object_mut(), extra) {
        row.extend(extra);
    }
    Ok(json!(rds_query::snake_keys(&row).to_string()))
}

/// `POST /api/windTaskdef/batchExportTask` (`["id", ...]` → the file `taskDef.task`).
pub async fn batch_export(app: &App, req: Request<Incoming>) -> Response<Body> {
    super::defs_io::rds_batch_export(app, req).await
}

/// `POST /api/releaseWaitPassBlock ["<agvId>", ...]`: an operator's "pass" for the
/// `WaitPassBp` blocks of those robots (the data cache key `waitPass_<agvId>` becomes "true";
/// a waiting block sees it at its next check, within 2 s). A body that is not an array of
/// strings answers 9000 and sets nothing.
pub async fn release_wait_pass(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("Success", release_wait_pass_answer(app, req).await)
}

async fn release_wait_pass_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = http::read_json(req, app.config.body_bytes_max)
        .await
        .map_err(|e| Rds::api(ERROR, e))?;
    let ids: Vec<String> = match &body {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| Rds::new(ERROR, "the body must be an array of robot ids"))?,
        _ => return Err(Rds::new(ERROR, "the body must be an array of robot ids")),
    };
    for id in &ids {
        let key = crate::blocks::wait_pass_key(id);
        app.sched
            .cache_set(&key, "true")
            .await
            .map_err(|e| Rds::new(ERROR, e))?;
    }
    Ok(json!(ids))
}
