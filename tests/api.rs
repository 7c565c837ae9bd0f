//! The HTTP API as clients see it: the real server on 127.0.0.1:0 with a temporary data dir,
//! spoken to over plain HTTP/1.1 — every native endpoint, its bad inputs, auth, the body cap,
//! and a shutdown during active runs followed by a restart that finishes them.

mod support;

use serde_json::{json, Value};
use support::{config, definition, delay_def, Server};
use vwed::server;

#[test]
fn health_status_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    assert_eq!(s.call("GET", "/healthz", None, &[]).0, 200);
    let (code, status) = s.json("GET", "/api/system/status", None);
    assert_eq!(code, 200);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(status["sqliteVersion"].as_str().unwrap().starts_with('3'));
    for bound in [
        "runSlots",
        "readyRings",
        "timers",
        "writerQueue",
        "httpConnections",
    ] {
        assert!(
            status["bounds"][bound]["capacity"].as_u64().unwrap() > 0,
            "{bound}"
        );
    }
    let (code, metrics) = s.call("GET", "/metrics", None, &[]);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("vwed_bound_capacity{structure=\"runSlots\"}"),
        "{metrics}"
    );
    assert_eq!(s.call("GET", "/nope", None, &[]).0, 404);
    assert_eq!(s.call("DELETE", "/healthz", None, &[]).0, 405);
    s.stop();
}

#[test]
fn task_definitions_crud_versions_and_validation() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let (code, list) = s.json("GET", "/api/task-defs", None);
    assert_eq!(code, 200);
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["label"] == "demo_bench"));
    let (code, created) = s.json("POST", "/api/task-defs", Some(delay_def("d1")));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["version"], 1);
    let (code, again) = s.json("POST", "/api/task-defs", Some(delay_def("d1")));
    assert_eq!(
        (code, again["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let mut changed = delay_def("d1");
    changed["remark"] = json!("second");
    let (code, updated) = s.json("PUT", "/api/task-defs/d1", Some(changed));
    assert_eq!(
        (code, updated["version"].as_i64()),
        (200, Some(2)),
        "{updated}"
    );
    let (_, versions) = s.json("GET", "/api/task-defs/d1/versions", None);
    assert_eq!(versions["items"].as_array().unwrap().len(), 2);
    let bad = definition(
        "d2",
        json!([{"id": 1, "name": "b1", "blockType": "NoSuchBp"}]),
    );
    let (code, err) = s.json("POST", "/api/task-defs", Some(bad.clone()));
    assert_eq!(code, 422, "{err}");
    assert!(err["error"]["details"]
        .to_string()
        .contains("unknown block type NoSuchBp"));
    assert_eq!(
        s.json("GET", "/api/task-defs/d2", None).0,
        404,
        "nothing stored"
    );
    let (code, report) = s.json("POST", "/api/task-defs/validate", Some(bad));
    assert_eq!((code, report["valid"].as_bool()), (200, Some(false)));
    let (code, err) = s.call("POST", "/api/task-defs", Some("{not json"), &[]);
    assert_eq!(code, 400, "{err}");
    assert!(err.contains("bad_json"));
    let (code, _) = s.json("PUT", "/api/task-defs/d1", Some(delay_def("other")));
    assert_eq!(code, 400, "an id in the body must match the path");
    assert_eq!(s.json("DELETE", "/api/task-defs/d1", None).0, 200);
    assert_eq!(s.json("GET", "/api/task-defs/d1", None).0, 404);
    assert_eq!(
        s.json("PUT", "/api/task-defs/zzz", Some(delay_def("zzz")))
            .0,
        404
    );
    s.stop();
}

#[test]
fn tasks_run_and_are_listed_with_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    s.json("POST", "/api/task-defs", Some(delay_def("d")));
    let body = json!({"defLabel": "d", "inputParams": {"ms": "10"}, "taskRecordId": "order-1"});
    let (code, task) = s.json("POST", "/api/tasks", Some(body.clone()));
    assert_eq!(code, 201, "{task}");
    assert_eq!(task["id"], "order-1");

    let (code, again) = s.json("POST", "/api/tasks", Some(body));
    assert_eq!((code, again["id"].as_str()), (200, Some("order-1")));
    let (code, _) = s.json(
        "POST",
        "/api/tasks",
        Some(json!({"defLabel": "d", "taskRecordId": "order-1", "priority": 5})),
    );
    assert_eq!(code, 409);
    let done = s.wait_status("order-1", "finished");
    assert_eq!(done["code"], 1003);
    let (_, logs) = s.json("GET", "/api/tasks/order-1/logs", None);
    assert_eq!(logs["items"].as_array().unwrap().len(), 2);
    let (_, blocks) = s.json("GET", "/api/tasks/order-1/blocks", None);
    assert_eq!(blocks["items"].as_array().unwrap().len(), 4);
    for i in 0..4 {
        let (code, _) = s.json(
            "POST",
            "/api/tasks",
            Some(json!({"defId": "d", "taskRecordId": format!("t{i}")})),
        );
        assert_eq!(code, 201);
    }
    for i in 0..4 {
        s.wait_status(&format!("t{i}"), "finished");
    }
    let (code, page) = s.json("GET", "/api/tasks?status=finished&limit=3", None);
    assert_eq!(code, 200);
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["t3", "t2", "t1"]);
    let cursor = page["nextCursor"].as_i64().unwrap();
    let (_, rest) = s.json(
        "GET",
        &format!("/api/tasks?status=finished&limit=3&cursor={cursor}"),
        None,
    );
    let ids: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["t0", "order-1"]);
    assert_eq!(rest["nextCursor"], Value::Null);
    assert_eq!(s.json("GET", "/api/tasks?limit=0", None).0, 400);
    assert_eq!(s.json("GET", "/api/tasks?status=bogus", None).0, 400);
    assert_eq!(s.json("GET", "/api/tasks?colour=red", None).0, 400);
    assert_eq!(s.json("GET", "/api/tasks/nope", None).0, 404);
    assert_eq!(s.json("GET", "/api/tasks/nope/logs", None).0, 404);
    s.stop();
}

#[test]
fn bad_task_requests_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let (code, err) = s.json("POST", "/api/tasks", Some(json!({"defLabel": 7})));
    assert_eq!(code, 400);
    assert_eq!(err["error"]["field"], "defLabel");
    let (code, err) = s.json(
        "POST",
        "/api/tasks",
        Some(json!({"defLabel": "demo_bench", "inputParams": [1]})),
    );
    assert_eq!(
        (code, err["error"]["field"].as_str()),
        (400, Some("inputParams"))
    );
    let (code, err) = s.json(
        "POST",
        "/api/tasks",
        Some(json!({"defLabel": "demo_bench", "priority": "high"})),
    );
    assert_eq!(
        (code, err["error"]["field"].as_str()),
        (400, Some("priority"))
    );
    let (code, _) = s.json("POST", "/api/tasks", Some(json!({})));
    assert_eq!(code, 400);
    let (code, _) = s.json("POST", "/api/tasks", Some(json!({"defLabel": "missing"})));
    assert_eq!(code, 404);
    let (code, _) = s.json("POST", "/api/tasks", Some(json!([1, 2])));
    assert_eq!(code, 400);
    s.stop();
}

#[test]
fn operator_actions_follow_the_run_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    s.json("POST", "/api/task-defs", Some(delay_def("slow")));
    let (_, task) = s.json(
        "POST",
        "/api/tasks",
        Some(json!({"defId": "slow", "inputParams": {"ms": "60000"}})),
    );
    let id = task["id"].as_str().unwrap().to_string();
    s.wait_status(&id, "running");
    let (code, paused) = s.json("POST", &format!("/api/tasks/{id}/pause"), None);
    assert_eq!(
        (code, paused["status"].as_str()),
        (200, Some("paused")),
        "{paused}"
    );
    assert_eq!(paused["code"], 1002);
    let (code, _) = s.json("POST", &format!("/api/tasks/{id}/retry"), None);
    assert_eq!(code, 409, "retry is for interrupted runs");
    let (code, resumed) = s.json("POST", &format!("/api/tasks/{id}/resume"), None);
    assert_eq!(code, 200, "{resumed}");
    s.wait_status(&id, "running");
    let (code, _) = s.json(
        "POST",
        &format!("/api/tasks/{id}/priority"),
        Some(json!({"priority": 7})),
    );
    assert_eq!(code, 200);
    let (code, stopped) = s.json(
        "POST",
        &format!("/api/tasks/{id}/stop"),
        Some(json!({"releaseSites": true})),
    );
    assert_eq!(
        (code, stopped["status"].as_str()),
        (200, Some("stopped")),
        "{stopped}"
    );
    assert_eq!(stopped["code"], 1001);
    let (code, err) = s.json("POST", &format!("/api/tasks/{id}/resume"), None);
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (409, Some("illegal_state"))
    );
    assert_eq!(s.json("POST", &format!("/api/tasks/{id}/fly"), None).0, 404);
    assert_eq!(s.json("POST", "/api/tasks/none/stop", None).0, 404);
    let (code, _) = s.json(
        "POST",
        &format!("/api/tasks/{id}/stop"),
        Some(json!({"releaseSites": "yes"})),
    );
    assert_eq!(code, 400);
    s.stop();
}

#[test]
fn the_data_cache_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    assert_eq!(s.json("GET", "/api/cache/k", None).0, 404);
    let (code, put) = s.json("PUT", "/api/cache/k", Some(json!({"value": 42})));
    assert_eq!((code, put["value"].as_str()), (200, Some("42")));
    let (_, got) = s.json("GET", "/api/cache/k", None);
    assert_eq!(got["value"], "42");
    assert_eq!(s.json("PUT", "/api/cache/k", Some(json!({}))).0, 400);
    assert_eq!(s.json("DELETE", "/api/cache/k", None).0, 200);
    assert_eq!(s.json("DELETE", "/api/cache/k", None).0, 404);
    let big = "x".repeat(vwed::limits::CACHE_VALUE_BYTES_MAX + 1);
    let (code, err) = s.json("PUT", "/api/cache/big", Some(json!({"value": big})));
    assert_eq!(code, 422);
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("CACHE_VALUE_BYTES_MAX"));
    s.stop();
}

#[test]
fn oversized_bodies_are_refused_with_the_limit_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.http.body_bytes_max = 1024;
    let s = Server::start(&c);
    let body = json!({"value": "x".repeat(2000)}).to_string();
    let (code, err) = s.call("PUT", "/api/cache/k", Some(&body), &[]);
    assert_eq!(code, 413);
    assert!(err.contains("REQUEST_BODY_BYTES_MAX"), "{err}");
    assert_eq!(
        s.json("GET", "/api/cache/k", None).0,
        404,
        "nothing written"
    );
    s.stop();
}

#[test]
fn mutations_need_the_bearer_token_when_tokens_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.tokens = vec!["a-long-enough-secret-token".into()];
    let s = Server::start(&c);
    let body = Some(r#"{"value": 1}"#);
    let (code, _) = s.call("PUT", "/api/cache/k", body, &[]);
    assert_eq!(code, 401);
    let (code, _) = s.call(
        "PUT",
        "/api/cache/k",
        body,
        &[("Authorization", "Bearer wrong-token-value-here")],
    );
    assert_eq!(code, 403);
    let ok = [("Authorization", "Bearer a-long-enough-secret-token")];
    assert_eq!(s.call("PUT", "/api/cache/k", body, &ok).0, 200);
    assert_eq!(
        s.call("GET", "/api/cache/k", None, &[]).0,
        200,
        "reads stay open"
    );
    s.stop();
}

#[test]
fn a_non_loopback_listener_without_a_token_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.listen = "0.0.0.0:0".parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(server::start(&c)).err().expect("refused");
    assert!(err.contains("token"), "{err}");
}

#[test]
fn a_shutdown_during_runs_is_finished_by_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let s = Server::start(&c);
    s.json("POST", "/api/task-defs", Some(delay_def("d")));
    let mut ids = Vec::new();
    for i in 0..3 {
        let (code, task) = s.json("POST", "/api/tasks", Some(json!({"defId": "d", "taskRecordId": format!("r{i}"), "inputParams": {"ms": "1500"}})));
        assert_eq!(code, 201, "{task}");
        ids.push(task["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        s.wait_status(id, "running");
    }
    s.stop();
    let s = Server::start(&c);
    for id in &ids {
        let task = s.wait_status(id, "finished");
        assert_eq!(task["code"], 1003);
        let (_, logs) = s.json("GET", &format!("/api/tasks/{id}/logs"), None);
        assert_eq!(
            logs["items"].as_array().unwrap().len(),
            2,
            "nothing ran twice"
        );
    }
    s.stop();
}
