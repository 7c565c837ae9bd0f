//! A crash during a robot operation: `vwed serve` drives a separate `vwed sim-core` process
//! through the RDSCore adapter and is killed with SIGKILL while the robot travels; after the
//! restart the task re-attaches to the same order and action (the core records exactly one of
//! each for it) and finishes.

mod support;

use serde_json::{json, Value};
use std::net::SocketAddr;
use support::{definition, json_at, spawn_listening, until};

fn orders_of(core: SocketAddr, task: &str) -> Vec<Value> {
    let (code, out) = json_at(core, "GET", "/orders?page=1&size=300", None);
    assert_eq!(code, 200, "{out}");
    out["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["externalId"] == task)
        .cloned()
        .collect()
}

#[test]
fn killed_during_a_robot_operation_then_restarted_reattaches_to_its_order() {
    let dir = tempfile::tempdir().unwrap();
    // The core: robots at 2 m/s, so the 10 m to B-01 take 5 s.
    let core_cfg = dir.path().join("core.toml");
    std::fs::write(&core_cfg, "[fleet]\nspeed_m_per_s = 2\noperation_ms = 0\n").unwrap();
    let (mut core_child, core) = spawn_listening(
        &[
            "sim-core",
            "--listen",
            "127.0.0.1:0",
            "--config",
            core_cfg.to_str().unwrap(),
        ],
        "vwed sim-core listening on http://",
    );
    let cfg = dir.path().join("vwed.toml");
    std::fs::write(
        &cfg,
        format!("[fleet]\nkind = \"rdscore\"\nurl = \"http://{core}\"\npoll_ms = 100\n"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let serve = |cfg: &std::path::Path| {
        let args = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ];
        spawn_listening(&args, "listening on http://")
    };
    let (mut vwed, addr) = serve(&cfg);
    let simple = |v: &str| json!({"type": "Simple", "value": v});
    let def = definition(
        "carry",
        json!([{"id": 1, "name": "b1", "blockType": "CSelectAgvBp",
            "inputParams": {"keyRoute": simple("A-01")},
            "children": {"default": [
                {"id": 2, "name": "b2", "blockType": "CAgvOperationBp", "children": {},
                 "inputParams": {"targetSiteLabel": simple("B-01")}}]}}]),
    );
    let (code, out) = json_at(addr, "POST", "/api/task-defs", Some(def));
    assert!(code == 200 || code == 201, "{out}");
    let body = json!({"defLabel": "carry", "taskRecordId": "k1"});
    assert_eq!(json_at(addr, "POST", "/api/tasks", Some(body)).0, 201);
    until("the robot is on its way", || {
        orders_of(core, "k1")
            .first()
            .is_some_and(|o| o["blocks"][0]["state"] == "RUNNING")
    });

    vwed.kill().unwrap(); // SIGKILL mid-operation
    vwed.wait().unwrap();
    let (mut vwed, addr) = serve(&cfg);
    until("the task finishes after the restart", || {
        json_at(addr, "GET", "/api/tasks/k1", None).1["status"] == "finished"
    });
    let orders = orders_of(core, "k1");
    assert_eq!(orders.len(), 1, "one order for the task: {orders:?}");
    assert_eq!(orders[0]["state"], "FINISHED");
    assert_eq!(
        orders[0]["blocks"].as_array().unwrap().len(),
        1,
        "one action: {orders:?}"
    );
    vwed.kill().unwrap();
    vwed.wait().unwrap();
    core_child.kill().unwrap();
    core_child.wait().unwrap();
}
