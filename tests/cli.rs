//! The command line as users run it: `vwed check`, `vwed run` and `vwed bench` on real files,
//! with their exit codes and output formats, including bad input.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vwed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vwed"))
        .args(args)
        .env("VWED_LOG", "error")
        .output()
        .expect("run vwed")
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/docs/wind-task-examples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().expect("a JSON line")).expect("JSON")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A flow with a block RDS has that vwed does not run (a named Modbus instance, outside the
/// specification), in `dir`.
fn unsupported_flow(dir: &Path) -> PathBuf {
    let def = serde_json::json!({"id": "named-modbus", "label": "named-modbus", "detail": {
        "inputParams": [], "outputParams": [], "rootBlock": {"id": -1, "name": "-1",
        "blockType": "RootBp", "inputParams": {}, "children": {"default": [
            {"id": 1, "name": "b1", "blockType": "ModbusCommonReadNameBp",
             "inputParams": {}, "children": {}}]}}}});
    write(dir, "named-modbus.json", &def.to_string())
}

#[test]
fn check_passes_a_valid_flow_and_fails_unsupported_ones() {
    let ok = vwed(&["check", &example("04-while-break.json")]);
    assert!(ok.status.success(), "{ok:?}");
    let sites_and_robots = vwed(&["check", &example("01-serial-transport-site-lock.json")]);
    assert!(sites_and_robots.status.success(), "{sites_and_robots:?}");
    let sub_tasks = vwed(&["check", &example("07b-subtask-parent.json")]);
    assert!(sub_tasks.status.success(), "{sub_tasks:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = unsupported_flow(dir.path());
    let file = file.to_str().unwrap();
    let bad = vwed(&["check", file]);
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("ModbusCommonReadNameBp"))
        .expect("a diagnostic naming the block");
    // FILE: LABEL: bN (BlockType) ...: message
    assert!(line.starts_with(file), "{line}");
    assert!(line.contains(": named-modbus: b1"), "{line}");
    assert!(line.contains("not supported yet"), "{line}");
}

#[test]
fn check_reports_bad_files_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.json", "{ not json");
    let out = vwed(&["check", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not valid JSON"));
    let missing = vwed(&["check", "/no/such/file.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(vwed(&["check"]).status.code(), Some(2));
    assert_eq!(vwed(&["frobnicate"]).status.code(), Some(2));
    let expr = write(
        dir.path(),
        "expr.json",
        r#"{"rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp", "children": {"default": [
            {"id": 1, "name": "b1", "blockType": "PrintBp", "children": {},
             "inputParams": {"message": {"type": "Expression", "value": "1 +* 2"}}}]}}}"#,
    );
    let out = vwed(&["check", expr.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("b1 (PrintBp) message: error: expression `1 +* 2`"),
        "{text}"
    );
}

#[test]
fn run_prints_one_json_object_with_the_outcome() {
    let out = vwed(&["run", &example("04-while-break.json"), "--json"]);
    assert!(out.status.success(), "{out:?}");
    let r = stdout_json(&out);
    assert_eq!(r["status"], "finished");
    assert_eq!(r["code"], 1003);
    assert_eq!(r["variables"]["round"], 3);
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["log"].as_array().unwrap().len(), 4);
    assert_eq!(
        r["log"][3],
        r#"[PrintBp][b8]result: "left the loop after 3 rounds""#
    );
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("▶ b2 (WhileBp)"), "{progress}");
}

#[test]
fn run_takes_inputs_and_reports_failures() {
    let out = vwed(&[
        "run",
        &example("04-while-break.json"),
        "--json",
        "--input",
        "maxRounds=1",
    ]);
    assert_eq!(stdout_json(&out)["variables"]["round"], 1);
    let dir = tempfile::tempdir().unwrap();
    let throw = write(
        dir.path(),
        "throw.json",
        r#"{"label": "t", "detail": {"rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp",
          "children": {"default": [{"id": 1, "name": "b1", "blockType": "ThrowExceptionBp",
          "children": {}, "inputParams": {"message": {"type": "Simple", "value": "no"}}}]}}}}"#,
    );
    let out = vwed(&["run", throw.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r = stdout_json(&out);
    assert_eq!(
        (r["status"].as_str(), r["code"].as_i64()),
        (Some("failed"), Some(1004))
    );
    assert_eq!(r["error"], "[ThrowExceptionBp]:no");
    let interrupted = write(
        dir.path(),
        "bad.json",
        r#"{"label": "t", "detail": {"rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp",
          "children": {"default": [{"id": 1, "name": "b1", "blockType": "StringToJsonArrayBp",
          "children": {}, "inputParams": {"convertString": {"type": "Simple", "value": "{}"}}}]}}}}"#,
    );
    let out = vwed(&["run", interrupted.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r = stdout_json(&out);
    assert_eq!(
        (r["status"].as_str(), r["code"].as_i64()),
        (Some("failed"), Some(1006))
    );
    assert!(r["error"].as_str().unwrap().contains("StringToJsonArrayBp"));
}

#[test]
fn run_refuses_a_definition_with_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = unsupported_flow(dir.path());
    let out = vwed(&["run", file.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "no JSON for a run that never started"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported yet"));
    assert_eq!(vwed(&["run"]).status.code(), Some(2));
    assert_eq!(
        vwed(&["run", "x.json", "--input", "novalue"]).status.code(),
        Some(2)
    );
}

#[test]
fn bench_reports_its_figures() {
    let out = vwed(&["bench", "--tasks", "60", "--concurrency", "8", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let r = stdout_json(&out);
    for key in [
        "tasks",
        "seconds",
        "tasks_per_sec",
        "commit_rate_per_sec",
        "rss_start_bytes",
        "rss_end_bytes",
        "rss_peak_bytes",
    ] {
        assert!(r[key].as_f64().is_some(), "{key} missing in {r}");
    }
    assert!(r["submit_to_start_ms"]["p99"].as_f64().is_some());
    assert_eq!(r["tasks"], 60);
    assert_eq!(r["ended_in_store"], 60);
    assert_eq!(vwed(&["bench", "--tasks", "x"]).status.code(), Some(2));
}

#[test]
fn run_example_06_behaves_as_its_readme_says() {
    // Default input NO-SUCH-SITE: the failure is caught, then ThrowExceptionBp ends it 1004.
    let out = vwed(&["run", &example("06-try-catch-throw.json"), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report = stdout_json(&out);
    assert_eq!(report["code"], 1004);
    assert_eq!(
        report["error"],
        "[ThrowExceptionBp]:giving up: site NO-SUCH-SITE does not exist"
    );
    // PICK-01 is a demo site: it is marked filled and the run ends 1003.
    let out = vwed(&[
        "run",
        &example("06-try-catch-throw.json"),
        "--input",
        "siteId=PICK-01",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let report = stdout_json(&out);
    let log = report["log"].to_string();
    assert!(
        log.contains("site marked filled") && log.contains("done"),
        "{log}"
    );
}

#[test]
fn run_takes_sites_and_reports_a_run_stalled_on_a_site() {
    let dir = tempfile::tempdir().unwrap();
    let flow = r#"{"label": "take", "detail": {"inputParams": [], "outputParams": [],
        "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp", "inputParams": {},
        "children": {"default": [{"id": 1, "name": "b1", "blockType": "GetIdleSiteBp",
            "children": {}, "inputParams": {
                "groupName": {"type": "Simple", "value": "Q"},
                "lock": {"type": "Simple", "value": "true"}}}]}}}}"#;
    let def = write(dir.path(), "take.json", flow);
    let def = def.to_str().unwrap();
    // The demo sites have no group Q: nothing could ever free one.
    let out = vwed(&["run", def]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stalled") && err.contains("b1"), "{err}");
    // With a site of group Q it takes it.
    let sites = write(
        dir.path(),
        "sites.json",
        r#"[{"siteId": "Q-1", "groupName": "Q"}]"#,
    );
    let out = vwed(&["run", def, "--sites", sites.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout_json(&out)["outputs"]["b1"]["siteId"], "Q-1");
    // A bad sites file is named.
    let bad = write(dir.path(), "bad.json", r#"[{"siteId": ""}]"#);
    let out = vwed(&["run", def, "--sites", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json: site 0: siteId"), "{err}");
    let out = vwed(&["run", def, "--sites"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn run_drives_the_configured_simulated_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let fast = write(
        dir.path(),
        "fast.toml",
        "[fleet]\nspeed_m_per_s = 100\noperation_ms = 0\n",
    );
    let fast = fast.to_str().unwrap();
    let out = vwed(&[
        "run",
        &example("01-serial-transport-site-lock.json"),
        "--config",
        fast,
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let report = stdout_json(&out);
    assert_eq!(report["outputs"]["b4"]["selectedAgvId"], "sim-01");
    assert_eq!(
        report["stateDescription"],
        r#"{"from":"PICK-01","to":"DROP-01"}"#
    );
    let bad = write(dir.path(), "bad.toml", "[fleet]\nrobots = 500\n");
    let out = vwed(&[
        "run",
        &example("04-while-break.json"),
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fleet.robots"), "{err}");
}
