//! A model copied from one store into another, blob for blob: what `compare` does to put a
//! baseline beside the model it is compared with, so one server shows both.

use dd_data::ModelMetadata;

use crate::codec::{EncodedNeuron, decode_layer, decode_model};
use crate::{ModelEntry, StoreError, StoreRead, StoreWrite};

/// Records written per transaction.
const COPY_BATCH: u64 = 4096;

/// Copies `model` of `from` into `into` under `name`, every record of every kind and source as
/// stored (each blob checked by decoding it); returns the records copied. Refuses a name `into`
/// already has. `progress` gets the records copied so far.
pub fn copy_model(
    from: &dyn StoreRead,
    model: &ModelEntry,
    into: &mut dyn StoreWrite,
    name: &str,
    progress: &dyn Fn(u64),
) -> Result<u64, StoreError> {
    let metadata = ModelMetadata { name: name.to_owned(), ..model.metadata.clone() };
    let (model_id, mlp_source) = into.add_model(&metadata)?;
    let mut targets = vec![mlp_source];
    for source in model.sources.iter().skip(1) {
        targets.push(into.add_source(model_id, &source.info)?);
    }
    let mut copied = 0u64;
    let mut batch = into.batch()?;
    let step = |copied: &mut u64| {
        *copied += 1;
        if *copied % COPY_BATCH == 0 {
            progress(*copied);
        }
    };
    for (source, &target) in model.sources.iter().zip(&targets) {
        let source_info = &source.info;
        for &kind in &source.neuron_kinds {
            for layer in 0..source.info.n_layers as u32 {
                for index in 0..source.info.units_per_layer as u32 {
                    let Some(blob) = from.neuron_blob(source.id, layer, index, kind)? else { continue };
                    let encoded = EncodedNeuron::from_blob(kind, blob).map_err(|source| StoreError::Codec {
                        what: format!("{} {}/{layer}/{index} {}", model.metadata.name, source_info.name, kind.name()),
                        source,
                    })?;
                    batch.put_encoded_neuron(target, layer, index, &encoded)?;
                    step(&mut copied);
                    if batch.n_records() >= COPY_BATCH {
                        batch.commit()?;
                        batch = into.batch()?;
                    }
                }
            }
        }
        for &kind in &source.layer_kinds {
            for layer in 0..source.info.n_layers as u32 {
                let Some(blob) = from.layer_blob(source.id, layer, kind)? else { continue };
                decode_layer(kind, &blob).map_err(|source| StoreError::Codec {
                    what: format!("{} {}/{layer} {}", model.metadata.name, source_info.name, kind.name()),
                    source,
                })?;
                batch.put_layer_blob(target, layer, kind, &blob)?;
                step(&mut copied);
            }
        }
    }
    for &kind in &model.model_kinds {
        let Some(blob) = from.model_blob(model.id, kind)? else { continue };
        decode_model(kind, &blob)
            .map_err(|source| StoreError::Codec { what: format!("{} {}", model.metadata.name, kind.name()), source })?;
        batch.put_model_blob(model_id, kind, &blob)?;
        step(&mut copied);
    }
    batch.commit()?;
    progress(copied);
    Ok(copied)
}
