//! Variable and data blocks (spec §3.4, plus `TaskStateBp` of §3.5): task variables, the task
//! log, the state description, the global data cache, JSON conversion, ids, time and MD5.

use super::{done_with, Behaviour, Family, KindSpec, ParamSpec, ParamType as T};
use crate::engine::{Action, Cx, LogLevel, Raise};
use crate::value::{self, Value};
use md5::{Digest, Md5};

fn required_any(cx: &Cx<'_>, name: &str) -> Result<Value, Raise> {
    cx.any_param(name)
        .cloned()
        .ok_or_else(|| Raise::Failure(format!("parameter {name} is required but is null")))
}

const fn leaf(
    name: &'static str,
    params: &'static [ParamSpec],
    b: &'static dyn Behaviour,
) -> KindSpec {
    KindSpec {
        name,
        family: Family::Data,
        params,
        branches: &[],
        behaviour: Some(b),
    }
}

#[derive(Debug)]
struct SetTaskVariable;
impl Behaviour for SetTaskVariable {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let name = cx.req_str("varName")?;
        let value = required_any(cx, "varValue")?;
        cx.set_variable(&name, value)?;
        Ok(Action::Done)
    }
}

pub static SET_TASK_VARIABLE: KindSpec = leaf(
    "SetTaskVariableBp",
    &[
        ParamSpec::req("varName", T::Str),
        ParamSpec::req("varValue", T::Any),
    ],
    &SetTaskVariable,
);

#[derive(Debug)]
struct Print;
impl Behaviour for Print {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let message = cx
            .any_param("message")
            .cloned()
            .unwrap_or_else(|| Value::String(String::new()));
        let line = format!("[PrintBp][{}]result: {}", cx.block().name, message);
        cx.log(LogLevel::Info, line);
        Ok(Action::Done)
    }
}

pub static PRINT: KindSpec = leaf("PrintBp", &[ParamSpec::opt("message", T::Any)], &Print);

#[derive(Debug)]
struct TaskState;
impl Behaviour for TaskState {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        if let Some(text) = cx.str_param("stateMsg") {
            let line = format!("[TaskStateBp][{}]stateDescription: {text}", cx.block().name);
            cx.log(LogLevel::Info, line);
            cx.set_state_description(text);
        }
        Ok(Action::Done)
    }
}

pub static TASK_STATE: KindSpec = KindSpec {
    name: "TaskStateBp",
    family: Family::TaskControl,
    params: &[
        ParamSpec::opt("stateMsg", T::Any),
        ParamSpec::opt("isTaskState", T::Any),
        ParamSpec::opt("stateCode", T::Any),
    ],
    branches: &[],
    behaviour: Some(&TaskState),
};

#[derive(Debug)]
struct CacheData;
impl Behaviour for CacheData {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let key = cx
            .str_param("key")
            .ok_or_else(|| Raise::Failure("cacheKey: parameter key is null".into()))?;
        let value = cx
            .str_param("value")
            .ok_or_else(|| Raise::Failure("cacheValue: parameter value is null".into()))?;
        cx.cache_set(&key, value)?;
        Ok(Action::Done)
    }
}

pub static CACHE_DATA: KindSpec = leaf(
    "CacheDataBp",
    &[
        ParamSpec::req("key", T::Str),
        ParamSpec::req("value", T::Any),
    ],
    &CacheData,
);

#[derive(Debug)]
struct GetCacheData;
impl Behaviour for GetCacheData {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let key = cx.req_str("key")?;
        let value = cx.host().cache_get(&key).unwrap_or_default();
        done_with(cx, "value", Value::String(value))
    }
}

pub static GET_CACHE_DATA: KindSpec = leaf(
    "GetCacheDataBp",
    &[ParamSpec::req("key", T::Str)],
    &GetCacheData,
);

#[derive(Debug)]
struct ClearCacheData;
impl Behaviour for ClearCacheData {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let key = cx.req_str("key")?;
        cx.cache_delete(&key);
        done_with(cx, "codeInfo", Value::String(String::new()))
    }
}

pub static CLEAR_CACHE_DATA: KindSpec = leaf(
    "ClearCacheDataBp",
    &[ParamSpec::req("key", T::Str)],
    &ClearCacheData,
);

#[derive(Debug)]
struct StringToJson {
    array: bool,
}
impl Behaviour for StringToJson {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let text = cx.req_str("convertString")?;
        let parsed: Value = serde_json::from_str(&text).map_err(|e| {
            Raise::Failure(format!(
                "convertString is not valid JSON ({e}): {}",
                value::clip(&text)
            ))
        })?;
        let (ok, key, what) = if self.array {
            (parsed.is_array(), "convertArray", "array")
        } else {
            (parsed.is_object(), "convertObject", "object")
        };
        if !ok {
            return Err(Raise::Failure(format!(
                "convertString is not a JSON {what}: {}",
                value::clip(&text)
            )));
        }
        done_with(cx, key, parsed)
    }
}

pub static STRING_TO_JSON_OBJECT: KindSpec = leaf(
    "StringToJsonObjectBp",
    &[ParamSpec::req("convertString", T::Str)],
    &StringToJson { array: false },
);

pub static STRING_TO_JSON_ARRAY: KindSpec = leaf(
    "StringToJsonArrayBp",
    &[ParamSpec::req("convertString", T::Str)],
    &StringToJson { array: true },
);

#[derive(Debug)]
struct CreateUuid;
impl Behaviour for CreateUuid {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let id = cx.host().uuid();
        done_with(cx, "createUuid", Value::String(id))
    }
}

pub static CREATE_UUID: KindSpec = leaf("CreateUuidBp", &[], &CreateUuid);

#[derive(Debug)]
struct Timestamp;
impl Behaviour for Timestamp {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let now = cx.host().now_ms();
        let text = cx.host().local_time(now);
        done_with(cx, "timestamp", Value::String(text))
    }
}

pub static TIMESTAMP: KindSpec = leaf("TimestampBp", &[], &Timestamp);

#[derive(Debug)]
struct CurrentTimeStamp;
impl Behaviour for CurrentTimeStamp {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let now = cx.host().now_ms();
        done_with(cx, "currentTimeStamp", Value::from(now))
    }
}

pub static CURRENT_TIME_STAMP: KindSpec = leaf("CurrentTimeStampBp", &[], &CurrentTimeStamp);

#[derive(Debug)]
struct Md5Hex;
impl Behaviour for Md5Hex {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let text = cx.req_str("string")?;
        let digest = Md5::digest(text.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        done_with(cx, "hexValue", Value::String(hex))
    }
}

pub static MD5: KindSpec = leaf(
    "Md5EncryptionForStringBp",
    &[ParamSpec::req("string", T::Str)],
    &Md5Hex,
);
