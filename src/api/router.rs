//! Routing: method and path segments to handlers, with the bearer-token check for every
//! mutating request. One table-like `match`, so every endpoint is listed in one place.

use super::defs_io;
use super::error::ApiError;
use super::http::{self, Body};
use super::{cache, defs, events, robots, scripts, sites, system, tasks, App};
use super::{rds, rds_query, rds_sites};
use crate::scheduler::Control;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Dispatches one request.
pub async fn route(app: &Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(http::percent_decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    if method != Method::GET && method != Method::HEAD {
        authorize(app, &req)?;
    }
    if method == Method::GET && rds::mutating_get(&seg) {
        authorize(app, &req)?;
    }
    use Method as M;
    match (&method, seg.as_slice()) {
        (&M::GET, ["healthz"]) => Ok(system::health(app)),
        (&M::GET, ["metrics"]) => system::metrics(app).await,
        (&M::GET, ["api", "system", "status"]) => system::status(app).await,
        (&M::GET, ["api", "events"]) => events::stream(app, &req).await,

        (&M::GET, ["api", "task-defs"]) => defs::list(app).await,
        (&M::POST, ["api", "task-defs"]) => defs::create(app, req).await,
        (&M::POST, ["api", "task-defs", "validate"]) => defs::validate(app, req).await,
        (&M::POST, ["api", "task-defs", "import"]) => defs_io::import(app, req).await,
        (&M::GET, ["api", "task-defs", "export"]) => defs_io::export(app, &req).await,
        (&M::POST, ["api", "task-defs", id, "enable"]) => defs_io::set_enabled(app, id, true).await,
        (&M::POST, ["api", "task-defs", id, "disable"]) => {
            defs_io::set_enabled(app, id, false).await
        }
        (&M::GET, ["api", "openapi.json"]) => Ok(defs_io::openapi()),
        (&M::GET, ["api", "task-defs", id]) => defs::get(app, id).await,
        (&M::PUT, ["api", "task-defs", id]) => defs::update(app, id, req).await,
        (&M::DELETE, ["api", "task-defs", id]) => defs::delete(app, id).await,
        (&M::GET, ["api", "task-defs", id, "versions"]) => defs::versions(app, id).await,

        (&M::POST, ["api", "tasks"]) => tasks::create(app, req).await,
        (&M::GET, ["api", "tasks"]) => tasks::list(app, &req).await,
        (&M::GET, ["api", "tasks", id]) => tasks::get(app, id).await,
        (&M::GET, ["api", "tasks", id, "blocks"]) => tasks::blocks(app, id).await,
        (&M::GET, ["api", "tasks", id, "logs"]) => tasks::logs(app, id).await,
        (&M::POST, ["api", "tasks", id, action]) => tasks::control(app, id, action, req).await,
        (&M::POST, ["api", "tasks", id, "blocks", block, action]) => {
            robots::operator(app, id, block, action).await
        }
        (&M::GET, ["api", "robots"]) => robots::list(app).await,
        (&M::GET, ["api", "robots", id]) => robots::get(app, id).await,
        (&M::POST, ["api", "sim", kind, id, action]) => {
            robots::inject(app, kind, id, action, req).await
        }

        (&M::GET, ["api", "sites"]) => sites::list(app, &req).await,
        (&M::POST, ["api", "sites"]) => sites::create(app, req).await,
        (&M::POST, ["api", "sites", "import"]) => sites::import(app, req).await,
        (&M::GET, ["api", "sites", "waiters"]) => sites::waiters(app, &req).await,
        (&M::GET, ["api", "sites", id]) => sites::get(app, id).await,
        (&M::PUT, ["api", "sites", id]) => sites::put(app, id, req).await,
        (&M::DELETE, ["api", "sites", id]) => sites::delete(app, id).await,
        (&M::GET, ["api", "sites", id, "log"]) => sites::log(app, id, &req).await,
        (&M::POST, ["api", "sites", id, action]) => sites::action(app, id, action, req).await,

        (&M::GET, ["api", "cache", key]) => cache::get(app, key).await,
        (&M::PUT, ["api", "cache", key]) => cache::put(app, key, req).await,
        (&M::DELETE, ["api", "cache", key]) => cache::delete(app, key).await,

        (&M::GET, ["api", "scripts"]) => scripts::list(app).await,
        (&M::GET, ["api", "scripts", name]) => scripts::get(app, name).await,
        (&M::PUT, ["api", "scripts", name]) => scripts::put(app, name, req).await,
        (&M::DELETE, ["api", "scripts", name]) => scripts::delete(app, name).await,

        // RDS-compatible routes (spec §5): `{code, msg, data}` answers, HTTP 200.
        (&M::POST, ["api", "set-order"]) => Ok(rds::set_order(app, req).await),
        (&M::POST, ["api", "work-sites", "sites"]) => Ok(rds_sites::sites(app, req).await),
        (&M::POST, ["api", "work-sites", "lockedSites"]) => Ok(rds_sites::lock(app, req).await),
        (&M::POST, ["api", "work-sites", "unLockedSitesByTaskRecordId"]) => {
            Ok(rds_sites::unlock_by_record(app, req).await)
        }
        (&M::POST, ["api", "work-sites", "updateFilledStatus"]) => {
            Ok(rds_sites::update_filled(app, req).await)
        }
        (&M::POST, ["api", "work-sites", "setWorksiteContent"]) => {
            Ok(rds_sites::set_content(app, req).await)
        }
        (
            &M::POST,
            ["api", "work-sites", route @ ("unLockedSites" | "worksiteFilled" | "worksiteFiled" | "worksiteUnFilled"
            | "worksiteUnFiled" | "enableWorksite" | "disableWorksite" | "clearSyncFailed")],
        ) => Ok(rds_sites::change(app, req, route).await),
        (&M::POST, ["api", "stop-task"]) => Ok(rds::stop_task(app, req).await),
        (&M::POST, ["api", "releaseWaitPassBlock"]) => Ok(rds::release_wait_pass(app, req).await),
        (&M::POST, ["api", "stop-all-task"]) => Ok(rds::end_many(app, req, Control::Stop).await),
        (&M::POST, ["api", "manual-end"]) => Ok(rds::end_many(app, req, Control::ManualEnd).await),
        (&M::GET, ["api", "suspend-task", _, rec]) => {
            Ok(rds::run_action(app, rec, Control::Pause).await)
        }
        (&M::GET, ["api", "start-task", _, rec]) => {
            Ok(rds::run_action(app, rec, Control::Resume).await)
        }
        (&M::GET, ["api", "restart-task", _, rec]) => {
            Ok(rds::run_action(app, rec, Control::Retry).await)
        }
        (&M::POST, ["api", "setTaskPriority"]) => Ok(rds::set_priority(app, req).await),
        (&M::POST, ["api", "queryWindTask" | "queryTaskRecord"]) => {
            Ok(rds_query::query_wind_task(app, req).await)
        }
        (&M::POST, ["api", "queryTaskRecordById"]) => {
            Ok(rds_query::query_record_by_id(app, req).await)
        }
        (&M::POST, ["api", "queryBlocksByTaskId"]) => Ok(rds_query::query_blocks(app, req).await),
        (&M::POST, ["api", "queryBlocksByTaskRecordId"]) => {
            Ok(rds_query::query_block_records(app, req).await)
        }
        (&M::POST, ["api", "queryLogsByTaskRecordId"]) => Ok(rds_query::query_logs(app, req).await),
        (&M::POST, ["api", "create-taskdef", "createOrUpdateTaskDef"]) => {
            Ok(rds::create_or_update_def(app, req).await)
        }
        (&M::POST, ["api", "queryTaskDefById"]) => Ok(rds::query_def_by_id(app, req).await),
        (&M::POST, ["api", "windTaskdef", "batchExportTask"]) => {
            Ok(rds::batch_export(app, req).await)
        }

        (_, ["healthz" | "metrics"]) | (_, ["api", ..]) if known_path(&seg) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )),
        _ => Err(ApiError::not_found(format!("no endpoint {method} {path}"))),
    }
}

/// Whether some method serves `seg` (for 405 rather than 404).
fn known_path(seg: &[&str]) -> bool {
    matches!(
        seg,
        ["healthz"]
            | ["metrics"]
            | ["api", "system", "status"]
            | ["api", "events"]
            | ["api", "task-defs"]
            | ["api", "task-defs", _]
            | ["api", "task-defs", _, "versions"]
            | ["api", "task-defs", _, "enable" | "disable"]
            | ["api", "openapi.json"]
            | ["api", "tasks"]
            | ["api", "tasks", _]
            | ["api", "tasks", _, _]
            | ["api", "tasks", _, "blocks", _, _]
            | ["api", "robots"]
            | ["api", "robots", _]
            | ["api", "sim", _, _, _]
            | ["api", "cache", _]
            | ["api", "scripts"]
            | ["api", "scripts", _]
            | ["api", "sites"]
            | ["api", "sites", _]
            | ["api", "sites", _, _]
    )
}

/// Mutations need a valid bearer token when tokens are configured or the listener is not
/// loopback: none → 401, a wrong one → 403.
fn authorize(app: &App, req: &Request<Incoming>) -> Result<(), ApiError> {
    let config = &app.config;
    if !config.mutations_need_token && config.tokens.is_empty() {
        return Ok(());
    }
    match http::bearer(req) {
        None => {
            app.counters.unauthorized.fetch_add(1, Relaxed);
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this request needs a bearer token (Authorization: Bearer <token>)",
            ))
        }
        Some(token) if config.tokens.iter().any(|t| constant_time_eq(t, token)) => Ok(()),
        Some(_) => {
            app.counters.unauthorized.fetch_add(1, Relaxed);
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the bearer token is not accepted",
            ))
        }
    }
}

/// Compares without stopping at the first difference (token checks should not leak timing).
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
