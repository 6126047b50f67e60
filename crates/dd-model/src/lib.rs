//! Transformer language models on candle, with MLP neuron activations captured.
//!
//! Loads GPT-2, GPT-NeoX/Pythia, TransformerLens toy models (SoLU, GELU) and Llama-family models
//! from safetensors, PyTorch pickles or GGUF (quantized tensors are dequantized at load), and runs
//! our own forward pass, which returns the MLP neuron activations of the layers asked for and stops
//! there. The activation of each MLP kind is defined once, in [`model`]. [`circuits`] reads
//! facts about every neuron from the weights alone (direct logit attribution, input tokens,
//! neuron-to-neuron connections). [`describe`] reads what a model's files say about it (the name
//! its metadata gives, its training data, how its weights are stored) without loading the weights.
//! [`generate`] continues a prompt over a [`KvCache`] ([`Transformer::extend`]), and
//! [`ChatTemplate`] writes a conversation the way an instruct model expects it.
//! [`sentence`] embeds text as sentence-transformers does (all-MiniLM-L6-v2), for searching
//! explanations by meaning.
//!
//! ```no_run
//! use dd_model::{load_transformer, RunRequest};
//! # fn main() -> Result<(), dd_model::ModelError> {
//! let device = candle_core::Device::Cpu;
//! let model = load_transformer(std::path::Path::new("models/pythia-70m"), &device)?;
//! let ids = candle_core::Tensor::new(&[[0u32, 510, 3158]], &device)?;
//! let output = model.run(&ids, &RunRequest::all_layers(model.config()))?;
//! let layer_0 = output.get(0, dd_model::Hook::Post); // [1, 3, d_mlp]
//! # let _ = layer_0; Ok(()) }
//! ```

mod chat;
pub mod circuits;
pub mod config;
pub mod correlation;
mod describe;
mod error;
mod generate;
mod load;
pub mod model;
mod ops;
pub mod sentence;
mod tiled;
mod tokenizer;
mod weights;

pub use chat::ChatTemplate;
pub use circuits::{
    CircuitOptions, NeuronLink, NeuronLinks, TokenEffect, TokenEffects, WeightFact, WorkEstimate, input_tokens,
    logit_attribution, neuron_connections, work_estimate,
};
pub use config::{Activation, Architecture, MlpKind, ModelConfig, Normalization, Positions};
pub use describe::{ModelDescription, describe};
pub use error::ModelError;
pub use generate::{Generated, GenerationConfig, KvCache, Sampling, StopReason, generate, greedy_continuation};
pub use load::{
    ModelFiles, TokenizerFiles, WeightFormat, load_located, load_tokenizer, load_transformer, locate, read_config,
    shard_names, tokenizer_at, tokenizer_repository,
};
pub use model::{Hook, LayerValues, MlpWeights, NormWeights, RunOutput, RunRequest, Transformer};
pub use sentence::SentenceEncoder;
pub use tokenizer::{Tokenizer, display_token};
