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
    let rec = until_interrupted(&e, &id).await;
    assert_eq!(peer.accepted.load(SeqCst), 1);
    assert!(!rec.ended_reason.unwrap().contains("attempts"));
    let t0 = tokio::time::Instant::now();
    let id = e.submit("four", 1).await;
    let rec = until_interrupted(&e, &id).await;
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

async fn until_interrupted(e: &super::tests::Env, id: &str) -> TaskRecord {
    for _ in 0..1_000 {
        let rec = e.record(id).await;
        if rec.status == TaskStatus::Interrupted {
            return rec;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {id} never interrupted");
}
