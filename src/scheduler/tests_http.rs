//! HTTP blocks' retries (spec §3.9) through the scheduler on tokio's paused clock: a peer on
//! 127.0.0.1:0 that accepts and closes at once, so every attempt is a transport error.

use super::tests::{b, env, simple};
use super::*;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;
use tokio::net::TcpListener;

/// Accepts and closes connections until dropped; counts them.
struct Refuser {
    url: String,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Refuser {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn refuser() -> Refuser {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, SeqCst);
            drop(stream);
        }
    });
    Refuser {
        url,
        accepted,
        task,
    }
}

/// `retry` on: `retryTimes` attempts, `retryInterval` apart, each failure logged, then the
/// block fails naming the count; `retry` off: one attempt.
#[tokio::test(start_paused = true)]
async fn transport_errors_are_retried_retry_times_then_fail() {
    let peer = refuser().await;
    let e = env(Config::default()).await;
    let get = |retry: bool| {
        b(
            1,
            "GetBp",
            json!({"url": simple(&peer.url), "retry": simple(&retry.to_string()),
            "retryTimes": simple("4"), "retryInterval": simple("1500")}),
        )
    };
    e.define("once", json!([get(false)]), json!({})).await;
    e.define("four", json!([get(true)]), json!({})).await;
    let id = e.submit("once", 1).await;
    let rec = e.until_status(&id, TaskStatus::Interrupted).await;
    assert_eq!(peer.accepted.load(SeqCst), 1);
    assert!(!rec.ended_reason.unwrap().contains("attempts"));
    let t0 = tokio::time::Instant::now();
    let id = e.submit("four", 1).await;
    let rec = e.until_status(&id, TaskStatus::Interrupted).await;
    let took = t0.elapsed();
    assert_eq!(peer.accepted.load(SeqCst), 5, "1 + 4 attempts");
    let reason = rec.ended_reason.unwrap();
    assert!(reason.contains("after 4 attempts"), "{reason}");
    assert!(
        took >= Duration::from_millis(4_500),
        "three pauses of 1.5 s: {took:?}"
    );
    let logs = e.logs(&id).await.join("\n");
    assert!(
        logs.contains("attempt 3 of 4") && logs.contains("again in 1500 ms"),
        "{logs}"
    );
}

/// Answers each request only once `open` is set; counts requests.
async fn gate() -> (String, Arc<AtomicUsize>, tokio::sync::watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gate", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let (open, rx) = tokio::sync::watch::channel(false);
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, SeqCst);
            let mut rx = rx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = crate::test_net::read_some(&stream, &mut buf).await;
                let _ = rx.wait_for(|open| *open).await;
                let answer = r#"{"ok":1}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                crate::test_net::write_all(&stream, reply.as_bytes()).await;
            });
        }
    });
    (url, seen, open)
}

/// A pause asked while a request is in flight waits for its answer (spec §4.6). A restart
/// meanwhile keeps the pause: the request is sent again (at least once after a crash), and the
/// run pauses once it has answered.
#[tokio::test(start_paused = true)]
async fn a_pending_pause_survives_a_restart_and_takes_effect_after_the_answer() {
    let (url, seen, open) = gate().await;
    let e = env(Config::default()).await;
    let flow = json!([
        b(
            1,
            "PostBp",
            json!({"url": simple(&url), "param": simple("{}")})
        ),
        b(2, "PrintBp", json!({"message": simple("after")})),
    ]);
    e.define("gated", flow, json!({})).await;
    let id = e.submit("gated", 1).await;
    while seen.load(SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sched = e.sched.clone();
    let pause_id = id.clone();
    let pausing = tokio::spawn(async move { sched.control(&pause_id, Control::Pause).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!pausing.is_finished(), "the pause waits for the answer");
    assert_eq!(e.status(&id).await, TaskStatus::Running);
    let e = e.restart(Config::default()).await;
    let _ = pausing.await;
    while seen.load(SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        e.status(&id).await,
        TaskStatus::Running,
        "asked again, not paused yet"
    );
    open.send(true).unwrap();
    for _ in 0..1_000 {
        if e.status(&id).await == TaskStatus::Paused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        e.status(&id).await,
        TaskStatus::Paused,
        "the pause was kept"
    );
    assert!(e.blocks(&id).await.contains(&("b1".to_string(), 1003)));
    assert!(!e.logs(&id).await.iter().any(|l| l.contains("after")));
    e.sched.control(&id, Control::Resume).await.unwrap();
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    assert_eq!(seen.load(SeqCst), 2, "no third request");
}

/// While a pause waits for a request in flight, the other branches' waits stop at once (a
/// timer that would fire meanwhile does not); resumed, they wait again.
#[tokio::test(start_paused = true)]
async fn a_pending_pause_stops_the_other_branches_at_once() {
    let (url, seen, open) = gate().await;
    let e = env(Config::default()).await;
    let post = b(
        2,
        "PostBp",
        json!({"url": simple(&url), "param": simple("{}")}),
    );
    let delay = json!({"id": 3, "name": "b3", "blockType": "SerialFlowBp", "inputParams": {},
    "children": {"default": [
        b(4, "DelayBp", json!({"timeMillis": simple("10000")})),
        b(5, "PrintBp", json!({"message": simple("other branch")})),
    ]}});
    let par = json!({"id": 1, "name": "b1", "blockType": "ParallelFlowBp", "inputParams": {},
        "children": {"default": [post, delay]}});
    e.define("both", json!([par]), json!({})).await;
    let id = e.submit("both", 1).await;
    while seen.load(SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sched = e.sched.clone();
    let pause_id = id.clone();
    let pausing = tokio::spawn(async move { sched.control(&pause_id, Control::Pause).await });
    // Past the other branch's 10 s delay, within the request's 30 s timeout.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(!e.logs(&id).await.iter().any(|l| l.contains("other branch")));
    let blocks = e.blocks(&id).await;
    assert!(
        !blocks.contains(&("b4".to_string(), 1003)),
        "the delay stopped: {blocks:?}"
    );
    open.send(true).unwrap();
    assert_eq!(pausing.await.unwrap().unwrap(), TaskStatus::Paused);
    e.sched.control(&id, Control::Resume).await.unwrap();
    let rec = e.sched.wait_terminal(&id).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Finished, "{rec:?}");
    let logs = e.logs(&id).await;
    assert_eq!(
        logs.iter().filter(|l| l.contains("other branch")).count(),
        1
    );
}
