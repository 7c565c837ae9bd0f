//! The HTTP API: the only module that touches hyper. A bounded accept loop (a connection permit
//! is taken before `accept`), one tracked task per connection, header and handler timeouts, a
//! body cap, bearer-token auth for mutations, and graceful shutdown.

mod cache;
pub mod client;
mod defs;
mod defs_io;
mod error;
mod events;
mod http;
mod rds;
pub mod rds_query;
mod rds_sites;
mod robots;
mod router;
mod scripts;
pub mod sim_core;
mod sites;
mod system;
mod tasks;
pub mod webhooks;

pub use error::ApiError;

use crate::scheduler::Scheduler;
use crate::tasks::Tasks;
use http::Body;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// HTTP settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Accepted bearer tokens.
    pub tokens: Vec<String>,
    /// Mutating requests need a token (set when the listener is not loopback, or tokens exist).
    pub mutations_need_token: bool,
    pub connections_max: usize,
    pub body_bytes_max: usize,
    pub header_timeout_ms: u64,
    pub handler_timeout_ms: u64,
}

/// Counters shown in `/api/system/status`.
#[derive(Debug, Default)]
pub struct ApiCounters {
    pub requests: AtomicU64,
    pub connections: AtomicU64,
    pub connections_refused: AtomicU64,
    pub handler_timeouts: AtomicU64,
    pub unauthorized: AtomicU64,
}

/// What every handler can reach.
pub struct App {
    pub sched: Scheduler,
    pub config: ApiConfig,
    pub started: std::time::Instant,
    pub shutting_down: AtomicBool,
    pub counters: ApiCounters,
    permits: Arc<Semaphore>,
    /// Turns true on shutdown: the accept loop, connections and event streams end.
    stop: watch::Sender<bool>,
    /// Delivery counters of the configured webhooks (empty without any).
    pub webhooks: Arc<webhooks::WebhookStats>,
    /// The simulated fleet, when it is the fleet (its failure injection is then reachable).
    pub sim: Option<Arc<crate::fleet::sim::SimFleet>>,
    /// The script runtime and its scripts folder (`/api/scripts`).
    pub scripts: Arc<crate::script::ScriptPool>,
}

impl App {
    /// The state handlers share.
    pub fn new(
        sched: Scheduler,
        config: ApiConfig,
        webhooks: Arc<webhooks::WebhookStats>,
        sim: Option<Arc<crate::fleet::sim::SimFleet>>,
        scripts: Arc<crate::script::ScriptPool>,
    ) -> Arc<App> {
        let permits = Arc::new(Semaphore::new(config.connections_max));
        Arc::new(App {
            sched,
            config,
            started: std::time::Instant::now(),
            shutting_down: AtomicBool::new(false),
            counters: ApiCounters::default(),
            permits,
            stop: watch::channel(false).0,
            webhooks,
            sim,
            scripts,
        })
    }

    /// Begins the shutdown: no new requests; the accept loop, connections and event streams
    /// end.
    pub fn stop(&self) {
        self.shutting_down.store(true, Relaxed);
        let _ = self.stop.send(true);
    }

    /// A receiver that turns true on shutdown.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Connections open now.
    pub fn connections_open(&self) -> usize {
        self.config.connections_max - self.permits.available_permits()
    }
}

/// Serves `listener` until [`App::stop`]; then stops accepting, lets open connections
/// finish their current request and returns. Connections run as tracked tasks on `tasks`.
pub async fn serve(listener: TcpListener, app: Arc<App>, tasks: Tasks) {
    let mut shutdown = app.stopping();
    loop {
        // The permit comes first: past `connections_max`, new clients wait in the kernel's
        // listen backlog instead of costing memory here.
        let permit = tokio::select! {
            p = app.permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stopped(&mut shutdown) => return,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => return,
        };
        app.counters.connections.fetch_add(1, Relaxed);
        let conn_app = app.clone();
        let conn_shutdown = shutdown.clone();
        let spawned = tasks.spawn("http-connection", async move {
            connection(stream, conn_app, conn_shutdown).await;
            drop(permit);
        });
        if let Err(e) = spawned {
            app.counters.connections_refused.fetch_add(1, Relaxed);
            log::warn!("connection dropped: {e}");
        }
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) {
    let io = TokioIo::new(stream);
    let header_timeout = Duration::from_millis(app.config.header_timeout_ms);
    let svc_app = app.clone();
    let service = service_fn(move |req| {
        let app = svc_app.clone();
        async move { Ok::<_, Infallible>(handle(app, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                log::debug!("connection ended: {e}");
            }
        }
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once shutdown is signalled (the watch guard is dropped before it returns, so the
/// future stays `Send`).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// One request: counted, refused while shutting down, bounded by the handler timeout.
async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    app.counters.requests.fetch_add(1, Relaxed);
    if app.shutting_down.load(Relaxed) {
        return http::error(&ApiError::shutting_down());
    }
    let limit = Duration::from_millis(app.config.handler_timeout_ms);
    match tokio::time::timeout(limit, router::route(&app, req)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => http::error(&e),
        Err(_) => {
            app.counters.handler_timeouts.fetch_add(1, Relaxed);
            http::error(&ApiError::new(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than HTTP_HANDLER_TIMEOUT_MS ({} ms)",
                    app.config.handler_timeout_ms
                ),
            ))
        }
    }
}
