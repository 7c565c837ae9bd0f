//! `/api/sites` against the real server: demo sites on a fresh data dir, create/replace/delete,
//! compare-and-set lock and unlock, fill/empty, the change log, filters and paging, and the bad
//! inputs (malformed JSON, unknown fields, oversized fields and batches, unknown ids).

mod support;

use serde_json::{json, Value};
use support::{config, definition, take_site_def, Server};

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["siteId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn demo_sites_are_loaded_once_on_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let s = Server::start(&cfg);
    let (code, all) = s.json("GET", "/api/sites", None);
    assert_eq!(code, 200, "{all}");
    assert_eq!(all["total"], 15);
    let (_, a) = s.json("GET", "/api/sites?groupName=A&filled=true", None);
    assert_eq!(ids(&a), ["A-01", "A-02", "A-03", "A-04", "A-05"]);
    // Deleting every site does not bring the demo sites back at the next start.
    for id in ids(&all) {
        let (code, out) = s.json("DELETE", &format!("/api/sites/{id}"), None);
        assert_eq!(code, 200, "{out}");
    }
    s.stop();
    let s = Server::start(&cfg);
    let (_, all) = s.json("GET", "/api/sites", None);
    assert_eq!(all["total"], 0, "{all}");
    s.stop();
}

#[test]
fn create_lock_fill_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    // Layout fields are text, as in RDS; numbers are accepted and kept as text.
    let site = json!({"siteId": "X-1", "groupName": "X", "attributes": {"w": 3}, "level": 2,
        "rowNum": "R7"});
    let (code, out) = s.json("POST", "/api/sites", Some(site.clone()));
    assert_eq!(code, 201, "{out}");
    assert_eq!(
        (&out["attributes"]["w"], &out["level"], &out["rowNum"]),
        (&json!(3), &json!("2"), &json!("R7"))
    );
    let (code, out) = s.json("POST", "/api/sites", Some(site));
    assert_eq!(code, 409, "an existing id is not created twice: {out}");

    let (code, out) = s.json(
        "POST",
        "/api/sites/X-1/lock",
        Some(json!({"lockedBy": "mes"})),
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(
        (&out["locked"], &out["lockedBy"]),
        (&json!(true), &json!("mes"))
    );
    let (code, out) = s.json(
        "POST",
        "/api/sites/X-1/lock",
        Some(json!({"lockedBy": "wms"})),
    );
    assert_eq!(code, 409, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("locked by mes"),
        "{out}"
    );
    let (code, _) = s.json(
        "POST",
        "/api/sites/X-1/unlock",
        Some(json!({"lockedBy": "wms"})),
    );
    assert_eq!(code, 409, "only the owner's lock is released by name");
    let (code, out) = s.json("DELETE", "/api/sites/X-1", None);
    assert_eq!(code, 409, "a locked site is not deleted: {out}");
    // A PUT keeps the lock.
    let (code, out) = s.json("PUT", "/api/sites/X-1", Some(json!({"groupName": "Y"})));
    assert_eq!(code, 200, "{out}");
    assert_eq!(
        (&out["groupName"], &out["lockedBy"]),
        (&json!("Y"), &json!("mes"))
    );
    let (code, out) = s.json(
        "POST",
        "/api/sites/X-1/unlock",
        Some(json!({"lockedBy": "mes"})),
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["locked"], false);

    let (_, out) = s.json(
        "POST",
        "/api/sites/X-1/fill",
        Some(json!({"content": "box"})),
    );
    assert_eq!(
        (&out["filled"], &out["content"]),
        (&json!(true), &json!("box"))
    );
    let (_, out) = s.json("POST", "/api/sites/X-1/empty", None);
    assert_eq!(
        (&out["filled"], &out["content"]),
        (&json!(false), &json!(""))
    );

    let (code, log) = s.json("GET", "/api/sites/X-1/log", None);
    assert_eq!(code, 200, "{log}");
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["create", "lock", "update", "unlock", "fill", "empty"]
    );
    assert_eq!(log["items"][0]["who"], "api");
    s.stop();
}

#[test]
fn batch_import_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let batch = json!([{"siteId": "N-1", "groupName": "N"}, {"siteId": "A-01", "groupName": "A2"}]);
    let (code, out) = s.json("POST", "/api/sites/import", Some(batch));
    assert_eq!(code, 200, "{out}");
    assert_eq!((&out["created"], &out["updated"]), (&json!(1), &json!(1)));
    // One bad site refuses the whole batch, naming its index and field.
    let long = "g".repeat(300);
    let bad = json!([{"siteId": "N-2"}, {"siteId": "N-3", "groupName": long}]);
    let (code, out) = s.json("POST", "/api/sites", Some(bad));
    assert_eq!(code, 400, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[1].groupName"),
        "{out}"
    );
    let (code, _) = s.json("GET", "/api/sites/N-2", None);
    assert_eq!(code, 404, "nothing of the bad batch was written");
    let dup = json!([{"siteId": "N-4"}, {"siteId": "N-4"}]);
    let (code, out) = s.json("POST", "/api/sites", Some(dup));
    assert_eq!(code, 400, "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("twice"),
        "{out}"
    );
    s.stop();
}

#[test]
fn filters_and_paging() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let (_, page) = s.json("GET", "/api/sites?limit=3&offset=2", None);
    assert_eq!(ids(&page), ["A-03", "A-04", "A-05"]);
    assert_eq!(page["more"], true);
    let (_, page) = s.json("GET", "/api/sites?orderDesc=true&limit=2", None);
    assert_eq!(ids(&page), ["PICK-02", "PICK-01"]);
    s.json(
        "POST",
        "/api/sites/B-02/lock",
        Some(json!({"lockedBy": "t9"})),
    );
    let (_, page) = s.json(
        "GET",
        "/api/sites?groupName=B&locked=false&filled=false",
        None,
    );
    assert_eq!(ids(&page), ["B-01", "B-03", "B-04", "B-05"]);
    let (_, page) = s.json("GET", "/api/sites?lockedBy=t9", None);
    assert_eq!(ids(&page), ["B-02"]);
    s.stop();
}

#[test]
fn bad_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        ("POST", "/api/sites", Some("{not json"), 400, "JSON"),
        (
            "POST",
            "/api/sites",
            Some(r#"{"siteId":"Z","color":1}"#),
            400,
            "color",
        ),
        (
            "POST",
            "/api/sites",
            Some(r#"{"groupName":"Z"}"#),
            400,
            "siteId",
        ),
        (
            "POST",
            "/api/sites",
            Some(r#"{"siteId":"Z","filled":"yes"}"#),
            400,
            "invalid type",
        ),
        ("POST", "/api/sites", Some("[]"), 422, "SITE_BATCH_MAX"),
        ("POST", "/api/sites", Some("7"), 400, "site object"),
        (
            "POST",
            "/api/sites/import",
            Some(r#"{"siteId":"Z"}"#),
            400,
            "array",
        ),
        (
            "PUT",
            "/api/sites/Z",
            Some(r#"{"siteId":"Q"}"#),
            400,
            "siteId",
        ),
        ("GET", "/api/sites/nope", None, 404, "nope"),
        ("GET", "/api/sites/nope/log", None, 404, "nope"),
        ("DELETE", "/api/sites/nope", None, 404, "nope"),
        ("POST", "/api/sites/nope/lock", None, 404, "nope"),
        ("POST", "/api/sites/A-01/explode", None, 404, "explode"),
        (
            "POST",
            "/api/sites/A-01/lock",
            Some(r#"{"lockedBy":5}"#),
            400,
            "lockedBy",
        ),
        ("POST", "/api/sites/A-01/fill", Some("[1]"), 400, "object"),
        ("GET", "/api/sites?filled=maybe", None, 400, "filled"),
        ("GET", "/api/sites?limit=0", None, 400, "limit"),
        ("GET", "/api/sites?color=red", None, 400, "color"),
        ("GET", "/api/sites/A-01/log?limit=x", None, 400, "limit"),
    ];
    for (method, path, body, want, needle) in cases {
        let (code, text) = s.call(method, path, *body, &[]);
        assert_eq!(code, *want, "{method} {path}: {text}");
        assert!(text.contains(needle), "{method} {path}: {text}");
    }
    let batch: Vec<Value> = (0..=vwed::limits::SITE_BATCH_MAX)
        .map(|i| json!({"siteId": format!("S{i}")}))
        .collect();
    let text = Value::Array(batch).to_string();
    assert!(text.len() < cfg_body_max(), "the batch fits the body limit");
    let (code, out) = s.call("POST", "/api/sites/import", Some(&text), &[]);
    assert_eq!(code, 422, "{out}");
    let (_, all) = s.json("GET", "/api/sites", None);
    assert_eq!(all["total"], 15, "nothing written");
    s.stop();
    // A body over the configured cap: 413 naming the limit (small, so the client's write
    // completes before the server answers).
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.http.body_bytes_max = 1024;
    let s = Server::start(&c);
    let body = json!({"siteId": "Z", "siteName": "x".repeat(2000)}).to_string();
    let (code, err) = s.call("POST", "/api/sites", Some(&body), &[]);
    assert_eq!(code, 413);
    assert!(err.contains("REQUEST_BODY_BYTES_MAX"), "{err}");
    assert_eq!(
        s.json("GET", "/api/sites/Z", None).0,
        404,
        "nothing written"
    );
    s.stop();
}

fn cfg_body_max() -> usize {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path()).http.body_bytes_max
}

/// A definition whose run waits `taskInputs.ms`, with release settings in `extra`.
fn delay_def(id: &str, extra: Value) -> Value {
    let mut def = definition(
        id,
        json!([{"id": 1, "name": "b1", "blockType": "DelayBp", "children": {},
            "inputParams": {"timeMillis": {"type": "Expression", "value": "taskInputs.ms"}}}]),
    );
    for (k, v) in extra.as_object().unwrap() {
        def[k] = v.clone();
    }
    def
}

/// Runs `def` as record `id` holding site `site` (locked through the API with the record id as
/// owner), ends it by `end` (`None`: let it finish), and says whether the site is still locked.
fn still_locked_after(s: &Server, def: &str, id: &str, site: &str, end: Option<&str>) -> bool {
    let ms = if end.is_some() { 60_000 } else { 300 };
    let body = json!({"defLabel": def, "taskRecordId": id, "inputParams": {"ms": ms}});
    let (code, out) = s.json("POST", "/api/tasks", Some(body));
    assert_eq!(code, 201, "{out}");
    s.wait_status(id, "running");
    let lock = json!({"lockedBy": id});
    let (code, out) = s.json("POST", &format!("/api/sites/{site}/lock"), Some(lock));
    assert_eq!(code, 200, "{out}");
    match end {
        Some(action) => {
            let (code, out) = s.json("POST", &format!("/api/tasks/{id}/{action}"), None);
            assert_eq!(code, 200, "{out}");
        }
        None => {
            s.wait_status(id, "finished");
        }
    }
    let (_, site) = s.json("GET", &format!("/api/sites/{site}"), None);
    site["locked"] == true
}

#[test]
fn ended_runs_release_their_sites_as_the_definition_says() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    for def in [
        delay_def("keep", json!({})),
        delay_def("rds", json!({"releaseSites": true})),
        delay_def(
            "always",
            json!({"releaseSites": true, "releasePolicy": "always"}),
        ),
    ] {
        let (code, out) = s.json("POST", "/api/task-defs", Some(def));
        assert!(code == 201 || code == 200, "{out}");
    }
    // Without releaseSites nothing is released, whatever the end.
    assert!(still_locked_after(&s, "keep", "k1", "A-01", Some("stop")));
    assert!(still_locked_after(&s, "keep", "k2", "A-02", None));
    // releaseSites (RDS): released on stop and manual end, kept on a normal end.
    assert!(!still_locked_after(&s, "rds", "r1", "A-03", Some("stop")));
    assert!(!still_locked_after(
        &s,
        "rds",
        "r2",
        "A-04",
        Some("manual-end")
    ));
    assert!(still_locked_after(&s, "rds", "r3", "A-05", None));
    // releasePolicy "always": also on a normal end.
    assert!(!still_locked_after(&s, "always", "w1", "B-01", None));
    // Stop and manual end with releaseSites release whatever the definition says.
    let (code, _) = s.json("POST", "/api/sites/B-02/unlock", None);
    assert_eq!(code, 200);
    let body = json!({"defLabel": "keep", "taskRecordId": "k3", "inputParams": {"ms": 60000}});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    s.wait_status("k3", "running");
    s.json(
        "POST",
        "/api/sites/B-02/lock",
        Some(json!({"lockedBy": "k3"})),
    );
    let release = Some(json!({"releaseSites": true}));
    let (code, out) = s.json("POST", "/api/tasks/k3/manual-end", release.clone());
    assert_eq!(code, 200, "{out}");
    let (_, b2) = s.json("GET", "/api/sites/B-02", None);
    assert_eq!(b2["locked"], false, "{b2}");
    let (code, out) = s.json("POST", "/api/tasks/k3/pause", release);
    assert_eq!(
        code, 400,
        "only stop and manual-end take releaseSites: {out}"
    );
    // The RDS stop with releaseSite=1 likewise.
    let body = json!({"defLabel": "keep", "taskRecordId": "k4", "inputParams": {"ms": 60000}});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    s.wait_status("k4", "running");
    s.json(
        "POST",
        "/api/sites/B-03/lock",
        Some(json!({"lockedBy": "k4"})),
    );
    let stop = json!({"taskRecordId": "k4", "releaseSite": 1});
    let (_, out) = s.json("POST", "/api/stop-task", Some(stop));
    assert_eq!(out["code"], 200, "{out}");
    let (_, b3) = s.json("GET", "/api/sites/B-03", None);
    assert_eq!(
        (&b3["locked"], &b3["lockedBy"]),
        (&json!(false), &json!(""))
    );
    // The release is logged as the run's own change, and published.
    let (_, log) = s.json("GET", "/api/sites/A-03/log", None);
    assert_eq!(log["items"][0]["action"], "unlock");
    assert_eq!(log["items"][0]["who"], "r1");
    s.stop();
}

#[test]
fn at_startup_locks_of_ended_runs_follow_the_release_policy() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let s = Server::start(&cfg);
    let def = delay_def("rds", json!({"releaseSites": true}));
    assert_eq!(s.json("POST", "/api/task-defs", Some(def)).0, 201);
    // s1 is stopped, f1 finishes normally; then sites are locked in their names (as a lock
    // that outlived a crash between a run's end and its release would be).
    let body = json!({"defLabel": "rds", "taskRecordId": "s1", "inputParams": {"ms": 60000}});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    s.wait_status("s1", "running");
    assert_eq!(s.json("POST", "/api/tasks/s1/stop", None).0, 200);
    let body = json!({"defLabel": "rds", "taskRecordId": "f1"});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    s.wait_status("f1", "finished");
    for (site, owner) in [("A-01", "s1"), ("A-02", "f1"), ("A-03", "someone")] {
        let (code, out) = s.json(
            "POST",
            &format!("/api/sites/{site}/lock"),
            Some(json!({"lockedBy": owner})),
        );
        assert_eq!(code, 200, "{out}");
    }
    s.stop();
    let s = Server::start(&cfg);
    let locked_by = |site: &str| {
        let (_, v) = s.json("GET", &format!("/api/sites/{site}"), None);
        v["lockedBy"].as_str().unwrap().to_string()
    };
    assert_eq!(
        locked_by("A-01"),
        "",
        "a stopped run's lock is released (releaseSites)"
    );
    assert_eq!(
        locked_by("A-02"),
        "f1",
        "a normal end keeps its locks (RDS)"
    );
    assert_eq!(locked_by("A-03"), "someone", "not a task: untouched");
    let (_, log) = s.json("GET", "/api/sites/A-01/log", None);
    assert_eq!(
        (&log["items"][0]["action"], &log["items"][0]["who"]),
        (&json!("unlock"), &json!("startup"))
    );
    s.stop();
}

/// A flow of site blocks over HTTP: it waits in the site queue (listed by
/// `GET /api/sites/waiters`) until an API fill lets it through, then takes, empties and
/// releases the site; a stop of a waiting task leaves the queue at once.
#[test]
fn site_blocks_wait_in_the_queue_until_an_api_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let get_idle = [("groupName", "W"), ("filled", "true"), ("lock", "true")];
    let def = take_site_def("take", &get_idle, "SetSiteEmptyBp");
    let (code, out) = s.json("POST", "/api/task-defs", Some(def));
    assert!(code == 200 || code == 201, "{out}");
    let site = json!({"siteId": "W-1", "groupName": "W"});
    let (code, out) = s.json("POST", "/api/sites", Some(site));
    assert_eq!(code, 201, "{out}");
    for id in ["w1", "w2"] {
        let body = json!({"defLabel": "take", "taskRecordId": id});
        assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let waiters = loop {
        let (code, w) = s.json("GET", "/api/sites/waiters", None);
        assert_eq!(code, 200, "{w}");
        if w["total"] == 2 {
            break w;
        }
        assert!(std::time::Instant::now() < deadline, "{w}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(waiters["capacity"], 10_000);
    assert_eq!(waiters["items"][0]["taskId"], "w1");
    assert_eq!(waiters["items"][0]["block"], "b1");
    assert_eq!(waiters["items"][0]["op"]["op"], "getIdle");
    assert_eq!(s.json("GET", "/api/tasks/w1", None).1["status"], "running");
    // Stop the second: it leaves the queue.
    assert_eq!(s.json("POST", "/api/tasks/w2/stop", None).0, 200);
    let (_, w) = s.json("GET", "/api/sites/waiters", None);
    assert_eq!(w["total"], 1, "{w}");
    // A fill through the API wakes the first.
    let fill = json!({"content": "pallet"});
    let (code, out) = s.json("POST", "/api/sites/W-1/fill", Some(fill));
    assert_eq!(code, 200, "{out}");
    let task = s.wait_status("w1", "finished");
    assert_eq!(task["code"], 1003, "{task}");
    let (_, site) = s.json("GET", "/api/sites/W-1", None);
    assert_eq!(
        (&site["filled"], &site["locked"], &site["content"]),
        (&json!(false), &json!(false), &json!(""))
    );
    let (_, w) = s.json("GET", "/api/sites/waiters", None);
    assert_eq!(w["total"], 0, "{w}");
    // Bad query parameters are named.
    let (code, out) = s.json("GET", "/api/sites/waiters?limit=0", None);
    assert_eq!(code, 400, "{out}");
    let message = out["error"]["message"].as_str().unwrap();
    assert!(message.contains("limit"), "{out}");
    let (code, out) = s.json("GET", "/api/sites/waiters?group=A", None);
    assert_eq!(code, 400, "{out}");
    s.stop();
}
