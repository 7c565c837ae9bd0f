//! The RDS-compatible routes (spec §5) as an RDS client sees them: the real server on
//! 127.0.0.1:0, raw HTTP/1.1, every answer a `{code, msg, data}` envelope with HTTP 200.

mod support;

use serde_json::{json, Value};
use support::{config, definition, delay_def, Server};

/// An RDS call: HTTP 200 always, the envelope's code and the whole envelope.
fn rds(s: &Server, method: &str, path: &str, body: Option<Value>) -> (i64, Value) {
    let (http, out) = s.json(method, path, body);
    assert_eq!(http, 200, "{method} {path}: {out}");
    (out["code"].as_i64().expect("an envelope code"), out)
}

fn save_def(s: &Server, def: Value) -> Value {
    let (code, out) = rds(
        s,
        "POST",
        "/api/create-taskdef/createOrUpdateTaskDef",
        Some(def),
    );
    assert_eq!(code, 200, "{out}");
    out
}

fn slow_order(s: &Server, record: &str) {
    let body = json!({"taskLabel": "slow", "taskRecordId": record,
        "inputParams": "{\"ms\": \"60000\"}"});
    let (code, out) = rds(s, "POST", "/api/set-order", Some(body));
    assert_eq!(code, 200, "{out}");
    s.wait_status(record, "running");
}

fn query_one(s: &Server, record: &str) -> Value {
    let body = json!({"currentPage": 1, "pageSize": 10, "queryParam": {"taskRecordId": record}});
    let (code, out) = rds(s, "POST", "/api/queryWindTask", Some(body));
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["data"]["totalCount"], 1, "{out}");
    out["data"]["pageList"][0].clone()
}

#[test]
fn an_rds_client_orders_queries_and_stops_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    save_def(&s, delay_def("slow"));
    let body = json!({"taskId": "slow", "taskRecordId": "mes-1",
        "inputParams": "{\"ms\": \"60000\"}", "priority": 3});
    let (code, out) = rds(&s, "POST", "/api/set-order", Some(body));
    assert_eq!((code, out["msg"].as_str()), (200, Some("SUCCESS")), "{out}");
    assert_eq!(out["data"]["taskRecordId"], "mes-1");
    let rec = query_one(&s, "mes-1");
    assert_eq!(
        rec["status"], 1000,
        "queued or running both show 1000: {rec}"
    );
    assert_eq!(
        (rec["defLabel"].as_str(), rec["priority"].as_i64()),
        (Some("slow"), Some(3))
    );
    s.wait_status("mes-1", "running");
    let (code, out) = rds(
        &s,
        "POST",
        "/api/queryTaskRecordById",
        Some(json!({"taskId": "mes-1"})),
    );
    assert_eq!(code, 200);
    let row: Value = serde_json::from_str(out["data"].as_str().expect("a JSON string")).unwrap();
    assert_eq!(
        (row["def_label"].as_str(), row["status"].as_i64()),
        (Some("slow"), Some(1000))
    );
    let (code, out) = rds(
        &s,
        "POST",
        "/api/queryBlocksByTaskId",
        Some(json!({"taskRecordId": "mes-1"})),
    );
    assert_eq!(
        (code, out["data"]["taskStatus"].as_i64()),
        (200, Some(1000)),
        "{out}"
    );
    let blocks = out["data"]["blockList"].as_array().unwrap();
    assert!(blocks.iter().any(|b| b["blockName"] == "DelayBp"), "{out}");

    let (code, _) = rds(
        &s,
        "POST",
        "/api/stop-task",
        Some(json!({"releaseSite": 2, "taskRecordId": "mes-1"})),
    );
    assert_eq!(code, 9022);
    let (code, out) = rds(
        &s,
        "POST",
        "/api/stop-task",
        Some(json!({"releaseSite": 1})),
    );
    assert_eq!(code, 9000);
    assert!(out["msg"].as_str().unwrap().contains("cannot both be null"));
    let (code, out) = rds(
        &s,
        "POST",
        "/api/stop-task",
        Some(json!({"releaseSite": 1, "taskRecordId": "mes-1"})),
    );
    assert_eq!((code, out["msg"].as_str()), (200, Some("Success")), "{out}");
    assert_eq!(query_one(&s, "mes-1")["status"], 1001);
    assert!(!query_one(&s, "mes-1")["endedOn"]
        .as_str()
        .unwrap()
        .is_empty());
    let (code, out) = rds(
        &s,
        "POST",
        "/api/stop-task",
        Some(json!({"releaseSite": 0, "taskRecordId": "nope"})),
    );
    assert_eq!(code, 9000);
    assert!(
        out["msg"]
            .as_str()
            .unwrap()
            .contains("Incorrect taskRecordId"),
        "{out}"
    );
    let (_, out) = rds(
        &s,
        "POST",
        "/api/queryTaskRecordById",
        Some(json!({"taskId": "nope"})),
    );
    assert_eq!(out["code"], 9020);
    s.stop();
}

#[test]
fn stop_task_by_label_stops_every_active_run_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    save_def(&s, delay_def("slow"));
    slow_order(&s, "a");
    slow_order(&s, "b");
    let (code, out) = rds(
        &s,
        "POST",
        "/api/stop-task",
        Some(json!({"releaseSite": 0, "taskLabel": "slow"})),
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(query_one(&s, "a")["status"], 1001);
    assert_eq!(query_one(&s, "b")["status"], 1001);
    let (code, out) = rds(
        &s,
        "POST",
        "/api/stop-task",
        Some(json!({"releaseSite": 0, "taskLabel": "slow"})),
    );
    assert_eq!(
        (code, out["msg"].as_str()),
        (9000, Some("No running slow tasks"))
    );
    slow_order(&s, "c");
    let body = json!({"releaseSite": 1, "stopTaskList": [{"taskId": "slow", "taskRecordId": "c"}]});
    let (code, out) = rds(&s, "POST", "/api/manual-end", Some(body));
    assert_eq!(code, 200, "{out}");
    assert_eq!(query_one(&s, "c")["status"], 1003);
    s.stop();
}

#[test]
fn set_order_is_idempotent_on_the_record_id_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    save_def(&s, delay_def("d"));
    let body = json!({"taskLabel": "d", "taskRecordId": "o-1", "inputParams": {"ms": "10"}});
    let (code, first) = rds(&s, "POST", "/api/set-order", Some(body.clone()));
    assert_eq!(
        (code, first["data"]["created"].as_bool()),
        (200, Some(true)),
        "{first}"
    );
    let (code, again) = rds(&s, "POST", "/api/set-order", Some(body));
    assert_eq!(
        (code, again["data"]["created"].as_bool()),
        (200, Some(false)),
        "{again}"
    );
    let changed = json!({"taskLabel": "d", "taskRecordId": "o-1", "priority": 9});
    let (code, out) = rds(&s, "POST", "/api/set-order", Some(changed));
    assert_eq!(code, -1);
    assert!(
        out["msg"]
            .as_str()
            .unwrap()
            .starts_with("Task Instance Id Repeat"),
        "{out}"
    );
    let (code, out) = rds(
        &s,
        "POST",
        "/api/set-order",
        Some(json!({"taskLabel": "missing"})),
    );
    assert_eq!(code, -1);
    assert!(out["msg"]
        .as_str()
        .unwrap()
        .starts_with("No Task Definition Was Queried"));
    let (code, out) = rds(
        &s,
        "POST",
        "/api/set-order",
        Some(json!({"taskId": "", "taskLabel": ""})),
    );
    assert_eq!(code, -1);
    assert!(out["msg"]
        .as_str()
        .unwrap()
        .starts_with("TaskId And TaskLabel"));
    let (code, _) = rds(&s, "POST", "/api/set-order", Some(json!({"taskLabel": 7})));
    assert_eq!(code, -1);
    let (code, out) = rds(
        &s,
        "POST",
        "/api/set-order",
        Some(json!({"taskLabel": "d", "inputParams": "[1"})),
    );
    assert_eq!(code, -1);
    assert!(
        out["msg"].as_str().unwrap().contains("inputParams"),
        "{out}"
    );
    let (http, text) = s.call("POST", "/api/set-order", Some("{not json"), &[]);
    let out: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((http, out["code"].as_i64()), (200, Some(-1)), "{out}");
    assert!(out["msg"].as_str().unwrap().contains("not valid JSON"));
    s.wait_status("o-1", "finished");
    assert_eq!(query_one(&s, "o-1")["status"], 1003);
    let rec = Some(json!({"taskRecordId": "o-1"}));
    let (code, out) = rds(&s, "POST", "/api/queryBlocksByTaskRecordId", rec.clone());
    assert_eq!(code, 200, "{out}");
    let blocks: Value = serde_json::from_str(out["data"].as_str().unwrap()).unwrap();
    assert_eq!(blocks.as_array().unwrap().len(), 4, "{blocks}");
    assert!(blocks[0]["block_name"].is_string(), "{blocks}");
    let (code, out) = rds(&s, "POST", "/api/queryLogsByTaskRecordId", rec);
    assert_eq!(code, 200, "{out}");
    let logs: Value = serde_json::from_str(out["data"].as_str().unwrap()).unwrap();
    assert_eq!(logs.as_array().unwrap().len(), 2, "{logs}");
    assert!(
        logs[0]["message"].as_str().unwrap().contains("start"),
        "{logs}"
    );
    let nope = Some(json!({"taskRecordId": "nope"}));
    assert_eq!(
        rds(&s, "POST", "/api/queryLogsByTaskRecordId", nope).0,
        9020
    );
    s.stop();
}

#[test]
fn suspend_start_and_restart_follow_the_run_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    save_def(&s, delay_def("slow"));
    let (code, out) = rds(&s, "GET", "/api/suspend-task/slow/nope", None);
    assert_eq!(code, 9000);
    assert!(out["msg"].as_str().unwrap().contains("nope"));
    assert_eq!(rds(&s, "GET", "/api/start-task/slow/nope", None).0, 9000);
    assert_eq!(rds(&s, "GET", "/api/restart-task/slow/nope", None).0, 9000);
    slow_order(&s, "r");
    let (code, out) = rds(&s, "GET", "/api/restart-task/slow/r", None);
    assert_eq!(code, 9000, "retry is for interrupted runs: {out}");
    assert!(
        out["msg"].as_str().unwrap().contains("cannot retry"),
        "{out}"
    );
    let (code, out) = rds(&s, "GET", "/api/suspend-task/slow/r", None);
    assert_eq!(code, 200, "{out}");
    assert_eq!(query_one(&s, "r")["status"], 1002);
    assert_eq!(rds(&s, "GET", "/api/start-task/slow/r", None).0, 200);
    s.wait_status("r", "running");
    rds(
        &s,
        "POST",
        "/api/stop-task",
        Some(json!({"releaseSite": 0, "taskRecordId": "r"})),
    );
    assert_eq!(rds(&s, "GET", "/api/start-task/slow/r", None).0, 9000);
    assert_eq!(
        s.json("GET", "/api/Suspend-task/slow/r", None).0,
        404,
        "paths are case-sensitive"
    );
    s.stop();
}

#[test]
fn set_task_priority_answers_9040_9041_and_9042() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    save_def(&s, delay_def("slow"));
    let path = "/api/setTaskPriority";
    assert_eq!(rds(&s, "POST", path, Some(json!({}))).0, 9040);
    assert_eq!(
        rds(
            &s,
            "POST",
            path,
            Some(json!({"taskRecordIds": [], "priority": 2}))
        )
        .0,
        9040
    );
    assert_eq!(
        rds(&s, "POST", path, Some(json!({"taskRecordIds": ["x"]}))).0,
        9040
    );
    assert_eq!(
        rds(
            &s,
            "POST",
            path,
            Some(json!({"taskRecordIds": "x", "priority": 2}))
        )
        .0,
        9040
    );
    assert_eq!(
        rds(
            &s,
            "POST",
            path,
            Some(json!({"taskRecordIds": ["x"], "priority": "high"}))
        )
        .0,
        9040
    );
    let (http, text) = s.call("POST", path, Some("[oops"), &[]);
    assert_eq!(http, 200);
    assert!(text.contains("9040"), "{text}");
    assert_eq!(
        rds(
            &s,
            "POST",
            path,
            Some(json!({"taskRecordIds": ["x"], "priority": 2}))
        )
        .0,
        9041
    );
    slow_order(&s, "p");
    let (code, out) = rds(
        &s,
        "POST",
        path,
        Some(json!({"taskRecordIds": ["p"], "priority": 8})),
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(query_one(&s, "p")["priority"], 8);
    rds(
        &s,
        "POST",
        "/api/stop-task",
        Some(json!({"releaseSite": 0, "taskRecordId": "p"})),
    );
    assert_eq!(
        rds(
            &s,
            "POST",
            path,
            Some(json!({"taskRecordIds": ["p"], "priority": 2}))
        )
        .0,
        9042
    );
    s.stop();
}

#[test]
fn create_or_update_task_def_versions_and_refuses_invalid_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let created = save_def(&s, delay_def("d1"));
    assert_eq!(created["data"]["version"], 1, "{created}");
    let mut changed = delay_def("d1");
    changed["remark"] = json!("second");
    let updated = save_def(&s, changed);
    assert_eq!(updated["data"]["version"], 2, "{updated}");
    let (code, out) = rds(
        &s,
        "POST",
        "/api/queryTaskDefById",
        Some(json!({"id": "d1"})),
    );
    assert_eq!(code, 200, "{out}");
    let row: Value = serde_json::from_str(out["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        (row["label"].as_str(), row["version"].as_i64()),
        (Some("d1"), Some(2))
    );
    assert_eq!(row["periodic_task"], 0, "snake_case keys: {row}");
    assert!(row["detail"].is_string(), "{row}");
    assert_eq!(
        rds(
            &s,
            "POST",
            "/api/queryTaskDefById",
            Some(json!({"id": "zz"}))
        )
        .0,
        9020
    );
    assert_eq!(
        rds(&s, "POST", "/api/queryTaskDefById", Some(json!({"id": 5}))).0,
        9000
    );

    let mut other = delay_def("d2");
    other["label"] = json!("d1");
    assert_eq!(
        rds(
            &s,
            "POST",
            "/api/create-taskdef/createOrUpdateTaskDef",
            Some(other)
        )
        .0,
        9019
    );
    let bad = definition(
        "d3",
        json!([{"id": 1, "name": "b1", "blockType": "NoSuchBp"}]),
    );
    let (code, out) = rds(
        &s,
        "POST",
        "/api/create-taskdef/createOrUpdateTaskDef",
        Some(bad),
    );
    assert_eq!(code, 9000);
    assert!(
        out["data"]
            .to_string()
            .contains("unknown block type NoSuchBp"),
        "{out}"
    );
    assert_eq!(
        rds(
            &s,
            "POST",
            "/api/queryTaskDefById",
            Some(json!({"id": "d3"}))
        )
        .0,
        9020
    );
    let (code, _) = rds(
        &s,
        "POST",
        "/api/create-taskdef/createOrUpdateTaskDef",
        Some(json!([1])),
    );
    assert_eq!(code, 9000);
    s.stop();
}

#[test]
fn query_wind_task_pages_filters_and_checks_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    save_def(&s, delay_def("d"));
    for i in 0..5 {
        let body = json!({"taskId": "d", "taskRecordId": format!("t{i}")});
        assert_eq!(rds(&s, "POST", "/api/set-order", Some(body)).0, 200);
    }
    for i in 0..5 {
        s.wait_status(&format!("t{i}"), "finished");
    }
    let ids = |out: &Value| -> Vec<String> {
        out["data"]["pageList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let q = |page: i64, desc: bool| {
        json!({"currentPage": page, "pageSize": 2,
        "queryParam": {"defLabel": "d", "status": 1003, "isOrderDesc": desc}})
    };
    let (code, out) = rds(&s, "POST", "/api/queryWindTask", Some(q(1, true)));
    assert_eq!(code, 200, "{out}");
    assert_eq!(
        (
            out["data"]["totalCount"].as_i64(),
            out["data"]["totalPage"].as_i64()
        ),
        (Some(5), Some(3))
    );
    assert_eq!(ids(&out), ["t4", "t3"]);
    let (_, out) = rds(&s, "POST", "/api/queryWindTask", Some(q(3, true)));
    assert_eq!(ids(&out), ["t0"]);
    let (_, out) = rds(&s, "POST", "/api/queryTaskRecord", Some(q(1, false)));
    assert_eq!(ids(&out), ["t0", "t1"]);
    let (_, out) = rds(
        &s,
        "POST",
        "/api/queryWindTask",
        Some(json!({"queryParam": {"status": 1001}})),
    );
    assert_eq!(out["data"]["totalCount"], 0);
    let bad = [
        json!({"pageSize": 0}),
        json!({"pageSize": 501}),
        json!({"pageSize": "x"}),
        json!({"queryParam": 3}),
        json!({"queryParam": {"startDate": "yesterday"}}),
        json!({"queryParam": {"taskId": 4}}),
    ];
    for body in bad {
        let (code, out) = rds(&s, "POST", "/api/queryWindTask", Some(body.clone()));
        assert_eq!(code, 9000, "{body}: {out}");
    }
    let window = json!({"queryParam": {"startDate": "2000-01-01 00:00:00", "endDate": "2999-01-01 00:00:00"}});
    let (_, out) = rds(&s, "POST", "/api/queryWindTask", Some(window));
    assert_eq!(out["data"]["totalCount"], 5, "{out}");
    s.stop();
}

#[test]
fn rds_mutations_including_the_get_ones_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.tokens = vec!["a-long-enough-secret-token".into()];
    let s = Server::start(&c);
    let ok = [("Authorization", "Bearer a-long-enough-secret-token")];
    for action in ["suspend-task", "start-task", "restart-task"] {
        let path = format!("/api/{action}/d/r");
        assert_eq!(s.call("GET", &path, None, &[]).0, 401, "{path}");
        let (http, text) = s.call("GET", &path, None, &ok);
        assert_eq!(http, 200);
        assert!(
            text.contains("9000"),
            "authorized, then an unknown record: {text}"
        );
    }
    let body = Some(r#"{"taskLabel": "demo_bench"}"#);
    assert_eq!(s.call("POST", "/api/set-order", body, &[]).0, 401);
    let (http, text) = s.call("POST", "/api/queryWindTask", Some("{}"), &[]);
    assert_eq!(http, 401, "every POST needs the token, queries too: {text}");
    assert_eq!(s.call("POST", "/api/queryWindTask", Some("{}"), &ok).0, 200);
    s.stop();
}

#[test]
fn batch_export_task_writes_a_task_file_rds_can_import() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let body = r#"["demo-bench", "demo-while-break"]"#;
    let (status, raw) = s.raw_with_headers("POST", "/api/windTaskdef/batchExportTask", Some(body));
    assert_eq!(status, 200);
    assert!(raw.contains("application/octet-stream"), "{raw}");
    assert!(raw.contains("taskDef.task"), "{raw}");
    let text = raw.split_once("\r\n\r\n").unwrap().1;
    let file: Value = serde_json::from_str(text).unwrap();
    let defs = file.as_array().unwrap();
    assert_eq!(defs.len(), 2);
    assert!(
        defs.iter().all(|d| d["detail"].is_string()),
        "detail is a JSON string"
    );
    let (code, _) = rds(
        &s,
        "POST",
        "/api/windTaskdef/batchExportTask",
        Some(json!(["nope"])),
    );
    assert_eq!(code, 9000);
    let (code, _) = rds(
        &s,
        "POST",
        "/api/windTaskdef/batchExportTask",
        Some(json!({"id": 1})),
    );
    assert_eq!(code, 9000);
    s.stop();
}

/// The demo sites through the RDS work-site routes: query with 0/1 filters, try-lock with the
/// skipped sites named, release by record, fill/empty/content, enable/disable, and the codes
/// for bad values and unknown sites (all or nothing).
#[test]
fn work_sites_routes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let site_ids = |out: &Value| -> Vec<String> {
        out["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["siteId"].as_str().unwrap().to_string())
            .collect()
    };
    let (code, out) = rds(
        &s,
        "POST",
        "/api/work-sites/sites",
        Some(json!({"groupName": "A", "filled": 1})),
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(site_ids(&out), ["A-01", "A-02", "A-03", "A-04", "A-05"]);
    assert_eq!(
        (&out["data"][0]["filled"], &out["data"][0]["locked"]),
        (&json!(1), &json!(0))
    );
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/sites",
        Some(json!({"filled": 2})),
    );
    assert_eq!(code, 9023);

    // Try-lock: a site another owner holds and a disabled one are skipped and named.
    s.json(
        "POST",
        "/api/sites/A-02/lock",
        Some(json!({"lockedBy": "other"})),
    );
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/disableWorksite",
        Some(json!({"workSiteIds": ["A-03"]})),
    );
    assert_eq!(code, 200);
    let body = json!({"siteIdList": ["A-01", "A-02", "A-03"], "lockedBy": "rec-1"});
    let (code, out) = rds(&s, "POST", "/api/work-sites/lockedSites", Some(body));
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["data"]["locked"], json!(["A-01"]));
    assert_eq!(
        out["data"]["skipped"][0],
        json!({"siteId": "A-02", "reason": "locked by other"})
    );
    assert_eq!(
        out["data"]["skipped"][1],
        json!({"siteId": "A-03", "reason": "disabled"})
    );
    let (_, out) = rds(
        &s,
        "POST",
        "/api/work-sites/sites",
        Some(json!({"lockedBy": "rec-1"})),
    );
    assert_eq!(site_ids(&out), ["A-01"]);
    let (code, out) = rds(
        &s,
        "POST",
        "/api/work-sites/unLockedSitesByTaskRecordId",
        Some(json!({"taskRecordId": "rec-1"})),
    );
    assert_eq!((code, &out["data"]), (200, &json!(["A-01"])));
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/unLockedSites",
        Some(json!(["A-02"])),
    );
    assert_eq!(code, 200, "an unconditional unlock");
    let (_, out) = rds(
        &s,
        "POST",
        "/api/work-sites/sites",
        Some(json!({"locked": 1})),
    );
    assert_eq!(out["data"], json!([]));

    // Fill state and content.
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/setWorksiteContent",
        Some(json!({"workSiteIds": ["B-01"], "content": "crate"})),
    );
    assert_eq!(code, 200);
    let (_, b1) = s.json("GET", "/api/sites/B-01", None);
    assert_eq!(
        (&b1["filled"], &b1["content"]),
        (&json!(true), &json!("crate"))
    );
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/worksiteUnFiled",
        Some(json!({"workSiteIds": ["B-01"]})),
    );
    assert_eq!(code, 200);
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/updateFilledStatus",
        Some(json!({"siteId": "B-02", "filled": 1})),
    );
    assert_eq!(code, 200);
    let (_, out) = rds(
        &s,
        "POST",
        "/api/work-sites/sites",
        Some(json!({"groupName": "B", "filled": 1})),
    );
    assert_eq!(site_ids(&out), ["B-02"]);

    // Bad values and unknown sites; an unknown id in a list writes nothing.
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/updateFilledStatus",
        Some(json!({"siteId": "B-02", "filled": 5})),
    );
    assert_eq!(code, 9022);
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/updateFilledStatus",
        Some(json!({"siteId": "nope", "filled": 1})),
    );
    assert_eq!(code, 9024);
    let (code, out) = rds(
        &s,
        "POST",
        "/api/work-sites/worksiteFilled",
        Some(json!({"workSiteIds": ["B-03", "nope"]})),
    );
    assert_eq!(code, 9024, "{out}");
    let (_, b3) = s.json("GET", "/api/sites/B-03", None);
    assert_eq!(
        b3["filled"], false,
        "nothing of the failed list was written"
    );
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/enableWorksite",
        Some(json!({"workSiteIds": []})),
    );
    assert_eq!(code, 9000);
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/lockedSites",
        Some(json!({"siteIdList": ["A-01"]})),
    );
    assert_eq!(code, 9000, "lockedBy is required");
    let (code, _) = rds(
        &s,
        "POST",
        "/api/work-sites/unLockedSites",
        Some(json!({"ids": 1})),
    );
    assert_eq!(code, 9000);
    // Every change above is in the site log, by the RDS caller.
    let (_, log) = s.json("GET", "/api/sites/A-03/log", None);
    assert_eq!(log["items"][0]["action"], "disable");
    assert_eq!(log["items"][0]["who"], "rds-api");
    s.stop();
}
