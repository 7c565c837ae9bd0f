//! Reads definition files in every shape found in real exports (spec §1.1–1.3): a `.task` array
//! whose `detail` is a JSON string, a single `{label, detail}` object (detail as string or object),
//! the "flattened" shape with `rootBlock` at the top level, or a bare `detail`.

use crate::limits::{DEFINITIONS_PER_FILE_MAX, DEFINITION_FILE_BYTES_MAX};
use crate::value::{Map, Value};

/// A definition as read from a file, before validation: the wrapper's fields normalised, the
/// `detail` tree kept as JSON for the compile step.
#[derive(Debug, Clone)]
pub struct RawDefinition {
    pub id: Option<String>,
    pub label: String,
    pub version: Option<i64>,
    /// The `detail` object (`inputParams`, `outputParams`, `rootBlock`).
    pub detail: Map,
    pub periodic_task: bool,
    pub if_enable: bool,
    pub period_ms: Option<i64>,
    pub delay_ms: Option<i64>,
    pub release_sites: bool,
    /// vwed's stricter option (an extra key RDS ignores): release sites on every end.
    pub release_always: bool,
    pub remark: Option<String>,
    /// Other top-level fields as found, kept for export.
    pub extra: Map,
}

/// A definition that could not even be read (not JSON, `detail` missing or not an object).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    /// The definition's label when known, else its position in the file (`#3`).
    pub what: String,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.message)
    }
}

/// Reads every definition in `text`. `fallback_label` names a bare `detail` (usually the file
/// stem). A file-level problem gives a single error; a bad entry in an array gives an error for
/// that entry while the others load.
pub fn load_text(text: &str, fallback_label: &str) -> Vec<Result<RawDefinition, LoadError>> {
    if text.len() > DEFINITION_FILE_BYTES_MAX {
        return vec![Err(LoadError {
            what: fallback_label.to_string(),
            message: format!(
                "file is {} bytes, over DEFINITION_FILE_BYTES_MAX ({DEFINITION_FILE_BYTES_MAX})",
                text.len()
            ),
        })];
    }
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return vec![Err(LoadError {
                what: fallback_label.to_string(),
                message: format!("not valid JSON: {e}"),
            })]
        }
    };
    load_value(root, fallback_label)
}

/// Like [`load_text`] for an already parsed JSON value.
pub fn load_value(root: Value, fallback_label: &str) -> Vec<Result<RawDefinition, LoadError>> {
    match root {
        Value::Array(items) => {
            if items.len() > DEFINITIONS_PER_FILE_MAX {
                return vec![Err(LoadError {
                    what: fallback_label.to_string(),
                    message: format!(
                        "{} definitions, over DEFINITIONS_PER_FILE_MAX ({DEFINITIONS_PER_FILE_MAX})",
                        items.len()
                    ),
                })];
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| definition(item, &format!("#{}", i + 1)))
                .collect()
        }
        other => vec![definition(other, fallback_label)],
    }
}

fn definition(item: Value, position: &str) -> Result<RawDefinition, LoadError> {
    let Value::Object(mut obj) = item else {
        return Err(LoadError {
            what: position.to_string(),
            message: "a definition must be a JSON object".into(),
        });
    };
    let label = match obj.remove("label") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::Null) | None => position.to_string(),
        Some(other) => crate::value::to_display_string(&other),
    };
    let err = |message: String| LoadError {
        what: label.clone(),
        message,
    };
    let detail = if let Some(detail) = obj.remove("detail") {
        match detail {
            Value::Object(map) => map,
            Value::String(s) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(err("`detail` string does not hold a JSON object".into())),
                Err(e) => return Err(err(format!("`detail` string is not valid JSON: {e}"))),
            },
            _ => return Err(err("`detail` must be an object or a JSON string".into())),
        }
    } else if obj.contains_key("rootBlock") {
        // Flattened shape, or a bare detail: the detail keys sit at the top level.
        let mut detail = Map::new();
        for key in ["inputParams", "outputParams", "rootBlock"] {
            if let Some(v) = obj.remove(key) {
                detail.insert(key.to_string(), v);
            }
        }
        detail
    } else {
        return Err(err("no `detail` and no `rootBlock`".into()));
    };
    let id = obj.remove("id").and_then(|v| match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        other => crate::value::to_java_string(&other),
    });
    let release_always = match obj.remove("releasePolicy") {
        Some(Value::String(s)) => s.eq_ignore_ascii_case("always"),
        _ => false,
    };
    Ok(RawDefinition {
        id,
        version: obj.remove("version").and_then(|v| loose_int(&v)),
        periodic_task: obj.remove("periodicTask").is_some_and(|v| loose_bool(&v)),
        if_enable: obj.remove("ifEnable").is_some_and(|v| loose_bool(&v)),
        period_ms: obj.remove("period").and_then(|v| loose_int(&v)),
        delay_ms: obj.remove("delay").and_then(|v| loose_int(&v)),
        release_sites: obj.remove("releaseSites").is_some_and(|v| loose_bool(&v)),
        release_always,
        remark: obj
            .remove("remark")
            .and_then(|v| crate::value::to_java_string(&v)),
        label,
        detail,
        extra: obj,
    })
}

/// An integer written as a number or a numeric string (exports write both).
pub fn loose_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => crate::value::parse_java_long(s.trim()),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A flag written as `true`/`false`, `0`/`1` or their strings.
pub fn loose_bool(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => {
            let s = s.trim();
            s.eq_ignore_ascii_case("true") || s == "1"
        }
        _ => false,
    }
}

impl RawDefinition {
    /// The definition as one JSON object with `detail` as an object: the canonical body that is
    /// stored and versioned.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        if let Some(id) = &self.id {
            obj.insert("id".into(), Value::String(id.clone()));
        }
        obj.insert("label".into(), Value::String(self.label.clone()));
        obj.insert("detail".into(), Value::Object(self.detail.clone()));
        obj.insert(
            "periodicTask".into(),
            Value::from(i64::from(self.periodic_task)),
        );
        obj.insert("ifEnable".into(), Value::from(i64::from(self.if_enable)));
        if let Some(p) = self.period_ms {
            obj.insert("period".into(), Value::from(p));
        }
        if let Some(d) = self.delay_ms {
            obj.insert("delay".into(), Value::from(d));
        }
        obj.insert("releaseSites".into(), Value::Bool(self.release_sites));
        if self.release_always {
            obj.insert("releasePolicy".into(), Value::String("always".into()));
        }
        if let Some(r) = &self.remark {
            obj.insert("remark".into(), Value::String(r.clone()));
        }
        for (k, v) in &self.extra {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_export_with_string_details() {
        let text = r#"[{"id":"a","label":"one","detail":"{\"rootBlock\":{\"id\":-1}}",
            "period":"3000","periodicTask":1,"releaseSites":true},
            {"label":"two","detail":{"rootBlock":{"id":-1}}}]"#;
        let defs = load_text(text, "file");
        assert_eq!(defs.len(), 2);
        let one = defs[0].as_ref().unwrap();
        assert_eq!(one.id.as_deref(), Some("a"));
        assert_eq!(one.period_ms, Some(3000));
        assert!(one.periodic_task && one.release_sites);
        assert!(one.detail.contains_key("rootBlock"));
        assert_eq!(defs[1].as_ref().unwrap().label, "two");
    }

    #[test]
    fn bare_detail_and_flattened_shapes() {
        let bare = load_text(r#"{"inputParams":[],"rootBlock":{"id":-1}}"#, "stem");
        assert_eq!(bare[0].as_ref().unwrap().label, "stem");
        let flat = load_text(
            r#"{"label":"x","rootBlock":{"id":-1},"outputParams":[]}"#,
            "s",
        );
        let flat = flat[0].as_ref().unwrap();
        assert_eq!(flat.label, "x");
        assert!(flat.detail.contains_key("outputParams"));
    }

    #[test]
    fn bad_inputs_give_errors_not_panics() {
        assert!(load_text("{", "f")[0].is_err());
        assert!(load_text("42", "f")[0].is_err());
        assert!(load_text(r#"{"label":"x"}"#, "f")[0].is_err());
        let e = load_text(r#"{"label":"x","detail":"{oops"}"#, "f");
        assert!(e[0]
            .as_ref()
            .unwrap_err()
            .message
            .contains("not valid JSON"));
        let e = load_text(r#"[{"label":"ok","detail":{}}, 7]"#, "f");
        assert!(e[0].is_ok() && e[1].is_err());
    }

    #[test]
    fn oversized_file_is_rejected_with_the_limit_named() {
        let big = " ".repeat(DEFINITION_FILE_BYTES_MAX + 1);
        let e = load_text(&big, "f");
        assert!(e[0]
            .as_ref()
            .unwrap_err()
            .message
            .contains("DEFINITION_FILE_BYTES_MAX"));
    }

    #[test]
    fn too_many_definitions_is_rejected() {
        let many = format!("[{}]", vec!["{}"; DEFINITIONS_PER_FILE_MAX + 1].join(","));
        let e = load_text(&many, "f");
        assert_eq!(e.len(), 1);
        assert!(e[0]
            .as_ref()
            .unwrap_err()
            .message
            .contains("DEFINITIONS_PER_FILE_MAX"));
    }
}
