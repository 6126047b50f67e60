//! Similar neurons: each neuron's nearest neighbours by the tokens their graphs share, computed
//! exactly through the token index without comparing all pairs.
//!
//! # The similarity
//! A neuron is two token sets from the neuron store ([`GraphTokens`]): activating tokens `A` and
//! important context `I`. For neurons `a` and `b`, per type `T`, the Jaccard index
//! `J_T = |T_a ∩ T_b| / |T_a ∪ T_b|`, and
//!
//! `sim(a, b) = (2·J_A + 1·J_I) / (2 + 1)`, leaving out a type whose sets are both empty.
//!
//! - *Jaccard, not the original's ratios.* The paper's overlap coefficient calls a one-token graph
//!   "similar" to every graph containing that token, and DeepDecipher's ratio divides by `b`'s
//!   token count only, so `sim(a, b) ≠ sim(b, a)` (spec §8). Jaccard is symmetric, is 1 only for
//!   equal sets, and reads as a fraction of the tokens either neuron uses.
//! - *Activating counts twice.* The activating tokens say what the neuron fires on; context only
//!   qualifies when. Graphs also hold several times more context tokens than activating ones, so a
//!   single Jaccard over both would let shared filler context (` the`, `,`) outvote the activating
//!   tokens.
//! - *Empty types.* Two graphs without context are judged on their activating tokens alone: no
//!   context is not a disagreement, and counting it as `J_I = 0` would cap such pairs at 2/3 (or as
//!   1 would lift unrelated pairs to 1/3). When only one graph has context, the two differ in
//!   kind (one fires on its token anywhere, the other only after some context), so `J_I = 0` counts:
//!   identical activating tokens then give 2/3, still above the standard threshold.
//! - *Exact symmetry.* The score is a function of four integers (`|T_a ∩ T_b|` and `|T_a ∪ T_b|`
//!   for both types), each symmetric, so `sim(a, b)` and `sim(b, a)` are the same bits.
//!
//! A neighbour shares at least one token: pairs with similarity 0 are never listed, whatever the
//! threshold.
//!
//! # The policy for common tokens: exact, by prefix filtering
//! Counting shared tokens through every posting list costs Σ (posting length)²; a token in 30,000
//! of 36,864 neurons (` the` as context) alone makes that 9·10⁸. Skipping such tokens would change
//! the scores. Instead we skip them only where they cannot decide whether a pair reaches the
//! threshold `t`, as set-similarity joins do (Bayardo et al., "Scaling up all pairs similarity
//! search", WWW 2007), and score every candidate exactly:
//!
//! 1. Order all (type, token) pairs from rarest to most common.
//! 2. Each neuron's *prefix* is its shortest run of rarest tokens such that, were every shared
//!    token outside it, the similarity could not reach `t`: with `p_T` of its `n_T` type-`T` tokens
//!    in the prefix, `J_T ≤ (n_T − p_T)/n_T`, so the weighted mean of those bounds must fall below
//!    `t` (with a margin for rounding to `f32`).
//! 3. If `sim(a, b) ≥ t`, the rarest token they share lies in both prefixes (every shared token is
//!    at or after it in both orders, so if it were outside either prefix the bound would be broken).
//!    So candidates come from an index of prefixes only.
//! 4. A candidate met first at some token shares nothing that ranks earlier, so it can share at
//!    most as many tokens of each type as either neuron has from there on (PPJoin's positional
//!    filter, Xiao et al., WWW 2008). The score at those counts bounds the similarity; candidates
//!    whose bound is under `t` are dropped, the rest are scored on their full token sets.
//!
//! The result equals the all-pairs answer exactly (tests compare with brute force). The work is
//! Σ over tokens of (number of prefixes holding it)², plus one scoring per candidate that passes
//! the bound. On the benchmark's gpt2-small-sized store (36,864 neurons, 1.4 M entries, Zipf
//! tokens; `benches/similar.rs`) plain counting would take Σ posting² = 5.7·10⁹ steps; this takes
//! about 3.5 s at the standard threshold 0.4 (29 s at 0.2) on 2 busy cores, against the original's
//! 676 s. A prefix leaves out roughly the most common `t`-fraction of a neuron's tokens, so the
//! higher the threshold, the less work; at `t ≤ 0` every token is in every prefix and the cost is
//! that of plain counting. Neurons whose tokens are all common still pay for it, rightly: such
//! neurons can be genuinely similar to thousands of others.

use dd_data::{NeuronIndex, SimilarNeuron, SimilarNeurons, TokenIndex};
use rayon::prelude::*;

use crate::index::GraphTokens;

/// How similar neurons are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimilarityConfig {
    /// Least similarity for a neighbour (pairs sharing no token are never neighbours).
    pub min_similarity: f32,
    /// Most neighbours kept per neuron, the most similar.
    pub max_neighbours: usize,
}

impl SimilarityConfig {
    /// The settings DeepDecipher serves: 0.4 is the original DeepDecipher's threshold, and here it
    /// admits the same activating tokens with different context (2/3) or, without context, two
    /// of five distinct activating tokens shared, while a half-shared activating set with disjoint
    /// context (1/3) stays out; 20 neighbours fill the page's list and bound storage at 20 per neuron.
    pub const STANDARD: Self = Self { min_similarity: 0.4, max_neighbours: 20 };
}

/// Weight of the activating tokens' Jaccard index in the similarity (see the module docs).
pub const ACTIVATING_WEIGHT: f64 = 2.0;
/// Weight of the important tokens' Jaccard index in the similarity.
pub const IMPORTANT_WEIGHT: f64 = 1.0;

/// Margin by which a prefix's bound must fall below the threshold, so that rounding the exact
/// similarity to `f32` (relative error 6·10⁻⁸) cannot lift a pair the prefix ruled out over it.
const ROUNDING_MARGIN: f64 = 1e-6;

/// The similarity of two neurons' token sets (module docs); each list must be sorted and deduplicated,
/// as [`GraphTokens`] are.
pub fn similarity(a: &GraphTokens, b: &GraphTokens) -> f32 {
    let shared_activating = count_shared(&a.activating, &b.activating);
    let shared_important = count_shared(&a.important, &b.important);
    score(Overlap {
        shared: [shared_activating, shared_important],
        union: [
            (a.activating.len() + b.activating.len()) as u32 - shared_activating,
            (a.important.len() + b.important.len()) as u32 - shared_important,
        ],
    })
}

/// Each neuron's most similar neurons (most similar first, ties by (layer, index)), computed from the token index.
///
/// Every neuron the index names gets an entry, in (layer, index) order, even with no neighbours.
pub fn similar_neurons(index: &TokenIndex, config: &SimilarityConfig) -> Vec<(NeuronIndex, SimilarNeurons)> {
    let store = RankedStore::new(index);
    let threshold = f64::from(config.min_similarity);
    let prefix_index = PrefixIndex::new(&store, threshold);
    let n_neurons = store.neurons.len();
    let n_ranks = store.type_of_rank.len();
    (0..n_neurons)
        .into_par_iter()
        .map_init(
            || Scratch { seen: vec![0; n_neurons], marked: vec![0u8; n_ranks] },
            |scratch, neuron| {
                let neighbours = neighbours(&store, &prefix_index, scratch, neuron, config);
                (store.neurons[neuron], SimilarNeurons { neurons: neighbours })
            },
        )
        .collect()
}

/// Shared and total (union) token counts of a pair, activating then important.
#[derive(Clone, Copy, Debug)]
struct Overlap {
    shared: [u32; 2],
    union: [u32; 2],
}

/// The similarity from a pair's counts; the one place it is computed, so that the indexed and the
/// pairwise paths agree to the bit.
fn score(overlap: Overlap) -> f32 {
    let mut weighted = 0.0;
    let mut total_weight = 0.0;
    for (type_idx, weight) in [ACTIVATING_WEIGHT, IMPORTANT_WEIGHT].into_iter().enumerate() {
        if overlap.union[type_idx] > 0 {
            weighted += weight * f64::from(overlap.shared[type_idx]) / f64::from(overlap.union[type_idx]);
            total_weight += weight;
        }
    }
    match total_weight > 0.0 {
        true => (weighted / total_weight) as f32,
        false => 0.0,
    }
}

/// Sorted-merge intersection size of two sorted lists.
fn count_shared(a: &[String], b: &[String]) -> u32 {
    let (mut a_idx, mut b_idx, mut shared) = (0, 0, 0);
    while a_idx < a.len() && b_idx < b.len() {
        match a[a_idx].cmp(&b[b_idx]) {
            std::cmp::Ordering::Less => a_idx += 1,
            std::cmp::Ordering::Greater => b_idx += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                a_idx += 1;
                b_idx += 1;
            }
        }
    }
    shared
}

/// The index re-keyed for counting: neurons as dense ids, each (type, token) pair as its rank from
/// rarest to most common, each neuron's tokens as a sorted list of ranks.
struct RankedStore {
    /// Dense id → neuron, sorted.
    neurons: Vec<NeuronIndex>,
    /// Rank → 0 (activating) or 1 (important).
    type_of_rank: Vec<u8>,
    /// Neuron `n`'s ranks are `ranks[offsets[n]..offsets[n + 1]]`, ascending.
    offsets: Vec<usize>,
    ranks: Vec<u32>,
    /// Per neuron, its number of activating and important tokens.
    type_counts: Vec<[u32; 2]>,
}

impl RankedStore {
    fn new(index: &TokenIndex) -> Self {
        let mut neurons: Vec<NeuronIndex> =
            index.entries.iter().flat_map(|entry| entry.activating.iter().chain(&entry.important).copied()).collect();
        neurons.par_sort_unstable();
        neurons.dedup();
        // A posting list of a hand-made index may repeat a neuron; counting it twice would break
        // the union sizes.
        let postings: Vec<(u8, Vec<u32>)> = index
            .entries
            .iter()
            .flat_map(|entry| [(0u8, &entry.activating), (1u8, &entry.important)])
            .filter(|(_, list)| !list.is_empty())
            .map(|(type_idx, list)| {
                let mut ids: Vec<u32> =
                    list.iter().filter_map(|n| neurons.binary_search(n).ok()).map(|id| id as u32).collect();
                ids.sort_unstable();
                ids.dedup();
                (type_idx, ids)
            })
            .collect();
        // Rank order: rarest first, ties in index order, so the order is deterministic.
        let mut order: Vec<usize> = (0..postings.len()).collect();
        order.sort_by_key(|&posting| (postings[posting].1.len(), posting));
        let type_of_rank: Vec<u8> = order.iter().map(|&posting| postings[posting].0).collect();

        let mut type_counts = vec![[0u32; 2]; neurons.len()];
        for (type_idx, ids) in &postings {
            for &id in ids {
                type_counts[id as usize][usize::from(*type_idx)] += 1;
            }
        }
        let mut offsets = Vec::with_capacity(neurons.len() + 1);
        offsets.push(0);
        for counts in &type_counts {
            offsets.push(offsets[offsets.len() - 1] + (counts[0] + counts[1]) as usize);
        }
        // Filling in rank order leaves every neuron's list ascending.
        let mut fill = offsets.clone();
        let mut ranks = vec![0u32; offsets[neurons.len()]];
        for (rank, &posting) in order.iter().enumerate() {
            for &id in &postings[posting].1 {
                ranks[fill[id as usize]] = rank as u32;
                fill[id as usize] += 1;
            }
        }
        Self { neurons, type_of_rank, offsets, ranks, type_counts }
    }

    fn ranks_of(&self, neuron: usize) -> &[u32] {
        &self.ranks[self.offsets[neuron]..self.offsets[neuron + 1]]
    }
}

/// For each rank, the neurons whose prefix holds it (module docs, step 3).
struct PrefixIndex {
    /// Neuron `n`'s prefix is its first `prefix_lengths[n]` ranks.
    prefix_lengths: Vec<usize>,
    /// Rank `r`'s entries are `entries[offsets[r]..offsets[r + 1]]`.
    offsets: Vec<usize>,
    entries: Vec<PrefixEntry>,
}

/// A neuron whose prefix holds a rank, and how many of its tokens of each type rank at or after
/// it: were that its first token shared with a neuron, no more of each type could be shared.
#[derive(Clone, Copy, Debug, Default)]
struct PrefixEntry {
    neuron: u32,
    from_here: [u32; 2],
}

impl PrefixIndex {
    fn new(store: &RankedStore, threshold: f64) -> Self {
        let prefix_lengths: Vec<usize> = (0..store.neurons.len())
            .map(|neuron| {
                prefix_length(store.ranks_of(neuron), &store.type_of_rank, store.type_counts[neuron], threshold)
            })
            .collect();
        let n_ranks = store.type_of_rank.len();
        let mut counts = vec![0usize; n_ranks];
        for (neuron, &length) in prefix_lengths.iter().enumerate() {
            for &rank in &store.ranks_of(neuron)[..length] {
                counts[rank as usize] += 1;
            }
        }
        let mut offsets = Vec::with_capacity(n_ranks + 1);
        offsets.push(0);
        for count in counts {
            offsets.push(offsets[offsets.len() - 1] + count);
        }
        let mut fill = offsets.clone();
        let mut entries = vec![PrefixEntry::default(); offsets[n_ranks]];
        for (neuron, &length) in prefix_lengths.iter().enumerate() {
            let mut from_here = store.type_counts[neuron];
            for &rank in &store.ranks_of(neuron)[..length] {
                entries[fill[rank as usize]] = PrefixEntry { neuron: neuron as u32, from_here };
                fill[rank as usize] += 1;
                from_here[usize::from(store.type_of_rank[rank as usize])] -= 1;
            }
        }
        Self { prefix_lengths, offsets, entries }
    }

    fn entries_of(&self, rank: u32) -> &[PrefixEntry] {
        &self.entries[self.offsets[rank as usize]..self.offsets[rank as usize + 1]]
    }
}

/// The shortest prefix of `ranks` outside which no shared tokens could reach `threshold`.
fn prefix_length(ranks: &[u32], type_of_rank: &[u8], type_counts: [u32; 2], threshold: f64) -> usize {
    let weights = [ACTIVATING_WEIGHT, IMPORTANT_WEIGHT];
    let total_weight: f64 = (0..2).filter(|&t| type_counts[t] > 0).map(|t| weights[t]).sum();
    let bound = |in_prefix: [u32; 2]| -> f64 {
        let outside: f64 = (0..2)
            .filter(|&t| type_counts[t] > 0)
            .map(|t| weights[t] * f64::from(type_counts[t] - in_prefix[t]) / f64::from(type_counts[t]))
            .sum();
        outside / total_weight
    };
    let mut in_prefix = [0u32; 2];
    for (position, &rank) in ranks.iter().enumerate() {
        if bound(in_prefix) < threshold - ROUNDING_MARGIN {
            return position;
        }
        in_prefix[usize::from(type_of_rank[rank as usize])] += 1;
    }
    ranks.len()
}

/// Per-worker scratch: `seen[b] == a + 1` once candidate `b` was judged for neuron `a` (so the
/// array is never cleared), and `marked[r]` is 1 + the type of rank `r` while the current neuron
/// holds it, else 0 (one byte per rank keeps it in cache).
struct Scratch {
    seen: Vec<u32>,
    marked: Vec<u8>,
}

/// One neuron's neighbours: candidates from its prefix, each first bounded by the tokens it could
/// still share (PPJoin's positional filter: every shared token ranks at or after the first), then
/// scored on its full token sets.
fn neighbours(
    store: &RankedStore,
    prefix_index: &PrefixIndex,
    scratch: &mut Scratch,
    neuron: usize,
    config: &SimilarityConfig,
) -> Vec<SimilarNeuron> {
    let stamp = neuron as u32 + 1;
    let own_ranks = store.ranks_of(neuron);
    for &rank in own_ranks {
        scratch.marked[rank as usize] = 1 + store.type_of_rank[rank as usize];
    }
    scratch.seen[neuron] = stamp;
    let own_counts = store.type_counts[neuron];
    let mut own_from_here = own_counts;
    let mut found: Vec<(f32, NeuronIndex)> = Vec::new();
    for &rank in &own_ranks[..prefix_index.prefix_lengths[neuron]] {
        for entry in prefix_index.entries_of(rank) {
            let candidate = entry.neuron as usize;
            if scratch.seen[candidate] == stamp {
                continue;
            }
            scratch.seen[candidate] = stamp;
            let candidate_counts = store.type_counts[candidate];
            let overlap = |shared: [u32; 2]| Overlap {
                shared,
                union: [0, 1].map(|t| own_counts[t] + candidate_counts[t] - shared[t]),
            };
            // The score grows with the shared counts (and its f32 rounding keeps that order), so
            // a bound under the threshold rules the pair out exactly. The bound can be wrong only
            // when this is not the pair's first shared token, and then the pair is under the
            // threshold anyway (module docs, step 3).
            let most_shared = [0, 1].map(|t| own_from_here[t].min(entry.from_here[t]));
            let bound = score(overlap(most_shared));
            if !(bound > 0.0 && bound >= config.min_similarity) {
                continue;
            }
            let mut shared = [0u32; 2];
            for &candidate_rank in store.ranks_of(candidate) {
                match scratch.marked[candidate_rank as usize] {
                    0 => {}
                    mark => shared[usize::from(mark - 1)] += 1,
                }
            }
            let similarity = score(overlap(shared));
            if similarity > 0.0 && similarity >= config.min_similarity {
                found.push((similarity, store.neurons[candidate]));
            }
        }
        own_from_here[usize::from(store.type_of_rank[rank as usize])] -= 1;
    }
    for &rank in own_ranks {
        scratch.marked[rank as usize] = 0;
    }
    found.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    found.truncate(config.max_neighbours);
    found
        .into_iter()
        .map(|(similarity, neighbour)| SimilarNeuron { layer: neighbour.layer, index: neighbour.index, similarity })
        .collect()
}

#[cfg(test)]
mod tests;
