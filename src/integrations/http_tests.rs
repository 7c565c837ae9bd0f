//! HTTP block requests against a local hyper server on 127.0.0.1:0.

use super::*;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// A request as seen: method, path, content type, `X-Station`, body.
type Request5 = (String, String, String, String, String);

/// What the server saw: how many requests, and the last one.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    last: Mutex<Option<Request5>>,
}

/// `/json` answers `{"ok":true}`, `/status/N` status N with a JSON body, `/text` plain text,
/// `/empty` nothing, `/big` a body over the cap, `/slow` never; everything else echoes.
async fn handle(
    seen: Arc<Seen>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    seen.requests.fetch_add(1, SeqCst);
    let method = req.method().to_string();
    let path = req.uri().to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (ctype, custom) = (header("content-type"), header("x-station"));
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body).to_string();
    *seen.last.lock().unwrap() = Some((method, path.clone(), ctype, custom, body));
    let (status, text) = match path.as_str() {
        "/json" => (200, r#"{"ok":true}"#.to_string()),
        "/text" => (200, "not json".to_string()),
        "/empty" => (200, String::new()),
        "/big" => (200, "7".repeat(HTTP_BLOCK_BODY_BYTES_MAX + 1)),
        "/slow" => std::future::pending().await,
        p if p.starts_with("/status/") => (p[8..].parse().unwrap(), r#"{"err":1}"#.to_string()),
        _ => (200, r#"[1,2]"#.to_string()),
    };
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(text)))
        .unwrap())
}

async fn serve(listener: TcpListener, seen: Arc<Seen>) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let s = seen.clone();
        let conn = hyper::server::conn::http1::Builder::new().serve_connection(
            TokioIo::new(stream),
            service_fn(move |r| handle(s.clone(), r)),
        );
        let _ = conn.await;
    }
}

/// Runs `f(base_url)` against the server; what it returned and what the server saw.
async fn with_server<F: std::future::Future>(
    f: impl FnOnce(String) -> F,
) -> (F::Output, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let out = tokio::select! {
        _ = serve(listener, seen.clone()) => unreachable!("the server never ends"),
        out = f(base) => out,
    };
    (out, seen)
}

fn params(v: Value) -> Map {
    v.as_object().unwrap().clone()
}

async fn run(kind: HttpKind, p: Value) -> IoReply {
    let op = HttpOp::from_params(kind, &params(p)).unwrap();
    perform(&client(), &op).await
}

fn failed(reply: IoReply) -> String {
    match reply {
        IoReply::Failed(reason) => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn get_answers_the_json_body_or_null() {
    let (out, seen) = with_server(|base| async move {
        let p = |path: &str| {
            json!({"url": format!("{base}{path}"),
            "header": {"X-Station": "LM1"}})
        };
        (
            run(HttpKind::Get, p("/json")).await,
            run(HttpKind::Get, p("/status/404")).await,
            run(HttpKind::Get, p("/status/500")).await,
            run(HttpKind::Get, p("/empty")).await,
            failed(run(HttpKind::Get, p("/text")).await),
        )
    })
    .await;
    assert_eq!(out.0, IoReply::Value(json!({"ok": true})));
    assert_eq!(out.1, IoReply::Value(Value::Null), "4xx: null");
    assert_eq!(out.2, IoReply::Value(Value::Null), "5xx: null");
    assert_eq!(out.3, IoReply::Value(Value::Null), "empty: null");
    assert!(
        out.4.contains("can not cast to JSON.") && out.4.contains("not json"),
        "{}",
        out.4
    );
    assert_eq!(seen.requests.load(SeqCst), 5, "each sent exactly once");
    let last = seen.last.lock().unwrap().clone().unwrap();
    assert_eq!((last.0.as_str(), last.3.as_str()), ("GET", "LM1"));
}

#[tokio::test]
async fn post_answers_code_and_body_whatever_the_status() {
    let (out, seen) = with_server(|base| async move {
        let ok = run(
            HttpKind::Post,
            json!({"url": format!("{base}/json"),
            "param": {"site": "LM1", "n": 2}}),
        )
        .await;
        let err = run(
            HttpKind::Post,
            json!({"url": format!("{base}/status/503"),
            "param": "raw text", "mediaType": "text"}),
        )
        .await;
        (ok, err)
    })
    .await;
    assert_eq!(
        out.0,
        IoReply::Value(json!({"code": "200", "body": {"ok": true}}))
    );
    assert_eq!(
        out.1,
        IoReply::Value(json!({"code": "503", "body": {"err": 1}}))
    );
    let last = seen.last.lock().unwrap().clone().unwrap();
    assert_eq!(
        (last.0.as_str(), last.2.as_str(), last.4.as_str()),
        ("POST", "text/plain", "raw text")
    );
}

#[tokio::test]
async fn form_posts_are_key_value_pairs_and_vwed_blocks_alias_rds_ones() {
    let (out, seen) = with_server(|base| async move {
        let form = run(
            HttpKind::Post,
            json!({"url": format!("{base}/echo"),
            "param": "{\"a\":1,\"b\":\"x y\"}", "mediaType": "XWWWFORMURLENCODED"}),
        )
        .await;
        let vwed = run(
            HttpKind::VwedPost,
            json!({"url": format!("{base}/echo"),
            "headers": {"X-Station": "B-02"}, "body": {"k": true}, "timeout": 5000}),
        )
        .await;
        (form, vwed)
    })
    .await;
    assert_eq!(
        out.0,
        IoReply::Value(json!({"code": "200", "body": [1, 2]}))
    );
    assert_eq!(
        out.1,
        IoReply::Value(json!({"code": "200", "body": [1, 2]}))
    );
    let last = seen.last.lock().unwrap().clone().unwrap();
    assert_eq!(
        (last.2.as_str(), last.3.as_str(), last.4.as_str()),
        ("application/json", "B-02", r#"{"k":true}"#)
    );
    // The form body as RDS sends it, from a JSON object (above: from a string holding one).
    let (_, seen) = with_server(|base| async move {
        run(
            HttpKind::Post,
            json!({"url": format!("{base}/echo"),
            "param": {"a": 1, "b": "x y"}, "mediaType": "XWWWFORMURLENCODED"}),
        )
        .await
    })
    .await;
    let last = seen.last.lock().unwrap().clone().unwrap();
    assert_eq!(
        (last.2.as_str(), last.4.as_str()),
        ("application/x-www-form-urlencoded", "a=1&b=x y")
    );
}

#[tokio::test]
async fn an_answer_over_the_cap_fails_naming_the_limit() {
    let (reason, _) = with_server(|base| async move {
        failed(run(HttpKind::Get, json!({"url": format!("{base}/big")})).await)
    })
    .await;
    assert!(reason.contains("HTTP_BLOCK_BODY_BYTES_MAX"), "{reason}");
}

/// A request past its timeout is a transport error naming the timeout (retried when the
/// block's `retry` is on).
#[tokio::test]
async fn a_request_past_its_timeout_is_a_transport_error_naming_it() {
    let (reply, seen) = with_server(|base| async move {
        run(
            HttpKind::VwedGet,
            json!({"url": format!("{base}/slow"), "timeout": 200}),
        )
        .await
    })
    .await;
    assert!(
        matches!(&reply, IoReply::Transport(m) if m.contains("200 ms")),
        "{reply:?}"
    );
    assert_eq!(seen.requests.load(SeqCst), 1);
}

/// A peer that accepts and closes at once: one attempt, a transport error the block may
/// retry (the retries themselves are the block's, see `scheduler::tests_http`).
#[tokio::test]
async fn a_connection_closed_without_an_answer_is_a_transport_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    let accepted = AtomicUsize::new(0);
    let refuse = async {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            accepted.fetch_add(1, SeqCst);
            drop(stream);
        }
    };
    let p = json!({"url": url, "retry": true, "retryTimes": 4});
    let reply = tokio::select! {
        _ = refuse => unreachable!(),
        out = run(HttpKind::Get, p) => out,
    };
    assert!(
        matches!(&reply, IoReply::Transport(m) if m.contains("GET")),
        "{reply:?}"
    );
    assert_eq!(accepted.load(SeqCst), 1, "perform sends once");
}

#[test]
fn bad_parameters_are_refused_naming_them() {
    let bad = |kind, p: Value| HttpOp::from_params(kind, &params(p)).unwrap_err();
    let url = "http://127.0.0.1:9/x";
    assert!(bad(HttpKind::Get, json!({"url": " "})).contains("url"));
    assert!(bad(HttpKind::Get, json!({"url": "https://x/"})).contains("http://"));
    assert!(bad(HttpKind::Get, json!({"url": "ftp:x"})).contains("url"));
    let e = bad(
        HttpKind::Get,
        json!({"url": url, "retry": true, "retryTimes": 101}),
    );
    assert!(e.contains("HTTP_BLOCK_ATTEMPTS_MAX"), "{e}");
    let e = bad(
        HttpKind::Get,
        json!({"url": url, "retry": true, "retryTimes": 0}),
    );
    assert!(e.contains("retryTimes"), "{e}");
    let e = bad(HttpKind::Get, json!({"url": url, "retryInterval": "soon"}));
    assert!(e.contains("retryInterval"), "{e}");
    let e = bad(
        HttpKind::Get,
        json!({"url": url, "retryInterval": 3_600_001}),
    );
    assert!(e.contains("HTTP_BLOCK_RETRY_INTERVAL_MS_MAX"), "{e}");
    let e = bad(HttpKind::VwedGet, json!({"url": url, "timeout": 300_001}));
    assert!(e.contains("HTTP_BLOCK_TIMEOUT_MS_MAX"), "{e}");
    let e = bad(HttpKind::Post, json!({"url": url, "mediaType": "PDF"}));
    assert!(e.contains("mediaType"), "{e}");
    let big = "x".repeat(HTTP_BLOCK_REQUEST_BYTES_MAX + 1);
    let e = bad(HttpKind::Post, json!({"url": url, "param": big}));
    assert!(e.contains("HTTP_BLOCK_REQUEST_BYTES_MAX"), "{e}");
    let many: serde_json::Map<String, Value> = (0..=HTTP_BLOCK_HEADERS_MAX)
        .map(|i| (format!("X-{i}"), json!("v")))
        .collect();
    let e = bad(HttpKind::Get, json!({"url": url, "header": many}));
    assert!(e.contains("HTTP_BLOCK_HEADERS_MAX"), "{e}");
    // A header map that is not a map is ignored; retry off means one attempt.
    let op = HttpOp::from_params(
        HttpKind::Get,
        &params(json!({"url": url, "header": "x",
        "retryTimes": 9})),
    )
    .unwrap();
    assert_eq!((op.headers.len(), op.attempts), (0, 1));
}

#[tokio::test]
async fn a_header_the_client_owns_fails_the_request() {
    let op = HttpOp::from_params(
        HttpKind::Get,
        &params(json!({"url": "http://127.0.0.1:9/", "header": {"Host": "evil"}})),
    )
    .unwrap();
    let reason = failed(perform(&client(), &op).await);
    assert!(reason.contains("Host"), "{reason}");
}
