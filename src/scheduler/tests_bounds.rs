//! Scheduler tests, continued: admission bounds, per-run record pruning, the driver's own
//! bounds (control loads, event queues, work in flight, definition saves) and store failures.

use super::tests::{b, delay_flow, env, open_store, settle, simple};
use super::*;
use crate::flow::load;
use serde_json::{json, Value};
use std::time::Duration;
use tempfile::TempDir;

#[tokio::test(start_paused = true)]
async fn oversized_inputs_are_refused_at_admission() {
    let e = env(Config::default()).await;
    e.define("d", delay_flow(), json!({})).await;
    let mut inputs = crate::value::Map::new();
    let big = "x".repeat(crate::limits::TASK_INPUTS_BYTES_MAX);
    inputs.insert("ms".into(), Value::String(big));
    let req = SubmitRequest {
        def_id: Some("d".into()),
        inputs,
        ..SubmitRequest::default()
    };
    let err = e.sched.submit(req).await.unwrap_err();
    assert!(err.to_string().contains("TASK_INPUTS_BYTES_MAX"), "{err}");
    let long_id = SubmitRequest {
        def_id: Some("d".into()),
        task_id: Some("i".repeat(crate::limits::TASK_ID_BYTES_MAX + 1)),
        ..SubmitRequest::default()
    };
    assert!(matches!(
        e.sched.submit(long_id).await,
        Err(SubmitError::Invalid(_))
    ));
    let total = e
        .sched
        .store()
        .read(|rx| rx.status_count(TaskStatus::Queued))
        .await
        .unwrap();
    assert_eq!(total, 0, "nothing was stored");
}

#[tokio::test(start_paused = true)]
async fn a_long_run_prunes_its_oldest_block_records() {
    let e = env(Config::default()).await;
    let body = json!([{"id": 1, "name": "b1", "blockType": "RepeatNumBp",
        "inputParams": {"num": simple("1000")}, "children": {"default": (2..14)
            .map(|i| b(i, "SetTaskVariableBp", json!({"varName": simple("v"), "varValue": simple("x")})))
            .collect::<Vec<_>>()}}]);
    e.define("long", body, json!({})).await;
    let id = e.submit("long", 1).await;
    assert_eq!(
        e.sched.wait_terminal(&id).await.unwrap().status,
        TaskStatus::Finished
    );
    let id2 = id.clone();
    let kept = e
        .sched
        .store()
        .read(move |rx| rx.block_records(&id2, usize::MAX >> 1))
        .await
        .unwrap()
        .len();
    // 1 root + 1 loop + 12,000 bodies were written; the oldest went past the cap.
    assert!(
        kept <= crate::limits::BLOCK_RECORDS_PER_RUN_MAX + 256 + 300,
        "{kept}"
    );
    assert!(kept >= crate::limits::BLOCK_RECORDS_PER_RUN_MAX, "{kept}");
}

/// A driver that is not running, to push its bounds directly.
async fn idle_driver() -> (driver::Driver, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (commands, rx) = tokio::sync::mpsc::channel(limits::SCHEDULER_COMMANDS_MAX);
    let (events, _) = tokio::sync::broadcast::channel(16);
    let shared = std::sync::Arc::new(Shared {
        store: open_store(&dir),
        flows: FlowCache::default(),
        commands,
        events,
        clock: Clock::start(),
        config: Config::default(),
        gauges: Gauges::default(),
        saves: tokio::sync::Semaphore::new(limits::DEFINITION_SAVES_MAX),
        outbox: tokio::sync::broadcast::channel(16).0,
        fleet: std::sync::Arc::new(crate::fleet::sim::SimFleet::new(
            crate::fleet::sim::SimConfig::default(),
        )),
        http: crate::integrations::http::client(),
        modbus: crate::modbus::ModbusPool::new(crate::modbus::ModbusConfig::default()),
        scripts: std::sync::OnceLock::new(),
    });
    (driver::Driver::recover(shared, rx).await.unwrap(), dir)
}

fn paused_record(id: &str) -> TaskRecord {
    TaskRecord {
        id: id.into(),
        seq: 1,
        def_id: "d".into(),
        def_label: "d".into(),
        def_version: 1,
        status: TaskStatus::Paused,
        code: 1002,
        priority: 1,
        level: 1,
        created_ms: 0,
        started_ms: Some(0),
        ended_ms: None,
        ended_reason: None,
        input_params: "[]".into(),
        variables: "{}".into(),
        state_description: None,
        out_order_no: None,
        manual_end: false,
        parent_id: None,
        root_id: None,
        periodic: false,
        request_hash: None,
        has_children: false,
    }
}

#[tokio::test(start_paused = true)]
async fn stops_of_unloaded_runs_past_control_loads_max_are_refused() {
    let (mut d, _dir) = idle_driver().await;
    for i in 0..limits::CONTROL_LOADS_MAX {
        d.slots
            .insert(format!("loading{i}"), driver::Slot::loading(true));
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let read = control::ControlRead::new(
        "p".into(),
        Control::Stop,
        reply,
        Ok(Some((paused_record("p"), true))),
    );
    d.control_read(read);
    match answer.await.unwrap() {
        Err(ControlError::Busy(why)) => assert!(why.contains("CONTROL_LOADS_MAX"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(!d.slots.contains_key("p"));
}

#[tokio::test(start_paused = true)]
async fn commands_for_a_run_with_a_full_event_queue_are_refused() {
    let (mut d, _dir) = idle_driver().await;
    let mut slot = driver::Slot::loading(false);
    slot.busy = true;
    for _ in 0..limits::RUN_EVENTS_QUEUED_MAX {
        slot.events.push_back(crate::engine::Event::Continue);
    }
    d.slots.insert("r".into(), slot);
    let (reply, answer) = tokio::sync::oneshot::channel();
    d.command(Command::Control {
        id: "r".into(),
        action: Control::Stop,
        reply,
    });
    match answer.await.unwrap() {
        Err(ControlError::Busy(why)) => assert!(why.contains("RUN_EVENTS_QUEUED_MAX"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.slots["r"].events.len(), limits::RUN_EVENTS_QUEUED_MAX);
}

#[tokio::test(start_paused = true)]
async fn the_driver_stops_taking_commands_when_its_work_in_flight_is_full() {
    let (d, _dir) = idle_driver().await;
    assert!(d.has_room());
    let cap = d.shared.config.runs_active_max
        + limits::CONTROL_LOADS_MAX
        + limits::PRIORITY_LEVELS
        + limits::DRIVER_EXTRA_INFLIGHT_MAX;
    for _ in 0..cap {
        d.inflight.push(Box::pin(std::future::pending()));
    }
    assert!(!d.has_room());
}

#[tokio::test(start_paused = true)]
async fn definition_saves_past_their_bound_wait() {
    let e = env(Config::default()).await;
    let held = e
        .sched
        .shared
        .saves
        .acquire_many(limits::DEFINITION_SAVES_MAX as u32)
        .await;
    let raw = load::load_value(
        json!({"id": "w", "label": "w", "detail": {"rootBlock": {"id": -1, "name": "-1",
            "blockType": "RootBp", "children": {"default": []}}}}),
        "w",
    )
    .remove(0)
    .unwrap();
    let save = e.sched.save_definition(raw);
    tokio::pin!(save);
    let waited = tokio::time::timeout(Duration::from_secs(5), &mut save).await;
    assert!(
        waited.is_err(),
        "the save waits while DEFINITION_SAVES_MAX saves are in flight"
    );
    drop(held);
    save.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_step_write_is_retried_from_the_last_checkpoint() {
    let e = env(Config::default()).await;
    e.define("d", delay_flow(), json!({})).await;
    let id = e.submit("d", 1).await;
    settle().await; // the first step (print, start the delay) is committed
    e.sched.store().inject_write_failures(2);
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished);
    assert_eq!(e.sched.stats().commit_failures, 2);
    assert_eq!(
        e.logs(&id).await,
        vec![
            r#"[PrintBp][b1]result: "start""#,
            r#"[PrintBp][b3]result: "end""#
        ],
        "nothing ran twice and nothing was lost"
    );
    let ends = e.blocks(&id).await;
    assert_eq!(ends.len(), 4, "{ends:?}");
}

#[tokio::test(start_paused = true)]
async fn a_run_the_store_keeps_refusing_ends_as_failed() {
    let e = env(Config::default()).await;
    e.define("d", delay_flow(), json!({})).await;
    let id = e.submit("d", 1).await;
    settle().await;
    e.sched
        .store()
        .inject_write_failures(limits::STORE_RETRIES_MAX as usize + 1);
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Failed);
    assert_eq!(rec.code, 1004);
    assert!(rec.ended_reason.unwrap().contains("store refused"));
}
