//! `/api/scripts` and `/api/scripts/{name}`: the JavaScript files of `<data_dir>/scripts/` that
//! `ScriptBp`, `ScriptVariablesBp` and `TriggerTaskEventBp` call. The file work (validation,
//! synced writes) runs on the script pool's threads, queued like a script call.

use super::error::ApiError;
use super::http::{self, Body};
use super::App;
use crate::limits::{SCRIPT_FILES_MAX, SCRIPT_FILE_BYTES_MAX};
use crate::script::{ScriptError, ScriptStore};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

/// `GET /api/scripts`.
pub async fn list(app: &App) -> Result<Response<Body>, ApiError> {
    let items = app.scripts.with_store(|store| store.list()).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"items": items, "total": items.len(), "filesMax": SCRIPT_FILES_MAX,
                "fileBytesMax": SCRIPT_FILE_BYTES_MAX, "generation": app.scripts.generation()}),
    ))
}

/// `GET /api/scripts/{name}`: the source as `text/javascript`.
pub async fn get(app: &App, name: &str) -> Result<Response<Body>, ApiError> {
    ScriptStore::check_name(name)?;
    let name = name.to_string();
    let source = app
        .scripts
        .with_store(move |store| store.get(&name))
        .await?;
    Ok(http::text(
        StatusCode::OK,
        "text/javascript; charset=utf-8",
        source,
    ))
}

/// `PUT /api/scripts/{name}` with the source as the body: compiled first, then written; 201
/// when new, 200 when replaced.
pub async fn put(
    app: &App,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    ScriptStore::check_name(name)?;
    let bytes = http::read_body(req, app.config.body_bytes_max).await?;
    if bytes.len() > SCRIPT_FILE_BYTES_MAX {
        return Err(ScriptError::TooLarge {
            what: "SCRIPT_FILE_BYTES_MAX",
            limit: SCRIPT_FILE_BYTES_MAX,
        }
        .into());
    }
    let source = String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            "the script is not UTF-8",
        )
    })?;
    let size = source.len();
    let created = app.scripts.put_script(name.to_string(), source).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(http::json(
        status,
        &json!({"name": name, "bytes": size, "created": created}),
    ))
}

/// `DELETE /api/scripts/{name}`.
pub async fn delete(app: &App, name: &str) -> Result<Response<Body>, ApiError> {
    ScriptStore::check_name(name)?;
    app.scripts.delete_script(name.to_string()).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"name": name, "deleted": true}),
    ))
}
