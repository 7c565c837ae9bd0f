//! The data cache: small key/value strings flows share (`CacheDataBp`), bounded in entry count
//! and value size.

use rusqlite::{params, OptionalExtension};

use super::error::{check_len, n64, Result, StoreError};
use super::{Rx, Tx};
use crate::limits;

impl Tx<'_> {
    /// Sets `key` to `value`. A value over `CACHE_VALUE_BYTES_MAX` (or key over
    /// `CACHE_KEY_BYTES_MAX`) → limit error; a new key when `CACHE_ENTRIES_MAX` keys exist →
    /// limit error. Overwriting an existing key always works.
    pub fn cache_set(&mut self, key: &str, value: &str, now_ms: i64) -> Result<()> {
        check_len(
            key.len(),
            "CACHE_KEY_BYTES_MAX",
            limits::CACHE_KEY_BYTES_MAX,
        )?;
        check_len(
            value.len(),
            "CACHE_VALUE_BYTES_MAX",
            limits::CACHE_VALUE_BYTES_MAX,
        )?;
        let updated = self
            .conn
            .prepare_cached("UPDATE data_cache SET value = ?2, updated_ms = ?3 WHERE key = ?1")?
            .execute(params![key, value, now_ms])?;
        if updated == 1 {
            return Ok(());
        }
        if self.cache_len()? >= limits::CACHE_ENTRIES_MAX as i64 {
            return Err(StoreError::Limit {
                name: "CACHE_ENTRIES_MAX",
                value: limits::CACHE_ENTRIES_MAX as u64,
            });
        }
        self.conn
            .prepare_cached("INSERT INTO data_cache (key, value, updated_ms) VALUES (?1, ?2, ?3)")?
            .execute(params![key, value, now_ms])?;
        Ok(())
    }

    /// Removes `key`; false when it was not there.
    pub fn cache_delete(&mut self, key: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM data_cache WHERE key = ?1")?
            .execute([key])?;
        Ok(n == 1)
    }
}

impl Rx<'_> {
    pub fn cache_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM data_cache WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    /// (key, value, updated_ms) ordered by key, at most `limit`.
    pub fn cache_all(&self, limit: usize) -> Result<Vec<(String, String, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, value, updated_ms FROM data_cache ORDER BY key LIMIT ?1",
        )?;
        let rows = stmt.query_map([n64(limit)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of cache keys (a counter lookup).
    pub fn cache_len(&self) -> Result<i64> {
        self.counter("data_cache")
    }

    /// A trigger-kept counter from `store_counter`.
    pub(crate) fn counter(&self, name: &str) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT n FROM store_counter WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?)
    }
}
