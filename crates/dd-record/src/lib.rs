//! The recorder: streams a text dataset through a model and keeps, for every MLP neuron, what it
//! fires on (top, bottom, band and random examples), its statistics and its most activating tokens.
//! It opens the model to record from a path or a hub id, fetching a hub model's files through
//! `dd-hub` ([`fetch_model`]).

mod accumulate;
mod contexts;
pub mod dataset;
mod error;
mod merge;
mod record;
mod source;
mod state;
mod weights;
mod write;

pub use accumulate::{AccumulatorConfig, SelectionSizes};
pub use error::RecordError;
pub use merge::merge_shards;
pub use record::{RecordConfig, RecordEvent, RecordOutcome, RecordTiming, Recording, record};
pub use source::{HubModel, OpenedModel, fetch_model, open_model, url_safe_name};
pub use weights::{WeightProgress, write_weight_facts};
pub use write::{MODEL_RANKING_LEN, WriteConfig, WriteSummary, write_recording};
