//! Turns a finished recording into database records: examples, statistics, activating tokens,
//! rankings, layer summaries, the vocabulary and the model's metadata.

use dd_data::{
    ActivatingTokens, Example, ExampleGroup, ExampleGroupKind, Histogram, LayerRecord, LayerSummary, MODEL_RANKING_LEN,
    ModelMetadata, ModelRecord, NeuronExamples, NeuronIndex, NeuronRanking, NeuronRecord, NeuronStats, NeuronSummary,
    PositionStats, Provenance, RankedNeuron, TokenMean, Vocabulary, interestingness,
};
use dd_model::{ModelConfig, Tokenizer};
use dd_store::{EncodeOptions, EncodedNeuron, StoreWrite};
use rayon::prelude::*;

use crate::accumulate::NeuronAccumulator;
use crate::accumulate::selection::SelectedContext;
use crate::contexts::ContextTokens;
use crate::error::RecordError;
use crate::naming::DatasetDescription;
use crate::recording::Recording;
use crate::source::ModelOrigin;

/// How to describe and store a recording.
#[derive(Debug, Clone)]
pub struct WriteConfig {
    /// The model's name in the database.
    pub model_name: String,
    /// What the data was recorded on: the model's `dataset` and the provenance's `data_source`.
    pub dataset: DatasetDescription,
    /// Where the model came from: what it was trained on, and the weights recorded from.
    pub origin: ModelOrigin,
    /// Tokens listed per neuron in its activating-token table.
    pub activating_tokens: usize,
    /// Occurrences a token needs before its mean activation is listed.
    pub min_token_count: u64,
}

impl WriteConfig {
    /// What `deepdecipher record` and `merge` write: the model as `model_name`, recorded over
    /// `dataset`, from `origin`; 20 activating tokens per neuron, each seen at least 3 times (a
    /// token seen once or twice has a mean that says little).
    pub fn standard(model_name: &str, dataset: &DatasetDescription, origin: &ModelOrigin) -> Self {
        Self {
            model_name: model_name.to_owned(),
            dataset: dataset.clone(),
            origin: origin.clone(),
            activating_tokens: 20,
            min_token_count: 3,
        }
    }
}

/// What a write produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteSummary {
    /// Neurons written.
    pub n_neurons: u64,
    /// Records written (all levels).
    pub n_records: u64,
}

/// The records of one neuron, built from its accumulator.
pub(crate) fn neuron_records(
    neuron: &NeuronAccumulator,
    contexts: &ContextTokens,
) -> Result<(NeuronExamples, Option<NeuronStats>), RecordError> {
    let example = |selected: &SelectedContext| -> Result<Example, RecordError> {
        let tokens = contexts.get(selected.context).ok_or_else(|| RecordError::State {
            path: Default::default(),
            message: format!("context {} was selected but its tokens were not kept", selected.context),
        })?;
        Ok(Example {
            dataset_index: selected.context,
            tokens: tokens.to_vec(),
            activations: selected.activations(),
            max_token_index: selected.position,
            activation_error: 0.0,
        })
    };
    let group = |kind: ExampleGroupKind, selected: Vec<&SelectedContext>| -> Result<ExampleGroup, RecordError> {
        Ok(ExampleGroup { kind, examples: selected.into_iter().map(example).collect::<Result<_, _>>()? })
    };
    let mut groups = vec![group(ExampleGroupKind::Top, neuron.top.sorted())?];
    if neuron.bottom.capacity() > 0 {
        groups.push(group(ExampleGroupKind::Bottom, neuron.bottom.sorted())?);
    }
    let grid = &neuron.bands.grid;
    if let Some((first, last)) = grid.occupied() {
        for bin in first..last.min(neuron.bands.bands.len()) {
            let selected = neuron.bands.bands[bin].sorted();
            if selected.is_empty() {
                continue;
            }
            let kind = ExampleGroupKind::Quantile {
                band: (bin - first) as u32,
                lower: grid.edge(bin) as f32,
                upper: above(grid.edge(bin) as f32, grid.edge(bin + 1) as f32),
            };
            groups.push(group(kind, selected)?);
        }
    }
    if neuron.random.capacity() > 0 {
        groups.push(group(ExampleGroupKind::Random, neuron.random.sorted())?);
    }
    Ok((NeuronExamples { groups }, stats_of(neuron)))
}

/// Statistics of a neuron, or `None` if it saw no tokens.
pub(crate) fn stats_of(neuron: &NeuronAccumulator) -> Option<NeuronStats> {
    let moments = &neuron.moments;
    let histogram = &neuron.histogram;
    let (first, last) = histogram.grid.occupied()?;
    if moments.count == 0 {
        return None;
    }
    Some(NeuronStats {
        count: moments.count,
        max: f64::from(histogram.grid.max),
        min: f64::from(histogram.grid.min),
        mean: moments.mean,
        variance: moments.variance(),
        skewness: moments.skewness(),
        kurtosis: moments.kurtosis(),
        density: neuron.positive as f64 / moments.count as f64,
        histogram: Histogram {
            lower: histogram.grid.edge(first) as f32,
            upper: above(histogram.grid.edge(first) as f32, histogram.grid.edge(last) as f32),
            counts: histogram.counts[first..last].to_vec(),
        },
        bos: (neuron.bos.count > 0).then(|| PositionStats {
            count: neuron.bos.count,
            max: f64::from(neuron.bos.max),
            min: f64::from(neuron.bos.min),
            mean: neuron.bos.sum / neuron.bos.count as f64,
        }),
    })
}

/// `upper`, or the next f32 above `lower` when rounding to f32 made them equal (a neuron whose
/// every activation is the same value has one bin of width 2^-24, which f32 cannot hold at |v| ≥ 1).
fn above(lower: f32, upper: f32) -> f32 {
    if upper > lower {
        return upper;
    }
    let bits = lower.to_bits();
    match lower {
        0.0 => f32::from_bits(1),
        x if x > 0.0 => f32::from_bits(bits + 1),
        _ => f32::from_bits(bits - 1),
    }
}

/// An approximate parameter count from the shape: embeddings and the blocks' weight matrices.
pub(crate) fn approximate_parameters(config: &ModelConfig) -> u64 {
    let (d, d_mlp) = (config.d_model as u64, config.d_mlp as u64);
    let attention = d * ((config.n_heads + 2 * config.n_kv_heads) * config.d_head) as u64
        + (config.n_heads * config.d_head) as u64 * d;
    let mlp_matrices = match config.mlp {
        dd_model::MlpKind::Gated => 3,
        _ => 2,
    };
    config.d_vocab as u64 * d + config.n_layers as u64 * (attention + mlp_matrices * d * d_mlp)
}

/// Writes a recording into `store` as a new model, its neurons encoded with the store's options;
/// the caller finishes the store.
pub fn write_recording(
    recording: &Recording,
    model_config: &ModelConfig,
    tokenizer: &Tokenizer,
    store: &mut dyn StoreWrite,
    config: &WriteConfig,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<WriteSummary, RecordError> {
    let state = &recording.state;
    let acc = &state.accumulator;
    let encode = store.encode_options();
    if store.catalog()?.model(&config.model_name).is_some() {
        return Err(RecordError::ModelExists(config.model_name.clone()));
    }
    let metadata = ModelMetadata {
        name: config.model_name.clone(),
        architecture: model_config.architecture.name().to_owned(),
        n_layers: u64::from(acc.n_layers),
        d_mlp: u64::from(acc.d_mlp),
        d_model: model_config.d_model as u64,
        activation_function: model_config.activation.name().to_owned(),
        dataset: config.dataset.name.clone(),
        training_dataset: config.origin.training_dataset.clone(),
        n_parameters: approximate_parameters(model_config),
        context_length: model_config.n_ctx as u64,
        provenance: Provenance {
            data_source: config.dataset.source.clone(),
            model_source: Some(config.origin.reference.clone()),
            weights: Some(config.origin.weights.clone()),
            tokens_recorded: state.tokens_recorded,
            tool_version: concat!("deepdecipher ", env!("CARGO_PKG_VERSION")).to_owned(),
            recorded_at: dd_data::time::now_rfc3339(),
        },
    };
    let (model_id, source_id) = store.add_model(&metadata)?;
    let n_neurons = u64::from(acc.n_layers) * u64::from(acc.d_mlp);
    let mut n_records = 0u64;
    let mut model_ranking = Vec::new();
    for layer in 0..acc.n_layers {
        let built: Vec<(Vec<EncodedNeuron>, NeuronSummary, f32)> = (0..acc.d_mlp)
            .into_par_iter()
            .map(|index| encode_neuron(recording, layer, index, config, &encode))
            .collect::<Result<_, _>>()?;
        let mut batch = store.batch()?;
        let mut summaries = Vec::with_capacity(built.len());
        let mut ranked = Vec::with_capacity(built.len());
        for (index, (encoded, summary, score)) in built.into_iter().enumerate() {
            for record in &encoded {
                batch.put_encoded_neuron(source_id, layer, index as u32, record)?;
            }
            summaries.push(summary);
            ranked.push(RankedNeuron { neuron: NeuronIndex { layer, index: index as u32 }, score });
        }
        let ranking = NeuronRanking::from_unsorted(ranked);
        model_ranking.extend(ranking.neurons.iter().take(MODEL_RANKING_LEN).copied());
        batch.put_layer(source_id, layer, &LayerRecord::Ranking(ranking))?;
        batch.put_layer(source_id, layer, &LayerRecord::Summary(LayerSummary { neurons: summaries }))?;
        n_records += batch.n_records();
        batch.commit()?;
        progress(u64::from(layer + 1) * u64::from(acc.d_mlp), n_neurons);
    }
    let mut batch = store.batch()?;
    let mut model_ranking = NeuronRanking::from_unsorted(model_ranking);
    model_ranking.neurons.truncate(MODEL_RANKING_LEN);
    batch.put_model(model_id, &ModelRecord::Ranking(model_ranking))?;
    batch.put_model(model_id, &ModelRecord::Vocabulary(vocabulary_of(tokenizer, model_config.d_vocab)))?;
    n_records += batch.n_records();
    batch.commit()?;
    Ok(WriteSummary { n_neurons, n_records })
}

fn encode_neuron(
    recording: &Recording,
    layer: u32,
    index: u32,
    config: &WriteConfig,
    encode_options: &EncodeOptions,
) -> Result<(Vec<EncodedNeuron>, NeuronSummary, f32), RecordError> {
    let state = &recording.state;
    let neuron = state.accumulator.neuron(layer, index).ok_or_else(|| RecordError::State {
        path: Default::default(),
        message: format!("neuron {layer}/{index} is missing from the recording"),
    })?;
    let (examples, stats) = neuron_records(neuron, &state.contexts)?;
    let token_means = state.accumulator.token_means(layer, index, config.min_token_count, config.activating_tokens);
    let encode = |record: &NeuronRecord| {
        EncodedNeuron::new(record, encode_options).map_err(|source| RecordError::State {
            path: Default::default(),
            message: format!("neuron {layer}/{index}: {source}"),
        })
    };
    let mut encoded = vec![encode(&NeuronRecord::Examples(examples))?];
    if !token_means.is_empty() {
        let tokens = token_means.into_iter().map(|(token, mean, count)| TokenMean { token, mean, count }).collect();
        encoded.push(encode(&NeuronRecord::ActivatingTokens(ActivatingTokens::from_unsorted(tokens)))?);
    }
    let (summary, score) = match stats {
        Some(stats) => {
            let score = interestingness(&stats);
            let summary = NeuronSummary::from_stats(&stats);
            encoded.push(encode(&NeuronRecord::Stats(stats))?);
            (summary, score)
        }
        None => (NeuronSummary { max_activation: 0.0, min_activation: 0.0, density: 0.0, kurtosis: 0.0 }, 0.0),
    };
    Ok((encoded, summary, score))
}

/// Display strings of every token id the model can produce (`d_vocab` ids at least): the
/// vocabulary a database stores for a model, and importers map token strings onto.
pub fn vocabulary_of(tokenizer: &Tokenizer, d_vocab: usize) -> Vocabulary {
    let n = d_vocab.max(tokenizer.vocab_size());
    Vocabulary {
        tokens: (0..n as u32)
            .map(
                |id| {
                    if (id as usize) < tokenizer.vocab_size() {
                        tokenizer.display(id)
                    } else {
                        format!("<unused {id}>")
                    }
                },
            )
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_neuron_still_has_a_valid_histogram() {
        for value in [1.0f32, -1000.0, 0.0, 0.75, 3e30] {
            let sizes = crate::SelectionSizes { top: 1, bottom: 0, bands: 0, per_band: 0, random: 0 };
            let mut neuron = NeuronAccumulator::new(&sizes, 50);
            for _ in 0..3 {
                neuron.histogram.add(value);
            }
            neuron.moments.count = 3;
            let stats = stats_of(&neuron).expect("stats");
            assert!(stats.histogram.validate().is_ok(), "{value}: {:?}", stats.histogram);
            assert_eq!(stats.histogram.counts, vec![3]);
        }
        assert!(above(-2.0, -2.0) > -2.0 && above(0.0, 0.0) > 0.0 && above(1.0, 1.0) > 1.0);
    }
}
