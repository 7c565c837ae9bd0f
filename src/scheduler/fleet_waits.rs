//! The driver's side of fleet operations: each robot block's wait is one future in the
//! driver's [`super::op_waits::OpWaits`] that runs its [`FleetOp`] against the fleet
//! (`fleet::ops::execute`). A run that ends has its unfinished orders terminated; a run that
//! pauses has its robots paused.

use super::driver::{Completion, Driver};
use super::op_waits::OpEnd;
use crate::engine::Reply;
use crate::fleet::ops::{execute, FleetOp, FleetReply};
use crate::fleet::Fleet;
use crate::store::Store;
use std::sync::Arc;

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
        let fleet: Arc<dyn Fleet> = self.shared.fleet.clone();
        let shared = self.shared.clone();
        let store = self.shared.store.clone();
        let run = id.to_string();
        self.op_waits.start(id, fiber, token, async move {
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
            OpEnd::Answer(Reply::Fleet(reply))
        });
    }

    /// Pauses (or resumes) the robots of a run's unfinished orders (spec §4.6). Calls are made
    /// one at a time in the order asked, so a quick pause and resume reach the fleet in that
    /// order; a failure is logged (the run's own state is already committed).
    pub(super) fn pause_orders(&mut self, run: &str, paused: bool) {
        let fleet = self.shared.fleet.clone();
        let order = self.op_waits.serial.clone();
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
