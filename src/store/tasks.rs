//! Task records (runs): durable admission with idempotency and the backlog bound, status
//! transitions, field updates, checkpoints, and the queries the scheduler's feeder uses.

use rusqlite::{params, OptionalExtension, Row};

use super::error::{check_len, n64, truncate_marked, Result};
use super::model::{Admit, NewTask, QueuedRef, TaskFields, TaskRecord, TaskStatus};
use super::{Rx, Tx};
use crate::limits;

pub(super) const TASK_COLUMNS: &str =
    "id, seq, def_id, def_label, def_version, status, code, priority, \
     level, created_ms, started_ms, ended_ms, ended_reason, input_params, variables, \
     state_description, out_order_no, manual_end, parent_id, root_id, periodic, request_hash, \
     EXISTS (SELECT 1 FROM task_record c WHERE c.parent_id = task_record.id)";

pub(super) fn task_from_row(r: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    let status: String = r.get(5)?;
    let status = status.parse::<TaskStatus>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(TaskRecord {
        id: r.get(0)?,
        seq: r.get(1)?,
        def_id: r.get(2)?,
        def_label: r.get(3)?,
        def_version: r.get(4)?,
        status,
        code: r.get(6)?,
        priority: r.get(7)?,
        level: r.get(8)?,
        created_ms: r.get(9)?,
        started_ms: r.get(10)?,
        ended_ms: r.get(11)?,
        ended_reason: r.get(12)?,
        input_params: r.get(13)?,
        variables: r.get(14)?,
        state_description: r.get(15)?,
        out_order_no: r.get(16)?,
        manual_end: r.get(17)?,
        parent_id: r.get(18)?,
        root_id: r.get(19)?,
        periodic: r.get(20)?,
        request_hash: r.get(21)?,
        has_children: r.get(22)?,
    })
}

impl Tx<'_> {
    /// Stores a new task as queued, in admission order. An existing id → `Existing` (nothing
    /// written); `backlog_max` or more queued tasks → `BacklogFull` (nothing written). The queued
    /// count is a trigger-kept counter, so the check costs one primary-key lookup.
    pub fn admit_task(&mut self, t: &NewTask, backlog_max: usize) -> Result<Admit> {
        if let Some(existing) = self.task(&t.id)? {
            return Ok(Admit::Existing(existing));
        }
        check_len(
            t.input_params.len(),
            "TASK_INPUTS_BYTES_MAX",
            limits::TASK_INPUTS_BYTES_MAX,
        )?;
        if self.status_count(TaskStatus::Queued)? >= n64(backlog_max) {
            return Ok(Admit::BacklogFull { limit: backlog_max });
        }
        let seq: i64 = self
            .conn
            .prepare_cached(
                "UPDATE store_counter SET n = n + 1 WHERE name = 'task_seq' RETURNING n",
            )?
            .query_row([], |r| r.get(0))?;
        self.conn
            .prepare_cached(
                "INSERT INTO task_record (id, seq, def_id, def_label, def_version, status, code, \
                 priority, level, created_ms, input_params, request_hash, parent_id, root_id, \
                 periodic) VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?14, ?6, ?7, ?8, ?9, ?10, ?11, \
                 ?12, ?13)",
            )?
            .execute(params![
                t.id,
                seq,
                t.def_id,
                t.def_label,
                t.def_version,
                t.priority,
                t.level,
                t.created_ms,
                t.input_params,
                t.request_hash,
                t.parent_id,
                t.root_id,
                t.periodic,
                crate::engine::code::QUEUED
            ])?;
        Ok(Admit::Inserted { seq })
    }

    /// Sets status and code. The first time a task becomes running, `started_ms` is set; a
    /// terminal status (finished/failed/stopped) sets `ended_ms`, any other clears it (a retried
    /// run is no longer ended). `ended_reason` is replaced when given. False when not found.
    pub fn set_task_status(
        &mut self,
        id: &str,
        status: TaskStatus,
        code: i32,
        ended_reason: Option<&str>,
        now_ms: i64,
    ) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE task_record SET status = ?2, code = ?3, \
                 ended_reason = coalesce(?4, ended_reason), \
                 started_ms = CASE WHEN ?2 = 'running' AND started_ms IS NULL THEN ?5 \
                                   ELSE started_ms END, \
                 ended_ms = CASE WHEN ?6 THEN ?5 ELSE NULL END \
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                status.as_str(),
                code,
                ended_reason,
                now_ms,
                status.is_terminal()
            ])?;
        Ok(n == 1)
    }

    /// Records that the run started now, unless it already has a start time. False when not
    /// found.
    pub fn set_task_started(&mut self, id: &str, now_ms: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE task_record SET started_ms = coalesce(started_ms, ?2) WHERE id = ?1",
            )?
            .execute(params![id, now_ms])?;
        Ok(n == 1)
    }

    /// Sets priority and the ready-queue level computed from it. False when not found.
    pub fn set_task_priority(&mut self, id: &str, priority: i64, level: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("UPDATE task_record SET priority = ?2, level = ?3 WHERE id = ?1")?
            .execute(params![id, priority, level])?;
        Ok(n == 1)
    }

    /// Overwrites the given fields. `variables` over `VARIABLES_BYTES_MAX` → limit error; a
    /// longer `state_description` is truncated with a marker. False when not found.
    pub fn set_task_fields(&mut self, id: &str, f: &TaskFields) -> Result<bool> {
        if let Some(v) = &f.variables {
            check_len(v.len(), "VARIABLES_BYTES_MAX", limits::VARIABLES_BYTES_MAX)?;
        }
        let desc = f
            .state_description
            .as_deref()
            .map(|s| truncate_marked(s, limits::STATE_DESCRIPTION_BYTES_MAX));
        let n = self
            .conn
            .prepare_cached(
                "UPDATE task_record SET variables = coalesce(?2, variables), \
                 state_description = coalesce(?3, state_description), \
                 out_order_no = coalesce(?4, out_order_no) WHERE id = ?1",
            )?
            .execute(params![id, f.variables, desc, f.out_order_no])?;
        Ok(n == 1)
    }

    /// Sets the stored `defaultValue` of the task's declared inputs named in `members` (a JSON
    /// object; spec §3.5 `TriggerTaskEventBp`); names the definition does not declare are not
    /// stored. A result over `TASK_INPUTS_BYTES_MAX` leaves the stored inputs as they were
    /// (logged); it never fails the write.
    pub fn merge_task_inputs(&mut self, id: &str, members: &str) -> Result<()> {
        let members: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(members).unwrap_or_default();
        let stored: Option<String> = self
            .conn
            .prepare_cached("SELECT input_params FROM task_record WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let Some(stored) = stored else {
            return Ok(());
        };
        let mut entries: serde_json::Value =
            serde_json::from_str(&stored).unwrap_or(serde_json::Value::Array(Vec::new()));
        let Some(list) = entries.as_array_mut() else {
            return Ok(());
        };
        let mut changed = false;
        for entry in list.iter_mut() {
            let name = entry.get("name").and_then(|n| n.as_str()).map(String::from);
            if let Some(value) = name.and_then(|n| members.get(&n)) {
                entry["defaultValue"] = value.clone();
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        let text = entries.to_string();
        if text.len() > limits::TASK_INPUTS_BYTES_MAX {
            // The run has the values; only the stored copy stays as it was (failing the write
            // would make the run retry its step, and call its script, without end).
            log::warn!(
                "task {id}: stored inputParams not updated: {} bytes, over \
                 TASK_INPUTS_BYTES_MAX ({})",
                text.len(),
                limits::TASK_INPUTS_BYTES_MAX
            );
            return Ok(());
        }
        self.conn
            .prepare_cached("UPDATE task_record SET input_params = ?2 WHERE id = ?1")?
            .execute(params![id, text])?;
        Ok(())
    }

    /// Marks the task as manually ended (RDS manual-end). False when not found.
    pub fn set_manual_end(&mut self, id: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("UPDATE task_record SET manual_end = 1 WHERE id = ?1")?
            .execute([id])?;
        Ok(n == 1)
    }

    /// Stores (replaces) the run's checkpoint. Over `CHECKPOINT_BYTES_MAX` → limit error.
    pub fn put_checkpoint(&mut self, task_id: &str, state_json: &str, now_ms: i64) -> Result<()> {
        check_len(
            state_json.len(),
            "CHECKPOINT_BYTES_MAX",
            limits::CHECKPOINT_BYTES_MAX,
        )?;
        self.conn
            .prepare_cached(
                "INSERT INTO task_checkpoint (task_id, state, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(task_id) DO UPDATE SET state = excluded.state, \
                 updated_ms = excluded.updated_ms",
            )?
            .execute(params![task_id, state_json, now_ms])?;
        Ok(())
    }

    /// Removes the run's checkpoint (no error when there is none).
    pub fn delete_checkpoint(&mut self, task_id: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM task_checkpoint WHERE task_id = ?1")?
            .execute([task_id])?;
        Ok(())
    }
}

impl Rx<'_> {
    pub fn task(&self, id: &str) -> Result<Option<TaskRecord>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM task_record WHERE id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], task_from_row)
            .optional()?)
    }

    /// Queued tasks of one level with `seq > after_seq`, in admission order, at most `limit`.
    pub fn queued_in_level(
        &self,
        level: i64,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<QueuedRef>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, seq, priority, created_ms FROM task_record \
             WHERE status = 'queued' AND level = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![level, after_seq, n64(limit)], |r| {
            Ok(QueuedRef {
                id: r.get(0)?,
                seq: r.get(1)?,
                priority: r.get(2)?,
                created_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Levels that have at least one queued task, ascending.
    pub fn queued_levels(&self) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT level FROM task_record WHERE status = 'queued' ORDER BY level",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// (status, count) for every status, including zero counts.
    pub fn count_by_status(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT status, n FROM task_status_count ORDER BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of tasks with `status` (a counter lookup, not a scan).
    pub fn status_count(&self, status: TaskStatus) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT n FROM task_status_count WHERE status = ?1")?
            .query_row([status.as_str()], |r| r.get(0))?)
    }

    /// Tasks with `status` in admission order, at most `limit`.
    pub fn tasks_with_status(&self, status: TaskStatus, limit: usize) -> Result<Vec<TaskRecord>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM task_record WHERE status = ?1 ORDER BY seq LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![status.as_str(), n64(limit)], task_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Submit→start delays (ms) of the finished runs, in ascending order, at most `limit`.
    pub fn start_delays_ms(&self, limit: usize) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT started_ms - created_ms AS d FROM task_record \
             WHERE status = 'finished' AND started_ms IS NOT NULL ORDER BY d LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![n64(limit)], |r| r.get::<_, i64>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Runs of the definition that are queued, running, paused or interrupted.
    pub fn active_count_for_definition(&self, def_id: &str) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM task_record WHERE def_id = ?1 \
                 AND status IN ('queued', 'running', 'paused', 'interrupted')",
            )?
            .query_row([def_id], |r| r.get(0))?)
    }

    /// Ids of tasks with this out-order number, in admission order, at most
    /// `TASKS_PER_OUT_ORDER_MAX`.
    pub fn tasks_by_out_order_no(&self, no: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM task_record WHERE out_order_no = ?1 ORDER BY seq LIMIT ?2",
        )?;
        let max = n64(limits::TASKS_PER_OUT_ORDER_MAX);
        let rows = stmt.query_map(params![no, max], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Children of `parent` (started by its `SubTask` blocks) that have not ended.
    pub fn live_children(&self, parent: &str) -> Result<usize> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM task_record WHERE parent_id = ?1 \
                 AND status IN ('queued','running','paused','interrupted')",
            )?
            .query_row([parent], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// The run's checkpoint JSON, if any.
    pub fn checkpoint(&self, task_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT state FROM task_checkpoint WHERE task_id = ?1")?
            .query_row([task_id], |r| r.get(0))
            .optional()?)
    }
}
