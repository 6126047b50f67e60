//! The API's one error type and its JSON shape: `{"error": {"code": …, "status": …, "message": …}}`.
//!
//! Client errors keep their message; internal errors are logged in full and
//! answered with a generic message, so no path, SQL or backtrace leaks.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// A malformed parameter (400).
    pub fn bad_parameter(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code: "bad_parameter", message: message.into() }
    }

    /// Something named in the request does not exist (404).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, code, message: message.into() }
    }

    /// The neuron, layer or model exists but has no data of this kind (404).
    pub fn missing_data(message: impl Into<String>) -> Self {
        Self::not_found("missing_data", message)
    }

    /// Any other status with its own code.
    pub fn with_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// Our bug or a broken database (500): the detail goes to the log only.
    pub fn internal(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %DisplayChain(error), "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal server error; the server log has the details".into(),
        }
    }

    /// The machine-readable code (`bad_parameter`, `unknown_model`, ...).
    #[cfg(test)]
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    /// The message shown to the client.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// An internal failure described by `message` alone (no error value to carry): logged, answered as 500.
    pub(crate) fn internal_message(message: impl Into<String>) -> Self {
        Self::internal(&InternalFailure(message.into()))
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// Renders the canonical error body.
pub(crate) fn error_body(status: StatusCode, code: &str, message: &str) -> String {
    serde_json::json!({ "error": { "code": code, "status": status.as_u16(), "message": message } }).to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = error_body(self.status, self.code, &self.message);
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

impl From<dd_store::StoreError> for ApiError {
    fn from(error: dd_store::StoreError) -> Self {
        ApiError::internal(&error)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        ApiError::internal(&error)
    }
}

/// An internal failure known only by its description.
#[derive(Debug)]
struct InternalFailure(String);

impl std::fmt::Display for InternalFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InternalFailure {}

/// Formats an error with its whole `source()` chain on one line.
struct DisplayChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
