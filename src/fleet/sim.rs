//! The simulated fleet: virtual robots on a map that run orders as RDSCore does, with travel
//! time from distance and speed, operation time, battery drain, charging while idle and
//! injected failures.
//!
//! It is a discrete-event model evaluated lazily: no task, thread or polling loop. Every call
//! first applies each state change due up to now (`Sim::advance`), in time order, and
//! [`Fleet::changed`] sleeps until the order's next scheduled change or until a call changes
//! state. Time zero is the `tokio::time::Instant` taken by [`SimFleet::new`], so under tokio's
//! paused clock every run is exact and deterministic.

use super::{
    ActionSpec, ActionView, Fleet, FleetError, FleetFuture, Io, OrderSpec, OrderView, RobotView,
    State, CODE_ORDER_COMPLETE,
};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Orders kept, ended or not. When full, `set_order` forgets the oldest terminal order (its
/// `order()` answers `None` from then on); if none is terminal it is refused with
/// [`CODE_ORDERS_FULL`].
pub const SIM_ORDERS_MAX: usize = 1_024;
/// Actions one order may hold; past it `add_action` is refused with [`CODE_ACTIONS_FULL`].
pub const SIM_ACTIONS_PER_ORDER_MAX: usize = 256;
/// Robots one simulated fleet may have; [`SimConfig::validate`] refuses more.
pub const SIM_ROBOTS_MAX: usize = 64;
/// Error descriptions kept per order; past it the oldest is dropped (newest last).
pub const SIM_ERRORS_PER_ORDER_MAX: usize = 32;
/// Unknown location names remembered as already warned about; past it a new unknown name is
/// warned about each time it is used.
pub const SIM_WARNED_NAMES_MAX: usize = 256;
/// Longest single operation ([`SimConfig::validate`] refuses more), in ms.
pub const SIM_OPERATION_MS_MAX: i64 = 86_400_000;

/// Refusal code: an action appended to a stopped order.
pub const CODE_ORDER_STOPPED: i64 = 50002;
/// Refusal code (strict mode): a location the map does not know.
pub const CODE_UNKNOWN_LOCATION: i64 = 50004;
/// Refusal code: redo or manual finish asked of a robot without a failed action.
pub const CODE_NO_FAILED_ACTION: i64 = 50005;
/// Refusal code: [`SIM_ORDERS_MAX`] orders are kept and none has ended.
pub const CODE_ORDERS_FULL: i64 = 50006;
/// Refusal code: the order holds [`SIM_ACTIONS_PER_ORDER_MAX`] actions.
pub const CODE_ACTIONS_FULL: i64 = 50007;

/// The group simulated robots belong to unless `SimConfig::group` says otherwise.
pub const SIM_GROUP: &str = "sim";

const DEMO_MAP: &str = include_str!("../../assets/demo-map.json");
/// Digital inputs and outputs per robot (ids 1..=4).
const IO_COUNT: usize = 4;
const BATTERY_PER_M: f64 = 0.001;
const BATTERY_MIN: f64 = 0.05;
/// Battery a robot without an order gains per second (full from empty in about 16 minutes).
const CHARGE_PER_S: f64 = 0.001;
/// Unknown names are placed in 0..50 m on both axes, with mm resolution.
const HASHED_SPAN_MM: u64 = 50_000;
/// Travel times are clamped to this (about 31 years), so sums of ms cannot overflow.
const TRAVEL_MS_MAX: f64 = 1e12;

/// Locations with coordinates in metres.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    locations: BTreeMap<String, (f64, f64)>,
}

impl Map {
    /// The embedded demo site layout (`assets/demo-map.json`).
    pub fn demo() -> Map {
        match Map::from_json(DEMO_MAP) {
            Ok(map) => map,
            // The file is compiled in and checked by a test: a broken one is a build defect.
            Err(e) => panic!("assets/demo-map.json: {e}"),
        }
    }

    /// Parses `{"locations": {"<name>": [x, y], ...}}`; the error names the field or location.
    pub fn from_json(text: &str) -> Result<Map, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("map is not JSON: {e}"))?;
        let Some(entries) = value.get("locations").and_then(|l| l.as_object()) else {
            return Err("map: field `locations` must be an object of name: [x, y]".into());
        };
        if entries.is_empty() {
            return Err("map: `locations` is empty".into());
        }
        let mut locations = BTreeMap::new();
        for (name, xy) in entries {
            let pair = xy
                .as_array()
                .filter(|a| a.len() == 2)
                .and_then(|a| Some((a[0].as_f64()?, a[1].as_f64()?)));
            let Some(pair) = pair else {
                return Err(format!(
                    "map: location {name}: expected [x, y] numbers, got {xy}"
                ));
            };
            locations.insert(name.clone(), pair);
        }
        Ok(Map { locations })
    }

    /// Where location `name` is, if the map knows it.
    pub fn position(&self, name: &str) -> Option<(f64, f64)> {
        self.locations.get(name).copied()
    }

    /// Every location name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.locations.keys().map(String::as_str)
    }
}

/// How the simulated fleet is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Robots `sim-01`..`sim-NN` (1..=[`SIM_ROBOTS_MAX`]).
    pub robots: usize,
    /// Travel speed of every robot, in m/s (positive).
    pub speed_m_per_s: f64,
    /// Time an action with an operation, script or bin task spends at its target.
    pub operation_ms: i64,
    /// Refuse locations the map does not know instead of placing them by their name.
    pub strict: bool,
    /// Locations; robots start at the first ones in name order.
    pub map: Map,
    /// Wall-clock ms at sim start: order times are `base_ms` + sim ms.
    pub base_ms: i64,
    /// The group every robot is in (orders may ask for it); default [`SIM_GROUP`].
    pub group: String,
}

impl Default for SimConfig {
    /// 3 robots at 1 m/s, 2 s per operation, lenient, on the demo map, starting now.
    fn default() -> Self {
        SimConfig {
            robots: 3,
            speed_m_per_s: 1.0,
            operation_ms: 2000,
            strict: false,
            map: Map::demo(),
            base_ms: chrono::Utc::now().timestamp_millis(),
            group: SIM_GROUP.to_string(),
        }
    }
}

impl SimConfig {
    /// Checks every field; the error names the first bad one and its bound.
    pub fn validate(&self) -> Result<(), String> {
        if self.robots == 0 || self.robots > SIM_ROBOTS_MAX {
            return Err(format!(
                "robots: {} is outside 1..={SIM_ROBOTS_MAX} (SIM_ROBOTS_MAX)",
                self.robots
            ));
        }
        if !(self.speed_m_per_s.is_finite() && self.speed_m_per_s > 0.0) {
            return Err(format!(
                "speed_m_per_s: {} must be a positive number",
                self.speed_m_per_s
            ));
        }
        if self.group.trim().is_empty() || self.group.len() > 256 {
            return Err("group: must be 1 to 256 bytes".into());
        }
        if !(0..=SIM_OPERATION_MS_MAX).contains(&self.operation_ms) {
            return Err(format!(
                "operation_ms: {} is outside 0..={SIM_OPERATION_MS_MAX} (SIM_OPERATION_MS_MAX)",
                self.operation_ms
            ));
        }
        Ok(())
    }
}

/// A simulated fleet. Cheap to share behind an `Arc`; every call locks its state briefly and
/// never across an await.
pub struct SimFleet {
    inner: Arc<Inner>,
}

struct Inner {
    sim: Mutex<Sim>,
    /// Fired by every call that changes state; [`Fleet::changed`] waits on it.
    notify: Notify,
    /// Time zero.
    start: Instant,
}

impl SimFleet {
    /// A fleet with its robots placed and idle; time zero is now. Callers validate `config`.
    pub fn new(config: SimConfig) -> SimFleet {
        let inner = Inner {
            sim: Mutex::new(Sim::new(config)),
            notify: Notify::new(),
            start: Instant::now(),
        };
        SimFleet {
            inner: Arc::new(inner),
        }
    }

    /// The next action of `vehicle` to finish (the running one, if any) ends FAILED with
    /// `reason`, which is recorded in its order's errors.
    pub fn fail_next(&self, vehicle: &str, reason: &str) -> Result<(), FleetError> {
        self.inner.with(|sim, _| sim.fail_next(vehicle, reason))
    }

    /// Offline: the robot's running action fails at once ("robot offline") and it starts
    /// nothing until online again.
    pub fn set_online(&self, vehicle: &str, online: bool) -> Result<(), FleetError> {
        self.inner
            .with(|sim, now| sim.set_online(vehicle, online, now))
    }

    /// Pauses or resumes the order `vehicle` serves (RDSCore `gotoSitePause`/`gotoSiteResume`
    /// for one robot); a robot without an order is left alone.
    pub fn set_robot_paused(&self, vehicle: &str, paused: bool) -> Result<(), FleetError> {
        self.inner
            .with(|sim, now| sim.set_paused_robot(vehicle, paused, now))
    }

    /// The core stops `order`: STOPPED, `reason` added to its errors, its robot freed.
    pub fn stop_order(&self, order: &str, reason: &str) -> Result<(), FleetError> {
        self.inner.with(|sim, now| {
            let seq = sim.seq_of(order)?;
            sim.stop(seq, now, Some(reason));
            Ok(())
        })
    }

    /// Sets digital output `id` (1..=4) of `vehicle`.
    pub fn set_do(&self, vehicle: &str, id: i64, status: bool) -> Result<(), FleetError> {
        self.inner.with(|sim, _| sim.set_do(vehicle, id, status))
    }

    /// Orders kept (at most [`SIM_ORDERS_MAX`]).
    pub fn orders_len(&self) -> usize {
        self.inner.lock().0.orders.len()
    }

    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Sim, i64) -> Result<T, FleetError> + Send + 'static,
    ) -> FleetFuture<T> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.with(f) })
    }
}

impl Inner {
    fn now_ms(&self) -> i64 {
        i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn instant(&self, ms: i64) -> Option<Instant> {
        let ms = u64::try_from(ms).ok()?;
        self.start.checked_add(Duration::from_millis(ms))
    }

    /// The state, with every change due up to now applied (and announced).
    fn lock(&self) -> (MutexGuard<'_, Sim>, i64) {
        let mut sim = self.sim.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.now_ms();
        sim.advance(now);
        self.announce(&mut sim);
        (sim, now)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Sim, i64) -> Result<T, FleetError>,
    ) -> Result<T, FleetError> {
        let (mut sim, now) = self.lock();
        let out = f(&mut sim, now);
        sim.dispatch(now);
        self.announce(&mut sim);
        out
    }

    fn announce(&self, sim: &mut Sim) {
        if std::mem::take(&mut sim.dirty) {
            self.notify.notify_waiters();
        }
    }

    async fn changed(&self, id: &str) {
        // Created under the lock after this call's own announcement, so every later change
        // wakes it and none is missed.
        let (wake, notified) = {
            let (sim, _) = self.lock();
            (sim.next_change(id), self.notify.notified())
        };
        match wake {
            Wake::Now => {}
            Wake::Notified => notified.await,
            Wake::At(ms) => match self.instant(ms) {
                Some(at) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = notified => {}
                },
                None => notified.await,
            },
        }
    }
}

impl Fleet for SimFleet {
    fn set_order(&self, spec: OrderSpec) -> FleetFuture<()> {
        self.call(move |sim, now| sim.set_order(spec, now))
    }

    fn add_action(&self, order: &str, action: ActionSpec, complete: bool) -> FleetFuture<()> {
        let order = order.to_string();
        self.call(move |sim, now| sim.add_action(&order, action, complete, now))
    }

    fn mark_complete(&self, order: &str) -> FleetFuture<()> {
        let order = order.to_string();
        self.call(move |sim, now| sim.mark_complete(&order, now))
    }

    fn order(&self, id: &str) -> FleetFuture<Option<OrderView>> {
        let id = id.to_string();
        self.call(move |sim, _| Ok(sim.order_view(&id)))
    }

    fn terminate(&self, id: &str) -> FleetFuture<()> {
        let id = id.to_string();
        self.call(move |sim, now| {
            let seq = sim.seq_of(&id)?;
            sim.stop(seq, now, None);
            Ok(())
        })
    }

    fn terminate_for(&self, external_id: &str) -> FleetFuture<()> {
        let external_id = external_id.to_string();
        self.call(move |sim, now| {
            sim.terminate_for(&external_id, now);
            Ok(())
        })
    }

    fn set_paused_for(&self, external_id: &str, paused: bool) -> FleetFuture<()> {
        let external_id = external_id.to_string();
        self.call(move |sim, now| {
            sim.set_paused_for(&external_id, paused, now);
            Ok(())
        })
    }

    fn set_priority(&self, id: &str, priority: i64) -> FleetFuture<()> {
        let id = id.to_string();
        self.call(move |sim, _| sim.set_priority(&id, priority))
    }

    fn robots(&self) -> FleetFuture<Vec<RobotView>> {
        self.call(move |sim, now| {
            Ok((0..sim.robots.len())
                .map(|r| sim.robot_view(r, now))
                .collect())
        })
    }

    fn redo_failed(&self, vehicle: &str) -> FleetFuture<()> {
        let vehicle = vehicle.to_string();
        self.call(move |sim, now| sim.settle_failed(&vehicle, State::Created, now))
    }

    fn manual_finished(&self, vehicle: &str) -> FleetFuture<()> {
        let vehicle = vehicle.to_string();
        self.call(move |sim, now| sim.settle_failed(&vehicle, State::ManualFinished, now))
    }

    fn set_output(&self, vehicle: &str, id: i64, status: bool) -> FleetFuture<()> {
        let vehicle = vehicle.to_string();
        self.call(move |sim, _| sim.set_do(&vehicle, id, status))
    }

    fn changed(&self, id: &str) -> FleetFuture<()> {
        let inner = Arc::clone(&self.inner);
        let id = id.to_string();
        Box::pin(async move {
            inner.changed(&id).await;
            Ok(())
        })
    }
}

#[path = "sim_model.rs"]
mod model;
use model::*;

#[path = "sim_pause.rs"]
mod pause;

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
