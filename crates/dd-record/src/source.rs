//! Opening the model to record: a local directory or file, or a hub id fetched into the cache
//! (`fetch`: which files each format needs from the hub).

mod fetch;

use std::path::Path;
use std::sync::Arc;

use candle_core::Device;
use dd_model::{ModelFiles, Tokenizer, Transformer};

use crate::error::RecordError;
use crate::naming;

pub use fetch::{HubModel, fetch_model};

/// A model ready to record, with its tokenizer, a name for the database and where it came from.
#[derive(Debug)]
pub struct OpenedModel {
    /// The weights.
    pub transformer: Transformer,
    /// Its tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    /// The name the database gives it when the caller gives none, as a person writes it and safe
    /// in URLs (`SmolLM2-135M-Instruct`; see [`open_model`]).
    pub default_name: String,
    /// Where it came from, for the database's metadata and provenance.
    pub origin: ModelOrigin,
}

/// Where a model came from, as far as its reference and files say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOrigin {
    /// The path or hub id it was opened from, as given.
    pub reference: String,
    /// How its files store the weights (`GGUF Q4_1`, `safetensors BF16`, `PyTorch`).
    pub weights: String,
    /// What it was trained on, when its files say (GGUF `general.datasets`, joined by `, `).
    pub training_dataset: Option<String>,
}

/// Opens `reference`: an existing path, or else a hub id (`org/name[@rev][:file]`) fetched with
/// the `HF_*` environment's settings.
///
/// Its default name comes from the model's own metadata and the name of its file, folder or hub
/// repository (see `naming`): a hub repository's name (`EleutherAI/pythia-70m` → `pythia-70m`);
/// else the name of the file or folder (without the weights' encoding:
/// `SmolLM2-135M-Instruct.Q4_1.gguf` → `SmolLM2-135M-Instruct`) when it belongs to the family the
/// metadata names; else the metadata's name (GGUF `general.*`, `config.json`'s hub id or
/// TransformerLens `model_name`); else the file or folder's name; else `model`.
pub fn open_model(reference: &str) -> Result<OpenedModel, RecordError> {
    let path = Path::new(reference);
    let (files, given, hub_repo): (ModelFiles, Vec<String>, Option<String>) = if path.exists() {
        (dd_model::locate(path)?, naming::name_from_path(path).into_iter().collect(), None)
    } else {
        let hub = dd_hub::HubConfig::from_env()?;
        let model = HubModel::parse(reference);
        let repo = naming::repo_name(&model.repo_id).to_owned();
        let files = fetch_model(&hub, &model)?;
        match model.file.as_deref() {
            // A repository of GGUF files is named after the model (`SmolLM2-135M-Instruct-GGUF`),
            // or holds several models: its files' names name them.
            Some(file) if file.ends_with(".gguf") => {
                let repo = repo.strip_suffix("-GGUF").or_else(|| repo.strip_suffix("-gguf")).unwrap_or(&repo);
                (files, vec![repo.to_owned(), naming::name_from_file_name(file)], None)
            }
            _ => (files, Vec::new(), Some(repo)),
        }
    };
    let description = dd_model::describe(&files)?;
    let default_name = match hub_repo {
        // The repository is the model as published, whatever its config says.
        Some(repo) => naming::url_safe_name(&repo),
        None => naming::default_model_name(&given, &description),
    };
    let tokenizer_files = files.tokenizer.clone().ok_or_else(|| {
        RecordError::InvalidConfig(format!(
            "no tokenizer found with {reference} (looked for tokenizer.json, vocab.json + merges.txt, or one inside the GGUF)"
        ))
    })?;
    let tokenizer = Arc::new(dd_model::load_tokenizer(&tokenizer_files)?);
    let transformer = dd_model::load_located(&files, &Device::Cpu)?;
    let training_dataset =
        (!description.training_datasets.is_empty()).then(|| description.training_datasets.join(", "));
    let origin = ModelOrigin { reference: reference.to_owned(), weights: description.weights, training_dataset };
    Ok(OpenedModel { transformer, tokenizer, default_name, origin })
}
