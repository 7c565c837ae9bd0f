//! `vwed bench [--tasks N] [--concurrency C] [--delay-ms D] [--data DIR] [--json]`: pushes N
//! small flows through the real scheduler and a real SQLite file (a temporary one unless
//! `--data`), waits until every run in the store has ended, and prints throughput,
//! submit→start latency, RSS and the disk's single-commit rate measured in the same run.
//! With `--data` on an existing store it first resumes what was left there (crash tests).

use super::{runtime, UsageError};
use crate::flow::load;
use crate::scheduler::{Config, Scheduler, SubmitError, SubmitRequest};
use crate::store::{Store, TaskStatus};
use crate::tasks::Tasks;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Submissions in flight at once while loading the queue.
const SUBMITS_IN_FLIGHT: usize = 64;
/// Sequential commits timed to measure the disk's single-commit rate.
const COMMIT_PROBE_WRITES: usize = 200;
/// Seconds without any run ending after which the benchmark reports a stall.
const STALL_SECS: u64 = 60;
/// The definition every bench task runs.
const BENCH_DEF_ID: &str = "vwed-bench";

struct Options {
    tasks: usize,
    concurrency: usize,
    delay_ms: u64,
    data: Option<PathBuf>,
    json: bool,
}

fn parse(args: &[String]) -> Result<Options, UsageError> {
    let mut o = Options {
        tasks: 10_000,
        concurrency: crate::limits::RUNS_ACTIVE_MAX,
        delay_ms: 0,
        data: None,
        json: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<u64, UsageError> {
            let v = it
                .next()
                .ok_or_else(|| UsageError(format!("{name} needs a value")))?;
            v.parse()
                .map_err(|_| UsageError(format!("{name} {v}: not a number")))
        };
        match arg.as_str() {
            "--tasks" => o.tasks = num("--tasks")? as usize,
            "--concurrency" => o.concurrency = (num("--concurrency")? as usize).max(1),
            "--delay-ms" => o.delay_ms = num("--delay-ms")?,
            "--json" => o.json = true,
            "--data" => {
                let dir = it
                    .next()
                    .ok_or_else(|| UsageError("--data needs a value".into()))?;
                o.data = Some(PathBuf::from(dir));
            }
            other => return Err(UsageError(format!("bench: unknown argument {other}"))),
        }
    }
    Ok(o)
}

pub(super) fn main(args: &[String]) -> Result<ExitCode, UsageError> {
    let opts = parse(args)?;
    let rt = runtime::build().map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    match rt.block_on(bench(&opts)) {
        Ok(report) => {
            if !opts.json {
                print_human(&report);
            } else {
                println!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("vwed bench: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn bench_definition(delay_ms: u64) -> crate::flow::load::RawDefinition {
    let simple = |v: &str| json!({"type": "Simple", "value": v});
    let expr = |v: &str| json!({"type": "Expression", "value": v});
    let block = |id: i64, ty: &str, params: serde_json::Value| {
        json!({"id": id, "name": format!("b{id}"), "blockType": ty, "inputParams": params,
            "children": {}})
    };
    let def = json!({"id": BENCH_DEF_ID, "label": "vwed_bench", "detail": {
    "inputParams": [{"name": "n", "type": "Long", "defaultValue": "1"}],
    "outputParams": [],
    "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp", "inputParams": {},
        "children": {"default": [
            block(1, "SetTaskVariableBp", json!({"varName": simple("a"), "varValue": expr("taskInputs.n + 1")})),
            block(2, "DelayBp", json!({"timeMillis": simple(&delay_ms.to_string())})),
            block(3, "SetTaskVariableBp", json!({"varName": simple("b"), "varValue": expr("'v' + task.variables.a")})),
            block(4, "DelayBp", json!({"timeMillis": simple("0")})),
            block(5, "SetTaskVariableBp", json!({"varName": simple("c"), "varValue": expr("task.variables.b == 'v2'")})),
            block(6, "PrintBp", json!({"message": expr("task.variables.b")})),
        ]}}}});
    load::load_value(def, "bench")
        .remove(0)
        .expect("the bench definition loads")
}

/// Times `COMMIT_PROBE_WRITES` sequential single-job commits.
async fn commit_rate(store: &Store) -> Result<f64, String> {
    let start = Instant::now();
    for i in 0..COMMIT_PROBE_WRITES {
        store
            .write(move |tx| tx.cache_set("vwed.bench.probe", &i.to_string(), 0))
            .await
            .map_err(|e| e.to_string())?;
    }
    let rate = COMMIT_PROBE_WRITES as f64 / start.elapsed().as_secs_f64();
    store
        .write(|tx| tx.cache_delete("vwed.bench.probe"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(rate)
}

async fn bench(o: &Options) -> Result<serde_json::Value, String> {
    let (rss_start, _) = crate::budget::rss();
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = o.data.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let store = runtime::open_store(&dir, true)?;
    let rate = commit_rate(&store).await?;
    let tasks = Tasks::new();
    let config = Config {
        runs_active_max: o.concurrency,
        ..Config::default()
    };
    let sched = Scheduler::start(store.clone(), config, &tasks)
        .await
        .map_err(|e| e.to_string())?;
    sched
        .save_definition(bench_definition(o.delay_ms))
        .await
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    submit_all(&sched, o.tasks).await?;
    wait_until_idle(&store).await?;
    let seconds = start.elapsed().as_secs_f64();
    let (p50, p99, ended) = latencies(&store).await?;
    sched.shutdown().await;
    tasks.join_all().await;
    store.close();
    let (rss_end, rss_peak) = crate::budget::rss();
    Ok(json!({
        "tasks": o.tasks,
        "ended_in_store": ended,
        "concurrency": o.concurrency,
        "seconds": seconds,
        "tasks_per_sec": o.tasks as f64 / seconds.max(1e-9),
        "commit_rate_per_sec": rate,
        "submit_to_start_ms": {"p50": p50, "p99": p99},
        "rss_start_bytes": rss_start,
        "rss_end_bytes": rss_end,
        "rss_peak_bytes": rss_peak,
    }))
}

async fn submit_all(sched: &Scheduler, n: usize) -> Result<(), String> {
    let mut inflight = FuturesUnordered::new();
    let mut next = 0usize;
    while next < n || !inflight.is_empty() {
        while next < n && inflight.len() < SUBMITS_IN_FLIGHT {
            let req = SubmitRequest {
                def_id: Some(BENCH_DEF_ID.into()),
                ..SubmitRequest::default()
            };
            let s = sched.clone();
            inflight.push(async move { s.submit(req).await });
            next += 1;
        }
        match inflight.next().await {
            Some(Ok(_)) | None => {}
            Some(Err(SubmitError::QueueFull { .. })) => {
                next -= 1; // try that one again once the queue drains a little
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Some(Err(e)) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Waits until no run in the store is queued or running; fails when nothing moves for
/// `STALL_SECS` (a lost or stuck run must not hang the benchmark).
async fn wait_until_idle(store: &Store) -> Result<(), String> {
    let mut last = (i64::MAX, Instant::now());
    loop {
        let busy = store
            .read(|rx| {
                Ok(rx.status_count(TaskStatus::Queued)? + rx.status_count(TaskStatus::Running)?)
            })
            .await
            .map_err(|e| e.to_string())?;
        if busy == 0 {
            return Ok(());
        }
        if busy != last.0 {
            last = (busy, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(STALL_SECS) {
            return Err(format!(
                "stalled: {busy} runs made no progress for {STALL_SECS} s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// p50 and p99 of submit→start over the finished runs, and how many runs have ended.
async fn latencies(store: &Store) -> Result<(f64, f64, usize), String> {
    let (ms, ended) = store
        .read(|rx| {
            let ended = rx.status_count(TaskStatus::Finished)?
                + rx.status_count(TaskStatus::Failed)?
                + rx.status_count(TaskStatus::Stopped)?;
            Ok((rx.start_delays_ms(usize::MAX >> 1)?, ended as usize))
        })
        .await
        .map_err(|e| e.to_string())?;
    let pick = |q: f64| {
        if ms.is_empty() {
            0.0
        } else {
            ms[((ms.len() - 1) as f64 * q).round() as usize] as f64
        }
    };
    Ok((pick(0.50), pick(0.99), ended))
}

fn print_human(r: &serde_json::Value) {
    let mib = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0) / 1_048_576.0;
    println!("tasks               {}", r["tasks"]);
    println!("concurrency         {}", r["concurrency"]);
    println!(
        "seconds             {:.2}",
        r["seconds"].as_f64().unwrap_or(0.0)
    );
    println!(
        "tasks/s             {:.0}",
        r["tasks_per_sec"].as_f64().unwrap_or(0.0)
    );
    println!(
        "single commits/s    {:.0}",
        r["commit_rate_per_sec"].as_f64().unwrap_or(0.0)
    );
    println!(
        "submit→start ms     p50 {}  p99 {}",
        r["submit_to_start_ms"]["p50"], r["submit_to_start_ms"]["p99"]
    );
    println!(
        "RSS MiB             start {:.1}  end {:.1}  peak {:.1}",
        mib(&r["rss_start_bytes"]),
        mib(&r["rss_end_bytes"]),
        mib(&r["rss_peak_bytes"])
    );
}
