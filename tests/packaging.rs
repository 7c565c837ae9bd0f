//! Packaging files cannot rot: the systemd unit keeps its keys, `Cross.toml` names both release
//! targets, the release script ships what the README promises, and every demo definition under
//! `assets/demo/` loads and compiles with no errors (the small ones also run to the end).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use vwed::engine::{self, code, EffectKind, Event, Host, Outcome, Record, RunState};
use vwed::flow::{compile, inputs, load, model::Flow};
use vwed::value::Map;

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

/// The smallest host a run needs: a clock moved by hand and an in-memory data cache.
#[derive(Default)]
struct TestHost {
    now: i64,
    ids: u64,
    cache: HashMap<String, String>,
}

impl Host for TestHost {
    fn now_ms(&self) -> i64 {
        self.now
    }
    fn local_time(&self, ms: i64) -> String {
        format!("t{ms}")
    }
    fn uuid(&mut self) -> String {
        self.ids += 1;
        format!("00000000-0000-4000-8000-{:012}", self.ids)
    }
    fn cache_get(&self, key: &str) -> Option<String> {
        self.cache.get(key).cloned()
    }
    fn cache_set(&mut self, key: &str, value: &str) -> Result<(), String> {
        self.cache.insert(key.into(), value.into());
        Ok(())
    }
    fn cache_delete(&mut self, key: &str) -> bool {
        self.cache.remove(key).is_some()
    }
}

/// Runs a flow to its end, firing timers in order; returns the end code and the log messages.
fn run_to_end(flow: &Flow, host: &mut TestHost) -> (i32, Vec<String>) {
    let task_inputs = inputs::build(&flow.inputs, &Map::new()).values;
    let mut run = RunState::new("r1".into(), false, task_inputs, Map::new());
    let mut pending = Vec::new();
    let mut logs = Vec::new();
    let mut event = Event::Start;
    for _ in 0..1_000 {
        let out = engine::step(flow, &mut run, event, host);
        pending.retain(|e: &engine::Effect| !out.cancelled.contains(&e.token));
        pending.extend(out.effects);
        logs.extend(out.records.into_iter().filter_map(|r| match r {
            Record::Log { message, .. } => Some(message),
            _ => None,
        }));
        event = match out.outcome.expect("a step reports an outcome") {
            Outcome::Ended(ended) => return (ended.code, logs),
            Outcome::More => Event::Continue,
            Outcome::Waiting => {
                let next = (0..pending.len())
                    .min_by_key(|&i| match pending[i].kind {
                        EffectKind::Timer { until_ms } => until_ms,
                    })
                    .expect("waiting with no pending effect");
                let effect = pending.remove(next);
                let EffectKind::Timer { until_ms } = effect.kind;
                host.now = host.now.max(until_ms);
                Event::Woke {
                    fiber: effect.fiber,
                    token: effect.token,
                }
            }
            other => panic!("unexpected outcome {other:?}; logs {logs:#?}"),
        };
    }
    panic!("run did not end; logs {logs:#?}");
}

fn demo_flow(file: &str) -> Flow {
    compile_file(&root().join("assets/demo").join(file))
        .remove(0)
        .2
}

#[test]
fn demo_bench_runs_to_the_end() {
    let (code, logs) = run_to_end(&demo_flow("demo_bench.json"), &mut TestHost::default());
    assert_eq!(code, code::FINISHED, "{logs:#?}");
    assert!(logs.iter().any(|l| l.contains("bench sum 3")), "{logs:#?}");
}

#[test]
fn demo_while_break_leaves_after_three_rounds() {
    let (code, logs) = run_to_end(
        &demo_flow("example_while_break.json"),
        &mut TestHost::default(),
    );
    assert_eq!(code, code::FINISHED, "{logs:#?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("left the loop after 3 rounds")),
        "{logs:#?}"
    );
}

#[test]
fn demo_cache_counter_resets_on_the_third_run() {
    let flow = demo_flow("example_cache_counter.json");
    let mut host = TestHost::default();
    let mut all = Vec::new();
    for _ in 0..4 {
        let (code, logs) = run_to_end(&flow, &mut host);
        assert_eq!(code, code::FINISHED, "{logs:#?}");
        all.extend(logs);
    }
    let shown = all.join("\n");
    for n in [
        "run number 1",
        "run number 2",
        "run number 3",
        "counter reset",
    ] {
        assert!(shown.contains(n), "{n} missing from {shown}");
    }
    assert_eq!(shown.matches("run number 1").count(), 2, "{shown}");
}
