//! Similar neurons against a brute-force all-pairs computation, and the similarity's properties.

use dd_data::{TokenIndexEntry, normalise_token};

use super::*;
use crate::index::{neuron_tokens, token_index};
use crate::rng::SplitMix64;

/// The fixture's deterministic generator, with the draws these tests need.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn unit(&mut self) -> f64 {
        self.0.unit()
    }

    /// A token rank from `0..vocab`, heavily skewed to small ranks: `vocab^(u^skew) − 1` is
    /// log-uniform (Zipf-like) for `skew = 1` and piles up on the first ranks as `skew` grows.
    fn skewed(&mut self, vocab: u64, skew: f64) -> u64 {
        let rank = (vocab as f64).powf(self.unit().powf(skew)) - 1.0;
        (rank as u64).min(vocab - 1)
    }
}

fn tokens(rng: &mut Rng, count: u64, vocab: u64, skew: f64) -> Vec<String> {
    let mut list: Vec<String> = (0..count).map(|_| format!("t{}", rng.skewed(vocab, skew))).collect();
    list.sort_unstable();
    list.dedup();
    list
}

/// A random store: some neurons without context or without activating tokens, some copying an
/// earlier neuron's tokens (exact ties), token frequencies skewed by `skew`.
fn random_store(seed: u64, n_neurons: u64, vocab: u64, skew: f64) -> TokenIndex {
    let mut rng = Rng(SplitMix64::new(seed));
    let mut graphs: Vec<(NeuronIndex, GraphTokens)> = Vec::new();
    for _ in 0..n_neurons {
        let neuron = NeuronIndex { layer: rng.below(6) as u32, index: rng.below(n_neurons * 2) as u32 };
        let graph = match (graphs.is_empty(), rng.below(10)) {
            (false, 0) => graphs[rng.below(graphs.len() as u64) as usize].1.clone(),
            (_, roll) => {
                let n_activating = if roll == 1 { 0 } else { 1 + rng.below(4) };
                let n_important = if roll == 2 { 0 } else { rng.below(12) };
                GraphTokens {
                    activating: tokens(&mut rng, n_activating, vocab, skew),
                    important: tokens(&mut rng, n_important, vocab, skew),
                }
            }
        };
        graphs.push((neuron, graph));
    }
    token_index(graphs)
}

/// Every pair scored with [`similarity`] on the string sets.
fn brute_force(index: &TokenIndex, config: &SimilarityConfig) -> Vec<(NeuronIndex, SimilarNeurons)> {
    let neurons = neuron_tokens(index);
    neurons
        .iter()
        .map(|(neuron, own)| {
            let mut found: Vec<(f32, NeuronIndex)> = neurons
                .iter()
                .filter(|(other, _)| other != neuron)
                .map(|(other, tokens)| (similarity(own, tokens), *other))
                .filter(|&(sim, _)| sim > 0.0 && sim >= config.min_similarity)
                .collect();
            found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            found.truncate(config.max_neighbours);
            let neurons = found
                .into_iter()
                .map(|(similarity, n)| SimilarNeuron { layer: n.layer, index: n.index, similarity })
                .collect();
            (*neuron, SimilarNeurons { neurons })
        })
        .collect()
}

/// The indexed computation equals all pairs, bit for bit, over store sizes, skews, thresholds
/// (including those sitting exactly on attainable scores) and neighbour caps.
#[test]
fn similar_neurons_equal_brute_force() {
    let thresholds = [-1.0, 0.0, 1e-7, 0.1, 0.25, 1.0 / 3.0, 0.4, 0.5, 2.0 / 3.0, 0.75, 0.9, 1.0, 1.5];
    let caps = [0, 1, 3, 20, usize::MAX];
    let mut checked_pairs = 0;
    for (seed, (n_neurons, vocab, skew)) in
        [(0, 3, 1.0), (1, 1, 1.0), (2, 40, 1.0), (120, 30, 1.0), (150, 400, 1.0), (200, 60, 3.0), (300, 2000, 2.0)]
            .into_iter()
            .enumerate()
    {
        let index = random_store(seed as u64, n_neurons, vocab, skew);
        for (threshold_idx, &min_similarity) in thresholds.iter().enumerate() {
            let max_neighbours = caps[(seed + threshold_idx) % caps.len()];
            let config = SimilarityConfig { min_similarity, max_neighbours };
            let fast = similar_neurons(&index, &config);
            let slow = brute_force(&index, &config);
            assert_eq!(fast.len(), slow.len());
            for (f, s) in fast.iter().zip(&slow) {
                assert_eq!(f, s, "store {seed} ({n_neurons} neurons, skew {skew}), config {config:?}");
                checked_pairs += s.1.neurons.len();
            }
        }
    }
    assert!(checked_pairs > 5_000, "the stores must produce neighbours to compare: {checked_pairs}");
}

/// sim(a, b) and sim(b, a) are the same bits, in [0, 1], 1 for equal sets.
#[test]
fn similarity_is_symmetric_and_bounded() {
    let neurons = neuron_tokens(&random_store(11, 150, 80, 1.5));
    for (_, a) in &neurons {
        assert_eq!(similarity(a, a), 1.0);
        for (_, b) in &neurons {
            let (ab, ba) = (similarity(a, b), similarity(b, a));
            assert_eq!(ab.to_bits(), ba.to_bits());
            assert!((0.0..=1.0).contains(&ab));
        }
    }
}

fn graph(activating: &[&str], important: &[&str]) -> GraphTokens {
    let list = |tokens: &[&str]| {
        let mut v: Vec<String> = tokens.iter().map(|t| normalise_token(t)).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    GraphTokens { activating: list(activating), important: list(important) }
}

/// The cases the module docs reason about.
#[test]
fn similarity_worked_cases() {
    let the = graph(&[" the"], &[]);
    // Without context on either side, only activating tokens count.
    assert_eq!(similarity(&the, &graph(&[" the"], &[])), 1.0);
    assert_eq!(similarity(&graph(&["a", "b"], &[]), &graph(&["b", "c", "d", "e"], &[])), 0.2f64 as f32);
    // Same activating token, one side with context: 2/3.
    assert_eq!(similarity(&the, &graph(&[" the"], &[" of", " in"])), (2.0f64 / 3.0) as f32);
    // Same activating token, disjoint context: 2/3; half the context shared: (2 + 1/3) / 3.
    assert_eq!(similarity(&graph(&["x"], &["a"]), &graph(&["x"], &["b"])), (2.0f64 / 3.0) as f32);
    assert_eq!(similarity(&graph(&["x"], &["a", "b"]), &graph(&["x"], &["b", "c"])), ((2.0 + 1.0 / 3.0) / 3.0) as f32);
    // Disjoint activating tokens, same context: 1/3, under the standard threshold.
    assert_eq!(similarity(&graph(&["x"], &["a"]), &graph(&["y"], &["a"])), (1.0f64 / 3.0) as f32);
    assert!(similarity(&graph(&["x"], &["a"]), &graph(&["y"], &["a"])) < SimilarityConfig::STANDARD.min_similarity);
    // Nothing at all: 0, and never a neighbour.
    assert_eq!(similarity(&GraphTokens::default(), &GraphTokens::default()), 0.0);
}

/// Most similar first, ties by (layer, index); the neuron itself is never its neighbour.
#[test]
fn neighbours_are_ordered_and_capped() {
    let n = |layer, index| NeuronIndex { layer, index };
    let index = token_index([
        (n(1, 5), graph(&["x"], &["a"])),
        (n(0, 9), graph(&["x"], &["b"])),
        (n(0, 2), graph(&["x"], &["c"])),
        (n(3, 0), graph(&["x"], &["a", "d"])),
        (n(2, 2), graph(&["x"], &["a"])),
    ]);
    let result = similar_neurons(&index, &SimilarityConfig { min_similarity: 0.4, max_neighbours: 3 });
    let of = |neuron: NeuronIndex| -> Vec<(u32, u32, f32)> {
        let (_, similar) = result.iter().find(|(m, _)| *m == neuron).expect("listed");
        similar.neurons.iter().map(|s| (s.layer, s.index, s.similarity)).collect()
    };
    let two_thirds = (2.0f64 / 3.0) as f32;
    assert_eq!(of(n(1, 5)), vec![(2, 2, 1.0), (3, 0, ((2.0 + 0.5) / 3.0) as f32), (0, 2, two_thirds)]);
    assert_eq!(of(n(0, 2)), vec![(0, 9, two_thirds), (1, 5, two_thirds), (2, 2, two_thirds)]);
    assert_eq!(result.iter().map(|(m, _)| *m).collect::<Vec<_>>(), vec![n(0, 2), n(0, 9), n(1, 5), n(2, 2), n(3, 0)]);
    assert!(similar_neurons(&TokenIndex::default(), &SimilarityConfig::STANDARD).is_empty());
}

/// A hand-made index with unsorted, repeated neurons scores as its cleaned copy; a NaN threshold
/// lists nothing and panics nowhere.
#[test]
fn untidy_indices_and_configs() {
    let n = |layer, index| NeuronIndex { layer, index };
    let untidy = TokenIndex {
        entries: vec![
            TokenIndexEntry { token: "b".into(), activating: vec![n(1, 1), n(0, 0), n(1, 1)], important: vec![] },
            TokenIndexEntry { token: "a".into(), activating: vec![], important: vec![n(0, 0), n(0, 0), n(2, 7)] },
            TokenIndexEntry { token: "c".into(), activating: vec![], important: vec![] },
        ],
    };
    let tidy = token_index(neuron_tokens(&untidy));
    let config = SimilarityConfig { min_similarity: 0.0, max_neighbours: 10 };
    assert_eq!(similar_neurons(&untidy, &config), similar_neurons(&tidy, &config));
    assert_eq!(similar_neurons(&untidy, &config), brute_force(&tidy, &config));
    let nan = similar_neurons(&untidy, &SimilarityConfig { min_similarity: f32::NAN, max_neighbours: 10 });
    assert!(nan.iter().all(|(_, similar)| similar.neurons.is_empty()));
}

/// The prefixes do leave the common tokens out: at the standard threshold the candidate work
/// (Σ prefix posting length²) is a small part of counting through every posting list, and at
/// threshold 0 nothing is left out.
#[test]
fn prefixes_skip_common_tokens() {
    let index = random_store(5, 2000, 5000, 1.0);
    let store = RankedStore::new(&index);
    let work = |threshold: f64| -> usize {
        let prefixes = PrefixIndex::new(&store, threshold);
        (0..store.type_of_rank.len() as u32).map(|rank| prefixes.entries_of(rank).len().pow(2)).sum()
    };
    let full: usize = index.entries.iter().map(|e| e.activating.len().pow(2) + e.important.len().pow(2)).sum();
    assert_eq!(work(0.0), full);
    assert!(work(0.4) * 5 < full, "prefix work {} vs full {full}", work(0.4));
    assert!(work(0.9) < work(0.4));
}
