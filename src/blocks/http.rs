//! HTTP blocks (spec §3.9): `GetBp`, `PostBp` and VWED's `HttpGetBp`, `HttpPostBp`. Each builds
//! one [`HttpOp`] from its parameters and waits while the scheduler sends it once; the answer is
//! the `response` output. With `retry`, a transport error is logged and the block waits
//! `retryInterval` (a timer: stop and pause act at once) before the next attempt, at most
//! `retryTimes` attempts; the request and the attempt count are kept in the block's frame
//! (within `FRAME_DATA_BYTES_MAX`), so a restart goes on counting.

use super::{done_with, Behaviour, Family, KindSpec, ParamSpec, ParamType as T};
use crate::engine::{Action, Cx, LogLevel, Raise, Wait};
use crate::integrations::http::{HttpKind, HttpOp};
use crate::integrations::{IoOp, IoReply};
use serde::{Deserialize, Serialize};

#[derive(Debug)]
struct Http(HttpKind);

fn send(op: HttpOp) -> Result<Action, Raise> {
    Ok(Action::Wait(Wait::Io(Box::new(IoOp::Http(op)))))
}

/// What a retrying block keeps between attempts: its request and the attempt under way.
#[derive(Serialize, Deserialize)]
struct Retrying {
    op: HttpOp,
    attempt: u32,
}

impl Behaviour for Http {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let op = HttpOp::from_params(self.0, cx.params()).map_err(Raise::Failure)?;
        if op.attempts > 1 {
            let kept = Retrying {
                op: op.clone(),
                attempt: 1,
            };
            let kept = serde_json::to_value(kept).map_err(|e| Raise::Failure(e.to_string()))?;
            cx.keep(kept)?;
        }
        send(op)
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let reply = cx.take_io_reply();
        let retrying = || -> Result<Retrying, Raise> {
            serde_json::from_value(cx.own_data().clone())
                .map_err(|e| Raise::Failure(format!("HTTP retry state: {e}")))
        };
        match reply {
            Some(IoReply::Value(response)) => done_with(cx, "response", response),
            Some(IoReply::Failed(reason)) => Err(Raise::Failure(reason)),
            Some(IoReply::Transport(reason)) => {
                let Ok(state) = retrying() else {
                    return Err(Raise::Failure(reason)); // retry off: one attempt
                };
                let (attempt, of) = (state.attempt, state.op.attempts);
                if attempt >= of {
                    return Err(Raise::Failure(format!("{reason} (after {of} attempts)")));
                }
                let next_ms = state.op.interval_ms;
                let line = format!("attempt {attempt} of {of}: {reason}; again in {next_ms} ms");
                cx.log(LogLevel::Warn, line);
                Ok(Action::Wait(Wait::Timer {
                    ms: i64::try_from(next_ms).unwrap_or(i64::MAX),
                }))
            }
            // The pause between attempts is over: the next attempt.
            None => {
                let mut state = retrying()?;
                state.attempt += 1;
                let op = state.op.clone();
                let kept =
                    serde_json::to_value(state).map_err(|e| Raise::Failure(e.to_string()))?;
                cx.keep(kept)?;
                send(op)
            }
        }
    }
}

const RETRY: [ParamSpec; 3] = [
    ParamSpec::opt("retry", T::Bool),
    ParamSpec::opt("retryTimes", T::Int),
    ParamSpec::opt("retryInterval", T::Int),
];

/// `GetBp`: `response` = the JSON body (null for a non-2xx status or an empty body).
pub static GET: KindSpec = KindSpec {
    name: "GetBp",
    family: Family::Http,
    params: &[
        ParamSpec::req("url", T::Str),
        ParamSpec::opt("header", T::Any),
        RETRY[0],
        RETRY[1],
        RETRY[2],
    ],
    branches: &[],
    behaviour: Some(&Http(HttpKind::Get)),
};

/// `PostBp`: `response` = `{code, body}`.
pub static POST: KindSpec = KindSpec {
    name: "PostBp",
    family: Family::Http,
    params: &[
        ParamSpec::req("url", T::Str),
        ParamSpec::opt("header", T::Any),
        ParamSpec::opt("param", T::Any),
        ParamSpec::opt("mediaType", T::Str),
        RETRY[0],
        RETRY[1],
        RETRY[2],
    ],
    branches: &[],
    behaviour: Some(&Http(HttpKind::Post)),
};

/// `HttpGetBp` (VWED): as `GetBp`, with `headers` and a per-request `timeout` (vwed's reading
/// of an undocumented block, spec §3.9).
pub static VWED_GET: KindSpec = KindSpec {
    name: "HttpGetBp",
    family: Family::Http,
    params: &[
        ParamSpec::req("url", T::Str),
        ParamSpec::opt("headers", T::Any),
        ParamSpec::opt("timeout", T::Long),
        RETRY[0],
        RETRY[1],
        RETRY[2],
    ],
    branches: &[],
    behaviour: Some(&Http(HttpKind::VwedGet)),
};

/// `HttpPostBp` (VWED): as `PostBp`, with `headers`, `timeout`, and the body from the first of
/// `params`, `param`, `body`.
pub static VWED_POST: KindSpec = KindSpec {
    name: "HttpPostBp",
    family: Family::Http,
    params: &[
        ParamSpec::req("url", T::Str),
        ParamSpec::opt("headers", T::Any),
        ParamSpec::opt("timeout", T::Long),
        ParamSpec::opt("params", T::Any),
        ParamSpec::opt("param", T::Any),
        ParamSpec::opt("body", T::Any),
        ParamSpec::opt("mediaType", T::Str),
        RETRY[0],
        RETRY[1],
        RETRY[2],
    ],
    branches: &[],
    behaviour: Some(&Http(HttpKind::VwedPost)),
};
