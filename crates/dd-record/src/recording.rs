//! A finished recording (one shard's, or a merge of several): what it holds, which contexts it must
//! keep, and its mergeable state kept inside a shard's database.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use dd_model::Transformer;
use dd_store::StoreWrite;

use crate::error::RecordError;
use crate::naming::DatasetDescription;
use crate::state::RecorderState;

/// A finished recording of one shard (or a merge of several), ready to be written to a database.
#[derive(Debug, Clone)]
pub struct Recording {
    pub(crate) state: Box<RecorderState>,
    pub(crate) timing: RecordTiming,
    /// What it was recorded on, as the shard database it was loaded from describes it; `None` for
    /// a recording made in this process, whose job knows.
    pub(crate) dataset: Option<DatasetDescription>,
}

/// Where a run's time went: the recording overhead is `accumulate / forward`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct RecordTiming {
    /// In the model's forward pass (this process's part of the run).
    pub forward: Duration,
    /// Updating the accumulators: selections, moments, histograms and the token table.
    pub accumulate: Duration,
}

/// The name of the recorder's state in a shard database.
const STATE_NAME: &str = "recorder";

/// The part of the settings that names the model's shape.
pub(crate) fn model_identity(c: &dd_model::ModelConfig) -> String {
    format!("arch={} layers={} d_mlp={} vocab={}", c.architecture.name(), c.n_layers, c.d_mlp, c.d_vocab)
}

impl Recording {
    /// Tokens recorded.
    pub fn tokens_recorded(&self) -> u64 {
        self.state.tokens_recorded
    }

    /// Checks that `model` has the shape this recording was made with (before writing it with that
    /// model's vocabulary and weights).
    pub fn check_model(&self, model: &Transformer) -> Result<(), RecordError> {
        let identity = model_identity(model.config());
        if self.state.settings.contains(&format!(" {identity} ")) {
            return Ok(());
        }
        Err(RecordError::SettingsMismatch {
            what: "the recording".to_owned(),
            theirs: self.state.settings.clone(),
            ours: identity,
            hint: "give the model the shards were recorded with",
        })
    }

    /// Where this process's recording time went (zero for a loaded or merged recording).
    pub fn timing(&self) -> RecordTiming {
        self.timing
    }

    /// What a recording loaded from shard databases was recorded on, as the (first) shard database
    /// describes it: what a merge writes. `None` for a recording made in this process.
    pub fn dataset(&self) -> Option<&DatasetDescription> {
        self.dataset.as_ref()
    }

    /// Contexts recorded.
    pub fn contexts_recorded(&self) -> u64 {
        self.state.contexts_recorded
    }

    /// Keeps this shard's mergeable state in `store`, beside the model `model_name` written there,
    /// for [`merge_shards`](crate::merge_shards). The caller finishes the store.
    pub fn save_to_database(&self, store: &mut dyn StoreWrite, model_name: &str) -> Result<(), RecordError> {
        let mut state = self.state.clone();
        let keep = self.selected_contexts();
        state.contexts.retain(&keep);
        let model = store.catalog()?.model(model_name).map(|m| m.id).ok_or_else(|| {
            RecordError::InvalidConfig(format!("{} holds no model named {model_name:?}", store.location()))
        })?;
        let mut batch = store.batch()?;
        batch.put_model_state(model, STATE_NAME, &state.to_bytes())?;
        batch.commit()?;
        Ok(())
    }

    /// Reads the shard state a database holds (see [`Self::save_to_database`]).
    pub fn load_from_database(path: &Path) -> Result<Self, RecordError> {
        let store = dd_store::SqliteStore::open(path, &dd_store::ReadConfig::serving())?;
        let catalog = dd_store::StoreRead::catalog(&store).clone();
        for model in catalog.models() {
            if let Some(bytes) = store.model_state(model.id, STATE_NAME)? {
                let state = RecorderState::from_bytes(&bytes, path)?;
                let dataset = DatasetDescription {
                    name: model.metadata.dataset.clone(),
                    source: model.metadata.provenance.data_source.clone(),
                };
                return Ok(Self { state: Box::new(state), timing: RecordTiming::default(), dataset: Some(dataset) });
            }
        }
        Err(RecordError::State {
            path: path.to_owned(),
            message: "holds no shard state: record it with --shard i/n".to_owned(),
        })
    }

    /// The contexts some neuron selected: all that a shard or a finished recording needs to keep.
    pub(crate) fn selected_contexts(&self) -> HashSet<u64> {
        let mut keep = HashSet::new();
        for chunk in &self.state.accumulator.chunks {
            for neuron in &chunk.neurons {
                let selections = [&neuron.top, &neuron.bottom, &neuron.random].into_iter().chain(&neuron.bands.bands);
                for selection in selections {
                    keep.extend(selection.slots().iter().map(|s| s.context));
                }
            }
        }
        keep
    }
}
