//! The RDSCore adapter end to end: the appliance with `[fleet] kind = "rdscore"` drives
//! `vwed sim-core` (started on 127.0.0.1:0) over HTTP; robot flows give the same outcomes as on
//! the embedded simulator, the core records one order per select and one block per action, and
//! an operator's redo goes through to the core.

mod support;

use serde_json::{json, Value};
use std::sync::Arc;
use support::{config, definition, json_at, until, Server};
use vwed::api::sim_core;
use vwed::config::FleetKind;
use vwed::fleet::sim::{SimConfig, SimFleet};
use vwed::tasks::Tasks;

fn simple(v: &str) -> Value {
    json!({"type": "Simple", "value": v})
}

/// Select near A-01, fork-load at B-01, then B-02 (sealing the order).
fn carry_def() -> Value {
    definition(
        "carry",
        json!([{"id": 1, "name": "b1", "blockType": "CSelectAgvBp",
            "inputParams": {"keyRoute": simple("A-01")},
            "children": {"default": [
                {"id": 2, "name": "b2", "blockType": "CAgvOperationBp", "children": {},
                 "inputParams": {"targetSiteLabel": simple("B-01"),
                    "scriptName": simple("ForkLoad"), "var_end_height": simple("0.2")}},
                {"id": 3, "name": "b3", "blockType": "CAgvOperationBp", "children": {},
                 "inputParams": {"targetSiteLabel": simple("B-02"),
                    "isEndAction": simple("true")}}]}}]),
    )
}

#[test]
fn robot_flows_run_through_the_rdscore_adapter_against_sim_core() {
    // The core: a fast simulator behind the RDSCore API, on its own runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tasks = Tasks::new();
    let sim = Arc::new(rt.block_on(async {
        SimFleet::new(SimConfig {
            speed_m_per_s: 100.0,
            operation_ms: 0,
            ..SimConfig::default()
        })
    }));
    let core = rt
        .block_on(sim_core::start(
            "127.0.0.1:0".parse().unwrap(),
            sim.clone(),
            &tasks,
        ))
        .unwrap();
    let core_addr = core.addr;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.fleet.kind = FleetKind::RdsCore;
    cfg.fleet.url = Some(format!("http://{core_addr}"));
    cfg.fleet.poll_ms = 100;
    let s = Server::start(&cfg);
    let (code, out) = s.json("POST", "/api/task-defs", Some(carry_def()));
    assert!(code == 200 || code == 201, "{out}");

    let body = json!({"defLabel": "carry", "taskRecordId": "c1"});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    let task = s.wait_status("c1", "finished");
    assert_eq!(task["code"], 1003, "{task}");
    let (_, blocks) = s.json("GET", "/api/tasks/c1/blocks", None);
    let b1 = blocks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "b1")
        .unwrap()
        .clone();
    assert_eq!(b1["outputs"], json!({"selectedAgvId": "sim-01"}));
    // The core has exactly one order for the task, with its two actions, finished.
    let (code, orders) = json_at(core_addr, "GET", "/orders?page=1&size=300", None);
    assert_eq!(code, 200, "{orders}");
    let mine: Vec<&Value> = orders["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["externalId"] == "c1")
        .collect();
    assert_eq!(mine.len(), 1, "{orders}");
    assert_eq!(mine[0]["state"], "FINISHED");
    assert_eq!(mine[0]["blocks"].as_array().unwrap().len(), 2);
    // The robots the appliance shows are the core's.
    let (_, robots) = s.json("GET", "/api/robots", None);
    assert_eq!(robots["fleet"], "rdscore");
    assert_eq!(robots["items"][0]["station"], "B-02", "{robots}");
    // Failure injection is the simulator's business, not the appliance's, with a real core.
    let (code, _) = s.json("POST", "/api/sim/robots/sim-01/fail", None);
    assert_eq!(code, 404);

    // A failed action waits for the operator; the redo goes to the core.
    // (Whichever robot the core picks: the next action of each fails.)
    for robot in ["sim-01", "sim-02", "sim-03"] {
        let path = format!("/sim/robots/{robot}/fail");
        let (code, out) = json_at(core_addr, "POST", &path, Some(json!({"reason": "jam"})));
        assert_eq!(code, 200, "{out}");
    }
    let body = json!({"defLabel": "carry", "taskRecordId": "c2"});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    until("b2 waits for an operator", || {
        let (_, blocks) = s.json("GET", "/api/tasks/c2/blocks", None);
        blocks["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == "b2" && b["status"] == 1007)
    });
    let (code, out) = s.json("POST", "/api/tasks/c2/blocks/b2/redo", None);
    assert_eq!(code, 200, "{out}");
    s.wait_status("c2", "finished");
    s.stop();
    rt.block_on(core.shutdown());
    rt.block_on(tasks.join_all());
}
