//! `vwed serve [--data DIR]`: the appliance. Opens the store (data dir from `--data`,
//! `VWED_DATA_DIR`, systemd's `STATE_DIRECTORY`, else `./data`), stores the embedded demo
//! definitions on a fresh store, recovers and runs the scheduler (periodic definitions
//! included) until SIGTERM or SIGINT, then shuts down gracefully within `SHUTDOWN_GRACE_MS`.

use super::{runtime, UsageError};
use crate::flow::load;
use crate::limits::SHUTDOWN_GRACE_MS;
use crate::scheduler::{Config, Scheduler};
use crate::tasks::Tasks;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Definitions a fresh store starts with (embedded in the binary).
pub const DEMO_DEFINITIONS: &[(&str, &str)] = &[
    (
        "example_while_break",
        include_str!("../../assets/demo/example_while_break.json"),
    ),
    (
        "example_cache_counter",
        include_str!("../../assets/demo/example_cache_counter.json"),
    ),
    (
        "demo_bench",
        include_str!("../../assets/demo/demo_bench.json"),
    ),
];

/// The data directory: the flag, else `VWED_DATA_DIR`, else `STATE_DIRECTORY`, else `./data`.
pub fn data_dir(flag: Option<String>) -> PathBuf {
    flag.or_else(|| std::env::var("VWED_DATA_DIR").ok())
        .or_else(|| {
            std::env::var("STATE_DIRECTORY")
                .ok()
                .and_then(|s| s.split(':').next().map(str::to_string))
        })
        .filter(|s| !s.is_empty())
        .map_or_else(|| PathBuf::from("data"), PathBuf::from)
}

pub(super) fn main(args: &[String]) -> Result<ExitCode, UsageError> {
    let mut data = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--data" => {
                let v = it
                    .next()
                    .ok_or_else(|| UsageError("--data needs a value".into()))?;
                data = Some(v.clone());
            }
            other => return Err(UsageError(format!("serve: unknown argument {other}"))),
        }
    }
    let dir = data_dir(data);
    let rt = runtime::build().map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    match rt.block_on(serve(dir)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("vwed serve: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn serve(dir: PathBuf) -> Result<(), String> {
    let store = runtime::open_store(&dir, true)?;
    let tasks = Tasks::new();
    let sched = Scheduler::start(store.clone(), Config::default(), &tasks)
        .await
        .map_err(|e| e.to_string())?;
    install_demos(&sched).await?;
    log::warn!(
        "vwed {} running: data in {}, SQLite {}; the HTTP API arrives in the next version, \
         so tasks are started by periodic definitions only",
        env!("CARGO_PKG_VERSION"),
        dir.display(),
        crate::store::Store::sqlite_version()
    );
    runtime::stop_signal().await;
    let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
    if tokio::time::timeout(grace, sched.shutdown()).await.is_err() {
        log::error!("shutdown grace period ({SHUTDOWN_GRACE_MS} ms) ran out; exiting anyway");
    } else {
        tasks.join_all().await;
    }
    store.close();
    log::warn!("vwed stopped");
    Ok(())
}

/// Stores the demo definitions when the store has no definition at all.
async fn install_demos(sched: &Scheduler) -> Result<(), String> {
    let existing = sched
        .store()
        .read(|rx| rx.definitions(1))
        .await
        .map_err(|e| e.to_string())?;
    if !existing.is_empty() {
        return Ok(());
    }
    for (name, text) in DEMO_DEFINITIONS {
        for raw in load::load_text(text, name) {
            let raw = raw.map_err(|e| format!("demo {name}: {e}"))?;
            sched
                .save_definition(raw)
                .await
                .map_err(|e| format!("demo {name}: {e}"))?;
        }
    }
    log::info!("stored {} demo definitions", DEMO_DEFINITIONS.len());
    Ok(())
}
