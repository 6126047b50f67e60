//! Neuron facts read from the weights alone, with no dataset: which tokens a neuron's output
//! promotes and suppresses (direct logit attribution), which tokens excite it straight from the
//! embedding (input tokens), and which earlier and later neurons it is wired to (connections).
//!
//! # Definitions
//!
//! Weights are in this crate's layout ([`MlpWeights`]): `W_in` [d_model, d_mlp] (column j is what
//! neuron j reads), `W_out` [d_mlp, d_model] (row j is what neuron j writes), the unembedding
//! `W_U` [d_model, d_vocab] and the embedding `W_E` [d_vocab, d_model]. `c(v)` centres a vector
//! (subtracts its mean over d_model) and `γ` is a normalisation's learned scale.
//!
//! - **Logit attribution** of neuron j in layer l on token t: `(c(W_out[l][j]) ∘ γ_final) · W_U[:, t]`
//!   for LayerNorm models, `(W_out[l][j] ∘ γ_final) · W_U[:, t]` for RMSNorm: the neuron's output
//!   direction pushed through the final normalisation with the normalisation folded in, as
//!   TransformerLens's `fold_ln` does. The normalisation's `1/σ` is left out: it depends on the
//!   whole residual stream at a position, so it scales every token's effect alike and does not
//!   change their order. The final norm's shift β and the unembedding bias are left out too: they
//!   do not depend on the neuron.
//! - **Connection** from neuron i in layer l₁ to neuron j in layer l₂ > l₁:
//!   `W_out[l₁][i] · fold_{l₂}(W_in[l₂][:, j])` with `fold(w) = c(γ_{l₂} ∘ w)` for LayerNorm and
//!   `γ_{l₂} ∘ w` for RMSNorm, γ being layer l₂'s MLP input normalisation: the direct path through
//!   the residual stream, again without `1/σ`. Every neuron keeps the k earlier neurons with the
//!   largest |score| (its inputs) and the k later ones (its outputs).
//! - **Input tokens** of neuron j in layer l: `norm_l(W_E[t]) · W_in[l][:, j] + b_in[l][j]` for
//!   every token t, with layer l's MLP input normalisation applied to the embedding row in full
//!   (its `1/σ` is a property of the token here, so it is kept): the neuron's pre-activation if
//!   the residual stream held only the token's embedding, ignoring attention and position
//!   embeddings.
//!
//! Per MLP kind:
//! - **Gated MLPs** (Llama, SmolLM2): `W_in` is the gate `W_gate`, because the gate decides
//!   whether the neuron fires (`silu(x·W_gate)`); the up projection only scales it. `W_out` is
//!   the down projection.
//! - **SoLU**: the loader folds the MLP LayerNorm's scale into `W_out` (see [`crate::model`]), so
//!   `W_out[j]` is the output per unit of `hook_post`, the activation we record. Input tokens and
//!   connections read `W_in`, so they score the pre-activation before the softmax: `hook_post`
//!   depends on every neuron of the layer at once, and no single column describes it.
//! - **TransformerLens `LNPre`** models have γ = 1 (their weights were folded when saved) and are
//!   centred like LayerNorm.
//!
//! # How
//!
//! Each fact is a product `left [neurons, d_model] × right [d_model, columns]` whose full result
//! ([d_mlp, d_vocab] per layer, or [d_mlp, d_mlp] per layer pair) is never held: it is computed in
//! tiles of [`CircuitOptions::neuron_block`] × [`CircuitOptions::column_block`] by candle's matmul
//! (the `gemm` crate on CPU, on every rayon thread), and each tile is scanned at once into
//! streaming top-k lists, per row and, for connections, per column. The scan compares whole
//! chunks of a row against the current k-th value before looking at single elements, so it stays
//! a small share of the GEMM's time. Lists do not depend on the order in which tiles are visited
//! or on the thread count: ties are broken by the lower token or neuron index.

use candle_core::{DType, Device, Tensor};

use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::model::{NormWeights, Transformer};
use crate::tiled::{
    Best, Entry, Extremes, matmul_operand, scan_abs_columns, scan_abs_rows, scan_signed_rows, tiles, with_host_values,
};

/// One token and its effect on or from a neuron.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenEffect {
    /// The token id.
    pub token: u32,
    /// The effect (a logit contribution or a pre-activation, see the module docs).
    pub value: f32,
}

/// The k tokens with the largest and the k with the smallest effect for one neuron.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenEffects {
    /// Largest first; ties by lower token id.
    pub top: Vec<TokenEffect>,
    /// Smallest first; ties by lower token id.
    pub bottom: Vec<TokenEffect>,
}

/// A weight connection between two neurons.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NeuronLink {
    /// The other neuron's layer.
    pub layer: u32,
    /// The other neuron's index in its layer.
    pub neuron: u32,
    /// The signed connection score (see the module docs).
    pub score: f32,
}

/// One neuron's strongest weight connections.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NeuronLinks {
    /// Neurons of earlier layers that write into this one, largest |score| first; ties by
    /// (layer, neuron).
    pub inputs: Vec<NeuronLink>,
    /// Neurons of later layers this one writes into, largest |score| first; ties by
    /// (layer, neuron).
    pub outputs: Vec<NeuronLink>,
}

/// How many results to keep and how large a tile of scores to compute at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitOptions {
    /// Entries kept per list (top, bottom, inputs, outputs). Fewer when there are fewer candidates.
    pub k: usize,
    /// Neurons per tile: the rows of one matrix product.
    pub neuron_block: usize,
    /// Tokens (or later neurons) per tile: the columns of one matrix product. At most
    /// `neuron_block × column_block` scores (f32) are held at once.
    pub column_block: usize,
}

impl CircuitOptions {
    /// `k` per list with the default tile of 512 × 8192 (16 MiB of scores), large enough for the
    /// GEMM to run near its peak on a CPU.
    pub fn new(k: usize) -> Self {
        Self { k, neuron_block: 512, column_block: 8192 }
    }

    fn check(&self) -> Result<(), ModelError> {
        if self.neuron_block == 0 || self.column_block == 0 {
            return Err(ModelError::Input(format!(
                "tile sizes must be positive, got {} × {}",
                self.neuron_block, self.column_block
            )));
        }
        Ok(())
    }
}

/// One of the weight-based facts, to ask [`work_estimate`] about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFact {
    /// [`logit_attribution`].
    LogitAttribution,
    /// [`input_tokens`].
    InputTokens,
    /// [`neuron_connections`].
    NeuronConnections,
}

/// How much work a fact takes, for a progress bar's length and a time estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkEstimate {
    /// Scores computed (neuron–token or neuron–neuron pairs): the sum of everything the progress
    /// callback reports.
    pub scores: u64,
    /// Floating-point operations of the matrix products (2·d_model per score).
    pub flops: u64,
}

/// The work `fact` takes for a model of `config`'s shape.
pub fn work_estimate(config: &ModelConfig, fact: WeightFact) -> WorkEstimate {
    let (layers, d_mlp, d_vocab) = (config.n_layers as u64, config.d_mlp as u64, config.d_vocab as u64);
    let scores = match fact {
        WeightFact::LogitAttribution | WeightFact::InputTokens => layers * d_mlp * d_vocab,
        WeightFact::NeuronConnections => d_mlp * d_mlp * (layers * layers.saturating_sub(1) / 2),
    };
    WorkEstimate { scores, flops: 2 * config.d_model as u64 * scores }
}

/// Direct logit attribution of every MLP neuron, indexed `[layer][neuron]`: the k tokens whose
/// logits its output raises most and the k it lowers most (see the module docs). `progress` is
/// called from this thread with the number of scores computed since the last call.
pub fn logit_attribution(
    model: &Transformer,
    options: &CircuitOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Vec<TokenEffects>>, ModelError> {
    options.check()?;
    let config = model.config();
    check_ids_fit(config)?;
    if options.k == 0 {
        return Ok(nothing_to_keep(config, WeightFact::LogitAttribution, progress));
    }
    let final_norm = model.final_norm();
    let unembedding = model.unembedding();
    let mut results = Vec::with_capacity(config.n_layers);
    for layer in 0..config.n_layers {
        // [d_mlp, d_model], the size of W_out: the whole layer's directions folded once.
        let directions = fold_directions(&model.mlp_weights(layer)?.output, &final_norm)?;
        let extremes = signed_extremes(&directions, unembedding, options, progress)?;
        results.push(extremes.into_iter().map(|extremes| extremes.into_token_effects(0.0)).collect());
    }
    Ok(results)
}

/// The tokens whose embedding alone excites and inhibits every MLP neuron most, indexed
/// `[layer][neuron]` (see the module docs). `progress` is called from this thread with the number
/// of scores computed since the last call.
pub fn input_tokens(
    model: &Transformer,
    options: &CircuitOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Vec<TokenEffects>>, ModelError> {
    options.check()?;
    let config = model.config();
    check_ids_fit(config)?;
    if options.k == 0 {
        return Ok(nothing_to_keep(config, WeightFact::InputTokens, progress));
    }
    let embedding = model.token_embedding();
    let mut results = Vec::with_capacity(config.n_layers);
    for layer in 0..config.n_layers {
        let weights = model.mlp_weights(layer)?;
        // [d_mlp, d_model]: each neuron's reading direction as a row, like the other facts' left side.
        let readers = weights.input.t()?.contiguous()?;
        let mut extremes = vec![Extremes::new(options.k); config.d_mlp];
        for (column_start, width) in tiles(0, config.d_vocab, options.column_block) {
            // Each embedding row gets the layer's real normalisation, its 1/σ included.
            let normalised = weights.norm.apply(&embedding.narrow(0, column_start, width)?.contiguous()?)?;
            let right = matmul_operand(normalised.t()?)?;
            scan_signed_tile(&readers, &right, column_start, &mut extremes, options, progress)?;
        }
        // The bias shifts every token of a neuron alike, so it is added after the ranking.
        let biases = match &weights.input_bias {
            Some(bias) => host_vector(bias)?,
            None => vec![0.0; config.d_mlp],
        };
        results
            .push(extremes.into_iter().zip(biases).map(|(extremes, bias)| extremes.into_token_effects(bias)).collect());
    }
    Ok(results)
}

/// Every MLP neuron's strongest weight connections to earlier and later MLP neurons, indexed
/// `[layer][neuron]` (see the module docs). `progress` is called from this thread with the number
/// of scores computed since the last call.
pub fn neuron_connections(
    model: &Transformer,
    options: &CircuitOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Vec<NeuronLinks>>, ModelError> {
    options.check()?;
    let config = model.config();
    check_ids_fit(config)?;
    let ModelConfig { n_layers, d_mlp, .. } = *config;
    let neurons = n_layers * d_mlp;
    let mut inputs = vec![Best::new(options.k); neurons];
    let mut outputs = vec![Best::new(options.k); neurons];
    if options.k == 0 {
        // Nothing to compute, but the caller's progress bar should still reach its end.
        progress(work_estimate(config, WeightFact::NeuronConnections).scores);
    } else if n_layers > 1 {
        // [d_model, n_layers·d_mlp]: every layer's folded reading directions side by side, so one
        // tile may span layers and the GEMMs stay large however small d_mlp is. Its size is that
        // of the gates (or W_in), not of any score matrix.
        let mut readers = Vec::with_capacity(n_layers);
        for layer in 0..n_layers {
            let weights = model.mlp_weights(layer)?;
            readers.push(fold_readers(&weights.input, &weights.norm)?);
        }
        let readers = Tensor::cat(&readers, 1)?;
        for source_layer in 0..n_layers - 1 {
            let writers = model.mlp_weights(source_layer)?.output.contiguous()?;
            for (column_start, width) in tiles((source_layer + 1) * d_mlp, neurons, options.column_block) {
                let right = matmul_operand(readers.narrow(1, column_start, width)?)?;
                for (row_start, rows) in tiles(0, d_mlp, options.neuron_block) {
                    let scores = writers.narrow(0, row_start, rows)?.matmul(&right)?;
                    let first_row = source_layer * d_mlp + row_start;
                    let row_lists = &mut outputs[first_row..first_row + rows];
                    let column_lists = &mut inputs[column_start..column_start + width];
                    with_host_values(&scores, |values| {
                        rayon::join(
                            || scan_abs_rows(values, width, column_start as u64, row_lists),
                            || scan_abs_columns(values, width, first_row as u64, column_lists),
                        );
                    })?;
                    progress((rows * width) as u64);
                }
            }
        }
    }
    let link = |entry: &Entry| NeuronLink {
        // Ids are below n_layers·d_mlp, checked to fit u32 by `check_ids_fit`.
        layer: (entry.id / d_mlp as u64) as u32,
        neuron: (entry.id % d_mlp as u64) as u32,
        score: entry.value,
    };
    let mut results: Vec<Vec<NeuronLinks>> = (0..n_layers).map(|_| Vec::with_capacity(d_mlp)).collect();
    for (index, (inputs, outputs)) in inputs.into_iter().zip(outputs).enumerate() {
        results[index / d_mlp].push(NeuronLinks {
            inputs: inputs.entries.iter().map(link).collect(),
            outputs: outputs.entries.iter().map(link).collect(),
        });
    }
    Ok(results)
}

/// Empty token lists for every neuron, when k is 0; reports all the work as done so the caller's
/// progress bar still reaches its end.
fn nothing_to_keep(config: &ModelConfig, fact: WeightFact, progress: &(dyn Fn(u64) + Sync)) -> Vec<Vec<TokenEffects>> {
    progress(work_estimate(config, fact).scores);
    vec![vec![TokenEffects::default(); config.d_mlp]; config.n_layers]
}

/// Token ids, neuron indices and layers are reported as u32 (and neurons numbered across the model
/// in one u64 internally); a model too large for that is refused up front.
fn check_ids_fit(config: &ModelConfig) -> Result<(), ModelError> {
    let largest = [config.d_vocab, config.n_layers.saturating_mul(config.d_mlp)];
    if largest.iter().any(|&count| u32::try_from(count).is_err()) {
        return Err(ModelError::Input(format!(
            "{} tokens or {} × {} neurons do not fit 32-bit indices",
            config.d_vocab, config.n_layers, config.d_mlp
        )));
    }
    Ok(())
}

/// Output directions [rows, d_model] as the final normalisation reads them: centred for LayerNorm,
/// then scaled by γ.
fn fold_directions(directions: &Tensor, norm: &NormWeights) -> Result<Tensor, ModelError> {
    let directions = directions.to_dtype(DType::F32)?;
    let centred = match norm.centres() {
        true => directions.broadcast_sub(&directions.mean_keepdim(1)?)?,
        false => directions,
    };
    Ok(centred.broadcast_mul(&norm.scale().unsqueeze(0)?)?.contiguous()?)
}

/// Reading directions [d_model, d_mlp] (columns) with the normalisation before them folded in:
/// scaled by γ, then centred for LayerNorm, as TransformerLens's `fold_ln` + `center_weights`.
fn fold_readers(readers: &Tensor, norm: &NormWeights) -> Result<Tensor, ModelError> {
    let scaled = readers.to_dtype(DType::F32)?.broadcast_mul(&norm.scale().unsqueeze(1)?)?;
    let folded = match norm.centres() {
        true => scaled.broadcast_sub(&scaled.mean_keepdim(0)?)?,
        false => scaled,
    };
    Ok(folded.contiguous()?)
}

/// Top and bottom k of `left [d_mlp, d_model] × right [d_model, d_vocab]` per row, tile by tile.
fn signed_extremes(
    left: &Tensor,
    right: &Tensor,
    options: &CircuitOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Extremes>, ModelError> {
    let (rows, _) = left.dims2()?;
    let (_, columns) = right.dims2()?;
    let mut extremes = vec![Extremes::new(options.k); rows];
    for (column_start, width) in tiles(0, columns, options.column_block) {
        let right = matmul_operand(right.narrow(1, column_start, width)?)?;
        scan_signed_tile(left, &right, column_start, &mut extremes, options, progress)?;
    }
    Ok(extremes)
}

/// Scores `left [rows, d_model]` against one column tile `right [d_model, width]` in row blocks
/// and folds them into `extremes` (one per row of `left`).
fn scan_signed_tile(
    left: &Tensor,
    right: &Tensor,
    column_start: usize,
    extremes: &mut [Extremes],
    options: &CircuitOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), ModelError> {
    let (_, width) = right.dims2()?;
    for (row_start, rows) in tiles(0, extremes.len(), options.neuron_block) {
        let scores = left.narrow(0, row_start, rows)?.matmul(right)?;
        let lists = &mut extremes[row_start..row_start + rows];
        with_host_values(&scores, |values| scan_signed_rows(values, width, column_start as u64, lists))?;
        progress((rows * width) as u64);
    }
    Ok(())
}

fn host_vector(tensor: &Tensor) -> Result<Vec<f32>, ModelError> {
    Ok(tensor.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
}

impl Extremes {
    /// The lists as token effects, `offset` added to every value (an input token's bias).
    fn into_token_effects(self, offset: f32) -> TokenEffects {
        // Ids are token ids below d_vocab, checked to fit u32 by `check_ids_fit`.
        let effect = |entry: &Entry| TokenEffect { token: entry.id as u32, value: entry.value + offset };
        TokenEffects {
            top: self.top.entries.iter().map(effect).collect(),
            bottom: self.bottom.entries.iter().map(effect).collect(),
        }
    }
}
