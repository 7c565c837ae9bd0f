//! Robots over HTTP against the real server and its simulated fleet: the robot list, a failed
//! robot action answered by an operator (redo, manual finish), failure injection, and the bad
//! inputs of each endpoint.

mod support;

use serde_json::{json, Value};
use support::{config, definition, until, Server};

/// One order on sim-01 (it starts at A-01) with one action at A-01: no travel, so the test
/// does not wait for the robot.
fn stay_def() -> Value {
    let simple = |v: &str| json!({"type": "Simple", "value": v});
    definition(
        "stay",
        json!([{"id": 1, "name": "b1", "blockType": "CSelectAgvBp",
            "inputParams": {"keyRoute": simple("A-01"), "vehicle": simple("sim-01")},
            "children": {"default": [
                {"id": 2, "name": "b2", "blockType": "CAgvOperationBp", "children": {},
                 "inputParams": {"targetSiteLabel": simple("A-01")}}]}}]),
    )
}

fn block_status(s: &Server, task: &str, block: &str) -> Option<i64> {
    let (code, out) = s.json("GET", &format!("/api/tasks/{task}/blocks"), None);
    assert_eq!(code, 200, "{out}");
    out["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == block)
        .and_then(|b| b["status"].as_i64())
}

#[test]
fn robots_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let (code, out) = s.json("GET", "/api/robots", None);
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["fleet"], "sim");
    let ids: Vec<&str> = out["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sim-01", "sim-02", "sim-03"]);
    let (code, robot) = s.json("GET", "/api/robots/sim-02", None);
    assert_eq!(code, 200, "{robot}");
    assert_eq!(
        (&robot["station"], &robot["batteryLevel"]),
        (&json!("A-02"), &json!(1.0))
    );
    let (code, out) = s.json("GET", "/api/robots/nope", None);
    assert_eq!(code, 404, "{out}");
    s.stop();
}

#[test]
fn a_failed_action_is_redone_or_finished_by_an_operator() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let (code, out) = s.json("POST", "/api/task-defs", Some(stay_def()));
    assert!(code == 200 || code == 201, "{out}");
    for (task, action) in [("t-redo", "redo"), ("t-hand", "manual-finish")] {
        let (code, out) = s.json(
            "POST",
            "/api/sim/robots/sim-01/fail",
            Some(json!({"reason": "pallet jammed"})),
        );
        assert_eq!(code, 200, "{out}");
        let body = json!({"defLabel": "stay", "taskRecordId": task});
        assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
        until("b2 waits for an operator", || {
            block_status(&s, task, "b2") == Some(1007)
        });
        let (_, t) = s.json("GET", &format!("/api/tasks/{task}"), None);
        assert_eq!(t["status"], "running", "{t}");
        // Only the waiting block can be answered.
        let (code, out) = s.json(
            "POST",
            &format!("/api/tasks/{task}/blocks/b1/{action}"),
            None,
        );
        assert_eq!(code, 409, "{out}");
        let (code, out) = s.json(
            "POST",
            &format!("/api/tasks/{task}/blocks/b2/{action}"),
            None,
        );
        assert_eq!(code, 200, "{out}");
        assert_eq!(out["vehicle"], "sim-01");
        s.wait_status(task, "finished");
        let (code, out) = s.json(
            "POST",
            &format!("/api/tasks/{task}/blocks/b2/{action}"),
            None,
        );
        assert_eq!(code, 409, "answered already: {out}");
    }
    s.stop();
}

#[test]
fn bad_robot_requests_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let cases: &[(&str, Option<&str>, u16, &str)] = &[
        ("/api/tasks/nope/blocks/b2/redo", None, 404, "no task nope"),
        (
            "/api/tasks/nope/blocks/b2/rewind",
            None,
            404,
            "redo, manual-finish",
        ),
        ("/api/sim/robots/nope/fail", None, 404, "nope"),
        (
            "/api/sim/robots/sim-01/explode",
            None,
            404,
            "fail, offline, online",
        ),
        ("/api/sim/planets/x/fail", None, 404, "robots"),
        (
            "/api/sim/robots/sim-01/fail",
            Some("{not json"),
            400,
            "JSON",
        ),
        (
            "/api/sim/robots/sim-01/fail",
            Some(r#"{"reason": 7}"#),
            400,
            "reason",
        ),
        ("/api/sim/orders/nope/stop", None, 404, "nope"),
    ];
    for (path, body, want, text) in cases {
        let (code, out) = s.call("POST", path, *body, &[]);
        assert_eq!(code, *want, "{path}: {out}");
        assert!(out.contains(text), "{path}: {out}");
    }
    // Offline and back.
    let (code, out) = s.json("POST", "/api/sim/robots/sim-03/offline", None);
    assert_eq!(code, 200, "{out}");
    let (_, robot) = s.json("GET", "/api/robots/sim-03", None);
    assert_eq!(robot["online"], false, "{robot}");
    assert_eq!(s.json("POST", "/api/sim/robots/sim-03/online", None).0, 200);
    let (_, robot) = s.json("GET", "/api/robots/sim-03", None);
    assert_eq!(robot["online"], true, "{robot}");
    s.stop();
}

#[test]
fn an_operator_pass_releases_wait_pass_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let def = definition(
        "pass",
        json!([{"id": 1, "name": "b1", "blockType": "WaitPassBp", "children": {},
            "inputParams": {"agvId": {"type": "Simple", "value": "sim-02"}}}]),
    );
    let (code, out) = s.json("POST", "/api/task-defs", Some(def));
    assert!(code == 200 || code == 201, "{out}");
    let body = json!({"defLabel": "pass", "taskRecordId": "p1"});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    until("the block waits", || {
        block_status(&s, "p1", "b1") == Some(1000)
    });
    let (_, t) = s.json("GET", "/api/tasks/p1", None);
    assert_eq!(t["status"], "running", "{t}");
    let (code, out) = s.json("POST", "/api/releaseWaitPassBlock", Some(json!(["sim-02"])));
    assert_eq!((code, &out["code"]), (200, &json!(200)), "{out}");
    s.wait_status("p1", "finished");
    // Not an array of robot ids: RDS's error code, nothing set.
    let (_, out) = s.json("POST", "/api/releaseWaitPassBlock", Some(json!({"agv": 1})));
    assert_eq!(out["code"], 9000, "{out}");
    let (_, out) = s.json("POST", "/api/releaseWaitPassBlock", Some(json!([7])));
    assert_eq!(out["code"], 9000, "{out}");
    s.stop();
}
