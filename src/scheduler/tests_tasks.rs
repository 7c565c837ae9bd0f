//! Sub-tasks and task control blocks (spec §3.5, decisions §8 Q8) through the scheduler on
//! tokio's paused clock.

use super::tests::{b, delay_flow, env, expr, simple, Env};
use super::*;
use crate::flow::load;
use serde_json::{json, Value};
use std::time::Duration;

const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/docs/wind-task-examples/"
);

/// A paused-clock hour: long enough for any run here, short of hanging on a deadlock.
const PATIENCE: Duration = Duration::from_secs(3_600);

impl Env {
    async fn end_of(&self, id: &str) -> TaskRecord {
        tokio::time::timeout(PATIENCE, self.sched.wait_terminal(id))
            .await
            .unwrap_or_else(|_| panic!("run {id} never ended"))
            .unwrap()
    }

    async fn submit_with(&self, def: &str, id: &str, inputs: Value) -> String {
        let req = SubmitRequest {
            def_id: Some(def.into()),
            task_id: Some(id.into()),
            inputs: inputs.as_object().cloned().unwrap_or_default(),
            ..SubmitRequest::default()
        };
        self.sched.submit(req).await.unwrap().id
    }

    async fn children_of(&self, parent: &str) -> Vec<TaskRecord> {
        let all = self
            .sched
            .store()
            .read(|rx| rx.list_tasks(&crate::store::TaskFilter::default(), 1000))
            .await
            .unwrap();
        all.into_iter()
            .filter(|r| r.parent_id.as_deref() == Some(parent))
            .collect()
    }
}

fn sub(id: i64, def: &str, params: Value) -> Value {
    b(id, &format!("SubTask::{def}"), params)
}

fn sync(params: Value) -> Value {
    let mut p = params;
    p["ifAsync"] = json!({"type": "Simple", "value": false});
    p
}

/// Examples 07a/07b: the parent waits for its first child (`<parent>-leg1`, to LM1), prints,
/// starts a second child asynchronously and ends while it still drives.
#[tokio::test(start_paused = true)]
async fn example_07_runs_a_child_synchronously_then_one_asynchronously() {
    let e = env(Config::default()).await;
    for (file, id) in [
        ("07a-subtask-child.json", Some("ex-child-move")),
        ("07b-subtask-parent.json", Some("ex-parent")),
    ] {
        let text = std::fs::read_to_string(format!("{EXAMPLES}{file}")).unwrap();
        let mut raw = load::load_text(&text, file).remove(0).unwrap();
        raw.id = id.map(String::from);
        e.sched.save_definition(raw).await.unwrap();
    }
    let parent = e.submit_with("ex-parent", "p1", json!({})).await;
    let rec = e.end_of(&parent).await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    let logs = e.logs(&parent).await.join("\n");
    assert!(logs.contains("first leg done"), "{logs}");
    let leg1 = e.record("p1-leg1").await;
    assert_eq!(leg1.status, TaskStatus::Finished, "{leg1:?}");
    assert!(
        rec.has_children && !leg1.has_children,
        "ifHaveChildTask on the parent only"
    );
    let shown = crate::api::rds_query::record_json(&rec);
    assert_eq!(shown["ifHaveChildTask"], true);
    assert_eq!(
        crate::api::rds_query::record_json(&leg1)["ifHaveChildTask"],
        Value::Null
    );
    assert_eq!(leg1.parent_id.as_deref(), Some("p1"));
    assert_eq!(leg1.root_id.as_deref(), Some("p1"));
    assert_eq!(leg1.priority, 1);
    assert!(leg1.state_description.unwrap_or_default().contains("LM1"));
    let children = e.children_of("p1").await;
    assert_eq!(children.len(), 2, "{children:?}");
    let leg2 = children.iter().find(|c| c.id != "p1-leg1").unwrap();
    assert!(leg2.id.starts_with("child-"), "{}", leg2.id);
    assert!(
        !leg2.status.is_terminal(),
        "the asynchronous child still drives when the parent ends"
    );
    let leg2 = e.end_of(&leg2.id.clone()).await;
    assert_eq!(leg2.status, TaskStatus::Finished, "{leg2:?}");
    assert!(leg2.state_description.unwrap_or_default().contains("LM2"));
}

/// A child that fails (1004) or is stopped (1001) ends the waiting parent with that status
/// (SubTaskFailure): its SubTask block 1003, later blocks skipped.
#[tokio::test(start_paused = true)]
async fn a_failed_or_stopped_child_ends_the_parent_with_its_status() {
    let e = env(Config::default()).await;
    let throw = b(
        1,
        "ThrowExceptionBp",
        json!({"message": simple("no pallet")}),
    );
    e.define("bad", json!([throw]), json!({})).await;
    e.define("slow", delay_flow(), json!({})).await;
    let after = b(2, "PrintBp", json!({"message": simple("after")}));
    e.define(
        "p-bad",
        json!([sub(1, "bad", sync(json!({}))), after]),
        json!({}),
    )
    .await;
    let ms = json!({"ms": simple("60000"), "taskRecordId": simple("slow-child")});
    e.define("p-slow", json!([sub(1, "slow", sync(ms))]), json!({}))
        .await;

    let p = e.submit("p-bad", 1).await;
    let rec = e.end_of(&p).await;
    assert_eq!(
        (rec.status, rec.code),
        (TaskStatus::Failed, 1004),
        "{rec:?}"
    );
    assert!(rec
        .ended_reason
        .as_deref()
        .unwrap_or("")
        .contains("sub Task Error"));
    let blocks = e.blocks(&p).await;
    assert!(blocks.contains(&("b1".to_string(), 1003)), "{blocks:?}");
    assert!(!blocks.iter().any(|(n, _)| n == "b2"), "{blocks:?}");

    let p = e.submit("p-slow", 1).await;
    e.until_status("slow-child", TaskStatus::Running).await;
    e.sched.control("slow-child", Control::Stop).await.unwrap();
    let rec = e.end_of(&p).await;
    assert_eq!(
        (rec.status, rec.code),
        (TaskStatus::Stopped, 1001),
        "{rec:?}"
    );
}

/// §8 Q8: a parent keeps waiting while its child is paused or interrupted, and stopping the
/// parent stops the child it waits for (an asynchronous child goes on).
#[tokio::test(start_paused = true)]
async fn stopping_a_parent_stops_the_child_it_waits_for_only() {
    let e = env(Config::default()).await;
    e.define("slow", delay_flow(), json!({})).await;
    let children = json!([
        sub(
            1,
            "slow",
            json!({"ifAsync": {"type": "Simple", "value": true},
            "taskRecordId": simple("free"), "ms": simple("600000")})
        ),
        sub(
            2,
            "slow",
            sync(json!({"taskRecordId": simple("held"), "ms": simple("600000")}))
        ),
    ]);
    e.define("p", children, json!({})).await;
    let p = e.submit("p", 1).await;
    e.until_status("held", TaskStatus::Running).await;
    e.sched.control("held", Control::Pause).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        e.status(&p).await,
        TaskStatus::Running,
        "waits for the paused child"
    );
    e.sched.control(&p, Control::Stop).await.unwrap();
    e.until_status("held", TaskStatus::Stopped).await;
    assert_eq!(
        e.status("free").await,
        TaskStatus::Running,
        "async child goes on"
    );
}

/// With one run slot the parent gives its slot to the child it waits for (parked), and is
/// loaded again when the child ends; a restart meanwhile attaches to the same child.
#[tokio::test(start_paused = true)]
async fn a_waiting_parent_frees_its_slot_and_survives_a_restart() {
    let config = Config {
        runs_active_max: 1,
        ..Config::default()
    };
    let e = env(config.clone()).await;
    e.define("slow", delay_flow(), json!({})).await;
    let after = b(2, "PrintBp", json!({"message": simple("child done")}));
    e.define(
        "p",
        json!([sub(1, "slow", sync(json!({"ms": simple("30000")}))), after]),
        json!({}),
    )
    .await;
    let p = e.submit("p", 1).await;
    for _ in 0..100 {
        if !e.children_of(&p).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let child = e.children_of(&p).await.remove(0).id;
    assert_eq!(child, crate::blocks::derived_child_id(&p, 2));
    e.until_status(&child, TaskStatus::Running).await;
    // The child's definition goes away meanwhile: the parent still attaches to its child.
    e.sched
        .store()
        .write(|tx| tx.delete_definition("slow").map(|_| ()))
        .await
        .unwrap();
    let e = e.restart(config).await;
    let rec = e.end_of(&p).await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert!(e.logs(&p).await.iter().any(|l| l.contains("child done")));
    assert_eq!(
        e.children_of(&p).await.len(),
        1,
        "one child, attached again"
    );
    assert_eq!(e.status(&child).await, TaskStatus::Finished);
}

/// A child id that names another record, a child definition that does not exist, or the
/// parent's own id: BlockFailure (1006) naming it, and no child starts.
#[tokio::test(start_paused = true)]
async fn bad_sub_tasks_fail_the_block_before_anything_starts() {
    let e = env(Config::default()).await;
    e.define("slow", delay_flow(), json!({})).await;
    e.submit_with("slow", "taken", json!({"ms": 1})).await;
    let cases = [
        (
            "dup",
            sub(1, "slow", sync(json!({"taskRecordId": simple("taken")}))),
            "taken",
        ),
        ("nodef", sub(1, "nowhere", sync(json!({}))), "subTaskNo"),
        (
            "self",
            sub(
                1,
                "slow",
                sync(json!({"taskRecordId": expr("task.taskRecordId")})),
            ),
            "own id",
        ),
    ];
    for (def, block, says) in cases {
        e.define(def, json!([block]), json!({})).await;
        let p = e.submit(def, 1).await;
        e.until_status(&p, TaskStatus::Interrupted).await;
        let rec = e.record(&p).await;
        let reason = rec.ended_reason.unwrap_or_default();
        assert!(reason.contains(says), "{def}: {reason}");
        assert!(e.children_of(&p).await.is_empty(), "{def}");
    }
}

/// `StopTaskBp`, `SuspendTaskBp`, `StartTaskBp` on another run: the outputs say whether they
/// took effect; unknown or finished targets answer false.
#[tokio::test(start_paused = true)]
async fn control_blocks_stop_pause_and_resume_other_runs() {
    let e = env(Config::default()).await;
    e.define("slow", delay_flow(), json!({})).await;
    e.submit_with("slow", "t1", json!({"ms": 600000})).await;
    e.submit_with("slow", "t2", json!({"ms": 600000})).await;
    e.until_status("t1", TaskStatus::Running).await;
    e.until_status("t2", TaskStatus::Running).await;
    let target = |v: &str| json!({"taskRecordId": simple(v)});
    let flow = json!([
        b(1, "SuspendTaskBp", target("t1")),
        b(2, "StopTaskBp", target("t2")),
        b(3, "StopTaskBp", target("nobody")),
        b(4, "StartTaskBp", target("t1")),
        b(5, "StartTaskBp", target("t2")),
        b(
            6,
            "SetTaskVariableBp",
            json!({"varName": simple("out"), "varValue": expr(
            "blocks.b1.suspendSuccess + ',' + blocks.b2.stopSuccess + ',' + \
             blocks.b3.stopSuccess + ',' + blocks.b4.startSuccess + ',' + \
             blocks.b5.startSuccess")})
        ),
    ]);
    e.define("ctl", flow, json!({})).await;
    let c = e.submit("ctl", 1).await;
    let rec = e.end_of(&c).await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    let vars: Value = serde_json::from_str(&rec.variables).unwrap();
    assert_eq!(vars["out"], "true,true,false,true,false", "{vars}");
    assert_eq!(e.status("t2").await, TaskStatus::Stopped);
    assert!(matches!(
        e.status("t1").await,
        TaskStatus::Queued | TaskStatus::Running
    ));
}

/// `SuspendTaskBp` on its own run pauses it after the block (a resume goes on with the next
/// block); `StopTaskBp` on its own run stops it.
#[tokio::test(start_paused = true)]
async fn a_run_can_suspend_or_stop_itself() {
    let e = env(Config::default()).await;
    let me = json!({"taskRecordId": expr("task.taskRecordId")});
    let end = b(2, "PrintBp", json!({"message": simple("resumed")}));
    e.define(
        "nap",
        json!([b(1, "SuspendTaskBp", me.clone()), end]),
        json!({}),
    )
    .await;
    let quit = b(2, "PrintBp", json!({"message": simple("never")}));
    e.define("quit", json!([b(1, "StopTaskBp", me), quit]), json!({}))
        .await;
    let n = e.submit("nap", 1).await;
    e.until_status(&n, TaskStatus::Paused).await;
    assert!(!e.logs(&n).await.iter().any(|l| l.contains("resumed")));
    e.sched.control(&n, Control::Resume).await.unwrap();
    assert_eq!(e.end_of(&n).await.status, TaskStatus::Finished);
    assert!(e.logs(&n).await.iter().any(|l| l.contains("resumed")));
    let q = e.submit("quit", 1).await;
    assert_eq!(e.end_of(&q).await.status, TaskStatus::Stopped);
    assert!(!e.logs(&q).await.iter().any(|l| l.contains("never")));
}

/// Record lookups: `SetOutOrderNoBp` then `GetTaskRecordByOutOrderIdBp`, `GetTaskRecordBp`,
/// `CheckTaskRecordIdIsExistBp`, `GetTaskInputParamsByTaskRecordAndKeyBp`; `MarkTaskEndBp`
/// ends the run normally, skipping the rest.
#[tokio::test(start_paused = true)]
async fn record_blocks_read_records_and_mark_task_end_returns() {
    let e = env(Config::default()).await;
    e.define("slow", delay_flow(), json!({})).await;
    e.submit_with("slow", "other", json!({"ms": 600000})).await;
    let me = expr("task.taskRecordId");
    let flow = json!([
        b(1, "MarkTaskStartBp", json!({})),
        b(2, "SetOutOrderNoBp", json!({"orderNo": simple("WMS-7")})),
        b(
            3,
            "GetTaskRecordByOutOrderIdBp",
            json!({"outOrderId": simple("WMS-7")})
        ),
        b(
            4,
            "GetTaskRecordBp",
            json!({"taskRecordId": simple("other")})
        ),
        b(
            5,
            "GetTaskRecordBp",
            json!({"taskRecordId": simple("nobody")})
        ),
        b(
            6,
            "CheckTaskRecordIdIsExistBp",
            json!({"taskRecordId": simple("other")})
        ),
        b(
            7,
            "CheckTaskRecordIdIsExistBp",
            json!({"taskRecordId": simple("nobody")})
        ),
        b(
            8,
            "GetTaskInputParamsByTaskRecordAndKeyBp",
            json!({"taskRecordId": simple("other"), "inputParamsKey": simple("ms")})
        ),
        b(
            9,
            "GetTaskInputParamsByTaskRecordAndKeyBp",
            json!({"taskRecordId": me, "inputParamsKey": simple("nope")})
        ),
        b(
            10,
            "SetTaskVariableBp",
            json!({"varName": simple("out"), "varValue": expr(
            "blocks.b3.taskRecordIdList[0] == task.taskRecordId && \
             blocks.b4.taskRecord.defId == 'slow' && blocks.b5.taskRecord == '' && \
             blocks.b6.taskRecordIdIsExist && !blocks.b7.taskRecordIdIsExist")})
        ),
        b(
            11,
            "SetTaskVariableBp",
            json!({"varName": simple("ms"),
            "varValue": expr("blocks.b8.inputParamValue")})
        ),
        b(12, "MarkTaskEndBp", json!({})),
        b(13, "PrintBp", json!({"message": simple("skipped")})),
    ]);
    e.define("look", flow, json!({})).await;
    let id = e.submit("look", 1).await;
    let rec = e.end_of(&id).await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(rec.out_order_no.as_deref(), Some("WMS-7"));
    let vars: Value = serde_json::from_str(&rec.variables).unwrap();
    assert_eq!(vars["out"], true, "{vars}");
    assert_eq!(vars["ms"], 600000, "stored as sent: {vars}");
    assert!(!e.logs(&id).await.iter().any(|l| l.contains("skipped")));
    let blocks = e.blocks(&id).await;
    assert!(!blocks.iter().any(|(n, _)| n == "b13"), "{blocks:?}");
}

/// Blocks with missing required parameters fail naming them; an unknown record for an input
/// lookup fails naming the id.
#[tokio::test(start_paused = true)]
async fn task_control_blocks_refuse_bad_parameters() {
    let e = env(Config::default()).await;
    let cases = [
        (
            b(1, "StopTaskBp", json!({"taskRecordId": expr("' '")})),
            "taskRecordId",
        ),
        (
            b(1, "SetOutOrderNoBp", json!({"orderNo": expr("''")})),
            "orderNo",
        ),
        (
            b(
                1,
                "GetTaskInputParamsByTaskRecordAndKeyBp",
                json!({"taskRecordId": simple("ghost"), "inputParamsKey": simple("k")}),
            ),
            "ghost",
        ),
    ];
    for (i, (block, says)) in cases.into_iter().enumerate() {
        let def = format!("bad{i}");
        e.define(&def, json!([block]), json!({})).await;
        let id = e.submit(&def, 1).await;
        e.until_status(&id, TaskStatus::Interrupted).await;
        let reason = e.record(&id).await.ended_reason.unwrap_or_default();
        assert!(reason.contains(says), "{def}: {reason}");
    }
}

/// A definition that starts itself stops at `SUB_TASK_DEPTH_MAX` levels: the deepest parent's
/// block fails naming the limit and starts nothing.
#[tokio::test(start_paused = true)]
async fn sub_tasks_nest_at_most_sub_task_depth_max_levels() {
    use crate::limits::SUB_TASK_DEPTH_MAX;
    let e = env(Config::default()).await;
    e.define("rec", json!([sub(1, "rec", sync(json!({})))]), json!({}))
        .await;
    let top = e.submit("rec", 1).await;
    let mut chain = vec![top];
    loop {
        let last = chain.last().unwrap().clone();
        let mut children = Vec::new();
        for _ in 0..100 {
            children = e.children_of(&last).await;
            let stuck = e.status(&last).await == TaskStatus::Interrupted;
            if !children.is_empty() || stuck {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match children.pop() {
            Some(child) => chain.push(child.id),
            None => break,
        }
    }
    assert_eq!(
        chain.len(),
        SUB_TASK_DEPTH_MAX + 1,
        "the top run and its descendants"
    );
    let deepest = e.record(chain.last().unwrap()).await;
    assert_eq!(deepest.status, TaskStatus::Interrupted);
    let reason = deepest.ended_reason.unwrap_or_default();
    assert!(reason.contains("SUB_TASK_DEPTH_MAX"), "{reason}");
    assert_eq!(
        e.status(&chain[0]).await,
        TaskStatus::Running,
        "waits on (§8 Q8)"
    );
}

/// One run keeps at most `SUB_TASKS_LIVE_PER_RUN_MAX` children running: the next `SubTask`
/// fails naming the limit.
#[tokio::test(start_paused = true)]
async fn a_run_starts_at_most_sub_tasks_live_per_run_max_children() {
    use crate::limits::SUB_TASKS_LIVE_PER_RUN_MAX;
    let e = env(Config::default()).await;
    e.define("slow", delay_flow(), json!({})).await;
    let start = sub(
        2,
        "slow",
        json!({"ifAsync": {"type": "Simple", "value": true},
        "ms": simple("600000")}),
    );
    let n = (SUB_TASKS_LIVE_PER_RUN_MAX + 1).to_string();
    let repeat = json!({"id": 1, "name": "b1", "blockType": "RepeatNumBp",
        "inputParams": {"num": simple(&n)}, "children": {"default": [start]}});
    e.define("many", json!([repeat]), json!({})).await;
    let p = e.submit("many", 1).await;
    e.until_status(&p, TaskStatus::Interrupted).await;
    let reason = e.record(&p).await.ended_reason.unwrap_or_default();
    assert!(reason.contains("SUB_TASKS_LIVE_PER_RUN_MAX"), "{reason}");
    assert_eq!(e.children_of(&p).await.len(), SUB_TASKS_LIVE_PER_RUN_MAX);
}

/// Pausing a parent that waits for its child pauses the parent only; resumed, it takes the
/// child's end (the child finished meanwhile) and goes on.
#[tokio::test(start_paused = true)]
async fn a_paused_parent_takes_its_childs_end_when_resumed() {
    let e = env(Config::default()).await;
    e.define("slow", delay_flow(), json!({})).await;
    let after = b(2, "PrintBp", json!({"message": simple("after the child")}));
    let child = sub(
        1,
        "slow",
        sync(json!({"taskRecordId": simple("kid"), "ms": simple("20000")})),
    );
    e.define("p", json!([child, after]), json!({})).await;
    let p = e.submit("p", 1).await;
    e.until_status("kid", TaskStatus::Running).await;
    assert_eq!(
        e.sched.control(&p, Control::Pause).await.unwrap(),
        TaskStatus::Paused
    );
    assert_eq!(
        e.end_of("kid").await.status,
        TaskStatus::Finished,
        "the child goes on"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(e.status(&p).await, TaskStatus::Paused);
    e.sched.control(&p, Control::Resume).await.unwrap();
    let rec = e.end_of(&p).await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert!(e
        .logs(&p)
        .await
        .iter()
        .any(|l| l.contains("after the child")));
}

/// A fixed `taskRecordId` names one child: a second iteration of the same `SubTask` block
/// (another block record) fails as a duplicate instead of reusing the first child (§8 Q8).
#[tokio::test(start_paused = true)]
async fn a_fixed_child_id_asked_again_by_another_iteration_is_a_duplicate() {
    let e = env(Config::default()).await;
    e.define("slow", delay_flow(), json!({})).await;
    let start = sub(
        2,
        "slow",
        sync(json!({"taskRecordId": simple("fixed-kid")})),
    );
    let repeat = json!({"id": 1, "name": "b1", "blockType": "RepeatNumBp",
        "inputParams": {"num": simple("2")}, "children": {"default": [start]}});
    e.define("twice", json!([repeat]), json!({})).await;
    let p = e.submit("twice", 1).await;
    e.until_status(&p, TaskStatus::Interrupted).await;
    let reason = e.record(&p).await.ended_reason.unwrap_or_default();
    assert!(reason.contains("fixed-kid is taken"), "{reason}");
    assert_eq!(
        e.status("fixed-kid").await,
        TaskStatus::Finished,
        "the first one ran"
    );
    assert_eq!(e.children_of(&p).await.len(), 1);
}
