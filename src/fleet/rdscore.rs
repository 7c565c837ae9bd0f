//! The RDSCore fleet: [`Fleet`] over Seer RDSCore's HTTP order API (wind-task-format §6), sending
//! exactly the request shapes RDS sends. Transport failures, timeouts and 5xx answers are
//! `Unreachable` (the caller retries those, bounded); answers the core gives are `Refused`.
//! `changed` is a fixed poll interval: the core has no push channel.

use super::{
    ActionSpec, ActionView, Fleet, FleetError, FleetFuture, Io, OrderSpec, OrderView, RobotView,
    State,
};
use crate::api::client::{ClientError, ClientLimits, HttpClient};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

#[path = "rdscore_wire.rs"]
mod wire;
use wire::*;

/// The core's base URL when none is configured (RDS's default).
pub const RDSCORE_URL_DEFAULT: &str = "http://127.0.0.1:8088";
/// Default pause of [`Fleet::changed`]: a waiting robot block reads its order at most this
/// often.
pub const RDSCORE_POLL_MS: u64 = 500;
/// Orders `terminate_for` reads (RDS's one page of `GET /orders`); a task's orders past this
/// many newer ones are not found and stay running.
pub const RDSCORE_ORDERS_PAGE: usize = 300;
/// Characters of a core message kept in an error; the rest is cut.
const MSG_CHARS_MAX: usize = 300;
/// The `Refused` code of a request the client would not send (a bad URL or body).
const CODE_NOT_SENT: i64 = -1;
/// RDSCore's code for an action id the order has already.
const CODE_BLOCK_EXISTS: i64 = 50001;

/// Where the core is and how it is talked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsCoreConfig {
    /// Base URL, e.g. `http://127.0.0.1:8088` (a path prefix is kept; no query).
    pub url: String,
    /// How long [`Fleet::changed`] waits before the caller reads the order again.
    pub poll_ms: u64,
    /// Bounds of the HTTP client (timeouts, answer size, requests in flight).
    pub limits: ClientLimits,
}

impl Default for RdsCoreConfig {
    fn default() -> Self {
        RdsCoreConfig {
            url: RDSCORE_URL_DEFAULT.to_string(),
            poll_ms: RDSCORE_POLL_MS,
            limits: ClientLimits::default(),
        }
    }
}

/// A remote RDSCore as the fleet; clones share one client.
#[derive(Debug, Clone)]
pub struct RdsCoreFleet {
    core: Arc<Core>,
}

#[derive(Debug)]
struct Core {
    /// The base URL without a trailing `/`.
    base: String,
    poll: Duration,
    client: HttpClient,
}

impl RdsCoreFleet {
    /// A fleet talking to `config.url`; refuses a URL the client cannot request and zero
    /// limits.
    pub fn new(config: RdsCoreConfig) -> Result<RdsCoreFleet, String> {
        let base = config.url.trim_end_matches('/').to_string();
        HttpClient::check_url(&base).map_err(|e| format!("rdscore url: {e}"))?;
        if base.contains('?') {
            return Err(format!(
                "rdscore url {:?}: a base URL has no query",
                config.url
            ));
        }
        let l = config.limits;
        for (name, value) in [
            ("poll_ms", config.poll_ms),
            ("connect_timeout_ms", l.connect_timeout_ms),
            ("total_timeout_ms", l.total_timeout_ms),
            ("body_bytes_max", l.body_bytes_max as u64),
            ("concurrent_max", l.concurrent_max as u64),
        ] {
            if value == 0 {
                return Err(format!("rdscore {name} must be at least 1"));
            }
        }
        Ok(RdsCoreFleet {
            core: Arc::new(Core {
                base,
                poll: Duration::from_millis(config.poll_ms),
                client: HttpClient::new(l),
            }),
        })
    }

    fn run<T, F>(&self, f: impl FnOnce(Arc<Core>) -> F) -> FleetFuture<T>
    where
        F: std::future::Future<Output = Result<T, FleetError>> + Send + 'static,
    {
        Box::pin(f(self.core.clone()))
    }
}

/// One call, as error messages name it: `add_action (POST /addBlocks)`.
struct Call {
    name: &'static str,
    method: &'static str,
    path: String,
}

impl Call {
    fn post(name: &'static str, path: &str) -> Call {
        Call {
            name,
            method: "POST",
            path: path.to_string(),
        }
    }

    fn get(name: &'static str, path: String) -> Call {
        Call {
            name,
            method: "GET",
            path,
        }
    }

    fn unreachable(&self, detail: &str) -> FleetError {
        FleetError::Unreachable(format!(
            "{} ({} {}): {detail}",
            self.name, self.method, self.path
        ))
    }

    fn refused(&self, code: i64, msg: &str) -> FleetError {
        let msg = format!("{} ({} {}): {msg}", self.name, self.method, self.path);
        FleetError::Refused { code, msg }
    }

    /// The answer's `code` and `msg`: no code is an empty answer (`Unreachable`, so the
    /// caller asks again) on a 2xx, and the HTTP status otherwise.
    fn coded(&self, a: &Answer) -> Result<(i64, String), FleetError> {
        let (code, msg) = a.envelope();
        match code {
            Some(code) => Ok((code, msg)),
            None if a.ok() => Err(self.unreachable("empty answer")),
            None => Ok((i64::from(a.status), msg)),
        }
    }

    /// Any 2xx; the body is not looked at (RDS ignores these answers).
    fn accepted(&self, a: &Answer) -> Result<(), FleetError> {
        if a.ok() {
            return Ok(());
        }
        let (code, msg) = a.envelope();
        Err(self.refused(code.unwrap_or(i64::from(a.status)), &msg))
    }

    /// Code 0 is done; any other is refused.
    fn zero(&self, a: &Answer) -> Result<(), FleetError> {
        match self.coded(a)? {
            (0, _) => Ok(()),
            (code, msg) => Err(self.refused(code, &msg)),
        }
    }

    /// The body as JSON; an unreadable one is `Unreachable` (a cut answer is worth asking
    /// again; a wrong core stays unreachable until the caller gives up).
    fn json<T: for<'de> Deserialize<'de>>(&self, a: &Answer) -> Result<T, FleetError> {
        serde_json::from_slice(&a.body)
            .map_err(|e| self.unreachable(&format!("unreadable answer: {e}")))
    }
}

/// One answer of the core.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `code` (a number or a numeric string) and `msg` of a `{code, msg}` answer; a body that
    /// is not such an object gives no code and its text as the message.
    fn envelope(&self) -> (Option<i64>, String) {
        let text = String::from_utf8_lossy(&self.body);
        let (code, msg) = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(o)) => (o.get("code").and_then(int_of), msg_of(o.get("msg"))),
            _ => (None, text.trim().to_string()),
        };
        (code, msg.chars().take(MSG_CHARS_MAX).collect())
    }
}

fn msg_of(msg: Option<&Value>) -> String {
    match msg {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// An integer from a number or a numeric string.
fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A 400 refusing `setOrder` because the id exists: the call is a replay. "not exist" (an
/// unknown `binTask`, say) is a real refusal.
fn says_exists(msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    let negated = ["not exist", "n't exist", "nonexist", "non-exist"];
    msg.contains("exist") && !negated.iter().any(|n| msg.contains(n))
}

/// A path segment with everything but unreserved characters percent-encoded.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Core {
    /// Sends `call`; transport failures and 5xx/408/429 answers are `Unreachable`.
    async fn send(&self, call: &Call, body: Option<Value>) -> Result<Answer, FleetError> {
        let url = format!("{}{}", self.base, call.path);
        match self.client.request(call.method, &url, body.as_ref()).await {
            Ok((status, body)) => {
                let a = Answer { status, body };
                if status >= 500 || status == 408 || status == 429 {
                    let (_, msg) = a.envelope();
                    return Err(call.unreachable(&format!("HTTP {status}: {msg}")));
                }
                Ok(a)
            }
            Err(ClientError::Bad(e)) => Err(call.refused(CODE_NOT_SENT, &e)),
            Err(e) => Err(call.unreachable(&e.to_string())),
        }
    }

    async fn set_order(&self, spec: OrderSpec) -> Result<(), FleetError> {
        let call = Call::post("set_order", "/setOrder");
        let a = self.send(&call, Some(order_body(&spec))).await?;
        if a.ok() {
            return Ok(());
        }
        let (code, msg) = a.envelope();
        if a.status == 400 && says_exists(&msg) {
            return Ok(());
        }
        Err(call.refused(code.unwrap_or(i64::from(a.status)), &msg))
    }

    async fn add_action(
        &self,
        order: String,
        action: ActionSpec,
        complete: bool,
    ) -> Result<(), FleetError> {
        let call = Call::post("add_action", "/addBlocks");
        let mut body = json!({"id": order, "blocks": [action_body(&action)]});
        if complete {
            body["complete"] = Value::Bool(true);
        }
        let a = self.send(&call, Some(body)).await?;
        match call.coded(&a)? {
            (0, _) => Ok(()),
            (CODE_BLOCK_EXISTS, msg) if msg.to_ascii_lowercase().contains("already exist") => {
                Ok(())
            }
            (code, msg) => Err(call.refused(code, &msg)),
        }
    }

    /// `markComplete` or `terminate` of one order: `{id}`, the answer ignored as RDS does.
    async fn by_id(&self, name: &'static str, path: &str, id: String) -> Result<(), FleetError> {
        let call = Call::post(name, path);
        let a = self.send(&call, Some(json!({"id": id}))).await?;
        call.accepted(&a)
    }

    async fn order(&self, id: String) -> Result<Option<OrderView>, FleetError> {
        let call = Call::get("order", format!("/orderDetails/{}", segment(&id)));
        let a = self.send(&call, None).await?;
        if a.status == 404 {
            return Ok(None);
        }
        call.accepted(&a)?;
        if a.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let value: Value = call.json(&a)?;
        let known = value
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !known {
            // `{}`, `null` or a `{code, msg}` "no such order".
            return Ok(None);
        }
        let raw: RawOrder = serde_json::from_value(value)
            .map_err(|e| call.unreachable(&format!("unreadable order: {e}")))?;
        Ok(Some(raw.view()))
    }

    /// The unfinished orders opened for `external_id`, from RDS's one page of `GET /orders`.
    async fn open_orders_of(
        &self,
        name: &'static str,
        external_id: &str,
    ) -> Result<Vec<RawListed>, FleetError> {
        let path = format!("/orders?page=1&size={RDSCORE_ORDERS_PAGE}&orderBy=createTime");
        let call = Call::get(name, path);
        let a = self.send(&call, None).await?;
        call.accepted(&a)?;
        let page: RawOrderPage = call.json(&a)?;
        let mut open = page.list;
        open.retain(|o| {
            o.external_id == external_id && !o.id.is_empty() && !state_of(&o.state).is_terminal()
        });
        Ok(open)
    }

    async fn terminate_for(&self, external_id: String) -> Result<(), FleetError> {
        let mut first_error = None;
        for order in self.open_orders_of("terminate_for", &external_id).await? {
            if let Err(e) = self.by_id("terminate_for", "/terminate", order.id).await {
                log::warn!("{e}");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `gotoSitePause` / `gotoSiteResume {vehicles}` for the robots serving the task's
    /// unfinished orders (none: no call).
    async fn set_paused_for(&self, external_id: String, paused: bool) -> Result<(), FleetError> {
        let name = if paused { "pause_for" } else { "resume_for" };
        let mut vehicles: Vec<String> = (self.open_orders_of(name, &external_id).await?)
            .into_iter()
            .map(|o| o.vehicle)
            .filter(|v| !v.is_empty())
            .collect();
        vehicles.sort();
        vehicles.dedup();
        if vehicles.is_empty() {
            return Ok(());
        }
        let path = if paused {
            "/gotoSitePause"
        } else {
            "/gotoSiteResume"
        };
        let call = Call::post(name, path);
        let a = self
            .send(&call, Some(json!({"vehicles": vehicles})))
            .await?;
        call.zero(&a)
    }

    async fn robots(&self) -> Result<Vec<RobotView>, FleetError> {
        let call = Call::get("robots", "/robotsStatus".to_string());
        let a = self.send(&call, None).await?;
        call.accepted(&a)?;
        let status: RawRobotsStatus = call.json(&a)?;
        Ok(status.report.into_iter().map(RawRobot::view).collect())
    }

    /// `redoFailedOrder` or `manualFinished` for one robot: code 0 is done.
    async fn operator(
        &self,
        name: &'static str,
        path: &str,
        vehicle: String,
    ) -> Result<(), FleetError> {
        let call = Call::post(name, path);
        let a = self
            .send(&call, Some(json!({"vehicles": [vehicle]})))
            .await?;
        call.zero(&a)
    }

    async fn set_output(&self, vehicle: String, id: i64, status: bool) -> Result<(), FleetError> {
        let call = Call::post("set_output", "/setRobotIO");
        let body = json!({"vehicle": vehicle, "id": id, "type": "DO", "status": status});
        let a = self.send(&call, Some(body)).await?;
        if a.ok() && a.envelope().1.trim().eq_ignore_ascii_case("ok") {
            return Ok(());
        }
        call.zero(&a)
    }
}

impl Fleet for RdsCoreFleet {
    fn set_order(&self, spec: OrderSpec) -> FleetFuture<()> {
        self.run(|core| async move { core.set_order(spec).await })
    }

    fn add_action(&self, order: &str, action: ActionSpec, complete: bool) -> FleetFuture<()> {
        let order = order.to_string();
        self.run(|core| async move { core.add_action(order, action, complete).await })
    }

    fn mark_complete(&self, order: &str) -> FleetFuture<()> {
        let id = order.to_string();
        self.run(|core| async move { core.by_id("mark_complete", "/markComplete", id).await })
    }

    fn order(&self, id: &str) -> FleetFuture<Option<OrderView>> {
        let id = id.to_string();
        self.run(|core| async move { core.order(id).await })
    }

    fn terminate(&self, id: &str) -> FleetFuture<()> {
        let id = id.to_string();
        self.run(|core| async move { core.by_id("terminate", "/terminate", id).await })
    }

    fn terminate_for(&self, external_id: &str) -> FleetFuture<()> {
        let external_id = external_id.to_string();
        self.run(|core| async move { core.terminate_for(external_id).await })
    }

    fn set_paused_for(&self, external_id: &str, paused: bool) -> FleetFuture<()> {
        let external_id = external_id.to_string();
        self.run(|core| async move { core.set_paused_for(external_id, paused).await })
    }

    fn set_priority(&self, id: &str, priority: i64) -> FleetFuture<()> {
        let id = id.to_string();
        self.run(|core| async move {
            let call = Call::post("set_priority", "/setPriority");
            let a = core
                .send(&call, Some(json!({"id": id, "priority": priority})))
                .await?;
            call.accepted(&a)
        })
    }

    fn robots(&self) -> FleetFuture<Vec<RobotView>> {
        self.run(|core| async move { core.robots().await })
    }

    fn redo_failed(&self, vehicle: &str) -> FleetFuture<()> {
        let v = vehicle.to_string();
        self.run(|core| async move { core.operator("redo_failed", "/redoFailedOrder", v).await })
    }

    fn manual_finished(&self, vehicle: &str) -> FleetFuture<()> {
        let v = vehicle.to_string();
        self.run(|core| async move { core.operator("manual_finished", "/manualFinished", v).await })
    }

    fn set_output(&self, vehicle: &str, id: i64, status: bool) -> FleetFuture<()> {
        let vehicle = vehicle.to_string();
        self.run(|core| async move { core.set_output(vehicle, id, status).await })
    }

    fn changed(&self, _id: &str) -> FleetFuture<()> {
        self.run(|core| async move {
            tokio::time::sleep(core.poll).await;
            Ok(())
        })
    }
}

#[cfg(test)]
#[path = "rdscore_tests.rs"]
mod tests;
