//! `vwed run FILE [--label L] [--input k=v ...] [--sites SITES.json] [--scripts DIR]
//! [--config FILE] [--json]`:
//! stores every definition of FILE in a temporary store with the simulated fleet of the
//! configuration's `[fleet]` and the demo sites (or the sites of SITES.json, a
//! JSON array as `/api/sites/import` takes) and the scripts of DIR for script blocks, runs one
//! of them through the real scheduler, prints
//! block-by-block progress to stderr, and exits 0 only when the run finishes. A run left waiting
//! for a site that nothing else can change is reported as stalled.

use super::check::{file_stem, read_file};
use super::{runtime, UsageError};
use crate::flow::compile::{self, Severity};
use crate::flow::load::{self, RawDefinition};
use crate::scheduler::{Config, RunEvent, RunEventKind, Scheduler, SubmitRequest};
use crate::store::{Site, TaskRecord, TaskStatus};
use crate::tasks::Tasks;
use crate::value::{Map, Value};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

struct Options {
    file: String,
    label: Option<String>,
    inputs: Map,
    json: bool,
    sites: Option<String>,
    scripts: Option<String>,
    config: Option<String>,
}

fn parse(args: &[String]) -> Result<Options, UsageError> {
    let mut file = None;
    let mut label = None;
    let mut inputs = Map::new();
    let mut json = false;
    let mut sites = None;
    let mut scripts = None;
    let mut config = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--json" => json = true,
            "--label" => label = Some(value("--label")?),
            "--sites" => sites = Some(value("--sites")?),
            "--scripts" => scripts = Some(value("--scripts")?),
            "--config" => config = Some(value("--config")?),
            "--input" => {
                let kv = value("--input")?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| UsageError(format!("--input {kv}: expected name=value")))?;
                inputs.insert(k.to_string(), Value::String(v.to_string()));
            }
            flag if flag.starts_with("--") => {
                return Err(UsageError(format!("run: unknown flag {flag}")))
            }
            path if file.is_none() => file = Some(path.to_string()),
            extra => return Err(UsageError(format!("run: unexpected argument {extra}"))),
        }
    }
    let file = file.ok_or_else(|| UsageError("run needs a FILE".into()))?;
    Ok(Options {
        file,
        label,
        inputs,
        json,
        sites,
        scripts,
        config,
    })
}

pub(super) fn main(args: &[String]) -> Result<ExitCode, UsageError> {
    let opts = parse(args)?;
    let path = Path::new(&opts.file);
    let defs = match read_definitions(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("vwed run: {}: {e}", path.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let chosen = match &opts.label {
        Some(l) => defs.iter().position(|d| &d.label == l),
        None => (!defs.is_empty()).then_some(0),
    };
    let Some(chosen) = chosen else {
        eprintln!(
            "vwed run: {}: no definition labelled {:?}",
            path.display(),
            opts.label
        );
        return Ok(ExitCode::FAILURE);
    };
    let compiled = compile::compile(&defs[chosen]);
    for d in &compiled.diagnostics {
        eprintln!("{}: {}: {d}", path.display(), defs[chosen].label);
    }
    if compiled.has_errors() {
        return Ok(ExitCode::FAILURE);
    }
    let env = |k: &str| std::env::var(k).ok();
    let config = match crate::config::load(opts.config.as_deref().map(Path::new), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vwed run: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let sites = match read_sites(opts.sites.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vwed run: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let rt = runtime::build().map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    let setup = Setup {
        scheduler: config.scheduler,
        fleet: config.fleet,
        sites,
        scripts: opts.scripts.map(std::path::PathBuf::from),
    };
    let result = rt.block_on(run(defs, chosen, opts.inputs, setup));
    match result {
        Ok(report) => {
            if opts.json {
                println!("{}", report.json);
            }
            Ok(if report.finished {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            eprintln!("vwed run: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn read_definitions(path: &Path) -> Result<Vec<RawDefinition>, String> {
    let text = read_file(path)?;
    let mut defs = Vec::new();
    for loaded in load::load_text(&text, &file_stem(path)) {
        defs.push(loaded.map_err(|e| e.to_string())?);
    }
    Ok(defs)
}

/// The sites of `--sites FILE` (each validated), or the demo sites.
fn read_sites(path: Option<&str>) -> Result<Vec<Site>, String> {
    let (text, name) = match path {
        Some(p) => (read_file(Path::new(p))?, p),
        None => (crate::server::DEMO_SITES.to_string(), "demo sites"),
    };
    let sites: Vec<Site> = serde_json::from_str(&text)
        .map_err(|e| format!("{name}: not a JSON array of sites: {e}"))?;
    for (i, site) in sites.iter().enumerate() {
        site.validate()
            .map_err(|e| format!("{name}: site {i}: {e}"))?;
    }
    Ok(sites)
}

/// How often `vwed run` checks whether its run is stuck waiting for a site.
const STALL_CHECK_MS: u64 = 250;

/// Resolves when the run is parked on site waiters: in `vwed run` nothing else changes sites,
/// so it would wait forever. The message names what it waits for.
async fn stalled(sched: &Scheduler, id: &str) -> String {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(STALL_CHECK_MS));
    loop {
        tick.tick().await;
        if sched.stats().runs_loaded > 0 {
            continue;
        }
        let id2 = id.to_string();
        let read = sched
            .store()
            .read(move |rx| Ok((rx.task(&id2)?, rx.site_waiters(10)?)))
            .await;
        let Ok((Some(rec), waiters)) = read else {
            continue;
        };
        let mine: Vec<String> = waiters
            .iter()
            .filter(|w| w.task_id == id)
            .map(|w| {
                format!(
                    "{} {}",
                    w.block,
                    serde_json::to_string(&w.op).unwrap_or_default()
                )
            })
            .collect();
        if rec.status == TaskStatus::Running && !mine.is_empty() {
            return format!(
                "stalled: waiting for a site no other task can free ({}); give sites with --sites",
                mine.join("; ")
            );
        }
    }
}

struct Report {
    finished: bool,
    json: Value,
}

/// What the temporary appliance of `vwed run` starts with.
struct Setup {
    scheduler: Config,
    fleet: crate::config::FleetConfig,
    sites: Vec<Site>,
    /// The scripts folder for script blocks (`--scripts`); none: script blocks fail.
    scripts: Option<std::path::PathBuf>,
}

async fn run(
    defs: Vec<RawDefinition>,
    chosen: usize,
    inputs: Map,
    setup: Setup,
) -> Result<Report, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary store: {e}"))?;
    let store = runtime::open_store(dir.path(), false)?;
    let tasks = Tasks::new();
    let (fleet, _) = crate::server::build_fleet(&setup.fleet)?;
    let sched = Scheduler::start_with_fleet(store.clone(), setup.scheduler, fleet, &tasks)
        .await
        .map_err(|e| e.to_string())?;
    crate::server::put_sites(&sched, setup.sites, "vwed run").await?;
    let scripts = match setup.scripts {
        Some(dir) => {
            let store = crate::script::ScriptStore::at(dir).map_err(|e| e.to_string())?;
            Some(crate::server::start_scripts(store, &sched)?)
        }
        None => None,
    };
    let mut def_id = None;
    for (i, raw) in defs.into_iter().enumerate() {
        let label = raw.label.clone();
        let has_errors = compile::compile(&raw)
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error);
        if has_errors && i != chosen {
            eprintln!("note: {label} has errors and is not stored");
            continue;
        }
        let (saved, _) = sched
            .save_definition(raw)
            .await
            .map_err(|e| format!("{label}: {e}"))?;
        if i == chosen {
            def_id = Some(saved.id);
        }
    }
    let mut events = sched.subscribe();
    let req = SubmitRequest {
        def_id,
        inputs,
        ..SubmitRequest::default()
    };
    let id = sched.submit(req).await.map_err(|e| e.to_string())?.id;
    let progress = async {
        loop {
            match events.recv().await {
                Ok(ev) if ev.run == id => print_progress(&ev),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("  ({n} progress lines skipped)")
                }
                Err(_) => return,
            }
        }
    };
    let done = sched.wait_for(&id, |s| s.is_terminal() || s == TaskStatus::Interrupted);
    let record = tokio::select! {
        r = done => r.map_err(|e| e.to_string())?,
        _ = progress => return Err("the scheduler stopped".into()),
        why = stalled(&sched, &id) => return Err(why),
    };
    // Drain the progress of the last step (published just before the status event).
    while let Ok(ev) = events.try_recv() {
        if ev.run == id {
            print_progress(&ev);
        }
    }
    let report = report(&sched, record).await?;
    if let Some(pool) = scripts {
        pool.shutdown(std::time::Duration::from_secs(1)).await;
    }
    sched.shutdown().await;
    tasks.join_all().await;
    store.close();
    Ok(report)
}

fn print_progress(ev: &RunEvent) {
    match &ev.kind {
        RunEventKind::BlockStarted { name, block_type } => eprintln!("▶ {name} ({block_type})"),
        RunEventKind::BlockEnded {
            name,
            block_type,
            status,
            reason,
        } => {
            let sep = if reason.is_empty() { "" } else { ": " };
            eprintln!("■ {name} ({block_type}) {status}{sep}{reason}");
        }
        RunEventKind::Log { message } => eprintln!("  {message}"),
        RunEventKind::Status {
            status,
            code,
            reason,
        } => eprintln!("task {status} ({code}) {}", reason.as_deref().unwrap_or("")),
    }
}

async fn report(sched: &Scheduler, record: TaskRecord) -> Result<Report, String> {
    let id = record.id.clone();
    let (records, logs) = sched
        .store()
        .read(move |rx| {
            Ok((
                rx.block_records(&id, usize::MAX >> 1)?,
                rx.task_logs(&id, 100_000)?,
            ))
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut outputs = Map::new();
    for r in records.iter().filter(|r| r.block_name != "-1") {
        if let Some(text) = &r.outputs {
            let v = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()));
            outputs.insert(r.block_name.clone(), v);
        }
    }
    let log: Vec<String> = logs
        .into_iter()
        .map(|l| l.message)
        .filter(|m| m.starts_with("[PrintBp]") || m.starts_with("[TaskStateBp]"))
        .collect();
    let finished = record.status == TaskStatus::Finished;
    let (status, code) = match record.status {
        TaskStatus::Finished => ("finished", record.code),
        TaskStatus::Stopped => ("stopped", record.code),
        _ => ("failed", record.code),
    };
    let variables: Value = serde_json::from_str(&record.variables).unwrap_or(json!({}));
    let error = (!finished).then(|| record.ended_reason.clone().unwrap_or_default());
    let json = json!({
        "status": status,
        "code": code,
        "variables": variables,
        "outputs": outputs,
        "stateDescription": record.state_description,
        "error": error,
        "log": log,
    });
    Ok(Report { finished, json })
}
