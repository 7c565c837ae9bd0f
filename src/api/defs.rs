//! `/api/task-defs`: list, create, read, update (a new version when changed), delete, version
//! history and validation of task definitions. Invalid definitions are refused with every
//! diagnostic (422); nothing is stored then.

use super::error::ApiError;
use super::http::{self, Body};
use super::App;
use crate::flow::compile::{self, Diagnostic, Severity};
use crate::flow::load::{self, RawDefinition};
use crate::limits::API_LIST_MAX;
use crate::store::DefinitionRecord;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

/// Diagnostics as JSON: severity, block (name, id, blockType), param, message.
pub fn diagnostics_json(diags: &[Diagnostic]) -> Value {
    let items: Vec<Value> = diags
        .iter()
        .map(|d| {
            let mut v = json!({
                "severity": if d.severity == Severity::Error { "error" } else { "warning" },
                "message": d.message,
            });
            if let Some(b) = &d.block {
                v["block"] = json!({"name": b.name, "id": b.id, "blockType": b.block_type});
            }
            if let Some(p) = &d.param {
                v["param"] = json!(p);
            }
            v
        })
        .collect();
    Value::Array(items)
}

/// A stored definition as the API shows it.
fn def_json(d: &DefinitionRecord, with_body: bool) -> Value {
    let mut v = json!({
        "id": d.id, "label": d.label, "version": d.version, "periodicTask": d.periodic,
        "ifEnable": d.if_enable, "period": d.period_ms, "delay": d.delay_ms,
        "releaseSites": d.release_sites, "releaseAlways": d.release_always,
        "createdOn": d.created_ms, "updatedOn": d.updated_ms,
    });
    if with_body {
        v["definition"] = serde_json::from_str(&d.body).unwrap_or(Value::Null);
    }
    v
}

/// One definition from a request body (a `{label, detail}` object; `detail` may be a string).
fn one_definition(body: Value) -> Result<RawDefinition, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_json(
            "the body must be one definition object (use /api/task-defs/import for a .task array)",
        ));
    }
    let mut loaded = load::load_value(body, "definition");
    match loaded.pop() {
        Some(Ok(raw)) => Ok(raw),
        Some(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_definition",
            e.message,
        )),
        None => Err(ApiError::bad_json("no definition in the body")),
    }
}

async fn stored(app: &App, id: &str) -> Result<DefinitionRecord, ApiError> {
    let id2 = id.to_string();
    app.sched
        .store()
        .read(move |rx| rx.definition(&id2))
        .await
        .map_err(ApiError::store)?
        .filter(|d| !d.deleted)
        .ok_or_else(|| ApiError::not_found(format!("no task definition {id}")))
}

/// `GET /api/task-defs`.
pub async fn list(app: &App) -> Result<Response<Body>, ApiError> {
    let defs = app
        .sched
        .store()
        .read(|rx| rx.definitions(API_LIST_MAX))
        .await
        .map_err(ApiError::store)?;
    let items: Vec<Value> = defs.iter().map(|d| def_json(d, false)).collect();
    Ok(http::json(StatusCode::OK, &json!({ "items": items })))
}

/// `POST /api/task-defs`: creates; an id that exists is a conflict (use PUT).
pub async fn create(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let raw = one_definition(http::read_json(req, app.config.body_bytes_max).await?)?;
    if let Some(id) = &raw.id {
        let id2 = id.clone();
        let exists = app
            .sched
            .store()
            .read(move |rx| rx.definition(&id2))
            .await
            .map_err(ApiError::store)?
            .is_some_and(|d| !d.deleted);
        if exists {
            return Err(ApiError::conflict(format!(
                "task definition {id} exists; PUT /api/task-defs/{id} changes it"
            )));
        }
    }
    let (saved, warnings) = app.sched.save_definition(raw).await?;
    super::defs_io::reload(app).await;
    let rec = stored(app, &saved.id).await?;
    let mut v = def_json(&rec, true);
    v["warnings"] = diagnostics_json(&warnings);
    Ok(http::json(StatusCode::CREATED, &v))
}

/// `GET /api/task-defs/{id}`.
pub async fn get(app: &App, id: &str) -> Result<Response<Body>, ApiError> {
    Ok(http::json(
        StatusCode::OK,
        &def_json(&stored(app, id).await?, true),
    ))
}

/// `PUT /api/task-defs/{id}`: a changed definition becomes a new version; runs keep theirs.
pub async fn update(
    app: &App,
    id: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    stored(app, id).await?;
    let mut raw = one_definition(http::read_json(req, app.config.body_bytes_max).await?)?;
    if raw.id.as_deref().is_some_and(|given| given != id) {
        return Err(ApiError::field("id", format!("the body's id is not {id}")));
    }
    raw.id = Some(id.to_string());
    let (saved, warnings) = app.sched.save_definition(raw).await?;
    if saved.changed {
        super::defs_io::reload(app).await;
    }
    let rec = stored(app, id).await?;
    let mut v = def_json(&rec, true);
    v["changed"] = json!(saved.changed);
    v["warnings"] = diagnostics_json(&warnings);
    Ok(http::json(StatusCode::OK, &v))
}

/// `DELETE /api/task-defs/{id}`: its versions stay for the runs pinned to them.
pub async fn delete(app: &App, id: &str) -> Result<Response<Body>, ApiError> {
    stored(app, id).await?;
    let id2 = id.to_string();
    app.sched
        .store()
        .write(move |tx| tx.delete_definition(&id2))
        .await
        .map_err(ApiError::store)?;
    super::defs_io::reload(app).await;
    Ok(http::json(
        StatusCode::OK,
        &json!({"id": id, "deleted": true}),
    ))
}

/// `GET /api/task-defs/{id}/versions`.
pub async fn versions(app: &App, id: &str) -> Result<Response<Body>, ApiError> {
    stored(app, id).await?;
    let id2 = id.to_string();
    let versions = app
        .sched
        .store()
        .read(move |rx| rx.definition_versions(&id2))
        .await
        .map_err(ApiError::store)?;
    let items: Vec<Value> = versions
        .iter()
        .map(|(v, created)| json!({"version": v, "createdOn": created}))
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({"id": id, "items": items}),
    ))
}

/// `POST /api/task-defs/validate`: every diagnostic of one definition or a `.task` array.
pub async fn validate(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = http::read_json(req, app.config.body_bytes_max).await?;
    let mut all_valid = true;
    let mut results = Vec::new();
    for loaded in load::load_value(body, "definition") {
        match loaded {
            Ok(raw) => {
                let compiled = compile::compile(&raw);
                all_valid &= !compiled.has_errors();
                results.push(json!({"label": raw.label, "valid": !compiled.has_errors(),
                    "diagnostics": diagnostics_json(&compiled.diagnostics)}));
            }
            Err(e) => {
                all_valid = false;
                results.push(json!({"label": e.what, "valid": false, "diagnostics": [
                    {"severity": "error", "message": e.message}]}));
            }
        }
    }
    Ok(http::json(
        StatusCode::OK,
        &json!({"valid": all_valid, "definitions": results}),
    ))
}
