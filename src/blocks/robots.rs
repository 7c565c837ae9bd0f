//! Robot blocks (spec §3.8): `CSelectAgvBp` opens a fleet order (the fleet picks the robot),
//! runs its children in that order's context and seals it; `CAgvOperationBp` appends one action
//! to the nearest enclosing order and waits for it; `VehicleStationBp` and `GetBatteryLevelBp`
//! read a robot's status. Each builds a [`FleetOp`] and waits ([`Wait::Fleet`]); the answer
//! comes back through [`Cx::take_fleet_reply`]. Order and action ids derive from the run and
//! the block record number, so after a crash the same ids reach the fleet again.

use super::{Behaviour, Family, KindSpec, ParamSpec, ParamType as T};
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

fn text(cx: &Cx<'_>, name: &str) -> Option<String> {
    cx.str_param(name).filter(|s| !s.trim().is_empty())
}

fn done_with(cx: &mut Cx<'_>, outputs: Map) -> Result<Action, Raise> {
    cx.set_outputs(outputs)?;
    Ok(Action::Done)
}

fn single(key: &str, v: Value) -> Map {
    let mut map = Map::new();
    map.insert(key.into(), v);
    map
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
        let key_route = text(cx, "keyRoute")
            .ok_or_else(|| Raise::EndError("keyRouteEmpty: parameter keyRoute is empty".into()))?;
        let priority = cx.long_param("priority")?.unwrap_or(1);
        let order = OrderSpec {
            id: format!("o-{}-{}", cx.run_id(), cx.seq()),
            external_id: cx.run_id().to_string(),
            priority,
            vehicle: text(cx, "vehicle"),
            group: text(cx, "group"),
            label: text(cx, "tag"),
            key_route: key_route
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            key_task: text(cx, "keyTask"),
            key_goods_id: text(cx, "keyGoodsId"),
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
        goods_id: text(cx, "goodsId"),
        post_action: text(cx, "postAction"),
        ..ActionSpec::default()
    };
    let Some(script) = text(cx, "scriptName") else {
        return Ok(action);
    };
    if script == "CustomCommand" {
        let custom = |n: &str| text(cx, n);
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

#[derive(Debug)]
struct Operate;

impl Operate {
    fn op(cx: &Cx<'_>, failure_reported: bool) -> Result<FleetOp, Raise> {
        let order: OrderSpec = match cx.enclosing_data("CSelectAgvBp") {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| Raise::Failure(format!("CSelectAgvBp state: {e}")))?,
            None => {
                return Err(Raise::Failure(
                    "no current order: CAgvOperationBp runs inside CSelectAgvBp".into(),
                ))
            }
        };
        let target = text(cx, "targetSiteLabel").ok_or_else(|| {
            Raise::EndError("emptyTargetSite: parameter targetSiteLabel is empty".into())
        })?;
        let action = action_for(cx, format!("a-{}-{}", cx.run_id(), cx.seq()), target)?;
        Ok(FleetOp::Action {
            order,
            action: Box::new(action),
            complete: cx.bool_param("isEndAction").unwrap_or(false),
            failure_reported,
        })
    }
}

impl Behaviour for Operate {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let op = Operate::op(cx, false)?;
        cx.keep(serde_json::to_value(&op).unwrap_or(Value::Null))?;
        ask(op)
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let mut op: FleetOp = serde_json::from_value(cx.own_data().clone())
            .map_err(|e| Raise::Failure(format!("CAgvOperationBp state: {e}")))?;
        let FleetOp::Action {
            order,
            action,
            failure_reported,
            ..
        } = &mut op
        else {
            return Err(Raise::Failure(
                "CAgvOperationBp state: not an action".into(),
            ));
        };
        match answer(cx)? {
            FleetReply::ActionDone { container_name, .. } => {
                let mut out = single("containerName", Value::String(container_name));
                if *failure_reported {
                    let list = vec![Value::String(action.location.clone())];
                    out.insert("noticeFailed".into(), Value::Array(list));
                }
                done_with(cx, out)
            }
            FleetReply::ActionFailed { reason } => {
                let why = format!("robot operation failed, reason={reason}");
                let name = cx.block().name.clone();
                cx.log(LogLevel::Error, format!("[CAgvOperationBp][{name}]{why}"));
                cx.mark_block(WAITING_FOR_OPERATOR, why);
                *failure_reported = true;
                cx.keep(serde_json::to_value(&op).unwrap_or(Value::Null))?;
                ask(op)
            }
            FleetReply::Stopped { reason } => Err(stopped(&order.id, &reason)),
            other => Err(unexpected(&other)),
        }
    }
}

pub static AGV_OPERATION: KindSpec = KindSpec {
    name: "CAgvOperationBp",
    family: Family::Robot,
    params: &[
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
    ],
    branches: &[],
    behaviour: Some(&Operate),
};

// ----- VehicleStationBp, GetBatteryLevelBp ----------------------------------------------------

#[derive(Debug)]
struct RobotStatus {
    battery: bool,
}

impl Behaviour for RobotStatus {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let vehicle = text(cx, "vehicle")
            .ok_or_else(|| Raise::Failure("vehicleIDEmpty: parameter vehicle is empty".into()))?;
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
            return done_with(cx, single("batteryLevel", level));
        }
        let Some(robot) = robot else {
            let v = cx.str_param("vehicle").unwrap_or_default();
            return Err(Raise::Failure(format!("the fleet has no robot {v}")));
        };
        let mut out = single("station", Value::String(robot.station));
        out.insert("lastStation".into(), Value::String(robot.last_station));
        done_with(cx, out)
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
