//! Storage site blocks (spec §3.7). Each builds a [`SiteOp`] from its parameters and waits for
//! the scheduler to run it in the store ([`Wait::Site`]); the answer comes back to `woke`
//! through [`Cx::take_site_reply`]. Waiting for a site is the store's persisted wait queue, never a
//! polling loop here; only `SetSiteLockedBp` with `retryTimes` keeps RDS's attempt clock
//! (`LOCK_RETRY_MS` between attempts).

use super::{done_with, Behaviour, Family, KindSpec, ParamSpec, ParamType as T};
use crate::engine::{Action, Cx, LogLevel, Raise, Wait};
use crate::sites::{IdleFilter, SiteOp, SiteReply};
use crate::value::{self, Value};

/// Pause between `SetSiteLockedBp` attempts when `retryTimes` is given (RDS: 2 s, spec §3.7);
/// with `retryTimes` = n the block gives up after n attempts, about 2n s.
pub const LOCK_RETRY_MS: i64 = 2_000;

const fn leaf(
    name: &'static str,
    params: &'static [ParamSpec],
    b: &'static dyn Behaviour,
) -> KindSpec {
    KindSpec {
        name,
        family: Family::Site,
        params,
        branches: &[],
        behaviour: Some(b),
    }
}

fn ask(op: SiteOp) -> Result<Action, Raise> {
    Ok(Action::Wait(Wait::Site(Box::new(op))))
}

/// The answer to the block's site operation; a failure answer fails the block.
fn answer(cx: &mut Cx<'_>) -> Result<SiteReply, Raise> {
    match cx.take_site_reply() {
        Some(SiteReply::Failed(message)) => Err(Raise::Failure(message)),
        Some(reply) => Ok(reply),
        None => Err(Raise::Failure("the site operation was not answered".into())),
    }
}

fn unexpected(reply: &SiteReply) -> Raise {
    Raise::Failure(format!(
        "unexpected answer to the site operation: {reply:?}"
    ))
}

/// A string parameter; an empty string counts as not given (RDS forms send "" for blank).
fn text(cx: &Cx<'_>, name: &str) -> Option<String> {
    cx.str_param(name).filter(|s| !s.is_empty())
}

/// A required site id (`siteNot`-style failure text names the parameter).
fn site_id(cx: &Cx<'_>, name: &str) -> Result<String, Raise> {
    text(cx, name).ok_or_else(|| Raise::Failure(format!("siteIdEmpty: parameter {name} is empty")))
}

/// A list parameter: a JSON array of strings, or a string holding one; null → empty.
fn names(cx: &Cx<'_>, name: &str) -> Result<Vec<String>, Raise> {
    let bad = |v: &Value| {
        Raise::Failure(format!(
            "paramsError: {name} must be a JSON array of names, got {}",
            value::clip(&value::to_display_string(v))
        ))
    };
    let items = match cx.any_param(name) {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => items,
            _ => return Err(bad(&Value::String(s.clone()))),
        },
        Some(other) => return Err(bad(other)),
    };
    items
        .iter()
        .map(|v| value::to_java_string(v).ok_or_else(|| bad(v)))
        .collect()
}

fn idle_filter(cx: &Cx<'_>) -> IdleFilter {
    IdleFilter {
        site_id: text(cx, "siteId"),
        group_name: text(cx, "groupName"),
        content: text(cx, "content"),
        filled: cx.bool_param("filled"),
        physical: cx.bool_param("type"),
        locked: cx.bool_param("locked").unwrap_or(false),
        order_desc: cx.bool_param("orderDesc").unwrap_or(false),
    }
}

const FILTER_PARAMS: [ParamSpec; 7] = [
    ParamSpec::opt("siteId", T::Str),
    ParamSpec::opt("groupName", T::Str),
    ParamSpec::opt("content", T::Str),
    ParamSpec::opt("filled", T::Bool),
    ParamSpec::opt("type", T::Bool),
    ParamSpec::opt("locked", T::Bool),
    ParamSpec::opt("orderDesc", T::Bool),
];

// ----- GetIdleSiteBp, QueryIdleSiteBp ---------------------------------------------------------

#[derive(Debug)]
struct GetIdle;
impl Behaviour for GetIdle {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let filter = idle_filter(cx);
        let lock = cx.bool_param("lock").unwrap_or(false);
        if let Some(ms) = cx.long_param("retryPeriod")? {
            if ms < 0 {
                return Err(Raise::Failure(format!(
                    "paramsError: retryPeriod must be 0 or more, got {ms}"
                )));
            }
        }
        // RDS's fair queue needs a lock and a site or group to queue on (spec §3.7).
        let fair = cx.bool_param("ifFair").unwrap_or(false)
            && lock
            && (filter.site_id.is_some() || filter.group_name.is_some());
        ask(SiteOp::GetIdle { filter, lock, fair })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match answer(cx)? {
            SiteReply::Found(id) => done_with(cx, "siteId", Value::String(id)),
            other => Err(unexpected(&other)),
        }
    }
}

pub static GET_IDLE_SITE: KindSpec = leaf(
    "GetIdleSiteBp",
    &[
        FILTER_PARAMS[0],
        FILTER_PARAMS[1],
        FILTER_PARAMS[2],
        FILTER_PARAMS[3],
        FILTER_PARAMS[4],
        FILTER_PARAMS[5],
        FILTER_PARAMS[6],
        ParamSpec::opt("lock", T::Bool),
        ParamSpec::opt("retryPeriod", T::Long),
        ParamSpec::opt("ifFair", T::Bool),
    ],
    &GetIdle,
);

#[derive(Debug)]
struct QueryIdle;
impl Behaviour for QueryIdle {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        ask(SiteOp::Query {
            filter: idle_filter(cx),
        })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match answer(cx)? {
            SiteReply::Site(site) => {
                let v = site.unwrap_or_else(|| Value::String(String::new()));
                done_with(cx, "site", v)
            }
            other => Err(unexpected(&other)),
        }
    }
}

pub static QUERY_IDLE_SITE: KindSpec = leaf("QueryIdleSiteBp", &FILTER_PARAMS, &QueryIdle);

// ----- GetIdleCrowdedSiteBp -------------------------------------------------------------------

#[derive(Debug)]
struct Crowded;
impl Behaviour for Crowded {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let groups = names(cx, "groupName")?;
        let retry = cx.bool_param("retry").unwrap_or(true);
        let retry_num = cx.long_param("retryNum")?.unwrap_or(0);
        if retry_num < 0 {
            return Err(Raise::Failure(format!(
                "paramsError: retryNum must be 0 (unlimited) or more, got {retry_num}"
            )));
        }
        cx.long_param("retryPeriod")?;
        let attempts_max = if retry { retry_num as u64 } else { 1 };
        ask(SiteOp::Crowded {
            groups,
            filled: cx.bool_param("filled").unwrap_or(false),
            content: text(cx, "content"),
            lock: cx.bool_param("lock").unwrap_or(false),
            wait: attempts_max != 1,
            attempts_max,
        })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match answer(cx)? {
            SiteReply::Found(id) => done_with(cx, "siteId", Value::String(id)),
            other => Err(unexpected(&other)),
        }
    }
}

pub static GET_IDLE_CROWDED_SITE: KindSpec = leaf(
    "GetIdleCrowdedSiteBp",
    &[
        ParamSpec::opt("groupName", T::List),
        ParamSpec::opt("filled", T::Bool),
        ParamSpec::opt("content", T::Str),
        ParamSpec::opt("lock", T::Bool),
        ParamSpec::opt("retry", T::Bool),
        ParamSpec::opt("retryNum", T::Long),
        ParamSpec::opt("retryPeriod", T::Long),
    ],
    &Crowded,
);

// ----- SetSiteLockedBp, SetSiteUnlockedBp -----------------------------------------------------

/// `SetSiteLockedBp` frame phases.
const PHASE_ASKED: u8 = 0;
const PHASE_PAUSED: u8 = 1;

#[derive(Debug)]
struct Lock;
impl Lock {
    fn op(cx: &mut Cx<'_>) -> Result<SiteOp, Raise> {
        let site_id = site_id(cx, "siteId")?;
        let owner = text(cx, "lockedId").unwrap_or_else(|| cx.run_id().to_string());
        let retry_times = cx.int_param("retryTimes")?;
        // The frame keeps the attempt budget (0: unlimited) and the op's inputs for retries.
        cx.frame().limit = retry_times.map_or(0, |n| i64::from(n.max(1)));
        let fair = cx.bool_param("ifFair").unwrap_or(false);
        Ok(SiteOp::Lock {
            site_id,
            owner,
            fair,
            wait: retry_times.is_none(),
        })
    }
}

impl Behaviour for Lock {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let op = Lock::op(cx)?;
        cx.keep(serde_json::to_value(&op).unwrap_or(Value::Null))?;
        cx.frame().index = 1;
        ask(op)
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        if cx.frame().phase == PHASE_PAUSED {
            // The pause between attempts ended: ask again.
            cx.frame().phase = PHASE_ASKED;
            cx.frame().index += 1;
            let op: SiteOp = serde_json::from_value(cx.frame().data.clone())
                .map_err(|e| Raise::Failure(format!("SetSiteLockedBp state: {e}")))?;
            return ask(op);
        }
        match answer(cx)? {
            SiteReply::Done => done_with(cx, "success", Value::Bool(true)),
            SiteReply::Refused(why) => {
                let (attempt, limit) = (cx.frame().index, cx.frame().limit);
                let name = cx.block().name.clone();
                cx.log(
                    LogLevel::Warn,
                    format!("[SetSiteLockedBp][{name}]attempt {attempt}/{limit}: {why}"),
                );
                if attempt >= limit {
                    return done_with(cx, "success", Value::Bool(false));
                }
                cx.frame().phase = PHASE_PAUSED;
                Ok(Action::Wait(Wait::Timer { ms: LOCK_RETRY_MS }))
            }
            other => Err(unexpected(&other)),
        }
    }
}

pub static SET_SITE_LOCKED: KindSpec = leaf(
    "SetSiteLockedBp",
    &[
        ParamSpec::req("siteId", T::Str),
        ParamSpec::opt("lockedId", T::Str),
        ParamSpec::opt("ifFair", T::Bool),
        ParamSpec::opt("retryTimes", T::Int),
    ],
    &Lock,
);

#[derive(Debug)]
struct Unlock;
impl Behaviour for Unlock {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let site_id = site_id(cx, "siteId")?;
        let owner = text(cx, "unLockedId").unwrap_or_else(|| cx.run_id().to_string());
        ask(SiteOp::Unlock { site_id, owner })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match answer(cx)? {
            SiteReply::Done => Ok(Action::Done),
            SiteReply::Note(note) => {
                let name = cx.block().name.clone();
                cx.log(LogLevel::Warn, format!("[SetSiteUnlockedBp][{name}]{note}"));
                Ok(Action::Done)
            }
            other => Err(unexpected(&other)),
        }
    }
}

pub static SET_SITE_UNLOCKED: KindSpec = leaf(
    "SetSiteUnlockedBp",
    &[
        ParamSpec::req("siteId", T::Str),
        ParamSpec::opt("unLockedId", T::Str),
    ],
    &Unlock,
);

// ----- Site field setters ---------------------------------------------------------------------

/// Ends a block whose op answers `Done`.
fn done(cx: &mut Cx<'_>) -> Result<Action, Raise> {
    match answer(cx)? {
        SiteReply::Done | SiteReply::Note(_) => Ok(Action::Done),
        other => Err(unexpected(&other)),
    }
}

#[derive(Debug)]
struct Fill {
    filled: bool,
    /// `SetSiteContentBp`: the content parameter is required and also fills.
    with_content: bool,
}
impl Behaviour for Fill {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let site_id = site_id(cx, "siteId")?;
        let content = if self.with_content {
            Some(cx.req_str("content")?)
        } else {
            None
        };
        ask(SiteOp::Fill {
            site_id,
            filled: self.filled,
            content,
        })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        done(cx)
    }
}

const SITE_ONLY: &[ParamSpec] = &[ParamSpec::req("siteId", T::Str)];

pub static SET_SITE_FILLED: KindSpec = leaf(
    "SetSiteFilledBp",
    SITE_ONLY,
    &Fill {
        filled: true,
        with_content: false,
    },
);

pub static SET_SITE_EMPTY: KindSpec = leaf(
    "SetSiteEmptyBp",
    SITE_ONLY,
    &Fill {
        filled: false,
        with_content: false,
    },
);

pub static SET_SITE_CONTENT: KindSpec = leaf(
    "SetSiteContentBp",
    &[
        ParamSpec::req("siteId", T::Str),
        ParamSpec::req("content", T::Str),
    ],
    &Fill {
        filled: true,
        with_content: true,
    },
);

#[derive(Debug)]
struct Tags;
impl Behaviour for Tags {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let site_id = site_id(cx, "siteId")?;
        let tags = cx.str_param("tags").unwrap_or_default();
        ask(SiteOp::Tags { site_id, tags })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        done(cx)
    }
}

pub static SET_SITE_TAGS: KindSpec = leaf(
    "SetSiteTagsBp",
    &[
        ParamSpec::req("siteId", T::Str),
        ParamSpec::opt("tags", T::Str),
    ],
    &Tags,
);

#[derive(Debug)]
struct SetAttr;
impl Behaviour for SetAttr {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let site_id = site_id(cx, "siteId")?;
        let name = text(cx, "attrName")
            .ok_or_else(|| Raise::Failure("siteAttrEmpty: parameter attrName is empty".into()))?;
        let value = cx.str_param("attrValue").unwrap_or_default();
        ask(SiteOp::SetAttr {
            site_id,
            name,
            value,
        })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        done(cx)
    }
}

pub static SET_SITE_ATTR: KindSpec = leaf(
    "SetSiteAttrBp",
    &[
        ParamSpec::req("siteId", T::Str),
        ParamSpec::req("attrName", T::Str),
        ParamSpec::opt("attrValue", T::Str),
    ],
    &SetAttr,
);

#[derive(Debug)]
struct GetAttr;
impl Behaviour for GetAttr {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let site_id = site_id(cx, "siteId")?;
        let name = text(cx, "attrName")
            .ok_or_else(|| Raise::Failure("siteAttrEmpty: parameter attrName is empty".into()))?;
        ask(SiteOp::GetAttr { site_id, name })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match answer(cx)? {
            SiteReply::Attr(v) => done_with(cx, "attrValue", v.map_or(Value::Null, Value::String)),
            other => Err(unexpected(&other)),
        }
    }
}

pub static GET_SITE_ATTR: KindSpec = leaf(
    "GetSiteAttrBp",
    &[
        ParamSpec::req("siteId", T::Str),
        ParamSpec::req("attrName", T::Str),
    ],
    &GetAttr,
);

// ----- BatchSettingSiteBp, GetLockedSitesByTaskRecordIdBp ------------------------------------

#[derive(Debug)]
struct Batch;
impl Behaviour for Batch {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let site_ids = names(cx, "siteIds")?;
        let groups = names(cx, "groupNames")?;
        let filled = cx
            .bool_param("filled")
            .ok_or_else(|| Raise::Failure("fillParams: parameter filled is null".into()))?;
        ask(SiteOp::Batch {
            site_ids,
            groups,
            filled,
            content: cx.str_param("content"),
            physical: cx.bool_param("type"),
        })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match answer(cx)? {
            SiteReply::Count(n) => {
                let name = cx.block().name.clone();
                cx.log(
                    LogLevel::Info,
                    format!("[BatchSettingSiteBp][{name}]{n} site(s) updated"),
                );
                Ok(Action::Done)
            }
            other => Err(unexpected(&other)),
        }
    }
}

pub static BATCH_SETTING_SITE: KindSpec = leaf(
    "BatchSettingSiteBp",
    &[
        ParamSpec::opt("siteIds", T::List),
        ParamSpec::opt("groupNames", T::List),
        ParamSpec::req("filled", T::Bool),
        ParamSpec::opt("content", T::Str),
        ParamSpec::opt("type", T::Bool),
    ],
    &Batch,
);

#[derive(Debug)]
struct LockedBy;
impl Behaviour for LockedBy {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        // Null → this run's own locks (RDS would match `lockedBy = null`: none).
        let owner = text(cx, "taskRecordId").unwrap_or_else(|| cx.run_id().to_string());
        ask(SiteOp::LockedBy { owner })
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match answer(cx)? {
            SiteReply::Ids(ids) => {
                let list = ids.into_iter().map(Value::String).collect();
                done_with(cx, "lockedSiteIdList", Value::Array(list))
            }
            other => Err(unexpected(&other)),
        }
    }
}

pub static GET_LOCKED_SITES_BY_TASK: KindSpec = leaf(
    "GetLockedSitesByTaskRecordIdBp",
    &[ParamSpec::opt("taskRecordId", T::Str)],
    &LockedBy,
);
