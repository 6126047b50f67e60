//! Generation: the forward pass run a few positions at a time after a cache of the keys and values
//! of every earlier position ([`KvCache`], [`Transformer::extend`]), logits of only the rows and
//! tokens asked for, and a decoding loop ([`generate`]) with greedy or seeded sampling.
//!
//! [`Transformer::run`] runs a whole sequence; rerunning it for every new token costs the whole
//! prompt again each time (SmolLM2, 1,000-token prompt: seconds per token). With the cache a new
//! token costs one row through the weights plus its attention over the cached keys. The blocks'
//! arithmetic is [`Transformer::forward_blocks`], shared with `run`, so the two cannot drift apart;
//! only attention differs.

use candle_core::{DType, Tensor};

use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::model::{Attention, BlockPass, PassEnd, Transformer};
use crate::ops;

/// Keys and values of every layer for the positions run so far. Clone to share a prefix.
///
/// Held in host memory on every device: generation here serves checks and explanations on the CPU,
/// and a host cache lets a clone be a plain copy.
#[derive(Clone)]
pub struct KvCache {
    /// Positions run so far.
    len: usize,
    /// The shape the cache was made for, so another model's cache is refused, not misread.
    n_kv_heads: usize,
    d_head: usize,
    /// Per layer, then per key/value head (`layer · n_kv_heads + head`): [len, d_head], rotary
    /// already applied to the keys.
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
}

/// The shape only: a derived `Debug` would print every cached float (SmolLM2 at 1,000 positions:
/// 11 million).
impl std::fmt::Debug for KvCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KvCache")
            .field("len", &self.len)
            .field("layers", &(self.keys.len() / self.n_kv_heads.max(1)))
            .field("n_kv_heads", &self.n_kv_heads)
            .field("d_head", &self.d_head)
            .finish()
    }
}

impl KvCache {
    /// Positions run so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position has been run yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops what a failed extension appended, so the cache still describes `len` positions.
    fn truncate(&mut self, len: usize) {
        let floats = len * self.d_head;
        self.keys.iter_mut().chain(self.values.iter_mut()).for_each(|head| head.truncate(floats));
        self.len = len;
    }
}

impl Transformer {
    /// An empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        let ModelConfig { n_layers, n_kv_heads, d_head, .. } = *self.config();
        KvCache {
            len: 0,
            n_kv_heads,
            d_head,
            keys: vec![Vec::new(); n_layers * n_kv_heads],
            values: vec![Vec::new(); n_layers * n_kv_heads],
        }
    }

    /// Runs `ids` after the cached positions (appending their keys and values) through all layers and
    /// returns the final-normalised hidden states, [ids.len(), d_model]. Errors (never panics) when the
    /// total would pass n_ctx, ids are out of vocabulary, or ids is empty.
    pub fn extend(&self, cache: &mut KvCache, ids: &[u32]) -> Result<Tensor, ModelError> {
        self.check_extension(cache, ids)?;
        let first_position = cache.len;
        let input = Tensor::from_slice(ids, ids.len(), self.device())?;
        let residual = self.embed(&input, 1, ids.len(), first_position)?;
        let mut pass = CachedPass { model: self, cache, first_position, rows: ids.len() };
        match self.forward_blocks(residual, PassEnd::FinalNorm, &mut pass) {
            Ok(Some(hidden)) => {
                cache.len = first_position + ids.len();
                Ok(hidden)
            }
            Ok(None) => unreachable!("a pass to the final norm returns its rows"),
            Err(err) => {
                cache.truncate(first_position);
                Err(err)
            }
        }
    }

    /// Next-token logits [rows, d_vocab] of final hidden rows (with the unembedding bias if any).
    pub fn logits_of(&self, hidden: &Tensor) -> Result<Tensor, ModelError> {
        self.check_hidden(hidden)?;
        let logits = hidden.matmul(self.unembedding())?;
        Ok(match self.unembedding_bias() {
            Some(bias) => logits.broadcast_add(bias)?,
            None => logits,
        })
    }

    /// Logits of only `tokens`, [rows, tokens.len()] — the same values as the matching columns of logits_of, without the full vocabulary product.
    pub fn token_logits(&self, hidden: &Tensor, tokens: &[u32]) -> Result<Tensor, ModelError> {
        let rows = self.check_hidden(hidden)?;
        self.check_ids(tokens)?;
        if tokens.is_empty() {
            return Ok(Tensor::zeros((rows, 0), DType::F32, self.device())?);
        }
        let ids = Tensor::from_slice(tokens, tokens.len(), self.device())?;
        let logits = hidden.matmul(&self.unembedding().index_select(&ids, 1)?)?;
        Ok(match self.unembedding_bias() {
            Some(bias) => logits.broadcast_add(&bias.index_select(&ids, 0)?)?,
            None => logits,
        })
    }

    /// Everything [`Transformer::extend`] refuses, checked before any work so a refused call
    /// leaves the cache as it was.
    fn check_extension(&self, cache: &KvCache, ids: &[u32]) -> Result<(), ModelError> {
        let config = self.config();
        if cache.keys.len() != config.n_layers * config.n_kv_heads
            || cache.n_kv_heads != config.n_kv_heads
            || cache.d_head != config.d_head
        {
            return Err(ModelError::Input("the cache was made for a model of another shape".to_owned()));
        }
        if ids.is_empty() {
            return Err(ModelError::Input("no token ids to run".to_owned()));
        }
        let total = cache.len + ids.len();
        if total > config.n_ctx {
            return Err(ModelError::Input(format!(
                "{} cached and {} new positions exceed the model's context of {}",
                cache.len,
                ids.len(),
                config.n_ctx
            )));
        }
        self.check_ids(ids)
    }

    fn check_ids(&self, ids: &[u32]) -> Result<(), ModelError> {
        let d_vocab = self.config().d_vocab;
        match ids.iter().find(|&&id| id as usize >= d_vocab) {
            Some(id) => Err(ModelError::Input(format!("token id {id} is outside the vocabulary of {d_vocab}"))),
            None => Ok(()),
        }
    }

    /// The number of rows of `hidden`, which must be [rows, d_model].
    fn check_hidden(&self, hidden: &Tensor) -> Result<usize, ModelError> {
        let d_model = self.config().d_model;
        match hidden.dims2() {
            Ok((rows, width)) if width == d_model => Ok(rows),
            _ => Err(ModelError::Input(format!("hidden states must be [rows, {d_model}], got {:?}", hidden.dims()))),
        }
    }
}

/// [`Transformer::extend`]'s pass: each layer's new keys and values appended to the cache, then
/// the new rows' attention over everything cached.
struct CachedPass<'a> {
    model: &'a Transformer,
    cache: &'a mut KvCache,
    first_position: usize,
    rows: usize,
}

impl BlockPass for CachedPass<'_> {
    fn attend(
        &mut self,
        layer: usize,
        attention: &Attention,
        x: &Tensor,
    ) -> Result<(Tensor, Option<Tensor>), ModelError> {
        let model = self.model;
        let layout = model.head_layout(1, self.rows);
        let ops::HeadLayout { n_heads, n_kv_heads, d_head, .. } = layout;
        let heads = model.split_heads(attention, x, layout, self.first_position)?;
        // One copy of the new rows' heads: small next to the projections that made them.
        let host: Vec<f32> = heads.flatten_all()?.to_vec1()?;
        let head_floats = self.rows * d_head;
        let slots = layer * n_kv_heads..(layer + 1) * n_kv_heads;
        for (kv_head, slot) in slots.clone().enumerate() {
            self.cache.keys[slot].extend_from_slice(&host[(n_heads + kv_head) * head_floats..][..head_floats]);
            let values = &host[(n_heads + n_kv_heads + kv_head) * head_floats..][..head_floats];
            self.cache.values[slot].extend_from_slice(values);
        }
        let width = n_heads * d_head;
        let mixed = match self.first_position {
            // Nothing cached before: one square causal block, which the tiled kernel (and `run`)
            // computes fastest; a 1,000-token prompt is this case.
            0 => ops::causal_attention(&heads, layout, model.attention_scale())?.reshape((self.rows, width))?,
            first_position => {
                let cached: Vec<ops::CachedHead<'_>> = slots
                    .map(|slot| ops::CachedHead { keys: &self.cache.keys[slot], values: &self.cache.values[slot] })
                    .collect();
                let shape = ops::CachedLayout { n_heads, n_kv_heads, d_head, rows: self.rows, first_position };
                let mixed = ops::cached_attention(
                    &host[..n_heads * head_floats],
                    &cached,
                    shape,
                    model.attention_scale() as f32,
                )?;
                Tensor::from_vec(mixed, (self.rows, width), model.device())?
            }
        };
        Ok((attention.output.forward_without_bias(&mixed)?, attention.output.bias.clone()))
    }
}

/// How the next token is chosen from the logits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// The most likely token (the lowest id among equals).
    Greedy,
    /// Drawn from softmax(logits / `temperature`) restricted to the most likely tokens whose
    /// probabilities sum to at least `top_p` (nucleus sampling), the same draws for the same seed.
    Temperature {
        /// Seeds the draws.
        seed: u64,
        /// Above 0; below 1 sharpens the distribution, above 1 flattens it.
        temperature: f32,
        /// In (0, 1]; 1 keeps every token.
        top_p: f32,
    },
}

/// What [`generate`] produces and when it stops.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationConfig {
    /// The most tokens to add.
    pub max_new_tokens: usize,
    /// Tokens that end the generation (not included in the result).
    pub stop_tokens: Vec<u32>,
    /// How each token is chosen.
    pub sampling: Sampling,
}

/// Why [`generate`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model chose one of the stop tokens.
    StopToken,
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The prompt and the new tokens fill the model's context.
    ContextFull,
}

/// What [`generate`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// The new tokens, the stop token excluded.
    pub tokens: Vec<u32>,
    /// Why generation stopped.
    pub stop: StopReason,
}

/// Continues `prompt` one token at a time over a [`KvCache`] until a stop token, `max_new_tokens`
/// or the end of the model's context; prompt and new tokens together never pass n_ctx.
pub fn generate(model: &Transformer, prompt: &[u32], config: &GenerationConfig) -> Result<Generated, ModelError> {
    let mut chooser = TokenChooser::new(config.sampling)?;
    let mut cache = model.new_cache();
    model.check_extension(&cache, prompt)?;
    let mut tokens = Vec::new();
    if config.max_new_tokens == 0 {
        return Ok(Generated { tokens, stop: StopReason::MaxTokens });
    }
    let hidden = model.extend(&mut cache, prompt)?;
    let mut last = hidden.narrow(0, prompt.len() - 1, 1)?;
    loop {
        if tokens.len() >= config.max_new_tokens {
            return Ok(Generated { tokens, stop: StopReason::MaxTokens });
        }
        if cache.len() >= model.config().n_ctx {
            return Ok(Generated { tokens, stop: StopReason::ContextFull });
        }
        let logits: Vec<f32> = model.logits_of(&last)?.flatten_all()?.to_vec1()?;
        let token = chooser.choose(&logits);
        if config.stop_tokens.contains(&token) {
            return Ok(Generated { tokens, stop: StopReason::StopToken });
        }
        tokens.push(token);
        // The last token's own pass would only serve a token nobody asked for.
        if tokens.len() < config.max_new_tokens {
            last = model.extend(&mut cache, &[token])?;
        }
    }
}

/// Greedy decoding: appends the most likely next token `max_new_tokens` times, or until the
/// context is full (no stop tokens).
pub fn greedy_continuation(model: &Transformer, prompt: &[u32], max_new_tokens: usize) -> Result<Vec<u32>, ModelError> {
    let config = GenerationConfig { max_new_tokens, stop_tokens: Vec::new(), sampling: Sampling::Greedy };
    Ok(generate(model, prompt, &config)?.tokens)
}

/// [`Sampling`] validated, with its random stream.
struct TokenChooser {
    sampling: Sampling,
    random: SplitMix64,
}

impl TokenChooser {
    fn new(sampling: Sampling) -> Result<Self, ModelError> {
        let seed = match sampling {
            Sampling::Greedy => 0,
            Sampling::Temperature { seed, temperature, top_p } => {
                if !(temperature.is_finite() && temperature > 0.0) {
                    return Err(ModelError::Input(format!("temperature must be above 0, got {temperature}")));
                }
                if !(top_p > 0.0 && top_p <= 1.0) {
                    return Err(ModelError::Input(format!("top_p must be in (0, 1], got {top_p}")));
                }
                seed
            }
        };
        Ok(Self { sampling, random: SplitMix64(seed) })
    }

    fn choose(&mut self, logits: &[f32]) -> u32 {
        match self.sampling {
            Sampling::Greedy => argmax(logits),
            Sampling::Temperature { temperature, top_p, .. } => {
                sample(logits, temperature, top_p, self.random.next_unit())
            }
        }
    }
}

/// The index of the largest logit, the first among equals (NaN never wins).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (index, &logit) in logits.iter().enumerate() {
        if logit > logits[best] {
            best = index;
        }
    }
    best as u32
}

/// The token at `draw` ∈ [0, 1) of the cumulative nucleus distribution.
fn sample(logits: &[f32], temperature: f32, top_p: f32, draw: f64) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut weights: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(index, &logit)| (index as u32, (((logit - max) / temperature) as f64).exp()))
        .filter(|(_, weight)| *weight > 0.0)
        .collect();
    if weights.is_empty() {
        return argmax(logits);
    }
    let total: f64 = weights.iter().map(|(_, weight)| weight).sum();
    if top_p < 1.0 {
        // Most likely first, ties by id, so the nucleus is the same on every run.
        weights.sort_unstable_by(|left, right| right.1.total_cmp(&left.1).then(left.0.cmp(&right.0)));
        let target = top_p as f64 * total;
        let mut kept = 0.0;
        let cut = weights
            .iter()
            .position(|(_, weight)| {
                kept += weight;
                kept >= target
            })
            .map_or(weights.len(), |last| last + 1);
        weights.truncate(cut);
    }
    let kept_total: f64 = weights.iter().map(|(_, weight)| weight).sum();
    let mut remaining = draw * kept_total;
    for &(token, weight) in &weights {
        if remaining < weight {
            return token;
        }
        remaining -= weight;
    }
    // Rounding can leave a sliver past the last weight.
    weights.last().map_or(0, |&(token, _)| token)
}

/// SplitMix64 (Steele, Lea and Flood 2014): ours rather than `rand`'s, whose streams may change
/// between versions, so a seed gives the same text on every build.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_stream() {
        // The first outputs for seed 1234567 of the reference C implementation (Vigna).
        let mut random = SplitMix64(1234567);
        assert_eq!(random.next_u64(), 6457827717110365317);
        assert_eq!(random.next_u64(), 3203168211198807973);
    }

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[0.5, 2.0, 2.0, -1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 1.0]), 0);
    }

    #[test]
    fn nucleus_keeps_only_the_most_likely_tokens() {
        // Probabilities about 0.64, 0.24, 0.09, 0.03: top_p 0.5 keeps token 0 alone, whatever the draw.
        let logits = [3.0, 2.0, 1.0, 0.0];
        for draw in [0.0, 0.5, 0.999] {
            assert_eq!(sample(&logits, 1.0, 0.5, draw), 0);
        }
        // With every token kept, draws walk the cumulative distribution in id order.
        assert_eq!(sample(&logits, 1.0, 1.0, 0.0), 0);
        assert_eq!(sample(&logits, 1.0, 1.0, 0.7), 1);
        assert_eq!(sample(&logits, 1.0, 1.0, 0.999), 3);
        // A tiny temperature is nearly greedy.
        assert_eq!(sample(&logits, 0.01, 1.0, 0.999), 0);
    }

    #[test]
    fn sampling_settings_are_validated() {
        for (temperature, top_p) in [(0.0, 1.0), (f32::NAN, 1.0), (1.0, 0.0), (1.0, 1.5), (-1.0, 0.9)] {
            let sampling = Sampling::Temperature { seed: 1, temperature, top_p };
            assert!(TokenChooser::new(sampling).is_err(), "{temperature}, {top_p}");
        }
        assert!(TokenChooser::new(Sampling::Temperature { seed: 1, temperature: 0.7, top_p: 0.9 }).is_ok());
    }
}
