//! Robot blocks (spec §3.8): `CSelectAgvBp` opens a fleet order (the fleet picks the robot),
//! runs its children in that order's context and seals it; `CAgvOperationBp` appends one action
//! to the nearest enclosing order and waits for it; `VehicleStationBp` and `GetBatteryLevelBp`
//! read a robot's status. Each builds a [`FleetOp`] and waits ([`Wait::Fleet`]); the answer
//! comes back through [`Cx::take_fleet_reply`]. Order and action ids derive from the run and
//! the block record number, so after a crash the same ids reach the fleet again.

use super::{
    done_with_outputs, nonblank, single, Behaviour, Family, KindSpec, ParamSpec, ParamType as T,
};
use crate::engine::{Action, Cx, LogLevel, Raise, Wait};
use crate::fleet::ops::{FleetOp, FleetReply};
use crate::fleet::{ActionSpec, OrderSpec};
use crate::flow::model::Branch;
use crate::value::{self, Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Block record status of an action that failed and waits for an operator (RDS 1007).
pub const WAITING_FOR_OPERATOR: i32 = 1007;

/// The operation catalog (RDS `rbk-scripts.json`): operation name → declared arguments.
const CATALOG_JSON: &str = include_str!("../../assets/rbk-scripts.json");

/// One declared operation argument.
#[derive(Debug, serde::Deserialize)]
struct Arg {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Operation {
    #[serde(default)]
    input_params: Vec<Arg>,
}

fn catalog() -> &'static BTreeMap<String, Operation> {
    static CATALOG: OnceLock<BTreeMap<String, Operation>> = OnceLock::new();
    CATALOG.get_or_init(|| serde_json::from_str(CATALOG_JSON).unwrap_or_default())
}

/// Whether `name` is an operation of the catalog (or a robot script, `*.py`).
pub fn known_operation(name: &str) -> bool {
    name.ends_with(".py") || name == "CustomCommand" || catalog().contains_key(name)
}

fn ask(op: FleetOp) -> Result<Action, Raise> {
    Ok(Action::Wait(Wait::Fleet(Box::new(op))))
}

/// The answer to the block's fleet op; refusals fail the block, an error answer ends it.
fn answer(cx: &mut Cx<'_>) -> Result<FleetReply, Raise> {
    match cx.take_fleet_reply() {
        Some(FleetReply::Failed { reason }) => Err(Raise::Failure(reason)),
        Some(FleetReply::EndError { reason }) => Err(Raise::EndError(reason)),
        Some(reply) => Ok(reply),
        None => Err(Raise::Failure(
            "the fleet operation was not answered".into(),
        )),
    }
}

fn unexpected(reply: &FleetReply) -> Raise {
    Raise::Failure(format!("unexpected answer from the fleet: {reply:?}"))
}

fn stopped(order: &str, reason: &str) -> Raise {
    Raise::EndError(format!("orderId={order}, reason={reason}"))
}

// ----- CSelectAgvBp ----------------------------------------------------------------------------

const SELECTING: u8 = 0;
const CHILDREN: u8 = 1;
const SEALING: u8 = 2;

#[derive(Debug)]
struct SelectAgv;

impl SelectAgv {
    fn order(cx: &Cx<'_>) -> Result<OrderSpec, Raise> {
        serde_json::from_value(cx.own_data().clone())
            .map_err(|e| Raise::Failure(format!("CSelectAgvBp state: {e}")))
    }
}

impl Behaviour for SelectAgv {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let key_route = nonblank(cx, "keyRoute")
            .ok_or_else(|| Raise::EndError("keyRouteEmpty: parameter keyRoute is empty".into()))?;
        let priority = cx.long_param("priority")?.unwrap_or(1);
        // RDS: the order's priority also becomes the task's (1 when absent; §8 Q20, kept, and
        // `vwed check` warns).
        cx.set_run_priority(priority);
        let order = OrderSpec {
            id: format!("o-{}-{}", cx.run_id(), cx.seq()),
            external_id: cx.run_id().to_string(),
            priority,
            vehicle: nonblank(cx, "vehicle"),
            group: nonblank(cx, "group"),
            label: nonblank(cx, "tag"),
            key_route: key_route
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            key_task: nonblank(cx, "keyTask"),
            key_goods_id: nonblank(cx, "keyGoodsId"),
        };
        cx.keep(serde_json::to_value(&order).unwrap_or(Value::Null))?;
        cx.frame().phase = SELECTING;
        ask(FleetOp::Select { order })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let order = SelectAgv::order(cx)?;
        let reply = answer(cx)?;
        match (cx.frame().phase, reply) {
            (SELECTING, FleetReply::Selected { vehicle }) => {
                let name = cx.block().name.clone();
                cx.log(
                    LogLevel::Info,
                    format!(
                        "[CSelectAgvBp][{name}]order {} got robot {vehicle}",
                        order.id
                    ),
                );
                cx.set_outputs(single("selectedAgvId", Value::String(vehicle)))?;
                cx.frame().phase = CHILDREN;
                Ok(Action::RunBranch(Branch::Default))
            }
            (SEALING, FleetReply::Sealed) => Ok(Action::Done),
            (_, FleetReply::Stopped { reason }) => Err(stopped(&order.id, &reason)),
            (_, other) => Err(unexpected(&other)),
        }
    }

    fn branch_done(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        if !cx.still_running() {
            // Stopped or ended by hand: the order is terminated with the run, not sealed.
            return Ok(Action::Done);
        }
        let order = SelectAgv::order(cx)?;
        cx.frame().phase = SEALING;
        ask(FleetOp::Seal { order })
    }
}

pub static SELECT_AGV: KindSpec = KindSpec {
    name: "CSelectAgvBp",
    family: Family::Robot,
    params: &[
        ParamSpec::req("keyRoute", T::Str),
        ParamSpec::opt("priority", T::Int),
        ParamSpec::opt("vehicle", T::Str),
        ParamSpec::opt("group", T::Str),
        ParamSpec::opt("tag", T::Str),
        ParamSpec::opt("keyTask", T::Str),
        ParamSpec::opt("keyGoodsId", T::Str),
        ParamSpec::opt("prePointRedo", T::Bool),
        ParamSpec::opt("mapfPriority", T::Int),
        ParamSpec::opt("loadBlockCount", T::Int),
    ],
    branches: &[Branch::Default],
    behaviour: Some(&SelectAgv),
};

// ----- CAgvOperationBp -------------------------------------------------------------------------

/// The core action for `scriptName` and the block's `var_*` / `custom_*` parameters (spec §3.8
/// "Operation mapping").
fn action_for(cx: &Cx<'_>, block_id: String, location: String) -> Result<ActionSpec, Raise> {
    let mut action = ActionSpec {
        block_id,
        location,
        goods_id: nonblank(cx, "goodsId"),
        post_action: nonblank(cx, "postAction"),
        ..ActionSpec::default()
    };
    let Some(script) = nonblank(cx, "scriptName") else {
        return Ok(action);
    };
    if script == "CustomCommand" {
        let custom = |n: &str| nonblank(cx, n);
        if custom("custom_customCommandType").as_deref() == Some("Script") {
            action.operation = Some("script".into());
            action.script_name = custom("custom_scriptName");
            action.script_args = object_param(cx, "custom_scriptArgs")?;
        } else {
            action.operation = custom("custom_operationName");
            action.operation_args = object_param(cx, "custom_operationArgs")?;
        }
        return Ok(action);
    }
    let args = declared_args(cx, &script)?;
    if script.ends_with(".py") {
        action.operation = Some("script".into());
        action.script_name = Some(script);
        action.script_args = args;
    } else if script == "binTask" {
        action.bin_task = Some(arg_text(&args, "param").unwrap_or_else(|| "NO_DEFINE".into()));
    } else if script == "preBinTask" {
        action.pre_bin_task = arg_text(&args, "param");
    } else {
        action.operation = Some(script);
        action.operation_args = args;
    }
    Ok(action)
}

fn arg_text(args: &Map, name: &str) -> Option<String> {
    args.get(name).and_then(value::to_java_string)
}

fn object_param(cx: &Cx<'_>, name: &str) -> Result<Map, Raise> {
    match cx.any_param(name) {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Map::new()),
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(Raise::Failure(format!(
                "paramsError: {name} is not a JSON object"
            ))),
        },
        Some(_) => Err(Raise::Failure(format!(
            "paramsError: {name} is not a JSON object"
        ))),
    }
}

/// The `var_<arg>` values of the catalog's declared arguments of `script`, converted by their
/// declared types; blank ones are skipped.
fn declared_args(cx: &Cx<'_>, script: &str) -> Result<Map, Raise> {
    let mut args = Map::new();
    let declared = match catalog().get(script) {
        Some(op) => &op.input_params[..],
        None if script.ends_with(".py") => &[],
        None => {
            return Err(Raise::Failure(format!(
                "Unknown script name or operation {script}, check rbk-script.json."
            )))
        }
    };
    for arg in declared {
        let Some(v) = cx.any_param(&format!("var_{}", arg.name)) else {
            continue;
        };
        let v = match v {
            Value::String(s) if s.trim().is_empty() => continue,
            Value::String(_) => crate::flow::inputs::convert(&arg.ty, v)
                .map_err(|e| Raise::Failure(format!("paramsError: var_{}: {e}", arg.name)))?,
            other => other.clone(),
        };
        args.insert(arg.name.clone(), v);
    }
    Ok(args)
}

/// What an operation block does with its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `CAgvOperationBp`: append and wait.
    Wait,
    /// `CAgvSendOperationBp`: append and end (output `blockId`).
    Send,
    /// `CAgvMonitorOperationBp`: wait for an action appended earlier (param `blockId`).
    Monitor,
}

#[derive(Debug)]
struct Operate {
    mode: Mode,
}

/// The order of the nearest enclosing `CSelectAgvBp`.
fn current_order(cx: &Cx<'_>) -> Result<OrderSpec, Raise> {
    match cx.enclosing_data("CSelectAgvBp") {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| Raise::Failure(format!("CSelectAgvBp state: {e}"))),
        None => Err(Raise::Failure(format!(
            "no current order: {} runs inside CSelectAgvBp",
            cx.block().block_type
        ))),
    }
}

impl Operate {
    fn op(&self, cx: &Cx<'_>) -> Result<FleetOp, Raise> {
        let order = current_order(cx)?;
        if self.mode == Mode::Monitor {
            let block_id = nonblank(cx, "blockId")
                .ok_or_else(|| Raise::Failure("blockIdEmpty: parameter blockId is empty".into()))?;
            return Ok(FleetOp::Monitor {
                order,
                block_id,
                failure_reported: false,
            });
        }
        let target = nonblank(cx, "targetSiteLabel").ok_or_else(|| {
            Raise::EndError("emptyTargetSite: parameter targetSiteLabel is empty".into())
        })?;
        // The same id after a restart (spec §8 Q14: RDS sends CAgvSendOperationBp again with a
        // new one).
        let action = Box::new(action_for(
            cx,
            format!("a-{}-{}", cx.run_id(), cx.seq()),
            target,
        )?);
        let complete = cx.bool_param("isEndAction").unwrap_or(false);
        Ok(match self.mode {
            Mode::Send => FleetOp::Send {
                order,
                action,
                complete,
            },
            _ => FleetOp::Action {
                order,
                action,
                complete,
                failure_reported: false,
            },
        })
    }
}

/// The op a waiting block keeps in its frame.
fn kept_op(cx: &Cx<'_>) -> Result<FleetOp, Raise> {
    serde_json::from_value(cx.own_data().clone())
        .map_err(|e| Raise::Failure(format!("{} state: {e}", cx.block().block_type)))
}

/// A failed action: the block record shows 1007, the reason goes to the task log, and the
/// block waits on (the op now knows the failure) for an operator's redo or manual finish.
fn wait_for_operator(cx: &mut Cx<'_>, mut op: FleetOp, reason: &str) -> Result<Action, Raise> {
    let why = format!("robot operation failed, reason={reason}");
    let (ty, name) = (cx.block().block_type.clone(), cx.block().name.clone());
    cx.log(LogLevel::Error, format!("[{ty}][{name}]{why}"));
    cx.mark_block(WAITING_FOR_OPERATOR, why);
    if let FleetOp::Action {
        failure_reported, ..
    }
    | FleetOp::Monitor {
        failure_reported, ..
    }
    | FleetOp::Combined {
        failure_reported, ..
    } = &mut op
    {
        *failure_reported = true;
    }
    cx.keep(serde_json::to_value(&op).unwrap_or(Value::Null))?;
    ask(op)
}

/// Where a failure was (output `noticeFailed`), when the op saw one.
fn notice_failed(op: &FleetOp) -> Option<Value> {
    let at: Vec<&str> = match op {
        FleetOp::Action {
            action,
            failure_reported: true,
            ..
        } => vec![&action.location],
        FleetOp::Monitor {
            block_id,
            failure_reported: true,
            ..
        } => vec![block_id],
        FleetOp::Combined {
            from,
            to,
            failure_reported: true,
            ..
        } => vec![&from.location, &to.location],
        _ => return None,
    };
    Some(Value::Array(
        at.into_iter().map(|s| Value::String(s.into())).collect(),
    ))
}

fn order_id(op: &FleetOp) -> &str {
    match op {
        FleetOp::Select { order }
        | FleetOp::Action { order, .. }
        | FleetOp::Send { order, .. }
        | FleetOp::Monitor { order, .. }
        | FleetOp::Combined { order, .. }
        | FleetOp::Seal { order } => &order.id,
        FleetOp::Robot { .. } | FleetOp::SetOutput { .. } => "",
    }
}

impl Behaviour for Operate {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let op = self.op(cx)?;
        cx.keep(serde_json::to_value(&op).unwrap_or(Value::Null))?;
        ask(op)
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let op = kept_op(cx)?;
        match answer(cx)? {
            FleetReply::ActionDone { container_name, .. } => {
                let mut out = single("containerName", Value::String(container_name));
                if let Some(at) = notice_failed(&op) {
                    out.insert("noticeFailed".into(), at);
                }
                done_with_outputs(cx, out)
            }
            FleetReply::Sent { block_id } => {
                done_with_outputs(cx, single("blockId", Value::String(block_id)))
            }
            FleetReply::ActionFailed { reason } => wait_for_operator(cx, op, &reason),
            FleetReply::Stopped { reason } => Err(stopped(order_id(&op), &reason)),
            other => Err(unexpected(&other)),
        }
    }
}

/// The parameters of `CAgvOperationBp` and `CAgvSendOperationBp`.
const OPERATION_PARAMS: &[ParamSpec] = &[
    ParamSpec::req("targetSiteLabel", T::Str),
    ParamSpec::opt("scriptName", T::Str),
    ParamSpec::opt("postAction", T::Str),
    ParamSpec::opt("goodsId", T::Str),
    ParamSpec::opt("max_speed", T::Double),
    ParamSpec::opt("max_wspeed", T::Double),
    ParamSpec::opt("max_acc", T::Double),
    ParamSpec::opt("max_wacc", T::Double),
    ParamSpec::opt("spin", T::Bool),
    ParamSpec::opt("adjustInfo", T::Any),
    ParamSpec::opt("isEndAction", T::Bool),
    ParamSpec::opt("agvId", T::Any),
];

pub static AGV_OPERATION: KindSpec = KindSpec {
    name: "CAgvOperationBp",
    family: Family::Robot,
    params: OPERATION_PARAMS,
    branches: &[],
    behaviour: Some(&Operate { mode: Mode::Wait }),
};

pub static AGV_SEND_OPERATION: KindSpec = KindSpec {
    name: "CAgvSendOperationBp",
    family: Family::Robot,
    params: OPERATION_PARAMS,
    branches: &[],
    behaviour: Some(&Operate { mode: Mode::Send }),
};

pub static AGV_MONITOR_OPERATION: KindSpec = KindSpec {
    name: "CAgvMonitorOperationBp",
    family: Family::Robot,
    params: &[ParamSpec::req("blockId", T::Str)],
    branches: &[],
    behaviour: Some(&Operate {
        mode: Mode::Monitor,
    }),
};

// ----- CombinedOrderBp -------------------------------------------------------------------------

#[derive(Debug)]
struct Combined;

impl Behaviour for Combined {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let from = nonblank(cx, "fromLoc")
            .ok_or_else(|| Raise::EndError("fromLocEmpty: parameter fromLoc is empty".into()))?;
        let to = nonblank(cx, "toLoc")
            .ok_or_else(|| Raise::EndError("toLocEmpty: parameter toLoc is empty".into()))?;
        let id = format!("o-{}-{}", cx.run_id(), cx.seq());
        let order = OrderSpec {
            id: id.clone(),
            external_id: cx.run_id().to_string(),
            priority: 1,
            vehicle: nonblank(cx, "vehicle"),
            group: nonblank(cx, "group"),
            label: nonblank(cx, "tag"),
            key_route: vec![from.clone()],
            key_task: None,
            key_goods_id: nonblank(cx, "goodsId"),
        };
        let leg = |suffix: &str, location: String, operation: &str, post: &str| ActionSpec {
            block_id: format!("{id}-{suffix}"),
            location,
            operation: Some(operation.into()),
            goods_id: nonblank(cx, "goodsId"),
            post_action: nonblank(cx, post),
            ..ActionSpec::default()
        };
        let op = FleetOp::Combined {
            from: Box::new(leg("load", from, "load", "loadPostAction")),
            to: Box::new(leg("unload", to, "unload", "unloadPostAction")),
            order,
            wait: cx.bool_param("flag").unwrap_or(true),
            failure_reported: false,
        };
        cx.keep(serde_json::to_value(&op).unwrap_or(Value::Null))?;
        ask(op)
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let op = kept_op(cx)?;
        match answer(cx)? {
            FleetReply::OrderDone {
                vehicle,
                container_name,
            } => {
                let mut out = single("agvId", Value::String(vehicle));
                out.insert("containerName".into(), Value::String(container_name));
                if let Some(at) = notice_failed(&op) {
                    out.insert("noticeFailed".into(), at);
                }
                done_with_outputs(cx, out)
            }
            FleetReply::Sent { .. } => Ok(Action::Done),
            FleetReply::ActionFailed { reason } => wait_for_operator(cx, op, &reason),
            FleetReply::Stopped { reason } => Err(stopped(order_id(&op), &reason)),
            other => Err(unexpected(&other)),
        }
    }
}

pub static COMBINED_ORDER: KindSpec = KindSpec {
    name: "CombinedOrderBp",
    family: Family::Robot,
    params: &[
        ParamSpec::req("fromLoc", T::Str),
        ParamSpec::req("toLoc", T::Str),
        ParamSpec::opt("vehicle", T::Str),
        ParamSpec::opt("group", T::Str),
        ParamSpec::opt("goodsId", T::Str),
        ParamSpec::opt("tag", T::Str),
        ParamSpec::opt("loadPostAction", T::Str),
        ParamSpec::opt("unloadPostAction", T::Str),
        ParamSpec::opt("flag", T::Bool),
    ],
    branches: &[],
    behaviour: Some(&Combined),
};

// ----- VehicleStationBp, GetBatteryLevelBp ----------------------------------------------------

#[derive(Debug)]
struct RobotStatus {
    battery: bool,
}

impl Behaviour for RobotStatus {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let vehicle = nonblank(cx, "vehicle")
            .ok_or_else(|| Raise::Failure("vehicleIDEmpty: parameter vehicle is empty".into()))?;
        cx.keep(Value::String(vehicle.clone()))?;
        ask(FleetOp::Robot { vehicle })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let FleetReply::Robot { robot } = answer(cx)? else {
            return Err(Raise::Failure("unexpected answer from the fleet".into()));
        };
        if self.battery {
            let level = robot
                .and_then(|r| value::double(r.battery_level))
                .unwrap_or(Value::Null);
            return done_with_outputs(cx, single("batteryLevel", level));
        }
        let Some(robot) = robot else {
            let v = cx.own_data().as_str().unwrap_or_default().to_string();
            return Err(Raise::Failure(format!("the fleet has no robot {v}")));
        };
        let mut out = single("station", Value::String(robot.station));
        out.insert("lastStation".into(), Value::String(robot.last_station));
        done_with_outputs(cx, out)
    }
}

pub static VEHICLE_STATION: KindSpec = KindSpec {
    name: "VehicleStationBp",
    family: Family::Robot,
    params: &[ParamSpec::req("vehicle", T::Str)],
    branches: &[],
    behaviour: Some(&RobotStatus { battery: false }),
};

pub static BATTERY_LEVEL: KindSpec = KindSpec {
    name: "GetBatteryLevelBp",
    family: Family::Robot,
    params: &[ParamSpec::req("vehicle", T::Str)],
    branches: &[],
    behaviour: Some(&RobotStatus { battery: true }),
};
