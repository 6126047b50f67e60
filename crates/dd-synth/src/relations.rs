//! Synthetic relations between neurons: correlations, embeddings, roles, changes and groups of the
//! shapes `dd-relate` writes, each from its own random stream so the other kinds stay as they were.

use dd_data::{
    CorrelatedNeuron, EmbeddingSource, GroupContext, LayerChanges, LayerRecord, LayerRoles, ModelRecord, NeuronChange,
    NeuronCorrelations, NeuronEmbedding, NeuronGroup, NeuronGroups, NeuronIndex, NeuronRecord, NeuronRole, Role,
    SimilarNeuron, change_score,
};

use crate::SynthConfig;
use crate::rng::SynthRng;
use crate::vocab::ZipfSampler;

const RELATIONS_STREAM: u64 = 0x4E1A;
const CORRELATED: usize = 5;
const EMBEDDING_DIMENSION: usize = 16;
/// Tokens a synthetic correlation sample holds.
const SAMPLE_TOKENS: u32 = 2000;
/// The connector boundary of the synthetic roles: participation is drawn uniform in [0, 0.9).
const SYNTH_CONNECTOR_PARTICIPATION: f32 = 0.81;

fn random_neuron(config: &SynthConfig, rng: &mut SynthRng) -> NeuronIndex {
    NeuronIndex {
        layer: rng.below(u64::from(config.n_layers)) as u32,
        index: rng.below(u64::from(config.d_mlp)) as u32,
    }
}

/// A neuron's `correlations` and `embedding` records.
pub(crate) fn neuron_relations(config: &SynthConfig, layer: u32, index: u32) -> [NeuronRecord; 2] {
    let mut rng = SynthRng::new(config.seed, &[u64::from(layer), u64::from(index), RELATIONS_STREAM]);
    let this = NeuronIndex { layer, index };
    let list = |sign: f64, rng: &mut SynthRng| -> Vec<CorrelatedNeuron> {
        let mut list = Vec::with_capacity(CORRELATED);
        for _ in 0..CORRELATED {
            let neuron = random_neuron(config, rng);
            let correlation = (sign * (0.2 + 0.75 * rng.unit())) as f32;
            if neuron != this && list.iter().all(|c: &CorrelatedNeuron| c.neuron != neuron) {
                list.push(CorrelatedNeuron { neuron, correlation });
            }
        }
        list.sort_by(|a, b| (sign as f32 * b.correlation).total_cmp(&(sign as f32 * a.correlation)));
        list
    };
    let positive = list(1.0, &mut rng);
    let negative = list(-1.0, &mut rng);
    let vector: Vec<f64> = (0..EMBEDDING_DIMENSION).map(|_| rng.normal()).collect();
    let largest = vector.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-9);
    let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-9);
    let mut neighbours: Vec<SimilarNeuron> = (0..4)
        .map(|_| {
            let neuron = random_neuron(config, &mut rng);
            SimilarNeuron { layer: neuron.layer, index: neuron.index, similarity: (0.3 + 0.65 * rng.unit()) as f32 }
        })
        .collect();
    neighbours.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    [
        NeuronRecord::Correlations(NeuronCorrelations { tokens: SAMPLE_TOKENS, positive, negative }),
        NeuronRecord::Embedding(NeuronEmbedding {
            source: if rng.below(2) == 0 { EmbeddingSource::Graph } else { EmbeddingSource::ActivatingTokens },
            scale: (largest / norm / 127.0) as f32,
            values: vector.iter().map(|v| (v / largest * 127.0).round() as i8).collect(),
            neighbours,
        }),
    ]
}

/// A layer's `roles` and `changes` records; `groups` gives each neuron's group, numbered across layers.
pub(crate) fn layer_relations(config: &SynthConfig, layer: u32, groups: &[Option<u32>]) -> [LayerRecord; 2] {
    let mut rng = SynthRng::new(config.seed, &[u64::from(layer), RELATIONS_STREAM]);
    let per_layer = config.d_mlp as usize;
    let neurons = (0..per_layer)
        .map(|index| {
            let strength_z = (rng.normal() * 1.2) as f32;
            let participation = rng.unit() as f32 * 0.9;
            NeuronRole {
                in_degree: rng.below(30) as u32,
                out_degree: rng.below(30) as u32,
                in_strength: (rng.unit() * 5.0) as f32,
                out_strength: (rng.unit() * 5.0) as f32,
                strength_z,
                participation,
                betweenness: (rng.unit() * 1e-3) as f32,
                role: Role::classify(strength_z, participation, SYNTH_CONNECTOR_PARTICIPATION),
                group: groups.get(layer as usize * per_layer + index).copied().flatten(),
            }
        })
        .collect();
    let changes = (0..per_layer)
        .map(|_| {
            let top_overlap = rng.unit() as f32;
            let activation_correlation = (rng.below(8) != 0).then(|| (rng.unit() * 2.0 - 1.0) as f32);
            let std = 0.5 + rng.unit();
            let std_baseline = 0.5 + rng.unit();
            NeuronChange {
                mean_change: (rng.normal() * 0.1) as f32,
                std_change: (std - std_baseline) as f32,
                max_change: rng.normal() as f32,
                density_change: (rng.normal() * 0.01) as f32,
                top_overlap,
                shared_contexts: rng.below(6) as u32,
                activation_correlation,
                score: change_score(top_overlap, activation_correlation, std_baseline, std),
            }
        })
        .collect();
    [
        LayerRecord::Roles(LayerRoles { connector_participation: SYNTH_CONNECTOR_PARTICIPATION, neurons }),
        LayerRecord::Changes(LayerChanges { baseline: config.model_name.clone(), neurons: changes }),
    ]
}

/// The model's `groups` record and each neuron's group: one group of three to six members per
/// sixteen neurons, none in two groups, most cohesive first.
pub(crate) fn groups(config: &SynthConfig, sampler: &ZipfSampler) -> (ModelRecord, Vec<Option<u32>>) {
    let mut rng = SynthRng::new(config.seed, &[RELATIONS_STREAM]);
    let n = config.n_layers as usize * config.d_mlp as usize;
    let mut membership = vec![None; n];
    let mut groups = Vec::new();
    for _ in 0..(n / 16).max(1) {
        let size = 3 + rng.below(4) as usize;
        let mut members: Vec<NeuronIndex> = Vec::new();
        for _ in 0..size * 4 {
            let neuron = random_neuron(config, &mut rng);
            let node = neuron.layer as usize * config.d_mlp as usize + neuron.index as usize;
            if membership[node].is_none() && members.len() < size {
                membership[node] = Some(u32::MAX);
                members.push(neuron);
            }
        }
        if members.len() < 2 {
            continue;
        }
        members.sort();
        let contexts = (0..2)
            .map(|_| {
                let length = 8 + rng.below(16) as usize;
                let tokens: Vec<u32> = (0..length).map(|_| sampler.sample(&mut rng)).collect();
                let scores = (0..length).map(|_| (rng.normal() * 1.5) as f32).collect();
                GroupContext {
                    dataset_index: rng.below(1 << 20),
                    tokens,
                    scores,
                    firing: rng.below(members.len() as u64 + 1) as u32,
                }
            })
            .collect();
        groups.push(NeuronGroup { members, cohesion: (0.3 + 0.6 * rng.unit()) as f32, contexts });
    }
    groups.sort_by(|a, b| b.cohesion.total_cmp(&a.cohesion));
    for (number, group) in groups.iter().enumerate() {
        for member in &group.members {
            membership[member.layer as usize * config.d_mlp as usize + member.index as usize] = Some(number as u32);
        }
    }
    let method = "synthetic groups of random neurons".to_owned();
    (ModelRecord::Groups(NeuronGroups { method, tokens: SAMPLE_TOKENS, groups }), membership)
}
