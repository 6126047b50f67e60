//! Reading a request's parameters, shared by the API and the website: path segments and query
//! strings with rejections in our error shape, layer and neuron indices, and client input clipped
//! for echoing in messages.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::Uri;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `Path`, with rejections (bad percent-encoding) answered in our error shape.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::bad_parameter(rejection.body_text())),
        }
    }
}

/// The query string's parameters; a malformed query string is a 400.
pub(crate) fn query_params(uri: &Uri) -> Result<HashMap<String, String>, ApiError> {
    match Query::try_from_uri(uri) {
        Ok(Query(params)) => Ok(params),
        Err(rejection) => Err(ApiError::bad_parameter(rejection.body_text())),
    }
}

/// Parses a layer or neuron index: not a non-negative integer is a 400, past the end a 404.
pub(crate) fn parse_index(what: &'static str, text: &str, len: u64) -> Result<u32, ApiError> {
    let valid = !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    let value = if valid { text.parse::<u64>().ok() } else { None };
    let Some(value) = value else {
        return Err(ApiError::bad_parameter(format!("{what} must be a non-negative integer, got {:?}", clip(text))));
    };
    if value >= len {
        return Err(ApiError::not_found("out_of_range", format!("{what} {value} out of range: there are {len}")));
    }
    u32::try_from(value).map_err(|_| ApiError::not_found("out_of_range", format!("{what} {value} out of range")))
}

/// Echoes at most 64 characters of client input in messages.
pub(crate) fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_validated() {
        assert_eq!(parse_index("layer", "3", 12).expect("ok"), 3);
        assert_eq!(parse_index("layer", "0", 1).expect("ok"), 0);
        for bad in ["", "-1", "+1", "1.0", "abc", "1e3", " 1", "99999999999999999999999"] {
            assert_eq!(parse_index("layer", bad, 12).expect_err(bad).status(), 400, "{bad:?}");
        }
        for missing in ["12", "4294967296", "18446744073709551615"] {
            assert_eq!(parse_index("layer", missing, 12).expect_err(missing).status(), 404, "{missing:?}");
        }
    }
}
