//! Tests of the script runtime: calls through the pool (results, errors, limits and recovery,
//! the busy queue, reloads), validation and the scripts folder, and the corpus fixtures against
//! an in-memory host.

use super::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An in-memory host: a data cache, sites, robots and the log lines written.
#[derive(Default)]
struct TestHost {
    cache: Mutex<HashMap<String, String>>,
    sites: Vec<Value>,
    robots: Vec<Value>,
    logs: Mutex<Vec<(CallContext, String)>>,
}

impl ScriptHost for TestHost {
    fn log(&self, call: &CallContext, message: &str) {
        self.logs
            .lock()
            .unwrap()
            .push((call.clone(), message.to_string()));
    }
    fn get_cache(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self.cache.lock().unwrap().get(key).cloned())
    }
    fn put_cache(&self, key: &str, value: &str) -> Result<(), String> {
        if key.is_empty() {
            return Err("empty key".into());
        }
        self.cache
            .lock()
            .unwrap()
            .insert(key.to_string(), value.to_string());
        Ok(())
    }
    fn get_site(&self, site_id: &str) -> Result<Option<Value>, String> {
        Ok(self.sites.iter().find(|s| s["siteId"] == site_id).cloned())
    }
    fn sites(&self, group: Option<&str>) -> Result<Value, String> {
        let all = self.sites.iter();
        Ok(all
            .filter(|s| group.is_none_or(|g| s["groupName"] == g))
            .cloned()
            .collect())
    }
    fn get_robot(&self, id: &str) -> Result<Option<Value>, String> {
        Ok(self.robots.iter().find(|r| r["id"] == id).cloned())
    }
    fn robots(&self) -> Result<Value, String> {
        Ok(Value::Array(self.robots.clone()))
    }
    fn http_get(&self, url: &str) -> Result<String, String> {
        Err(format!("no network in tests ({url})"))
    }
    fn http_post(&self, url: &str, body: &str) -> Result<String, String> {
        Ok(format!("{url} got {body}"))
    }
}

fn site(id: &str, group: &str, filled: bool, locked: bool) -> Value {
    json!({"siteId": id, "groupName": group, "filled": filled, "locked": locked,
           "disabled": false})
}

/// Small limits so limit tests are quick.
fn test_config() -> ScriptConfig {
    ScriptConfig {
        slots: 1,
        queue_max: 4,
        memory_bytes: 8 * 1024 * 1024,
        call_ms: 300,
        ..ScriptConfig::default()
    }
}

const LIMITS_JS: &str = r#"
function echo(s) { return JSON.parse(s); }
function spin(s) { while (true) {} }
function hog(s) { var a = []; while (true) { a.push("x".repeat(1024) + a.length); } }
function deep(s) { return deep(s) + 1; }
function cyclic(s) { var o = {}; o.self = o; return o; }
async function later(s) { return 1; }
function big(s) { return "y".repeat(100000); }
function nothing(s) {}
function askHost(s) {
    try { jj.httpGet("http://nowhere/"); } catch (e) { return {caught: e.message}; }
}
function cache(s) { jj.putCache("k", {a: 1}); return jj.getCache("k"); }
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    pool: ScriptPool,
    host: Arc<TestHost>,
}

fn pool_with(config: ScriptConfig, files: &[(&str, &str)], host: TestHost) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = ScriptStore::open(dir.path()).unwrap();
    for (name, source) in files {
        std::fs::write(store.dir().join(name), source).unwrap();
    }
    let host = Arc::new(host);
    let pool = ScriptPool::start(config, store, host.clone()).unwrap();
    Fixture {
        _dir: dir,
        pool,
        host,
    }
}

fn limits_pool() -> Fixture {
    pool_with(
        test_config(),
        &[("limits.js", LIMITS_JS)],
        TestHost::default(),
    )
}

fn cx(task: &str) -> CallContext {
    CallContext {
        task_id: task.into(),
        record_id: format!("rec-{task}"),
        block_id: "b1".into(),
    }
}

/// The §3.4 argument for `event_data`.
fn arg(event_data: Value) -> String {
    json!({"eventData": event_data, "taskId": "def", "taskRecord": {"id": "rec"},
           "blockVo": {"blockId": 3, "blockName": "b3", "blockType": "ScriptBp"}})
    .to_string()
}

#[tokio::test]
async fn a_call_returns_the_functions_value_as_json() {
    let f = limits_pool();
    let out = f
        .pool
        .call("echo", r#"{"b":[1,2],"a":"x"}"#.into(), cx("t"))
        .await;
    assert_eq!(out.unwrap(), json!({"b": [1, 2], "a": "x"}));
    let out = f.pool.call("nothing", "{}".into(), cx("t")).await;
    assert_eq!(out.unwrap(), Value::Null);
}

#[tokio::test]
async fn an_unknown_function_is_not_found() {
    let f = limits_pool();
    let e = f.pool.call("nope", "{}".into(), cx("t")).await.unwrap_err();
    assert_eq!(e, ScriptError::NotFound("nope".into()));
    assert_eq!(e.to_string(), "script function not found: nope");
    // Built-ins are not script functions.
    let e = f
        .pool
        .call("parseInt", "1".into(), cx("t"))
        .await
        .unwrap_err();
    assert!(matches!(e, ScriptError::NotFound(_)), "{e}");
}

#[tokio::test]
async fn boot_folder_prefix_names_the_function() {
    assert_eq!(function_name("boot.wind.echo"), "echo");
    assert_eq!(function_name("boot.echo"), "echo");
    assert_eq!(function_name("echo"), "echo");
    let f = limits_pool();
    let out = f.pool.call("boot.anything.echo", "7".into(), cx("t")).await;
    assert_eq!(out.unwrap(), json!(7));
}

#[tokio::test]
async fn bad_returns_are_errors() {
    let f = limits_pool();
    let e = f
        .pool
        .call("cyclic", "{}".into(), cx("t"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ScriptError::BadResult(m) if m.contains("circular")),
        "{e}"
    );
    let e = f
        .pool
        .call("later", "{}".into(), cx("t"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ScriptError::BadResult(m) if m.contains("Promise")),
        "{e}"
    );
    let big = ScriptConfig {
        result_bytes_max: 1000,
        ..test_config()
    };
    let f = pool_with(big, &[("limits.js", LIMITS_JS)], TestHost::default());
    let e = f.pool.call("big", "{}".into(), cx("t")).await.unwrap_err();
    assert_eq!(
        e,
        ScriptError::TooLarge {
            what: "SCRIPT_RESULT_BYTES_MAX",
            limit: 1000
        }
    );
    let e = f.pool.call("echo", "x".repeat(300_000), cx("t")).await;
    assert!(matches!(
        e,
        Err(ScriptError::TooLarge {
            what: "SCRIPT_ARG_BYTES_MAX",
            ..
        })
    ));
}

#[test]
fn the_result_contract_is_checked() {
    assert_eq!(result_object(&json!({})).unwrap(), None);
    assert_eq!(result_object(&Value::Null).unwrap(), None);
    let map = result_object(&json!({"result": "{\"a\":1}"}))
        .unwrap()
        .unwrap();
    assert_eq!(Value::Object(map), json!({"a": 1}));
    for bad in [
        json!({"result": "[1]"}),
        json!({"result": {"a": 1}}),
        json!({"result": "{"}),
    ] {
        assert!(
            matches!(result_object(&bad), Err(ScriptError::BadResult(_))),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn an_endless_loop_times_out_and_the_slot_still_works() {
    let f = limits_pool();
    let started = Instant::now();
    let e = f.pool.call("spin", "{}".into(), cx("t")).await.unwrap_err();
    assert_eq!(e, ScriptError::Timeout { ms: 300 });
    assert!(e.to_string().contains("SCRIPT_CALL_MS_MAX (300 ms)"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let out = f.pool.call("echo", "1".into(), cx("t")).await;
    assert_eq!(out.unwrap(), json!(1));
}

#[tokio::test]
async fn unbounded_allocation_is_a_memory_error_and_the_slot_still_works() {
    let f = limits_pool();
    let e = f.pool.call("hog", "{}".into(), cx("t")).await.unwrap_err();
    assert_eq!(
        e,
        ScriptError::Memory {
            bytes: 8 * 1024 * 1024
        }
    );
    assert!(e.to_string().contains("SCRIPT_MEMORY_BYTES_MAX"), "{e}");
    for i in 0..3 {
        let out = f.pool.call("echo", format!("{i}"), cx("t")).await;
        assert_eq!(out.unwrap(), json!(i));
    }
    let used = f.pool.memory_used().await.unwrap();
    assert!(
        used > 0 && used < 1024 * 1024,
        "{used} bytes after a fresh start"
    );
}

#[tokio::test]
async fn deep_recursion_names_the_stack_limit() {
    let f = limits_pool();
    let e = f.pool.call("deep", "{}".into(), cx("t")).await.unwrap_err();
    assert!(matches!(e, ScriptError::Stack { .. }), "{e}");
    assert_eq!(
        f.pool.call("echo", "2".into(), cx("t")).await.unwrap(),
        json!(2)
    );
}

#[tokio::test]
async fn a_full_queue_refuses_at_once() {
    let config = ScriptConfig {
        queue_max: 1,
        ..test_config()
    };
    let f = pool_with(config, &[("limits.js", LIMITS_JS)], TestHost::default());
    let pool = Arc::new(f.pool);
    let p = pool.clone();
    let running = tokio::spawn(async move { p.call("spin", "{}".into(), cx("a")).await });
    // The slot takes the spinning call off the queue; the next call waits in the queue.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let p = pool.clone();
    let queued = tokio::spawn(async move { p.call("echo", "5".into(), cx("b")).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    let e = pool.call("echo", "6".into(), cx("c")).await.unwrap_err();
    assert_eq!(e, ScriptError::Busy { limit: 1 });
    assert!(e.to_string().contains("SCRIPT_QUEUE_MAX"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(50));
    assert!(matches!(
        running.await.unwrap(),
        Err(ScriptError::Timeout { .. })
    ));
    assert_eq!(queued.await.unwrap().unwrap(), json!(5));
}

#[tokio::test]
async fn slots_reload_after_a_script_changes() {
    let config = ScriptConfig {
        slots: 2,
        ..test_config()
    };
    let f = pool_with(config, &[], TestHost::default());
    let e = f.pool.call("v", "{}".into(), cx("t")).await.unwrap_err();
    assert!(matches!(e, ScriptError::NotFound(_)));
    let created = f
        .pool
        .put_script("v.js".into(), "function v() { return 1; }".into());
    assert!(created.await.unwrap());
    // Both slots answer with the new script.
    for _ in 0..4 {
        assert_eq!(
            f.pool.call("v", "{}".into(), cx("t")).await.unwrap(),
            json!(1)
        );
    }
    let changed = f
        .pool
        .put_script("v.js".into(), "function v() { return 2; }".into());
    assert!(!changed.await.unwrap());
    for _ in 0..4 {
        assert_eq!(
            f.pool.call("v", "{}".into(), cx("t")).await.unwrap(),
            json!(2)
        );
    }
    f.pool.delete_script("v.js".into()).await.unwrap();
    let e = f.pool.call("v", "{}".into(), cx("t")).await.unwrap_err();
    assert!(matches!(e, ScriptError::NotFound(_)));
    let e = f.pool.delete_script("v.js".into()).await.unwrap_err();
    assert_eq!(e, ScriptError::NoFile("v.js".into()));
}

#[tokio::test]
async fn a_file_that_does_not_load_leaves_the_others_and_is_named() {
    let files = [
        ("a.js", "function a() { return 1; }"),
        ("b.js", "function b( {"),
    ];
    let f = pool_with(test_config(), &files, TestHost::default());
    assert_eq!(
        f.pool.call("a", "{}".into(), cx("t")).await.unwrap(),
        json!(1)
    );
    let e = f.pool.call("b", "{}".into(), cx("t")).await.unwrap_err();
    assert!(e.to_string().contains("b.js"), "{e}");
}

#[tokio::test]
async fn a_file_whose_top_level_never_ends_times_out_at_load_and_the_others_load() {
    let files = [
        (
            "a.js",
            "while (true) {}\nvar a = function () { return 1; };",
        ),
        ("b.js", "function b() { return 2; }"),
        ("c.js", "function c( {"),
    ];
    let f = pool_with(test_config(), &files, TestHost::default());
    assert_eq!(
        f.pool.call("b", "{}".into(), cx("t")).await.unwrap(),
        json!(2)
    );
    let e = f.pool.call("a", "{}".into(), cx("t")).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("2 script file(s) did not load"), "{text}");
    assert!(
        text.contains("a.js: the script ran longer than SCRIPT_CALL_MS_MAX"),
        "{text}"
    );
}

#[tokio::test]
async fn host_errors_are_js_exceptions_and_the_host_is_reached() {
    let f = limits_pool();
    let out = f.pool.call("askHost", "{}".into(), cx("t")).await.unwrap();
    assert_eq!(
        out,
        json!({"caught": "jj.httpGet: no network in tests (http://nowhere/)"})
    );
    let out = f.pool.call("cache", "{}".into(), cx("t")).await.unwrap();
    assert_eq!(out, json!("{\"a\":1}"));
}

#[tokio::test]
async fn shutdown_interrupts_a_running_script_and_refuses_calls() {
    let config = ScriptConfig {
        call_ms: 60_000,
        ..test_config()
    };
    let f = pool_with(config, &[("limits.js", LIMITS_JS)], TestHost::default());
    let pool = Arc::new(f.pool);
    let p = pool.clone();
    let running = tokio::spawn(async move { p.call("spin", "{}".into(), cx("a")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    pool.shutdown(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(running.await.unwrap(), Err(ScriptError::Closed));
    let e = pool.call("echo", "1".into(), cx("b")).await.unwrap_err();
    assert_eq!(e, ScriptError::Closed);
}

#[test]
fn validate_reports_the_line_of_a_syntax_error() {
    assert_eq!(validate("function f(s) {\n  return 1;\n}\n"), Ok(()));
    let e = validate("function f(s) {\n  var x = ;\n}\n").unwrap_err();
    assert!(matches!(&e, ScriptError::Syntax { line: 2, .. }), "{e:?}");
    let e = validate("// one\n// two\n\n}").unwrap_err();
    assert!(matches!(&e, ScriptError::Syntax { line: 4, .. }), "{e:?}");
    assert!(matches!(
        validate("return 1;"),
        Err(ScriptError::Syntax { line: 1, .. })
    ));
    assert!(matches!(
        validate("a\n\0"),
        Err(ScriptError::Syntax { line: 2, .. })
    ));
}

#[test]
fn validate_compiles_without_running() {
    // Top-level code that would never end, or throw, is not run.
    let started = Instant::now();
    assert_eq!(validate("while (true) {}"), Ok(()));
    assert_eq!(validate("throw new Error('boom');"), Ok(()));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn store_names_are_checked() {
    for good in ["a.js", "drop_sites.js", "A-1.v2.js"] {
        assert_eq!(ScriptStore::check_name(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        ".js",
        "a",
        "a.ts",
        "../a.js",
        "a/b.js",
        "a\\b.js",
        "..a.js",
        "a..js",
        ".hidden.js",
        "a b.js",
        "ä.js",
        "a.js/",
    ] {
        assert!(
            matches!(ScriptStore::check_name(bad), Err(ScriptError::BadName(_))),
            "{bad:?}"
        );
    }
    let long = format!("{}.js", "a".repeat(200));
    assert!(ScriptStore::check_name(&long).is_err());
}

#[test]
fn the_store_writes_atomically_and_keeps_its_caps() {
    let dir = tempfile::tempdir().unwrap();
    let store = ScriptStore::open(dir.path()).unwrap();
    assert!(store.put("a.js", "function a() {}").unwrap());
    assert!(!store.put("a.js", "function a() { return 1; }").unwrap());
    assert_eq!(store.get("a.js").unwrap(), "function a() { return 1; }");
    // Only the script is left in the folder: no temporary file.
    let names: Vec<String> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["a.js".to_string()]);
    // A syntax error writes nothing.
    let e = store.put("b.js", "function (").unwrap_err();
    assert!(matches!(e, ScriptError::Syntax { line: 1, .. }), "{e:?}");
    assert_eq!(
        store.get("b.js").unwrap_err(),
        ScriptError::NoFile("b.js".into())
    );
    let big = format!("//{}", "x".repeat(crate::limits::SCRIPT_FILE_BYTES_MAX));
    assert!(matches!(
        store.put("big.js", &big),
        Err(ScriptError::TooLarge {
            what: "SCRIPT_FILE_BYTES_MAX",
            ..
        })
    ));
    for i in 1..crate::limits::SCRIPT_FILES_MAX {
        store.put(&format!("f{i}.js"), "").unwrap();
    }
    assert_eq!(
        store.put("one-more.js", ""),
        Err(ScriptError::TooMany {
            limit: crate::limits::SCRIPT_FILES_MAX
        })
    );
    // Changing an existing file is still allowed at the cap.
    assert_eq!(store.put("a.js", "// changed"), Ok(false));
    store.delete("a.js").unwrap();
    assert_eq!(
        store.delete("a.js"),
        Err(ScriptError::NoFile("a.js".into()))
    );
    assert!(matches!(
        store.get("../vwed.db"),
        Err(ScriptError::BadName(_))
    ));
}

/// The fixture scripts the corpus definitions call.
fn corpus_fixture(host: TestHost) -> Fixture {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scripts");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "js") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let source = std::fs::read_to_string(&path).unwrap();
            assert_eq!(validate(&source), Ok(()), "{name}");
            files.push((name, source));
        }
    }
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(n, s)| (&n[..], &s[..])).collect();
    pool_with(ScriptConfig::default(), &borrowed, host)
}

#[tokio::test]
async fn fixture_log_writes_the_event_data_for_the_calling_task() {
    let f = corpus_fixture(TestHost::default());
    let out = f
        .pool
        .call("log", arg(json!("tryCatch: error, retry")), cx("t1"));
    assert_eq!(out.await.unwrap(), json!({}));
    assert_eq!(result_object(&json!({})).unwrap(), None);
    let logs = f.host.logs.lock().unwrap().clone();
    assert_eq!(
        logs,
        vec![(cx("t1"), "[b3] tryCatch: error, retry".to_string())]
    );
}

#[tokio::test]
async fn fixture_drop_site_picks_the_first_free_site_of_the_groups_in_order() {
    let host = TestHost {
        sites: vec![
            site("D1-01", "DROP-GROUP-01", true, false),
            site("D1-02", "DROP-GROUP-01", false, true),
            site("D2-02", "DROP-GROUP-02", false, false),
            site("D2-01", "DROP-GROUP-02", false, false),
            site("D3-01", "DROP-GROUP-03", false, false),
        ],
        ..TestHost::default()
    };
    let f = corpus_fixture(host);
    let name = "setTaskVariables_getNextDropsiteMultipleGroups_Blocking";
    let args = r#"{"groupNames":["DROP-GROUP-01","DROP-GROUP-02","DROP-GROUP-03"], "ordering":"ASC","resultField":"dropSite"}"#;
    let out = f.pool.call(name, arg(json!(args)), cx("t")).await.unwrap();
    let vars = result_object(&out).unwrap().unwrap();
    assert_eq!(Value::Object(vars), json!({"dropSite": "D2-01"}));
    let desc = args.replace("ASC", "DESC").replace("dropSite", "target");
    let out = f.pool.call(name, arg(json!(desc)), cx("t")).await.unwrap();
    assert_eq!(result_object(&out).unwrap().unwrap()["target"], "D2-02");
    // No free site: the block fails, naming the groups.
    let full = r#"{"groupNames":["DROP-GROUP-01"]}"#;
    let e = f
        .pool
        .call(name, arg(json!(full)), cx("t"))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no free drop site in groups DROP-GROUP-01"),
        "{e}"
    );
}

#[tokio::test]
async fn fixture_poll_and_monitor_read_the_host() {
    let host = TestHost {
        robots: vec![
            json!({"id": "AMB-01", "station": "LM1", "batteryLevel": 0.8, "errors": []}),
            json!({"id": "AMB-02", "station": "LM2", "batteryLevel": 0.5, "errors": ["e1"]}),
        ],
        ..TestHost::default()
    };
    let f = corpus_fixture(host);
    let out = f
        .pool
        .call("refreshReadyFlag", arg(json!("")), cx("t"))
        .await;
    assert_eq!(
        result_object(&out.unwrap()).unwrap().unwrap()["ready"],
        false
    );
    f.host.put_cache("ready", "true").unwrap();
    let out = f
        .pool
        .call("boot.wind.refreshReadyFlag", arg(Value::Null), cx("t"))
        .await;
    assert_eq!(
        result_object(&out.unwrap()).unwrap().unwrap()["ready"],
        true
    );
    let out = f
        .pool
        .call("monitorOnce", arg(json!("")), cx("t"))
        .await
        .unwrap();
    assert_eq!(result_object(&out).unwrap().unwrap()["monitorErrors"], 1);
    let one = f
        .pool
        .call("monitorOnce", arg(json!(r#"{"robot":"AMB-01"}"#)), cx("t"));
    assert_eq!(
        result_object(&one.await.unwrap()).unwrap().unwrap()["monitorErrors"],
        0
    );
    assert_eq!(f.host.logs.lock().unwrap().len(), 3);
}
