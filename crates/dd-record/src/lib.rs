//! The recorder: streams a text dataset through a model and keeps, for every MLP neuron, what it
//! fires on (top, bottom, band and random examples), its statistics and its most activating tokens.
//! It opens the model to record from a path or a hub id, fetching a hub model's files through
//! `dd-hub` ([`fetch_model`]).
//!
//! # Layout
//! Modules in layers, each using only those above it:
//! - [`dataset`] (with its own error), `contexts` (the kept token ids), `accumulate` (the per-neuron
//!   accumulators), `naming` (default model and dataset names, [`DatasetDescription`]).
//! - `error`: [`RecordError`].
//! - `state`: the whole recorder state as a versioned file (checkpoints, shard state); `source`:
//!   opening the model to record (`source/fetch`: a hub model's files); `weights`: the weight-based
//!   facts.
//! - `recording`: a finished [`Recording`] and the contexts it keeps.
//! - `record`: the recording loop ([`record`]); `merge`: shards into one recording; `write`: a
//!   recording into database records.
//! - `job`: [`record_to_database`], the whole sequence with its policy, for every front end.
//!
//! Everything is written through [`dd_store::StoreWrite`], so any backend can hold the result.

mod accumulate;
mod contexts;
pub mod dataset;
mod error;
mod job;
mod merge;
mod naming;
mod record;
mod recording;
mod source;
mod state;
mod weights;
mod write;

pub use accumulate::{AccumulatorConfig, SelectionSizes};
pub use dd_data::MODEL_RANKING_LEN;
pub use error::RecordError;
pub use job::{
    DatabaseWrite, JobEvent, JobOutcome, RecordingJob, RecordingOutput, WEIGHT_FACTS_PER_LIST,
    checkpoint_interval_from_minutes, record_to_database, standard_bottom_examples, write_to_database,
};
pub use merge::merge_shards;
pub use naming::{DatasetDescription, dataset_name, url_safe_name};
pub use record::{RecordConfig, RecordEvent, RecordOutcome, record};
pub use recording::{RecordTiming, Recording};
pub use source::{HubModel, ModelOrigin, OpenedModel, fetch_model, open_model};
pub use weights::{WeightProgress, write_weight_facts};
pub use write::vocabulary_of;
pub use write::{WriteConfig, WriteSummary, write_recording};
