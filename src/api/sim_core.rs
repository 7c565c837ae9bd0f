//! `vwed sim-core`: the simulated fleet served over Seer RDSCore's HTTP order API
//! (wind-task-format §6), so an RDSCore adapter can be tested against a real HTTP peer. The
//! server is built like the main API: a connection permit before `accept`, one tracked task per
//! connection, header and handler timeouts, the body cap and a graceful shutdown. Answers use
//! RDSCore's `{code, msg}` shape; `/sim/...` adds vwed's failure injection.

use super::http::{self, Body};
use crate::fleet::sim::{SimFleet, SIM_ORDERS_MAX};
use crate::fleet::State;
use crate::fleet::{ActionSpec, ActionView, Fleet, FleetError, OrderSpec, OrderView, RobotView};
use crate::limits::{HTTP_CONNECTIONS_MAX, HTTP_HANDLER_TIMEOUT_MS, HTTP_HEADER_TIMEOUT_MS};
use crate::limits::{REQUEST_BODY_BYTES_MAX, SHUTDOWN_GRACE_MS};
use crate::tasks::Tasks;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Map, Value};
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

#[path = "sim_core_wire.rs"]
mod wire;
use wire::*;

/// RDSCore's code for `setOrder` with an id it has already (answered with HTTP 400).
pub const CODE_ORDER_EXISTS: i64 = 40002;
/// RDSCore's code for an action id the order has already ("block <id> already exist").
pub const CODE_BLOCK_EXISTS: i64 = 50001;
/// RDSCore's code for an order (or, here, a robot) it does not know.
pub const CODE_NOT_FOUND: i64 = 50002;

/// Connection permits plus the one the accept loop holds while it runs: shutdown is over when
/// it can take them all.
const PERMITS: usize = HTTP_CONNECTIONS_MAX + 1;
const _: () = assert!(PERMITS <= u32::MAX as usize);
/// Default and largest `size` of `GET /orders`.
const PAGE_SIZE_DEFAULT: usize = 300;

/// A running sim-core server; [`SimCore::shutdown`] stops it.
pub struct SimCore {
    /// The address it listens on (the real port when asked for port 0).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    permits: Arc<Semaphore>,
}

/// What every request can reach.
struct Core {
    sim: Arc<SimFleet>,
    /// Order ids sim-core has created, oldest first; at most [`SIM_ORDERS_MAX`] (the oldest is
    /// forgotten: the sim keeps no more either). The sim has no list call, so `GET /orders`
    /// and the block searches walk these.
    seen: Mutex<VecDeque<String>>,
    /// Serialises mutations, so a check (order exists, block exists) and the call it guards
    /// are one step for other clients.
    writes: tokio::sync::Mutex<()>,
    stop: watch::Receiver<bool>,
}

/// Binds `listen` and serves `sim` on it from tracked tasks on `tasks` (the accept loop and one
/// per connection) until [`SimCore::shutdown`].
pub async fn start(
    listen: SocketAddr,
    sim: Arc<SimFleet>,
    tasks: &Tasks,
) -> Result<SimCore, String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let permits = Arc::new(Semaphore::new(PERMITS));
    let held = Arc::clone(&permits)
        .try_acquire_owned()
        .map_err(|e| format!("sim-core permits: {e}"))?;
    let (stop, stopping) = watch::channel(false);
    let core = Arc::new(Core {
        sim,
        seen: Mutex::new(VecDeque::with_capacity(SIM_ORDERS_MAX)),
        writes: tokio::sync::Mutex::new(()),
        stop: stopping,
    });
    let run = accept_loop(listener, core, Arc::clone(&permits), tasks.clone());
    let spawned = tasks.spawn("sim-core-accept", async move {
        run.await;
        drop(held);
    });
    spawned.map_err(|e| e.to_string())?;
    Ok(SimCore {
        addr,
        stop,
        permits,
    })
}

impl SimCore {
    /// Stops accepting, lets open connections finish their current request (graceful) and
    /// waits for them, at most `SHUTDOWN_GRACE_MS`.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        let all = self.permits.acquire_many(PERMITS as u32);
        if tokio::time::timeout(grace, all).await.is_err() {
            log::error!("sim-core: connections still open after SHUTDOWN_GRACE_MS; leaving them");
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    core: Arc<Core>,
    permits: Arc<Semaphore>,
    tasks: Tasks,
) {
    let mut stop = core.stop.clone();
    loop {
        // The permit first: past HTTP_CONNECTIONS_MAX, clients wait in the listen backlog.
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = super::stopped(&mut stop) => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => Some(accepted),
            _ = super::stopped(&mut stop) => None,
        };
        let stream = match accepted {
            Some(Ok((stream, _))) => stream,
            Some(Err(e)) => {
                log::warn!("sim-core: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            None => {
                // Close the listener before giving the permit back: shutdown counts permits,
                // and once it has them all nothing may still accept.
                drop(listener);
                drop(permit);
                return;
            }
        };
        let conn_core = Arc::clone(&core);
        let spawned = tasks.spawn("sim-core-connection", async move {
            connection(stream, conn_core).await;
            drop(permit);
        });
        if let Err(e) = spawned {
            log::warn!("sim-core: connection dropped: {e}");
        }
    }
}

async fn connection(stream: TcpStream, core: Arc<Core>) {
    let mut stop = core.stop.clone();
    let svc_core = Arc::clone(&core);
    let service = service_fn(move |req| {
        let core = Arc::clone(&svc_core);
        async move { Ok::<_, Infallible>(handle(&core, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(HTTP_HEADER_TIMEOUT_MS))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                log::debug!("sim-core: connection ended: {e}");
            }
        }
        _ = super::stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// One request: refused while stopping, bounded by `HTTP_HANDLER_TIMEOUT_MS`.
async fn handle(core: &Core, req: Request<Incoming>) -> Response<Body> {
    let reply = if *core.stop.borrow() {
        fail(
            StatusCode::SERVICE_UNAVAILABLE,
            503,
            "sim-core is shutting down",
        )
    } else {
        let limit = Duration::from_millis(HTTP_HANDLER_TIMEOUT_MS);
        match tokio::time::timeout(limit, route(core, req)).await {
            Ok(Ok(reply) | Err(reply)) => reply,
            Err(_) => fail(
                StatusCode::SERVICE_UNAVAILABLE,
                503,
                format!("over HTTP_HANDLER_TIMEOUT_MS ({HTTP_HANDLER_TIMEOUT_MS} ms)"),
            ),
        }
    };
    http::json(reply.status, &reply.body)
}

// ---------------------------------------------------------------------------------------------
// Answers and request fields
// ---------------------------------------------------------------------------------------------

/// The POST calls, by path.
enum Post<'a> {
    SetOrder,
    AddBlocks,
    MarkComplete,
    Terminate,
    /// `redoFailedOrder`, `manualFinished`, `gotoSitePause`, `gotoSiteResume`.
    PerVehicle(VehicleOp),
    SetPriority,
    Dispatchable,
    SetRobotIo,
    Fail(&'a str),
    Online(&'a str, bool),
    Stop(&'a str),
}

impl<'a> Post<'a> {
    fn parse(segs: &[&'a str]) -> Option<Post<'a>> {
        Some(match segs {
            ["setOrder"] => Post::SetOrder,
            ["addBlocks"] => Post::AddBlocks,
            ["markComplete"] => Post::MarkComplete,
            ["terminate"] => Post::Terminate,
            ["redoFailedOrder"] => Post::PerVehicle(VehicleOp::Redo),
            ["manualFinished"] => Post::PerVehicle(VehicleOp::ManualFinished),
            ["gotoSitePause"] => Post::PerVehicle(VehicleOp::Pause),
            ["gotoSiteResume"] => Post::PerVehicle(VehicleOp::Resume),
            ["setPriority"] => Post::SetPriority,
            ["dispatchable"] => Post::Dispatchable,
            ["setRobotIO"] => Post::SetRobotIo,
            ["sim", "robots", id, "fail"] => Post::Fail(id),
            ["sim", "robots", id, "offline"] => Post::Online(id, false),
            ["sim", "robots", id, "online"] => Post::Online(id, true),
            ["sim", "orders", id, "stop"] => Post::Stop(id),
            _ => return None,
        })
    }
}

/// A path segment, percent-decoded (a `+` stays a `+`: it is not a query string).
fn segment(s: &str) -> String {
    http::percent_decode(&s.replace('+', "%2B"))
}

async fn route(core: &Core, req: Request<Incoming>) -> Answer {
    let owned: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(segment)
        .collect();
    let segs: Vec<&str> = owned.iter().map(String::as_str).collect();
    let no_route = || {
        fail(
            StatusCode::NOT_FOUND,
            404,
            format!("no route {} {}", req.method(), req.uri().path()),
        )
    };
    if req.method() == Method::GET {
        let query = http::query(&req);
        return match get(core, &segs, &query).await {
            Some(answer) => answer,
            None => Err(no_route()),
        };
    }
    let call = (req.method() == Method::POST)
        .then(|| Post::parse(&segs))
        .flatten();
    let Some(call) = call else {
        return Err(no_route());
    };
    let body = read_object(req).await?;
    post(core, call, &body).await
}

async fn get(core: &Core, segs: &[&str], query: &[(String, String)]) -> Option<Answer> {
    Some(match segs {
        ["orderDetails", id] => order_details(core, id).await,
        ["orders"] => list_orders(core, query).await,
        ["orderDetailsByBlockId", block] => by_block(core, block, false).await,
        ["blockDetailsById", block] => by_block(core, block, true).await,
        ["robotsStatus"] => robots_status(core, query).await,
        _ => return None,
    })
}

async fn post(core: &Core, call: Post<'_>, body: &Obj) -> Answer {
    match call {
        Post::SetOrder => set_order(core, body).await,
        Post::AddBlocks => add_blocks(core, body).await,
        Post::MarkComplete => mark_complete(core, body).await,
        Post::Terminate => terminate(core, body).await,
        Post::PerVehicle(op) => per_vehicle(core, body, op).await,
        Post::SetPriority => {
            let id = required(body, "id")?;
            let priority = opt_i64(body, "priority")?.unwrap_or(0);
            match core.sim.set_priority(&id, priority).await {
                Ok(()) => ok(),
                Err(e) => Err(refused(e)),
            }
        }
        // The simulator's robots are dispatchable while online: accepted and ignored.
        Post::Dispatchable => ok(),
        Post::SetRobotIo => set_robot_io(core, body),
        Post::Fail(id) => {
            let reason = opt_str(body, "reason")?.unwrap_or_else(|| "injected failure".into());
            injected(core.sim.fail_next(id, &reason))
        }
        Post::Online(id, online) => injected(core.sim.set_online(id, online)),
        Post::Stop(id) => {
            let reason = opt_str(body, "reason")?.unwrap_or_else(|| "stopped by the core".into());
            injected(core.sim.stop_order(id, &reason))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

impl Core {
    /// Records a created order id, forgetting the oldest past [`SIM_ORDERS_MAX`].
    fn remember(&self, id: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|s| s != id);
        if seen.len() >= SIM_ORDERS_MAX {
            seen.pop_front();
        }
        seen.push_back(id.to_string());
    }

    /// The orders the sim still knows, newest first; ids it forgot are dropped from `seen`.
    async fn known(&self) -> Result<Vec<OrderView>, Reply> {
        let ids: Vec<String> = {
            let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.iter().rev().cloned().collect()
        };
        let mut views = Vec::with_capacity(ids.len());
        let mut gone = HashSet::new();
        for id in ids {
            match self.sim.order(&id).await.map_err(refused)? {
                Some(view) => views.push(view),
                None => {
                    gone.insert(id);
                }
            }
        }
        if !gone.is_empty() {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.retain(|id| !gone.contains(id));
        }
        Ok(views)
    }

    async fn view(&self, id: &str) -> Result<OrderView, Reply> {
        let view = self.sim.order(id).await.map_err(refused)?;
        view.ok_or_else(|| fail(StatusCode::OK, CODE_NOT_FOUND, "order not found"))
    }
}

/// `POST /setOrder`: opens the order, then appends its `blocks` (the last seals it when
/// `complete`). Everything is checked before the order is opened.
async fn set_order(core: &Core, body: &Obj) -> Answer {
    let spec = parse_order(body)?;
    let actions = parse_actions(body)?;
    let complete = opt_bool(body, "complete")?.unwrap_or(false);
    let _writes = core.writes.lock().await;
    if core.sim.order(&spec.id).await.map_err(refused)?.is_some() {
        let msg = "order id already exists";
        return Err(fail(StatusCode::BAD_REQUEST, CODE_ORDER_EXISTS, msg));
    }
    let id = spec.id.clone();
    core.sim.set_order(spec).await.map_err(refused)?;
    core.remember(&id);
    append(core, &id, actions, complete).await
}

/// `POST /addBlocks`.
async fn add_blocks(core: &Core, body: &Obj) -> Answer {
    let id = required(body, "id")?;
    if opt_array(body, "blocks")?.is_none() {
        return Err(bad("missing field `blocks`"));
    }
    let actions = parse_actions(body)?;
    let complete = opt_bool(body, "complete")?.unwrap_or(false);
    let _writes = core.writes.lock().await;
    append(core, &id, actions, complete).await
}

/// Appends the actions the order does not have yet (the last of the request seals it when
/// `complete`); answers 50001 naming the first it had already. Callers hold `writes`.
async fn append(core: &Core, id: &str, actions: Vec<ActionSpec>, complete: bool) -> Answer {
    let order = core.view(id).await?;
    let last = actions.len().checked_sub(1);
    let mut duplicate = None;
    let mut sealed = false;
    for (i, action) in actions.into_iter().enumerate() {
        if order.blocks.iter().any(|b| b.block_id == action.block_id) {
            duplicate.get_or_insert(action.block_id);
            continue;
        }
        let seal = complete && Some(i) == last;
        core.sim
            .add_action(id, action, seal)
            .await
            .map_err(refused)?;
        sealed |= seal;
    }
    if complete && !sealed {
        core.sim.mark_complete(id).await.map_err(refused)?;
    }
    match duplicate {
        Some(block) => Err(fail(
            StatusCode::OK,
            CODE_BLOCK_EXISTS,
            format!("block {block} already exist"),
        )),
        None => ok(),
    }
}

/// The order ids of `{id}` or `{idList}`; `all` answers an empty `idList` (RDS: every order).
async fn ids_of(core: &Core, body: &Obj, all: bool) -> Result<Vec<String>, Reply> {
    if let Some(list) = opt_strings(body, "idList")? {
        if list.is_empty() && all {
            return Ok(core.known().await?.into_iter().map(|o| o.id).collect());
        }
        return Ok(list);
    }
    Ok(vec![required(body, "id")?])
}

/// `POST /markComplete {id}` or `{idList}` (empty: every order). The first error answers.
async fn mark_complete(core: &Core, body: &Obj) -> Answer {
    for id in ids_of(core, body, true).await? {
        core.sim.mark_complete(&id).await.map_err(refused)?;
    }
    ok()
}

/// `POST /terminate {id}` or `{idList}` (`disableVehicle` is ignored). The first error answers.
async fn terminate(core: &Core, body: &Obj) -> Answer {
    for id in ids_of(core, body, false).await? {
        core.sim.terminate(&id).await.map_err(refused)?;
    }
    ok()
}

/// `GET /orderDetails/{id}` (`paths` is ignored).
async fn order_details(core: &Core, id: &str) -> Answer {
    match core.sim.order(id).await.map_err(refused)? {
        Some(view) => Ok(data(order_json(&view))),
        None => Err(fail(
            StatusCode::NOT_FOUND,
            CODE_NOT_FOUND,
            "order not found",
        )),
    }
}

/// A `page` or `size` query parameter: a positive integer.
fn positive(query: &[(String, String)], key: &str, default: usize) -> Result<usize, Reply> {
    let Some((_, v)) = query.iter().find(|(k, _)| k == key) else {
        return Ok(default);
    };
    let n = v.parse::<usize>().ok().filter(|n| *n > 0);
    n.ok_or_else(|| {
        bad(format!(
            "query parameter `{key}` must be a positive integer, got {v:?}"
        ))
    })
}

/// `GET /orders?page=1&size=300`: the orders sim-core opened that the sim still knows, newest
/// first (`orderBy` is ignored); `size` is capped at `SIM_ORDERS_MAX`.
async fn list_orders(core: &Core, query: &[(String, String)]) -> Answer {
    let page = positive(query, "page", 1)?;
    let size = positive(query, "size", PAGE_SIZE_DEFAULT)?.min(SIM_ORDERS_MAX);
    let orders = core.known().await?;
    let skip = (page - 1).saturating_mul(size);
    let list: Vec<Value> = orders
        .iter()
        .skip(skip)
        .take(size)
        .map(order_json)
        .collect();
    Ok(data(json!({"list": list, "total": orders.len()})))
}

/// `GET /orderDetailsByBlockId/{blockId}` (the order) or `/blockDetailsById/{blockId}` (the
/// action plus `vehicle`).
async fn by_block(core: &Core, block: &str, action_only: bool) -> Answer {
    for order in core.known().await? {
        let Some(action) = order.blocks.iter().find(|b| b.block_id == block) else {
            continue;
        };
        if !action_only {
            return Ok(data(order_json(&order)));
        }
        let mut out = action_json(action);
        out["vehicle"] = json!(order.vehicle.clone().unwrap_or_default());
        return Ok(data(out));
    }
    let msg = "order details by block id is empty";
    Err(fail(StatusCode::NOT_FOUND, CODE_NOT_FOUND, msg))
}

/// A call made robot by robot with `{vehicles: [..]}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VehicleOp {
    Redo,
    ManualFinished,
    Pause,
    Resume,
}

/// `POST /redoFailedOrder`, `/manualFinished`, `/gotoSitePause` or `/gotoSiteResume
/// {vehicles: [..]}`: each robot in turn; the first error answers and the robots after it are
/// not tried.
async fn per_vehicle(core: &Core, body: &Obj, op: VehicleOp) -> Answer {
    let vehicles = opt_strings(body, "vehicles")?.filter(|v| !v.is_empty());
    let Some(vehicles) = vehicles else {
        return Err(bad("missing field `vehicles`"));
    };
    for v in vehicles {
        let done = match op {
            VehicleOp::Redo => core.sim.redo_failed(&v).await,
            VehicleOp::ManualFinished => core.sim.manual_finished(&v).await,
            VehicleOp::Pause => core.sim.set_robot_paused(&v, true),
            VehicleOp::Resume => core.sim.set_robot_paused(&v, false),
        };
        done.map_err(refused)?;
    }
    ok()
}

/// `POST /setRobotIO {vehicle, id, type: "DO", status}`.
fn set_robot_io(core: &Core, body: &Obj) -> Answer {
    let vehicle = required(body, "vehicle")?;
    let id = opt_i64(body, "id")?.ok_or_else(|| bad("missing field `id`"))?;
    let kind = opt_str(body, "type")?.unwrap_or_default();
    if kind != "DO" {
        return Err(bad(format!("field `type` must be \"DO\", got {kind:?}")));
    }
    let status = opt_bool(body, "status")?.ok_or_else(|| bad("missing field `status`"))?;
    core.sim.set_do(&vehicle, id, status).map_err(refused)?;
    ok()
}

/// The answer of a `/sim/...` failure injection: an unknown robot or order is HTTP 404.
fn injected(result: Result<(), FleetError>) -> Answer {
    result.map_err(|e| match e {
        FleetError::NotFound(what) => fail(
            StatusCode::NOT_FOUND,
            CODE_NOT_FOUND,
            format!("{what} not found"),
        ),
        other => refused(other),
    })?;
    ok()
}

/// `GET /robotsStatus?vehicles=a,b`: those robots (unknown ids are left out), or every robot
/// without `vehicles`; `paths` is ignored.
async fn robots_status(core: &Core, query: &[(String, String)]) -> Answer {
    let wanted: Option<Vec<&str>> = query.iter().find(|(k, _)| k == "vehicles").map(|(_, v)| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    });
    let robots = core.sim.robots().await.map_err(refused)?;
    let now_s = chrono::Utc::now().timestamp();
    let report: Vec<Value> = robots
        .iter()
        .filter(|r| wanted.as_ref().is_none_or(|w| w.contains(&r.id.as_str())))
        .map(|r| robot_json(r, now_s))
        .collect();
    Ok(data(json!({"report": report})))
}
