//! HTTP blocks through the real server: a flow posts to a local upstream (a std TCP peer on
//! 127.0.0.1:0) and uses the answer; a stop during a retry wait ends the run at once without
//! another attempt.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{config, definition, Server};

fn simple(v: Value) -> Value {
    json!({"type": "Simple", "value": v})
}

fn expr(v: &str) -> Value {
    json!({"type": "Expression", "value": v})
}

/// Answers every request with `answer` (a JSON body) until the test ends; counts requests.
fn upstream(answer: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            seen.fetch_add(1, SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (url, count)
}

#[test]
fn a_flow_posts_and_uses_the_answer() {
    let (url, count) = upstream(r#"{"target":"LM7"}"#);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let def = definition(
        "ask",
        json!([
            {"id": 1, "name": "b1", "blockType": "PostBp", "children": {}, "inputParams": {
                "url": simple(json!(format!("{url}/next"))),
                "param": simple(json!("{\"station\":\"A-01\"}"))}},
            {"id": 2, "name": "b2", "blockType": "SetTaskVariableBp", "children": {},
             "inputParams": {"varName": simple(json!("target")),
                "varValue": expr("blocks.b1.response.body.target")}}
        ]),
    );
    let (code, out) = s.json("POST", "/api/task-defs", Some(def));
    assert!(code == 200 || code == 201, "{out}");
    let body = json!({"defLabel": "ask", "taskRecordId": "t1"});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    let task = s.wait_status("t1", "finished");
    let vars: Value = match &task["variables"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        v => v.clone(),
    };
    assert_eq!(vars["target"], "LM7", "{task}");
    assert_eq!(count.load(SeqCst), 1, "sent once");
    s.stop();
}

#[test]
fn a_stop_during_a_retry_wait_ends_the_run_at_once() {
    // Accepts and closes at once: every attempt fails as a transport error.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, SeqCst);
            drop(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let def = definition(
        "retrying",
        json!([{"id": 1, "name": "b1", "blockType": "GetBp", "children": {}, "inputParams": {
            "url": simple(json!(url)), "retry": simple(json!(true)),
            "retryTimes": simple(json!(5)), "retryInterval": simple(json!(60000))}}]),
    );
    let (code, out) = s.json("POST", "/api/task-defs", Some(def));
    assert!(code == 200 || code == 201, "{out}");
    let body = json!({"defLabel": "retrying", "taskRecordId": "r1"});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    support::until("the first attempt", || attempts.load(SeqCst) == 1);
    let t0 = Instant::now();
    let (code, out) = s.json("POST", "/api/tasks/r1/stop", None);
    assert_eq!(code, 200, "{out}");
    s.wait_status("r1", "stopped");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(attempts.load(SeqCst), 1, "no attempt after the stop");
    s.stop();
}

#[test]
fn a_pause_during_a_retry_wait_holds_the_attempts_until_resumed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, SeqCst);
            drop(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let def = definition(
        "held",
        json!([{"id": 1, "name": "b1", "blockType": "GetBp", "children": {}, "inputParams": {
            "url": simple(json!(url)), "retry": simple(json!(true)),
            "retryTimes": simple(json!(5)), "retryInterval": simple(json!(1500))}}]),
    );
    let (code, out) = s.json("POST", "/api/task-defs", Some(def));
    assert!(code == 200 || code == 201, "{out}");
    let body = json!({"defLabel": "held", "taskRecordId": "h1"});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    support::until("the first attempt", || attempts.load(SeqCst) == 1);
    let (code, out) = s.json("POST", "/api/tasks/h1/pause", None);
    assert_eq!(code, 200, "{out}");
    s.wait_status("h1", "paused");
    // Paused past the end of the 1.5 s pause between attempts: still no second attempt.
    std::thread::sleep(Duration::from_millis(2_000));
    assert_eq!(attempts.load(SeqCst), 1, "no attempt while paused");
    let (code, out) = s.json("POST", "/api/tasks/h1/resume", None);
    assert_eq!(code, 200, "{out}");
    // The pause between attempts is over: the next attempt comes at once.
    support::until("an attempt after the resume", || attempts.load(SeqCst) == 2);
    let (code, out) = s.json("POST", "/api/tasks/h1/stop", None);
    assert_eq!(code, 200, "{out}");
    s.wait_status("h1", "stopped");
    s.stop();
}

/// A request in flight is not cut short by a pause (spec §4.6): the answer arrives, the block
/// ends with it, then the task pauses; resumed, it finishes without sending again.
#[test]
fn a_pause_waits_for_the_request_in_flight() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            seen.fetch_add(1, SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            std::thread::sleep(Duration::from_millis(500));
            let answer = r#"{"slow":true}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let def = definition(
        "slowpost",
        json!([
            {"id": 1, "name": "b1", "blockType": "PostBp", "children": {}, "inputParams": {
                "url": simple(json!(format!("{url}/slow"))), "param": simple(json!("{}"))}},
            {"id": 2, "name": "b2", "blockType": "SetTaskVariableBp", "children": {},
             "inputParams": {"varName": simple(json!("slow")),
                "varValue": expr("blocks.b1.response.body.slow")}}
        ]),
    );
    let (code, out) = s.json("POST", "/api/task-defs", Some(def));
    assert!(code == 200 || code == 201, "{out}");
    let body = json!({"defLabel": "slowpost", "taskRecordId": "s1"});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
    support::until("the request", || count.load(SeqCst) == 1);
    let (code, out) = s.json("POST", "/api/tasks/s1/pause", None);
    assert_eq!(code, 200, "{out}");
    let task = s.wait_status("s1", "paused");
    let (_, blocks) = s.json("GET", "/api/tasks/s1/blocks", None);
    let b1 = blocks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "b1")
        .cloned();
    assert_eq!(
        b1.unwrap()["status"],
        1003,
        "the answer was taken before the pause: {task}"
    );
    let (code, out) = s.json("POST", "/api/tasks/s1/resume", None);
    assert_eq!(code, 200, "{out}");
    let task = s.wait_status("s1", "finished");
    let vars: Value = match &task["variables"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        v => v.clone(),
    };
    assert_eq!(vars["slow"], true, "{task}");
    assert_eq!(count.load(SeqCst), 1, "sent once");
    s.stop();
}
