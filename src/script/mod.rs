//! The JavaScript script runtime behind `ScriptBp`, `ScriptVariablesBp` and `TriggerTaskEventBp`
//! (spec §3.4/§3.5): RDS calls a script function by name with one string argument, the JSON
//! text of `{eventData, taskId, taskRecord, blockVo}`, and reads the `result` member of what it
//! returns.
//!
//! - [`ScriptPool`] (`pool`): `SCRIPT_SLOTS` OS threads, each owning one QuickJS runtime
//!   (`slot`), fed by one bounded queue; calls past `SCRIPT_QUEUE_MAX` fail at once as busy.
//!   Every runtime has a memory limit, a stack limit and a per-call deadline; a slot whose call
//!   hit the time or memory limit starts a fresh runtime.
//! - [`ScriptStore`] (`store`): the `.js` files of `<data_dir>/scripts/`, written atomically,
//!   validated before they are written. Every function declared at the top level of any file is
//!   callable by name; `boot.<folder>.<fn>` names `<fn>`.
//! - [`ScriptHost`]: what scripts reach through the `jj` object (`jj`); [`AppHost`]
//!   (`app_host`) is the appliance's.
//! - [`validate`]: compiles a source without running it.

mod app_host;
mod jj;
mod pool;
mod slot;
mod store;
#[cfg(test)]
mod tests;

pub use app_host::AppHost;
pub use pool::ScriptPool;
pub use slot::validate;
pub use store::{ScriptInfo, ScriptStore};

use crate::limits::*;
use serde_json::{Map, Value};

/// Who a script call runs for: `jj.log` lines are attributed to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    pub task_id: String,
    pub record_id: String,
    pub block_id: String,
}

/// The bounds of a [`ScriptPool`]; `Default` is the constants of `limits.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptConfig {
    /// Slot threads (`SCRIPT_SLOTS`).
    pub slots: usize,
    /// Calls waiting for a slot (`SCRIPT_QUEUE_MAX`).
    pub queue_max: usize,
    /// Heap of each runtime (`SCRIPT_MEMORY_BYTES_MAX`).
    pub memory_bytes: usize,
    /// Time of one call (`SCRIPT_CALL_MS_MAX`).
    pub call_ms: u64,
    /// QuickJS stack (`SCRIPT_STACK_BYTES_MAX`).
    pub stack_bytes: usize,
    /// Return value JSON (`SCRIPT_RESULT_BYTES_MAX`).
    pub result_bytes_max: usize,
}

impl Default for ScriptConfig {
    fn default() -> Self {
        ScriptConfig {
            slots: SCRIPT_SLOTS,
            queue_max: SCRIPT_QUEUE_MAX,
            memory_bytes: SCRIPT_MEMORY_BYTES_MAX,
            call_ms: SCRIPT_CALL_MS_MAX,
            stack_bytes: SCRIPT_STACK_BYTES_MAX,
            result_bytes_max: SCRIPT_RESULT_BYTES_MAX,
        }
    }
}

/// What scripts reach through `jj`. Called on a script slot's thread (never a tokio runtime
/// thread), so an implementation may block, e.g. on a tokio `Handle`. An `Err` becomes a JS
/// exception in the script.
pub trait ScriptHost: Send + Sync {
    /// `jj.log(msg)`: one task log line for `call`.
    fn log(&self, call: &CallContext, message: &str);
    /// `jj.getCache(key)`: the data cache value, `None` when the key is unset.
    fn get_cache(&self, key: &str) -> Result<Option<String>, String>;
    /// `jj.putCache(key, value)`: sets a data cache value.
    fn put_cache(&self, key: &str, value: &str) -> Result<(), String>;
    /// `jj.getSite(siteId)`: the storage site as JSON, `None` when unknown.
    fn get_site(&self, site_id: &str) -> Result<Option<Value>, String>;
    /// `jj.getSites(groupName)` (vwed): the sites of a group (all sites for `None`) ordered by
    /// id, as a JSON array.
    fn sites(&self, group: Option<&str>) -> Result<Value, String>;
    /// `jj.getRobot(id)`: one robot's status as JSON, `None` when unknown.
    fn get_robot(&self, id: &str) -> Result<Option<Value>, String>;
    /// `jj.robots()`: every robot's status as a JSON array.
    fn robots(&self) -> Result<Value, String>;
    /// `jj.httpGet(url)`: the answer's body.
    fn http_get(&self, url: &str) -> Result<String, String>;
    /// `jj.httpPost(url, body)`: `body` is sent as JSON (as a JSON string when it is not JSON);
    /// the answer's body.
    fn http_post(&self, url: &str, body: &str) -> Result<String, String>;
}

/// Why a script call or a script-file operation failed. Limit errors name the limit and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptError {
    /// No loaded script declares the function.
    NotFound(String),
    /// `SCRIPT_QUEUE_MAX` calls are already waiting.
    Busy { limit: usize },
    /// The call ran past `SCRIPT_CALL_MS_MAX`.
    Timeout { ms: u64 },
    /// The runtime's heap reached `SCRIPT_MEMORY_BYTES_MAX`. (QuickJS reports an exhausted heap
    /// by throwing `null`, so a script that throws `null` itself is reported the same way.)
    Memory { bytes: usize },
    /// Recursion reached `SCRIPT_STACK_BYTES_MAX`.
    Stack { bytes: usize },
    /// A source that does not compile: the 1-based line and QuickJS's message.
    Syntax { line: u32, message: String },
    /// The script threw: its message and stack.
    Thrown(String),
    /// The return value is not JSON (a cycle, a BigInt) or breaks the result contract.
    BadResult(String),
    /// A value over a byte limit (`what` names the limit).
    TooLarge { what: &'static str, limit: usize },
    /// The scripts folder holds `SCRIPT_FILES_MAX` files already.
    TooMany { limit: usize },
    /// A script file name that is not `[A-Za-z0-9_.-]+\.js`.
    BadName(String),
    /// No script file of that name.
    NoFile(String),
    /// Reading or writing the scripts folder failed.
    Io(String),
    /// The pool is shutting down.
    Closed,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptError::NotFound(name) => write!(f, "script function not found: {name}"),
            ScriptError::Busy { limit } => write!(
                f,
                "the script runtime is busy: {limit} calls are waiting (SCRIPT_QUEUE_MAX)"
            ),
            ScriptError::Timeout { ms } => {
                write!(f, "the script ran longer than SCRIPT_CALL_MS_MAX ({ms} ms)")
            }
            ScriptError::Memory { bytes } => write!(
                f,
                "the script ran out of memory: SCRIPT_MEMORY_BYTES_MAX ({bytes} bytes)"
            ),
            ScriptError::Stack { bytes } => write!(
                f,
                "the script recursed too deep: SCRIPT_STACK_BYTES_MAX ({bytes} bytes)"
            ),
            ScriptError::Syntax { line, message } => {
                write!(f, "syntax error at line {line}: {message}")
            }
            ScriptError::Thrown(e) => write!(f, "the script threw: {e}"),
            ScriptError::BadResult(e) => write!(f, "bad script result: {e}"),
            ScriptError::TooLarge { what, limit } => write!(f, "over {what} ({limit} bytes)"),
            ScriptError::TooMany { limit } => {
                write!(
                    f,
                    "there are {limit} script files already (SCRIPT_FILES_MAX)"
                )
            }
            ScriptError::BadName(name) => write!(
                f,
                "bad script name {name:?}: use [A-Za-z0-9_.-]+ ending in .js"
            ),
            ScriptError::NoFile(name) => write!(f, "no script {name}"),
            ScriptError::Io(e) => write!(f, "scripts folder: {e}"),
            ScriptError::Closed => write!(f, "the script runtime is shutting down"),
        }
    }
}

impl std::error::Error for ScriptError {}

/// The function a `functionName` names: `boot.<folder>.<fn>` (and `boot.<fn>`) name `<fn>`.
pub fn function_name(name: &str) -> &str {
    match name.strip_prefix("boot.") {
        Some(rest) => rest.rsplit('.').next().unwrap_or(rest),
        None => name,
    }
}

/// The §3.4 result contract applied to a script's return value: no `result` member (or a
/// return value that is not an object) → `None`; a `result` string holding a JSON object →
/// its members; anything else → `BadResult`.
pub fn result_object(returned: &Value) -> Result<Option<Map<String, Value>>, ScriptError> {
    let Some(result) = returned.as_object().and_then(|o| o.get("result")) else {
        return Ok(None);
    };
    let text = result.as_str().ok_or_else(|| {
        ScriptError::BadResult(format!(
            "`result` must be a string holding a JSON object, not {result}"
        ))
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(other) => Err(ScriptError::BadResult(format!(
            "`result` must hold a JSON object, not {other}"
        ))),
        Err(e) => Err(ScriptError::BadResult(format!("`result` is not JSON: {e}"))),
    }
}
