//! Opening SQLite: the library version check, per-connection pragmas, and the schema with its
//! upgrade steps (versioned by `PRAGMA user_version`, each applied in one IMMEDIATE transaction).

use std::path::Path;
use std::sync::Once;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::error::{Result, StoreError};
use crate::limits;

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = 6;

/// The whole schema at `SCHEMA_VERSION`, for a new database.
const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// One upgrade step: SQL that brings a database from `to - 1` to `to`. Later versions append a
/// step here (and update schema.sql to the whole new schema).
pub(crate) struct Upgrade {
    pub to: i64,
    pub sql: &'static str,
}

/// Upgrade steps in order (version 1 is the first schema).
pub(crate) const UPGRADES: &[Upgrade] = &[
    // 2: indexes for listing task records newest first (`Rx::list_tasks`).
    Upgrade {
        to: 2,
        sql: "CREATE INDEX IF NOT EXISTS task_record_status_seq ON task_record(status, seq);
              CREATE INDEX IF NOT EXISTS task_record_label_seq ON task_record(def_label, seq);
              CREATE INDEX IF NOT EXISTS task_record_created ON task_record(created_ms);",
    },
    // 3: the event outbox behind `/api/events` (and later webhooks).
    Upgrade {
        to: 3,
        sql: "CREATE TABLE IF NOT EXISTS event_outbox (
                  id         INTEGER PRIMARY KEY,
                  kind       TEXT NOT NULL,
                  task_id    TEXT,
                  payload    TEXT NOT NULL,
                  created_ms INTEGER NOT NULL
              );",
    },
    // 4: where each webhook (by URL) has delivered the outbox up to.
    Upgrade {
        to: 4,
        sql: "CREATE TABLE IF NOT EXISTS webhook_cursor (
                  url     TEXT PRIMARY KEY,
                  last_id INTEGER NOT NULL
              );",
    },
    // 5: storage sites and their change log.
    Upgrade {
        to: 5,
        sql: include_str!("schema_v5.sql"),
    },
    // 6: the persisted site wait queue.
    Upgrade {
        to: 6,
        sql: include_str!("schema_v6.sql"),
    },
];

/// Oldest SQLite allowed: 3.7.0 to 3.51.2 can corrupt a WAL database when two connections write
/// or checkpoint at the same moment.
pub const SQLITE_VERSION_MIN: i32 = 3_051_003;
const SQLITE_VERSION_MIN_TEXT: &str = "3.51.3";

/// Refuses an SQLite library older than `SQLITE_VERSION_MIN`.
pub(crate) fn check_sqlite_version(found: i32) -> Result<()> {
    if found < SQLITE_VERSION_MIN {
        return Err(StoreError::SqliteTooOld {
            found: format!(
                "{}.{}.{}",
                found / 1_000_000,
                found / 1_000 % 1_000,
                found % 1_000
            ),
            required: SQLITE_VERSION_MIN_TEXT,
        });
    }
    Ok(())
}

/// Per-connection settings, shared by the writer and every pooled reader.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pragmas {
    pub synchronous_full: bool,
    pub read_only: bool,
}

/// Applies the pragmas every connection needs. Called for the writer and from the pool's init hook.
pub(crate) fn apply_pragmas(conn: &Connection, p: Pragmas) -> rusqlite::Result<()> {
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!("journal_mode is {mode}, not wal")),
        ));
    }
    let sync = if p.synchronous_full { "FULL" } else { "NORMAL" };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_millis(limits::BUSY_TIMEOUT_MS))?;
    conn.pragma_update(None, "cache_size", -(limits::SQLITE_CACHE_KIB as i64))?;
    conn.pragma_update(None, "mmap_size", 0)?;
    conn.pragma_update(
        None,
        "journal_size_limit",
        limits::SQLITE_JOURNAL_SIZE_LIMIT_BYTES,
    )?;
    conn.pragma_update(None, "temp_store", "FILE")?;
    if p.read_only {
        // Readers never write: a stray write through a read connection is an error, not a
        // second writer racing the writer thread.
        conn.pragma_update(None, "query_only", "ON")?;
    }
    conn.set_prepared_statement_cache_capacity(limits::SQLITE_STATEMENT_CACHE_MAX);
    Ok(())
}

/// Sets SQLite's process-wide heap limit, once per process.
pub(crate) fn set_hard_heap_limit(conn: &Connection) -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        let limit = limits::SQLITE_HARD_HEAP_LIMIT_BYTES as i64;
        result = conn
            .query_row(&format!("PRAGMA hard_heap_limit={limit}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|_| ())
            .map_err(StoreError::from);
    });
    result
}

/// Opens a connection to `path` (creating the file) with the pragmas applied.
pub(crate) fn open_connection(path: &Path, p: Pragmas) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    apply_pragmas(&conn, p)?;
    Ok(conn)
}

/// Reads the database's schema version.
pub(crate) fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Brings the database to `SCHEMA_VERSION`: a new one gets schema.sql, an older one each upgrade
/// step in turn, each in one IMMEDIATE transaction. A newer one is refused.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_with(conn, SCHEMA_SQL, UPGRADES, SCHEMA_VERSION)
}

fn migrate_with(
    conn: &mut Connection,
    schema: &str,
    upgrades: &[Upgrade],
    target: i64,
) -> Result<()> {
    let found = user_version(conn)?;
    if found > target {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: target,
        });
    }
    if found == 0 {
        return apply_step(conn, 0, target, schema);
    }
    for step in upgrades.iter().filter(|s| s.to > found && s.to <= target) {
        apply_step(conn, step.to - 1, step.to, step.sql)?;
    }
    let now = user_version(conn)?;
    if now != target {
        return Err(StoreError::Sqlite(format!(
            "no upgrade path from schema version {now} to {target}"
        )));
    }
    Ok(())
}

/// Runs one step in an IMMEDIATE transaction, re-checking the version inside it so two
/// processes opening the same file at once cannot both apply it.
fn apply_step(conn: &mut Connection, from: i64, to: i64, sql: &str) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let inside: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if inside != from {
        // Someone else applied it meanwhile; the caller re-reads the version.
        return Ok(());
    }
    tx.execute_batch(sql)?;
    tx.pragma_update(None, "user_version", to)?;
    tx.commit()?;
    log::info!("store: schema version {from} -> {to}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_steps_are_contiguous_and_end_at_current_version() {
        let mut expect = 2;
        for step in UPGRADES {
            assert_eq!(step.to, expect);
            expect += 1;
        }
        assert_eq!(expect - 1, SCHEMA_VERSION.max(1));
    }

    #[test]
    fn sqlite_version_check() {
        assert!(check_sqlite_version(rusqlite::version_number()).is_ok());
        assert!(check_sqlite_version(3_051_003).is_ok());
        let e = check_sqlite_version(3_051_002).unwrap_err();
        assert_eq!(
            e,
            StoreError::SqliteTooOld {
                found: "3.51.2".into(),
                required: "3.51.3"
            }
        );
    }

    #[test]
    fn upgrade_steps_run_in_order_from_an_older_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pragmas {
            synchronous_full: true,
            read_only: false,
        };
        let mut conn = open_connection(&dir.path().join("m.db"), p).unwrap();
        let v1 = "CREATE TABLE a (x INTEGER);";
        migrate_with(&mut conn, v1, &[], 1).unwrap();
        let steps = [
            Upgrade {
                to: 2,
                sql: "ALTER TABLE a ADD COLUMN y INTEGER;",
            },
            Upgrade {
                to: 3,
                sql: "CREATE TABLE b (z INTEGER);",
            },
        ];
        migrate_with(&mut conn, "unused", &steps, 3).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 3);
        conn.execute("INSERT INTO a (x, y) VALUES (1, 2)", [])
            .unwrap();
        conn.execute("INSERT INTO b (z) VALUES (1)", []).unwrap();
        // A failing step leaves the version where it was.
        let bad = [Upgrade {
            to: 4,
            sql: "CREATE TABLE b (z INTEGER);",
        }];
        assert!(migrate_with(&mut conn, "unused", &bad, 4).is_err());
        assert_eq!(user_version(&conn).unwrap(), 3);
    }
}
