//! The original Neuron2Graph's files in and out: a folder of `{layer}_{neuron}/graph` DOT files and
//! its `neuron_store.json`, so graphs built by the original (or published with it) can be served,
//! and ours read by its tools.

use std::path::Path;

use dd_data::{ModelDataKind, ModelRecord, NeuronDataKind, NeuronIndex, NeuronRecord};
use dd_store::{StoreLocation, StoreRead};

use crate::N2gError;
use crate::dot::{read_graph_dir, write_graph_dir};
use crate::job::{N2gEvent, write_index};
use crate::similar::{SimilarityConfig, similar_neurons};
use crate::store_json::{from_neuron_store_json, to_neuron_store_json};

/// The neuron store's file name in the original's output folder.
pub const NEURON_STORE_FILE: &str = "neuron_store.json";

/// What an import wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Graphs imported.
    pub graphs: usize,
    /// Whether the folder's own `neuron_store.json` became the token index (otherwise it was built
    /// from the graphs).
    pub used_neuron_store: bool,
}

/// Imports the graphs under `dir` (and its `neuron_store.json`, when present) for `model_name`,
/// replacing graphs those neurons had, then the similar neurons. Every graph is checked against the
/// model's shape before anything is written.
pub fn import_original(
    location: &StoreLocation,
    model_name: &str,
    dir: &Path,
    events: &(dyn Fn(N2gEvent) + Sync),
) -> Result<ImportSummary, N2gError> {
    let graphs = read_graph_dir(dir)?;
    let store_path = dir.join(NEURON_STORE_FILE);
    let neuron_store = match store_path.exists() {
        true => {
            let text = std::fs::read_to_string(&store_path)
                .map_err(|source| N2gError::Io { path: store_path.clone(), source })?;
            Some(
                from_neuron_store_json(&text)
                    .map_err(|message| N2gError::Format { path: store_path.clone(), message })?,
            )
        }
        false => None,
    };
    if graphs.is_empty() && neuron_store.is_none() {
        return Err(N2gError::Invalid(format!(
            "{} holds no `{{layer}}_{{neuron}}/graph` files and no {NEURON_STORE_FILE}",
            dir.display()
        )));
    }
    let mut writer = location.open_writer(dd_store::EncodeOptions::STANDARD)?;
    let reader = location.open_reader()?;
    let entry = reader
        .catalog()
        .model(model_name)
        .ok_or_else(|| N2gError::Invalid(format!("no model {model_name:?} in {location}")))?
        .clone();
    let source =
        entry.sources.first().cloned().ok_or_else(|| N2gError::Invalid(format!("{model_name:?} has no neurons")))?;
    let (n_layers, n_neurons) = (source.info.n_layers as u32, source.info.units_per_layer as u32);
    let outside = |n: &NeuronIndex| n.layer >= n_layers || n.index >= n_neurons;
    let neurons_in_store = neuron_store
        .iter()
        .flat_map(|index| index.entries.iter().flat_map(|entry| entry.activating.iter().chain(&entry.important)));
    if let Some(bad) = graphs.iter().map(|(n, _)| n).chain(neurons_in_store).find(|n| outside(n)) {
        return Err(N2gError::Invalid(format!(
            "neuron {}/{} is outside {model_name:?} ({n_layers} layers of {n_neurons} neurons)",
            bad.layer, bad.index
        )));
    }
    drop(reader);
    let mut batch = writer.batch()?;
    for (neuron, graph) in &graphs {
        batch.put_neuron(source.id, neuron.layer, neuron.index, &NeuronRecord::Graph(graph.clone()))?;
    }
    batch.commit()?;
    let summary = ImportSummary { graphs: graphs.len(), used_neuron_store: neuron_store.is_some() };
    match neuron_store {
        // The original's own index is kept as published; similarity follows from it.
        Some(index) => {
            let similar = similar_neurons(&index, &SimilarityConfig::STANDARD);
            let mut batch = writer.batch()?;
            batch.put_model(entry.id, &ModelRecord::TokenIndex(index))?;
            for (neuron, neighbours) in similar {
                batch.put_neuron(source.id, neuron.layer, neuron.index, &NeuronRecord::Similar(neighbours))?;
            }
            batch.commit()?;
        }
        None => {
            write_index(location, writer.as_mut(), &entry, &source, &SimilarityConfig::STANDARD, events)?;
        }
    }
    writer.finish()?;
    Ok(summary)
}

/// Writes every graph of `model_name` to `dir/{layer}_{neuron}/graph` and its token index to
/// `dir/neuron_store.json`; returns the number of graphs.
pub fn export_original(reader: &dyn StoreRead, model_name: &str, dir: &Path) -> Result<usize, N2gError> {
    let entry = reader
        .catalog()
        .model(model_name)
        .ok_or_else(|| N2gError::Invalid(format!("no model {model_name:?} in the database")))?;
    let source = entry.sources.first().ok_or_else(|| N2gError::Invalid(format!("{model_name:?} has no neurons")))?;
    if !source.has_neuron_kind(NeuronDataKind::Graph) {
        return Err(N2gError::Invalid(format!("{model_name:?} has no graphs: build them with `deepdecipher n2g`")));
    }
    let mut graphs = Vec::new();
    for layer in 0..source.info.n_layers as u32 {
        for index in 0..source.info.units_per_layer as u32 {
            if let Some(NeuronRecord::Graph(graph)) =
                reader.neuron_record(source, layer, index, NeuronDataKind::Graph)?
            {
                graphs.push((NeuronIndex { layer, index }, graph));
            }
        }
    }
    write_graph_dir(dir, &graphs)?;
    if let Some(ModelRecord::TokenIndex(index)) = reader.model_record(entry, ModelDataKind::TokenIndex)? {
        let path = dir.join(NEURON_STORE_FILE);
        std::fs::write(&path, to_neuron_store_json(&index)).map_err(|source| N2gError::Io { path, source })?;
    }
    Ok(graphs.len())
}
