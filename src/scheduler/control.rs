//! Operator commands inside the driver: stop, pause, resume, retry, manual end and priority
//! changes, for runs that are loaded (an engine event) and for runs that are not (a store
//! update, or a short load to unwind a paused or interrupted run).

use super::driver::{Completion, Driver, Slot};
use super::{Command, Control, ControlError};
use crate::engine::{code, Event};
use crate::limits::{CONTROL_LOADS_MAX, RUN_EVENTS_QUEUED_MAX};
use crate::store::{TaskRecord, TaskStatus};
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<TaskStatus, ControlError>>;

/// A caller waiting for a loaded run to reach a state.
pub(super) struct Waiter {
    want: Want,
    reply: Reply,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Finished, failed or stopped.
    Terminal,
    /// Out of the running state (paused, interrupted or ended).
    Settled,
}

/// Answers every waiter.
pub(super) fn answer_all(waiters: Vec<Waiter>, answer: Result<TaskStatus, ControlError>) {
    for w in waiters {
        let _ = w.reply.send(answer.clone());
    }
}

/// Answers the waiters whose wish the committed `status` fulfils.
pub(super) fn answer_ready(waiters: &mut Vec<Waiter>, status: TaskStatus, settled: bool) {
    let mut i = 0;
    while i < waiters.len() {
        let done = match waiters[i].want {
            Want::Terminal => status.is_terminal(),
            Want::Settled => settled,
        };
        if done {
            let w = waiters.swap_remove(i);
            let _ = w.reply.send(Ok(status));
        } else {
            i += 1;
        }
    }
}

/// A status a control command writes directly (the run is not loaded).
struct StatusWrite {
    status: TaskStatus,
    code: i32,
    reason: &'static str,
    manual_end: bool,
    /// The ready ring of this level is read again once the write is committed.
    rescan: Option<i64>,
    /// The run's parent (a sub-task's end answers the parent waiting for it).
    parent: Option<String>,
}

impl StatusWrite {
    fn new(status: TaskStatus, code: i32, reason: &'static str) -> StatusWrite {
        StatusWrite {
            status,
            code,
            reason,
            manual_end: false,
            rescan: None,
            parent: None,
        }
    }
}

/// A control command's record, read off the driver.
pub(super) struct ControlRead {
    id: String,
    action: Control,
    reply: Reply,
    result: Result<Option<(TaskRecord, bool)>, String>,
}

impl ControlRead {
    /// A read result as the store would give it (tests drive `control_read` with these).
    #[cfg(test)]
    pub(super) fn new(
        id: String,
        action: Control,
        reply: Reply,
        result: Result<Option<(TaskRecord, bool)>, String>,
    ) -> ControlRead {
        ControlRead {
            id,
            action,
            reply,
            result,
        }
    }
}

impl Driver {
    pub(super) fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Admitted { level } => self.ready.admitted(level),
            Command::Control { id, action, reply } => self.control(id, action, reply),
            Command::Priority {
                id,
                priority,
                reply,
            } => self.priority(id, priority, reply),
            Command::Shutdown { reply } => self.begin_shutdown(Some(reply)),
            Command::Cache { key, value, reply } => self.cache_write(key, value, reply),
            Command::ReloadPeriodic { reply } => self.reload_periodic(reply),
            Command::SitesChanged(changes) => self.sites.changed(changes),
        }
    }

    pub(super) fn control(&mut self, id: String, action: Control, reply: Reply) {
        if self.slots.contains_key(&id) {
            return self.control_loaded(&id, action, reply);
        }
        let store = self.shared.store.clone();
        self.inflight.push(Box::pin(async move {
            let id2 = id.clone();
            let result = store
                .read(move |rx| {
                    let rec = rx.task(&id2)?;
                    let cp = match &rec {
                        Some(_) => rx.checkpoint(&id2)?.is_some(),
                        None => false,
                    };
                    Ok(rec.map(|r| (r, cp)))
                })
                .await
                .map_err(|e| e.to_string());
            Completion::ControlRead(Box::new(ControlRead {
                id,
                action,
                reply,
                result,
            }))
        }));
    }

    /// A command for a run in a slot becomes an engine event.
    fn control_loaded(&mut self, id: &str, action: Control, reply: Reply) {
        let slot = self.slots.get_mut(id).expect("loaded");
        let (event, want) = match action {
            Control::Stop => (Event::Stop, Want::Terminal),
            Control::ManualEnd => (Event::ManualEnd, Want::Terminal),
            Control::Pause => (Event::Pause, Want::Settled),
            Control::Resume | Control::Retry => {
                let _ = reply.send(Err(ControlError::IllegalState {
                    id: id.to_string(),
                    status: slot.status,
                    action: action.name(),
                }));
                return;
            }
        };
        if slot.events.len() >= RUN_EVENTS_QUEUED_MAX {
            let _ = reply.send(Err(ControlError::Busy(format!(
                "task {id} has RUN_EVENTS_QUEUED_MAX ({RUN_EVENTS_QUEUED_MAX}) events waiting"
            ))));
            return;
        }
        slot.events.push_back(event);
        slot.waiters.push(Waiter { want, reply });
        self.kick(id);
    }

    pub(super) fn control_read(&mut self, read: ControlRead) {
        let ControlRead {
            id,
            action,
            reply,
            result,
        } = read;
        if self.slots.contains_key(&id) {
            // Loaded while the record was being read: it is an engine event after all.
            return self.control_loaded(&id, action, reply);
        }
        let (rec, has_checkpoint) = match result {
            Ok(Some(found)) => found,
            Ok(None) => {
                let _ = reply.send(Err(ControlError::NotFound(id)));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(ControlError::Store(e)));
                return;
            }
        };
        let illegal = |status| ControlError::IllegalState {
            id: id.clone(),
            status,
            action: action.name(),
        };
        use TaskStatus as S;
        match (action, rec.status) {
            (_, s) if s.is_terminal() => {
                let _ = reply.send(Err(illegal(s)));
            }
            // A running run that is not loaded is parked on site waiters: it is loaded just
            // to apply the command (stop, manual end, or pause: it leaves the site queues).
            (Control::Stop | Control::ManualEnd, _) | (Control::Pause, S::Running)
                if has_checkpoint =>
            {
                let loads = self.slots.values().filter(|s| s.control_only).count();
                if loads >= CONTROL_LOADS_MAX {
                    let _ = reply.send(Err(ControlError::Busy(format!(
                        "CONTROL_LOADS_MAX ({CONTROL_LOADS_MAX}) commands to tasks that are not \
                         loaded (paused, interrupted or waiting for a site) are in progress; \
                         try again"
                    ))));
                    return;
                }
                let mut slot = Slot::loading(true);
                let (event, want) = match action {
                    Control::Stop => (Event::Stop, Want::Terminal),
                    Control::Pause => (Event::Pause, Want::Settled),
                    _ => (Event::ManualEnd, Want::Terminal),
                };
                slot.events.push_back(event);
                slot.waiters.push(Waiter { want, reply });
                self.start_load(id, slot);
            }
            (Control::Stop, _) => {
                let mut to = StatusWrite::new(S::Stopped, code::STOPPED, "stopped before start");
                to.parent = rec.parent_id.clone();
                self.set_status(id, to, reply);
            }
            (Control::ManualEnd, _) => {
                let mut to = StatusWrite::new(S::Finished, code::FINISHED, "manual end");
                to.manual_end = true;
                to.parent = rec.parent_id.clone();
                self.set_status(id, to, reply);
            }
            (Control::Pause, S::Queued) => {
                let to = StatusWrite::new(S::Paused, code::PAUSED, "[RootBp]paused");
                self.set_status(id, to, reply);
            }
            (Control::Resume, S::Paused) | (Control::Retry, S::Interrupted) => {
                // Back in the queue out of admission order: its level's ring is read again.
                let mut to = StatusWrite::new(S::Queued, code::QUEUED, "queued again");
                to.rescan = Some(rec.level);
                self.set_status(id, to, reply);
            }
            (_, s) => {
                let _ = reply.send(Err(illegal(s)));
            }
        }
    }

    fn set_status(&mut self, id: String, to: StatusWrite, reply: Reply) {
        let store = self.shared.store.clone();
        let outbox = self.shared.outbox.clone();
        let now = self.shared.clock.now_ms();
        let events = self.shared.events.clone();
        self.inflight.push(Box::pin(async move {
            let id2 = id.clone();
            let result = store
                .write(move |tx| {
                    tx.set_task_status(&id2, to.status, to.code, Some(to.reason), now)?;
                    if to.manual_end {
                        tx.set_manual_end(&id2)?;
                    }
                    let change = super::persist::StatusChange {
                        status: to.status,
                        code: to.code,
                        reason: Some(to.reason.to_string()),
                        manual_end: to.manual_end,
                    };
                    super::persist::task_event(tx, &id2, &change, now)
                })
                .await;
            let answer = match result {
                Ok(event) => {
                    let _ = outbox.send(std::sync::Arc::new(event));
                    let _ = events.send(super::RunEvent {
                        run: id.clone(),
                        kind: super::RunEventKind::Status {
                            status: to.status,
                            code: to.code,
                            reason: Some(to.reason.to_string()),
                        },
                    });
                    Ok(to.status)
                }
                Err(e) => Err(ControlError::Store(e.to_string())),
            };
            let ok = answer.is_ok();
            let _ = reply.send(answer);
            match to.rescan {
                Some(level) if ok => Completion::Rescan(vec![level]),
                _ if ok && to.status.is_terminal() => Completion::RunEnded {
                    run: id,
                    code: to.code,
                    parent: to.parent,
                },
                _ => Completion::Done,
            }
        }));
    }

    /// A data cache write from outside a run: checked against the mirror's bounds, written to
    /// the store, then applied to the mirror.
    fn cache_write(
        &mut self,
        key: String,
        value: Option<String>,
        reply: oneshot::Sender<Result<bool, String>>,
    ) {
        if let Some(v) = &value {
            if let Err(e) = self.cache.check(&key, v) {
                let _ = reply.send(Err(e));
                return;
            }
        }
        let existed = self.cache.contains(&key);
        let store = self.shared.store.clone();
        let now = self.shared.clock.now_ms();
        self.inflight.push(Box::pin(async move {
            let (k, v) = (key.clone(), value.clone());
            let result = store
                .write(move |tx| match &v {
                    Some(v) => tx.cache_set(&k, v, now).map(|_| true),
                    None => tx.cache_delete(&k),
                })
                .await
                .map_err(|e| e.to_string());
            Completion::CacheWritten {
                key,
                value,
                result: result.map(|_| existed),
                reply,
            }
        }));
    }

    fn priority(&mut self, id: String, priority: i64, reply: Reply) {
        let level = super::level_of(priority);
        if let Some(state) = self.slots.get_mut(&id).and_then(|s| s.state.as_mut()) {
            state.task.insert("priority".into(), priority.into());
        }
        self.reprioritize_orders(&id, priority);
        let store = self.shared.store.clone();
        self.inflight.push(Box::pin(async move {
            let id2 = id.clone();
            let result = store
                .write(move |tx| {
                    let Some(rec) = tx.task(&id2)? else {
                        return Ok(None);
                    };
                    if rec.status.is_terminal() {
                        return Ok(Some((rec.status, false)));
                    }
                    tx.set_task_priority(&id2, priority, level)?;
                    tx.site_requests_priority(&id2, priority)?;
                    Ok(Some((rec.status, true)))
                })
                .await;
            let answer = match result {
                Ok(None) => Err(ControlError::NotFound(id)),
                Ok(Some((status, true))) => Ok(status),
                Ok(Some((status, false))) => Err(ControlError::IllegalState {
                    id,
                    status,
                    action: "change the priority of",
                }),
                Err(e) => Err(ControlError::Store(e.to_string())),
            };
            let requeued = answer == Ok(TaskStatus::Queued);
            let _ = reply.send(answer);
            // A queued run may sit in the ring of its old level: read every ring again (a
            // stale entry is skipped when popped, since the loader checks the stored status).
            if requeued {
                Completion::Rescan((0..crate::limits::PRIORITY_LEVELS as i64).collect())
            } else {
                Completion::Done
            }
        }));
    }
}

impl Driver {
    /// A loaded run's open fleet orders (those of its running `CSelectAgvBp` blocks) get the
    /// run's new priority, so the core weighs them with it when robots free up.
    fn reprioritize_orders(&mut self, id: &str, priority: i64) {
        let Some(slot) = self.slots.get(id) else {
            return;
        };
        let (Some(flow), Some(state)) = (&slot.flow, &slot.state) else {
            return;
        };
        let orders: Vec<String> = state
            .fibers
            .iter()
            .flat_map(|f| f.frames.iter())
            .filter(|f| flow.block(f.block).kind.name == "CSelectAgvBp")
            .filter_map(|f| {
                f.data
                    .get("id")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .collect();
        if orders.is_empty() {
            return;
        }
        let fleet = self.shared.fleet.clone();
        self.inflight.push(Box::pin(async move {
            for order in orders {
                if let Err(e) = fleet.set_priority(&order, priority).await {
                    log::warn!("order {order}: new priority not sent: {e}");
                }
            }
            Completion::Done
        }));
    }
}
