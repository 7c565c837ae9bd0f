//! RDS-compatible work-site routes (spec §5.4) in RDS's `{code, msg, data}` envelope, over the
//! same compare-and-set store operations as `/api/sites` (and, later, the site blocks).
//!
//! Lists of ids are all or nothing: an unknown id answers 9024 and nothing is written (RDS's
//! behaviour there is unspecified; a partial write is the failure users fear). Locks taken here
//! use the blocks' try-lock, so a disabled, sync-failed or otherwise held site is skipped and
//! named in `data.skipped` rather than taken over.

use super::http::Body;
use super::rds::{self, Answer, Rds, ERROR, NOT_ZERO_OR_ONE};
use super::App;
use crate::limits::{API_LIST_MAX, SITE_BATCH_MAX};
use crate::store::{LockOutcome, Site, SiteActor, SiteFilter, StoreError, Tx};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

/// A site id that does not exist.
pub const SITE_NOT_FOUND: i64 = 9024;
/// A filter must be 0, 1 or null.
pub const NOT_ZERO_ONE_OR_NULL: i64 = 9023;

/// The change-log name of RDS-compatible callers.
const RDS_CALLER: &str = "rds-api";

/// A site as RDS shows it: flags as 0/1, `id` equal to `siteId`; attributes only when asked.
fn rds_site(site: &Site, with_ext: bool) -> Value {
    let flag = |b: bool| i64::from(b);
    let mut v = json!({
        "id": site.site_id, "siteId": site.site_id, "siteName": site.site_name,
        "groupName": site.group_name, "area": site.area, "type": site.site_type,
        "content": site.content, "filled": flag(site.filled), "locked": flag(site.locked),
        "lockedBy": site.locked_by, "disabled": flag(site.disabled),
        "syncFailed": flag(site.sync_failed), "tags": site.tags, "rowNum": site.row_num,
        "colNum": site.col_num, "level": site.level, "depth": site.depth, "no": site.no,
    });
    if with_ext {
        v["attrList"] = Value::Object(site.attributes.clone());
    }
    v
}

/// A 0/1 filter (`code` when it is anything else); null or absent → no filter.
fn flag_filter(body: &Value, field: &str, code: i64) -> Result<Option<bool>, Rds> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(Rds::new(code, format!("{field} must be 0, 1 or null"))),
        },
    }
}

/// `POST /api/work-sites/sites`: the sites matching every given filter, by siteId, at most
/// `API_LIST_MAX`.
pub async fn sites(app: &App, req: Request<Incoming>) -> Response<Body> {
    rds::reply("Success", sites_answer(app, req).await)
}

async fn sites_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = rds::object(app, req, ERROR).await?;
    let text = |f: &str| rds::opt_str(&body, f, ERROR);
    let filter = SiteFilter {
        site_id: text("siteId")?,
        group_name: text("groupName")?,
        area: text("area")?,
        content: text("content")?,
        locked_by: text("lockedBy")?,
        filled: flag_filter(&body, "filled", NOT_ZERO_ONE_OR_NULL)?,
        locked: flag_filter(&body, "locked", NOT_ZERO_ONE_OR_NULL)?,
        disabled: flag_filter(&body, "disabled", NOT_ZERO_ONE_OR_NULL)?,
        site_type: flag_filter(&body, "type", NOT_ZERO_ONE_OR_NULL)?.map(i64::from),
        order_desc: false,
    };
    let sync_failed = flag_filter(&body, "syncFailed", NOT_ZERO_ONE_OR_NULL)?;
    let with_ext = body.get("withExtFields").and_then(Value::as_bool) == Some(true);
    let rows = app
        .sched
        .store()
        .read(move |rx| rx.site_list(&filter, 0, API_LIST_MAX))
        .await
        .map_err(Rds::store)?;
    Ok(rows
        .iter()
        .filter(|s| sync_failed.is_none_or(|f| s.sync_failed == f))
        .map(|s| rds_site(s, with_ext))
        .collect())
}

/// A list of site ids: 1 to `SITE_BATCH_MAX` non-empty strings.
fn id_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, Rds> {
    let items = v
        .and_then(Value::as_array)
        .ok_or_else(|| Rds::new(ERROR, format!("{field} must be an array of site ids")))?;
    if items.is_empty() || items.len() > SITE_BATCH_MAX {
        return Err(Rds::new(
            ERROR,
            format!("{field} must hold 1 to SITE_BATCH_MAX ({SITE_BATCH_MAX}) site ids"),
        ));
    }
    items
        .iter()
        .map(|i| match i.as_str() {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(Rds::new(
                ERROR,
                format!("{field} must hold non-empty strings"),
            )),
        })
        .collect()
}

/// Runs `f` in one transaction as the RDS caller and publishes its site events; an unknown site
/// answers 9024 and rolls everything back.
async fn write_as_rds<R, F>(app: &App, why: &'static str, f: F) -> Result<R, Rds>
where
    R: Send + 'static,
    F: FnOnce(&mut Tx<'_>, SiteActor<'_>, i64) -> Result<R, StoreError> + Send + 'static,
{
    let result = super::sites::write_sites(app, RDS_CALLER, why, f).await;
    match result {
        Ok(out) => Ok(out),
        Err(StoreError::NotFound(what)) => {
            Err(Rds::new(SITE_NOT_FOUND, format!("{what} does not exist")))
        }
        Err(e) => Err(Rds::store(e)),
    }
}

/// What a work-site route does to each listed site.
#[derive(Clone, Copy)]
enum Change {
    Fill,
    Empty,
    Enable,
    Disable,
    ClearSyncFailed,
    Unlock,
}

/// `POST /api/work-sites/{worksiteFilled|worksiteUnFilled|enableWorksite|disableWorksite|
/// clearSyncFailed}` with `{"workSiteIds": [...]}`, and `unLockedSites` with a bare array.
pub async fn change(app: &App, req: Request<Incoming>, route: &str) -> Response<Body> {
    rds::reply("Success", change_answer(app, req, route).await)
}

async fn change_answer(app: &App, req: Request<Incoming>, route: &str) -> Answer {
    let (change, why) = match route {
        "worksiteFilled" | "worksiteFiled" => (Change::Fill, "rds worksiteFilled"),
        "worksiteUnFilled" | "worksiteUnFiled" => (Change::Empty, "rds worksiteUnFilled"),
        "enableWorksite" => (Change::Enable, "rds enableWorksite"),
        "disableWorksite" => (Change::Disable, "rds disableWorksite"),
        "clearSyncFailed" => (Change::ClearSyncFailed, "rds clearSyncFailed"),
        _ => (Change::Unlock, "rds unLockedSites"),
    };
    let ids = if let Change::Unlock = change {
        let body = super::http::read_json(req, app.config.body_bytes_max)
            .await
            .map_err(|e| Rds::api(ERROR, e))?;
        id_list(Some(&body), "the body")?
    } else {
        let body = rds::object(app, req, ERROR).await?;
        id_list(body.get("workSiteIds"), "workSiteIds")?
    };
    write_as_rds(app, why, move |tx, by, now| {
        for id in &ids {
            match change {
                Change::Fill => tx.site_set_filled(id, true, None, by, now).map(drop)?,
                Change::Empty => tx.site_set_filled(id, false, None, by, now).map(drop)?,
                Change::Enable => tx
                    .site_set_flags(id, Some(false), None, by, now)
                    .map(drop)?,
                Change::Disable => tx.site_set_flags(id, Some(true), None, by, now).map(drop)?,
                Change::ClearSyncFailed => tx
                    .site_set_flags(id, None, Some(false), by, now)
                    .map(drop)?,
                Change::Unlock => tx.site_unlock(id, None, by, now).map(drop)?,
            }
        }
        Ok(Value::Null)
    })
    .await
}

/// `POST /api/work-sites/setWorksiteContent` `{"workSiteIds": [...], "content"}`: sets the
/// content and `filled=1`.
pub async fn set_content(app: &App, req: Request<Incoming>) -> Response<Body> {
    rds::reply("Success", set_content_answer(app, req).await)
}

async fn set_content_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = rds::object(app, req, ERROR).await?;
    let ids = id_list(body.get("workSiteIds"), "workSiteIds")?;
    let content = rds::opt_str(&body, "content", ERROR)?.unwrap_or_default();
    write_as_rds(app, "rds setWorksiteContent", move |tx, by, now| {
        for id in &ids {
            tx.site_set_filled(id, true, Some(&content), by, now)?;
        }
        Ok(Value::Null)
    })
    .await
}

/// `POST /api/work-sites/updateFilledStatus` `{"siteId", "filled": 0|1}`.
pub async fn update_filled(app: &App, req: Request<Incoming>) -> Response<Body> {
    rds::reply("Success", update_filled_answer(app, req).await)
}

async fn update_filled_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = rds::object(app, req, ERROR).await?;
    let id = rds::opt_str(&body, "siteId", ERROR)?
        .ok_or_else(|| Rds::new(ERROR, "siteId is required"))?;
    let filled = flag_filter(&body, "filled", NOT_ZERO_OR_ONE)?
        .ok_or_else(|| Rds::new(NOT_ZERO_OR_ONE, "filled must be 0 or 1"))?;
    write_as_rds(app, "rds updateFilledStatus", move |tx, by, now| {
        tx.site_set_filled(&id, filled, None, by, now)?;
        Ok(Value::Null)
    })
    .await
}

/// `POST /api/work-sites/lockedSites` `{"siteIdList": [...], "lockedBy"}`: try-locks each
/// listed site; `data` = `{"locked": [...], "skipped": [{"siteId", "reason"}]}`.
pub async fn lock(app: &App, req: Request<Incoming>) -> Response<Body> {
    rds::reply("Success", lock_answer(app, req).await)
}

async fn lock_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = rds::object(app, req, ERROR).await?;
    let ids = id_list(body.get("siteIdList"), "siteIdList")?;
    let owner = rds::opt_str(&body, "lockedBy", ERROR)?
        .ok_or_else(|| Rds::new(ERROR, "lockedBy is required"))?;
    write_as_rds(app, "rds lockedSites", move |tx, by, now| {
        let (mut locked, mut skipped) = (Vec::new(), Vec::new());
        for id in ids {
            let reason = match tx.site_lock(&id, &owner, by, now)? {
                LockOutcome::Locked | LockOutcome::AlreadyHeld => {
                    locked.push(id);
                    continue;
                }
                LockOutcome::HeldBy(o) => format!("locked by {o}"),
                LockOutcome::Disabled => "disabled".to_string(),
                LockOutcome::SyncFailed => "syncFailed".to_string(),
            };
            skipped.push(json!({"siteId": id, "reason": reason}));
        }
        Ok(json!({"locked": locked, "skipped": skipped}))
    })
    .await
}

/// `POST /api/work-sites/unLockedSitesByTaskRecordId` `{"taskRecordId"}`: releases every lock
/// the record holds; `data` = the released site ids.
pub async fn unlock_by_record(app: &App, req: Request<Incoming>) -> Response<Body> {
    rds::reply("Success", unlock_by_record_answer(app, req).await)
}

async fn unlock_by_record_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = rds::object(app, req, ERROR).await?;
    let owner = rds::opt_str(&body, "taskRecordId", ERROR)?
        .ok_or_else(|| Rds::new(ERROR, "taskRecordId is required"))?;
    write_as_rds(
        app,
        "rds unLockedSitesByTaskRecordId",
        move |tx, by, now| Ok(json!(tx.site_unlock_owned(&owner, by, now)?)),
    )
    .await
}
