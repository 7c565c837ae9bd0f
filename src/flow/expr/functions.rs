//! Static helpers callable on class receivers (spec §2.4): the table of all of them, and
//! `Integer.parseInt` and friends, `Math.*`, `String.valueOf`, `Boolean.parseBoolean` and
//! `System.currentTimeMillis` (read from `task.nowMs`). `StringUtils` is in [`super::string_utils`].

use super::ops::{coerce_num, describe, double_value, fail, string_value, Num};
use super::string_utils::STRING_UTILS;
use super::EvalError;
use crate::value::{parse_java_double, parse_java_long, to_bool, to_display_string, Map, Value};

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

pub(super) const fn def(
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

/// The supported static helpers other than `StringUtils` ([`STRING_UTILS`]).
pub(super) static STATICS: &[StaticDef] = &[
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

fn all() -> impl Iterator<Item = &'static StaticDef> {
    STRING_UTILS.iter().chain(STATICS)
}

/// The helper `class.name`, if supported.
pub(super) fn lookup_static(class: &str, name: &str) -> Option<&'static StaticDef> {
    all().find(|d| d.class == class && d.name == name)
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
