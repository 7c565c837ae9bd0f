//! Plain domain types the store reads and writes: definitions, task records, block records,
//! logs, pruning reports and statistics. No SQLite type appears here.

use std::fmt;
use std::str::FromStr;

/// A definition to save (create or update). `body` is the definition JSON text.
#[derive(Debug, Clone)]
pub struct NewDefinition {
    pub id: String,
    pub label: String,
    pub body: String,
    pub periodic: bool,
    pub if_enable: bool,
    pub period_ms: i64,
    pub delay_ms: i64,
    pub release_sites: bool,
    pub release_always: bool,
    pub now_ms: i64,
}

/// Result of `Tx::save_definition`. `changed` is false when nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedDefinition {
    pub id: String,
    pub version: i64,
    pub changed: bool,
}

/// A definition head with the body of one version (the current one unless asked otherwise).
#[derive(Debug, Clone)]
pub struct DefinitionRecord {
    pub id: String,
    pub label: String,
    pub version: i64,
    pub body: String,
    pub periodic: bool,
    pub if_enable: bool,
    pub period_ms: i64,
    pub delay_ms: i64,
    pub release_sites: bool,
    pub release_always: bool,
    pub deleted: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[cfg(test)]
impl DefinitionRecord {
    /// A live, non-periodic version 1 with `body`, for tests elsewhere in the crate.
    pub(crate) fn for_test(id: &str, body: String) -> DefinitionRecord {
        DefinitionRecord {
            id: id.to_string(),
            label: id.to_string(),
            version: 1,
            body,
            periodic: false,
            if_enable: false,
            period_ms: 0,
            delay_ms: 0,
            release_sites: false,
            release_always: false,
            deleted: false,
            created_ms: 0,
            updated_ms: 0,
        }
    }
}

/// One stored event of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: i64,
    /// `task`, `block`, `task-state`, `task-event`, `robot` or `site`.
    pub kind: String,
    pub task_id: Option<String>,
    /// JSON text.
    pub payload: String,
    pub created_ms: i64,
}

/// Status of a task record, stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Queued,
    Running,
    Paused,
    Finished,
    Failed,
    Interrupted,
    Stopped,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 7] = [
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Paused,
        TaskStatus::Finished,
        TaskStatus::Failed,
        TaskStatus::Interrupted,
        TaskStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Paused => "paused",
            TaskStatus::Finished => "finished",
            TaskStatus::Failed => "failed",
            TaskStatus::Interrupted => "interrupted",
            TaskStatus::Stopped => "stopped",
        }
    }

    /// Finished, failed and stopped: the run has an end time and counts toward the history cap.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Finished | TaskStatus::Failed | TaskStatus::Stopped
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown task status {s:?}"))
    }
}

/// A task to admit (status queued).
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: String,
    pub def_id: String,
    pub def_label: String,
    pub def_version: i64,
    pub priority: i64,
    pub level: i64,
    /// JSON array text.
    pub input_params: String,
    pub request_hash: Option<String>,
    pub created_ms: i64,
    pub parent_id: Option<String>,
    pub root_id: Option<String>,
    pub periodic: bool,
}

/// Outcome of `Tx::admit_task`.
// Not boxed: the agreed API returns the record by value, once per admission call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Admit {
    /// Stored as queued with this admission number.
    Inserted { seq: i64 },
    /// A task with this id already exists (the caller compares `request_hash`).
    Existing(TaskRecord),
    /// `limit` tasks are already queued; nothing was stored.
    BacklogFull { limit: usize },
}

/// A stored task record.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub id: String,
    pub seq: i64,
    pub def_id: String,
    pub def_label: String,
    pub def_version: i64,
    pub status: TaskStatus,
    pub code: i32,
    pub priority: i64,
    pub level: i64,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub ended_reason: Option<String>,
    pub input_params: String,
    pub variables: String,
    pub state_description: Option<String>,
    pub out_order_no: Option<String>,
    pub manual_end: bool,
    pub parent_id: Option<String>,
    pub root_id: Option<String>,
    pub periodic: bool,
    pub request_hash: Option<String>,
    /// A `SubTask` block of this run started a child (RDS `ifHaveChildTask`), read from the
    /// children's `parent_id`.
    pub has_children: bool,
}

/// Filters for listing task records; all optional.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub def_label: Option<String>,
    /// Inclusive.
    pub created_from_ms: Option<i64>,
    /// Exclusive.
    pub created_to_ms: Option<i64>,
    /// Cursor: only records with seq < before_seq (the list is newest first).
    pub before_seq: Option<i64>,
}

/// Fields of a task record to overwrite; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TaskFields {
    pub variables: Option<String>,
    pub state_description: Option<String>,
    pub out_order_no: Option<String>,
}

/// A queued task as the ready-queue feeder needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRef {
    pub id: String,
    pub seq: i64,
    pub priority: i64,
    pub created_ms: i64,
}

/// Status a block record has between `block_started` and `block_ended`/`block_status`: RDS's
/// 1000 "running: executing, or waiting inside a block" (spec §4.1).
pub const BLOCK_STATUS_STARTED: i32 = 1000;

/// A block execution that started.
#[derive(Debug, Clone)]
pub struct BlockStart {
    pub task_id: String,
    pub seq: i64,
    pub block_id: i64,
    pub block_name: String,
    pub block_type: String,
    pub iteration: String,
    pub inputs: Option<String>,
    pub started_ms: i64,
}

/// A stored block record.
#[derive(Debug, Clone)]
pub struct BlockRecord {
    pub id: i64,
    pub task_id: String,
    pub seq: i64,
    pub block_id: i64,
    pub block_name: String,
    pub block_type: String,
    pub iteration: String,
    pub status: i32,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub ended_reason: Option<String>,
    pub inputs: Option<String>,
    pub outputs: Option<String>,
}

/// A stored task log line.
#[derive(Debug, Clone)]
pub struct TaskLog {
    pub id: i64,
    pub task_id: String,
    pub block_name: Option<String>,
    pub level: i32,
    pub message: String,
    pub created_ms: i64,
}

/// Row caps pruning enforces (defaults from `limits.rs`; tests use small ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCaps {
    pub task_rows: usize,
    pub block_record_rows: usize,
    pub task_log_rows: usize,
    /// Ended periodic runs older than this (ms) are pruned whatever the row caps.
    pub periodic_retention_ms: i64,
    /// Outbox events kept (the newest).
    pub outbox_rows: usize,
}

impl Default for HistoryCaps {
    fn default() -> Self {
        use crate::limits::*;
        HistoryCaps {
            task_rows: TASK_HISTORY_ROWS_MAX,
            block_record_rows: BLOCK_RECORD_ROWS_MAX,
            task_log_rows: TASK_LOG_ROWS_MAX,
            periodic_retention_ms: PERIODIC_RECORD_RETENTION_MS,
            outbox_rows: OUTBOX_ROWS_MAX,
        }
    }
}

/// Rows one pruning pass deleted. `more` is true when a table still exceeds its cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub tasks: usize,
    pub block_records: usize,
    pub task_logs: usize,
    pub checkpoints: usize,
    pub more: bool,
}

/// A snapshot of the store's counters (for `/api/system/status`).
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    pub writer_queue_len: usize,
    pub writer_queue_capacity: usize,
    pub commits: u64,
    pub jobs: u64,
    pub largest_batch: usize,
    pub failed_jobs: u64,
    pub failed_commits: u64,
    pub read_pool_size: u32,
    pub reads_in_use: usize,
    pub reads_in_use_peak: usize,
    pub reads: u64,
    pub prune_passes: u64,
    pub pruned_tasks: u64,
    pub pruned_block_records: u64,
    pub pruned_task_logs: u64,
}
