//! The narrow read interface the server uses, and the catalog of models cached when a store opens.

use std::collections::HashMap;

use dd_data::{
    LayerDataKind, LayerRecord, ModelDataKind, ModelMetadata, ModelRecord, NeuronDataKind, NeuronRecord, SourceInfo,
};

use crate::StoreError;
use crate::codec::{decode_layer, decode_model, decode_neuron};

/// Database id of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelId(pub i64);

/// Database id of a (model, source) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(pub i64);

/// A stored model with what data it has, read once when the store opens.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    /// Database id.
    pub id: ModelId,
    /// The model's metadata.
    pub metadata: ModelMetadata,
    /// Its sources, `mlp` first.
    pub sources: Vec<SourceEntry>,
    /// Model-level kinds present.
    pub model_kinds: Vec<ModelDataKind>,
}

/// A stored source with the kinds of data it has.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// Database id.
    pub id: SourceId,
    /// Name and shape.
    pub info: SourceInfo,
    /// Neuron-level kinds present for at least one unit.
    pub neuron_kinds: Vec<NeuronDataKind>,
    /// Layer-level kinds present for at least one layer.
    pub layer_kinds: Vec<LayerDataKind>,
}

/// Every model of a store, in insertion order, with lookup by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    models: Vec<ModelEntry>,
    by_name: HashMap<String, usize>,
    content_id: String,
}

impl Catalog {
    /// Builds a catalog from entries and the store's content id.
    pub fn new(models: Vec<ModelEntry>, content_id: String) -> Self {
        let by_name = models.iter().enumerate().map(|(i, m)| (m.metadata.name.clone(), i)).collect();
        Self { models, by_name, content_id }
    }

    /// All models.
    pub fn models(&self) -> &[ModelEntry] {
        &self.models
    }

    /// The model with this name.
    pub fn model(&self, name: &str) -> Option<&ModelEntry> {
        self.by_name.get(name).map(|&i| &self.models[i])
    }

    /// An id that changes whenever the store's content changes; used for HTTP ETags.
    pub fn content_id(&self) -> &str {
        &self.content_id
    }
}

impl ModelEntry {
    /// The source with this name.
    pub fn source(&self, name: &str) -> Option<&SourceEntry> {
        self.sources.iter().find(|s| s.info.name == name)
    }
}

impl SourceEntry {
    /// Whether any unit of this source has data of `kind`.
    pub fn has_neuron_kind(&self, kind: NeuronDataKind) -> bool {
        self.neuron_kinds.contains(&kind)
    }

    /// Whether any layer of this source has data of `kind`.
    pub fn has_layer_kind(&self, kind: LayerDataKind) -> bool {
        self.layer_kinds.contains(&kind)
    }
}

/// Rows and bytes of one data kind, for `deepdecipher info`.
#[derive(Debug, Clone, PartialEq)]
pub struct KindUsage {
    /// `model`, `layer` or `neuron`.
    pub level: &'static str,
    /// The kind's name.
    pub kind: &'static str,
    /// Number of stored records.
    pub n_records: u64,
    /// Total bytes of their blobs.
    pub n_bytes: u64,
}

/// Read access to a store. Blocking: call it from `spawn_blocking`, never on an async executor.
pub trait StoreRead: Send + Sync {
    /// The models, cached when the store was opened.
    fn catalog(&self) -> &Catalog;

    /// The raw blob of one neuron-level record.
    fn neuron_blob(
        &self,
        source: SourceId,
        layer: u32,
        index: u32,
        kind: NeuronDataKind,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// The raw blob of one layer-level record.
    fn layer_blob(&self, source: SourceId, layer: u32, kind: LayerDataKind) -> Result<Option<Vec<u8>>, StoreError>;

    /// The raw blob of one model-level record.
    fn model_blob(&self, model: ModelId, kind: ModelDataKind) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records and bytes per kind for one model.
    fn usage(&self, model: ModelId) -> Result<Vec<KindUsage>, StoreError>;

    /// Decodes one neuron-level record.
    fn neuron_record(
        &self,
        source: &SourceEntry,
        layer: u32,
        index: u32,
        kind: NeuronDataKind,
    ) -> Result<Option<NeuronRecord>, StoreError> {
        let Some(blob) = self.neuron_blob(source.id, layer, index, kind)? else { return Ok(None) };
        decode_neuron(kind, &blob).map(Some).map_err(|source_error| StoreError::Codec {
            what: format!("{} {layer}/{index} {}", source.info.name, kind.name()),
            source: source_error,
        })
    }

    /// Decodes one layer-level record.
    fn layer_record(
        &self,
        source: &SourceEntry,
        layer: u32,
        kind: LayerDataKind,
    ) -> Result<Option<LayerRecord>, StoreError> {
        let Some(blob) = self.layer_blob(source.id, layer, kind)? else { return Ok(None) };
        decode_layer(kind, &blob).map(Some).map_err(|source_error| StoreError::Codec {
            what: format!("{} layer {layer} {}", source.info.name, kind.name()),
            source: source_error,
        })
    }

    /// Decodes one model-level record.
    fn model_record(&self, model: &ModelEntry, kind: ModelDataKind) -> Result<Option<ModelRecord>, StoreError> {
        let Some(blob) = self.model_blob(model.id, kind)? else { return Ok(None) };
        decode_model(kind, &blob).map(Some).map_err(|source_error| StoreError::Codec {
            what: format!("{} {}", model.metadata.name, kind.name()),
            source: source_error,
        })
    }
}
