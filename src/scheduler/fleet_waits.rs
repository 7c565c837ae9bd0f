//! The driver's side of fleet operations: each robot block's wait is one future that runs its
//! [`FleetOp`] against the fleet (`fleet::ops::execute`), cancelled when the wait is (stop,
//! pause, a cancelled branch) or the run is unloaded. The futures live in one set the driver
//! polls; their number is bounded by the loaded runs' fibers (a run with a fleet wait stays
//! loaded). A run that ends has its unfinished orders terminated.

use super::driver::{Completion, Driver};
use crate::engine::Reply;
use crate::fleet::ops::{execute, FleetOp, FleetReply};
use crate::fleet::Fleet;
use crate::store::Store;
use futures_util::stream::FuturesUnordered;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A fleet wait that ended: its answer, or `None` when it was cancelled.
pub(super) struct FleetDone {
    run: String,
    fiber: u32,
    token: u64,
    reply: Option<FleetReply>,
}

type FleetFuture = Pin<Box<dyn Future<Output = FleetDone> + Send>>;

/// The fleet waits of every loaded run.
pub(super) struct FleetWaits {
    pub futures: FuturesUnordered<FleetFuture>,
    /// Dropping a sender cancels its wait.
    cancel: HashMap<(String, u64), oneshot::Sender<()>>,
    /// Taken by each pause or resume call in turn (tokio's mutex is first come, first served).
    serial: Arc<tokio::sync::Mutex<()>>,
}

impl FleetWaits {
    pub fn new() -> FleetWaits {
        FleetWaits {
            futures: FuturesUnordered::new(),
            cancel: HashMap::new(),
            serial: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Waits in progress.
    pub fn len(&self) -> usize {
        self.cancel.len()
    }

    /// Cancels the wait `token` of `run`, if any.
    pub fn cancel(&mut self, run: &str, token: u64) {
        self.cancel.remove(&(run.to_string(), token));
    }

    /// Cancels every wait of `run`.
    pub fn cancel_run(&mut self, run: &str) {
        self.cancel.retain(|(r, _), _| r != run);
    }
}

/// A target that is a disabled site ends the block with an error (spec §3.8).
async fn disabled_target(store: &Store, op: &FleetOp) -> Option<FleetReply> {
    let targets: Vec<String> = match op {
        FleetOp::Action { action, .. } | FleetOp::Send { action, .. } => {
            vec![action.location.clone()]
        }
        FleetOp::Combined { from, to, .. } => vec![from.location.clone(), to.location.clone()],
        _ => return None,
    };
    for id in targets {
        if let Ok(Some(site)) = store.read(move |rx| rx.site_get(&id)).await {
            if site.disabled {
                return Some(FleetReply::EndError {
                    reason: format!("target site {} is disabled", site.site_id),
                });
            }
        }
    }
    None
}

/// The `robot` event of an answer that moved a robot's work on (selected, action done or
/// failed, combined order done, order stopped), with the robot's state then; `None` for the
/// others.
async fn robot_event(
    fleet: &Arc<dyn Fleet>,
    run: &str,
    reply: &FleetReply,
) -> Option<serde_json::Value> {
    let (what, vehicle, reason) = match reply {
        FleetReply::Selected { vehicle } => ("selected", vehicle.clone(), None),
        FleetReply::ActionDone { vehicle, .. } => ("actionDone", vehicle.clone(), None),
        FleetReply::OrderDone { vehicle, .. } => ("orderDone", vehicle.clone(), None),
        FleetReply::ActionFailed { reason } => ("actionFailed", String::new(), Some(reason)),
        FleetReply::Stopped { reason } => ("orderStopped", String::new(), Some(reason)),
        _ => return None,
    };
    let robots = fleet.robots().await.unwrap_or_default();
    let robot = robots.iter().find(|r| r.id == vehicle);
    let mut event = serde_json::json!({"taskId": run, "event": what, "vehicle": vehicle});
    if let Some(reason) = reason {
        event["reason"] = serde_json::json!(reason);
    }
    if let Some(r) = robot {
        event["station"] = serde_json::json!(r.station);
        event["batteryLevel"] = serde_json::json!(r.battery_level);
        event["order"] = serde_json::json!(r.order);
    }
    Some(event)
}

impl Driver {
    /// Starts the fleet wait `token` of `fiber` of run `id` (its step is committed).
    pub(super) fn start_fleet_op(&mut self, id: &str, fiber: u32, token: u64, op: FleetOp) {
        let (tx, rx) = oneshot::channel::<()>();
        self.fleet_waits.cancel.insert((id.to_string(), token), tx);
        let fleet: Arc<dyn Fleet> = self.shared.fleet.clone();
        let shared = self.shared.clone();
        let store = self.shared.store.clone();
        let run = id.to_string();
        self.fleet_waits.futures.push(Box::pin(async move {
            let work = async {
                let reply = match disabled_target(&store, &op).await {
                    Some(reply) => reply,
                    None => execute(fleet.clone(), op).await,
                };
                // Robot progress on /api/events and webhooks (after the fact; the run's own
                // records carry the outcome).
                if let Some(event) = robot_event(&fleet, &run, &reply).await {
                    let (r, text) = (run.clone(), event.to_string());
                    let now = shared.clock.now_ms();
                    let written = store
                        .write(move |tx| tx.outbox_append("robot", Some(&r), &text, now))
                        .await;
                    match written {
                        Ok(e) => {
                            let _ = shared.outbox.send(Arc::new(e));
                        }
                        Err(e) => log::error!("run {run}: robot event not written: {e}"),
                    }
                }
                reply
            };
            let reply = tokio::select! {
                reply = work => Some(reply),
                _ = rx => None,
            };
            FleetDone {
                run,
                fiber,
                token,
                reply,
            }
        }));
    }

    /// A fleet wait ended: its answer goes to the run.
    pub(super) fn fleet_done(&mut self, done: FleetDone) {
        let key = (done.run.clone(), done.token);
        if self.fleet_waits.cancel.remove(&key).is_none() {
            return; // cancelled meanwhile
        }
        let Some(reply) = done.reply else {
            return;
        };
        self.deliver(&done.run, done.fiber, done.token, Reply::Fleet(reply));
    }

    /// Pauses (or resumes) the robots of a run's unfinished orders (spec §4.6). Calls are made
    /// one at a time in the order asked, so a quick pause and resume reach the fleet in that
    /// order; a failure is logged (the run's own state is already committed).
    pub(super) fn pause_orders(&mut self, run: &str, paused: bool) {
        let fleet = self.shared.fleet.clone();
        let order = self.fleet_waits.serial.clone();
        let run = run.to_string();
        self.inflight.push(Box::pin(async move {
            let _turn = order.lock().await;
            if let Err(e) = fleet.set_paused_for(&run, paused).await {
                let what = if paused { "pausing" } else { "resuming" };
                log::error!("run {run}: {what} its robots: {e}");
            }
            Completion::Done
        }));
    }

    /// Stops the unfinished fleet orders of a run that ended (a stop during travel stops the
    /// robot; an interrupted run keeps its order and robot, as in RDS).
    pub(super) fn terminate_orders(&mut self, run: &str) {
        let fleet = self.shared.fleet.clone();
        let run = run.to_string();
        self.inflight.push(Box::pin(async move {
            if let Err(e) = fleet.terminate_for(&run).await {
                log::error!("run {run}: terminating its fleet orders: {e}");
            }
            Completion::Done
        }));
    }
}
