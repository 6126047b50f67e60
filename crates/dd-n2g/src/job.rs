//! Building graphs for many neurons of a recorded model and writing them into its database: which
//! neurons, in what order, in parallel, resumable, then the token index and similar neurons over
//! every graph the model has.
//!
//! Resuming: graphs are committed in batches as they are built, and a neuron that already has a
//! graph is skipped, so a killed run loses at most its open batch and a rerun continues. The index
//! and similarity are rebuilt from every stored graph at the end of each run (seconds, even for
//! gpt2-small's 36,864 neurons), so they never describe a partial set for long.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dd_data::{Example, ExampleGroupKind, ModelRecord, NeuronDataKind, NeuronIndex, NeuronRecord, NeuronStats};
use dd_store::{
    EncodedNeuron, ModelEntry, NeuronChoice, SourceEntry, StoreLocation, StoreRead, choose_neurons, find_model,
};
use rayon::prelude::*;

use crate::N2gError;
use crate::build::{BuildConfig, BuiltGraph, NeuronInput, TokenTexts, build_neuron};
use crate::index::{graph_tokens, token_index};
use crate::probe::ActivationSource;
use crate::similar::{SimilarityConfig, similar_neurons};
use crate::substitutes::Substitutes;

/// A graph-building run.
#[derive(Clone, Debug)]
pub struct N2gJob {
    /// The model in the database.
    pub model_name: String,
    /// Which neurons.
    pub choice: NeuronChoice,
    /// How each graph is built.
    pub config: BuildConfig,
    /// The token every context starts with, if the model has one.
    pub bos: Option<u32>,
    /// Graphs committed per batch: what a kill can lose.
    pub commit_every: usize,
    /// Similar neurons.
    pub similarity: SimilarityConfig,
}

/// What a run reports as it goes, for the binary's progress bar.
#[derive(Clone, Debug, PartialEq)]
pub enum N2gEvent {
    /// The neurons are chosen: `to_build` of `chosen` still need a graph.
    Planned {
        /// Neurons chosen.
        chosen: usize,
        /// Of those, neurons without a graph yet.
        to_build: usize,
    },
    /// One neuron's graph is built (not yet committed).
    Built {
        /// The neuron.
        neuron: NeuronIndex,
        /// F1 on its held-out top examples, where defined.
        held_out_f1: Option<f64>,
    },
    /// A neuron has no graph: the reason (it never activates, or its examples are missing).
    Skipped {
        /// The neuron.
        neuron: NeuronIndex,
        /// Why.
        reason: String,
    },
    /// Graphs up to here are in the database.
    Committed {
        /// Graphs committed in this run so far.
        built: usize,
    },
    /// Building the token index and similar neurons over every graph of the model.
    Indexing {
        /// Graphs indexed.
        graphs: usize,
    },
}

/// What a finished run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct N2gSummary {
    /// Neurons chosen.
    pub chosen: usize,
    /// Graphs built in this run.
    pub built: usize,
    /// Neurons that already had a graph.
    pub already_built: usize,
    /// Neurons skipped, with the reason.
    pub skipped: Vec<(NeuronIndex, String)>,
    /// Graphs the token index and similarity cover.
    pub indexed: usize,
    /// Mean held-out-top F1 over the graphs built in this run where defined, and over random examples.
    pub mean_f1: (Option<f64>, Option<f64>),
    /// Wall time building graphs.
    pub build_time: Duration,
    /// Wall time indexing.
    pub index_time: Duration,
}

/// The model and tokenizer data a run needs besides the database.
pub struct N2gModel<'a> {
    /// Activations of the model's neurons.
    pub source: &'a dyn ActivationSource,
    /// Replacement tokens for augmentation.
    pub substitutes: &'a dyn Substitutes,
    /// The text of every token.
    pub texts: &'a TokenTexts,
}

/// Builds the chosen neurons' graphs into the database at `location`, then its token index and
/// similar neurons. `stop` ends the run after the current batch with [`N2gError::Stopped`];
/// everything committed stays.
pub fn build_graphs(
    location: &StoreLocation,
    model: &N2gModel<'_>,
    job: &N2gJob,
    stop: &AtomicBool,
    events: &(dyn Fn(N2gEvent) + Sync),
) -> Result<N2gSummary, N2gError> {
    let mut writer = location.open_writer(dd_store::EncodeOptions::STANDARD)?;
    let reader = location.open_reader()?;
    let (entry, source) =
        find_model(reader.as_ref(), &job.model_name, NeuronDataKind::Examples, "to build graphs from")?;
    let (n_layers, n_neurons) = model.source.shape();
    if (n_layers as u64, n_neurons as u64) != (source.info.n_layers, source.info.units_per_layer) {
        return Err(N2gError::Invalid(format!(
            "the model has {n_layers} layers of {n_neurons} neurons but {:?} in the database has {} of {}",
            job.model_name, source.info.n_layers, source.info.units_per_layer
        )));
    }
    let chosen = choose_neurons(reader.as_ref(), &source, &job.choice)?;
    let mut to_build = Vec::new();
    for &neuron in &chosen {
        if reader.neuron_blob(source.id, neuron.layer, neuron.index, NeuronDataKind::Graph)?.is_none() {
            to_build.push(neuron);
        }
    }
    // Neurons of one layer together: their prompts share the probe's cached layer rows.
    to_build.sort_unstable();
    events(N2gEvent::Planned { chosen: chosen.len(), to_build: to_build.len() });
    let mut summary =
        N2gSummary { chosen: chosen.len(), already_built: chosen.len() - to_build.len(), ..Default::default() };

    let started = Instant::now();
    let options = writer.encode_options();
    let skipped = Mutex::new(Vec::new());
    let (mut f1_top, mut f1_random) = (Vec::new(), Vec::new());
    for chunk in to_build.chunks(job.commit_every.max(1)) {
        if stop.load(Ordering::Relaxed) {
            return Err(N2gError::Stopped);
        }
        let built: Vec<(NeuronIndex, BuiltGraph, EncodedNeuron)> = chunk
            .par_iter()
            .map(|&neuron| -> Result<Option<_>, N2gError> {
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                let input = match neuron_input(reader.as_ref(), &source, neuron)? {
                    Ok(input) => input,
                    Err(reason) => {
                        events(N2gEvent::Skipped { neuron, reason: reason.clone() });
                        skipped.lock().map_err(|_| poisoned())?.push((neuron, reason));
                        return Ok(None);
                    }
                };
                let built =
                    match build_neuron(&input, job.bos, model.source, model.substitutes, model.texts, &job.config) {
                        Ok(built) => built,
                        Err(N2gError::Invalid(reason)) => {
                            events(N2gEvent::Skipped { neuron, reason: reason.clone() });
                            skipped.lock().map_err(|_| poisoned())?.push((neuron, reason));
                            return Ok(None);
                        }
                        Err(error) => return Err(error),
                    };
                let encoded = EncodedNeuron::new(&NeuronRecord::Graph(built.graph.clone()), &options)
                    .map_err(|e| N2gError::Invalid(format!("graph of {}/{}: {e}", neuron.layer, neuron.index)))?;
                if let Some(scores) = &built.graph.scores {
                    tracing::debug!(
                        layer = neuron.layer,
                        neuron = neuron.index,
                        nodes = built.graph.nodes.len(),
                        ?built.work,
                        ?scores.held_out_top,
                        ?scores.random,
                        "built a graph"
                    );
                }
                events(N2gEvent::Built {
                    neuron,
                    held_out_f1: built.graph.scores.as_ref().and_then(|s| s.held_out_top.f1()),
                });
                Ok(Some((neuron, built, encoded)))
            })
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()?;
        let mut batch = writer.batch()?;
        for (neuron, built, encoded) in &built {
            batch.put_encoded_neuron(source.id, neuron.layer, neuron.index, encoded)?;
            if let Some(scores) = &built.graph.scores {
                f1_top.extend(scores.held_out_top.f1());
                f1_random.extend(scores.random.f1());
            }
        }
        batch.commit()?;
        summary.built += built.len();
        events(N2gEvent::Committed { built: summary.built });
    }
    if stop.load(Ordering::Relaxed) {
        return Err(N2gError::Stopped);
    }
    summary.build_time = started.elapsed();
    summary.skipped = skipped.into_inner().map_err(|_| poisoned())?;
    summary.mean_f1 = (mean(&f1_top), mean(&f1_random));

    // Readers would keep SQLite from leaving WAL mode when the writer finishes.
    drop(reader);
    let started = Instant::now();
    summary.indexed = write_index(location, writer.as_mut(), &entry, &source, &job.similarity, events)?;
    summary.index_time = started.elapsed();
    writer.finish()?;
    Ok(summary)
}

/// Rebuilds the token index and every graph's similar neurons from the graphs stored for a model,
/// through `writer`; returns the number of graphs. Also what importing graphs ends with.
pub fn write_index(
    location: &StoreLocation,
    writer: &mut dyn dd_store::StoreWrite,
    entry: &ModelEntry,
    source: &SourceEntry,
    similarity: &SimilarityConfig,
    events: &(dyn Fn(N2gEvent) + Sync),
) -> Result<usize, N2gError> {
    // A fresh reader: the catalog of the one opened before this run's writes may not list graphs yet.
    let reader = location.open_reader()?;
    let mut graphs = Vec::new();
    for layer in 0..source.info.n_layers as u32 {
        for index in 0..source.info.units_per_layer as u32 {
            if let Some(NeuronRecord::Graph(graph)) =
                reader.neuron_record(source, layer, index, NeuronDataKind::Graph)?
            {
                let threshold = graph.scores.as_ref().map_or(0.5, |s| s.threshold);
                graphs.push((NeuronIndex { layer, index }, graph_tokens(&graph, threshold)));
            }
        }
    }
    events(N2gEvent::Indexing { graphs: graphs.len() });
    let n_graphs = graphs.len();
    let index = token_index(graphs.iter().cloned());
    let similar = similar_neurons(&index, similarity);
    let mut batch = writer.batch()?;
    batch.put_model(entry.id, &ModelRecord::TokenIndex(index))?;
    let mut with_neighbours = std::collections::HashSet::new();
    for (neuron, neighbours) in similar {
        with_neighbours.insert(neuron);
        batch.put_neuron(source.id, neuron.layer, neuron.index, &NeuronRecord::Similar(neighbours))?;
    }
    // A graph without neighbours says so, rather than keeping a list from an earlier run.
    for (neuron, _) in &graphs {
        if !with_neighbours.contains(neuron) {
            batch.put_neuron(source.id, neuron.layer, neuron.index, &NeuronRecord::Similar(Default::default()))?;
        }
    }
    batch.commit()?;
    Ok(n_graphs)
}

/// A neuron's examples and scale from the store, or why it cannot have a graph.
fn neuron_input(
    reader: &dyn StoreRead,
    source: &SourceEntry,
    neuron: NeuronIndex,
) -> Result<Result<NeuronInput, String>, N2gError> {
    let Some(NeuronRecord::Examples(examples)) =
        reader.neuron_record(source, neuron.layer, neuron.index, NeuronDataKind::Examples)?
    else {
        return Ok(Err("no recorded examples".into()));
    };
    let top = examples.examples_of(ExampleGroupKind::Top);
    let random = examples.examples_of(ExampleGroupKind::Random);
    if top.is_empty() {
        return Ok(Err("no top examples".into()));
    }
    let stats = match reader.neuron_record(source, neuron.layer, neuron.index, NeuronDataKind::Stats)? {
        Some(NeuronRecord::Stats(stats)) => Some(stats),
        _ => None,
    };
    let scale = scale(stats.as_ref(), &top);
    Ok(Ok(NeuronInput { layer: neuron.layer, neuron: neuron.index, top, random, scale }))
}

/// The neuron's recorded maximum without BOS: the statistics' when recorded, else the top example's.
fn scale(stats: Option<&NeuronStats>, top: &[Example]) -> f32 {
    match stats {
        Some(stats) => stats.max as f32,
        None => top.iter().map(Example::max_activation).fold(f32::NEG_INFINITY, f32::max),
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn poisoned() -> N2gError {
    N2gError::Invalid("a building thread panicked".into())
}

/// Tokens a pattern never holds: the tokenizer's special tokens (BOS, EOS, chat markers).
pub fn special_tokens(tokenizer: &dd_model::Tokenizer) -> Vec<u32> {
    (0..tokenizer.vocab_size() as u32).filter(|&id| tokenizer.is_special(id)).collect()
}

/// The standard settings for a model: the original's, with a mask token the vocabulary treats as
/// "nothing here": a padding or unknown token when it has one, else its BOS (which is also GPT-2's
/// and SmolLM2's end-of-text token). The original's id 1 was its tokenizer's padding token; in GPT-2
/// id 1 is `"`, a real token whose meaning would leak into every importance.
pub fn standard_config(tokenizer: &dd_model::Tokenizer) -> BuildConfig {
    const NEUTRAL: [&[u8]; 6] = [b"<|padding|>", b"<pad>", b"[PAD]", b"<|pad|>", b"<unk>", b"[UNK]"];
    let by_name = NEUTRAL
        .iter()
        .find_map(|name| (0..tokenizer.vocab_size() as u32).find(|&id| tokenizer.token_bytes(id) == Some(*name)));
    let mask = by_name.or(tokenizer.bos_token_id()).unwrap_or(0);
    BuildConfig::standard(mask, special_tokens(tokenizer))
}

impl N2gJob {
    /// The standard run for a model: the original's settings ([`standard_config`]), graphs committed
    /// eight at a time, similar neurons by [`SimilarityConfig::STANDARD`].
    pub fn standard(model_name: &str, tokenizer: &dd_model::Tokenizer, choice: NeuronChoice) -> Self {
        Self {
            model_name: model_name.to_owned(),
            choice,
            config: standard_config(tokenizer),
            bos: tokenizer.bos_token_id(),
            commit_every: 8,
            similarity: SimilarityConfig::STANDARD,
        }
    }
}
