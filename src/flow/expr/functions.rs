//! Static helpers callable on class receivers (spec §2.4): commons-lang3 `StringUtils` with its
//! null-safe semantics, `Integer.parseInt` and friends, `Math.*`, `String.valueOf`,
//! `Boolean.parseBoolean` and `System.currentTimeMillis` (read from `task.nowMs`).
//!
//! Arguments that are not strings are passed to `StringUtils` helpers as their Java string form
//! (as MVEL coerces them); string lengths and indices count Unicode scalar values (Java counts
//! UTF-16 units, which differs only outside the Basic Multilingual Plane).

use super::ops::{
    check_items, check_string_len, coerce_num, describe, double_value, fail, string_value, Num,
};
use super::EvalError;
use crate::value::{
    parse_java_double, parse_java_long, to_bool, to_display_string, to_java_string, Map, Value,
};
use std::borrow::Cow;

/// A static helper: `call(args, task)`; `task` is the scope's task map (for `nowMs`).
pub(super) type StaticFn = fn(&[&Value], &Map) -> Result<Value, EvalError>;

/// One entry of the static helper table.
#[derive(Debug)]
pub(super) struct StaticDef {
    pub class: &'static str,
    pub name: &'static str,
    pub min: usize,
    pub max: usize,
    pub call: StaticFn,
}

/// Class names valid as a call receiver.
pub(super) const CLASSES: &[&str] = &[
    "StringUtils",
    "Integer",
    "Long",
    "Double",
    "String",
    "Boolean",
    "Math",
    "System",
];

const fn def(
    class: &'static str,
    name: &'static str,
    min: usize,
    max: usize,
    call: StaticFn,
) -> StaticDef {
    StaticDef {
        class,
        name,
        min,
        max,
        call,
    }
}

/// Every supported static helper.
pub(super) static STATICS: &[StaticDef] = &[
    def("StringUtils", "isEmpty", 1, 1, |a, _| {
        Ok(Value::Bool(is_empty(a[0])))
    }),
    def("StringUtils", "isNotEmpty", 1, 1, |a, _| {
        Ok(Value::Bool(!is_empty(a[0])))
    }),
    def("StringUtils", "isBlank", 1, 1, |a, _| {
        Ok(Value::Bool(is_blank(a[0])))
    }),
    def("StringUtils", "isNotBlank", 1, 1, |a, _| {
        Ok(Value::Bool(!is_blank(a[0])))
    }),
    def("StringUtils", "equals", 2, 2, |a, _| {
        Ok(Value::Bool(su_equals(a[0], a[1], false)))
    }),
    def("StringUtils", "equalsIgnoreCase", 2, 2, |a, _| {
        Ok(Value::Bool(su_equals(a[0], a[1], true)))
    }),
    def("StringUtils", "contains", 2, 2, |a, _| {
        Ok(Value::Bool(
            matches!((s(a[0]), s(a[1])), (Some(x), Some(y)) if x.contains(&*y)),
        ))
    }),
    def("StringUtils", "startsWith", 2, 2, |a, _| {
        Ok(Value::Bool(affix(a, true)))
    }),
    def("StringUtils", "endsWith", 2, 2, |a, _| {
        Ok(Value::Bool(affix(a, false)))
    }),
    def("StringUtils", "trim", 1, 1, |a, _| {
        map_str(a[0], |x| x.trim_matches(|c| c <= ' ').to_string())
    }),
    def("StringUtils", "defaultString", 1, 2, default_string),
    def("StringUtils", "defaultIfEmpty", 2, 2, |a, _| {
        Ok(if is_empty(a[0]) {
            a[1].clone()
        } else {
            a[0].clone()
        })
    }),
    def("StringUtils", "upperCase", 1, 1, |a, _| {
        map_str(a[0], |x| x.to_uppercase())
    }),
    def("StringUtils", "lowerCase", 1, 1, |a, _| {
        map_str(a[0], |x| x.to_lowercase())
    }),
    def("StringUtils", "substring", 2, 3, su_substring),
    def("StringUtils", "substringBefore", 2, 2, |a, _| {
        substring_around(a, true)
    }),
    def("StringUtils", "substringAfter", 2, 2, |a, _| {
        substring_around(a, false)
    }),
    def("StringUtils", "replace", 3, 3, su_replace),
    def("StringUtils", "split", 1, 2, su_split),
    def("StringUtils", "join", 1, 2, su_join),
    def("StringUtils", "isNumeric", 1, 1, |a, _| {
        Ok(Value::Bool(s(a[0]).is_some_and(|x| {
            !x.is_empty() && x.chars().all(char::is_numeric)
        })))
    }),
    def("StringUtils", "length", 1, 1, |a, _| {
        Ok(Value::from(s(a[0]).map_or(0, |x| x.chars().count())))
    }),
    def("StringUtils", "leftPad", 2, 3, |a, _| pad(a, true)),
    def("StringUtils", "rightPad", 2, 3, |a, _| pad(a, false)),
    def("Integer", "parseInt", 1, 1, |a, _| {
        parse_long(a[0], "Integer.parseInt", true)
    }),
    def("Long", "parseLong", 1, 1, |a, _| {
        parse_long(a[0], "Long.parseLong", false)
    }),
    def("Double", "parseDouble", 1, 1, parse_double),
    def("String", "valueOf", 1, 1, |a, _| {
        string_value(to_display_string(a[0]))
    }),
    def("Boolean", "parseBoolean", 1, 1, |a, _| {
        Ok(Value::Bool(to_bool(a[0])))
    }),
    def("Math", "max", 2, 2, |a, _| min_max(a, true)),
    def("Math", "min", 2, 2, |a, _| min_max(a, false)),
    def("Math", "abs", 1, 1, math_abs),
    def("Math", "round", 1, 1, |a, _| {
        math_unary(a[0], "Math.round", |d| Num::Int((d + 0.5).floor() as i64))
    }),
    def("Math", "floor", 1, 1, |a, _| {
        math_unary(a[0], "Math.floor", |d| Num::Double(d.floor()))
    }),
    def("Math", "ceil", 1, 1, |a, _| {
        math_unary(a[0], "Math.ceil", |d| Num::Double(d.ceil()))
    }),
    def("System", "currentTimeMillis", 0, 0, current_time_millis),
];

/// The helper `class.name`, if supported.
pub(super) fn lookup_static(class: &str, name: &str) -> Option<&'static StaticDef> {
    STATICS.iter().find(|d| d.class == class && d.name == name)
}

/// The supported method names of `class`, comma separated, for error messages.
pub(super) fn static_names(class: &str) -> String {
    let names: Vec<&str> = STATICS
        .iter()
        .filter(|d| d.class == class)
        .map(|d| d.name)
        .collect();
    names.join(", ")
}

/// One supported method of `class`, for the example in an error message.
pub(super) fn first_method(class: &str) -> &'static str {
    STATICS
        .iter()
        .find(|d| d.class == class)
        .map_or("method", |d| d.name)
}

/// The string form of an argument; null stays `None`.
fn s(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(x) => Some(Cow::Borrowed(x)),
        other => to_java_string(other).map(Cow::Owned),
    }
}

fn is_empty(v: &Value) -> bool {
    s(v).is_none_or(|x| x.is_empty())
}

/// Java `Character.isWhitespace`: Unicode white space except the no-break spaces.
fn java_whitespace(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\u{A0}' | '\u{2007}' | '\u{202F}')
}

fn is_blank(v: &Value) -> bool {
    s(v).is_none_or(|x| x.chars().all(java_whitespace))
}

fn su_equals(a: &Value, b: &Value, ignore_case: bool) -> bool {
    match (s(a), s(b)) {
        (None, None) => true,
        (Some(x), Some(y)) if ignore_case => x.to_lowercase() == y.to_lowercase(),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn affix(a: &[&Value], prefix: bool) -> bool {
    match (s(a[0]), s(a[1])) {
        (None, None) => true,
        (Some(x), Some(y)) if prefix => x.starts_with(&*y),
        (Some(x), Some(y)) => x.ends_with(&*y),
        _ => false,
    }
}

/// Applies `f` to the string form; null stays null.
fn map_str(v: &Value, f: impl FnOnce(&str) -> String) -> Result<Value, EvalError> {
    s(v).map_or(Ok(Value::Null), |x| string_value(f(&x)))
}

fn default_string(a: &[&Value], _: &Map) -> Result<Value, EvalError> {
    match (a[0], a.get(1)) {
        (Value::Null, None) => Ok(Value::String(String::new())),
        (Value::Null, Some(d)) => Ok((*d).clone()),
        (v, _) => map_str(v, str::to_string),
    }
}

/// An int argument (Java `int` parameter): an Int or a string of one.
fn int_arg(v: &Value, what: &str) -> Result<i64, EvalError> {
    match coerce_num(v) {
        Some(Num::Int(i)) => Ok(i),
        _ => fail(format!("{what} must be an integer, got {}", describe(v))),
    }
}

/// Clamps a possibly negative (from the end) index into `0..=len`, as commons-lang3 does.
fn clamp_index(i: i64, len: usize) -> usize {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let i = if i < 0 { len_i.saturating_add(i) } else { i };
    usize::try_from(i.clamp(0, len_i)).unwrap_or(0)
}

fn su_substring(a: &[&Value], _: &Map) -> Result<Value, EvalError> {
    let Some(text) = s(a[0]) else {
        return Ok(Value::Null);
    };
    let chars: Vec<char> = text.chars().collect();
    let start = clamp_index(int_arg(a[1], "StringUtils.substring start")?, chars.len());
    let end = match a.get(2) {
        Some(e) => clamp_index(int_arg(e, "StringUtils.substring end")?, chars.len()),
        None => chars.len(),
    };
    let out: String = if start < end {
        chars[start..end].iter().collect()
    } else {
        String::new()
    };
    Ok(Value::String(out))
}

fn substring_around(a: &[&Value], before: bool) -> Result<Value, EvalError> {
    let Some(text) = s(a[0]) else {
        return Ok(Value::Null);
    };
    if text.is_empty() {
        return Ok(Value::String(String::new()));
    }
    let out = match (s(a[1]), before) {
        (None, true) => text.to_string(),
        (None, false) => String::new(),
        (Some(sep), true) => text
            .find(&*sep)
            .map_or(text.to_string(), |i| text[..i].to_string()),
        (Some(sep), false) => text
            .find(&*sep)
            .map_or(String::new(), |i| text[i + sep.len()..].to_string()),
    };
    Ok(Value::String(out))
}

fn su_replace(a: &[&Value], _: &Map) -> Result<Value, EvalError> {
    let Some(text) = s(a[0]) else {
        return Ok(Value::Null);
    };
    match (s(a[1]), s(a[2])) {
        (Some(search), Some(with)) if !text.is_empty() && !search.is_empty() => {
            let count = text.matches(&*search).count();
            check_string_len(text.len() - count * search.len() + count * with.len())?;
            Ok(Value::String(text.replace(&*search, &with)))
        }
        _ => Ok(Value::String(text.into_owned())),
    }
}

/// `StringUtils.split(str)` on white space, `split(str, separatorChars)` on any of the chars;
/// adjacent separators count as one and no empty tokens are returned.
fn su_split(a: &[&Value], _: &Map) -> Result<Value, EvalError> {
    let Some(text) = s(a[0]) else {
        return Ok(Value::Null);
    };
    let seps = a.get(1).and_then(|v| s(v));
    let is_sep = |c: char| {
        seps.as_deref()
            .map_or_else(|| java_whitespace(c), |set| set.contains(c))
    };
    let mut items = Vec::new();
    for part in text.split(is_sep).filter(|p| !p.is_empty()) {
        items.push(Value::String(part.to_string()));
        check_items(items.len())?;
    }
    Ok(Value::Array(items))
}

fn su_join(a: &[&Value], _: &Map) -> Result<Value, EvalError> {
    let items = match a[0] {
        Value::Null => return Ok(Value::Null),
        Value::Array(items) => items,
        other => {
            return fail(format!(
                "StringUtils.join needs a List, got {}",
                describe(other)
            ))
        }
    };
    let sep = a.get(1).and_then(|v| s(v)).unwrap_or_default();
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep);
        }
        out.push_str(&to_java_string(item).unwrap_or_default());
        check_string_len(out.len())?;
    }
    Ok(Value::String(out))
}

fn pad(a: &[&Value], left: bool) -> Result<Value, EvalError> {
    let Some(text) = s(a[0]) else {
        return Ok(Value::Null);
    };
    let size = int_arg(a[1], "pad size")?;
    let with = a
        .get(2)
        .and_then(|v| s(v))
        .filter(|p| !p.is_empty())
        .unwrap_or(Cow::Borrowed(" "));
    let len = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    let pads = usize::try_from(size.saturating_sub(len)).unwrap_or(0);
    check_string_len(text.len().saturating_add(pads))?;
    let padding: String = with.chars().cycle().take(pads).collect();
    let out = if left {
        padding + &text
    } else {
        text.into_owned() + &padding
    };
    string_value(out)
}

fn parse_long(v: &Value, what: &str, int32: bool) -> Result<Value, EvalError> {
    let text = to_display_string(v);
    let parsed = parse_java_long(&text).filter(|n| !int32 || i32::try_from(*n).is_ok());
    parsed.map(Value::from).map_or_else(
        || fail(format!("{what}: not an integer: {}", describe(v))),
        Ok,
    )
}

fn parse_double(a: &[&Value], _: &Map) -> Result<Value, EvalError> {
    let text = to_display_string(a[0]);
    match parse_java_double(&text) {
        Some(d) => double_value(d),
        None => fail(format!(
            "Double.parseDouble: not a number: {}",
            describe(a[0])
        )),
    }
}

fn num_arg(v: &Value, what: &str) -> Result<Num, EvalError> {
    coerce_num(v).map_or_else(
        || fail(format!("{what} needs a number, got {}", describe(v))),
        Ok,
    )
}

fn min_max(a: &[&Value], max: bool) -> Result<Value, EvalError> {
    let what = if max { "Math.max" } else { "Math.min" };
    let (x, y) = (num_arg(a[0], what)?, num_arg(a[1], what)?);
    let pick_first = |gt: bool| if max { gt } else { !gt };
    match (x, y) {
        (Num::Int(i), Num::Int(j)) => Ok(Value::from(if pick_first(i >= j) { i } else { j })),
        _ => {
            let (p, q) = (x.as_f64(), y.as_f64());
            double_value(if max { p.max(q) } else { p.min(q) })
        }
    }
}

fn math_abs(a: &[&Value], _: &Map) -> Result<Value, EvalError> {
    match num_arg(a[0], "Math.abs")? {
        Num::Int(i) => i
            .checked_abs()
            .map(Value::from)
            .map_or_else(|| fail("integer overflow in Math.abs"), Ok),
        Num::Double(d) => double_value(d.abs()),
    }
}

/// `round`/`floor`/`ceil`: an Int argument is returned as is by `round` (Java `round(long)`
/// does not exist, the int widens), else `f` applies to the double.
fn math_unary(v: &Value, what: &str, f: fn(f64) -> Num) -> Result<Value, EvalError> {
    match (num_arg(v, what)?, what) {
        (Num::Int(i), "Math.round") => Ok(Value::from(i)),
        (n, _) => f(n.as_f64()).into_value(),
    }
}

/// The engine never reads the clock during evaluation: the caller puts the current time in
/// `task.nowMs` when it wants `System.currentTimeMillis()` to work.
fn current_time_millis(_: &[&Value], task: &Map) -> Result<Value, EvalError> {
    match task.get("nowMs") {
        Some(v @ Value::Number(n)) if n.is_i64() => Ok(v.clone()),
        _ => fail("System.currentTimeMillis() is unavailable: the engine provides no clock (task.nowMs is not set)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(class: &str, name: &str, args: &[Value]) -> Result<Value, EvalError> {
        let def = lookup_static(class, name).expect("known helper");
        let refs: Vec<&Value> = args.iter().collect();
        (def.call)(&refs, &Map::new())
    }

    fn su(name: &str, args: &[Value]) -> Value {
        call("StringUtils", name, args).unwrap()
    }

    #[test]
    fn string_utils_table_with_nulls() {
        let n = Value::Null;
        let cases: Vec<(&str, Vec<Value>, Value)> = vec![
            ("isEmpty", vec![n.clone()], json!(true)),
            ("isEmpty", vec![json!("")], json!(true)),
            ("isEmpty", vec![json!(" ")], json!(false)),
            ("isNotEmpty", vec![n.clone()], json!(false)),
            ("isBlank", vec![n.clone()], json!(true)),
            ("isBlank", vec![json!(" \t\n")], json!(true)),
            ("isBlank", vec![json!("\u{A0}")], json!(false)),
            ("isNotBlank", vec![json!(" x ")], json!(true)),
            ("equals", vec![n.clone(), n.clone()], json!(true)),
            ("equals", vec![n.clone(), json!("a")], json!(false)),
            ("equals", vec![json!("a"), json!("a")], json!(true)),
            ("equals", vec![json!(5), json!("5")], json!(true)),
            (
                "equalsIgnoreCase",
                vec![json!("aB"), json!("Ab")],
                json!(true),
            ),
            (
                "equalsIgnoreCase",
                vec![json!("a"), n.clone()],
                json!(false),
            ),
            ("contains", vec![n.clone(), json!("a")], json!(false)),
            ("contains", vec![json!("abc"), n.clone()], json!(false)),
            ("contains", vec![json!("abc"), json!("bc")], json!(true)),
            ("contains", vec![json!("abc"), json!("")], json!(true)),
            ("startsWith", vec![n.clone(), n.clone()], json!(true)),
            ("startsWith", vec![json!("LM12"), json!("LM")], json!(true)),
            ("startsWith", vec![json!("LM12"), n.clone()], json!(false)),
            ("endsWith", vec![json!("LM12"), json!("12")], json!(true)),
            ("trim", vec![n.clone()], n.clone()),
            ("trim", vec![json!("\t x \n")], json!("x")),
            ("defaultString", vec![n.clone()], json!("")),
            ("defaultString", vec![n.clone(), json!("d")], json!("d")),
            ("defaultString", vec![json!("v"), json!("d")], json!("v")),
            ("defaultIfEmpty", vec![json!(""), json!("d")], json!("d")),
            ("defaultIfEmpty", vec![n.clone(), n.clone()], n.clone()),
            ("defaultIfEmpty", vec![json!("v"), json!("d")], json!("v")),
            ("upperCase", vec![n.clone()], n.clone()),
            ("upperCase", vec![json!("ab")], json!("AB")),
            ("lowerCase", vec![json!("AB")], json!("ab")),
            ("substring", vec![n.clone(), json!(1)], n.clone()),
            ("substring", vec![json!("abcdef"), json!(2)], json!("cdef")),
            ("substring", vec![json!("abcdef"), json!(-2)], json!("ef")),
            (
                "substring",
                vec![json!("abcdef"), json!(1), json!(3)],
                json!("bc"),
            ),
            (
                "substring",
                vec![json!("abcdef"), json!(4), json!(2)],
                json!(""),
            ),
            ("substring", vec![json!("abc"), json!(10)], json!("")),
            (
                "substringBefore",
                vec![json!("a-b-c"), json!("-")],
                json!("a"),
            ),
            (
                "substringBefore",
                vec![json!("abc"), json!("x")],
                json!("abc"),
            ),
            (
                "substringBefore",
                vec![json!("abc"), n.clone()],
                json!("abc"),
            ),
            ("substringBefore", vec![n.clone(), json!("-")], n.clone()),
            (
                "substringAfter",
                vec![json!("a-b-c"), json!("-")],
                json!("b-c"),
            ),
            ("substringAfter", vec![json!("abc"), json!("x")], json!("")),
            ("substringAfter", vec![json!("abc"), n.clone()], json!("")),
            (
                "replace",
                vec![json!("aXbX"), json!("X"), json!("-")],
                json!("a-b-"),
            ),
            (
                "replace",
                vec![json!("ab"), n.clone(), json!("-")],
                json!("ab"),
            ),
            (
                "replace",
                vec![json!("ab"), json!("a"), n.clone()],
                json!("ab"),
            ),
            (
                "replace",
                vec![n.clone(), json!("a"), json!("b")],
                n.clone(),
            ),
            ("split", vec![json!(" a  b ")], json!(["a", "b"])),
            (
                "split",
                vec![json!("a,,b;c"), json!(",;")],
                json!(["a", "b", "c"]),
            ),
            ("split", vec![json!("")], json!([])),
            ("split", vec![n.clone()], n.clone()),
            ("join", vec![json!(["a", 1, null])], json!("a1")),
            ("join", vec![json!(["a", "b"]), json!(",")], json!("a,b")),
            ("join", vec![json!(["a", "b"]), n.clone()], json!("ab")),
            ("join", vec![n.clone(), json!(",")], n.clone()),
            ("isNumeric", vec![n.clone()], json!(false)),
            ("isNumeric", vec![json!("")], json!(false)),
            ("isNumeric", vec![json!("123")], json!(true)),
            ("isNumeric", vec![json!("-1")], json!(false)),
            ("isNumeric", vec![json!("1.5")], json!(false)),
            ("length", vec![n.clone()], json!(0)),
            ("length", vec![json!("żółw")], json!(4)),
            (
                "leftPad",
                vec![json!("7"), json!(3), json!("0")],
                json!("007"),
            ),
            ("leftPad", vec![json!("7"), json!(3)], json!("  7")),
            (
                "leftPad",
                vec![json!("1234"), json!(3), json!("0")],
                json!("1234"),
            ),
            ("leftPad", vec![n.clone(), json!(3)], n.clone()),
            (
                "rightPad",
                vec![json!("ab"), json!(5), json!("xy")],
                json!("abxyx"),
            ),
            (
                "rightPad",
                vec![json!("ab"), json!(3), json!("")],
                json!("ab "),
            ),
        ];
        for (name, args, want) in cases {
            assert_eq!(su(name, &args), want, "StringUtils.{name}({args:?})");
        }
    }

    #[test]
    fn string_utils_errors_and_limits() {
        assert!(call("StringUtils", "join", &[json!("abc")]).is_err());
        let e = call(
            "StringUtils",
            "leftPad",
            &[json!("x"), json!(1_000_000_000)],
        )
        .unwrap_err();
        assert!(e.message.contains("EXPR_STRING_BYTES_MAX"));
        assert!(call("StringUtils", "substring", &[json!("x"), json!("a")]).is_err());
    }

    #[test]
    fn java_parsers() {
        assert_eq!(
            call("Integer", "parseInt", &[json!("42")]).unwrap(),
            json!(42)
        );
        assert_eq!(
            call("Integer", "parseInt", &[json!(-3)]).unwrap(),
            json!(-3)
        );
        assert!(call("Integer", "parseInt", &[json!("3000000000")]).is_err());
        assert!(call("Integer", "parseInt", &[json!("3.0")])
            .unwrap_err()
            .message
            .contains("not an integer"));
        assert!(call("Integer", "parseInt", &[Value::Null]).is_err());
        assert_eq!(
            call("Long", "parseLong", &[json!("3000000000")]).unwrap(),
            json!(3_000_000_000i64)
        );
        assert_eq!(
            call("Double", "parseDouble", &[json!("1e3")]).unwrap(),
            json!(1000.0)
        );
        assert!(call("Double", "parseDouble", &[json!("NaN")]).is_err());
        assert!(call("Double", "parseDouble", &[json!("x")]).is_err());
        assert_eq!(
            call("String", "valueOf", &[Value::Null]).unwrap(),
            json!("null")
        );
        assert_eq!(
            call("String", "valueOf", &[json!(2.0)]).unwrap(),
            json!("2.0")
        );
        assert_eq!(
            call("Boolean", "parseBoolean", &[json!("TRUE")]).unwrap(),
            json!(true)
        );
        assert_eq!(
            call("Boolean", "parseBoolean", &[json!("yes")]).unwrap(),
            json!(false)
        );
        assert_eq!(
            call("Boolean", "parseBoolean", &[Value::Null]).unwrap(),
            json!(false)
        );
    }

    #[test]
    fn math_helpers() {
        assert_eq!(
            call("Math", "max", &[json!(2), json!(5)]).unwrap(),
            json!(5)
        );
        assert_eq!(
            call("Math", "min", &[json!(2), json!("5")]).unwrap(),
            json!(2)
        );
        assert_eq!(
            call("Math", "max", &[json!(2), json!(2.5)]).unwrap(),
            json!(2.5)
        );
        assert!(call("Math", "max", &[Value::Null, json!(1)]).is_err());
        assert_eq!(call("Math", "abs", &[json!(-4)]).unwrap(), json!(4));
        assert_eq!(call("Math", "abs", &[json!(-4.5)]).unwrap(), json!(4.5));
        assert_eq!(call("Math", "round", &[json!(2.5)]).unwrap(), json!(3));
        assert_eq!(call("Math", "round", &[json!(-2.5)]).unwrap(), json!(-2));
        assert_eq!(call("Math", "round", &[json!(7)]).unwrap(), json!(7));
        assert_eq!(call("Math", "floor", &[json!(2.7)]).unwrap(), json!(2.0));
        assert_eq!(call("Math", "ceil", &[json!(2)]).unwrap(), json!(2.0));
    }

    #[test]
    fn current_time_comes_from_the_task_map() {
        let def = lookup_static("System", "currentTimeMillis").unwrap();
        assert!((def.call)(&[], &Map::new())
            .unwrap_err()
            .message
            .contains("nowMs"));
        let task = json!({"nowMs": 1_700_000_000_000i64});
        let task = task.as_object().unwrap();
        assert_eq!((def.call)(&[], task).unwrap(), json!(1_700_000_000_000i64));
    }
}
