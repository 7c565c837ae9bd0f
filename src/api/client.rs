//! A small bounded HTTP/1.1 JSON client (for talking to a remote fleet core): `http://` URLs
//! only, one TCP connection per request driven inside the request's own future (no spawned
//! task), a connect and a total timeout, a cap on the answer's body and on requests in flight.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{header, Method, Request};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Default time to open the TCP connection (name resolution included); past it the request
/// fails with [`ClientError::Timeout`].
pub const HTTP_CLIENT_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// Default time for a whole request, from connecting to the last byte of the answer; past it
/// the request is abandoned (its connection closed) and fails with [`ClientError::Timeout`].
pub const HTTP_CLIENT_TOTAL_TIMEOUT_MS: u64 = 10_000;
/// Default cap on an answer's body; a longer body (announced or counted while reading) is not
/// read further and the request fails with [`ClientError::TooLarge`].
pub const HTTP_CLIENT_BODY_BYTES_MAX: usize = 1 << 20;
/// Default number of requests in flight at once per client; one more is refused at once with
/// [`ClientError::Busy`] (never queued).
pub const HTTP_CLIENT_CONCURRENT_MAX: usize = 16;

const _: () = assert!(HTTP_CLIENT_CONNECT_TIMEOUT_MS <= HTTP_CLIENT_TOTAL_TIMEOUT_MS);
const _: () = assert!(HTTP_CLIENT_CONCURRENT_MAX > 0 && HTTP_CLIENT_BODY_BYTES_MAX > 0);

/// The bounds of an [`HttpClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Time to open the connection (see [`HTTP_CLIENT_CONNECT_TIMEOUT_MS`]).
    pub connect_timeout_ms: u64,
    /// Time for the whole request (see [`HTTP_CLIENT_TOTAL_TIMEOUT_MS`]).
    pub total_timeout_ms: u64,
    /// Cap on an answer's body (see [`HTTP_CLIENT_BODY_BYTES_MAX`]).
    pub body_bytes_max: usize,
    /// Requests in flight at once (see [`HTTP_CLIENT_CONCURRENT_MAX`]).
    pub concurrent_max: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            connect_timeout_ms: HTTP_CLIENT_CONNECT_TIMEOUT_MS,
            total_timeout_ms: HTTP_CLIENT_TOTAL_TIMEOUT_MS,
            body_bytes_max: HTTP_CLIENT_BODY_BYTES_MAX,
            concurrent_max: HTTP_CLIENT_CONCURRENT_MAX,
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The connection could not be opened, or broke before the whole answer was read.
    Connect(String),
    /// A timeout (the connect or the total one, `ms` long) passed first.
    Timeout { ms: u64 },
    /// The answer's body is longer than `limit` bytes.
    TooLarge { limit: usize },
    /// `concurrent_max` requests are already in flight.
    Busy,
    /// The request cannot be made: a URL that is not `http://host[:port][/path][?query]`, or a
    /// bad method.
    Bad(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "connection failed: {e}"),
            ClientError::Timeout { ms } => write!(f, "no answer within the {ms} ms timeout"),
            ClientError::TooLarge { limit } => {
                write!(
                    f,
                    "answer body over the {limit}-byte limit (body_bytes_max)"
                )
            }
            ClientError::Busy => write!(f, "too many requests in flight (concurrent_max)"),
            ClientError::Bad(e) => write!(f, "bad request: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A bounded HTTP/1.1 JSON client; clones share the limits and the in-flight count.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: ClientLimits,
    in_flight: Semaphore,
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// The host to connect to (an IPv6 address without its brackets).
    host: String,
    port: u16,
    /// The `Host` header: the URL's authority as written.
    authority: String,
    /// Path and query, starting with `/`.
    path: String,
}

impl HttpClient {
    /// A client bounded by `limits`.
    pub fn new(limits: ClientLimits) -> HttpClient {
        let permits = limits.concurrent_max.min(Semaphore::MAX_PERMITS);
        HttpClient {
            inner: Arc::new(Inner {
                limits,
                in_flight: Semaphore::new(permits),
            }),
        }
    }

    /// The client's limits.
    pub fn limits(&self) -> ClientLimits {
        self.inner.limits
    }

    /// Checks that `url` is one this client can request (`http://host[:port][/path][?query]`).
    pub fn check_url(url: &str) -> Result<(), ClientError> {
        parse_url(url).map(|_| ())
    }

    /// Sends `method url` with `body` as JSON; the answer's status and body, whatever the
    /// status. Refused at once with `Busy` when `concurrent_max` requests are in flight.
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let bytes = match body {
            Some(value) => Some((
                "application/json",
                serde_json::to_vec(value).map_err(|e| ClientError::Bad(format!("body: {e}")))?,
            )),
            None => None,
        };
        let out = Outbound {
            method,
            url,
            headers: &[],
            body: bytes,
            timeout_ms: None,
        };
        let _permit = self
            .inner
            .in_flight
            .try_acquire()
            .map_err(|_| ClientError::Busy)?;
        self.exchange_within(out).await
    }

    /// Sends `out`, waiting for a free place when `concurrent_max` requests are in flight
    /// (the waiters are the callers' own futures; dropping one leaves the queue).
    pub async fn send(&self, out: Outbound<'_>) -> Result<(u16, Vec<u8>), ClientError> {
        let _permit = self
            .inner
            .in_flight
            .acquire()
            .await
            .map_err(|_| ClientError::Busy)?;
        self.exchange_within(out).await
    }

    async fn exchange_within(&self, out: Outbound<'_>) -> Result<(u16, Vec<u8>), ClientError> {
        let target = parse_url(out.url)?;
        let timeout_ms = out.timeout_ms.unwrap_or(self.inner.limits.total_timeout_ms);
        let request = build(&out, &target)?;
        let limits = ClientLimits {
            connect_timeout_ms: self.inner.limits.connect_timeout_ms.min(timeout_ms),
            ..self.inner.limits
        };
        let total = Duration::from_millis(timeout_ms);
        match tokio::time::timeout(total, exchange(&limits, &target, request)).await {
            Ok(answer) => answer,
            Err(_) => Err(ClientError::Timeout { ms: timeout_ms }),
        }
    }
}

/// One request to send with [`HttpClient::send`].
#[derive(Debug, Clone)]
pub struct Outbound<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// Extra headers; `Host`, `Content-Length`, `Transfer-Encoding` and `Connection` are the
    /// client's own and refused here.
    pub headers: &'a [(String, String)],
    /// Content type and bytes.
    pub body: Option<(&'a str, Vec<u8>)>,
    /// Replaces the client's total timeout for this request.
    pub timeout_ms: Option<u64>,
}

/// Parses `http://host[:port][/path][?query]`.
fn parse_url(url: &str) -> Result<Target, ClientError> {
    let bad = |why: &str| ClientError::Bad(format!("{why}: {url:?}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs are supported"))?;
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) || rest.contains('#') {
        return Err(bad(
            "whitespace, control characters or a fragment in the URL",
        ));
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err(bad("user info in the URL"));
    }
    let (host, port) = split_authority(authority).ok_or_else(|| bad("bad host or port"))?;
    let path = match path.chars().next() {
        None => "/".to_string(),
        Some('?') => format!("/{path}"),
        Some(_) => path.to_string(),
    };
    Ok(Target {
        host,
        port,
        authority: authority.to_string(),
        path,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → host and port (80 when absent).
fn split_authority(authority: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// Headers the client sets itself.
const OWN_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

fn build(out: &Outbound<'_>, target: &Target) -> Result<Request<Full<Bytes>>, ClientError> {
    let method = Method::from_bytes(out.method.as_bytes())
        .map_err(|_| ClientError::Bad(format!("method {:?}", out.method)))?;
    let mut builder = Request::builder()
        .method(method)
        .uri(target.path.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::CONNECTION, "close");
    let user_accept = out
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("accept"));
    if !user_accept {
        builder = builder.header(header::ACCEPT, "application/json");
    }
    for (name, value) in out.headers {
        if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ClientError::Bad(format!(
                "header {name} is set by the client"
            )));
        }
        let name_ok = header::HeaderName::from_bytes(name.as_bytes()).is_ok();
        let value_ok = header::HeaderValue::from_str(value).is_ok();
        if !name_ok || !value_ok {
            return Err(ClientError::Bad(format!("header {name:?}: {value:?}")));
        }
        builder = builder.header(name.as_str(), value.as_str());
    }
    let bytes = match &out.body {
        Some((content_type, bytes)) => {
            let user_type = out
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
            if !user_type {
                builder = builder.header(header::CONTENT_TYPE, *content_type);
            }
            bytes.clone()
        }
        None => Vec::new(),
    };
    builder
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| ClientError::Bad(format!("request: {e}")))
}

/// Connects, sends `request` and reads the answer; the connection is driven here, beside the
/// exchange, and closed when this future ends or is dropped.
async fn exchange(
    limits: &ClientLimits,
    target: &Target,
    request: Request<Full<Bytes>>,
) -> Result<(u16, Vec<u8>), ClientError> {
    let stream = connect(limits, target).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Connect(format!("handshake: {e}")))?;
    let answer = async {
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| ClientError::Connect(format!("sending the request: {e}")))?;
        let status = resp.status().as_u16();
        let body = read_body(resp.into_body(), limits.body_bytes_max).await?;
        Ok((status, body))
    };
    let mut answer = std::pin::pin!(answer);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        biased;
        r = &mut answer => return r,
        _ = &mut conn => {}
    }
    // The connection ended; the answer (or its error) is already on its way.
    answer.await
}

async fn connect(limits: &ClientLimits, target: &Target) -> Result<TcpStream, ClientError> {
    let limit = Duration::from_millis(limits.connect_timeout_ms);
    let connecting = TcpStream::connect((target.host.as_str(), target.port));
    match tokio::time::timeout(limit, connecting).await {
        Err(_) => Err(ClientError::Timeout {
            ms: limits.connect_timeout_ms,
        }),
        Ok(Err(e)) => Err(ClientError::Connect(format!(
            "{}:{}: {e}",
            target.host, target.port
        ))),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// Reads the body, counting bytes as they come; refused past `max` (at once when the announced
/// length is already over it).
async fn read_body(mut body: Incoming, max: usize) -> Result<Vec<u8>, ClientError> {
    let announced = hyper::body::Body::size_hint(&body).exact();
    if announced.is_some_and(|n| n > max as u64) {
        return Err(ClientError::TooLarge { limit: max });
    }
    let capacity = announced.map_or(0, |n| usize::try_from(n).unwrap_or(max).min(max));
    let mut out = Vec::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ClientError::Connect(format!("reading the answer: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(ClientError::TooLarge { limit: max });
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_net::{read_some, write_all};
    use hyper::service::service_fn;
    use hyper::Response;
    use serde_json::{json, Value};
    use std::convert::Infallible;
    use tokio::net::TcpListener;

    const CAP: usize = 1_000;

    fn limits() -> ClientLimits {
        ClientLimits {
            body_bytes_max: CAP,
            ..ClientLimits::default()
        }
    }

    /// Echoes method, path and JSON body; `/status/N` answers status N; `/big` answers CAP + 1
    /// bytes.
    async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let method = req.method().to_string();
        let path = req.uri().to_string();
        let bytes = req.into_body().collect().await.map(|b| b.to_bytes());
        let body: Value = bytes
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let (status, text) = if let Some(code) = path.strip_prefix("/status/") {
            (
                code.parse().unwrap(),
                json!({"code": 1, "msg": "no"}).to_string(),
            )
        } else if path == "/big" {
            (200, "x".repeat(CAP + 1))
        } else {
            let v = json!({"method": method, "path": path, "body": body});
            (200, v.to_string())
        };
        let resp = Response::builder()
            .status(status)
            .body(Full::new(Bytes::from(text)))
            .unwrap();
        Ok(resp)
    }

    /// Serves connections one after another, forever (the test ends it by finishing first).
    async fn serve(listener: TcpListener) {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle));
            let _ = conn.await;
        }
    }

    async fn with_server<F: std::future::Future>(f: impl FnOnce(String) -> F) -> F::Output {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::select! {
            _ = serve(listener) => unreachable!("the server never ends"),
            out = f(base) => out,
        }
    }

    #[tokio::test]
    async fn a_json_body_goes_there_and_back() {
        let client = HttpClient::new(limits());
        let body = json!({"id": "o-1", "blocks": [], "n": 1.5});
        let sent = body.clone();
        let (status, answer) = with_server(|base| async move {
            client
                .request("POST", &format!("{base}/setOrder?x=1"), Some(&sent))
                .await
                .unwrap()
        })
        .await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&answer).unwrap();
        let expected = json!({"method": "POST", "path": "/setOrder?x=1", "body": body});
        assert_eq!(v, expected);
    }

    #[tokio::test]
    async fn error_statuses_are_passed_through() {
        let client = HttpClient::new(limits());
        let statuses = with_server(|base| async move {
            let mut out = Vec::new();
            for code in [400, 404, 500, 503] {
                let url = format!("{base}/status/{code}");
                out.push(client.request("GET", &url, None).await.unwrap().0);
            }
            out
        })
        .await;
        assert_eq!(statuses, vec![400, 404, 500, 503]);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = HttpClient::new(limits());
        let err = client
            .request("GET", &format!("http://{addr}/robotsStatus"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_answers_times_out_naming_the_limit() {
        // Never accepted: the kernel completes the handshake and the request waits forever.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = HttpClient::new(ClientLimits {
            connect_timeout_ms: 60_000,
            total_timeout_ms: 5_000,
            ..limits()
        });
        let err = client
            .request("GET", &format!("http://{addr}/orders"), None)
            .await
            .unwrap_err();
        assert_eq!(err, ClientError::Timeout { ms: 5_000 });
        assert!(err.to_string().contains("5000 ms"), "{err}");
        drop(listener);
    }

    #[tokio::test]
    async fn an_announced_body_over_the_cap_is_refused() {
        let client = HttpClient::new(limits());
        let err = with_server(|base| async move {
            client
                .request("GET", &format!("{base}/big"), None)
                .await
                .unwrap_err()
        })
        .await;
        assert_eq!(err, ClientError::TooLarge { limit: CAP });
        assert!(err.to_string().contains("1000-byte limit"), "{err}");
    }

    /// A chunked answer announces no length: the running count refuses it.
    #[tokio::test]
    async fn a_chunked_body_over_the_cap_is_refused_while_reading() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 1024];
            read_some(&stream, &mut head).await;
            let chunk = "y".repeat(400);
            let mut out = String::from("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
            for _ in 0..3 {
                out.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
            }
            out.push_str("0\r\n\r\n");
            write_all(&stream, out.as_bytes()).await;
            // Keep the connection open until the client has given up.
            read_some(&stream, &mut head).await;
        };
        let client = HttpClient::new(limits());
        let url = format!("http://{addr}/orders");
        let (_, result) = tokio::join!(server, client.request("GET", &url, None));
        assert_eq!(result.unwrap_err(), ClientError::TooLarge { limit: CAP });
    }

    #[tokio::test]
    async fn requests_past_concurrent_max_are_busy() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let client = HttpClient::new(ClientLimits {
            concurrent_max: 1,
            total_timeout_ms: 300,
            ..limits()
        });
        let (first, second) = tokio::join!(client.request("GET", &url, None), async {
            tokio::task::yield_now().await;
            client.request("GET", &url, None).await
        });
        assert_eq!(first.unwrap_err(), ClientError::Timeout { ms: 300 });
        assert_eq!(second.unwrap_err(), ClientError::Busy);
        drop(listener);
    }

    #[tokio::test]
    async fn only_plain_http_urls_are_accepted() {
        let client = HttpClient::new(limits());
        for url in [
            "https://127.0.0.1:8088/setOrder",
            "ftp://host/x",
            "127.0.0.1:8088",
            "http://",
            "http://host:0/",
            "http://host:99999/",
            "http://user@host/",
            "http://host/a b",
            "http://host/x#frag",
        ] {
            let err = client.request("GET", url, None).await.unwrap_err();
            assert!(matches!(err, ClientError::Bad(_)), "{url}: {err:?}");
        }
    }

    #[test]
    fn urls_are_split_into_host_port_and_path() {
        let t = parse_url("http://core.local:8088/orders?page=1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("core.local", 8088));
        assert_eq!(t.path, "/orders?page=1");
        let t = parse_url("http://[::1]:9/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str()),
            ("::1", 9, "[::1]:9")
        );
        let t = parse_url("http://host?q=1").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/?q=1"));
        assert_eq!(parse_url("http://host").unwrap().path, "/");
    }
}
