//! Script blocks (spec §3.4, §3.5): `ScriptBp` and `ScriptVariablesBp` call a JavaScript
//! function with RDS's argument and merge the members of its `result` into `task.variables`;
//! `TriggerTaskEventBp` calls `eventName` the same way, merges the result into `taskInputs`
//! (the record's stored inputs follow for the declared names) and publishes a `task-event` on
//! `/api/events` and to webhooks. The call runs on the script runtime's own threads under its
//! time and memory limits; the block waits meanwhile.

use super::{nonblank, Behaviour, Family, KindSpec, ParamSpec, ParamType as T};
use crate::engine::{Action, Cx, LogLevel, Raise, Wait};
use crate::integrations::{IoOp, IoReply, ScriptCall};
use crate::value::{Map, Value};
use serde_json::json;

/// Where a script's result goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// `task.variables` (`ScriptBp`; `ScriptVariablesBp` also logs what it merged).
    Variables { logged: bool },
    /// `taskInputs` (`TriggerTaskEventBp`).
    Inputs,
}

#[derive(Debug)]
struct Script {
    function_param: &'static str,
    data_param: &'static str,
    merge: Merge,
}

impl Behaviour for Script {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let function = nonblank(cx, self.function_param)
            .ok_or_else(|| Raise::Failure(format!("parameter {} is empty", self.function_param)))?;
        let event_data = cx
            .any_param(self.data_param)
            .cloned()
            .unwrap_or(Value::Null);
        let b = cx.block();
        let block = json!({"blockId": b.id, "blockName": b.name, "blockType": b.block_type,
            "remark": Value::Null, "maxTimeOut": Value::Null, "errorMsg": Value::Null});
        if self.merge == Merge::Inputs {
            cx.keep(json!({"event": function, "data": event_data}))?;
        }
        let call = ScriptCall {
            function,
            event_data,
            block,
            missing_ok: self.merge == Merge::Inputs,
        };
        Ok(Action::Wait(Wait::Io(Box::new(IoOp::Script(call)))))
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let members = match cx.take_io_reply() {
            Some(IoReply::Value(Value::Object(members))) => members,
            Some(IoReply::Value(_)) => Map::new(),
            Some(IoReply::Failed(reason) | IoReply::Transport(reason)) => {
                return Err(Raise::Failure(reason))
            }
            None => return Err(Raise::Failure("no answer from the script".into())),
        };
        match self.merge {
            Merge::Variables { logged } => {
                for (name, value) in &members {
                    cx.set_variable(name, value.clone())?;
                }
                if logged && !members.is_empty() {
                    let text = Value::Object(members).to_string();
                    cx.log(LogLevel::Info, format!("variables set: {text}"));
                }
            }
            Merge::Inputs => {
                let kept = cx.own_data().clone();
                let name = kept["event"].as_str().unwrap_or_default().to_string();
                cx.set_task_inputs(&members)?;
                cx.publish_task_event(&name, &kept["data"], &Value::Object(members))?;
            }
        }
        Ok(Action::Done)
    }
}

const CALL: &[ParamSpec] = &[
    ParamSpec::req("functionName", T::Str),
    ParamSpec::opt("functionArgs", T::Any),
];

const fn call_kind(name: &'static str, behaviour: &'static Script) -> KindSpec {
    KindSpec {
        name,
        family: Family::Script,
        params: CALL,
        branches: &[],
        behaviour: Some(behaviour),
    }
}

/// `ScriptBp`: merges the function's `result` into `task.variables`.
pub static SCRIPT: KindSpec = call_kind(
    "ScriptBp",
    &Script {
        function_param: "functionName",
        data_param: "functionArgs",
        merge: Merge::Variables { logged: false },
    },
);

/// `ScriptVariablesBp`: as `ScriptBp`, and logs the variables it set.
pub static SCRIPT_VARIABLES: KindSpec = call_kind(
    "ScriptVariablesBp",
    &Script {
        function_param: "functionName",
        data_param: "functionArgs",
        merge: Merge::Variables { logged: true },
    },
);

/// `TriggerTaskEventBp`: calls `eventName`, merges its `result` into `taskInputs`.
pub static TRIGGER_TASK_EVENT: KindSpec = KindSpec {
    name: "TriggerTaskEventBp",
    family: Family::TaskControl,
    params: &[
        ParamSpec::req("eventName", T::Str),
        ParamSpec::opt("eventData", T::Any),
    ],
    branches: &[],
    behaviour: Some(&Script {
        function_param: "eventName",
        data_param: "eventData",
        merge: Merge::Inputs,
    }),
};
