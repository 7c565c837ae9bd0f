//! Periodic definitions (spec §4.10): each enabled one starts a run every `period` ms after a
//! first `delay`, and skips a tick while its previous run is still active (not ended).

use super::admission::{self, SubmitRequest};
use super::driver::{Completion, Driver};
use super::Shared;
use crate::limits::PERIODIC_DEFINITIONS_MAX;
use crate::store::{DefinitionRecord, StoreError};
use std::sync::Arc;
use tokio::sync::oneshot;

/// One scheduled periodic definition.
pub(super) struct Periodic {
    def_id: String,
    period_ms: i64,
    next_ms: i64,
    /// A tick's check-and-submit is in flight.
    ticking: bool,
}

/// A reload's read of the periodic definitions, back at the driver.
pub(super) struct Reloaded {
    seq: u64,
    defs: Result<Vec<DefinitionRecord>, StoreError>,
    reply: oneshot::Sender<Result<(), String>>,
}

/// What a tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tick {
    Started(String),
    /// The previous run is still active.
    Skipped,
    Failed(String),
}

/// The schedule for the enabled periodic definitions among `defs`, first ticks after their
/// delays. Definitions past `PERIODIC_DEFINITIONS_MAX` are left out with a warning.
pub(super) fn schedule(defs: Vec<DefinitionRecord>, now_ms: i64) -> Vec<Periodic> {
    let enabled: Vec<DefinitionRecord> = defs
        .into_iter()
        .filter(|d| d.periodic && d.if_enable && !d.deleted)
        .collect();
    if enabled.len() > PERIODIC_DEFINITIONS_MAX {
        log::warn!(
            "{} periodic definitions enabled; only PERIODIC_DEFINITIONS_MAX \
             ({PERIODIC_DEFINITIONS_MAX}) are scheduled",
            enabled.len()
        );
    }
    enabled
        .into_iter()
        .take(PERIODIC_DEFINITIONS_MAX)
        .map(|d| Periodic {
            def_id: d.id,
            period_ms: d.period_ms.max(crate::limits::PERIOD_MS_MIN),
            next_ms: now_ms + d.delay_ms.max(0),
            ticking: false,
        })
        .collect()
}

impl Driver {
    /// The earliest periodic tick.
    pub(super) fn next_periodic(&self) -> Option<i64> {
        self.periodic
            .iter()
            .filter(|p| !p.ticking)
            .map(|p| p.next_ms)
            .min()
    }

    /// Starts the ticks that are due.
    pub(super) fn fire_periodic(&mut self, now_ms: i64) {
        if self.shutting_down.is_some() {
            return;
        }
        for p in self.periodic.iter_mut() {
            if p.ticking || p.next_ms > now_ms {
                continue;
            }
            p.ticking = true;
            let shared = self.shared.clone();
            let def_id = p.def_id.clone();
            self.inflight.push(Box::pin(async move {
                let tick = tick(shared, def_id.clone()).await;
                Completion::Ticked { def_id, tick }
            }));
        }
    }

    /// Starts reading the periodic definitions again (one store read in flight per reload; the
    /// command channel and `has_room` bound how many).
    pub(super) fn reload_periodic(&mut self, reply: oneshot::Sender<Result<(), String>>) {
        self.periodic_seq.0 += 1;
        let seq = self.periodic_seq.0;
        let shared = self.shared.clone();
        self.inflight.push(Box::pin(async move {
            let defs = load(&shared).await;
            Completion::PeriodicLoaded(Box::new(Reloaded { seq, defs, reply }))
        }));
    }

    /// A reload's read is back: definitions still scheduled keep their next tick (and a tick in
    /// flight), new ones start after their delay, disabled or deleted ones are dropped. A read
    /// older than one already applied is not applied (a newer read saw at least as much).
    pub(super) fn periodic_loaded(&mut self, r: Reloaded) {
        let defs = match r.defs {
            Ok(defs) => defs,
            Err(e) => {
                let _ = r
                    .reply
                    .send(Err(format!("reading periodic definitions: {e}")));
                return;
            }
        };
        if r.seq > self.periodic_seq.1 {
            self.periodic_seq.1 = r.seq;
            let now = self.shared.clock.now_ms();
            let mut next = schedule(defs, now);
            for p in next.iter_mut() {
                if let Some(old) = self.periodic.iter().find(|o| o.def_id == p.def_id) {
                    p.next_ms = old.next_ms.min(now + p.period_ms);
                    p.ticking = old.ticking;
                }
            }
            self.periodic = next;
        }
        let _ = r.reply.send(Ok(()));
    }

    /// A tick ended: the next one is a period later.
    pub(super) fn ticked(&mut self, def_id: &str, tick: Tick) {
        let now = self.shared.clock.now_ms();
        if let Tick::Failed(e) = &tick {
            log::warn!("periodic definition {def_id}: {e}");
        }
        if let Some(p) = self.periodic.iter_mut().find(|p| p.def_id == def_id) {
            p.ticking = false;
            p.next_ms = now + p.period_ms;
        }
    }
}

async fn tick(shared: Arc<Shared>, def_id: String) -> Tick {
    let id = def_id.clone();
    let active = shared
        .store
        .read(move |rx| rx.active_count_for_definition(&id))
        .await;
    match active {
        Ok(0) => {}
        Ok(_) => return Tick::Skipped,
        Err(e) => return Tick::Failed(e.to_string()),
    }
    let req = SubmitRequest {
        def_id: Some(def_id),
        periodic: true,
        ..SubmitRequest::default()
    };
    match admission::submit(&shared, req).await {
        Ok(s) => Tick::Started(s.id),
        Err(e) => Tick::Failed(e.to_string()),
    }
}

/// Reads the periodic definitions from the store.
pub(super) async fn load(shared: &Shared) -> Result<Vec<DefinitionRecord>, StoreError> {
    shared.store.read(|rx| rx.periodic_definitions()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(i: usize, enabled: bool) -> DefinitionRecord {
        let mut d = DefinitionRecord::for_test(&format!("p{i}"), String::new());
        d.periodic = true;
        d.if_enable = enabled;
        d.period_ms = 10;
        d.delay_ms = 500;
        d
    }

    #[test]
    fn a_reschedule_keeps_the_ticks_of_definitions_still_enabled() {
        let old = schedule(vec![def(1, true), def(2, true)], 0);
        assert_eq!(old.len(), 2);
        let next = schedule(vec![def(2, true), def(3, false)], 100);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].def_id, "p2");
        assert_eq!(next[0].next_ms, 600);
    }

    #[test]
    fn only_enabled_definitions_up_to_the_bound_are_scheduled() {
        let defs: Vec<DefinitionRecord> = (0..PERIODIC_DEFINITIONS_MAX + 40)
            .map(|i| def(i, i % 10 != 0))
            .collect();
        let scheduled = schedule(defs, 1_000);
        assert_eq!(scheduled.len(), PERIODIC_DEFINITIONS_MAX);
        assert!(scheduled.iter().all(|p| p.next_ms == 1_500));
        // The period is raised to PERIOD_MS_MIN.
        assert!(scheduled
            .iter()
            .all(|p| p.period_ms == crate::limits::PERIOD_MS_MIN));
    }
}
