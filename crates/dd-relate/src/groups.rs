//! Co-activating groups: communities of the correlation graph.
//!
//! The graph joins two neurons when either lists the other among its most positively correlated
//! with r at least [`GroupOptions::edge_threshold`], weighted by r. Louvain's communities of it
//! (`louvain`) with at least [`GroupOptions::min_size`] members are the groups. For each group, from
//! the same sample: its cohesion, the mean r over all pairs of members, exact (the sum of the
//! members' z-score rows gives every pair at once: `(|Σ z|² − n·T) / (T·n(n − 1))`); and the
//! contexts where its members fire together, those whose best token has the highest mean z-score
//! over the members.

use dd_data::{GROUP_FIRING_Z, GroupContext, NeuronCorrelations, NeuronGroup, NeuronGroups, NeuronIndex};
use dd_model::correlation::ActivationSample;
use rayon::prelude::*;

use crate::louvain::{Edge, louvain};
use crate::sample::ContextSample;

/// How groups are found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupOptions {
    /// The least r that joins two neurons.
    pub edge_threshold: f32,
    /// Louvain's resolution: above 1 favours smaller groups.
    pub resolution: f64,
    /// The fewest members a group has.
    pub min_size: usize,
    /// Contexts kept per group.
    pub contexts: usize,
}

impl Default for GroupOptions {
    /// r ≥ 0.5, resolution 1, at least 3 members, 3 contexts.
    fn default() -> Self {
        Self { edge_threshold: 0.5, resolution: 1.0, min_size: 3, contexts: 3 }
    }
}

impl GroupOptions {
    /// How the groups were found, for the pages.
    pub fn method(&self) -> String {
        format!(
            "Louvain communities (resolution {}) of the graph joining neurons whose activations correlate \
             with r ≥ {} (each neuron's most correlated), groups of at least {}; cohesion is the mean r over \
             all pairs of members",
            self.resolution, self.edge_threshold, self.min_size
        )
    }
}

/// The groups of a model with `neurons_per_layer` neurons a layer, most cohesive first, and each
/// neuron's group (numbered across layers).
pub fn find_groups(
    correlations: &[NeuronCorrelations],
    neurons_per_layer: usize,
    activations: &ActivationSample,
    sample: &ContextSample,
    options: &GroupOptions,
) -> (NeuronGroups, Vec<Option<u32>>) {
    let n = correlations.len();
    let global = |neuron: NeuronIndex| neuron.layer as usize * neurons_per_layer + neuron.index as usize;
    let mut pairs = std::collections::BTreeMap::<(u32, u32), f32>::new();
    for (node, lists) in correlations.iter().enumerate() {
        for entry in lists.positive.iter().filter(|e| e.correlation >= options.edge_threshold) {
            let other = global(entry.neuron);
            if other != node && other < n {
                let key = (node.min(other) as u32, node.max(other) as u32);
                let weight = pairs.entry(key).or_insert(0.0);
                *weight = weight.max(entry.correlation);
            }
        }
    }
    let edges: Vec<Edge> = pairs.into_iter().map(|((a, b), weight)| Edge { a, b, weight: f64::from(weight) }).collect();
    let community = louvain(n, &edges, options.resolution);
    let mut members = vec![Vec::new(); community.iter().map(|&c| c as usize + 1).max().unwrap_or(0)];
    for (node, &c) in community.iter().enumerate() {
        members[c as usize].push(node);
    }
    let positions = sample.positions();
    let tokens = activations.tokens();
    let mut groups: Vec<(Vec<usize>, NeuronGroup)> = members
        .into_par_iter()
        .filter(|nodes| nodes.len() >= options.min_size)
        .map(|nodes| {
            let rows: Vec<Vec<f32>> = nodes.iter().map(|&node| activations.z_scores(node)).collect();
            let mut sum = vec![0f64; tokens];
            for row in &rows {
                sum.iter_mut().zip(row).for_each(|(s, &z)| *s += f64::from(z));
            }
            let size = nodes.len() as f64;
            let squared: f64 = sum.iter().map(|s| s * s).sum();
            let self_terms: f64 = rows.iter().map(|row| row.iter().map(|&z| f64::from(z).powi(2)).sum::<f64>()).sum();
            let cohesion = ((squared - self_terms) / (tokens as f64 * size * (size - 1.0))) as f32;
            let mean: Vec<f32> = sum.iter().map(|s| (s / size) as f32).collect();
            let contexts = group_contexts(&mean, &rows, &positions, sample, options.contexts);
            let members = nodes
                .iter()
                .map(|&node| NeuronIndex {
                    layer: (node / neurons_per_layer) as u32,
                    index: (node % neurons_per_layer) as u32,
                })
                .collect();
            (nodes, NeuronGroup { members, cohesion: cohesion.clamp(-1.0, 1.0), contexts })
        })
        .collect();
    groups.sort_by(|a, b| b.1.cohesion.total_cmp(&a.1.cohesion).then(a.0[0].cmp(&b.0[0])));
    let mut membership = vec![None; n];
    for (number, (nodes, _)) in groups.iter().enumerate() {
        for &node in nodes {
            membership[node] = Some(number as u32);
        }
    }
    let groups = NeuronGroups {
        method: options.method(),
        tokens: tokens as u32,
        groups: groups.into_iter().map(|(_, group)| group).collect(),
    };
    (groups, membership)
}

/// The `keep` contexts whose best token has the highest mean z-score, with every token's mean.
fn group_contexts(
    mean: &[f32],
    rows: &[Vec<f32>],
    positions: &[(u32, u32)],
    sample: &ContextSample,
    keep: usize,
) -> Vec<GroupContext> {
    // The best token of each context: (score, token).
    let mut best = vec![(f32::NEG_INFINITY, usize::MAX); sample.contexts.len()];
    for (token, &(context, _)) in positions.iter().enumerate() {
        let slot = &mut best[context as usize];
        if mean[token] > slot.0 {
            *slot = (mean[token], token);
        }
    }
    let mut ranked: Vec<(usize, (f32, usize))> =
        best.into_iter().enumerate().filter(|(_, (_, token))| *token != usize::MAX).collect();
    ranked.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .take(keep)
        .map(|(context, (_, token))| {
            let sampled = &sample.contexts[context];
            let mut scores = vec![0f32; sampled.tokens.len()];
            for (t, &(c, position)) in positions.iter().enumerate() {
                if c as usize == context {
                    scores[position as usize] = mean[t];
                }
            }
            let firing = rows.iter().filter(|row| row[token] >= GROUP_FIRING_Z).count() as u32;
            GroupContext { dataset_index: sampled.dataset_index, tokens: sampled.tokens.clone(), scores, firing }
        })
        .collect()
}
