//! `/api/sites`: storage sites — list with filters and paging, get, create (one or a batch),
//! replace, delete, lock/unlock/fill/empty, and each site's change log. Every change is one
//! store transaction (a batch is all or nothing) and is logged with the caller and endpoint.

use super::error::ApiError;
use super::http::{self, Body};
use super::App;
use crate::limits::{
    API_LIST_DEFAULT, API_LIST_MAX, SITE_BATCH_MAX, SITE_WAITERS_LIST_MAX, SITE_WAITERS_MAX,
};
use crate::store::{LockOutcome, Site, SiteActor, SiteFilter, StoreError, Tx, UnlockOutcome};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

/// The change-log name of native API callers.
const API_CALLER: &str = "api";

fn parse_bool(k: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::field(k, format!("{k} must be true or false"))),
    }
}

/// Parses a `limit` query value: 1 to `API_LIST_MAX`.
fn parse_limit(v: &str) -> Result<usize, ApiError> {
    match v.parse::<usize>() {
        Ok(n) if (1..=API_LIST_MAX).contains(&n) => Ok(n),
        _ => Err(ApiError::field(
            "limit",
            format!("limit must be 1 to API_LIST_MAX ({API_LIST_MAX})"),
        )),
    }
}

fn unknown_param(k: &str) -> ApiError {
    ApiError::field(k, format!("unknown query parameter {k}"))
}

fn filter_from_query(req: &Request<Incoming>) -> Result<(SiteFilter, usize, usize), ApiError> {
    let mut f = SiteFilter::default();
    let (mut offset, mut limit) = (0usize, API_LIST_DEFAULT);
    for (k, v) in http::query(req) {
        match k.as_str() {
            "siteId" => f.site_id = Some(v),
            "groupName" => f.group_name = Some(v),
            "area" => f.area = Some(v),
            "content" => f.content = Some(v),
            "lockedBy" => f.locked_by = Some(v),
            "filled" => f.filled = Some(parse_bool(&k, &v)?),
            "locked" => f.locked = Some(parse_bool(&k, &v)?),
            "disabled" => f.disabled = Some(parse_bool(&k, &v)?),
            "orderDesc" => f.order_desc = parse_bool(&k, &v)?,
            "type" => {
                let t = v
                    .parse()
                    .map_err(|_| ApiError::field("type", "type must be an integer"))?;
                f.site_type = Some(t);
            }
            "offset" => {
                offset = v
                    .parse()
                    .map_err(|_| ApiError::field("offset", "offset must be 0 or more"))?;
            }
            "limit" => limit = parse_limit(&v)?,
            other => return Err(unknown_param(other)),
        }
    }
    Ok((f, offset, limit))
}

fn site_json(site: &Site) -> Value {
    serde_json::to_value(site).unwrap_or(Value::Null)
}

/// `GET /api/sites?siteId=&groupName=&area=&content=&type=&filled=&locked=&lockedBy=&disabled=
/// &orderDesc=&offset=&limit=`: sites by id; `total` counts every site.
pub async fn list(app: &App, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (filter, offset, limit) = filter_from_query(req)?;
    let (rows, total) = app
        .sched
        .store()
        .read(move |rx| Ok((rx.site_list(&filter, offset, limit + 1)?, rx.site_count()?)))
        .await
        .map_err(ApiError::store)?;
    let more = rows.len() > limit;
    let items: Vec<Value> = rows.iter().take(limit).map(site_json).collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({"items": items, "more": more, "offset": offset, "total": total}),
    ))
}

/// `GET /api/sites/{siteId}`.
pub async fn get(app: &App, id: &str) -> Result<Response<Body>, ApiError> {
    let site = fetch(app, id).await?;
    Ok(http::json(StatusCode::OK, &site_json(&site)))
}

async fn fetch(app: &App, id: &str) -> Result<Site, ApiError> {
    let key = id.to_string();
    app.sched
        .store()
        .read(move |rx| rx.site_get(&key))
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::not_found(format!("no site {id}")))
}

/// Parses one site object; errors name the field (and the batch index when given).
fn parse_site(v: Value, at: Option<usize>) -> Result<Site, ApiError> {
    let prefix = at.map(|i| format!("[{i}].")).unwrap_or_default();
    let site: Site =
        serde_json::from_value(v).map_err(|e| ApiError::bad_json(format!("{prefix}site: {e}")))?;
    site.validate().map_err(|e| {
        // `validate` says "field: problem".
        let field = e.split(':').next().unwrap_or("site");
        ApiError::field(&format!("{prefix}{field}"), format!("{prefix}{e}"))
    })?;
    Ok(site)
}

/// Parses a body holding one site object or an array of them (at most `SITE_BATCH_MAX`).
fn parse_sites(body: Value) -> Result<Vec<Site>, ApiError> {
    match body {
        Value::Array(items) => {
            if items.is_empty() || items.len() > SITE_BATCH_MAX {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "limit",
                    format!("a batch holds 1 to SITE_BATCH_MAX ({SITE_BATCH_MAX}) sites"),
                ));
            }
            let mut seen = std::collections::HashSet::with_capacity(items.len());
            let mut sites = Vec::with_capacity(items.len());
            for (i, v) in items.into_iter().enumerate() {
                let site = parse_site(v, Some(i))?;
                if !seen.insert(site.site_id.clone()) {
                    return Err(ApiError::field(
                        &format!("[{i}].siteId"),
                        format!("[{i}].siteId: {} appears twice in the batch", site.site_id),
                    ));
                }
                sites.push(site);
            }
            Ok(sites)
        }
        v @ Value::Object(_) => Ok(vec![parse_site(v, None)?]),
        _ => Err(ApiError::bad_json(
            "expected a site object or an array of sites",
        )),
    }
}

/// Runs `f` in one store transaction as `who` (the change log's caller), with `why`, then
/// publishes the site events it committed to live `/api/events` clients and tells the
/// scheduler which sites changed (site waiters they concern are served).
pub(super) async fn write_sites<R, F>(
    app: &App,
    who: &'static str,
    why: &'static str,
    f: F,
) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce(&mut Tx<'_>, SiteActor<'_>, i64) -> Result<R, StoreError> + Send + 'static,
{
    let now = app.sched.now_ms();
    let (out, events, changes) = app
        .sched
        .store()
        .write(move |tx| {
            let out = f(tx, SiteActor { who, why }, now)?;
            Ok((out, tx.take_site_events(), tx.take_site_changes()))
        })
        .await?;
    app.sched.publish_outbox(events);
    app.sched.sites_changed(changes).await;
    Ok(out)
}

/// Releases every site `run` holds (RDS's release-all, for stop and manual end with
/// `releaseSite`); the released ids. Runs after the terminal status is committed.
pub(super) async fn release_owned(
    app: &App,
    run: &str,
    who: &'static str,
) -> Result<Vec<String>, StoreError> {
    let owner = run.to_string();
    let released = write_sites(
        app,
        who,
        "stop or manual end with releaseSite",
        move |tx, by, now| tx.site_unlock_owned(&owner, by, now),
    )
    .await?;
    if !released.is_empty() {
        log::info!("task {run}: released sites {released:?} ({who})");
    }
    Ok(released)
}

/// [`write_sites`] as the native API caller, store errors mapped to API errors.
async fn write_as_api<R, F>(app: &App, why: &'static str, f: F) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce(&mut Tx<'_>, SiteActor<'_>, i64) -> Result<R, StoreError> + Send + 'static,
{
    write_sites(app, API_CALLER, why, f)
        .await
        .map_err(ApiError::store)
}

/// Writes `sites` in one transaction (all or nothing); returns (created, updated).
async fn put_all(
    app: &App,
    sites: Vec<Site>,
    why: &'static str,
) -> Result<(usize, usize), ApiError> {
    write_as_api(app, why, move |tx, by, now| {
        let mut created = 0;
        for site in &sites {
            created += usize::from(tx.site_put(site, by, now)?);
        }
        Ok((created, sites.len() - created))
    })
    .await
}

/// `POST /api/sites` with one site (201 with the site; 409 when the id exists) or an array
/// (created and updated counts; existing ids are replaced, locks kept).
pub async fn create(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = http::read_json(req, app.config.body_bytes_max).await?;
    let single = body.is_object();
    let sites = parse_sites(body)?;
    if single {
        let site = sites[0].clone();
        let id = site.site_id.clone();
        write_as_api(app, "POST /api/sites", move |tx, by, now| {
            if tx.site_get(&site.site_id)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "site {} exists; PUT /api/sites/{} replaces it",
                    site.site_id, site.site_id
                )));
            }
            tx.site_put(&site, by, now)
        })
        .await?;
        let saved = fetch(app, &id).await?;
        return Ok(http::json(StatusCode::CREATED, &site_json(&saved)));
    }
    let (created, updated) = put_all(app, sites, "POST /api/sites").await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"created": created, "updated": updated}),
    ))
}

/// `POST /api/sites/import` with a JSON array of sites: creates or replaces them all in one
/// transaction.
pub async fn import(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let body = http::read_json(req, app.config.body_bytes_max).await?;
    if !body.is_array() {
        return Err(ApiError::bad_json("expected a JSON array of sites"));
    }
    let sites = parse_sites(body)?;
    let (created, updated) = put_all(app, sites, "POST /api/sites/import").await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"created": created, "updated": updated}),
    ))
}

/// `PUT /api/sites/{siteId}`: creates or replaces the site (its lock is kept).
pub async fn put(app: &App, id: &str, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let mut body = http::read_json(req, app.config.body_bytes_max).await?;
    let Some(obj) = body.as_object_mut() else {
        return Err(ApiError::bad_json("expected a site object"));
    };
    match obj.get("siteId") {
        None => {
            obj.insert("siteId".into(), Value::String(id.into()));
        }
        Some(Value::String(s)) if s == id => {}
        Some(_) => {
            return Err(ApiError::field(
                "siteId",
                "siteId in the body differs from the path",
            ))
        }
    }
    let site = parse_site(body, None)?;
    let (created, _) = put_all(app, vec![site], "PUT /api/sites").await?;
    let saved = fetch(app, id).await?;
    let status = if created == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(http::json(status, &site_json(&saved)))
}

/// `DELETE /api/sites/{siteId}`: refused (409) while the site is locked.
pub async fn delete(app: &App, id: &str) -> Result<Response<Body>, ApiError> {
    let key = id.to_string();
    write_as_api(app, "DELETE /api/sites", move |tx, by, now| {
        tx.site_delete(&key, by, now)
    })
    .await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"siteId": id, "deleted": true}),
    ))
}

/// `POST /api/sites/{siteId}/lock|unlock|fill|empty`. Bodies (optional): lock
/// `{"lockedBy": "..."}` (default `api`); unlock `{"lockedBy": "..."}` releases only that
/// owner's lock, without it any lock; fill `{"content": "..."}`. A lock held by another owner →
/// 409 naming the owner; a disabled site → 409.
pub async fn action(
    app: &App,
    id: &str,
    action: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let body = http::read_json(req, app.config.body_bytes_max).await?;
    if !body.is_object() {
        return Err(ApiError::bad_json("expected a JSON object (or no body)"));
    }
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::field(k, format!("{k} must be a string"))),
        }
    };
    let owner = text("lockedBy")?;
    let content = text("content")?;
    let key = id.to_string();
    match action {
        "lock" => {
            let owner = owner.unwrap_or_else(|| API_CALLER.into());
            let outcome = write_as_api(app, "POST /api/sites/{id}/lock", move |tx, by, now| {
                tx.site_lock(&key, &owner, by, now)
            })
            .await?;
            match outcome {
                LockOutcome::Locked | LockOutcome::AlreadyHeld => {}
                LockOutcome::HeldBy(o) => {
                    return Err(ApiError::conflict(format!("site {id} is locked by {o}")))
                }
                LockOutcome::Disabled => {
                    return Err(ApiError::conflict(format!("site {id} is disabled")))
                }
                LockOutcome::SyncFailed => {
                    return Err(ApiError::conflict(format!(
                        "site {id} is marked syncFailed; clear it before locking"
                    )))
                }
            }
        }
        "unlock" => {
            let why = "POST /api/sites/{id}/unlock";
            let outcome = write_as_api(app, why, move |tx, by, now| {
                tx.site_unlock(&key, owner.as_deref(), by, now)
            })
            .await?;
            if let UnlockOutcome::HeldBy(o) = outcome {
                return Err(ApiError::conflict(format!(
                    "site {id} is locked by {o}, not by the lockedBy given"
                )));
            }
        }
        "fill" | "empty" => {
            let filled = action == "fill";
            let why = if filled {
                "POST /api/sites/{id}/fill"
            } else {
                "POST /api/sites/{id}/empty"
            };
            write_as_api(app, why, move |tx, by, now| {
                tx.site_set_filled(&key, filled, content.as_deref(), by, now)
            })
            .await?;
        }
        other => return Err(ApiError::not_found(format!("no site action {other}"))),
    }
    let site = fetch(app, id).await?;
    Ok(http::json(StatusCode::OK, &site_json(&site)))
}

/// `GET /api/sites/{siteId}/log?limit=`: the site's newest changes, newest first.
pub async fn log(app: &App, id: &str, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let mut limit = API_LIST_DEFAULT;
    for (k, v) in http::query(req) {
        match k.as_str() {
            "limit" => limit = parse_limit(&v)?,
            other => return Err(unknown_param(other)),
        }
    }
    let key = id.to_string();
    let (exists, rows) = app
        .sched
        .store()
        .read(move |rx| {
            Ok((
                rx.site_get(&key)?.is_some(),
                rx.site_log_entries(Some(&key), limit)?,
            ))
        })
        .await
        .map_err(ApiError::store)?;
    if !exists && rows.is_empty() {
        return Err(ApiError::not_found(format!("no site {id}")));
    }
    Ok(http::json(
        StatusCode::OK,
        &json!({"siteId": id, "items": rows}),
    ))
}

/// `GET /api/sites/waiters?limit=`: the persisted site wait queue in service order (priority,
/// then arrival): which task waits for what, and how often it was tried. `total` counts every
/// waiter; at most `limit` (default `API_LIST_DEFAULT`, at most `SITE_WAITERS_LIST_MAX`).
pub async fn waiters(app: &App, req: &Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let mut limit = API_LIST_DEFAULT;
    for (k, v) in http::query(req) {
        match k.as_str() {
            "limit" => limit = parse_limit(&v)?.min(SITE_WAITERS_LIST_MAX),
            other => return Err(unknown_param(other)),
        }
    }
    let (rows, total) = app
        .sched
        .store()
        .read(move |rx| Ok((rx.site_waiters(limit)?, rx.site_waiters_len()?)))
        .await
        .map_err(ApiError::store)?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"total": total, "capacity": SITE_WAITERS_MAX, "items": rows}),
    ))
}
