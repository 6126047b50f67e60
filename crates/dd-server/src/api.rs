//! The JSON routes, compatible with the original DeepDecipher's `/api/{model}/{service}[/{layer}[/{neuron}]]`.
//!
//! Every parameter is validated here, once, into a [`Target`] and a service
//! list; the blocking store work then runs on the blocking pool, bounded by
//! the read semaphore.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dd_store::SourceEntry;

use crate::contract::{Route, service_parameters};
use crate::error::ApiError;
use crate::explanation_search::{Filters, check_searchable, embed_query};
use crate::json::JsonOut;
use crate::live::{LiveFindings, LiveResult, LiveTarget};
use crate::model_context::ModelContext;
use crate::params::{ApiPath, DeclaredQuery, check_name, clip, declared_query, parse_index};
use crate::services::{Service, Target};
use crate::state::AppState;
use crate::token_query::MatchMode;
use crate::{openapi, wire};

/// The JSON routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api", get(index))
        .route("/api/openapi.json", get(openapi_json))
        .route("/doc/openapi.json", get(original_openapi_json))
        .route("/doc", get(doc_page))
        .route("/api/{model}/{service}", get(model_page))
        .route("/api/{model}/{service}/{layer}", get(layer_page))
        .route("/api/{model}/{service}/{layer}/{neuron}", get(neuron_page))
        .route("/-/health", get(health))
        .route("/-/version", get(version))
}

fn json_response(body: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(body.into());
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn index(State(state): State<Arc<AppState>>, uri: Uri) -> Result<Response, ApiError> {
    declared_query(&uri, Route::Index.query_parameters())?;
    Ok(json_response(state.index_json.clone()))
}

async fn openapi_json(uri: Uri) -> Result<Response, ApiError> {
    declared_query(&uri, Route::OpenApi.query_parameters())?;
    Ok(json_response(openapi::document_json()))
}

/// The document at the original's path, which the document does not list: it ignores its query.
async fn original_openapi_json() -> Response {
    json_response(openapi::document_json())
}

async fn doc_page() -> Response {
    let mut response = Response::new(openapi::doc_html().into());
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

async fn health(uri: Uri) -> Result<Response, ApiError> {
    declared_query(&uri, Route::Health.query_parameters())?;
    Ok(json_response("{\"ok\":true}"))
}

async fn version(uri: Uri) -> Result<Response, ApiError> {
    declared_query(&uri, Route::Version.query_parameters())?;
    let body = wire::VersionResponse {
        version: env!("CARGO_PKG_VERSION").into(),
        schema_version: dd_store::sqlite::SCHEMA_VERSION,
        format_version: dd_store::codec::FORMAT_VERSION,
    };
    Ok(json_response(serde_json::to_string(&body).unwrap_or_default()))
}

async fn model_page(
    State(state): State<Arc<AppState>>,
    ApiPath((model, service)): ApiPath<(String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    respond(state, &model, &service, None, None, &uri).await
}

async fn layer_page(
    State(state): State<Arc<AppState>>,
    ApiPath((model, service, layer)): ApiPath<(String, String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    respond(state, &model, &service, Some(&layer), None, &uri).await
}

async fn neuron_page(
    State(state): State<Arc<AppState>>,
    ApiPath((model, service, layer, neuron)): ApiPath<(String, String, String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    respond(state, &model, &service, Some(&layer), Some(&neuron), &uri).await
}

/// What a request asks for, after validation.
enum Request {
    One(Service),
    All,
    Search(String),
    TokenSearch {
        query: String,
        mode: MatchMode,
        offset: usize,
        limit: usize,
    },
    ExplanationSearch(MeaningQuery),
    Activations(String),
    /// The stored records, only of these kinds (comma-separated) when given.
    Records(Option<String>),
}

/// An `explanation-search` request, validated.
struct MeaningQuery {
    text: String,
    min_score: Option<f32>,
    origin: Option<String>,
    layer: Option<u32>,
    offset: usize,
    limit: usize,
}

async fn respond(
    state: Arc<AppState>,
    model_name: &str,
    service_name: &str,
    layer: Option<&str>,
    neuron: Option<&str>,
    uri: &Uri,
) -> Result<Response, ApiError> {
    check_name("model", model_name)?;
    let Some(model) = state.model(model_name).cloned() else {
        return Err(ApiError::not_found(
            "unknown_model",
            format!("no model named {:?}; GET /api lists them", clip(model_name)),
        ));
    };
    // Names are checked before indices, so `/api/m/bogus/x` is an unknown service, not a bad index.
    let service = match service_name {
        "all" => None,
        name => match Service::from_name(name) {
            Some(service) => Some(service),
            None => {
                let names: Vec<&str> = Service::ALL.iter().map(|s| s.name()).collect();
                return Err(ApiError::not_found(
                    "unknown_service",
                    format!("no service named {:?}; services: all, {}", clip(name), names.join(", ")),
                ));
            }
        },
    };
    let query = declared_query(uri, service_parameters(service))?;
    let source_name = query.text("source");
    let Some(source) = model.source(source_name).cloned() else {
        return Err(ApiError::not_found(
            "unknown_source",
            format!("model {model_name:?} has no source {:?}", clip(source_name.unwrap_or_default())),
        ));
    };
    let target = match (layer, neuron) {
        (None, _) => Target::Model,
        (Some(layer), None) => Target::Layer(parse_index("layer", layer, source.info.n_layers)?),
        (Some(layer), Some(neuron)) => Target::Neuron(
            parse_index("layer", layer, source.info.n_layers)?,
            parse_index("neuron", neuron, source.info.units_per_layer)?,
        ),
    };
    let request = match service {
        None => Request::All,
        Some(service) => {
            if !service.levels().contains(&target.level()) {
                return Err(ApiError::not_found(
                    "unsupported_level",
                    format!("service {:?} has no {}-level data", service.name(), target.level().name()),
                ));
            }
            if service != Service::Activations && !service.available(&model.entry, &source) {
                return Err(ApiError::missing_data(format!(
                    "model {model_name:?} has no data for service {:?} (missing: {})",
                    service.name(),
                    service.required_kind().unwrap_or("metadata")
                )));
            }
            match service {
                Service::Neuron2GraphSearch => Request::Search(required_text(&query, "query")?.to_owned()),
                Service::Activations => {
                    if !state.live.contains_key(model_name) {
                        return Err(crate::live::no_live_model(model_name));
                    }
                    only_mlp(service, &source)?;
                    Request::Activations(required_text(&query, "text")?.to_owned())
                }
                Service::TokenSearch => {
                    only_mlp(service, &source)?;
                    let text = required_text(&query, "query")?.to_owned();
                    let mode = MatchMode::from_name(query.text("match").unwrap_or_default());
                    let offset = query.integer("offset").map_or(0, |offset| offset as usize);
                    let limit = query.integer("limit").map_or(usize::MAX, |limit| limit as usize);
                    Request::TokenSearch { query: text, mode, offset, limit }
                }
                Service::ExplanationSearch => {
                    only_mlp(service, &source)?;
                    // Refused before the index is built: without an encoder it would only take memory.
                    state.query_encoder()?;
                    let layer = match query.integer("layer") {
                        Some(layer) => Some(parse_index("layer", &layer.to_string(), source.info.n_layers)?),
                        None => None,
                    };
                    Request::ExplanationSearch(MeaningQuery {
                        text: required_text(&query, "q")?.to_owned(),
                        min_score: query.number("min_score").map(|score| score as f32),
                        origin: query.text("origin").map(str::to_owned),
                        layer,
                        offset: query.integer("offset").map_or(0, |offset| offset as usize),
                        limit: query.integer("limit").map_or(usize::MAX, |limit| limit as usize),
                    })
                }
                Service::Records => Request::Records(query.text("kinds").map(str::to_owned)),
                service => Request::One(service),
            }
        }
    };

    // A text runs under the model's own bound rather than a read permit: its only store reads are the
    // layer summaries at model level, a few small blobs per run, already bounded by the run permit.
    if let Request::Activations(text) = &request {
        let live_target = match target {
            Target::Neuron(layer, neuron) => LiveTarget::Neuron(layer, neuron),
            _ => LiveTarget::Model,
        };
        let live = state.live_model(&model.entry.metadata.name)?;
        let result = crate::live::run_text(live, state.store.clone(), &model, live_target, text).await?;
        let mut response = json_response(activations_body(&model, &result));
        // Visitors' texts stay out of shared caches.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }

    // Waiting here holds no thread: only `max_concurrent_reads` requests use the blocking pool at once.
    // The permit moves into the blocking task, so a request that times out keeps its slot until its
    // work really ends.
    let permit = state.reads.clone().acquire_owned().await.map_err(|e| ApiError::internal(&e))?;
    let task_state = state.clone();
    let body = tokio::task::spawn_blocking(move || {
        let body = build_body(&task_state, &model, &source, target, request);
        drop(permit);
        body
    })
    .await??;
    Ok(json_response(body))
}

fn build_body(
    state: &AppState,
    model: &ModelContext,
    source: &SourceEntry,
    target: Target,
    request: Request,
) -> Result<Vec<u8>, ApiError> {
    let store = state.store.as_ref();
    let mut out = JsonOut::with_capacity(64 * 1024);
    match request {
        Request::One(service) => {
            out.raw("{\"data\":");
            if !service.render(store, model, source, target, &mut out)? {
                return Err(ApiError::missing_data(format!(
                    "no {} data for {}",
                    service.name(),
                    describe(&model.entry.metadata.name, target)
                )));
            }
            out.raw(",\"metadata\":");
            out.raw(&model.metadata_json);
            out.raw("}");
        }
        Request::Records(kinds) => {
            let page = crate::records::page(store, &model.entry, source, target, kinds.as_deref())?;
            return Ok(envelope(model, &serde_json::to_string(&page).map_err(|error| ApiError::internal(&error))?));
        }
        Request::All => {
            out.raw("{");
            let services = Service::with_data(&model.entry, source);
            let services = services.iter().filter(|s| {
                !matches!(
                    s,
                    Service::Neuron2GraphSearch | Service::TokenSearch | Service::ExplanationSearch | Service::Records
                ) && s.levels().contains(&target.level())
            });
            for (i, service) in services.enumerate() {
                if i > 0 {
                    out.raw(",");
                }
                out.string(service.name());
                out.raw(":{\"data\":");
                let mark = out.buf.len();
                if !service.render(store, model, source, target, &mut out)? {
                    out.buf.truncate(mark - "{\"data\":".len());
                    out.raw("{\"missing_data_types\":[");
                    out.string(service.required_kind().unwrap_or("metadata"));
                    out.raw("]");
                }
                out.raw("}");
            }
            out.raw("}");
        }
        Request::Activations(_) => {
            // `respond` answers texts before it reads the store; reaching here is our bug.
            return Err(ApiError::internal_message("an activations request reached the store reader"));
        }
        Request::TokenSearch { query, mode, offset, limit } => {
            let index = model.token_index(store, source)?;
            let page = index.page(&query, mode, offset, limit);
            return Ok(envelope(model, &serde_json::to_string(&page).unwrap_or_default()));
        }
        Request::ExplanationSearch(search) => {
            let encoder = state.query_encoder()?;
            let index = model.explanation_index(store, source, Some(encoder.model_name()))?;
            check_searchable(&index, encoder.as_ref(), &model.entry.metadata.name)?;
            let vector = embed_query(&index, encoder.as_ref(), &search.text)?;
            let filters =
                Filters { min_score: search.min_score, origin: search.origin.as_deref(), layer: search.layer };
            let page = index.page(&search.text, &vector, &filters, search.offset, search.limit);
            return Ok(envelope(model, &serde_json::to_string(&page).unwrap_or_default()));
        }
        Request::Search(query) => {
            let index = model.search_index(store)?;
            let neurons: Vec<wire::NeuronIndexObject> = index
                .search(&query)?
                .into_iter()
                .map(|n| wire::NeuronIndexObject { layer: n.layer, neuron: n.index })
                .collect();
            return Ok(envelope(model, &serde_json::to_string(&neurons).unwrap_or_default()));
        }
    }
    Ok(out.buf)
}

/// A required parameter's text; `declared_query` has checked that it is there.
fn required_text<'a>(query: &'a DeclaredQuery, name: &str) -> Result<&'a str, ApiError> {
    query.text(name).ok_or_else(|| ApiError::internal_message(format!("the required parameter `{name}` is missing")))
}

/// Refuses `service` for a source other than `mlp`: its index and the model run cover MLP neurons only.
fn only_mlp(service: Service, source: &SourceEntry) -> Result<(), ApiError> {
    if source.info.name == dd_data::MLP_SOURCE {
        return Ok(());
    }
    Err(ApiError::not_found(
        "unsupported_source",
        format!("{} covers the mlp source only, not {:?}", service.name(), clip(&source.info.name)),
    ))
}

/// The `activations` page of a run, in the API's envelope.
fn activations_body(model: &ModelContext, result: &LiveResult) -> Vec<u8> {
    let tokens_cut = result.n_cut as u64;
    let data = match &result.findings {
        LiveFindings::Neuron(trace) => serde_json::to_string(&wire::TextActivationsPage {
            tokens: result
                .tokens
                .iter()
                .zip(&trace.activations)
                .map(|(&token_id, &activation)| wire::TokenActivationObject {
                    token_id,
                    token: model.tokens.display(token_id),
                    activation,
                })
                .collect(),
            tokens_cut,
        }),
        LiveFindings::Model(per_token) => serde_json::to_string(&wire::TextFiringPage {
            tokens: result
                .tokens
                .iter()
                .zip(per_token)
                .map(|(&token_id, firings)| wire::TokenFiringObject {
                    token_id,
                    token: model.tokens.display(token_id),
                    neurons: firings
                        .iter()
                        .map(|f| wire::FiringObject {
                            layer: f.layer,
                            neuron: f.neuron,
                            activation: f.activation,
                            relative: f.relative,
                        })
                        .collect(),
                })
                .collect(),
            tokens_cut,
        }),
    };
    envelope(model, &data.unwrap_or_default())
}

/// `{"data": data, "metadata": …}` for a page already serialised as `data`.
fn envelope(model: &ModelContext, data: &str) -> Vec<u8> {
    let mut out = JsonOut::with_capacity(data.len() + model.metadata_json.len() + 24);
    out.raw("{\"data\":");
    out.raw(data);
    out.raw(",\"metadata\":");
    out.raw(&model.metadata_json);
    out.raw("}");
    out.buf
}

fn describe(model: &str, target: Target) -> String {
    match target {
        Target::Model => format!("model {model:?}"),
        Target::Layer(layer) => format!("layer {layer} of {model:?}"),
        Target::Neuron(layer, neuron) => format!("neuron {layer}/{neuron} of {model:?}"),
    }
}

/// The body of a response, for the middleware's sake.
pub(crate) fn not_found_response() -> Response {
    ApiError::not_found("not_found", "no such route; GET /api lists the models and /doc documents the API")
        .into_response()
}
