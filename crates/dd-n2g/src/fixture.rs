//! A model built by hand so that one neuron fires on a known pattern, for end-to-end tests of the
//! graph builder: whatever N2G finds for that neuron can be checked against what it was built to do.
//!
//! The model is a one-layer GPT-2 (written as `config.json`, `model.safetensors` and
//! `tokenizer.json`, read back by dd-model's own loader) whose layer-0 neuron [`PatternModel::neuron`]
//! fires, with activation GELU(5) ≈ 5, exactly at the positions `t ≥ 2` where `tokens[t] == b` and
//! `tokens[t − 2] == a` (`a ? b`, any one token between); everywhere else its pre-activation is at
//! most −5, so the activation is below 10⁻⁶ in magnitude.
//!
//! # Construction
//! The residual stream is laid out on disjoint pairs of dimensions, every part zero-mean with a fixed
//! norm, so both LayerNorms (unit gain, zero bias) are one known scaling `λ` and the weights can be
//! written in terms of the raw parts:
//! - token `i`: `(+1, −1)` on dimensions `2i, 2i+1` (one pair per token, so the embedding rows are
//!   orthogonal);
//! - position `p`: `(cos θp, sin θp, −cos θp, −sin θp)` on [`POSITION`]`..+4`, with θ = 0.1, and a
//!   flag pair on [`EARLY`] that is `(+1, −1)` for `p < 2` and `(−1, +1)` after;
//! - one attention head whose query is the position rotated back by two steps and whose key is the
//!   position: the score is `S·cos(θ(s − t + 2))`, largest at `s = t − 2`. θ·61 < 2π − θ, so within
//!   the 64-token context no other offset comes within `1 − cos θ` of the peak, and `S` is set so
//!   that gap is 25 nats: attention on `t − 2` is 1 − 10⁻⁹. The value is `+1` when the attended
//!   token is `a` and `−1` otherwise (a bias of −1 makes it signed, so the output's norm, and hence
//!   the second LayerNorm's scale, does not depend on it), written as `(+v, −v)` on [`ATTENDED`];
//! - the neuron reads `[b]` (is the current token `b`), `ā` (the attended value) and the flag `f`:
//!   `pre = 10·[b] + 5·ā − 5·f − 15`, which is +5 only for `[b] = 1, ā = +1, f = −1` and at most −5
//!   otherwise. The flag is what keeps `t < 2` silent: there attention cannot reach `t − 2` and
//!   lands on position 0, which may hold `a`.
//!
//! The other MLP neurons get small pseudo-random weights, so they fire on something but nothing
//! planned; nothing is written back to the residual stream, and the logits (tied embedding) carry
//! no meaning.
//!
//! The tokenizer is a BPE with one token per character and no merges: `<|endoftext|>` (the BOS,
//! id 0), `a`–`z`, space, `.` and newline, after lowercasing; other characters are dropped. So the
//! text "axb" is the tokens `a`, `x`, `b`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::error::N2gError;
use crate::rng::SplitMix64;

/// What the fixture model is built to do.
#[derive(Clone, Debug, PartialEq)]
pub struct PatternModel {
    /// The layer of the pattern neuron (always 0: the model has one layer).
    pub layer: u32,
    /// The pattern neuron's index in the layer.
    pub neuron: u32,
    /// The first token of the pattern (`a` in `a ? b`).
    pub a: u32,
    /// The token the neuron fires on (`b` in `a ? b`).
    pub b: u32,
    /// `<|endoftext|>`, which the recorder prepends to every context.
    pub bos: u32,
    /// The text of every token, by id.
    pub vocab: Vec<String>,
    /// The model's context length.
    pub n_ctx: usize,
    /// MLP neurons in the layer.
    pub d_mlp: usize,
    /// The neuron's activation where the pattern occurs: GELU(5) (tanh approximation).
    pub peak: f32,
}

impl PatternModel {
    /// Whether the pattern neuron is built to fire at `position` of `tokens`.
    pub fn fires(&self, tokens: &[u32], position: usize) -> bool {
        position >= 2 && tokens.get(position) == Some(&self.b) && tokens.get(position - 2) == Some(&self.a)
    }
}

/// The residual dimensions of the position embedding (four: cos, sin, −cos, −sin).
pub const POSITION: usize = 2 * VOCAB.len();
/// The residual dimensions (a pair) the attention writes the attended token's `a`-ness into.
pub const ATTENDED: usize = POSITION + 4;
/// The residual dimensions (a pair) of the flag that marks positions 0 and 1.
pub const EARLY: usize = ATTENDED + 2;

/// Every token's text, by id.
const VOCAB: [&str; 30] = [
    "<|endoftext|>",
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "g",
    "h",
    "i",
    "j",
    "k",
    "l",
    "m",
    "n",
    "o",
    "p",
    "q",
    "r",
    "s",
    "t",
    "u",
    "v",
    "w",
    "x",
    "y",
    "z",
    " ",
    ".",
    "\n",
];
const BOS: usize = 0;
const A: usize = 1;
const B: usize = 2;
/// Four spare (zero) dimensions round the width up to a multiple of eight.
const D_MODEL: usize = EARLY + 2 + 4;
const N_CTX: usize = 64;
const D_MLP: usize = 8;
const NEURON: usize = 5;
/// Radians per position; see the module docs for why 0.1 does not alias within [`N_CTX`].
const THETA: f64 = 0.1;
/// The softmax gap, in nats, between attending to `t − 2` and any other position.
const ATTENTION_GAP: f64 = 25.0;
const LAYER_NORM_EPS: f64 = 1e-5;
/// Pre-activation weights of the pattern neuron: `[b]`, the attended value, the early flag, bias.
const WEIGHT_B: f64 = 10.0;
const WEIGHT_ATTENDED: f64 = 5.0;
const WEIGHT_EARLY: f64 = 5.0;
const BIAS: f64 = -15.0;

/// A GPT-2-style model, written to `dir` as `config.json`, `model.safetensors` and
/// `tokenizer.json`, whose layer-0 neuron `PatternModel::neuron` fires (activation about 5) exactly
/// when token `b` follows token `a` two positions later with any one token between (`a ? b`), and
/// stays near 0 elsewhere.
pub fn write_pattern_model(dir: &Path) -> Result<PatternModel, N2gError> {
    std::fs::create_dir_all(dir).map_err(|source| N2gError::Io { path: dir.to_path_buf(), source })?;
    let tensors = weights()?;
    let weights_path = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &weights_path)?;
    write_json(&dir.join("config.json"), &config())?;
    write_json(&dir.join("tokenizer.json"), &tokenizer())?;
    Ok(PatternModel {
        layer: 0,
        neuron: NEURON as u32,
        a: A as u32,
        b: B as u32,
        bos: BOS as u32,
        vocab: VOCAB.iter().map(|token| (*token).to_owned()).collect(),
        n_ctx: N_CTX,
        d_mlp: D_MLP,
        peak: gelu_tanh(WEIGHT_B + WEIGHT_ATTENDED + WEIGHT_EARLY + BIAS) as f32,
    })
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), N2gError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|err| N2gError::Invalid(format!("cannot serialise {}: {err}", path.display())))?;
    std::fs::write(path, text).map_err(|source| N2gError::Io { path: path.to_path_buf(), source })
}

fn config() -> serde_json::Value {
    serde_json::json!({
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "activation_function": "gelu_new",
        "n_embd": D_MODEL,
        "n_head": 1,
        "n_layer": 1,
        "n_inner": D_MLP,
        "n_positions": N_CTX,
        "vocab_size": VOCAB.len(),
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "bos_token_id": BOS,
        "eos_token_id": BOS,
        "tie_word_embeddings": true,
    })
}

fn tokenizer() -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> =
        VOCAB.iter().enumerate().map(|(id, token)| ((*token).to_owned(), serde_json::Value::from(id))).collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{
            "id": BOS,
            "content": VOCAB[BOS],
            "single_word": false,
            "lstrip": false,
            "rstrip": false,
            "normalized": false,
            "special": true,
        }],
        "normalizer": { "type": "Lowercase" },
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": null,
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": [],
        },
    })
}

/// A row-major matrix built in f64 and stored as f32.
struct Matrix {
    rows: usize,
    columns: usize,
    values: Vec<f64>,
}

impl Matrix {
    fn zeros(rows: usize, columns: usize) -> Self {
        Self { rows, columns, values: vec![0.0; rows * columns] }
    }

    fn set(&mut self, row: usize, column: usize, value: f64) {
        self.values[row * self.columns + column] = value;
    }

    fn tensor(&self) -> Result<Tensor, N2gError> {
        let values: Vec<f32> = self.values.iter().map(|&value| value as f32).collect();
        Ok(Tensor::from_vec(values, (self.rows, self.columns), &Device::Cpu)?)
    }
}

fn vector(values: &[f64]) -> Result<Tensor, N2gError> {
    let values: Vec<f32> = values.iter().map(|&value| value as f32).collect();
    let length = values.len();
    Ok(Tensor::from_vec(values, length, &Device::Cpu)?)
}

/// The LayerNorm scale for a zero-mean input of squared norm `squared_norm` over [`D_MODEL`].
fn layer_norm_scale(squared_norm: f64) -> f64 {
    1.0 / (squared_norm / D_MODEL as f64 + LAYER_NORM_EPS).sqrt()
}

/// GELU with the tanh approximation (`gelu_new`), as the model computes it.
fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
}

/// Every tensor of the model, by the names dd-model's GPT-2 loader reads.
fn weights() -> Result<HashMap<String, Tensor>, N2gError> {
    let vocab = VOCAB.len();
    // Parts of the residual stream: token pair (±1), position (cos, sin, −cos, −sin), flag (±1),
    // and after attention the attended pair (±1).
    let embedded_norm = 2.0 + 2.0 + 2.0;
    let first_scale = layer_norm_scale(embedded_norm);
    let second_scale = layer_norm_scale(embedded_norm + 2.0);

    let mut token_embedding = Matrix::zeros(vocab, D_MODEL);
    for token in 0..vocab {
        token_embedding.set(token, 2 * token, 1.0);
        token_embedding.set(token, 2 * token + 1, -1.0);
    }
    let mut position_embedding = Matrix::zeros(N_CTX, D_MODEL);
    for position in 0..N_CTX {
        let angle = THETA * position as f64;
        for (offset, value) in [angle.cos(), angle.sin(), -angle.cos(), -angle.sin()].into_iter().enumerate() {
            position_embedding.set(position, POSITION + offset, value);
        }
        let early = if position < 2 { 1.0 } else { -1.0 };
        position_embedding.set(position, EARLY, early);
        position_embedding.set(position, EARLY + 1, -early);
    }

    // One head over all of D_MODEL: query dims 0, 1; key dims 0, 1; value dim 0.
    let d_head = D_MODEL as f64;
    let amplitude = (ATTENTION_GAP * d_head.sqrt() / (1.0 - THETA.cos())).sqrt();
    let read = amplitude / first_scale;
    let (cos_back, sin_back) = ((2.0 * THETA).cos(), (2.0 * THETA).sin());
    let mut qkv = Matrix::zeros(D_MODEL, 3 * D_MODEL);
    let mut qkv_bias = vec![0.0; 3 * D_MODEL];
    // q = A·(cos θ(t−2), sin θ(t−2)) from (cos θt, sin θt).
    qkv.set(POSITION, 0, read * cos_back);
    qkv.set(POSITION + 1, 0, read * sin_back);
    qkv.set(POSITION, 1, -read * sin_back);
    qkv.set(POSITION + 1, 1, read * cos_back);
    // k = A·(cos θs, sin θs).
    qkv.set(POSITION, D_MODEL, read);
    qkv.set(POSITION + 1, D_MODEL + 1, read);
    // v = +1 for `a`, −1 otherwise.
    qkv.set(2 * A, 2 * D_MODEL, 1.0 / first_scale);
    qkv.set(2 * A + 1, 2 * D_MODEL, -1.0 / first_scale);
    qkv_bias[2 * D_MODEL] = -1.0;
    let mut attention_output = Matrix::zeros(D_MODEL, D_MODEL);
    attention_output.set(0, ATTENDED, 1.0);
    attention_output.set(0, ATTENDED + 1, -1.0);

    let mut mlp_input = Matrix::zeros(D_MODEL, D_MLP);
    let mut mlp_bias = vec![0.0; D_MLP];
    let mut random = SplitMix64::new(0x006e_3267);
    for neuron in (0..D_MLP).filter(|&neuron| neuron != NEURON) {
        for dimension in 0..D_MODEL {
            mlp_input.set(dimension, neuron, 0.3 * random.next_signed());
        }
        mlp_bias[neuron] = 0.5 * random.next_signed();
    }
    // Each feature is half the difference of its pair, divided by the LayerNorm's scale.
    let half = 0.5 / second_scale;
    mlp_input.set(2 * B, NEURON, WEIGHT_B * half);
    mlp_input.set(2 * B + 1, NEURON, -WEIGHT_B * half);
    mlp_input.set(ATTENDED, NEURON, WEIGHT_ATTENDED * half);
    mlp_input.set(ATTENDED + 1, NEURON, -WEIGHT_ATTENDED * half);
    mlp_input.set(EARLY, NEURON, -WEIGHT_EARLY * half);
    mlp_input.set(EARLY + 1, NEURON, WEIGHT_EARLY * half);
    mlp_bias[NEURON] = BIAS;

    let ones = vec![1.0; D_MODEL];
    let zeros = vec![0.0; D_MODEL];
    let mut tensors = HashMap::new();
    tensors.insert("wte.weight".to_owned(), token_embedding.tensor()?);
    tensors.insert("wpe.weight".to_owned(), position_embedding.tensor()?);
    for norm in ["h.0.ln_1", "h.0.ln_2", "ln_f"] {
        tensors.insert(format!("{norm}.weight"), vector(&ones)?);
        tensors.insert(format!("{norm}.bias"), vector(&zeros)?);
    }
    tensors.insert("h.0.attn.c_attn.weight".to_owned(), qkv.tensor()?);
    tensors.insert("h.0.attn.c_attn.bias".to_owned(), vector(&qkv_bias)?);
    tensors.insert("h.0.attn.c_proj.weight".to_owned(), attention_output.tensor()?);
    tensors.insert("h.0.attn.c_proj.bias".to_owned(), vector(&zeros)?);
    tensors.insert("h.0.mlp.c_fc.weight".to_owned(), mlp_input.tensor()?);
    tensors.insert("h.0.mlp.c_fc.bias".to_owned(), vector(&mlp_bias)?);
    tensors.insert("h.0.mlp.c_proj.weight".to_owned(), Matrix::zeros(D_MLP, D_MODEL).tensor()?);
    tensors.insert("h.0.mlp.c_proj.bias".to_owned(), vector(&zeros)?);
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use dd_model::{Hook, RunRequest};

    use super::*;

    /// Loads the written files through dd-model's real loader and tokenizer reader.
    fn load(dir: &Path) -> (dd_model::Transformer, dd_model::Tokenizer) {
        let files = dd_model::locate(dir).expect("locate");
        let tokenizer =
            dd_model::load_tokenizer(files.tokenizer.as_ref().expect("tokenizer.json found")).expect("tokenizer");
        let model = dd_model::load_located(&files, &Device::Cpu).expect("model loads");
        (model, tokenizer)
    }

    /// The pattern neuron's activation at every position of each sequence (all of one length).
    fn neuron_activations(model: &dd_model::Transformer, pattern: &PatternModel, rows: &[Vec<u32>]) -> Vec<Vec<f32>> {
        let length = rows[0].len();
        let flat: Vec<u32> = rows.iter().flatten().copied().collect();
        let ids = Tensor::from_vec(flat, (rows.len(), length), &Device::Cpu).expect("ids");
        let request = RunRequest { layers: vec![0], hooks: vec![Hook::Post], logits: false };
        let output = model.run(&ids, &request).expect("run");
        let values = output.get(0, Hook::Post).expect("layer 0").to_vec3::<f32>().expect("values");
        values.iter().map(|row| row.iter().map(|neurons| neurons[pattern.neuron as usize]).collect()).collect()
    }

    #[test]
    /// The tokenizer reads text per character after lowercasing, names the BOS, and shows tokens.
    fn tokenizer_reads_one_token_per_character() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pattern = write_pattern_model(dir.path()).expect("written");
        let (model, tokenizer) = load(dir.path());
        // What dd-record's `open_model` reads besides the model and tokenizer.
        let description = dd_model::describe(&dd_model::locate(dir.path()).expect("locate")).expect("describe");
        assert_eq!(description.weights, "safetensors F32");
        assert_eq!(model.config().d_vocab, pattern.vocab.len());
        assert_eq!(tokenizer.vocab_size(), pattern.vocab.len());
        assert_eq!(tokenizer.bos_token_id(), Some(pattern.bos));
        assert!(tokenizer.is_special(pattern.bos));
        let ids = tokenizer.encode("Ax b.\n").expect("encode");
        let expected: Vec<u32> = ["a", "x", " ", "b", ".", "\n"]
            .iter()
            .map(|token| pattern.vocab.iter().position(|known| known == token).expect("in vocab") as u32)
            .collect();
        assert_eq!(ids, expected);
        assert_eq!(ids[0], pattern.a);
        assert_eq!(tokenizer.decode(&ids), "ax b.\n");
        assert_eq!(tokenizer.encode("<|endoftext|>axb").expect("encode")[0], pattern.bos);
        assert_eq!(tokenizer.display(27), "·");
    }

    #[test]
    /// Over thousands of positions of random texts (rich in `a` and `b`, with and without a BOS),
    /// the neuron exceeds 2.5 exactly where `a ? b` ends and stays below 0.1 elsewhere, `t < 2`
    /// included; the margins are printed for the module docs.
    fn the_neuron_fires_exactly_on_the_pattern() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pattern = write_pattern_model(dir.path()).expect("written");
        let (model, _) = load(dir.path());
        let mut random = SplitMix64::new(7);
        let mut firing = Vec::new();
        let mut silent = Vec::new();
        for length in [1, 2, 3, 5, 17, 40, 64] {
            let rows: Vec<Vec<u32>> = (0..40)
                .map(|row| {
                    (0..length)
                        .map(|position| match (position, row % 2, random.below(10)) {
                            (0, 0, _) => pattern.bos,
                            (_, _, 0..=2) => pattern.a,
                            (_, _, 3..=5) => pattern.b,
                            _ => random.below(pattern.vocab.len()) as u32,
                        })
                        .collect()
                })
                .collect();
            for (row, values) in rows.iter().zip(neuron_activations(&model, &pattern, &rows)) {
                for (position, value) in values.into_iter().enumerate() {
                    match pattern.fires(row, position) {
                        true => firing.push(value),
                        false => silent.push((value, row.clone(), position)),
                    }
                }
            }
        }
        let lowest_firing = firing.iter().copied().fold(f32::INFINITY, f32::min);
        let (highest_silent, row, position) =
            silent.iter().max_by(|x, y| x.0.abs().total_cmp(&y.0.abs())).cloned().expect("silent positions");
        eprintln!(
            "{} firing positions, lowest {lowest_firing}; {} silent, largest |activation| {}",
            firing.len(),
            silent.len(),
            highest_silent.abs()
        );
        assert!(firing.len() > 300 && silent.len() > 3000);
        assert!(lowest_firing > 2.5, "lowest firing activation {lowest_firing}");
        assert!((lowest_firing - pattern.peak).abs() < 1e-3);
        assert!(highest_silent.abs() < 0.1, "activation {highest_silent} at {position} of {row:?}");
        // An `a` at position 0 followed by `b` must not fire: attention cannot reach t − 2 there.
        // (Position 2 of `a b b` is the pattern itself.)
        let early = neuron_activations(&model, &pattern, &[vec![pattern.a, pattern.b, pattern.b]]);
        assert!(early[0][1].abs() < 0.1 && early[0][2] > 2.5, "{early:?}");
    }
}
