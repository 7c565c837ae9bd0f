//! The JSON side of `vwed sim-core`: reading RDSCore request bodies into fleet types (with
//! errors naming the field) and writing orders, actions and robots in RDSCore's shapes.

use super::*;

pub(super) type Obj = Map<String, Value>;

/// An answer: HTTP status and JSON body.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) body: Value,
}

/// Handlers answer `Ok` on success and `Err` on failure, so `?` ends a handler early.
pub(super) type Answer = Result<Reply, Reply>;

pub(super) fn fail(status: StatusCode, code: i64, msg: impl Into<String>) -> Reply {
    let msg: String = msg.into();
    Reply {
        status,
        body: json!({"code": code, "msg": msg}),
    }
}

pub(super) fn bad(msg: impl Into<String>) -> Reply {
    fail(StatusCode::BAD_REQUEST, 400, msg)
}

pub(super) fn ok() -> Answer {
    Ok(data(json!({"code": 0, "msg": "ok"})))
}

pub(super) fn data(body: Value) -> Reply {
    Reply {
        status: StatusCode::OK,
        body,
    }
}

impl Reply {
    /// The same answer with `msg` prefixed by where in the request it was (`blocks[2]`).
    pub(super) fn within(mut self, place: &str) -> Reply {
        let msg = self.body["msg"].as_str().unwrap_or_default().to_string();
        self.body["msg"] = json!(format!("{place}: {msg}"));
        self
    }
}

/// RDSCore's answer to a refused call: HTTP 200 with the fleet's code, so the client reads it
/// (50003 order complete); an unknown order, action or robot is 50002.
pub(super) fn refused(e: FleetError) -> Reply {
    match e {
        FleetError::Refused { code, msg } => fail(StatusCode::OK, code, msg),
        FleetError::NotFound(what) => {
            fail(StatusCode::OK, CODE_NOT_FOUND, format!("{what} not found"))
        }
        FleetError::Unreachable(e) => fail(StatusCode::SERVICE_UNAVAILABLE, 503, e),
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn wrong(key: &str, want: &str, got: &Value) -> Reply {
    bad(format!("field `{key}` must be {want}, got {}", kind(got)))
}

/// Field `key` read by `read`: absent or null is `None`, another type a 400 naming `want`.
pub(super) fn field<'a, T>(
    o: &'a Obj,
    key: &str,
    want: &str,
    read: impl Fn(&'a Value) -> Option<T>,
) -> Result<Option<T>, Reply> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(v).map(Some).ok_or_else(|| wrong(key, want, v)),
    }
}

pub(super) fn opt_str(o: &Obj, key: &str) -> Result<Option<String>, Reply> {
    field(o, key, "a string", |v| v.as_str().map(str::to_string))
}

/// A string field that must be present and not empty.
pub(super) fn required(o: &Obj, key: &str) -> Result<String, Reply> {
    let value = opt_str(o, key)?.filter(|s| !s.is_empty());
    value.ok_or_else(|| bad(format!("missing field `{key}`")))
}

pub(super) fn opt_i64(o: &Obj, key: &str) -> Result<Option<i64>, Reply> {
    field(o, key, "an integer", Value::as_i64)
}

pub(super) fn opt_bool(o: &Obj, key: &str) -> Result<Option<bool>, Reply> {
    field(o, key, "a boolean", Value::as_bool)
}

pub(super) fn opt_array<'a>(o: &'a Obj, key: &str) -> Result<Option<&'a Vec<Value>>, Reply> {
    field(o, key, "an array", Value::as_array)
}

pub(super) fn opt_object<'a>(o: &'a Obj, key: &str) -> Result<Option<&'a Obj>, Reply> {
    field(o, key, "an object", Value::as_object)
}

/// An array of non-empty strings, if present.
pub(super) fn opt_strings(o: &Obj, key: &str) -> Result<Option<Vec<String>>, Reply> {
    let Some(list) = opt_array(o, key)? else {
        return Ok(None);
    };
    let names = list
        .iter()
        .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string));
    let names: Option<Vec<String>> = names.collect();
    names.map(Some).ok_or_else(|| {
        bad(format!(
            "field `{key}` must be an array of non-empty strings"
        ))
    })
}

pub(super) async fn read_object(req: Request<Incoming>) -> Result<Obj, Reply> {
    let bytes = http::read_body(req, REQUEST_BODY_BYTES_MAX)
        .await
        .map_err(|e| fail(e.status, i64::from(e.status.as_u16()), e.message))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Obj::new());
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(bad(format!(
            "the body must be a JSON object, got {}",
            kind(&other)
        ))),
        Err(e) => Err(bad(format!("the body is not valid JSON: {e}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

pub(super) fn parse_order(o: &Obj) -> Result<OrderSpec, Reply> {
    Ok(OrderSpec {
        id: required(o, "id")?,
        external_id: opt_str(o, "externalId")?.unwrap_or_default(),
        priority: opt_i64(o, "priority")?.unwrap_or(0),
        vehicle: opt_str(o, "vehicle")?,
        group: opt_str(o, "group")?,
        label: opt_str(o, "label")?,
        key_route: opt_strings(o, "keyRoute")?.unwrap_or_default(),
        key_task: opt_str(o, "keyTask")?,
        key_goods_id: opt_str(o, "keyGoodsId")?,
    })
}

pub(super) fn parse_action(v: &Value) -> Result<ActionSpec, Reply> {
    let Some(o) = v.as_object() else {
        return Err(bad(format!("must be an object, got {}", kind(v))));
    };
    let post_action = match opt_object(o, "postAction")? {
        Some(p) => Some(required(p, "configId").map_err(|r| r.within("postAction"))?),
        None => None,
    };
    Ok(ActionSpec {
        block_id: required(o, "blockId")?,
        location: required(o, "location")?,
        operation: opt_str(o, "operation")?,
        operation_args: opt_object(o, "operationArgs")?.cloned().unwrap_or_default(),
        script_name: opt_str(o, "scriptName")?,
        script_args: opt_object(o, "scriptArgs")?.cloned().unwrap_or_default(),
        bin_task: opt_str(o, "binTask")?,
        pre_bin_task: opt_str(o, "preBinTask")?,
        goods_id: opt_str(o, "goodsId")?,
        post_action,
    })
}

/// `blocks` (absent: none); a `blockId` repeated within the request is refused.
pub(super) fn parse_actions(o: &Obj) -> Result<Vec<ActionSpec>, Reply> {
    let list = opt_array(o, "blocks")?.map_or(&[][..], Vec::as_slice);
    let mut actions: Vec<ActionSpec> = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let action = parse_action(v).map_err(|r| r.within(&format!("blocks[{i}]")))?;
        if actions.iter().any(|a| a.block_id == action.block_id) {
            return Err(bad(format!(
                "blocks[{i}]: duplicate blockId {}",
                action.block_id
            )));
        }
        actions.push(action);
    }
    Ok(actions)
}

/// RDSCore's spelling of a state.
pub(super) fn state_name(state: State) -> &'static str {
    match state {
        State::Created => "CREATED",
        State::ToBeDispatched => "TOBEDISPATCHED",
        State::Running => "RUNNING",
        State::Waiting => "WAITING",
        State::Finished => "FINISHED",
        State::ManualFinished => "MANUAL_FINISHED",
        State::Failed => "FAILED",
        State::Stopped => "STOPPED",
    }
}

pub(super) fn error_json(desc: &str, timestamp_s: i64) -> Value {
    json!({"code": 0, "desc": desc, "times": 1, "timestamp": timestamp_s})
}

pub(super) fn action_json(a: &ActionView) -> Value {
    json!({"blockId": a.block_id, "location": a.location, "state": state_name(a.state),
        "containerName": a.container_name})
}

/// The order object (§6.2). The sim keeps no time per error: each carries the order's end
/// time, or its creation time while it runs.
pub(super) fn order_json(o: &OrderView) -> Value {
    let secs = |ms: i64| ms.div_euclid(1000);
    let stamp = secs(o.terminal_ms.unwrap_or(o.create_ms));
    let errors: Vec<Value> = o.errors.iter().map(|d| error_json(d, stamp)).collect();
    json!({
        "id": o.id,
        "externalId": o.external_id,
        "state": state_name(o.state),
        "vehicle": o.vehicle.clone().unwrap_or_default(),
        "complete": o.complete,
        "blocks": o.blocks.iter().map(action_json).collect::<Vec<_>>(),
        "errors": errors,
        "createTime": secs(o.create_ms),
        "terminalTime": o.terminal_ms.map_or(0, secs),
    })
}

// ---------------------------------------------------------------------------------------------
// Robots
// ---------------------------------------------------------------------------------------------

/// A robot as `robotsStatus` reports it; its errors carry the time of the call.
pub(super) fn robot_json(r: &RobotView, now_s: i64) -> Value {
    let errors: Vec<Value> = r.errors.iter().map(|d| error_json(d, now_s)).collect();
    json!({
        "uuid": r.id,
        "group": r.group,
        "labels": r.labels,
        "dispatchable": r.dispatchable,
        "connection_status": i32::from(r.online),
        "current_order": {"id": r.order.clone().unwrap_or_default()},
        "errors": errors,
        "rbk_report": {
            "battery_level": r.battery_level,
            "charging": r.charging,
            "current_station": r.station,
            "last_station": r.last_station,
            "x": r.x,
            "y": r.y,
            "DI": r.di,
            "DO": r.do_,
        },
    })
}
