//! The JSON side of the RDSCore adapter: request bodies in the §6 shapes, and the serde
//! mirrors of RDSCore's answers (orders, actions, alarms, robot reports) turned into fleet
//! types (seconds to ms, RDS state names).

use super::*;

/// Inserts `key: value` unless the value is absent or empty.
pub(super) fn put(obj: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
        obj.insert(key.to_string(), Value::String(v.to_string()));
    }
}

/// `setOrder`: `{id, externalId, priority, vehicle?, group?, label?, keyRoute, keyTask?,
/// keyGoodsId?, blocks: []}`.
pub(super) fn order_body(spec: &OrderSpec) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(spec.id));
    o.insert("externalId".into(), json!(spec.external_id));
    o.insert("priority".into(), json!(spec.priority));
    put(&mut o, "vehicle", &spec.vehicle);
    put(&mut o, "group", &spec.group);
    put(&mut o, "label", &spec.label);
    o.insert("keyRoute".into(), json!(spec.key_route));
    put(&mut o, "keyTask", &spec.key_task);
    put(&mut o, "keyGoodsId", &spec.key_goods_id);
    o.insert("blocks".into(), json!([]));
    Value::Object(o)
}

/// One order block: `{blockId, location, operation?, operationArgs?, scriptName?,
/// scriptArgs?, binTask?, preBinTask?, goodsId?, postAction?: {configId}}`.
pub(super) fn action_body(a: &ActionSpec) -> Value {
    let mut o = Map::new();
    o.insert("blockId".into(), json!(a.block_id));
    o.insert("location".into(), json!(a.location));
    put(&mut o, "operation", &a.operation);
    if !a.operation_args.is_empty() {
        o.insert(
            "operationArgs".into(),
            Value::Object(a.operation_args.clone()),
        );
    }
    put(&mut o, "scriptName", &a.script_name);
    if !a.script_args.is_empty() {
        o.insert("scriptArgs".into(), Value::Object(a.script_args.clone()));
    }
    put(&mut o, "binTask", &a.bin_task);
    put(&mut o, "preBinTask", &a.pre_bin_task);
    put(&mut o, "goodsId", &a.goods_id);
    if let Some(id) = a.post_action.as_deref().filter(|id| !id.is_empty()) {
        o.insert("postAction".into(), json!({"configId": id}));
    }
    Value::Object(o)
}

/// An RDSCore order or block state; unknown ones (`Error`, …) are treated as running, as RDS
/// does (no branch matches them).
pub(super) fn state_of(s: &str) -> State {
    match s.to_ascii_uppercase().as_str() {
        "TOBEDISPATCHED" | "TO_BE_DISPATCHED" => State::ToBeDispatched,
        "CREATED" => State::Created,
        "WAITING" => State::Waiting,
        "FINISHED" => State::Finished,
        "MANUAL_FINISHED" => State::ManualFinished,
        "FAILED" => State::Failed,
        "STOPPED" => State::Stopped,
        _ => State::Running,
    }
}

/// RDSCore times are seconds.
pub(super) fn secs_to_ms(secs: f64) -> i64 {
    (secs * 1000.0).round() as i64
}

/// A field's default when it is absent or `null`.
pub(super) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// `{code, desc, times, timestamp}` of `errors`; only `desc` is used.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawAlarm {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) desc: String,
}

pub(super) fn descs(alarms: Vec<RawAlarm>) -> Vec<String> {
    alarms.into_iter().map(|a| a.desc).collect()
}

/// The order object of `orderDetails` (§6.2), the fields vwed reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawOrder {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) external_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) vehicle: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) state: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) complete: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) blocks: Vec<RawBlock>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) errors: Vec<RawAlarm>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) create_time: f64,
    /// One RDS class names it `terminateTime`.
    #[serde(default, deserialize_with = "nullable", alias = "terminateTime")]
    pub(super) terminal_time: f64,
}

impl RawOrder {
    pub(super) fn view(self) -> OrderView {
        let terminal_ms = secs_to_ms(self.terminal_time);
        OrderView {
            id: self.id,
            external_id: self.external_id,
            vehicle: Some(self.vehicle).filter(|v| !v.is_empty()),
            state: state_of(&self.state),
            complete: self.complete,
            blocks: self.blocks.into_iter().map(RawBlock::view).collect(),
            errors: descs(self.errors),
            create_ms: secs_to_ms(self.create_time),
            terminal_ms: (terminal_ms > 0).then_some(terminal_ms),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawBlock {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) block_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) location: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) state: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) container_name: String,
}

impl RawBlock {
    pub(super) fn view(self) -> ActionView {
        ActionView {
            block_id: self.block_id,
            location: self.location,
            state: state_of(&self.state),
            container_name: self.container_name,
        }
    }
}

/// `GET /orders`: one page of orders.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawOrderPage {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) list: Vec<RawListed>,
}

/// An order of the page: only the fields `terminate_for` and `set_paused_for` read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawListed {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) external_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) vehicle: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) state: String,
}

/// `GET /robotsStatus`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawRobotsStatus {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) report: Vec<RawRobot>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawRobot {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) uuid: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) group: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) labels: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) dispatchable: bool,
    /// 1: connected (a bool is accepted too).
    #[serde(default)]
    pub(super) connection_status: Value,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) current_order: RawCurrentOrder,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) errors: Vec<RawAlarm>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) rbk_report: RawRbkReport,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawCurrentOrder {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) id: String,
}

/// The robot's own report (only the fields vwed reads).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawRbkReport {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) battery_level: f64,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) charging: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) current_station: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) last_station: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) x: f64,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) y: f64,
    #[serde(default, rename = "DI", deserialize_with = "nullable")]
    pub(super) di: Vec<Value>,
    #[serde(default, rename = "DO", deserialize_with = "nullable")]
    pub(super) do_: Vec<Value>,
}

/// `{id, status, …}` entries with an integer id (a number or a numeric string); others are
/// skipped.
pub(super) fn ios(entries: &[Value]) -> Vec<Io> {
    entries
        .iter()
        .filter_map(|e| {
            let id = e.get("id").and_then(int_of)?;
            let status = match e.get("status") {
                Some(Value::Bool(b)) => *b,
                Some(v) => int_of(v).is_some_and(|n| n != 0),
                None => false,
            };
            Some(Io { id, status })
        })
        .collect()
}

impl RawRobot {
    pub(super) fn view(self) -> RobotView {
        let r = self.rbk_report;
        let online = match &self.connection_status {
            Value::Bool(b) => *b,
            v => int_of(v) == Some(1),
        };
        RobotView {
            id: self.uuid,
            group: self.group,
            labels: self.labels,
            station: r.current_station,
            last_station: r.last_station,
            x: r.x,
            y: r.y,
            battery_level: r.battery_level,
            charging: r.charging,
            dispatchable: self.dispatchable,
            online,
            order: Some(self.current_order.id).filter(|id| !id.is_empty()),
            errors: descs(self.errors),
            di: ios(&r.di),
            do_: ios(&r.do_),
        }
    }
}
