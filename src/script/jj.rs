//! The `jj` object scripts call the appliance through (named as RDS names it where the meaning
//! matches): `log`, `getCache`, `putCache`, `getSite`, `getSites`, `getRobot`, `robots`,
//! `httpGet`, `httpPost`. Each forwards to the [`ScriptHost`]; a host error becomes a JS
//! exception `jj.<name>: <error>`.

use super::{CallContext, ScriptHost};
use crate::limits::LOG_LINE_BYTES_MAX;
use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Function, Object, Value};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

type Host = Arc<dyn ScriptHost>;

/// Defines the global `jj` in `ctx`; `call` is who the current call runs for (read by `log`).
pub fn install<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    call: &Rc<RefCell<CallContext>>,
) -> rquickjs::Result<()> {
    let jj = Object::new(ctx.clone())?;
    let (h, c) = (host.clone(), call.clone());
    let log = move |ctx: Ctx<'js>, msg: Value<'js>| -> rquickjs::Result<()> {
        let text = text_of(&ctx, msg)?;
        h.log(&c.borrow(), cut(&text, LOG_LINE_BYTES_MAX));
        Ok(())
    };
    jj.set("log", Function::new(ctx.clone(), log)?)?;

    let h = host.clone();
    let get_cache = move |ctx: Ctx<'js>, key: String| -> rquickjs::Result<Option<String>> {
        h.get_cache(&key).map_err(|e| throw(&ctx, "getCache", &e))
    };
    jj.set("getCache", Function::new(ctx.clone(), get_cache)?)?;

    let h = host.clone();
    let put_cache = move |ctx: Ctx<'js>, key: String, value: Value<'js>| -> rquickjs::Result<()> {
        let text = text_of(&ctx, value)?;
        h.put_cache(&key, &text)
            .map_err(|e| throw(&ctx, "putCache", &e))
    };
    jj.set("putCache", Function::new(ctx.clone(), put_cache)?)?;

    let h = host.clone();
    let get_site = move |ctx: Ctx<'js>, id: String| -> rquickjs::Result<Value<'js>> {
        let found = h.get_site(&id).map_err(|e| throw(&ctx, "getSite", &e))?;
        to_js(&ctx, &found.unwrap_or(serde_json::Value::Null))
    };
    jj.set("getSite", Function::new(ctx.clone(), get_site)?)?;

    let h = host.clone();
    let get_sites = move |ctx: Ctx<'js>, group: Opt<String>| -> rquickjs::Result<Value<'js>> {
        let sites = h
            .sites(group.0.as_deref())
            .map_err(|e| throw(&ctx, "getSites", &e))?;
        to_js(&ctx, &sites)
    };
    jj.set("getSites", Function::new(ctx.clone(), get_sites)?)?;

    let h = host.clone();
    let get_robot = move |ctx: Ctx<'js>, id: String| -> rquickjs::Result<Value<'js>> {
        let found = h.get_robot(&id).map_err(|e| throw(&ctx, "getRobot", &e))?;
        to_js(&ctx, &found.unwrap_or(serde_json::Value::Null))
    };
    jj.set("getRobot", Function::new(ctx.clone(), get_robot)?)?;

    let h = host.clone();
    let robots = move |ctx: Ctx<'js>| -> rquickjs::Result<Value<'js>> {
        let all = h.robots().map_err(|e| throw(&ctx, "robots", &e))?;
        to_js(&ctx, &all)
    };
    jj.set("robots", Function::new(ctx.clone(), robots)?)?;

    let h = host.clone();
    let http_get = move |ctx: Ctx<'js>, url: String| -> rquickjs::Result<String> {
        h.http_get(&url).map_err(|e| throw(&ctx, "httpGet", &e))
    };
    jj.set("httpGet", Function::new(ctx.clone(), http_get)?)?;

    let h = host.clone();
    let http_post =
        move |ctx: Ctx<'js>, url: String, body: Value<'js>| -> rquickjs::Result<String> {
            let text = text_of(&ctx, body)?;
            h.http_post(&url, &text)
                .map_err(|e| throw(&ctx, "httpPost", &e))
        };
    jj.set("httpPost", Function::new(ctx.clone(), http_post)?)?;

    ctx.globals().set("jj", jj)
}

/// A string argument as is; anything else as its JSON text (`undefined` as "").
fn text_of<'js>(ctx: &Ctx<'js>, v: Value<'js>) -> rquickjs::Result<String> {
    if let Some(s) = v.as_string() {
        return s.to_string();
    }
    Ok(match ctx.json_stringify(v)? {
        Some(s) => s.to_string()?,
        None => String::new(),
    })
}

/// A JSON value as a JS value.
fn to_js<'js>(ctx: &Ctx<'js>, v: &serde_json::Value) -> rquickjs::Result<Value<'js>> {
    ctx.json_parse(v.to_string())
}

fn throw(ctx: &Ctx<'_>, what: &str, e: &str) -> rquickjs::Error {
    Exception::throw_message(ctx, &format!("jj.{what}: {e}"))
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
