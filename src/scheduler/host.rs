//! What the scheduler lends the engine ([`crate::engine::Host`]): a clock that follows tokio's
//! (so paused-time tests are exact), random ids, local time text, and the in-memory mirror of
//! the data cache, bounded like its table.

use crate::engine::Host;
use crate::limits::{
    CACHE_BYTES_MAX, CACHE_ENTRIES_MAX, CACHE_KEY_BYTES_MAX, CACHE_VALUE_BYTES_MAX,
};
use std::collections::HashMap;
use tokio::time::Instant;

/// Wall-clock milliseconds derived from tokio's monotonic clock: the wall time at start plus
/// the tokio time elapsed since.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_wall_ms: i64,
    base: Instant,
}

impl Clock {
    /// A clock reading the system time once, now.
    pub fn start() -> Clock {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Clock {
            base_wall_ms: wall,
            base: Instant::now(),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.base_wall_ms + self.base.elapsed().as_millis() as i64
    }

    /// The tokio instant at wall-clock `ms`.
    pub fn instant_at(&self, ms: i64) -> Instant {
        let offset = (ms - self.base_wall_ms).max(0) as u64;
        self.base + std::time::Duration::from_millis(offset)
    }
}

/// `yyyy-MM-dd HH:mm:ss` in server local time.
pub fn local_time(ms: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format("%Y-%m-%d %H:%M:%S").to_string()
        }
        chrono::LocalResult::None => String::new(),
    }
}

/// The data cache in memory, mirroring its table (loaded at start; every change is also written
/// in the same transaction as the step that made it).
#[derive(Debug, Default)]
pub struct Cache {
    map: HashMap<String, String>,
    /// Key and value bytes held (bounded by `CACHE_BYTES_MAX`).
    bytes: usize,
}

impl Cache {
    /// A cache holding `entries` (as read from the store).
    pub fn from_entries(entries: impl IntoIterator<Item = (String, String)>) -> Cache {
        let map: HashMap<String, String> = entries.into_iter().collect();
        let bytes = map.iter().map(|(k, v)| k.len() + v.len()).sum();
        Cache { map, bytes }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether `key` is stored.
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Stores `value` under `key`, or says which bound refuses it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bytes = self.check(key, value)?;
        self.map.insert(key.to_string(), value.to_string());
        self.bytes = bytes;
        Ok(())
    }

    /// Whether `set(key, value)` would be accepted; the cache's bytes after it.
    pub fn check(&self, key: &str, value: &str) -> Result<usize, String> {
        if key.len() > CACHE_KEY_BYTES_MAX {
            return Err(format!(
                "cache key of {} bytes refused: over CACHE_KEY_BYTES_MAX ({CACHE_KEY_BYTES_MAX})",
                key.len()
            ));
        }
        if value.len() > CACHE_VALUE_BYTES_MAX {
            return Err(format!(
                "cache value of {} bytes refused: over CACHE_VALUE_BYTES_MAX \
                 ({CACHE_VALUE_BYTES_MAX})",
                value.len()
            ));
        }
        let old = self.map.get(key).map(|v| key.len() + v.len());
        if old.is_none() && self.map.len() >= CACHE_ENTRIES_MAX {
            return Err(format!(
                "cache key '{key}' refused: CACHE_ENTRIES_MAX ({CACHE_ENTRIES_MAX}) keys stored"
            ));
        }
        let bytes = self.bytes - old.unwrap_or(0) + key.len() + value.len();
        if bytes > CACHE_BYTES_MAX {
            return Err(format!(
                "cache key '{key}' refused: the cache would hold {bytes} bytes, over \
                 CACHE_BYTES_MAX ({CACHE_BYTES_MAX})"
            ));
        }
        Ok(bytes)
    }

    /// Removes `key`; whether it was stored.
    pub fn delete(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some(v) => {
                self.bytes -= key.len() + v.len();
                true
            }
            None => false,
        }
    }
}

/// The engine's host for one step.
pub struct RunHost<'a> {
    pub clock: &'a Clock,
    pub cache: &'a mut Cache,
}

impl Host for RunHost<'_> {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn local_time(&self, ms: i64) -> String {
        local_time(ms)
    }

    fn uuid(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    fn cache_get(&self, key: &str) -> Option<String> {
        self.cache.map.get(key).cloned()
    }

    fn cache_set(&mut self, key: &str, value: &str) -> Result<(), String> {
        self.cache.set(key, value)
    }

    fn cache_delete(&mut self, key: &str) -> bool {
        self.cache.delete(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_refuses_past_its_byte_bound_and_frees_on_delete() {
        let mut cache = Cache::default();
        let value = "v".repeat(CACHE_VALUE_BYTES_MAX - 8);
        let fits = CACHE_BYTES_MAX / CACHE_VALUE_BYTES_MAX;
        for i in 0..fits {
            cache.set(&format!("k{i}"), &value).unwrap();
        }
        let err = cache.set("one-more", &value).unwrap_err();
        assert!(err.contains("CACHE_BYTES_MAX"), "{err}");
        assert!(cache.delete("k0"));
        cache.set("one-more", &value).unwrap();
    }

    #[test]
    fn cache_refuses_past_each_bound() {
        let mut cache = Cache::default();
        for i in 0..CACHE_ENTRIES_MAX {
            cache.set(&format!("k{i}"), "v").unwrap();
        }
        assert!(cache
            .set("one-more", "v")
            .unwrap_err()
            .contains("CACHE_ENTRIES_MAX"));
        cache.set("k0", "replacing is fine").unwrap();
        let big = "x".repeat(CACHE_VALUE_BYTES_MAX + 1);
        assert!(cache
            .set("k1", &big)
            .unwrap_err()
            .contains("CACHE_VALUE_BYTES_MAX"));
        let long_key = "k".repeat(CACHE_KEY_BYTES_MAX + 1);
        assert!(cache
            .set(&long_key, "v")
            .unwrap_err()
            .contains("CACHE_KEY_BYTES_MAX"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_tokio_time() {
        let clock = Clock::start();
        let t0 = clock.now_ms();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(clock.now_ms() - t0, 1500);
        assert_eq!(local_time(0).len(), 19);
    }
}
