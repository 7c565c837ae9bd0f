//! Robot blocks through the scheduler against the simulated fleet on tokio's paused clock:
//! an order with two actions (exact travel and operation times), stop during travel, a failed
//! action redone or finished by hand, pause and resume, and a restart that finds the
//! simulator's orders gone and opens them again under the same ids.

use super::tests::{b, expr, open_store, settle, simple};
use super::*;
use crate::fleet::sim::{SimConfig, SimFleet};
use crate::fleet::{Fleet, State};
use crate::flow::load;
use serde_json::{json, Value};
use std::time::Duration;
use tempfile::TempDir;

struct Robots {
    sched: Scheduler,
    tasks: Tasks,
    sim: Arc<SimFleet>,
    dir: TempDir,
}

async fn start(dir: TempDir) -> Robots {
    let tasks = Tasks::new();
    let sim = Arc::new(SimFleet::new(SimConfig::default()));
    let fleet: Arc<dyn Fleet> = sim.clone();
    let sched = Scheduler::start_with_fleet(open_store(&dir), Config::default(), fleet, &tasks)
        .await
        .unwrap();
    Robots {
        sched,
        tasks,
        sim,
        dir,
    }
}

impl Robots {
    async fn restart(self) -> Robots {
        self.sched.shutdown().await;
        self.tasks.join_all().await;
        self.sched.store().close();
        start(self.dir).await
    }

    async fn run(&self, children: Value) -> String {
        let def = json!({"id": "d", "label": "d", "detail": {"inputParams": [],
            "outputParams": [], "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp",
            "inputParams": {}, "children": {"default": children}}}});
        let raw = load::load_value(def, "d").remove(0).unwrap();
        self.sched.save_definition(raw).await.unwrap();
        let req = SubmitRequest {
            def_id: Some("d".into()),
            ..SubmitRequest::default()
        };
        self.sched.submit(req).await.unwrap().id
    }

    /// One order, one move to B-01.
    async fn move_to_b01(&self) -> String {
        self.run(json!([select(json!([operate(2, "B-01", None)]))]))
            .await
    }

    async fn blocks(&self, id: &str) -> Vec<crate::store::BlockRecord> {
        let id = id.to_string();
        self.sched
            .store()
            .read(move |rx| rx.block_records(&id, 1000))
            .await
            .unwrap()
    }

    async fn block(&self, id: &str, name: &str) -> crate::store::BlockRecord {
        self.blocks(id)
            .await
            .into_iter()
            .find(|r| r.block_name == name)
            .unwrap_or_else(|| panic!("no block {name}"))
    }

    /// Waits (paused clock) until block `name` of run `id` has `status`.
    async fn until_block(&self, id: &str, name: &str, status: i32) {
        for _ in 0..10_000 {
            if self
                .blocks(id)
                .await
                .iter()
                .any(|r| r.block_name == name && r.status == status)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("block {name} never {status}");
    }
}

fn select(children: Value) -> Value {
    json!({"id": 1, "name": "b1", "blockType": "CSelectAgvBp", "inputParams": {
            "keyRoute": simple("A-01")},
        "children": {"default": children}})
}

fn operate(id: i64, target: &str, script: Option<&str>) -> Value {
    let mut params = json!({"targetSiteLabel": simple(target)});
    if let Some(s) = script {
        params["scriptName"] = simple(s);
        params["var_start_height"] = simple("0.1");
    }
    b(id, "CAgvOperationBp", params)
}

#[tokio::test(start_paused = true)]
async fn an_order_moves_its_robot_and_finishes() {
    let r = start(tempfile::tempdir().unwrap()).await;
    let mut live = r.sched.subscribe_outbox();
    let t0 = tokio::time::Instant::now();
    let id = r
        .run(json!([select(json!([
            operate(2, "B-01", Some("ForkLoad")),
            operate(3, "B-02", None),
        ]))]))
        .await;
    let rec = r.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    // Robot progress is on the event outbox (/api/events, webhooks).
    let mut robot = Vec::new();
    while let Ok(ev) = live.try_recv() {
        if ev.kind == "robot" {
            let v: Value = serde_json::from_str(&ev.payload).unwrap();
            robot.push((
                v["event"].clone(),
                v["vehicle"].clone(),
                v["station"].clone(),
            ));
        }
    }
    assert_eq!(
        robot,
        [
            (json!("selected"), json!("sim-01"), json!("A-01")),
            (json!("actionDone"), json!("sim-01"), json!("B-01")),
            (json!("actionDone"), json!("sim-01"), json!("B-02")),
        ]
    );
    // sim-01 starts at A-01 (0,0): 10 m to B-01 plus the fork operation (2 s), 4 m to B-02.
    assert_eq!(t0.elapsed(), Duration::from_secs(10 + 2 + 4));
    let b1 = r.block(&id, "b1").await;
    assert_eq!(b1.outputs.as_deref(), Some(r#"{"selectedAgvId":"sim-01"}"#));
    let b2 = r.block(&id, "b2").await;
    assert_eq!(b2.outputs.as_deref(), Some(r#"{"containerName":""}"#));
    let order = format!("o-{id}-{}", b1.seq);
    let view = r.sim.order(&order).await.unwrap().unwrap();
    assert_eq!(view.state, State::Finished);
    assert!(view.complete);
    assert_eq!(view.blocks.len(), 2);
    let robots = r.sim.robots().await.unwrap();
    assert_eq!(robots[0].station, "B-02");
    assert_eq!(robots[0].order, None);
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_travel_stops_the_order() {
    let r = start(tempfile::tempdir().unwrap()).await;
    let id = r.move_to_b01().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        r.sched.control(&id, Control::Stop).await.unwrap(),
        TaskStatus::Stopped
    );
    settle().await;
    let b1 = r.block(&id, "b1").await;
    let view = r
        .sim
        .order(&format!("o-{id}-{}", b1.seq))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.state, State::Stopped);
    let robots = r.sim.robots().await.unwrap();
    assert_eq!(robots[0].order, None, "the robot is free again");
    assert_eq!(r.block(&id, "b2").await.status, 1001);
}

#[tokio::test(start_paused = true)]
async fn a_failed_action_waits_for_an_operator_redo() {
    let r = start(tempfile::tempdir().unwrap()).await;
    r.sim.fail_next("sim-01", "fork blocked").unwrap();
    let id = r.move_to_b01().await;
    r.until_block(&id, "b2", crate::blocks::WAITING_FOR_OPERATOR)
        .await;
    let b2 = r.block(&id, "b2").await;
    assert!(
        b2.ended_reason
            .as_deref()
            .unwrap_or("")
            .contains("fork blocked"),
        "{b2:?}"
    );
    assert_eq!(r.sched.stats().runs_loaded, 1);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        r.sched
            .store()
            .read({
                let id = id.clone();
                move |rx| rx.task(&id)
            })
            .await
            .unwrap()
            .unwrap()
            .status,
        TaskStatus::Running,
        "it waits for the operator"
    );
    r.sim.redo_failed("sim-01").await.unwrap();
    let rec = r.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    let b2 = r.block(&id, "b2").await;
    assert_eq!(b2.status, 1003);
    assert_eq!(
        b2.outputs.as_deref(),
        Some(r#"{"containerName":"","noticeFailed":["B-01"]}"#)
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_action_can_be_finished_by_hand() {
    let r = start(tempfile::tempdir().unwrap()).await;
    r.sim.fail_next("sim-01", "no pallet").unwrap();
    let id = r
        .run(json!([select(json!([
            operate(2, "B-01", None),
            operate(3, "B-02", None)
        ]))]))
        .await;
    r.until_block(&id, "b2", crate::blocks::WAITING_FOR_OPERATOR)
        .await;
    r.sim.manual_finished("sim-01").await.unwrap();
    let rec = r.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(r.block(&id, "b3").await.status, 1003);
}

/// Paused-clock ms from submitting a move to B-01 to its end, pausing it for `pause_s`
/// seconds 3 s in (0: no pause); checks the robot stood still meanwhile.
async fn move_with_pause(pause_s: u64) -> u64 {
    let r = start(tempfile::tempdir().unwrap()).await;
    let t0 = tokio::time::Instant::now();
    let id = r.move_to_b01().await;
    if pause_s > 0 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            r.sched.control(&id, Control::Pause).await.unwrap(),
            TaskStatus::Paused
        );
        let before = r.sim.robots().await.unwrap().remove(0);
        tokio::time::sleep(Duration::from_secs(pause_s)).await;
        let after = r.sim.robots().await.unwrap().remove(0);
        assert_eq!(
            (before.x, before.y),
            (after.x, after.y),
            "the robot stood still"
        );
        assert_ne!(after.station, "B-01");
        let order = after.order.expect("the order stays the robot's");
        let view = r.sim.order(&order).await.unwrap().unwrap();
        assert_eq!(view.state, State::Running, "paused, not ended");
        r.sched.control(&id, Control::Resume).await.unwrap();
    }
    let rec = r.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(r.sim.robots().await.unwrap()[0].station, "B-01");
    t0.elapsed().as_millis() as u64
}

/// Spec §4.6 (decision §8 Q30): a paused run pauses its robot where the fleet supports it;
/// on resume the robot goes on, so the move takes exactly the pause longer.
#[tokio::test(start_paused = true)]
async fn pause_stops_the_robot_and_resume_goes_on() {
    let plain = move_with_pause(0).await;
    let paused = move_with_pause(30).await;
    let late = paused.abs_diff(plain + 30_000);
    assert!(late <= 100, "plain {plain} ms, paused 30 s: {paused} ms");
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_the_lost_order_is_opened_again_under_its_ids() {
    let r = start(tempfile::tempdir().unwrap()).await;
    let id = r.move_to_b01().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b1 = r.block(&id, "b1").await;
    let order = format!("o-{id}-{}", b1.seq);
    let r = r.restart().await;
    assert_eq!(r.sim.orders_len(), 0, "a new simulator knows no order");
    let rec = r.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(r.sim.orders_len(), 1, "opened again once");
    let view = r.sim.order(&order).await.unwrap().unwrap();
    assert_eq!(view.state, State::Finished);
    assert_eq!(view.blocks.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn robot_status_blocks_read_the_fleet() {
    let r = start(tempfile::tempdir().unwrap()).await;
    let id = r
        .run(json!([
            b(1, "VehicleStationBp", json!({"vehicle": simple("sim-02")})),
            b(2, "GetBatteryLevelBp", json!({"vehicle": simple("sim-02")})),
            b(3, "GetBatteryLevelBp", json!({"vehicle": simple("nobody")})),
            b(4, "PrintBp", json!({"message": expr("blocks.b1.station")})),
        ]))
        .await;
    let rec = r.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(
        r.block(&id, "b1").await.outputs.as_deref(),
        Some(r#"{"station":"A-02","lastStation":""}"#)
    );
    assert_eq!(
        r.block(&id, "b2").await.outputs.as_deref(),
        Some(r#"{"batteryLevel":1.0}"#)
    );
    assert_eq!(
        r.block(&id, "b3").await.outputs.as_deref(),
        Some(r#"{"batteryLevel":null}"#)
    );
}

#[tokio::test(start_paused = true)]
async fn send_monitor_combined_and_io_blocks_run_on_the_simulator() {
    let r = start(tempfile::tempdir().unwrap()).await;
    let t0 = tokio::time::Instant::now();
    let id = r
        .run(json!([
            select(json!([
                b(
                    2,
                    "CAgvSendOperationBp",
                    json!({"targetSiteLabel": simple("B-01")})
                ),
                b(3, "PrintBp", json!({"message": simple("sent")})),
                b(
                    4,
                    "CAgvMonitorOperationBp",
                    json!({"blockId": expr("blocks.b2.blockId")})
                ),
            ])),
            b(
                5,
                "CombinedOrderBp",
                json!({"fromLoc": simple("A-03"), "toLoc": simple("A-04"),
                "vehicle": simple("sim-03")})
            ),
            b(
                6,
                "SetDOBp",
                json!({"agvId": simple("sim-01"), "id": simple("2"),
                "status": simple("true")})
            ),
            b(
                7,
                "ReadDIWaitBp",
                json!({"agvId": simple("sim-01"), "id": simple("1"),
                "status": simple("false")})
            ),
        ]))
        .await;
    let rec = r.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    // 10 m to B-01; then sim-03 loads at A-03 (2 s) and drives 4 m to unload at A-04 (2 s);
    // then one 1 s pause before the DI read.
    assert_eq!(t0.elapsed(), Duration::from_secs(10 + 2 + 4 + 2 + 1));
    let b2 = r.block(&id, "b2").await;
    assert_eq!(b2.outputs, Some(format!(r#"{{"blockId":"a-{id}-3"}}"#)));
    assert_eq!(
        r.block(&id, "b5").await.outputs.as_deref(),
        Some(r#"{"agvId":"sim-03","containerName":""}"#)
    );
    let robots = r.sim.robots().await.unwrap();
    assert!(
        robots[0].do_.iter().any(|io| io.id == 2 && io.status),
        "{:?}",
        robots[0].do_
    );
    assert_eq!(robots[2].station, "A-04");
}

/// A core that stays unreachable: the robot block's fleet call is tried again
/// `FLEET_RETRIES_MAX` times with doubling, jittered pauses (1+2+4+8+16 s ± 20%), then the
/// block fails with the error named; it does not retry forever.
#[tokio::test(start_paused = true)]
async fn an_unreachable_core_fails_the_block_after_bounded_retries() {
    use crate::fleet::rdscore::{RdsCoreConfig, RdsCoreFleet};
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let core = RdsCoreFleet::new(RdsCoreConfig {
        url: format!("http://127.0.0.1:{port}"),
        ..RdsCoreConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tasks = Tasks::new();
    let sched =
        Scheduler::start_with_fleet(open_store(&dir), Config::default(), Arc::new(core), &tasks)
            .await
            .unwrap();
    let def = json!({"id": "d", "label": "d", "detail": {"inputParams": [], "outputParams": [],
        "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp", "inputParams": {},
        "children": {"default": [select(json!([operate(2, "B-01", None)]))]}}}});
    let raw = load::load_value(def, "d").remove(0).unwrap();
    sched.save_definition(raw).await.unwrap();
    let t0 = tokio::time::Instant::now();
    let req = SubmitRequest {
        def_id: Some("d".into()),
        ..SubmitRequest::default()
    };
    let id = sched.submit(req).await.unwrap().id;
    let rec = sched
        .wait_for(&id, |s| s == TaskStatus::Interrupted)
        .await
        .unwrap();
    let reason = rec.ended_reason.unwrap_or_default();
    assert!(
        reason.contains("unreachable") && reason.contains("setOrder"),
        "{reason}"
    );
    let pauses: u64 = (0..crate::limits::FLEET_RETRIES_MAX)
        .map(|i| crate::limits::FLEET_RETRY_MS << i)
        .sum();
    let jitter = pauses * crate::limits::FLEET_RETRY_JITTER_PERCENT / 100;
    let waited = t0.elapsed().as_millis() as u64;
    assert!(
        (pauses - jitter..=pauses + jitter).contains(&waited),
        "{waited} ms, expected {pauses} ms ± {jitter}"
    );
    sched.shutdown().await;
    tasks.join_all().await;
}

/// A run's new priority reaches its open order: with one robot busy, the order raised last
/// gets the robot first.
#[tokio::test(start_paused = true)]
async fn a_priority_change_reaches_the_fleet_order() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = Tasks::new();
    let sim = Arc::new(SimFleet::new(SimConfig {
        robots: 1,
        ..SimConfig::default()
    }));
    let fleet: Arc<dyn Fleet> = sim.clone();
    let sched = Scheduler::start_with_fleet(open_store(&dir), Config::default(), fleet, &tasks)
        .await
        .unwrap();
    let r = Robots {
        sched,
        tasks,
        sim,
        dir,
    };
    let busy = r
        .run(json!([select(json!([operate(2, "A-05", None)]))]))
        .await;
    settle().await;
    // Whoever goes second starts where the other ended: first ends at A-01, second at B-01.
    let first = r
        .run(json!([select(json!([operate(2, "A-01", None)]))]))
        .await;
    let second = r.move_to_b01().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.sched.set_priority(&second, 9).await.unwrap();
    let done = |id: String| {
        let sched = r.sched.clone();
        async move {
            sched.wait_terminal(&id).await.unwrap();
            tokio::time::Instant::now()
        }
    };
    r.sched.wait_terminal(&busy).await.unwrap();
    let (a, b) = tokio::join!(done(first), done(second));
    assert!(b < a, "the raised order got the robot first");
}

/// `CSelectAgvBp`'s priority becomes the task record's (RDS, §8 Q20).
#[tokio::test(start_paused = true)]
async fn select_priority_becomes_the_records() {
    let r = start(tempfile::tempdir().unwrap()).await;
    let id = r
        .run(json!([{"id": 1, "name": "b1", "blockType": "CSelectAgvBp",
            "inputParams": {"keyRoute": simple("A-01"), "priority": simple("7")},
            "children": {"default": [operate(2, "A-01", None)]}}]))
        .await;
    r.sched.wait_terminal(&id).await.unwrap();
    let id2 = id.clone();
    let rec = r
        .sched
        .store()
        .read(move |rx| rx.task(&id2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.priority, 7);
}
