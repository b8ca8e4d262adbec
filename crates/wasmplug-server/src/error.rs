//! [`ApiError`]: every failure the API reports, as an
//! `application/problem+json` document with a stable `code`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use wasmplug_runtime::RuntimeError;

/// An error answer: status, stable code, human message, optional details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<serde_json::Value>,
    retry_after_seconds: Option<u32>,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    code: &'static str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after_seconds: None,
        }
    }

    /// Adds machine-readable details (e.g. contract violations).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 for a plugin that is not loaded.
    pub fn no_such_plugin(name: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_plugin",
            format!("no plugin named `{name}` is loaded"),
        )
    }

    /// 400 for a name outside `[a-z0-9][a-z0-9_-]{0,63}`.
    pub fn invalid_name(name: &str) -> Self {
        let shown: String = name.chars().take(80).flat_map(char::escape_default).collect();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            format!(
                "`{shown}` is not a plugin name: use 1 to 64 of a-z, 0-9, `_` and `-`, starting with a letter or digit"
            ),
        )
    }

    /// 503 with `Retry-After` when every call slot is taken.
    pub fn overloaded(message: impl Into<String>) -> Self {
        let mut error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
        error.retry_after_seconds = Some(1);
        error
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        let status = match &error {
            RuntimeError::NoSuchFunction { .. } => StatusCode::NOT_FOUND,
            error if error.is_caller_error() => StatusCode::BAD_REQUEST,
            RuntimeError::Busy { .. } => {
                let mut api = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.code(), error.to_string());
                api.retry_after_seconds = Some(1);
                return api;
            }
            RuntimeError::Unsupported { .. } | RuntimeError::EngineUnavailable { .. } => StatusCode::NOT_IMPLEMENTED,
            RuntimeError::Io { .. } | RuntimeError::Engine { .. } | RuntimeError::Grant { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let details = match &error {
            RuntimeError::Contract { violations } => serde_json::to_value(violations).ok(),
            RuntimeError::Trap { code, backtrace, .. } => {
                Some(serde_json::json!({ "trap": code.as_str(), "backtrace": backtrace }))
            }
            _ => None,
        };
        ApiError {
            status,
            code: error.code(),
            message: error.to_string(),
            details,
            retry_after_seconds: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("error"),
            status: self.status.as_u16(),
            code: self.code,
            detail: &self.message,
            details: self.details.as_ref(),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
