//! Script blocks (spec §3.4) through the scheduler with the script runtime over
//! `tests/fixtures/scripts/`, and every corpus definition that calls a script, on tokio's
//! paused clock.

use super::tests::{env, Env};
use super::*;
use crate::flow::load;
use crate::store::Site;
use serde_json::{json, Value};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/defs/");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scripts");

/// A scheduler with the fixture scripts and the sites the corpus names: the demo sites, a
/// filled pick site in `PICK-GROUP`, a filled site in `DROP-GROUP-01` and three free ones in
/// `DROP-GROUP-02`.
async fn with_scripts() -> (Env, Arc<crate::script::ScriptPool>) {
    let e = env(Config::default()).await;
    e.demo_sites().await;
    let mut pick = Site::new("PG-01", "PICK-GROUP");
    pick.filled = true;
    let drops: Vec<Site> = (1..=3)
        .map(|i| Site::new(&format!("DG-02-0{i}"), "DROP-GROUP-02"))
        .collect();
    let mut full = Site::new("DG-01-01", "DROP-GROUP-01");
    full.filled = true;
    e.corpus_sites(drops.into_iter().chain([pick, full]).collect())
        .await;
    let store = crate::script::ScriptStore::at(FIXTURES.into()).unwrap();
    let pool = crate::server::start_scripts(store, &e.sched).unwrap();
    (e, pool)
}

impl Env {
    async fn corpus(&self, file: &str, inputs: Value) -> TaskRecord {
        let id = self.submit_file(&format!("{CORPUS}{file}"), inputs).await;
        for _ in 0..20_000 {
            let rec = self.record(&id).await;
            if rec.status.is_terminal() || rec.status == TaskStatus::Interrupted {
                return rec;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let rec = self.record(&id).await;
        let blocks = self.blocks(&id).await;
        panic!("{file} never ended: {rec:?} {blocks:?}");
    }
}

fn variables(rec: &TaskRecord) -> Value {
    serde_json::from_str(&rec.variables).unwrap()
}

#[tokio::test(start_paused = true)]
async fn corpus_definitions_with_scripts_run_to_their_end() {
    let (e, pool) = with_scripts().await;
    let lm = json!({"keyRoute": "LM1"});
    let rec = e
        .corpus("nowystyl-doc-8_2-pobranie-z-grupy-i-odkladanie-z-wyborem.json", json!({
            "keyRoute": "LM1",
            "dropSelectorArgs": "{\"groupNames\":[\"DROP-GROUP-01\",\"DROP-GROUP-02\"],\"ordering\":\"ASC\",\"resultField\":\"dropSite\"}"}))
        .await;
    assert_eq!(rec.status, TaskStatus::Finished, "8_2: {rec:?}");
    assert_eq!(
        variables(&rec)["dropSite"],
        "DG-02-01",
        "the first free drop site"
    );
    let rec = e
        .corpus(
            "nowystyl-doc-8_5-trycatch-z-logiem-taskstate-i-retry.json",
            lm.clone(),
        )
        .await;
    assert_eq!(rec.status, TaskStatus::Finished, "8_5: {rec:?}");
    let rec = e
        .corpus(
            "nowystyl-doc-8_8-parallelflow-ruch-monitoring-rownolegle.json",
            lm.clone(),
        )
        .await;
    assert_eq!(rec.status, TaskStatus::Finished, "8_8: {rec:?}");
    let logs = e.logs(&rec.id).await.join("\n");
    assert!(logs.contains("[script] monitor: sim-01"), "{logs}");
    // 8_6 reads `task.variables.ready` before anything sets it: MVEL's missing-key error
    // (spec §2.3), a BlockFailure, as RDS would.
    let rec = e
        .corpus(
            "nowystyl-doc-8_6-while-czekanie-na-flage-lub-wynik-skrypt.json",
            json!({}),
        )
        .await;
    assert_eq!(rec.status, TaskStatus::Interrupted, "8_6: {rec:?}");
    assert!(rec
        .ended_reason
        .unwrap_or_default()
        .contains("could not access: ready"));
    // Each run fills the drop site it chose, so the next one takes the next free site.
    for (file, site) in [
        ("nowystyl-nowy-styl-task.json", "DG-02-02"),
        ("nowystyl-nowy-styl-test-odloz.json", "DG-02-03"),
    ] {
        let rec = e.corpus(file, json!({})).await;
        assert_eq!(rec.status, TaskStatus::Finished, "{file}: {rec:?}");
        assert_eq!(variables(&rec)["dropSite"], site, "{file}");
    }
    pool.shutdown(std::time::Duration::from_secs(1)).await;
}

/// A scheduler whose scripts are `files` in a temporary folder, with short limits (200 ms per
/// call, 8 MiB heap) so the limit tests are quick.
async fn with_files(
    files: &[(&str, &str)],
) -> (Env, Arc<crate::script::ScriptPool>, tempfile::TempDir) {
    use crate::script::{AppHost, ScriptConfig, ScriptPool, ScriptStore};
    let e = env(Config::default()).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in files {
        std::fs::write(dir.path().join(name), source).unwrap();
    }
    let store = ScriptStore::at(dir.path().to_path_buf()).unwrap();
    let config = ScriptConfig {
        call_ms: 200,
        memory_bytes: 8 << 20,
        ..ScriptConfig::default()
    };
    let host = Arc::new(AppHost::new(e.sched.clone()));
    let pool = Arc::new(ScriptPool::start(config, store, host).unwrap());
    assert!(e.sched.set_scripts(pool.clone()).is_ok());
    (e, pool, dir)
}

const SCRIPTS: &str = r#"
function setTwo(text) {
    var arg = JSON.parse(text);
    return { result: JSON.stringify({ a: arg.eventData.n + 1, task: arg.taskRecord.id,
        block: arg.blockVo.blockName, def: arg.taskId }) };
}
function nothing(text) { return {}; }
function notObject(text) { return { result: "[1]" }; }
function spin(text) { while (true) {} }
function hog(text) { var a = []; while (true) { a.push(new Array(100000).join("x")); } }
function boom(text) { throw new Error("pallet missing"); }
function onArrive(text) {
    var arg = JSON.parse(text);
    return { result: JSON.stringify({ target: arg.eventData, extra: 1 }) };
}
"#;

async fn run_one(e: &Env, def: &str, block: Value) -> TaskRecord {
    e.define(def, json!([block]), json!({})).await;
    let id = e.submit(def, 1).await;
    // Scripts run on real threads under real-time limits: wait in real time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let rec = e.record(&id).await;
        if rec.status.is_terminal() || rec.status == TaskStatus::Interrupted {
            return rec;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("{def} never ended");
}

fn call(ty: &str, function: &str, args: Value) -> Value {
    use super::tests::{b, simple};
    let mut params = json!({"functionName": simple(function)});
    if !args.is_null() {
        params["functionArgs"] = args;
    }
    b(1, ty, params)
}

/// `ScriptBp` merges the `result` members into `task.variables`, with RDS's argument; no
/// `result` changes nothing; a `result` that is not an object, a throw, an unknown function,
/// an endless loop and unbounded allocation fail the block naming why, and the runtime goes
/// on serving calls.
#[tokio::test(start_paused = true)]
async fn script_blocks_merge_results_and_fail_cleanly() {
    let (e, pool, _dir) = with_files(&[("s.js", SCRIPTS)]).await;
    let n = json!({"type": "Expression", "value": "['n': 41]"});
    let rec = run_one(&e, "two", call("ScriptBp", "boot.any.setTwo", n.clone())).await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    let vars = variables(&rec);
    assert_eq!(vars["a"], 42, "{vars}");
    assert_eq!(
        (vars["task"].as_str(), vars["block"].as_str()),
        (Some(rec.id.as_str()), Some("b1"))
    );
    assert_eq!(vars["def"], rec.def_id);
    let rec = run_one(
        &e,
        "none",
        call("ScriptVariablesBp", "nothing", Value::Null),
    )
    .await;
    assert_eq!(
        (rec.status, variables(&rec)),
        (TaskStatus::Finished, json!({}))
    );
    for (def, function, says) in [
        ("bad", "notObject", "must hold a JSON object"),
        ("threw", "boom", "pallet missing"),
        ("unknown", "nowhere", "script function not found: nowhere"),
        ("spin", "spin", "SCRIPT_CALL_MS_MAX"),
        ("hog", "hog", "SCRIPT_MEMORY_BYTES_MAX"),
    ] {
        let rec = run_one(&e, def, call("ScriptBp", function, Value::Null)).await;
        assert_eq!(rec.status, TaskStatus::Interrupted, "{def}: {rec:?}");
        let reason = rec.ended_reason.unwrap_or_default();
        assert!(reason.contains(says), "{def}: {reason}");
    }
    let rec = run_one(&e, "again", call("ScriptBp", "setTwo", n)).await;
    assert_eq!(
        rec.status,
        TaskStatus::Finished,
        "the runtime still serves: {rec:?}"
    );
    pool.shutdown(std::time::Duration::from_secs(1)).await;
}

/// `TriggerTaskEventBp` merges its result into `taskInputs` (later blocks read it; the stored
/// inputs follow for the declared names only) and publishes a `task-event`.
#[tokio::test(start_paused = true)]
async fn trigger_task_event_sets_task_inputs_and_publishes_the_event() {
    use super::tests::{b, expr, simple};
    let (e, pool, _dir) = with_files(&[("s.js", SCRIPTS)]).await;
    let mut outbox = e.sched.subscribe_outbox();
    let flow = json!([
        b(
            1,
            "TriggerTaskEventBp",
            json!({"eventName": simple("onArrive"),
            "eventData": simple("LM9")})
        ),
        b(
            2,
            "SetTaskVariableBp",
            json!({"varName": simple("seen"),
            "varValue": expr("taskInputs.target")})
        ),
    ]);
    let def = json!({"id": "evt", "label": "evt", "detail": {"inputParams": [
            {"name": "target", "type": "String", "defaultValue": "LM1"}],
        "outputParams": [], "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp",
            "inputParams": {}, "children": {"default": flow}}}});
    let raw = load::load_value(def, "evt").remove(0).unwrap();
    e.sched.save_definition(raw).await.unwrap();
    let id = e.submit("evt", 1).await;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(variables(&rec)["seen"], "LM9");
    let stored: Value = serde_json::from_str(&rec.input_params).unwrap();
    assert_eq!(stored[0]["defaultValue"], "LM9", "declared input follows");
    assert!(
        !rec.input_params.contains("extra"),
        "undeclared names are not stored"
    );
    let mut published = None;
    while let Ok(event) = outbox.try_recv() {
        if event.kind == "task-event" {
            published = Some(event.payload.clone());
        }
    }
    let payload: Value = serde_json::from_str(&published.expect("a task-event")).unwrap();
    assert_eq!(
        payload,
        json!({"taskId": id, "block": "b1", "event": "onArrive", "eventData": "LM9",
            "result": {"target": "LM9", "extra": 1}})
    );
    pool.shutdown(std::time::Duration::from_secs(1)).await;
}

/// Without a script runtime (e.g. `vwed run` without `--scripts`) a script block fails
/// saying so.
#[tokio::test(start_paused = true)]
async fn without_a_script_runtime_script_blocks_fail_saying_so() {
    let e = env(Config::default()).await;
    let rec = run_one(&e, "lonely", call("ScriptBp", "log", Value::Null)).await;
    assert_eq!(rec.status, TaskStatus::Interrupted, "{rec:?}");
    let reason = rec.ended_reason.unwrap_or_default();
    assert!(reason.contains("scripts are not available"), "{reason}");
}

/// A script call in flight is not cut short by a pause (spec §4.6): it completes, its result
/// is merged, then the run pauses; resumed, the run goes on without calling it again.
#[tokio::test(start_paused = true)]
async fn a_pause_waits_for_the_script_call_in_flight() {
    use super::tests::{b, simple};
    const SLOW: &str = r#"
function slow(text) {
    var until = Date.now() + 120;
    while (Date.now() < until) {}
    jj.log("slow ran");
    return { result: JSON.stringify({ done: true }) };
}
"#;
    let (e, pool, _dir) = with_files(&[("slow.js", SLOW)]).await;
    let flow = json!([
        b(1, "ScriptBp", json!({"functionName": simple("slow")})),
        b(2, "PrintBp", json!({"message": simple("after")})),
    ]);
    e.define("slowpoke", flow, json!({})).await;
    let id = e.submit("slowpoke", 1).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !e.blocks(&id).await.iter().any(|(n, _)| n == "b1") {
        assert!(std::time::Instant::now() < deadline, "b1 never started");
        tokio::task::yield_now().await;
    }
    let settled = e.sched.control(&id, Control::Pause).await.unwrap();
    let rec = e.record(&id).await;
    assert_eq!(settled, TaskStatus::Paused, "{rec:?}");
    let rec = e.record(&id).await;
    assert_eq!(
        variables(&rec)["done"],
        true,
        "the call completed before the pause"
    );
    assert!(e.blocks(&id).await.contains(&("b1".to_string(), 1003)));
    e.sched.control(&id, Control::Resume).await.unwrap();
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    let logs = e.logs(&id).await;
    assert_eq!(
        logs.iter().filter(|l| l.contains("slow ran")).count(),
        1,
        "{logs:?}"
    );
    pool.shutdown(std::time::Duration::from_secs(1)).await;
}

/// `TriggerTaskEventBp` naming no script function still delivers its event and goes on,
/// merging nothing (spec §3.5, recommended).
#[tokio::test(start_paused = true)]
async fn trigger_task_event_without_a_function_still_delivers_the_event() {
    use super::tests::{b, simple};
    let (e, pool, _dir) = with_files(&[("s.js", SCRIPTS)]).await;
    let mut outbox = e.sched.subscribe_outbox();
    let flow = json!([b(
        1,
        "TriggerTaskEventBp",
        json!({"eventName": simple("nobodyListens"),
        "eventData": simple("x")})
    )]);
    e.define("lonely-event", flow, json!({})).await;
    let id = e.submit("lonely-event", 1).await;
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    let mut events = Vec::new();
    while let Ok(event) = outbox.try_recv() {
        if event.kind == "task-event" {
            events.push(event.payload.clone());
        }
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("nobodyListens"), "{events:?}");
    pool.shutdown(std::time::Duration::from_secs(1)).await;
}

/// `jj.httpGet` goes through the HTTP blocks' bounded client: a script reads a JSON answer
/// from a local peer and returns it as its result.
#[tokio::test(start_paused = true)]
async fn a_script_reads_over_http_through_jj() {
    use super::tests::{b, simple};
    const FETCH: &str = r#"
function fetch(text) {
    var url = JSON.parse(text).eventData;
    return { result: jj.httpGet(url) };
}
"#;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/next", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let _ = crate::test_net::read_some(&stream, &mut buf).await;
            let answer = r#"{"target":"LM3"}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            crate::test_net::write_all(&stream, reply.as_bytes()).await;
        }
    });
    let (e, pool, _dir) = with_files(&[("fetch.js", FETCH)]).await;
    let block = b(
        1,
        "ScriptBp",
        json!({"functionName": simple("fetch"),
        "functionArgs": simple(&url)}),
    );
    let rec = run_one(&e, "fetching", block).await;
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(variables(&rec)["target"], "LM3");
    pool.shutdown(std::time::Duration::from_secs(1)).await;
}
