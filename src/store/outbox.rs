//! The event outbox: task and block changes appended in the same transaction as the step that
//! made them, read back by id for `/api/events` replay, and pruned to `OUTBOX_ROWS_MAX`.

use rusqlite::params;

use super::error::{n64, Result};
use super::model::OutboxEvent;
use super::{Rx, Tx};

impl Tx<'_> {
    /// Appends an event; its id (ids only grow, never reused).
    pub fn outbox_append(
        &mut self,
        kind: &str,
        task_id: Option<&str>,
        payload: &str,
        now_ms: i64,
    ) -> Result<OutboxEvent> {
        self.conn
            .prepare_cached(
                "INSERT INTO event_outbox (kind, task_id, payload, created_ms) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![kind, task_id, payload, now_ms])?;
        Ok(OutboxEvent {
            id: self.conn.last_insert_rowid(),
            kind: kind.to_string(),
            task_id: task_id.map(str::to_string),
            payload: payload.to_string(),
            created_ms: now_ms,
        })
    }

    /// Deletes the oldest events beyond the newest `keep` (at least one is always kept, which
    /// keeps ids from repeating), at most `batch`; how many.
    pub fn prune_outbox(&mut self, keep: usize, batch: usize) -> Result<usize> {
        let keep = keep.max(1);
        let n = self
            .conn
            .prepare_cached(
                "DELETE FROM event_outbox WHERE id <= (SELECT max(id) FROM event_outbox) - ?1 \
                 AND id < (SELECT min(id) FROM event_outbox) + ?2",
            )?
            .execute(params![n64(keep), n64(batch)])?;
        Ok(n)
    }

    /// Records that the webhook at `url` has dealt with every event up to `id`.
    pub fn set_webhook_cursor(&mut self, url: &str, id: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO webhook_cursor (url, last_id) VALUES (?1, ?2) \
                 ON CONFLICT(url) DO UPDATE SET last_id = excluded.last_id",
            )?
            .execute(params![url, id])?;
        Ok(())
    }
}

impl Rx<'_> {
    /// Events with an id above `after`, oldest first, at most `limit`.
    pub fn outbox_after(&self, after: i64, limit: usize) -> Result<Vec<OutboxEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, kind, task_id, payload, created_ms FROM event_outbox \
             WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, n64(limit)], |r| {
            Ok(OutboxEvent {
                id: r.get(0)?,
                kind: r.get(1)?,
                task_id: r.get(2)?,
                payload: r.get(3)?,
                created_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The last outbox id the webhook at `url` dealt with, `None` for a new webhook.
    pub fn webhook_cursor(&self, url: &str) -> Result<Option<i64>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .prepare_cached("SELECT last_id FROM webhook_cursor WHERE url = ?1")?
            .query_row(params![url], |r| r.get(0))
            .optional()?)
    }

    /// The oldest and newest stored event ids, (0, 0) when there is none.
    pub fn outbox_bounds(&self) -> Result<(i64, i64)> {
        Ok(self
            .conn
            .prepare_cached("SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM event_outbox")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::inline;

    #[test]
    fn events_append_replay_and_prune_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = inline(&dir);
        let ids: Vec<i64> = (0..10)
            .map(|i| {
                s.write_blocking(move |tx| {
                    tx.outbox_append("task", Some("t"), &format!("{{\"n\":{i}}}"), i)
                })
                .unwrap()
                .id
            })
            .collect();
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
        let after = s.read_blocking(|rx| rx.outbox_after(ids[6], 100)).unwrap();
        assert_eq!(
            after.iter().map(|e| e.id).collect::<Vec<_>>(),
            ids[7..].to_vec()
        );
        // Keep the newest 4, at most 3 per pass.
        assert_eq!(s.write_blocking(|tx| tx.prune_outbox(4, 3)).unwrap(), 3);
        assert_eq!(s.write_blocking(|tx| tx.prune_outbox(4, 3)).unwrap(), 3);
        assert_eq!(s.write_blocking(|tx| tx.prune_outbox(4, 3)).unwrap(), 0);
        let (oldest, newest) = s.read_blocking(|rx| rx.outbox_bounds()).unwrap();
        assert_eq!((oldest, newest), (ids[6], ids[9]));
        let next = s
            .write_blocking(|tx| tx.outbox_append("task", None, "{}", 0))
            .unwrap();
        assert_eq!(next.id, ids[9] + 1, "ids are never reused");
    }

    #[test]
    fn webhook_cursors_are_stored_per_url() {
        let dir = tempfile::tempdir().unwrap();
        let s = inline(&dir);
        let get = |url: &'static str| s.read_blocking(move |rx| rx.webhook_cursor(url)).unwrap();
        assert_eq!(get("http://a:1/"), None);
        s.write_blocking(|tx| tx.set_webhook_cursor("http://a:1/", 5))
            .unwrap();
        s.write_blocking(|tx| tx.set_webhook_cursor("http://a:1/", 7))
            .unwrap();
        assert_eq!(get("http://a:1/"), Some(7));
        assert_eq!(get("http://b:1/"), None);
    }
}
