//! The model runtime from Python: load a model, tokenize, and run texts or token ids to MLP
//! activations and logits as NumPy arrays, with the GIL released during the forward pass.

use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use dd_model::{Hook, ModelConfig, RunRequest, Tokenizer, Transformer};
use dd_record::OpenedModel;
use numpy::{IntoPyArray, PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{py_error, py_message};

/// A model loaded into the runtime.
enum Loaded {
    /// Weights and tokenizer, ready to record too.
    Full(OpenedModel),
    /// Weights alone (a folder without tokenizer files): runs token ids.
    WeightsOnly {
        /// The weights.
        transformer: Transformer,
        /// The folder's name.
        name: String,
    },
}

/// A transformer loaded by DeepDecipher's runtime (`deepdecipher.load_model`).
#[pyclass(frozen, module = "deepdecipher")]
pub(crate) struct LoadedModel {
    loaded: Arc<Loaded>,
}

impl LoadedModel {
    fn transformer(&self) -> &Transformer {
        match &*self.loaded {
            Loaded::Full(opened) => &opened.transformer,
            Loaded::WeightsOnly { transformer, .. } => transformer,
        }
    }

    fn tokenizer(&self) -> PyResult<&Tokenizer> {
        match &*self.loaded {
            Loaded::Full(opened) => Ok(&opened.tokenizer),
            Loaded::WeightsOnly { name, .. } => {
                Err(py_message(format!("{name} was loaded without a tokenizer: pass token ids, not texts")))
            }
        }
    }

    /// The opened model for the recorder, which needs its tokenizer.
    pub(crate) fn opened(&self) -> PyResult<&OpenedModel> {
        match &*self.loaded {
            Loaded::Full(opened) => Ok(opened),
            Loaded::WeightsOnly { name, .. } => {
                Err(py_message(format!("{name} has no tokenizer, which recording needs")))
            }
        }
    }

    /// `text` as token ids, BOS first when `bos` and the tokenizer has one.
    fn encode(&self, text: &str, bos: bool) -> PyResult<Vec<u32>> {
        let tokenizer = self.tokenizer()?;
        let mut ids = Vec::new();
        if bos && let Some(id) = tokenizer.bos_token_id() {
            ids.push(id);
        }
        ids.extend(tokenizer.encode(text).map_err(|e| py_error(&e))?);
        Ok(ids)
    }

    /// The rows of token ids `inputs` stands for: a text, texts, ids or rows of ids.
    fn rows(&self, inputs: &Bound<'_, PyAny>, bos: bool) -> PyResult<Vec<Vec<u32>>> {
        if let Ok(text) = inputs.extract::<String>() {
            return Ok(vec![self.encode(&text, bos)?]);
        }
        if let Ok(texts) = inputs.extract::<Vec<String>>() {
            return texts.iter().map(|text| self.encode(text, bos)).collect();
        }
        if let Ok(ids) = inputs.extract::<Vec<u32>>() {
            return Ok(vec![ids]);
        }
        if let Ok(rows) = inputs.extract::<Vec<Vec<u32>>>() {
            return Ok(rows);
        }
        // NumPy arrays of any integer type: through a list.
        if let Ok(list) = inputs.call_method0("tolist") {
            if let Ok(ids) = list.extract::<Vec<u32>>() {
                return Ok(vec![ids]);
            }
            if let Ok(rows) = list.extract::<Vec<Vec<u32>>>() {
                return Ok(rows);
            }
        }
        Err(py_message(
            "inputs must be a text, a list of texts, token ids, or rows of token ids (non-negative integers)",
        ))
    }
}

/// Loads `model`: a local path (a model folder, a `.gguf`, a TransformerLens checkpoint) or a hub
/// id (`org/name[@revision][:file]`, fetched with the `HF_*` environment's settings).
#[pyfunction]
pub(crate) fn load_model(py: Python<'_>, model: &str) -> PyResult<LoadedModel> {
    let loaded = py.detach(|| -> Result<Loaded, Box<dyn std::error::Error + Send + Sync>> {
        let path = Path::new(model);
        if path.exists() {
            let files = dd_model::locate(path)?;
            if files.tokenizer.is_none() {
                let transformer = dd_model::load_located(&files, &Device::Cpu)?;
                let name = path.file_name().map_or_else(|| model.to_owned(), |n| n.to_string_lossy().into_owned());
                return Ok(Loaded::WeightsOnly { transformer, name });
            }
        }
        Ok(Loaded::Full(dd_record::open_model(model)?))
    });
    let loaded = loaded.map_err(|e| py_error(e.as_ref()))?;
    Ok(LoadedModel { loaded: Arc::new(loaded) })
}

#[pymethods]
impl LoadedModel {
    /// The name a database gives it by default.
    #[getter]
    fn name(&self) -> String {
        match &*self.loaded {
            Loaded::Full(opened) => opened.default_name.clone(),
            Loaded::WeightsOnly { name, .. } => name.clone(),
        }
    }

    /// The architecture and sizes (`n_layers`, `d_model`, `d_mlp`, `n_heads`, `d_vocab`, `n_ctx`,
    /// `activation`, `architecture`).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let config: &ModelConfig = self.transformer().config();
        let dict = PyDict::new(py);
        dict.set_item("architecture", format!("{:?}", config.architecture))?;
        dict.set_item("n_layers", config.n_layers)?;
        dict.set_item("d_model", config.d_model)?;
        dict.set_item("d_mlp", config.d_mlp)?;
        dict.set_item("n_heads", config.n_heads)?;
        dict.set_item("d_vocab", config.d_vocab)?;
        dict.set_item("n_ctx", config.n_ctx)?;
        dict.set_item("activation", config.activation.name())?;
        Ok(dict)
    }

    /// `text` as token ids, the tokenizer's BOS first when `bos` (as the recorder feeds texts).
    #[pyo3(signature = (text, bos=true))]
    fn tokenize(&self, text: &str, bos: bool) -> PyResult<Vec<u32>> {
        self.encode(text, bos)
    }

    /// The display string of each token id.
    fn tokens(&self, ids: Vec<u32>) -> PyResult<Vec<String>> {
        let tokenizer = self.tokenizer()?;
        Ok(ids.iter().map(|&id| tokenizer.display(id)).collect())
    }

    /// Runs `inputs` (a text, texts, token ids or rows of ids) and returns the MLP activations of
    /// `layers` (all by default) as `[batch, position, neuron]` float32 arrays, and the logits
    /// (`[batch, position, vocabulary]`) when `logits`. Rows of different lengths are padded at the
    /// end; padded positions hold NaN and `lengths` gives each row's length.
    #[pyo3(signature = (inputs, layers=None, logits=false, bos=true))]
    fn run(
        &self,
        py: Python<'_>,
        inputs: &Bound<'_, PyAny>,
        layers: Option<Vec<usize>>,
        logits: bool,
        bos: bool,
    ) -> PyResult<RunResult> {
        let rows = self.rows(inputs, bos)?;
        let config = self.transformer().config();
        let layers = layers.unwrap_or_else(|| (0..config.n_layers).collect());
        if let Some(&layer) = layers.iter().find(|&&layer| layer >= config.n_layers) {
            return Err(py_message(format!(
                "layer {layer} is out of range: the model has layers 0 to {}",
                config.n_layers - 1
            )));
        }
        let batch = rows.len();
        let positions = rows.iter().map(Vec::len).max().unwrap_or(0);
        if batch == 0 || positions == 0 {
            return Err(py_message("nothing to run: give at least one token"));
        }
        if positions > config.n_ctx {
            return Err(py_message(format!("{positions} tokens exceed the model's context of {}", config.n_ctx)));
        }
        if let Some(&id) = rows.iter().flatten().find(|&&id| id as usize >= config.d_vocab) {
            return Err(py_message(format!("token id {id} is outside the model's vocabulary of {}", config.d_vocab)));
        }
        let lengths: Vec<usize> = rows.iter().map(Vec::len).collect();
        let mut flat = Vec::with_capacity(batch * positions);
        for row in &rows {
            flat.extend_from_slice(row);
            flat.resize(flat.len() + positions - row.len(), 0);
        }
        let request = RunRequest { layers: layers.clone(), hooks: vec![Hook::Post], logits };
        let transformer = self.transformer();
        let output = py
            .detach(|| -> Result<_, dd_model::ModelError> {
                let ids = Tensor::from_vec(flat.clone(), (batch, positions), transformer.device())?;
                let output = transformer.run(&ids, &request)?;
                let mut activations = Vec::with_capacity(layers.len());
                for values in &output.layers {
                    activations.push((
                        values.layer,
                        padded(values.values.flatten_all()?.to_vec1::<f32>()?, &lengths, positions),
                    ));
                }
                let logits = match &output.logits {
                    Some(logits) => Some(padded(logits.flatten_all()?.to_vec1::<f32>()?, &lengths, positions)),
                    None => None,
                };
                Ok((activations, logits))
            })
            .map_err(|e| py_error(&e))?;
        let (activations, logits_values) = output;
        let layer_arrays = PyDict::new(py);
        for (layer, values) in activations {
            let array = values.into_pyarray(py).reshape([batch, positions, config.d_mlp])?;
            layer_arrays.set_item(layer, array)?;
        }
        let logits_array = match logits_values {
            Some(values) => {
                Some(values.into_pyarray(py).reshape([batch, positions, config.d_vocab])?.into_any().unbind())
            }
            None => None,
        };
        let ids = flat.into_pyarray(py).reshape([batch, positions])?;
        Ok(RunResult {
            activations: layer_arrays.unbind(),
            logits: logits_array,
            token_ids: ids.unbind(),
            lengths: lengths.into_iter().map(|n| n as u32).collect(),
        })
    }

    fn __repr__(&self) -> String {
        let config = self.transformer().config();
        format!("LoadedModel({:?}, {} layers × {} neurons)", self.name(), config.n_layers, config.d_mlp)
    }
}

/// Values `[batch, positions, width]` with every position past its row's length set to NaN.
fn padded(mut values: Vec<f32>, lengths: &[usize], positions: usize) -> Vec<f32> {
    let width = values.len() / (lengths.len() * positions).max(1);
    for (row, &length) in lengths.iter().enumerate() {
        let start = (row * positions + length) * width;
        let end = (row + 1) * positions * width;
        values[start..end].fill(f32::NAN);
    }
    values
}

/// What `LoadedModel.run` returns.
#[pyclass(frozen, module = "deepdecipher")]
pub(crate) struct RunResult {
    /// MLP activations by layer, each `[batch, position, neuron]` float32.
    #[pyo3(get)]
    activations: Py<PyDict>,
    /// Logits `[batch, position, vocabulary]` float32, when asked for.
    #[pyo3(get)]
    logits: Option<Py<PyAny>>,
    /// The token ids run, `[batch, position]` uint32 (padding is 0).
    #[pyo3(get)]
    token_ids: Py<PyArray2<u32>>,
    /// Each row's length.
    #[pyo3(get)]
    lengths: Vec<u32>,
}

#[pymethods]
impl RunResult {
    /// The activations of `layer`.
    fn __getitem__<'py>(&self, py: Python<'py>, layer: usize) -> PyResult<Bound<'py, PyAny>> {
        self.activations
            .bind(py)
            .get_item(layer)?
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(format!("layer {layer} was not run")))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let layers: Vec<String> = self.activations.bind(py).keys().iter().map(|k| k.to_string()).collect();
        format!(
            "RunResult(layers=[{}], lengths={:?}, logits={})",
            layers.join(", "),
            self.lengths,
            self.logits.is_some()
        )
    }
}
