//! The driver's side of site operations and the persisted site wait queue.
//!
//! A block's site operation is an effect: after the step that asked for it is committed, the
//! driver submits it to the store (`Tx::site_request_submit`), which answers it at once or keeps
//! it as a waiter. An answer becomes [`Event::Reply`] for the run. A run whose every wait is a
//! site waiter is *parked*: unloaded from its slot (its status stays `running`), so waiters
//! never hold run slots. Every committed site change (steps, serve passes, the API) is merged
//! into one pending [`SiteChanges`]; one serve pass at a time (`Tx::site_serve`) answers the
//! waiters those changes concern. A served run that is loaded gets its reply directly; a parked
//! one is loaded again (`woken`, ahead of the ready rings) and its `Recover` asks again, which
//! finds the kept answer. Nothing here runs while nothing changes: there is no polling.

use super::driver::{Completion, Driver, Slot};
use crate::engine::{EffectKind, FiberState, Reply};
use crate::limits::STORE_RETRY_MS;
use crate::sites::{SiteOp, SiteReply};
use crate::store::{OutboxEvent, Served, SiteChanges, SiteRequest, StoreError, Submitted};
use std::collections::VecDeque;

/// What a serve pass committed: the waiters it answered, the sites it changed, their events.
pub(super) type ServeResult = Result<(Vec<Served>, SiteChanges, Vec<OutboxEvent>), StoreError>;

/// A submitted site operation came back.
pub(super) struct SubmitDone {
    run: String,
    fiber: u32,
    token: u64,
    result: Result<(Submitted, SiteChanges, Vec<OutboxEvent>), StoreError>,
}

/// Site-wait state of the driver.
pub(super) struct SiteWaits {
    /// Changes committed and not yet served.
    pending: SiteChanges,
    /// A serve pass is in flight.
    serving: bool,
    /// Runs to load again: parked runs with a served site waiter, and parents not loaded when
    /// a sub-task of theirs ended (a paused or ended one is found so at load and dropped). Each
    /// at most once, so bounded by the stored runs.
    woken: VecDeque<String>,
    /// After a failed serve pass: when to try again.
    pub retry_at: Option<i64>,
}

impl SiteWaits {
    /// The state at start: every waiter is checked once.
    pub fn after_start() -> SiteWaits {
        SiteWaits {
            pending: SiteChanges {
                ids: Vec::new(),
                all: true,
            },
            serving: false,
            woken: VecDeque::new(),
            retry_at: None,
        }
    }

    /// Sites changed (committed).
    pub fn changed(&mut self, changes: SiteChanges) {
        self.pending.merge(changes);
    }

    /// Loads parked run `id` again when a slot is free (once, however often it is woken).
    pub fn wake(&mut self, id: String) {
        if !self.woken.contains(&id) {
            self.woken.push_back(id);
        }
    }

    /// Parked runs waiting to be loaded again.
    pub fn woken_len(&self) -> usize {
        self.woken.len()
    }
}

impl Driver {
    /// Submits the site operation `token` of `fiber` of run `id` (its step is committed).
    pub(super) fn submit_site_op(&mut self, id: &str, fiber: u32, token: u64, op: SiteOp) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        let (Some(state), Some(flow)) = (slot.state.as_ref(), slot.flow.as_ref()) else {
            return;
        };
        let block = state
            .fibers
            .iter()
            .find(|f| f.id == fiber)
            .and_then(|f| f.frames.last())
            .map(|frame| flow.block(frame.block).name.clone())
            .unwrap_or_default();
        let priority = state
            .task
            .get("priority")
            .and_then(|p| p.as_i64())
            .unwrap_or(0);
        slot.site_pending += 1;
        let req = SiteRequest {
            run_id: id.to_string(),
            fiber,
            token,
            priority,
            block,
            op,
        };
        let store = self.shared.store.clone();
        let now = self.shared.clock.now_ms();
        self.inflight.push(Box::pin(async move {
            let run = req.run_id.clone();
            let result = store
                .write(move |tx| {
                    let submitted = tx.site_request_submit(&req, now)?;
                    Ok((submitted, tx.take_site_changes(), tx.take_site_events()))
                })
                .await;
            Completion::SiteSubmitted(Box::new(SubmitDone {
                run,
                fiber,
                token,
                result,
            }))
        }));
    }

    pub(super) fn site_submitted(&mut self, done: SubmitDone) {
        let SubmitDone {
            run,
            fiber,
            token,
            result,
        } = done;
        if let Some(slot) = self.slots.get_mut(&run) {
            slot.site_pending = slot.site_pending.saturating_sub(1);
        }
        let submitted = match result {
            Ok((submitted, changes, events)) => {
                self.sites.changed(changes);
                self.publish(events);
                submitted
            }
            Err(e) => Submitted::Answered(SiteReply::Failed(format!("site store: {e}"))),
        };
        let reply = match submitted {
            Submitted::Answered(reply) => reply,
            Submitted::Waiting => return self.park_if_only_sites(&run),
            Submitted::Dropped => return,
        };
        self.deliver(&run, fiber, token, Reply::Site(reply));
    }

    /// Unloads run `id` when all it does is wait for site waiters or sub-tasks (no timer,
    /// nothing ready, nothing in flight): its slot is free until a site change serves it or
    /// the child ends.
    pub(super) fn park_if_only_sites(&mut self, id: &str) {
        let Some(slot) = self.slots.get(id) else {
            return;
        };
        let Some(state) = slot.state.as_ref() else {
            return;
        };
        let idle = !slot.busy
            && slot.events.is_empty()
            && slot.site_pending == 0
            && slot.waiters.is_empty()
            && !slot.control_only
            && state.ended.is_none()
            && !state.paused
            && state.interrupted.is_none();
        let only_sites = state.fibers.iter().all(|f| match f.state {
            FiberState::Ready => false,
            FiberState::Joining => true,
            FiberState::Waiting => match f.frames.last().and_then(|t| t.wait.as_ref()) {
                Some((_, EffectKind::Site(_))) => true,
                Some((token, EffectKind::Io(op))) => {
                    op.parks() && self.op_waits.child_admitted(id, *token)
                }
                _ => false,
            },
        });
        let waits = state.fibers.iter().any(|f| f.state == FiberState::Waiting);
        if idle && only_sites && waits {
            self.unload(id);
        }
    }

    /// Starts a serve pass when changes are pending and none is in flight.
    pub(super) fn serve_sites(&mut self) {
        let s = &mut self.sites;
        if s.serving || s.pending.is_empty() || s.retry_at.is_some() {
            return;
        }
        if self.shutting_down.is_some() {
            return;
        }
        s.serving = true;
        let changes = std::mem::take(&mut s.pending);
        let store = self.shared.store.clone();
        let now = self.shared.clock.now_ms();
        self.inflight.push(Box::pin(async move {
            let result = store
                .write(move |tx| {
                    let served = tx.site_serve(&changes, now)?;
                    Ok((served, tx.take_site_changes(), tx.take_site_events()))
                })
                .await;
            Completion::SitesServed(result)
        }));
    }

    pub(super) fn sites_served(&mut self, result: ServeResult) {
        self.sites.serving = false;
        let served = match result {
            Ok((served, changes, events)) => {
                self.sites.changed(changes);
                self.publish(events);
                served
            }
            Err(e) => {
                // Nothing was answered: check every waiter again a little later.
                log::error!("serving site waiters: {e}; trying again");
                self.sites.pending.merge(SiteChanges {
                    ids: Vec::new(),
                    all: true,
                });
                self.sites.retry_at = Some(self.shared.clock.now_ms() + STORE_RETRY_MS as i64);
                return;
            }
        };
        for s in served {
            match self.slots.get(&s.run_id) {
                Some(slot) if slot.state.is_some() => {
                    self.deliver(&s.run_id, s.fiber, s.token, Reply::Site(s.reply))
                }
                // Loading: its first step asks again and finds the kept answer.
                Some(_) => {}
                None => self.sites.wake(s.run_id),
            }
        }
    }

    /// Sends committed site events to live `/api/events` clients.
    fn publish(&self, events: Vec<OutboxEvent>) {
        for event in events {
            let _ = self.shared.outbox.send(std::sync::Arc::new(event));
        }
    }

    /// Loads parked runs whose waiters were served, ahead of queued runs.
    pub(super) fn load_woken(&mut self) {
        while self.active() < self.shared.config.runs_active_max {
            let Some(id) = self.sites.woken.pop_front() else {
                break;
            };
            if !self.slots.contains_key(&id) {
                let mut slot = Slot::loading(false);
                slot.wake = true;
                self.start_load(id, slot);
            }
        }
    }
}
