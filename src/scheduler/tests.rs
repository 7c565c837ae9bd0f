//! Scheduler tests on tokio's paused clock with an inline store: admission, priorities and
//! aging, stop/pause/resume/retry/manual end, recovery after a restart, periodic ticks, and the
//! bounded structures.

use super::*;
use crate::flow::load;
use crate::store::{StoreOptions, WriterMode};
use serde_json::{json, Value};
use std::time::Duration;
use tempfile::TempDir;

pub(super) struct Env {
    pub(super) sched: Scheduler,
    pub(super) tasks: Tasks,
    pub(super) dir: TempDir,
}

pub(super) fn open_store(dir: &TempDir) -> Store {
    let mut opts = StoreOptions::new(dir.path().join("vwed.db"));
    opts.writer = WriterMode::Inline;
    Store::open(opts).unwrap()
}

pub(super) async fn env(config: Config) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let tasks = Tasks::new();
    let sched = Scheduler::start(open_store(&dir), config, &tasks)
        .await
        .unwrap();
    Env { sched, tasks, dir }
}

impl Env {
    pub(super) async fn restart(self, config: Config) -> Env {
        self.sched.shutdown().await;
        self.tasks.join_all().await;
        self.sched.store().close();
        let tasks = Tasks::new();
        let sched = Scheduler::start(open_store(&self.dir), config, &tasks)
            .await
            .unwrap();
        Env {
            sched,
            tasks,
            dir: self.dir,
        }
    }

    pub(super) async fn define(&self, id: &str, children: Value, extra: Value) {
        let mut def = json!({"id": id, "label": id, "detail": {"inputParams": [
                {"name": "ms", "type": "Long", "defaultValue": "1000"}],
            "outputParams": [], "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp",
            "inputParams": {}, "children": {"default": children}}}});
        for (k, v) in extra.as_object().unwrap() {
            def[k] = v.clone();
        }
        let raw = load::load_value(def, id).remove(0).unwrap();
        self.sched.save_definition(raw).await.unwrap();
    }

    pub(super) async fn submit(&self, def: &str, priority: i64) -> String {
        let req = SubmitRequest {
            def_id: Some(def.into()),
            priority: Some(priority),
            ..SubmitRequest::default()
        };
        self.sched.submit(req).await.unwrap().id
    }

    pub(super) async fn record(&self, id: &str) -> TaskRecord {
        let id = id.to_string();
        self.sched
            .store()
            .read(move |rx| rx.task(&id))
            .await
            .unwrap()
            .unwrap()
    }

    /// Waits (paused clock, up to an hour) until run `id` exists and has `status`.
    pub(super) async fn until_status(&self, id: &str, status: TaskStatus) -> TaskRecord {
        for _ in 0..36_000 {
            let key = id.to_string();
            let rec = self.sched.store().read(move |rx| rx.task(&key)).await;
            if let Some(rec) = rec.unwrap().filter(|r| r.status == status) {
                return rec;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("run {id} never {status:?}");
    }

    pub(super) async fn status(&self, id: &str) -> TaskStatus {
        self.record(id).await.status
    }

    pub(super) async fn logs(&self, id: &str) -> Vec<String> {
        let id = id.to_string();
        let logs = self
            .sched
            .store()
            .read(move |rx| rx.task_logs(&id, 1000))
            .await
            .unwrap();
        logs.into_iter().map(|l| l.message).collect()
    }

    pub(super) async fn blocks(&self, id: &str) -> Vec<(String, i32)> {
        let id = id.to_string();
        let recs = self
            .sched
            .store()
            .read(move |rx| rx.block_records(&id, 1000))
            .await
            .unwrap();
        recs.into_iter().map(|r| (r.block_name, r.status)).collect()
    }
}

pub(super) fn b(id: i64, ty: &str, params: Value) -> Value {
    json!({"id": id, "name": format!("b{id}"), "blockType": ty, "inputParams": params,
        "children": {}})
}

pub(super) fn simple(v: &str) -> Value {
    json!({"type": "Simple", "value": v})
}

pub(super) fn expr(v: &str) -> Value {
    json!({"type": "Expression", "value": v})
}

/// Print, delay `taskInputs.ms`, print.
pub(super) fn delay_flow() -> Value {
    json!([
        b(1, "PrintBp", json!({"message": simple("start")})),
        b(2, "DelayBp", json!({"timeMillis": expr("taskInputs.ms")})),
        b(3, "PrintBp", json!({"message": simple("end")})),
    ])
}

pub(super) async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_goes_from_queued_to_finished() {
    let e = env(Config::default()).await;
    e.define("d", delay_flow(), json!({})).await;
    let t0 = tokio::time::Instant::now();
    let id = e.submit("d", 1).await;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished);
    assert_eq!(rec.code, 1003);
    assert_eq!(t0.elapsed(), Duration::from_millis(1000));
    assert_eq!(e.logs(&id).await.len(), 2);
    let blocks = e.blocks(&id).await;
    assert_eq!(blocks.len(), 4, "{blocks:?}");
    assert!(blocks.iter().all(|(_, s)| *s == 1003), "{blocks:?}");
    let id2 = id.clone();
    let cp = e
        .sched
        .store()
        .read(move |rx| rx.checkpoint(&id2))
        .await
        .unwrap();
    assert!(cp.is_none(), "an ended run keeps no checkpoint");
}

#[tokio::test(start_paused = true)]
async fn submissions_are_idempotent_by_task_id() {
    let e = env(Config::default()).await;
    e.define("d", delay_flow(), json!({})).await;
    let req = SubmitRequest {
        def_label: Some("d".into()),
        task_id: Some("order-1".into()),
        ..SubmitRequest::default()
    };
    let first = e.sched.submit(req.clone()).await.unwrap();
    assert!(first.created);
    let again = e.sched.submit(req.clone()).await.unwrap();
    assert_eq!(
        again,
        Submitted {
            id: "order-1".into(),
            created: false
        }
    );
    let mut other = req;
    other.priority = Some(7);
    assert_eq!(
        e.sched.submit(other).await.unwrap_err(),
        SubmitError::IdConflict("order-1".into())
    );
    let unknown = SubmitRequest {
        def_label: Some("nope".into()),
        ..SubmitRequest::default()
    };
    assert!(matches!(
        e.sched.submit(unknown).await,
        Err(SubmitError::UnknownDefinition(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn the_backlog_limit_refuses_with_the_limit_named() {
    let e = env(Config {
        runs_active_max: 1,
        backlog_max: 2,
        ..Config::default()
    })
    .await;
    e.define("d", delay_flow(), json!({})).await;
    e.submit("d", 1).await;
    settle().await; // the first one starts and leaves the backlog
    e.submit("d", 1).await;
    e.submit("d", 1).await;
    let req = SubmitRequest {
        def_id: Some("d".into()),
        ..SubmitRequest::default()
    };
    let err = e.sched.submit(req).await.unwrap_err();
    assert_eq!(err, SubmitError::QueueFull { limit: 2 });
    assert!(err.to_string().contains("BACKLOG_MAX (2)"));
}

async fn start_order(e: &Env, ids: &[String]) -> Vec<String> {
    let mut started = Vec::new();
    for id in ids {
        let rec = e.sched.wait_terminal(id).await.unwrap();
        started.push((rec.started_ms.unwrap(), rec.seq, id.clone()));
    }
    started.sort();
    started.into_iter().map(|(_, _, id)| id).collect()
}

#[tokio::test(start_paused = true)]
async fn higher_priorities_start_first() {
    let e = env(Config {
        runs_active_max: 1,
        ..Config::default()
    })
    .await;
    e.define("d", delay_flow(), json!({})).await;
    let blocker = e.submit("d", 1).await;
    settle().await;
    let low = e.submit("d", 0).await;
    let high = e.submit("d", 5).await;
    let mid = e.submit("d", 3).await;
    let order = start_order(
        &e,
        &[blocker.clone(), low.clone(), high.clone(), mid.clone()],
    )
    .await;
    assert_eq!(order, vec![blocker, high, mid, low]);
}

#[tokio::test(start_paused = true)]
async fn aging_lets_a_waiting_low_priority_run_through() {
    let e = env(Config {
        runs_active_max: 1,
        aging_step_ms: 1_000,
        ..Config::default()
    })
    .await;
    e.define("d", delay_flow(), json!({})).await;
    e.define(
        "long",
        json!([b(1, "DelayBp", json!({"timeMillis": simple("20000")}))]),
        json!({}),
    )
    .await;
    let blocker = e.submit("long", 9).await;
    settle().await;
    let low = e.submit("d", 0).await;
    tokio::time::sleep(Duration::from_millis(15_000)).await;
    let high = e.submit("d", 9).await;
    // After 15 s the level-0 run competes as level 15 > 9.
    let order = start_order(&e, &[blocker.clone(), low.clone(), high.clone()]).await;
    assert_eq!(order, vec![blocker, low, high]);
}

#[tokio::test(start_paused = true)]
async fn stop_ends_a_waiting_run_at_once() {
    let e = env(Config::default()).await;
    e.define("d", delay_flow(), json!({})).await;
    let id = e.submit("d", 1).await;
    settle().await;
    let t0 = tokio::time::Instant::now();
    let status = e.sched.control(&id, Control::Stop).await.unwrap();
    assert_eq!(status, TaskStatus::Stopped);
    assert_eq!(t0.elapsed(), Duration::ZERO, "no waiting for the delay");
    let rec = e.record(&id).await;
    assert_eq!(rec.code, 1001);
    assert!(e.blocks(&id).await.contains(&("b2".into(), 1001)));
    assert_eq!(e.logs(&id).await, vec![r#"[PrintBp][b1]result: "start""#]);
    let again = e.sched.control(&id, Control::Stop).await.unwrap_err();
    assert!(matches!(
        again,
        ControlError::IllegalState {
            status: TaskStatus::Stopped,
            ..
        }
    ));
    let missing = e.sched.control("nope", Control::Stop).await.unwrap_err();
    assert_eq!(missing, ControlError::NotFound("nope".into()));
}

#[tokio::test(start_paused = true)]
async fn pause_frees_the_slot_and_resume_continues() {
    let e = env(Config {
        runs_active_max: 1,
        ..Config::default()
    })
    .await;
    e.define("d", delay_flow(), json!({})).await;
    let first = e.submit("d", 1).await;
    let second = e.submit("d", 1).await;
    settle().await;
    assert_eq!(
        e.sched.control(&first, Control::Pause).await.unwrap(),
        TaskStatus::Paused
    );
    // The freed slot runs the second task to its end while the first stays paused.
    let rec = e.sched.wait_terminal(&second).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished);
    assert_eq!(e.record(&first).await.status, TaskStatus::Paused);
    assert_eq!(e.record(&first).await.code, 1002);
    assert_eq!(
        e.sched.control(&first, Control::Resume).await.unwrap(),
        TaskStatus::Queued
    );
    let rec = e.sched.wait_terminal(&first).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished);
    assert_eq!(
        e.logs(&first).await.len(),
        2,
        "start printed once, end once"
    );
    let err = e.sched.control(&first, Control::Resume).await.unwrap_err();
    assert!(matches!(err, ControlError::IllegalState { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_paused_run_stays_paused_across_a_restart() {
    let e = env(Config::default()).await;
    e.define("d", delay_flow(), json!({})).await;
    let id = e.submit("d", 1).await;
    settle().await;
    e.sched.control(&id, Control::Pause).await.unwrap();
    let e = e.restart(Config::default()).await;
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    assert_eq!(e.record(&id).await.status, TaskStatus::Paused);
    e.sched.control(&id, Control::Resume).await.unwrap();
    assert_eq!(
        e.sched.wait_terminal(&id).await.unwrap().status,
        TaskStatus::Finished
    );
}

#[tokio::test(start_paused = true)]
async fn a_running_run_resumes_from_its_checkpoint_after_a_restart() {
    let e = env(Config::default()).await;
    e.define("d", delay_flow(), json!({})).await;
    let id = e.submit("d", 1).await;
    settle().await;
    assert_eq!(e.record(&id).await.status, TaskStatus::Running);
    let e = e.restart(Config::default()).await;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished);
    let logs = e.logs(&id).await;
    assert_eq!(
        logs.len(),
        2,
        "the first PrintBp did not run again: {logs:?}"
    );
    let starts_of_b1 = e
        .blocks(&id)
        .await
        .iter()
        .filter(|(n, _)| n == "b1")
        .count();
    assert_eq!(starts_of_b1, 1);
}

#[tokio::test(start_paused = true)]
async fn queued_runs_can_be_stopped_or_paused_before_they_start() {
    let e = env(Config {
        runs_active_max: 1,
        ..Config::default()
    })
    .await;
    e.define("d", delay_flow(), json!({})).await;
    let blocker = e.submit("d", 1).await;
    let a = e.submit("d", 1).await;
    let b2 = e.submit("d", 1).await;
    settle().await;
    let waiting = e.record(&a).await;
    assert_eq!(
        (waiting.status, waiting.code),
        (TaskStatus::Queued, 1100),
        "vwed's queued code"
    );
    assert_eq!(
        e.sched.control(&a, Control::Stop).await.unwrap(),
        TaskStatus::Stopped
    );
    assert_eq!(
        e.sched.control(&b2, Control::Pause).await.unwrap(),
        TaskStatus::Paused
    );
    e.sched.wait_terminal(&blocker).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert!(
        e.blocks(&a).await.is_empty(),
        "a stopped queued run never starts"
    );
    assert_eq!(e.record(&b2).await.status, TaskStatus::Paused);
    e.sched.control(&b2, Control::Resume).await.unwrap();
    assert_eq!(
        e.sched.wait_terminal(&b2).await.unwrap().status,
        TaskStatus::Finished
    );
}

#[tokio::test(start_paused = true)]
async fn retry_runs_the_failed_block_again_and_nothing_before_it() {
    let e = env(Config::default()).await;
    e.define(
        "fails",
        json!([
            b(1, "PrintBp", json!({"message": simple("before")})),
            b(
                2,
                "StringToJsonObjectBp",
                json!({"convertString": simple("[]")})
            ),
        ]),
        json!({}),
    )
    .await;
    let id = e.submit("fails", 1).await;
    let rec = e
        .sched
        .wait_for(&id, |s| s == TaskStatus::Interrupted)
        .await
        .unwrap();
    assert_eq!(rec.code, 1006);
    assert!(rec
        .ended_reason
        .unwrap()
        .starts_with("[StringToJsonObjectBp]Block Run Failure:"));
    e.sched.control(&id, Control::Retry).await.unwrap();
    settle().await;
    let rec = e
        .sched
        .wait_for(&id, |s| s == TaskStatus::Interrupted)
        .await
        .unwrap();
    assert_eq!(rec.code, 1006);
    assert_eq!(e.logs(&id).await.len(), 1, "b1 did not run again");
    let tries = e
        .blocks(&id)
        .await
        .iter()
        .filter(|(n, _)| n == "b2")
        .count();
    assert_eq!(tries, 2);
    assert_eq!(
        e.sched.control(&id, Control::Stop).await.unwrap(),
        TaskStatus::Stopped
    );
}

#[tokio::test(start_paused = true)]
async fn manual_end_finishes_with_the_marker() {
    let e = env(Config::default()).await;
    e.define("d", delay_flow(), json!({})).await;
    let id = e.submit("d", 1).await;
    settle().await;
    assert_eq!(
        e.sched.control(&id, Control::ManualEnd).await.unwrap(),
        TaskStatus::Finished
    );
    let rec = e.record(&id).await;
    assert!(rec.manual_end);
    assert_eq!(rec.code, 1003);
}

#[tokio::test(start_paused = true)]
async fn a_priority_change_reorders_the_queue() {
    let e = env(Config {
        runs_active_max: 1,
        ..Config::default()
    })
    .await;
    e.define("d", delay_flow(), json!({})).await;
    let blocker = e.submit("d", 1).await;
    settle().await;
    let a = e.submit("d", 1).await;
    let b2 = e.submit("d", 1).await;
    assert_eq!(
        e.sched.set_priority(&b2, 8).await.unwrap(),
        TaskStatus::Queued
    );
    settle().await;
    let order = start_order(&e, &[blocker.clone(), a.clone(), b2.clone()]).await;
    assert_eq!(order, vec![blocker, b2.clone(), a]);
    assert_eq!(e.record(&b2).await.priority, 8);
}

#[tokio::test(start_paused = true)]
async fn periodic_definitions_tick_and_skip_while_a_run_is_active() {
    let e = env(Config::default()).await;
    // A run takes 2.5 s; the period is 1 s: ticks during a run are skipped.
    e.define(
        "tick",
        json!([b(1, "DelayBp", json!({"timeMillis": simple("2500")}))]),
        json!({"periodicTask": 1, "ifEnable": 1, "period": 1000, "delay": 500}),
    )
    .await;
    let e = e.restart(Config::default()).await; // periodic definitions are read at start
    tokio::time::sleep(Duration::from_millis(10_000)).await;
    let runs = e
        .sched
        .store()
        .read(|rx| rx.tasks_with_status(TaskStatus::Finished, 100))
        .await
        .unwrap();
    // Starts at 0.5 s, then the first tick after each end: 3.0 → 4.0, 6.5 → 7.5 (ends 10.0).
    assert!(runs.len() >= 2 && runs.len() <= 3, "{} runs", runs.len());
    assert!(runs
        .iter()
        .all(|r| r.periodic && r.id.starts_with("period")));
    let active = e
        .sched
        .store()
        .read(|rx| rx.active_count_for_definition("tick"))
        .await
        .unwrap();
    assert!(
        active <= 1,
        "never two runs of one periodic definition at once"
    );
}

#[tokio::test(start_paused = true)]
async fn more_queued_runs_than_the_rings_hold_all_run() {
    let e = env(Config {
        runs_active_max: 2,
        ready_ring_capacity: 4,
        ..Config::default()
    })
    .await;
    e.define(
        "quick",
        json!([b(1, "PrintBp", json!({"message": simple("x")}))]),
        json!({}),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(e.submit("quick", 1).await);
    }
    assert!(e.sched.stats().ready_len <= e.sched.stats().ready_capacity);
    for id in &ids {
        assert_eq!(
            e.sched.wait_terminal(id).await.unwrap().status,
            TaskStatus::Finished
        );
    }
    assert!(e.sched.stats().runs_loaded <= 2);
}

#[tokio::test(start_paused = true)]
async fn a_watcher_that_falls_behind_is_told_it_lagged() {
    let e = env(Config::default()).await;
    e.define(
        "chatty",
        json!([{"id": 1, "name": "b1", "blockType": "RepeatNumBp", "inputParams":
            {"num": simple("1000")}, "children": {"default": [
                b(2, "PrintBp", json!({"message": simple("x")})),
                b(3, "PrintBp", json!({"message": simple("y")}))]}}]),
        json!({}),
    )
    .await;
    let mut rx = e.sched.subscribe();
    let id = e.submit("chatty", 1).await;
    e.sched.wait_terminal(&id).await.unwrap();
    match rx.recv().await {
        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => assert!(n > 0),
        other => panic!("expected a lag, got {other:?}"),
    }
}

async fn cache_rounds(e: &Env, rounds: usize) -> Vec<String> {
    let mut printed = Vec::new();
    for _ in 0..rounds {
        let id = e.submit("cache", 1).await;
        e.sched.wait_terminal(&id).await.unwrap();
        for line in e.logs(&id).await {
            if let Some((_, m)) = line.split_once("result: ") {
                printed.push(m.to_string());
            }
        }
    }
    printed
}

#[tokio::test(start_paused = true)]
async fn the_data_cache_persists_across_runs_and_restarts() {
    let text = include_str!("../../../shared/docs/wind-task-examples/08-cache-data.json");
    let e = env(Config::default()).await;
    let mut raw = load::load_text(text, "cache").remove(0).unwrap();
    raw.id = Some("cache".into());
    e.sched.save_definition(raw).await.unwrap();
    let mut printed = cache_rounds(&e, 2).await;
    // The counter lives in the store, not only in memory.
    let e = e.restart(Config::default()).await;
    printed.extend(cache_rounds(&e, 2).await);
    assert_eq!(
        printed,
        vec![
            r#""this is run number 1""#,
            r#""this is run number 2""#,
            r#""this is run number 3""#,
            r#""counter reset""#,
            r#""this is run number 1""#,
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_keeps_the_definition_version_it_started_with() {
    let e = env(Config::default()).await;
    e.define("d", delay_flow(), json!({})).await;
    let id = e.submit("d", 1).await;
    settle().await;
    // Edit the definition while the run waits in its delay: the run keeps version 1.
    let changed = json!([
        b(1, "PrintBp", json!({"message": simple("v2 start")})),
        b(2, "DelayBp", json!({"timeMillis": expr("taskInputs.ms")})),
        b(3, "PrintBp", json!({"message": simple("v2 end")})),
    ]);
    e.define("d", changed, json!({})).await;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.def_version, 1);
    assert_eq!(
        e.logs(&id).await,
        vec![
            r#"[PrintBp][b1]result: "start""#,
            r#"[PrintBp][b3]result: "end""#
        ]
    );
    let next = e.submit("d", 1).await;
    assert_eq!(e.sched.wait_terminal(&next).await.unwrap().def_version, 2);
    assert_eq!(e.logs(&next).await[0], r#"[PrintBp][b1]result: "v2 start""#);
}
