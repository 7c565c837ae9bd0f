//! Definitions as the scheduler uses them: saving (compile first, store only valid ones), and a
//! bounded cache of compiled flows by (definition id, version) so runs share one `Arc<Flow>`.

use crate::flow::compile::{self, Diagnostic, Severity};
use crate::flow::load::{self, RawDefinition};
use crate::flow::model::Flow;
use crate::limits::FLOW_CACHE_MAX;
use crate::store::{DefinitionRecord, NewDefinition, SavedDefinition, Store, StoreError};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Compiled flows, least recently used dropped past `FLOW_CACHE_MAX`.
#[derive(Default)]
pub struct FlowCache {
    entries: Mutex<VecDeque<Arc<Flow>>>,
}

impl FlowCache {
    /// The flow of (id, version), compiling the stored body on a miss.
    pub fn get_or_compile(&self, rec: &DefinitionRecord) -> Result<Arc<Flow>, String> {
        {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(pos) = entries
                .iter()
                .position(|f| f.id == rec.id && f.version == rec.version)
            {
                let flow = entries.remove(pos).expect("present");
                entries.push_back(flow.clone());
                return Ok(flow);
            }
        }
        let flow = Arc::new(compile_record(rec)?);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= FLOW_CACHE_MAX {
            entries.pop_front();
        }
        entries.push_back(flow.clone());
        Ok(flow)
    }

    /// Flows held.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no flow is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Compiles a stored definition version.
pub fn compile_record(rec: &DefinitionRecord) -> Result<Flow, String> {
    let mut loaded = load::load_text(&rec.body, &rec.label);
    let raw = match loaded.pop() {
        Some(Ok(raw)) if loaded.is_empty() => raw,
        Some(Err(e)) => return Err(e.to_string()),
        _ => {
            return Err(format!(
                "stored definition {} is not one definition",
                rec.id
            ))
        }
    };
    let compiled = compile::compile(&raw);
    let mut flow = compiled.flow.ok_or_else(|| {
        let first = compiled
            .diagnostics
            .iter()
            .find(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .unwrap_or_default();
        format!(
            "stored definition {} v{} no longer compiles: {first}",
            rec.id, rec.version
        )
    })?;
    flow.id = rec.id.clone();
    flow.version = rec.version;
    Ok(flow)
}

/// Saving a definition failed.
#[derive(Debug)]
pub enum SaveError {
    /// The definition has errors; nothing was stored.
    Invalid(Vec<Diagnostic>),
    Store(StoreError),
}

impl std::fmt::Display for SaveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaveError::Invalid(diags) => {
                let errors: Vec<String> = diags
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .map(|d| d.to_string())
                    .collect();
                write!(f, "invalid definition: {}", errors.join("; "))
            }
            SaveError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SaveError {}

/// The stored form of a definition whose compiled flow is `flow`; a missing `raw.id` becomes a
/// new UUID first (the body carries the id).
pub fn new_definition(raw: &mut RawDefinition, flow: &Flow, now_ms: i64) -> NewDefinition {
    let id = raw
        .id
        .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
        .clone();
    let periodic = flow.periodic;
    NewDefinition {
        id,
        label: raw.label.clone(),
        body: raw.to_json().to_string(),
        periodic: periodic.is_some(),
        if_enable: periodic.is_some_and(|p| p.enabled),
        period_ms: periodic.map_or(compile::DEFAULT_PERIOD_MS, |p| p.period_ms),
        delay_ms: periodic.map_or(compile::DEFAULT_DELAY_MS, |p| p.delay_ms),
        release_sites: raw.release_sites,
        release_always: raw.release_always,
        now_ms,
    }
}

/// Compiles `raw` and stores it (a new version when it changed). A definition without an id
/// gets a new UUID. Returns the stored id/version and the warnings.
pub async fn save(
    store: &Store,
    mut raw: RawDefinition,
    now_ms: i64,
) -> Result<(SavedDefinition, Vec<Diagnostic>), SaveError> {
    let compiled = compile::compile(&raw);
    if compiled.has_errors() {
        return Err(SaveError::Invalid(compiled.diagnostics));
    }
    let flow = compiled.flow.expect("no errors");
    let new = new_definition(&mut raw, &flow, now_ms);
    let saved = store
        .write(move |tx| tx.save_definition(&new))
        .await
        .map_err(SaveError::Store)?;
    Ok((saved, compiled.diagnostics))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> DefinitionRecord {
        let body = serde_json::json!({"id": format!("d{i}"), "label": format!("d{i}"),
            "detail": {"rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp",
                "children": {"default": []}}}});
        DefinitionRecord::for_test(&format!("d{i}"), body.to_string())
    }

    #[test]
    fn the_cache_keeps_at_most_its_bound_and_evicts_the_least_used() {
        let cache = FlowCache::default();
        let first = cache.get_or_compile(&record(0)).unwrap();
        for i in 1..FLOW_CACHE_MAX + 10 {
            cache.get_or_compile(&record(i)).unwrap();
            cache.get_or_compile(&record(0)).unwrap(); // keep d0 recently used
        }
        assert_eq!(cache.len(), FLOW_CACHE_MAX);
        let again = cache.get_or_compile(&record(0)).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "d0 stayed cached");
        let mut bad = record(99);
        bad.body = "{".into();
        assert!(cache.get_or_compile(&bad).is_err());
    }
}
