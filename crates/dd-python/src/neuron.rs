//! A neuron in Python: its stored records, each kind as typed objects, and its HTML in notebooks.

use std::sync::{Arc, OnceLock};

use dd_data::{NeuronDataKind, NeuronRecord};
use dd_server::notebook::{NeuronView, NotebookTokens, neuron_html};
use pyo3::prelude::*;

use crate::backend::decode_neuron;
use crate::data::{Connection, Example, Explanation, Graph, SimilarNeuron, Stats, TokenLists, TokenMean};
use crate::error::py_error;
use crate::relations::{Correlation, Embedding};

/// One neuron (or unit of another source) with every record the database has for it.
#[pyclass(frozen, module = "deepdecipher")]
pub(crate) struct Neuron {
    /// The model's name.
    #[pyo3(get)]
    model: String,
    /// The hook point (`mlp` for MLP neurons).
    #[pyo3(get)]
    source: String,
    /// Layer.
    #[pyo3(get)]
    layer: u32,
    /// Index within the layer.
    #[pyo3(get)]
    index: u32,
    /// The stored blobs, decoded on first use: reading a neuron costs its reads alone.
    blobs: Vec<(NeuronDataKind, Vec<u8>)>,
    records: OnceLock<Vec<NeuronRecord>>,
    strings: Arc<NotebookTokens>,
}

impl Neuron {
    /// The neuron `layer`/`index` of `model`'s `source` with its stored `blobs`.
    pub(crate) fn new(
        model: &str,
        source: &str,
        (layer, index): (u32, u32),
        blobs: Vec<(NeuronDataKind, Vec<u8>)>,
        strings: Arc<NotebookTokens>,
    ) -> Self {
        let model = model.to_owned();
        Neuron { model, source: source.to_owned(), layer, index, blobs, records: OnceLock::new(), strings }
    }

    /// Every record, decoded once.
    fn records(&self) -> PyResult<&[NeuronRecord]> {
        if let Some(records) = self.records.get() {
            return Ok(records);
        }
        let what = |kind: NeuronDataKind| {
            move || format!("{} {} {}/{} {}", self.model, self.source, self.layer, self.index, kind.name())
        };
        let records = self
            .blobs
            .iter()
            .map(|(kind, blob)| decode_neuron(what(*kind), *kind, blob))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| py_error(&e))?;
        Ok(self.records.get_or_init(|| records))
    }

    /// The examples record, if stored.
    fn examples_record(&self) -> PyResult<Option<&dd_data::NeuronExamples>> {
        self.find(|r| if let NeuronRecord::Examples(e) = r { Some(e) } else { None })
    }

    fn find<T>(&self, pick: impl Fn(&NeuronRecord) -> Option<&T>) -> PyResult<Option<&T>> {
        Ok(self.records()?.iter().find_map(pick))
    }
}

#[pymethods]
impl Neuron {
    /// `(layer, index)`.
    #[getter]
    fn address(&self) -> (u32, u32) {
        (self.layer, self.index)
    }

    /// The names of the kinds of data stored for it (`examples`, `stats`, …).
    #[getter]
    fn kinds(&self) -> Vec<&'static str> {
        self.blobs.iter().map(|(kind, _)| kind.name()).collect()
    }

    /// Every example context, group by group (top, bottom, quantile bands, random).
    #[getter]
    fn examples(&self) -> PyResult<Vec<Example>> {
        let Some(examples) = self.examples_record()? else {
            return Ok(Vec::new());
        };
        Ok(examples
            .groups
            .iter()
            .flat_map(|group| group.examples.iter().map(|example| Example::new(group.kind, example, &self.strings)))
            .collect())
    }

    /// The top-activating examples, strongest first.
    #[getter]
    fn top_examples(&self) -> PyResult<Vec<Example>> {
        let Some(examples) = self.examples_record()? else {
            return Ok(Vec::new());
        };
        Ok(examples.top().map_or_else(Vec::new, |group| {
            group.examples.iter().map(|example| Example::new(group.kind, example, &self.strings)).collect()
        }))
    }

    /// Activation statistics and histogram, or `None`.
    #[getter]
    fn stats(&self) -> PyResult<Option<Stats>> {
        Ok(self.find(|r| if let NeuronRecord::Stats(s) = r { Some(s) } else { None })?.map(|s| Stats::new(s.clone())))
    }

    /// Direct logit attribution: the output tokens it promotes (`top`) and suppresses (`bottom`).
    #[getter]
    fn logits(&self) -> PyResult<Option<TokenLists>> {
        Ok(self
            .find(|r| if let NeuronRecord::Logits(l) = r { Some(l) } else { None })?
            .map(|l| TokenLists::new(&l.top, &l.bottom, &self.strings)))
    }

    /// Input tokens that raise (`top`) and lower (`bottom`) it most through the direct path.
    #[getter]
    fn input_tokens(&self) -> PyResult<Option<TokenLists>> {
        Ok(self
            .find(|r| if let NeuronRecord::InputTokens(i) = r { Some(i) } else { None })?
            .map(|i| TokenLists::new(&i.top, &i.bottom, &self.strings)))
    }

    /// Tokens with its highest mean activation over the recorded dataset.
    #[getter]
    fn activating_tokens(&self) -> PyResult<Vec<TokenMean>> {
        Ok(self
            .find(|r| if let NeuronRecord::ActivatingTokens(a) = r { Some(a) } else { None })?
            .map_or_else(Vec::new, |a| a.tokens.iter().map(|t| TokenMean::new(t, &self.strings)).collect()))
    }

    /// Earlier-layer neurons driving it most (`inputs`), later-layer neurons it drives most
    /// (`outputs`), by weights.
    #[getter]
    fn connections(&self) -> PyResult<Option<(Vec<Connection>, Vec<Connection>)>> {
        Ok(self
            .find(|r| if let NeuronRecord::Connections(c) = r { Some(c) } else { None })?
            .map(|c| (Connection::list(&c.inputs), Connection::list(&c.outputs))))
    }

    /// Its explanations, best first.
    #[getter]
    fn explanations(&self) -> PyResult<Vec<Explanation>> {
        Ok(self
            .find(|r| if let NeuronRecord::Explanations(e) = r { Some(e) } else { None })?
            .map_or_else(Vec::new, |e| e.explanations.iter().cloned().map(Explanation::new).collect()))
    }

    /// Its Neuron2Graph graph, or `None`.
    #[getter]
    fn graph(&self) -> PyResult<Option<Graph>> {
        Ok(self.find(|r| if let NeuronRecord::Graph(g) = r { Some(g) } else { None })?.map(|g| Graph::new(g.clone())))
    }

    /// `(positive, negative)`: the neurons of the whole model whose activations correlate most with
    /// its own, most positive and most negative first; `None` before `relate`.
    #[getter]
    fn correlations(&self) -> PyResult<Option<(Vec<Correlation>, Vec<Correlation>)>> {
        Ok(self
            .find(|r| if let NeuronRecord::Correlations(c) = r { Some(c) } else { None })?
            .map(|c| (Correlation::list(&c.positive), Correlation::list(&c.negative))))
    }

    /// A vector for its behaviour and its nearest neighbours; `None` before `relate`.
    #[getter]
    fn embedding(&self) -> PyResult<Option<Embedding>> {
        Ok(self.find(|r| if let NeuronRecord::Embedding(e) = r { Some(e) } else { None })?.map(Embedding::new))
    }

    /// The neurons most similar to it.
    #[getter]
    fn similar(&self) -> PyResult<Vec<SimilarNeuron>> {
        Ok(self
            .find(|r| if let NeuronRecord::Similar(s) = r { Some(s) } else { None })?
            .map_or_else(Vec::new, SimilarNeuron::list))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Neuron>().is_ok_and(|other| {
            let other = other.get();
            // Equal blobs decode to equal records; blobs of different encodings are compared decoded.
            (&self.model, &self.source, self.layer, self.index)
                == (&other.model, &other.source, other.layer, other.index)
                && (self.blobs == other.blobs || matches!((self.records(), other.records()), (Ok(a), Ok(b)) if a == b))
        })
    }

    fn __repr__(&self) -> String {
        format!("Neuron({:?}, layer={}, index={}, kinds={:?})", self.model, self.layer, self.index, self.kinds())
    }

    fn _repr_html_(&self) -> PyResult<String> {
        let view = NeuronView {
            model: &self.model,
            layer: self.layer,
            neuron: self.index,
            examples: self.examples_record()?,
            stats: self.find(|r| if let NeuronRecord::Stats(s) = r { Some(s) } else { None })?,
            explanations: self.find(|r| if let NeuronRecord::Explanations(e) = r { Some(e) } else { None })?,
        };
        Ok(neuron_html(&view, &self.strings))
    }
}
