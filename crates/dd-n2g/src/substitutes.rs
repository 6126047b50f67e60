//! Augmentation without a masked language model: where the replacement tokens for an important
//! token come from (spec §4, "No MLM available?"). The original uses DistilBERT, which is not
//! available offline and works on words, not on the model's tokens; these work on token ids.
//!
//! # Which to use
//! - [`EmbeddingNeighbours`] (option c): the tokens whose rows of the model's embedding matrix are
//!   nearest by cosine. Cost: one matrix–vector product over the vocabulary per *distinct* token
//!   (SmolLM2-135M: 49,152 × 576, about 28 M multiply-adds), cached, so a layer's worth of neurons
//!   augments the same frequent tokens almost for free. It ignores the context: the neighbours of
//!   " bank" are the same in "river bank" and "bank account". What it offers is what N2G wants to
//!   learn from, tokens the model already treats alike (spelling and number variants, words of one
//!   category), and it is the generalisation the paper's future work suggests.
//! - [`NextTokenPredictions`] (option b): the model's own most likely tokens at `position`, given
//!   the tokens before it. Context-aware, but from the left context only (the masked LM also saw
//!   the right), and each call is a full forward pass with logits (every layer plus the
//!   unembedding, which on SmolLM2 is 28 M multiply-adds per position on its own): for a 20-token
//!   prompt, hundreds of times the embedding neighbours' cost.
//! - [`NoSubstitutes`] (option a): no augmentation, as the original does when `n = 0`.
//!
//! The default choice is [`EmbeddingNeighbours`]: cheap enough to run for every neuron of a model.
//!
//! # Which tokens may replace a token
//! Never the token itself, never a special token (BOS, control tokens), never a token without text
//! or outside either the model's or the tokenizer's vocabulary. With [`ShapeRule::SameShape`] (the
//! default) also only a token of the same [`TokenShape`]: leading space or not, and the kind of its
//! first character (capitalised, lower case, digit, other). A substitute should be the same kind of
//! token, so that the prompt still reads as text: " Paris" is replaced by " London", not by
//! "London" (which would glue onto the previous word), " paris" or "ing".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::Tensor;
use dd_model::{RunRequest, Tokenizer, Transformer};

use crate::error::N2gError;

/// Replacement tokens for augmentation: plausible alternatives for one token of a prompt.
pub trait Substitutes: Sync {
    /// Up to `n` replacements for `tokens[position]`, most plausible first, never the original token nor a special token.
    fn substitutes(&self, tokens: &[u32], position: usize, n: usize) -> Result<Vec<u32>, N2gError>;
}

/// Which tokens may replace a token, beyond the exclusions every source applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShapeRule {
    /// Only tokens of the same [`TokenShape`].
    #[default]
    SameShape,
    /// Any token.
    AnyShape,
}

/// The kind of a token's first character after its leading spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CharacterKind {
    /// An upper-case letter ("Paris").
    Capitalised,
    /// A lower-case letter ("paris").
    LowerCase,
    /// A decimal digit ("1990").
    Digit,
    /// Anything else: punctuation, symbols, whitespace, letters without case, part of a character.
    Other,
}

/// What kind of token a token is, for [`ShapeRule::SameShape`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenShape {
    /// The token starts with a space (a new word in GPT-2-style tokenizers).
    pub leading_space: bool,
    /// The kind of its first character after the leading spaces.
    pub first: CharacterKind,
}

impl TokenShape {
    /// The shape of a token with these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        let leading_space = bytes.first() == Some(&b' ');
        let rest = bytes.iter().position(|&byte| byte != b' ').map_or(&[][..], |start| &bytes[start..]);
        // Only a complete first character has a kind; a token may hold half of one.
        let first = match rest.utf8_chunks().next().and_then(|chunk| chunk.valid().chars().next()) {
            Some(character) if character.is_uppercase() => CharacterKind::Capitalised,
            Some(character) if character.is_lowercase() => CharacterKind::LowerCase,
            Some(character) if character.is_ascii_digit() => CharacterKind::Digit,
            _ => CharacterKind::Other,
        };
        Self { leading_space, first }
    }
}

/// Which ids may stand in for which: every token's shape, or `None` for a token that may never be
/// a substitute.
#[derive(Clone, Debug)]
struct Candidates {
    shapes: Vec<Option<TokenShape>>,
    rule: ShapeRule,
}

impl Candidates {
    fn new(tokenizer: &Tokenizer, d_vocab: usize, rule: ShapeRule) -> Self {
        let shapes = (0..d_vocab.min(tokenizer.vocab_size()) as u32)
            .map(|id| match (tokenizer.is_special(id), tokenizer.token_bytes(id)) {
                (false, Some(bytes)) if !bytes.is_empty() => Some(TokenShape::of(bytes)),
                _ => None,
            })
            .collect();
        Self { shapes, rule }
    }

    fn shape(&self, id: u32) -> Option<TokenShape> {
        self.shapes.get(id as usize).copied().flatten()
    }

    /// Whether `candidate` may replace `original` (whose shape is `shape`).
    fn allows(&self, original: u32, shape: TokenShape, candidate: u32) -> bool {
        candidate != original
            && match (self.shape(candidate), self.rule) {
                (None, _) => false,
                (Some(_), ShapeRule::AnyShape) => true,
                (Some(candidate_shape), ShapeRule::SameShape) => candidate_shape == shape,
            }
    }

    /// The `n` allowed ids with the highest scores (`scores[id]`), highest first, ties by id.
    fn best(&self, original: u32, scores: &[f32], n: usize) -> Vec<u32> {
        let Some(shape) = self.shape(original) else { return Vec::new() };
        let mut ranked: Vec<(f32, u32)> = scores
            .iter()
            .enumerate()
            .map(|(id, &score)| (score, id as u32))
            .filter(|&(score, id)| !score.is_nan() && self.allows(original, shape, id))
            .collect();
        let order = |x: &(f32, u32), y: &(f32, u32)| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1));
        if ranked.len() > n {
            ranked.select_nth_unstable_by(n, order);
            ranked.truncate(n);
        }
        ranked.sort_unstable_by(order);
        ranked.into_iter().map(|(_, id)| id).collect()
    }
}

/// Refuses a position outside the prompt or a token outside the vocabulary.
fn check_prompt(tokens: &[u32], position: usize, d_vocab: usize) -> Result<(), N2gError> {
    if position >= tokens.len() {
        return Err(N2gError::Invalid(format!("position {position} is outside a prompt of {} tokens", tokens.len())));
    }
    if let Some(&token) = tokens.iter().find(|&&token| token as usize >= d_vocab) {
        return Err(N2gError::Invalid(format!("token {token} is outside the vocabulary of {d_vocab}")));
    }
    Ok(())
}

/// Nearest neighbours of the token's row of the embedding matrix by cosine (spec §4 option c), computed on demand and cached per token.
///
/// The cache holds, per distinct token asked about, the longest list computed so far (at most the
/// vocabulary's size of entries, each `n` ids).
pub struct EmbeddingNeighbours {
    /// [d_vocab, d_model], on the model's device (a handle to the model's own tensor, not a copy).
    embedding: Tensor,
    norms: Vec<f32>,
    candidates: Candidates,
    cache: Mutex<HashMap<u32, CachedNeighbours>>,
}

/// A token's neighbours, best first, as far as they were computed.
#[derive(Clone, Debug)]
struct CachedNeighbours {
    ids: Arc<[u32]>,
    /// Every allowed token is in `ids` (fewer than asked for were found).
    complete: bool,
}

impl std::fmt::Debug for EmbeddingNeighbours {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("EmbeddingNeighbours").field("rule", &self.candidates.rule).finish_non_exhaustive()
    }
}

impl EmbeddingNeighbours {
    /// Neighbours in `model`'s token embedding, restricted by `rule`, with `tokenizer` naming the
    /// special tokens and every token's text.
    pub fn new(model: &Transformer, tokenizer: &Tokenizer, rule: ShapeRule) -> Result<Self, N2gError> {
        let embedding = model.token_embedding().clone();
        let norms = embedding.sqr()?.sum(1)?.sqrt()?.to_vec1::<f32>()?;
        let candidates = Candidates::new(tokenizer, model.config().d_vocab, rule);
        Ok(Self { embedding, norms, candidates, cache: Mutex::new(HashMap::new()) })
    }

    /// The cosine between `token`'s embedding and every token's (0 where either row is zero).
    fn cosines(&self, token: u32) -> Result<Vec<f32>, N2gError> {
        let row = self.embedding.get(token as usize)?.unsqueeze(1)?;
        let dots = self.embedding.matmul(&row)?.squeeze(1)?.to_vec1::<f32>()?;
        let own = self.norms[token as usize];
        Ok(dots
            .iter()
            .zip(&self.norms)
            .map(|(&dot, &norm)| if own > 0.0 && norm > 0.0 { dot / (own * norm) } else { 0.0 })
            .collect())
    }
}

impl Substitutes for EmbeddingNeighbours {
    fn substitutes(&self, tokens: &[u32], position: usize, n: usize) -> Result<Vec<u32>, N2gError> {
        check_prompt(tokens, position, self.norms.len())?;
        let token = tokens[position];
        let cached = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&token).cloned();
        if let Some(cached) = cached.filter(|cached| cached.complete || cached.ids.len() >= n) {
            return Ok(cached.ids.iter().take(n).copied().collect());
        }
        let ids = self.candidates.best(token, &self.cosines(token)?, n);
        let computed = CachedNeighbours { complete: ids.len() < n, ids: ids.as_slice().into() };
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = cache.entry(token).or_insert_with(|| computed.clone());
        if kept.ids.len() < computed.ids.len() || computed.complete {
            *kept = computed;
        }
        Ok(ids)
    }
}

/// The model's own top next-token predictions at `position − 1` given `tokens[..position]` (spec §4 option b): left context only, one forward pass with logits per call.
///
/// Position 0 has no left context and gets no substitutes.
pub struct NextTokenPredictions {
    model: Arc<Transformer>,
    candidates: Candidates,
}

impl std::fmt::Debug for NextTokenPredictions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("NextTokenPredictions").field("rule", &self.candidates.rule).finish_non_exhaustive()
    }
}

impl NextTokenPredictions {
    /// Predictions of `model`, restricted by `rule`, with `tokenizer` naming the special tokens and
    /// every token's text.
    pub fn new(model: Arc<Transformer>, tokenizer: &Tokenizer, rule: ShapeRule) -> Self {
        let candidates = Candidates::new(tokenizer, model.config().d_vocab, rule);
        Self { model, candidates }
    }
}

impl Substitutes for NextTokenPredictions {
    fn substitutes(&self, tokens: &[u32], position: usize, n: usize) -> Result<Vec<u32>, N2gError> {
        let config = self.model.config();
        check_prompt(tokens, position, config.d_vocab)?;
        if position > config.n_ctx {
            return Err(N2gError::Invalid(format!(
                "a left context of {position} tokens exceeds the model's context of {}",
                config.n_ctx
            )));
        }
        if position == 0 || n == 0 {
            return Ok(Vec::new());
        }
        let input = Tensor::from_slice(&tokens[..position], (1, position), self.model.device())?;
        let output = self.model.run(&input, &RunRequest::logits_only())?;
        let logits = output.logits.ok_or_else(|| N2gError::Invalid("the model returned no logits".to_owned()))?;
        let last = logits.squeeze(0)?.get(position - 1)?.to_vec1::<f32>()?;
        Ok(self.candidates.best(tokens[position], &last, n))
    }
}

/// No augmentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSubstitutes;

impl Substitutes for NoSubstitutes {
    fn substitutes(&self, tokens: &[u32], position: usize, _n: usize) -> Result<Vec<u32>, N2gError> {
        if position >= tokens.len() {
            return Err(N2gError::Invalid(format!(
                "position {position} is outside a prompt of {} tokens",
                tokens.len()
            )));
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use candle_core::Device;

    use super::*;
    use crate::fixture::write_pattern_model;

    /// dd-model's committed fixture `name`.
    fn fixture_path(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dd-model/tests/fixtures").join(name)
    }

    /// A downloaded test asset, found and required the way dd-model's tests do
    /// (`scripts/fetch-test-assets.sh` puts them in `$DD_TEST_ASSETS`, by default
    /// `/var/tmp/deepdecipher-assets`).
    fn asset(name: &str) -> PathBuf {
        let directory = std::env::var_os("DD_TEST_ASSETS")
            .map_or_else(|| PathBuf::from("/var/tmp/deepdecipher-assets"), PathBuf::from);
        let path = directory.join(name);
        assert!(path.is_file(), "test asset {} is missing: run scripts/fetch-test-assets.sh", path.display());
        path
    }

    /// A model and its tokenizer through dd-model's loader.
    fn load(path: &std::path::Path) -> (Arc<Transformer>, Tokenizer) {
        let files = dd_model::locate(path).expect("locate");
        let tokenizer = dd_model::load_tokenizer(files.tokenizer.as_ref().expect("a tokenizer")).expect("tokenizer");
        let model = dd_model::load_located(&files, &Device::Cpu).expect("model");
        (Arc::new(model), tokenizer)
    }

    /// SmolLM2-135M, loaded once for every test that needs it.
    fn smollm2() -> &'static (Arc<Transformer>, Tokenizer) {
        static MODEL: OnceLock<(Arc<Transformer>, Tokenizer)> = OnceLock::new();
        MODEL.get_or_init(|| load(&asset("SmolLM2-135M-Instruct.Q4_1.gguf")))
    }

    /// Whether `candidate` may replace `original`, decided from the tokenizer alone.
    fn eligible(tokenizer: &Tokenizer, d_vocab: usize, rule: ShapeRule, original: u32, candidate: u32) -> bool {
        let bytes = |id: u32| tokenizer.token_bytes(id).filter(|bytes| !bytes.is_empty());
        let usable = |id: u32| (id as usize) < d_vocab && !tokenizer.is_special(id) && bytes(id).is_some();
        usable(original)
            && usable(candidate)
            && candidate != original
            && (rule == ShapeRule::AnyShape
                || TokenShape::of(bytes(original).unwrap_or_default())
                    == TokenShape::of(bytes(candidate).unwrap_or_default()))
    }

    /// `scores` (f64) of the eligible tokens, best first: the brute-force ranking.
    fn brute_force_ranking(
        tokenizer: &Tokenizer,
        d_vocab: usize,
        rule: ShapeRule,
        original: u32,
        scores: &[f64],
    ) -> Vec<(f64, u32)> {
        let mut ranked: Vec<(f64, u32)> = (0..d_vocab as u32)
            .filter(|&id| eligible(tokenizer, d_vocab, rule, original, id))
            .map(|id| (scores[id as usize], id))
            .collect();
        ranked.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        ranked
    }

    /// `returned` is the top of `ranking`: same length, each score equal to the reference's at its
    /// rank within `tolerance` (near-ties may swap), every id eligible and none repeated.
    fn assert_matches_ranking(returned: &[u32], ranking: &[(f64, u32)], n: usize, scores: &[f64], tolerance: f64) {
        let expected = &ranking[..n.min(ranking.len())];
        assert_eq!(returned.len(), expected.len(), "{returned:?} vs {expected:?}");
        let mut seen = std::collections::HashSet::new();
        for (&id, &(score, expected_id)) in returned.iter().zip(expected) {
            assert!(seen.insert(id), "{id} repeated in {returned:?}");
            assert!(ranking.iter().any(|&(_, allowed)| allowed == id), "{id} is not eligible");
            let difference = (scores[id as usize] - score).abs();
            assert!(
                difference <= tolerance,
                "{id} (score {}) where {expected_id} ({score}) ranks",
                scores[id as usize]
            );
        }
    }

    /// Cosines of `token`'s embedding row with every row, in f64 from the raw matrix
    /// (`matrix`, [d_vocab, d_model] flattened).
    fn brute_force_cosines(matrix: &[f32], d_model: usize, token: u32) -> Vec<f64> {
        let row = |id: usize| &matrix[id * d_model..(id + 1) * d_model];
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>();
        let own = row(token as usize);
        let own_norm = dot(own, own).sqrt();
        (0..matrix.len() / d_model)
            .map(|id| {
                let other = row(id);
                let norm = dot(other, other).sqrt();
                if own_norm > 0.0 && norm > 0.0 { dot(own, other) / (own_norm * norm) } else { 0.0 }
            })
            .collect()
    }

    fn check_neighbours(model: &Transformer, tokenizer: &Tokenizer, tokens: &[u32], n: usize) {
        let d_vocab = model.config().d_vocab;
        let matrix: Vec<f32> = model.token_embedding().flatten_all().expect("flat").to_vec1().expect("values");
        let cosines: Vec<Vec<f64>> =
            tokens.iter().map(|&token| brute_force_cosines(&matrix, model.config().d_model, token)).collect();
        for rule in [ShapeRule::SameShape, ShapeRule::AnyShape] {
            let neighbours = EmbeddingNeighbours::new(model, tokenizer, rule).expect("neighbours");
            for (position, &token) in tokens.iter().enumerate() {
                let returned = neighbours.substitutes(tokens, position, n).expect("substitutes");
                let ranking = brute_force_ranking(tokenizer, d_vocab, rule, token, &cosines[position]);
                assert_matches_ranking(&returned, &ranking, n, &cosines[position], 1e-5);
                // From the cache: the same list, and a prefix of it for fewer.
                assert_eq!(neighbours.substitutes(tokens, position, n).expect("cached"), returned);
                let fewer = neighbours.substitutes(tokens, position, 2).expect("fewer");
                assert_eq!(fewer.as_slice(), &returned[..2.min(returned.len())]);
            }
        }
    }

    /// The reference logits: the whole prompt run once (by causality, position − 1's logits depend
    /// only on the tokens before `position`).
    fn reference_logits(model: &Transformer, tokens: &[u32]) -> Vec<Vec<f64>> {
        let input = Tensor::from_slice(tokens, (1, tokens.len()), &Device::Cpu).expect("ids");
        let output = model.run(&input, &RunRequest::logits_only()).expect("run");
        let logits = output.logits.expect("logits").squeeze(0).expect("squeeze").to_vec2::<f32>().expect("values");
        logits.into_iter().map(|row| row.into_iter().map(f64::from).collect()).collect()
    }

    fn check_predictions(
        model: &Arc<Transformer>,
        tokenizer: &Tokenizer,
        tokens: &[u32],
        positions: &[usize],
        n: usize,
    ) {
        let d_vocab = model.config().d_vocab;
        let logits = reference_logits(model, tokens);
        for rule in [ShapeRule::SameShape, ShapeRule::AnyShape] {
            let predictions = NextTokenPredictions::new(Arc::clone(model), tokenizer, rule);
            assert!(predictions.substitutes(tokens, 0, n).expect("position 0").is_empty());
            for &position in positions {
                let returned = predictions.substitutes(tokens, position, n).expect("predictions");
                let scores = &logits[position - 1];
                let ranking = brute_force_ranking(tokenizer, d_vocab, rule, tokens[position], scores);
                assert_matches_ranking(&returned, &ranking, n, scores, 1e-4);
            }
        }
    }

    #[test]
    /// Shapes: leading space, and the kind of the first character after it.
    fn token_shapes() {
        let shape = |bytes: &[u8]| TokenShape::of(bytes);
        let of = |leading_space, first| TokenShape { leading_space, first };
        assert_eq!(shape(b" Paris"), of(true, CharacterKind::Capitalised));
        assert_eq!(shape(b"paris"), of(false, CharacterKind::LowerCase));
        assert_eq!(shape(b" 1990"), of(true, CharacterKind::Digit));
        assert_eq!(shape(b"."), of(false, CharacterKind::Other));
        assert_eq!(shape(b"  "), of(true, CharacterKind::Other));
        assert_eq!(shape(" Élan".as_bytes()), of(true, CharacterKind::Capitalised));
        assert_eq!(shape(b"\xF0\x9F"), of(false, CharacterKind::Other), "half a character");
        assert_eq!(shape(b"\n"), of(false, CharacterKind::Other));
    }

    #[test]
    /// On the tiny GGUF Llama fixture (its own 320-token BPE): neighbours ordered as a brute-force
    /// f64 cosine ranking orders them, and next-token predictions as the logits of
    /// `Transformer::run` order them, under both shape rules.
    fn fixture_model_rankings_match_brute_force() {
        let (model, tokenizer) = load(&fixture_path("llama-gguf/model.gguf"));
        let tokens = tokenizer.encode("Hello world, the 12 quick brown foxes.").expect("encode");
        assert!(tokens.len() >= 6, "{tokens:?}");
        check_neighbours(&model, &tokenizer, &tokens, 8);
        let positions: Vec<usize> = (1..tokens.len()).collect();
        check_predictions(&model, &tokenizer, &tokens, &positions, 8);
    }

    #[test]
    /// No source ever offers the original token, a special token or an id outside the vocabulary,
    /// at any position of any token of the fixture's vocabulary.
    fn never_the_original_nor_a_special_token() {
        let (model, tokenizer) = load(&fixture_path("llama-gguf/model.gguf"));
        let d_vocab = model.config().d_vocab as u32;
        let bos = tokenizer.bos_token_id().expect("a BOS token");
        let tokens: Vec<u32> = std::iter::once(bos).chain(0..d_vocab).collect();
        let sources: Vec<Box<dyn Substitutes>> = vec![
            Box::new(EmbeddingNeighbours::new(&model, &tokenizer, ShapeRule::AnyShape).expect("neighbours")),
            Box::new(NextTokenPredictions::new(Arc::clone(&model), &tokenizer, ShapeRule::AnyShape)),
            Box::new(NoSubstitutes),
        ];
        for source in &sources {
            for position in (0..tokens.len()).step_by(7) {
                let window = &tokens[position.saturating_sub(20)..=position];
                let last = window.len() - 1;
                for id in source.substitutes(window, last, 30).expect("substitutes") {
                    assert_ne!(id, window[last]);
                    assert!(id < d_vocab && !tokenizer.is_special(id), "{id}");
                }
            }
            assert!(source.substitutes(&[bos], 0, 5).expect("BOS").is_empty(), "a special token has no substitutes");
        }
    }

    #[test]
    /// Out-of-range positions, tokens and contexts are `Invalid`, never a panic.
    fn bad_requests_are_invalid() {
        let (model, tokenizer) = load(&fixture_path("llama-gguf/model.gguf"));
        let config = model.config();
        let neighbours = EmbeddingNeighbours::new(&model, &tokenizer, ShapeRule::SameShape).expect("neighbours");
        let predictions = NextTokenPredictions::new(Arc::clone(&model), &tokenizer, ShapeRule::SameShape);
        let too_long = vec![5u32; config.n_ctx + 2];
        let outside = [5, config.d_vocab as u32];
        let invalid = |result: Result<Vec<u32>, N2gError>| matches!(result, Err(N2gError::Invalid(_)));
        for source in [&neighbours as &dyn Substitutes, &predictions] {
            assert!(invalid(source.substitutes(&[5, 6], 2, 3)));
            assert!(invalid(source.substitutes(&[], 0, 3)));
            assert!(invalid(source.substitutes(&outside, 0, 3)));
            assert!(invalid(source.substitutes(&outside, 1, 3)));
        }
        assert!(invalid(predictions.substitutes(&too_long, config.n_ctx + 1, 3)));
        assert!(invalid(NoSubstitutes.substitutes(&[5], 1, 3)));
    }

    #[test]
    /// On the pattern fixture every embedding row is orthogonal to the others, so all cosines tie
    /// at 0 and the neighbours of `a` are the other lower-case letters in id order.
    fn pattern_fixture_neighbours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pattern = write_pattern_model(dir.path()).expect("fixture");
        let (model, tokenizer) = load(dir.path());
        let same = EmbeddingNeighbours::new(&model, &tokenizer, ShapeRule::SameShape).expect("neighbours");
        let letters = same.substitutes(&[pattern.bos, pattern.a], 1, 100).expect("substitutes");
        let expected: Vec<u32> = (1..=26).filter(|&id| id != pattern.a).collect();
        assert_eq!(letters, expected);
        let any = EmbeddingNeighbours::new(&model, &tokenizer, ShapeRule::AnyShape).expect("neighbours");
        assert_eq!(any.substitutes(&[pattern.a], 0, 100).expect("substitutes").len(), pattern.vocab.len() - 2);
    }

    #[test]
    /// On SmolLM2-135M: both rankings match brute force, and what they offer for " Paris" is
    /// printed (the module docs' examples).
    fn smollm2_rankings_match_brute_force() {
        let (model, tokenizer) = smollm2();
        let tokens = tokenizer.encode("The capital of France is Paris, a city of 2 million").expect("encode");
        let paris = tokens.iter().position(|&id| tokenizer.display(id) == "·Paris").expect("a Paris token");
        let sample: Vec<u32> = tokens.iter().copied().step_by(3).collect();
        check_neighbours(model, tokenizer, &sample, 10);
        check_predictions(model, tokenizer, &tokens, &[1, paris, tokens.len() - 1], 10);
        let show = |ids: Vec<u32>| ids.iter().map(|&id| tokenizer.display(id)).collect::<Vec<_>>().join(" ");
        let neighbours = EmbeddingNeighbours::new(model, tokenizer, ShapeRule::SameShape).expect("neighbours");
        let predictions = NextTokenPredictions::new(Arc::clone(model), tokenizer, ShapeRule::SameShape);
        eprintln!("neighbours of Paris: {}", show(neighbours.substitutes(&tokens, paris, 10).expect("neighbours")));
        eprintln!("predictions for Paris: {}", show(predictions.substitutes(&tokens, paris, 10).expect("predictions")));
    }
}
