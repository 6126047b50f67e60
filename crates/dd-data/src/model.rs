//! Model metadata, provenance and the hook points ("sources") a model exposes.

use crate::DataError;

/// The source name of MLP neurons, the unit the original DeepDecipher served.
pub const MLP_SOURCE: &str = "mlp";

/// Everything the API tells about one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMetadata {
    /// URL-safe name, unique in a database (`gpt2-small`).
    pub name: String,
    /// Architecture family (`gpt2`, `neox`, `tlens`, `llama`, `synthetic`).
    pub architecture: String,
    /// Number of transformer blocks.
    pub n_layers: u64,
    /// MLP neurons per layer.
    pub d_mlp: u64,
    /// Width of the residual stream.
    pub d_model: u64,
    /// Activation function of the MLP (`gelu`, `solu`, `silu`, ...).
    pub activation_function: String,
    /// The text the stored data was recorded on, named as a person writes it (`Shakespeare's plays`,
    /// `openwebtext-10k`); its exact path or package is [`Provenance::data_source`].
    pub dataset: String,
    /// What the model was trained on, when its files say; `None` when unknown.
    pub training_dataset: Option<String>,
    /// Number of parameters.
    pub n_parameters: u64,
    /// Maximum context length in tokens.
    pub context_length: u64,
    /// Where the stored data came from.
    pub provenance: Provenance,
}

/// Where a model's stored data came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// Exactly where the recorded text came from (a path, a package) or the importer that produced
    /// the data (`synthetic (seed 42)`, `corpus/pile-10k.jsonl.zst`, `neuroscope.io`).
    pub data_source: String,
    /// The model files the data was recorded from, as given (a path or a hub id); `None` for
    /// synthetic or imported data.
    pub model_source: Option<String>,
    /// How those files store the weights (`GGUF Q4_1`, `safetensors BF16`); `None` when unknown.
    pub weights: Option<String>,
    /// Tokens run through the model to produce the data (0 for imported or weight-only data).
    pub tokens_recorded: u64,
    /// Version of the tool that wrote the data.
    pub tool_version: String,
    /// When the data was written, as RFC 3339 UTC.
    pub recorded_at: String,
}

/// One hook point of a model whose units are addressed by (layer, index).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// Name of the hook point (`mlp`, or later `sae-res-16k`, ...).
    pub name: String,
    /// Number of layers this source has.
    pub n_layers: u64,
    /// Units per layer.
    pub units_per_layer: u64,
}

impl ModelMetadata {
    /// Total MLP neurons of the model.
    pub fn n_neurons(&self) -> u64 {
        self.n_layers.saturating_mul(self.d_mlp)
    }

    /// The `mlp` source every model has.
    pub fn mlp_source(&self) -> SourceInfo {
        SourceInfo { name: MLP_SOURCE.to_owned(), n_layers: self.n_layers, units_per_layer: self.d_mlp }
    }

    /// Checks the fields a store relies on.
    pub fn validate(&self) -> Result<(), DataError> {
        validate_name(&self.name)
    }
}

/// The longest model or source name, in bytes (names are ASCII).
pub const MAX_NAME_BYTES: usize = 100;

/// Checks that a model or source name is safe in URLs and file names.
pub fn validate_name(name: &str) -> Result<(), DataError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name != "."
        && name != "..";
    if ok { Ok(()) } else { Err(DataError::InvalidName { name: name.to_owned() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_url_safe() {
        assert!(validate_name("gpt2-small").is_ok());
        assert!(validate_name("SmolLM2-135M.v1_x").is_ok());
        for bad in ["", "a/b", "a b", "..", "ü", &"x".repeat(101)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
