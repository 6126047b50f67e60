//! Running an import: plan the work items a dataset has, fetch and parse them on worker threads,
//! and write what they hold through the store's write interface in batches, each one transaction
//! together with the record of which items it completes, so that a killed import resumes where it
//! stopped with nothing lost or doubled. One item's failure is collected and reported at the end;
//! it never stops the others.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dd_data::{
    Explanations, LayerRecord, ModelDataKind, ModelMetadata, ModelRecord, NeuronDataKind, NeuronRecord, SourceInfo,
    Vocabulary,
};
use dd_store::{EncodedNeuron, ModelId, SourceId, StoreError, StoreLocation, StoreRead, StoreWrite};

use crate::error::ImportError;
use crate::fetch::{DatasetLocation, FetchConfig, FetchTotals, Fetcher};
use crate::tokens::TokenMap;

/// One unit of work: a published file, or the few files that describe the same neurons, fetched
/// and parsed together and committed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    /// Stable name of the item (`12/345`, `features/batch-3.jsonl.gz`), for resuming and messages.
    pub key: String,
}

/// What a dataset holds, as its importer found it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPlan {
    /// The model, as created when the database does not have it yet (its name is the job's
    /// `model_name` when given).
    pub metadata: ModelMetadata,
    /// Where the units go: `mlp` for MLP neurons, another source for SAE features.
    pub source: SourceInfo,
    /// The items to import, in order.
    pub items: Vec<WorkItem>,
    /// Model-level records the dataset has besides its units (written once, before the items).
    pub model_records: Vec<ModelRecord>,
}

/// The records of one unit (neuron or feature) an item holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedUnit {
    /// Layer of the unit.
    pub layer: u32,
    /// Index of the unit in its layer.
    pub index: u32,
    /// Its records, at most one per kind.
    pub records: Vec<NeuronRecord>,
}

/// What one item turned out to hold.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    /// Units with records.
    Imported(Vec<ImportedUnit>),
    /// The publisher has no file for this item (a known gap), so there is nothing to import.
    Missing,
}

/// What the importers of every format implement.
pub trait Importer: Sync {
    /// Short name of the format (`openai`), used in the resume state and messages.
    fn format(&self) -> &'static str;

    /// Finds what the dataset at the fetcher's location holds (reading its index or metadata when
    /// it has them); `request` narrows it down.
    fn plan(&self, fetcher: &Fetcher, request: &ImportRequest) -> Result<ImportPlan, ImportError>;

    /// Layer-level records (rankings, summaries) of the plan's source, known once
    /// [`plan`](Self::plan) ran; written with the model records, before the items. None by default.
    fn layer_records(&self) -> Vec<(u32, LayerRecord)> {
        Vec::new()
    }

    /// Fetches and parses one item. An `Err` is that item's failure, reported at the end.
    fn import_item(&self, fetcher: &Fetcher, item: &WorkItem, tokens: &TokenMap) -> Result<ItemOutcome, String>;

    /// What else than the location and the items makes this import differ from another of the
    /// same format (the parts chosen): two imports that differ here keep separate resume records.
    fn variant(&self) -> String {
        String::new()
    }

    /// What the importer left out of this dataset and why, one sentence each, for the summary.
    fn skipped(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What part of a dataset to import, as the user asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportRequest {
    /// Only these layers, when given.
    pub layers: Option<Vec<u32>>,
    /// Only units whose index is below this, when given (a quick look at a huge dataset).
    pub units_per_layer: Option<u32>,
    /// The model name the user gave (some formats need it to find the dataset's model).
    pub model_name: Option<String>,
}

impl ImportRequest {
    /// Whether the request includes `layer`.
    pub fn wants_layer(&self, layer: u32) -> bool {
        self.layers.as_ref().is_none_or(|layers| layers.contains(&layer))
    }

    /// Whether the request includes unit `index` of a layer.
    pub fn wants_unit(&self, index: u32) -> bool {
        self.units_per_layer.is_none_or(|limit| index < limit)
    }
}

/// An import, as the CLI (or the Python package) describes it.
#[derive(Debug, Clone)]
pub struct ImportJob {
    /// Where the dataset lives.
    pub location: DatasetLocation,
    /// How hard to use its server.
    pub fetch: FetchConfig,
    /// The model name in the database; the dataset's own name when `None`.
    pub model_name: Option<String>,
    /// A tokenizer's vocabulary (display strings by id) to map token strings onto; `None`: the
    /// stored model's vocabulary when it has one, else one built from the strings.
    pub vocabulary: Option<Vocabulary>,
    /// Which part of the dataset.
    pub request: ImportRequest,
    /// Items per transaction.
    pub commit_every: usize,
    /// Worker threads fetching and parsing (for a server, `fetch.max_concurrency` bounds the
    /// requests in flight).
    pub workers: usize,
    /// Replace records of kinds other than explanations that the database already has (recorded
    /// examples, say); by default they are kept and counted.
    pub replace: bool,
}

impl ImportJob {
    /// An import of `location` with defaults: 256 items per transaction, workers for every core
    /// (at least the fetcher's concurrency for a server), existing records kept.
    pub fn new(location: DatasetLocation) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let fetch = FetchConfig::default();
        let workers = match location {
            DatasetLocation::Directory(_) => cores,
            DatasetLocation::Http(_) => cores.max(fetch.max_concurrency),
        };
        Self {
            location,
            fetch,
            model_name: None,
            vocabulary: None,
            request: ImportRequest::default(),
            commit_every: 256,
            workers,
            replace: false,
        }
    }
}

/// What happened while importing, for a progress bar.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportEvent {
    /// The plan is known: `items` in all, `already_imported` of them done by an earlier run.
    Planned {
        /// Items in the plan.
        items: usize,
        /// Items an earlier run completed.
        already_imported: usize,
    },
    /// One item was handled (imported, missing or failed).
    ItemDone {
        /// Its key.
        key: String,
        /// Its failure, if it failed.
        failure: Option<String>,
    },
    /// A batch was committed.
    Committed {
        /// Items committed so far in this run.
        items: usize,
    },
}

/// One item that could not be imported.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFailure {
    /// The item's key.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// The model written to.
    pub model: String,
    /// The source written to.
    pub source: String,
    /// Items in the plan.
    pub items: usize,
    /// Items an earlier run had imported (skipped).
    pub already_imported: usize,
    /// Items imported in this run.
    pub imported: usize,
    /// Items the publisher has no file for.
    pub missing: usize,
    /// Items that failed, with the reason.
    pub failures: Vec<ItemFailure>,
    /// Units written in this run.
    pub units_written: u64,
    /// Records written in this run.
    pub records_written: u64,
    /// Records not written because the database had that kind for the unit already.
    pub kept_existing: u64,
    /// Distinct token strings the known vocabulary lacked, and their occurrences.
    pub unmapped_tokens: (usize, u64),
    /// Entries in the model's vocabulary at the end.
    pub vocabulary_size: usize,
    /// Fetching totals.
    pub fetch: FetchTotals,
    /// Why the last retry happened, if any did.
    pub last_retry_reason: Option<String>,
    /// What the importer left out of the dataset and why.
    pub skipped: Vec<String>,
    /// Whether the run was stopped before the end.
    pub stopped: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl ImportSummary {
    /// Units written per second of wall time.
    pub fn units_per_second(&self) -> f64 {
        self.units_written as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A handled item, as workers hand it to the writer.
struct Handled {
    position: usize,
    key: String,
    result: Result<Option<Vec<EncodedUnit>>, String>,
    kept_existing: u64,
}

/// A unit's records, merged with what the store has and encoded on the worker.
struct EncodedUnit {
    layer: u32,
    index: u32,
    records: Vec<EncodedNeuron>,
}

/// Imports a dataset into the database at `location` with `importer`. `stop` ends the run after
/// the items in progress; everything committed stays, and the next run skips it.
pub fn run_import(
    location: &StoreLocation,
    importer: &dyn Importer,
    job: &ImportJob,
    stop: &AtomicBool,
    events: &(dyn Fn(ImportEvent) + Sync),
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let fetcher = Fetcher::new(job.location.clone(), job.fetch.clone());
    let mut request = job.request.clone();
    request.model_name = job.model_name.clone();
    let mut plan = importer.plan(&fetcher, &request)?;
    if let Some(name) = &job.model_name {
        plan.metadata.name = name.clone();
    }
    plan.metadata.validate().map_err(|error| ImportError::Invalid(error.to_string()))?;

    let mut writer = location.open_writer(dd_store::EncodeOptions::STANDARD)?;
    let (model_id, source_id) = ensure_model(writer.as_mut(), &plan)?;
    let reader = location.open_reader()?;
    let source_entry = reader
        .catalog()
        .model(&plan.metadata.name)
        .and_then(|model| model.sources.iter().find(|source| source.id == source_id))
        .cloned()
        .ok_or_else(|| ImportError::Invalid(format!("model {:?} vanished while importing", plan.metadata.name)))?;

    let state_name = state_name(importer.format(), &[&job.location.describe(), &importer.variant()], &plan);
    let mut done = reader.model_state(model_id, &state_name)?.unwrap_or_default();
    done.resize(plan.items.len().div_ceil(8), 0);
    let is_done = |done: &[u8], position: usize| done[position / 8] & (1 << (position % 8)) != 0;
    let todo: Vec<usize> = (0..plan.items.len()).filter(|&position| !is_done(&done, position)).collect();

    let stored_model = reader.catalog().model(&plan.metadata.name).cloned();
    let tokens = match (&job.vocabulary, &stored_model) {
        (Some(vocabulary), _) => TokenMap::new(vocabulary.clone()),
        (None, Some(model)) => match reader.model_record(model, ModelDataKind::Vocabulary)? {
            // A recorded model's vocabulary is its tokenizer's: strings it lacks are reported. One
            // an earlier import built from strings just goes on growing.
            Some(ModelRecord::Vocabulary(vocabulary)) if model.metadata.provenance.tokens_recorded > 0 => {
                TokenMap::new(vocabulary)
            }
            Some(ModelRecord::Vocabulary(vocabulary)) => TokenMap::extending(vocabulary),
            _ => TokenMap::new(Vocabulary::default()),
        },
        (None, None) => TokenMap::new(Vocabulary::default()),
    };
    let mut summary = ImportSummary {
        model: plan.metadata.name.clone(),
        source: plan.source.name.clone(),
        items: plan.items.len(),
        already_imported: plan.items.len() - todo.len(),
        ..ImportSummary::default()
    };
    events(ImportEvent::Planned { items: summary.items, already_imported: summary.already_imported });

    if !plan.model_records.is_empty() {
        let mut batch = writer.batch()?;
        for record in &plan.model_records {
            batch.put_model(model_id, record)?;
        }
        batch.commit()?;
    }
    let layer_records = importer.layer_records();
    if !layer_records.is_empty() {
        let mut batch = writer.batch()?;
        for (layer, record) in &layer_records {
            if u64::from(*layer) >= plan.source.n_layers {
                return Err(ImportError::Invalid(format!(
                    "layer {layer} {} is outside the source's {} layers",
                    record.kind().name(),
                    plan.source.n_layers
                )));
            }
            batch.put_layer(source_id, *layer, record)?;
        }
        batch.commit()?;
    }

    let options = writer.encode_options();
    let next = AtomicUsize::new(0);
    let halt = AtomicBool::new(false);
    let wrote_stats = AtomicBool::new(false);
    let (sender, receiver) = mpsc::sync_channel::<Handled>(job.workers.max(1) * 4);
    let fatal: Mutex<Option<ImportError>> = Mutex::new(None);
    let n_workers = job.workers.clamp(1, 256).min(todo.len().max(1));
    std::thread::scope(|scope| -> Result<(), ImportError> {
        for _ in 0..n_workers {
            let sender = sender.clone();
            let (todo, next, halt, fetcher, tokens, plan, reader, source_entry, wrote_stats) =
                (&todo, &next, &halt, &fetcher, &tokens, &plan, &reader, &source_entry, &wrote_stats);
            scope.spawn(move || {
                loop {
                    if stop.load(Ordering::Relaxed) || halt.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some(&position) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else { return };
                    let item = &plan.items[position];
                    let mut kept_existing = 0;
                    let result = match importer.import_item(fetcher, item, tokens) {
                        Ok(ItemOutcome::Missing) => Ok(None),
                        Ok(ItemOutcome::Imported(units)) => {
                            if units.iter().flat_map(|unit| &unit.records).any(|r| r.kind() == NeuronDataKind::Stats) {
                                wrote_stats.store(true, Ordering::Relaxed);
                            }
                            prepare_units(
                                reader.as_ref(),
                                source_entry,
                                units,
                                job.replace,
                                &options,
                                &mut kept_existing,
                            )
                            .map(Some)
                        }
                        Err(reason) => Err(reason),
                    };
                    let handled = Handled { position, key: item.key.clone(), result, kept_existing };
                    if sender.send(handled).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);

        let commit_every = job.commit_every.max(1);
        let mut pending: Vec<Handled> = Vec::new();
        let mut committed_items = 0usize;
        let mut commit = |writer: &mut dyn StoreWrite,
                          pending: &mut Vec<Handled>,
                          done: &mut Vec<u8>,
                          summary: &mut ImportSummary|
         -> Result<(), ImportError> {
            if pending.is_empty() {
                return Ok(());
            }
            let mut batch = writer.batch()?;
            // New token ids first: every committed record's ids resolve in the stored vocabulary.
            if let Some(vocabulary) = tokens.take_grown_vocabulary() {
                batch.put_model(model_id, &ModelRecord::Vocabulary(vocabulary))?;
            }
            for handled in pending.iter() {
                if let Ok(Some(units)) = &handled.result {
                    for unit in units {
                        for encoded in &unit.records {
                            batch.put_encoded_neuron(source_id, unit.layer, unit.index, encoded)?;
                            summary.records_written += 1;
                        }
                        summary.units_written += 1;
                    }
                }
                // A failed item stays undone, so that the next run tries it again.
                if handled.result.is_ok() {
                    done[handled.position / 8] |= 1 << (handled.position % 8);
                }
            }
            batch.put_model_state(model_id, &state_name, done)?;
            batch.commit()?;
            committed_items += pending.len();
            pending.clear();
            events(ImportEvent::Committed { items: committed_items });
            Ok(())
        };
        for handled in receiver {
            match &handled.result {
                Ok(Some(_)) => summary.imported += 1,
                Ok(None) => summary.missing += 1,
                Err(reason) => summary.failures.push(ItemFailure { key: handled.key.clone(), reason: reason.clone() }),
            }
            summary.kept_existing += handled.kept_existing;
            events(ImportEvent::ItemDone { key: handled.key.clone(), failure: handled.result.as_ref().err().cloned() });
            pending.push(handled);
            if pending.len() >= commit_every
                && let Err(error) = commit(writer.as_mut(), &mut pending, &mut done, &mut summary)
            {
                halt.store(true, Ordering::Relaxed);
                fatal.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(error);
                break;
            }
        }
        if fatal.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_none() {
            commit(writer.as_mut(), &mut pending, &mut done, &mut summary)?;
        }
        Ok(())
    })?;
    if let Some(error) = fatal.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(error);
    }
    summary.stopped = stop.load(Ordering::Relaxed);
    // Statistics bring rankings: computed once the whole source is in (a stopped run leaves it
    // to the run that finishes), over every unit's statistics, this run's or earlier ones'.
    if !summary.stopped && (wrote_stats.load(Ordering::Relaxed) || summary.already_imported > 0) {
        let refreshed = reader.refreshed()?;
        let entry = refreshed
            .catalog()
            .model(&plan.metadata.name)
            .and_then(|model| model.sources.iter().find(|source| source.id == source_id))
            .filter(|source| source.has_neuron_kind(NeuronDataKind::Stats))
            .cloned();
        if let Some(entry) = entry {
            crate::rank::rank_source(refreshed.as_ref(), writer.as_mut(), model_id, &entry, source_id)?;
        }
    }
    drop(reader);
    writer.finish()?;
    summary.failures.sort_by(|a, b| a.key.cmp(&b.key));
    summary.unmapped_tokens = tokens.unmapped();
    summary.vocabulary_size = tokens.len();
    summary.fetch = fetcher.totals();
    summary.last_retry_reason = fetcher.last_retry_reason();
    summary.skipped = importer.skipped();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The model and source the plan writes to, created when missing (an existing model keeps its
/// metadata and shape).
fn ensure_model(writer: &mut dyn StoreWrite, plan: &ImportPlan) -> Result<(ModelId, SourceId), ImportError> {
    let catalog = writer.catalog()?;
    let name = &plan.metadata.name;
    let Some(model) = catalog.model(name) else {
        let (model_id, mlp_id) = writer.add_model(&plan.metadata)?;
        if plan.source.name == dd_data::MLP_SOURCE {
            return Ok((model_id, mlp_id));
        }
        return Ok((model_id, writer.add_source(model_id, &plan.source)?));
    };
    match model.sources.iter().find(|source| source.info.name == plan.source.name) {
        Some(source) if source.info.name != dd_data::MLP_SOURCE => {
            // An SAE's source learns its shape as its layers are imported one at a time.
            writer.grow_source(source.id, plan.source.n_layers, plan.source.units_per_layer)?;
            Ok((model.id, source.id))
        }
        Some(source) => {
            // A part of a dataset may go into a smaller model (OpenAI's explanations of the first
            // neurons into a recording of them): each unit is checked against the stored shape.
            if source.info.n_layers < plan.source.n_layers || source.info.units_per_layer < plan.source.units_per_layer
            {
                tracing::warn!(
                    model = %name,
                    source = %source.info.name,
                    "the model has {} × {} units, the dataset {} × {}: units outside the model fail",
                    source.info.n_layers,
                    source.info.units_per_layer,
                    plan.source.n_layers,
                    plan.source.units_per_layer
                );
            }
            Ok((model.id, source.id))
        }
        None => Ok((model.id, writer.add_source(model.id, &plan.source)?)),
    }
}

/// The resume state's name: the format and a fingerprint of the dataset's location, the importer's
/// variant and the plan's items, so that a rerun of the same import skips what was done, and
/// another dataset (the next layer of an SAE, whose batches have the same names) or selection
/// starts its own record.
fn state_name(format: &str, identity: &[&str], plan: &ImportPlan) -> String {
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let fields = identity.iter().map(|field| field.as_bytes()).chain(std::iter::once(plan.source.name.as_bytes()));
    for bytes in fields.chain(plan.items.iter().map(|item| item.key.as_bytes())) {
        for &byte in bytes.iter().chain(&[0u8]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("import/{format}/{hash:016x}")
}

/// Checks units against the source's shape, merges explanations with the stored ones (imported
/// explanations of the same origin and author replace theirs; others stay), drops kinds the store
/// has unless replacing, and encodes.
fn prepare_units(
    reader: &dyn StoreRead,
    source: &dd_store::SourceEntry,
    units: Vec<ImportedUnit>,
    replace: bool,
    options: &dd_store::EncodeOptions,
    kept_existing: &mut u64,
) -> Result<Vec<EncodedUnit>, String> {
    let info = &source.info;
    let mut encoded_units = Vec::with_capacity(units.len());
    for unit in units {
        if u64::from(unit.layer) >= info.n_layers || u64::from(unit.index) >= info.units_per_layer {
            return Err(format!(
                "unit {}/{} is outside the model's {} × {} units",
                unit.layer, unit.index, info.n_layers, info.units_per_layer
            ));
        }
        let mut records = Vec::with_capacity(unit.records.len());
        for record in unit.records {
            let kind = record.kind();
            let reading = |error: StoreError| format!("reading the stored {}: {error}", kind.name());
            let record = match record {
                // Explanations merge with the stored ones, which must be decoded.
                NeuronRecord::Explanations(imported) => {
                    match reader.neuron_record(source, unit.layer, unit.index, kind).map_err(reading)? {
                        Some(NeuronRecord::Explanations(stored)) => {
                            NeuronRecord::Explanations(merge_explanations(stored, imported))
                        }
                        _ => NeuronRecord::Explanations(imported),
                    }
                }
                // Other kinds are kept or replaced whole: whether one is stored is all that matters.
                record if replace => record,
                record => {
                    if reader.neuron_blob(source.id, unit.layer, unit.index, kind).map_err(reading)?.is_some() {
                        *kept_existing += 1;
                        continue;
                    }
                    record
                }
            };
            let encoded = EncodedNeuron::new(&record, options)
                .map_err(|error| format!("unit {}/{} {}: {error}", unit.layer, unit.index, kind.name()))?;
            records.push(encoded);
        }
        encoded_units.push(EncodedUnit { layer: unit.layer, index: unit.index, records });
    }
    Ok(encoded_units)
}

/// The stored explanations with the imported ones in place of those of the same origin and author.
fn merge_explanations(stored: Explanations, imported: Explanations) -> Explanations {
    let replaced = |origin: &str, author: Option<&str>| {
        imported.explanations.iter().any(|e| e.origin == origin && e.author.as_deref() == author)
    };
    let mut explanations: Vec<_> =
        stored.explanations.into_iter().filter(|e| !replaced(&e.origin, e.author.as_deref())).collect();
    explanations.extend(imported.explanations);
    Explanations { explanations }
}
