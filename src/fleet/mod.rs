//! The fleet: the one interface robot blocks use (design §8), modelled on Seer RDSCore's order
//! API. An order is opened with constraints (the core picks a robot), actions are appended and
//! run one after another by that robot, and the order is sealed (`complete`). Every id is chosen
//! by the caller and derived from (run, block, iteration), so a call repeated after a crash
//! names the same order or action and is never a second one.
//!
//! Implementations: [`sim::SimFleet`] (the default: virtual robots on a map, deterministic under
//! tokio's paused clock). Waiting is [`Fleet::changed`]: it resolves when an order may have
//! changed, so callers look again only then (the simulator knows when; a remote core is polled
//! at a bounded rate).

pub mod ops;
pub mod rdscore;
pub mod sim;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;

/// A fleet call's future.
pub type FleetFuture<T> = Pin<Box<dyn Future<Output = Result<T, FleetError>> + Send>>;

/// Why a fleet call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetError {
    /// The fleet could not be reached (a remote core down); worth trying again later.
    Unreachable(String),
    /// The fleet refused the call (RDSCore's non-zero `code` with its `msg`).
    Refused { code: i64, msg: String },
    /// No order, action or robot with that id.
    NotFound(String),
}

impl std::fmt::Display for FleetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FleetError::Unreachable(e) => write!(f, "fleet unreachable: {e}"),
            FleetError::Refused { code, msg } => write!(f, "fleet refused ({code}): {msg}"),
            FleetError::NotFound(what) => write!(f, "fleet has no {what}"),
        }
    }
}

impl std::error::Error for FleetError {}

/// RDSCore's error code for an action appended to a sealed order.
pub const CODE_ORDER_COMPLETE: i64 = 50003;

/// An order to open (RDSCore `setOrder` without `complete`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSpec {
    pub id: String,
    /// The task record the order serves.
    pub external_id: String,
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Robot label (RDS `tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Locations the robot goes to first; the core picks the robot from them.
    #[serde(default)]
    pub key_route: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_goods_id: Option<String>,
}

/// One action appended to an order (an RDSCore order block).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionSpec {
    pub block_id: String,
    pub location: String,
    /// `operation` (e.g. `ForkLoad`, `script`); none: move only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub operation_args: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_name: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub script_args: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_bin_task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_id: Option<String>,
    /// `postAction.configId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_action: Option<String>,
}

/// RDSCore order and block states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Created,
    ToBeDispatched,
    Running,
    Waiting,
    Finished,
    /// An action finished by an operator (`manualFinished`).
    ManualFinished,
    Failed,
    Stopped,
}

impl State {
    /// Finished, manually finished or stopped: nothing will change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Finished | State::ManualFinished | State::Stopped
        )
    }
}

/// An action as the fleet reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionView {
    pub block_id: String,
    pub location: String,
    pub state: State,
    /// The robot's container the goods went into (`""` when none).
    #[serde(default)]
    pub container_name: String,
}

/// An order as the fleet reports it (RDSCore `orderDetails`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub id: String,
    pub external_id: String,
    /// The robot the order got; none while it waits for one.
    #[serde(default)]
    pub vehicle: Option<String>,
    pub state: State,
    /// Sealed: no more actions can be appended.
    pub complete: bool,
    pub blocks: Vec<ActionView>,
    /// Error descriptions, newest last (`errors[].desc`).
    #[serde(default)]
    pub errors: Vec<String>,
    pub create_ms: i64,
    #[serde(default)]
    pub terminal_ms: Option<i64>,
}

/// A robot as the fleet reports it (RDSCore `robotsStatus`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RobotView {
    pub id: String,
    pub group: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// The location it is at, or heading from (`current_station`); `""` between stations.
    pub station: String,
    pub last_station: String,
    pub x: f64,
    pub y: f64,
    /// 0.0–1.0.
    pub battery_level: f64,
    pub charging: bool,
    /// Online and accepting orders.
    pub dispatchable: bool,
    pub online: bool,
    /// The order it is serving, if any.
    #[serde(default)]
    pub order: Option<String>,
    #[serde(default)]
    pub errors: Vec<String>,
    /// Digital inputs and outputs by id.
    #[serde(default)]
    pub di: Vec<Io>,
    #[serde(default, rename = "do")]
    pub do_: Vec<Io>,
}

/// One digital input or output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Io {
    pub id: i64,
    pub status: bool,
}

/// What robot blocks need of a fleet. Every call names its order or action by the caller's
/// id; opening an order or appending an action that exists already is not an error and changes
/// nothing (a replay after a crash).
pub trait Fleet: Send + Sync {
    /// Opens order `spec.id` (idempotent).
    fn set_order(&self, spec: OrderSpec) -> FleetFuture<()>;
    /// Appends `action` to `order`; `complete` seals the order with it. A sealed order refuses
    /// with [`CODE_ORDER_COMPLETE`]; an action id it has already is accepted again.
    fn add_action(&self, order: &str, action: ActionSpec, complete: bool) -> FleetFuture<()>;
    /// Seals `order` (no more actions); it finishes when its last action has.
    fn mark_complete(&self, order: &str) -> FleetFuture<()>;
    /// The order's state; `None` when the fleet does not know it (e.g. a simulator restarted).
    fn order(&self, id: &str) -> FleetFuture<Option<OrderView>>;
    /// Stops the order (its current action is abandoned).
    fn terminate(&self, id: &str) -> FleetFuture<()>;
    /// Stops every unfinished order opened for the task record `external_id`.
    fn terminate_for(&self, external_id: &str) -> FleetFuture<()>;
    /// Pauses (`paused`) or resumes the unfinished orders opened for the task record
    /// `external_id` (RDSCore `gotoSitePause`/`gotoSiteResume` for the robots serving them): a
    /// paused order's robot stops where it is and starts nothing new until resumed. With
    /// RDSCore an order that has no robot yet is not paused.
    fn set_paused_for(&self, external_id: &str, paused: bool) -> FleetFuture<()>;
    /// Changes the priority of order `id` (RDSCore `setPriority`): it counts when the core
    /// picks which waiting order gets a free robot.
    fn set_priority(&self, id: &str, priority: i64) -> FleetFuture<()>;
    /// Every robot.
    fn robots(&self) -> FleetFuture<Vec<RobotView>>;
    /// Runs the failed action of `vehicle`'s order again.
    fn redo_failed(&self, vehicle: &str) -> FleetFuture<()>;
    /// Marks the failed action of `vehicle`'s order as done by hand.
    fn manual_finished(&self, vehicle: &str) -> FleetFuture<()>;
    /// Sets digital output `id` of `vehicle` (RDSCore `setRobotIO` with `type: "DO"`).
    fn set_output(&self, vehicle: &str, id: i64, status: bool) -> FleetFuture<()>;
    /// Resolves when order `id` may have changed: the simulator at its next state change (or
    /// at once after an operator action); a remote core after its poll interval.
    fn changed(&self, id: &str) -> FleetFuture<()>;
}
