//! Import and export of `.task` files, enabling and disabling periodic definitions, and the
//! OpenAPI document, against the real server over plain HTTP/1.1 (helper as in `tests/api.rs`).

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{config, Server};

fn definition(id: &str, label: &str) -> Value {
    json!({"id": id, "label": label, "detail": {"inputParams": [],
        "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp", "inputParams": {},
            "children": {"default": [
                {"id": 1, "name": "b1", "blockType": "PrintBp", "children": {},
                 "inputParams": {"message": {"type": "Simple", "value": label}}}]}}}})
}

fn invalid(id: &str) -> Value {
    let mut d = definition(id, id);
    d["detail"]["rootBlock"]["children"]["default"][0]["blockType"] = json!("NoSuchBp");
    d
}

/// The `.task` shape: `detail` as a JSON string.
fn as_task(d: &Value) -> Value {
    let mut d = d.clone();
    d["detail"] = json!(d["detail"].to_string());
    d
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn export_then_import_into_a_fresh_server_gives_the_same_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let mut periodic = definition("p1", "periodic one");
    periodic["periodicTask"] = json!(1);
    periodic["period"] = json!(5000);
    periodic["delay"] = json!(100);
    periodic["remark"] = json!("a remark");
    let file = json!([as_task(&definition("a1", "first")), as_task(&periodic)]);
    let (code, out) = s.json("POST", "/api/task-defs/import", Some(file));
    assert_eq!((code, out["imported"].as_i64()), (200, Some(2)), "{out}");
    let (code, exported) = s.json("GET", "/api/task-defs/export?ids=a1,p1", None);
    assert_eq!(code, 200, "{exported}");
    let items = exported.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert!(item["detail"].is_string(), "detail is a JSON string");
        for field in [
            "id",
            "projectId",
            "detail",
            "version",
            "label",
            "status",
            "remark",
            "templateDescription",
            "templateName",
            "period",
            "periodicTask",
            "ifEnable",
            "delay",
            "windcategoryId",
            "releaseSites",
        ] {
            assert!(item.get(field).is_some(), "{field} missing in {item}");
        }
        assert_eq!(item["ifEnable"], 0);
    }
    let (_, all) = s.json("GET", "/api/task-defs/export", None);
    assert!(
        all.as_array().unwrap().len() >= 2,
        "no ids: every definition"
    );
    let before: Vec<Value> = ["a1", "p1"]
        .iter()
        .map(|id| s.json("GET", &format!("/api/task-defs/{id}"), None).1)
        .collect();
    s.stop();

    let dir2 = tempfile::tempdir().unwrap();
    let s2 = Server::start(&config(dir2.path()));
    let (code, out) = s2.json("POST", "/api/task-defs/import", Some(exported.clone()));
    assert_eq!(code, 200, "{out}");
    for (id, was) in ["a1", "p1"].iter().zip(before) {
        let (code, now) = s2.json("GET", &format!("/api/task-defs/{id}"), None);
        assert_eq!(code, 200);
        for key in [
            "label",
            "periodicTask",
            "ifEnable",
            "period",
            "delay",
            "releaseSites",
        ] {
            assert_eq!(now[key], was[key], "{id}: {key}");
        }
        let (a, b) = (&now["definition"], &was["definition"]);
        assert_eq!(a["detail"], b["detail"], "{id}: detail");
        assert_eq!(
            a["remark"].as_str().unwrap_or(""),
            b["remark"].as_str().unwrap_or("")
        );
    }
    let (_, again) = s2.json("GET", "/api/task-defs/export?ids=a1,p1", None);
    assert_eq!(again, exported, "a second export is the same file");
    s2.stop();
}

#[test]
fn duplicate_labels_refuse_the_whole_import() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    assert_eq!(
        s.json("POST", "/api/task-defs", Some(definition("x1", "taken")))
            .0,
        201
    );
    let before = ids(&s.json("GET", "/api/task-defs", None).1);
    // A label that exists in the store.
    let file = json!([definition("n1", "new one"), definition("n2", "taken")]);
    let (code, err) = s.json("POST", "/api/task-defs/import", Some(file));
    assert_eq!(code, 409, "{err}");
    assert_eq!(err["error"]["details"]["labels"], json!(["taken"]));
    assert!(err["error"]["message"].as_str().unwrap().contains("taken"));
    // A label repeated inside the file.
    let file = json!([definition("n1", "twice"), definition("n2", "twice")]);
    let (code, err) = s.json("POST", "/api/task-defs/import", Some(file));
    assert_eq!(code, 409, "{err}");
    assert_eq!(err["error"]["details"]["labels"], json!(["twice"]));
    // An id that exists (without replace).
    let file = json!([definition("x1", "other label")]);
    assert_eq!(s.json("POST", "/api/task-defs/import", Some(file)).0, 409);
    assert_eq!(
        ids(&s.json("GET", "/api/task-defs", None).1),
        before,
        "nothing written"
    );
    s.stop();
}

#[test]
fn an_invalid_definition_refuses_the_whole_import() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let before = ids(&s.json("GET", "/api/task-defs", None).1);
    let file = json!([definition("ok1", "ok1"), invalid("bad1"), {"label": "nodetail"}]);
    let (code, err) = s.json("POST", "/api/task-defs/import", Some(file));
    assert_eq!(code, 422, "{err}");
    let report = &err["error"]["details"]["definitions"];
    assert_eq!(report[0]["valid"], true);
    assert_eq!(report[1]["valid"], false);
    assert!(report[1]["diagnostics"].to_string().contains("NoSuchBp"));
    assert_eq!(report[2]["valid"], false);
    assert_eq!(
        ids(&s.json("GET", "/api/task-defs", None).1),
        before,
        "nothing written"
    );
    assert_eq!(s.json("GET", "/api/task-defs/ok1", None).0, 404);
    let (code, _) = s.json("POST", "/api/task-defs/import", Some(json!([])));
    assert_eq!(code, 400, "an empty file");
    let (code, _) = s.call("POST", "/api/task-defs/import", Some("[{"), &[]);
    assert_eq!(code, 400, "not JSON");
    s.stop();
}

#[test]
fn replace_mode_updates_definitions_by_id_or_label() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let (code, _) = s.json(
        "POST",
        "/api/task-defs/import",
        Some(definition("r1", "one")),
    );
    assert_eq!(code, 200, "one definition, not an array");
    assert_eq!(
        s.json("POST", "/api/task-defs", Some(definition("r2", "two")))
            .0,
        201
    );
    let mut one = definition("r1", "one");
    one["remark"] = json!("changed");
    // Same label, no id: updates r2.
    let mut two = definition("ignored", "two");
    two.as_object_mut().unwrap().remove("id");
    two["remark"] = json!("changed too");
    let file = json!([one, two, definition("r3", "three")]);
    let (code, out) = s.json("POST", "/api/task-defs/import", Some(file.clone()));
    assert_eq!(code, 409, "without replace: {out}");
    let (code, out) = s.json(
        "POST",
        "/api/task-defs/import?replace=true",
        Some(file.clone()),
    );
    assert_eq!(code, 200, "{out}");
    let items = out["items"].as_array().unwrap();
    assert_eq!(items[0]["id"], "r1");
    assert_eq!(items[0]["version"], 2);
    assert_eq!(items[1]["id"], "r2", "matched by label");
    assert_eq!(items[1]["version"], 2);
    assert_eq!(items[2]["version"], 1);
    let (_, r2) = s.json("GET", "/api/task-defs/r2", None);
    assert_eq!(r2["definition"]["remark"], "changed too");
    // The same file again changes nothing.
    let (_, out) = s.json("POST", "/api/task-defs/import?replace=true", Some(file));
    assert!(
        out["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["changed"] == false),
        "{out}"
    );
    // An id whose label belongs to another definition is still a conflict.
    let (code, _) = s.json(
        "POST",
        "/api/task-defs/import?replace=true",
        Some(json!([definition("r1", "two")])),
    );
    assert_eq!(code, 409);
    s.stop();
}

#[test]
fn exporting_unknown_ids_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    assert_eq!(
        s.json("POST", "/api/task-defs", Some(definition("e1", "e1")))
            .0,
        201
    );
    let (code, err) = s.json("GET", "/api/task-defs/export?ids=e1,nope,gone", None);
    assert_eq!(code, 404, "{err}");
    assert_eq!(err["error"]["details"]["ids"], json!(["nope", "gone"]));
    assert_eq!(s.json("DELETE", "/api/task-defs/e1", None).0, 200);
    assert_eq!(s.json("GET", "/api/task-defs/export?ids=e1", None).0, 404);
    s.stop();
}

fn runs_of(s: &Server, label: &str) -> Vec<Value> {
    let (code, list) = s.json(
        "GET",
        &format!("/api/tasks?defLabel={}&limit=1000", label),
        None,
    );
    assert_eq!(code, 200, "{list}");
    list["items"].as_array().unwrap().clone()
}

#[test]
fn enabling_and_disabling_a_periodic_definition_takes_effect_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let mut p = definition("tick", "tick");
    p["periodicTask"] = json!(1);
    p["period"] = json!(100);
    p["delay"] = json!(0);
    p["ifEnable"] = json!(1);
    let (code, out) = s.json("POST", "/api/task-defs/import", Some(json!([p])));
    assert_eq!(code, 200, "{out}");
    let (_, def) = s.json("GET", "/api/task-defs/tick", None);
    assert_eq!(def["ifEnable"], false, "imports arrive disabled, as in RDS");
    std::thread::sleep(Duration::from_millis(400));
    assert!(runs_of(&s, "tick").is_empty(), "disabled: no run");

    let (code, out) = s.json("POST", "/api/task-defs/tick/enable", None);
    assert_eq!(
        (code, out["ifEnable"].as_bool()),
        (200, Some(true)),
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs_of(&s, "tick").len() < 2 {
        assert!(Instant::now() < deadline, "no periodic run after enable");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _) = s.json("POST", "/api/task-defs/tick/disable", None);
    assert_eq!(code, 200);
    // A tick in flight at the moment of disabling may still land; then nothing more.
    std::thread::sleep(Duration::from_millis(300));
    let settled = runs_of(&s, "tick").len();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        runs_of(&s, "tick").len(),
        settled,
        "no new runs after disable"
    );

    assert_eq!(
        s.json("POST", "/api/task-defs", Some(definition("plain", "plain")))
            .0,
        201
    );
    let (code, err) = s.json("POST", "/api/task-defs/plain/enable", None);
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (409, Some("not_periodic"))
    );
    assert_eq!(s.json("POST", "/api/task-defs/nope/disable", None).0, 404);
    s.stop();
}

#[test]
fn periodic_definitions_saved_or_deleted_through_the_api_are_rescheduled_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let mut p = definition("live", "live");
    p["periodicTask"] = json!(1);
    p["period"] = json!(100);
    p["delay"] = json!(0);
    p["ifEnable"] = json!(1);
    let (code, out) = s.json("POST", "/api/task-defs", Some(p));
    assert_eq!(code, 201, "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs_of(&s, "live").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no run of a created periodic definition"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.json("DELETE", "/api/task-defs/live", None).0, 200);
    std::thread::sleep(Duration::from_millis(300));
    let settled = runs_of(&s, "live").len();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(runs_of(&s, "live").len(), settled, "no runs after delete");
    s.stop();
}

/// Every native route of the router (`src/api/router.rs`), as OpenAPI paths.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/api/system/status"),
    ("get", "/api/events"),
    ("get", "/api/openapi.json"),
    ("get", "/api/task-defs"),
    ("post", "/api/task-defs"),
    ("post", "/api/task-defs/validate"),
    ("post", "/api/task-defs/import"),
    ("get", "/api/task-defs/export"),
    ("get", "/api/task-defs/{id}"),
    ("put", "/api/task-defs/{id}"),
    ("delete", "/api/task-defs/{id}"),
    ("get", "/api/task-defs/{id}/versions"),
    ("post", "/api/task-defs/{id}/enable"),
    ("post", "/api/task-defs/{id}/disable"),
    ("post", "/api/tasks"),
    ("get", "/api/tasks"),
    ("get", "/api/tasks/{id}"),
    ("get", "/api/tasks/{id}/blocks"),
    ("get", "/api/tasks/{id}/logs"),
    ("post", "/api/tasks/{id}/{action}"),
    ("get", "/api/cache/{key}"),
    ("put", "/api/cache/{key}"),
    ("delete", "/api/cache/{key}"),
    ("get", "/api/scripts"),
    ("get", "/api/scripts/{name}"),
    ("put", "/api/scripts/{name}"),
    ("delete", "/api/scripts/{name}"),
    ("get", "/api/sites"),
    ("post", "/api/sites"),
    ("post", "/api/sites/import"),
    ("get", "/api/sites/waiters"),
    ("get", "/api/sites/{id}"),
    ("put", "/api/sites/{id}"),
    ("delete", "/api/sites/{id}"),
    ("get", "/api/sites/{id}/log"),
    ("post", "/api/sites/{id}/{action}"),
    ("get", "/api/robots"),
    ("get", "/api/robots/{id}"),
    ("post", "/api/tasks/{id}/blocks/{block}/{action}"),
    ("post", "/api/sim/{kind}/{id}/{action}"),
];

#[test]
fn the_openapi_document_describes_every_native_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let (code, doc) = s.json("GET", "/api/openapi.json", None);
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    for (method, path) in ROUTES {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing in openapi.json");
        assert!(
            op["responses"].is_object(),
            "{method} {path} has no responses"
        );
    }
    assert!(doc["components"]["schemas"]["Error"].is_object());
    // Every path of the document is a route (nothing stale).
    let n: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| {
            p.as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .count()
        })
        .sum();
    assert_eq!(n, ROUTES.len());
    // Every native route of the router is in the list.
    let router = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/router.rs"),
    )
    .unwrap();
    let routes = router_routes(&router);
    assert!(routes.len() >= ROUTES.len(), "{routes:?}");
    for (method, path) in &routes {
        let native = ["/api/", "/healthz", "/metrics"]
            .iter()
            .any(|p| path.starts_with(p));
        assert!(
            !native || ROUTES.contains(&(method.as_str(), path.as_str())),
            "router serves {method} {path}, which openapi.json (and ROUTES) does not list"
        );
    }
    s.stop();
}

/// (method, OpenAPI path) of every arm `(&M::GET, ["api", "tasks", id]) =>` in the router.
/// RDS-compatible arms (their handlers live in `rds`/`rds_query`) are left out: they follow
/// RDS's own API, not this document.
fn router_routes(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = source.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("(&M::") else {
            continue;
        };
        let arm = format!("{line} {}", lines.get(i + 1).unwrap_or(&""));
        if arm.contains("rds::") || arm.contains("rds_query::") || arm.contains("rds_sites::") {
            continue;
        }
        let Some((method, rest)) = rest.split_once(", [") else {
            continue;
        };
        let Some((segs, _)) = rest.split_once(']') else {
            continue;
        };
        let path: String = segs
            .split(',')
            .map(|seg| {
                let seg = seg.trim();
                match seg.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    Some(lit) => format!("/{lit}"),
                    None => format!("/{{{seg}}}"),
                }
            })
            .collect();
        out.push((method.to_lowercase(), path));
    }
    out
}
