//! `vwed limits [--config FILE] [--json]`: prints the memory budget ([`crate::budget`]) of the
//! default configuration, or of FILE's `[scheduler]` and `[http]` limits (with `VWED_*`
//! overrides): each bounded structure, its capacity, bytes per element and total.

use super::UsageError;
use crate::budget::{self, Item};
use std::io::Write;
use std::process::ExitCode;

/// How far above the budget the systemd unit's `MemoryMax` should sit (allocator slack,
/// fragmentation, code and libraries).
const MEMORY_MAX_MARGIN: f64 = 1.5;

const MIB: f64 = 1024.0 * 1024.0;

pub(super) fn main(args: &[String]) -> Result<ExitCode, UsageError> {
    let mut json = false;
    let mut file = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--config" => {
                let path = it
                    .next()
                    .ok_or_else(|| UsageError("--config needs a value".into()))?;
                file = Some(std::path::PathBuf::from(path));
            }
            other => return Err(UsageError(format!("limits: unknown argument {other}"))),
        }
    }
    let env = |k: &str| std::env::var(k).ok();
    let config = match crate::config::load(file.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vwed limits: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let items = budget::items_with_http(&config.scheduler, &config.http);
    let total = budget::total_bytes(&items);
    let text = if json {
        format!("{}\n", to_json(&items, total))
    } else {
        table(&items, total)
    };
    // A closed pipe (`vwed limits | head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn to_json(items: &[Item], total: usize) -> serde_json::Value {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|i| {
            serde_json::json!({
                "name": i.name,
                "capacity": i.capacity,
                "unit": i.unit,
                "bytes_each": i.bytes_each,
                "total_bytes": i.total_bytes,
                "note": i.note,
            })
        })
        .collect();
    serde_json::json!({ "items": items, "total_bytes": total })
}

/// The aligned table, the total and the `MemoryMax` advice.
fn table(items: &[Item], total: usize) -> String {
    let header = ["structure", "capacity", "unit", "bytes each", "total"];
    let rows: Vec<[String; 5]> = items
        .iter()
        .map(|i| {
            [
                i.name.to_string(),
                i.capacity.to_string(),
                i.unit.to_string(),
                i.bytes_each.to_string(),
                format!("{:.1} MiB", i.total_bytes as f64 / MIB),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let [name, cap, unit, each, tot] = cells;
        let [w0, w1, w2, w3, w4] = widths;
        out.push_str(&format!(
            "{name:<w0$}  {cap:>w1$}  {unit:<w2$}  {each:>w3$}  {tot:>w4$}\n"
        ));
    };
    line(header);
    for row in &rows {
        line(row.each_ref().map(String::as_str));
    }
    let mib = total as f64 / MIB;
    out.push_str(&format!("\ntotal: {mib:.1} MiB ({total} bytes)\n"));
    out.push_str(&format!(
        "systemd MemoryMax should sit a margin above it: {MEMORY_MAX_MARGIN}x = {:.0}M\n",
        (mib * MEMORY_MAX_MARGIN).ceil()
    ));
    out
}
