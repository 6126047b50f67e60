//! Sentence embeddings as sentence-transformers computes them for a BERT model with mean pooling
//! (all-MiniLM-L6-v2): WordPiece tokens with `[CLS]` and `[SEP]`, truncated to the folder's
//! `max_seq_length`; a post-LN BERT encoder; the mean of the last hidden states over the real
//! (unpadded) tokens; L2 normalisation. Explanations of neurons are embedded with it when they are
//! written and search queries when they arrive, so both sides must compute exactly this; the
//! integration tests hold it to vectors sentence-transformers computed
//! (`tests/fixtures/minilm_embeddings.json`, made by `scripts/make_embedding_fixture.py`).
//!
//! The encoder is written here on candle tensors rather than taken from candle-transformers: it is
//! about forty lines over this crate's kernels (the fused residual LayerNorm and the GELU, plus two
//! written for it: attention over padded sequences, and products of a few rows with a weight matrix,
//! which keep a search query's embedding at a few milliseconds), and a second model library would
//! be a large dependency for one small model.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

use crate::config::{Activation, JsonConfig};
use crate::error::ModelError;
use crate::ops::{NormParameters, PaddedBatch, add_and_normalize, bias_activation, linear, padded_attention};
use crate::weights::WeightFiles;

/// A sentence-transformers embedding model (BERT encoder, mean pooling, L2 normalisation).
pub struct SentenceEncoder {
    /// The folder's name, e.g. `all-MiniLM-L6-v2`.
    name: String,
    tokenizer: tokenizers::Tokenizer,
    /// Where the tokenizer came from, for its errors.
    tokenizer_path: PathBuf,
    /// sentence_bert_config.json's `do_lower_case`: sentence-transformers lowercases the text
    /// itself before tokenizing when it is set (the tokenizer may lowercase again; harmless).
    lowercase: bool,
    embeddings: Embeddings,
    layers: Vec<EncoderLayer>,
    shape: EncoderShape,
}

/// The encoder's sizes, from config.json.
#[derive(Clone, Copy, Debug)]
struct EncoderShape {
    hidden: usize,
    n_heads: usize,
    d_head: usize,
    intermediate: usize,
    layer_norm_eps: f64,
}

/// The sizes beyond [`EncoderShape`] that loading checks the weights against.
#[derive(Clone, Copy, Debug)]
struct ModelSizes {
    n_layers: usize,
    vocabulary: usize,
    max_positions: usize,
    token_types: usize,
}

/// The embedding layer: word + position + token type, then LayerNorm.
struct Embeddings {
    /// [vocabulary, hidden].
    words: Tensor,
    /// [max_position_embeddings, hidden].
    positions: Tensor,
    /// Token type 0's row, `[hidden]`: a single text has no second segment.
    token_type: Tensor,
    norm: LayerNorm,
}

/// One post-LN BERT layer, its linear weights stored [out, in] as in the file (`ops::linear` reads
/// them so; candle's GEMM takes them transposed at no cost).
struct EncoderLayer {
    /// Query, key and value stacked, [3·hidden, hidden]; the query part already scaled by
    /// 1/√d_head, so the scores need no separate scaling pass.
    qkv: Tensor,
    /// [3·hidden], the query part scaled likewise.
    qkv_bias: Tensor,
    /// [hidden, hidden].
    attention_output: Tensor,
    attention_output_bias: Tensor,
    attention_norm: LayerNorm,
    /// [intermediate, hidden].
    intermediate: Tensor,
    intermediate_bias: Tensor,
    /// [hidden, intermediate].
    output: Tensor,
    output_bias: Tensor,
    output_norm: LayerNorm,
}

struct LayerNorm {
    scale: Tensor,
    shift: Tensor,
}

/// Texts per forward pass. Texts are sorted by length first, so a batch pads little. 32 is
/// sentence-transformers' default and was the fastest tried (`benches/sentence.rs`, 2 threads, CPU
/// per explanation): 8.3–8.7 ms, against 9.9–10.5 for batches of 8 and 9.0 for 128.
const BATCH_SIZE: usize = 32;

/// Padded positions per forward pass at most, so that a batch of long texts stays small (eight
/// texts of 256 tokens). Explanation-length texts (10–30 tokens) never reach it.
const MAX_BATCH_TOKENS: usize = 2048;

impl std::fmt::Debug for SentenceEncoder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SentenceEncoder")
            .field("name", &self.name)
            .field("dimension", &self.shape.hidden)
            .field("n_layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

impl SentenceEncoder {
    /// Loads a sentence-transformers folder (config.json, model.safetensors, tokenizer.json,
    /// sentence_bert_config.json, 1_Pooling/config.json, modules.json).
    ///
    /// Fails with a [`ModelError`] naming the file on a missing or malformed file, a model other
    /// than BERT, pooling other than the mean, modules beyond Transformer, Pooling and Normalize,
    /// or a tensor of the wrong shape.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::UnknownFormat {
                path: dir.to_path_buf(),
                reason: "not a directory; expected a sentence-transformers model folder".to_owned(),
            });
        }
        let name = folder_name(dir)?;
        let pooling_dir = read_modules(&required_file(dir, "modules.json")?)?;
        let (max_tokens, lowercase) = read_sentence_config(&required_file(dir, "sentence_bert_config.json")?)?;
        let config_path = required_file(dir, "config.json")?;
        let config = JsonConfig::read(&config_path)?;
        let (shape, sizes) = read_bert_config(&config)?;
        check_pooling(&required_file(&dir.join(&pooling_dir), "config.json")?, shape.hidden)?;
        if max_tokens > sizes.max_positions {
            return Err(ModelError::config(
                dir.join("sentence_bert_config.json"),
                format!("max_seq_length {max_tokens} exceeds the model's {} positions", sizes.max_positions),
            ));
        }
        let tokenizer_path = required_file(dir, "tokenizer.json")?;
        let tokenizer = read_tokenizer(&tokenizer_path, max_tokens, sizes.vocabulary)?;
        let weights_path = required_file(dir, "model.safetensors")?;
        let mut weights = WeightFiles::safetensors(std::slice::from_ref(&weights_path), &Device::Cpu)?;
        let (embeddings, layers) = read_weights(&mut weights, shape, sizes)?;
        Ok(Self { name, tokenizer, tokenizer_path, lowercase, embeddings, layers, shape })
    }

    /// The model's name, from the folder name (e.g. "all-MiniLM-L6-v2"): stored beside every
    /// vector, since only vectors of one model compare.
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// Embedding width (384).
    pub fn dimension(&self) -> usize {
        self.shape.hidden
    }

    /// Unit-length embeddings, one per text, in order; batches internally (sorting by length to
    /// limit padding); empty text allowed.
    ///
    /// Each vector is what sentence-transformers' `encode` returns for the text: it is stripped,
    /// tokenized with `[CLS]` and `[SEP]`, cut to `max_seq_length` tokens, encoded, mean-pooled
    /// over its tokens and normalised. Without a Normalize module in modules.json the vector is
    /// still normalised (sentence-transformers would not), so that a dot product is the cosine.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let token_ids = self.tokenize(texts)?;
        // Longest first, as sentence-transformers orders its batches; a stable sort keeps the
        // batches, and so the result, the same from run to run.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&text_idx| std::cmp::Reverse(token_ids[text_idx].len()));
        let mut embeddings = vec![Vec::new(); texts.len()];
        let mut rest = order.as_slice();
        while let Some(&longest_idx) = rest.first() {
            // The first text of a batch is its longest, so the batch pads to its length; a text
            // under half that length starts the next batch rather than more than double its work.
            let longest = token_ids[longest_idx].len();
            let cap = (MAX_BATCH_TOKENS / longest.max(1)).clamp(1, BATCH_SIZE).min(rest.len());
            let n_texts = rest[..cap].iter().take_while(|&&text_idx| 2 * token_ids[text_idx].len() >= longest).count();
            let (batch, remaining) = rest.split_at(n_texts);
            let batch_ids: Vec<&[u32]> = batch.iter().map(|&text_idx| token_ids[text_idx].as_slice()).collect();
            for (&text_idx, embedding) in batch.iter().zip(self.embed_batch(&batch_ids)?) {
                embeddings[text_idx] = embedding;
            }
            rest = remaining;
        }
        Ok(embeddings)
    }

    /// Token ids with `[CLS]` and `[SEP]`, truncated, one list per text.
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, ModelError> {
        // sentence-transformers strips each text, and lowercases it when its config says so.
        let prepared: Vec<String> = texts
            .iter()
            .map(|text| match self.lowercase {
                true => text.trim().to_lowercase(),
                false => text.trim().to_owned(),
            })
            .collect();
        let tokenizer_error = |err: tokenizers::Error| ModelError::Tokenizer {
            path: self.tokenizer_path.clone(),
            message: err.to_string(),
        };
        // One query is the latency that matters; the batch call would hand it to rayon for nothing.
        let encodings = match prepared.as_slice() {
            [single] => vec![self.tokenizer.encode_fast(single.as_str(), true).map_err(tokenizer_error)?],
            _ => {
                let inputs: Vec<&str> = prepared.iter().map(String::as_str).collect();
                self.tokenizer.encode_batch_fast(inputs, true).map_err(tokenizer_error)?
            }
        };
        Ok(encodings.into_iter().map(|encoding| encoding.get_ids().to_vec()).collect())
    }

    /// The embeddings of one batch of token id lists, padded to the longest.
    fn embed_batch(&self, batch_ids: &[&[u32]]) -> Result<Vec<Vec<f32>>, ModelError> {
        let n_positions = batch_ids.iter().map(|ids| ids.len()).max().unwrap_or(0);
        if n_positions == 0 {
            return Ok(vec![Vec::new(); batch_ids.len()]);
        }
        let mut padded_ids = vec![0u32; batch_ids.len() * n_positions];
        for (text_idx, ids) in batch_ids.iter().enumerate() {
            padded_ids[text_idx * n_positions..][..ids.len()].copy_from_slice(ids);
        }
        let batch = PaddedBatch {
            positions: n_positions,
            lengths: batch_ids.iter().map(|ids| ids.len()).collect(),
            n_heads: self.shape.n_heads,
            d_head: self.shape.d_head,
        };
        let hidden_states: Vec<f32> = self.encode(&padded_ids, &batch)?.flatten_all()?.to_vec1()?;
        Ok(mean_pool_and_normalize(&hidden_states, &batch, self.shape.hidden))
    }

    /// The encoder's last hidden states, [texts · positions, hidden], for `padded_ids` laid out as
    /// `batch` says.
    fn encode(&self, padded_ids: &[u32], batch: &PaddedBatch) -> Result<Tensor, ModelError> {
        let EncoderShape { hidden, layer_norm_eps, .. } = self.shape;
        let (n_texts, n_positions) = (batch.lengths.len(), batch.positions);
        let device = self.embeddings.words.device();
        let rows = n_texts * n_positions;
        let ids = Tensor::from_slice(padded_ids, rows, device)?;
        let words = self.embeddings.words.index_select(&ids, 0)?;
        let positions = self
            .embeddings
            .positions
            .narrow(0, 0, n_positions)?
            .unsqueeze(0)?
            .broadcast_as((n_texts, n_positions, hidden))?
            .reshape((rows, hidden))?;
        // Post-LN: each step's output is the normalised sum; the un-normalised sum is not kept.
        let normalized = |residual: &Tensor, addend: Tensor, bias: &Tensor, layer_norm: &LayerNorm| {
            let parameters =
                NormParameters { scale: &layer_norm.scale, shift: Some(&layer_norm.shift), eps: layer_norm_eps };
            let (_, mut outputs) = add_and_normalize(residual, &[(addend, Some(bias.clone()))], &[parameters])?;
            outputs.pop().ok_or_else(|| candle_core::Error::Msg("the residual step returned no output".to_owned()))
        };
        let mut x = normalized(&words, positions, &self.embeddings.token_type, &self.embeddings.norm)?;

        for layer in &self.layers {
            let qkv = linear(&x, &layer.qkv)?.broadcast_add(&layer.qkv_bias)?;
            let context = padded_attention(&qkv, batch)?;
            let attention = linear(&context, &layer.attention_output)?;
            x = normalized(&x, attention, &layer.attention_output_bias, &layer.attention_norm)?;
            let intermediate = bias_activation(
                &linear(&x, &layer.intermediate)?,
                Some(&layer.intermediate_bias),
                Activation::GeluErf,
            )?;
            let output = linear(&intermediate, &layer.output)?;
            x = normalized(&x, output, &layer.output_bias, &layer.output_norm)?;
        }
        Ok(x)
    }
}

/// The mean of each text's hidden states over its real tokens, scaled to unit length; divisors
/// clamped as sentence-transformers (1e-9) and `torch.nn.functional.normalize` (1e-12) clamp them.
fn mean_pool_and_normalize(hidden_states: &[f32], batch: &PaddedBatch, hidden: usize) -> Vec<Vec<f32>> {
    hidden_states
        .chunks(batch.positions * hidden)
        .zip(&batch.lengths)
        .map(|(text_states, &length)| {
            let mut sum = vec![0f32; hidden];
            for row in text_states.chunks(hidden).take(length) {
                sum.iter_mut().zip(row).for_each(|(total, value)| *total += value);
            }
            let mean: Vec<f32> = sum.iter().map(|total| total / (length as f32).max(1e-9)).collect();
            let norm = mean.iter().map(|value| value * value).sum::<f32>().sqrt().max(1e-12);
            mean.iter().map(|value| value / norm).collect()
        })
        .collect()
}

/// The model's name: the folder's own name, also when the path is `.` or ends in `..`.
fn folder_name(dir: &Path) -> Result<String, ModelError> {
    let canonical = dir.canonicalize().map_err(|err| ModelError::io(dir, err))?;
    match canonical.file_name().and_then(|name| name.to_str()) {
        Some(name) => Ok(name.to_owned()),
        None => Err(ModelError::UnknownFormat {
            path: dir.to_path_buf(),
            reason: "the folder has no name to call the model by".to_owned(),
        }),
    }
}

/// `dir/name`, or an error saying the folder lacks it.
fn required_file(dir: &Path, name: &str) -> Result<PathBuf, ModelError> {
    let path = dir.join(name);
    match path.is_file() {
        true => Ok(path),
        false => Err(ModelError::UnknownFormat {
            path: dir.to_path_buf(),
            reason: format!("no {name}; expected a sentence-transformers model folder"),
        }),
    }
}

/// Reads modules.json, which must list a Transformer, a Pooling and optionally a Normalize module,
/// in that order; returns the Pooling module's folder. Any other module (a Dense projection, say)
/// would change the vectors, so it is refused rather than skipped.
fn read_modules(path: &Path) -> Result<PathBuf, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|err| ModelError::io(path, err))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| ModelError::config(path, format!("not valid JSON: {err}")))?;
    let Some(modules) = value.as_array() else {
        return Err(ModelError::config(path, "expected a JSON array of modules"));
    };
    let mut kinds = Vec::with_capacity(modules.len());
    for (module_idx, module) in modules.iter().enumerate() {
        let field = |key: &str| module.get(key).and_then(serde_json::Value::as_str);
        let (Some(kind), Some(folder)) = (field("type"), field("path")) else {
            return Err(ModelError::config(path, format!("module {module_idx} needs string fields `type` and `path`")));
        };
        // `sentence_transformers.models.Pooling`; newer versions may spell the full module path.
        let kind = kind.rsplit('.').next().unwrap_or(kind);
        kinds.push((kind, folder));
    }
    match kinds.as_slice() {
        [("Transformer", ""), ("Pooling", pooling)] | [("Transformer", ""), ("Pooling", pooling), ("Normalize", _)] => {
            Ok(PathBuf::from(pooling))
        }
        _ => {
            let listed: Vec<&str> = kinds.iter().map(|(kind, _)| *kind).collect();
            Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                what: format!("modules {listed:?}; expected Transformer, Pooling and optionally Normalize"),
            })
        }
    }
}

/// Reads sentence_bert_config.json: the maximum sequence length (special tokens included) and
/// whether the text is lowercased first.
fn read_sentence_config(path: &Path) -> Result<(usize, bool), ModelError> {
    let config = JsonConfig::read(path)?;
    let max_tokens = config.usize(&["max_seq_length"])?;
    // `[CLS]` and `[SEP]` alone take two.
    if max_tokens < 2 {
        return Err(ModelError::config(path, format!("max_seq_length {max_tokens} leaves no room for a token")));
    }
    Ok((max_tokens, config.bool_opt(&["do_lower_case"])?.unwrap_or(false)))
}

/// Checks that the pooling is the mean over tokens, alone, of `hidden`-wide states.
fn check_pooling(path: &Path, hidden: usize) -> Result<(), ModelError> {
    let config = JsonConfig::read(path)?;
    let width = config.usize(&["word_embedding_dimension"])?;
    if width != hidden {
        return Err(ModelError::config(path, format!("word_embedding_dimension {width} but the model has {hidden}")));
    }
    if config.bool_opt(&["pooling_mode_mean_tokens"])? != Some(true) {
        return Err(ModelError::Unsupported {
            path: path.to_path_buf(),
            what: "pooling without pooling_mode_mean_tokens; only mean pooling is implemented".to_owned(),
        });
    }
    for other in [
        "pooling_mode_cls_token",
        "pooling_mode_max_tokens",
        "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens",
        "pooling_mode_lasttoken",
    ] {
        if config.bool_opt(&[other])? == Some(true) {
            return Err(ModelError::Unsupported {
                path: path.to_path_buf(),
                what: format!("{other}; only mean pooling is implemented"),
            });
        }
    }
    Ok(())
}

/// Reads a BERT config.json, refusing what this encoder does not compute.
fn read_bert_config(config: &JsonConfig<'_>) -> Result<(EncoderShape, ModelSizes), ModelError> {
    let path = config.path();
    let unsupported = |what: String| ModelError::Unsupported { path: path.to_path_buf(), what };
    match config.model_type()? {
        Some("bert") => {}
        other => return Err(unsupported(format!("model_type `{}`; expected `bert`", other.unwrap_or("")))),
    }
    // Plain `gelu` is the erf form in transformers; the tanh approximation would drift.
    match config.str_opt(&["hidden_act"])? {
        Some("gelu") => {}
        other => return Err(unsupported(format!("hidden_act `{}`; expected `gelu`", other.unwrap_or("")))),
    }
    match config.str_opt(&["position_embedding_type"])? {
        None | Some("absolute") => {}
        Some(other) => return Err(unsupported(format!("position_embedding_type `{other}`"))),
    }
    let hidden = config.usize(&["hidden_size"])?;
    let n_heads = config.usize(&["num_attention_heads"])?;
    if n_heads == 0 || hidden % n_heads != 0 {
        return Err(ModelError::config(path, format!("hidden_size {hidden} is not a multiple of {n_heads} heads")));
    }
    let shape = EncoderShape {
        hidden,
        n_heads,
        d_head: hidden / n_heads,
        intermediate: config.usize(&["intermediate_size"])?,
        layer_norm_eps: config.f64_opt(&["layer_norm_eps"])?.unwrap_or(1e-12),
    };
    let sizes = ModelSizes {
        n_layers: config.usize(&["num_hidden_layers"])?,
        vocabulary: config.usize(&["vocab_size"])?,
        max_positions: config.usize(&["max_position_embeddings"])?,
        token_types: config.usize(&["type_vocab_size"])?,
    };
    // Text has one segment, whose token type is 0.
    if sizes.token_types == 0 {
        return Err(ModelError::config(path, "type_vocab_size 0 leaves no token type for a text"));
    }
    Ok((shape, sizes))
}

/// Reads tokenizer.json, truncating to `max_tokens` with `[CLS]` and `[SEP]` counted, as
/// sentence-transformers calls it; the file's own padding and truncation (all-MiniLM-L6-v2's pads
/// to 128) are what transformers overrides too.
fn read_tokenizer(path: &Path, max_tokens: usize, vocabulary: usize) -> Result<tokenizers::Tokenizer, ModelError> {
    let error = |message: String| ModelError::Tokenizer { path: path.to_path_buf(), message };
    let mut tokenizer = tokenizers::Tokenizer::from_file(path).map_err(|err| error(err.to_string()))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: max_tokens,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(|err| error(err.to_string()))?;
    let n_tokens = tokenizer.get_vocab_size(true);
    if n_tokens > vocabulary {
        return Err(error(format!("{n_tokens} tokens but the model embeds only {vocabulary}")));
    }
    // Every text must start with [CLS] and end with [SEP], as BERT was trained; a tokenizer.json
    // without BERT's post-processor would silently give other vectors.
    let special = |token: &str| tokenizer.token_to_id(token).ok_or_else(|| error(format!("no {token} token")));
    let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
    let empty = tokenizer.encode_fast("", true).map_err(|err| error(err.to_string()))?;
    if empty.get_ids() != [cls, sep] {
        return Err(error(format!("the empty text encodes as {:?}, not [CLS] [SEP]", empty.get_ids())));
    }
    Ok(tokenizer)
}

/// Reads every tensor the encoder uses (the pooler and `position_ids` are not), checking shapes.
fn read_weights(
    weights: &mut WeightFiles,
    shape: EncoderShape,
    sizes: ModelSizes,
) -> Result<(Embeddings, Vec<EncoderLayer>), ModelError> {
    // Checkpoints saved from `BertForMaskedLM` and the like name everything under `bert.`.
    let prefix = match weights.contains("bert.embeddings.word_embeddings.weight") {
        true => "bert.",
        false => "",
    };
    let mut reader = WeightReader { weights, prefix, hidden: shape.hidden };
    let hidden = shape.hidden;
    let embeddings = Embeddings {
        words: reader.tensor("embeddings.word_embeddings.weight", &[sizes.vocabulary, hidden])?,
        positions: reader.tensor("embeddings.position_embeddings.weight", &[sizes.max_positions, hidden])?,
        token_type: reader.tensor("embeddings.token_type_embeddings.weight", &[sizes.token_types, hidden])?.get(0)?,
        norm: reader.layer_norm("embeddings.LayerNorm")?,
    };
    let query_scale = 1.0 / (shape.d_head as f64).sqrt();
    let mut layers = Vec::with_capacity(sizes.n_layers);
    for layer_idx in 0..sizes.n_layers {
        let name = |part: &str| format!("encoder.layer.{layer_idx}.{part}");
        let (query, query_bias) = reader.linear(&name("attention.self.query"), hidden, hidden)?;
        let (key, key_bias) = reader.linear(&name("attention.self.key"), hidden, hidden)?;
        let (value, value_bias) = reader.linear(&name("attention.self.value"), hidden, hidden)?;
        let (attention_output, attention_output_bias) =
            reader.linear(&name("attention.output.dense"), hidden, hidden)?;
        let (intermediate, intermediate_bias) =
            reader.linear(&name("intermediate.dense"), hidden, shape.intermediate)?;
        let (output, output_bias) = reader.linear(&name("output.dense"), shape.intermediate, hidden)?;
        layers.push(EncoderLayer {
            qkv: Tensor::cat(&[(query * query_scale)?, key, value], 0)?,
            qkv_bias: Tensor::cat(&[(query_bias * query_scale)?, key_bias, value_bias], 0)?,
            attention_output,
            attention_output_bias,
            attention_norm: reader.layer_norm(&name("attention.output.LayerNorm"))?,
            intermediate,
            intermediate_bias,
            output,
            output_bias,
            output_norm: reader.layer_norm(&name("output.LayerNorm"))?,
        });
    }
    Ok((embeddings, layers))
}

/// Named tensors of one checkpoint, under its prefix.
struct WeightReader<'a> {
    weights: &'a mut WeightFiles,
    prefix: &'static str,
    hidden: usize,
}

impl WeightReader<'_> {
    fn tensor(&mut self, name: &str, dims: &[usize]) -> Result<Tensor, ModelError> {
        self.weights.tensor(&format!("{}{name}", self.prefix), dims, &Device::Cpu)
    }

    /// An `nn.Linear`'s weight, [out, in], and its bias.
    fn linear(&mut self, name: &str, n_in: usize, n_out: usize) -> Result<(Tensor, Tensor), ModelError> {
        let weight = self.tensor(&format!("{name}.weight"), &[n_out, n_in])?;
        Ok((weight, self.tensor(&format!("{name}.bias"), &[n_out])?))
    }

    fn layer_norm(&mut self, name: &str) -> Result<LayerNorm, ModelError> {
        let hidden = self.hidden;
        Ok(LayerNorm {
            scale: self.tensor(&format!("{name}.weight"), &[hidden])?,
            shift: self.tensor(&format!("{name}.bias"), &[hidden])?,
        })
    }
}
