//! The dynamic value model of flows (spec §2.2) and the Java-compatible conversions blocks use.
//!
//! A value is a `serde_json::Value` built with `preserve_order`, so maps keep insertion order and
//! integers stay distinct from doubles (`Number::is_i64` / `is_f64`). Conversions follow the Java
//! rules RDS applies to a value's string form (`Long.parseLong`, `Double.valueOf`,
//! `Boolean.parseBoolean`), so `"3.0"` fails an int parameter exactly as in RDS.

pub use serde_json::Map as JsonMap;
pub use serde_json::Value;

/// An insertion-ordered string-keyed map of values.
pub type Map = JsonMap<String, Value>;

/// A conversion of a value to a Java type failed; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError(pub String);

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds a double value; `None` for NaN and infinities, which JSON (and so a checkpoint) cannot
/// hold.
pub fn double(d: f64) -> Option<Value> {
    serde_json::Number::from_f64(d).map(Value::Number)
}

/// Java `Double.toString`: `3.0`, `0.001`, `1.0E-4`, `1.0E7`, `-2.5`, `NaN`, `Infinity`.
pub fn java_double_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let abs = d.abs();
    if (1e-3..1e7).contains(&abs) {
        let s = format!("{d}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        // Shortest round-trip digits in scientific form, e.g. "1.2345e-7" -> "1.2345E-7".
        let s = format!("{d:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    }
}

/// RDS's `to_string` (spec §2.2): strings as is, numbers in Java form, booleans as
/// `true`/`false`, maps and lists as compact JSON; null gives `None`.
pub fn to_java_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(number_string(n)),
        Value::Array(_) | Value::Object(_) => Some(v.to_string()),
    }
}

/// Like [`to_java_string`] but null becomes `"null"`, as string concatenation does.
pub fn to_display_string(v: &Value) -> String {
    to_java_string(v).unwrap_or_else(|| "null".to_string())
}

fn number_string(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        java_double_string(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// `Long.parseLong` of the string form: optional sign, ASCII digits only.
pub fn to_long(v: &Value) -> Result<Option<i64>, ConvertError> {
    let Some(s) = to_java_string(v) else {
        return Ok(None);
    };
    parse_java_long(&s)
        .map(Some)
        .ok_or_else(|| ConvertError(format!("not an integer: \"{}\"", clip(&s))))
}

/// `Integer.parseInt` of the string form (32-bit range).
pub fn to_int(v: &Value) -> Result<Option<i32>, ConvertError> {
    match to_long(v)? {
        None => Ok(None),
        Some(n) => i32::try_from(n)
            .map(Some)
            .map_err(|_| ConvertError(format!("integer out of range: {n}"))),
    }
}

/// Java `Long.parseLong` rules on a string.
pub fn parse_java_long(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// `Double.valueOf` of the string form.
pub fn to_double(v: &Value) -> Result<Option<f64>, ConvertError> {
    let Some(s) = to_java_string(v) else {
        return Ok(None);
    };
    parse_java_double(&s)
        .map(Some)
        .ok_or_else(|| ConvertError(format!("not a number: \"{}\"", clip(&s))))
}

/// Java `Double.valueOf` on a trimmed string: decimal or exponent notation, optional `d`/`f`
/// suffix, `NaN` and `Infinity`.
pub fn parse_java_double(s: &str) -> Option<f64> {
    let t = s.trim();
    let t = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
    match t {
        "NaN" => return Some(f64::NAN),
        "Infinity" | "+Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let ok = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && t.bytes().any(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    t.parse::<f64>().ok()
}

/// `Boolean.parseBoolean` of the string form: true iff it equals "true" ignoring case.
pub fn to_bool(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        other => to_java_string(other).is_some_and(|s| s.eq_ignore_ascii_case("true")),
    }
}

/// Estimated heap bytes a value occupies in memory: one `Value` per node, string bytes, and
/// per map entry its key and index overhead. Used by every byte bound on run data, so the bounds
/// hold in memory, not only in JSON text. Walks with an explicit stack: values can be deep.
pub fn approx_bytes(v: &Value) -> usize {
    const NODE: usize = std::mem::size_of::<Value>();
    const ENTRY: usize = std::mem::size_of::<String>() + 2 * std::mem::size_of::<usize>();
    let mut total = 0usize;
    let mut stack: Vec<&Value> = vec![v];
    while let Some(v) = stack.pop() {
        total += NODE;
        match v {
            Value::String(s) => total += s.len(),
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => {
                for (k, item) in map {
                    total += ENTRY + k.len();
                    stack.push(item);
                }
            }
            _ => {}
        }
    }
    total
}

/// Compact JSON of `v`, cut at `max` bytes (on a char boundary) with a `…` marker. Stops
/// serialising once `max` is reached, so a large value costs no large temporary string.
pub fn to_json_truncated(v: &Value, max: usize) -> String {
    struct Capped {
        buf: Vec<u8>,
        max: usize,
    }
    impl std::io::Write for Capped {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            let room = self.max + 4 - self.buf.len().min(self.max + 4);
            if room == 0 {
                return Err(std::io::Error::other("full"));
            }
            let n = data.len().min(room);
            self.buf.extend_from_slice(&data[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Capped {
        buf: Vec::new(),
        max,
    };
    let _ = serde_json::to_writer(&mut w, v);
    let mut text = String::from_utf8_lossy(&w.buf).into_owned();
    if text.len() > max {
        let mut cut = max.saturating_sub(3);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Shortens text for an error message to at most 80 characters.
pub fn clip(s: &str) -> String {
    const CLIP_CHARS: usize = 80;
    if s.chars().count() <= CLIP_CHARS {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(CLIP_CHARS).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn java_double_strings() {
        assert_eq!(java_double_string(3.0), "3.0");
        assert_eq!(java_double_string(0.001), "0.001");
        assert_eq!(java_double_string(0.0001), "1.0E-4");
        assert_eq!(java_double_string(1e7), "1.0E7");
        assert_eq!(java_double_string(1234567.5), "1234567.5");
        assert_eq!(java_double_string(-2.5), "-2.5");
        assert_eq!(java_double_string(1.5e-10), "1.5E-10");
    }

    #[test]
    fn long_conversion_follows_java() {
        assert_eq!(to_long(&json!("3")), Ok(Some(3)));
        assert_eq!(to_long(&json!("-7")), Ok(Some(-7)));
        assert_eq!(to_long(&json!(12)), Ok(Some(12)));
        assert!(to_long(&json!("3.0")).is_err());
        assert!(to_long(&json!(3.0)).is_err());
        assert!(to_long(&json!("")).is_err());
        assert!(to_long(&json!("abc")).is_err());
        assert_eq!(to_long(&Value::Null), Ok(None));
        assert!(to_int(&json!("99999999999")).is_err());
    }

    #[test]
    fn bool_conversion_follows_java() {
        assert!(to_bool(&json!("TRUE")));
        assert!(to_bool(&json!(true)));
        assert!(!to_bool(&json!("yes")));
        assert!(!to_bool(&json!("1")));
        assert!(!to_bool(&Value::Null));
    }

    #[test]
    fn double_conversion() {
        assert_eq!(to_double(&json!("1e3")), Ok(Some(1000.0)));
        assert_eq!(to_double(&json!("3")), Ok(Some(3.0)));
        assert!(to_double(&json!("x1")).is_err());
    }

    #[test]
    fn strings_of_values() {
        assert_eq!(
            to_java_string(&json!({"a": [1, 2.5]})).unwrap(),
            r#"{"a":[1,2.5]}"#
        );
        assert_eq!(to_display_string(&Value::Null), "null");
        assert_eq!(to_java_string(&json!(2.0)).unwrap(), "2.0");
    }

    #[test]
    fn approx_bytes_counts_memory_not_text() {
        let node = std::mem::size_of::<Value>();
        assert_eq!(approx_bytes(&json!("ab")), node + 2);
        // An array of empty strings is small as JSON but not in memory.
        let empties = Value::Array(vec![json!(""); 100]);
        assert!(approx_bytes(&empties) >= 100 * node);
        assert!(approx_bytes(&empties) > 3 * empties.to_string().len());
        let nested = approx_bytes(&json!({"k": ["abcdef", {"x": "yyyy"}]}));
        assert!(nested > 5 * node);
    }

    #[test]
    fn json_truncation_stops_at_the_bound() {
        let small = json!({"a": [1, "x"]});
        assert_eq!(to_json_truncated(&small, 100), small.to_string());
        let big = Value::String("é".repeat(10_000));
        let cut = to_json_truncated(&big, 1000);
        assert!(cut.len() <= 1000, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("\"é"));
    }
}
