//! `/api/scripts`: the real server on 127.0.0.1:0 lists, reads, writes and deletes the script
//! files of its data dir; bad names, syntax errors, oversized bodies and unknown names are
//! refused with the one error shape; writes need the bearer token when tokens are set; a
//! written script is callable through the server's script pool at once.

mod support;

use serde_json::{json, Value};
use support::{config, Server};
use vwed::limits::{SCRIPT_FILES_MAX, SCRIPT_FILE_BYTES_MAX};
use vwed::script::CallContext;

fn put(s: &Server, name: &str, source: &str) -> (u16, Value) {
    let (code, body) = s.call("PUT", &format!("/api/scripts/{name}"), Some(source), &[]);
    (
        code,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[test]
fn scripts_are_written_read_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let (code, list) = s.json("GET", "/api/scripts", None);
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["items"], json!([]));
    assert_eq!(list["filesMax"], SCRIPT_FILES_MAX);

    let source =
        "function hello(s) { return {result: JSON.stringify({hi: JSON.parse(s).eventData})}; }\n";
    let (code, body) = put(&s, "hello.js", source);
    assert_eq!(
        (code, &body),
        (
            201,
            &json!({"name": "hello.js", "bytes": source.len(), "created": true})
        )
    );
    assert!(dir.path().join("scripts/hello.js").is_file());
    let (code, text) = s.call("GET", "/api/scripts/hello.js", None, &[]);
    assert_eq!((code, text.as_str()), (200, source));

    let (code, list) = s.json("GET", "/api/scripts", None);
    assert_eq!(code, 200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["name"], "hello.js");
    assert_eq!(list["items"][0]["bytes"], source.len());

    // The server's pool calls it at once, and again after it changes.
    let running = s.running.as_ref().unwrap();
    let pool = running.scripts().clone();
    let call = |f: &str| {
        let arg = json!({"eventData": "x"}).to_string();
        s.rt.block_on(pool.call(f, arg, CallContext::default()))
    };
    assert_eq!(call("hello").unwrap(), json!({"result": "{\"hi\":\"x\"}"}));
    let (code, body) = put(&s, "hello.js", "function hello(s) { return 2; }");
    assert_eq!((code, body["created"].clone()), (200, json!(false)));
    assert_eq!(call("boot.any.hello").unwrap(), json!(2));

    let (code, body) = s.json("DELETE", "/api/scripts/hello.js", None);
    assert_eq!(
        (code, body),
        (200, json!({"name": "hello.js", "deleted": true}))
    );
    assert!(!dir.path().join("scripts/hello.js").exists());
    let e = call("hello").unwrap_err();
    assert_eq!(e.to_string(), "script function not found: hello");
    s.stop();
}

#[test]
fn bad_names_syntax_errors_big_bodies_and_unknown_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    for bad in [
        "a.txt",
        "..%2Fvwed.db.js",
        "a%2Fb.js",
        ".hidden.js",
        "a%20b.js",
        "x..js",
    ] {
        let (code, body) = put(&s, bad, "function a() {}");
        assert_eq!(code, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_field", "{bad}");
        assert_eq!(body["error"]["field"], "name", "{bad}");
        let (code, _) = s.call("GET", &format!("/api/scripts/{bad}"), None, &[]);
        assert_eq!(code, 400, "{bad}");
    }
    let (code, body) = put(&s, "broken.js", "function ok() {}\n\nvar broken = ;\n");
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["code"], "syntax_error");
    assert_eq!(body["error"]["details"]["line"], 3, "{body}");
    assert!(body["error"]["details"]["message"].as_str().unwrap().len() > 3);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3"),
        "{body}"
    );
    assert!(!dir.path().join("scripts/broken.js").exists());

    let big = format!("//{}", "x".repeat(SCRIPT_FILE_BYTES_MAX));
    let (code, body) = put(&s, "big.js", &big);
    assert_eq!(code, 413, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("SCRIPT_FILE_BYTES_MAX"));
    assert!(!dir.path().join("scripts/big.js").exists());

    let (code, body) = s.json("GET", "/api/scripts/nope.js", None);
    assert_eq!(
        (code, body["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let (code, body) = s.json("DELETE", "/api/scripts/nope.js", None);
    assert_eq!(
        (code, body["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let (code, _) = s.call("POST", "/api/scripts/a.js", Some(""), &[]);
    assert_eq!(code, 405);
    s.stop();
}

#[test]
fn script_writes_need_the_bearer_token_when_tokens_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.tokens = vec!["a-long-enough-secret-token".into()];
    let s = Server::start(&c);
    let body = Some("function a() {}");
    assert_eq!(s.call("PUT", "/api/scripts/a.js", body, &[]).0, 401);
    let ok = [("Authorization", "Bearer a-long-enough-secret-token")];
    assert_eq!(s.call("PUT", "/api/scripts/a.js", body, &ok).0, 201);
    assert_eq!(s.call("DELETE", "/api/scripts/a.js", None, &[]).0, 401);
    assert_eq!(s.call("GET", "/api/scripts/a.js", None, &[]).0, 200);
    assert_eq!(s.call("DELETE", "/api/scripts/a.js", None, &ok).0, 200);
    s.stop();
}

#[test]
fn scripts_in_the_data_dir_load_at_start_and_reach_the_appliance() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    let source = "function probe(s) { jj.putCache('probe', 'seen'); \
                  return {cache: jj.getCache('probe'), robots: jj.robots().length}; }";
    std::fs::write(dir.path().join("scripts/probe.js"), source).unwrap();
    let s = Server::start(&config(dir.path()));
    let pool = s.running.as_ref().unwrap().scripts().clone();
    let out =
        s.rt.block_on(pool.call("probe", "{}".into(), CallContext::default()))
            .unwrap();
    assert_eq!(out["cache"], "seen");
    assert!(out["robots"].as_u64().unwrap() > 0, "{out}");
    let (code, body) = s.json("GET", "/api/cache/probe", None);
    assert_eq!((code, body["value"].clone()), (200, json!("seen")));
    s.stop();
}
