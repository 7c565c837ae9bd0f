//! Builds a run's task inputs from the definition's declared inputs and a start request
//! (spec §1.4): request values replace declared defaults, undeclared keys are ignored, each value
//! is converted by its declared type, and a value that does not convert is kept as its string.

use super::model::InputDecl;
use crate::value::{self, Map, Value};

/// The task inputs of a new run.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInputs {
    /// `taskInputs.<name>` for expressions.
    pub values: Map,
    /// The declared entries with replaced `defaultValue`s, stored with the run (§1.4 step 5).
    pub stored: Value,
    /// One line per ignored key or failed conversion.
    pub warnings: Vec<String>,
}

/// Builds the task inputs for `request` (the start request's `inputParams` object).
pub fn build(decls: &[InputDecl], request: &Map) -> TaskInputs {
    let mut values = Map::new();
    let mut stored = Vec::with_capacity(decls.len());
    let mut warnings = Vec::new();
    for key in request.keys() {
        if !decls.iter().any(|d| &d.name == key) {
            warnings.push(format!(
                "input {key} is not declared by the definition; ignored"
            ));
        }
    }
    for decl in decls {
        let given = request.get(&decl.name).cloned();
        let raw = given.unwrap_or_else(|| decl.default_value.clone());
        let mut entry = match &decl.raw {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        entry.insert("defaultValue".into(), raw.clone());
        stored.push(Value::Object(entry));
        let converted = match convert(&decl.type_name, &raw) {
            Ok(v) => v,
            Err(e) => {
                warnings.push(format!(
                    "input {} ({}): {e}; kept as its string",
                    decl.name, decl.type_name
                ));
                Value::String(value::to_java_string(&raw).unwrap_or_default())
            }
        };
        values.insert(decl.name.clone(), converted);
    }
    TaskInputs {
        values,
        stored: Value::Array(stored),
        warnings,
    }
}

/// Rebuilds task inputs from a stored array (restart and recovery).
pub fn from_stored(decls: &[InputDecl], stored: &Value) -> TaskInputs {
    let mut request = Map::new();
    if let Value::Array(items) = stored {
        for item in items {
            if let (Some(name), Some(v)) = (
                item.get("name").and_then(Value::as_str),
                item.get("defaultValue"),
            ) {
                request.insert(name.to_string(), v.clone());
            }
        }
    }
    build(decls, &request)
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Converts one value by its declared type (the §1.4 table, fastjson casts).
pub(crate) fn convert(type_name: &str, v: &Value) -> Result<Value, String> {
    match type_name {
        "String" => Ok(match v {
            Value::Null => Value::Null,
            other => Value::String(value::to_java_string(other).unwrap_or_default()),
        }),
        "Boolean" => Ok(Value::Bool(match v {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) if s.eq_ignore_ascii_case("true") => true,
            Value::String(s) if s.is_empty() || s.eq_ignore_ascii_case("false") => false,
            Value::Null => false,
            other => return Err(format!("{other} is not a boolean")),
        })),
        "Long" => match v {
            _ if is_blank(v) => Ok(Value::from(0)),
            Value::Number(n) => Ok(Value::from(
                n.as_i64()
                    .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
            )),
            Value::String(s) => value::parse_java_long(s.trim())
                .map(Value::from)
                .ok_or_else(|| format!("\"{}\" is not an integer", value::clip(s))),
            Value::Bool(b) => Ok(Value::from(i64::from(*b))),
            other => Err(format!(
                "{} is not an integer",
                value::clip(&other.to_string())
            )),
        },
        "Double" => match v {
            _ if is_blank(v) => Ok(value::double(0.0).expect("finite")),
            other => value::to_double(other)
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    d.and_then(value::double)
                        .ok_or_else(|| "not a finite number".to_string())
                }),
        },
        "JSONObject" | "JSONArray" => {
            let want_object = type_name == "JSONObject";
            let parsed = match v {
                _ if is_blank(v) => return Ok(Value::Null),
                Value::String(s) => {
                    serde_json::from_str::<Value>(s).map_err(|e| format!("not JSON: {e}"))?
                }
                other => other.clone(),
            };
            match (&parsed, want_object) {
                (Value::Object(_), true) | (Value::Array(_), false) => Ok(parsed),
                _ => Err(format!(
                    "not a JSON {}",
                    if want_object { "object" } else { "array" }
                )),
            }
        }
        _ => Ok(Value::String(value::to_java_string(v).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decl(name: &str, ty: &str, default: Value) -> InputDecl {
        InputDecl {
            name: name.into(),
            type_name: ty.into(),
            default_value: default.clone(),
            raw: json!({"name": name, "type": ty, "defaultValue": default}),
        }
    }

    #[test]
    fn request_values_replace_defaults_and_convert() {
        let decls = vec![
            decl("site", "String", json!("AP1")),
            decl("n", "Long", json!("3")),
            decl("flag", "Boolean", json!("TRUE")),
            decl("list", "JSONArray", json!("[1,2]")),
            decl("d", "Double", json!(null)),
        ];
        let req = json!({"site": "AP9", "n": 7, "extra": 1});
        let built = build(&decls, req.as_object().unwrap());
        assert_eq!(built.values["site"], json!("AP9"));
        assert_eq!(built.values["n"], json!(7));
        assert_eq!(built.values["flag"], json!(true));
        assert_eq!(built.values["list"], json!([1, 2]));
        assert_eq!(built.values["d"], json!(0.0));
        assert!(built.warnings.iter().any(|w| w.contains("extra")));
        assert_eq!(built.stored[0]["defaultValue"], json!("AP9"));
    }

    #[test]
    fn bad_values_are_kept_as_strings() {
        let decls = vec![
            decl("n", "Long", json!("abc")),
            decl("a", "JSONArray", json!("[oops")),
        ];
        let built = build(&decls, &Map::new());
        assert_eq!(built.values["n"], json!("abc"));
        assert_eq!(built.values["a"], json!("[oops"));
        assert_eq!(built.warnings.len(), 2);
    }

    #[test]
    fn other_types_take_the_string_form() {
        let decls = vec![decl("i", "Integer", json!(5)), decl("x", "Any", json!([]))];
        let built = build(&decls, &Map::new());
        assert_eq!(built.values["i"], json!("5"));
        assert_eq!(built.values["x"], json!("[]"));
    }

    #[test]
    fn stored_inputs_rebuild_the_same_values() {
        let decls = vec![decl("n", "Long", json!("1"))];
        let req = json!({"n": "42"});
        let first = build(&decls, req.as_object().unwrap());
        let again = from_stored(&decls, &first.stored);
        assert_eq!(first.values, again.values);
    }
}
