//! `GET /api/events` against the real server: live events of a run, replay after
//! `Last-Event-ID` with increasing ids, and the explicit `reset` event after pruning.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use support::config;
use vwed::server::{self, Running};

fn post(addr: SocketAddr, path: &str, body: &Value) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Opens the event stream and reads until `done` holds for the text so far (or 20 s pass).
fn events(addr: SocketAddr, last: Option<i64>, done: impl Fn(&str) -> bool) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let header = last.map_or(String::new(), |l| format!("Last-Event-ID: {l}\r\n"));
    let req = format!("GET /api/events HTTP/1.1\r\nHost: t\r\n{header}\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while !done(&text) {
        assert!(Instant::now() < deadline, "timed out; got:\n{text}");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
    (s, text)
}

fn ids(text: &str) -> Vec<i64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|n| n.trim().parse().unwrap())
        .collect()
}

fn start(dir: &Path) -> (tokio::runtime::Runtime, Running) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = rt.block_on(server::start(&config(dir))).unwrap();
    (rt, running)
}

#[test]
fn a_run_streams_live_and_replays_after_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, running) = start(dir.path());
    let addr = running.addr;
    let submit = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        post(
            addr,
            "/api/tasks",
            &json!({"defLabel": "demo_bench", "taskRecordId": "e1"}),
        )
    });
    let (_live, text) = events(addr, None, |t| {
        t.contains("\"taskId\":\"e1\",\"status\":\"finished\"")
    });
    assert!(submit.join().unwrap().starts_with("HTTP/1.1 201"));
    assert!(text.contains("text/event-stream"));
    assert!(
        text.contains("event: task") && text.contains("event: block"),
        "{text}"
    );
    let live_ids = ids(&text);
    assert!(live_ids.windows(2).all(|w| w[0] < w[1]), "{live_ids:?}");
    // Replay from just before the run (the demo sites' events come first), then from the
    // middle.
    let before = live_ids[0] - 1;
    let (_a, all) = events(addr, Some(before), |t| ids(t).len() >= live_ids.len());
    assert_eq!(ids(&all)[..live_ids.len()], live_ids[..]);
    let mid = live_ids[live_ids.len() / 2];
    let (_b, rest) = events(addr, Some(mid), |t| !ids(t).is_empty());
    assert_eq!(ids(&rest)[0], mid + 1);
    rt.block_on(running.shutdown());
}

#[test]
fn a_client_behind_the_pruned_outbox_gets_a_reset_event() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, running) = start(dir.path());
    let addr = running.addr;
    post(
        addr,
        "/api/tasks",
        &json!({"defLabel": "demo_bench", "taskRecordId": "r1"}),
    );
    let (_s, text) = events(addr, Some(0), |t| t.contains("\"status\":\"finished\""));
    let seen = ids(&text);
    assert!(seen.len() > 4);
    // Prune the oldest events behind the server's back, as the retention cap would.
    let conn = rusqlite::Connection::open(dir.path().join("vwed.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute("DELETE FROM event_outbox WHERE id <= ?1", [seen[3]])
        .unwrap();
    drop(conn);
    let (_s, text) = events(addr, Some(seen[0]), |t| !ids(t).is_empty());
    let reset_at = text.find("event: reset").expect("a reset event");
    let first_id = text.find("id: ").unwrap();
    assert!(
        reset_at < first_id,
        "the reset comes before any replayed event:\n{text}"
    );
    assert_eq!(
        ids(&text)[0],
        seen[4],
        "replay resumes at the oldest kept event"
    );
    let (_s, text) = events(addr, Some(seen[4]), |t| !ids(t).is_empty());
    assert!(
        !text.contains("event: reset"),
        "no reset when nothing was missed"
    );
    let bad = {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(
            b"GET /api/events HTTP/1.1\r\nHost: t\r\nConnection: close\r\nLast-Event-ID: x\r\n\r\n",
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    rt.block_on(running.shutdown());
}

#[test]
fn site_changes_stream_live_and_the_demo_sites_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (rt, running) = start(dir.path());
    let addr = running.addr;
    // The 15 demo sites were stored before anyone listened: they replay from the outbox.
    let (_r, replay) = events(addr, Some(0), |t| t.matches("event: site").count() >= 15);
    assert!(replay.contains("\"siteId\":\"BUFFER-01\""), "{replay}");
    let lock = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        post(addr, "/api/sites/A-01/lock", &json!({"lockedBy": "mes"}))
    });
    let (_live, text) = events(addr, None, |t| t.contains("\"action\":\"lock\""));
    assert!(lock.join().unwrap().starts_with("HTTP/1.1 200"));
    let line = text
        .lines()
        .find(|l| l.contains("\"action\":\"lock\""))
        .unwrap();
    let data: Value = serde_json::from_str(line.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(
        (
            &data["siteId"],
            &data["locked"],
            &data["lockedBy"],
            &data["who"]
        ),
        (&json!("A-01"), &json!(true), &json!("mes"), &json!("api"))
    );
    rt.block_on(running.shutdown());
}
