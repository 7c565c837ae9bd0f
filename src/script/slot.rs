//! One script slot's QuickJS runtime: created with the memory and stack limits and an interrupt
//! handler that enforces the call deadline, loaded with every script file, asked to call a
//! function by name. A call that hit the time or memory limit leaves the slot without a runtime;
//! the next call builds a fresh one. Also [`validate`], which compiles without running.

use super::{function_name, jj, CallContext, ScriptConfig, ScriptError, ScriptHost, ScriptStore};
use crate::limits::{LOG_LINE_BYTES_MAX, SCRIPT_FILE_BYTES_MAX};
use rquickjs::context::EvalOptions;
use rquickjs::object::Filter;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Runtime, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A loaded runtime. `context` is declared before `runtime` so it is dropped first.
struct Engine {
    context: Context,
    runtime: Runtime,
    deadline: Rc<Cell<Option<Instant>>>,
    /// Set by the interrupt handler when it stopped a script.
    interrupted: Rc<Cell<bool>>,
    call: Rc<RefCell<CallContext>>,
    /// Functions the script files declared at the top level.
    functions: HashSet<String>,
    /// Files that did not load (name: error), for the "not found" message.
    load_errors: Vec<String>,
}

/// A slot's state, owned by its thread.
pub(super) struct Slot {
    config: ScriptConfig,
    host: Arc<dyn ScriptHost>,
    store: Arc<ScriptStore>,
    stopping: Arc<AtomicBool>,
    engine: Option<Engine>,
    /// The scripts generation `engine` loaded.
    generation: u64,
}

impl Slot {
    pub fn new(
        config: ScriptConfig,
        host: Arc<dyn ScriptHost>,
        store: Arc<ScriptStore>,
        stopping: Arc<AtomicBool>,
    ) -> Slot {
        Slot {
            config,
            host,
            store,
            stopping,
            engine: None,
            generation: 0,
        }
    }

    /// Builds and loads a runtime unless one of `generation` is loaded.
    pub fn ensure_loaded(&mut self, generation: u64) -> Result<(), ScriptError> {
        if self.engine.is_some() && self.generation == generation {
            return Ok(());
        }
        // Dropped first: two runtimes never coexist in one slot.
        self.engine = None;
        let engine = self.build()?;
        for e in &engine.load_errors {
            log::error!("script not loaded: {e}");
        }
        self.engine = Some(engine);
        self.generation = generation;
        Ok(())
    }

    /// The scripts folder.
    pub fn store(&self) -> &ScriptStore {
        &self.store
    }

    /// Bytes the loaded runtime holds now (0 without one).
    pub fn memory_used(&self) -> usize {
        self.engine.as_ref().map_or(0, |e| {
            e.runtime.memory_usage().memory_used_size.max(0) as usize
        })
    }

    fn build(&self) -> Result<Engine, ScriptError> {
        let runtime = new_runtime(&self.config)?;
        let deadline = Rc::new(Cell::new(None::<Instant>));
        let interrupted = Rc::new(Cell::new(false));
        let (d, i, stop) = (deadline.clone(), interrupted.clone(), self.stopping.clone());
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let over = stop.load(Relaxed) || d.get().is_some_and(|d| Instant::now() >= d);
            if over {
                i.set(true);
            }
            over
        })));
        let context = Context::full(&runtime).map_err(|e| self.build_error(e))?;
        let call = Rc::new(RefCell::new(CallContext::default()));
        context
            .with(|ctx| jj::install(&ctx, &self.host, &call))
            .map_err(|e| self.build_error(e))?;
        let (files, mut load_errors) = self.store.load_all();
        let call_ms = self.config.call_ms;
        let functions = context.with(|ctx| {
            let before = global_names(&ctx);
            for (name, source) in &files {
                interrupted.set(false);
                deadline.set(Some(Instant::now() + Duration::from_millis(call_ms)));
                let loaded = ctx
                    .eval_with_options::<(), _>(source.as_str(), options(name))
                    .catch(&ctx);
                deadline.set(None);
                if let Err(e) = loaded {
                    let e = classify(&ctx, e, &self.config, interrupted.get());
                    load_errors.push(format!("{name}: {e}"));
                }
            }
            let globals = ctx.globals();
            global_names(&ctx)
                .into_iter()
                .filter(|n| !before.contains(n))
                .filter(|n| {
                    globals
                        .get::<_, Value>(n.as_str())
                        .is_ok_and(|v| v.is_function())
                })
                .collect::<HashSet<String>>()
        });
        Ok(Engine {
            context,
            runtime,
            deadline,
            interrupted,
            call,
            functions,
            load_errors,
        })
    }

    fn build_error(&self, e: rquickjs::Error) -> ScriptError {
        match e {
            rquickjs::Error::Allocation => ScriptError::Memory {
                bytes: self.config.memory_bytes,
            },
            other => ScriptError::Thrown(format!("cannot start the script runtime: {other}")),
        }
    }

    /// Calls `function` with the one string argument `arg`; its return value as JSON.
    pub fn call(
        &mut self,
        generation: u64,
        function: &str,
        arg: String,
        cx: CallContext,
    ) -> Result<serde_json::Value, ScriptError> {
        self.ensure_loaded(generation)?;
        let config = self.config;
        let engine = self.engine.as_mut().expect("loaded above");
        let name = function_name(function);
        if !engine.functions.contains(name) {
            let mut msg = function.to_string();
            if let Some(first) = engine.load_errors.first() {
                msg.push_str(&format!(
                    " ({} script file(s) did not load; first: {first})",
                    engine.load_errors.len()
                ));
            }
            return Err(ScriptError::NotFound(
                jj::cut(&msg, LOG_LINE_BYTES_MAX).to_string(),
            ));
        }
        *engine.call.borrow_mut() = cx;
        engine.interrupted.set(false);
        engine
            .deadline
            .set(Some(Instant::now() + Duration::from_millis(config.call_ms)));
        let interrupted = engine.interrupted.clone();
        let out = engine.context.with(|ctx| {
            let f: Function = ctx
                .globals()
                .get(name)
                .map_err(|_| ScriptError::NotFound(function.to_string()))?;
            let returned = f.call::<_, Value>((arg,)).catch(&ctx);
            match returned {
                Ok(v) => to_json(&ctx, v, &config, interrupted.get()),
                Err(e) => Err(classify(&ctx, e, &config, interrupted.get())),
            }
        });
        engine.deadline.set(None);
        *engine.call.borrow_mut() = CallContext::default();
        if matches!(
            out,
            Err(ScriptError::Timeout { .. } | ScriptError::Memory { .. })
        ) {
            // QuickJS may be left mid-way (a half-built object graph, a heap at its limit):
            // the next call starts from a fresh runtime.
            self.engine = None;
        }
        out
    }
}

fn new_runtime(config: &ScriptConfig) -> Result<Runtime, ScriptError> {
    let runtime = Runtime::new().map_err(|e| ScriptError::Thrown(format!("QuickJS: {e}")))?;
    runtime.set_memory_limit(config.memory_bytes);
    runtime.set_max_stack_size(config.stack_bytes);
    Ok(runtime)
}

/// Global, non-strict code (RDS scripts are plain scripts) named after its file.
fn options(file: &str) -> EvalOptions {
    let mut o = EvalOptions::default();
    o.global = true;
    o.strict = false;
    o.filename = Some(file.to_string());
    o
}

fn global_names(ctx: &Ctx<'_>) -> HashSet<String> {
    ctx.globals()
        .own_keys::<String>(Filter::new().string())
        .filter_map(Result::ok)
        .collect()
}

/// A return value as JSON under the result cap (`undefined` → null).
fn to_json<'js>(
    ctx: &Ctx<'js>,
    v: Value<'js>,
    config: &ScriptConfig,
    interrupted: bool,
) -> Result<serde_json::Value, ScriptError> {
    if v.is_promise() {
        return Err(ScriptError::BadResult(
            "the function returned a Promise; async script functions are not supported".into(),
        ));
    }
    let text = match ctx.json_stringify(v).catch(ctx) {
        Ok(Some(s)) => s
            .to_string()
            .map_err(|e| ScriptError::BadResult(e.to_string()))?,
        Ok(None) => return Ok(serde_json::Value::Null),
        Err(e) => {
            return Err(match classify(ctx, e, config, interrupted) {
                ScriptError::Thrown(m) => ScriptError::BadResult(format!("not JSON: {m}")),
                other => other,
            })
        }
    };
    if text.len() > config.result_bytes_max {
        return Err(ScriptError::TooLarge {
            what: "SCRIPT_RESULT_BYTES_MAX",
            limit: config.result_bytes_max,
        });
    }
    serde_json::from_str(&text).map_err(|e| ScriptError::BadResult(e.to_string()))
}

/// Names what stopped a script: the interrupt (timeout), an exhausted heap (QuickJS throws
/// `null`), the stack limit, or the script's own exception.
fn classify<'js>(
    _ctx: &Ctx<'js>,
    e: CaughtError<'js>,
    config: &ScriptConfig,
    interrupted: bool,
) -> ScriptError {
    if interrupted {
        return ScriptError::Timeout { ms: config.call_ms };
    }
    let memory = ScriptError::Memory {
        bytes: config.memory_bytes,
    };
    let text = match e {
        CaughtError::Value(v) if v.is_null() => return memory,
        CaughtError::Error(rquickjs::Error::Allocation) => return memory,
        CaughtError::Exception(ex) => {
            let name: String = ex.as_object().get("name").unwrap_or_default();
            let message = ex.message().unwrap_or_default();
            if message == "out of memory" {
                return memory;
            }
            if name == "RangeError" && message.contains("call stack size exceeded") {
                return ScriptError::Stack {
                    bytes: config.stack_bytes,
                };
            }
            let stack = ex.stack().unwrap_or_default();
            format!("{name}: {message}\n{}", stack.trim_end())
        }
        CaughtError::Value(v) => format!("{v:?}"),
        CaughtError::Error(e) => e.to_string(),
    };
    ScriptError::Thrown(jj::cut(&text, LOG_LINE_BYTES_MAX).to_string())
}

/// The file name [`validate`] compiles under (found again in the error's stack).
const VALIDATE_FILE: &str = "validate.js";

/// What the statement put before the source throws: compiling the whole text reports any
/// syntax error first; without one this is thrown before a single statement of the source
/// runs (function declarations are only instantiated, not called).
const VALIDATE_SENTINEL: &str = "vwed-validate: compiled";

/// Compiles `source` as a script file without running it. A syntax error is reported with its
/// 1-based line and QuickJS's message. (A source starting with a `"use strict"` directive is
/// compiled as non-strict here; strict-only errors are then reported when it loads.)
pub fn validate(source: &str) -> Result<(), ScriptError> {
    if source.len() > SCRIPT_FILE_BYTES_MAX {
        return Err(ScriptError::TooLarge {
            what: "SCRIPT_FILE_BYTES_MAX",
            limit: SCRIPT_FILE_BYTES_MAX,
        });
    }
    if let Some(at) = source.find('\0') {
        let line = source[..at].matches('\n').count() as u32 + 1;
        return Err(ScriptError::Syntax {
            line,
            message: "a NUL character".into(),
        });
    }
    let config = ScriptConfig::default();
    let runtime = new_runtime(&config)?;
    let context = Context::full(&runtime)
        .map_err(|e| ScriptError::Thrown(format!("cannot start the script runtime: {e}")))?;
    // Same line: line numbers of the source are unchanged.
    let text = format!("throw {VALIDATE_SENTINEL:?};{source}");
    context.with(|ctx| {
        let e = match ctx
            .eval_with_options::<(), _>(text, options(VALIDATE_FILE))
            .catch(&ctx)
        {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let CaughtError::Value(v) = &e {
            if v.as_string().and_then(|s| s.to_string().ok()).as_deref() == Some(VALIDATE_SENTINEL)
            {
                return Ok(());
            }
        }
        Err(syntax_error(e))
    })
}

fn syntax_error(e: CaughtError<'_>) -> ScriptError {
    match e {
        CaughtError::Exception(ex) => {
            let stack = ex.stack().unwrap_or_default();
            ScriptError::Syntax {
                line: stack_line(&stack, VALIDATE_FILE).unwrap_or(1),
                message: ex.message().unwrap_or_default(),
            }
        }
        CaughtError::Value(v) if v.is_null() => ScriptError::Memory {
            bytes: ScriptConfig::default().memory_bytes,
        },
        other => ScriptError::Syntax {
            line: 1,
            message: other.to_string(),
        },
    }
}

/// The line of the first `file:LINE:COL` in a QuickJS stack.
fn stack_line(stack: &str, file: &str) -> Option<u32> {
    let at = stack.find(&format!("{file}:"))? + file.len() + 1;
    let digits: String = stack[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
