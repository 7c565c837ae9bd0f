//! Packaging files cannot rot: the systemd unit keeps its keys, `Cross.toml` names both release
//! targets, the release script ships what the README promises, and every demo definition under
//! `assets/demo/` loads and compiles with no errors (the small ones also run to the end).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use vwed::flow::{compile, load, model::Flow};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// An INI-ish unit file: `[Section]` headers, `Key=Value` lines, `#`/`;` comments. Keys may
/// repeat (systemd allows it), so each maps to every value in order.
fn parse_unit(text: &str) -> HashMap<String, HashMap<String, Vec<String>>> {
    let mut sections: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
    let mut current = None::<String>;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("vwed.service line {}: not Key=Value: {line}", n + 1));
        let section = current
            .as_ref()
            .unwrap_or_else(|| panic!("vwed.service line {}: key before any section", n + 1));
        sections
            .get_mut(section)
            .unwrap()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    sections
}

#[test]
fn systemd_unit_has_the_keys_operations_rely_on() {
    let unit = parse_unit(&read("systemd/vwed.service"));
    for section in ["Unit", "Service", "Install"] {
        assert!(unit.contains_key(section), "[{section}] missing");
    }
    let service = &unit["Service"];
    let one = |key: &str| -> &str {
        let values = service
            .get(key)
            .unwrap_or_else(|| panic!("[Service] {key}= missing"));
        assert_eq!(values.len(), 1, "[Service] {key}= set more than once");
        &values[0]
    };
    let exec = one("ExecStart");
    assert!(
        exec.starts_with("/usr/local/bin/vwed serve") && exec.contains("--data ${STATE_DIRECTORY}"),
        "ExecStart={exec}"
    );
    assert_eq!(one("StateDirectory"), "vwed");
    assert!(
        one("DynamicUser") == "yes" || service.contains_key("User"),
        "neither DynamicUser=yes nor User="
    );
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("RestartSec"), "2");
    assert_eq!(one("KillSignal"), "SIGTERM");
    assert_eq!(one("TimeoutStopSec"), "30");
    let memory = one("MemoryMax");
    assert!(
        memory.len() > 1
            && memory[..memory.len() - 1]
                .parse::<u64>()
                .is_ok_and(|n| n > 0),
        "MemoryMax={memory} is not a size such as 512M"
    );
    assert!(one("LimitNOFILE").parse::<u64>().is_ok());
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("ProtectHome"), "yes");
    assert_eq!(one("PrivateTmp"), "yes");
    // Writable: the state directory and nothing else.
    let rw = one("ReadWritePaths");
    assert!(
        rw == "%S/vwed" || rw == "/var/lib/vwed",
        "ReadWritePaths={rw}"
    );
    assert!(
        service["Environment"].iter().any(|e| e == "VWED_LOG=info"),
        "Environment=VWED_LOG=info missing"
    );
    assert_eq!(unit["Install"]["WantedBy"], ["multi-user.target"]);
}

#[test]
fn cross_toml_names_both_release_targets() {
    let text = read("Cross.toml");
    for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        assert!(
            text.lines()
                .any(|l| l.trim() == format!("[target.{target}]")),
            "Cross.toml has no [target.{target}]"
        );
    }
}

#[test]
fn release_script_builds_both_targets_and_ships_the_documented_files() {
    let script = read("scripts/release.sh");
    for needle in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "cargo zigbuild",
        "qemu-aarch64",
        "schema.sql",
        "systemd/vwed.service",
        "README.md",
        "assets/vwed.example.toml",
    ] {
        assert!(script.contains(needle), "scripts/release.sh lacks {needle}");
    }
    // What the tarball holds must exist in the tree.
    for file in [
        "schema.sql",
        "systemd/vwed.service",
        "README.md",
        "assets/vwed.example.toml",
    ] {
        assert!(root().join(file).is_file(), "{file} missing");
    }
    let ignore = read(".gitignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "/dist"),
        "dist/ is not ignored"
    );
}

fn demo_files() -> Vec<PathBuf> {
    let dir = root().join("assets/demo");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn compile_file(path: &Path) -> Vec<(String, Option<String>, Flow)> {
    let text = std::fs::read_to_string(path).unwrap();
    let stem = path.file_stem().unwrap().to_string_lossy().to_string();
    load::load_text(&text, &stem)
        .into_iter()
        .map(|loaded| {
            let raw = loaded.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let compiled = compile::compile(&raw);
            let shown: Vec<String> = compiled.diagnostics.iter().map(|d| d.to_string()).collect();
            assert!(
                !compiled.has_errors(),
                "{} ({}): {shown:#?}",
                path.display(),
                raw.label
            );
            (raw.label.clone(), raw.id.clone(), compiled.flow.unwrap())
        })
        .collect()
}

#[test]
fn every_demo_definition_loads_and_compiles() {
    let files = demo_files();
    let mut labels = Vec::new();
    for path in &files {
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("json"),
            "{}: demo definitions are .json",
            path.display()
        );
        for (label, id, _) in compile_file(path) {
            assert!(id.is_some(), "{}: no id", path.display());
            labels.push(label);
        }
    }
    labels.sort();
    assert_eq!(
        labels,
        ["demo_bench", "example_cache_counter", "example_while_break"]
    );
}

/// Runs a demo with `vwed run --json`; returns (exit success, the JSON report).
fn run_demo(file: &str) -> (bool, serde_json::Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vwed"))
        .arg("run")
        .arg(root().join("assets/demo").join(file))
        .arg("--json")
        .env("VWED_LOG", "error")
        .output()
        .expect("run vwed");
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(text.lines().last().unwrap_or("null")).expect("JSON");
    (out.status.success(), report)
}

#[test]
fn demo_bench_runs_to_the_end() {
    let (ok, r) = run_demo("demo_bench.json");
    assert!(ok, "{r}");
    assert_eq!(r["code"], 1003);
    assert!(r["log"].to_string().contains("bench sum 3"), "{r}");
}

#[test]
fn demo_while_break_leaves_after_three_rounds() {
    let (ok, r) = run_demo("example_while_break.json");
    assert!(ok, "{r}");
    assert!(
        r["log"]
            .to_string()
            .contains("left the loop after 3 rounds"),
        "{r}"
    );
}

/// The cache counter demo is example 08 with an id and a label; its behaviour across runs and
/// restarts is tested by the scheduler's tests on that example file.
#[test]
fn demo_cache_counter_is_example_08() {
    let demo: serde_json::Value =
        serde_json::from_str(&read("assets/demo/example_cache_counter.json")).unwrap();
    let example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("../shared/docs/wind-task-examples/08-cache-data.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(demo["detail"], example);
}
