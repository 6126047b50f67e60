//! Databases, models and searches in Python: one interface over a local file (`open`) and a
//! running server (`Client`), tables as pandas DataFrames.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dd_data::{LayerDataKind, LayerRecord, ModelDataKind, ModelRecord, NeuronRanking, Vocabulary};
use dd_server::notebook::{NotebookTokens, SearchRow, search_html};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::backend::{Backend, ModelListing};
use crate::error::{py_error, py_message};
use crate::neuron::Neuron;
use crate::relations::Group;

/// A DeepDecipher database: a local file (`deepdecipher.open`) or a server (`deepdecipher.Client`).
#[pyclass(frozen, subclass, module = "deepdecipher")]
pub(crate) struct Database {
    backend: Arc<Backend>,
}

impl Database {
    /// A database over `backend`.
    pub(crate) fn new(backend: Backend) -> Self {
        Database { backend: Arc::new(backend) }
    }
}

#[pymethods]
impl Database {
    /// The names of the models, in the order they were added.
    fn model_names(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let models = py.detach(|| self.backend.models()).map_err(|e| py_error(&e))?;
        Ok(models.into_iter().map(|m| m.name).collect())
    }

    /// Every model.
    fn models(&self, py: Python<'_>) -> PyResult<Vec<Model>> {
        let models = py.detach(|| self.backend.models()).map_err(|e| py_error(&e))?;
        Ok(models.into_iter().map(|listing| Model::new(&self.backend, listing)).collect())
    }

    /// The model called `name`, or the only one when `name` is `None`.
    #[pyo3(signature = (name=None))]
    fn model(&self, py: Python<'_>, name: Option<&str>) -> PyResult<Model> {
        let models = py.detach(|| self.backend.models()).map_err(|e| py_error(&e))?;
        let names = || models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
        let listing = match name {
            Some(name) => models.iter().find(|m| m.name == name).cloned().ok_or_else(|| {
                py_message(format!("no model named {name:?} in {} (models: {})", self.backend.describe(), names()))
            })?,
            None if models.len() == 1 => models[0].clone(),
            None => {
                return Err(py_message(format!(
                    "{} has {} models ({}): name one",
                    self.backend.describe(),
                    models.len(),
                    names()
                )));
            }
        };
        Ok(Model::new(&self.backend, listing))
    }

    fn __repr__(&self) -> String {
        match &*self.backend {
            Backend::Local { .. } => format!("Database({:?})", self.backend.describe()),
            Backend::Http { .. } => format!("Client({:?})", self.backend.describe()),
        }
    }
}

/// A running DeepDecipher server (`deepdecipher serve`, or a public one), read through the same
/// interface as a local file: `Client("http://127.0.0.1:8080").model().neuron(3, 7)`.
#[pyclass(frozen, extends = Database, module = "deepdecipher")]
pub(crate) struct Client {}

#[pymethods]
impl Client {
    /// A client of the server at `url`, each request limited to `timeout` seconds.
    #[new]
    #[pyo3(signature = (url, timeout=30.0))]
    fn new(url: &str, timeout: f64) -> PyResult<PyClassInitializer<Self>> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(py_message(format!("{url:?} is not an http:// or https:// URL")));
        }
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(py_message("timeout must be a positive number of seconds"));
        }
        let backend = Backend::connect(url, Duration::from_secs_f64(timeout));
        Ok(PyClassInitializer::from(Database::new(backend)).add_subclass(Client {}))
    }
}

/// One model of a database.
#[pyclass(frozen, module = "deepdecipher")]
pub(crate) struct Model {
    backend: Arc<Backend>,
    listing: ModelListing,
    /// Token strings, read on first use: every example's tokens are shown through them.
    strings: OnceLock<Arc<NotebookTokens>>,
}

impl Model {
    fn new(backend: &Arc<Backend>, listing: ModelListing) -> Self {
        Model { backend: Arc::clone(backend), listing, strings: OnceLock::new() }
    }

    fn strings(&self) -> PyResult<Arc<NotebookTokens>> {
        if let Some(strings) = self.strings.get() {
            return Ok(Arc::clone(strings));
        }
        let vocabulary = match self.backend.model_record(&self.listing.name, ModelDataKind::Vocabulary) {
            Ok(Some(ModelRecord::Vocabulary(vocabulary))) => vocabulary,
            Ok(_) => Vocabulary { tokens: Vec::new() },
            Err(error) => return Err(py_error(&error)),
        };
        Ok(Arc::clone(self.strings.get_or_init(|| Arc::new(NotebookTokens::new(vocabulary)))))
    }

    fn check_layer(&self, layer: u32) -> PyResult<()> {
        if layer >= self.listing.n_layers {
            return Err(py_message(format!(
                "layer {layer} is out of range: {} has layers 0 to {}",
                self.listing.name,
                self.listing.n_layers.saturating_sub(1)
            )));
        }
        Ok(())
    }

    fn layer_record(
        &self,
        py: Python<'_>,
        layer: u32,
        kind: LayerDataKind,
        source: &str,
    ) -> PyResult<Option<LayerRecord>> {
        self.check_layer(layer)?;
        py.detach(|| self.backend.layer_record(&self.listing.name, source, layer, kind)).map_err(|e| py_error(&e))
    }

    fn search_page(&self, py: Python<'_>, service: &str, query: &[(&str, String)]) -> PyResult<serde_json::Value> {
        let encoded = serde_urlencoded::to_string(query).map_err(|e| py_error(&e))?;
        let path = format!("/api/{}/{service}?{encoded}", self.listing.name);
        let mut page = py.detach(|| self.backend.get_json(&path)).map_err(|e| py_error(&e))?;
        Ok(page["data"].take())
    }
}

#[pymethods]
impl Model {
    /// The model's name.
    #[getter]
    fn name(&self) -> &str {
        &self.listing.name
    }

    /// Number of layers.
    #[getter]
    fn n_layers(&self) -> u32 {
        self.listing.n_layers
    }

    /// MLP neurons per layer.
    #[getter]
    fn layer_size(&self) -> u32 {
        self.listing.layer_size
    }

    /// `(n_layers, layer_size)`.
    #[getter]
    fn shape(&self) -> (u32, u32) {
        (self.listing.n_layers, self.listing.layer_size)
    }

    /// The API's metadata object: architecture, sizes, dataset, provenance, sources, services.
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_python(py, &self.listing.metadata)
    }

    /// The vocabulary: each token id's display string.
    fn vocabulary(&self) -> PyResult<Vec<String>> {
        let strings = self.strings()?;
        Ok((0..strings.len() as u32).map(|id| strings.display(id)).collect())
    }

    /// The neuron `index` of `layer` (of `source`, `mlp` by default), with every record stored for it.
    #[pyo3(signature = (layer, index, source="mlp"))]
    fn neuron(&self, py: Python<'_>, layer: u32, index: u32, source: &str) -> PyResult<Neuron> {
        self.check_layer(layer)?;
        if source == dd_data::MLP_SOURCE && index >= self.listing.layer_size {
            return Err(py_message(format!(
                "neuron {index} is out of range: layer {layer} of {} has neurons 0 to {}",
                self.listing.name,
                self.listing.layer_size.saturating_sub(1)
            )));
        }
        let strings = self.strings()?;
        let blobs = py
            .detach(|| self.backend.neuron_blobs(&self.listing.name, source, layer, index))
            .map_err(|e| py_error(&e))?;
        Ok(Neuron::new(&self.listing.name, source, (layer, index), blobs, strings))
    }

    /// A layer's per-neuron summary (max and min activation, density, kurtosis) as a pandas DataFrame
    /// indexed by neuron.
    #[pyo3(signature = (layer, source="mlp"))]
    fn layer_stats<'py>(&self, py: Python<'py>, layer: u32, source: &str) -> PyResult<Bound<'py, PyAny>> {
        let Some(LayerRecord::Summary(summary)) = self.layer_record(py, layer, LayerDataKind::Summary, source)? else {
            return Err(py_message(format!("{} has no statistics for layer {layer}", self.listing.name)));
        };
        let columns = PyDict::new(py);
        let column = |f: fn(&dd_data::NeuronSummary) -> f32| summary.neurons.iter().map(f).collect::<Vec<f32>>();
        columns.set_item("neuron", (0..summary.neurons.len() as u32).collect::<Vec<u32>>())?;
        columns.set_item("max_activation", column(|n| n.max_activation))?;
        columns.set_item("min_activation", column(|n| n.min_activation))?;
        columns.set_item("density", column(|n| n.density))?;
        columns.set_item("kurtosis", column(|n| n.kurtosis))?;
        data_frame(py, &columns, Some("neuron"))
    }

    /// A layer's neurons ranked by interestingness, as a DataFrame (`layer`, `neuron`, `score`).
    #[pyo3(signature = (layer, source="mlp"))]
    fn layer_ranking<'py>(&self, py: Python<'py>, layer: u32, source: &str) -> PyResult<Bound<'py, PyAny>> {
        let Some(LayerRecord::Ranking(ranking)) = self.layer_record(py, layer, LayerDataKind::Ranking, source)? else {
            return Err(py_message(format!("{} has no ranking for layer {layer}", self.listing.name)));
        };
        ranking_frame(py, &ranking)
    }

    /// A layer's roles in the weight graph (`role`, degrees, strengths, `strength_z`,
    /// `participation`, `betweenness`, `group`) as a DataFrame indexed by neuron.
    #[pyo3(signature = (layer, source="mlp"))]
    fn layer_roles<'py>(&self, py: Python<'py>, layer: u32, source: &str) -> PyResult<Bound<'py, PyAny>> {
        let Some(LayerRecord::Roles(roles)) = self.layer_record(py, layer, LayerDataKind::Roles, source)? else {
            return Err(py_message(format!(
                "{} has no roles for layer {layer} (run `deepdecipher relate`)",
                self.listing.name
            )));
        };
        let columns = PyDict::new(py);
        let n = &roles.neurons;
        columns.set_item("neuron", (0..n.len() as u32).collect::<Vec<u32>>())?;
        columns.set_item("role", n.iter().map(|r| r.role.name()).collect::<Vec<_>>())?;
        columns.set_item("in_degree", n.iter().map(|r| r.in_degree).collect::<Vec<_>>())?;
        columns.set_item("out_degree", n.iter().map(|r| r.out_degree).collect::<Vec<_>>())?;
        for (name, value) in [
            ("in_strength", (|r| r.in_strength) as fn(&dd_data::NeuronRole) -> f32),
            ("out_strength", |r| r.out_strength),
            ("strength_z", |r| r.strength_z),
            ("participation", |r| r.participation),
            ("betweenness", |r| r.betweenness),
        ] {
            columns.set_item(name, n.iter().map(value).collect::<Vec<f32>>())?;
        }
        columns.set_item("group", n.iter().map(|r| r.group).collect::<Vec<Option<u32>>>())?;
        data_frame(py, &columns, Some("neuron"))
    }

    /// A layer's change against the baseline recording (`score`, `top_overlap`,
    /// `activation_correlation`, the changes of mean, σ, max and density) as a DataFrame indexed by
    /// neuron, whose `attrs["baseline"]` names the baseline model.
    #[pyo3(signature = (layer, source="mlp"))]
    fn layer_changes<'py>(&self, py: Python<'py>, layer: u32, source: &str) -> PyResult<Bound<'py, PyAny>> {
        let Some(LayerRecord::Changes(changes)) = self.layer_record(py, layer, LayerDataKind::Changes, source)? else {
            return Err(py_message(format!(
                "{} has no changes for layer {layer} (run `deepdecipher compare`)",
                self.listing.name
            )));
        };
        let columns = PyDict::new(py);
        let n = &changes.neurons;
        columns.set_item("neuron", (0..n.len() as u32).collect::<Vec<u32>>())?;
        for (name, value) in [
            ("score", (|c| c.score) as fn(&dd_data::NeuronChange) -> f32),
            ("top_overlap", |c| c.top_overlap),
            ("activation_correlation", |c| c.activation_correlation.unwrap_or(f32::NAN)),
            ("mean_change", |c| c.mean_change),
            ("std_change", |c| c.std_change),
            ("max_change", |c| c.max_change),
            ("density_change", |c| c.density_change),
        ] {
            columns.set_item(name, n.iter().map(value).collect::<Vec<f32>>())?;
        }
        columns.set_item("shared_contexts", n.iter().map(|c| c.shared_contexts).collect::<Vec<u32>>())?;
        let frame = data_frame(py, &columns, Some("neuron"))?;
        frame.getattr("attrs")?.set_item("baseline", &changes.baseline)?;
        Ok(frame)
    }

    /// The model's groups of neurons that fire together, most cohesive first.
    fn groups(&self, py: Python<'_>) -> PyResult<Vec<Group>> {
        let record = py
            .detach(|| self.backend.model_record(&self.listing.name, ModelDataKind::Groups))
            .map_err(|e| py_error(&e))?;
        let Some(ModelRecord::Groups(groups)) = record else {
            return Err(py_message(format!("{} has no groups (run `deepdecipher relate`)", self.listing.name)));
        };
        Ok(Group::list(groups, &self.strings()?))
    }

    /// The model's most interesting neurons, as a DataFrame (`layer`, `neuron`, `score`).
    fn ranking<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let record = py
            .detach(|| self.backend.model_record(&self.listing.name, ModelDataKind::Ranking))
            .map_err(|e| py_error(&e))?;
        let Some(ModelRecord::Ranking(ranking)) = record else {
            return Err(py_message(format!("{} has no model ranking", self.listing.name)));
        };
        ranking_frame(py, &ranking)
    }

    /// Neurons that respond to tokens (`"paris"`, `"any:the,important:dog"`), most selective first,
    /// as the API's `token-search` finds them.
    #[pyo3(signature = (query, limit=20, exact=false))]
    fn search(&self, py: Python<'_>, query: &str, limit: u32, exact: bool) -> PyResult<SearchResults> {
        let mut parameters = vec![("query", query.to_owned()), ("limit", limit.to_string())];
        if exact {
            parameters.push(("match", "exact".to_owned()));
        }
        let page = self.search_page(py, "token-search", &parameters)?;
        let hits = page["neurons"]
            .as_array()
            .map(|neurons| {
                neurons
                    .iter()
                    .map(|hit| {
                        let matched: Vec<String> = hit["matches"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .flat_map(|m| m["tokens"].as_array().into_iter().flatten())
                            .filter_map(|t| t.as_str().map(|t| format!("{t:?}")))
                            .collect();
                        let mut text = matched.join(" ");
                        if let Some(explanation) = hit["explanation"].as_str() {
                            if !text.is_empty() {
                                text.push_str(" — ");
                            }
                            text.push_str(explanation);
                        }
                        SearchHit::new(hit, hit["z"].as_f64().or(hit["mean"].as_f64()), text)
                    })
                    .collect()
            })
            .unwrap_or_default();
        SearchResults::new(py, format!("token search {query:?}"), hits, &page)
    }

    /// Explanations closest in meaning to `text` (needs explanations with embeddings, and an
    /// encoder: `open(path, embedder=DIR)` or a server started with `--embedder`).
    #[pyo3(signature = (text, limit=20, min_score=None))]
    fn search_explanations(
        &self,
        py: Python<'_>,
        text: &str,
        limit: u32,
        min_score: Option<f64>,
    ) -> PyResult<SearchResults> {
        let mut parameters = vec![("q", text.to_owned()), ("limit", limit.to_string())];
        if let Some(min_score) = min_score {
            parameters.push(("min_score", min_score.to_string()));
        }
        let page = self.search_page(py, "explanation-search", &parameters)?;
        let hits = page["explanations"]
            .as_array()
            .map(|hits| {
                hits.iter()
                    .map(|hit| {
                        SearchHit::new(
                            hit,
                            hit["similarity"].as_f64(),
                            hit["text"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        SearchResults::new(py, format!("explanations like {text:?}"), hits, &page)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Model>().is_ok_and(|other| {
            let other = &other.get().listing;
            (&self.listing.name, self.listing.n_layers, self.listing.layer_size)
                == (&other.name, other.n_layers, other.layer_size)
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Model({:?}, {} layers × {} neurons)",
            self.listing.name, self.listing.n_layers, self.listing.layer_size
        )
    }
}

/// One neuron a search found.
#[pyclass(frozen, eq, get_all, module = "deepdecipher")]
#[derive(PartialEq, Clone)]
pub(crate) struct SearchHit {
    /// Layer.
    layer: u32,
    /// Neuron.
    neuron: u32,
    /// The ranking score (z of the token mean, or cosine similarity).
    score: Option<f64>,
    /// What matched: tokens, or the explanation.
    text: String,
}

impl SearchHit {
    fn new(hit: &serde_json::Value, score: Option<f64>, text: String) -> Self {
        let index = |key: &str| hit[key].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(u32::MAX);
        SearchHit { layer: index("layer"), neuron: index("neuron"), score, text }
    }
}

#[pymethods]
impl SearchHit {
    fn __repr__(&self) -> String {
        match self.score {
            Some(score) => format!("SearchHit({}/{}, score={score:.3}, {:?})", self.layer, self.neuron, self.text),
            None => format!("SearchHit({}/{}, {:?})", self.layer, self.neuron, self.text),
        }
    }
}

/// A search's hits, best first, with the API's whole answer in `page`.
#[pyclass(frozen, module = "deepdecipher")]
pub(crate) struct SearchResults {
    title: String,
    hits: Vec<SearchHit>,
    /// The API's answer, as a dict.
    #[pyo3(get)]
    page: Py<PyAny>,
}

impl SearchResults {
    fn new(py: Python<'_>, title: String, hits: Vec<SearchHit>, page: &serde_json::Value) -> PyResult<Self> {
        Ok(SearchResults { title, hits, page: json_to_python(py, page)?.unbind() })
    }
}

#[pymethods]
impl SearchResults {
    /// The hits, best first.
    #[getter]
    fn hits(&self) -> Vec<SearchHit> {
        self.hits.clone()
    }

    /// The hits as a DataFrame (`layer`, `neuron`, `score`, `text`).
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let columns = PyDict::new(py);
        columns.set_item("layer", self.hits.iter().map(|h| h.layer).collect::<Vec<_>>())?;
        columns.set_item("neuron", self.hits.iter().map(|h| h.neuron).collect::<Vec<_>>())?;
        columns.set_item("score", self.hits.iter().map(|h| h.score.unwrap_or(f64::NAN)).collect::<Vec<_>>())?;
        columns.set_item("text", self.hits.iter().map(|h| h.text.clone()).collect::<Vec<_>>())?;
        data_frame(py, &columns, None)
    }

    fn __len__(&self) -> usize {
        self.hits.len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyIterator>> {
        pyo3::types::PyList::new(py, self.hits.clone())?.try_iter()
    }

    fn __getitem__(&self, index: isize) -> PyResult<SearchHit> {
        let len = self.hits.len() as isize;
        let position = if index < 0 { index + len } else { index };
        usize::try_from(position)
            .ok()
            .and_then(|i| self.hits.get(i))
            .cloned()
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err("search hit index out of range"))
    }

    fn __repr__(&self) -> String {
        format!("SearchResults({}, {} hits)", self.title, self.hits.len())
    }

    fn _repr_html_(&self) -> String {
        let rows: Vec<SearchRow> = self
            .hits
            .iter()
            .map(|h| SearchRow {
                layer: h.layer,
                neuron: h.neuron,
                score: h.score.unwrap_or(f64::NAN) as f32,
                text: h.text.clone(),
            })
            .collect();
        search_html(&self.title, &rows)
    }
}

fn ranking_frame<'py>(py: Python<'py>, ranking: &NeuronRanking) -> PyResult<Bound<'py, PyAny>> {
    let columns = PyDict::new(py);
    columns.set_item("layer", ranking.neurons.iter().map(|r| r.neuron.layer).collect::<Vec<_>>())?;
    columns.set_item("neuron", ranking.neurons.iter().map(|r| r.neuron.index).collect::<Vec<_>>())?;
    columns.set_item("score", ranking.neurons.iter().map(|r| r.score).collect::<Vec<_>>())?;
    data_frame(py, &columns, None)
}

/// `pandas.DataFrame(columns)`, indexed by `index` when given; a clear error without pandas.
fn data_frame<'py>(py: Python<'py>, columns: &Bound<'py, PyDict>, index: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
    let pandas = py.import("pandas").map_err(|_| py_message("tables need pandas: pip install pandas"))?;
    let frame = pandas.getattr("DataFrame")?.call1((columns,))?;
    match index {
        Some(index) => frame.call_method1("set_index", (index,)),
        None => Ok(frame),
    }
}

/// A JSON value as Python objects, through the standard `json` module.
fn json_to_python<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (value.to_string(),))
}
