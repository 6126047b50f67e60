//! Where the graph builder gets a neuron's activations: [`ActivationSource`], and [`ModelProbe`],
//! which answers it with dd-model's forward pass.
//!
//! N2G asks for one neuron at a time, but always for a batch of short prompts (the pruning
//! candidates of an example, the L+1 masked copies of a prompt for importance, the augmented
//! prompts). The probe runs each batch once, stopping after the requested layer, and keeps every
//! neuron of that layer: the job builds the neurons of a layer in parallel over the same recorded
//! examples, so another neuron of the same layer on the same prompt is answered from the cache
//! without running the model. The activation itself is defined once, in `dd_model::model`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use candle_core::Tensor;
use dd_model::{Hook, RunRequest, Transformer};

use crate::error::N2gError;

/// Where a graph builder gets a neuron's activations: one layer's MLP neurons for a batch of token sequences.
pub trait ActivationSource: Sync {
    /// `result[s]` holds `sequences[s].len() × neurons.len()` values, position-major (`result[s][pos * neurons.len() + n]`).
    fn activations(&self, layer: usize, neurons: &[u32], sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, N2gError>;
    /// Number of layers and neurons per layer (for validation).
    fn shape(&self) -> (usize, usize);
}

/// Settings of a [`ModelProbe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Most token positions (padding included) in one forward pass; a longer sequence runs alone.
    pub max_batch_tokens: usize,
    /// Most bytes the cache of whole-layer rows may hold; 0 turns the cache off.
    pub cache_bytes: usize,
}

impl Default for ProbeConfig {
    /// 4,096 positions per forward pass and a 256 MiB cache: on SmolLM2-135M (1,536 neurons per
    /// layer) a 20-token prompt's row is 123 KB, so the cache holds about 2,000 prompts of a layer.
    fn default() -> Self {
        Self { max_batch_tokens: 4096, cache_bytes: 256 << 20 }
    }
}

/// What a [`ModelProbe`] has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCounters {
    /// Real tokens run through the model (padding not counted).
    pub tokens_run: u64,
    /// Padding positions run through the model.
    pub padding_run: u64,
    /// Tokens answered without running the model (from the cache, or a repeat within one call).
    pub tokens_cached: u64,
    /// Forward passes run.
    pub forward_passes: u64,
    /// Bytes the cache holds now.
    pub cache_bytes: usize,
}

/// dd-model's transformer as an activation source: sequences grouped by length and batched with
/// right padding (causal attention keeps padding out of real positions), each run stopping after
/// the requested layer, and a bounded cache of whole-layer rows keyed by (layer, tokens) so another
/// neuron of the same layer on the same prompt costs nothing (that is how work is shared across
/// neurons).
///
/// `&self` methods may be called from several threads at once: the cache sits behind a mutex that
/// is never held while the model runs (two threads missing the same prompt both compute it; the
/// second insert is dropped).
pub struct ModelProbe {
    model: Arc<Transformer>,
    config: ProbeConfig,
    cache: Mutex<RowCache>,
    tokens_run: AtomicU64,
    padding_run: AtomicU64,
    tokens_cached: AtomicU64,
    forward_passes: AtomicU64,
}

impl std::fmt::Debug for ModelProbe {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ModelProbe")
            .field("config", &self.config)
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl ModelProbe {
    /// A probe of `model` with `config`'s batching and cache.
    pub fn new(model: Arc<Transformer>, config: ProbeConfig) -> Self {
        Self {
            model,
            config,
            cache: Mutex::new(RowCache::new(config.cache_bytes)),
            tokens_run: AtomicU64::new(0),
            padding_run: AtomicU64::new(0),
            tokens_cached: AtomicU64::new(0),
            forward_passes: AtomicU64::new(0),
        }
    }

    /// The model probed.
    pub fn model(&self) -> &Arc<Transformer> {
        &self.model
    }

    /// Tokens run through the model and tokens answered from the cache so far (for benchmarks and progress).
    pub fn counters(&self) -> ProbeCounters {
        ProbeCounters {
            tokens_run: self.tokens_run.load(Ordering::Relaxed),
            padding_run: self.padding_run.load(Ordering::Relaxed),
            tokens_cached: self.tokens_cached.load(Ordering::Relaxed),
            forward_passes: self.forward_passes.load(Ordering::Relaxed),
            cache_bytes: self.lock_cache().used,
        }
    }

    /// Every neuron of `layer` for each sequence: `result[s]` is `sequences[s].len() × d_mlp`,
    /// position-major, shared with the cache.
    pub fn layer_activations(&self, layer: usize, sequences: &[Vec<u32>]) -> Result<Vec<Arc<[f32]>>, N2gError> {
        self.check_sequences(layer, sequences)?;
        let mut rows: Vec<Option<Arc<[f32]>>> = vec![None; sequences.len()];
        // Sequences to run, each once, with every index that asked for it.
        let mut missing: HashMap<&[u32], Vec<usize>> = HashMap::new();
        let mut answered = 0u64;
        {
            let mut cache = self.lock_cache();
            for (index, sequence) in sequences.iter().enumerate() {
                match cache.get(layer, sequence) {
                    Some(row) => {
                        rows[index] = Some(row);
                        answered += sequence.len() as u64;
                    }
                    None => missing.entry(sequence.as_slice()).or_default().push(index),
                }
            }
        }
        let repeats: u64 =
            missing.iter().map(|(sequence, indices)| (indices.len() as u64 - 1) * sequence.len() as u64).sum();
        self.tokens_cached.fetch_add(answered + repeats, Ordering::Relaxed);

        let mut unique: Vec<(&[u32], Vec<usize>)> = missing.into_iter().collect();
        // Shortest first, so each batch pads to a length close to all of its members'.
        unique.sort_by(|x, y| x.0.len().cmp(&y.0.len()).then_with(|| x.0.cmp(y.0)));
        let mut computed: Vec<(&[u32], Arc<[f32]>)> = Vec::with_capacity(unique.len());
        for batch in batches(&unique, self.config.max_batch_tokens) {
            let sequences: Vec<&[u32]> = batch.iter().map(|(sequence, _)| *sequence).collect();
            for ((sequence, indices), row) in batch.iter().zip(self.run_batch(layer, &sequences)?) {
                for &index in indices {
                    rows[index] = Some(Arc::clone(&row));
                }
                computed.push((sequence, row));
            }
        }
        if !computed.is_empty() {
            let mut cache = self.lock_cache();
            for (sequence, row) in computed {
                cache.insert(layer, sequence, row);
            }
        }
        rows.into_iter()
            .map(|row| row.ok_or_else(|| N2gError::Invalid("a sequence was neither cached nor run".to_owned())))
            .collect()
    }

    /// Runs `sequences` (all non-empty, the last the longest) as one right-padded batch and returns
    /// each one's rows of `layer`.
    fn run_batch(&self, layer: usize, sequences: &[&[u32]]) -> Result<Vec<Arc<[f32]>>, N2gError> {
        let width = sequences.iter().map(|sequence| sequence.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(sequences.len() * width);
        for sequence in sequences {
            ids.extend_from_slice(sequence);
            // Any valid id will do: causal attention never lets a later position reach a real one.
            ids.resize(ids.len() + width - sequence.len(), 0);
        }
        let real: usize = sequences.iter().map(|sequence| sequence.len()).sum();
        let input = Tensor::from_vec(ids, (sequences.len(), width), self.model.device())?;
        let request = RunRequest { layers: vec![layer], hooks: vec![Hook::Post], logits: false };
        let output = self.model.run(&input, &request)?;
        let values = output
            .get(layer, Hook::Post)
            .ok_or_else(|| N2gError::Invalid(format!("the model returned no activations for layer {layer}")))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        self.forward_passes.fetch_add(1, Ordering::Relaxed);
        self.tokens_run.fetch_add(real as u64, Ordering::Relaxed);
        self.padding_run.fetch_add((sequences.len() * width - real) as u64, Ordering::Relaxed);
        let d_mlp = self.model.config().d_mlp;
        Ok(sequences
            .iter()
            .enumerate()
            .map(|(index, sequence)| {
                let start = index * width * d_mlp;
                Arc::from(&values[start..start + sequence.len() * d_mlp])
            })
            .collect())
    }

    /// Refuses what the model cannot run, before any work: an unknown layer, an empty sequence, one
    /// longer than the context, or a token outside the vocabulary.
    fn check_sequences(&self, layer: usize, sequences: &[Vec<u32>]) -> Result<(), N2gError> {
        let config = self.model.config();
        if layer >= config.n_layers {
            return Err(N2gError::Invalid(format!("layer {layer} does not exist (the model has {})", config.n_layers)));
        }
        for (index, sequence) in sequences.iter().enumerate() {
            if sequence.is_empty() {
                return Err(N2gError::Invalid(format!("sequence {index} is empty")));
            }
            if sequence.len() > config.n_ctx {
                return Err(N2gError::Invalid(format!(
                    "sequence {index} has {} tokens, more than the model's context of {}",
                    sequence.len(),
                    config.n_ctx
                )));
            }
            if let Some(&token) = sequence.iter().find(|&&token| token as usize >= config.d_vocab) {
                return Err(N2gError::Invalid(format!(
                    "sequence {index} holds token {token}, outside the vocabulary of {}",
                    config.d_vocab
                )));
            }
        }
        Ok(())
    }

    fn lock_cache(&self) -> MutexGuard<'_, RowCache> {
        // A thread that panicked inside leaves at worst a stale byte count, never a wrong row.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ActivationSource for ModelProbe {
    fn activations(&self, layer: usize, neurons: &[u32], sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, N2gError> {
        let d_mlp = self.model.config().d_mlp;
        if let Some(&neuron) = neurons.iter().find(|&&neuron| neuron as usize >= d_mlp) {
            return Err(N2gError::Invalid(format!("neuron {neuron} does not exist (layers have {d_mlp})")));
        }
        let rows = self.layer_activations(layer, sequences)?;
        Ok(rows
            .iter()
            .map(|row| {
                row.chunks_exact(d_mlp)
                    .flat_map(|position| neurons.iter().map(|&neuron| position[neuron as usize]))
                    .collect()
            })
            .collect())
    }

    fn shape(&self) -> (usize, usize) {
        (self.model.config().n_layers, self.model.config().d_mlp)
    }
}

/// Splits `sorted` (shortest first) into batches of at most `max_tokens` positions once padded to
/// their longest member; a sequence longer than that goes alone.
fn batches<'a, 's, T>(sorted: &'a [(&'s [u32], T)], max_tokens: usize) -> Vec<&'a [(&'s [u32], T)]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut real = 0;
    for end in 1..=sorted.len() {
        real += sorted[end - 1].0.len();
        // A batch pads to its longest sequence: the next one joins while the batch stays within the
        // token budget and padding stays under a quarter of it (N2G's prompts range from 5 to 36
        // tokens; one padded batch of them ran 55 % more tokens than it needed).
        let next_fits = sorted.get(end).is_some_and(|(sequence, _)| {
            let padded = (end - start + 1) * sequence.len();
            padded <= max_tokens && 4 * (padded - real - sequence.len()) <= padded
        });
        if !next_fits {
            real = 0;
            batches.push(&sorted[start..end]);
            start = end;
        }
    }
    batches
}

/// Whole-layer rows by (layer, tokens), least recently used out first, within a byte budget.
struct RowCache {
    capacity: usize,
    used: usize,
    clock: u64,
    layers: HashMap<usize, HashMap<Arc<[u32]>, CachedRow>>,
    /// Last use → entry, oldest first.
    order: BTreeMap<u64, (usize, Arc<[u32]>)>,
}

struct CachedRow {
    values: Arc<[f32]>,
    last_used: u64,
}

/// Hash map and ordering bookkeeping per entry, counted against the budget with the data.
const ENTRY_OVERHEAD: usize = 96;

impl RowCache {
    fn new(capacity: usize) -> Self {
        Self { capacity, used: 0, clock: 0, layers: HashMap::new(), order: BTreeMap::new() }
    }

    fn entry_bytes(tokens: &[u32], values: &[f32]) -> usize {
        std::mem::size_of_val(tokens) + std::mem::size_of_val(values) + ENTRY_OVERHEAD
    }

    fn get(&mut self, layer: usize, tokens: &[u32]) -> Option<Arc<[f32]>> {
        self.clock += 1;
        let clock = self.clock;
        let rows = self.layers.get_mut(&layer)?;
        let key = Arc::clone(rows.get_key_value(tokens)?.0);
        let entry = rows.get_mut(tokens)?;
        let previous = std::mem::replace(&mut entry.last_used, clock);
        let values = Arc::clone(&entry.values);
        self.order.remove(&previous);
        self.order.insert(clock, (layer, key));
        Some(values)
    }

    fn insert(&mut self, layer: usize, tokens: &[u32], values: Arc<[f32]>) {
        let bytes = Self::entry_bytes(tokens, &values);
        if bytes > self.capacity || self.layers.get(&layer).is_some_and(|rows| rows.contains_key(tokens)) {
            return;
        }
        while self.used + bytes > self.capacity {
            let Some((_, (old_layer, old_tokens))) = self.order.pop_first() else { break };
            if let Some(rows) = self.layers.get_mut(&old_layer) {
                if let Some(old) = rows.remove(&old_tokens) {
                    self.used -= Self::entry_bytes(&old_tokens, &old.values);
                }
            }
        }
        self.clock += 1;
        let key: Arc<[u32]> = Arc::from(tokens);
        self.order.insert(self.clock, (layer, Arc::clone(&key)));
        self.layers.entry(layer).or_default().insert(key, CachedRow { values, last_used: self.clock });
        self.used += bytes;
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use candle_core::Device;
    use rayon::prelude::*;

    use super::*;
    use crate::fixture::write_pattern_model;
    use crate::rng::SplitMix64;

    /// dd-model's committed fixture `name` (tiny random models written by PyTorch/transformers).
    fn fixture_model(name: &str) -> Arc<Transformer> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dd-model/tests/fixtures").join(name);
        Arc::new(dd_model::load_transformer(&path, &Device::Cpu).unwrap_or_else(|err| panic!("{name}: {err}")))
    }

    /// Sequences of mixed lengths (1 to the full context), some repeated, over the whole vocabulary.
    fn random_sequences(model: &Transformer, count: usize, seed: u64) -> Vec<Vec<u32>> {
        let config = model.config();
        let mut random = SplitMix64::new(seed);
        let mut sequences: Vec<Vec<u32>> = (0..count)
            .map(|index| {
                let length = match index % 4 {
                    0 => config.n_ctx,
                    1 => 1 + random.below(4),
                    _ => 1 + random.below(config.n_ctx),
                };
                (0..length).map(|_| random.below(config.d_vocab) as u32).collect()
            })
            .collect();
        sequences.push(sequences[2].clone());
        sequences
    }

    /// The reference: `sequence` run alone through `Transformer::run`, the neurons picked out.
    fn alone(model: &Transformer, layer: usize, neurons: &[u32], sequence: &[u32]) -> Vec<f32> {
        let input = Tensor::from_slice(sequence, (1, sequence.len()), &Device::Cpu).expect("ids");
        let request = RunRequest { layers: vec![layer], hooks: vec![Hook::Post], logits: false };
        let output = model.run(&input, &request).expect("run alone");
        let values = output.get(layer, Hook::Post).expect("layer").squeeze(0).expect("squeeze");
        let values = values.to_vec2::<f32>().expect("values");
        values.iter().flat_map(|row| neurons.iter().map(|&neuron| row[neuron as usize])).collect()
    }

    /// The largest difference between `actual` and `expected`, relative to the largest magnitude in
    /// `expected` (activations near zero make a per-value ratio meaningless).
    fn relative_difference(actual: &[f32], expected: &[f32]) -> f32 {
        assert_eq!(actual.len(), expected.len());
        let scale = expected.iter().fold(1e-6f32, |largest, value| largest.max(value.abs()));
        actual.iter().zip(expected).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
    }

    #[test]
    /// Batched, right-padded runs of mixed lengths give what each sequence gives alone, on every
    /// architecture family; repeats within a call are run once.
    fn batches_equal_sequences_run_alone() {
        for name in ["gpt2", "pythia", "neox-serial", "llama", "tl-solu", "tl-gelu"] {
            let model = fixture_model(name);
            let sequences = random_sequences(&model, 24, 11);
            // 256 positions per pass: several passes, each padded.
            let probe =
                ModelProbe::new(Arc::clone(&model), ProbeConfig { max_batch_tokens: 256, cache_bytes: 1 << 20 });
            let config = model.config();
            let neurons: Vec<u32> = vec![0, 7, 3, (config.d_mlp - 1) as u32, 7];
            for layer in 0..config.n_layers {
                let batched = probe.activations(layer, &neurons, &sequences).expect("activations");
                assert_eq!(batched.len(), sequences.len());
                for (sequence, values) in sequences.iter().zip(&batched) {
                    assert_eq!(values.len(), sequence.len() * neurons.len());
                    let error = relative_difference(values, &alone(&model, layer, &neurons, sequence));
                    assert!(error <= 1e-5, "{name} layer {layer}, length {}: relative error {error}", sequence.len());
                }
            }
            let counters = probe.counters();
            assert!(counters.forward_passes >= 2 * config.n_layers as u64, "{name}: {counters:?}");
            assert!(counters.padding_run > 0, "{name}: {counters:?}");
            let total: u64 = sequences.iter().map(|sequence| sequence.len() as u64).sum();
            let repeat = sequences[2].len() as u64;
            assert_eq!(counters.tokens_run, (total - repeat) * config.n_layers as u64, "{name}");
            assert_eq!(counters.tokens_cached, repeat * config.n_layers as u64, "{name}");
        }
    }

    #[test]
    /// Another neuron set of the same layer on the same prompts runs nothing, and the cached
    /// answer equals what an uncached probe computes.
    fn another_neuron_of_the_layer_is_served_from_the_cache() {
        let model = fixture_model("gpt2");
        let sequences = random_sequences(&model, 16, 5);
        let total: u64 = sequences.iter().map(|sequence| sequence.len() as u64).sum();
        let probe = ModelProbe::new(Arc::clone(&model), ProbeConfig::default());
        probe.activations(1, &[4], &sequences).expect("first neuron");
        let after_first = probe.counters();
        let cached = probe.activations(1, &[9, 2, 100], &sequences).expect("other neurons");
        let after_second = probe.counters();
        assert_eq!(after_second.tokens_run, after_first.tokens_run, "nothing was run again");
        assert_eq!(after_second.forward_passes, after_first.forward_passes);
        assert_eq!(after_second.tokens_cached - after_first.tokens_cached, total);
        assert!(after_second.cache_bytes > 0);

        let uncached_probe = ModelProbe::new(Arc::clone(&model), ProbeConfig { max_batch_tokens: 64, cache_bytes: 0 });
        let uncached = uncached_probe.activations(1, &[9, 2, 100], &sequences).expect("uncached");
        assert_eq!(uncached_probe.counters().cache_bytes, 0);
        assert_eq!(uncached_probe.counters().tokens_cached, sequences[2].len() as u64, "only the repeat");
        for (x, y) in cached.iter().zip(&uncached) {
            assert!(relative_difference(x, y) <= 1e-5);
        }
        // A different layer is a different key.
        probe.activations(0, &[4], &sequences[..1]).expect("layer 0");
        assert_eq!(probe.counters().tokens_run, after_second.tokens_run + sequences[0].len() as u64);
    }

    #[test]
    /// A cache smaller than the rows keeps within its budget, evicts the oldest rows, and answers
    /// correctly throughout.
    fn the_cache_stays_within_its_budget() {
        let model = fixture_model("gpt2");
        let sequences = random_sequences(&model, 12, 9);
        let row_bytes = model.config().n_ctx * model.config().d_mlp * 4;
        let budget = 3 * row_bytes;
        let probe = ModelProbe::new(Arc::clone(&model), ProbeConfig { max_batch_tokens: 512, cache_bytes: budget });
        let reference = ModelProbe::new(Arc::clone(&model), ProbeConfig { max_batch_tokens: 1, cache_bytes: 0 });
        for round in 0..3 {
            let neurons = [round as u32, 50];
            let values = probe.activations(0, &neurons, &sequences).expect("activations");
            assert!(probe.counters().cache_bytes <= budget);
            let expected = reference.activations(0, &neurons, &sequences).expect("reference");
            for (x, y) in values.iter().zip(&expected) {
                assert!(relative_difference(x, y) <= 1e-5);
            }
        }
        // The last sequence asked for was cached most recently, so it is still there.
        let before = probe.counters();
        let last = sequences.len() - 1;
        probe.activations(0, &[1], &sequences[last..]).expect("last");
        assert_eq!(probe.counters().tokens_run, before.tokens_run);
    }

    #[test]
    /// Several rayon threads asking at once, for different neurons, get the single-threaded answers.
    fn concurrent_callers_get_the_same_answers() {
        let model = fixture_model("llama");
        let sequences = random_sequences(&model, 10, 3);
        let probe = ModelProbe::new(Arc::clone(&model), ProbeConfig { max_batch_tokens: 300, cache_bytes: 1 << 20 });
        let neurons: Vec<u32> = (0..32).collect();
        let together: Vec<Vec<Vec<f32>>> = neurons
            .par_iter()
            .map(|&neuron| probe.activations(1, &[neuron], &sequences).expect("concurrent"))
            .collect();
        let all = probe.activations(1, &neurons, &sequences).expect("all at once");
        for (index, values) in together.iter().enumerate() {
            for (sequence, (one, every)) in values.iter().zip(&all).enumerate() {
                let column: Vec<f32> = every.iter().skip(index).step_by(neurons.len()).copied().collect();
                // Threads that found part of a call cached batch the rest differently, which may
                // change the last bits.
                assert!(relative_difference(one, &column) <= 1e-5, "neuron {index}, sequence {sequence}");
            }
        }
    }

    #[test]
    /// What the model cannot run is refused with `Invalid`, never a panic.
    fn bad_requests_are_invalid() {
        let model = fixture_model("gpt2");
        let probe = ModelProbe::new(Arc::clone(&model), ProbeConfig::default());
        let config = model.config();
        let good = vec![vec![1u32, 2, 3]];
        let too_long = vec![vec![1u32; config.n_ctx + 1]];
        let outside = vec![vec![1u32, config.d_vocab as u32]];
        let empty = vec![Vec::new()];
        let cases = [
            (config.n_layers, vec![0], &good),
            (0, vec![config.d_mlp as u32], &good),
            (0, vec![0], &empty),
            (0, vec![0], &too_long),
            (0, vec![0], &outside),
        ];
        for (layer, neurons, sequences) in cases {
            match probe.activations(layer, &neurons, sequences) {
                Err(N2gError::Invalid(message)) => assert!(!message.is_empty()),
                other => panic!("layer {layer}, neurons {neurons:?}: {other:?}"),
            }
        }
        assert_eq!(probe.counters().tokens_run, 0);
        assert!(probe.activations(0, &[0], &[]).expect("no sequences").is_empty());
        assert_eq!(probe.activations(0, &[], &good).expect("no neurons"), vec![Vec::<f32>::new()]);
        assert_eq!(probe.shape(), (config.n_layers, config.d_mlp));
    }

    #[test]
    /// Through the probe, the pattern fixture's neuron fires where it was built to.
    fn the_pattern_neuron_through_the_probe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pattern = write_pattern_model(dir.path()).expect("fixture");
        let model = Arc::new(dd_model::load_transformer(dir.path(), &Device::Cpu).expect("loads"));
        let probe = ModelProbe::new(model, ProbeConfig::default());
        let (a, b, bos) = (pattern.a, pattern.b, pattern.bos);
        let sequences = vec![vec![bos, a, 9, b, b], vec![a, b], vec![bos, a, a, b, a, b, b]];
        let values = probe.activations(0, &[pattern.neuron], &sequences).expect("activations");
        for (sequence, values) in sequences.iter().zip(values) {
            for (position, value) in values.into_iter().enumerate() {
                assert_eq!(value > 2.5, pattern.fires(sequence, position), "{sequence:?} at {position}: {value}");
            }
        }
    }
}
