//! HTTP blocks through the real server against std TCP peers on 127.0.0.1:0: a flow posts and
//! uses the answer; stop and pause during a retry wait; a pause waits for a request in flight.

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

/// Answers every request with `answer` (a JSON body), `delay` after reading it, until the
/// test ends; counts requests.
fn upstream(answer: &'static str, delay: Duration) -> (String, Arc<AtomicUsize>) {
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
            std::thread::sleep(delay);
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

/// Accepts and closes at once, so every attempt fails as a transport error; counts attempts.
fn refusing_peer() -> (String, Arc<AtomicUsize>) {
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
    (url, attempts)
}

/// Stores definition `label` with `blocks` under the root and starts task `task` of it.
fn start(s: &Server, label: &str, blocks: Value, task: &str) {
    let (code, out) = s.json("POST", "/api/task-defs", Some(definition(label, blocks)));
    assert!(code == 200 || code == 201, "{out}");
    let body = json!({"defLabel": label, "taskRecordId": task});
    assert_eq!(s.json("POST", "/api/tasks", Some(body)).0, 201);
}

/// `GetBp` b1 on `url` with `retry` on: 5 attempts `interval_ms` apart.
fn retrying_get(url: &str, interval_ms: u64) -> Value {
    json!([{"id": 1, "name": "b1", "blockType": "GetBp", "children": {}, "inputParams": {
        "url": simple(json!(url)), "retry": simple(json!(true)),
        "retryTimes": simple(json!(5)), "retryInterval": simple(json!(interval_ms))}}])
}

/// `PostBp` b1 to `url`, then b2 sets variable `var` to the answer's body field `var`.
fn post_and_keep(url: &str, param: &str, var: &str) -> Value {
    json!([
        {"id": 1, "name": "b1", "blockType": "PostBp", "children": {}, "inputParams": {
            "url": simple(json!(url)), "param": simple(json!(param))}},
        {"id": 2, "name": "b2", "blockType": "SetTaskVariableBp", "children": {},
         "inputParams": {"varName": simple(json!(var)),
            "varValue": expr(&format!("blocks.b1.response.body.{var}"))}}
    ])
}

/// The task's variables (the API gives them as JSON text).
fn variables(task: &Value) -> Value {
    match &task["variables"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        v => v.clone(),
    }
}

/// Sends operator action `action` for task `id`.
fn act(s: &Server, id: &str, action: &str) {
    let (code, out) = s.json("POST", &format!("/api/tasks/{id}/{action}"), None);
    assert_eq!(code, 200, "{out}");
}

#[test]
fn a_flow_posts_and_uses_the_answer() {
    let (url, count) = upstream(r#"{"target":"LM7"}"#, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    let flow = post_and_keep(&format!("{url}/next"), "{\"station\":\"A-01\"}", "target");
    start(&s, "ask", flow, "t1");
    let task = s.wait_status("t1", "finished");
    assert_eq!(variables(&task)["target"], "LM7", "{task}");
    assert_eq!(count.load(SeqCst), 1, "sent once");
    s.stop();
}

#[test]
fn a_stop_during_a_retry_wait_ends_the_run_at_once() {
    let (url, attempts) = refusing_peer();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    start(&s, "retrying", retrying_get(&url, 60_000), "r1");
    support::until("the first attempt", || attempts.load(SeqCst) == 1);
    let t0 = Instant::now();
    act(&s, "r1", "stop");
    s.wait_status("r1", "stopped");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(attempts.load(SeqCst), 1, "no attempt after the stop");
    s.stop();
}

#[test]
fn a_pause_during_a_retry_wait_holds_the_attempts_until_resumed() {
    let (url, attempts) = refusing_peer();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    start(&s, "held", retrying_get(&url, 1_500), "h1");
    support::until("the first attempt", || attempts.load(SeqCst) == 1);
    act(&s, "h1", "pause");
    s.wait_status("h1", "paused");
    // Paused past the end of the 1.5 s pause between attempts: still no second attempt.
    std::thread::sleep(Duration::from_millis(2_000));
    assert_eq!(attempts.load(SeqCst), 1, "no attempt while paused");
    act(&s, "h1", "resume");
    // The pause between attempts is over: the next attempt comes at once.
    support::until("an attempt after the resume", || attempts.load(SeqCst) == 2);
    act(&s, "h1", "stop");
    s.wait_status("h1", "stopped");
    s.stop();
}

/// A request in flight is not cut short by a pause (spec §4.6): the answer arrives, the block
/// ends with it, then the task pauses; resumed, it finishes without sending again.
#[test]
fn a_pause_waits_for_the_request_in_flight() {
    let (url, count) = upstream(r#"{"slow":true}"#, Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&config(dir.path()));
    start(
        &s,
        "slowpost",
        post_and_keep(&format!("{url}/slow"), "{}", "slow"),
        "s1",
    );
    support::until("the request", || count.load(SeqCst) == 1);
    act(&s, "s1", "pause");
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
    act(&s, "s1", "resume");
    let task = s.wait_status("s1", "finished");
    assert_eq!(variables(&task)["slow"], true, "{task}");
    assert_eq!(count.load(SeqCst), 1, "sent once");
    s.stop();
}
