//! HTTP blocks (spec §3.9): `GetBp`, `PostBp` and VWED's `HttpGetBp`, `HttpPostBp`. Each builds
//! one [`HttpOp`] from its parameters and waits while the scheduler sends it; the answer is the
//! `response` output.

use super::{done_with, Behaviour, Family, KindSpec, ParamSpec, ParamType as T};
use crate::engine::{Action, Cx, Raise, Wait};
use crate::integrations::http::{HttpKind, HttpOp};
use crate::integrations::{IoOp, IoReply};

#[derive(Debug)]
struct Http(HttpKind);

impl Behaviour for Http {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let op = HttpOp::from_params(self.0, cx.params()).map_err(Raise::Failure)?;
        Ok(Action::Wait(Wait::Io(Box::new(IoOp::Http(op)))))
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        match cx.take_io_reply() {
            Some(IoReply::Value(response)) => done_with(cx, "response", response),
            Some(IoReply::Failed(reason) | IoReply::Transport(reason)) => {
                Err(Raise::Failure(reason))
            }
            None => Err(Raise::Failure("no answer to the HTTP request".into())),
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
