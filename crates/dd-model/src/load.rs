//! Finding a model's files, reading its configuration and mapping each family's tensor names and
//! layouts onto the one [`Transformer`] structure.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};

use crate::config::{self, Activation, Architecture, JsonConfig, MlpKind, ModelConfig, Normalization, Positions};
use crate::error::ModelError;
use crate::model::{Attention, Block, Linear, Mlp, Norm, Transformer, TransformerParts};
use crate::weights::WeightFiles;

/// The on-disk format a model was loaded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    /// `*.safetensors` (one file or shards).
    Safetensors,
    /// A PyTorch `torch.save` pickle (`pytorch_model.bin`, `model_final.pth`).
    PyTorch,
    /// A GGUF file (llama.cpp), possibly quantized.
    Gguf,
}

/// Where a model's files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    /// `config.json`, absent for GGUF (its metadata holds the configuration).
    pub config: Option<PathBuf>,
    /// The weight files (several when sharded).
    pub weights: Vec<PathBuf>,
    /// Their format.
    pub format: WeightFormat,
    /// The tokenizer found with the model, if any.
    pub tokenizer: Option<TokenizerFiles>,
}

/// Where a model's tokenizer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenizerFiles {
    /// A Hugging Face `tokenizer.json`.
    Json(PathBuf),
    /// GPT-2's `encoder.json` + `vocab.bpe` (also named `vocab.json` + `merges.txt`).
    Gpt2 {
        /// Token → id map.
        encoder: PathBuf,
        /// The merges, one pair per line.
        merges: PathBuf,
    },
    /// The vocabulary and merges in a GGUF file's metadata.
    Gguf(PathBuf),
}

/// Finds a tokenizer in a model directory.
pub(crate) fn tokenizer_in(directory: &Path) -> Option<TokenizerFiles> {
    let json = directory.join("tokenizer.json");
    if json.is_file() {
        return Some(TokenizerFiles::Json(json));
    }
    for (encoder, merges) in [("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")] {
        let (encoder, merges) = (directory.join(encoder), directory.join(merges));
        if encoder.is_file() && merges.is_file() {
            return Some(TokenizerFiles::Gpt2 { encoder, merges });
        }
    }
    None
}

/// The tokenizer at `path`: a `tokenizer.json`, a `.gguf` file, or a model directory holding
/// either kind of tokenizer files.
pub fn tokenizer_at(path: &Path) -> Result<TokenizerFiles, ModelError> {
    if path.is_dir() {
        return tokenizer_in(path).ok_or_else(|| ModelError::UnknownFormat {
            path: path.to_path_buf(),
            reason: "no tokenizer.json, encoder.json + vocab.bpe or vocab.json + merges.txt here".to_owned(),
        });
    }
    match path.extension().and_then(|extension| extension.to_str()) {
        Some("gguf") => Ok(TokenizerFiles::Gguf(path.to_path_buf())),
        _ if path.is_file() => Ok(TokenizerFiles::Json(path.to_path_buf())),
        _ => Err(ModelError::UnknownFormat {
            path: path.to_path_buf(),
            reason: "neither a tokenizer file nor a model directory".to_owned(),
        }),
    }
}

/// The repository whose tokenizer a `config.json` names (TransformerLens configs name one in
/// `tokenizer_name`; HF configs name none), for a model that ships without tokenizer files.
pub fn tokenizer_repository(config_path: &Path) -> Result<Option<String>, ModelError> {
    Ok(JsonConfig::read(config_path)?.str_opt(&["tokenizer_name"])?.map(str::to_owned))
}

/// Builds the tokenizer `files` point to.
pub fn load_tokenizer(files: &TokenizerFiles) -> Result<crate::Tokenizer, ModelError> {
    match files {
        TokenizerFiles::Json(path) => crate::Tokenizer::from_tokenizer_json(path),
        TokenizerFiles::Gpt2 { encoder, merges } => crate::Tokenizer::from_gpt2_files(encoder, merges),
        TokenizerFiles::Gguf(path) => crate::Tokenizer::from_gguf(path),
    }
}

/// Weight file names tried in a model directory, in order of preference.
const WEIGHT_CANDIDATES: [(&str, WeightFormat); 4] = [
    ("model.safetensors", WeightFormat::Safetensors),
    ("pytorch_model.bin", WeightFormat::PyTorch),
    ("model_final.pth", WeightFormat::PyTorch),
    ("model_final.safetensors", WeightFormat::Safetensors),
];

/// Finds the configuration and weights of the model at `path`: a directory in HF or TransformerLens
/// layout, a single `.gguf` file, or a weight file next to its `config.json`.
pub fn locate(path: &Path) -> Result<ModelFiles, ModelError> {
    let metadata = std::fs::metadata(path).map_err(|err| ModelError::io(path, err))?;
    if metadata.is_file() {
        return locate_file(path);
    }
    let config = path.join("config.json");
    if config.is_file() {
        for (name, format) in WEIGHT_CANDIDATES {
            let candidate = path.join(name);
            if candidate.is_file() {
                return Ok(ModelFiles {
                    config: Some(config),
                    weights: vec![candidate],
                    format,
                    tokenizer: tokenizer_in(path),
                });
            }
        }
        for (index, format) in [
            ("model.safetensors.index.json", WeightFormat::Safetensors),
            ("pytorch_model.bin.index.json", WeightFormat::PyTorch),
        ] {
            let index = path.join(index);
            if index.is_file() {
                return Ok(ModelFiles {
                    config: Some(config),
                    weights: shards(&index)?,
                    format,
                    tokenizer: tokenizer_in(path),
                });
            }
        }
    }
    let ggufs = files_with_extension(path, "gguf")?;
    match ggufs.as_slice() {
        [gguf] => Ok(gguf_files(gguf)),
        [] => Err(ModelError::UnknownFormat {
            path: path.to_path_buf(),
            reason: "found neither config.json with model.safetensors, pytorch_model.bin or model_final.pth \
                     (or a sharded index), nor a .gguf file"
                .to_owned(),
        }),
        _ => Err(ModelError::UnknownFormat {
            path: path.to_path_buf(),
            reason: format!("{} .gguf files; name the one to load", ggufs.len()),
        }),
    }
}

fn locate_file(path: &Path) -> Result<ModelFiles, ModelError> {
    let extension = path.extension().and_then(|extension| extension.to_str()).unwrap_or_default();
    let format = match extension {
        "gguf" => {
            return Ok(gguf_files(path));
        }
        "safetensors" => WeightFormat::Safetensors,
        "bin" | "pth" | "pt" => WeightFormat::PyTorch,
        _ => {
            return Err(ModelError::UnknownFormat {
                path: path.to_path_buf(),
                reason: "expected a .gguf, .safetensors, .bin or .pth file, or a model directory".to_owned(),
            });
        }
    };
    let config = path.with_file_name("config.json");
    if !config.is_file() {
        return Err(ModelError::UnknownFormat {
            path: path.to_path_buf(),
            reason: "a weight file needs a config.json beside it".to_owned(),
        });
    }
    let tokenizer = path.parent().and_then(tokenizer_in);
    Ok(ModelFiles { config: Some(config), weights: vec![path.to_path_buf()], format, tokenizer })
}

/// A GGUF file carries its configuration and tokenizer.
pub(crate) fn gguf_files(path: &Path) -> ModelFiles {
    ModelFiles {
        config: None,
        weights: vec![path.to_path_buf()],
        format: WeightFormat::Gguf,
        tokenizer: Some(TokenizerFiles::Gguf(path.to_path_buf())),
    }
}

/// The shard files an HF `*.index.json` names, in a stable order.
pub(crate) fn shards(index: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let directory = index.parent().unwrap_or(Path::new("."));
    Ok(shard_names(index)?.iter().map(|name| directory.join(name)).collect())
}

/// The shard file names an HF `*.index.json` names, sorted and deduplicated (plain file names only,
/// so a fetcher can download them beside the index).
pub fn shard_names(index: &Path) -> Result<Vec<String>, ModelError> {
    let text = std::fs::read_to_string(index).map_err(|err| ModelError::io(index, err))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| ModelError::config(index, format!("not valid JSON: {err}")))?;
    let Some(weight_map) = value.get("weight_map").and_then(|map| map.as_object()) else {
        return Err(ModelError::config(index, "missing `weight_map`"));
    };
    let mut names: Vec<String> = weight_map.values().filter_map(|file| file.as_str()).map(str::to_owned).collect();
    names.sort_unstable();
    names.dedup();
    for name in &names {
        // Shard names come from a downloaded file: refuse anything that leaves the directory.
        if name.is_empty() || name.contains('/') || name.contains('\\') || name == ".." || name == "." {
            return Err(ModelError::config(index, format!("shard name `{name}` is not a plain file name")));
        }
    }
    Ok(names)
}

fn files_with_extension(directory: &Path, extension: &str) -> Result<Vec<PathBuf>, ModelError> {
    let entries = std::fs::read_dir(directory).map_err(|err| ModelError::io(directory, err))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| ModelError::io(directory, err))?;
        let path = entry.path();
        if path.is_file() && path.extension().is_some_and(|found| found == extension) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the configuration of located files, without loading weights (GGUF reads its header).
pub fn read_config(files: &ModelFiles) -> Result<ModelConfig, ModelError> {
    match &files.config {
        Some(path) => config_from_json(&JsonConfig::read(path)?),
        None => {
            let weights = WeightFiles::gguf(first_weight_file(files)?)?;
            gguf_config(&weights)
        }
    }
}

pub(crate) fn config_from_json(config: &JsonConfig<'_>) -> Result<ModelConfig, ModelError> {
    match config.model_type()? {
        Some(_) => config::from_hf_config(config),
        None if config.has(&["d_model"]) && config.has(&["n_layers"]) => config::from_transformer_lens_config(config),
        None => Err(ModelError::config(
            config.path(),
            "neither an HF config (no `model_type`) nor a TransformerLens config (no `d_model`/`n_layers`)",
        )),
    }
}

fn first_weight_file(files: &ModelFiles) -> Result<&Path, ModelError> {
    files.weights.first().map(PathBuf::as_path).ok_or_else(|| ModelError::UnknownFormat {
        path: files.config.clone().unwrap_or_default(),
        reason: "no weight files".to_owned(),
    })
}

/// Loads the model at `path` (see [`locate`]) onto `device`.
pub fn load_transformer(path: &Path, device: &Device) -> Result<Transformer, ModelError> {
    let files = locate(path)?;
    load_located(&files, device)
}

/// Loads already-located files onto `device`.
pub fn load_located(files: &ModelFiles, device: &Device) -> Result<Transformer, ModelError> {
    let mut weights = match files.format {
        WeightFormat::Safetensors => WeightFiles::safetensors(&files.weights, device)?,
        WeightFormat::PyTorch => WeightFiles::pytorch(&files.weights)?,
        WeightFormat::Gguf => WeightFiles::gguf(first_weight_file(files)?)?,
    };
    let config = match &files.config {
        Some(path) => config_from_json(&JsonConfig::read(path)?)?,
        None => gguf_config(&weights)?,
    };
    let mut reader = Reader { weights: &mut weights, device, config: &config };
    let parts = match (config.architecture, files.format) {
        (Architecture::Gpt2, _) => gpt2_parts(&mut reader)?,
        (Architecture::GptNeoX, _) => neox_parts(&mut reader)?,
        (Architecture::TransformerLens, _) => transformer_lens_parts(&mut reader)?,
        (Architecture::Llama, WeightFormat::Gguf) => llama_gguf_parts(&mut reader)?,
        (Architecture::Llama, _) => llama_hf_parts(&mut reader)?,
    };
    tracing::debug!(architecture = config.architecture.name(), layers = config.n_layers, "model loaded");
    Transformer::new(config, parts, device.clone())
}

/// Reads tensors for one model with its config at hand for the expected shapes.
struct Reader<'a> {
    weights: &'a mut WeightFiles,
    device: &'a Device,
    config: &'a ModelConfig,
}

impl Reader<'_> {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        self.weights.tensor(name, shape, self.device)
    }

    /// A weight stored [out, in] (nn.Linear, GGUF), returned [in, out] and contiguous.
    fn transposed(&mut self, name: &str, out_features: usize, in_features: usize) -> Result<Tensor, ModelError> {
        Ok(self.get(name, &[out_features, in_features])?.t()?.contiguous()?)
    }

    fn linear_transposed(
        &mut self,
        prefix: &str,
        out_features: usize,
        in_features: usize,
    ) -> Result<Linear, ModelError> {
        Ok(Linear {
            weight: self.transposed(&format!("{prefix}.weight"), out_features, in_features)?,
            bias: Some(self.get(&format!("{prefix}.bias"), &[out_features])?),
        })
    }

    fn layer_norm(&mut self, weight: &str, bias: &str, width: usize) -> Result<Norm, ModelError> {
        let eps = self.config.normalization.eps();
        Ok(Norm::LayerNorm { weight: self.get(weight, &[width])?, bias: self.get(bias, &[width])?, eps })
    }

    fn rms_norm(&mut self, weight: &str) -> Result<Norm, ModelError> {
        let eps = self.config.normalization.eps();
        Ok(Norm::RmsNorm { weight: self.get(weight, &[self.config.d_model])?, eps })
    }

    /// The unembedding [d_model, d_vocab]: the tensor `name` (nn.Linear layout) if the file has
    /// one, else the transposed token embedding (tied weights).
    fn unembedding(&mut self, name: &str, token_embedding: &Tensor) -> Result<Linear, ModelError> {
        let ModelConfig { d_model, d_vocab, .. } = *self.config;
        let weight = match self.weights.contains(name) {
            true => self.transposed(name, d_vocab, d_model)?,
            false => token_embedding.t()?.contiguous()?,
        };
        Ok(Linear { weight, bias: None })
    }

    /// The name prefix (`transformer.`, `gpt_neox.`, `model.`) a checkpoint uses, found by probing.
    fn prefix(&self, probe: &str, prefixes: &[&'static str]) -> Result<&'static str, ModelError> {
        prefixes.iter().copied().find(|prefix| self.weights.contains(&format!("{prefix}{probe}"))).ok_or_else(|| {
            ModelError::MissingTensor {
                path: self.weights.path().to_path_buf(),
                name: format!("{}{probe}", prefixes[0]),
            }
        })
    }
}

fn gpt2_parts(reader: &mut Reader<'_>) -> Result<TransformerParts, ModelError> {
    let ModelConfig { d_model, d_mlp, d_vocab, n_ctx, n_layers, .. } = *reader.config;
    let prefix = reader.prefix("wte.weight", &["", "transformer."])?;
    let token_embedding = reader.get(&format!("{prefix}wte.weight"), &[d_vocab, d_model])?;
    let position_embedding = reader.get(&format!("{prefix}wpe.weight"), &[n_ctx, d_model])?;
    let mut blocks = Vec::with_capacity(n_layers);
    for layer in 0..n_layers {
        let at = |name: &str| format!("{prefix}h.{layer}.{name}");
        // Conv1D weights are stored [in, out] already.
        let mut conv1d = |name: &str, in_features: usize, out_features: usize| -> Result<Linear, ModelError> {
            Ok(Linear {
                weight: reader.get(&at(&format!("{name}.weight")), &[in_features, out_features])?,
                bias: Some(reader.get(&at(&format!("{name}.bias")), &[out_features])?),
            })
        };
        let qkv = conv1d("attn.c_attn", d_model, 3 * d_model)?;
        let attention_output = conv1d("attn.c_proj", d_model, d_model)?;
        let mlp_input = conv1d("mlp.c_fc", d_model, d_mlp)?;
        let mlp_output = conv1d("mlp.c_proj", d_mlp, d_model)?;
        blocks.push(Block {
            attention_norm: reader.layer_norm(&at("ln_1.weight"), &at("ln_1.bias"), d_model)?,
            attention: Attention { qkv, output: attention_output },
            mlp_norm: reader.layer_norm(&at("ln_2.weight"), &at("ln_2.bias"), d_model)?,
            mlp: Mlp::Plain { input: mlp_input, norm: None, output: mlp_output },
        });
    }
    let final_norm = reader.layer_norm(&format!("{prefix}ln_f.weight"), &format!("{prefix}ln_f.bias"), d_model)?;
    let unembed = reader.unembedding("lm_head.weight", &token_embedding)?;
    Ok(TransformerParts { token_embedding, position_embedding: Some(position_embedding), blocks, final_norm, unembed })
}

fn neox_parts(reader: &mut Reader<'_>) -> Result<TransformerParts, ModelError> {
    let ModelConfig { d_model, d_mlp, d_vocab, n_layers, n_heads, d_head, .. } = *reader.config;
    let prefix = reader.prefix("embed_in.weight", &["gpt_neox.", ""])?;
    let token_embedding = reader.get(&format!("{prefix}embed_in.weight"), &[d_vocab, d_model])?;
    let mut blocks = Vec::with_capacity(n_layers);
    for layer in 0..n_layers {
        let at = |name: &str| format!("{prefix}layers.{layer}.{name}");
        // The fused projection's rows are laid out [head, (q, k, v), d_head]; ours are
        // [(q, k, v), head, d_head], so every head's slices are regrouped.
        let qkv_weight = reader
            .get(&at("attention.query_key_value.weight"), &[3 * d_model, d_model])?
            .reshape((n_heads, 3, d_head, d_model))?
            .permute((1, 0, 2, 3))?
            .reshape((3 * d_model, d_model))?
            .t()?
            .contiguous()?;
        let qkv_bias = reader
            .get(&at("attention.query_key_value.bias"), &[3 * d_model])?
            .reshape((n_heads, 3, d_head))?
            .permute((1, 0, 2))?
            .flatten_all()?
            .contiguous()?;
        blocks.push(Block {
            attention_norm: reader.layer_norm(&at("input_layernorm.weight"), &at("input_layernorm.bias"), d_model)?,
            attention: Attention {
                qkv: Linear { weight: qkv_weight, bias: Some(qkv_bias) },
                output: reader.linear_transposed(&at("attention.dense"), d_model, d_model)?,
            },
            mlp_norm: reader.layer_norm(
                &at("post_attention_layernorm.weight"),
                &at("post_attention_layernorm.bias"),
                d_model,
            )?,
            mlp: Mlp::Plain {
                input: reader.linear_transposed(&at("mlp.dense_h_to_4h"), d_mlp, d_model)?,
                norm: None,
                output: reader.linear_transposed(&at("mlp.dense_4h_to_h"), d_model, d_mlp)?,
            },
        });
    }
    let final_norm = reader.layer_norm(
        &format!("{prefix}final_layer_norm.weight"),
        &format!("{prefix}final_layer_norm.bias"),
        d_model,
    )?;
    let unembed = reader.unembedding("embed_out.weight", &token_embedding)?;
    Ok(TransformerParts { token_embedding, position_embedding: None, blocks, final_norm, unembed })
}

/// Reads TransformerLens names, including the old SoLU checkpoints' names and orientations
/// (TransformerLens `convert_neel_solu_old_weights`).
struct TransformerLensReader<'r, 'a> {
    reader: &'r mut Reader<'a>,
    /// Names use `norm` for `ln` and `norm.` for `ln_final.`.
    old_layout: bool,
    /// Old checkpoints with ≤ 6 layers store every `W_*` but `W_pos` transposed.
    transpose_weights: bool,
    /// Old checkpoints with ≤ 8 layers store `W_pos` transposed.
    transpose_positions: bool,
    eps: f64,
}

impl TransformerLensReader<'_, '_> {
    fn file_name(&self, name: &str) -> String {
        if !self.old_layout {
            return name.to_owned();
        }
        match name.strip_prefix("ln_final.") {
            Some(rest) => format!("norm.{rest}"),
            None => name.replace("ln", "norm"),
        }
    }

    /// The tensor TransformerLens calls `name`, with the shape TransformerLens gives it.
    fn read(&mut self, name: &str, shape: &[usize], maybe_transposed: bool) -> Result<Tensor, ModelError> {
        let file_name = self.file_name(name);
        let transposed = maybe_transposed
            && match name {
                "pos_embed.W_pos" => self.transpose_positions,
                _ => self.transpose_weights,
            };
        if !transposed {
            return self.reader.get(&file_name, shape);
        }
        let mut stored_shape = shape.to_vec();
        let rank = stored_shape.len();
        stored_shape.swap(rank - 2, rank - 1);
        Ok(self.reader.get(&file_name, &stored_shape)?.transpose(rank - 2, rank - 1)?.contiguous()?)
    }

    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        self.read(name, shape, true)
    }

    fn vector(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        self.read(name, shape, false)
    }

    fn norm(&mut self, prefix: &str, width: usize) -> Result<Norm, ModelError> {
        let eps = self.eps;
        match self.reader.config.normalization {
            Normalization::LayerNorm { .. } => Ok(Norm::LayerNorm {
                weight: self.vector(&format!("{prefix}.w"), &[width])?,
                bias: self.vector(&format!("{prefix}.b"), &[width])?,
                eps,
            }),
            Normalization::LayerNormPre { .. } => Ok(Norm::pre(width, eps, self.reader.device)?),
            Normalization::RmsNorm { .. } => {
                Ok(Norm::RmsNorm { weight: self.vector(&format!("{prefix}.w"), &[width])?, eps })
            }
        }
    }
}

fn transformer_lens_parts(reader: &mut Reader<'_>) -> Result<TransformerParts, ModelError> {
    let config = reader.config.clone();
    let ModelConfig { d_model, d_mlp, d_vocab, n_ctx, n_layers, n_heads, n_kv_heads, d_head, .. } = config;
    // Current TransformerLens names never contain "norm"; the old checkpoints' always do.
    let old_layout = reader.weights.names().iter().any(|name| name.contains("norm"));
    let eps = config.normalization.eps();
    let mut tl = TransformerLensReader {
        reader,
        old_layout,
        transpose_weights: old_layout && n_layers <= 6,
        transpose_positions: old_layout && n_layers <= 8,
        eps,
    };
    let token_embedding = tl.weight("embed.W_E", &[d_vocab, d_model])?;
    let position_embedding = match config.positions {
        Positions::Learned => Some(tl.weight("pos_embed.W_pos", &[n_ctx, d_model])?),
        Positions::Rotary { .. } => None,
    };
    let mut blocks = Vec::with_capacity(n_layers);
    for layer in 0..n_layers {
        let at = |name: &str| format!("blocks.{layer}.{name}");
        let attention_norm = tl.norm(&at("ln1"), d_model)?;
        let mlp_norm = tl.norm(&at("ln2"), d_model)?;
        let mut projections = Vec::with_capacity(3);
        let mut biases = Vec::with_capacity(3);
        for (name, heads) in [("Q", n_heads), ("K", n_kv_heads), ("V", n_kv_heads)] {
            // [heads, d_model, d_head] → [d_model, heads·d_head].
            let weight = tl.weight(&at(&format!("attn.W_{name}")), &[heads, d_model, d_head])?;
            projections.push(weight.permute((1, 0, 2))?.reshape((d_model, heads * d_head))?);
            biases.push(tl.vector(&at(&format!("attn.b_{name}")), &[heads, d_head])?.flatten_all()?);
        }
        let qkv = Linear { weight: Tensor::cat(&projections, 1)?.contiguous()?, bias: Some(Tensor::cat(&biases, 0)?) };
        let attention_output = Linear {
            weight: tl.weight(&at("attn.W_O"), &[n_heads, d_head, d_model])?.reshape((n_heads * d_head, d_model))?,
            bias: Some(tl.vector(&at("attn.b_O"), &[d_model])?),
        };
        let mlp = match config.mlp {
            MlpKind::Gated => {
                let gate = tl.weight(&at("mlp.W_gate"), &[d_model, d_mlp])?;
                let up = tl.weight(&at("mlp.W_in"), &[d_model, d_mlp])?;
                Mlp::Gated {
                    input: Linear { weight: Tensor::cat(&[gate, up], 1)?.contiguous()?, bias: None },
                    output: Linear { weight: tl.weight(&at("mlp.W_out"), &[d_mlp, d_model])?, bias: None },
                }
            }
            MlpKind::Plain => {
                let input = Linear {
                    weight: tl.weight(&at("mlp.W_in"), &[d_model, d_mlp])?,
                    bias: Some(tl.vector(&at("mlp.b_in"), &[d_mlp])?),
                };
                let mut output_weight = tl.weight(&at("mlp.W_out"), &[d_mlp, d_model])?;
                let mut output_bias = tl.vector(&at("mlp.b_out"), &[d_model])?;
                let norm = match config.activation {
                    Activation::SoluLayerNorm => {
                        if matches!(config.normalization, Normalization::LayerNorm { .. }) {
                            // TransformerLens's default fold_ln: the MLP LayerNorm's affine moves
                            // into W_out, so hook_post is the normalised value without it.
                            let scale = tl.vector(&at("mlp.ln.w"), &[d_mlp])?;
                            let shift = tl.vector(&at("mlp.ln.b"), &[d_mlp])?;
                            output_bias = (output_bias + shift.unsqueeze(0)?.matmul(&output_weight)?.squeeze(0)?)?;
                            output_weight = output_weight.broadcast_mul(&scale.unsqueeze(1)?)?;
                        }
                        Some(Norm::pre(d_mlp, eps, tl.reader.device)?)
                    }
                    _ => None,
                };
                Mlp::Plain { input, norm, output: Linear { weight: output_weight, bias: Some(output_bias) } }
            }
        };
        blocks.push(Block { attention_norm, attention: Attention { qkv, output: attention_output }, mlp_norm, mlp });
    }
    let final_norm = tl.norm("ln_final", d_model)?;
    let unembed = Linear {
        weight: tl.weight("unembed.W_U", &[d_model, d_vocab])?,
        bias: Some(tl.vector("unembed.b_U", &[d_vocab])?),
    };
    Ok(TransformerParts { token_embedding, position_embedding, blocks, final_norm, unembed })
}

/// The tensors of a Llama-family model, named per file format by [`llama_parts`]'s caller.
#[derive(Clone, Copy)]
enum LlamaTensor {
    Embedding,
    AttentionNorm,
    Query,
    Key,
    Value,
    AttentionOutput,
    MlpNorm,
    Gate,
    Up,
    Down,
    FinalNorm,
    Unembed,
}

/// HF names (`model.layers.{l}.self_attn.q_proj.weight`, …), with the prefix the file uses.
fn llama_hf_name(prefix: &str, tensor: LlamaTensor, layer: usize) -> String {
    let layer_name = |name: &str| format!("{prefix}layers.{layer}.{name}.weight");
    match tensor {
        LlamaTensor::Embedding => format!("{prefix}embed_tokens.weight"),
        LlamaTensor::AttentionNorm => layer_name("input_layernorm"),
        LlamaTensor::Query => layer_name("self_attn.q_proj"),
        LlamaTensor::Key => layer_name("self_attn.k_proj"),
        LlamaTensor::Value => layer_name("self_attn.v_proj"),
        LlamaTensor::AttentionOutput => layer_name("self_attn.o_proj"),
        LlamaTensor::MlpNorm => layer_name("post_attention_layernorm"),
        LlamaTensor::Gate => layer_name("mlp.gate_proj"),
        LlamaTensor::Up => layer_name("mlp.up_proj"),
        LlamaTensor::Down => layer_name("mlp.down_proj"),
        LlamaTensor::FinalNorm => format!("{prefix}norm.weight"),
        LlamaTensor::Unembed => "lm_head.weight".to_owned(),
    }
}

/// llama.cpp names (`blk.{l}.attn_q.weight`, …). Its converter permutes Q and K rows for an
/// interleaved rotary; the GGUF config marks the rotary interleaved, so the stored order is used.
fn llama_gguf_name(tensor: LlamaTensor, layer: usize) -> String {
    let layer_name = |name: &str| format!("blk.{layer}.{name}.weight");
    match tensor {
        LlamaTensor::Embedding => "token_embd.weight".to_owned(),
        LlamaTensor::AttentionNorm => layer_name("attn_norm"),
        LlamaTensor::Query => layer_name("attn_q"),
        LlamaTensor::Key => layer_name("attn_k"),
        LlamaTensor::Value => layer_name("attn_v"),
        LlamaTensor::AttentionOutput => layer_name("attn_output"),
        LlamaTensor::MlpNorm => layer_name("ffn_norm"),
        LlamaTensor::Gate => layer_name("ffn_gate"),
        LlamaTensor::Up => layer_name("ffn_up"),
        LlamaTensor::Down => layer_name("ffn_down"),
        LlamaTensor::FinalNorm => "output_norm.weight".to_owned(),
        LlamaTensor::Unembed => "output.weight".to_owned(),
    }
}

fn llama_hf_parts(reader: &mut Reader<'_>) -> Result<TransformerParts, ModelError> {
    let prefix = reader.prefix("embed_tokens.weight", &["model.", ""])?;
    llama_parts(reader, &|tensor, layer| llama_hf_name(prefix, tensor, layer))
}

fn llama_gguf_parts(reader: &mut Reader<'_>) -> Result<TransformerParts, ModelError> {
    llama_parts(reader, &llama_gguf_name)
}

/// Llama-family weights (nn.Linear layout, [out, in]) under either naming.
fn llama_parts(
    reader: &mut Reader<'_>,
    name: &dyn Fn(LlamaTensor, usize) -> String,
) -> Result<TransformerParts, ModelError> {
    let ModelConfig { d_model, d_mlp, d_vocab, n_layers, n_heads, n_kv_heads, d_head, .. } = *reader.config;
    let token_embedding = reader.get(&name(LlamaTensor::Embedding, 0), &[d_vocab, d_model])?;
    let mut blocks = Vec::with_capacity(n_layers);
    for layer in 0..n_layers {
        let at = |tensor| name(tensor, layer);
        let query = reader.transposed(&at(LlamaTensor::Query), n_heads * d_head, d_model)?;
        let key = reader.transposed(&at(LlamaTensor::Key), n_kv_heads * d_head, d_model)?;
        let value = reader.transposed(&at(LlamaTensor::Value), n_kv_heads * d_head, d_model)?;
        let gate = reader.transposed(&at(LlamaTensor::Gate), d_mlp, d_model)?;
        let up = reader.transposed(&at(LlamaTensor::Up), d_mlp, d_model)?;
        blocks.push(Block {
            attention_norm: reader.rms_norm(&at(LlamaTensor::AttentionNorm))?,
            attention: Attention {
                qkv: Linear { weight: Tensor::cat(&[query, key, value], 1)?.contiguous()?, bias: None },
                output: Linear {
                    weight: reader.transposed(&at(LlamaTensor::AttentionOutput), d_model, n_heads * d_head)?,
                    bias: None,
                },
            },
            mlp_norm: reader.rms_norm(&at(LlamaTensor::MlpNorm))?,
            mlp: Mlp::Gated {
                input: Linear { weight: Tensor::cat(&[gate, up], 1)?.contiguous()?, bias: None },
                output: Linear { weight: reader.transposed(&at(LlamaTensor::Down), d_model, d_mlp)?, bias: None },
            },
        });
    }
    let final_norm = reader.rms_norm(&name(LlamaTensor::FinalNorm, 0))?;
    // Tied embeddings (SmolLM2) store no separate unembedding.
    let unembed = reader.unembedding(&name(LlamaTensor::Unembed, 0), &token_embedding)?;
    Ok(TransformerParts { token_embedding, position_embedding: None, blocks, final_norm, unembed })
}

/// A GGUF metadata value as an integer, whatever integer type the writer chose.
pub(crate) fn gguf_integer(value: &gguf_file::Value) -> Option<u64> {
    use gguf_file::Value;
    match *value {
        Value::U8(number) => Some(number.into()),
        Value::U16(number) => Some(number.into()),
        Value::U32(number) => Some(number.into()),
        Value::U64(number) => Some(number),
        Value::I8(number) => u64::try_from(number).ok(),
        Value::I16(number) => u64::try_from(number).ok(),
        Value::I32(number) => u64::try_from(number).ok(),
        Value::I64(number) => u64::try_from(number).ok(),
        _ => None,
    }
}

fn gguf_float(value: &gguf_file::Value) -> Option<f64> {
    match *value {
        gguf_file::Value::F32(number) => Some(number.into()),
        gguf_file::Value::F64(number) => Some(number),
        _ => gguf_integer(value).map(|number| number as f64),
    }
}

/// The model configuration in a GGUF file's metadata (llama-family architectures).
fn gguf_config(weights: &WeightFiles) -> Result<ModelConfig, ModelError> {
    let path = weights.path();
    let Some(metadata) = weights.gguf_metadata() else {
        return Err(ModelError::config(path, "not a GGUF file"));
    };
    let architecture = match metadata.get("general.architecture") {
        Some(gguf_file::Value::String(name)) => name.as_str(),
        _ => return Err(ModelError::config(path, "missing `general.architecture`")),
    };
    if !matches!(architecture, "llama" | "mistral") {
        return Err(ModelError::Unsupported {
            path: path.to_path_buf(),
            what: format!("GGUF architecture `{architecture}` (supported: llama, mistral)"),
        });
    }
    let integer = |key: &str| -> Result<Option<usize>, ModelError> {
        let full_key = format!("{architecture}.{key}");
        match metadata.get(&full_key) {
            None => Ok(None),
            Some(value) => gguf_integer(value)
                .and_then(|number| usize::try_from(number).ok())
                .map(Some)
                .ok_or_else(|| ModelError::config(path, format!("`{full_key}` must be a non-negative integer"))),
        }
    };
    let required = |key: &str| -> Result<usize, ModelError> {
        integer(key)?.ok_or_else(|| ModelError::config(path, format!("missing `{architecture}.{key}`")))
    };
    let float = |key: &str| metadata.get(&format!("{architecture}.{key}")).and_then(gguf_float);
    let d_model = required("embedding_length")?;
    let n_heads = required("attention.head_count")?;
    let d_head = integer("attention.key_length")?.unwrap_or(d_model / n_heads.max(1));
    let d_vocab = match weights.shape("token_embd.weight").as_deref() {
        Some([rows, _]) => *rows,
        _ => return Err(ModelError::MissingTensor { path: path.to_path_buf(), name: "token_embd.weight".to_owned() }),
    };
    let config = ModelConfig {
        architecture: Architecture::Llama,
        n_layers: required("block_count")?,
        d_model,
        d_mlp: required("feed_forward_length")?,
        n_heads,
        n_kv_heads: integer("attention.head_count_kv")?.unwrap_or(n_heads),
        d_head,
        d_vocab,
        n_ctx: required("context_length")?,
        activation: Activation::Silu,
        mlp: MlpKind::Gated,
        normalization: Normalization::RmsNorm { eps: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5) },
        positions: Positions::Rotary {
            dims: integer("rope.dimension_count")?.unwrap_or(d_head),
            base: float("rope.freq_base").unwrap_or(10_000.0),
            interleaved: true,
        },
        parallel_residual: false,
    };
    config.validate(path)?;
    Ok(config)
}
