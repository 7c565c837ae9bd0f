//! The HTTP blocks' requests (spec §3.9): `GetBp`/`PostBp` (RDS) and `HttpGetBp`/`HttpPostBp`
//! (VWED, as aliases: `headers` for `header`, a per-request `timeout`, the POST body from the
//! first of `params`, `param`, `body`). [`HttpOp::from_params`] turns a block's evaluated
//! parameters into one request description with its retry policy; [`perform`] sends it once
//! through the bounded client (connect and total timeouts, answer cap, requests in flight).
//! The block retries transport errors itself (`blocks::http`): `retryInterval` apart, at most
//! `retryTimes` attempts, each pause a timer wait that stop and pause end at once.

use super::IoReply;
use crate::api::client::{ClientError, HttpClient, Outbound};
use crate::value::{self, Map, Value};
use serde::{Deserialize, Serialize};

/// Time to open a block's connection (spec §3.9 recommends 5 s); past it the attempt fails as
/// a transport error (retried when `retry` is on).
pub const HTTP_BLOCK_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Default time for a block's whole request (§3.9 recommends 30 s; `HttpGetBp`'s `timeout`
/// replaces it); past it the attempt fails as a transport error.
pub const HTTP_BLOCK_TIMEOUT_MS: u64 = 30_000;
/// Largest `timeout` a VWED block may ask for; more fails the block naming this limit.
pub const HTTP_BLOCK_TIMEOUT_MS_MAX: u64 = 300_000;
/// Cap on an answer's body; a longer one fails the block naming this limit (not retried).
pub const HTTP_BLOCK_BODY_BYTES_MAX: usize = 1 << 20;
/// Requests of HTTP blocks in flight at once; more wait for a free place (in their own
/// block's wait, so stop and pause still end them).
pub const HTTP_BLOCK_REQUESTS_MAX: usize = 16;
/// Largest `retryTimes`; more fails the block naming this limit, so no retry loop is endless.
pub const HTTP_BLOCK_ATTEMPTS_MAX: u32 = 100;
/// Largest `retryInterval` in ms; more fails the block naming this limit.
pub const HTTP_BLOCK_RETRY_INTERVAL_MS_MAX: u64 = 3_600_000;
/// Bytes of a request body (it is kept in the run's checkpoint while the block waits); more
/// fails the block naming this limit.
pub const HTTP_BLOCK_REQUEST_BYTES_MAX: usize = 256 * 1024;
/// Headers one block may send; more fail the block naming this limit.
pub const HTTP_BLOCK_HEADERS_MAX: usize = 64;
/// Characters of an answer quoted in an error.
const QUOTE_CHARS_MAX: usize = 200;

const _: () = assert!(HTTP_BLOCK_CONNECT_TIMEOUT_MS <= HTTP_BLOCK_TIMEOUT_MS);
const _: () = assert!(HTTP_BLOCK_TIMEOUT_MS <= HTTP_BLOCK_TIMEOUT_MS_MAX);

/// The client HTTP blocks share.
pub fn client() -> HttpClient {
    HttpClient::new(crate::api::client::ClientLimits {
        connect_timeout_ms: HTTP_BLOCK_CONNECT_TIMEOUT_MS,
        total_timeout_ms: HTTP_BLOCK_TIMEOUT_MS,
        body_bytes_max: HTTP_BLOCK_BODY_BYTES_MAX,
        concurrent_max: HTTP_BLOCK_REQUESTS_MAX,
    })
}

/// Which block asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpKind {
    /// `GetBp`
    Get,
    /// `PostBp`
    Post,
    /// `HttpGetBp`
    VwedGet,
    /// `HttpPostBp`
    VwedPost,
}

impl HttpKind {
    fn post(self) -> bool {
        matches!(self, HttpKind::Post | HttpKind::VwedPost)
    }

    fn vwed(self) -> bool {
        matches!(self, HttpKind::VwedGet | HttpKind::VwedPost)
    }
}

/// One HTTP block's request and retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpOp {
    /// POST (answer `{code, body}`) or GET (answer the body).
    pub post: bool,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Content type and text of a POST body.
    pub body: Option<(String, String)>,
    /// Attempts in all (1 when `retry` is off).
    pub attempts: u32,
    pub interval_ms: u64,
    /// Replaces [`HTTP_BLOCK_TIMEOUT_MS`].
    pub timeout_ms: Option<u64>,
}

fn text(params: &Map, name: &str) -> Option<String> {
    params
        .get(name)
        .filter(|v| !v.is_null())
        .and_then(value::to_java_string)
}

fn number(params: &Map, name: &str, default: i64) -> Result<i64, String> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => Ok(value::to_long(v)
            .map_err(|e| format!("parameter {name}: {e}"))?
            .unwrap_or(default)),
    }
}

/// A whole-number parameter in `min..=max` (`limit` names the upper bound).
fn bounded(
    params: &Map,
    name: &str,
    default: i64,
    min: i64,
    max: u64,
    limit: &str,
) -> Result<u64, String> {
    let n = number(params, name, default)?;
    if n < min {
        return Err(format!("parameter {name} must be at least {min}, got {n}"));
    }
    let n = n as u64;
    if n > max {
        return Err(format!("parameter {name} is {n}, over {limit} ({max})"));
    }
    Ok(n)
}

/// The headers of a map parameter (a value that is not a map is ignored, as RDS does).
fn headers(params: &Map, name: &str) -> Result<Vec<(String, String)>, String> {
    let Some(Value::Object(map)) = params.get(name) else {
        return Ok(Vec::new());
    };
    if map.len() > HTTP_BLOCK_HEADERS_MAX {
        return Err(format!(
            "parameter {name} has {} headers, over HTTP_BLOCK_HEADERS_MAX ({HTTP_BLOCK_HEADERS_MAX})",
            map.len()
        ));
    }
    Ok(map
        .iter()
        .map(|(k, v)| (k.clone(), value::to_java_string(v).unwrap_or_default()))
        .collect())
}

/// `mediaType` → content type.
fn content_type(media: &str) -> Option<&'static str> {
    Some(match media.trim().to_ascii_uppercase().as_str() {
        "JSON" => "application/json",
        "JAVASCRIPT" => "application/javascript",
        "HTML" => "text/html",
        "TEXT" => "text/plain",
        "XML" => "application/xml",
        "XWWWFORMURLENCODED" => "application/x-www-form-urlencoded",
        _ => return None,
    })
}

/// The POST body: a string as is, a map or list as JSON text; for a form, a JSON object (or a
/// string holding one) as `k1=v1&k2=v2` without URL encoding (as RDS sends it).
fn body_text(param: Option<&Value>, form: bool) -> String {
    let parsed_string = match param {
        Some(Value::String(s)) if form => serde_json::from_str::<Value>(s).ok(),
        _ => None,
    };
    match (param, parsed_string.as_ref()) {
        (_, Some(Value::Object(map))) | (Some(Value::Object(map)), _) if form => map
            .iter()
            .map(|(k, v)| format!("{k}={}", value::to_java_string(v).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("&"),
        (None | Some(Value::Null), _) => String::new(),
        (Some(Value::String(s)), _) => s.clone(),
        (Some(other), _) => other.to_string(),
    }
}

impl HttpOp {
    /// The request a block of `kind` asks for; the error names the parameter or limit.
    pub fn from_params(kind: HttpKind, params: &Map) -> Result<HttpOp, String> {
        let url = text(params, "url")
            .filter(|u| !u.trim().is_empty())
            .ok_or("parameter url is empty")?;
        let url = url.trim().to_string();
        HttpClient::check_url(&url).map_err(|e| format!("parameter url: {e}"))?;
        let header_param = if kind.vwed() { "headers" } else { "header" };
        let headers = headers(params, header_param)?;
        let retry = params.get("retry").is_some_and(value::to_bool);
        let attempts = if retry {
            let max = u64::from(HTTP_BLOCK_ATTEMPTS_MAX);
            bounded(params, "retryTimes", 3, 1, max, "HTTP_BLOCK_ATTEMPTS_MAX")? as u32
        } else {
            1
        };
        let interval_ms = bounded(
            params,
            "retryInterval",
            1_000,
            0,
            HTTP_BLOCK_RETRY_INTERVAL_MS_MAX,
            "HTTP_BLOCK_RETRY_INTERVAL_MS_MAX",
        )?;
        let timeout_ms = if kind.vwed() {
            let ms = bounded(
                params,
                "timeout",
                HTTP_BLOCK_TIMEOUT_MS as i64,
                1,
                HTTP_BLOCK_TIMEOUT_MS_MAX,
                "HTTP_BLOCK_TIMEOUT_MS_MAX",
            )?;
            Some(ms)
        } else {
            None
        };
        let body = if kind.post() {
            let media = text(params, "mediaType").unwrap_or_else(|| "JSON".to_string());
            let ctype = content_type(&media)
                .ok_or_else(|| format!("parameter mediaType: unknown media type {media:?}"))?;
            let names: &[&str] = if kind.vwed() {
                &["params", "param", "body"]
            } else {
                &["param"]
            };
            let param = names
                .iter()
                .find_map(|n| params.get(*n).filter(|v| !v.is_null()));
            let form = ctype == "application/x-www-form-urlencoded";
            let text = body_text(param, form);
            if text.len() > HTTP_BLOCK_REQUEST_BYTES_MAX {
                return Err(format!(
                    "request body of {} bytes, over HTTP_BLOCK_REQUEST_BYTES_MAX \
                     ({HTTP_BLOCK_REQUEST_BYTES_MAX})",
                    text.len()
                ));
            }
            Some((ctype.to_string(), text))
        } else {
            None
        };
        Ok(HttpOp {
            post: kind.post(),
            url,
            headers,
            body,
            attempts,
            interval_ms,
            timeout_ms,
        })
    }
}

fn quote(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(QUOTE_CHARS_MAX)
        .collect()
}

/// The answer body as JSON: `None` when empty, an error when it is not JSON.
fn json_body(body: &[u8]) -> Result<Option<Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|_| format!("can not cast to JSON.: {}", quote(body)))
}

/// Sends `op` once: the block's `response`, a transport error the block may retry
/// ([`IoReply::Transport`]: no connection, no answer in time), or why it failed.
pub async fn perform(client: &HttpClient, op: &HttpOp) -> IoReply {
    let method = if op.post { "POST" } else { "GET" };
    let out = Outbound {
        method,
        url: &op.url,
        headers: &op.headers,
        body: op
            .body
            .as_ref()
            .map(|(ctype, text)| (ctype.as_str(), text.as_bytes().to_vec())),
        timeout_ms: op.timeout_ms,
    };
    let (status, body) = match client.send(out).await {
        Ok(answer) => answer,
        Err(ClientError::TooLarge { .. }) => {
            return IoReply::Failed(format!(
                "{method} {}: answer body over HTTP_BLOCK_BODY_BYTES_MAX \
                 ({HTTP_BLOCK_BODY_BYTES_MAX} bytes)",
                op.url
            ))
        }
        Err(e @ (ClientError::Connect(_) | ClientError::Timeout { .. })) => {
            return IoReply::Transport(format!("{method} {}: {e}", op.url))
        }
        Err(e) => return IoReply::Failed(format!("{method} {}: {e}", op.url)),
    };
    let ok = (200..300).contains(&status);
    if !op.post && !ok {
        return IoReply::Value(Value::Null);
    }
    let parsed = match json_body(&body) {
        Ok(v) => v.unwrap_or(Value::Null),
        Err(e) => return IoReply::Failed(format!("{method} {}: {e}", op.url)),
    };
    if op.post {
        IoReply::Value(serde_json::json!({"code": status.to_string(), "body": parsed}))
    } else {
        IoReply::Value(parsed)
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
