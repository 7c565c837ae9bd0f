//! `.task` import and export of task definitions (spec §1.1–1.2), enabling and disabling periodic
//! definitions, and the OpenAPI document of the native API.
//!
//! Import is all-or-nothing: every definition is read and compiled (422 with per-definition
//! diagnostics), labels are checked (409 naming them), and only then are all of them saved in one
//! store transaction.

use super::defs::diagnostics_json;
use super::error::ApiError;
use super::http::{self, Body};
use super::App;
use crate::flow::compile;
use crate::flow::load::{self, RawDefinition};
use crate::limits::API_LIST_MAX;
use crate::scheduler::new_definition;
use crate::store::DefinitionRecord;
use hyper::body::Incoming;
use hyper::{header, Request, Response, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};

/// The OpenAPI 3.0 document of the native endpoints.
const OPENAPI: &str = include_str!("../../assets/openapi.json");

/// `GET /api/openapi.json`.
pub fn openapi() -> Response<Body> {
    http::text(StatusCode::OK, "application/json", OPENAPI.to_string())
}

/// What the store holds for the ids and labels an import names.
struct Existing {
    by_id: HashMap<String, DefinitionRecord>,
    by_label: HashMap<String, DefinitionRecord>,
}

async fn existing(app: &App, raws: &[RawDefinition]) -> Result<Existing, ApiError> {
    let ids: Vec<String> = raws.iter().filter_map(|r| r.id.clone()).collect();
    let labels: Vec<String> = raws.iter().map(|r| r.label.clone()).collect();
    app.sched
        .store()
        .read(move |rx| {
            let mut by_id = HashMap::new();
            for id in ids {
                if let Some(d) = rx.definition(&id)?.filter(|d| !d.deleted) {
                    by_id.insert(id, d);
                }
            }
            let mut by_label = HashMap::new();
            for label in labels {
                if let Some(d) = rx.definition_by_label(&label)? {
                    by_label.insert(label, d);
                }
            }
            Ok(Existing { by_id, by_label })
        })
        .await
        .map_err(ApiError::store)
}

fn conflict(what: &str, names: BTreeSet<String>) -> ApiError {
    let list: Vec<String> = names.into_iter().collect();
    let mut e = ApiError::conflict(format!("{what}: {}", list.join(", ")));
    e.details = Some(Box::new(json!({ "labels": list })));
    e
}

/// Whether `?replace=true` (or `1`) was given.
fn replace_mode(req: &Request<Incoming>) -> Result<bool, ApiError> {
    let mut replace = false;
    for (k, v) in http::query(req) {
        if k == "replace" {
            replace = match v.as_str() {
                "true" | "1" | "" => true,
                "false" | "0" => false,
                _ => return Err(ApiError::field("replace", "replace must be true or false")),
            };
        }
    }
    Ok(replace)
}

/// `POST /api/task-defs/import[?replace=true]`: a `.task` array (or one definition).
pub async fn import(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let replace = replace_mode(&req)?;
    let body = http::read_json(req, app.config.body_bytes_max).await?;
    if body.as_array().is_some_and(Vec::is_empty) {
        return Err(ApiError::bad_json("the .task array holds no definition"));
    }
    // 1. Read and compile every definition.
    let mut raws = Vec::new();
    let mut flows = Vec::new();
    let mut report = Vec::new();
    let mut invalid = false;
    for (i, loaded) in load::load_value(body, "definition").into_iter().enumerate() {
        match loaded {
            Ok(raw) => {
                let compiled = compile::compile(&raw);
                invalid |= compiled.has_errors();
                report.push(json!({"index": i, "label": raw.label,
                    "valid": !compiled.has_errors(),
                    "diagnostics": diagnostics_json(&compiled.diagnostics)}));
                flows.push((compiled.flow, compiled.diagnostics));
                raws.push(raw);
            }
            Err(e) => {
                invalid = true;
                report.push(json!({"index": i, "label": e.what, "valid": false,
                    "diagnostics": [{"severity": "error", "message": e.message}]}));
            }
        }
    }
    if invalid {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_definition",
            "definitions in the file have errors; nothing was imported",
        );
        e.details = Some(Box::new(json!({ "definitions": report })));
        return Err(e);
    }
    // 2. Labels: unique inside the file, and free in the store (or replaced).
    let mut seen = BTreeSet::new();
    let repeated: BTreeSet<String> = raws
        .iter()
        .filter(|r| !seen.insert(r.label.clone()))
        .map(|r| r.label.clone())
        .collect();
    if !repeated.is_empty() {
        return Err(conflict(
            "labels repeated in the file; nothing was imported",
            repeated,
        ));
    }
    let existing = existing(app, &raws).await?;
    let mut taken = BTreeSet::new();
    let mut ids_taken = BTreeSet::new();
    for raw in raws.iter_mut() {
        let by_id = raw.id.as_ref().and_then(|id| existing.by_id.get(id));
        let by_label = existing.by_label.get(&raw.label);
        let target = match (by_id, by_label) {
            (_, Some(l)) if !replace || by_id.is_some_and(|d| d.id != l.id) => {
                taken.insert(raw.label.clone());
                continue;
            }
            (Some(d), _) if !replace => {
                ids_taken.insert(d.id.clone());
                continue;
            }
            (Some(d), _) | (None, Some(d)) => Some(d),
            (None, None) => None,
        };
        // RDS imports disabled; a replaced definition keeps its own enable state.
        raw.if_enable = target.is_some_and(|d| d.if_enable) && raw.periodic_task;
        if let Some(d) = target {
            raw.id = Some(d.id.clone());
        }
        raw.extra.insert("windcategoryId".into(), json!(0));
        raw.extra
            .entry("templateName")
            .or_insert_with(|| json!("userTemplate"));
    }
    if !taken.is_empty() {
        return Err(conflict(
            "labels used by existing task definitions (use ?replace=true to update them); \
             nothing was imported",
            taken,
        ));
    }
    if !ids_taken.is_empty() {
        return Err(conflict(
            "ids of existing task definitions (use ?replace=true to update them); \
             nothing was imported",
            ids_taken,
        ));
    }
    // 3. Save all of them in one transaction.
    let now = app.sched.now_ms();
    let mut news = Vec::with_capacity(raws.len());
    let mut warnings = Vec::with_capacity(raws.len());
    for (raw, (flow, diags)) in raws.iter_mut().zip(flows) {
        let mut flow = flow.expect("compiled without errors");
        if let Some(p) = flow.periodic.as_mut() {
            p.enabled = raw.if_enable;
        }
        news.push(new_definition(raw, &flow, now));
        warnings.push(diags);
    }
    let saved = app
        .sched
        .save_definitions(news, replace)
        .await
        .map_err(ApiError::store)?;
    reload(app).await;
    let items: Vec<Value> = saved
        .iter()
        .zip(raws.iter().zip(&warnings))
        .map(|(s, (raw, w))| {
            json!({"id": s.id, "label": raw.label, "version": s.version,
                "changed": s.changed, "warnings": diagnostics_json(w)})
        })
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({"imported": items.len(), "items": items}),
    ))
}

/// Reschedules the periodic definitions (after any change to definitions); a scheduler that is
/// going away needs no new schedule.
pub(super) async fn reload(app: &App) {
    if let Err(e) = app.sched.reload_periodic().await {
        log::warn!("periodic definitions not rescheduled: {e}");
    }
}

/// One stored definition in the `.task` export shape (§1.1): `detail` as a JSON string,
/// `ifEnable` 0 as RDS writes it, plus `releaseSites`.
fn export_json(d: &DefinitionRecord) -> Result<Value, ApiError> {
    let raw = match load::load_text(&d.body, &d.label).pop() {
        Some(Ok(raw)) => raw,
        _ => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store",
                format!("stored task definition {} cannot be read", d.id),
            ))
        }
    };
    let extra = |k: &str, default: Value| raw.extra.get(k).cloned().unwrap_or(default);
    let detail = serde_json::to_string(&Value::Object(raw.detail.clone())).unwrap_or_default();
    let mut obj = Map::new();
    for (k, v) in &raw.extra {
        obj.insert(k.clone(), v.clone());
    }
    let fields = [
        ("id", json!(d.id)),
        ("projectId", extra("projectId", Value::Null)),
        ("detail", json!(detail)),
        ("version", json!(d.version)),
        ("label", json!(d.label)),
        ("status", extra("status", json!(0))),
        ("remark", json!(raw.remark.clone().unwrap_or_default())),
        (
            "templateDescription",
            extra("templateDescription", json!("")),
        ),
        ("templateName", extra("templateName", json!("userTemplate"))),
        ("period", json!(d.period_ms)),
        ("periodicTask", json!(i64::from(d.periodic))),
        ("ifEnable", json!(0)),
        ("delay", json!(d.delay_ms)),
        ("windcategoryId", extra("windcategoryId", json!(0))),
        ("releaseSites", json!(d.release_sites)),
    ];
    for (k, v) in fields {
        obj.insert(k.to_string(), v);
    }
    if d.release_always {
        obj.insert("releasePolicy".into(), json!("always"));
    }
    Ok(Value::Object(obj))
}

/// `GET /api/task-defs/export[?ids=a,b]`: a `.task` array RDS can import.
pub async fn export(app: &App, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let ids: Option<Vec<String>> = http::query(req)
        .into_iter()
        .find(|(k, _)| k == "ids")
        .map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).collect());
    let items = export_items(app, ids).await?;
    let mut resp = http::json(StatusCode::OK, &Value::Array(items));
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_static("attachment; filename=\"vwed-export.task\""),
    );
    Ok(resp)
}

/// RDS `POST /api/windTaskdef/batchExportTask` with `["id", ...]`: the `.task` file
/// `taskDef.task` as `application/octet-stream`; a bad body or unknown ids answer RDS's
/// envelope with code 9000.
pub async fn rds_batch_export(app: &App, req: Request<Incoming>) -> Response<Body> {
    let ids = match http::read_json(req, app.config.body_bytes_max).await {
        Ok(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect::<Vec<_>>(),
        Ok(_) => return rds_error("the body must be a JSON array of definition ids"),
        Err(e) => return rds_error(&e.message),
    };
    match export_items(app, Some(ids)).await {
        Ok(items) => {
            let text = serde_json::to_vec(&Value::Array(items)).unwrap_or_default();
            let mut resp = http::text(StatusCode::OK, "application/octet-stream", String::new());
            *resp.body_mut() = http_body_util::BodyExt::boxed(http_body_util::Full::new(
                hyper::body::Bytes::from(text),
            ));
            resp.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                header::HeaderValue::from_static("attachment; filename=\"taskDef.task\""),
            );
            resp
        }
        Err(e) => rds_error(&e.message),
    }
}

fn rds_error(message: &str) -> Response<Body> {
    http::json(
        StatusCode::OK,
        &json!({"code": 9000, "msg": message, "data": null}),
    )
}

/// The `.task` entries of `ids` (deduplicated; all live definitions when `None`).
async fn export_items(app: &App, ids: Option<Vec<String>>) -> Result<Vec<Value>, ApiError> {
    let ids: Option<Vec<String>> = ids.map(|ids| {
        let mut seen = BTreeSet::new();
        ids.into_iter()
            .filter(|s| !s.is_empty() && seen.insert(s.clone()))
            .collect()
    });
    if ids.as_ref().is_some_and(|ids| ids.len() > API_LIST_MAX) {
        return Err(ApiError::field(
            "ids",
            format!("at most API_LIST_MAX ({API_LIST_MAX}) ids"),
        ));
    }
    let defs = app
        .sched
        .store()
        .read(move |rx| match ids {
            None => Ok(Ok(rx.definitions(API_LIST_MAX)?)),
            Some(ids) => {
                let mut found = Vec::new();
                let mut missing = Vec::new();
                for id in ids {
                    match rx.definition(&id)?.filter(|d| !d.deleted) {
                        Some(d) => found.push(d),
                        None => missing.push(id),
                    }
                }
                Ok(if missing.is_empty() {
                    Ok(found)
                } else {
                    Err(missing)
                })
            }
        })
        .await
        .map_err(ApiError::store)?
        .map_err(|missing| {
            let mut e = ApiError::not_found(format!("no task definitions {}", missing.join(", ")));
            e.details = Some(Box::new(json!({ "ids": missing })));
            e
        })?;
    defs.iter().map(export_json).collect()
}

/// `POST /api/task-defs/{id}/enable` and `/disable`: sets `ifEnable` of a periodic definition
/// and reschedules at once.
pub async fn set_enabled(app: &App, id: &str, enabled: bool) -> Result<Response<Body>, ApiError> {
    let id2 = id.to_string();
    let def = app
        .sched
        .store()
        .read(move |rx| rx.definition(&id2))
        .await
        .map_err(ApiError::store)?
        .filter(|d| !d.deleted)
        .ok_or_else(|| ApiError::not_found(format!("no task definition {id}")))?;
    if !def.periodic {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_periodic",
            format!("task definition {id} is not periodic (periodicTask is 0)"),
        ));
    }
    let id2 = id.to_string();
    let found = app
        .sched
        .store()
        .write(move |tx| tx.set_definition_enabled(&id2, enabled))
        .await
        .map_err(ApiError::store)?;
    if !found {
        return Err(ApiError::not_found(format!("no task definition {id}")));
    }
    app.sched
        .reload_periodic()
        .await
        .map_err(|_| ApiError::shutting_down())?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"id": id, "label": def.label, "periodicTask": true, "ifEnable": enabled}),
    ))
}
