//! Webhook delivery: one tracked task POSTs committed outbox events to every `[[webhook]]`, in
//! outbox id order, signed with HMAC-SHA256, at least once, with bounded retries.
//!
//! Each webhook has a cursor in the store (`webhook_cursor`): the last outbox id it acknowledged
//! (2xx), skipped (a kind it does not want) or dropped (after `WEBHOOK_ATTEMPTS_MAX` failures).
//! A new webhook starts at the newest event. The task wakes on new outbox events or the nearest
//! retry deadline, never on a polling tick. At most one request is in flight per webhook; the
//! webhooks advance side by side inside the one task (no extra spawn). Lives under `api/`
//! because hyper is used only there (`tests/tidy.rs`).

use crate::config::WebhookConfig;
use crate::limits::{
    WEBHOOK_ATTEMPTS_MAX, WEBHOOK_BATCH, WEBHOOK_RESPONSE_BYTES_MAX, WEBHOOK_RETRY_BASE_MS,
    WEBHOOK_RETRY_MAX_MS, WEBHOOK_TIMEOUT_MS,
};
use crate::store::{OutboxEvent, Store, StoreError};
use futures_util::future::join_all;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

/// Counters of one webhook, shared with `/api/system/status`.
#[derive(Debug, Default)]
pub struct WebhookCounters {
    pub url: String,
    /// Events acknowledged with a 2xx.
    pub delivered: AtomicU64,
    /// Failed attempts that were retried.
    pub retries: AtomicU64,
    /// Events given up after `WEBHOOK_ATTEMPTS_MAX` failed attempts.
    pub dropped: AtomicU64,
    /// Events pruned from the outbox before this webhook got to them.
    pub skipped_by_pruning: AtomicU64,
    /// The last outbox id dealt with.
    pub cursor: AtomicI64,
}

/// Counters of every configured webhook, in configuration order.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub hooks: Vec<WebhookCounters>,
}

impl WebhookStats {
    /// Zeroed counters for `hooks`.
    pub fn new(hooks: &[WebhookConfig]) -> Arc<WebhookStats> {
        Arc::new(WebhookStats {
            hooks: hooks
                .iter()
                .map(|h| WebhookCounters {
                    url: h.url.clone(),
                    ..WebhookCounters::default()
                })
                .collect(),
        })
    }

    /// The counters as JSON for the status page.
    pub fn to_json(&self) -> Value {
        let hooks = self.hooks.iter().map(|c| {
            json!({
                "url": c.url,
                "delivered": c.delivered.load(Relaxed),
                "retries": c.retries.load(Relaxed),
                "dropped": c.dropped.load(Relaxed),
                "skippedByPruning": c.skipped_by_pruning.load(Relaxed),
                "cursor": c.cursor.load(Relaxed),
            })
        });
        Value::Array(hooks.collect())
    }
}

/// The wait before attempt `failures + 1`: the base doubled per earlier failure, capped.
pub fn backoff(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(20);
    Duration::from_millis((WEBHOOK_RETRY_BASE_MS << shift).min(WEBHOOK_RETRY_MAX_MS))
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The JSON body POSTed for `event`.
pub fn body_of(event: &OutboxEvent) -> Vec<u8> {
    let data: Value = serde_json::from_str(&event.payload)
        .unwrap_or_else(|_| Value::String(event.payload.clone()));
    json!({
        "id": event.id,
        "kind": event.kind,
        "taskId": event.task_id,
        "data": data,
    })
    .to_string()
    .into_bytes()
}

/// One webhook's delivery state.
struct Hook {
    config: WebhookConfig,
    index: usize,
    cursor: i64,
    /// Failed attempts at the event after the cursor.
    failures: u32,
    /// When the next attempt may start, while backing off.
    retry_at: Option<Instant>,
}

/// The webhooks with their cursors read, ready to [`Delivery::run`].
pub struct Delivery {
    store: Store,
    hooks: Vec<Hook>,
    stats: Arc<WebhookStats>,
}

impl Delivery {
    /// Reads every webhook's cursor (a new one starts at the newest event now), so events
    /// committed after this call are delivered even if the task starts later.
    pub async fn prepare(
        store: Store,
        configs: Vec<WebhookConfig>,
        stats: Arc<WebhookStats>,
    ) -> Result<Delivery, StoreError> {
        let hooks = init(&store, configs, &stats).await?;
        Ok(Delivery {
            store,
            hooks,
            stats,
        })
    }

    /// Delivers outbox events until `stop` turns true, waking on `outbox` (subscribed before
    /// [`Delivery::prepare`], so no committed event goes unnoticed) or a retry deadline.
    pub async fn run(
        self,
        mut outbox: broadcast::Receiver<Arc<OutboxEvent>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let Delivery {
            store,
            mut hooks,
            stats,
        } = self;
        let work = async {
            let mut outbox_open = true;
            loop {
                let pumps = hooks.iter_mut().map(|h| pump(&store, h, &stats));
                let next = join_all(pumps).await.into_iter().flatten().min();
                let sleep = async {
                    match next {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                let event = async {
                    if outbox_open {
                        outbox.recv().await
                    } else {
                        std::future::pending().await
                    }
                };
                tokio::select! {
                    () = sleep => {}
                    r = event => {
                        if let Err(broadcast::error::RecvError::Closed) = r {
                            outbox_open = false;
                        }
                        // Lagged or not, the store has everything; drain what is queued.
                        while outbox.try_recv().is_ok() {}
                    }
                }
            }
        };
        tokio::select! {
            () = work => {}
            () = super::stopped(&mut stop) => {}
        }
    }
}

/// Reads (or creates at the newest event) every webhook's cursor.
async fn init(
    store: &Store,
    configs: Vec<WebhookConfig>,
    stats: &WebhookStats,
) -> Result<Vec<Hook>, StoreError> {
    let mut hooks = Vec::with_capacity(configs.len());
    for (index, config) in configs.into_iter().enumerate() {
        let url = config.url.clone();
        let stored = store.read(move |rx| rx.webhook_cursor(&url)).await?;
        let cursor = match stored {
            Some(c) => c,
            None => {
                let (_, newest) = store.read(|rx| rx.outbox_bounds()).await?;
                persist(store, &config.url, newest).await?;
                log::info!("webhook {}: new, starts after event {newest}", config.url);
                newest
            }
        };
        stats.hooks[index].cursor.store(cursor, Relaxed);
        hooks.push(Hook {
            config,
            index,
            cursor,
            failures: 0,
            retry_at: None,
        });
    }
    Ok(hooks)
}

async fn persist(store: &Store, url: &str, id: i64) -> Result<(), StoreError> {
    let url = url.to_string();
    store.write(move |tx| tx.set_webhook_cursor(&url, id)).await
}

/// Delivers what `hook` can now: until it is caught up (`None`) or backing off (the deadline).
async fn pump(store: &Store, hook: &mut Hook, stats: &WebhookStats) -> Option<Instant> {
    let counters = &stats.hooks[hook.index];
    let url = hook.config.url.clone();
    loop {
        if let Some(at) = hook.retry_at {
            if Instant::now() < at {
                return Some(at);
            }
        }
        let page = match read_page(store, hook, counters).await {
            Ok(p) => p,
            Err(e) => {
                log::warn!("webhook {url}: cannot read the outbox: {e}");
                return Some(Instant::now() + backoff(1));
            }
        };
        if page.is_empty() {
            return None;
        }
        let mut start = hook.cursor;
        for event in &page {
            if !hook.config.wants(&event.kind) {
                hook.cursor = event.id;
                continue;
            }
            match deliver(&hook.config, event).await {
                Ok(()) => {
                    counters.delivered.fetch_add(1, Relaxed);
                    hook.cursor = event.id;
                    hook.failures = 0;
                    hook.retry_at = None;
                }
                Err(e) if hook.failures + 1 >= WEBHOOK_ATTEMPTS_MAX => {
                    log::error!(
                        "webhook {url}: dropping event {} after {WEBHOOK_ATTEMPTS_MAX} attempts \
                         (WEBHOOK_ATTEMPTS_MAX); last error: {e}",
                        event.id
                    );
                    counters.dropped.fetch_add(1, Relaxed);
                    hook.cursor = event.id;
                    hook.failures = 0;
                    hook.retry_at = None;
                }
                Err(e) => {
                    hook.failures += 1;
                    counters.retries.fetch_add(1, Relaxed);
                    let wait = backoff(hook.failures);
                    log::warn!(
                        "webhook {url}: event {} attempt {} failed ({e}); retrying in {} ms",
                        event.id,
                        hook.failures,
                        wait.as_millis()
                    );
                    hook.retry_at = Some(Instant::now() + wait);
                    break;
                }
            }
            save(store, hook, counters).await;
            start = hook.cursor;
        }
        if hook.cursor != start {
            save(store, hook, counters).await;
        }
    }
}

/// Persists the cursor (a failure only means re-delivery after a restart: at least once).
async fn save(store: &Store, hook: &Hook, counters: &WebhookCounters) {
    counters.cursor.store(hook.cursor, Relaxed);
    if let Err(e) = persist(store, &hook.config.url, hook.cursor).await {
        log::warn!("webhook {}: cannot store the cursor: {e}", hook.config.url);
    }
}

/// The next page after the cursor, first jumping over events pruned before delivery.
async fn read_page(
    store: &Store,
    hook: &mut Hook,
    counters: &WebhookCounters,
) -> Result<Vec<OutboxEvent>, StoreError> {
    let (oldest, _) = store.read(|rx| rx.outbox_bounds()).await?;
    if oldest > 0 && hook.cursor < oldest - 1 {
        let gap = oldest - 1 - hook.cursor;
        log::warn!(
            "webhook {}: {gap} events after {} were pruned before delivery; continuing at {oldest}",
            hook.config.url,
            hook.cursor
        );
        counters
            .skipped_by_pruning
            .fetch_add(u64::try_from(gap).unwrap_or(0), Relaxed);
        hook.cursor = oldest - 1;
        hook.failures = 0;
        save(store, hook, counters).await;
    }
    let after = hook.cursor;
    store
        .read(move |rx| rx.outbox_after(after, WEBHOOK_BATCH))
        .await
}

/// One attempt, bounded by `WEBHOOK_TIMEOUT_MS`: Ok on a 2xx.
async fn deliver(hook: &WebhookConfig, event: &OutboxEvent) -> Result<(), String> {
    let limit = Duration::from_millis(WEBHOOK_TIMEOUT_MS);
    match tokio::time::timeout(limit, post(hook, body_of(event))).await {
        Err(_) => Err(format!(
            "no answer within WEBHOOK_TIMEOUT_MS ({WEBHOOK_TIMEOUT_MS} ms)"
        )),
        Ok(Err(e)) => Err(e),
        Ok(Ok(status)) if (200..300).contains(&status) => Ok(()),
        Ok(Ok(status)) => Err(format!("answered {status}")),
    }
}

/// POSTs `body` over a fresh HTTP/1.1 connection; the response status. The connection is
/// driven in this task, beside the request.
async fn post(hook: &WebhookConfig, body: Vec<u8>) -> Result<u16, String> {
    let stream = tokio::net::TcpStream::connect((hook.host.as_str(), hook.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let authority = if hook.host.contains(':') {
        format!("[{}]:{}", hook.host, hook.port)
    } else {
        format!("{}:{}", hook.host, hook.port)
    };
    let req = Request::post(hook.path.as_str())
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("X-Vwed-Signature", signature(&hook.secret, &body))
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    let exchange = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        Limited::new(resp.into_body(), WEBHOOK_RESPONSE_BYTES_MAX)
            .collect()
            .await
            .map_err(|e| {
                format!("response body (at most WEBHOOK_RESPONSE_BYTES_MAX bytes read): {e}")
            })?;
        Ok(status)
    };
    let mut exchange = std::pin::pin!(exchange);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        biased;
        r = &mut exchange => return r,
        _ = &mut conn => {}
    }
    // The connection ended; the response (or its error) is already on its way.
    exchange.await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_millis(WEBHOOK_RETRY_BASE_MS));
        assert_eq!(backoff(2), Duration::from_millis(2 * WEBHOOK_RETRY_BASE_MS));
        assert_eq!(backoff(7), Duration::from_millis(WEBHOOK_RETRY_MAX_MS));
        assert_eq!(
            backoff(u32::MAX),
            Duration::from_millis(WEBHOOK_RETRY_MAX_MS)
        );
    }

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_body_embeds_the_payload_as_json() {
        let e = OutboxEvent {
            id: 7,
            kind: "block".into(),
            task_id: Some("t1".into()),
            payload: "{\"a\":1}".into(),
            created_ms: 0,
        };
        let v: Value = serde_json::from_slice(&body_of(&e)).unwrap();
        assert_eq!(
            v,
            json!({"id": 7, "kind": "block", "taskId": "t1", "data": {"a": 1}})
        );
    }
}
