//! Block records (one row per block execution of a run) and task log lines.

use rusqlite::params;

use super::error::{n64, truncate_marked, Result};
use super::model::{BlockRecord, BlockStart, TaskLog, BLOCK_STATUS_STARTED};
use super::{Rx, Tx};
use crate::limits;

fn cut(v: Option<&str>) -> Option<std::borrow::Cow<'_, str>> {
    v.map(|s| truncate_marked(s, limits::RECORD_VALUE_BYTES_MAX))
}

impl Tx<'_> {
    /// Records that a block started. Idempotent on (task_id, seq): a repeat (e.g. after
    /// recovery) replaces the row's start fields and clears its end. Inputs longer than
    /// `RECORD_VALUE_BYTES_MAX` are truncated with a marker.
    pub fn block_started(&mut self, b: &BlockStart) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO block_record (task_id, seq, block_id, block_name, block_type, \
                 iteration, status, started_ms, inputs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT(task_id, seq) DO UPDATE SET block_id = excluded.block_id, \
                 block_name = excluded.block_name, block_type = excluded.block_type, \
                 iteration = excluded.iteration, status = excluded.status, \
                 started_ms = excluded.started_ms, inputs = excluded.inputs, ended_ms = NULL, \
                 ended_reason = NULL, outputs = NULL",
            )?
            .execute(params![
                b.task_id,
                b.seq,
                b.block_id,
                b.block_name,
                b.block_type,
                b.iteration,
                BLOCK_STATUS_STARTED,
                b.started_ms,
                cut(b.inputs.as_deref())
            ])?;
        Ok(())
    }

    /// Records that a block ended. Outputs are truncated like inputs. False when no such record.
    pub fn block_ended(
        &mut self,
        task_id: &str,
        seq: i64,
        status: i32,
        ended_reason: Option<&str>,
        outputs: Option<&str>,
        ended_ms: i64,
    ) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE block_record SET status = ?3, ended_reason = ?4, outputs = ?5, \
                 ended_ms = ?6 WHERE task_id = ?1 AND seq = ?2",
            )?
            .execute(params![
                task_id,
                seq,
                status,
                ended_reason,
                cut(outputs),
                ended_ms
            ])?;
        Ok(n == 1)
    }

    /// Changes a block record's status (and reason, when given) without ending it.
    pub fn block_status(
        &mut self,
        task_id: &str,
        seq: i64,
        status: i32,
        reason: Option<&str>,
    ) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE block_record SET status = ?3, ended_reason = coalesce(?4, ended_reason) \
                 WHERE task_id = ?1 AND seq = ?2",
            )?
            .execute(params![task_id, seq, status, reason])?;
        Ok(n == 1)
    }

    /// Deletes the task's block records except the last `keep_last` (by seq); returns how many.
    pub fn prune_task_block_records(&mut self, task_id: &str, keep_last: usize) -> Result<usize> {
        let n = self
            .conn
            .prepare_cached(
                "DELETE FROM block_record WHERE task_id = ?1 AND seq <= (SELECT seq FROM block_record \
                 WHERE task_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
            )?
            .execute(params![task_id, n64(keep_last)])?;
        Ok(n)
    }

    /// Appends a log line for the task; messages over `LOG_LINE_BYTES_MAX` are truncated.
    pub fn task_log(
        &mut self,
        task_id: &str,
        block_name: Option<&str>,
        level: i32,
        message: &str,
        created_ms: i64,
    ) -> Result<()> {
        let message = truncate_marked(message, limits::LOG_LINE_BYTES_MAX);
        self.conn
            .prepare_cached(
                "INSERT INTO task_log (task_id, block_name, level, message, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![task_id, block_name, level, message, created_ms])?;
        Ok(())
    }
}

impl Rx<'_> {
    /// The task's block records in seq order, the first `limit`.
    pub fn block_records(&self, task_id: &str, limit: usize) -> Result<Vec<BlockRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, task_id, seq, block_id, block_name, block_type, iteration, status, \
             started_ms, ended_ms, ended_reason, inputs, outputs FROM block_record \
             WHERE task_id = ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![task_id, n64(limit)], |r| {
            Ok(BlockRecord {
                id: r.get(0)?,
                task_id: r.get(1)?,
                seq: r.get(2)?,
                block_id: r.get(3)?,
                block_name: r.get(4)?,
                block_type: r.get(5)?,
                iteration: r.get(6)?,
                status: r.get(7)?,
                started_ms: r.get(8)?,
                ended_ms: r.get(9)?,
                ended_reason: r.get(10)?,
                inputs: r.get(11)?,
                outputs: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The task's latest `limit` log lines, oldest first (a tail).
    pub fn task_logs(&self, task_id: &str, limit: usize) -> Result<Vec<TaskLog>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, task_id, block_name, level, message, created_ms FROM \
             (SELECT * FROM task_log WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id",
        )?;
        let rows = stmt.query_map(params![task_id, n64(limit)], |r| {
            Ok(TaskLog {
                id: r.get(0)?,
                task_id: r.get(1)?,
                block_name: r.get(2)?,
                level: r.get(3)?,
                message: r.get(4)?,
                created_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
