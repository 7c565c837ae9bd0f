//! Webhooks against the real server and an in-test receiver: events arrive in outbox id order,
//! signed; failed attempts are retried and each event is acknowledged exactly once; a webhook
//! sees only the kinds it asked for; the cursor survives a restart.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vwed::config::{self, Config, WebhookConfig};
use vwed::server::{self, Running};

const SECRET: &str = "webhook-secret-0123456789";

/// One request the receiver got, and whether it answered 200.
#[derive(Debug, Clone)]
struct Got {
    headers: HashMap<String, String>,
    body: Vec<u8>,
    ok: bool,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A receiver on 127.0.0.1:0 answering 500 to the first `fail_first` requests, then 200.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = AtomicUsize::new(0);
        let record = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let ok = seen.fetch_add(1, SeqCst) >= fail_first;
                if let Some((headers, body)) = read_request(&stream) {
                    let status = if ok { "200 OK" } else { "500 Oops" };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let mut w = &stream;
                    let _ = w.write_all(reply.as_bytes());
                    record.lock().unwrap().push(Got { headers, body, ok });
                }
            }
        });
        Receiver { addr, got }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Ids of the acknowledged (200) events, in arrival order.
    fn acked(&self) -> Vec<i64> {
        let got = self.got();
        got.iter()
            .filter(|g| g.ok)
            .map(|g| g.json()["id"].as_i64().unwrap())
            .collect()
    }
}

fn read_request(stream: &TcpStream) -> Option<(HashMap<String, String>, Vec<u8>)> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    assert!(line.starts_with("POST /hook HTTP/1.1"), "{line}");
    let mut headers = HashMap::new();
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((headers, body))
}

fn hook(url: &str, events: Option<&[&str]>) -> WebhookConfig {
    let events: Option<Vec<String>> = events.map(|e| e.iter().map(|s| s.to_string()).collect());
    WebhookConfig::new(url, events.as_deref(), SECRET).unwrap()
}

fn config(dir: &Path, webhooks: Vec<WebhookConfig>) -> Config {
    let data = dir.to_string_lossy().to_string();
    let env = move |k: &str| match k {
        "VWED_LISTEN" => Some("127.0.0.1:0".to_string()),
        "VWED_DATA_DIR" => Some(data.clone()),
        _ => None,
    };
    let mut c = config::load(None, &env).unwrap();
    c.webhooks = webhooks;
    c
}

fn start(rt: &tokio::runtime::Runtime, config: &Config) -> Running {
    rt.block_on(server::start(config)).unwrap()
}

fn request(addr: SocketAddr, method: &str, path: &str, body: &Value) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let body = body.to_string();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn submit(addr: SocketAddr, id: &str) {
    let body = json!({"defLabel": "demo_bench", "taskRecordId": id});
    let resp = request(addr, "POST", "/api/tasks", &body);
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
}

/// Every outbox event as (id, kind), read behind the server's back, except the demo sites'
/// events of the first start: they precede every new webhook's starting cursor.
fn outbox(dir: &Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(dir.join("vwed.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, kind FROM event_outbox WHERE kind <> 'site' ORDER BY id")
        .unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// Whether the store holds the `finished` task event of task `id`.
fn finished_in_store(dir: &Path, id: &str) -> bool {
    let conn = rusqlite::Connection::open(dir.join("vwed.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM event_outbox WHERE kind = 'task' AND task_id = ?1 \
             AND payload LIKE '%\"status\":\"finished\"%'",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    n > 0
}

/// Waits until `done` holds (or 30 s pass).
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether task `id` finished, judged by the acknowledged task events of `r`.
fn finished(r: &Receiver, id: &str) -> bool {
    r.got().iter().any(|g| {
        let v = g.json();
        g.ok && v["kind"] == "task" && v["taskId"] == id && v["data"]["status"] == "finished"
    })
}

fn verify(g: &Got) {
    let sig = g
        .headers
        .get("x-vwed-signature")
        .expect("a signature header");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&g.body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sig, &format!("sha256={hex}"));
    assert_eq!(g.headers["content-type"], "application/json");
}

#[test]
fn events_arrive_in_order_signed_retried_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let all = Receiver::start(2);
    let tasks_only = Receiver::start(0);
    let c = config(
        dir.path(),
        vec![
            hook(&all.url(), None),
            hook(&tasks_only.url(), Some(&["task"])),
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = start(&rt, &c);
    let addr = running.addr;
    submit(addr, "w1");
    wait_for("the run to finish", || finished(&tasks_only, "w1"));
    wait_for("every event at the first webhook", || {
        let ids: Vec<i64> = outbox(dir.path()).iter().map(|e| e.0).collect();
        all.acked() == ids
    });
    let events = outbox(dir.path());
    assert!(events.iter().any(|e| e.1 == "block"), "{events:?}");
    let got = all.got();
    // Two 500s for the first event, then each event exactly once, in id order.
    assert_eq!(got.iter().filter(|g| !g.ok).count(), 2);
    let first = got[0].json()["id"].as_i64().unwrap();
    assert!(got[..3].iter().all(|g| g.json()["id"] == first));
    let acked = all.acked();
    assert!(acked.windows(2).all(|w| w[0] < w[1]), "{acked:?}");
    assert_eq!(acked.first(), Some(&events[0].0));
    for g in &got {
        verify(g);
        let v = g.json();
        let id = v["id"].as_i64().unwrap();
        let kind = &events.iter().find(|e| e.0 == id).unwrap().1;
        assert_eq!(v["kind"], kind.as_str());
        if kind == "site" {
            // The demo sites stored at first start.
            assert!(
                v["taskId"].is_null() && v["data"]["siteId"].is_string(),
                "{v}"
            );
        } else {
            assert_eq!(v["taskId"], "w1");
        }
        assert!(v["data"].is_object(), "{v}");
    }
    // The task-only webhook: exactly the task events, nothing else.
    let want: Vec<i64> = events
        .iter()
        .filter(|e| e.1 == "task")
        .map(|e| e.0)
        .collect();
    let ok = Instant::now() + Duration::from_secs(5);
    while tasks_only.acked() != want && Instant::now() < ok {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(tasks_only.acked(), want, "{events:?}");
    assert!(tasks_only.got().iter().all(|g| g.json()["kind"] == "task"));
    tasks_only.got().iter().for_each(verify);
    let status = request(addr, "GET", "/api/system/status", &json!({}));
    let status: Value = serde_json::from_str(status.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let hooks = &status["webhooks"];
    assert_eq!(hooks[0]["url"], all.url());
    assert_eq!(hooks[0]["retries"], 2);
    assert_eq!(hooks[0]["delivered"], events.len());
    assert_eq!(hooks[0]["dropped"], 0);
    assert_eq!(hooks[0]["cursor"], events.last().unwrap().0);
    assert_eq!(hooks[1]["delivered"], want.len());
    let metrics = request(addr, "GET", "/metrics", &json!({}));
    let line = format!(
        "vwed_webhook{{url=\"{}\",counter=\"delivered\"}} {}",
        all.url(),
        events.len()
    );
    assert!(metrics.contains(&line), "{line} missing from {metrics}");
    rt.block_on(running.shutdown());
}

#[test]
fn the_cursor_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let r = Receiver::start(0);
    let c = config(dir.path(), vec![hook(&r.url(), None)]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = start(&rt, &c);
    submit(running.addr, "a1");
    wait_for("the first run", || finished(&r, "a1"));
    wait_for("the first run's events", || {
        let ids: Vec<i64> = outbox(dir.path()).iter().map(|e| e.0).collect();
        r.acked() == ids
    });
    let before = r.acked().len();
    rt.block_on(running.shutdown());

    let running = start(&rt, &c);
    submit(running.addr, "a2");
    wait_for("the second run", || finished(&r, "a2"));
    wait_for("the second run's events", || {
        let ids: Vec<i64> = outbox(dir.path()).iter().map(|e| e.0).collect();
        r.acked() == ids
    });
    let acked = r.acked();
    assert!(acked.len() > before);
    assert!(
        acked.windows(2).all(|w| w[0] < w[1]),
        "no event delivered twice: {acked:?}"
    );
    assert!(r.got().iter().all(|g| g.ok));
    assert!(r.got()[before..].iter().all(|g| g.json()["taskId"] == "a2"));
    rt.block_on(running.shutdown());
}

#[test]
fn a_new_webhook_does_not_replay_history() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = start(&rt, &config(dir.path(), Vec::new()));
    submit(running.addr, "old");
    wait_for("the first run to finish", || {
        finished_in_store(dir.path(), "old")
    });
    rt.block_on(running.shutdown());
    let old = outbox(dir.path()).last().unwrap().0;

    let r = Receiver::start(0);
    let running = start(&rt, &config(dir.path(), vec![hook(&r.url(), None)]));
    submit(running.addr, "new");
    wait_for("the new run", || finished(&r, "new"));
    assert!(r.acked().iter().all(|&id| id > old));
    assert!(r.got().iter().all(|g| g.json()["taskId"] == "new"));
    rt.block_on(running.shutdown());
}

#[test]
fn events_pruned_before_delivery_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let r = Receiver::start(0);
    let with_hook = config(dir.path(), vec![hook(&r.url(), None)]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = start(&rt, &with_hook);
    submit(running.addr, "p1");
    wait_for("the first run", || finished(&r, "p1"));
    let cursor = *r.acked().last().unwrap();
    rt.block_on(running.shutdown());
    // A run the webhook does not see, then its oldest events pruned behind the cursor.
    let running = start(&rt, &config(dir.path(), Vec::new()));
    submit(running.addr, "p2");
    wait_for("the unseen run", || finished_in_store(dir.path(), "p2"));
    rt.block_on(running.shutdown());
    let conn = rusqlite::Connection::open(dir.path().join("vwed.db")).unwrap();
    let pruned = conn
        .execute("DELETE FROM event_outbox WHERE id <= ?1", [cursor + 3])
        .unwrap();
    drop(conn);
    assert!(pruned > 3);

    let running = start(&rt, &with_hook);
    wait_for("the rest of the unseen run", || finished(&r, "p2"));
    let acked = r.acked();
    let resumed: Vec<i64> = acked.iter().copied().filter(|&id| id > cursor).collect();
    assert_eq!(resumed[0], cursor + 4, "continues at the oldest kept event");
    assert!(acked.windows(2).all(|w| w[0] < w[1]), "{acked:?}");
    let status = request(running.addr, "GET", "/api/system/status", &json!({}));
    let status: Value = serde_json::from_str(status.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(status["webhooks"][0]["skippedByPruning"], 3);
    rt.block_on(running.shutdown());
}
