//! The runs the binary and the Python package start: `relate` (correlations and groups, roles,
//! embeddings of one recorded model, written into its database) and `compare` (one model's change
//! against a baseline, with the baseline copied beside it).
//!
//! A run computes everything first and writes at the end through one `StoreWrite`, in batches;
//! a stopped run writes nothing, and a rerun replaces what an earlier one wrote.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::DType;
use dd_data::{
    EmbeddingSource, LayerRecord, LayerRoles, ModelDataKind, ModelRecord, NeuronConnections, NeuronDataKind,
    NeuronIndex, NeuronRecord, SimilarNeuron,
};
use dd_model::Transformer;
use dd_model::correlation::{ActivationSample, CorrelationOptions};
use dd_store::{EncodedNeuron, SourceEntry, StoreLocation, StoreRead, StoreWrite, copy_model, find_model};
use rayon::prelude::*;

use crate::RelateError;
use crate::compare::{ComparedModel, compare_models};
use crate::correlate::{correlate, sample_activations};
use crate::embed::{TokenSet, embed, embedding_record, nearest};
use crate::groups::{GroupOptions, find_groups};
use crate::roles::{RoleOptions, WeightGraph, neuron_roles};
use crate::sample::sample_contexts;

/// Records written per transaction.
const COMMIT_EVERY: usize = 4096;

/// Which relations a run computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelateParts {
    /// Correlations and the co-activating groups found from them (needs the model).
    pub correlations: bool,
    /// Roles in the weight graph (needs the stored connections).
    pub roles: bool,
    /// Behaviour embeddings and their neighbours (needs the model's token embeddings).
    pub embeddings: bool,
}

/// A run over one recorded model.
#[derive(Clone, Debug)]
pub struct RelateJob {
    /// The model in the database.
    pub model_name: String,
    /// What to compute.
    pub parts: RelateParts,
    /// Tokens the correlations are measured on.
    pub token_budget: usize,
    /// Chooses the sampled contexts.
    pub seed: u64,
    /// Correlated neurons kept per list, and the tile size.
    pub correlation: CorrelationOptions,
    /// How groups are found.
    pub groups: GroupOptions,
    /// How roles are computed.
    pub roles: RoleOptions,
    /// Embedding neighbours kept per neuron.
    pub neighbours: usize,
}

impl RelateJob {
    /// The CLI's defaults: everything, over 20,000 tokens, ten correlated neurons each way and ten
    /// neighbours.
    pub fn standard(model_name: &str) -> Self {
        Self {
            model_name: model_name.to_owned(),
            parts: RelateParts { correlations: true, roles: true, embeddings: true },
            token_budget: 20_000,
            seed: 0,
            correlation: CorrelationOptions::default(),
            groups: GroupOptions::default(),
            roles: RoleOptions::default(),
            neighbours: 10,
        }
    }
}

/// What a run reports as it goes, for a progress bar.
#[derive(Clone, Debug, PartialEq)]
pub enum RelateEvent {
    /// The contexts are chosen.
    Sampled {
        /// Contexts in the sample.
        contexts: usize,
        /// Tokens measured.
        tokens: usize,
        /// Bytes the activation sample takes.
        bytes: u64,
    },
    /// Tokens run through the model so far.
    Running {
        /// Done.
        done: usize,
        /// In all.
        total: usize,
    },
    /// Correlations computed so far.
    Correlating {
        /// Done.
        done: u64,
        /// In all.
        total: u64,
    },
    /// A step finished: its name and how long it took.
    Finished {
        /// The step.
        step: &'static str,
        /// Its wall time.
        took: Duration,
    },
    /// A step left out, and why.
    Skipped {
        /// The step.
        step: &'static str,
        /// Why.
        reason: String,
    },
}

/// What a finished run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RelateSummary {
    /// Tokens the correlations were measured on (0 when not computed).
    pub tokens: usize,
    /// Contexts they came from.
    pub contexts: usize,
    /// Groups found, and neurons in them.
    pub groups: (usize, usize),
    /// Edges of the weight graph (0 when roles were not computed).
    pub edges: usize,
    /// Neurons embedded: from their graph, from their activating tokens.
    pub embedded: (usize, usize),
    /// Wall time of each step, in order.
    pub steps: Vec<(&'static str, Duration)>,
}

/// Computes `job`'s relations for a model of the database at `location` and writes them into it.
/// `model` is the recorded model, needed for correlations and embeddings; `stop` ends the run
/// between steps (and between model runs) with [`RelateError::Stopped`], before anything is written.
pub fn relate(
    location: &StoreLocation,
    model: Option<&Transformer>,
    job: &RelateJob,
    stop: &AtomicBool,
    events: &(dyn Fn(RelateEvent) + Sync),
) -> Result<RelateSummary, RelateError> {
    let reader = location.open_reader()?;
    let (entry, source) = find_model(reader.as_ref(), &job.model_name, NeuronDataKind::Stats, "to relate")?;
    let (n_layers, per_layer) = (source.info.n_layers as usize, source.info.units_per_layer as usize);
    if let Some(model) = model {
        let config = model.config();
        if (config.n_layers, config.d_mlp) != (n_layers, per_layer) {
            return Err(RelateError::Invalid(format!(
                "the model has {} layers of {} neurons but {:?} in the database has {n_layers} of {per_layer}",
                config.n_layers, config.d_mlp, job.model_name
            )));
        }
    }
    let needs_model =
        |step: &str| RelateError::Invalid(format!("{step} need the recorded model: pass it, or leave {step} out"));
    let mut summary = RelateSummary::default();
    let timed = |step: &'static str, started: Instant, summary: &mut RelateSummary| {
        let took = started.elapsed();
        summary.steps.push((step, took));
        events(RelateEvent::Finished { step, took });
    };
    let check_stop = || if stop.load(Ordering::Relaxed) { Err(RelateError::Stopped) } else { Ok(()) };

    let mut neuron_records: Vec<(NeuronIndex, NeuronRecord)> = Vec::new();
    let mut membership: Vec<Option<u32>> = Vec::new();
    let mut groups_record = None;
    if job.parts.correlations {
        let model = model.ok_or_else(|| needs_model("correlations"))?;
        let started = Instant::now();
        let skip_first = match reader.neuron_record(&source, 0, 0, NeuronDataKind::Stats)? {
            Some(NeuronRecord::Stats(stats)) => stats.bos.is_some(),
            _ => false,
        };
        let sample = sample_contexts(reader.as_ref(), &source, job.token_budget, skip_first, job.seed)?;
        let tokens = sample.tokens();
        events(RelateEvent::Sampled {
            contexts: sample.contexts.len(),
            tokens,
            bytes: ActivationSample::memory_bytes(n_layers * per_layer, tokens),
        });
        summary.tokens = tokens;
        summary.contexts = sample.contexts.len();
        let activations =
            sample_activations(model, &sample, stop, &|done| events(RelateEvent::Running { done, total: tokens }))?;
        timed("model runs", started, &mut summary);
        check_stop()?;
        let started = Instant::now();
        let total = (n_layers * per_layer) as u64 * (n_layers * per_layer) as u64;
        let done = std::sync::atomic::AtomicU64::new(0);
        let correlations = correlate(&activations, per_layer, &job.correlation, &|step| {
            let done = done.fetch_add(step, Ordering::Relaxed) + step;
            events(RelateEvent::Correlating { done, total });
        })?;
        timed("correlations", started, &mut summary);
        check_stop()?;
        let started = Instant::now();
        let (groups, members) = find_groups(&correlations, per_layer, &activations, &sample, &job.groups);
        summary.groups = (groups.groups.len(), members.iter().flatten().count());
        timed("groups", started, &mut summary);
        membership = members;
        groups_record = Some(groups);
        neuron_records.extend(
            correlations
                .into_iter()
                .enumerate()
                .map(|(node, lists)| (index_of(node, per_layer), NeuronRecord::Correlations(lists))),
        );
    } else if let Some(ModelRecord::Groups(groups)) = reader.model_record(&entry, ModelDataKind::Groups)? {
        // Roles name the groups of an earlier run.
        membership = vec![None; n_layers * per_layer];
        for (number, group) in groups.groups.iter().enumerate() {
            for member in &group.members {
                if let Some(slot) = membership.get_mut(member.layer as usize * per_layer + member.index as usize) {
                    *slot = Some(number as u32);
                }
            }
        }
    }
    check_stop()?;

    let mut roles_records = Vec::new();
    if job.parts.roles {
        if source.neuron_kinds.contains(&NeuronDataKind::Connections) {
            let started = Instant::now();
            let connections = read_all(reader.as_ref(), &source, NeuronDataKind::Connections, |record| match record {
                NeuronRecord::Connections(connections) => Some(connections),
                _ => None,
            })?;
            let graph = WeightGraph::from_connections(
                n_layers as u32,
                per_layer as u32,
                connections.iter().map(|(neuron, lists): &(NeuronIndex, NeuronConnections)| (*neuron, lists)),
            );
            summary.edges = graph.edges();
            let (roles, connector_participation) = neuron_roles(&graph, &membership, &job.roles);
            roles_records = roles
                .chunks(per_layer)
                .map(|layer| LayerRecord::Roles(LayerRoles { connector_participation, neurons: layer.to_vec() }))
                .collect();
            timed("roles", started, &mut summary);
        } else {
            events(RelateEvent::Skipped { step: "roles", reason: "the recording has no weight connections".into() });
        }
    }
    check_stop()?;

    if job.parts.embeddings {
        let model = model.ok_or_else(|| needs_model("embeddings"))?;
        let started = Instant::now();
        let embedding = model.token_embedding().to_dtype(DType::F32)?;
        let dimension = embedding.dim(1)?;
        let table: Vec<f32> = embedding.flatten_all()?.to_vec1()?;
        let has_graphs = source.neuron_kinds.contains(&NeuronDataKind::Graph);
        let sets: Vec<Option<TokenSet>> = (0..n_layers * per_layer)
            .into_par_iter()
            .map(|node| -> Result<Option<TokenSet>, RelateError> {
                let at = index_of(node, per_layer);
                if has_graphs {
                    if let Some(NeuronRecord::Graph(graph)) =
                        reader.neuron_record(&source, at.layer, at.index, NeuronDataKind::Graph)?
                    {
                        if let Some(set) = TokenSet::from_graph(&graph) {
                            return Ok(Some(set));
                        }
                    }
                }
                Ok(match reader.neuron_record(&source, at.layer, at.index, NeuronDataKind::ActivatingTokens)? {
                    Some(NeuronRecord::ActivatingTokens(tokens)) => TokenSet::from_activating_tokens(&tokens.tokens),
                    _ => None,
                })
            })
            .collect::<Result<_, _>>()?;
        let embedded: Vec<(usize, EmbeddingSource, Vec<f32>)> = sets
            .into_iter()
            .enumerate()
            .filter_map(|(node, set)| {
                let set = set?;
                Some((node, set.source, embed(&set, &table, dimension)?))
            })
            .collect();
        let vectors: Vec<Vec<f32>> = embedded.iter().map(|(_, _, vector)| vector.clone()).collect();
        let neighbours = nearest(&vectors, job.neighbours)?;
        let from_graphs = embedded.iter().filter(|(_, source, _)| *source == EmbeddingSource::Graph).count();
        summary.embedded = (from_graphs, embedded.len() - from_graphs);
        for ((node, source, vector), near) in embedded.iter().zip(neighbours) {
            let near = near
                .into_iter()
                .map(|(other, similarity)| {
                    let at = index_of(embedded[other].0, per_layer);
                    SimilarNeuron { layer: at.layer, index: at.index, similarity: similarity.clamp(0.0, 1.0) }
                })
                .collect();
            neuron_records
                .push((index_of(*node, per_layer), NeuronRecord::Embedding(embedding_record(*source, vector, near))));
        }
        timed("embeddings", started, &mut summary);
    }
    check_stop()?;
    drop(reader);

    let started = Instant::now();
    let mut writer = location.open_writer(dd_store::EncodeOptions::STANDARD)?;
    write_records(writer.as_mut(), &source, &entry, neuron_records, roles_records, groups_record)?;
    writer.finish()?;
    timed("writing", started, &mut summary);
    Ok(summary)
}

fn index_of(node: usize, per_layer: usize) -> NeuronIndex {
    NeuronIndex { layer: (node / per_layer) as u32, index: (node % per_layer) as u32 }
}

/// Every neuron's record of one kind that `pick` accepts, in order.
fn read_all<T: Send>(
    reader: &dyn StoreRead,
    source: &SourceEntry,
    kind: NeuronDataKind,
    pick: impl Fn(NeuronRecord) -> Option<T> + Sync,
) -> Result<Vec<(NeuronIndex, T)>, RelateError> {
    let per_layer = source.info.units_per_layer as usize;
    let nodes = source.info.n_layers as usize * per_layer;
    let found: Vec<Option<(NeuronIndex, T)>> = (0..nodes)
        .into_par_iter()
        .map(|node| -> Result<_, RelateError> {
            let at = index_of(node, per_layer);
            Ok(reader.neuron_record(source, at.layer, at.index, kind)?.and_then(&pick).map(|value| (at, value)))
        })
        .collect::<Result<_, _>>()?;
    Ok(found.into_iter().flatten().collect())
}

fn write_records(
    writer: &mut dyn StoreWrite,
    source: &SourceEntry,
    entry: &dd_store::ModelEntry,
    neurons: Vec<(NeuronIndex, NeuronRecord)>,
    roles: Vec<LayerRecord>,
    groups: Option<dd_data::NeuronGroups>,
) -> Result<(), RelateError> {
    let options = writer.encode_options();
    for chunk in neurons.chunks(COMMIT_EVERY) {
        let encoded: Vec<(NeuronIndex, EncodedNeuron)> = chunk
            .par_iter()
            .map(|(neuron, record)| {
                EncodedNeuron::new(record, &options).map(|encoded| (*neuron, encoded)).map_err(|error| {
                    RelateError::Invalid(format!(
                        "{} of {}/{}: {error}",
                        record.kind().name(),
                        neuron.layer,
                        neuron.index
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let mut batch = writer.batch()?;
        for (neuron, encoded) in &encoded {
            batch.put_encoded_neuron(source.id, neuron.layer, neuron.index, encoded)?;
        }
        batch.commit()?;
    }
    let mut batch = writer.batch()?;
    for (layer, record) in roles.iter().enumerate() {
        batch.put_layer(source.id, layer as u32, record)?;
    }
    if let Some(groups) = groups {
        batch.put_model(entry.id, &ModelRecord::Groups(groups))?;
    }
    batch.commit()?;
    Ok(())
}

/// A comparison of a model with a baseline recording of the same architecture and dataset.
#[derive(Clone, Debug)]
pub struct CompareJob {
    /// The database holding the baseline.
    pub baseline: StoreLocation,
    /// The baseline's name there.
    pub baseline_model: String,
    /// The database holding the compared model, where the comparison is written.
    pub current: StoreLocation,
    /// The compared model's name there.
    pub current_model: String,
    /// The baseline's name in `current`, where it is copied when the databases differ.
    pub baseline_name: String,
}

/// What a comparison did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompareSummary {
    /// Records of the baseline copied beside the compared model (0 when it was there already).
    pub copied: u64,
    /// Neurons compared.
    pub neurons: usize,
    /// The most changed neurons of the model, by score, most changed first.
    pub most_changed: Vec<(NeuronIndex, f32)>,
}

/// Compares `job`'s model with its baseline and writes each layer's changes into the compared
/// model's database, copying the baseline there first when it lives elsewhere (once: a rerun finds
/// the copy). `progress` gets the layers compared.
pub fn compare(job: &CompareJob, progress: &(dyn Fn(usize) + Sync)) -> Result<CompareSummary, RelateError> {
    let baseline_reader = job.baseline.open_reader()?;
    let (baseline_entry, baseline_source) =
        find_model(baseline_reader.as_ref(), &job.baseline_model, NeuronDataKind::Stats, "to compare with")?;
    let mut summary = CompareSummary::default();
    let same_store = same_location(&job.baseline, &job.current);
    if same_store && job.baseline_name != job.baseline_model {
        return Err(RelateError::Invalid(format!(
            "the baseline is already in this database as {:?}; its name there is the one to use",
            job.baseline_model
        )));
    }
    if !same_store {
        let catalog = job.current.existing_catalog()?.ok_or_else(|| {
            RelateError::Invalid(format!("{} does not exist: record the compared model into it first", job.current))
        })?;
        if catalog.model(&job.baseline_name).is_none() {
            let mut writer = job.current.open_writer(dd_store::EncodeOptions::STANDARD)?;
            summary.copied =
                copy_model(baseline_reader.as_ref(), &baseline_entry, writer.as_mut(), &job.baseline_name, &|_| {})?;
            writer.finish()?;
        } else {
            tracing::info!(
                name = job.baseline_name,
                "the baseline is already in the database; comparing with that copy"
            );
        }
    }
    let reader = job.current.open_reader()?;
    let (_, source) = find_model(reader.as_ref(), &job.current_model, NeuronDataKind::Stats, "to compare")?;
    let changes = compare_models(
        &ComparedModel { store: baseline_reader.as_ref(), source: &baseline_source },
        &ComparedModel { store: reader.as_ref(), source: &source },
        &job.baseline_name,
        progress,
    )?;
    drop(reader);
    let mut ranked: Vec<(NeuronIndex, f32)> =
        changes
            .iter()
            .enumerate()
            .flat_map(|(layer, changes)| {
                changes.neurons.iter().enumerate().map(move |(index, change)| {
                    (NeuronIndex { layer: layer as u32, index: index as u32 }, change.score)
                })
            })
            .collect();
    summary.neurons = ranked.len();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(10);
    summary.most_changed = ranked;
    let mut writer = job.current.open_writer(dd_store::EncodeOptions::STANDARD)?;
    let mut batch = writer.batch()?;
    for (layer, record) in changes.into_iter().enumerate() {
        batch.put_layer(source.id, layer as u32, &LayerRecord::Changes(record))?;
    }
    batch.commit()?;
    writer.finish()?;
    Ok(summary)
}

/// Whether two locations name one store (the same file, however the paths are written).
fn same_location(a: &StoreLocation, b: &StoreLocation) -> bool {
    match (a, b) {
        (StoreLocation::SqliteFile(a), StoreLocation::SqliteFile(b)) => {
            match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
                (Ok(a), Ok(b)) => a == b,
                _ => a == b,
            }
        }
        _ => a == b,
    }
}
