//! Errors of the recorder.

use std::path::PathBuf;

use crate::dataset::DatasetError;

/// Why a recording, a merge, a database write or fetching a model from a hub failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The dataset could not be read or tokenized.
    #[error(transparent)]
    Dataset(Box<DatasetError>),
    /// The model failed to load or run.
    #[error(transparent)]
    Model(Box<dd_model::ModelError>),
    /// A model file could not be fetched from the hub.
    #[error(transparent)]
    Hub(Box<dd_hub::HubError>),
    /// A hub repository holds nothing we can load as a model (no `config.json`, or no weights).
    #[error("{repo}: {reason}")]
    NoModelOnHub {
        /// The repository (`org/name`).
        repo: String,
        /// What was looked for and not found.
        reason: String,
    },
    /// The database could not be written or read.
    #[error(transparent)]
    Store(Box<dd_store::StoreError>),
    /// A checkpoint or shard state could not be read or written.
    #[error("recorder state {}: {message}", path.display())]
    State {
        /// The state file (or database holding it).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A checkpoint or shard was made with other settings than this run's.
    #[error("{what} was recorded with other settings; {hint}\n  it has:  {theirs}\n  this run: {ours}")]
    SettingsMismatch {
        /// The checkpoint or shard.
        what: String,
        /// Its settings.
        theirs: String,
        /// This run's settings.
        ours: String,
        /// What the user can do.
        hint: &'static str,
    },
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    InvalidConfig(String),
    /// The model produced a NaN or infinite activation, which cannot be recorded.
    #[error(
        "the model produced a NaN or infinite activation (layer {layer}, neuron {neuron}, context {context}); check its weights and configuration"
    )]
    NonFinite {
        /// Layer of the neuron.
        layer: u32,
        /// The neuron.
        neuron: u32,
        /// The context it happened on.
        context: u64,
    },
    /// The dataset produced no contexts.
    #[error("the dataset produced no contexts to record")]
    NothingRecorded,
    /// The database already holds a model of this name.
    #[error("the database already holds a model named {0:?}; choose another --name or delete it first")]
    ModelExists(String),
    /// A recording would go into a database that already holds a finished model of its name.
    #[error("{location} already holds a model named {name:?}; pass --name or use another --output")]
    AlreadyRecorded {
        /// The database.
        location: String,
        /// The model's name.
        name: String,
    },
}

// Boxed so that `Result<_, RecordError>` stays small on the recorder's hot paths.
impl From<DatasetError> for RecordError {
    fn from(error: DatasetError) -> Self {
        Self::Dataset(Box::new(error))
    }
}

impl From<dd_model::ModelError> for RecordError {
    fn from(error: dd_model::ModelError) -> Self {
        Self::Model(Box::new(error))
    }
}

impl From<dd_hub::HubError> for RecordError {
    fn from(error: dd_hub::HubError) -> Self {
        Self::Hub(Box::new(error))
    }
}

impl From<dd_store::StoreError> for RecordError {
    fn from(error: dd_store::StoreError) -> Self {
        Self::Store(Box::new(error))
    }
}
