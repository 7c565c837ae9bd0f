//! `/api/tasks`: start runs (durably admitted before the answer), read and list them, their block
//! records and logs, and the operator actions (stop, pause, resume, retry, manual end, priority).

use super::error::ApiError;
use super::http::{self, Body};
use super::App;
use crate::limits::{API_LIST_DEFAULT, API_LIST_MAX};
use crate::scheduler::{Control, SubmitRequest};
use crate::store::{TaskFilter, TaskRecord, TaskStatus};
use crate::value::Map;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

/// A task record as the API shows it.
pub fn task_json(r: &TaskRecord) -> Value {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    json!({
        "id": r.id,
        "defId": r.def_id,
        "defLabel": r.def_label,
        "defVersion": r.def_version,
        "status": r.status.as_str(),
        "code": r.code,
        "priority": r.priority,
        "createdOn": r.created_ms,
        "startedOn": r.started_ms,
        "endedOn": r.ended_ms,
        "endedReason": r.ended_reason,
        "manualEnd": r.manual_end,
        "inputParams": parse(&r.input_params),
        "variables": parse(&r.variables),
        "stateDescription": r.state_description,
        "outOrderNo": r.out_order_no,
        "periodic": r.periodic,
        "parentId": r.parent_id,
        "rootId": r.root_id,
    })
}

fn opt_str(body: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::field(field, format!("{field} must be a string"))),
    }
}

fn opt_int(body: &Value, field: &str) -> Result<Option<i64>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::field(field, format!("{field} must be an integer"))),
    }
}

/// `inputParams` as an object, or a string holding one (RDS clients send a string).
pub(super) fn input_params(body: &Value) -> Result<Map, ApiError> {
    let bad = || ApiError::field("inputParams", "inputParams must be a JSON object");
    match body.get("inputParams") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Map::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

async fn record(app: &App, id: &str) -> Result<TaskRecord, ApiError> {
    let id2 = id.to_string();
    app.sched
        .store()
        .read(move |rx| rx.task(&id2))
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::not_found(format!("no task {id}")))
}

/// `POST /api/tasks`.
pub async fn create(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = http::read_json(req, app.config.body_bytes_max).await?;
    if !body.is_object() {
        return Err(ApiError::bad_json("the body must be a JSON object"));
    }
    let submit = SubmitRequest {
        def_id: opt_str(&body, "defId")?,
        def_label: opt_str(&body, "defLabel")?,
        inputs: input_params(&body)?,
        priority: opt_int(&body, "priority")?,
        task_id: opt_str(&body, "taskRecordId")?,
        periodic: false,
        ..SubmitRequest::default()
    };
    let submitted = app.sched.submit(submit).await?;
    let rec = record(app, &submitted.id).await?;
    let status = if submitted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(http::json(status, &task_json(&rec)))
}

/// `GET /api/tasks/{id}`.
pub async fn get(app: &App, id: &str) -> Result<Response<Body>, ApiError> {
    let rec = record(app, id).await?;
    Ok(http::json(StatusCode::OK, &task_json(&rec)))
}

fn filter_from_query(req: &Request<Incoming>) -> Result<(TaskFilter, usize), ApiError> {
    let mut filter = TaskFilter::default();
    let mut limit = API_LIST_DEFAULT;
    let int = |k: &str, v: &str| {
        v.parse::<i64>()
            .map_err(|_| ApiError::field(k, format!("{k} must be an integer")))
    };
    for (k, v) in http::query(req) {
        match k.as_str() {
            "status" => {
                let s = v
                    .parse::<TaskStatus>()
                    .map_err(|e| ApiError::field("status", e))?;
                filter.status = Some(s);
            }
            "defLabel" => filter.def_label = Some(v),
            "createdFrom" => filter.created_from_ms = Some(int(&k, &v)?),
            "createdTo" => filter.created_to_ms = Some(int(&k, &v)?),
            "cursor" => filter.before_seq = Some(int(&k, &v)?),
            "limit" => {
                let n = int(&k, &v)?;
                if n < 1 || n as usize > API_LIST_MAX {
                    let msg = format!("limit must be 1 to API_LIST_MAX ({API_LIST_MAX})");
                    return Err(ApiError::field("limit", msg));
                }
                limit = n as usize;
            }
            other => {
                return Err(ApiError::field(
                    other,
                    format!("unknown query parameter {other}"),
                ))
            }
        }
    }
    Ok((filter, limit))
}

/// `GET /api/tasks?status=&defLabel=&createdFrom=&createdTo=&cursor=&limit=`: newest first;
/// `nextCursor` continues the listing.
pub async fn list(app: &App, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (filter, limit) = filter_from_query(req)?;
    let rows = app
        .sched
        .store()
        .read(move |rx| rx.list_tasks(&filter, limit + 1))
        .await
        .map_err(ApiError::store)?;
    let more = rows.len() > limit;
    let items: Vec<Value> = rows.iter().take(limit).map(task_json).collect();
    let next = more.then(|| rows[limit - 1].seq);
    Ok(http::json(
        StatusCode::OK,
        &json!({"items": items, "nextCursor": next}),
    ))
}

/// `GET /api/tasks/{id}/blocks`.
pub async fn blocks(app: &App, id: &str) -> Result<Response<Body>, ApiError> {
    record(app, id).await?;
    let id2 = id.to_string();
    let rows = app
        .sched
        .store()
        .read(move |rx| rx.block_records(&id2, API_LIST_MAX))
        .await
        .map_err(ApiError::store)?;
    let parse = |t: &Option<String>| {
        t.as_ref()
            .map(|s| serde_json::from_str::<Value>(s).unwrap_or_else(|_| json!(s)))
    };
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"seq": r.seq, "blockId": r.block_id, "name": r.block_name,
                "blockType": r.block_type, "iteration": r.iteration, "status": r.status,
                "startedOn": r.started_ms, "endedOn": r.ended_ms, "endedReason": r.ended_reason,
                "inputs": parse(&r.inputs), "outputs": parse(&r.outputs)})
        })
        .collect();
    Ok(http::json(StatusCode::OK, &json!({ "items": items })))
}

/// `GET /api/tasks/{id}/logs`.
pub async fn logs(app: &App, id: &str) -> Result<Response<Body>, ApiError> {
    record(app, id).await?;
    let id2 = id.to_string();
    let rows = app
        .sched
        .store()
        .read(move |rx| rx.task_logs(&id2, API_LIST_MAX))
        .await
        .map_err(ApiError::store)?;
    let items: Vec<Value> = rows
        .iter()
        .map(|l| {
            json!({"time": l.created_ms, "level": l.level, "block": l.block_name,
                "message": l.message})
        })
        .collect();
    Ok(http::json(StatusCode::OK, &json!({ "items": items })))
}

/// `POST /api/tasks/{id}/{stop|pause|resume|retry|manual-end|priority}`. Stop and manual end
/// take `{"releaseSites": true}` to release every site the run holds once it has ended,
/// whatever its definition's policy.
pub async fn control(
    app: &App,
    id: &str,
    action: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let body = http::read_json(req, app.config.body_bytes_max).await?;
    if !body.is_object() {
        return Err(ApiError::bad_json("the body must be a JSON object"));
    }
    let release = match body.get("releaseSites") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) if matches!(action, "stop" | "manual-end") => *b,
        Some(_) => {
            return Err(ApiError::field(
                "releaseSites",
                "releaseSites must be a boolean, and only stop and manual-end take it",
            ))
        }
    };
    let control = match action {
        "stop" => Control::Stop,
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "retry" => Control::Retry,
        "manual-end" => Control::ManualEnd,
        "priority" => {
            let p = opt_int(&body, "priority")?
                .ok_or_else(|| ApiError::field("priority", "priority is required"))?;
            app.sched.set_priority(id, p).await?;
            return get(app, id).await;
        }
        other => return Err(ApiError::not_found(format!("no task action {other}"))),
    };
    app.sched.control(id, control).await?;
    if release {
        super::sites::release_owned(app, id, "api")
            .await
            .map_err(ApiError::store)?;
    }
    get(app, id).await
}
