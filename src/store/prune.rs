//! History pruning: keeps terminal task records, block records and task logs under their row
//! caps, deleting oldest first and at most a batch of rows per table per pass, so each pass is
//! one short transaction and disk stays bounded.

use rusqlite::params;

use super::error::{n64, Result};
use super::model::{HistoryCaps, PruneReport, TaskStatus};
use super::{Rx, Tx};

impl Tx<'_> {
    /// One pass with the caps from `limits.rs`.
    pub fn prune_history(&mut self, batch: usize) -> Result<PruneReport> {
        self.prune_history_with(&HistoryCaps::default(), batch)
    }

    /// One pass: terminal tasks beyond `caps.task_rows` (oldest end first, with their block
    /// records, logs and checkpoint), then block records and logs beyond their caps (oldest
    /// first). At most `batch` rows are deleted from each table.
    pub fn prune_history_with(&mut self, caps: &HistoryCaps, batch: usize) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let mut blocks_left = batch;
        let mut logs_left = batch;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let periodic_before = now.saturating_sub(caps.periodic_retention_ms);
        let budgets = (&mut blocks_left, &mut logs_left);
        self.prune_tasks(batch, Some(periodic_before), budgets, &mut report)?;
        let excess = (self.terminal_count()? - n64(caps.task_rows)).max(0) as usize;
        if excess > 0 {
            let budgets = (&mut blocks_left, &mut logs_left);
            self.prune_tasks(excess.min(batch), None, budgets, &mut report)?;
        }
        let excess = (self.counter("block_record")? - n64(caps.block_record_rows)).max(0);
        let n = self.delete_oldest("block_record", (excess as usize).min(blocks_left))?;
        report.block_records += n;
        let excess = (self.counter("task_log")? - n64(caps.task_log_rows)).max(0);
        let m = self.delete_oldest("task_log", (excess as usize).min(logs_left))?;
        report.task_logs += m;
        let pruned = self.prune_outbox(caps.outbox_rows, batch * 8)?;
        report.more = pruned == batch * 8
            || self.old_periodic_exists(periodic_before)?
            || self.terminal_count()? > n64(caps.task_rows)
            || self.counter("block_record")? > n64(caps.block_record_rows)
            || self.counter("task_log")? > n64(caps.task_log_rows);
        Ok(report)
    }

    /// Whether an ended periodic run older than `before` is still stored.
    fn old_periodic_exists(&self, before: i64) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM task_record WHERE periodic = 1 \
                 AND ended_ms < ?1 AND status IN ('finished', 'failed', 'stopped'))",
            )?
            .query_row([before], |r| r.get(0))?)
    }

    /// Deletes up to `n` of the oldest-ended terminal tasks — only periodic runs that ended
    /// before `periodic_before` when it is given. Their children go first, within the per-table
    /// budgets; a task whose children did not all fit stays for the next pass.
    fn prune_tasks(
        &mut self,
        n: usize,
        periodic_before: Option<i64>,
        (blocks_left, logs_left): (&mut usize, &mut usize),
        report: &mut PruneReport,
    ) -> Result<()> {
        let ids: Vec<String> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id FROM task_record WHERE ended_ms IS NOT NULL \
                 AND status IN ('finished', 'failed', 'stopped') \
                 AND (?2 IS NULL OR (periodic = 1 AND ended_ms < ?2)) \
                 ORDER BY ended_ms, seq LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![n64(n), periodic_before], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for id in ids {
            let b = self.delete_children("block_record", &id, *blocks_left)?;
            *blocks_left -= b.0;
            report.block_records += b.0;
            let l = self.delete_children("task_log", &id, *logs_left)?;
            *logs_left -= l.0;
            report.task_logs += l.0;
            if !(b.1 && l.1) {
                break;
            }
            report.checkpoints += self
                .conn
                .prepare_cached("DELETE FROM task_checkpoint WHERE task_id = ?1")?
                .execute([&id])?;
            report.tasks += self
                .conn
                .prepare_cached("DELETE FROM task_record WHERE id = ?1")?
                .execute([&id])?;
        }
        Ok(())
    }

    /// Deletes up to `budget` rows of `table` belonging to the task; returns (deleted, all gone).
    fn delete_children(
        &mut self,
        table: &str,
        task_id: &str,
        budget: usize,
    ) -> Result<(usize, bool)> {
        let sql = format!(
            "DELETE FROM {table} WHERE id IN \
             (SELECT id FROM {table} WHERE task_id = ?1 ORDER BY id LIMIT ?2)"
        );
        let n = self
            .conn
            .prepare_cached(&sql)?
            .execute(params![task_id, n64(budget)])?;
        if n < budget {
            return Ok((n, true));
        }
        let exists_sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE task_id = ?1)");
        let more: bool = self
            .conn
            .prepare_cached(&exists_sql)?
            .query_row([task_id], |r| r.get(0))?;
        Ok((n, !more))
    }

    /// Deletes the `n` oldest rows (lowest ids) of `table`.
    fn delete_oldest(&mut self, table: &str, n: usize) -> Result<usize> {
        if n == 0 {
            return Ok(0);
        }
        let sql = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} ORDER BY id LIMIT ?1)"
        );
        Ok(self.conn.prepare_cached(&sql)?.execute([n64(n)])?)
    }
}

impl Rx<'_> {
    /// Finished + failed + stopped tasks (counter lookups).
    fn terminal_count(&self) -> Result<i64> {
        let mut total = 0;
        for s in TaskStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            total += self.status_count(s)?;
        }
        Ok(total)
    }
}
