//! Robots: `GET /api/robots` and `/api/robots/{id}` (the fleet's robot status), the operator's
//! answers to a failed robot action (`POST /api/tasks/{id}/blocks/{blockId}/redo` and
//! `/manual-finish`), and, while the simulated fleet is active, its failure injection
//! (`POST /api/sim/robots/{id}/fail|offline|online`, `POST /api/sim/orders/{id}/stop`).

use super::error::ApiError;
use super::http::{self, Body};
use super::App;
use crate::fleet::{Fleet, FleetError, State};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

fn fleet_error(e: FleetError) -> ApiError {
    match e {
        FleetError::NotFound(what) => ApiError::not_found(format!("the fleet has no {what}")),
        FleetError::Refused { code, msg } => {
            ApiError::conflict(format!("fleet refused ({code}): {msg}"))
        }
        FleetError::Unreachable(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "fleet_unreachable",
            format!("the fleet cannot be reached: {e}"),
        ),
    }
}

/// `GET /api/robots`.
pub async fn list(app: &App) -> Result<Response<Body>, ApiError> {
    let robots = app.sched.fleet().robots().await.map_err(fleet_error)?;
    let kind = if app.sim.is_some() { "sim" } else { "rdscore" };
    Ok(http::json(
        StatusCode::OK,
        &json!({"fleet": kind, "items": robots}),
    ))
}

/// `GET /api/robots/{id}`.
pub async fn get(app: &App, id: &str) -> Result<Response<Body>, ApiError> {
    let robots = app.sched.fleet().robots().await.map_err(fleet_error)?;
    let robot = robots
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no robot {id}")))?;
    Ok(http::json(StatusCode::OK, &json!(robot)))
}

/// `POST /api/tasks/{id}/blocks/{blockId}/redo|manual-finish`: the block (by id or name) must
/// be a robot action waiting for an operator (record status 1007); the robot serving the
/// task's failed order runs the action again, or it counts as done.
pub async fn operator(
    app: &App,
    task: &str,
    block: &str,
    action: &str,
) -> Result<Response<Body>, ApiError> {
    let redo = match action {
        "redo" => true,
        "manual-finish" => false,
        other => {
            return Err(ApiError::not_found(format!(
                "no block action {other} (redo, manual-finish)"
            )))
        }
    };
    let id = task.to_string();
    let (rec, blocks) = app
        .sched
        .store()
        .read(move |rx| Ok((rx.task(&id)?, rx.block_records(&id, 100_000)?)))
        .await
        .map_err(ApiError::store)?;
    if rec.is_none() {
        return Err(ApiError::not_found(format!("no task {task}")));
    }
    let waiting = blocks.iter().any(|b| {
        (b.block_id.to_string() == block || b.block_name == block)
            && b.status == crate::blocks::WAITING_FOR_OPERATOR
    });
    if !waiting {
        return Err(ApiError::conflict(format!(
            "block {block} of task {task} is not a robot action waiting for an operator"
        )));
    }
    let fleet = app.sched.fleet();
    let vehicle = failed_vehicle(fleet.as_ref(), task).await?;
    let result = if redo {
        fleet.redo_failed(&vehicle).await
    } else {
        fleet.manual_finished(&vehicle).await
    };
    result.map_err(fleet_error)?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"taskId": task, "blockId": block, "vehicle": vehicle, "action": action}),
    ))
}

/// The robot of the task's failed order.
async fn failed_vehicle(fleet: &dyn Fleet, task: &str) -> Result<String, ApiError> {
    let robots = fleet.robots().await.map_err(fleet_error)?;
    for robot in robots {
        let Some(order) = &robot.order else {
            continue;
        };
        let view = fleet.order(order).await.map_err(fleet_error)?;
        if view.is_some_and(|v| v.external_id == task && v.state == State::Failed) {
            return Ok(robot.id);
        }
    }
    Err(ApiError::conflict(format!(
        "task {task} has no failed robot order (already redone or finished?)"
    )))
}

/// `POST /api/sim/robots/{id}/fail|offline|online`, `POST /api/sim/orders/{id}/stop`, with an
/// optional `{"reason": "..."}`.
pub async fn inject(
    app: &App,
    what: &str,
    id: &str,
    action: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let Some(sim) = &app.sim else {
        return Err(ApiError::not_found(
            "failure injection needs the simulated fleet ([fleet] kind = \"sim\")",
        ));
    };
    let body = http::read_body(req, app.config.body_bytes_max).await?;
    let reason = if body.is_empty() {
        None
    } else {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_json(format!("not JSON: {e}")))?;
        match v.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::field("reason", "reason must be a string")),
        }
    };
    let reason = reason.unwrap_or_else(|| "injected failure".into());
    let result = match (what, action) {
        ("robots", "fail") => sim.fail_next(id, &reason),
        ("robots", "offline") => sim.set_online(id, false),
        ("robots", "online") => sim.set_online(id, true),
        ("orders", "stop") => sim.stop_order(id, &reason),
        _ => {
            return Err(ApiError::not_found(format!(
                "no simulator action {what}/{action} (robots: fail, offline, online; orders: stop)"
            )))
        }
    };
    result.map_err(fleet_error)?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"ok": true, "target": id, "action": action}),
    ))
}
