//! The website: server-rendered pages for models, layers, neurons and search, their two assets,
//! and "try your own text" when the server holds the model.
//!
//! URLs follow the original's `/viz/{model}/{service}/{layer}/{neuron}` and add short forms without
//! the service segment (`/viz/{model}/{layer}/{neuron}`); the service segment is accepted and
//! ignored, as the original did, because every page shows all of a neuron's data. Each page links
//! its JSON twin under `/api`. Pages are built on the blocking pool under the same read permit as
//! the API, and errors are HTML pages with the API's status codes.
//!
//! # Layout
//! Bottom-up; each module uses only those above it in this list (and the crate's lower layers):
//! - `assets`: CSS and JS; `layout`: the frame every page shares.
//! - `view`: what the others share: the [`View`] a URL names, `PageContext`, `PageError`, HTML responses.
//! - `tokens`: the activation colour scale and coloured example texts.
//! - `plot`, `graph_svg`: SVG made on the server (histograms, distributions, Neuron2Graph graphs).
//! - `pages`: one file per page type, over `pages/parts.rs` (links, pagers, score badges, the text form).
//! - this file: routes, URL parsing, and the visitor's text run (`crate::live`) before the page.

mod assets;
mod graph_svg;
mod layout;
pub mod notebook;
mod pages;
mod plot;
mod tokens;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::params::{ApiPath, clip, parse_index, query_params};
use crate::services::Service;
use crate::state::AppState;
use view::{MAX_TEXT_BYTES, PageContext, PageError, View, html_response};

pub(crate) use view::MAX_FORM_BYTES;

/// The website's routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/viz", get(home))
        .route("/static/{file}", get(asset))
        .route("/viz/{model}", get(page).post(page))
        .route("/viz/{model}/{first}", get(page).post(page))
        .route("/viz/{model}/{first}/{second}", get(page).post(page))
        .route("/viz/{model}/{service}/{layer}/{neuron}", get(page).post(page))
}

async fn home(State(state): State<Arc<AppState>>) -> Response {
    html_response(layout::frame(&pages::home(&state), state.notice()))
}

async fn asset(ApiPath(file): ApiPath<String>) -> Response {
    let Some(asset) = assets::find(&file) else { return PageError::from(not_found_page()).into_response() };
    let mut response = Response::new(asset.body.into());
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    response
}

/// Every `/viz/{model}…` page: the path's segments after the model pick the view; a POST carries a
/// visitor's text.
async fn page(
    State(state): State<Arc<AppState>>,
    ApiPath(segments): ApiPath<Vec<String>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let answer = async {
        let Some((model, rest)) = segments.split_first() else { return Err(not_found_page().into()) };
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        let view = view_of(&state, model, &rest)?;
        let text = if method == Method::POST { Some(submitted_text(&body)?) } else { None };
        render(state.clone(), model, view, &uri, text).await
    };
    match answer.await {
        Ok(response) => response,
        Err(error) => error.page_response(state.notice()),
    }
}

/// The `text` field of a submitted form.
fn submitted_text(body: &[u8]) -> Result<String, PageError> {
    #[derive(serde::Deserialize)]
    struct TextForm {
        text: String,
    }
    // The limit is on the decoded text: percent-encoding triples non-ASCII text on the wire, and the
    // guard lets `/viz/` bodies through up to `MAX_FORM_BYTES` for that reason.
    let form: TextForm = serde_urlencoded::from_bytes(body)
        .map_err(|_| ApiError::bad_parameter("the form needs a `text` field (application/x-www-form-urlencoded)"))?;
    if form.text.trim().is_empty() {
        return Err(ApiError::bad_parameter("the text is empty").into());
    }
    if form.text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the text may be at most {MAX_TEXT_BYTES} bytes"),
        )
        .into());
    }
    Ok(form.text)
}

/// Reads the segments after the model: `[layer]`, `[layer, neuron]`, `[service]`, `[service, layer]`,
/// `[service, layer, neuron]`, `[search]`, `[explanation-search]`, `[random]`, or the relation pages
/// (`[groups]`, `[groups, layer, neuron]`, `[roles]`, `[changes]`, `[changes, layer, neuron]`).
fn view_of(state: &AppState, model_name: &str, segments: &[&str]) -> Result<View, PageError> {
    let Some(model) = state.model(model_name) else { return Err(unknown_model(model_name).into()) };
    let Some(source) = model.source(None) else { return Err(not_found_page().into()) };
    let (n_layers, n_neurons) = (source.info.n_layers, source.info.units_per_layer);
    let is_index = |text: &str| text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty();
    let rest: &[&str] = match segments.first() {
        Some(&"search") if segments.len() == 1 => return Ok(View::Search),
        Some(&"explanation-search") if segments.len() == 1 => return Ok(View::ExplanationSearch),
        Some(&"random") if segments.len() == 1 => return Ok(View::Random),
        Some(&"groups") if segments.len() == 1 => return Ok(View::Groups),
        Some(&"roles") if segments.len() == 1 => return Ok(View::Roles),
        Some(&"changes") if segments.len() == 1 => return Ok(View::Changes),
        Some(&service @ ("groups" | "changes")) if segments.len() == 3 => {
            let layer = parse_index("layer", segments[1], n_layers)?;
            let neuron = parse_index("neuron", segments[2], n_neurons)?;
            return Ok(if service == "groups" { View::Group(layer, neuron) } else { View::Comparison(layer, neuron) });
        }
        Some(first) if is_index(first) => segments,
        Some(&"all") => &segments[1..],
        Some(service) => {
            if Service::from_name(service).is_none() {
                return Err(ApiError::not_found(
                    "unknown_service",
                    format!("no page {:?}; try a layer number, `search` or `random`", clip(service)),
                )
                .into());
            }
            &segments[1..]
        }
        None => &[],
    };
    match rest {
        [] => Ok(View::Model),
        [layer] => Ok(View::Layer(parse_index("layer", layer, n_layers)?)),
        [layer, neuron] => {
            Ok(View::Neuron(parse_index("layer", layer, n_layers)?, parse_index("neuron", neuron, n_neurons)?))
        }
        _ => Err(not_found_page().into()),
    }
}

/// Answers a page: redirects for jumps and random picks, the visitor's text run first, then the
/// page built on the blocking pool.
async fn render(
    state: Arc<AppState>,
    model_name: &str,
    view: View,
    uri: &Uri,
    text: Option<String>,
) -> Result<Response, PageError> {
    let Some(model) = state.model(model_name).cloned() else { return Err(unknown_model(model_name).into()) };
    let params = query_params(uri)?;
    if view == View::Search {
        if let Some(target) = pages::jump_target(&model, &params) {
            return Ok(redirect(&target?)?);
        }
    }
    if view == View::Random {
        return Ok(redirect(&pages::random_neuron_href(&model, &params))?);
    }
    // Malformed parameters are refused before a model run is spent on the text.
    pages::page_number(&params)?;
    // The visitor's text runs first, under its own bound, so a busy model never holds a read permit.
    let live_result = match (&text, view.live_target()) {
        (Some(text), Some(target)) => {
            let live = state.live_model(&model.entry.metadata.name)?;
            Some(crate::live::run_text(live, state.store.clone(), &model, target, text).await?)
        }
        (Some(_), None) => return Err(ApiError::bad_parameter("only model and neuron pages take a text").into()),
        (None, _) => None,
    };
    let permit = state.reads.clone().acquire_owned().await.map_err(|e| ApiError::internal(&e))?;
    let task_state = state.clone();
    let page = tokio::task::spawn_blocking(move || {
        let Some(source) = model.source(None) else { return Err(PageError::from(not_found_page())) };
        let context = PageContext { state: &task_state, model: &model, source, params };
        let page = pages::render(&context, view, live_result.as_ref());
        drop(permit);
        page
    })
    .await??;
    Ok(html_response(layout::frame(&page, state.notice())))
}

/// A 303 to `href`, never cached: random picks and jumps differ per request.
fn redirect(href: &str) -> Result<Response, ApiError> {
    // Model names are URL-safe by construction (the store's writer checks them), so this cannot fail.
    let location = HeaderValue::from_str(href).map_err(|error| ApiError::internal(&error))?;
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    response.headers_mut().insert(header::LOCATION, location);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The 404 for a model name the database does not hold.
fn unknown_model(name: &str) -> ApiError {
    ApiError::not_found("unknown_model", format!("no model named {:?}; the home page lists them", clip(name)))
}

/// The HTML 404 for routes no handler matched, with the server's notice.
pub(crate) fn not_found_page_response(notice: Option<&str>) -> Response {
    PageError::from(not_found_page()).page_response(notice)
}

/// `error` as an HTML page with the server's notice, for the guard's refusals on `/viz/`.
pub(crate) fn error_page_response(error: ApiError, notice: Option<&str>) -> Response {
    PageError::from(error).page_response(notice)
}

/// The 404 for a path that names no page.
fn not_found_page() -> ApiError {
    ApiError::not_found("not_found", "no such page")
}
