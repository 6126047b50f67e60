//! A page request as the website's modules share it: the view a `/viz` URL names, what rendering it
//! needs, the limits on a visitor's text, and how a page answers (HTML, errors included).

use std::collections::HashMap;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dd_store::SourceEntry;

use super::layout;
use crate::error::ApiError;
use crate::html::escape;
use crate::live::LiveTarget;
use crate::model_context::ModelContext;
use crate::state::AppState;

/// Longest text a visitor may submit, in bytes once decoded; the token limit applies after tokenizing.
pub(crate) const MAX_TEXT_BYTES: usize = 8 * 1024;

/// Largest form body accepted on `/viz/`: the text percent-encoded (three bytes per byte) and the field name.
pub(crate) const MAX_FORM_BYTES: u64 = 3 * MAX_TEXT_BYTES as u64 + 64;

/// What a `/viz` URL shows, after validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum View {
    /// `/viz/{model}`.
    Model,
    /// `/viz/{model}/{layer}`.
    Layer(u32),
    /// `/viz/{model}/{layer}/{neuron}`.
    Neuron(u32, u32),
    /// `/viz/{model}/search`.
    Search,
    /// `/viz/{model}/explanation-search`: explanations by meaning.
    ExplanationSearch,
    /// `/viz/{model}/random`: a redirect.
    Random,
    /// `/viz/{model}/groups`: the co-activating groups.
    Groups,
    /// `/viz/{model}/groups/{layer}/{neuron}`: the group a neuron is in.
    Group(u32, u32),
    /// `/viz/{model}/roles`: neurons ranked by their role in the weight graph.
    Roles,
    /// `/viz/{model}/changes`: the most changed neurons since a baseline.
    Changes,
    /// `/viz/{model}/changes/{layer}/{neuron}`: a neuron's examples beside the baseline's.
    Comparison(u32, u32),
}

impl View {
    /// What a visitor's text is run for on this page; `None` for pages that take no text.
    pub(crate) fn live_target(self) -> Option<LiveTarget> {
        match self {
            View::Model => Some(LiveTarget::Model),
            View::Neuron(layer, neuron) => Some(LiveTarget::Neuron(layer, neuron)),
            View::Layer(_)
            | View::Search
            | View::ExplanationSearch
            | View::Random
            | View::Groups
            | View::Group(..)
            | View::Roles
            | View::Changes
            | View::Comparison(..) => None,
        }
    }
}

/// What one page render needs from the shared state.
pub(crate) struct PageContext<'a> {
    /// The server's state.
    pub(crate) state: &'a AppState,
    /// The page's model.
    pub(crate) model: &'a ModelContext,
    /// The source the page shows (`mlp`).
    pub(crate) source: &'a SourceEntry,
    /// The query string's parameters.
    pub(crate) params: HashMap<String, String>,
}

impl PageContext<'_> {
    /// The model's name as it appears in URLs.
    pub(crate) fn model_name(&self) -> &str {
        &self.model.entry.metadata.name
    }

    /// `/viz/{model}` followed by `rest`.
    pub(crate) fn href(&self, rest: &str) -> String {
        format!("/viz/{}{rest}", self.model_name())
    }
}

/// An error answered as an HTML page with the API error's status.
pub(crate) struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError(error)
    }
}

impl From<dd_store::StoreError> for PageError {
    fn from(error: dd_store::StoreError) -> Self {
        PageError(error.into())
    }
}

impl From<tokio::task::JoinError> for PageError {
    fn from(error: tokio::task::JoinError) -> Self {
        PageError(error.into())
    }
}

impl PageError {
    /// The error page, with the server's notice (see `layout::frame`).
    pub(crate) fn page_response(self, notice: Option<&str>) -> Response {
        let status = self.0.status();
        let mut body = String::from("<div class=error-box><h1>");
        body.push_str(itoa::Buffer::new().format(status.as_u16()));
        body.push(' ');
        escape(&mut body, status.canonical_reason().unwrap_or("Error"));
        body.push_str("</h1><p>");
        escape(&mut body, self.0.message());
        body.push_str("</p><p><a href=\"/\">All models</a></p></div>");
        let page = layout::Page::new(format!("{}", status.as_u16()), body);
        let mut response = html_response(layout::frame(&page, notice));
        *response.status_mut() = status;
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

impl IntoResponse for PageError {
    /// The error page without a notice, where no state is at hand (an asset that does not exist).
    fn into_response(self) -> Response {
        self.page_response(None)
    }
}

/// A 200 with an HTML body.
pub(crate) fn html_response(body: String) -> Response {
    let mut response = Response::new(body.into());
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}
