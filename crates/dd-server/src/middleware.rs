//! Request guards and response headers shared by every route.
//!
//! - `access_log`: one `tracing` event per request (target `dd_server::access`).
//! - `guard`: method, URI length and body limits, the request timeout (the API is GET only; the
//!   website's model and neuron pages also take a visitor's text by POST, with a larger body limit,
//!   and refusals under `/viz/` are HTML pages), hashed assets cached for a year, and
//!   conditional requests: a served state never changes (a database that grows while served is
//!   shown through a new state, `reload.rs`), so one ETag per state (the database's content id
//!   and the notice) covers every URL; a match turns a successful answer into a 304 without a
//!   body.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// One log event per request: method, target, status and time.
pub(crate) async fn access_log(request: Request, next: Next) -> Response {
    // Load tests run with the access log off: then a request pays for nothing here.
    if !tracing::enabled!(target: "dd_server::access", tracing::Level::INFO) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    // A visitor's text (`activations?text=`) is theirs: the log keeps its path only.
    let uri = match request.uri().path() {
        path if path.contains("/activations") => format!("{path}?…"),
        _ => request.uri().to_string(),
    };
    let response = next.run(request).await;
    tracing::info!(
        target: "dd_server::access",
        %method,
        %uri,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
    );
    response
}

pub(crate) async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let config = &state.config;
    let method = request.method();
    // Forms for a visitor's text post to the website's model and neuron pages; nothing else writes.
    let path = request.uri().path();
    let is_page = path.starts_with("/viz/");
    let is_form = *method == Method::POST && is_page;
    let is_asset = path.starts_with("/static/");
    // Refusals on the website are pages; everywhere else they keep the API's JSON shape.
    let refuse = |error: ApiError| {
        if is_page { crate::web::error_page_response(error, state.notice()) } else { error.into_response() }
    };
    if !matches!(*method, Method::GET | Method::HEAD) && !is_form {
        let mut response = refuse(ApiError::with_status(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("method {method} is not allowed; the API is read-only (GET, HEAD)"),
        ));
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
        return response;
    }
    let uri_len = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > config.max_uri_len {
        return refuse(ApiError::with_status(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("request target is {uri_len} bytes; at most {}", config.max_uri_len),
        ));
    }
    let content_length =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let chunked = request.headers().contains_key(header::TRANSFER_ENCODING);
    let max_body_bytes = if is_form { crate::web::MAX_FORM_BYTES } else { config.max_body_bytes };
    if chunked || content_length.is_some_and(|n| n > max_body_bytes) {
        return refuse(ApiError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request bodies are limited to {max_body_bytes} bytes"),
        ));
    }
    let revalidating = request.headers().get(header::IF_NONE_MATCH).is_some_and(|tag| etag_matches(tag, &state.etag));
    let is_meta = request.uri().path().starts_with("/-/");
    let mut response = match tokio::time::timeout(config.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            return refuse(ApiError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("the request took longer than {} ms", config.request_timeout.as_millis()),
            ));
        }
    };
    if is_meta {
        // Health and version answers must never come from a cache.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    if !response.status().is_success() || is_form {
        return response;
    }
    if revalidating {
        // Only now, once the route has answered, is there a representation for the tag to match:
        // unknown names stay 404. The 304 keeps the headers a 200 would carry, `Vary` included.
        let mut not_modified = Response::new(Body::empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        not_modified.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        add_cache_headers(&mut not_modified, &state);
        return not_modified;
    }
    add_cache_headers(&mut response, &state);
    if is_asset {
        // Asset URLs carry a hash of their content, so a cached copy is never stale.
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    }
    response
}

/// The ETag and, unless the route set its own (`no-store` for visitors' texts), the public `Cache-Control`.
fn add_cache_headers(response: &mut Response, state: &AppState) {
    let headers = response.headers_mut();
    headers.insert(header::ETAG, state.etag.clone());
    if headers.contains_key(header::CACHE_CONTROL) {
        return;
    }
    let cache_control = format!("public, max-age={}", state.config.cache_max_age_secs);
    if let Ok(value) = HeaderValue::from_str(&cache_control) {
        headers.insert(header::CACHE_CONTROL, value);
    }
}

/// Weak comparison (RFC 9110 §13.1.2): any listed tag, or `*`, matches.
fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else { return false };
    let ours = etag.to_str().unwrap_or_default().trim_start_matches("W/");
    list.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

pub(crate) async fn fallback(State(state): State<Arc<AppState>>, uri: axum::http::Uri) -> Response {
    // Browsers get a page; API clients keep the JSON error shape.
    let path = uri.path();
    if path == "/viz" || path.starts_with("/viz/") || path.starts_with("/static/") {
        return crate::web::not_found_page_response(state.notice());
    }
    crate::api::not_found_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compare_weakly() {
        let ours = HeaderValue::from_static("W/\"abc-1\"");
        assert!(etag_matches(&HeaderValue::from_static("W/\"abc-1\""), &ours));
        assert!(etag_matches(&HeaderValue::from_static("\"abc-1\""), &ours));
        assert!(etag_matches(&HeaderValue::from_static("\"x\", W/\"abc-1\""), &ours));
        assert!(etag_matches(&HeaderValue::from_static("*"), &ours));
        assert!(!etag_matches(&HeaderValue::from_static("W/\"abc-2\""), &ours));
    }
}
