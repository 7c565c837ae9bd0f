//! Robot I/O and operator blocks (spec §3.8): `ReadDIBp`, `ReadDIWaitBp`, `SetDOBp` read and
//! set a robot's digital I/O through the fleet; `WaitPassBp` waits for an operator's "pass"
//! (`POST /api/releaseWaitPassBlock` sets the data cache key `waitPass_<agvId>`). Re-reads are
//! timer waits at the spec's intervals (a bounded rate), never a loop inside a step.

use super::{nonblank, single, Behaviour, Family, KindSpec, ParamSpec, ParamType as T};
use crate::engine::{Action, Cx, LogLevel, Raise, Wait};
use crate::fleet::ops::{FleetOp, FleetReply};
use crate::fleet::RobotView;
use crate::value::{self, Value};

/// `ReadDIBp` tries again this often while the robot or its DI is missing (RDS: 500 ms).
pub const READ_DI_RETRY_MS: i64 = 500;
/// `WaitPassBp` looks at its cache key this often (RDS: 2 s).
pub const WAIT_PASS_CHECK_MS: i64 = 2_000;
/// `ReadDIWaitBp`'s default pause before each attempt (RDS: 1 s).
pub const READ_DI_WAIT_INTERVAL_MS: i64 = 1_000;

/// Frame phases of the blocks that alternate timers and fleet reads.
const SLEEPING: u8 = 0;
const READING: u8 = 1;

fn required(cx: &Cx<'_>, name: &str, code: &str) -> Result<String, Raise> {
    nonblank(cx, name).ok_or_else(|| Raise::Failure(format!("{code}: parameter {name} is empty")))
}

fn robot_reply(cx: &mut Cx<'_>) -> Result<Option<Box<RobotView>>, Raise> {
    match cx.take_fleet_reply() {
        Some(FleetReply::Robot { robot }) => Ok(robot),
        Some(FleetReply::Failed { reason }) => Err(Raise::Failure(reason)),
        other => Err(Raise::Failure(format!(
            "unexpected answer from the fleet: {other:?}"
        ))),
    }
}

/// The status of DI `id` (compared as text, as RDS compares the JSON id).
fn di_status(robot: Option<&RobotView>, id: &str) -> Option<bool> {
    robot?
        .di
        .iter()
        .find(|io| io.id.to_string() == id.trim())
        .map(|io| io.status)
}

fn read(cx: &mut Cx<'_>, vehicle: String) -> Result<Action, Raise> {
    cx.frame().phase = READING;
    Ok(Action::Wait(Wait::Fleet(Box::new(FleetOp::Robot {
        vehicle,
    }))))
}

fn sleep(cx: &mut Cx<'_>, ms: i64) -> Result<Action, Raise> {
    cx.frame().phase = SLEEPING;
    Ok(Action::Wait(Wait::Timer { ms }))
}

/// A text the block kept in its frame at start (parameters are evaluated only then).
fn kept(cx: &Cx<'_>, key: &str) -> String {
    cx.own_data()
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

// ----- ReadDIBp ------------------------------------------------------------------------------

#[derive(Debug)]
struct ReadDi;

impl Behaviour for ReadDi {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let vehicle = required(cx, "agvId", "vehicleIDEmpty")?;
        let id = required(cx, "id", "DIIDEmpty")?;
        cx.keep(serde_json::json!({"vehicle": vehicle, "id": id}))?;
        read(cx, vehicle)
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let vehicle = kept(cx, "vehicle");
        if cx.frame().phase == SLEEPING {
            return read(cx, vehicle);
        }
        let robot = robot_reply(cx)?;
        let id = kept(cx, "id");
        match di_status(robot.as_deref(), &id) {
            Some(status) => {
                cx.set_outputs(single("status", Value::Bool(status)))?;
                Ok(Action::Done)
            }
            // RDS tries again every 500 ms until the robot reports that DI.
            None => sleep(cx, READ_DI_RETRY_MS),
        }
    }
}

pub static READ_DI: KindSpec = KindSpec {
    name: "ReadDIBp",
    family: Family::Robot,
    params: &[
        ParamSpec::req("agvId", T::Str),
        ParamSpec::req("id", T::Str),
    ],
    branches: &[],
    behaviour: Some(&ReadDi),
};

// ----- ReadDIWaitBp --------------------------------------------------------------------------

#[derive(Debug)]
struct ReadDiWait;

impl ReadDiWait {
    fn interval(cx: &Cx<'_>) -> i64 {
        cx.own_data()
            .get("interval")
            .and_then(Value::as_i64)
            .unwrap_or(READ_DI_WAIT_INTERVAL_MS)
    }
}

impl Behaviour for ReadDiWait {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let vehicle = required(cx, "agvId", "vehicleIDEmpty")?;
        let id = required(cx, "id", "DIIDEmpty")?;
        let Some(want) = cx.bool_param("status") else {
            return Err(Raise::Failure(
                "DIStatusEmpty: parameter status is null".into(),
            ));
        };
        let interval = cx
            .long_param("retryInterval")?
            .unwrap_or(READ_DI_WAIT_INTERVAL_MS);
        if interval < 0 {
            return Err(Raise::Failure(format!(
                "paramsError: retryInterval must be 0 or more, got {interval}"
            )));
        }
        let retry = cx.int_param("retry")?.unwrap_or(0);
        if retry < 0 {
            return Err(Raise::Failure(format!(
                "paramsError: retry must be 0 (unlimited) or more, got {retry}"
            )));
        }
        cx.keep(
            serde_json::json!({"vehicle": vehicle, "id": id, "want": want,
            "interval": interval}),
        )?;
        cx.frame().limit = i64::from(retry);
        cx.frame().index = 0;
        sleep(cx, interval)
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let vehicle = kept(cx, "vehicle");
        if cx.frame().phase == SLEEPING {
            return read(cx, vehicle);
        }
        let robot = robot_reply(cx)?;
        let id = kept(cx, "id");
        let want = cx
            .own_data()
            .get("want")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let got = di_status(robot.as_deref(), &id);
        if got.is_some() {
            cx.set_outputs(single("status", got.map_or(Value::Null, Value::Bool)))?;
        }
        if got == Some(want) {
            return Ok(Action::Done);
        }
        cx.frame().index += 1;
        let (tries, limit) = (cx.frame().index, cx.frame().limit);
        let name = cx.block().name.clone();
        let seen = got.map_or("unknown".to_string(), |g| g.to_string());
        cx.log(
            LogLevel::Info,
            format!("[ReadDIWaitBp][{name}]DI {id} of {vehicle} is {seen}, waiting for {want}"),
        );
        if limit > 0 && tries >= limit {
            if got.is_none() {
                cx.set_outputs(single("status", Value::Null))?;
            }
            return Ok(Action::Done);
        }
        let ms = ReadDiWait::interval(cx);
        sleep(cx, ms)
    }
}

pub static READ_DI_WAIT: KindSpec = KindSpec {
    name: "ReadDIWaitBp",
    family: Family::Robot,
    params: &[
        ParamSpec::req("agvId", T::Str),
        ParamSpec::req("id", T::Str),
        ParamSpec::req("status", T::Bool),
        ParamSpec::opt("retry", T::Int),
        ParamSpec::opt("retryInterval", T::Long),
    ],
    branches: &[],
    behaviour: Some(&ReadDiWait),
};

// ----- SetDOBp ---------------------------------------------------------------------------------

#[derive(Debug)]
struct SetDo;

impl Behaviour for SetDo {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let vehicle = required(cx, "agvId", "vehicleIDEmpty")?;
        let raw = cx.any_param("id").cloned().unwrap_or(Value::Null);
        let id = value::to_long(&raw)
            .ok()
            .flatten()
            .ok_or_else(|| Raise::Failure(format!("paramsError: id {raw} is not a number")))?;
        let status = cx.bool_param("status").unwrap_or(false);
        Ok(Action::Wait(Wait::Fleet(Box::new(FleetOp::SetOutput {
            vehicle,
            id,
            status,
        }))))
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match cx.take_fleet_reply() {
            Some(FleetReply::Done) => Ok(Action::Done),
            Some(FleetReply::Failed { reason }) => Err(Raise::Failure(reason)),
            other => Err(Raise::Failure(format!(
                "unexpected answer from the fleet: {other:?}"
            ))),
        }
    }
}

pub static SET_DO: KindSpec = KindSpec {
    name: "SetDOBp",
    family: Family::Robot,
    params: &[
        ParamSpec::req("agvId", T::Str),
        ParamSpec::req("id", T::Int),
        ParamSpec::opt("status", T::Bool),
    ],
    branches: &[],
    behaviour: Some(&SetDo),
};

// ----- WaitPassBp ------------------------------------------------------------------------------

/// The data cache key an operator's pass sets to `"true"`.
pub fn wait_pass_key(agv: &str) -> String {
    format!("waitPass_{agv}")
}

#[derive(Debug)]
struct WaitPass;

impl Behaviour for WaitPass {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        // The limit (-1: none) and the start time stay in the frame for the re-checks.
        let limit = match cx.long_param("waitPassTime")? {
            Some(ms) if ms < 0 => {
                return Err(Raise::Failure(format!(
                    "paramsError: waitPassTime must be 0 or more, got {ms}"
                )))
            }
            Some(ms) => ms,
            None => -1,
        };
        // RDS reads an absent agvId as the literal "null".
        let key = wait_pass_key(&cx.str_param("agvId").unwrap_or_else(|| "null".into()));
        cx.cache_set(&key, "false".into())?;
        cx.keep(Value::String(key))?;
        let now = cx.host().now_ms();
        cx.frame().index = now;
        cx.frame().limit = limit;
        sleep(cx, WAIT_PASS_CHECK_MS)
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let key = cx.own_data().as_str().unwrap_or_default().to_string();
        if cx.host().cache_get(&key).as_deref() == Some("true") {
            return Ok(Action::Done);
        }
        let waited = cx.host().now_ms() - cx.frame().index;
        let limit = cx.frame().limit;
        if limit < 0 {
            return sleep(cx, WAIT_PASS_CHECK_MS);
        }
        if waited >= limit {
            return Ok(Action::Done);
        }
        sleep(cx, WAIT_PASS_CHECK_MS.min(limit - waited))
    }
}

pub static WAIT_PASS: KindSpec = KindSpec {
    name: "WaitPassBp",
    family: Family::Robot,
    params: &[
        ParamSpec::opt("agvId", T::Str),
        ParamSpec::opt("waitPassTime", T::Long),
    ],
    branches: &[],
    behaviour: Some(&WaitPass),
};
