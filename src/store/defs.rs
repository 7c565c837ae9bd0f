//! Task definitions with version history: save (new version only when something changed), soft
//! delete, enable/disable, and the lookups the scheduler and API need.

use rusqlite::{params, OptionalExtension, Row};

use super::error::{check_len, n64, Result, StoreError};
use super::model::{DefinitionRecord, NewDefinition, SavedDefinition};
use super::{Rx, Tx};
use crate::limits;

const DEF_COLUMNS: &str = "d.id, d.label, v.version, v.body, d.periodic, d.if_enable, \
     d.period_ms, d.delay_ms, d.release_sites, d.release_always, d.deleted, d.created_ms, \
     d.updated_ms";

fn def_from_row(r: &Row<'_>) -> rusqlite::Result<DefinitionRecord> {
    Ok(DefinitionRecord {
        id: r.get(0)?,
        label: r.get(1)?,
        version: r.get(2)?,
        body: r.get(3)?,
        periodic: r.get(4)?,
        if_enable: r.get(5)?,
        period_ms: r.get(6)?,
        delay_ms: r.get(7)?,
        release_sites: r.get(8)?,
        release_always: r.get(9)?,
        deleted: r.get(10)?,
        created_ms: r.get(11)?,
        updated_ms: r.get(12)?,
    })
}

impl Tx<'_> {
    /// Creates or updates a definition. A new id gets version 1; an unchanged one (same label,
    /// body and flags, not deleted) writes nothing (`changed=false`); a changed body or flags
    /// adds version+1 (old versions stay readable). Saving a deleted id revives it. A label held
    /// by another live definition → `Conflict`.
    pub fn save_definition(&mut self, d: &NewDefinition) -> Result<SavedDefinition> {
        check_len(
            d.body.len(),
            "DEFINITION_BYTES_MAX",
            limits::DEFINITION_BYTES_MAX,
        )?;
        self.check_label_free(&d.label, &d.id)?;
        let Some(cur) = self.definition(&d.id)? else {
            self.insert_definition(d)?;
            return Ok(SavedDefinition {
                id: d.id.clone(),
                version: 1,
                changed: true,
            });
        };
        let same_content = cur.body == d.body && same_flags(&cur, d);
        if same_content && cur.label == d.label && !cur.deleted {
            return Ok(SavedDefinition {
                id: d.id.clone(),
                version: cur.version,
                changed: false,
            });
        }
        let version = if same_content {
            cur.version
        } else {
            cur.version + 1
        };
        if version != cur.version {
            self.conn
                .prepare_cached(
                    "INSERT INTO task_def_version (def_id, version, body, created_ms) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![d.id, version, d.body, d.now_ms])?;
        }
        self.conn
            .prepare_cached(
                "UPDATE task_def SET label = ?2, version = ?3, periodic = ?4, if_enable = ?5, \
                 period_ms = ?6, delay_ms = ?7, release_sites = ?8, release_always = ?9, \
                 deleted = 0, updated_ms = ?10 WHERE id = ?1",
            )?
            .execute(params![
                d.id,
                d.label,
                version,
                d.periodic,
                d.if_enable,
                d.period_ms,
                d.delay_ms,
                d.release_sites,
                d.release_always,
                d.now_ms
            ])?;
        Ok(SavedDefinition {
            id: d.id.clone(),
            version,
            changed: true,
        })
    }

    /// `Conflict` naming the label when another live definition uses it.
    fn check_label_free(&self, label: &str, id: &str) -> Result<()> {
        let taken: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT id FROM task_def WHERE label = ?1 AND deleted = 0 AND id <> ?2",
            )?
            .query_row(params![label, id], |r| r.get(0))
            .optional()?;
        if let Some(other) = taken {
            return Err(StoreError::Conflict(format!(
                "label {:?} is used by definition {other:?}",
                label
            )));
        }
        Ok(())
    }

    fn insert_definition(&mut self, d: &NewDefinition) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO task_def (id, label, version, periodic, if_enable, period_ms, \
                 delay_ms, release_sites, release_always, deleted, created_ms, updated_ms) \
                 VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?9)",
            )?
            .execute(params![
                d.id,
                d.label,
                d.periodic,
                d.if_enable,
                d.period_ms,
                d.delay_ms,
                d.release_sites,
                d.release_always,
                d.now_ms
            ])?;
        self.conn
            .prepare_cached(
                "INSERT INTO task_def_version (def_id, version, body, created_ms) \
                 VALUES (?1, 1, ?2, ?3)",
            )?
            .execute(params![d.id, d.body, d.now_ms])?;
        Ok(())
    }

    /// Saves several definitions as one unit (an import). Any error — a label taken, an id that
    /// exists while `replace` is false, a body over the limit — fails the job, and the writer
    /// rolls the whole job back: nothing of the import is written.
    pub fn save_definitions(
        &mut self,
        defs: &[NewDefinition],
        replace: bool,
    ) -> Result<Vec<SavedDefinition>> {
        let mut saved = Vec::with_capacity(defs.len());
        for d in defs {
            if !replace && self.definition(&d.id)?.is_some_and(|c| !c.deleted) {
                return Err(StoreError::Conflict(format!(
                    "task definition {:?} exists",
                    d.id
                )));
            }
            saved.push(self.save_definition(d)?);
        }
        Ok(saved)
    }

    /// Soft delete: versions stay (runs pinned to them keep working), the label becomes free.
    /// False when there is no live definition with this id.
    pub fn delete_definition(&mut self, id: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("UPDATE task_def SET deleted = 1 WHERE id = ?1 AND deleted = 0")?
            .execute([id])?;
        Ok(n == 1)
    }

    /// Sets `if_enable` (periodic definitions run only when enabled). False when not found.
    pub fn set_definition_enabled(&mut self, id: &str, enabled: bool) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("UPDATE task_def SET if_enable = ?2 WHERE id = ?1 AND deleted = 0")?
            .execute(params![id, enabled])?;
        Ok(n == 1)
    }
}

fn same_flags(cur: &DefinitionRecord, d: &NewDefinition) -> bool {
    cur.periodic == d.periodic
        && cur.if_enable == d.if_enable
        && cur.period_ms == d.period_ms
        && cur.delay_ms == d.delay_ms
        && cur.release_sites == d.release_sites
        && cur.release_always == d.release_always
}

impl Rx<'_> {
    /// The definition with its current version's body (also when deleted; see `deleted`).
    pub fn definition(&self, id: &str) -> Result<Option<DefinitionRecord>> {
        let sql = format!(
            "SELECT {DEF_COLUMNS} FROM task_def d JOIN task_def_version v \
             ON v.def_id = d.id AND v.version = d.version WHERE d.id = ?1"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], def_from_row)
            .optional()?)
    }

    /// The definition head with the body of `version` (for runs pinned to an older version).
    pub fn definition_version(&self, id: &str, version: i64) -> Result<Option<DefinitionRecord>> {
        let sql = format!(
            "SELECT {DEF_COLUMNS} FROM task_def d JOIN task_def_version v \
             ON v.def_id = d.id WHERE d.id = ?1 AND v.version = ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        Ok(stmt
            .query_row(params![id, version], def_from_row)
            .optional()?)
    }

    /// The live definition with this label.
    pub fn definition_by_label(&self, label: &str) -> Result<Option<DefinitionRecord>> {
        let sql = format!(
            "SELECT {DEF_COLUMNS} FROM task_def d JOIN task_def_version v \
             ON v.def_id = d.id AND v.version = d.version WHERE d.label = ?1 AND d.deleted = 0"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([label], def_from_row)
            .optional()?)
    }

    /// Live definitions ordered by label, at most `limit`.
    pub fn definitions(&self, limit: usize) -> Result<Vec<DefinitionRecord>> {
        let sql = format!(
            "SELECT {DEF_COLUMNS} FROM task_def d JOIN task_def_version v \
             ON v.def_id = d.id AND v.version = d.version WHERE d.deleted = 0 \
             ORDER BY d.label LIMIT ?1"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([n64(limit)], def_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// (version, created_ms) of every stored version, oldest first.
    pub fn definition_versions(&self, id: &str) -> Result<Vec<(i64, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, created_ms FROM task_def_version WHERE def_id = ?1 ORDER BY version",
        )?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Live periodic definitions (enabled or not: check `if_enable`), ordered by label.
    pub fn periodic_definitions(&self) -> Result<Vec<DefinitionRecord>> {
        let sql = format!(
            "SELECT {DEF_COLUMNS} FROM task_def d JOIN task_def_version v \
             ON v.def_id = d.id AND v.version = d.version \
             WHERE d.deleted = 0 AND d.periodic = 1 ORDER BY d.label"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], def_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{inline, new_def};
    use crate::store::StoreError;

    #[test]
    fn an_import_that_fails_part_way_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = inline(&dir);
        store
            .write_blocking(|tx| tx.save_definition(&new_def("x", "taken", "{}")))
            .unwrap();
        // The second definition's label is taken: the first must not stay written.
        let defs = vec![new_def("a", "fresh", "{}"), new_def("b", "taken", "{}")];
        let err = store
            .write_blocking(move |tx| tx.save_definitions(&defs, false))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert!(store
            .read_blocking(|rx| rx.definition("a"))
            .unwrap()
            .is_none());
        // An existing id is refused unless replacing; replacing makes a new version.
        let defs = vec![new_def("x", "taken", "{\"v\":2}")];
        let d2 = defs.clone();
        assert!(store
            .write_blocking(move |tx| tx.save_definitions(&d2, false))
            .is_err());
        let saved = store
            .write_blocking(move |tx| tx.save_definitions(&defs, true))
            .unwrap();
        assert_eq!(saved[0].version, 2);
        // An oversized body fails the job after good ones: still nothing written.
        let big = "x".repeat(crate::limits::DEFINITION_BYTES_MAX + 1);
        let defs = vec![new_def("c", "c", "{}"), new_def("d", "d", &big)];
        assert!(store
            .write_blocking(move |tx| tx.save_definitions(&defs, false))
            .is_err());
        assert!(store
            .read_blocking(|rx| rx.definition("c"))
            .unwrap()
            .is_none());
    }
}
