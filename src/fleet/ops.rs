//! What robot blocks ask of the fleet ([`FleetOp`], carried by the engine as a wait) and what
//! they get back ([`FleetReply`]), and [`execute`], which runs one op against a [`Fleet`] until
//! it has an answer: it looks at the order again only when [`Fleet::changed`] says it may have
//! changed, and retries an unreachable fleet a bounded number of times with backoff.

use super::{ActionSpec, Fleet, FleetError, OrderSpec, OrderView, RobotView, State};
use crate::limits::{FLEET_RETRIES_MAX, FLEET_RETRY_MS};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One fleet operation of a robot block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum FleetOp {
    /// `CSelectAgvBp`: open the order (again, if the fleet lost it) and wait for its robot.
    Select { order: OrderSpec },
    /// `CAgvOperationBp`: append the action to the order (re-opening the order if the fleet
    /// lost it) and wait until it is done. `failure_reported`: the block already knows the
    /// action failed, so a failed action is waited on (for an operator's redo or manual finish)
    /// instead of answered again.
    #[serde(rename_all = "camelCase")]
    Action {
        order: OrderSpec,
        action: Box<ActionSpec>,
        complete: bool,
        failure_reported: bool,
    },
    /// `CAgvSendOperationBp`: append the action (re-opening the order if the fleet lost it)
    /// and answer at once.
    #[serde(rename_all = "camelCase")]
    Send {
        order: OrderSpec,
        action: Box<ActionSpec>,
        complete: bool,
    },
    /// `CAgvMonitorOperationBp`: wait for an action appended earlier to the order.
    #[serde(rename_all = "camelCase")]
    Monitor {
        order: OrderSpec,
        block_id: String,
        failure_reported: bool,
    },
    /// `CombinedOrderBp`: an order of its own that loads at `from` and unloads at `to`
    /// (sealed with the unload); `wait`: answer when it has finished, else once sent.
    #[serde(rename_all = "camelCase")]
    Combined {
        order: OrderSpec,
        from: Box<ActionSpec>,
        to: Box<ActionSpec>,
        wait: bool,
        failure_reported: bool,
    },
    /// The end of `CSelectAgvBp`: seal the order and wait until it finishes or stops.
    Seal { order: OrderSpec },
    /// `SetDOBp`: set a robot's digital output.
    SetOutput {
        vehicle: String,
        id: i64,
        status: bool,
    },
    /// `VehicleStationBp`, `GetBatteryLevelBp`: one robot's status.
    Robot { vehicle: String },
}

/// The answer to a [`FleetOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "camelCase")]
pub enum FleetReply {
    /// The order got this robot.
    Selected { vehicle: String },
    /// The action is done (finished or finished by hand).
    #[serde(rename_all = "camelCase")]
    ActionDone {
        vehicle: String,
        container_name: String,
    },
    /// The action failed; an operator redoes or finishes it (or stops the task).
    ActionFailed { reason: String },
    /// The sealed order finished.
    Sealed,
    /// The action (or combined order) was sent; nothing was waited for.
    #[serde(rename_all = "camelCase")]
    Sent { block_id: String },
    /// A combined order finished.
    #[serde(rename_all = "camelCase")]
    OrderDone {
        vehicle: String,
        container_name: String,
    },
    /// Done (a digital output set).
    Done,
    /// The core stopped the order.
    Stopped { reason: String },
    /// A robot's status (none: the fleet has no such robot).
    Robot { robot: Option<Box<RobotView>> },
    /// The block ends with an error (EndError): e.g. a disabled target site.
    EndError { reason: String },
    /// The call failed (BlockFailure): refused, or the fleet stayed unreachable.
    Failed { reason: String },
}

/// A pause of `ms` ± `FLEET_RETRY_JITTER_PERCENT`, so robot blocks that lost the same core
/// do not all call it again at the same moment.
fn jittered(ms: u64) -> u64 {
    let spread = ms * crate::limits::FLEET_RETRY_JITTER_PERCENT / 100;
    if spread == 0 {
        return ms;
    }
    let r = (uuid::Uuid::new_v4().as_u128() % u128::from(2 * spread + 1)) as u64;
    ms - spread + r
}

/// Runs a fleet call, retrying an unreachable fleet `FLEET_RETRIES_MAX` times with doubling,
/// jittered pauses from `FLEET_RETRY_MS`; other errors are returned at once.
async fn call<T, F>(mut f: F) -> Result<T, FleetError>
where
    F: FnMut() -> super::FleetFuture<T>,
{
    let mut pause = FLEET_RETRY_MS;
    let mut attempt = 0;
    loop {
        match f().await {
            Err(FleetError::Unreachable(e)) if attempt < FLEET_RETRIES_MAX => {
                let wait = jittered(pause);
                log::warn!("fleet unreachable ({e}); retrying in {wait} ms");
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                pause = pause.saturating_mul(2);
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn failed(e: FleetError) -> FleetReply {
    FleetReply::Failed {
        reason: e.to_string(),
    }
}

fn stopped(view: &OrderView) -> FleetReply {
    FleetReply::Stopped {
        reason: view
            .errors
            .last()
            .cloned()
            .unwrap_or_else(|| "stopped".into()),
    }
}

/// The order, opened again if the fleet does not know it (a restarted simulator): the same
/// id, so a core that does know it sees a replay.
async fn order_or_reopen(
    fleet: &Arc<dyn Fleet>,
    spec: &OrderSpec,
) -> Result<OrderView, FleetError> {
    if let Some(view) = call(|| fleet.order(&spec.id)).await? {
        return Ok(view);
    }
    call(|| fleet.set_order(spec.clone())).await?;
    call(|| fleet.order(&spec.id))
        .await?
        .ok_or_else(|| FleetError::NotFound(format!("order {} after opening it", spec.id)))
}

/// Runs `op` until it has an answer.
pub async fn execute(fleet: Arc<dyn Fleet>, op: FleetOp) -> FleetReply {
    let result = match op {
        FleetOp::Select { order } => select(&fleet, &order).await,
        FleetOp::Action {
            order,
            action,
            complete,
            failure_reported,
        } => {
            let add = Some((*action, complete));
            act(&fleet, &order, &action_id(&add), add, failure_reported).await
        }
        FleetOp::Send {
            order,
            action,
            complete,
        } => send(&fleet, &order, *action, complete).await,
        FleetOp::Monitor {
            order,
            block_id,
            failure_reported,
        } => act(&fleet, &order, &block_id, None, failure_reported).await,
        FleetOp::Combined {
            order,
            from,
            to,
            wait,
            failure_reported,
        } => combined(&fleet, &order, [*from, *to], wait, failure_reported).await,
        FleetOp::Seal { order } => seal(&fleet, &order).await,
        FleetOp::SetOutput {
            vehicle,
            id,
            status,
        } => call(|| fleet.set_output(&vehicle, id, status))
            .await
            .map(|()| FleetReply::Done),
        FleetOp::Robot { vehicle } => call(|| fleet.robots()).await.map(|robots| {
            let robot = robots.into_iter().find(|r| r.id == vehicle).map(Box::new);
            FleetReply::Robot { robot }
        }),
    };
    result.unwrap_or_else(failed)
}

async fn select(fleet: &Arc<dyn Fleet>, spec: &OrderSpec) -> Result<FleetReply, FleetError> {
    call(|| fleet.set_order(spec.clone())).await?;
    loop {
        let view = order_or_reopen(fleet, spec).await?;
        if view.state == State::Stopped {
            return Ok(stopped(&view));
        }
        if let Some(vehicle) = view.vehicle.clone().filter(|v| !v.is_empty()) {
            return Ok(FleetReply::Selected { vehicle });
        }
        if view.state.is_terminal() || view.state == State::Failed {
            let reason = view.errors.last().cloned().unwrap_or_default();
            return Ok(FleetReply::Failed {
                reason: format!(
                    "order {} ended {:?} without a robot: {reason}",
                    view.id, view.state
                ),
            });
        }
        call(|| fleet.changed(&spec.id)).await?;
    }
}

fn action_id(add: &Option<(ActionSpec, bool)>) -> String {
    add.as_ref()
        .map(|(a, _)| a.block_id.clone())
        .unwrap_or_default()
}

/// Appends `add` (an action and whether it seals the order) unless the order has it, then
/// waits for action `id` (appended earlier when `add` is none) to end.
async fn act(
    fleet: &Arc<dyn Fleet>,
    spec: &OrderSpec,
    id: &str,
    add: Option<(ActionSpec, bool)>,
    failure_reported: bool,
) -> Result<FleetReply, FleetError> {
    let mut add = add;
    loop {
        let view = order_or_reopen(fleet, spec).await?;
        let Some(mine) = view.blocks.iter().find(|b| b.block_id == id) else {
            let Some((action, complete)) = add.take() else {
                return Ok(FleetReply::Failed {
                    reason: format!("order {} has no action {id}", view.id),
                });
            };
            if let Some(refused) = append(fleet, spec, action, complete).await? {
                return Ok(refused);
            }
            continue;
        };
        match mine.state {
            State::Finished | State::ManualFinished => {
                return Ok(FleetReply::ActionDone {
                    vehicle: view.vehicle.clone().unwrap_or_default(),
                    container_name: mine.container_name.clone(),
                })
            }
            State::Failed if !failure_reported => return Ok(action_failed(&view)),
            _ => {}
        }
        if view.state == State::Stopped || mine.state == State::Stopped {
            return Ok(stopped(&view));
        }
        call(|| fleet.changed(&spec.id)).await?;
    }
}

fn action_failed(view: &OrderView) -> FleetReply {
    let reason = view
        .errors
        .last()
        .cloned()
        .unwrap_or_else(|| "failed".into());
    FleetReply::ActionFailed { reason }
}

/// Appends an action; a sealed order's refusal is the block's failure (`Some`).
async fn append(
    fleet: &Arc<dyn Fleet>,
    spec: &OrderSpec,
    action: ActionSpec,
    complete: bool,
) -> Result<Option<FleetReply>, FleetError> {
    match call(|| fleet.add_action(&spec.id, action.clone(), complete)).await {
        Ok(()) => Ok(None),
        Err(FleetError::Refused { code, msg }) if code == super::CODE_ORDER_COMPLETE => {
            Ok(Some(FleetReply::Failed {
                reason: format!("order complete: {msg}"),
            }))
        }
        Err(e) => Err(e),
    }
}

async fn send(
    fleet: &Arc<dyn Fleet>,
    spec: &OrderSpec,
    action: ActionSpec,
    complete: bool,
) -> Result<FleetReply, FleetError> {
    let view = order_or_reopen(fleet, spec).await?;
    let block_id = action.block_id.clone();
    if !view.blocks.iter().any(|b| b.block_id == block_id) {
        if let Some(refused) = append(fleet, spec, action, complete).await? {
            return Ok(refused);
        }
    }
    Ok(FleetReply::Sent { block_id })
}

/// A load-and-unload order of its own: opened, both actions appended (the unload seals it),
/// then, when asked to, waited for.
async fn combined(
    fleet: &Arc<dyn Fleet>,
    spec: &OrderSpec,
    actions: [ActionSpec; 2],
    wait: bool,
    failure_reported: bool,
) -> Result<FleetReply, FleetError> {
    let view = order_or_reopen(fleet, spec).await?;
    for (i, action) in actions.into_iter().enumerate() {
        if !view.blocks.iter().any(|b| b.block_id == action.block_id) {
            if let Some(refused) = append(fleet, spec, action, i == 1).await? {
                return Ok(refused);
            }
        }
    }
    if !wait {
        return Ok(FleetReply::Sent {
            block_id: spec.id.clone(),
        });
    }
    loop {
        let view = order_or_reopen(fleet, spec).await?;
        match view.state {
            State::Finished | State::ManualFinished => {
                return Ok(FleetReply::OrderDone {
                    vehicle: view.vehicle.clone().unwrap_or_default(),
                    container_name: view
                        .blocks
                        .iter()
                        .map(|b| b.container_name.clone())
                        .find(|c| !c.is_empty())
                        .unwrap_or_default(),
                })
            }
            State::Stopped => return Ok(stopped(&view)),
            State::Failed if !failure_reported => return Ok(action_failed(&view)),
            _ => call(|| fleet.changed(&spec.id)).await?,
        }
    }
}

async fn seal(fleet: &Arc<dyn Fleet>, spec: &OrderSpec) -> Result<FleetReply, FleetError> {
    order_or_reopen(fleet, spec).await?;
    call(|| fleet.mark_complete(&spec.id)).await?;
    loop {
        let view = order_or_reopen(fleet, spec).await?;
        match view.state {
            State::Finished | State::ManualFinished => return Ok(FleetReply::Sealed),
            State::Stopped => return Ok(stopped(&view)),
            _ => call(|| fleet.changed(&spec.id)).await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_stay_within_their_jitter() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1_000 {
            let p = jittered(1_000);
            assert!((800..=1_200).contains(&p), "{p}");
            seen.insert(p);
        }
        assert!(seen.len() > 50, "the pauses vary: {}", seen.len());
        assert_eq!(jittered(0), 0);
    }
}
