//! `vwed limits`: the built binary prints the memory budget as JSON whose total is the sum of
//! its items, covers the structures that dominate memory, and rejects unknown flags.

use std::process::Command;

const GIB: u64 = 1024 * 1024 * 1024;

fn vwed(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vwed"))
        .args(args)
        .output()
        .expect("run vwed")
}

fn budget() -> serde_json::Value {
    let out = vwed(&["limits", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("limits --json prints one JSON object")
}

#[test]
fn json_budget_lists_the_main_structures_and_sums_them() {
    let budget = budget();
    let items = budget["items"].as_array().expect("items");
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    for wanted in ["run slots", "writer queue", "SQLite", "thread stacks"] {
        assert!(
            names.iter().any(|n| n.contains(wanted)),
            "no {wanted} item in {names:?}"
        );
    }
    let mut sum = 0;
    for i in items {
        let (cap, each) = (
            i["capacity"].as_u64().unwrap(),
            i["bytes_each"].as_u64().unwrap(),
        );
        assert_eq!(i["total_bytes"].as_u64().unwrap(), cap * each, "{i}");
        assert!(!i["unit"].as_str().unwrap().is_empty() && !i["note"].as_str().unwrap().is_empty());
        sum += cap * each;
    }
    assert_eq!(budget["total_bytes"].as_u64().unwrap(), sum);
    // A sanity ceiling: catches overflow and unit mistakes, not the target (see below).
    assert!(sum > 0 && sum < 64 * GIB, "total {sum}");
}

/// The target for a controller: the worst case of the default limits sits at least 25% below
/// the unit's `MemoryMax` (read from `systemd/vwed.service`).
#[test]
fn default_budget_fits_the_systemd_memory_max() {
    let total = budget()["total_bytes"].as_u64().unwrap();
    assert!(total < GIB, "total {total} bytes");
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/vwed.service"),
    )
    .unwrap();
    let max = unit
        .lines()
        .find_map(|l| l.strip_prefix("MemoryMax="))
        .and_then(|v| v.trim().strip_suffix('M'))
        .and_then(|mib| mib.parse::<u64>().ok())
        .expect("MemoryMax=<n>M in the unit");
    assert!(
        total * 5 / 4 < max * 1024 * 1024,
        "total {total} bytes leaves less than 25% margin under MemoryMax={max}M"
    );
}

#[test]
fn human_output_has_a_total_and_memory_max_advice() {
    let out = vwed(&["limits"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("run slots") && text.contains("total: "),
        "{text}"
    );
    assert!(text.contains("MemoryMax"), "{text}");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = vwed(&["limits", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}

#[test]
fn a_config_file_changes_the_budget_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    std::fs::write(
        &path,
        "[scheduler]\nruns_active_max = 256\n[http]\nconnections_max = 64\n",
    )
    .unwrap();
    let out = vwed(&["limits", "--config", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{out:?}");
    let big: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let default = budget();
    let total = |b: &serde_json::Value| b["total_bytes"].as_u64().unwrap();
    assert!(
        total(&big) > total(&default),
        "more slots and connections cost more"
    );
    let bodies = |b: &serde_json::Value| {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == "http request bodies")
            .unwrap()["capacity"]
            .as_u64()
            .unwrap()
    };
    assert_eq!((bodies(&default), bodies(&big)), (32, 64));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[scheduler]\nruns_active_max = 0\n").unwrap();
    let out = vwed(&["limits", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("scheduler.runs_active_max"));
    assert_eq!(vwed(&["limits", "--config"]).status.code(), Some(2));
}
