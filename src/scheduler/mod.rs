//! The scheduler: durable admission, per-priority ready rings refilled from the store, a fixed
//! number of run slots, one timer structure, and stop/pause/resume/retry/manual end/priority.
//!
//! One driver task owns every loaded run. It steps runs with the pure engine, writes each step
//! (records + checkpoint) as one store transaction, and only then starts the step's waits. Other
//! code talks to it through a bounded command channel; nothing is spawned per run.

mod admission;
mod control;
mod driver;
mod fleet_waits;
mod flows;
mod host;
mod io_waits;
mod loader;
mod op_waits;
mod periodic;
mod persist;
mod ready;
mod site_waits;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bounds;
#[cfg(test)]
mod tests_examples;
#[cfg(test)]
mod tests_http;
#[cfg(test)]
mod tests_modbus;
#[cfg(test)]
mod tests_robots;
#[cfg(test)]
mod tests_scripts;
#[cfg(test)]
mod tests_sites;
#[cfg(test)]
mod tests_tasks;
mod timers;

pub use admission::{SubmitError, SubmitRequest, Submitted};
pub use flows::{compile_record, new_definition, FlowCache, SaveError};
pub use host::{local_time, Clock};
pub use ready::level_of;

/// In-memory sizes of the scheduler's private types, for the memory budget (`crate::budget`).
pub(crate) mod sizes {
    /// One queued scheduler command.
    pub const COMMAND: usize = std::mem::size_of::<super::Command>();
    /// One timer's key (held by the deadline map; the index holds the run id again).
    pub const TIMER_KEY: usize = std::mem::size_of::<super::timers::TimerKey>();
    /// One run slot of the driver, without what it points to.
    pub const SLOT: usize = std::mem::size_of::<super::driver::Slot>();
}

use crate::flow::compile::Diagnostic;
use crate::flow::load::RawDefinition;
use crate::limits;
use crate::store::{NewDefinition, SavedDefinition, Store, StoreError, TaskRecord, TaskStatus};
use crate::tasks::{Tasks, TooManyTasks};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Scheduler settings; defaults from `limits.rs`.
#[derive(Debug, Clone)]
pub struct Config {
    pub runs_active_max: usize,
    pub backlog_max: usize,
    pub ready_ring_capacity: usize,
    pub aging_step_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            runs_active_max: limits::RUNS_ACTIVE_MAX,
            backlog_max: limits::BACKLOG_MAX,
            ready_ring_capacity: limits::READY_RING_CAPACITY,
            aging_step_ms: limits::AGING_STEP_MS,
        }
    }
}

/// An operator action on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Stop,
    Pause,
    Resume,
    Retry,
    ManualEnd,
}

impl Control {
    fn name(self) -> &'static str {
        match self {
            Control::Stop => "stop",
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Retry => "retry",
            Control::ManualEnd => "manual end",
        }
    }
}

/// An operator action could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlError {
    NotFound(String),
    /// The run's status does not allow the action (e.g. resuming a finished run).
    IllegalState {
        id: String,
        status: TaskStatus,
        action: &'static str,
    },
    ShuttingDown,
    /// A bound was reached; the message names it. Try again later.
    Busy(String),
    Store(String),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::NotFound(id) => write!(f, "no task {id}"),
            ControlError::IllegalState { id, status, action } => {
                write!(f, "cannot {action} task {id}: it is {status}")
            }
            ControlError::ShuttingDown => write!(f, "the scheduler is shutting down"),
            ControlError::Busy(why) => write!(f, "busy: {why}"),
            ControlError::Store(e) => write!(f, "store: {e}"),
        }
    }
}

impl std::error::Error for ControlError {}

/// Something that happened to a run, published after it was committed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub run: String,
    pub kind: RunEventKind,
}

/// The kinds of run events.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEventKind {
    BlockStarted {
        name: String,
        block_type: String,
    },
    BlockEnded {
        name: String,
        block_type: String,
        status: i32,
        reason: String,
    },
    Log {
        message: String,
    },
    Status {
        status: TaskStatus,
        code: i32,
        reason: Option<String>,
    },
}

/// Fill levels and counters of the scheduler's bounded structures.
#[derive(Debug, Clone, Default)]
pub struct SchedulerStats {
    pub runs_loaded: usize,
    pub runs_loaded_max: usize,
    pub ready_len: usize,
    pub ready_capacity: usize,
    pub timers: usize,
    pub timers_capacity: usize,
    pub inflight: usize,
    pub commands_queued: usize,
    pub commands_capacity: usize,
    pub flows_cached: usize,
    pub cache_entries: usize,
    pub commit_failures: usize,
    /// Parked runs whose site waiter was served, waiting for a slot to load.
    pub sites_woken: usize,
    /// Blocks waiting for a fleet, task-control or integration operation.
    pub op_waits: usize,
}

/// Counters the driver publishes.
#[derive(Default)]
struct Gauges {
    runs_loaded: AtomicUsize,
    ready_len: AtomicUsize,
    ready_capacity: AtomicUsize,
    timers: AtomicUsize,
    timers_capacity: AtomicUsize,
    inflight: AtomicUsize,
    cache_entries: AtomicUsize,
    commit_failures: AtomicUsize,
    sites_woken: AtomicUsize,
    op_waits: AtomicUsize,
}

enum Command {
    /// A run was admitted at this level (committed).
    Admitted {
        level: i64,
    },
    Control {
        id: String,
        action: Control,
        reply: oneshot::Sender<Result<TaskStatus, ControlError>>,
    },
    Priority {
        id: String,
        priority: i64,
        reply: oneshot::Sender<Result<TaskStatus, ControlError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// Sets (`Some`) or deletes (`None`) a data cache key from outside a run.
    Cache {
        key: String,
        value: Option<String>,
        reply: oneshot::Sender<Result<bool, String>>,
    },
    /// Read the periodic definitions again and reschedule (after enable/disable or an import).
    ReloadPeriodic {
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Sites changed outside a run (the API): serve the site waiters it may concern.
    SitesChanged(crate::store::SiteChanges),
}

struct Shared {
    store: Store,
    flows: FlowCache,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<RunEvent>,
    clock: Clock,
    config: Config,
    gauges: Gauges,
    /// Bounds definition saves in flight (`DEFINITION_SAVES_MAX`).
    saves: tokio::sync::Semaphore,
    /// Committed outbox events, for live `/api/events` clients (a lagging one re-reads the
    /// outbox from the store).
    outbox: broadcast::Sender<Arc<crate::store::OutboxEvent>>,
    /// The fleet robot blocks drive.
    fleet: Arc<dyn crate::fleet::Fleet>,
    /// The bounded client HTTP blocks share.
    http: crate::api::client::HttpClient,
    /// The bounded Modbus TCP connections Modbus blocks share.
    modbus: crate::modbus::ModbusPool,
    /// The script runtime script blocks call, once the server has started it (its `jj` host
    /// needs this scheduler, so it comes second).
    scripts: std::sync::OnceLock<Arc<crate::script::ScriptPool>>,
}

/// A handle to the running scheduler; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

/// The scheduler could not start.
#[derive(Debug)]
pub enum StartError {
    Store(StoreError),
    Spawn(TooManyTasks),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Store(e) => write!(f, "store: {e}"),
            StartError::Spawn(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl Scheduler {
    /// Recovers the store's runs (running → resumed from their checkpoints, queued re-admitted,
    /// paused and interrupted left as they are) and starts the driver task on `tasks`.
    pub async fn start(
        store: Store,
        config: Config,
        tasks: &Tasks,
    ) -> Result<Scheduler, StartError> {
        let fleet = crate::fleet::sim::SimFleet::new(crate::fleet::sim::SimConfig::default());
        Scheduler::start_with_fleet(store, config, Arc::new(fleet), tasks).await
    }

    /// [`Scheduler::start`] with robot blocks driving `fleet`.
    pub async fn start_with_fleet(
        store: Store,
        config: Config,
        fleet: Arc<dyn crate::fleet::Fleet>,
        tasks: &Tasks,
    ) -> Result<Scheduler, StartError> {
        let (commands, rx) = mpsc::channel(limits::SCHEDULER_COMMANDS_MAX);
        let (events, _) = broadcast::channel(limits::RUN_EVENTS_CAPACITY);
        let shared = Arc::new(Shared {
            store,
            flows: FlowCache::default(),
            commands,
            events,
            clock: Clock::start(),
            config,
            gauges: Gauges::default(),
            saves: tokio::sync::Semaphore::new(limits::DEFINITION_SAVES_MAX),
            outbox: broadcast::channel(limits::OUTBOX_LIVE_BUFFER).0,
            fleet,
            http: crate::integrations::http::client(),
            modbus: crate::modbus::ModbusPool::new(crate::modbus::ModbusConfig::default()),
            scripts: std::sync::OnceLock::new(),
        });
        let driver = driver::Driver::recover(shared.clone(), rx)
            .await
            .map_err(StartError::Store)?;
        tasks
            .spawn("scheduler", driver.run())
            .map_err(StartError::Spawn)?;
        Ok(Scheduler { shared })
    }

    /// Gives script blocks their runtime (once; a second pool is refused and returned).
    pub fn set_scripts(
        &self,
        pool: Arc<crate::script::ScriptPool>,
    ) -> Result<(), Arc<crate::script::ScriptPool>> {
        self.shared.scripts.set(pool)
    }

    /// The bounded HTTP client HTTP blocks use (scripts' `jj` shares it).
    pub fn http_client(&self) -> crate::api::client::HttpClient {
        self.shared.http.clone()
    }

    /// The store the scheduler writes to.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The scheduler's clock (wall ms following tokio time).
    pub fn now_ms(&self) -> i64 {
        self.shared.clock.now_ms()
    }

    /// Compiles and stores a definition (a new version when it changed).
    pub async fn save_definition(
        &self,
        raw: RawDefinition,
    ) -> Result<(SavedDefinition, Vec<Diagnostic>), SaveError> {
        let _permit = self.shared.saves.acquire().await;
        flows::save(&self.shared.store, raw, self.now_ms()).await
    }

    /// Stores several compiled definitions in one store transaction (an import): all of them or,
    /// on any error, none. `replace` false refuses ids that exist (`Conflict`).
    pub async fn save_definitions(
        &self,
        defs: Vec<NewDefinition>,
        replace: bool,
    ) -> Result<Vec<SavedDefinition>, StoreError> {
        let _permit = self.shared.saves.acquire().await;
        self.shared
            .store
            .write(move |tx| tx.save_definitions(&defs, replace))
            .await
    }

    /// Makes the driver read the periodic definitions again, so enabling, disabling or changing
    /// one takes effect without a restart. Answers once the new schedule is in place.
    pub async fn reload_periodic(&self) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        let gone = || "the scheduler is shutting down".to_string();
        self.shared
            .commands
            .send(Command::ReloadPeriodic { reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Admits a run: committed as queued before this returns.
    pub async fn submit(&self, req: SubmitRequest) -> Result<Submitted, SubmitError> {
        admission::submit(&self.shared, req).await
    }

    /// Applies an operator action; answers once its effect is committed.
    pub async fn control(&self, id: &str, action: Control) -> Result<TaskStatus, ControlError> {
        let (reply, answer) = oneshot::channel();
        let cmd = Command::Control {
            id: id.to_string(),
            action,
            reply,
        };
        self.send(cmd, answer).await
    }

    /// Changes a run's priority (and its ready-queue level).
    pub async fn set_priority(&self, id: &str, priority: i64) -> Result<TaskStatus, ControlError> {
        let (reply, answer) = oneshot::channel();
        let cmd = Command::Priority {
            id: id.to_string(),
            priority,
            reply,
        };
        self.send(cmd, answer).await
    }

    async fn send(
        &self,
        cmd: Command,
        answer: oneshot::Receiver<Result<TaskStatus, ControlError>>,
    ) -> Result<TaskStatus, ControlError> {
        self.shared
            .commands
            .send(cmd)
            .await
            .map_err(|_| ControlError::ShuttingDown)?;
        answer.await.map_err(|_| ControlError::ShuttingDown)?
    }

    /// Sets a data cache key (as `CacheDataBp` would), once written to the store.
    pub async fn cache_set(&self, key: &str, value: &str) -> Result<(), String> {
        self.cache_command(key, Some(value.to_string()))
            .await
            .map(|_| ())
    }

    /// Deletes a data cache key; whether it existed.
    pub async fn cache_delete(&self, key: &str) -> Result<bool, String> {
        self.cache_command(key, None).await
    }

    async fn cache_command(&self, key: &str, value: Option<String>) -> Result<bool, String> {
        let (reply, answer) = oneshot::channel();
        let cmd = Command::Cache {
            key: key.to_string(),
            value,
            reply,
        };
        let gone = || "the scheduler is shutting down".to_string();
        self.shared.commands.send(cmd).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Outbox events as they are committed. A receiver that falls behind
    /// `OUTBOX_LIVE_BUFFER` is told it lagged and can read the rest from the store by id.
    pub fn subscribe_outbox(&self) -> broadcast::Receiver<Arc<crate::store::OutboxEvent>> {
        self.shared.outbox.subscribe()
    }

    /// Publishes committed outbox events written outside the scheduler (site changes made by
    /// the API) to live `/api/events` clients.
    pub fn publish_outbox(&self, events: Vec<crate::store::OutboxEvent>) {
        for event in events {
            let _ = self.shared.outbox.send(Arc::new(event));
        }
    }

    /// Tells the driver that sites changed outside a run (committed API writes), so the site
    /// waiters those changes concern are served.
    pub async fn sites_changed(&self, changes: crate::store::SiteChanges) {
        if !changes.is_empty() {
            let _ = self
                .shared
                .commands
                .send(Command::SitesChanged(changes))
                .await;
        }
    }

    /// Run events from now on. A receiver that falls behind `RUN_EVENTS_CAPACITY` loses the
    /// oldest events and is told how many.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.shared.events.subscribe()
    }

    /// Waits until run `id` reaches a status matching `done`, and returns its record.
    pub async fn wait_for(
        &self,
        id: &str,
        done: impl Fn(TaskStatus) -> bool,
    ) -> Result<TaskRecord, ControlError> {
        let mut events = self.subscribe();
        loop {
            let id2 = id.to_string();
            let rec = self
                .shared
                .store
                .read(move |rx| rx.task(&id2))
                .await
                .map_err(|e| ControlError::Store(e.to_string()))?
                .ok_or_else(|| ControlError::NotFound(id.to_string()))?;
            if done(rec.status) {
                return Ok(rec);
            }
            loop {
                match events.recv().await {
                    Ok(RunEvent {
                        run,
                        kind: RunEventKind::Status { status, .. },
                    }) if run == id && done(status) => break,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(ControlError::ShuttingDown)
                    }
                }
            }
        }
    }

    /// Waits until run `id` has ended (finished, failed or stopped).
    pub async fn wait_terminal(&self, id: &str) -> Result<TaskRecord, ControlError> {
        self.wait_for(id, TaskStatus::is_terminal).await
    }

    /// The fleet robot blocks drive.
    pub fn fleet(&self) -> &Arc<dyn crate::fleet::Fleet> {
        &self.shared.fleet
    }

    /// Fill levels of every bounded structure.
    pub fn stats(&self) -> SchedulerStats {
        let g = &self.shared.gauges;
        let commands = &self.shared.commands;
        SchedulerStats {
            runs_loaded: g.runs_loaded.load(Relaxed),
            runs_loaded_max: self.shared.config.runs_active_max,
            ready_len: g.ready_len.load(Relaxed),
            ready_capacity: g.ready_capacity.load(Relaxed),
            timers: g.timers.load(Relaxed),
            timers_capacity: g.timers_capacity.load(Relaxed),
            inflight: g.inflight.load(Relaxed),
            commands_queued: commands.max_capacity() - commands.capacity(),
            commands_capacity: commands.max_capacity(),
            flows_cached: self.shared.flows.len(),
            cache_entries: g.cache_entries.load(Relaxed),
            commit_failures: g.commit_failures.load(Relaxed),
            sites_woken: g.sites_woken.load(Relaxed),
            op_waits: g.op_waits.load(Relaxed),
        }
    }

    /// Graceful stop: no new runs start, steps in flight commit, then the driver exits. Runs
    /// stay in the store as they are and resume on the next start.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .shared
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }
}
