//! Writes synthetic DeepDecipher databases of a given shape (layers × neurons × examples × tokens).
//!
//! The data imitates real GELU neurons (a few trigger tokens, Zipf-distributed
//! text, heavy-tailed activations) so that sizes, compression ratios and
//! server speed measured on it carry over to recorded models. It is fully
//! deterministic for a seed, whatever the number of threads.
//!
//! # Layout
//! - [`rng`]: the deterministic generator.
//! - [`vocab`]: the vocabulary and Zipf token sampler.
//! - `neuron`: every record of one neuron.

mod neuron;
mod relations;
pub mod rng;
pub mod vocab;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;

use dd_data::{
    LayerRecord, LayerSummary, ModelMetadata, ModelRecord, NeuronIndex, NeuronRanking, NeuronSummary, Provenance,
    RankedNeuron, TokenIndex, TokenIndexEntry,
};
use dd_store::{EncodeOptions, EncodedNeuron, StoreError, StoreLocation, StoreWrite};

/// Neurons written per transaction.
const NEURONS_PER_BATCH: u64 = 512;

pub use dd_data::MODEL_RANKING_LEN;

/// The shape and content of a synthetic model.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Model name in the database.
    pub model_name: String,
    /// Number of layers.
    pub n_layers: u32,
    /// Neurons per layer.
    pub d_mlp: u32,
    /// Top examples per neuron.
    pub n_examples: u32,
    /// Bottom examples per neuron (0 for none).
    pub n_bottom_examples: u32,
    /// Tokens per example.
    pub n_tokens: u32,
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Replace a model of the same name instead of failing.
    pub replace: bool,
    /// Worker threads generating and encoding neurons.
    pub n_threads: usize,
}

/// What [`synthesize`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSummary {
    /// Neurons written.
    pub n_neurons: u64,
    /// Neuron-level records written.
    pub n_records: u64,
}

/// Why a synthetic database could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The requested shape is unusable.
    #[error("bad shape: {0}")]
    BadShape(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Encoding a record failed (a bug in the generator).
    #[error("encoding neuron {layer}/{index}: {source}")]
    Codec {
        /// Layer of the neuron.
        layer: u32,
        /// Index of the neuron.
        index: u32,
        /// The codec's error.
        #[source]
        source: dd_store::CodecError,
    },
}

/// Metadata of the synthetic model described by `config`.
pub fn metadata(config: &SynthConfig) -> ModelMetadata {
    let d_model = u64::from(config.d_mlp / 4).max(1);
    let n_layers = u64::from(config.n_layers);
    ModelMetadata {
        name: config.model_name.clone(),
        architecture: "synthetic".into(),
        n_layers,
        d_mlp: config.d_mlp.into(),
        d_model,
        activation_function: "gelu".into(),
        dataset: "synthetic Zipf text".into(),
        training_dataset: None,
        n_parameters: (12 * n_layers)
            .saturating_mul(d_model)
            .saturating_mul(d_model)
            .saturating_add(u64::from(config.vocab_size).saturating_mul(d_model)),
        context_length: config.n_tokens.into(),
        provenance: Provenance {
            data_source: format!("synthetic (seed {})", config.seed),
            model_source: None,
            weights: None,
            tokens_recorded: n_layers
                .max(1)
                .saturating_mul(u64::from(config.d_mlp))
                .saturating_mul(neuron::STATS_SAMPLE as u64),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            recorded_at: "1970-01-01T00:00:00Z".into(),
        },
    }
}

/// Writes a synthetic model into the SQLite database at `path` and finishes it;
/// `progress(done, total)` counts neurons.
pub fn synthesize(
    path: &Path,
    config: &SynthConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SynthSummary, SynthError> {
    validate(config)?;
    let mut store = StoreLocation::SqliteFile(path.to_owned()).open_writer(EncodeOptions::STANDARD)?;
    let summary = synthesize_into(&mut *store, config, progress)?;
    store.finish()?;
    Ok(summary)
}

/// Writes a synthetic model through any store's writer, encoded with its options; the caller
/// finishes the store. `progress(done, total)` counts neurons.
pub fn synthesize_into(
    store: &mut dyn StoreWrite,
    config: &SynthConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SynthSummary, SynthError> {
    validate(config)?;
    if config.replace {
        store.delete_model(&config.model_name)?;
    }
    let (model, source) = store.add_model(&metadata(config))?;
    let encode = store.encode_options();
    let vocabulary = vocab::vocabulary(config.vocab_size, config.seed);
    let sampler = vocab::ZipfSampler::new(config.vocab_size);
    let n_layers = config.n_layers;
    let n_neurons = u64::from(n_layers) * u64::from(config.d_mlp);
    let n_threads = config.n_threads.max(1);

    let mut summaries = vec![vec![None::<(NeuronSummary, f32)>; config.d_mlp as usize]; n_layers as usize];
    let mut token_neurons: BTreeMap<String, (Vec<NeuronIndex>, Vec<NeuronIndex>)> = BTreeMap::new();
    let mut n_records = 0u64;

    type Generated = Result<(u32, u32, Vec<EncodedNeuron>, neuron::GeneratedNeuron), SynthError>;
    std::thread::scope(|scope| -> Result<(), SynthError> {
        // Bounded, so generators cannot run far ahead of the writer and fill memory.
        let (sender, receiver) = mpsc::sync_channel::<Generated>(256);
        for worker in 0..n_threads {
            let sender = sender.clone();
            let (vocabulary, sampler) = (&vocabulary, &sampler);
            scope.spawn(move || {
                for global in (worker as u64..n_neurons).step_by(n_threads) {
                    let (layer, index) =
                        ((global / u64::from(config.d_mlp)) as u32, (global % u64::from(config.d_mlp)) as u32);
                    let generated = neuron::generate(config, vocabulary, sampler, layer, index);
                    let relations = relations::neuron_relations(config, layer, index);
                    let encoded = generated
                        .records
                        .iter()
                        .chain(&relations)
                        .map(|r| EncodedNeuron::new(r, &encode))
                        .collect::<Result<Vec<_>, _>>()
                        .map(|encoded| (layer, index, encoded, generated))
                        .map_err(|source| SynthError::Codec { layer, index, source });
                    if sender.send(encoded).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        let mut batch = store.batch()?;
        let mut done = 0u64;
        for message in receiver {
            let (layer, index, encoded, generated) = message?;
            for record in &encoded {
                batch.put_encoded_neuron(source, layer, index, record)?;
            }
            n_records += encoded.len() as u64;
            let neuron = NeuronIndex { layer, index };
            for &token in &generated.activating_tokens {
                let key = neuron::normalise(vocabulary.token(token).unwrap_or_default());
                token_neurons.entry(key).or_default().0.push(neuron);
            }
            for &token in &generated.important_tokens {
                let key = neuron::normalise(vocabulary.token(token).unwrap_or_default());
                token_neurons.entry(key).or_default().1.push(neuron);
            }
            summaries[layer as usize][index as usize] = Some((generated.summary, generated.score));
            done += 1;
            if done % NEURONS_PER_BATCH == 0 {
                batch.commit()?;
                batch = store.batch()?;
                progress(done, n_neurons);
            }
        }
        batch.commit()?;
        progress(done, n_neurons);
        Ok(())
    })?;

    let mut batch = store.batch()?;
    let (groups, membership) = relations::groups(config, &sampler);
    batch.put_model(model, &groups)?;
    let mut model_ranking = Vec::new();
    for (layer, layer_summaries) in summaries.into_iter().enumerate() {
        let layer = layer as u32;
        let (neurons, scores): (Vec<NeuronSummary>, Vec<f32>) =
            layer_summaries.into_iter().map(|s| s.expect("every neuron was generated")).unzip();
        let ranking = NeuronRanking::from_unsorted(
            scores
                .iter()
                .enumerate()
                .map(|(index, &score)| RankedNeuron { neuron: NeuronIndex { layer, index: index as u32 }, score })
                .collect(),
        );
        model_ranking.extend(ranking.neurons.iter().take(MODEL_RANKING_LEN).copied());
        batch.put_layer(source, layer, &LayerRecord::Ranking(ranking))?;
        batch.put_layer(source, layer, &LayerRecord::Summary(LayerSummary { neurons }))?;
        for record in relations::layer_relations(config, layer, &membership) {
            batch.put_layer(source, layer, &record)?;
        }
    }
    let mut model_ranking = NeuronRanking::from_unsorted(model_ranking);
    model_ranking.neurons.truncate(MODEL_RANKING_LEN);
    batch.put_model(model, &ModelRecord::Ranking(model_ranking))?;
    let entries = token_neurons
        .into_iter()
        .filter(|(token, _)| !token.is_empty())
        .map(|(token, (mut activating, mut important))| {
            activating.sort();
            activating.dedup();
            important.sort();
            important.dedup();
            TokenIndexEntry { token, activating, important }
        })
        .collect();
    batch.put_model(model, &ModelRecord::TokenIndex(TokenIndex { entries }))?;
    batch.put_model(model, &ModelRecord::Vocabulary(vocabulary))?;
    batch.commit()?;
    Ok(SynthSummary { n_neurons, n_records })
}

/// Refuses shapes the generator cannot fill, before anything is written.
fn validate(config: &SynthConfig) -> Result<(), SynthError> {
    if config.n_layers == 0 || config.d_mlp == 0 {
        return Err(SynthError::BadShape("layers and neurons must be at least 1"));
    }
    if config.n_tokens == 0 || config.vocab_size < 2 {
        return Err(SynthError::BadShape("tokens must be at least 1 and the vocabulary at least 2"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
