//! Recording a dataset into a database, the one sequence every front end runs (the CLI's `record`
//! and `demo`, the Python package): record with checkpoints, clear what an interrupted write left,
//! write the recording and the weight-based facts, keep a shard's mergeable state, and only then
//! drop the checkpoint. The choices a user leaves open (how many bottom examples a ReLU model gets,
//! a context longer than the model's) are made here, once.
//!
//! The caller draws progress from [`JobEvent`]s and raises the stop flag on Ctrl-C; nothing here
//! prints.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use dd_model::Activation;
use dd_store::{EncodeOptions, StoreError, StoreLocation};

use crate::accumulate::{AccumulatorConfig, SelectionSizes};
use crate::dataset::{DEFAULT_CONTEXT_LENGTH, DEFAULT_TEXT_FIELD, DatasetConfig, Shard};
use crate::error::RecordError;
use crate::naming::DatasetDescription;
use crate::record::{RecordConfig, RecordEvent, RecordOutcome, record};
use crate::recording::Recording;
use crate::source::{ModelOrigin, OpenedModel};
use crate::weights::{WeightProgress, write_weight_facts};
use crate::write::{WriteConfig, WriteSummary, write_recording};

/// Entries per list of the weight-based facts (top and bottom logits, input tokens, connections).
pub const WEIGHT_FACTS_PER_LIST: usize = 10;

/// A recording run into a database as a user describes it (CLI flags, Python arguments). The
/// choices that depend on the model are made by [`record_to_database`] once it is open (see
/// [`RecordingJob::record_config`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingJob {
    /// The text to record.
    pub dataset: DatasetConfig,
    /// The dataset as the database describes it: its name (by default from its path,
    /// [`DatasetDescription::of_path`]) and its exact source.
    pub dataset_description: DatasetDescription,
    /// The database and the checkpoint kept until it is complete.
    pub output: RecordingOutput,
    /// The model's name in the database; `None` takes the name derived from the model's path
    /// ([`OpenedModel::default_name`]).
    pub model_name: Option<String>,
    /// Tokens per context, BOS included; longer than the model's context is cut to it.
    pub context_length: usize,
    /// Stop after this many tokens (all shards together); `None` records the whole dataset.
    pub token_budget: Option<u64>,
    /// Contexts per forward pass.
    pub batch_size: usize,
    /// Top-activating contexts per neuron.
    pub top: u32,
    /// Bottom-activating contexts per neuron; `None` takes [`standard_bottom_examples`] for the
    /// model's activation.
    pub bottom: Option<u32>,
    /// Bands of the activation range sampled per neuron (0 for none).
    pub bands: u32,
    /// Contexts sampled per band.
    pub per_band: u32,
    /// Uniformly random contexts per neuron.
    pub random: u32,
    /// Memory for the per-token mean activations of every neuron, in bytes.
    pub token_table_bytes: u64,
    /// `Some` records one shard of several: its database keeps the mergeable state for
    /// [`merge_shards`](crate::merge_shards) and leaves the weight-based facts to the merge.
    pub shard: Option<Shard>,
    /// Time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Entries per list of the weight-based facts; `None` skips them (a shard always does).
    pub weight_facts: Option<usize>,
    /// How records are encoded.
    pub encode: EncodeOptions,
}

/// Where a recording goes: the database, and the checkpoint kept until the database is complete
/// (a database with its checkpoint still there is unfinished).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingOutput {
    /// The database.
    pub store: StoreLocation,
    /// The checkpoint file.
    pub checkpoint_path: PathBuf,
}

/// Progress of [`record_to_database`] and [`write_to_database`], for the caller to display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JobEvent {
    /// The output is free for this recording (or holds only its unfinished write): recording
    /// begins, with a count of the dataset's tokens on a fresh run.
    Started,
    /// The recorder's progress: counting tokens, recording, checkpoints.
    Record(RecordEvent),
    /// Recording is complete and kept in the checkpoint; the database is written next. An
    /// interruption from here on loses only the write: running again writes it from the checkpoint.
    RecordingFinished,
    /// The database is about to be written.
    WriteStarting {
        /// Tokens recorded.
        tokens: u64,
        /// Contexts recorded.
        contexts: u64,
        /// Whether the database held this model from a write that was interrupted, which was
        /// deleted to be written again.
        deleted_unfinished_write: bool,
    },
    /// Neurons written so far.
    WritingNeurons {
        /// Neurons written.
        done: u64,
        /// Neurons in all.
        total: u64,
    },
    /// Every record of the recording is written.
    NeuronsWritten,
    /// The weight-based facts' progress.
    WeightFacts(WeightProgress),
    /// The weight-based facts are written.
    WeightFactsWritten {
        /// Records written.
        n_records: u64,
        /// Time they took.
        elapsed: Duration,
    },
    /// The database is complete and finished (ready to serve).
    DatabaseWritten(WriteSummary),
}

/// How [`record_to_database`] ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JobOutcome {
    /// The database is complete and the checkpoint is gone.
    Finished {
        /// Tokens recorded.
        tokens: u64,
        /// Contexts recorded.
        contexts: u64,
        /// What was written.
        written: WriteSummary,
    },
    /// The stop flag was raised while recording; the checkpoint holds `tokens` tokens (none were
    /// recorded, and nothing saved, when it is 0) and running the same job again continues.
    Interrupted {
        /// Tokens in the checkpoint.
        tokens: u64,
    },
}

/// Where and how a finished recording is written (see [`write_to_database`]).
#[derive(Debug, Clone)]
pub struct DatabaseWrite {
    /// The database.
    pub store: StoreLocation,
    /// How the model is described and what is listed per neuron.
    pub write: WriteConfig,
    /// Entries per list of the weight-based facts; `None` skips them.
    pub weight_facts: Option<usize>,
    /// How records are encoded.
    pub encode: EncodeOptions,
}

/// Bottom-activating examples per neuron when the user names no number: none for ReLU, whose
/// neurons sit at exactly 0 on most tokens, so their "bottom" examples would be arbitrary zeros;
/// 10 for every other activation, whose negative side means something.
pub fn standard_bottom_examples(activation: Activation) -> u32 {
    match activation {
        Activation::Relu => 0,
        _ => 10,
    }
}

/// A checkpoint interval of `minutes`, between one second and about thirty years; NaN means one
/// second (`Duration::from_secs_f64` would panic on infinity and NaN).
pub fn checkpoint_interval_from_minutes(minutes: f64) -> Duration {
    let seconds = minutes * 60.0;
    Duration::from_secs_f64(if seconds.is_nan() { 1.0 } else { seconds.clamp(1.0, 1e9) })
}

impl RecordingJob {
    /// The standard job (that of `deepdecipher record` without options): `dataset` recorded whole,
    /// and named after its path, into the SQLite file `output` in contexts of 128 tokens, 8 per batch; 20 top examples, the
    /// [standard bottom examples](standard_bottom_examples), 10 bands of 2 and 5 random contexts
    /// per neuron; a 512 MB token table; a checkpoint every 5 minutes; the weight-based facts with
    /// [`WEIGHT_FACTS_PER_LIST`] entries per list.
    pub fn standard(dataset: &Path, output: &Path) -> Self {
        Self {
            dataset: DatasetConfig {
                path: dataset.to_owned(),
                format: None,
                text_field: DEFAULT_TEXT_FIELD.to_owned(),
            },
            dataset_description: DatasetDescription::of_path(dataset),
            output: RecordingOutput::sqlite_file(output),
            model_name: None,
            context_length: DEFAULT_CONTEXT_LENGTH,
            token_budget: None,
            batch_size: 8,
            top: 20,
            bottom: None,
            bands: 10,
            per_band: 2,
            random: 5,
            token_table_bytes: 512 << 20,
            shard: None,
            checkpoint_interval: Duration::from_secs(5 * 60),
            weight_facts: Some(WEIGHT_FACTS_PER_LIST),
            encode: EncodeOptions::STANDARD,
        }
    }

    /// The model's name in the database.
    pub fn model_name<'a>(&'a self, model: &'a OpenedModel) -> &'a str {
        self.model_name.as_deref().unwrap_or(&model.default_name)
    }

    /// The recorder's settings for this job on `model`: the context cut to the model's, the bottom
    /// examples chosen for its activation when the job names none, [`dd_data::HISTOGRAM_BINS`] bins.
    pub fn record_config(&self, model: &OpenedModel) -> RecordConfig {
        let config = model.transformer.config();
        RecordConfig {
            model_name: self.model_name(model).to_owned(),
            dataset: self.dataset.clone(),
            context_length: self.context_length.min(config.n_ctx),
            token_budget: self.token_budget,
            shard: self.shard.unwrap_or(Shard::WHOLE),
            batch_size: self.batch_size,
            accumulator: AccumulatorConfig {
                sizes: SelectionSizes {
                    top: self.top,
                    bottom: self.bottom.unwrap_or_else(|| standard_bottom_examples(config.activation)),
                    bands: self.bands,
                    per_band: self.per_band,
                    random: self.random,
                },
                histogram_bins: dd_data::HISTOGRAM_BINS as u32,
            },
            token_table_bytes: self.token_table_bytes,
            checkpoint_path: self.output.checkpoint_path.clone(),
            checkpoint_interval: self.checkpoint_interval,
        }
    }
}

impl RecordingOutput {
    /// The SQLite file `path`, with its checkpoint beside it (`data.db.checkpoint`).
    pub fn sqlite_file(path: &Path) -> Self {
        let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
        name.push(".checkpoint");
        Self { store: StoreLocation::SqliteFile(path.to_owned()), checkpoint_path: path.with_file_name(name) }
    }

    /// Whether the database holds a model named `model_name`: false when there is no database yet,
    /// or one that cannot be read (writing it then says why).
    pub fn holds_model(&self, model_name: &str) -> bool {
        matches!(self.store.existing_catalog(), Ok(Some(catalog)) if catalog.model(model_name).is_some())
    }

    /// Whether the database holds a finished recording of `model_name`: the model, and no
    /// checkpoint left by a run that was interrupted before its database was complete.
    pub fn holds_finished_recording(&self, model_name: &str) -> bool {
        !self.checkpoint_path.exists() && self.holds_model(model_name)
    }
}

impl DatabaseWrite {
    /// What `deepdecipher merge` writes: [`WriteConfig::standard`], the weight-based facts with
    /// [`WEIGHT_FACTS_PER_LIST`] entries per list, standard encoding.
    pub fn standard(
        store: StoreLocation,
        model_name: &str,
        dataset: &DatasetDescription,
        origin: &ModelOrigin,
    ) -> Self {
        Self {
            store,
            write: WriteConfig::standard(model_name, dataset, origin),
            weight_facts: Some(WEIGHT_FACTS_PER_LIST),
            encode: EncodeOptions::STANDARD,
        }
    }
}

/// Records `job.dataset` through `model` into `job.output`, resuming from the checkpoint if there
/// is one; `progress` is called from several threads while the weight-based facts are computed.
///
/// Raising `stop` while recording makes the run checkpoint and return
/// [`JobOutcome::Interrupted`]; after recording it is no longer polled (an interrupted write
/// leaves the checkpoint, so the next run writes the database again).
pub fn record_to_database(
    model: &OpenedModel,
    job: &RecordingJob,
    progress: &(dyn Fn(JobEvent) + Sync),
    stop: &AtomicBool,
) -> Result<JobOutcome, RecordError> {
    let name = job.model_name(model);
    let output = &job.output;
    let config = job.record_config(model);
    // A database of an older schema cannot be looked into, so it would pass the check below and
    // fail only once recorded: refuse it now.
    if let Err(error @ StoreError::SchemaTooOld { .. }) = output.store.existing_catalog() {
        return Err(error.into());
    }
    if output.holds_model(name) && !output.checkpoint_path.exists() {
        return Err(RecordError::AlreadyRecorded { location: output.store.to_string(), name: name.to_owned() });
    }
    progress(JobEvent::Started);
    let outcome =
        record(&model.transformer, &model.tokenizer, &config, stop, &|event| progress(JobEvent::Record(event)))?;
    let recording = match outcome {
        RecordOutcome::Interrupted { tokens } => return Ok(JobOutcome::Interrupted { tokens }),
        RecordOutcome::Finished(recording) => recording,
    };
    progress(JobEvent::RecordingFinished);
    // The checkpoint matched these settings, and it is removed only once the database is complete:
    // a model already there is what an interrupted write left, and is written again.
    let deleted_unfinished_write = output.holds_model(name);
    if deleted_unfinished_write {
        let mut store = output.store.open_writer(job.encode)?;
        store.delete_model(name)?;
        store.finish()?;
    }
    let (tokens, contexts) = (recording.tokens_recorded(), recording.contexts_recorded());
    progress(JobEvent::WriteStarting { tokens, contexts, deleted_unfinished_write });
    let database = DatabaseWrite {
        store: output.store.clone(),
        write: WriteConfig::standard(name, &job.dataset_description, &model.origin),
        // A shard is a database of its slice (servable as it is) with its mergeable state inside;
        // the weight-based facts are left to the merge, which computes them once.
        weight_facts: if job.shard.is_some() { None } else { job.weight_facts },
        encode: job.encode,
    };
    let written = write_to_database(model, &recording, &database, progress)?;
    if job.shard.is_some() {
        let mut store = output.store.open_writer(job.encode)?;
        recording.save_to_database(&mut *store, name)?;
        store.finish()?;
    }
    std::fs::remove_file(&output.checkpoint_path).ok();
    Ok(JobOutcome::Finished { tokens, contexts, written })
}

/// Writes a finished recording (one run's, or merged shards') into `database.store` as a new model,
/// with the weight-based facts of `model` unless `database.weight_facts` is `None`, and finishes
/// the store.
pub fn write_to_database(
    model: &OpenedModel,
    recording: &Recording,
    database: &DatabaseWrite,
    progress: &(dyn Fn(JobEvent) + Sync),
) -> Result<WriteSummary, RecordError> {
    let mut store = database.store.open_writer(database.encode)?;
    let summary = write_recording(
        recording,
        model.transformer.config(),
        &model.tokenizer,
        &mut *store,
        &database.write,
        &|done, total| progress(JobEvent::WritingNeurons { done, total }),
    )?;
    progress(JobEvent::NeuronsWritten);
    let weight_facts = match database.weight_facts {
        Some(k) => {
            let started = Instant::now();
            let report = |weight_progress| progress(JobEvent::WeightFacts(weight_progress));
            let n_records =
                write_weight_facts(&model.transformer, &mut *store, &database.write.model_name, k, &report)?;
            Some((n_records, started))
        }
        None => None,
    };
    store.finish()?;
    if let Some((n_records, started)) = weight_facts {
        progress(JobEvent::WeightFactsWritten { n_records, elapsed: started.elapsed() });
    }
    progress(JobEvent::DatabaseWritten(summary));
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_models_get_no_bottom_examples_by_default() {
        assert_eq!(standard_bottom_examples(Activation::Relu), 0);
        for activation in [Activation::GeluTanh, Activation::GeluErf, Activation::Silu, Activation::SoluLayerNorm] {
            assert_eq!(standard_bottom_examples(activation), 10, "{activation:?}");
        }
    }

    #[test]
    fn checkpoint_intervals_are_clamped_and_never_panic() {
        assert_eq!(checkpoint_interval_from_minutes(5.0), Duration::from_secs(300));
        assert_eq!(checkpoint_interval_from_minutes(0.0), Duration::from_secs(1));
        assert_eq!(checkpoint_interval_from_minutes(-3.0), Duration::from_secs(1));
        assert_eq!(checkpoint_interval_from_minutes(f64::NAN), Duration::from_secs(1));
        assert_eq!(checkpoint_interval_from_minutes(f64::INFINITY), Duration::from_secs(1_000_000_000));
    }

    #[test]
    fn a_sqlite_output_keeps_its_checkpoint_beside_it() {
        let output = RecordingOutput::sqlite_file(Path::new("runs/data.db"));
        assert_eq!(output.store, StoreLocation::SqliteFile(PathBuf::from("runs/data.db")));
        assert_eq!(output.checkpoint_path, PathBuf::from("runs/data.db.checkpoint"));
        let job = RecordingJob::standard(Path::new("corpus"), Path::new("runs/data.db"));
        assert_eq!(job.output, output);
        assert_eq!(job.dataset_description, DatasetDescription { name: "corpus".into(), source: "corpus".into() });
    }
}
