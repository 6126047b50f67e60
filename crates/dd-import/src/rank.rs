//! Rankings and summaries for an imported source, as a recording writes them: the layer table of
//! the model page, "interesting neurons", and `--top-interesting` choices of the producers that
//! read a model back (Neuron2Graph, the explainer) need them, and a dataset brings only
//! per-neuron statistics.

use dd_data::{
    LayerRecord, LayerSummary, MODEL_RANKING_LEN, ModelRecord, NeuronDataKind, NeuronIndex, NeuronRanking,
    NeuronRecord, NeuronSummary, RankedNeuron, interestingness,
};
use dd_store::{ModelId, SourceEntry, SourceId, StoreRead, StoreWrite};

use crate::error::ImportError;

/// Writes every layer's ranking and summary of `source` from the statistics the store has, and,
/// for the `mlp` source, the model's ranking; one transaction. Units without statistics count
/// as silent; layers without any are left without rankings.
pub fn rank_source(
    reader: &dyn StoreRead,
    writer: &mut dyn StoreWrite,
    model: ModelId,
    source: &SourceEntry,
    source_id: SourceId,
) -> Result<(), ImportError> {
    let mut batch = writer.batch()?;
    let mut model_ranking = Vec::new();
    for layer in 0..source.info.n_layers as u32 {
        let mut summaries = Vec::with_capacity(source.info.units_per_layer as usize);
        let mut ranked = Vec::with_capacity(source.info.units_per_layer as usize);
        let mut with_stats = 0usize;
        for index in 0..source.info.units_per_layer as u32 {
            let (summary, score) = match reader.neuron_record(source, layer, index, NeuronDataKind::Stats)? {
                Some(NeuronRecord::Stats(stats)) => {
                    with_stats += 1;
                    (NeuronSummary::from_stats(&stats), interestingness(&stats))
                }
                _ => (NeuronSummary { max_activation: 0.0, min_activation: 0.0, density: 0.0, kurtosis: 0.0 }, 0.0),
            };
            summaries.push(summary);
            ranked.push(RankedNeuron { neuron: NeuronIndex { layer, index }, score });
        }
        // A layer none of whose units was imported has nothing to rank: its pages say so, rather
        // than list thousands of silent neurons.
        if with_stats == 0 {
            continue;
        }
        let ranking = NeuronRanking::from_unsorted(ranked);
        model_ranking.extend(ranking.neurons.iter().take(MODEL_RANKING_LEN).copied());
        batch.put_layer(source_id, layer, &LayerRecord::Ranking(ranking))?;
        batch.put_layer(source_id, layer, &LayerRecord::Summary(LayerSummary { neurons: summaries }))?;
    }
    if source.info.name == dd_data::MLP_SOURCE {
        let mut model_ranking = NeuronRanking::from_unsorted(model_ranking);
        model_ranking.neurons.truncate(MODEL_RANKING_LEN);
        batch.put_model(model, &ModelRecord::Ranking(model_ranking))?;
    }
    batch.commit()?;
    Ok(())
}
