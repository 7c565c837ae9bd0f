//! `/healthz`, `/api/system/status` and `/metrics`: version, uptime, RSS, SQLite version, and for
//! every bounded structure its capacity and fill, with the rejection counters.

use super::error::ApiError;
use super::http::{self, Body};
use super::App;
use crate::store::Store;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;

/// `GET /healthz`: 200 while serving, 503 while shutting down.
pub fn health(app: &App) -> Response<Body> {
    if app.shutting_down.load(Relaxed) {
        return http::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "shutting down\n".into(),
        );
    }
    http::text(StatusCode::OK, "text/plain", "ok\n".into())
}

async fn snapshot(app: &App) -> Result<Value, ApiError> {
    let runs = app
        .sched
        .store()
        .read(|rx| rx.count_by_status())
        .await
        .map_err(ApiError::store)?;
    let runs: serde_json::Map<String, Value> =
        runs.into_iter().map(|(s, n)| (s, json!(n))).collect();
    let s = app.sched.stats();
    let st = app.sched.store().stats();
    let c = &app.counters;
    let (rss, rss_peak) = crate::budget::rss();
    let bound = |fill: usize, capacity: usize| json!({"fill": fill, "capacity": capacity});
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": app.started.elapsed().as_secs(),
        "rssBytes": rss,
        "rssPeakBytes": rss_peak,
        "sqliteVersion": Store::sqlite_version(),
        "runs": runs,
        "bounds": {
            "runSlots": bound(s.runs_loaded, s.runs_loaded_max),
            "readyRings": bound(s.ready_len, s.ready_capacity),
            "timers": bound(s.timers, s.timers_capacity),
            "schedulerCommands": bound(s.commands_queued, s.commands_capacity),
            "flowCache": bound(s.flows_cached, crate::limits::FLOW_CACHE_MAX),
            "dataCache": bound(s.cache_entries, crate::limits::CACHE_ENTRIES_MAX),
            "siteRunsWoken": bound(s.sites_woken, crate::limits::SITE_WAITERS_MAX),
            "opWaits": bound(s.op_waits, s.runs_loaded_max * crate::limits::FIBERS_MAX),
            "writerQueue": bound(st.writer_queue_len, st.writer_queue_capacity),
            "readPool": bound(st.reads_in_use, st.read_pool_size as usize),
            "httpConnections": bound(app.connections_open(), app.config.connections_max),
        },
        "counters": {
            "schedulerInflight": s.inflight,
            "commitFailures": s.commit_failures,
            "storeCommits": st.commits,
            "storeJobs": st.jobs,
            "storeFailedJobs": st.failed_jobs,
            "storeLargestBatch": st.largest_batch,
            "prunedTasks": st.pruned_tasks,
            "prunedBlockRecords": st.pruned_block_records,
            "prunedTaskLogs": st.pruned_task_logs,
            "httpRequests": c.requests.load(Relaxed),
            "httpConnections": c.connections.load(Relaxed),
            "httpConnectionsRefused": c.connections_refused.load(Relaxed),
            "httpHandlerTimeouts": c.handler_timeouts.load(Relaxed),
            "httpUnauthorized": c.unauthorized.load(Relaxed),
        },
        "webhooks": app.webhooks.to_json(),
    }))
}

/// `GET /api/system/status`.
pub async fn status(app: &App) -> Result<Response<Body>, ApiError> {
    Ok(http::json(StatusCode::OK, &snapshot(app).await?))
}

/// `GET /metrics`: the status numbers in Prometheus text format.
pub async fn metrics(app: &App) -> Result<Response<Body>, ApiError> {
    let snap = snapshot(app).await?;
    let mut out = String::new();
    let mut gauge = |name: &str, labels: &str, v: &Value| {
        if let Some(n) = v.as_f64() {
            out.push_str(&format!("vwed_{name}{labels} {n}\n"));
        }
    };
    gauge("uptime_seconds", "", &snap["uptimeSeconds"]);
    gauge("rss_bytes", "", &snap["rssBytes"]);
    gauge("rss_peak_bytes", "", &snap["rssPeakBytes"]);
    if let Some(runs) = snap["runs"].as_object() {
        for (status, n) in runs {
            gauge("runs", &format!("{{status=\"{status}\"}}"), n);
        }
    }
    if let Some(bounds) = snap["bounds"].as_object() {
        for (name, b) in bounds {
            gauge(
                "bound_fill",
                &format!("{{structure=\"{name}\"}}"),
                &b["fill"],
            );
            gauge(
                "bound_capacity",
                &format!("{{structure=\"{name}\"}}"),
                &b["capacity"],
            );
        }
    }
    if let Some(counters) = snap["counters"].as_object() {
        for (name, n) in counters {
            gauge("counter", &format!("{{name=\"{name}\"}}"), n);
        }
    }
    if let Some(hooks) = snap["webhooks"].as_array() {
        for hook in hooks {
            let url = hook["url"].as_str().unwrap_or("").replace('"', "%22");
            for name in [
                "delivered",
                "retries",
                "dropped",
                "skippedByPruning",
                "cursor",
            ] {
                gauge(
                    "webhook",
                    &format!("{{url=\"{url}\",counter=\"{name}\"}}"),
                    &hook[name],
                );
            }
        }
    }
    Ok(http::text(StatusCode::OK, "text/plain; version=0.0.4", out))
}
