//! Operator semantics (spec §2.5): arithmetic with numeric-string coercion, string
//! concatenation, loose equality, ordering and boolean operands; plus the result checks every
//! produced value goes through (string and collection limits, finite doubles).

use super::parser::BinOp;
use super::EvalError;
use crate::limits::{
    EXPR_COLLECTION_ITEMS_MAX, EXPR_RESULT_BYTES_MAX, EXPR_STEPS_MAX, EXPR_STRING_BYTES_MAX,
};
use crate::value::{clip, parse_java_double, parse_java_long, to_display_string, Value};
use std::cmp::Ordering;

/// Builds an evaluation error.
pub(super) fn fail<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError {
        message: message.into(),
    })
}

/// The evaluation step counter: every node visit (and every regex matching step) spends one.
#[derive(Debug, Default)]
pub(super) struct Budget {
    steps: usize,
    bytes: usize,
}

impl Budget {
    /// Charges the heap bytes of a value about to be copied into a result; fails once more
    /// than [`EXPR_RESULT_BYTES_MAX`] are charged in one evaluation.
    pub(super) fn charge(&mut self, v: &Value) -> Result<(), EvalError> {
        self.bytes = self.bytes.saturating_add(crate::value::approx_bytes(v));
        if self.bytes > EXPR_RESULT_BYTES_MAX {
            return fail(format!(
                "the result would take more than EXPR_RESULT_BYTES_MAX ({EXPR_RESULT_BYTES_MAX}) \
                 bytes"
            ));
        }
        Ok(())
    }

    /// Spends `n` steps; fails once more than [`EXPR_STEPS_MAX`] are spent.
    pub(super) fn spend(&mut self, n: usize) -> Result<(), EvalError> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > EXPR_STEPS_MAX {
            return fail(format!(
                "evaluation took more than EXPR_STEPS_MAX ({EXPR_STEPS_MAX}) steps"
            ));
        }
        Ok(())
    }
}

/// A number taken out of a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    Int(i64),
    Double(f64),
}

impl Num {
    pub(super) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Double(d) => d,
        }
    }

    pub(super) fn into_value(self) -> Result<Value, EvalError> {
        match self {
            Num::Int(i) => Ok(Value::from(i)),
            Num::Double(d) => double_value(d),
        }
    }
}

/// The value's kind and a clipped rendering, for error messages: `String "abc"`, `Int 5`.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("Bool {b}"),
        Value::Number(_) => format!("{} {}", type_name(v), to_display_string(v)),
        Value::String(s) => format!("String \"{}\"", clip(s)),
        Value::Array(items) => format!("List of {} items", items.len()),
        Value::Object(map) => format!("Map of {} entries", map.len()),
    }
}

/// The value model's name of the value's kind (spec §2.2).
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "Bool",
        Value::Number(n) if n.is_i64() => "Int",
        Value::Number(_) => "Double",
        Value::String(_) => "String",
        Value::Array(_) => "List",
        Value::Object(_) => "Map",
    }
}

/// A double result; NaN and infinities are errors because JSON cannot hold them.
pub(super) fn double_value(d: f64) -> Result<Value, EvalError> {
    crate::value::double(d).map_or_else(|| fail("result is not a finite number"), Ok)
}

/// A string result, refused past [`EXPR_STRING_BYTES_MAX`].
pub(super) fn string_value(s: String) -> Result<Value, EvalError> {
    check_string_len(s.len())?;
    Ok(Value::String(s))
}

/// Fails when a string of `len` bytes would pass [`EXPR_STRING_BYTES_MAX`].
pub(super) fn check_string_len(len: usize) -> Result<(), EvalError> {
    if len > EXPR_STRING_BYTES_MAX {
        return fail(format!(
            "string of {len} bytes is longer than EXPR_STRING_BYTES_MAX ({EXPR_STRING_BYTES_MAX})"
        ));
    }
    Ok(())
}

/// Fails when a list or map of `len` items would pass [`EXPR_COLLECTION_ITEMS_MAX`].
pub(super) fn check_items(len: usize) -> Result<(), EvalError> {
    if len > EXPR_COLLECTION_ITEMS_MAX {
        return fail(format!(
            "collection of {len} items is larger than EXPR_COLLECTION_ITEMS_MAX \
             ({EXPR_COLLECTION_ITEMS_MAX})"
        ));
    }
    Ok(())
}

/// A JSON number as a [`Num`]; numbers beyond i64 read as doubles.
pub(super) fn num_of(v: &Value) -> Option<Num> {
    let Value::Number(n) = v else { return None };
    Some(
        n.as_i64()
            .map_or_else(|| Num::Double(n.as_f64().unwrap_or(f64::NAN)), Num::Int),
    )
}

/// A number, or a String that parses as one (Java `Long.parseLong`, else `Double.valueOf`).
pub(super) fn coerce_num(v: &Value) -> Option<Num> {
    match v {
        Value::String(s) => parse_java_long(s).map(Num::Int).or_else(|| {
            parse_java_double(s)
                .filter(|d| d.is_finite())
                .map(Num::Double)
        }),
        other => num_of(other),
    }
}

/// `+ - * / %` on two values.
pub(super) fn arith(op: BinOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    let sym = symbol(op);
    if op == BinOp::Add {
        if a.is_string() || b.is_string() {
            return concat(a, b);
        }
        let (Some(x), Some(y)) = (num_of(a), num_of(b)) else {
            return fail(format!("cannot add {} and {}", describe(a), describe(b)));
        };
        return numeric(op, x, y);
    }
    let Some(x) = coerce_num(a) else {
        return fail(format!("'{sym}' needs numbers, got {}", describe(a)));
    };
    let Some(y) = coerce_num(b) else {
        return fail(format!("'{sym}' needs numbers, got {}", describe(b)));
    };
    numeric(op, x, y)
}

fn concat(a: &Value, b: &Value) -> Result<Value, EvalError> {
    let (sa, sb) = (to_display_string(a), to_display_string(b));
    check_string_len(sa.len() + sb.len())?;
    Ok(Value::String(sa + &sb))
}

fn numeric(op: BinOp, x: Num, y: Num) -> Result<Value, EvalError> {
    if let (Num::Int(i), Num::Int(j)) = (x, y) {
        if matches!(op, BinOp::Div | BinOp::Rem) && j == 0 {
            return fail(format!("division by zero in {i} {} 0", symbol(op)));
        }
        let result = match op {
            BinOp::Add => i.checked_add(j),
            BinOp::Sub => i.checked_sub(j),
            BinOp::Mul => i.checked_mul(j),
            BinOp::Div => i.checked_div(j),
            _ => i.checked_rem(j),
        };
        return result.map(Value::from).map_or_else(
            || fail(format!("integer overflow in {i} {} {j}", symbol(op))),
            Ok,
        );
    }
    let (p, q) = (x.as_f64(), y.as_f64());
    double_value(match op {
        BinOp::Add => p + q,
        BinOp::Sub => p - q,
        BinOp::Mul => p * q,
        BinOp::Div => p / q,
        _ => p % q,
    })
}

/// Unary minus: numbers and numeric strings.
pub(super) fn negate(v: &Value) -> Result<Value, EvalError> {
    match coerce_num(v) {
        Some(Num::Int(i)) => i
            .checked_neg()
            .map(Value::from)
            .map_or_else(|| fail(format!("integer overflow in -({i})")), Ok),
        Some(Num::Double(d)) => double_value(-d),
        None => fail(format!("'-' needs a number, got {}", describe(v))),
    }
}

fn symbol(op: BinOp) -> &'static str {
    match op {
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Rem => "%",
    }
}

/// The boolean an operand of `&& || ! ?:` stands for: a Bool or the String "true"/"false"
/// (ignoring case).
pub(super) fn truth(v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => fail(format!("expected a boolean, got {}", describe(other))),
    }
}

/// `x == empty`: null, `""`, an empty List or an empty Map.
pub(super) fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// `==` (spec §2.5): numeric across Int/Double and numeric strings, Bool vs String ignoring
/// case, deep for List and Map, false for other mixed kinds. Walks nested values with an
/// explicit stack.
pub(super) fn loose_eq(a: &Value, b: &Value) -> bool {
    let mut stack = vec![(a, b)];
    while let Some((a, b)) = stack.pop() {
        let same = match (a, b) {
            (Value::Array(x), Value::Array(y)) => {
                stack.extend(x.iter().zip(y.iter()));
                x.len() == y.len()
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter().all(|(k, v)| match y.get(k) {
                        Some(w) => {
                            stack.push((v, w));
                            true
                        }
                        None => false,
                    })
            }
            _ => scalar_eq(a, b),
        };
        if !same {
            return false;
        }
    }
    true
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::String(s)) | (Value::String(s), Value::Bool(x)) => {
            s.eq_ignore_ascii_case(if *x { "true" } else { "false" })
        }
        (Value::Number(_), Value::Number(_) | Value::String(_))
        | (Value::String(_), Value::Number(_)) => match (coerce_num(a), coerce_num(b)) {
            (Some(Num::Int(i)), Some(Num::Int(j))) => i == j,
            (Some(x), Some(y)) => x.as_f64() == y.as_f64(),
            _ => false,
        },
        _ => false,
    }
}

/// `< <= > >=`: two Strings lexicographically, else numbers (numeric strings coerced).
pub(super) fn compare(op: BinOp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    let ord = match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => match (coerce_num(a), coerce_num(b)) {
            (Some(Num::Int(i)), Some(Num::Int(j))) => i.cmp(&j),
            (Some(x), Some(y)) => x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .unwrap_or(Ordering::Equal),
            _ => {
                return fail(format!(
                    "cannot compare {} {} {}",
                    describe(a),
                    symbol(op),
                    describe(b)
                ))
            }
        },
    };
    Ok(match op {
        BinOp::Lt => ord.is_lt(),
        BinOp::Le => ord.is_le(),
        BinOp::Gt => ord.is_gt(),
        _ => ord.is_ge(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn add(a: Value, b: Value) -> Result<Value, EvalError> {
        arith(BinOp::Add, &a, &b)
    }

    #[test]
    fn plus_concatenates_when_either_side_is_a_string() {
        assert_eq!(add(json!("a"), json!(1)).unwrap(), json!("a1"));
        assert_eq!(add(json!(1), json!("a")).unwrap(), json!("1a"));
        assert_eq!(add(json!("0"), json!(1)).unwrap(), json!("01"));
        assert_eq!(add(json!("x"), Value::Null).unwrap(), json!("xnull"));
        assert_eq!(add(json!("x"), json!(3.0)).unwrap(), json!("x3.0"));
        assert_eq!(add(json!("x"), json!(0.0001)).unwrap(), json!("x1.0E-4"));
        assert_eq!(
            add(json!("m="), json!({"a": [1]})).unwrap(),
            json!("m={\"a\":[1]}")
        );
        assert_eq!(add(json!("b="), json!(true)).unwrap(), json!("b=true"));
    }

    #[test]
    fn plus_adds_numbers() {
        assert_eq!(add(json!(2), json!(3)).unwrap(), json!(5));
        assert!(add(json!(2), json!(3)).unwrap().is_i64());
        assert_eq!(add(json!(2), json!(0.5)).unwrap(), json!(2.5));
        assert!(add(json!(i64::MAX), json!(1))
            .unwrap_err()
            .message
            .contains("overflow"));
        assert!(add(Value::Null, json!(1))
            .unwrap_err()
            .message
            .contains("cannot add null"));
        assert!(add(json!(true), json!(1)).is_err());
        assert!(add(json!([1]), json!([2])).is_err());
    }

    #[test]
    fn other_arithmetic_coerces_numeric_strings() {
        let op = |o, a: Value, b: Value| arith(o, &a, &b);
        assert_eq!(op(BinOp::Sub, json!("5"), json!(2)).unwrap(), json!(3));
        assert_eq!(op(BinOp::Mul, json!("1.5"), json!(2)).unwrap(), json!(3.0));
        assert_eq!(op(BinOp::Div, json!(7), json!(2)).unwrap(), json!(3));
        assert_eq!(op(BinOp::Div, json!(-7), json!(2)).unwrap(), json!(-3));
        assert_eq!(op(BinOp::Rem, json!(-7), json!(2)).unwrap(), json!(-1));
        assert_eq!(op(BinOp::Div, json!(7.0), json!(2)).unwrap(), json!(3.5));
        assert_eq!(op(BinOp::Rem, json!(7.5), json!(2)).unwrap(), json!(1.5));
        assert!(op(BinOp::Div, json!(1), json!(0))
            .unwrap_err()
            .message
            .contains("division by zero"));
        assert!(op(BinOp::Rem, json!(1), json!("0"))
            .unwrap_err()
            .message
            .contains("division by zero"));
        assert_eq!(
            op(BinOp::Div, json!(1.0), json!(0)).unwrap_err().message,
            "result is not a finite number"
        );
        assert!(op(BinOp::Div, json!(i64::MIN), json!(-1))
            .unwrap_err()
            .message
            .contains("overflow"));
        assert!(op(BinOp::Sub, json!("abc"), json!(1))
            .unwrap_err()
            .message
            .contains("String \"abc\""));
        assert!(op(BinOp::Mul, Value::Null, json!(1)).is_err());
        assert_eq!(negate(&json!("4")).unwrap(), json!(-4));
        assert_eq!(negate(&json!(2.5)).unwrap(), json!(-2.5));
        assert!(negate(&json!(i64::MIN)).is_err());
        assert!(negate(&json!("x")).is_err());
    }

    #[test]
    fn equality_rules() {
        assert!(loose_eq(&Value::Null, &Value::Null));
        assert!(!loose_eq(&Value::Null, &json!("")));
        assert!(!loose_eq(&json!(0), &Value::Null));
        assert!(loose_eq(&json!(1), &json!(1.0)));
        assert!(loose_eq(&json!(1), &json!("1")));
        assert!(loose_eq(&json!("1.0"), &json!(1)));
        assert!(!loose_eq(&json!("abc"), &json!(1)));
        assert!(loose_eq(&json!(true), &json!("TRUE")));
        assert!(loose_eq(&json!("false"), &json!(false)));
        assert!(!loose_eq(&json!(true), &json!("yes")));
        assert!(!loose_eq(&json!("a"), &json!("A")));
        assert!(loose_eq(&json!([1, {"a": "x"}]), &json!([1.0, {"a": "x"}])));
        assert!(!loose_eq(&json!([1, 2]), &json!([1])));
        assert!(loose_eq(&json!({"a": 1, "b": 2}), &json!({"b": 2, "a": 1})));
        assert!(!loose_eq(&json!({"a": 1}), &json!({"b": 1})));
        assert!(!loose_eq(&json!(true), &json!(1)));
        assert!(!loose_eq(&json!([]), &json!({})));
        assert!(
            is_empty_value(&json!("")) && is_empty_value(&json!([])) && is_empty_value(&json!({}))
        );
        assert!(!is_empty_value(&json!(" ")) && !is_empty_value(&json!(0)));
    }

    #[test]
    fn ordering_rules() {
        let cmp = |op, a: Value, b: Value| compare(op, &a, &b);
        assert!(cmp(BinOp::Lt, json!(1), json!(2)).unwrap());
        assert!(cmp(BinOp::Ge, json!("3"), json!(3)).unwrap());
        assert!(cmp(BinOp::Gt, json!(2.5), json!("2")).unwrap());
        assert!(
            cmp(BinOp::Lt, json!("10"), json!("9")).unwrap(),
            "two strings compare as text"
        );
        assert!(cmp(BinOp::Le, json!("abc"), json!("abd")).unwrap());
        assert!(cmp(BinOp::Lt, Value::Null, json!(1))
            .unwrap_err()
            .message
            .contains("cannot compare null < Int 1"));
        assert!(cmp(BinOp::Lt, json!("x"), json!(1)).is_err());
        assert!(cmp(BinOp::Lt, json!(true), json!(false)).is_err());
    }

    #[test]
    fn boolean_operands() {
        assert!(truth(&json!(true)).unwrap());
        assert!(!truth(&json!("false")).unwrap());
        assert!(truth(&json!("True")).unwrap());
        assert!(truth(&json!(1))
            .unwrap_err()
            .message
            .contains("expected a boolean, got Int 1"));
        assert!(truth(&Value::Null).is_err());
        assert!(truth(&json!("yes")).is_err());
    }

    #[test]
    fn result_limits() {
        assert!(string_value("x".repeat(EXPR_STRING_BYTES_MAX)).is_ok());
        let e = string_value("x".repeat(EXPR_STRING_BYTES_MAX + 1)).unwrap_err();
        assert!(e.message.contains("EXPR_STRING_BYTES_MAX"));
        assert!(check_items(EXPR_COLLECTION_ITEMS_MAX).is_ok());
        assert!(check_items(EXPR_COLLECTION_ITEMS_MAX + 1)
            .unwrap_err()
            .message
            .contains("EXPR_COLLECTION_ITEMS_MAX"));
        assert_eq!(
            double_value(f64::NAN).unwrap_err().message,
            "result is not a finite number"
        );
    }
}
