//! What site blocks ask of the site store: [`SiteOp`] (built by a block from its parameters,
//! carried by the engine as a wait, executed by the store in one transaction) and
//! [`SiteReply`] (fed back to the block). Pure data, shared by `blocks`, `engine`, `store` and
//! `scheduler`.
//!
//! An op that cannot be answered yet (`GetIdleSiteBp` with no match, a lock held by another
//! owner) becomes a persisted waiter; [`SiteOp::touches`] says which site changes may let it
//! through, so a change wakes only the waiters it concerns (a superset: a false positive costs
//! one query, never a missed wake-up).

use crate::store::Site;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The filters of `GetIdleSiteBp` and `QueryIdleSiteBp` (spec §3.6 "Which site a query
/// returns"): every given filter must match exactly; the first site by `siteId` (code point
/// order, `order_desc` reverses it) is taken.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdleFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filled: Option<bool>,
    /// `type`: true = physical (1), false = logical (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical: Option<bool>,
    /// The lock state to match (RDS default false: only unlocked sites).
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub order_desc: bool,
}

impl IdleFilter {
    /// Whether `site` passes every given filter.
    pub fn matches(&self, site: &Site) -> bool {
        self.site_id.as_ref().is_none_or(|v| *v == site.site_id)
            && self
                .group_name
                .as_ref()
                .is_none_or(|v| *v == site.group_name)
            && self.content.as_ref().is_none_or(|v| *v == site.content)
            && self.filled.is_none_or(|v| v == site.filled)
            && self.physical.is_none_or(|v| i64::from(v) == site.site_type)
            && self.locked == site.locked
    }

    /// RDS's fair-queue key (spec §3.6): `"<siteId> content:<content or null> filled<1|0|null>"`
    /// with a site id, else `"<groupName> content:<content or ''> filled<…>"`.
    pub fn fair_key(&self) -> String {
        let filled = match self.filled {
            Some(true) => "1",
            Some(false) => "0",
            None => "null",
        };
        match &self.site_id {
            Some(id) => format!(
                "{id} content:{} filled{filled}",
                self.content.as_deref().unwrap_or("null")
            ),
            None => format!(
                "{} content:{} filled{filled}",
                self.group_name.as_deref().unwrap_or(""),
                self.content.as_deref().unwrap_or("")
            ),
        }
    }
}

/// One site operation of a block. The owner of a lock taken by `GetIdle`/`Crowded` is the run
/// that asks (the store's `SiteActor::who`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum SiteOp {
    /// `GetIdleSiteBp`: the first matching site, locked for the run when `lock`; waits (as a
    /// persisted waiter) while none matches. `fair`: RDS's head-of-line rule per
    /// [`IdleFilter::fair_key`].
    #[serde(rename_all = "camelCase")]
    GetIdle {
        filter: IdleFilter,
        lock: bool,
        fair: bool,
    },
    /// `QueryIdleSiteBp`: one query, no lock, no wait.
    #[serde(rename_all = "camelCase")]
    Query { filter: IdleFilter },
    /// `GetIdleCrowdedSiteBp`: the lane algorithm of spec §3.7 over the physical sites of
    /// `groups` (all groups when empty). `wait`: wait for a change instead of giving up;
    /// `attempts_max` (0 = unlimited) attempts in all, then the answer is `""`.
    #[serde(rename_all = "camelCase")]
    Crowded {
        groups: Vec<String>,
        filled: bool,
        content: Option<String>,
        lock: bool,
        wait: bool,
        attempts_max: u64,
    },
    /// `SetSiteLockedBp`: try-lock for `owner`. `wait`: while the site cannot be locked
    /// (another owner, disabled, sync-failed), wait for a change to it instead of refusing.
    #[serde(rename_all = "camelCase")]
    Lock {
        site_id: String,
        owner: String,
        fair: bool,
        wait: bool,
    },
    /// `SetSiteUnlockedBp`: unlock if `owner` holds it; waits while another owner does; an
    /// unlocked site is answered with a note (§8 Q10).
    #[serde(rename_all = "camelCase")]
    Unlock { site_id: String, owner: String },
    /// `SetSiteFilledBp` (filled, content unchanged), `SetSiteEmptyBp` (empty, content ""),
    /// `SetSiteContentBp` (filled with `content`).
    #[serde(rename_all = "camelCase")]
    Fill {
        site_id: String,
        filled: bool,
        content: Option<String>,
    },
    /// `SetSiteTagsBp`.
    #[serde(rename_all = "camelCase")]
    Tags { site_id: String, tags: String },
    /// `SetSiteAttrBp`: upsert one extension attribute.
    #[serde(rename_all = "camelCase")]
    SetAttr {
        site_id: String,
        name: String,
        value: String,
    },
    /// `GetSiteAttrBp`.
    #[serde(rename_all = "camelCase")]
    GetAttr { site_id: String, name: String },
    /// `BatchSettingSiteBp`: `filled` (and content) on the sites of `site_ids` and `groups`
    /// (every site when both are empty), of the given type only.
    #[serde(rename_all = "camelCase")]
    Batch {
        site_ids: Vec<String>,
        groups: Vec<String>,
        filled: bool,
        content: Option<String>,
        physical: Option<bool>,
    },
    /// `GetLockedSitesByTaskRecordIdBp`.
    #[serde(rename_all = "camelCase")]
    LockedBy { owner: String },
}

impl SiteOp {
    /// Whether the op changes sites (its answer is kept with the request until the run has
    /// taken it, so a restart never applies it twice). Reads are simply asked again.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            SiteOp::Query { .. } | SiteOp::GetAttr { .. } | SiteOp::LockedBy { .. }
        )
    }

    /// Whether the op may wait.
    pub fn may_wait(&self) -> bool {
        match self {
            SiteOp::GetIdle { .. } | SiteOp::Unlock { .. } => true,
            SiteOp::Crowded { wait, .. } | SiteOp::Lock { wait, .. } => *wait,
            _ => false,
        }
    }

    /// The fair-queue key, for fair ops: only the first waiter of a key (by priority, then
    /// arrival) may be served.
    pub fn fair_key(&self) -> Option<String> {
        match self {
            SiteOp::GetIdle {
                filter,
                lock: true,
                fair: true,
            } => Some(filter.fair_key()),
            SiteOp::Lock {
                site_id,
                fair: true,
                ..
            } => Some(site_id.clone()),
            _ => None,
        }
    }

    /// Whether a change that left `site` in this state may let a waiting op through. A
    /// superset of the sites that can: a false positive costs one query.
    pub fn touches(&self, site: &Site) -> bool {
        match self {
            SiteOp::GetIdle { filter, lock, .. } => {
                filter.matches(site) && (!lock || (!site.disabled && !site.sync_failed))
            }
            SiteOp::Crowded { groups, .. } => {
                site.site_type == 1 && (groups.is_empty() || groups.contains(&site.group_name))
            }
            SiteOp::Lock { site_id, .. } | SiteOp::Unlock { site_id, .. } => {
                *site_id == site.site_id
            }
            _ => false,
        }
    }
}

/// The answer to a [`SiteOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "camelCase")]
pub enum SiteReply {
    /// `GetIdle`, `Crowded`: the site id (`""`: a crowded search gave up).
    Found(String),
    /// `Query`: the site as a map, or none.
    Site(Option<Value>),
    /// A change was made (or there was nothing to change).
    Done,
    /// Done, with a warning for the task log (an unlock of an unlocked site).
    Note(String),
    /// `Lock` without waiting: not locked, and why.
    Refused(String),
    /// `GetAttr`: the value, none when unset.
    Attr(Option<String>),
    /// `Batch`: sites changed.
    Count(u64),
    /// `LockedBy`: site ids, sorted.
    Ids(Vec<String>),
    /// The op cannot be done (unknown site, a limit): the block fails with this text.
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: &str, group: &str) -> Site {
        Site::new(id, group)
    }

    #[test]
    fn filter_matches_each_given_field() {
        let mut s = site("A-01", "A");
        s.filled = true;
        s.content = "pallet".into();
        s.site_type = 1;
        let mut f = IdleFilter {
            group_name: Some("A".into()),
            filled: Some(true),
            content: Some("pallet".into()),
            physical: Some(true),
            ..IdleFilter::default()
        };
        assert!(f.matches(&s));
        f.physical = Some(false);
        assert!(!f.matches(&s));
        f.physical = None;
        s.locked = true;
        assert!(!f.matches(&s), "locked defaults to false");
        f.locked = true;
        assert!(f.matches(&s));
        f.site_id = Some("A-02".into());
        assert!(!f.matches(&s));
    }

    #[test]
    fn fair_keys_follow_rds() {
        let f = IdleFilter {
            group_name: Some("A".into()),
            filled: Some(true),
            ..IdleFilter::default()
        };
        assert_eq!(f.fair_key(), "A content: filled1");
        let f = IdleFilter {
            site_id: Some("S1".into()),
            ..IdleFilter::default()
        };
        assert_eq!(f.fair_key(), "S1 content:null fillednull");
        let op = SiteOp::GetIdle {
            filter: f.clone(),
            lock: false,
            fair: true,
        };
        assert_eq!(op.fair_key(), None, "fair needs lock");
    }

    #[test]
    fn touches_is_a_superset_for_locking_waiters() {
        let op = SiteOp::GetIdle {
            filter: IdleFilter {
                group_name: Some("A".into()),
                ..IdleFilter::default()
            },
            lock: true,
            fair: false,
        };
        let mut s = site("A-01", "A");
        assert!(op.touches(&s));
        s.disabled = true;
        assert!(!op.touches(&s));
        assert!(!op.touches(&site("B-01", "B")));
        let lock = SiteOp::Lock {
            site_id: "A-01".into(),
            owner: "t".into(),
            fair: false,
            wait: true,
        };
        assert!(lock.touches(&s) && lock.may_wait());
        assert!(!SiteOp::LockedBy { owner: "t".into() }.writes());
    }

    #[test]
    fn ops_and_replies_round_trip_as_json() {
        let op = SiteOp::Crowded {
            groups: vec!["L1".into()],
            filled: false,
            content: None,
            lock: true,
            wait: true,
            attempts_max: 3,
        };
        let text = serde_json::to_string(&op).unwrap();
        assert!(text.contains("\"op\":\"crowded\""), "{text}");
        assert_eq!(serde_json::from_str::<SiteOp>(&text).unwrap(), op);
        let reply = SiteReply::Ids(vec!["a".into()]);
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<SiteReply>(&text).unwrap(), reply);
    }
}
