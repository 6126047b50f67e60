//! The `records` service: a unit's stored blobs as they are, so a client decoding them with the
//! store's codec gets exactly the records a local reader gets.

use base64::Engine;
use dd_data::{LayerDataKind, ModelDataKind, NeuronDataKind};
use dd_store::{ModelEntry, SourceEntry, StoreRead};

use crate::error::ApiError;
use crate::services::Target;
use crate::wire;

/// The records page of `target`, only of the kinds named in `kinds` (comma-separated) when given;
/// names that are no kind of the target's level are ignored.
pub(crate) fn page(
    store: &dyn StoreRead,
    model: &ModelEntry,
    source: &SourceEntry,
    target: Target,
    kinds: Option<&str>,
) -> Result<wire::RecordsPage, ApiError> {
    let wanted = |name: &str| kinds.is_none_or(|kinds| kinds.split(',').any(|k| k.trim() == name));
    let mut records = Vec::new();
    let mut push = |name: &str, blob: Option<Vec<u8>>| {
        if let Some(blob) = blob {
            records.push(wire::RecordObject {
                kind: name.to_owned(),
                data: base64::engine::general_purpose::STANDARD.encode(blob),
            });
        }
    };
    match target {
        Target::Model => {
            for &kind in ModelDataKind::ALL.iter().filter(|kind| wanted(kind.name())) {
                push(kind.name(), store.model_blob(model.id, kind)?);
            }
        }
        Target::Layer(layer) => {
            for &kind in LayerDataKind::ALL.iter().filter(|kind| wanted(kind.name())) {
                push(kind.name(), store.layer_blob(source.id, layer, kind)?);
            }
        }
        Target::Neuron(layer, index) => {
            for &kind in NeuronDataKind::ALL.iter().filter(|kind| wanted(kind.name())) {
                push(kind.name(), store.neuron_blob(source.id, layer, index, kind)?);
            }
        }
    }
    Ok(wire::RecordsPage { format_version: dd_store::codec::FORMAT_VERSION, records })
}
