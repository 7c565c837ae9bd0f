//! Read-only listing queries over task records: filtered, newest-first pages with a seq cursor,
//! and per-status counts for status pages.

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::error::{n64, Result};
use super::model::{TaskFilter, TaskRecord, TaskStatus};
use super::tasks::{task_from_row, TASK_COLUMNS};
use super::Rx;

/// The SQL and its bound values for `filter`. The text is assembled only from the constant
/// fragments below (which filters are present); every value is a bound parameter. Each filter
/// shape is its own cached statement, so SQLite plans it with the matching index:
/// (status, seq), (def_label, seq), created_ms, or the seq UNIQUE index.
pub(super) fn list_sql(filter: &TaskFilter, limit: usize) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM task_record");
    let mut values: Vec<Value> = Vec::new();
    let mut clause = |frag: &str, v: Value, values: &mut Vec<Value>| {
        values.push(v);
        let joiner = if values.len() == 1 {
            " WHERE "
        } else {
            " AND "
        };
        sql.push_str(joiner);
        sql.push_str(frag);
        sql.push_str(&values.len().to_string());
    };
    if let Some(s) = filter.status {
        clause("status = ?", Value::Text(s.as_str().into()), &mut values);
    }
    if let Some(l) = &filter.def_label {
        clause("def_label = ?", Value::Text(l.clone()), &mut values);
    }
    if let Some(t) = filter.created_from_ms {
        clause("created_ms >= ?", Value::Integer(t), &mut values);
    }
    if let Some(t) = filter.created_to_ms {
        clause("created_ms < ?", Value::Integer(t), &mut values);
    }
    if let Some(s) = filter.before_seq {
        clause("seq < ?", Value::Integer(s), &mut values);
    }
    values.push(Value::Integer(n64(limit)));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", values.len()));
    (sql, values)
}

impl Rx<'_> {
    /// Newest first (by admission seq), at most `limit` (callers cap it); filters combine with
    /// AND. For the next page pass the last record's seq as `before_seq`.
    pub fn list_tasks(&self, filter: &TaskFilter, limit: usize) -> Result<Vec<TaskRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, values) = list_sql(filter, limit);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), task_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The number of task records per status (all statuses, zero included), for status pages.
    /// In `TaskStatus::ALL` order; read from the trigger-kept counters, not a scan.
    pub fn status_counts(&self) -> Result<Vec<(TaskStatus, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT status, n FROM task_status_count")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let stored: Vec<(String, i64)> = rows.collect::<rusqlite::Result<_>>()?;
        Ok(TaskStatus::ALL
            .into_iter()
            .map(|s| {
                let n = stored
                    .iter()
                    .find(|(name, _)| name == s.as_str())
                    .map_or(0, |(_, n)| *n);
                (s, n)
            })
            .collect())
    }
}
