//! The backend-neutral interfaces of a store: [`StoreRead`], the narrow read interface the server
//! uses, with the catalog of models cached when a store opens; [`StoreWrite`] and [`StoreBatch`],
//! the write interface every producer (recorder, `synth`, importers) writes through.
//!
//! Both are blob-level at their core: the codec is the same whatever the backend, so a backend
//! implements raw blob reads and writes, and the provided methods encode and decode.

use std::collections::HashMap;
use std::sync::Arc;

use dd_data::{
    LayerDataKind, LayerRecord, ModelDataKind, ModelMetadata, ModelRecord, NeuronDataKind, NeuronRecord, SourceInfo,
};

use crate::StoreError;
use crate::codec::{
    EncodeOptions, EncodedNeuron, decode_layer, decode_model, decode_neuron, encode_layer, encode_model,
};

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

    /// The same store with its catalog read again, sharing this one's connections: models, sources
    /// and kinds written since it opened become visible (records of kinds already listed are seen by
    /// every new read anyway). Fails for a store opened on the promise that nothing writes to it
    /// (SQLite's `immutable`, [`ReadConfig::immutable`](crate::ReadConfig::immutable)).
    fn refreshed(&self) -> Result<Arc<dyn StoreRead>, StoreError>;

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

    /// The state a producer kept under `name` beside a model (see
    /// [`StoreBatch::put_model_state`]); `None` when absent or incomplete.
    fn model_state(&self, model: ModelId, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

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

/// Write access to a store: the one interface producers write through, so that a backend is added
/// in one place. Blocking, like [`StoreRead`].
///
/// There is one writer per store at a time. Model-level changes ([`add_model`](Self::add_model),
/// [`delete_model`](Self::delete_model)) are each one transaction; records go in [`StoreBatch`]es.
/// A writer that is dropped without [`finish`](Self::finish) leaves every committed batch in the
/// store (a killed producer loses only its open batch) but the store may not be ready to serve as
/// it would be after `finish`.
///
/// The trait is dyn-compatible, so producers take `&mut dyn StoreWrite`; generic code works too
/// (`W: StoreWrite + ?Sized`), and `finish` takes the writer boxed so a `Box<dyn StoreWrite>` can
/// be finished.
///
/// ```no_run
/// use dd_data::{ModelMetadata, ModelRecord, Vocabulary};
/// use dd_store::{EncodeOptions, StoreError, StoreLocation, StoreWrite};
///
/// /// A producer names no backend: it writes through whatever store it is given.
/// fn write_vocabulary(store: &mut dyn StoreWrite, metadata: &ModelMetadata) -> Result<(), StoreError> {
///     let (model, _mlp_source) = store.add_model(metadata)?;
///     let mut batch = store.batch()?;
///     let tokens = vec!["<|endoftext|>".to_owned(), " the".to_owned()];
///     batch.put_model(model, &ModelRecord::Vocabulary(Vocabulary { tokens }))?;
///     batch.commit()
/// }
///
/// fn write_to_file(metadata: &ModelMetadata) -> Result<(), StoreError> {
///     let mut store = StoreLocation::SqliteFile("data.db".into()).open_writer(EncodeOptions::STANDARD)?;
///     write_vocabulary(&mut *store, metadata)?;
///     store.finish()
/// }
/// ```
pub trait StoreWrite: Send {
    /// Where the store is, for messages: a file path, or an address without credentials.
    fn location(&self) -> &str;

    /// How this store encodes records; producers encoding neurons on other threads
    /// ([`EncodedNeuron::new`]) use these.
    fn encode_options(&self) -> EncodeOptions;

    /// The catalog as the store holds it now (which models exist, their ids and sources).
    fn catalog(&self) -> Result<Catalog, StoreError>;

    /// Adds a model and its `mlp` source; fails with [`StoreError::ModelExists`] if the name is taken.
    fn add_model(&mut self, metadata: &ModelMetadata) -> Result<(ModelId, SourceId), StoreError>;

    /// Adds another source (hook point) to a model.
    fn add_source(&mut self, model: ModelId, info: &SourceInfo) -> Result<SourceId, StoreError>;

    /// Widens a source to at least `n_layers` × `units_per_layer` (never narrows it): an SAE
    /// source imported one layer at a time learns its shape as it goes.
    fn grow_source(&mut self, source: SourceId, n_layers: u64, units_per_layer: u64) -> Result<(), StoreError>;

    /// Deletes a model and all its data; returns whether it existed.
    fn delete_model(&mut self, name: &str) -> Result<bool, StoreError>;

    /// Starts a transaction for many records.
    fn batch(&mut self) -> Result<Box<dyn StoreBatch + '_>, StoreError>;

    /// Ends writing and leaves the store complete and ready to serve (what that takes is the
    /// backend's business: the SQLite file leaves WAL mode, for instance).
    fn finish(self: Box<Self>) -> Result<(), StoreError>;
}

/// Records written in one transaction: committed together, or, when dropped without
/// [`commit`](Self::commit), not at all.
///
/// A backend implements the blob-level methods; the record-level ones (`put_neuron`, `put_layer`,
/// `put_model`) encode with [`encode_options`](Self::encode_options) and call them.
pub trait StoreBatch {
    /// How records of this batch are encoded (the writer's [`StoreWrite::encode_options`]).
    fn encode_options(&self) -> EncodeOptions;

    /// Writes (or replaces) one neuron-level record encoded elsewhere.
    fn put_encoded_neuron(
        &mut self,
        source: SourceId,
        layer: u32,
        index: u32,
        encoded: &EncodedNeuron,
    ) -> Result<(), StoreError>;

    /// Writes (or replaces) the encoded blob of one layer-level record.
    fn put_layer_blob(
        &mut self,
        source: SourceId,
        layer: u32,
        kind: LayerDataKind,
        blob: &[u8],
    ) -> Result<(), StoreError>;

    /// Writes (or replaces) the encoded blob of one model-level record.
    fn put_model_blob(&mut self, model: ModelId, kind: ModelDataKind, blob: &[u8]) -> Result<(), StoreError>;

    /// Keeps `data` under `name` beside a model, replacing what was there: a producer's own state
    /// (the recorder's mergeable shard state), opaque to the store and of any size.
    fn put_model_state(&mut self, model: ModelId, name: &str, data: &[u8]) -> Result<(), StoreError>;

    /// Records written in this batch so far.
    fn n_records(&self) -> u64;

    /// Commits every write of the batch at once.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;

    /// Encodes and writes (or replaces) one neuron-level record.
    fn put_neuron(
        &mut self,
        source: SourceId,
        layer: u32,
        index: u32,
        record: &NeuronRecord,
    ) -> Result<(), StoreError> {
        let encoded = EncodedNeuron::new(record, &self.encode_options()).map_err(|source_error| StoreError::Codec {
            what: format!("neuron {layer}/{index} {}", record.kind().name()),
            source: source_error,
        })?;
        self.put_encoded_neuron(source, layer, index, &encoded)
    }

    /// Encodes and writes (or replaces) one layer-level record.
    fn put_layer(&mut self, source: SourceId, layer: u32, record: &LayerRecord) -> Result<(), StoreError> {
        let blob = encode_layer(record, &self.encode_options()).map_err(|source_error| StoreError::Codec {
            what: format!("layer {layer} {}", record.kind().name()),
            source: source_error,
        })?;
        self.put_layer_blob(source, layer, record.kind(), &blob)
    }

    /// Encodes and writes (or replaces) one model-level record.
    fn put_model(&mut self, model: ModelId, record: &ModelRecord) -> Result<(), StoreError> {
        let blob = encode_model(record, &self.encode_options()).map_err(|source_error| StoreError::Codec {
            what: format!("model {}", record.kind().name()),
            source: source_error,
        })?;
        self.put_model_blob(model, record.kind(), &blob)
    }
}
