//! Storage sites (库位) and their change log. Every lock change is one compare-and-set UPDATE
//! inside the writer's transaction, so a site can never be locked by two owners; every change
//! appends a row to the capped `site_log` naming who made it and why, and a `site` event to the
//! outbox (collected in the `Tx` for the caller to publish after commit).

use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::error::{check_len, n64, Result, StoreError};
use super::{Rx, Tx};
use crate::limits;

/// One storage site, with RDS's worksite field names on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Site {
    pub site_id: String,
    #[serde(default)]
    pub site_name: String,
    #[serde(default)]
    pub group_name: String,
    #[serde(default)]
    pub area: String,
    /// RDS: 0 logical, 1 physical (on the map).
    #[serde(default, rename = "type")]
    pub site_type: i64,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub filled: bool,
    #[serde(default)]
    pub locked: bool,
    /// The owner of the lock (a task id, or an API caller's name); empty when unlocked.
    #[serde(default)]
    pub locked_by: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub sync_failed: bool,
    /// Comma-separated tags, as RDS keeps them.
    #[serde(default)]
    pub tags: String,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "text_or_number"
    )]
    pub row_num: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "text_or_number"
    )]
    pub col_num: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "text_or_number"
    )]
    pub level: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "text_or_number"
    )]
    pub depth: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "text_or_number"
    )]
    pub no: Option<String>,
    /// Set by the store on every write; ignored on input.
    #[serde(default)]
    pub updated_ms: i64,
}

impl Site {
    /// An unlocked, empty, enabled site with only an id and group.
    pub fn new(site_id: &str, group_name: &str) -> Site {
        Site {
            site_id: site_id.into(),
            site_name: String::new(),
            group_name: group_name.into(),
            area: String::new(),
            site_type: 0,
            content: String::new(),
            filled: false,
            locked: false,
            locked_by: String::new(),
            disabled: false,
            sync_failed: false,
            tags: String::new(),
            attributes: Map::new(),
            row_num: None,
            col_num: None,
            level: None,
            depth: None,
            no: None,
            updated_ms: 0,
        }
    }

    /// Checks ids, text lengths and the lock pair; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.site_id.trim().is_empty() {
            return Err("siteId: must not be empty".into());
        }
        let texts = [
            ("siteId", &self.site_id),
            ("siteName", &self.site_name),
            ("groupName", &self.group_name),
            ("area", &self.area),
            ("content", &self.content),
            ("lockedBy", &self.locked_by),
        ];
        for (name, text) in texts {
            if text.len() > limits::SITE_TEXT_BYTES_MAX {
                return Err(format!(
                    "{name}: longer than SITE_TEXT_BYTES_MAX ({} bytes)",
                    limits::SITE_TEXT_BYTES_MAX
                ));
            }
        }
        let layout = [
            ("rowNum", &self.row_num),
            ("colNum", &self.col_num),
            ("level", &self.level),
            ("depth", &self.depth),
            ("no", &self.no),
        ];
        for (name, text) in layout {
            if text
                .as_ref()
                .is_some_and(|t| t.len() > limits::SITE_TEXT_BYTES_MAX)
            {
                return Err(format!(
                    "{name}: longer than SITE_TEXT_BYTES_MAX ({} bytes)",
                    limits::SITE_TEXT_BYTES_MAX
                ));
            }
        }
        if self.tags.len() > limits::SITE_ATTRS_BYTES_MAX {
            return Err(format!(
                "tags: longer than SITE_ATTRS_BYTES_MAX ({} bytes)",
                limits::SITE_ATTRS_BYTES_MAX
            ));
        }
        if attrs_text(&self.attributes).len() > limits::SITE_ATTRS_BYTES_MAX {
            return Err(format!(
                "attributes: larger than SITE_ATTRS_BYTES_MAX ({} bytes)",
                limits::SITE_ATTRS_BYTES_MAX
            ));
        }
        if self.locked == self.locked_by.is_empty() {
            return Err("lockedBy: must be set exactly when locked is true".into());
        }
        Ok(())
    }
}

/// RDS keeps the layout fields (rowNum, colNum, level, depth, no) as strings; exports and
/// hand-written imports carry numbers too. Both are accepted and kept as text.
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string or a number, found {other}"
        ))),
    }
}

fn attrs_text(a: &Map<String, Value>) -> String {
    serde_json::to_string(a).unwrap_or_else(|_| "{}".into())
}

/// Who changed a site and why, for the change log.
#[derive(Debug, Clone, Copy)]
pub struct SiteActor<'a> {
    /// A task id, or the API caller (`api`, `rds-api`, `startup`, ...).
    pub who: &'a str,
    /// Free text: the block name, the endpoint, the policy.
    pub why: &'a str,
}

/// The result of a lock attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// The site was free and is now locked by the caller.
    Locked,
    /// The caller already held the lock; nothing changed.
    AlreadyHeld,
    /// Another owner holds it.
    HeldBy(String),
    /// The site is disabled and cannot be locked.
    Disabled,
    /// The site's fill state could not be synchronised with the core (`syncFailed`); it cannot
    /// be locked until that is cleared.
    SyncFailed,
}

/// The result of an unlock attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlockOutcome {
    Unlocked,
    /// It was not locked; nothing changed.
    NotLocked,
    /// Locked by someone other than the named owner; nothing changed.
    HeldBy(String),
}

/// Filters for listing sites (all optional; combined with AND).
#[derive(Debug, Clone, Default)]
pub struct SiteFilter {
    pub site_id: Option<String>,
    pub group_name: Option<String>,
    pub area: Option<String>,
    pub filled: Option<bool>,
    pub locked: Option<bool>,
    pub locked_by: Option<String>,
    pub disabled: Option<bool>,
    pub content: Option<String>,
    pub site_type: Option<i64>,
    /// Sites ordered by id descending instead of ascending.
    pub order_desc: bool,
}

/// One row of the site change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteLogEntry {
    pub id: i64,
    pub site_id: String,
    pub action: String,
    pub who: String,
    pub detail: String,
    pub created_ms: i64,
}

/// A site locked by a run that has already ended, with what its definition's release policy
/// needs (for the startup check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldByEndedRun {
    pub site_id: String,
    pub task_id: String,
    /// The run's RDS status code (1001 stopped, 1003 finished, 1004 failed).
    pub code: i32,
    pub manual_end: bool,
    pub release_sites: bool,
    pub release_always: bool,
}

pub(super) const SITE_COLUMNS: &str = "site_id, site_name, group_name, area, type, content, \
     filled, locked, locked_by, disabled, sync_failed, tags, attributes, row_num, col_num, level, \
     depth, no, updated_ms";

pub(super) fn site_from_row(r: &Row<'_>) -> rusqlite::Result<Site> {
    let attrs: String = r.get(12)?;
    Ok(Site {
        site_id: r.get(0)?,
        site_name: r.get(1)?,
        group_name: r.get(2)?,
        area: r.get(3)?,
        site_type: r.get(4)?,
        content: r.get(5)?,
        filled: r.get(6)?,
        locked: r.get(7)?,
        locked_by: r.get(8)?,
        disabled: r.get(9)?,
        sync_failed: r.get(10)?,
        tags: r.get(11)?,
        attributes: serde_json::from_str(&attrs).unwrap_or_default(),
        row_num: r.get(13)?,
        col_num: r.get(14)?,
        level: r.get(15)?,
        depth: r.get(16)?,
        no: r.get(17)?,
        updated_ms: r.get(18)?,
    })
}

impl Tx<'_> {
    /// Appends one change-log row and trims the log to `SITE_LOG_ROWS_MAX` (oldest first; the
    /// new row is never trimmed).
    pub(super) fn site_log(
        &mut self,
        site_id: &str,
        action: &str,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO site_log (site_id, action, who, detail, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![site_id, action, by.who, by.why, now_ms])?;
        let newest = self.conn.last_insert_rowid();
        self.conn
            .prepare_cached("DELETE FROM site_log WHERE id <= ?1")?
            .execute([newest - n64(limits::SITE_LOG_ROWS_MAX)])?;
        let state = self.site_get(site_id)?;
        let mut payload = json!({"siteId": site_id, "action": action, "who": by.who,
            "why": by.why, "deleted": state.is_none()});
        if let Some(site) = state {
            payload["groupName"] = json!(site.group_name);
            payload["filled"] = json!(site.filled);
            payload["content"] = json!(site.content);
            payload["locked"] = json!(site.locked);
            payload["lockedBy"] = json!(site.locked_by);
            payload["disabled"] = json!(site.disabled);
        }
        let event = self.outbox_append("site", None, &payload.to_string(), now_ms)?;
        self.keep_site_event(site_id, event);
        Ok(())
    }

    /// Creates `site`, or replaces the fields of an existing one; returns true when created. An
    /// existing site's lock (`locked`, `lockedBy`) is kept: locks change only through
    /// [`Tx::site_lock`] and [`Tx::site_unlock`], so an edit can never steal or drop one. A new
    /// site at `SITES_MAX` → limit error. Invalid fields → conflict error naming the field.
    pub fn site_put(&mut self, site: &Site, by: SiteActor<'_>, now_ms: i64) -> Result<bool> {
        site.validate().map_err(StoreError::Conflict)?;
        let existed = self.site_get(&site.site_id)?.is_some();
        if !existed && self.counter("site")? >= n64(limits::SITES_MAX) {
            return Err(StoreError::Limit {
                name: "SITES_MAX",
                value: limits::SITES_MAX as u64,
            });
        }
        self.conn
            .prepare_cached(&format!(
                // An upsert, not INSERT OR REPLACE: REPLACE's implicit delete skips the
                // count triggers.
                "INSERT INTO site ({SITE_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
                 ?18, ?19) ON CONFLICT (site_id) DO UPDATE SET site_name = excluded.site_name, \
                 group_name = excluded.group_name, area = excluded.area, type = excluded.type, \
                 content = excluded.content, filled = excluded.filled, \
                 disabled = excluded.disabled, sync_failed = excluded.sync_failed, \
                 tags = excluded.tags, attributes = excluded.attributes, \
                 row_num = excluded.row_num, col_num = excluded.col_num, level = excluded.level, \
                 depth = excluded.depth, no = excluded.no, updated_ms = excluded.updated_ms"
            ))?
            .execute(params![
                site.site_id,
                site.site_name,
                site.group_name,
                site.area,
                site.site_type,
                site.content,
                site.filled,
                site.locked,
                site.locked_by,
                site.disabled,
                site.sync_failed,
                site.tags,
                attrs_text(&site.attributes),
                site.row_num,
                site.col_num,
                site.level,
                site.depth,
                site.no,
                now_ms,
            ])?;
        let action = if existed { "update" } else { "create" };
        self.site_log(&site.site_id, action, by, now_ms)?;
        Ok(!existed)
    }

    /// Deletes a site. A locked site is refused (conflict) so no lock silently disappears.
    pub fn site_delete(&mut self, site_id: &str, by: SiteActor<'_>, now_ms: i64) -> Result<()> {
        let site = self.require_site(site_id)?;
        if site.locked {
            return Err(StoreError::Conflict(format!(
                "site {site_id} is locked by {}; unlock it first",
                site.locked_by
            )));
        }
        self.conn
            .prepare_cached("DELETE FROM site WHERE site_id = ?1")?
            .execute([site_id])?;
        self.site_log(site_id, "delete", by, now_ms)
    }

    /// Compare-and-set lock: takes the site only if it is unlocked, enabled and not sync-failed
    /// (RDS's try-lock).
    pub fn site_lock(
        &mut self,
        site_id: &str,
        owner: &str,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<LockOutcome> {
        check_len(
            owner.len(),
            "SITE_TEXT_BYTES_MAX",
            limits::SITE_TEXT_BYTES_MAX,
        )?;
        if owner.is_empty() {
            return Err(StoreError::Conflict("lock owner must not be empty".into()));
        }
        let n = self
            .conn
            .prepare_cached(
                "UPDATE site SET locked = 1, locked_by = ?2, updated_ms = ?3 \
                 WHERE site_id = ?1 AND locked = 0 AND disabled = 0 AND sync_failed = 0",
            )?
            .execute(params![site_id, owner, now_ms])?;
        if n == 1 {
            self.site_log(site_id, "lock", by, now_ms)?;
            return Ok(LockOutcome::Locked);
        }
        let site = self.require_site(site_id)?;
        Ok(if site.locked && site.locked_by == owner {
            LockOutcome::AlreadyHeld
        } else if site.locked {
            LockOutcome::HeldBy(site.locked_by)
        } else if site.disabled {
            LockOutcome::Disabled
        } else {
            LockOutcome::SyncFailed
        })
    }

    /// Compare-and-set unlock: with `owner`, only that owner's lock is released; without, any
    /// lock (an operator's forced release).
    pub fn site_unlock(
        &mut self,
        site_id: &str,
        owner: Option<&str>,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<UnlockOutcome> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE site SET locked = 0, locked_by = '', updated_ms = ?3 \
                 WHERE site_id = ?1 AND locked = 1 AND (?2 IS NULL OR locked_by = ?2)",
            )?
            .execute(params![site_id, owner, now_ms])?;
        if n == 1 {
            self.site_log(site_id, "unlock", by, now_ms)?;
            return Ok(UnlockOutcome::Unlocked);
        }
        let site = self.require_site(site_id)?;
        Ok(if site.locked {
            UnlockOutcome::HeldBy(site.locked_by)
        } else {
            UnlockOutcome::NotLocked
        })
    }

    /// Releases every lock `owner` holds; returns the released site ids (sorted).
    pub fn site_unlock_owned(
        &mut self,
        owner: &str,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<Vec<String>> {
        let ids = self.sites_locked_by(owner)?;
        for id in &ids {
            self.site_unlock(id, Some(owner), by, now_ms)?;
        }
        Ok(ids)
    }

    /// Sets filled (true) or empty (false); `content` replaces the content when given, and an
    /// emptied site's content is cleared. Returns whether anything changed.
    pub fn site_set_filled(
        &mut self,
        site_id: &str,
        filled: bool,
        content: Option<&str>,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<bool> {
        let site = self.require_site(site_id)?;
        let content = match (filled, content) {
            (_, Some(c)) => c.to_string(),
            (true, None) => site.content.clone(),
            (false, None) => String::new(),
        };
        check_len(
            content.len(),
            "SITE_TEXT_BYTES_MAX",
            limits::SITE_TEXT_BYTES_MAX,
        )?;
        if site.filled == filled && site.content == content {
            return Ok(false);
        }
        self.conn
            .prepare_cached(
                "UPDATE site SET filled = ?2, content = ?3, updated_ms = ?4 WHERE site_id = ?1",
            )?
            .execute(params![site_id, filled, content, now_ms])?;
        let action = if filled { "fill" } else { "empty" };
        self.site_log(site_id, action, by, now_ms)?;
        Ok(true)
    }

    /// Sets `disabled` and/or `syncFailed` (None leaves a flag as it is); whether anything
    /// changed. Logged as `enable`/`disable`/`sync-ok`/`sync-failed`.
    pub fn site_set_flags(
        &mut self,
        site_id: &str,
        disabled: Option<bool>,
        sync_failed: Option<bool>,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<bool> {
        let site = self.require_site(site_id)?;
        let disabled = disabled.unwrap_or(site.disabled);
        let sync_failed = sync_failed.unwrap_or(site.sync_failed);
        if (disabled, sync_failed) == (site.disabled, site.sync_failed) {
            return Ok(false);
        }
        self.conn
            .prepare_cached(
                "UPDATE site SET disabled = ?2, sync_failed = ?3, updated_ms = ?4 \
                 WHERE site_id = ?1",
            )?
            .execute(params![site_id, disabled, sync_failed, now_ms])?;
        let action = match (disabled != site.disabled, disabled, sync_failed) {
            (true, true, _) => "disable",
            (true, false, _) => "enable",
            (false, _, true) => "sync-failed",
            (false, _, false) => "sync-ok",
        };
        self.site_log(site_id, action, by, now_ms)?;
        Ok(true)
    }

    fn require_site(&self, site_id: &str) -> Result<Site> {
        self.site_get(site_id)?
            .ok_or_else(|| StoreError::NotFound(format!("site {site_id}")))
    }
}

impl Rx<'_> {
    pub fn site_get(&self, site_id: &str) -> Result<Option<Site>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {SITE_COLUMNS} FROM site WHERE site_id = ?1"
            ))?
            .query_row([site_id], site_from_row)
            .optional()?)
    }

    /// Sites matching `f`, ordered by id, `offset` skipped, at most `limit`.
    pub fn site_list(&self, f: &SiteFilter, offset: usize, limit: usize) -> Result<Vec<Site>> {
        let order = if f.order_desc { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {SITE_COLUMNS} FROM site WHERE \
             (?1 IS NULL OR site_id = ?1) AND (?2 IS NULL OR group_name = ?2) AND \
             (?3 IS NULL OR area = ?3) AND (?4 IS NULL OR filled = ?4) AND \
             (?5 IS NULL OR locked = ?5) AND (?6 IS NULL OR locked_by = ?6) AND \
             (?7 IS NULL OR disabled = ?7) AND (?8 IS NULL OR content = ?8) AND \
             (?9 IS NULL OR type = ?9) \
             ORDER BY site_id {order} LIMIT ?10 OFFSET ?11"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                f.site_id,
                f.group_name,
                f.area,
                f.filled,
                f.locked,
                f.locked_by,
                f.disabled,
                f.content,
                f.site_type,
                n64(limit),
                n64(offset)
            ],
            site_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of sites (a counter lookup).
    pub fn site_count(&self) -> Result<i64> {
        self.counter("site")
    }

    /// Sites locked by runs that have ended (finished, failed, stopped), by site id, at most
    /// `limit`.
    pub fn sites_held_by_ended_runs(&self, limit: usize) -> Result<Vec<HeldByEndedRun>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.site_id, t.id, t.code, t.manual_end, d.release_sites, d.release_always \
             FROM site s JOIN task_record t ON t.id = s.locked_by \
             JOIN task_def d ON d.id = t.def_id \
             WHERE s.locked = 1 AND t.status IN ('finished', 'failed', 'stopped') \
             ORDER BY s.site_id LIMIT ?1",
        )?;
        let rows = stmt.query_map([n64(limit)], |r| {
            Ok(HeldByEndedRun {
                site_id: r.get(0)?,
                task_id: r.get(1)?,
                code: r.get(2)?,
                manual_end: r.get(3)?,
                release_sites: r.get(4)?,
                release_always: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Ids of the sites `owner` holds locked, sorted.
    pub fn sites_locked_by(&self, owner: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT site_id FROM site WHERE locked = 1 AND locked_by = ?1 ORDER BY site_id",
        )?;
        let rows = stmt.query_map([owner], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest `limit` change-log rows of one site (or of all sites), newest first.
    pub fn site_log_entries(
        &self,
        site_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SiteLogEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, site_id, action, who, detail, created_ms FROM site_log \
             WHERE ?1 IS NULL OR site_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![site_id, n64(limit)], |r| {
            Ok(SiteLogEntry {
                id: r.get(0)?,
                site_id: r.get(1)?,
                action: r.get(2)?,
                who: r.get(3)?,
                detail: r.get(4)?,
                created_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
