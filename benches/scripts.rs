//! `cargo bench --bench scripts`: the script runtime's figures (printed, never asserted): pool
//! start with the fixture scripts loaded, heap of one loaded runtime, a call through the pool,
//! and `validate`. The figures behind choosing QuickJS (rquickjs) for script blocks.

use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use vwed::script::{validate, CallContext, ScriptConfig, ScriptHost, ScriptPool, ScriptStore};

/// A host with nothing behind it: the benchmark calls functions that do not reach it.
struct NoHost;

impl ScriptHost for NoHost {
    fn log(&self, _: &CallContext, _: &str) {}
    fn get_cache(&self, _: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn put_cache(&self, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn get_site(&self, _: &str) -> Result<Option<Value>, String> {
        Ok(None)
    }
    fn sites(&self, _: Option<&str>) -> Result<Value, String> {
        Ok(json!([]))
    }
    fn get_robot(&self, _: &str) -> Result<Option<Value>, String> {
        Ok(None)
    }
    fn robots(&self) -> Result<Value, String> {
        Ok(json!([]))
    }
    fn http_get(&self, _: &str) -> Result<String, String> {
        Err("no HTTP here".into())
    }
    fn http_post(&self, _: &str, _: &str) -> Result<String, String> {
        Err("no HTTP here".into())
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scripts");
        let started = Instant::now();
        let store = ScriptStore::at(dir).unwrap();
        let pool = ScriptPool::start(ScriptConfig::default(), store, Arc::new(NoHost)).unwrap();
        let used = pool.memory_used().await.unwrap();
        let startup = started.elapsed();
        let calls = 2_000u32;
        let arg = json!({"eventData": "", "taskId": "d", "taskRecord": {}, "blockVo": {}});
        let cx = CallContext::default();
        let started = Instant::now();
        for _ in 0..calls {
            pool.call("log", arg.to_string(), cx.clone()).await.unwrap();
        }
        let per_call = started.elapsed() / calls;
        let started = Instant::now();
        for _ in 0..calls {
            validate("function f(s) { return {result: JSON.stringify({a: 1})}; }").unwrap();
        }
        let per_validate = started.elapsed() / calls;
        println!(
            "script pool start + load of the fixtures: {startup:?}; heap of one loaded runtime: \
             {used} bytes; call through the pool: {per_call:?}; validate: {per_validate:?}"
        );
        pool.shutdown(std::time::Duration::from_secs(1)).await;
    });
}
