//! Where a database's records come from: a local SQLite file read through the store, or a running
//! server's `records` service decoded with the same codec. Both give the same `dd_data` records,
//! so Python objects built from them compare equal whichever way they were read. Searches go
//! through the server's own JSON: over HTTP, or in process through the same router.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use dd_data::{LayerDataKind, LayerRecord, ModelDataKind, ModelRecord, NeuronDataKind, NeuronRecord};
use dd_server::{AppState, ServerConfig};
use dd_store::{SqliteStore, StoreRead, codec};
use serde_json::Value;
use tower::ServiceExt;

/// One model as a database lists it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelListing {
    /// Name.
    pub(crate) name: String,
    /// Layers.
    pub(crate) n_layers: u32,
    /// MLP neurons per layer.
    pub(crate) layer_size: u32,
    /// The API's `MetadataObject`, as JSON.
    pub(crate) metadata: Value,
}

/// Why records could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackendError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] dd_store::StoreError),
    /// A stored blob did not decode.
    #[error("{what}: {source}")]
    Codec {
        /// Which record.
        what: String,
        /// Why.
        source: dd_store::codec::CodecError,
    },
    /// The server answered with an error.
    #[error("{url}: {status} {message}")]
    Server {
        /// The request.
        url: String,
        /// HTTP status.
        status: u16,
        /// The API's error message.
        message: String,
    },
    /// The request failed before an answer.
    #[error("{url}: {message}")]
    Transport {
        /// The request.
        url: String,
        /// Why.
        message: String,
    },
    /// The sentence encoder for searches by meaning did not load.
    #[error("the sentence encoder in {directory}: {source}")]
    Encoder {
        /// Its folder.
        directory: String,
        /// Why (boxed: a model error is large and this one is rare).
        source: Box<dd_model::ModelError>,
    },
    /// An answer was not what the API documents.
    #[error("{url}: unexpected answer ({message})")]
    Malformed {
        /// The request.
        url: String,
        /// What was wrong.
        message: String,
    },
}

/// A database, local or served.
pub(crate) enum Backend {
    /// A SQLite file read here.
    Local {
        /// The store.
        store: Arc<SqliteStore>,
        /// The server's state over the same store, built on the first search.
        app: OnceLock<InProcessApi>,
        /// A sentence encoder directory for searches by meaning.
        embedder: Option<std::path::PathBuf>,
    },
    /// A running DeepDecipher server.
    Http {
        /// The base URL, without a trailing slash.
        base: String,
        /// The HTTP client.
        agent: ureq::Agent,
    },
}

/// The server's router, answering in this process.
pub(crate) struct InProcessApi {
    router: tower_http::normalize_path::NormalizePath<axum::Router>,
    runtime: tokio::runtime::Runtime,
}

impl Backend {
    /// The SQLite file at `path`, opened for reading while it may still be written.
    pub(crate) fn open(path: &std::path::Path, embedder: Option<std::path::PathBuf>) -> Result<Self, BackendError> {
        let store = SqliteStore::open(path, &dd_store::ReadConfig::serving_while_written())?;
        Ok(Backend::Local { store: Arc::new(store), app: OnceLock::new(), embedder })
    }

    /// The server at `base` (`http://host:8080`), with `timeout` per request.
    pub(crate) fn connect(base: &str, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build();
        Backend::Http { base: base.trim_end_matches('/').to_owned(), agent: config.into() }
    }

    /// Where the records come from, for `repr`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Backend::Local { store, .. } => store.path().display().to_string(),
            Backend::Http { base, .. } => base.clone(),
        }
    }

    /// Every model, in the database's order.
    pub(crate) fn models(&self) -> Result<Vec<ModelListing>, BackendError> {
        let index = match self {
            Backend::Local { store, .. } => {
                let objects: Vec<Value> = store
                    .catalog()
                    .models()
                    .iter()
                    .map(|entry| serde_json::to_value(dd_server::stored_metadata_object(entry)).unwrap_or(Value::Null))
                    .collect();
                Value::Array(objects)
            }
            Backend::Http { .. } => self.get_json("/api")?["models"].take(),
        };
        let Value::Array(objects) = index else {
            return Err(self.malformed("/api", "no model list"));
        };
        objects
            .into_iter()
            .map(|metadata| {
                let number = |key: &str| metadata[key].as_u64().and_then(|n| u32::try_from(n).ok());
                match (metadata["name"].as_str(), number("num_layers"), number("layer_size")) {
                    (Some(name), Some(n_layers), Some(layer_size)) => {
                        Ok(ModelListing { name: name.to_owned(), n_layers, layer_size, metadata: metadata.clone() })
                    }
                    _ => Err(self.malformed("/api", "a model without name or shape")),
                }
            })
            .collect()
    }

    /// The stored blobs of one neuron of `source`, in kind order; [`decode_neuron`] decodes them.
    pub(crate) fn neuron_blobs(
        &self,
        model: &str,
        source: &str,
        layer: u32,
        index: u32,
    ) -> Result<Vec<(NeuronDataKind, Vec<u8>)>, BackendError> {
        match self {
            Backend::Local { store, .. } => {
                let entry = local_source(store, model, source)?;
                let mut blobs = Vec::new();
                for &kind in NeuronDataKind::ALL {
                    if let Some(blob) = store.neuron_blob(entry.id, layer, index, kind)? {
                        blobs.push((kind, blob));
                    }
                }
                Ok(blobs)
            }
            Backend::Http { .. } => Ok(self
                .served_records(&format!("/api/{model}/records/{layer}/{index}?source={source}"))?
                .into_iter()
                .filter_map(|(name, blob)| NeuronDataKind::from_name(&name).map(|kind| (kind, blob)))
                .collect()),
        }
    }

    /// The stored layer-level record of `kind`, if any.
    pub(crate) fn layer_record(
        &self,
        model: &str,
        source: &str,
        layer: u32,
        kind: LayerDataKind,
    ) -> Result<Option<LayerRecord>, BackendError> {
        let what = || format!("{model} {source} layer {layer} {}", kind.name());
        let blob = match self {
            Backend::Local { store, .. } => store.layer_blob(local_source(store, model, source)?.id, layer, kind)?,
            Backend::Http { .. } => self
                .served_records(&format!("/api/{model}/records/{layer}?source={source}&kinds={}", kind.name()))?
                .into_iter()
                .find(|(name, _)| name == kind.name())
                .map(|(_, blob)| blob),
        };
        blob.map(|blob| decode(what, codec::decode_layer(kind, &blob))).transpose()
    }

    /// The stored model-level record of `kind`, if any.
    pub(crate) fn model_record(&self, model: &str, kind: ModelDataKind) -> Result<Option<ModelRecord>, BackendError> {
        let what = || format!("{model} {}", kind.name());
        let blob = match self {
            Backend::Local { store, .. } => {
                let entry = local_model(store, model)?;
                store.model_blob(entry.id, kind)?
            }
            Backend::Http { .. } => self
                .served_records(&format!("/api/{model}/records?kinds={}", kind.name()))?
                .into_iter()
                .find(|(name, _)| name == kind.name())
                .map(|(_, blob)| blob),
        };
        blob.map(|blob| decode(what, codec::decode_model(kind, &blob))).transpose()
    }

    /// The API's answer to `path_and_query` (percent-encoded), from the server or from the same
    /// router in this process.
    pub(crate) fn get_json(&self, path_and_query: &str) -> Result<Value, BackendError> {
        let (status, body) = match self {
            Backend::Local { store, app, embedder } => {
                let api = match app.get() {
                    Some(api) => api,
                    None => {
                        let api = InProcessApi::new(Arc::clone(store), embedder.as_deref())?;
                        app.get_or_init(|| api)
                    }
                };
                api.get(path_and_query)?
            }
            Backend::Http { base, agent } => {
                let url = format!("{base}{path_and_query}");
                let transport =
                    |error: ureq::Error| BackendError::Transport { url: url.clone(), message: error.to_string() };
                let mut response = agent.get(&url).call().map_err(transport)?;
                let status = response.status().as_u16();
                let body = response.body_mut().with_config().limit(1 << 30).read_to_vec().map_err(transport)?;
                (status, body)
            }
        };
        let value: Value =
            serde_json::from_slice(&body).map_err(|error| self.malformed(path_and_query, &error.to_string()))?;
        if status != 200 {
            let message = value["error"]["message"].as_str().unwrap_or("no message").to_owned();
            return Err(BackendError::Server { url: self.url(path_and_query), status, message });
        }
        Ok(value)
    }

    /// The `records` service's blobs at `path_and_query`, by kind name.
    fn served_records(&self, path_and_query: &str) -> Result<Vec<(String, Vec<u8>)>, BackendError> {
        let mut page = self.get_json(path_and_query)?;
        let Value::Array(records) = page["data"]["records"].take() else {
            return Err(self.malformed(path_and_query, "no records"));
        };
        records
            .into_iter()
            .map(|record| {
                let kind = record["kind"].as_str().unwrap_or_default().to_owned();
                let blob = base64::engine::general_purpose::STANDARD
                    .decode(record["data"].as_str().unwrap_or_default())
                    .map_err(|error| self.malformed(path_and_query, &format!("{kind}: {error}")))?;
                Ok((kind, blob))
            })
            .collect()
    }

    fn url(&self, path_and_query: &str) -> String {
        match self {
            Backend::Local { .. } => path_and_query.to_owned(),
            Backend::Http { base, .. } => format!("{base}{path_and_query}"),
        }
    }

    fn malformed(&self, path_and_query: &str, message: &str) -> BackendError {
        BackendError::Malformed { url: self.url(path_and_query), message: message.to_owned() }
    }
}

impl InProcessApi {
    fn new(store: Arc<SqliteStore>, embedder: Option<&std::path::Path>) -> Result<Self, BackendError> {
        // A search in process answers one caller, who waits for the search index to be built on
        // first use (seconds on a large model) rather than get the public server's 503 after 10 s.
        let config = ServerConfig { request_timeout: Duration::from_secs(24 * 3600), ..ServerConfig::standard() };
        let state = app_state(store, config, embedder)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| BackendError::Transport { url: "in-process API".into(), message: error.to_string() })?;
        Ok(Self { router: dd_server::app(Arc::new(state)), runtime })
    }

    fn get(&self, path_and_query: &str) -> Result<(u16, Vec<u8>), BackendError> {
        let failed = |message: String| BackendError::Transport { url: path_and_query.to_owned(), message };
        let request = axum::http::Request::get(path_and_query)
            .body(axum::body::Body::empty())
            .map_err(|error| failed(error.to_string()))?;
        self.runtime.block_on(async {
            let response = self.router.clone().oneshot(request).await.map_err(|error| failed(error.to_string()))?;
            let status = response.status().as_u16();
            let body =
                axum::body::to_bytes(response.into_body(), 1 << 30).await.map_err(|error| failed(error.to_string()))?;
            Ok((status, body.to_vec()))
        })
    }
}

/// The server's state over `store`, embedding search queries with the encoder in `embedder` when
/// given: for the in-process API and for `serve`.
pub(crate) fn app_state(
    store: Arc<SqliteStore>,
    config: ServerConfig,
    embedder: Option<&std::path::Path>,
) -> Result<AppState, BackendError> {
    let state = AppState::load(store, config)?;
    Ok(match embedder {
        Some(directory) => {
            let encoder = dd_model::SentenceEncoder::load(directory).map_err(|source| BackendError::Encoder {
                directory: directory.display().to_string(),
                source: Box::new(source),
            })?;
            state.with_query_encoder(Arc::new(encoder))
        }
        None => state,
    })
}

fn local_model<'a>(store: &'a SqliteStore, model: &str) -> Result<&'a dd_store::ModelEntry, BackendError> {
    store.catalog().model(model).ok_or_else(|| BackendError::Server {
        url: store.path().display().to_string(),
        status: 404,
        message: format!("no model named {model:?}"),
    })
}

fn local_source<'a>(
    store: &'a SqliteStore,
    model: &str,
    source: &str,
) -> Result<&'a dd_store::SourceEntry, BackendError> {
    local_model(store, model)?.source(source).ok_or_else(|| BackendError::Server {
        url: store.path().display().to_string(),
        status: 404,
        message: format!("model {model:?} has no source {source:?}"),
    })
}

/// A neuron's stored blob as its record; `what` names it in an error.
pub(crate) fn decode_neuron(
    what: impl FnOnce() -> String,
    kind: NeuronDataKind,
    blob: &[u8],
) -> Result<NeuronRecord, BackendError> {
    decode(what, codec::decode_neuron(kind, blob))
}

fn decode<T>(what: impl FnOnce() -> String, result: Result<T, codec::CodecError>) -> Result<T, BackendError> {
    result.map_err(|source| BackendError::Codec { what: what(), source })
}
