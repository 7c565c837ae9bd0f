//! The simulator's state machine: orders, their actions and the robots that run them, and
//! `Sim::advance`, which applies every state change due up to a time. Private to `fleet::sim`.

use super::*;

/// When an order changes next.
pub(super) enum Wake {
    /// It is unknown or terminal.
    Now,
    /// At this sim ms, unless a call changes state first.
    At(i64),
    /// Only when a call changes state.
    Notified,
}

/// A running action's schedule.
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    pub(super) from: (f64, f64),
    pub(super) start_ms: i64,
    pub(super) arrive_ms: i64,
    pub(super) end_ms: i64,
}

#[derive(Debug)]
pub(super) struct Action {
    pub(super) block_id: String,
    pub(super) location: String,
    pub(super) target: (f64, f64),
    /// Has an operation, script or bin task (takes `operation_ms` at the target).
    pub(super) operates: bool,
    /// CREATED while pending.
    pub(super) state: State,
    pub(super) run: Option<Run>,
    /// Operation time still owed when a pause froze it (RUNNING with no `run` meanwhile).
    pub(super) held_op_ms: Option<i64>,
}

#[derive(Debug)]
pub(super) struct Order {
    /// Creation rank: eviction and tie order.
    pub(super) seq: u64,
    pub(super) spec: OrderSpec,
    /// Where `key_route[0]` is.
    pub(super) key_pos: Option<(f64, f64)>,
    /// Robot index.
    pub(super) vehicle: Option<usize>,
    /// FINISHED or STOPPED.
    pub(super) ended: Option<State>,
    /// No robot can ever serve it (FAILED, with the reason in `errors`).
    pub(super) unassignable: bool,
    pub(super) complete: bool,
    /// Paused (RDSCore `gotoSitePause`): its running action is frozen where the robot is and
    /// no next action starts until resumed.
    pub(super) paused: bool,
    pub(super) actions: Vec<Action>,
    pub(super) errors: Vec<String>,
    pub(super) create_ms: i64,
    pub(super) terminal_ms: Option<i64>,
}

impl Order {
    pub(super) fn find(&self, state: State) -> Option<usize> {
        self.actions.iter().position(|a| a.state == state)
    }

    pub(super) fn running_end(&self) -> Option<i64> {
        let i = self.find(State::Running)?;
        self.actions[i].run.map(|r| r.end_ms)
    }

    pub(super) fn waits_for_robot(&self) -> bool {
        self.vehicle.is_none() && self.ended.is_none() && !self.unassignable
    }

    pub(super) fn state(&self) -> State {
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

    pub(super) fn push_error(&mut self, error: String) {
        if self.errors.len() >= SIM_ERRORS_PER_ORDER_MAX {
            self.errors.remove(0);
        }
        self.errors.push(error);
    }
}

#[derive(Debug, Clone)]
pub(super) struct Robot {
    pub(super) id: String,
    /// Where it is, or where its running action started.
    pub(super) pos: (f64, f64),
    pub(super) station: String,
    pub(super) last_station: String,
    pub(super) battery: f64,
    /// Sim ms since it has had no order (it charges meanwhile).
    pub(super) idle_since: i64,
    pub(super) online: bool,
    /// The unfinished order it serves.
    pub(super) order: Option<u64>,
    pub(super) fail_next: Option<String>,
    pub(super) do_: [bool; IO_COUNT],
}

pub(super) struct Sim {
    pub(super) config: SimConfig,
    pub(super) robots: Vec<Robot>,
    /// By creation rank.
    pub(super) orders: BTreeMap<u64, Order>,
    pub(super) ids: HashMap<String, u64>,
    pub(super) next_seq: u64,
    pub(super) warned: HashSet<String>,
    /// Something changed since the last announcement.
    pub(super) dirty: bool,
    /// A robot was freed or an order wants one since the last dispatch.
    pub(super) dispatch_due: bool,
}

impl Sim {
    pub(super) fn new(config: SimConfig) -> Sim {
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
                    idle_since: 0,
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
    pub(super) fn advance(&mut self, now: i64) {
        while let Some((t, seq)) = self.next_event(now) {
            self.end_action(seq, t);
            self.dispatch(t);
        }
    }

    pub(super) fn next_event(&self, now: i64) -> Option<(i64, u64)> {
        self.robots
            .iter()
            .filter_map(|r| r.order)
            .filter_map(|seq| Some((self.orders.get(&seq)?.running_end()?, seq)))
            .filter(|&(t, _)| t <= now)
            .min()
    }

    pub(super) fn end_action(&mut self, seq: u64, t: i64) {
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
    pub(super) fn proceed(&mut self, seq: u64, t: i64) {
        let Some(order) = self.orders.get_mut(&seq) else {
            return;
        };
        let Some(r) = order.vehicle else { return };
        let busy = order.find(State::Running).or(order.find(State::Failed));
        if order.ended.is_some() || order.paused || busy.is_some() {
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
                robot.idle_since = t;
                self.dispatch_due = true;
            }
            None => {}
        }
        self.dirty = true;
    }

    /// Gives free robots to waiting orders: higher priority first, then older.
    pub(super) fn dispatch(&mut self, t: i64) {
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
                    let robot = &mut self.robots[r];
                    robot.battery = charged(robot, t);
                    robot.order = Some(seq);
                    self.dirty = true;
                    self.proceed(seq, t);
                }
            }
        }
    }

    /// The free online robot that fits the order, nearest to its key route (ties: lowest id).
    pub(super) fn pick_robot(&self, seq: u64) -> Option<usize> {
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
    pub(super) fn constraint_error(&self, spec: &OrderSpec) -> Option<String> {
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
    pub(super) fn resolve(&mut self, name: &str) -> Result<(f64, f64), FleetError> {
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

    pub(super) fn seq_of(&self, id: &str) -> Result<u64, FleetError> {
        (self.ids.get(id).copied()).ok_or_else(|| FleetError::NotFound(format!("order {id}")))
    }

    pub(super) fn order_mut(&mut self, id: &str) -> Result<&mut Order, FleetError> {
        let seq = self.seq_of(id)?;
        (self.orders.get_mut(&seq)).ok_or_else(|| FleetError::NotFound(format!("order {id}")))
    }

    pub(super) fn robot_index(&self, vehicle: &str) -> Result<usize, FleetError> {
        (self.robots.iter().position(|r| r.id == vehicle))
            .ok_or_else(|| FleetError::NotFound(format!("robot {vehicle}")))
    }

    pub(super) fn set_order(&mut self, spec: OrderSpec, now: i64) -> Result<(), FleetError> {
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
            paused: false,
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
    pub(super) fn make_room(&mut self) -> Result<(), FleetError> {
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

    pub(super) fn add_action(
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
            held_op_ms: None,
        });
        order.complete |= complete;
        let seq = order.seq;
        self.dirty = true;
        self.proceed(seq, now);
        Ok(())
    }

    pub(super) fn mark_complete(&mut self, id: &str, now: i64) -> Result<(), FleetError> {
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
    pub(super) fn stop(&mut self, seq: u64, t: i64, reason: Option<&str>) {
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
            robot.idle_since = t;
            self.dispatch_due = true;
        }
        order.ended = Some(State::Stopped);
        order.terminal_ms = Some(t);
        if let Some(reason) = reason {
            order.push_error(reason.to_string());
        }
        self.dirty = true;
    }

    /// A new priority for a known order (it counts for robots freed from now on).
    pub(super) fn set_priority(&mut self, id: &str, priority: i64) -> Result<(), FleetError> {
        let seq = self.seq_of(id)?;
        if let Some(order) = self.orders.get_mut(&seq) {
            order.spec.priority = priority;
        }
        Ok(())
    }

    /// The unfinished orders opened for task record `external_id`.
    pub(super) fn open_orders_of(&self, external_id: &str) -> Vec<u64> {
        self.orders
            .values()
            .filter(|o| o.spec.external_id == external_id && o.ended.is_none())
            .map(|o| o.seq)
            .collect()
    }

    pub(super) fn terminate_for(&mut self, external_id: &str, now: i64) {
        for seq in self.open_orders_of(external_id) {
            self.stop(seq, now, None);
        }
    }

    /// Redo (`to` CREATED: it runs again from now) or manual finish of the robot's failed
    /// action; then the order proceeds.
    pub(super) fn settle_failed(
        &mut self,
        vehicle: &str,
        to: State,
        now: i64,
    ) -> Result<(), FleetError> {
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

    pub(super) fn fail_next(&mut self, vehicle: &str, reason: &str) -> Result<(), FleetError> {
        let r = self.robot_index(vehicle)?;
        self.robots[r].fail_next = Some(reason.to_string());
        self.dirty = true;
        Ok(())
    }

    pub(super) fn set_online(
        &mut self,
        vehicle: &str,
        online: bool,
        now: i64,
    ) -> Result<(), FleetError> {
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

    pub(super) fn set_do(
        &mut self,
        vehicle: &str,
        id: i64,
        status: bool,
    ) -> Result<(), FleetError> {
        let r = self.robot_index(vehicle)?;
        let slot = usize::try_from(id).ok().and_then(|id| id.checked_sub(1));
        let Some(out) = slot.and_then(|i| self.robots[r].do_.get_mut(i)) else {
            return Err(FleetError::NotFound(format!("DO {id} on robot {vehicle}")));
        };
        *out = status;
        self.dirty = true;
        Ok(())
    }

    pub(super) fn next_change(&self, id: &str) -> Wake {
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

    pub(super) fn order_view(&self, id: &str) -> Option<OrderView> {
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
    pub(super) fn robot_view(&self, r: usize, now: i64) -> RobotView {
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
        let battery = charged(&robot, now);
        RobotView {
            group: self.config.group.clone(),
            labels: Vec::new(),
            station: robot.station,
            last_station: robot.last_station,
            x: robot.pos.0,
            y: robot.pos.1,
            battery_level: battery,
            charging: robot.order.is_none() && battery < 1.0,
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

/// The battery of `robot` at `t`: a robot without an order charges at `CHARGE_PER_S` (up to
/// full) since it became idle.
pub(super) fn charged(robot: &Robot, t: i64) -> f64 {
    if robot.order.is_some() {
        return robot.battery;
    }
    let idle_s = (t - robot.idle_since).max(0) as f64 / 1000.0;
    (robot.battery + idle_s * CHARGE_PER_S).min(1.0)
}

/// Starts `action` on `robot` at `t`, from where the robot is.
/// Resumed after a pause, it owes only the operation time left then.
pub(super) fn start(robot: &Robot, action: &mut Action, t: i64, config: &SimConfig) {
    let seconds = distance(robot.pos, action.target) / config.speed_m_per_s;
    let travel_ms = (seconds * 1000.0).round().clamp(0.0, TRAVEL_MS_MAX) as i64;
    let operation_ms = match action.held_op_ms.take() {
        Some(left) => left,
        None if action.operates => config.operation_ms.max(0),
        None => 0,
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
pub(super) fn settle(robot: &mut Robot, action: &Action, t: i64) {
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
pub(super) fn abandon(robot: &mut Robot, action: &mut Action, t: i64, state: State) {
    settle(robot, action, t);
    action.run = None;
    action.held_op_ms = None;
    action.state = state;
}

pub(super) fn distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

/// A constraint that is set and not empty.
pub(super) fn wanted(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

pub(super) fn fits(spec: &OrderSpec, robot: &Robot, group: &str) -> bool {
    wanted(&spec.vehicle).is_none_or(|v| v == robot.id)
        && wanted(&spec.group).is_none_or(|g| g == group)
        && wanted(&spec.label).is_none()
}

/// A stable position in 0..50 m for a name the map does not know (FNV-1a).
pub(super) fn hashed_position(name: &str) -> (f64, f64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mm = |v: u64| (v % HASHED_SPAN_MM) as f64 / 1000.0;
    (mm(h & 0xffff_ffff), mm(h >> 32))
}
