//! The RDS run queries (spec §5.3): `/api/queryWindTask` (and its UI twin `/api/queryTaskRecord`),
//! `/api/queryTaskRecordById`, `/api/queryBlocksByTaskId`, `/api/queryBlocksByTaskRecordId` and
//! `/api/queryLogsByTaskRecordId`, with records in RDS's shape:
//! status codes (queued shows as 1000), dates as `yyyy-MM-dd HH:mm:ss` local time.

use super::http::Body;
use super::rds::{object, opt_str, reply, Answer, Rds, ERROR, QUERY_FAILED};
use super::App;
use crate::limits::API_LIST_MAX;
use crate::store::{Rx, StoreError, TaskFilter, TaskRecord, TaskStatus};
use chrono::{Local, NaiveDateTime, TimeZone};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Map, Value};

/// `pageSize` must be 1 to this (RDS's bound).
pub const RDS_PAGE_SIZE_MAX: i64 = 500;
const DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Walks the records matching `filter` newest first, `API_LIST_MAX` rows per query, so memory
/// stays bounded however many records match.
pub fn scan(
    rx: &Rx<'_>,
    filter: &TaskFilter,
    mut visit: impl FnMut(&TaskRecord),
) -> Result<(), StoreError> {
    let mut f = filter.clone();
    loop {
        let rows = rx.list_tasks(&f, API_LIST_MAX)?;
        rows.iter().for_each(&mut visit);
        match rows.last() {
            Some(last) if rows.len() == API_LIST_MAX => f.before_seq = Some(last.seq),
            _ => return Ok(()),
        }
    }
}

/// A time as RDS writes it, "" when absent.
pub fn date(ms: Option<i64>) -> String {
    ms.and_then(|ms| Local.timestamp_millis_opt(ms).single())
        .map(|t| t.format(DATE_FORMAT).to_string())
        .unwrap_or_default()
}

fn parse_date(field: &str, text: &str) -> Result<i64, Rds> {
    let naive = NaiveDateTime::parse_from_str(text, DATE_FORMAT)
        .map_err(|_| Rds::new(ERROR, format!("{field} must be yyyy-MM-dd HH:mm:ss")))?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| Rds::new(ERROR, format!("{field} is not a local time")))
}

/// The RDS status code: vwed's queued shows as 1000 (RDS starts accepted runs at once).
pub fn rds_status(r: &TaskRecord) -> i32 {
    if r.status == TaskStatus::Queued {
        crate::engine::code::RUNNING
    } else {
        r.code
    }
}

/// A record in RDS's shape (`WindTaskRecordImportVo`). vwed keeps no robot path, agv id or
/// work types on the record: those are "" or null.
pub fn record_json(r: &TaskRecord) -> Value {
    let executor_s = r
        .started_ms
        .map(|s| (r.ended_ms.unwrap_or(s) - s).max(0) / 1000);
    json!({
        "id": r.id, "defId": r.def_id, "defLabel": r.def_label, "defVersion": r.def_version,
        "status": rds_status(r), "agvId": "", "path": "",
        "createdOn": date(Some(r.created_ms)), "endedOn": date(r.ended_ms),
        "firstExecutorTime": date(r.started_ms), "executorTime": executor_s,
        "stateDescription": r.state_description, "endedReason": r.ended_reason,
        "ifHaveChildTask": r.has_children.then_some(true), "parentTaskRecordId": r.parent_id,
        "rootTaskRecordId": r.root_id, "inputParams": r.input_params, "taskDefDetail": null,
        "priority": r.priority, "outOrderNo": r.out_order_no, "workTypes": null,
        "workStations": null, "periodicTask": i32::from(r.periodic),
    })
}

/// `defLabel` → `def_label`, on the top-level keys (RDS's snake_case JSON strings).
pub fn snake_keys(v: &Value) -> Value {
    let Some(obj) = v.as_object() else {
        return v.clone();
    };
    let mut out = Map::with_capacity(obj.len());
    for (k, val) in obj {
        let mut key = String::with_capacity(k.len() + 4);
        for c in k.chars() {
            if c.is_ascii_uppercase() {
                key.push('_');
                key.push(c.to_ascii_lowercase());
            } else {
                key.push(c);
            }
        }
        out.insert(key, val.clone());
    }
    Value::Object(out)
}

/// The `queryParam` filters vwed applies; `agvId`, `agvIdList`, `workTypes`, `workStations` and
/// `ifParentOrChildOrAll` are accepted and ignored (vwed records do not carry them).
#[derive(Default)]
struct Query {
    store: TaskFilter,
    def_id: Option<String>,
    record_id: Option<String>,
    status: Option<i32>,
    out_order_no: Option<String>,
    state_description: Option<String>,
    periodic: Option<bool>,
    parent_id: Option<String>,
    ascending: bool,
}

impl Query {
    fn matches(&self, r: &TaskRecord) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        eq(&self.def_id, Some(&r.def_id))
            && eq(&self.record_id, Some(&r.id))
            && self.status.is_none_or(|s| s == rds_status(r))
            && eq(&self.out_order_no, r.out_order_no.as_deref())
            && eq(&self.state_description, r.state_description.as_deref())
            && self.periodic.is_none_or(|p| p == r.periodic)
            && eq(&self.parent_id, r.parent_id.as_deref())
    }
}

fn int_field(q: &Value, field: &str) -> Result<Option<i64>, Rds> {
    match q.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad_int(field)),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| bad_int(field)),
    }
}

fn bad_int(field: &str) -> Rds {
    Rds::new(ERROR, format!("{field} must be an integer"))
}

fn query_from(q: &Value) -> Result<Query, Rds> {
    if !matches!(q, Value::Object(_) | Value::Null) {
        return Err(Rds::new(ERROR, "queryParam must be an object"));
    }
    let label = match opt_str(q, "defLabel", ERROR)? {
        Some(l) => Some(l),
        None => opt_str(q, "taskLabel", ERROR)?,
    };
    let date = |f: &str| -> Result<Option<i64>, Rds> {
        opt_str(q, f, ERROR)?.map(|t| parse_date(f, &t)).transpose()
    };
    let periodic = int_field(q, "ifPeriodTask")?.map(|n| n == 1);
    let ascending = matches!(q.get("isOrderDesc"), Some(Value::Bool(false)))
        || int_field(q, "isOrderDesc").ok().flatten() == Some(0);
    Ok(Query {
        store: TaskFilter {
            def_label: label,
            created_from_ms: date("startDate")?,
            // endDate is inclusive to the second.
            created_to_ms: date("endDate")?.map(|t| t + 1000),
            ..TaskFilter::default()
        },
        def_id: opt_str(q, "taskId", ERROR)?,
        record_id: opt_str(q, "taskRecordId", ERROR)?,
        status: int_field(q, "status")?.map(|s| s as i32),
        out_order_no: opt_str(q, "outOrderNo", ERROR)?,
        state_description: opt_str(q, "stateDescription", ERROR)?,
        periodic,
        parent_id: opt_str(q, "parentTaskId", ERROR)?,
        ascending,
    })
}

/// `POST /api/queryWindTask` / `/api/queryTaskRecord {currentPage, pageSize, queryParam}`:
/// `data` is `{totalCount, currentPage, pageSize, totalPage, pageList}`, newest first unless
/// `isOrderDesc` is false/0. `pageSize` outside 1..=500 answers 9000; `currentPage` 0 reads 1.
pub async fn query_wind_task(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("Success", query_wind_task_answer(app, req).await)
}

async fn query_wind_task_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = object(app, req, ERROR).await?;
    let size = int_field(&body, "pageSize")?.unwrap_or(20);
    if !(1..=RDS_PAGE_SIZE_MAX).contains(&size) {
        let msg = format!("pageSize must be 1 to {RDS_PAGE_SIZE_MAX}");
        return Err(Rds::new(ERROR, msg));
    }
    let page = int_field(&body, "currentPage")?.unwrap_or(1).max(1);
    let query = query_from(body.get("queryParam").unwrap_or(&Value::Null))?;
    let offset = (page - 1).saturating_mul(size);
    let (total, rows) = app
        .sched
        .store()
        .read(move |rx| page_of(rx, &query, offset, size))
        .await
        .map_err(Rds::store)?;
    let list: Vec<Value> = rows.iter().map(record_json).collect();
    Ok(
        json!({"totalCount": total, "currentPage": page, "pageSize": size,
        "totalPage": (total + size - 1) / size, "pageList": list}),
    )
}

/// The matching count and the records at `offset..offset + size` in the query's order. An
/// ascending page needs the count first, so it scans twice.
fn page_of(
    rx: &Rx<'_>,
    q: &Query,
    offset: i64,
    size: i64,
) -> Result<(i64, Vec<TaskRecord>), StoreError> {
    let mut total = 0i64;
    let mut rows = Vec::new();
    let (lo, hi) = if q.ascending {
        scan(rx, &q.store, |r| total += i64::from(q.matches(r)))?;
        (total - offset - size, total - offset)
    } else {
        (offset, offset + size)
    };
    let mut index = 0i64;
    scan(rx, &q.store, |r| {
        if q.matches(r) {
            if (lo..hi).contains(&index) {
                rows.push(r.clone());
            }
            index += 1;
        }
    })?;
    if q.ascending {
        rows.reverse();
    } else {
        total = index;
    }
    Ok((total, rows))
}

async fn record_of(app: &App, id: String) -> Result<TaskRecord, Rds> {
    let id2 = id.clone();
    app.sched
        .store()
        .read(move |rx| rx.task(&id2))
        .await
        .map_err(Rds::store)?
        .ok_or_else(|| Rds::new(QUERY_FAILED, format!("no task record {id}")))
}

/// `POST /api/queryTaskRecordById {"taskId": "<record id>"}`: `data` is the record as a JSON
/// string with snake_case keys; 9020 when there is none.
pub async fn query_record_by_id(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("Success", query_record_answer(app, req).await)
}

async fn query_record_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = object(app, req, ERROR).await?;
    let id = opt_str(&body, "taskId", ERROR)?
        .ok_or_else(|| Rds::new(ERROR, "taskId (the record id) is required"))?;
    let rec = record_of(app, id).await?;
    Ok(json!(snake_keys(&record_json(&rec)).to_string()))
}

/// `POST /api/queryBlocksByTaskId {"taskRecordId"}`: `data` is `{taskStatus, blockList}`,
/// `blockName` the block type and `blockLabel` the block's name ("start block" for the root).
pub async fn query_blocks(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("Success", query_blocks_answer(app, req).await)
}

async fn query_blocks_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = object(app, req, ERROR).await?;
    let id = opt_str(&body, "taskRecordId", ERROR)?
        .ok_or_else(|| Rds::new(ERROR, "taskRecordId is required"))?;
    let rec = record_of(app, id.clone()).await?;
    let blocks = app
        .sched
        .store()
        .read(move |rx| rx.block_records(&id, API_LIST_MAX))
        .await
        .map_err(Rds::store)?;
    let list: Vec<Value> = blocks
        .iter()
        .map(|b| {
            let label = if b.block_type == "RootBp" {
                "start block"
            } else {
                b.block_name.as_str()
            };
            json!({"blockConfigId": b.block_id.to_string(), "blockName": b.block_type,
                "blockLabel": label, "status": b.status, "startedOn": date(Some(b.started_ms)),
                "endedOn": date(b.ended_ms), "endedReason": b.ended_reason, "remark": null})
        })
        .collect();
    Ok(json!({"taskStatus": rds_status(&rec), "blockList": list}))
}

/// `POST /api/queryBlocksByTaskRecordId {"taskRecordId"}`: `data` is a JSON string of the full
/// block records (snake_case keys), newest `ended_on` first (running blocks, with none, first).
pub async fn query_block_records(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("Success", query_block_records_answer(app, req).await)
}

async fn query_block_records_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = object(app, req, ERROR).await?;
    let id = opt_str(&body, "taskRecordId", ERROR)?
        .ok_or_else(|| Rds::new(ERROR, "taskRecordId is required"))?;
    let rec = record_of(app, id.clone()).await?;
    let mut blocks = app
        .sched
        .store()
        .read(move |rx| rx.block_records(&id, API_LIST_MAX))
        .await
        .map_err(Rds::store)?;
    blocks.sort_by_key(|b| std::cmp::Reverse(b.ended_ms.unwrap_or(i64::MAX)));
    let rows: Vec<Value> = blocks
        .iter()
        .map(|b| {
            json!({"id": b.id, "task_id": rec.def_id, "task_record_id": b.task_id,
                "block_config_id": b.block_id.to_string(), "block_name": b.block_type,
                "status": b.status, "started_on": date(Some(b.started_ms)),
                "ended_on": date(b.ended_ms), "ended_reason": b.ended_reason, "remark": null,
                "block_input_params_value": b.inputs, "block_out_params_value": b.outputs})
        })
        .collect();
    Ok(json!(Value::Array(rows).to_string()))
}

/// `POST /api/queryLogsByTaskRecordId {"taskRecordId"}`: `data` is a JSON string of the run's
/// log lines (snake_case keys, RDS's `level` as a string), oldest first.
pub async fn query_logs(app: &App, req: Request<Incoming>) -> Response<Body> {
    reply("Success", query_logs_answer(app, req).await)
}

async fn query_logs_answer(app: &App, req: Request<Incoming>) -> Answer {
    let body = object(app, req, ERROR).await?;
    let id = opt_str(&body, "taskRecordId", ERROR)?
        .ok_or_else(|| Rds::new(ERROR, "taskRecordId is required"))?;
    let rec = record_of(app, id.clone()).await?;
    let logs = app
        .sched
        .store()
        .read(move |rx| rx.task_logs(&id, API_LIST_MAX))
        .await
        .map_err(Rds::store)?;
    let rows: Vec<Value> = logs
        .iter()
        .map(|l| {
            json!({"id": l.id, "create_time": date(Some(l.created_ms)),
                "level": l.level.to_string(), "message": l.message, "task_id": rec.def_id,
                "task_record_id": l.task_id, "task_block_id": l.block_name})
        })
        .collect();
    Ok(json!(Value::Array(rows).to_string()))
}
