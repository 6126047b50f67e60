//! The weight-based facts of every neuron (direct logit attribution, input tokens, connections to
//! other neurons), computed by `dd-model` and written beside a recording.

use dd_data::{Connection, InputTokens, LogitAttribution, NeuronConnections, NeuronIndex, NeuronRecord, TokenValue};
use dd_model::{CircuitOptions, TokenEffects, Transformer, WeightFact};
use dd_store::{EncodeOptions, EncodedNeuron, SourceId, StoreWrite};
use rayon::prelude::*;

use crate::error::RecordError;

/// Progress of [`write_weight_facts`]: which fact, and scores computed of how many.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightProgress {
    /// The fact being computed.
    pub fact: WeightFact,
    /// Scores computed so far for it.
    pub done: u64,
    /// Scores it needs in all.
    pub total: u64,
}

fn token_values(effects: &[dd_model::TokenEffect]) -> Vec<TokenValue> {
    effects.iter().map(|e| TokenValue { token: e.token, value: e.value }).collect()
}

fn connections(links: &[dd_model::NeuronLink]) -> Vec<Connection> {
    links
        .iter()
        .map(|l| Connection { neuron: NeuronIndex { layer: l.layer, index: l.neuron }, weight: l.score })
        .collect()
}

/// Computes the three weight-based facts of `model` (`k` entries per list) and writes them to the
/// model `model_name` already in `store`; the caller finishes the store.
pub fn write_weight_facts(
    model: &Transformer,
    store: &mut dyn StoreWrite,
    model_name: &str,
    k: usize,
    progress: &(dyn Fn(WeightProgress) + Sync),
) -> Result<u64, RecordError> {
    let catalog = store.catalog()?;
    let source = catalog.model(model_name).and_then(|m| m.sources.first()).map(|s| s.id).ok_or_else(|| {
        RecordError::InvalidConfig(format!("{} holds no model named {model_name:?}", store.location()))
    })?;
    let encode = store.encode_options();
    let options = CircuitOptions::new(k);
    let mut n_records = 0;
    for fact in [WeightFact::LogitAttribution, WeightFact::InputTokens, WeightFact::NeuronConnections] {
        let total = dd_model::work_estimate(model.config(), fact).scores;
        let done = std::sync::atomic::AtomicU64::new(0);
        let report = |scores: u64| {
            let done = done.fetch_add(scores, std::sync::atomic::Ordering::Relaxed) + scores;
            progress(WeightProgress { fact, done, total });
        };
        let records: Vec<Vec<NeuronRecord>> = match fact {
            WeightFact::LogitAttribution => {
                effects_to_records(dd_model::logit_attribution(model, &options, &report)?, |e| {
                    NeuronRecord::Logits(LogitAttribution {
                        top: token_values(&e.top),
                        bottom: token_values(&e.bottom),
                    })
                })
            }
            WeightFact::InputTokens => effects_to_records(dd_model::input_tokens(model, &options, &report)?, |e| {
                NeuronRecord::InputTokens(InputTokens { top: token_values(&e.top), bottom: token_values(&e.bottom) })
            }),
            WeightFact::NeuronConnections => dd_model::neuron_connections(model, &options, &report)?
                .into_iter()
                .map(|layer| {
                    layer
                        .into_iter()
                        .map(|links| {
                            NeuronRecord::Connections(NeuronConnections::from_unsorted(
                                connections(&links.inputs),
                                connections(&links.outputs),
                            ))
                        })
                        .collect()
                })
                .collect(),
        };
        n_records += write_layers(store, source, &records, encode)?;
    }
    Ok(n_records)
}

fn effects_to_records(
    effects: Vec<Vec<TokenEffects>>,
    record: impl Fn(&TokenEffects) -> NeuronRecord,
) -> Vec<Vec<NeuronRecord>> {
    effects.iter().map(|layer| layer.iter().map(&record).collect()).collect()
}

/// Encodes each layer's records in parallel and writes the layer in one transaction.
fn write_layers(
    store: &mut dyn StoreWrite,
    source: SourceId,
    records: &[Vec<NeuronRecord>],
    encode: EncodeOptions,
) -> Result<u64, RecordError> {
    let mut n_records = 0;
    for (layer, layer_records) in records.iter().enumerate() {
        let encoded: Vec<EncodedNeuron> = layer_records
            .par_iter()
            .map(|record| {
                EncodedNeuron::new(record, &encode).map_err(|source| RecordError::State {
                    path: Default::default(),
                    message: format!("layer {layer}: {source}"),
                })
            })
            .collect::<Result<_, _>>()?;
        let mut batch = store.batch()?;
        for (index, record) in encoded.iter().enumerate() {
            batch.put_encoded_neuron(source, layer as u32, index as u32, record)?;
        }
        n_records += batch.n_records();
        batch.commit()?;
    }
    Ok(n_records)
}
