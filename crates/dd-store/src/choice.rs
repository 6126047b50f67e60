//! Which model of a store, and which of its neurons, a producer works on: the choice every
//! producer that reads a recording back (Neuron2Graph, explanations) offers its users.

use dd_data::{LayerDataKind, LayerRecord, NeuronDataKind, NeuronIndex};

use crate::{ModelEntry, SourceEntry, StoreError, StoreLocation, StoreRead};

/// Which neurons a producer works on (Neuron2Graph, explanations): the layers and neurons given
/// (all when absent), or of those the most interesting by the recording's ranking.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NeuronChoice {
    /// Layers to consider; every layer when `None`.
    pub layers: Option<Vec<u32>>,
    /// Neuron indices to consider in each of those layers; every neuron when `None`.
    pub neurons: Option<Vec<u32>>,
    /// Only this many, the most interesting first (the layer rankings' scores).
    pub top_interesting: Option<usize>,
}

/// The neurons a choice names, sorted, after checking every layer and index exists.
pub fn choose_neurons(
    reader: &dyn StoreRead,
    source: &SourceEntry,
    choice: &NeuronChoice,
) -> Result<Vec<NeuronIndex>, StoreError> {
    let (n_layers, n_neurons) = (source.info.n_layers as u32, source.info.units_per_layer as u32);
    let layers: Vec<u32> = choice.layers.clone().unwrap_or_else(|| (0..n_layers).collect());
    if let Some(&bad) = layers.iter().find(|&&l| l >= n_layers) {
        return Err(StoreError::Invalid(format!("layer {bad} does not exist: the model has {n_layers} layers")));
    }
    if let Some(&bad) = choice.neurons.iter().flatten().find(|&&n| n >= n_neurons) {
        return Err(StoreError::Invalid(format!("neuron {bad} does not exist: layers have {n_neurons} neurons")));
    }
    let wanted = |index: u32| choice.neurons.as_ref().is_none_or(|list| list.contains(&index));
    let mut chosen: Vec<NeuronIndex> = match choice.top_interesting {
        None => layers
            .iter()
            .flat_map(|&layer| (0..n_neurons).filter(|&i| wanted(i)).map(move |index| NeuronIndex { layer, index }))
            .collect(),
        Some(n) => {
            let mut ranked = Vec::new();
            for &layer in &layers {
                let Some(LayerRecord::Ranking(ranking)) = reader.layer_record(source, layer, LayerDataKind::Ranking)?
                else {
                    return Err(StoreError::Invalid(format!(
                        "layer {layer} has no interestingness ranking to choose neurons by"
                    )));
                };
                ranked.extend(ranking.neurons.into_iter().filter(|r| wanted(r.neuron.index)));
            }
            ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.neuron.cmp(&b.neuron)));
            ranked.into_iter().take(n).map(|r| r.neuron).collect()
        }
    };
    chosen.sort_unstable();
    chosen.dedup();
    Ok(chosen)
}

/// A model of the store and its recorded neurons, which must hold `needed` (a producer's input);
/// `purpose` ends the message when they do not ("to build graphs from").
pub fn find_model(
    reader: &dyn StoreRead,
    name: &str,
    needed: NeuronDataKind,
    purpose: &str,
) -> Result<(ModelEntry, SourceEntry), StoreError> {
    let entry = reader
        .catalog()
        .model(name)
        .ok_or_else(|| {
            let known: Vec<&str> = reader.catalog().models().iter().map(|m| m.metadata.name.as_str()).collect();
            StoreError::Invalid(format!("no model {name:?} in the database (it has: {})", known.join(", ")))
        })?
        .clone();
    let source = entry
        .sources
        .first()
        .cloned()
        .ok_or_else(|| StoreError::Invalid(format!("model {name:?} has no recorded neurons")))?;
    if !source.has_neuron_kind(needed) {
        return Err(StoreError::Invalid(format!(
            "model {name:?} has no {} {purpose}: record it first (deepdecipher record)",
            needed.name()
        )));
    }
    Ok((entry, source))
}

/// The model a command means: the name given, else the database's only model, else the name the
/// model's files give it (`fallback`, what `record` would have called it).
pub fn model_name_in(
    location: &StoreLocation,
    given: Option<&str>,
    fallback: Option<&str>,
) -> Result<String, StoreError> {
    if let Some(name) = given {
        return Ok(name.to_owned());
    }
    let catalog = location
        .existing_catalog()?
        .ok_or_else(|| StoreError::Invalid(format!("{location} does not exist: record a model into it first")))?;
    match catalog.models() {
        [only] => Ok(only.metadata.name.clone()),
        [] => Err(StoreError::Invalid(format!("{location} holds no model: record one into it first"))),
        models => match fallback.filter(|name| catalog.model(name).is_some()) {
            Some(name) => Ok(name.to_owned()),
            None => {
                let names: Vec<&str> = models.iter().map(|m| m.metadata.name.as_str()).collect();
                Err(StoreError::Invalid(format!(
                    "{location} holds several models ({}): say which with --name",
                    names.join(", ")
                )))
            }
        },
    }
}
