//! Loading a run into a slot: its record, checkpoint and pinned definition version are read in
//! one read transaction; a run without a checkpoint gets its initial state.

use super::Shared;
use crate::engine::RunState;
use crate::flow::model::Flow;
use crate::store::{StoreError, TaskRecord};
use crate::value::Map;
use std::sync::Arc;

/// A run read from the store, ready to be stepped.
pub(super) struct Loaded {
    pub record: TaskRecord,
    pub flow: Arc<Flow>,
    pub checkpoint: Option<RunState>,
}

/// Reads everything needed to step run `id`.
pub(super) async fn load(shared: &Shared, id: &str) -> Result<Box<Loaded>, String> {
    let id2 = id.to_string();
    let (record, checkpoint, def) = shared
        .store
        .read(move |rx| {
            let Some(record) = rx.task(&id2)? else {
                return Err(StoreError::NotFound(id2.clone()));
            };
            let checkpoint = rx.checkpoint(&id2)?;
            let def = rx.definition_version(&record.def_id, record.def_version)?;
            Ok((record, checkpoint, def))
        })
        .await
        .map_err(|e| e.to_string())?;
    let def = def.ok_or_else(|| {
        format!(
            "definition {} version {} is missing",
            record.def_id, record.def_version
        )
    })?;
    let flow = shared.flows.get_or_compile(&def)?;
    let checkpoint = match checkpoint {
        Some(text) => Some(
            serde_json::from_str::<RunState>(&text)
                .map_err(|e| format!("checkpoint does not parse: {e}"))?,
        ),
        None => None,
    };
    Ok(Box::new(Loaded {
        record,
        flow,
        checkpoint,
    }))
}

/// The initial state of a run that has not started.
pub(super) fn new_state(flow: &Flow, record: &TaskRecord) -> RunState {
    let stored: serde_json::Value =
        serde_json::from_str(&record.input_params).unwrap_or(serde_json::Value::Null);
    let inputs = crate::flow::inputs::from_stored(&flow.inputs, &stored);
    let mut task = Map::new();
    task.insert("id".into(), record.def_id.clone().into());
    task.insert("defLabel".into(), record.def_label.clone().into());
    task.insert(
        "createdOn".into(),
        super::host::local_time(record.created_ms).into(),
    );
    task.insert("status".into(), crate::engine::code::RUNNING.into());
    task.insert("taskRecordId".into(), record.id.clone().into());
    task.insert("priority".into(), record.priority.into());
    RunState::new(record.id.clone(), record.periodic, inputs.values, task)
}
