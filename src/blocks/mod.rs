//! The static registry of block kinds: one [`KindSpec`] per `blockType`, with its parameters,
//! the branches it reads and its behaviour. Adding a block is one struct in a family file and one
//! line in [`REGISTRY`]. Kinds that later issues implement are listed with no behaviour, so
//! `vwed check` names them "not supported yet" instead of "unknown".

mod control;
mod data;
mod http;
mod later;
mod modbus;
mod robot_io;
mod robots;
mod script;
mod sites;
mod tasks;
#[cfg(test)]
mod tests_robots;
#[cfg(test)]
mod tests_sites;

pub use robot_io::wait_pass_key;
pub use robots::{known_operation, WAITING_FOR_OPERATOR};
pub use sites::LOCK_RETRY_MS;
pub use tasks::derived_child_id;

use crate::engine::{Action, Cx, Frame, Raise};
use crate::flow::model::{Block, Branch};
use crate::value::{Map, Value};

/// How a parameter's value is converted (spec §2.2); used by the compile step to check `Simple`
/// values and by blocks to read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Str,
    Int,
    Long,
    Double,
    Bool,
    /// The value as resolved (any JSON type).
    Any,
    /// A JSON array, or a string holding one.
    List,
}

/// One parameter a kind reads.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    /// Absent or empty → the definition is rejected by `vwed check` (spec §1.7 "req").
    pub required: bool,
}

impl ParamSpec {
    /// A parameter the block needs.
    pub const fn req(name: &'static str, ty: ParamType) -> ParamSpec {
        ParamSpec {
            name,
            ty,
            required: true,
        }
    }

    /// A parameter with a default.
    pub const fn opt(name: &'static str, ty: ParamType) -> ParamSpec {
        ParamSpec {
            name,
            ty,
            required: false,
        }
    }
}

/// Which group of blocks a kind belongs to (and, for kinds not runnable yet, which issue brings
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Control,
    Data,
    TaskControl,
    Script,
    Site,
    Robot,
    Http,
    Modbus,
}

impl Family {
    /// Short name used in diagnostics.
    pub fn name(self) -> &'static str {
        match self {
            Family::Control => "flow control",
            Family::Data => "data",
            Family::TaskControl => "task control",
            Family::Script => "script",
            Family::Site => "storage site",
            Family::Robot => "robot",
            Family::Http => "HTTP",
            Family::Modbus => "Modbus",
        }
    }
}

/// What a block does when the engine drives it. All methods get a [`Cx`] for the block's frame;
/// defaults cover the common cases so leaf blocks implement only [`Behaviour::start`].
pub trait Behaviour: Sync + std::fmt::Debug {
    /// The block starts; its parameters have been evaluated into `cx.params()`.
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise>;

    /// A branch started with [`Action::RunBranch`] ended normally.
    fn branch_done(&self, _cx: &mut Cx<'_>) -> Result<Action, Raise> {
        Ok(Action::Done)
    }

    /// A wait started with [`Action::Wait`] completed.
    fn woke(&self, _cx: &mut Cx<'_>) -> Result<Action, Raise> {
        Ok(Action::Done)
    }

    /// Every branch started with [`Action::Fork`] ended.
    fn joined(&self, _cx: &mut Cx<'_>) -> Result<Action, Raise> {
        Ok(Action::Done)
    }

    /// Whether a `BreakBp` below ends at this block (`WhileBp`, `IterateListBp`).
    fn catches_break(&self) -> bool {
        false
    }

    /// A `BreakBp` below ended this block's loop.
    fn on_break(&self, _cx: &mut Cx<'_>) -> Result<Action, Raise> {
        Ok(Action::Done)
    }

    /// Whether failures below end at this block (`TryCatchBp`).
    fn catches_failures(&self) -> bool {
        false
    }

    /// This block raised a failure that parks the run (1006). Return true after rewinding
    /// `frame` so that retry resumes inside the block; false lets the engine drop the frame, so
    /// retry runs the block again from its start.
    fn rewind_on_interrupt(&self, _frame: &mut Frame, _block: &Block) -> bool {
        false
    }

    /// A failure below reached this block; `raised` is what would otherwise end the run.
    fn on_caught(&self, _cx: &mut Cx<'_>, raised: Raise) -> Result<Action, Raise> {
        Err(raised)
    }
}

/// One block type.
#[derive(Debug)]
pub struct KindSpec {
    pub name: &'static str,
    pub family: Family,
    pub params: &'static [ParamSpec],
    /// Branches this kind runs; children under other keys are reported and ignored.
    pub branches: &'static [Branch],
    /// `None`: the type is known (RDS has it) but vwed cannot run it yet.
    pub behaviour: Option<&'static dyn Behaviour>,
}

impl KindSpec {
    /// The parameter spec named `name`.
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Whether the kind reads a parameter of this name: a declared one, or for robot
    /// operations the catalog's `var_<arg>` and `CustomCommand`'s `custom_*` (spec §3.8).
    pub fn accepts_param(&self, name: &str) -> bool {
        self.param(name).is_some()
            || std::ptr::eq(self, &tasks::SUB_TASK)
            || (self.family == Family::Robot
                && (name.starts_with("var_") || name.starts_with("custom_")))
    }
}

/// `{key: value}`: the outputs of a block with one output.
fn single(key: &str, value: Value) -> Map {
    let mut map = Map::new();
    map.insert(key.to_string(), value);
    map
}

/// Sets `outputs` as `blocks.<name>` and ends the block.
fn done_with_outputs(cx: &mut Cx<'_>, outputs: Map) -> Result<Action, Raise> {
    cx.set_outputs(outputs)?;
    Ok(Action::Done)
}

/// Ends the block with the one output `key`.
fn done_with(cx: &mut Cx<'_>, key: &str, value: Value) -> Result<Action, Raise> {
    done_with_outputs(cx, single(key, value))
}

/// A string parameter that is not blank: RDS forms send "" or spaces for "not given".
fn nonblank(cx: &Cx<'_>, name: &str) -> Option<String> {
    cx.str_param(name).filter(|s| !s.trim().is_empty())
}

/// `TryCatchBp` frame phase while its `try` branch runs: only then does it catch failures.
pub const TRY_PHASE: u8 = 1;

/// Every block kind vwed knows.
pub static REGISTRY: &[&KindSpec] = &[
    &control::ROOT,
    &control::SERIAL_FLOW,
    &control::PARALLEL_FLOW,
    &control::IF,
    &control::IF_ELSE,
    &control::IF_ELSE_IF,
    &control::WHILE,
    &control::REPEAT_NUM,
    &control::PARALLEL_REPEAT_N,
    &control::ITERATE_LIST,
    &control::BREAK,
    &control::RETURN,
    &control::SKIP_TO_COMPONENT,
    &control::DELAY,
    &control::MOCK_TIME_COST,
    &control::STOP_OTHER_BRANCH,
    &control::TRY_CATCH,
    &control::THROW_EXCEPTION,
    &data::SET_TASK_VARIABLE,
    &data::PRINT,
    &data::TASK_STATE,
    &data::CACHE_DATA,
    &data::GET_CACHE_DATA,
    &data::CLEAR_CACHE_DATA,
    &data::STRING_TO_JSON_OBJECT,
    &data::STRING_TO_JSON_ARRAY,
    &data::CREATE_UUID,
    &data::TIMESTAMP,
    &data::CURRENT_TIME_STAMP,
    &data::MD5,
    &sites::GET_IDLE_SITE,
    &sites::QUERY_IDLE_SITE,
    &sites::GET_IDLE_CROWDED_SITE,
    &sites::SET_SITE_LOCKED,
    &sites::SET_SITE_UNLOCKED,
    &sites::SET_SITE_FILLED,
    &sites::SET_SITE_EMPTY,
    &sites::SET_SITE_CONTENT,
    &sites::SET_SITE_TAGS,
    &sites::SET_SITE_ATTR,
    &sites::GET_SITE_ATTR,
    &sites::BATCH_SETTING_SITE,
    &sites::GET_LOCKED_SITES_BY_TASK,
    &robots::SELECT_AGV,
    &robots::AGV_OPERATION,
    &robots::VEHICLE_STATION,
    &robots::BATTERY_LEVEL,
    &robots::AGV_SEND_OPERATION,
    &robots::AGV_MONITOR_OPERATION,
    &robots::COMBINED_ORDER,
    &robot_io::READ_DI,
    &robot_io::READ_DI_WAIT,
    &robot_io::SET_DO,
    &robot_io::WAIT_PASS,
    &tasks::SUB_TASK,
    &tasks::START_TASK,
    &tasks::STOP_TASK,
    &tasks::SUSPEND_TASK,
    &tasks::GET_TASK_RECORD,
    &tasks::CHECK_TASK_RECORD_ID,
    &tasks::GET_TASK_RECORD_BY_OUT_ORDER,
    &tasks::GET_TASK_INPUT_PARAM,
    &tasks::SET_OUT_ORDER_NO,
    &tasks::MARK_TASK_START,
    &tasks::MARK_TASK_END,
    &script::SCRIPT,
    &script::SCRIPT_VARIABLES,
    &script::TRIGGER_TASK_EVENT,
    &http::GET,
    &http::POST,
    &http::VWED_GET,
    &http::VWED_POST,
    &modbus::COMMON_READ,
    &modbus::COMMON_WRITE,
    &modbus::COMMON_WAIT,
    &modbus::READ_HOLDING,
    &modbus::READ_INPUT,
    &modbus::READ_COIL,
    &modbus::READ_DISCRETE,
    &modbus::SET_COIL,
    &modbus::SET_REGISTER,
    &modbus::WAIT_COIL,
    &modbus::WAIT_REGISTER,
    &modbus::BATCH_READ_HOLDING,
    &modbus::BATCH_READ_INPUT,
    &modbus::BATCH_READ_COIL,
    &modbus::BATCH_READ_DISCRETE,
    &modbus::BATCH_SET_COIL,
    &modbus::BATCH_SET_HOLDING,
];

/// The kind for a `blockType`, runnable or not. `SubTask::<id>` maps to the sub-task kind.
pub fn lookup(block_type: &str) -> Option<&'static KindSpec> {
    if block_type.starts_with("SubTask::") {
        return Some(&tasks::SUB_TASK);
    }
    REGISTRY
        .iter()
        .copied()
        .find(|k| k.name == block_type)
        .or_else(|| later::lookup(block_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_runnable() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|k| k.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate kind in REGISTRY");
        assert!(REGISTRY.iter().all(|k| k.behaviour.is_some()));
    }

    #[test]
    fn lookup_finds_runnable_later_and_subtasks() {
        assert!(lookup("WhileBp").unwrap().behaviour.is_some());
        let site = lookup("GetIdleSiteBp").unwrap();
        assert!(site.behaviour.is_some());
        assert_eq!(site.family, Family::Site);
        let named = lookup("ModbusCommonReadNameBp").unwrap();
        assert!(named.behaviour.is_none());
        assert_eq!(lookup("SubTask::abc").unwrap().family, Family::TaskControl);
        assert!(lookup("NoSuchBp").is_none());
    }
}
