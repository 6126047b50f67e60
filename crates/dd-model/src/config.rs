//! One description of a transformer's shape, read from HF or TransformerLens `config.json` or from
//! GGUF metadata, so the forward pass never sees a file format.

use std::path::Path;

use crate::error::ModelError;

/// The family a model's weights come from; it decides the tensor names and layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// OpenAI GPT-2 in Hugging Face layout.
    Gpt2,
    /// EleutherAI GPT-NeoX / Pythia in Hugging Face layout.
    GptNeoX,
    /// A TransformerLens state dict (Neel Nanda's SoLU and GELU toy models).
    TransformerLens,
    /// Llama-family models (Llama, SmolLM2, Mistral) in Hugging Face or GGUF layout.
    Llama,
}

impl Architecture {
    /// The name shown to users and stored as the model's architecture.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gpt2 => "gpt2",
            Self::GptNeoX => "gpt_neox",
            Self::TransformerLens => "transformer_lens",
            Self::Llama => "llama",
        }
    }
}

/// The MLP's non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// GELU with the tanh approximation (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
    GeluTanh,
    /// Exact GELU with erf (PyTorch's `gelu`).
    GeluErf,
    /// max(x, 0).
    Relu,
    /// x · sigmoid(x), used by gated MLPs as `silu(gate) · up`.
    Silu,
    /// TransformerLens SoLU: x · softmax(x) over the MLP, then a LayerNorm over the MLP.
    SoluLayerNorm,
}

impl Activation {
    /// The name used in configs and metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::GeluTanh => "gelu_new",
            Self::GeluErf => "gelu",
            Self::Relu => "relu",
            Self::Silu => "silu",
            Self::SoluLayerNorm => "solu_ln",
        }
    }
}

/// How the residual stream is normalised before attention, MLP and unembedding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Normalization {
    /// LayerNorm with a learned scale and bias.
    LayerNorm {
        /// Added to the variance.
        eps: f64,
    },
    /// LayerNorm without an affine (TransformerLens `LNPre`, weights folded).
    LayerNormPre {
        /// Added to the variance.
        eps: f64,
    },
    /// RMSNorm with a learned scale.
    RmsNorm {
        /// Added to the mean square.
        eps: f64,
    },
}

impl Normalization {
    /// The epsilon every variant carries.
    pub fn eps(self) -> f64 {
        match self {
            Self::LayerNorm { eps } | Self::LayerNormPre { eps } | Self::RmsNorm { eps } => eps,
        }
    }
}

/// How positions enter the model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Positions {
    /// A learned position embedding added to the token embedding.
    Learned,
    /// Rotary embeddings on the first `dims` channels of every query and key head.
    Rotary {
        /// Rotated channels per head (even, at most `d_head`).
        dims: usize,
        /// The frequency base (θ).
        base: f64,
        /// Channel pairs are adjacent (GGUF/llama.cpp) rather than split in halves (HF, GPT-NeoX).
        interleaved: bool,
    },
}

/// The MLP's structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlpKind {
    /// `act(x·W_in + b_in)·W_out + b_out`.
    Plain,
    /// `(act(x·W_gate) ⊙ x·W_up)·W_down` (Llama).
    Gated,
}

/// The shape and conventions of a decoder-only transformer.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// The weight family.
    pub architecture: Architecture,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Residual stream width.
    pub d_model: usize,
    /// MLP neurons per layer.
    pub d_mlp: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (fewer than `n_heads` for grouped-query attention).
    pub n_kv_heads: usize,
    /// Channels per head.
    pub d_head: usize,
    /// Rows of the token embedding.
    pub d_vocab: usize,
    /// Longest context the model accepts.
    pub n_ctx: usize,
    /// The MLP's non-linearity.
    pub activation: Activation,
    /// Plain or gated MLP.
    pub mlp: MlpKind,
    /// The normalisation layers.
    pub normalization: Normalization,
    /// Position embedding.
    pub positions: Positions,
    /// Attention and MLP both read the block's input (GPT-NeoX) instead of running one after the other.
    pub parallel_residual: bool,
}

/// The shapes the benchmarks compare with PyTorch (`../shared/bench/pytorch_baseline.py`), by name.
pub const BENCHMARK_SHAPES: [&str; 4] = ["gpt2-small", "pythia-70m", "solu-1l", "smollm2"];

impl ModelConfig {
    /// The shape of a well-known model, for benchmarks on random weights: one of
    /// [`BENCHMARK_SHAPES`] (GPT-2 small, Pythia-70M, TransformerLens SoLU-1L, SmolLM2-135M).
    pub fn benchmark_shape(name: &str) -> Option<ModelConfig> {
        let layer_norm = Normalization::LayerNorm { eps: 1e-5 };
        let gpt2_small = ModelConfig {
            architecture: Architecture::Gpt2,
            n_layers: 12,
            d_model: 768,
            d_mlp: 3072,
            n_heads: 12,
            n_kv_heads: 12,
            d_head: 64,
            d_vocab: 50257,
            n_ctx: 1024,
            activation: Activation::GeluTanh,
            mlp: MlpKind::Plain,
            normalization: layer_norm,
            positions: Positions::Learned,
            parallel_residual: false,
        };
        match name {
            "gpt2-small" => Some(gpt2_small),
            "pythia-70m" => Some(ModelConfig {
                architecture: Architecture::GptNeoX,
                n_layers: 6,
                d_model: 512,
                d_mlp: 2048,
                n_heads: 8,
                n_kv_heads: 8,
                d_vocab: 50304,
                n_ctx: 2048,
                activation: Activation::GeluErf,
                positions: Positions::Rotary { dims: 16, base: 10_000.0, interleaved: false },
                parallel_residual: true,
                ..gpt2_small
            }),
            "solu-1l" => Some(ModelConfig {
                architecture: Architecture::TransformerLens,
                n_layers: 1,
                d_model: 512,
                d_mlp: 2048,
                n_heads: 8,
                n_kv_heads: 8,
                d_vocab: 48262,
                activation: Activation::SoluLayerNorm,
                ..gpt2_small
            }),
            "smollm2" => Some(ModelConfig {
                architecture: Architecture::Llama,
                n_layers: 30,
                d_model: 576,
                d_mlp: 1536,
                n_heads: 9,
                n_kv_heads: 3,
                d_vocab: 49152,
                n_ctx: 8192,
                activation: Activation::Silu,
                mlp: MlpKind::Gated,
                normalization: Normalization::RmsNorm { eps: 1e-5 },
                positions: Positions::Rotary { dims: 64, base: 100_000.0, interleaved: true },
                ..gpt2_small
            }),
            _ => None,
        }
    }

    /// MLP neurons in the whole model.
    pub fn n_neurons(&self) -> u64 {
        self.n_layers as u64 * self.d_mlp as u64
    }

    /// Checks the numbers fit together, so the forward pass can rely on them.
    pub(crate) fn validate(&self, path: &Path) -> Result<(), ModelError> {
        let positive = [
            ("n_layers", self.n_layers),
            ("d_model", self.d_model),
            ("d_mlp", self.d_mlp),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("d_head", self.d_head),
            ("d_vocab", self.d_vocab),
            ("n_ctx", self.n_ctx),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ModelError::config(path, format!("{name} must be positive")));
            }
        }
        if self.n_heads % self.n_kv_heads != 0 {
            return Err(ModelError::config(
                path,
                format!("{} query heads cannot share {} key/value heads", self.n_heads, self.n_kv_heads),
            ));
        }
        if let Positions::Rotary { dims, base, .. } = self.positions {
            if dims == 0 || dims % 2 != 0 || dims > self.d_head {
                return Err(ModelError::config(
                    path,
                    format!("rotary dimensions {dims} must be even and at most d_head {}", self.d_head),
                ));
            }
            if !(base.is_finite() && base > 0.0) {
                return Err(ModelError::config(path, format!("rotary base {base} must be positive")));
            }
        }
        let eps = self.normalization.eps();
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(ModelError::config(path, format!("normalisation epsilon {eps} must be non-negative")));
        }
        match (self.mlp, self.activation) {
            (MlpKind::Gated, Activation::SoluLayerNorm) => Err(ModelError::config(path, "a gated MLP cannot use SoLU")),
            _ => Ok(()),
        }
    }
}

/// Maps an activation name used by HF, TransformerLens or GGUF to ours.
pub(crate) fn activation_from_name(path: &Path, name: &str) -> Result<Activation, ModelError> {
    match name {
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "gelu_tanh" => Ok(Activation::GeluTanh),
        "gelu" => Ok(Activation::GeluErf),
        "relu" => Ok(Activation::Relu),
        "silu" | "swish" => Ok(Activation::Silu),
        "solu_ln" => Ok(Activation::SoluLayerNorm),
        other => Err(ModelError::Unsupported { path: path.to_path_buf(), what: format!("activation `{other}`") }),
    }
}

/// A parsed `config.json` with typed getters that name the file and field in their errors.
pub(crate) struct JsonConfig<'a> {
    path: &'a Path,
    value: serde_json::Value,
}

impl<'a> JsonConfig<'a> {
    /// Reads and parses `path`.
    pub(crate) fn read(path: &'a Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|err| ModelError::io(path, err))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|err| ModelError::config(path, format!("not valid JSON: {err}")))?;
        if !value.is_object() {
            return Err(ModelError::config(path, "expected a JSON object"));
        }
        Ok(Self { path, value })
    }

    /// The file this came from.
    pub(crate) fn path(&self) -> &Path {
        self.path
    }

    /// The value under the first of `keys` present and not null, following `a.b` into objects.
    fn lookup(&self, keys: &[&str]) -> Option<&serde_json::Value> {
        keys.iter().find_map(|key| {
            let mut value = &self.value;
            for part in key.split('.') {
                value = value.get(part)?;
            }
            (!value.is_null()).then_some(value)
        })
    }

    /// Whether any of `keys` is present.
    pub(crate) fn has(&self, keys: &[&str]) -> bool {
        self.lookup(keys).is_some()
    }

    /// A required non-negative integer.
    pub(crate) fn usize(&self, keys: &[&str]) -> Result<usize, ModelError> {
        self.usize_opt(keys)?.ok_or_else(|| ModelError::config(self.path, format!("missing field `{}`", keys[0])))
    }

    /// An optional non-negative integer.
    pub(crate) fn usize_opt(&self, keys: &[&str]) -> Result<Option<usize>, ModelError> {
        self.typed(keys, "a non-negative integer", |value| {
            value.as_u64().and_then(|number| usize::try_from(number).ok())
        })
    }

    /// An optional number.
    pub(crate) fn f64_opt(&self, keys: &[&str]) -> Result<Option<f64>, ModelError> {
        self.typed(keys, "a number", serde_json::Value::as_f64)
    }

    /// An optional boolean.
    pub(crate) fn bool_opt(&self, keys: &[&str]) -> Result<Option<bool>, ModelError> {
        self.typed(keys, "true or false", serde_json::Value::as_bool)
    }

    /// An optional string.
    pub(crate) fn str_opt(&self, keys: &[&str]) -> Result<Option<&str>, ModelError> {
        self.typed(keys, "a string", serde_json::Value::as_str)
    }

    /// The first of `keys` present, converted by `convert`; an error saying it must be `expected`
    /// when the conversion fails.
    fn typed<'v, T>(
        &'v self,
        keys: &[&str],
        expected: &str,
        convert: impl Fn(&'v serde_json::Value) -> Option<T>,
    ) -> Result<Option<T>, ModelError> {
        let Some(value) = self.lookup(keys) else { return Ok(None) };
        convert(value)
            .map(Some)
            .ok_or_else(|| ModelError::config(self.path, format!("field `{}` must be {expected}", keys[0])))
    }

    /// The `model_type` of an HF config, or `None` for a TransformerLens config.
    pub(crate) fn model_type(&self) -> Result<Option<&str>, ModelError> {
        self.str_opt(&["model_type"])
    }
}

/// Reads an HF `config.json` (gpt2, gpt_neox, llama or mistral).
pub(crate) fn from_hf_config(config: &JsonConfig<'_>) -> Result<ModelConfig, ModelError> {
    let path = config.path();
    let model_type = config.model_type()?.unwrap_or_default();
    let parsed = match model_type {
        "gpt2" => {
            let d_model = config.usize(&["n_embd", "hidden_size"])?;
            let n_heads = config.usize(&["n_head", "num_attention_heads"])?;
            ModelConfig {
                architecture: Architecture::Gpt2,
                n_layers: config.usize(&["n_layer", "num_hidden_layers"])?,
                d_model,
                d_mlp: config.usize_opt(&["n_inner"])?.unwrap_or(4 * d_model),
                n_heads,
                n_kv_heads: n_heads,
                d_head: d_model / n_heads.max(1),
                d_vocab: config.usize(&["vocab_size"])?,
                n_ctx: config.usize(&["n_positions", "n_ctx"])?,
                activation: activation_from_name(
                    path,
                    config.str_opt(&["activation_function"])?.unwrap_or("gelu_new"),
                )?,
                mlp: MlpKind::Plain,
                normalization: Normalization::LayerNorm {
                    eps: config.f64_opt(&["layer_norm_epsilon"])?.unwrap_or(1e-5),
                },
                positions: Positions::Learned,
                parallel_residual: false,
            }
        }
        "gpt_neox" => {
            let d_model = config.usize(&["hidden_size"])?;
            let n_heads = config.usize(&["num_attention_heads"])?;
            let d_head = d_model / n_heads.max(1);
            let rotary_fraction = config
                .f64_opt(&["rotary_pct", "partial_rotary_factor", "rope_parameters.partial_rotary_factor"])?
                .unwrap_or(1.0);
            if !(rotary_fraction > 0.0 && rotary_fraction <= 1.0) {
                return Err(ModelError::config(path, format!("rotary_pct {rotary_fraction} must be in (0, 1]")));
            }
            ModelConfig {
                architecture: Architecture::GptNeoX,
                n_layers: config.usize(&["num_hidden_layers"])?,
                d_model,
                d_mlp: config.usize_opt(&["intermediate_size"])?.unwrap_or(4 * d_model),
                n_heads,
                n_kv_heads: n_heads,
                d_head,
                d_vocab: config.usize(&["vocab_size"])?,
                n_ctx: config.usize(&["max_position_embeddings"])?,
                activation: activation_from_name(path, config.str_opt(&["hidden_act"])?.unwrap_or("gelu"))?,
                mlp: MlpKind::Plain,
                normalization: Normalization::LayerNorm { eps: config.f64_opt(&["layer_norm_eps"])?.unwrap_or(1e-5) },
                positions: Positions::Rotary {
                    // GPT-NeoX truncates: int(head_size * rotary_pct).
                    dims: (d_head as f64 * rotary_fraction) as usize,
                    base: config
                        .f64_opt(&["rotary_emb_base", "rope_theta", "rope_parameters.rope_theta"])?
                        .unwrap_or(10_000.0),
                    interleaved: false,
                },
                parallel_residual: config.bool_opt(&["use_parallel_residual"])?.unwrap_or(true),
            }
        }
        "llama" | "mistral" => {
            if let Some(kind) =
                config.str_opt(&["rope_scaling.rope_type", "rope_scaling.type", "rope_parameters.rope_type"])?
            {
                if kind != "default" {
                    return Err(ModelError::Unsupported {
                        path: path.to_path_buf(),
                        what: format!("rope scaling `{kind}`"),
                    });
                }
            }
            if config.bool_opt(&["attention_bias"])?.unwrap_or(false)
                || config.bool_opt(&["mlp_bias"])?.unwrap_or(false)
            {
                return Err(ModelError::Unsupported {
                    path: path.to_path_buf(),
                    what: "bias terms in a Llama model".to_owned(),
                });
            }
            let d_model = config.usize(&["hidden_size"])?;
            let n_heads = config.usize(&["num_attention_heads"])?;
            let d_head = config.usize_opt(&["head_dim"])?.unwrap_or(d_model / n_heads.max(1));
            ModelConfig {
                architecture: Architecture::Llama,
                n_layers: config.usize(&["num_hidden_layers"])?,
                d_model,
                d_mlp: config.usize(&["intermediate_size"])?,
                n_heads,
                n_kv_heads: config.usize_opt(&["num_key_value_heads"])?.unwrap_or(n_heads),
                d_head,
                d_vocab: config.usize(&["vocab_size"])?,
                n_ctx: config.usize(&["max_position_embeddings"])?,
                activation: activation_from_name(path, config.str_opt(&["hidden_act"])?.unwrap_or("silu"))?,
                mlp: MlpKind::Gated,
                normalization: Normalization::RmsNorm { eps: config.f64_opt(&["rms_norm_eps"])?.unwrap_or(1e-6) },
                positions: Positions::Rotary {
                    dims: d_head,
                    base: config.f64_opt(&["rope_theta", "rope_parameters.rope_theta"])?.unwrap_or(10_000.0),
                    interleaved: false,
                },
                parallel_residual: false,
            }
        }
        other => {
            return Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                what: format!("model_type `{other}` (supported: gpt2, gpt_neox, llama, mistral)"),
            });
        }
    };
    parsed.validate(path)?;
    Ok(parsed)
}

/// Reads a TransformerLens `config.json` as Neel Nanda's model repositories ship it.
pub(crate) fn from_transformer_lens_config(config: &JsonConfig<'_>) -> Result<ModelConfig, ModelError> {
    let path = config.path();
    let unsupported = |what: String| ModelError::Unsupported { path: path.to_path_buf(), what };
    if config.bool_opt(&["attn_only"])?.unwrap_or(false) {
        return Err(unsupported("attention-only model (it has no MLP neurons)".to_owned()));
    }
    if config.bool_opt(&["shortformer_pos"])?.unwrap_or(false) {
        return Err(unsupported("shortformer positional embeddings".to_owned()));
    }
    let positions = match config.str_opt(&["positional_embedding_type"])?.unwrap_or("standard") {
        "standard" => Positions::Learned,
        "rotary" => Positions::Rotary {
            dims: config.usize(&["rotary_dim"])?,
            base: config.f64_opt(&["rotary_base"])?.unwrap_or(10_000.0),
            interleaved: config.bool_opt(&["rotary_adjacent_pairs"])?.unwrap_or(false),
        },
        other => return Err(unsupported(format!("positional embedding `{other}`"))),
    };
    let eps = config.f64_opt(&["eps"])?.unwrap_or(1e-5);
    let normalization = match config.str_opt(&["normalization_type", "normalization"])? {
        Some("LN") => Normalization::LayerNorm { eps },
        Some("LNPre") => Normalization::LayerNormPre { eps },
        Some("RMS") => Normalization::RmsNorm { eps },
        Some(other) => return Err(unsupported(format!("normalization `{other}`"))),
        None => return Err(unsupported("a model without normalization".to_owned())),
    };
    if config.bool_opt(&["final_rms"])?.unwrap_or(false) && !matches!(normalization, Normalization::RmsNorm { .. }) {
        return Err(unsupported("final_rms with LayerNorm blocks".to_owned()));
    }
    let act_fn = config.str_opt(&["act_fn"])?.unwrap_or("gelu");
    let activation = activation_from_name(path, act_fn)?;
    let gated = config.bool_opt(&["gated_mlp"])?.unwrap_or(false);
    let n_heads = config.usize(&["n_heads"])?;
    let parsed = ModelConfig {
        architecture: Architecture::TransformerLens,
        n_layers: config.usize(&["n_layers"])?,
        d_model: config.usize(&["d_model"])?,
        d_mlp: config.usize(&["d_mlp"])?,
        n_heads,
        n_kv_heads: config.usize_opt(&["n_key_value_heads"])?.unwrap_or(n_heads),
        d_head: config.usize(&["d_head"])?,
        d_vocab: config.usize(&["d_vocab"])?,
        n_ctx: config.usize(&["n_ctx"])?,
        activation,
        mlp: if gated { MlpKind::Gated } else { MlpKind::Plain },
        normalization,
        positions,
        parallel_residual: config.bool_opt(&["parallel_attn_mlp"])?.unwrap_or(false),
    };
    parsed.validate(path)?;
    Ok(parsed)
}
