//! The Python package `deepdecipher` (built with maturin from `python/`): a thin layer over the
//! libraries that translates Python calls into library calls and library values into Python
//! objects. No policy of its own.

use std::sync::Arc;

use dd_data::{ExampleGroupKind, ModelDataKind, ModelRecord, NeuronDataKind, NeuronRecord};
use dd_store::{ModelEntry, SqliteStore, StoreRead};
use numpy::IntoPyArray;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pyo3::create_exception!(_deepdecipher, DeepDecipherError, PyException, "Every error the package raises.");

fn error(message: impl ToString) -> PyErr {
    DeepDecipherError::new_err(message.to_string())
}

/// A DeepDecipher database opened for reading.
#[pyclass(frozen)]
struct Database {
    store: Arc<SqliteStore>,
}

#[pymethods]
impl Database {
    /// The names of the models in the database.
    fn model_names(&self) -> Vec<String> {
        self.store.catalog().models().iter().map(|model| model.metadata.name.clone()).collect()
    }

    /// The model called `name` (or the only one).
    #[pyo3(signature = (name=None))]
    fn model(&self, name: Option<&str>) -> PyResult<Model> {
        let models = self.store.catalog().models();
        let entry = match name {
            Some(name) => self.store.catalog().model(name).ok_or_else(|| error(format!("no model {name:?}")))?,
            None if models.len() == 1 => &models[0],
            None => return Err(error("the database has several models: name one")),
        };
        Ok(Model { store: Arc::clone(&self.store), entry: entry.clone(), vocabulary: std::sync::OnceLock::new() })
    }

    fn __repr__(&self) -> String {
        format!("Database({})", self.store.path().display())
    }
}

/// One model of a database.
#[pyclass(frozen)]
struct Model {
    store: Arc<SqliteStore>,
    entry: ModelEntry,
    /// The vocabulary, decoded on first use: every neuron's tokens are shown through it.
    vocabulary: std::sync::OnceLock<Arc<Vec<String>>>,
}

#[pymethods]
impl Model {
    /// The model's name.
    #[getter]
    fn name(&self) -> &str {
        &self.entry.metadata.name
    }

    /// Layers and MLP neurons per layer.
    #[getter]
    fn shape(&self) -> (u64, u64) {
        (self.entry.metadata.n_layers, self.entry.metadata.d_mlp)
    }

    /// The neuron `index` of `layer`, with every record the database has for it.
    fn neuron(&self, layer: u32, index: u32) -> PyResult<Neuron> {
        let source = self.entry.source(dd_data::MLP_SOURCE).ok_or_else(|| error("the model has no mlp source"))?;
        if u64::from(layer) >= source.info.n_layers || u64::from(index) >= source.info.units_per_layer {
            return Err(error(format!(
                "neuron {layer}/{index} is outside the model's {} × {} neurons",
                source.info.n_layers, source.info.units_per_layer
            )));
        }
        let mut records = Vec::new();
        for &kind in NeuronDataKind::ALL {
            if let Some(record) = self.store.neuron_record(source, layer, index, kind).map_err(error)? {
                records.push(record);
            }
        }
        let vocabulary = match self.vocabulary.get() {
            Some(vocabulary) => Arc::clone(vocabulary),
            None => {
                let tokens = match self.store.model_record(&self.entry, ModelDataKind::Vocabulary).map_err(error)? {
                    Some(ModelRecord::Vocabulary(vocabulary)) => vocabulary.tokens,
                    _ => Vec::new(),
                };
                Arc::clone(self.vocabulary.get_or_init(|| Arc::new(tokens)))
            }
        };
        Ok(Neuron { layer, index, records, vocabulary })
    }
}

/// An explanation for Python: text, origin, and the scores by name.
type ExplanationTuple = (String, String, Vec<(String, f32)>);

/// One neuron's records.
#[pyclass(frozen)]
struct Neuron {
    layer: u32,
    index: u32,
    records: Vec<NeuronRecord>,
    vocabulary: Arc<Vec<String>>,
}

/// One example context: its tokens, their ids and the neuron's activations.
#[pyclass(frozen, get_all)]
struct Example {
    /// Why it was chosen (`top`, `bottom`, `random`, `quantile`).
    group: String,
    /// Index of the context in the recorded dataset.
    dataset_index: u64,
    /// The tokens as shown (`·the`).
    tokens: Vec<String>,
    /// Position of the token that put it in its group.
    max_token_index: u32,
    token_ids: Py<PyAny>,
    activations: Py<PyAny>,
}

#[pymethods]
impl Neuron {
    /// `(layer, index)`.
    #[getter]
    fn address(&self) -> (u32, u32) {
        (self.layer, self.index)
    }

    /// The example contexts, every group in order.
    #[getter]
    fn examples(&self, py: Python<'_>) -> Vec<Example> {
        let mut out = Vec::new();
        for record in &self.records {
            let NeuronRecord::Examples(examples) = record else { continue };
            for group in &examples.groups {
                let name = match group.kind {
                    ExampleGroupKind::Top => "top",
                    ExampleGroupKind::Bottom => "bottom",
                    ExampleGroupKind::Random => "random",
                    ExampleGroupKind::Quantile { .. } => "quantile",
                };
                for example in &group.examples {
                    out.push(Example {
                        group: name.to_owned(),
                        dataset_index: example.dataset_index,
                        tokens: example
                            .tokens
                            .iter()
                            .map(|&id| self.vocabulary.get(id as usize).cloned().unwrap_or_default())
                            .collect(),
                        max_token_index: example.max_token_index,
                        token_ids: example.tokens.clone().into_pyarray(py).into_any().unbind(),
                        activations: example.activations.clone().into_pyarray(py).into_any().unbind(),
                    });
                }
            }
        }
        out
    }

    /// The activation statistics, or `None`.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        for record in &self.records {
            let NeuronRecord::Stats(stats) = record else { continue };
            let dict = PyDict::new(py);
            dict.set_item("count", stats.count)?;
            dict.set_item("max", stats.max)?;
            dict.set_item("min", stats.min)?;
            dict.set_item("mean", stats.mean)?;
            dict.set_item("variance", stats.variance)?;
            dict.set_item("density", stats.density)?;
            return Ok(Some(dict));
        }
        Ok(None)
    }

    /// The explanations as `(text, origin, scores)`.
    #[getter]
    fn explanations(&self) -> Vec<ExplanationTuple> {
        self.records
            .iter()
            .filter_map(|record| match record {
                NeuronRecord::Explanations(explanations) => Some(&explanations.explanations),
                _ => None,
            })
            .flatten()
            .map(|e| (e.text.clone(), e.origin.clone(), e.scores.iter().map(|s| (s.name.clone(), s.value)).collect()))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("Neuron({}/{})", self.layer, self.index)
    }
}

/// Opens the database at `path` for reading.
#[pyfunction]
fn open(path: std::path::PathBuf) -> PyResult<Database> {
    let config = dd_store::ReadConfig::serving_while_written();
    let store = SqliteStore::open(&path, &config).map_err(error)?;
    Ok(Database { store: Arc::new(store) })
}

#[pymodule]
fn _deepdecipher(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("DeepDecipherError", module.py().get_type::<DeepDecipherError>())?;
    module.add_class::<Database>()?;
    module.add_class::<Model>()?;
    module.add_class::<Neuron>()?;
    module.add_class::<Example>()?;
    module.add_function(wrap_pyfunction!(open, module)?)?;
    Ok(())
}
