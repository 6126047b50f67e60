//! The relations between neurons in Python: correlated neurons, behaviour embeddings and
//! co-activating groups as typed objects (roles and changes are DataFrames, in `database`).

use std::sync::Arc;

use dd_server::notebook::NotebookTokens;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

use crate::data::SimilarNeuron;

/// A neuron whose activations correlate with another's.
#[pyclass(frozen, eq, get_all, module = "deepdecipher")]
#[derive(PartialEq)]
pub(crate) struct Correlation {
    /// The other neuron's layer.
    layer: u32,
    /// The other neuron's index.
    neuron: u32,
    /// Pearson's r over the sampled tokens.
    correlation: f32,
}

impl Correlation {
    /// The Python objects of a stored list.
    pub(crate) fn list(list: &[dd_data::CorrelatedNeuron]) -> Vec<Correlation> {
        list.iter()
            .map(|c| Correlation { layer: c.neuron.layer, neuron: c.neuron.index, correlation: c.correlation })
            .collect()
    }
}

#[pymethods]
impl Correlation {
    fn __repr__(&self) -> String {
        format!("Correlation({}/{}, r={:.3})", self.layer, self.neuron, self.correlation)
    }
}

/// A vector for a neuron's behaviour and its nearest neighbours.
#[pyclass(frozen, module = "deepdecipher")]
pub(crate) struct Embedding {
    /// What the vector was built from: `graph` or `activating_tokens`.
    #[pyo3(get)]
    source: String,
    vector: Vec<f32>,
    neighbours: Vec<(u32, u32, f32)>,
}

impl Embedding {
    /// The Python object of a stored embedding.
    pub(crate) fn new(record: &dd_data::NeuronEmbedding) -> Self {
        Embedding {
            source: record.source.name().to_owned(),
            vector: record.values.iter().map(|&v| f32::from(v) * record.scale).collect(),
            neighbours: record.neighbours.iter().map(|n| (n.layer, n.index, n.similarity)).collect(),
        }
    }
}

#[pymethods]
impl Embedding {
    /// The unit-length vector, float32.
    #[getter]
    fn vector<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.vector.clone().into_pyarray(py)
    }

    /// The nearest neurons by centred cosine, nearest first.
    #[getter]
    fn neighbours(&self) -> Vec<SimilarNeuron> {
        self.neighbours
            .iter()
            .map(|&(layer, neuron, similarity)| SimilarNeuron::new(layer, neuron, similarity))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Embedding(source={}, dimension={}, {} neighbours)",
            self.source,
            self.vector.len(),
            self.neighbours.len()
        )
    }
}

/// A context where a group's members fire together.
#[pyclass(frozen, module = "deepdecipher")]
pub(crate) struct GroupContext {
    /// Index of the context in the recorded dataset.
    #[pyo3(get)]
    dataset_index: u64,
    /// Members whose own z-score is at least 2 at the best token.
    #[pyo3(get)]
    firing: u32,
    token_ids: Vec<u32>,
    scores: Vec<f32>,
    strings: Arc<NotebookTokens>,
}

#[pymethods]
impl GroupContext {
    /// The tokens as text.
    #[getter]
    fn tokens(&self) -> Vec<String> {
        self.token_ids.iter().map(|&id| self.strings.display(id)).collect()
    }

    /// The token ids, uint32.
    #[getter]
    fn token_ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.token_ids.clone().into_pyarray(py)
    }

    /// The members' mean z-score on each token, float32.
    #[getter]
    fn scores<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.scores.clone().into_pyarray(py)
    }
}

/// Neurons that fire together: a community of the correlation graph.
#[pyclass(frozen, module = "deepdecipher")]
pub(crate) struct Group {
    /// Its number: its position in the model's list, most cohesive first.
    #[pyo3(get)]
    number: u32,
    /// Mean Pearson r over all pairs of members.
    #[pyo3(get)]
    cohesion: f32,
    /// `(layer, neuron)` of each member.
    #[pyo3(get)]
    members: Vec<(u32, u32)>,
    contexts: Vec<dd_data::GroupContext>,
    strings: Arc<NotebookTokens>,
}

impl Group {
    /// The Python objects of a model's stored groups.
    pub(crate) fn list(groups: dd_data::NeuronGroups, strings: &Arc<NotebookTokens>) -> Vec<Group> {
        groups
            .groups
            .into_iter()
            .enumerate()
            .map(|(number, group)| Group {
                number: number as u32,
                cohesion: group.cohesion,
                members: group.members.iter().map(|m| (m.layer, m.index)).collect(),
                contexts: group.contexts,
                strings: Arc::clone(strings),
            })
            .collect()
    }
}

#[pymethods]
impl Group {
    /// The contexts where the members fire together most, strongest first.
    #[getter]
    fn contexts(&self) -> Vec<GroupContext> {
        self.contexts
            .iter()
            .map(|c| GroupContext {
                dataset_index: c.dataset_index,
                firing: c.firing,
                token_ids: c.tokens.clone(),
                scores: c.scores.clone(),
                strings: Arc::clone(&self.strings),
            })
            .collect()
    }

    fn __len__(&self) -> usize {
        self.members.len()
    }

    fn __repr__(&self) -> String {
        format!("Group({}, {} members, cohesion={:.3})", self.number, self.members.len(), self.cohesion)
    }
}
