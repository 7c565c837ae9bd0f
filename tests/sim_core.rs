//! `vwed sim-core`: the simulated fleet over Seer RDSCore's HTTP order API (wind-task-format
//! §6). Each endpoint's success path and its bad inputs, against the server started in-process
//! on 127.0.0.1:0, and once as the real binary. Robots move at 100 m/s and operations take no
//! time, and most actions are at the robot's own station, so nothing waits long.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::json_at;
use vwed::api::sim_core::{self, SimCore};
use vwed::fleet::sim::{SimConfig, SimFleet, SIM_ORDERS_MAX};
use vwed::fleet::Fleet;
use vwed::limits::REQUEST_BODY_BYTES_MAX;
use vwed::tasks::Tasks;

/// A sim-core server on a fast simulated fleet (sim-01 at A-01, sim-02 at A-02, sim-03 at A-03).
struct Peer {
    core: SimCore,
    sim: Arc<SimFleet>,
    tasks: Tasks,
    addr: SocketAddr,
}

impl Peer {
    async fn start() -> Peer {
        let config = SimConfig {
            speed_m_per_s: 100.0,
            operation_ms: 0,
            ..SimConfig::default()
        };
        let sim = Arc::new(SimFleet::new(config));
        let tasks = Tasks::new();
        let listen = "127.0.0.1:0".parse().unwrap();
        let core = sim_core::start(listen, sim.clone(), &tasks).await.unwrap();
        let addr = core.addr;
        Peer {
            core,
            sim,
            tasks,
            addr,
        }
    }

    async fn stop(self) {
        self.core.shutdown().await;
        self.tasks.join_all().await;
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        json_at(self.addr, "POST", path, Some(body))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        json_at(self.addr, "GET", path, None)
    }

    /// POST answered with HTTP 200 and `code`; the whole answer.
    fn post_code(&self, path: &str, body: Value, code: i64) -> Value {
        let (status, out) = self.post(path, body);
        assert_eq!(
            (status, out["code"].as_i64()),
            (200, Some(code)),
            "{path}: {out}"
        );
        out
    }

    fn post_ok(&self, path: &str, body: Value) {
        let out = self.post_code(path, body, 0);
        assert_eq!(out["msg"], "ok", "{out}");
    }

    /// POST refused with HTTP 400 (code 400); its `msg`, which must mention `names`.
    fn bad(&self, path: &str, body: Value, names: &str) -> String {
        let (status, out) = self.post(path, body);
        assert_eq!(
            (status, out["code"].as_i64()),
            (400, Some(400)),
            "{path}: {out}"
        );
        let msg = out["msg"].as_str().unwrap().to_string();
        assert!(msg.contains(names), "{path}: {msg:?} should name {names}");
        msg
    }

    /// Opens order `id` on sim-01 (at A-01), optionally with blocks and sealed.
    fn open(&self, id: &str, blocks: Value, complete: bool) {
        let body = json!({"id": id, "externalId": "t1", "priority": 0, "vehicle": "sim-01",
            "keyRoute": ["A-01"], "blocks": blocks, "complete": complete});
        self.post_ok("/setOrder", body);
    }

    fn order(&self, id: &str) -> Value {
        let (status, out) = self.get(&format!("/orderDetails/{id}"));
        assert_eq!(status, 200, "{out}");
        out
    }

    fn wait_state(&self, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let order = self.order(id);
            if order["state"] == state {
                return order;
            }
            assert!(
                Instant::now() < deadline,
                "order {id} never {state}: {order}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn robot(&self, id: &str) -> Value {
        let (status, out) = self.get(&format!("/robotsStatus?vehicles={id}"));
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["report"].as_array().unwrap().len(), 1, "{out}");
        out["report"][0].clone()
    }
}

fn action(id: &str, location: &str) -> Value {
    json!({"blockId": id, "location": location})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_order_opens_an_order_once() {
    let p = Peer::start().await;
    // RDS sends more than the simulator uses; the extra fields are ignored.
    let body = json!({"id": "o1", "externalId": "t1", "priority": 3, "vehicle": "sim-01",
        "keyRoute": ["A-01"], "prePointRedo": true, "mapfPriority": 1, "loadBlockCount": 0});
    p.post_ok("/setOrder", body.clone());
    let order = p.order("o1");
    assert_eq!(order["id"], "o1");
    assert_eq!(order["externalId"], "t1");
    // Assigned, no actions, not sealed: what CSelectAgvBp waits for.
    assert_eq!(order["state"], "WAITING");
    assert_eq!(order["vehicle"], "sim-01");
    assert_eq!(order["complete"], false);
    assert_eq!(order["blocks"], json!([]));
    assert_eq!(order["errors"], json!([]));
    assert_eq!(order["terminalTime"], 0);
    let now_s = chrono::Utc::now().timestamp();
    let created = order["createTime"].as_i64().unwrap();
    assert!(
        (now_s - 60..=now_s + 1).contains(&created),
        "seconds: {created}"
    );
    let (status, out) = p.post("/setOrder", body);
    assert_eq!(status, 400, "{out}");
    assert_eq!(
        out,
        json!({"code": 40002, "msg": "order id already exists"})
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_order_refuses_bad_input_and_opens_nothing() {
    let p = Peer::start().await;
    p.bad(
        "/setOrder",
        json!({"externalId": "t1", "keyRoute": []}),
        "`id`",
    );
    p.bad("/setOrder", json!({"id": "", "keyRoute": []}), "`id`");
    p.bad("/setOrder", json!({"id": 7}), "`id` must be a string");
    p.bad(
        "/setOrder",
        json!({"id": "o1", "keyRoute": "A-01"}),
        "`keyRoute`",
    );
    p.bad(
        "/setOrder",
        json!({"id": "o1", "priority": "high"}),
        "`priority`",
    );
    p.bad(
        "/setOrder",
        json!({"id": "o1", "complete": "yes"}),
        "`complete`",
    );
    let no_location = json!({"id": "o1", "blocks": [{"blockId": "a1"}]});
    let msg = p.bad("/setOrder", no_location, "`location`");
    assert!(msg.starts_with("blocks[0]:"), "{msg}");
    let twice = json!({"id": "o1", "blocks": [action("a1", "A-01"), action("a1", "A-02")]});
    p.bad("/setOrder", twice, "duplicate blockId a1");
    let bad_post = json!({"id": "o1", "blocks": [{"blockId": "a1", "location": "A-01",
        "postAction": {"configId": 5}}]});
    p.bad("/setOrder", bad_post, "postAction");
    let (status, out) = json_at_raw(p.addr, "POST", "/setOrder", "{\"id\": ");
    assert_eq!(status, 400, "{out}");
    assert!(out.contains("not valid JSON"), "{out}");
    p.bad("/setOrder", json!(["o1"]), "JSON object");
    let (status, out) = p.get("/orderDetails/o1");
    assert_eq!((status, &out["code"]), (404, &json!(50002)), "{out}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_order_with_blocks_and_complete_runs_to_the_end() {
    let p = Peer::start().await;
    let blocks = json!([action("a1", "A-01"), {"blockId": "a2", "location": "A-01",
        "operation": "JackLoad", "operationArgs": {"height": 0.1}, "binTask": "load",
        "goodsId": "g1", "postAction": {"configId": "c1"}}]);
    p.open("o1", blocks, true);
    let order = p.wait_state("o1", "FINISHED");
    assert_eq!(order["complete"], true);
    let states: Vec<&str> = order["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["FINISHED", "FINISHED"]);
    assert_eq!(order["blocks"][1]["blockId"], "a2");
    assert_eq!(order["blocks"][1]["location"], "A-01");
    assert_eq!(order["blocks"][1]["containerName"], "");
    assert!(order["terminalTime"].as_i64().unwrap() >= order["createTime"].as_i64().unwrap());
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_blocks_appends_and_answers_rds_codes() {
    let p = Peer::start().await;
    p.open("o1", json!([]), false);
    p.post_ok(
        "/addBlocks",
        json!({"id": "o1", "blocks": [action("a1", "A-01")]}),
    );
    let again = p.post_code(
        "/addBlocks",
        json!({"id": "o1", "blocks": [action("a1", "A-01")]}),
        50001,
    );
    assert_eq!(again["msg"], "block a1 already exist");
    let last = json!({"id": "o1", "blocks": [action("a2", "A-02")], "complete": true});
    p.post_ok("/addBlocks", last);
    p.wait_state("o1", "FINISHED");
    let sealed = p.post_code(
        "/addBlocks",
        json!({"id": "o1", "blocks": [action("a3", "A-01")]}),
        50003,
    );
    assert!(
        sealed["msg"].as_str().unwrap().contains("complete"),
        "{sealed}"
    );
    // A replayed action of a sealed order is still "already exist", which the adapter accepts.
    p.post_code(
        "/addBlocks",
        json!({"id": "o1", "blocks": [action("a2", "A-02")]}),
        50001,
    );
    let unknown = p.post_code(
        "/addBlocks",
        json!({"id": "nope", "blocks": [action("a1", "A-01")]}),
        50002,
    );
    assert!(
        unknown["msg"].as_str().unwrap().contains("not found"),
        "{unknown}"
    );
    p.bad(
        "/addBlocks",
        json!({"blocks": [action("a1", "A-01")]}),
        "`id`",
    );
    p.bad("/addBlocks", json!({"id": "o1"}), "`blocks`");
    p.bad(
        "/addBlocks",
        json!({"id": "o1", "blocks": [{"location": "A-01"}]}),
        "`blockId`",
    );
    p.bad(
        "/addBlocks",
        json!({"id": "o1", "blocks": [7]}),
        "blocks[0]",
    );
    let args =
        json!({"id": "o1", "blocks": [{"blockId": "a9", "location": "A-01", "scriptArgs": []}]});
    p.bad("/addBlocks", args, "`scriptArgs`");
    let complete = json!({"id": "o1", "blocks": [], "complete": 1});
    p.bad("/addBlocks", complete, "`complete`");
    let (status, out) = json_at_raw(p.addr, "POST", "/addBlocks", "not json");
    assert_eq!(status, 400, "{out}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_complete_seals_and_terminate_stops() {
    let p = Peer::start().await;
    p.open("o1", json!([]), false);
    p.post_ok("/markComplete", json!({"id": "o1"}));
    let order = p.wait_state("o1", "FINISHED");
    assert_eq!(order["complete"], true);
    p.post_code("/markComplete", json!({"id": "nope"}), 50002);
    p.bad("/markComplete", json!({}), "`id`");
    p.bad("/markComplete", json!({"idList": [1]}), "`idList`");
    for id in ["o2", "o3", "o4"] {
        p.open(id, json!([]), false);
    }
    p.post_ok("/terminate", json!({"id": "o2", "disableVehicle": false}));
    let order = p.order("o2");
    assert_eq!(order["state"], "STOPPED");
    assert!(order["terminalTime"].as_i64().unwrap() > 0, "{order}");
    p.post_ok(
        "/terminate",
        json!({"idList": ["o3", "o4"], "disableVehicle": false}),
    );
    assert_eq!(p.order("o3")["state"], "STOPPED");
    assert_eq!(p.order("o4")["state"], "STOPPED");
    p.post_code("/terminate", json!({"id": "nope"}), 50002);
    p.bad("/terminate", json!({"disableVehicle": true}), "`id`");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_listed_newest_first_by_page() {
    let p = Peer::start().await;
    for id in ["o1", "o2", "o3"] {
        p.open(id, json!([]), false);
    }
    let ids = |out: &Value| -> Vec<String> {
        let list = out["list"].as_array().unwrap();
        list.iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, out) = p.get("/orders?page=1&size=300&orderBy=createTime");
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["total"], 3);
    assert_eq!(ids(&out), ["o3", "o2", "o1"]);
    assert_eq!(
        out["list"][0]["state"], "TOBEDISPATCHED",
        "sim-01 serves o1: {out}"
    );
    let (_, out) = p.get("/orders?page=2&size=2");
    assert_eq!(ids(&out), ["o1"]);
    let (_, out) = p.get("/orders");
    assert_eq!(ids(&out), ["o3", "o2", "o1"]);
    for bad in ["/orders?size=0", "/orders?page=x", "/orders?page=-1"] {
        let (status, out) = p.get(bad);
        assert_eq!((status, &out["code"]), (400, &json!(400)), "{bad}: {out}");
    }
    p.stop().await;
}

/// sim-core remembers at most SIM_ORDERS_MAX order ids; the oldest is forgotten first (the sim
/// forgets its oldest ended order too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_record_keeps_the_newest_sim_orders_max() {
    let p = Peer::start().await;
    for i in 0..=SIM_ORDERS_MAX {
        let id = format!("o{i}");
        p.post_ok(
            "/setOrder",
            json!({"id": id, "externalId": "t", "keyRoute": []}),
        );
        // Ended, so the sim may forget it to make room.
        p.sim.terminate(&id).await.unwrap();
    }
    let (status, out) = p.get(&format!("/orders?size={}", SIM_ORDERS_MAX + 10));
    assert_eq!(status, 200);
    assert_eq!(out["total"], SIM_ORDERS_MAX);
    let list = out["list"].as_array().unwrap();
    assert_eq!(list.len(), SIM_ORDERS_MAX);
    assert_eq!(list[0]["id"], format!("o{SIM_ORDERS_MAX}"));
    assert_eq!(list[SIM_ORDERS_MAX - 1]["id"], "o1");
    assert_eq!(p.get("/orderDetails/o0").0, 404);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_actions_are_found_by_block_id() {
    let p = Peer::start().await;
    p.open("o0", json!([]), false);
    p.post_ok("/terminate", json!({"id": "o0"}));
    p.open("o1", json!([action("a1", "A-01")]), false);
    let (status, order) = p.get("/orderDetailsByBlockId/a1");
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["id"], "o1");
    let (status, block) = p.get("/blockDetailsById/a1");
    assert_eq!(status, 200, "{block}");
    assert_eq!(block["blockId"], "a1");
    assert_eq!(block["location"], "A-01");
    assert_eq!(block["vehicle"], "sim-01");
    assert!(block["state"].is_string(), "{block}");
    let empty = json!({"code": 50002, "msg": "order details by block id is empty"});
    for path in ["/orderDetailsByBlockId/nope", "/blockDetailsById/nope"] {
        assert_eq!(p.get(path), (404, empty.clone()), "{path}");
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_details_of_an_unknown_order_is_404() {
    let p = Peer::start().await;
    let (status, out) = p.get("/orderDetails/nope?paths=a,b");
    assert_eq!(status, 404);
    assert_eq!(out, json!({"code": 50002, "msg": "order not found"}));
    // Ids are percent-decoded path segments.
    p.open("o 1+x", json!([]), false);
    assert_eq!(p.order("o%201+x")["id"], "o 1+x");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_action_is_redone_or_finished_by_hand() {
    let p = Peer::start().await;
    p.post_ok(
        "/sim/robots/sim-01/fail",
        json!({"reason": "lidar blocked"}),
    );
    p.open("o1", json!([action("a1", "A-01")]), false);
    let order = p.wait_state("o1", "FAILED");
    assert_eq!(order["blocks"][0]["state"], "FAILED");
    assert_eq!(order["errors"][0]["desc"], "lidar blocked");
    assert_eq!(order["errors"][0]["times"], 1);
    p.post_ok("/redoFailedOrder", json!({"vehicles": ["sim-01"]}));
    let order = p.wait_state("o1", "WAITING");
    assert_eq!(order["blocks"][0]["state"], "FINISHED");
    p.post_ok("/sim/robots/sim-01/fail", json!({}));
    p.post_ok(
        "/addBlocks",
        json!({"id": "o1", "blocks": [action("a2", "A-01")]}),
    );
    p.wait_state("o1", "FAILED");
    p.post_ok("/manualFinished", json!({"vehicles": ["sim-01"]}));
    let order = p.wait_state("o1", "WAITING");
    assert_eq!(order["blocks"][1]["state"], "MANUAL_FINISHED");
    // Nothing failed any more: the sim's refusal reaches the client.
    p.post_code("/redoFailedOrder", json!({"vehicles": ["sim-01"]}), 50005);
    p.post_code("/manualFinished", json!({"vehicles": ["sim-01"]}), 50005);
    p.post_code("/redoFailedOrder", json!({"vehicles": ["nope"]}), 50002);
    p.post_code("/manualFinished", json!({"vehicles": ["nope"]}), 50002);
    p.bad("/redoFailedOrder", json!({}), "`vehicles`");
    p.bad("/manualFinished", json!({"vehicles": []}), "`vehicles`");
    p.bad(
        "/manualFinished",
        json!({"vehicles": "sim-01"}),
        "`vehicles`",
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_status_reports_every_robot_or_those_asked_for() {
    let p = Peer::start().await;
    let (status, out) = p.get("/robotsStatus");
    assert_eq!(status, 200, "{out}");
    let uuids: Vec<&str> = out["report"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids, ["sim-01", "sim-02", "sim-03"]);
    p.open("o1", json!([]), false);
    let r = p.robot("sim-01");
    assert_eq!(r["group"], "sim");
    assert_eq!(r["labels"], json!([]));
    assert_eq!(r["dispatchable"], true);
    assert_eq!(r["connection_status"], 1);
    assert_eq!(r["current_order"]["id"], "o1");
    assert_eq!(r["errors"], json!([]));
    let rbk = &r["rbk_report"];
    assert_eq!(rbk["current_station"], "A-01");
    assert_eq!(rbk["last_station"], "");
    assert_eq!(rbk["battery_level"], 1.0);
    assert_eq!(rbk["charging"], false);
    assert_eq!(
        (rbk["x"].as_f64(), rbk["y"].as_f64()),
        (Some(0.0), Some(0.0))
    );
    assert_eq!(rbk["DI"].as_array().unwrap().len(), 4);
    assert_eq!(rbk["DO"][0], json!({"id": 1, "status": false}));
    assert_eq!(p.robot("sim-02")["current_order"]["id"], "");
    let (_, two) = p.get("/robotsStatus?vehicles=sim-03,sim-02&paths=x,y");
    assert_eq!(two["report"].as_array().unwrap().len(), 2, "{two}");
    let (status, none) = p.get("/robotsStatus?vehicles=nope");
    assert_eq!((status, none), (200, json!({"report": []})));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_robot_io_sets_a_digital_output() {
    let p = Peer::start().await;
    let set = json!({"vehicle": "sim-02", "id": 2, "type": "DO", "status": true});
    p.post_ok("/setRobotIO", set);
    assert_eq!(
        p.robot("sim-02")["rbk_report"]["DO"][1],
        json!({"id": 2, "status": true})
    );
    let di = json!({"vehicle": "sim-02", "id": 2, "type": "DI", "status": true});
    p.bad("/setRobotIO", di, "`type`");
    p.bad(
        "/setRobotIO",
        json!({"id": 2, "type": "DO", "status": true}),
        "`vehicle`",
    );
    p.bad(
        "/setRobotIO",
        json!({"vehicle": "sim-02", "type": "DO", "status": true}),
        "`id`",
    );
    let no_status = json!({"vehicle": "sim-02", "id": 2, "type": "DO"});
    p.bad("/setRobotIO", no_status, "`status`");
    let unknown = json!({"vehicle": "nope", "id": 2, "type": "DO", "status": true});
    p.post_code("/setRobotIO", unknown, 50002);
    let no_such_do = json!({"vehicle": "sim-02", "id": 9, "type": "DO", "status": true});
    p.post_code("/setRobotIO", no_such_do, 50002);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_injected_through_sim_routes() {
    let p = Peer::start().await;
    p.post_ok("/sim/robots/sim-03/offline", json!({}));
    let r = p.robot("sim-03");
    assert_eq!(
        (&r["connection_status"], &r["dispatchable"]),
        (&json!(0), &json!(false))
    );
    assert_eq!(r["errors"][0]["desc"], "robot offline");
    p.post_ok("/sim/robots/sim-03/online", json!({}));
    assert_eq!(p.robot("sim-03")["connection_status"], 1);
    p.open("o1", json!([]), false);
    p.post_ok("/sim/orders/o1/stop", json!({"reason": "emergency stop"}));
    let order = p.order("o1");
    assert_eq!(order["state"], "STOPPED");
    assert_eq!(order["errors"][0]["desc"], "emergency stop");
    let not_found = |path: &str| {
        let (status, out) = p.post(path, json!({}));
        assert_eq!(
            (status, &out["code"]),
            (404, &json!(50002)),
            "{path}: {out}"
        );
    };
    not_found("/sim/robots/nope/fail");
    not_found("/sim/robots/nope/offline");
    not_found("/sim/robots/nope/online");
    not_found("/sim/orders/nope/stop");
    p.bad("/sim/robots/sim-01/fail", json!({"reason": 1}), "`reason`");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_priority_and_dispatchable_are_accepted() {
    let p = Peer::start().await;
    p.open("o1", json!([]), false);
    p.post_ok("/setPriority", json!({"id": "o1", "priority": 5}));
    p.post_code("/setPriority", json!({"id": "nope", "priority": 5}), 50002);
    p.bad("/setPriority", json!({"priority": 5}), "`id`");
    p.bad(
        "/setPriority",
        json!({"id": "o1", "priority": "5"}),
        "`priority`",
    );
    p.post_ok(
        "/dispatchable",
        json!({"vehicles": ["sim-01"], "type": "dispatchable"}),
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_oversized_bodies_are_refused() {
    let p = Peer::start().await;
    for (method, path) in [
        ("GET", "/nope"),
        ("POST", "/nope"),
        ("PUT", "/setOrder"),
        ("GET", "/setOrder"),
    ] {
        let (status, out) = json_at(p.addr, method, path, None);
        assert_eq!(
            (status, &out["code"]),
            (404, &json!(404)),
            "{method} {path}: {out}"
        );
    }
    // Refused on the declared length, before the body is read.
    let mut stream = TcpStream::connect(p.addr).unwrap();
    let head = format!(
        "POST /setOrder HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        REQUEST_BODY_BYTES_MAX + 1
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("REQUEST_BODY_BYTES_MAX"), "{raw}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_listener() {
    let p = Peer::start().await;
    let addr = p.addr;
    assert_eq!(p.get("/robotsStatus").0, 200);
    p.stop().await;
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after shutdown"
    );
}

/// A request with a raw (possibly malformed) body: status and body text.
fn json_at_raw(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    support::call_at(addr, method, path, Some(body), &[])
}

/// Runs `vwed sim-core` with `args`; the child and the address from its stderr line.
fn spawn_binary(args: &[&str]) -> (std::process::Child, SocketAddr) {
    let all: Vec<&str> = std::iter::once("sim-core")
        .chain(args.iter().copied())
        .collect();
    support::spawn_listening(&all, "vwed sim-core listening on http://")
}

/// SIGTERM, then the exit status (SIGKILL after 10 s).
fn terminate(mut child: std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("sim-core did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_binary_serves_until_sigterm() {
    let (child, addr) = spawn_binary(&["--listen", "127.0.0.1:0"]);
    let (status, out) = json_at(addr, "GET", "/robotsStatus", None);
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["report"].as_array().unwrap().len(), 3, "{out}");
    assert!(terminate(child).success());
}

#[test]
fn the_binary_reads_the_fleet_section_of_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vwed.toml");
    std::fs::write(&file, "[fleet]\nrobots = 2\noperation_ms = 0\n").unwrap();
    let (child, addr) = spawn_binary(&[
        "--listen",
        "127.0.0.1:0",
        "--config",
        file.to_str().unwrap(),
    ]);
    let (status, out) = json_at(addr, "GET", "/robotsStatus", None);
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["report"].as_array().unwrap().len(), 2, "{out}");
    assert!(terminate(child).success());
}

#[test]
fn the_binary_needs_a_listen_address_and_a_valid_config() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vwed"))
            .arg("sim-core")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let out = run(&["--listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vwed.toml");
    std::fs::write(&file, "[fleet]\nrobots = 0\n").unwrap();
    let out = run(&[
        "--listen",
        "127.0.0.1:0",
        "--config",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fleet.robots"));
}

/// `gotoSitePause` / `gotoSiteResume {vehicles}`: the robot's order starts nothing while
/// paused and goes on when resumed; bad bodies and unknown robots are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goto_site_pause_holds_the_robots_order_until_resumed() {
    let p = Peer::start().await;
    p.open("o1", json!([]), false);
    p.wait_state("o1", "WAITING");
    p.post_ok("/gotoSitePause", json!({"vehicles": ["sim-01"]}));
    p.post_ok(
        "/addBlocks",
        json!({"id": "o1", "blocks": [action("a1", "B-01")], "complete": true}),
    );
    // At 100 m/s the 10 m move would take 100 ms.
    std::thread::sleep(Duration::from_millis(400));
    let order = p.order("o1");
    assert_eq!(order["blocks"][0]["state"], "CREATED", "{order}");
    assert_eq!(p.robot("sim-01")["rbk_report"]["current_station"], "A-01");
    p.post_ok("/gotoSiteResume", json!({"vehicles": ["sim-01"]}));
    p.wait_state("o1", "FINISHED");
    assert_eq!(p.robot("sim-01")["rbk_report"]["current_station"], "B-01");
    p.post_code("/gotoSitePause", json!({"vehicles": ["nope"]}), 50002);
    p.bad("/gotoSiteResume", json!({}), "`vehicles`");
    p.stop().await;
}
