//! The one error shape of the native API, `{"error": {"code", "message", "field"?}}`, and the
//! one place that maps every failure of the layers below to an HTTP status.

use crate::scheduler::{ControlError, SaveError, SubmitError};
use crate::script::ScriptError;
use crate::store::StoreError;
use hyper::StatusCode;
use serde_json::{json, Value};

/// A failed request: status, a stable machine code, a message naming what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Extra detail (diagnostics of an invalid definition).
    pub details: Option<Box<Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            details: None,
        }
    }

    /// 400 naming a field.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "bad_field", message);
        e.field = Some(field.to_string());
        e
    }

    pub fn bad_json(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_json", message)
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn store(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(what) => ApiError::conflict(what),
            StoreError::Limit { name, value } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "limit",
                format!("over {name} ({value})"),
            ),
            StoreError::Closed => ApiError::shutting_down(),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store",
                other.to_string(),
            ),
        }
    }

    pub fn shutting_down() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "vwed is shutting down",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        if let Some(details) = &self.details {
            error["details"] = (**details).clone();
        }
        json!({ "error": error })
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> ApiError {
        let message = e.to_string();
        match e {
            SubmitError::MissingDefinition => ApiError::field("defId", message),
            SubmitError::UnknownDefinition(_) => ApiError::not_found(message),
            SubmitError::QueueFull { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", message)
            }
            SubmitError::IdConflict(_) => ApiError::conflict(message),
            SubmitError::Invalid(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            }
            SubmitError::Store(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", message)
            }
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        let message = e.to_string();
        match e {
            ControlError::NotFound(_) => ApiError::not_found(message),
            ControlError::IllegalState { .. } => {
                ApiError::new(StatusCode::CONFLICT, "illegal_state", message)
            }
            ControlError::ShuttingDown => ApiError::shutting_down(),
            ControlError::Busy(_) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", message),
            ControlError::Store(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", message)
            }
        }
    }
}

impl From<SaveError> for ApiError {
    fn from(e: SaveError) -> ApiError {
        match e {
            SaveError::Invalid(diags) => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_definition",
                    "the definition has errors",
                );
                err.details = Some(Box::new(super::defs::diagnostics_json(&diags)));
                err
            }
            SaveError::Store(e) => ApiError::store(e),
        }
    }
}

impl From<ScriptError> for ApiError {
    fn from(e: ScriptError) -> ApiError {
        let message = e.to_string();
        match e {
            ScriptError::BadName(_) => ApiError::field("name", message),
            ScriptError::Syntax { line, message: m } => {
                let mut err = ApiError::new(StatusCode::BAD_REQUEST, "syntax_error", message);
                err.details = Some(Box::new(json!({"line": line, "message": m})));
                err
            }
            ScriptError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
            }
            ScriptError::TooMany { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit", message)
            }
            ScriptError::NoFile(_) | ScriptError::NotFound(_) => ApiError::not_found(message),
            ScriptError::Busy { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", message)
            }
            ScriptError::Closed => ApiError::shutting_down(),
            ScriptError::Timeout { .. }
            | ScriptError::Memory { .. }
            | ScriptError::Stack { .. }
            | ScriptError::Thrown(_)
            | ScriptError::BadResult(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "script_failed", message)
            }
            ScriptError::Io(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "script_store", message)
            }
        }
    }
}
