//! The typed objects a neuron's records become in Python: plain values, NumPy arrays for token ids,
//! activations and histograms, and the website's HTML in notebooks. Each compares equal when the
//! records it came from are equal, so a neuron read over HTTP equals the one read from the file.

use std::collections::BTreeMap;
use std::sync::Arc;

use dd_data::{ExampleGroupKind, TokenValue as StoredTokenValue};
use dd_server::notebook::{NotebookTokens, example_html};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

/// One example context: its tokens, their ids and the neuron's activation on each.
#[pyclass(frozen, module = "deepdecipher")]
pub(crate) struct Example {
    /// Why it was chosen: `top`, `bottom`, `quantile` or `random`.
    #[pyo3(get)]
    group: String,
    /// The activation band of a `quantile` example; `None` otherwise.
    #[pyo3(get)]
    band: Option<u32>,
    /// Index of the context in the recorded dataset.
    #[pyo3(get)]
    dataset_index: u64,
    /// Position of the token that put the example in its group.
    #[pyo3(get)]
    max_token_index: u32,
    token_ids: Vec<u32>,
    activations: Vec<f32>,
    strings: Arc<NotebookTokens>,
}

impl Example {
    /// The Python object of a stored example of a group of `kind`.
    pub(crate) fn new(kind: ExampleGroupKind, example: &dd_data::Example, strings: &Arc<NotebookTokens>) -> Self {
        let (group, band) = match kind {
            ExampleGroupKind::Top => ("top", None),
            ExampleGroupKind::Bottom => ("bottom", None),
            ExampleGroupKind::Random => ("random", None),
            ExampleGroupKind::Quantile { band, .. } => ("quantile", Some(band)),
        };
        Example {
            group: group.to_owned(),
            band,
            dataset_index: example.dataset_index,
            max_token_index: example.max_token_index,
            token_ids: example.tokens.clone(),
            activations: example.activations.clone(),
            strings: Arc::clone(strings),
        }
    }

    fn key(&self) -> (&str, Option<u32>, u64, u32, &[u32], &[f32]) {
        (&self.group, self.band, self.dataset_index, self.max_token_index, &self.token_ids, &self.activations)
    }
}

#[pymethods]
impl Example {
    /// The token ids, a `uint32` array.
    #[getter]
    fn token_ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.token_ids.clone().into_pyarray(py)
    }

    /// The neuron's activation at each token, a `float32` array.
    #[getter]
    fn activations<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.activations.clone().into_pyarray(py)
    }

    /// The activation at `max_token_index`.
    #[getter]
    fn max_activation(&self) -> f32 {
        self.activations.get(self.max_token_index as usize).copied().unwrap_or(f32::NAN)
    }

    /// The tokens as the website shows them.
    #[getter]
    fn tokens(&self) -> Vec<String> {
        self.token_ids.iter().map(|&id| self.strings.display(id)).collect()
    }

    /// The text, tokens joined.
    #[getter]
    fn text(&self) -> String {
        self.tokens().concat()
    }

    fn __len__(&self) -> usize {
        self.token_ids.len()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Example>().is_ok_and(|other| self.key() == other.get().key())
    }

    fn __repr__(&self) -> String {
        format!(
            "Example(group={:?}, dataset_index={}, {} tokens, max {:.3} at {})",
            self.group,
            self.dataset_index,
            self.token_ids.len(),
            self.max_activation(),
            self.max_token_index
        )
    }

    fn _repr_html_(&self) -> String {
        example_html(&self.token_ids, &self.activations, self.max_token_index, &self.strings)
    }
}

/// A neuron's activation statistics over every recorded position but BOS, and its histogram.
#[pyclass(frozen, eq, module = "deepdecipher")]
#[derive(PartialEq)]
pub(crate) struct Stats {
    stats: dd_data::NeuronStats,
}

impl Stats {
    /// The Python object of stored statistics.
    pub(crate) fn new(stats: dd_data::NeuronStats) -> Self {
        Stats { stats }
    }
}

#[pymethods]
impl Stats {
    /// Positions counted.
    #[getter]
    fn count(&self) -> u64 {
        self.stats.count
    }
    /// Largest activation.
    #[getter]
    fn max(&self) -> f64 {
        self.stats.max
    }
    /// Smallest activation.
    #[getter]
    fn min(&self) -> f64 {
        self.stats.min
    }
    /// Mean activation.
    #[getter]
    fn mean(&self) -> f64 {
        self.stats.mean
    }
    /// Variance.
    #[getter]
    fn variance(&self) -> f64 {
        self.stats.variance
    }
    /// Skewness.
    #[getter]
    fn skewness(&self) -> f64 {
        self.stats.skewness
    }
    /// Kurtosis.
    #[getter]
    fn kurtosis(&self) -> f64 {
        self.stats.kurtosis
    }
    /// Share of positions where the neuron is active.
    #[getter]
    fn density(&self) -> f64 {
        self.stats.density
    }
    /// How selective the neuron is (the ranking's score).
    #[getter]
    fn interestingness(&self) -> f32 {
        dd_data::interestingness(&self.stats)
    }
    /// The histogram's bin edges, `float32`, one more than the counts.
    #[getter]
    fn histogram_edges<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.stats.histogram.edges().into_pyarray(py)
    }
    /// The histogram's counts, `uint64`.
    #[getter]
    fn histogram_counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.stats.histogram.counts.clone().into_pyarray(py)
    }
    /// The BOS position's own `(count, max, min, mean)`, when recorded.
    #[getter]
    fn bos(&self) -> Option<(u64, f64, f64, f64)> {
        self.stats.bos.map(|bos| (bos.count, bos.max, bos.min, bos.mean))
    }

    fn __repr__(&self) -> String {
        let s = &self.stats;
        format!(
            "Stats(count={}, max={:.4}, min={:.4}, mean={:.4}, density={:.4})",
            s.count, s.max, s.min, s.mean, s.density
        )
    }
}

/// A token with a value: a logit effect or an input token's drive.
#[pyclass(frozen, eq, get_all, module = "deepdecipher")]
#[derive(PartialEq, Clone)]
pub(crate) struct TokenValue {
    /// The token as shown.
    token: String,
    /// Its id.
    token_id: u32,
    /// The value.
    value: f32,
}

#[pymethods]
impl TokenValue {
    fn __repr__(&self) -> String {
        format!("TokenValue({:?}, {:.4})", self.token, self.value)
    }
}

/// Tokens a neuron raises most (`top`) and lowers most (`bottom`).
#[pyclass(frozen, eq, get_all, module = "deepdecipher")]
#[derive(PartialEq)]
pub(crate) struct TokenLists {
    /// The tokens raised most, strongest first.
    top: Vec<TokenValue>,
    /// The tokens lowered most, strongest first.
    bottom: Vec<TokenValue>,
}

impl TokenLists {
    /// Both lists with their tokens shown through `strings`.
    pub(crate) fn new(top: &[StoredTokenValue], bottom: &[StoredTokenValue], strings: &NotebookTokens) -> Self {
        let list = |values: &[StoredTokenValue]| {
            values
                .iter()
                .map(|v| TokenValue { token: strings.display(v.token), token_id: v.token, value: v.value })
                .collect::<Vec<_>>()
        };
        TokenLists { top: list(top), bottom: list(bottom) }
    }
}

#[pymethods]
impl TokenLists {
    fn __repr__(&self) -> String {
        let names =
            |list: &[TokenValue]| list.iter().take(5).map(|t| format!("{:?}", t.token)).collect::<Vec<_>>().join(", ");
        format!("TokenLists(top=[{}…], bottom=[{}…])", names(&self.top), names(&self.bottom))
    }
}

/// A token with the neuron's mean activation on it over the recorded dataset.
#[pyclass(frozen, eq, get_all, module = "deepdecipher")]
#[derive(PartialEq)]
pub(crate) struct TokenMean {
    /// The token as shown.
    token: String,
    /// Its id.
    token_id: u32,
    /// Mean activation on it.
    mean: f32,
    /// How often it occurred.
    count: u64,
}

impl TokenMean {
    /// The Python object of a stored token mean.
    pub(crate) fn new(mean: &dd_data::TokenMean, strings: &NotebookTokens) -> Self {
        TokenMean { token: strings.display(mean.token), token_id: mean.token, mean: mean.mean, count: mean.count }
    }
}

#[pymethods]
impl TokenMean {
    fn __repr__(&self) -> String {
        format!("TokenMean({:?}, mean={:.4}, count={})", self.token, self.mean, self.count)
    }
}

/// A weight connection to another neuron.
#[pyclass(frozen, eq, get_all, module = "deepdecipher")]
#[derive(PartialEq)]
pub(crate) struct Connection {
    /// The other neuron's layer.
    layer: u32,
    /// The other neuron's index.
    neuron: u32,
    /// The connection's weight.
    weight: f32,
}

impl Connection {
    /// The Python objects of stored connections.
    pub(crate) fn list(connections: &[dd_data::Connection]) -> Vec<Connection> {
        connections
            .iter()
            .map(|c| Connection { layer: c.neuron.layer, neuron: c.neuron.index, weight: c.weight })
            .collect()
    }
}

#[pymethods]
impl Connection {
    fn __repr__(&self) -> String {
        format!("Connection({}/{}, weight={:.4})", self.layer, self.neuron, self.weight)
    }
}

/// A neuron similar to another one.
#[pyclass(frozen, eq, get_all, module = "deepdecipher")]
#[derive(PartialEq)]
pub(crate) struct SimilarNeuron {
    /// Layer.
    layer: u32,
    /// Neuron.
    neuron: u32,
    /// Similarity, 0 to 1.
    similarity: f32,
}

impl SimilarNeuron {
    /// One neighbour.
    pub(crate) fn new(layer: u32, neuron: u32, similarity: f32) -> Self {
        SimilarNeuron { layer, neuron, similarity }
    }

    /// The Python objects of stored similar neurons.
    pub(crate) fn list(similar: &dd_data::SimilarNeurons) -> Vec<SimilarNeuron> {
        similar
            .neurons
            .iter()
            .map(|n| SimilarNeuron { layer: n.layer, neuron: n.index, similarity: n.similarity })
            .collect()
    }
}

#[pymethods]
impl SimilarNeuron {
    fn __repr__(&self) -> String {
        format!("SimilarNeuron({}/{}, similarity={:.3})", self.layer, self.neuron, self.similarity)
    }
}

/// A natural-language explanation of a neuron with its scores and how it was made.
#[pyclass(frozen, eq, module = "deepdecipher")]
#[derive(PartialEq)]
pub(crate) struct Explanation {
    explanation: dd_data::Explanation,
}

impl Explanation {
    /// The Python object of a stored explanation.
    pub(crate) fn new(explanation: dd_data::Explanation) -> Self {
        Explanation { explanation }
    }
}

#[pymethods]
impl Explanation {
    /// The explanation.
    #[getter]
    fn text(&self) -> &str {
        &self.explanation.text
    }
    /// Where it came from (`generated`, `openai`, `neuronpedia`, …).
    #[getter]
    fn origin(&self) -> &str {
        &self.explanation.origin
    }
    /// Who or what wrote it.
    #[getter]
    fn author(&self) -> Option<&str> {
        self.explanation.author.as_deref()
    }
    /// Its scores by name, the main one first.
    #[getter]
    fn scores(&self) -> BTreeMap<String, f32> {
        self.explanation.scores.iter().map(|s| (s.name.clone(), s.value)).collect()
    }
    /// The main score (the first), if any.
    #[getter]
    fn score(&self) -> Option<f32> {
        self.explanation.scores.first().map(|s| s.value)
    }
    /// The prompt version it was written with, when generated.
    #[getter]
    fn prompt_version(&self) -> Option<&str> {
        self.explanation.provenance.as_ref().map(|p| p.prompt_version.as_str())
    }
    /// The exact prompt, when generated.
    #[getter]
    fn prompt(&self) -> Option<&str> {
        self.explanation.provenance.as_ref().map(|p| p.prompt.as_str())
    }
    /// The simulator that scored it, when generated.
    #[getter]
    fn simulator(&self) -> Option<&str> {
        self.explanation.provenance.as_ref().and_then(|p| p.simulator.as_deref())
    }
    /// When it was made (RFC 3339), when generated.
    #[getter]
    fn created(&self) -> Option<&str> {
        self.explanation.provenance.as_ref().map(|p| p.created.as_str())
    }
    /// Held-out sequences as `(token_ids, true_activations, simulated_activations)` arrays.
    #[getter]
    #[allow(clippy::type_complexity)]
    fn simulations<'py>(
        &self,
        py: Python<'py>,
    ) -> Vec<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<f32>>)> {
        self.explanation
            .simulations
            .iter()
            .map(|s| {
                (
                    s.token_ids.clone().into_pyarray(py),
                    s.true_activations.clone().into_pyarray(py),
                    s.simulated_activations.clone().into_pyarray(py),
                )
            })
            .collect()
    }
    fn __repr__(&self) -> String {
        match self.score() {
            Some(score) => format!(
                "Explanation({:?}, score={score:.3}, origin={:?})",
                self.explanation.text, self.explanation.origin
            ),
            None => format!("Explanation({:?}, origin={:?})", self.explanation.text, self.explanation.origin),
        }
    }
}

/// One node of a Neuron2Graph graph.
#[pyclass(frozen, eq, get_all, module = "deepdecipher")]
#[derive(PartialEq)]
pub(crate) struct GraphNode {
    /// The token it matches (or a wildcard).
    token: String,
    /// Its id, when a real token.
    token_id: Option<u32>,
    /// How important it is to the activation.
    importance: f32,
    /// The normalised activation at an activating node; `None` for context nodes.
    activation: Option<f32>,
    /// Whether a path may end here.
    is_end: bool,
    /// Indices of the nodes it requires before it.
    required: Vec<u32>,
}

/// A neuron's Neuron2Graph graph: token nodes whose paths predict where it fires.
#[pyclass(frozen, eq, module = "deepdecipher")]
#[derive(PartialEq)]
pub(crate) struct Graph {
    graph: dd_data::NeuronGraph,
}

impl Graph {
    /// The Python object of a stored graph.
    pub(crate) fn new(graph: dd_data::NeuronGraph) -> Self {
        Graph { graph }
    }
}

#[pymethods]
impl Graph {
    /// The nodes.
    #[getter]
    fn nodes(&self) -> Vec<GraphNode> {
        self.graph
            .nodes
            .iter()
            .map(|n| GraphNode {
                token: n.token.clone(),
                token_id: n.token_id,
                importance: n.importance,
                activation: n.activation,
                is_end: n.is_end,
                required: n.required.clone(),
            })
            .collect()
    }
    /// The tokens of activating nodes.
    #[getter]
    fn activating_tokens(&self) -> Vec<String> {
        self.graph.nodes.iter().filter(|n| n.activation.is_some()).map(|n| n.token.clone()).collect()
    }
    /// `(precision, recall, f1)` of the graph's predictions on held-out top examples, when scored
    /// (each `None` where undefined).
    #[getter]
    fn held_out_scores(&self) -> Option<(Option<f64>, Option<f64>, Option<f64>)> {
        let scores = self.graph.scores.as_ref()?;
        let c = &scores.held_out_top;
        Some((c.precision(), c.recall(), c.f1()))
    }
    fn __repr__(&self) -> String {
        format!("Graph({} nodes, activating on {:?})", self.graph.nodes.len(), self.activating_tokens())
    }
}
