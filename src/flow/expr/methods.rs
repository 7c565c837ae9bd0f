//! Instance methods on values (spec §2.4): String, List, Map and number methods with Java
//! semantics. Names and argument counts are checked at parse time against [`METHODS`]; whether
//! the receiver has the method is checked at evaluation.
//!
//! `equals`, `contains`, `indexOf` on lists compare like Java `equals` (same kind and value, so
//! `1` and `1.0` differ), unlike the `==` operator. String indices count Unicode scalar values.

use super::ops::{check_string_len, describe, double_value, fail, string_value, Budget};
use super::EvalError;
use crate::value::{to_java_string, Map, Value};

/// A method name and how many arguments it takes.
#[derive(Debug)]
pub(super) struct MethodDef {
    pub name: &'static str,
    pub min: usize,
    pub max: usize,
}

const fn m(name: &'static str, min: usize, max: usize) -> MethodDef {
    MethodDef { name, min, max }
}

/// The union of the String, List, Map and number method tables.
pub(super) static METHODS: &[MethodDef] = &[
    m("equals", 1, 1),
    m("equalsIgnoreCase", 1, 1),
    m("length", 0, 0),
    m("isEmpty", 0, 0),
    m("contains", 1, 1),
    m("startsWith", 1, 1),
    m("endsWith", 1, 1),
    m("indexOf", 1, 1),
    m("substring", 1, 2),
    m("trim", 0, 0),
    m("toUpperCase", 0, 0),
    m("toLowerCase", 0, 0),
    m("replace", 2, 2),
    m("split", 1, 1),
    m("concat", 1, 1),
    m("toString", 0, 0),
    m("size", 0, 0),
    m("get", 1, 1),
    m("containsKey", 1, 1),
    m("intValue", 0, 0),
    m("longValue", 0, 0),
    m("doubleValue", 0, 0),
];

/// Every method name, comma separated, for error messages.
pub(super) fn method_names() -> String {
    METHODS
        .iter()
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A method receiver: a value, or one of the scope's maps read in place.
#[derive(Debug, Clone, Copy)]
pub(super) enum Recv<'a> {
    Value(&'a Value),
    Map(&'a Map),
}

/// Calls `name(args)` on `recv`.
pub(super) fn call(
    name: &str,
    recv: Recv<'_>,
    args: &[&Value],
    budget: &mut Budget,
) -> Result<Value, EvalError> {
    let value = match recv {
        Recv::Map(map) => return map_method(name, map, args),
        Recv::Value(v) => v,
    };
    match (name, value) {
        (_, Value::Null) => fail(format!("cannot call '{name}()' on null")),
        ("toString", v) => string_value(to_java_string(v).unwrap_or_default()),
        ("equals", v) => Ok(Value::Bool(v == args[0])),
        (_, Value::String(s)) => string_method(name, s, args, budget),
        (_, Value::Array(items)) => list_method(name, items, args),
        (_, Value::Object(map)) => map_method(name, map, args),
        (_, Value::Number(n)) => number_method(name, n, value),
        (_, other) => not_a_method(name, other),
    }
}

fn not_a_method<T>(name: &str, recv: &Value) -> Result<T, EvalError> {
    fail(format!("'{name}()' is not a method of {}", describe(recv)))
}

/// A String argument; Java would throw on null.
fn str_arg<'a>(name: &str, v: &'a Value) -> Result<std::borrow::Cow<'a, str>, EvalError> {
    match v {
        Value::String(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Value::Null => fail(format!("'{name}()' needs a string argument, got null")),
        other => Ok(std::borrow::Cow::Owned(
            to_java_string(other).unwrap_or_default(),
        )),
    }
}

fn index_arg(name: &str, v: &Value) -> Result<i64, EvalError> {
    v.as_i64().map_or_else(
        || {
            fail(format!(
                "'{name}()' needs an integer index, got {}",
                describe(v)
            ))
        },
        Ok,
    )
}

/// Char index of the first occurrence of `needle`, or -1.
fn char_index_of(s: &str, needle: &str) -> i64 {
    s.find(needle)
        .map_or(-1, |b| i64::try_from(s[..b].chars().count()).unwrap_or(-1))
}

fn string_method(
    name: &str,
    s: &str,
    args: &[&Value],
    budget: &mut Budget,
) -> Result<Value, EvalError> {
    let arg = |i: usize| str_arg(name, args[i]);
    let b = |x: bool| Ok(Value::Bool(x));
    match name {
        "equalsIgnoreCase" => b(args[0]
            .as_str()
            .is_some_and(|o| o.to_lowercase() == s.to_lowercase())),
        "length" => Ok(Value::from(s.chars().count())),
        "isEmpty" => b(s.is_empty()),
        "contains" => b(s.contains(&*arg(0)?)),
        "startsWith" => b(s.starts_with(&*arg(0)?)),
        "endsWith" => b(s.ends_with(&*arg(0)?)),
        "indexOf" => Ok(Value::from(char_index_of(s, &arg(0)?))),
        "substring" => substring(s, args),
        "trim" => Ok(Value::String(s.trim_matches(|c| c <= ' ').to_string())),
        "toUpperCase" => string_value(s.to_uppercase()),
        "toLowerCase" => string_value(s.to_lowercase()),
        "replace" => {
            let (from, to) = (arg(0)?, arg(1)?);
            let count = if from.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(&*from).count()
            };
            check_string_len(s.len() + count * to.len())?;
            Ok(Value::String(s.replace(&*from, &to)))
        }
        "split" => super::regex::split(s, &arg(0)?, budget),
        "concat" => {
            let other = arg(0)?;
            check_string_len(s.len() + other.len())?;
            Ok(Value::String(format!("{s}{other}")))
        }
        _ => not_a_method(name, &Value::String(crate::value::clip(s))),
    }
}

/// Java `String.substring(begin[, end])`: indices out of range are errors.
fn substring(s: &str, args: &[&Value]) -> Result<Value, EvalError> {
    let chars: Vec<char> = s.chars().collect();
    let len = i64::try_from(chars.len()).unwrap_or(i64::MAX);
    let begin = index_arg("substring", args[0])?;
    let end = match args.get(1) {
        Some(e) => index_arg("substring", e)?,
        None => len,
    };
    if begin < 0 || end > len || begin > end {
        return fail(format!(
            "substring({begin}, {end}) is out of range for a string of length {len}"
        ));
    }
    let (begin, end) = (
        usize::try_from(begin).unwrap_or(0),
        usize::try_from(end).unwrap_or(0),
    );
    Ok(Value::String(chars[begin..end].iter().collect()))
}

fn list_method(name: &str, items: &[Value], args: &[&Value]) -> Result<Value, EvalError> {
    let position = || items.iter().position(|v| v == args[0]);
    match name {
        "size" => Ok(Value::from(items.len())),
        "isEmpty" => Ok(Value::Bool(items.is_empty())),
        "contains" => Ok(Value::Bool(position().is_some())),
        "indexOf" => Ok(Value::from(
            position().map_or(-1, |i| i64::try_from(i).unwrap_or(-1)),
        )),
        "get" => {
            let i = index_arg("get", args[0])?;
            let item = usize::try_from(i).ok().and_then(|i| items.get(i));
            item.cloned().map_or_else(
                || {
                    fail(format!(
                        "index {i} is out of range for a list of {} items",
                        items.len()
                    ))
                },
                Ok,
            )
        }
        _ => fail(format!("'{name}()' is not a method of a List")),
    }
}

fn map_method(name: &str, map: &Map, args: &[&Value]) -> Result<Value, EvalError> {
    let key = || args[0].as_str();
    match name {
        "size" => Ok(Value::from(map.len())),
        "isEmpty" => Ok(Value::Bool(map.is_empty())),
        "containsKey" => Ok(Value::Bool(key().is_some_and(|k| map.contains_key(k)))),
        "get" => Ok(key()
            .and_then(|k| map.get(k))
            .cloned()
            .unwrap_or(Value::Null)),
        "toString" => string_value(serde_json::to_string(map).unwrap_or_default()),
        "equals" => Ok(Value::Bool(args[0].as_object() == Some(map))),
        _ => fail(format!("'{name}()' is not a method of a Map")),
    }
}

fn number_method(name: &str, n: &serde_json::Number, recv: &Value) -> Result<Value, EvalError> {
    let int = n.as_i64();
    let d = n.as_f64().unwrap_or(0.0);
    match name {
        // Java narrowing: a long keeps its low 32 bits, a double saturates.
        "intValue" => Ok(Value::from(
            int.map_or(i64::from(d as i32), |i| i64::from(i as i32)),
        )),
        "longValue" => Ok(Value::from(int.unwrap_or(d as i64))),
        "doubleValue" => double_value(d),
        _ => not_a_method(name, recv),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call_on(recv: Value, name: &str, args: &[Value]) -> Result<Value, EvalError> {
        let refs: Vec<&Value> = args.iter().collect();
        call(name, Recv::Value(&recv), &refs, &mut Budget::default())
    }

    fn ok(recv: Value, name: &str, args: &[Value]) -> Value {
        call_on(recv, name, args).unwrap()
    }

    #[test]
    fn string_methods() {
        let s = || json!("  Hello, World ");
        assert_eq!(ok(s(), "trim", &[]), json!("Hello, World"));
        assert_eq!(ok(s(), "length", &[]), json!(15));
        assert_eq!(ok(json!(""), "isEmpty", &[]), json!(true));
        assert_eq!(ok(s(), "contains", &[json!("World")]), json!(true));
        assert_eq!(ok(json!("LM12"), "startsWith", &[json!("LM")]), json!(true));
        assert_eq!(ok(json!("LM12"), "endsWith", &[json!("2")]), json!(true));
        assert_eq!(ok(json!("żółw"), "indexOf", &[json!("w")]), json!(3));
        assert_eq!(ok(json!("abc"), "indexOf", &[json!("x")]), json!(-1));
        assert_eq!(ok(json!("abcdef"), "substring", &[json!(2)]), json!("cdef"));
        assert_eq!(
            ok(json!("abcdef"), "substring", &[json!(1), json!(3)]),
            json!("bc")
        );
        assert!(call_on(json!("abc"), "substring", &[json!(4)]).is_err());
        assert!(call_on(json!("abc"), "substring", &[json!(2), json!(1)]).is_err());
        assert_eq!(ok(json!("aB"), "toUpperCase", &[]), json!("AB"));
        assert_eq!(ok(json!("aB"), "toLowerCase", &[]), json!("ab"));
        assert_eq!(
            ok(json!("a-b-c"), "replace", &[json!("-"), json!("+")]),
            json!("a+b+c")
        );
        assert_eq!(ok(json!("a,b"), "split", &[json!(",")]), json!(["a", "b"]));
        assert_eq!(ok(json!("a"), "concat", &[json!("b")]), json!("ab"));
        assert!(call_on(json!("a"), "concat", &[Value::Null]).is_err());
        assert_eq!(ok(json!("a"), "equals", &[json!("a")]), json!(true));
        assert_eq!(
            ok(json!("a"), "equalsIgnoreCase", &[json!("A")]),
            json!(true)
        );
        assert_eq!(
            ok(json!("a"), "equalsIgnoreCase", &[Value::Null]),
            json!(false)
        );
        assert_eq!(ok(json!("x"), "toString", &[]), json!("x"));
        assert!(call_on(json!("x"), "size", &[])
            .unwrap_err()
            .message
            .contains("not a method of String"));
    }

    #[test]
    fn list_map_and_number_methods() {
        let list = || json!(["a", 1, null]);
        assert_eq!(ok(list(), "size", &[]), json!(3));
        assert_eq!(ok(list(), "isEmpty", &[]), json!(false));
        assert_eq!(ok(list(), "contains", &[json!(1)]), json!(true));
        assert_eq!(ok(list(), "contains", &[json!(1.0)]), json!(false));
        assert_eq!(ok(list(), "indexOf", &[json!("a")]), json!(0));
        assert_eq!(ok(list(), "get", &[json!(1)]), json!(1));
        assert!(call_on(list(), "get", &[json!(3)])
            .unwrap_err()
            .message
            .contains("out of range"));
        assert_eq!(ok(list(), "toString", &[]), json!("[\"a\",1,null]"));
        let map = || json!({"k": "v"});
        assert_eq!(ok(map(), "size", &[]), json!(1));
        assert_eq!(ok(map(), "containsKey", &[json!("k")]), json!(true));
        assert_eq!(ok(map(), "get", &[json!("k")]), json!("v"));
        assert_eq!(ok(map(), "get", &[json!("x")]), Value::Null);
        assert_eq!(ok(map(), "toString", &[]), json!("{\"k\":\"v\"}"));
        assert_eq!(ok(json!(3.9), "intValue", &[]), json!(3));
        assert_eq!(ok(json!(-3.9), "longValue", &[]), json!(-3));
        assert_eq!(
            ok(json!(5_000_000_000i64), "intValue", &[]),
            json!(705_032_704)
        );
        assert_eq!(ok(json!(2), "doubleValue", &[]), json!(2.0));
        assert_eq!(ok(json!(2.5), "toString", &[]), json!("2.5"));
        assert!(call_on(Value::Null, "size", &[])
            .unwrap_err()
            .message
            .contains("on null"));
        assert!(call_on(json!(true), "size", &[]).is_err());
        assert!(call_on(json!(1), "trim", &[]).is_err());
    }
}
