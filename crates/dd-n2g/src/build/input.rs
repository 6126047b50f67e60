//! What a graph is built from and how: a neuron's recorded examples, the settings, and the text of
//! every token.

use dd_data::Example;

use crate::lines::LineConfig;

/// What a neuron's graph is built from: its recorded examples.
#[derive(Clone, Debug)]
pub struct NeuronInput {
    /// The neuron's layer.
    pub layer: u32,
    /// The neuron's index in its layer.
    pub neuron: u32,
    /// Its top-activating contexts, highest first: whole recorded contexts, BOS first.
    pub top: Vec<Example>,
    /// Uniform random contexts of the recording, for scoring on ordinary text.
    pub random: Vec<Example>,
    /// The activation that normalised activations divide by: the neuron's recorded maximum (BOS
    /// excluded), the original's `a_max`.
    pub scale: f32,
}

/// How a prompt is cut down to the context the neuron needs (spec §2, the original's code).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PruneConfig {
    /// Longest left context tried, in tokens, counting the activating token.
    pub max_prefix: usize,
    /// Prefix lengths tried: multiples of this, plus the whole prefix when shorter than `max_prefix`.
    pub step: usize,
    /// A pruned prompt must keep more than this share of the activation, with its maximum still on
    /// the activating token.
    pub keep_ratio: f32,
    /// Tokens after the activating one kept (within its sentence): later activating tokens add patterns.
    pub post_context: usize,
}

impl Default for PruneConfig {
    fn default() -> Self {
        Self { max_prefix: 30, step: 5, keep_ratio: 0.5, post_context: 5 }
    }
}

/// How prompts are varied to generalise patterns (spec §4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AugmentConfig {
    /// Replacements tried per important token (the original's 5).
    pub substitutes: usize,
    /// Tokens at least this important for the activating token are replaced (the original's 0.8).
    pub importance_threshold: f32,
    /// Whether a variant that still fires gets its own occlusion pass, as in the original, or
    /// keeps its original prompt's importances. A variant differs from its original in one token
    /// that was important already, and its patterns inherit the original's important positions
    /// anyway; measuring it again costs a pass of (length)² tokens per variant, most of a graph's
    /// cost (`docs/neuron2graph.md` has the numbers), for patterns that barely differ.
    pub remeasure_variants: bool,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self { substitutes: 5, importance_threshold: 0.8, remeasure_variants: false }
    }
}

/// Everything that decides how a graph is built.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildConfig {
    /// Top examples used for training: every other one from the top (ranks 0, 2, 4, …) up to this
    /// many; the others are held out for scoring.
    pub train_examples: usize,
    /// Pruning.
    pub prune: PruneConfig,
    /// Pattern extraction thresholds; `activation_threshold` is also the firing threshold of scores.
    pub lines: LineConfig,
    /// Augmentation.
    pub augment: AugmentConfig,
    /// The token written over a token to measure its importance. The original used id 1, the
    /// padding token of its models' tokenizer; in GPT-2's vocabulary id 1 is `"`, so it is chosen
    /// per model (`MaskChoice`).
    pub mask_token: u32,
    /// Tokens left out of patterns (BOS, EOS): every context starts with one, so it says nothing.
    pub skip_tokens: Vec<u32>,
}

impl BuildConfig {
    /// The original's settings with the given mask and skipped tokens.
    pub fn standard(mask_token: u32, skip_tokens: Vec<u32>) -> Self {
        Self {
            train_examples: 10,
            prune: PruneConfig::default(),
            lines: LineConfig::default(),
            augment: AugmentConfig::default(),
            mask_token,
            skip_tokens,
        }
    }

    /// Whether patterns leave this token out.
    pub fn skips(&self, token: u32) -> bool {
        self.skip_tokens.contains(&token)
    }
}

/// The text of every token of a vocabulary, as decoded (` the`, `\n`), for graphs and sentence ends.
#[derive(Clone, Debug, Default)]
pub struct TokenTexts {
    texts: Vec<String>,
}

impl TokenTexts {
    /// From the decoded text of each token id, in id order.
    pub fn new(texts: Vec<String>) -> Self {
        Self { texts }
    }

    /// Every token of a tokenizer, decoded.
    pub fn from_tokenizer(tokenizer: &dd_model::Tokenizer) -> Self {
        Self::new((0..tokenizer.vocab_size() as u32).map(|id| tokenizer.decode(&[id])).collect())
    }

    /// A token's text; an unknown id reads as `<id>` rather than failing, since it is only shown.
    pub fn text(&self, token: u32) -> String {
        self.texts.get(token as usize).cloned().unwrap_or_else(|| format!("<{token}>"))
    }

    /// Whether a sentence ends with this token (its text holds `.`, `!`, `?` or a line break), which
    /// bounds the context kept after an activating token.
    pub fn ends_sentence(&self, token: u32) -> bool {
        self.texts.get(token as usize).is_some_and(|t| t.contains(['.', '!', '?', '\n']))
    }
}
