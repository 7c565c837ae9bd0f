//! `/api/cache/{key}`: the global data cache that `CacheDataBp` and `GetCacheDataBp` use. Writes
//! go through the scheduler, which keeps the in-memory mirror and the table in step.

use super::error::ApiError;
use super::http::{self, Body};
use super::App;
use crate::value;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

/// `GET /api/cache/{key}`.
pub async fn get(app: &App, key: &str) -> Result<Response<Body>, ApiError> {
    let key2 = key.to_string();
    let found = app
        .sched
        .store()
        .read(move |rx| rx.cache_get(&key2))
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::not_found(format!("no cache key {key}")))?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"key": key, "value": found}),
    ))
}

/// `PUT /api/cache/{key}` with `{"value": ...}` (stored as its string form, as RDS does).
pub async fn put(app: &App, key: &str, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = http::read_json(req, app.config.body_bytes_max).await?;
    let text = match body.get("value") {
        None | Some(Value::Null) => return Err(ApiError::field("value", "value is required")),
        Some(v) => value::to_java_string(v).unwrap_or_default(),
    };
    app.sched
        .cache_set(key, &text)
        .await
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit", e))?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"key": key, "value": text}),
    ))
}

/// `DELETE /api/cache/{key}`.
pub async fn delete(app: &App, key: &str) -> Result<Response<Body>, ApiError> {
    let existed = app
        .sched
        .cache_delete(key)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e))?;
    if !existed {
        return Err(ApiError::not_found(format!("no cache key {key}")));
    }
    Ok(http::json(
        StatusCode::OK,
        &json!({"key": key, "deleted": true}),
    ))
}
