//! The simulated fleet: virtual robots on a map that run orders as RDSCore does, with travel
//! time from distance and speed, operation time, battery drain and injected failures.
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

/// When an order changes next.
enum Wake {
    /// It is unknown or terminal.
    Now,
    /// At this sim ms, unless a call changes state first.
    At(i64),
    /// Only when a call changes state.
    Notified,
}

/// A running action's schedule.
#[derive(Debug, Clone, Copy)]
struct Run {
    from: (f64, f64),
    start_ms: i64,
    arrive_ms: i64,
    end_ms: i64,
}

#[derive(Debug)]
struct Action {
    block_id: String,
    location: String,
    target: (f64, f64),
    /// Has an operation, script or bin task (takes `operation_ms` at the target).
    operates: bool,
    /// CREATED while pending.
    state: State,
    run: Option<Run>,
}

#[derive(Debug)]
struct Order {
    /// Creation rank: eviction and tie order.
    seq: u64,
    spec: OrderSpec,
    /// Where `key_route[0]` is.
    key_pos: Option<(f64, f64)>,
    /// Robot index.
    vehicle: Option<usize>,
    /// FINISHED or STOPPED.
    ended: Option<State>,
    /// No robot can ever serve it (FAILED, with the reason in `errors`).
    unassignable: bool,
    complete: bool,
    actions: Vec<Action>,
    errors: Vec<String>,
    create_ms: i64,
    terminal_ms: Option<i64>,
}

impl Order {
    fn find(&self, state: State) -> Option<usize> {
        self.actions.iter().position(|a| a.state == state)
    }

    fn running_end(&self) -> Option<i64> {
        let i = self.find(State::Running)?;
        self.actions[i].run.map(|r| r.end_ms)
    }

    fn waits_for_robot(&self) -> bool {
        self.vehicle.is_none() && self.ended.is_none() && !self.unassignable
    }

    fn state(&self) -> State {
        if let Some(ended) = self.ended {
            ended
        } else if self.unassignable || self.find(State::Failed).is_some() {
            State::Failed
        } else if self.vehicle.is_none() {
            State::ToBeDispatched
        } else if self.find(State::Running).is_some() {
            State::Running
        } else {
            State::Waiting
        }
    }

    fn push_error(&mut self, error: String) {
        if self.errors.len() >= SIM_ERRORS_PER_ORDER_MAX {
            self.errors.remove(0);
        }
        self.errors.push(error);
    }
}

#[derive(Debug, Clone)]
struct Robot {
    id: String,
    /// Where it is, or where its running action started.
    pos: (f64, f64),
    station: String,
    last_station: String,
    battery: f64,
    online: bool,
    /// The unfinished order it serves.
    order: Option<u64>,
    fail_next: Option<String>,
    do_: [bool; IO_COUNT],
}

struct Sim {
    config: SimConfig,
    robots: Vec<Robot>,
    /// By creation rank.
    orders: BTreeMap<u64, Order>,
    ids: HashMap<String, u64>,
    next_seq: u64,
    warned: HashSet<String>,
    /// Something changed since the last announcement.
    dirty: bool,
    /// A robot was freed or an order wants one since the last dispatch.
    dispatch_due: bool,
}

impl Sim {
    fn new(config: SimConfig) -> Sim {
        let places = config
            .map
            .locations
            .iter()
            .map(Some)
            .chain(std::iter::repeat(None));
        let robots = places
            .take(config.robots)
            .enumerate()
            .map(|(i, place)| {
                let (station, pos) = match place {
                    Some((name, pos)) => (name.clone(), *pos),
                    None => (String::new(), (i as f64, 0.0)),
                };
                Robot {
                    id: format!("sim-{:02}", i + 1),
                    pos,
                    station,
                    last_station: String::new(),
                    battery: 1.0,
                    online: true,
                    order: None,
                    fail_next: None,
                    do_: [false; IO_COUNT],
                }
            })
            .collect();
        Sim {
            config,
            robots,
            orders: BTreeMap::new(),
            ids: HashMap::new(),
            next_seq: 0,
            warned: HashSet::new(),
            dirty: false,
            dispatch_due: false,
        }
    }

    /// Applies every action end due up to `now`, earliest first (ties: order creation).
    fn advance(&mut self, now: i64) {
        while let Some((t, seq)) = self.next_event(now) {
            self.end_action(seq, t);
            self.dispatch(t);
        }
    }

    fn next_event(&self, now: i64) -> Option<(i64, u64)> {
        self.robots
            .iter()
            .filter_map(|r| r.order)
            .filter_map(|seq| Some((self.orders.get(&seq)?.running_end()?, seq)))
            .filter(|&(t, _)| t <= now)
            .min()
    }

    fn end_action(&mut self, seq: u64, t: i64) {
        let Some(order) = self.orders.get_mut(&seq) else {
            return;
        };
        let (Some(r), Some(i)) = (order.vehicle, order.find(State::Running)) else {
            return;
        };
        let robot = &mut self.robots[r];
        let action = &mut order.actions[i];
        settle(robot, action, t);
        action.run = None;
        self.dirty = true;
        match robot.fail_next.take() {
            Some(reason) => {
                action.state = State::Failed;
                order.push_error(reason);
            }
            None => {
                action.state = State::Finished;
                self.proceed(seq, t);
            }
        }
    }

    /// Starts the order's next action, or finishes a sealed order with nothing left to do.
    fn proceed(&mut self, seq: u64, t: i64) {
        let Some(order) = self.orders.get_mut(&seq) else {
            return;
        };
        let Some(r) = order.vehicle else { return };
        let busy = order.find(State::Running).or(order.find(State::Failed));
        if order.ended.is_some() || busy.is_some() {
            return;
        }
        let robot = &mut self.robots[r];
        match order.find(State::Created) {
            Some(i) if robot.online => start(robot, &mut order.actions[i], t, &self.config),
            Some(_) => {}
            None if order.complete => {
                order.ended = Some(State::Finished);
                order.terminal_ms = Some(t);
                robot.order = None;
                self.dispatch_due = true;
            }
            None => {}
        }
        self.dirty = true;
    }

    /// Gives free robots to waiting orders: higher priority first, then older.
    fn dispatch(&mut self, t: i64) {
        while std::mem::take(&mut self.dispatch_due) {
            if !self.robots.iter().any(|r| r.order.is_none() && r.online) {
                continue;
            }
            let mut waiting: Vec<(Reverse<i64>, u64)> = self
                .orders
                .values()
                .filter(|o| o.waits_for_robot())
                .map(|o| (Reverse(o.spec.priority), o.seq))
                .collect();
            waiting.sort_unstable();
            for (_, seq) in waiting {
                let Some(r) = self.pick_robot(seq) else {
                    continue;
                };
                if let Some(order) = self.orders.get_mut(&seq) {
                    order.vehicle = Some(r);
                    self.robots[r].order = Some(seq);
                    self.dirty = true;
                    self.proceed(seq, t);
                }
            }
        }
    }

    /// The free online robot that fits the order, nearest to its key route (ties: lowest id).
    fn pick_robot(&self, seq: u64) -> Option<usize> {
        let order = self.orders.get(&seq)?;
        let away = |r: &Robot| order.key_pos.map_or(0.0, |p| distance(r.pos, p));
        self.robots
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.order.is_none() && r.online && fits(&order.spec, r, &self.config.group)
            })
            .min_by(|(_, a), (_, b)| away(a).total_cmp(&away(b)))
            .map(|(i, _)| i)
    }

    /// Why no robot can ever serve `spec`, if none can.
    fn constraint_error(&self, spec: &OrderSpec) -> Option<String> {
        if let Some(v) = wanted(&spec.vehicle) {
            if !self.robots.iter().any(|r| r.id == v) {
                return Some(format!("no robot {v}"));
            }
        }
        if let Some(g) = wanted(&spec.group).filter(|g| *g != self.config.group) {
            return Some(format!("no robot in group {g}"));
        }
        wanted(&spec.label).map(|l| format!("no robot with label {l}"))
    }

    /// Where `name` is: on the map, else refused (strict) or placed by its name with a warning.
    fn resolve(&mut self, name: &str) -> Result<(f64, f64), FleetError> {
        if let Some(pos) = self.config.map.position(name) {
            return Ok(pos);
        }
        if self.config.strict {
            return Err(FleetError::Refused {
                code: CODE_UNKNOWN_LOCATION,
                msg: format!("unknown location {name}"),
            });
        }
        let pos = hashed_position(name);
        if !self.warned.contains(name) {
            log::warn!("sim fleet: location {name} is not on the map, placed at {pos:?}");
            if self.warned.len() < SIM_WARNED_NAMES_MAX {
                self.warned.insert(name.to_string());
            }
        }
        Ok(pos)
    }

    fn seq_of(&self, id: &str) -> Result<u64, FleetError> {
        (self.ids.get(id).copied()).ok_or_else(|| FleetError::NotFound(format!("order {id}")))
    }

    fn order_mut(&mut self, id: &str) -> Result<&mut Order, FleetError> {
        let seq = self.seq_of(id)?;
        (self.orders.get_mut(&seq)).ok_or_else(|| FleetError::NotFound(format!("order {id}")))
    }

    fn robot_index(&self, vehicle: &str) -> Result<usize, FleetError> {
        (self.robots.iter().position(|r| r.id == vehicle))
            .ok_or_else(|| FleetError::NotFound(format!("robot {vehicle}")))
    }

    fn set_order(&mut self, spec: OrderSpec, now: i64) -> Result<(), FleetError> {
        if self.ids.contains_key(&spec.id) {
            return Ok(());
        }
        let mut key_pos = None;
        for name in &spec.key_route {
            let pos = self.resolve(name)?;
            key_pos = key_pos.or(Some(pos));
        }
        self.make_room()?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut order = Order {
            seq,
            key_pos,
            vehicle: None,
            ended: None,
            unassignable: false,
            complete: false,
            actions: Vec::new(),
            errors: Vec::new(),
            create_ms: now,
            terminal_ms: None,
            spec,
        };
        if let Some(error) = self.constraint_error(&order.spec) {
            order.unassignable = true;
            order.push_error(error);
        }
        self.ids.insert(order.spec.id.clone(), seq);
        self.orders.insert(seq, order);
        self.dispatch_due = true;
        self.dirty = true;
        Ok(())
    }

    /// Forgets the oldest terminal order when [`SIM_ORDERS_MAX`] are kept.
    fn make_room(&mut self) -> Result<(), FleetError> {
        if self.orders.len() < SIM_ORDERS_MAX {
            return Ok(());
        }
        let oldest = self.orders.values().find(|o| o.ended.is_some());
        let Some((seq, id)) = oldest.map(|o| (o.seq, o.spec.id.clone())) else {
            return Err(FleetError::Refused {
                code: CODE_ORDERS_FULL,
                msg: format!(
                    "SIM_ORDERS_MAX ({SIM_ORDERS_MAX}) orders are kept and none has ended"
                ),
            });
        };
        self.orders.remove(&seq);
        self.ids.remove(&id);
        Ok(())
    }

    fn add_action(
        &mut self,
        id: &str,
        spec: ActionSpec,
        complete: bool,
        now: i64,
    ) -> Result<(), FleetError> {
        let order = self.order_mut(id)?;
        if order.actions.iter().any(|a| a.block_id == spec.block_id) {
            return Ok(());
        }
        let refused = |code, msg| Err(FleetError::Refused { code, msg });
        if order.complete {
            return refused(CODE_ORDER_COMPLETE, format!("order {id} is complete"));
        }
        if order.ended == Some(State::Stopped) {
            return refused(CODE_ORDER_STOPPED, "order stopped".to_string());
        }
        if order.actions.len() >= SIM_ACTIONS_PER_ORDER_MAX {
            let msg = format!(
                "order {id} holds SIM_ACTIONS_PER_ORDER_MAX ({SIM_ACTIONS_PER_ORDER_MAX}) actions"
            );
            return refused(CODE_ACTIONS_FULL, msg);
        }
        let target = self.resolve(&spec.location)?;
        let operates = spec.operation.is_some()
            || spec.script_name.is_some()
            || spec.bin_task.is_some()
            || spec.pre_bin_task.is_some();
        let order = self.order_mut(id)?;
        order.actions.push(Action {
            block_id: spec.block_id,
            location: spec.location,
            target,
            operates,
            state: State::Created,
            run: None,
        });
        order.complete |= complete;
        let seq = order.seq;
        self.dirty = true;
        self.proceed(seq, now);
        Ok(())
    }

    fn mark_complete(&mut self, id: &str, now: i64) -> Result<(), FleetError> {
        let order = self.order_mut(id)?;
        if order.ended.is_some() || order.complete {
            return Ok(());
        }
        order.complete = true;
        let seq = order.seq;
        self.dirty = true;
        self.proceed(seq, now);
        Ok(())
    }

    /// Stops an unfinished order: its running action is abandoned where the robot is, and the
    /// robot is free at once.
    fn stop(&mut self, seq: u64, t: i64, reason: Option<&str>) {
        let Some(order) = self.orders.get_mut(&seq) else {
            return;
        };
        if order.ended.is_some() {
            return;
        }
        if let Some(r) = order.vehicle {
            let robot = &mut self.robots[r];
            if let Some(i) = order.find(State::Running) {
                abandon(robot, &mut order.actions[i], t, State::Stopped);
            }
            robot.order = None;
            self.dispatch_due = true;
        }
        order.ended = Some(State::Stopped);
        order.terminal_ms = Some(t);
        if let Some(reason) = reason {
            order.push_error(reason.to_string());
        }
        self.dirty = true;
    }

    fn terminate_for(&mut self, external_id: &str, now: i64) {
        let seqs: Vec<u64> = self
            .orders
            .values()
            .filter(|o| o.spec.external_id == external_id && o.ended.is_none())
            .map(|o| o.seq)
            .collect();
        for seq in seqs {
            self.stop(seq, now, None);
        }
    }

    /// Redo (`to` CREATED: it runs again from now) or manual finish of the robot's failed
    /// action; then the order proceeds.
    fn settle_failed(&mut self, vehicle: &str, to: State, now: i64) -> Result<(), FleetError> {
        let r = self.robot_index(vehicle)?;
        let seq = self.robots[r].order;
        let order = seq.and_then(|seq| self.orders.get_mut(&seq));
        let Some((order, i)) = order.and_then(|o| o.find(State::Failed).map(|i| (o, i))) else {
            return Err(FleetError::Refused {
                code: CODE_NO_FAILED_ACTION,
                msg: format!("robot {vehicle} has no failed action"),
            });
        };
        order.actions[i].state = to;
        let seq = order.seq;
        self.dirty = true;
        self.proceed(seq, now);
        Ok(())
    }

    fn fail_next(&mut self, vehicle: &str, reason: &str) -> Result<(), FleetError> {
        let r = self.robot_index(vehicle)?;
        self.robots[r].fail_next = Some(reason.to_string());
        self.dirty = true;
        Ok(())
    }

    fn set_online(&mut self, vehicle: &str, online: bool, now: i64) -> Result<(), FleetError> {
        let r = self.robot_index(vehicle)?;
        let robot = &mut self.robots[r];
        if robot.online == online {
            return Ok(());
        }
        robot.online = online;
        self.dirty = true;
        let Some(seq) = robot.order else {
            self.dispatch_due |= online;
            return Ok(());
        };
        if online {
            self.proceed(seq, now);
        } else if let Some(order) = self.orders.get_mut(&seq) {
            if let Some(i) = order.find(State::Running) {
                abandon(robot, &mut order.actions[i], now, State::Failed);
                order.push_error("robot offline".to_string());
            }
        }
        Ok(())
    }

    fn set_do(&mut self, vehicle: &str, id: i64, status: bool) -> Result<(), FleetError> {
        let r = self.robot_index(vehicle)?;
        let slot = usize::try_from(id).ok().and_then(|id| id.checked_sub(1));
        let Some(out) = slot.and_then(|i| self.robots[r].do_.get_mut(i)) else {
            return Err(FleetError::NotFound(format!("DO {id} on robot {vehicle}")));
        };
        *out = status;
        self.dirty = true;
        Ok(())
    }

    fn next_change(&self, id: &str) -> Wake {
        let Some(order) = self.ids.get(id).and_then(|seq| self.orders.get(seq)) else {
            return Wake::Now;
        };
        if order.ended.is_some() {
            return Wake::Now;
        }
        if let Some(end) = order.running_end() {
            return Wake::At(end);
        }
        if !order.waits_for_robot() {
            return Wake::Notified;
        }
        // It may get a robot when any running action ends.
        let ends = self.robots.iter().filter_map(|r| r.order);
        let next = ends
            .filter_map(|seq| self.orders.get(&seq)?.running_end())
            .min();
        next.map_or(Wake::Notified, Wake::At)
    }

    fn order_view(&self, id: &str) -> Option<OrderView> {
        let order = self.orders.get(self.ids.get(id)?)?;
        let base = self.config.base_ms;
        let blocks = order.actions.iter().map(|a| ActionView {
            block_id: a.block_id.clone(),
            location: a.location.clone(),
            state: a.state,
            container_name: String::new(),
        });
        Some(OrderView {
            id: order.spec.id.clone(),
            external_id: order.spec.external_id.clone(),
            vehicle: order.vehicle.map(|r| self.robots[r].id.clone()),
            state: order.state(),
            complete: order.complete,
            blocks: blocks.collect(),
            errors: order.errors.clone(),
            create_ms: base.saturating_add(order.create_ms),
            terminal_ms: order.terminal_ms.map(|t| base.saturating_add(t)),
        })
    }

    /// Robot `r` as it is at `now` (interpolated along its running action).
    fn robot_view(&self, r: usize, now: i64) -> RobotView {
        let mut robot = self.robots[r].clone();
        let order = robot.order.and_then(|seq| self.orders.get(&seq));
        if let Some(order) = order {
            if let Some(i) = order.find(State::Running) {
                settle(&mut robot, &order.actions[i], now);
            }
        }
        let io = |states: [bool; IO_COUNT]| -> Vec<Io> {
            (1..)
                .zip(states)
                .map(|(id, status)| Io { id, status })
                .collect()
        };
        RobotView {
            group: self.config.group.clone(),
            labels: Vec::new(),
            station: robot.station,
            last_station: robot.last_station,
            x: robot.pos.0,
            y: robot.pos.1,
            battery_level: robot.battery,
            charging: false,
            dispatchable: robot.online,
            online: robot.online,
            order: order.map(|o| o.spec.id.clone()),
            errors: (!robot.online)
                .then(|| "robot offline".to_string())
                .into_iter()
                .collect(),
            di: io([false; IO_COUNT]),
            do_: io(robot.do_),
            id: robot.id,
        }
    }
}

/// Starts `action` on `robot` at `t`, from where the robot is.
fn start(robot: &Robot, action: &mut Action, t: i64, config: &SimConfig) {
    let seconds = distance(robot.pos, action.target) / config.speed_m_per_s;
    let travel_ms = (seconds * 1000.0).round().clamp(0.0, TRAVEL_MS_MAX) as i64;
    let operation_ms = if action.operates {
        config.operation_ms.max(0)
    } else {
        0
    };
    let arrive_ms = t.saturating_add(travel_ms);
    action.run = Some(Run {
        from: robot.pos,
        start_ms: t,
        arrive_ms,
        end_ms: arrive_ms.saturating_add(operation_ms),
    });
    action.state = State::Running;
}

/// Moves `robot` to where it is at `t` along `action` (the target once arrived), draining the
/// battery for the distance covered. Called once per run on the robot itself (at the end or
/// when abandoned), or on a copy for a view.
fn settle(robot: &mut Robot, action: &Action, t: i64) {
    let Some(run) = action.run else { return };
    let length = distance(run.from, action.target);
    let covered = if t >= run.arrive_ms {
        robot.pos = action.target;
        if robot.station != action.location {
            if !robot.station.is_empty() {
                robot.last_station = std::mem::take(&mut robot.station);
            }
            robot.station = action.location.clone();
        }
        length
    } else if t > run.start_ms {
        let f = (t - run.start_ms) as f64 / (run.arrive_ms - run.start_ms) as f64;
        let lerp = |a: f64, b: f64| a + (b - a) * f;
        robot.pos = (
            lerp(run.from.0, action.target.0),
            lerp(run.from.1, action.target.1),
        );
        if !robot.station.is_empty() {
            robot.last_station = std::mem::take(&mut robot.station);
        }
        length * f
    } else {
        0.0
    };
    robot.battery = (robot.battery - covered * BATTERY_PER_M).max(BATTERY_MIN);
}

/// Ends a running action early at `t` with `state`; the robot stays where it got to.
fn abandon(robot: &mut Robot, action: &mut Action, t: i64, state: State) {
    settle(robot, action, t);
    action.run = None;
    action.state = state;
}

fn distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

/// A constraint that is set and not empty.
fn wanted(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn fits(spec: &OrderSpec, robot: &Robot, group: &str) -> bool {
    wanted(&spec.vehicle).is_none_or(|v| v == robot.id)
        && wanted(&spec.group).is_none_or(|g| g == group)
        && wanted(&spec.label).is_none()
}

/// A stable position in 0..50 m for a name the map does not know (FNV-1a).
fn hashed_position(name: &str) -> (f64, f64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mm = |v: u64| (v % HASHED_SPAN_MM) as f64 / 1000.0;
    (mm(h & 0xffff_ffff), mm(h >> 32))
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
