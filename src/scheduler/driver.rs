//! The driver task: owns every loaded run, the ready rings and the timers; steps runs with the
//! engine, commits each step, then starts its waits. All in one task, so there is no locking of
//! run state and nothing is spawned per run.

use super::control::Waiter;
use super::host::{Cache, RunHost};
use super::loader::{load, new_state, Loaded};
use super::persist::{run_events, status_for, StatusChange, StepWrite};
use super::ready::Ready;
use super::timers::{TimerKey, Timers};
use super::{Command, RunEvent, RunEventKind, Shared};
use crate::engine::{self, Effect, EffectKind, Event, Outcome, Reply, RunState};
use crate::flow::model::Flow;
use crate::limits::{
    CONTROL_LOADS_MAX, DRIVER_EXTRA_INFLIGHT_MAX, FIBERS_MAX, RUN_EVENTS_QUEUED_MAX,
    STORE_RETRIES_MAX, STORE_RETRY_MS,
};
use crate::store::{OutboxEvent, QueuedRef, SiteChanges, StoreError, TaskStatus};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::mpsc;

pub(super) type BoxFuture = Pin<Box<dyn Future<Output = Completion> + Send>>;

/// What an in-flight future reports back to the driver.
pub(super) enum Completion {
    Committed(Box<Commit>),
    Loaded {
        run: String,
        result: Result<Box<Loaded>, String>,
    },
    Refilled {
        level: i64,
        room: usize,
        result: Result<Vec<QueuedRef>, StoreError>,
    },
    /// A control command finished its own store work (the reply was sent by the future).
    Done,
    /// As `Done`, and these ready levels must be read again from the store.
    Rescan(Vec<i64>),
    /// A control command ended a run that was not loaded (its end is committed).
    RunEnded {
        run: String,
        code: i32,
        parent: Option<String>,
    },
    /// Marking a run that cannot be written as failed did not work either.
    Unwritable {
        run: String,
        error: StoreError,
    },
    /// A data cache write from outside a run reached the store.
    CacheWritten {
        key: String,
        value: Option<String>,
        result: Result<bool, String>,
        reply: tokio::sync::oneshot::Sender<Result<bool, String>>,
    },
    /// A periodic definition's tick ended.
    Ticked {
        def_id: String,
        tick: super::periodic::Tick,
    },
    /// The periodic definitions were read again (`seq` orders concurrent reloads).
    PeriodicLoaded(Box<super::periodic::Reloaded>),
    /// A control command read the run's record; continue it in the driver.
    ControlRead(Box<super::control::ControlRead>),
    /// A run's site operation was submitted to the store.
    SiteSubmitted(Box<super::site_waits::SubmitDone>),
    /// A serve pass over the site waiters ended.
    SitesServed(super::site_waits::ServeResult),
}

/// A step's write came back.
pub(super) struct Commit {
    run: String,
    /// The outbox events the step appended and the sites it changed, once committed.
    result: Result<(Vec<OutboxEvent>, SiteChanges), StoreError>,
    effects: Vec<Effect>,
    outcome: Outcome,
    status: Option<StatusChange>,
    events: Vec<RunEvent>,
    /// Sub-tasks the step stopped waiting for because the run was stopped: stopped too, once
    /// the stop is committed (spec §8 Q8).
    stop_children: Vec<String>,
}

/// A run the driver holds (loading or loaded).
pub(super) struct Slot {
    pub flow: Option<Arc<Flow>>,
    pub state: Option<RunState>,
    /// A step's write is in flight: further events wait in `events`.
    pub busy: bool,
    pub events: VecDeque<Event>,
    /// The status the store has for the run.
    pub status: TaskStatus,
    pub waiters: Vec<Waiter>,
    /// Loaded only to apply a control command (stop/manual end of a paused or interrupted
    /// run); does not count against `runs_active_max`.
    pub control_only: bool,
    /// Loaded again after a failed commit: the store may still say `running`.
    pub reload: bool,
    /// Loaded because a site waiter of it was served while it was parked (it is `running`).
    pub wake: bool,
    /// Site operations submitted and not answered yet.
    pub site_pending: u32,
    /// The run that started this one with a `SubTask` block.
    pub parent: Option<String>,
}

impl Slot {
    pub fn loading(control_only: bool) -> Slot {
        Slot {
            flow: None,
            state: None,
            busy: false,
            events: VecDeque::new(),
            status: TaskStatus::Queued,
            waiters: Vec::new(),
            control_only,
            reload: false,
            wake: false,
            site_pending: 0,
            parent: None,
        }
    }
}

pub(super) struct Driver {
    pub shared: Arc<Shared>,
    pub ready: Ready,
    pub timers: Timers,
    pub slots: HashMap<String, Slot>,
    pub cache: Cache,
    pub inflight: FuturesUnordered<BoxFuture>,
    commands: mpsc::Receiver<Command>,
    /// Runs to load again after a failed commit, with the time to do it.
    reloads: VecDeque<(String, i64)>,
    /// Failed step writes in a row per run (an entry exists only while a run is failing).
    failures: HashMap<String, u32>,
    pub shutting_down: Option<tokio::sync::oneshot::Sender<()>>,
    pub periodic: Vec<super::periodic::Periodic>,
    /// Periodic reloads started / the newest one applied (an older read never overrides).
    pub periodic_seq: (u64, u64),
    /// The site wait queue's driver side (changes not yet served, parked runs woken).
    pub sites: super::site_waits::SiteWaits,
    /// The robot blocks' fleet waits.
    pub op_waits: super::op_waits::OpWaits,
}

impl Driver {
    /// Prepares the driver: loads the data cache and puts runs that were running back in the
    /// queue (they resume from their checkpoints).
    pub async fn recover(
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
    ) -> Result<Driver, StoreError> {
        let entries = shared
            .store
            .read(|rx| rx.cache_all(crate::limits::CACHE_ENTRIES_MAX))
            .await?;
        let now = shared.clock.now_ms();
        let requeued = shared
            .store
            .write(move |tx| {
                let running = tx.tasks_with_status(TaskStatus::Running, usize::MAX >> 1)?;
                for t in &running {
                    tx.set_task_status(
                        &t.id,
                        TaskStatus::Queued,
                        crate::engine::code::QUEUED,
                        None,
                        now,
                    )?;
                }
                Ok(running.len())
            })
            .await?;
        if requeued > 0 {
            log::info!(
                "recovery: {requeued} run(s) that were running resume from their checkpoints"
            );
        }
        let periodic = super::periodic::schedule(super::periodic::load(&shared).await?, now);
        let config = &shared.config;
        let timers = Timers::new((config.runs_active_max + CONTROL_LOADS_MAX) * FIBERS_MAX);
        Ok(Driver {
            ready: Ready::new(config.ready_ring_capacity, config.aging_step_ms),
            timers,
            slots: HashMap::new(),
            cache: Cache::from_entries(entries.into_iter().map(|(k, v, _)| (k, v))),
            inflight: FuturesUnordered::new(),
            commands,
            reloads: VecDeque::new(),
            failures: HashMap::new(),
            shutting_down: None,
            periodic,
            periodic_seq: (0, 0),
            // A change committed just before a crash may not have been served: check every
            // waiter once.
            sites: super::site_waits::SiteWaits::after_start(),
            op_waits: super::op_waits::OpWaits::new(),
            shared,
        })
    }

    /// The driver loop; ends after a shutdown once every write in flight has committed.
    pub async fn run(mut self) {
        loop {
            self.fill();
            self.publish_gauges();
            if self.shutting_down.is_some() && !self.slots.values().any(|s| s.busy) {
                break;
            }
            let deadline = self.next_deadline();
            let sleep_until = deadline.map(|ms| self.shared.clock.instant_at(ms));
            tokio::select! {
                biased;
                Some(done) = self.inflight.next(), if !self.inflight.is_empty() => {
                    self.completed(done);
                }
                Some(done) = self.op_waits.futures.next(), if !self.op_waits.futures.is_empty() => {
                    self.op_done(done);
                }
                cmd = self.commands.recv(), if self.shutting_down.is_none() && self.has_room() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => self.begin_shutdown(None),
                },
                _ = sleep_opt(sleep_until), if sleep_until.is_some() => self.fire_due(),
            }
        }
        if let Some(reply) = self.shutting_down.take() {
            let _ = reply.send(());
        }
        log::info!("scheduler stopped");
    }

    pub fn begin_shutdown(&mut self, reply: Option<tokio::sync::oneshot::Sender<()>>) {
        let (tx, _) = tokio::sync::oneshot::channel();
        self.shutting_down = Some(reply.unwrap_or(tx));
        for slot in self.slots.values_mut() {
            slot.events.clear();
        }
    }

    fn next_deadline(&self) -> Option<i64> {
        [
            self.timers.next_deadline(),
            self.reloads.iter().map(|(_, t)| *t).min(),
            self.next_periodic(),
            self.sites.retry_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn publish_gauges(&self) {
        let g = &self.shared.gauges;
        g.runs_loaded.store(self.active(), Relaxed);
        g.ready_len.store(self.ready.len(), Relaxed);
        g.ready_capacity.store(self.ready.capacity(), Relaxed);
        g.timers.store(self.timers.len(), Relaxed);
        g.timers_capacity.store(self.timers.capacity(), Relaxed);
        g.inflight.store(self.inflight.len(), Relaxed);
        g.cache_entries.store(self.cache.len(), Relaxed);
        g.sites_woken.store(self.sites.woken_len(), Relaxed);
        g.op_waits.store(self.op_waits.len(), Relaxed);
    }

    /// Whether the driver may take another command: its in-flight store work stays within one
    /// step write per slot, one refill per level and `DRIVER_EXTRA_INFLIGHT_MAX`.
    pub(super) fn has_room(&self) -> bool {
        let cap = self.shared.config.runs_active_max
            + CONTROL_LOADS_MAX
            + crate::limits::PRIORITY_LEVELS
            + DRIVER_EXTRA_INFLIGHT_MAX;
        self.inflight.len() < cap
    }

    pub(super) fn active(&self) -> usize {
        self.slots.values().filter(|s| !s.control_only).count()
    }

    /// Reads in refills and starts loading queued runs while slots are free.
    fn fill(&mut self) {
        if self.shutting_down.is_some() {
            return;
        }
        for (level, after, room) in self.ready.refills_due() {
            let store = self.shared.store.clone();
            self.inflight.push(Box::pin(async move {
                let result = store
                    .read(move |rx| rx.queued_in_level(level, after, room))
                    .await;
                Completion::Refilled {
                    level,
                    room,
                    result,
                }
            }));
        }
        self.serve_sites();
        self.load_woken();
        let now = self.shared.clock.now_ms();
        while self.active() < self.shared.config.runs_active_max {
            let Some(next) = self.ready.pop(now) else {
                break;
            };
            if !self.slots.contains_key(&next.id) {
                self.start_load(next.id, Slot::loading(false));
            }
        }
    }

    /// Reads a run (record, checkpoint, definition) and puts it in a slot.
    pub fn start_load(&mut self, id: String, slot: Slot) {
        self.slots.insert(id.clone(), slot);
        let shared = self.shared.clone();
        self.inflight.push(Box::pin(async move {
            let result = load(&shared, &id).await;
            Completion::Loaded { run: id, result }
        }));
    }

    fn completed(&mut self, done: Completion) {
        match done {
            Completion::Committed(commit) => self.committed(*commit),
            Completion::Loaded { run, result } => self.loaded(run, result),
            Completion::Refilled {
                level,
                room,
                result,
            } => match result {
                Ok(rows) => self.ready.refilled(level, rows, room),
                Err(e) => {
                    log::error!("reading queued runs: {e}");
                    self.ready.refill_failed(level);
                }
            },
            Completion::Ticked { def_id, tick } => self.ticked(&def_id, tick),
            Completion::PeriodicLoaded(r) => self.periodic_loaded(*r),
            Completion::CacheWritten {
                key,
                value,
                result,
                reply,
            } => {
                if result.is_ok() {
                    let applied = match &value {
                        Some(v) => self.cache.set(&key, v),
                        None => {
                            self.cache.delete(&key);
                            Ok(())
                        }
                    };
                    if let Err(e) = applied {
                        log::error!("cache mirror out of step for {key}: {e}");
                    }
                }
                let _ = reply.send(result);
            }
            Completion::Unwritable { run, error } => self.commit_failed(run, error),
            Completion::Done => {}
            Completion::Rescan(levels) => {
                for level in levels {
                    self.ready.rescan(level);
                }
            }
            Completion::ControlRead(read) => self.control_read(*read),
            Completion::RunEnded { run, code, parent } => self.run_ended(&run, code, parent),
            Completion::SiteSubmitted(done) => self.site_submitted(*done),
            Completion::SitesServed(result) => self.sites_served(result),
        }
    }

    fn loaded(&mut self, id: String, result: Result<Box<Loaded>, String>) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let loaded = match result {
            Ok(l) => l,
            Err(e) => {
                log::error!("run {id}: cannot load: {e}");
                let slot = self.slots.remove(&id).expect("slot");
                super::control::answer_all(slot.waiters, Err(super::ControlError::Store(e)));
                return;
            }
        };
        let status = loaded.record.status;
        // A reloaded or woken run may still say running, or have been put back in the queue
        // (by the startup recovery; the ready ring that pops it then finds this slot and skips
        // it): load it either way.
        let expected = if slot.reload || slot.wake {
            matches!(status, TaskStatus::Running | TaskStatus::Queued)
        } else if slot.control_only {
            !status.is_terminal()
        } else {
            status == TaskStatus::Queued
        };
        if !expected {
            // Stopped, paused or already taken while it waited in the ring.
            let slot = self.slots.remove(&id).expect("slot");
            super::control::answer_all(slot.waiters, Ok(status));
            return;
        }
        let (state, natural) = match loaded.checkpoint {
            Some(state) => {
                let event = if state.paused {
                    Event::Resume
                } else if state.interrupted.is_some() {
                    Event::Retry
                } else {
                    Event::Recover
                };
                (state, event)
            }
            None => (new_state(&loaded.flow, &loaded.record), Event::Start),
        };
        let control_first = slot.control_only;
        if natural == Event::Resume && !control_first && loaded.flow.uses_robots {
            self.pause_orders(&id, false);
        }
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        slot.status = status;
        slot.parent = loaded.record.parent_id.clone();
        slot.flow = Some(loaded.flow);
        slot.state = Some(state);
        if natural == Event::Start || !control_first {
            slot.events.push_front(natural);
        }
        self.kick(&id);
    }

    /// Steps run `id` with its next event, unless a write is in flight.
    pub fn kick(&mut self, id: &str) {
        if self.shutting_down.is_some() {
            return;
        }
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        if slot.busy || slot.state.is_none() {
            return;
        }
        let Some(event) = slot.events.pop_front() else {
            return;
        };
        // A site answer taken by this step: its kept row goes with the step.
        let took_answer = match &event {
            Event::Reply {
                token,
                reply: crate::engine::Reply::Site(_),
                ..
            } => Some(*token),
            _ => None,
        };
        let flow = slot.flow.clone().expect("loaded slot has a flow");
        let state = slot.state.as_mut().expect("loaded");
        let mut host = RunHost {
            clock: &self.shared.clock,
            cache: &mut self.cache,
        };
        // Sub-tasks waited for before a stop (the step ends those waits).
        let mut awaited = match event {
            Event::Stop => awaited_children(state),
            _ => Vec::new(),
        };
        let out = engine::step(&flow, state, event, &mut host);
        for token in &out.cancelled {
            self.timers.cancel(id, *token);
            self.op_waits.cancel(id, *token);
        }
        let outcome = out.outcome.clone().expect("a step always has an outcome");
        if !matches!(&outcome, Outcome::Ended(e) if e.code == crate::engine::code::STOPPED) {
            awaited.clear();
        }
        let change = status_for(&outcome);
        let status = (change.status != slot.status || change.status != TaskStatus::Running)
            .then_some(change);
        let now = self.shared.clock.now_ms();
        let write = match StepWrite::new(&flow, state, &out, status.clone(), now) {
            Ok(mut w) => {
                if let Some(token) = took_answer {
                    w.took_site_answer(token);
                }
                w
            }
            Err(e) => {
                log::error!("run {id}: {e}");
                return self.commit_failed(id.to_string(), StoreError::Io(e));
            }
        };
        let events = run_events(id, &flow, &out.records, status.as_ref());
        slot.busy = true;
        let store = self.shared.store.clone();
        let run = id.to_string();
        let effects = out.effects;
        self.inflight.push(Box::pin(async move {
            let result = store.write(move |tx| write.apply(tx)).await;
            Completion::Committed(Box::new(Commit {
                run,
                result,
                effects,
                outcome,
                status,
                events,
                stop_children: awaited,
            }))
        }));
    }

    /// Gives a loaded run the answer to its site or fleet operation (`Event::Reply`).
    pub(super) fn deliver(&mut self, run: &str, fiber: u32, token: u64, reply: Reply) {
        let Some(slot) = self.slots.get_mut(run) else {
            return;
        };
        if slot.events.len() >= RUN_EVENTS_QUEUED_MAX {
            // Cannot happen (one event per fiber wait). A site answer stays in the store and
            // the run asks again when it is next loaded.
            log::error!("run {run}: event queue full; answer dropped");
            return;
        }
        slot.events.push_back(Event::Reply {
            fiber,
            token,
            reply,
        });
        self.kick(run);
    }

    fn committed(&mut self, commit: Commit) {
        let Commit {
            run: id,
            result,
            effects,
            outcome,
            status,
            events,
            stop_children,
        } = commit;
        let (outbox, changes) = match result {
            Ok(done) => done,
            Err(e) => return self.commit_failed(id, e),
        };
        self.sites.changed(changes);
        self.failures.remove(&id);
        for event in outbox {
            let _ = self.shared.outbox.send(Arc::new(event));
        }
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        slot.busy = false;
        if let Some(change) = &status {
            slot.status = change.status;
        }
        for event in events {
            let _ = self.shared.events.send(event);
        }
        let mut failed_timer = None;
        let mut site_effects = Vec::new();
        let mut fleet_effects = Vec::new();
        let mut io_effects = Vec::new();
        for effect in effects {
            let until_ms = match effect.kind {
                EffectKind::Timer { until_ms } => until_ms,
                EffectKind::Site(op) => {
                    site_effects.push((effect.fiber, effect.token, op));
                    continue;
                }
                EffectKind::Fleet(op) => {
                    fleet_effects.push((effect.fiber, effect.token, op));
                    continue;
                }
                EffectKind::Io(op) => {
                    io_effects.push((effect.fiber, effect.token, op));
                    continue;
                }
            };
            let key = TimerKey {
                run: id.clone(),
                fiber: effect.fiber,
                token: effect.token,
            };
            if let Err(e) = self.timers.insert(until_ms, key) {
                failed_timer = Some(e);
            }
        }
        if let Some(e) = failed_timer {
            // A broken invariant (timers are sized for every fiber of every slot): stop the run
            // rather than leave a wait that never ends.
            log::error!("run {id}: {e}; stopping it");
            slot.events.push_back(Event::Stop);
        }
        let settled = !matches!(outcome, Outcome::More | Outcome::Waiting);
        if matches!(outcome, Outcome::More) {
            slot.events.push_back(Event::Continue);
        }
        let current = slot.status;
        super::control::answer_ready(&mut slot.waiters, current, settled);
        let robots = slot.flow.as_ref().is_some_and(|f| f.uses_robots);
        for (fiber, token, op) in site_effects {
            self.submit_site_op(&id, fiber, token, *op);
        }
        for (fiber, token, op) in fleet_effects {
            self.start_fleet_op(&id, fiber, token, *op);
        }
        for (fiber, token, op) in io_effects {
            self.start_io_op(&id, fiber, token, *op);
        }
        if robots && matches!(outcome, Outcome::Ended(_)) {
            self.terminate_orders(&id);
        }
        if let Outcome::Ended(ended) = &outcome {
            let parent = self.slots.get(&id).and_then(|s| s.parent.clone());
            self.run_ended(&id, ended.code, parent);
            for child in stop_children {
                self.stop_child(child);
            }
        }
        if robots && matches!(outcome, Outcome::Paused) {
            self.pause_orders(&id, true);
        }
        if settled && self.slots.get(&id).is_some_and(|s| s.events.is_empty()) {
            self.unload(&id);
        } else {
            self.kick(&id);
            self.park_if_only_sites(&id);
        }
    }

    /// A step's write failed: forget the in-memory state and load the run again from its last
    /// good checkpoint after `STORE_RETRY_MS` (doubling; the step's waits were never started).
    /// After `STORE_RETRIES_MAX` failures in a row the run is ended as failed instead.
    fn commit_failed(&mut self, id: String, e: StoreError) {
        self.shared.gauges.commit_failures.fetch_add(1, Relaxed);
        self.timers.cancel_run(&id);
        self.op_waits.cancel_run(&id);
        if let Some(slot) = self.slots.remove(&id) {
            let answer = Err(super::ControlError::Store(e.to_string()));
            super::control::answer_all(slot.waiters, answer);
        }
        let attempt = self.failures.get(&id).copied().unwrap_or(0) + 1;
        if attempt > STORE_RETRIES_MAX {
            log::error!("run {id}: step not written {attempt} times ({e}); ending it as failed");
            self.failures.remove(&id);
            return self.fail_unwritable(id, e);
        }
        log::error!("run {id}: step not written ({e}); reloading from its last checkpoint");
        self.failures.insert(id.clone(), attempt);
        let delay = STORE_RETRY_MS.saturating_mul(1 << (attempt - 1).min(16)) as i64;
        self.reloads
            .push_back((id, self.shared.clock.now_ms() + delay));
    }

    /// Ends a run whose steps the store keeps refusing: status failed (1004), reason naming the
    /// error. If even that write fails, the run is retried later like any failed write.
    fn fail_unwritable(&mut self, id: String, e: StoreError) {
        let store = self.shared.store.clone();
        let now = self.shared.clock.now_ms();
        let reason =
            format!("[RootBp]the store refused this run's steps {STORE_RETRIES_MAX} times: {e}");
        let events = self.shared.events.clone();
        self.inflight.push(Box::pin(async move {
            let (id2, reason2) = (id.clone(), reason.clone());
            let code = crate::engine::code::FAILED;
            let result = store
                .write(move |tx| {
                    tx.set_task_status(&id2, TaskStatus::Failed, code, Some(&reason2), now)?;
                    Ok(tx.task(&id2)?.and_then(|r| r.parent_id))
                })
                .await;
            match result {
                Ok(parent) => {
                    let kind = RunEventKind::Status {
                        status: TaskStatus::Failed,
                        code,
                        reason: Some(reason),
                    };
                    let _ = events.send(RunEvent {
                        run: id.clone(),
                        kind,
                    });
                    // A parent waiting for this run as its sub-task gets the answer.
                    Completion::RunEnded {
                        run: id,
                        code,
                        parent,
                    }
                }
                Err(e) => Completion::Unwritable { run: id, error: e },
            }
        }));
    }

    /// Drops a settled run from memory (its checkpoint or final status is in the store).
    pub fn unload(&mut self, id: &str) {
        self.timers.cancel_run(id);
        self.op_waits.cancel_run(id);
        if let Some(slot) = self.slots.remove(id) {
            let status = slot.status;
            super::control::answer_all(slot.waiters, Ok(status));
        }
    }

    fn fire_due(&mut self) {
        let now = self.shared.clock.now_ms();
        self.fire_periodic(now);
        for key in self.timers.due(now) {
            if let Some(slot) = self.slots.get_mut(&key.run) {
                if slot.events.len() < RUN_EVENTS_QUEUED_MAX {
                    slot.events.push_back(Event::Woke {
                        fiber: key.fiber,
                        token: key.token,
                    });
                }
                self.kick(&key.run);
            }
        }
        if self.sites.retry_at.is_some_and(|t| t <= now) {
            self.sites.retry_at = None;
        }
        while self.reloads.front().is_some_and(|(_, t)| *t <= now) {
            let (id, _) = self.reloads.pop_front().expect("front");
            if !self.slots.contains_key(&id) {
                let mut slot = Slot::loading(false);
                slot.reload = true;
                self.start_load(id, slot);
            }
        }
    }
}

async fn sleep_opt(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The sub-tasks the fibers of `state` wait for.
fn awaited_children(state: &RunState) -> Vec<String> {
    let waits = state
        .fibers
        .iter()
        .filter_map(|f| f.frames.last().and_then(|t| t.wait.as_ref()));
    waits
        .filter_map(|(_, kind)| match kind {
            EffectKind::Io(op) => op.awaited_child().map(String::from),
            _ => None,
        })
        .collect()
}
