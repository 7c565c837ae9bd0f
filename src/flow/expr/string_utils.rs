//! commons-lang3 `StringUtils` helpers (spec §2.4) with the library's null-safe semantics.
//!
//! Arguments that are not strings are passed as their Java string form (as MVEL coerces them);
//! string lengths and indices count Unicode scalar values (Java counts UTF-16 units, which differs
//! only outside the Basic Multilingual Plane). `isNumeric` accepts Unicode numeric characters
//! (`char::is_numeric`), a superset of Java's decimal digits (it also accepts e.g. `½`).

use super::functions::{def, StaticDef};
use super::ops::{check_items, check_string_len, coerce_num, describe, fail, string_value, Num};
use super::EvalError;
use crate::value::{to_java_string, Map, Value};
use std::borrow::Cow;

/// Every supported `StringUtils` helper.
pub(super) static STRING_UTILS: &[StaticDef] = &[
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
];

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

/// `(helper, arguments as JSON, expected result as JSON)`: commons-lang3 behaviour, nulls included.
#[cfg(test)]
const CASES: &[(&str, &str, &str)] = &[
    ("isEmpty", r#"[null]"#, r#"true"#),
    ("isEmpty", r#"[""]"#, r#"true"#),
    ("isEmpty", r#"[" "]"#, r#"false"#),
    ("isNotEmpty", r#"[null]"#, r#"false"#),
    ("isBlank", r#"[null]"#, r#"true"#),
    ("isBlank", r#"[" \t\n"]"#, r#"true"#),
    ("isBlank", r#"["\u00a0"]"#, r#"false"#),
    ("isNotBlank", r#"[" x "]"#, r#"true"#),
    ("equals", r#"[null, null]"#, r#"true"#),
    ("equals", r#"[null, "a"]"#, r#"false"#),
    ("equals", r#"["a", "a"]"#, r#"true"#),
    ("equals", r#"[5, "5"]"#, r#"true"#),
    ("equalsIgnoreCase", r#"["aB", "Ab"]"#, r#"true"#),
    ("equalsIgnoreCase", r#"["a", null]"#, r#"false"#),
    ("contains", r#"[null, "a"]"#, r#"false"#),
    ("contains", r#"["abc", null]"#, r#"false"#),
    ("contains", r#"["abc", "bc"]"#, r#"true"#),
    ("contains", r#"["abc", ""]"#, r#"true"#),
    ("startsWith", r#"[null, null]"#, r#"true"#),
    ("startsWith", r#"["LM12", "LM"]"#, r#"true"#),
    ("startsWith", r#"["LM12", null]"#, r#"false"#),
    ("endsWith", r#"["LM12", "12"]"#, r#"true"#),
    ("trim", r#"[null]"#, r#"null"#),
    ("trim", r#"["\t x \n"]"#, r#""x""#),
    ("defaultString", r#"[null]"#, r#""""#),
    ("defaultString", r#"[null, "d"]"#, r#""d""#),
    ("defaultString", r#"["v", "d"]"#, r#""v""#),
    ("defaultIfEmpty", r#"["", "d"]"#, r#""d""#),
    ("defaultIfEmpty", r#"[null, null]"#, r#"null"#),
    ("defaultIfEmpty", r#"["v", "d"]"#, r#""v""#),
    ("upperCase", r#"[null]"#, r#"null"#),
    ("upperCase", r#"["ab"]"#, r#""AB""#),
    ("lowerCase", r#"["AB"]"#, r#""ab""#),
    ("substring", r#"[null, 1]"#, r#"null"#),
    ("substring", r#"["abcdef", 2]"#, r#""cdef""#),
    ("substring", r#"["abcdef", -2]"#, r#""ef""#),
    ("substring", r#"["abcdef", 1, 3]"#, r#""bc""#),
    ("substring", r#"["abcdef", 4, 2]"#, r#""""#),
    ("substring", r#"["abc", 10]"#, r#""""#),
    ("substringBefore", r#"["a-b-c", "-"]"#, r#""a""#),
    ("substringBefore", r#"["abc", "x"]"#, r#""abc""#),
    ("substringBefore", r#"["abc", null]"#, r#""abc""#),
    ("substringBefore", r#"[null, "-"]"#, r#"null"#),
    ("substringAfter", r#"["a-b-c", "-"]"#, r#""b-c""#),
    ("substringAfter", r#"["abc", "x"]"#, r#""""#),
    ("substringAfter", r#"["abc", null]"#, r#""""#),
    ("replace", r#"["aXbX", "X", "-"]"#, r#""a-b-""#),
    ("replace", r#"["ab", null, "-"]"#, r#""ab""#),
    ("replace", r#"["ab", "a", null]"#, r#""ab""#),
    ("replace", r#"[null, "a", "b"]"#, r#"null"#),
    ("split", r#"[" a  b "]"#, r#"["a", "b"]"#),
    ("split", r#"["a,,b;c", ",;"]"#, r#"["a", "b", "c"]"#),
    ("split", r#"[""]"#, r#"[]"#),
    ("split", r#"[null]"#, r#"null"#),
    ("join", r#"[["a", 1, null]]"#, r#""a1""#),
    ("join", r#"[["a", "b"], ","]"#, r#""a,b""#),
    ("join", r#"[["a", "b"], null]"#, r#""ab""#),
    ("join", r#"[null, ","]"#, r#"null"#),
    ("isNumeric", r#"[null]"#, r#"false"#),
    ("isNumeric", r#"[""]"#, r#"false"#),
    ("isNumeric", r#"["123"]"#, r#"true"#),
    ("isNumeric", r#"["-1"]"#, r#"false"#),
    ("isNumeric", r#"["1.5"]"#, r#"false"#),
    ("length", r#"[null]"#, r#"0"#),
    ("length", r#"["żółw"]"#, r#"4"#),
    ("leftPad", r#"["7", 3, "0"]"#, r#""007""#),
    ("leftPad", r#"["7", 3]"#, r#""  7""#),
    ("leftPad", r#"["1234", 3, "0"]"#, r#""1234""#),
    ("leftPad", r#"[null, 3]"#, r#"null"#),
    ("rightPad", r#"["ab", 5, "xy"]"#, r#""abxyx""#),
    ("rightPad", r#"["ab", 3, ""]"#, r#""ab ""#),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(class: &str, name: &str, args: &[Value]) -> Result<Value, EvalError> {
        let def = super::super::functions::lookup_static(class, name).expect("known helper");
        let refs: Vec<&Value> = args.iter().collect();
        (def.call)(&refs, &Map::new())
    }

    fn su(name: &str, args: &[Value]) -> Value {
        call("StringUtils", name, args).unwrap()
    }

    #[test]
    fn string_utils_table_with_nulls() {
        for (name, args, want) in CASES {
            let args: Vec<Value> = serde_json::from_str(args).expect("valid case");
            let want: Value = serde_json::from_str(want).expect("valid case");
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
}
