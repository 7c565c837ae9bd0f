//! The store side of site blocks: [`Tx::site_exec`] runs one [`SiteOp`] inside the writer's
//! transaction (spec §3.6, §3.7) and answers with a [`SiteReply`], or with "wait" for an op
//! that cannot be answered yet. Bad input (an unknown site, a text over its limit, a crowded
//! site without a lane position) is answered with `SiteReply::Failed`, never an error.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use super::error::{n64, Result, StoreError};
use super::sites::{site_from_row, LockOutcome, Site, SiteActor, UnlockOutcome, SITE_COLUMNS};
use super::{Rx, Tx};
use crate::limits;
use crate::sites::{IdleFilter, SiteOp, SiteReply};

impl Tx<'_> {
    /// Executes `op` for `by.who` (the run id: owner of locks taken by GetIdle/Crowded) in this
    /// transaction. Ok(None): the op must wait (only ops with `op.may_wait()`); Ok(Some(reply))
    /// otherwise. Unknown sites → Ok(Some(SiteReply::Failed("siteNot: site <id> does not
    /// exist"))).
    pub fn site_exec(
        &mut self,
        op: &SiteOp,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<Option<SiteReply>> {
        match op {
            SiteOp::GetIdle { filter, lock, .. } => self.op_get_idle(filter, *lock, by, now_ms),
            SiteOp::Query { filter } => self.op_query(filter).map(Some),
            SiteOp::Crowded {
                groups,
                filled,
                content,
                lock,
                wait,
                ..
            } => {
                let want = Crowded {
                    groups,
                    filled: *filled,
                    content: content.as_deref(),
                };
                self.op_crowded(&want, *lock, *wait, by, now_ms)
            }
            SiteOp::Lock {
                site_id,
                owner,
                wait,
                ..
            } => self.op_lock(site_id, owner, *wait, by, now_ms),
            SiteOp::Unlock { site_id, owner } => self.op_unlock(site_id, owner, by, now_ms),
            SiteOp::Fill {
                site_id,
                filled,
                content,
            } => self
                .op_fill(site_id, *filled, content.as_deref(), by, now_ms)
                .map(Some),
            SiteOp::Tags { site_id, tags } => self.op_tags(site_id, tags, by, now_ms).map(Some),
            SiteOp::SetAttr {
                site_id,
                name,
                value,
            } => self.op_set_attr(site_id, name, value, by, now_ms).map(Some),
            SiteOp::GetAttr { site_id, name } => self.op_get_attr(site_id, name).map(Some),
            SiteOp::Batch {
                site_ids,
                groups,
                filled,
                content,
                physical,
            } => {
                let targets = BatchTargets {
                    site_ids,
                    groups,
                    physical: *physical,
                };
                self.op_batch(&targets, *filled, content.as_deref(), by, now_ms)
                    .map(Some)
            }
            SiteOp::LockedBy { owner } => Ok(Some(SiteReply::Ids(self.sites_locked_by(owner)?))),
        }
    }

    /// `GetIdleSiteBp`: the first match, locked when asked; a found site this run already
    /// holds counts as acquired (spec §3.7 "Engine:"). None: wait.
    fn op_get_idle(
        &mut self,
        filter: &IdleFilter,
        lock: bool,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<Option<SiteReply>> {
        // A named site this run already holds counts as acquired (spec §8 Q10: RDS would spin
        // on it). Only a named one: a run may lock two sites of one group, and a restart gets
        // its kept answer from the wait queue (`site_request`), not from a second search.
        if lock && filter.site_id.is_some() {
            let held = IdleFilter {
                locked: true,
                ..filter.clone()
            };
            if let Some(site) = self.site_find_first(&held, false, Some(by.who))? {
                return Ok(Some(SiteReply::Found(site.site_id)));
            }
        }
        let Some(site) = self.site_find_idle(filter, lock)? else {
            return Ok(None);
        };
        if !lock {
            return Ok(Some(SiteReply::Found(site.site_id)));
        }
        Ok(self
            .lock_for_run(&site.site_id, by, now_ms)?
            .then_some(SiteReply::Found(site.site_id)))
    }

    /// Try-lock for `by.who`: true when it now holds the site.
    fn lock_for_run(&mut self, site_id: &str, by: SiteActor<'_>, now_ms: i64) -> Result<bool> {
        let outcome = self.site_lock(site_id, by.who, by, now_ms)?;
        Ok(matches!(
            outcome,
            LockOutcome::Locked | LockOutcome::AlreadyHeld
        ))
    }

    /// `GetIdleCrowdedSiteBp`: one attempt of the lane algorithm (spec §3.7).
    fn op_crowded(
        &mut self,
        want: &Crowded<'_>,
        lock: bool,
        wait: bool,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<Option<SiteReply>> {
        let lanes = match self.site_crowded_lanes(want.groups)? {
            Ok(lanes) => lanes,
            Err(failed) => return Ok(Some(failed)),
        };
        let chosen = match want.choose(&lanes, by.who) {
            Some(id) if !lock || self.lock_for_run(id, by, now_ms)? => Some(id.to_string()),
            _ => None,
        };
        Ok(match chosen {
            Some(id) => Some(SiteReply::Found(id)),
            None if wait => None,
            None => Some(SiteReply::Found(String::new())),
        })
    }

    /// `SetSiteLockedBp`: try-lock for `owner`; when it cannot be locked, wait or refuse.
    fn op_lock(
        &mut self,
        site_id: &str,
        owner: &str,
        wait: bool,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<Option<SiteReply>> {
        if self.site_get(site_id)?.is_none() {
            return Ok(Some(site_not(site_id)));
        }
        if owner.is_empty() {
            return Ok(Some(SiteReply::Failed(
                "lockedId: must not be empty".into(),
            )));
        }
        if let Some(failed) = too_long("lockedId", owner, TEXT_MAX) {
            return Ok(Some(failed));
        }
        let reason = match self.site_lock(site_id, owner, by, now_ms)? {
            LockOutcome::Locked | LockOutcome::AlreadyHeld => return Ok(Some(SiteReply::Done)),
            LockOutcome::HeldBy(other) => format!("held by {other}"),
            LockOutcome::Disabled => "disabled".into(),
            LockOutcome::SyncFailed => "sync failed".into(),
        };
        Ok((!wait).then_some(SiteReply::Refused(reason)))
    }

    /// `SetSiteUnlockedBp`: unlock if `owner` holds it; an unlocked site is a note (§8 Q10);
    /// another owner's lock: wait.
    fn op_unlock(
        &mut self,
        site_id: &str,
        owner: &str,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<Option<SiteReply>> {
        if self.site_get(site_id)?.is_none() {
            return Ok(Some(site_not(site_id)));
        }
        Ok(match self.site_unlock(site_id, Some(owner), by, now_ms)? {
            UnlockOutcome::Unlocked => Some(SiteReply::Done),
            UnlockOutcome::NotLocked => {
                Some(SiteReply::Note(format!("site {site_id} was not locked")))
            }
            UnlockOutcome::HeldBy(_) => None,
        })
    }

    /// `SetSiteFilledBp`/`SetSiteEmptyBp`/`SetSiteContentBp` (see [`Tx::site_set_filled`]).
    fn op_fill(
        &mut self,
        site_id: &str,
        filled: bool,
        content: Option<&str>,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<SiteReply> {
        if self.site_get(site_id)?.is_none() {
            return Ok(site_not(site_id));
        }
        if let Some(failed) = content.and_then(content_too_long) {
            return Ok(failed);
        }
        self.site_set_filled(site_id, filled, content, by, now_ms)?;
        Ok(SiteReply::Done)
    }

    /// `SetSiteTagsBp`. Tags share the attributes' limit, as in [`Site::validate`].
    fn op_tags(
        &mut self,
        site_id: &str,
        tags: &str,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<SiteReply> {
        let Some(site) = self.site_get(site_id)? else {
            return Ok(site_not(site_id));
        };
        if let Some(failed) = too_long("tags", tags, ATTRS_MAX) {
            return Ok(failed);
        }
        if site.tags != tags {
            self.site_set_column(site_id, "tags", tags, now_ms)?;
            self.site_log(site_id, "tags", by, now_ms)?;
        }
        Ok(SiteReply::Done)
    }

    /// `SetSiteAttrBp`: upserts one attribute (a string) within `SITE_ATTRS_BYTES_MAX`.
    fn op_set_attr(
        &mut self,
        site_id: &str,
        name: &str,
        value: &str,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<SiteReply> {
        let Some(mut site) = self.site_get(site_id)? else {
            return Ok(site_not(site_id));
        };
        let new = Value::String(value.into());
        if site.attributes.get(name) == Some(&new) {
            return Ok(SiteReply::Done);
        }
        site.attributes.insert(name.into(), new);
        let text = serde_json::to_string(&site.attributes)
            .map_err(|e| StoreError::Conflict(format!("site {site_id} attributes: {e}")))?;
        if text.len() > limits::SITE_ATTRS_BYTES_MAX {
            return Ok(SiteReply::Failed(format!(
                "attributes: larger than SITE_ATTRS_BYTES_MAX ({} bytes)",
                limits::SITE_ATTRS_BYTES_MAX
            )));
        }
        self.site_set_column(site_id, "attributes", &text, now_ms)?;
        self.site_log(site_id, "attr", by, now_ms)?;
        Ok(SiteReply::Done)
    }

    /// Sets one text column (`tags` or `attributes`, never caller input) and `updated_ms`.
    fn site_set_column(
        &mut self,
        site_id: &str,
        column: &str,
        text: &str,
        now_ms: i64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(&format!(
                "UPDATE site SET {column} = ?2, updated_ms = ?3 WHERE site_id = ?1"
            ))?
            .execute(params![site_id, text, now_ms])?;
        Ok(())
    }

    /// `BatchSettingSiteBp`: sets `filled` (and content, see [`Tx::site_set_filled`]) on every
    /// target, each change logged; answers how many changed. More than `SITE_BATCH_MAX`
    /// targets: nothing changes.
    fn op_batch(
        &mut self,
        targets: &BatchTargets<'_>,
        filled: bool,
        content: Option<&str>,
        by: SiteActor<'_>,
        now_ms: i64,
    ) -> Result<SiteReply> {
        // An emptied site's content is cleared whatever `content` says.
        let content = content.filter(|_| filled);
        if let Some(failed) = content.and_then(content_too_long) {
            return Ok(failed);
        }
        let ids = self.site_batch_ids(targets)?;
        if ids.len() > limits::SITE_BATCH_MAX {
            return Ok(SiteReply::Failed(format!(
                "more than SITE_BATCH_MAX ({}) sites to change; nothing was changed",
                limits::SITE_BATCH_MAX
            )));
        }
        let mut changed = 0;
        for id in &ids {
            if self.site_set_filled(id, filled, content, by, now_ms)? {
                changed += 1;
            }
        }
        Ok(SiteReply::Count(changed))
    }
}

impl Rx<'_> {
    /// First site matching an IdleFilter (spec §3.6): every given field exact; `locked` compared
    /// always; when `exclude_unlockable` also `disabled = 0 AND sync_failed = 0`; ORDER BY
    /// site_id ASC (DESC with order_desc), which is Unicode code point order; LIMIT 1.
    pub fn site_find_idle(&self, f: &IdleFilter, exclude_unlockable: bool) -> Result<Option<Site>> {
        self.site_find_first(f, exclude_unlockable, None)
    }

    /// [`Rx::site_find_idle`], also requiring `locked_by` when given.
    fn site_find_first(
        &self,
        f: &IdleFilter,
        exclude_unlockable: bool,
        locked_by: Option<&str>,
    ) -> Result<Option<Site>> {
        // `site_id` has SQLite's default BINARY collation: memcmp of UTF-8, which is Unicode
        // code point order (spec §3.6 "Recommended").
        let order = if f.order_desc { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {SITE_COLUMNS} FROM site WHERE \
             (?1 IS NULL OR site_id = ?1) AND (?2 IS NULL OR group_name = ?2) AND \
             (?3 IS NULL OR content = ?3) AND (?4 IS NULL OR filled = ?4) AND \
             (?5 IS NULL OR type = ?5) AND locked = ?6 AND (?7 IS NULL OR locked_by = ?7) AND \
             (?8 = 0 OR (disabled = 0 AND sync_failed = 0)) \
             ORDER BY site_id {order} LIMIT 1"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(
                params![
                    f.site_id,
                    f.group_name,
                    f.content,
                    f.filled,
                    f.physical.map(i64::from),
                    f.locked,
                    locked_by,
                    exclude_unlockable
                ],
                site_from_row,
            )
            .optional()?)
    }

    /// `QueryIdleSiteBp`: the first match as a map, or none.
    fn op_query(&self, filter: &IdleFilter) -> Result<SiteReply> {
        let Some(site) = self.site_find_idle(filter, false)? else {
            return Ok(SiteReply::Site(None));
        };
        let map = serde_json::to_value(&site)
            .map_err(|e| StoreError::Conflict(format!("site {}: {e}", site.site_id)))?;
        Ok(SiteReply::Site(Some(map)))
    }

    /// `GetSiteAttrBp`: a string attribute as is, another value as its JSON text; unset or
    /// null → none.
    fn op_get_attr(&self, site_id: &str, name: &str) -> Result<SiteReply> {
        let Some(site) = self.site_get(site_id)? else {
            return Ok(site_not(site_id));
        };
        Ok(SiteReply::Attr(match site.attributes.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        }))
    }

    /// The physical sites of `groups` (every group when empty) as lanes, in the order the
    /// algorithm visits them, each sorted by position; one query. A site id without a lane
    /// position → `Err(Failed)`.
    fn site_crowded_lanes(&self, groups: &[String]) -> Result<Result<Vec<Lane>, SiteReply>> {
        let mut by_group: BTreeMap<String, Vec<Slot>> = BTreeMap::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT site_id, group_name, content, filled, locked_by, disabled, sync_failed \
             FROM site WHERE type = 1 AND \
             (?2 OR group_name IN (SELECT value FROM json_each(?1))) \
             ORDER BY group_name, site_id",
        )?;
        let mut rows = stmt.query(params![json_list(groups)?, groups.is_empty()])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let Some(position) = lane_position(&id) else {
                return Ok(Err(SiteReply::Failed(format!(
                    "crowdedSiteBp: site {id} does not end in _<number>"
                ))));
            };
            let slot = Slot {
                position,
                content: r.get(2)?,
                filled: r.get(3)?,
                locked_by: r.get(4)?,
                unusable: r.get::<_, bool>(5)? || r.get::<_, bool>(6)?,
                id,
            };
            by_group.entry(r.get(1)?).or_default().push(slot);
        }
        for slots in by_group.values_mut() {
            slots.sort_by(|a, b| a.position.cmp(&b.position));
        }
        // A BTreeMap of Strings iterates in code point order, like SQLite's BINARY collation.
        Ok(Ok(if groups.is_empty() {
            by_group.into_values().collect()
        } else {
            groups.iter().filter_map(|g| by_group.remove(g)).collect()
        }))
    }

    /// Ids of the batch targets, sorted, at most `SITE_BATCH_MAX + 1` (one more says "too
    /// many").
    fn site_batch_ids(&self, t: &BatchTargets<'_>) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT site_id FROM site WHERE \
             (?3 OR site_id IN (SELECT value FROM json_each(?1)) \
              OR group_name IN (SELECT value FROM json_each(?2))) \
             AND (?4 IS NULL OR type = ?4) ORDER BY site_id LIMIT ?5",
        )?;
        let all = t.site_ids.is_empty() && t.groups.is_empty();
        let rows = stmt.query_map(
            params![
                json_list(t.site_ids)?,
                json_list(t.groups)?,
                all,
                t.physical.map(i64::from),
                n64(limits::SITE_BATCH_MAX + 1)
            ],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// What a crowded search looks for.
struct Crowded<'a> {
    groups: &'a [String],
    /// true: goods to pick; false: space to put.
    filled: bool,
    content: Option<&'a str>,
}

/// The sites a batch targets.
struct BatchTargets<'a> {
    site_ids: &'a [String],
    groups: &'a [String],
    physical: Option<bool>,
}

/// One group's candidate sites, by position (stand-alone `_0` sites first).
type Lane = Vec<Slot>;

/// What the lane algorithm needs of a site.
#[derive(Debug)]
struct Slot {
    id: String,
    /// The lane position as (digits without leading zeros, count of them): compared as
    /// numbers of any length; `(0, "")` is a stand-alone site.
    position: (usize, String),
    content: String,
    filled: bool,
    /// Empty when unlocked.
    locked_by: String,
    /// Disabled or sync-failed.
    unusable: bool,
}

impl Slot {
    fn stand_alone(&self) -> bool {
        self.position.0 == 0
    }

    /// Locked by someone other than `who`.
    fn foreign(&self, who: &str) -> bool {
        !self.locked_by.is_empty() && self.locked_by != who
    }
}

impl Crowded<'_> {
    /// Steps 1 and 2 of spec §3.7 over `lanes`: the chosen site id.
    fn choose<'l>(&self, lanes: &'l [Lane], who: &str) -> Option<&'l str> {
        self.stand_alone(lanes)
            .or_else(|| lanes.iter().find_map(|lane| self.in_lane(lane, who)))
            .map(|s| s.id.as_str())
    }

    /// Step 1: with `content` given, the first free stand-alone site holding it and matching
    /// `filled`.
    fn stand_alone<'l>(&self, lanes: &'l [Lane]) -> Option<&'l Slot> {
        let content = self.content?;
        lanes.iter().flatten().find(|s| {
            s.stand_alone()
                && s.content == content
                && s.filled == self.filled
                && s.locked_by.is_empty()
                && !s.unusable
        })
    }

    /// Step 2 in one lane (its positions from the mouth; stand-alone sites are no part of it).
    fn in_lane<'l>(&self, lane: &'l [Slot], who: &str) -> Option<&'l Slot> {
        let first = lane.iter().position(|s| !s.stand_alone())?;
        let lane = &lane[first..];
        if self.filled {
            self.pick(lane, who)
        } else {
            put(lane, who)
        }
    }

    /// Pick: the first filled position if its content matches; disabled, sync-failed or
    /// foreign-locked positions block the lane.
    fn pick<'l>(&self, lane: &'l [Slot], who: &str) -> Option<&'l Slot> {
        for s in lane {
            if s.unusable || s.foreign(who) {
                return None;
            }
            if s.filled {
                return self.content.is_none_or(|c| c == s.content).then_some(s);
            }
        }
        None
    }
}

/// Put: the deepest free position reachable from the mouth.
fn put<'l>(lane: &'l [Slot], who: &str) -> Option<&'l Slot> {
    for (i, s) in lane.iter().enumerate() {
        if s.unusable || s.foreign(who) || s.filled {
            return None;
        }
        match lane.get(i + 1) {
            None => return Some(s),
            Some(next) if next.unusable || next.filled => return Some(s),
            Some(next) if next.foreign(who) => return None,
            Some(_) => {}
        }
    }
    None
}

/// The lane position of a crowded site id ending in `_<digits>`, as a number key of any
/// length (see [`Slot::position`]).
fn lane_position(site_id: &str) -> Option<(usize, String)> {
    let (_, digits) = site_id.rsplit_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = digits.trim_start_matches('0');
    Some((number.len(), number.to_string()))
}

/// A list as a JSON array text, for `json_each`.
fn json_list(items: &[String]) -> Result<String> {
    serde_json::to_string(items).map_err(|e| StoreError::Conflict(format!("list: {e}")))
}

fn site_not(site_id: &str) -> SiteReply {
    SiteReply::Failed(format!("siteNot: site {site_id} does not exist"))
}

fn content_too_long(content: &str) -> Option<SiteReply> {
    too_long("content", content, TEXT_MAX)
}

/// Failed naming the field and the limit when `text` is longer than `max` bytes.
fn too_long(field: &str, text: &str, (name, max): (&str, usize)) -> Option<SiteReply> {
    (text.len() > max)
        .then(|| SiteReply::Failed(format!("{field}: longer than {name} ({max} bytes)")))
}

const TEXT_MAX: (&str, usize) = ("SITE_TEXT_BYTES_MAX", limits::SITE_TEXT_BYTES_MAX);
const ATTRS_MAX: (&str, usize) = ("SITE_ATTRS_BYTES_MAX", limits::SITE_ATTRS_BYTES_MAX);
