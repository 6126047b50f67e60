//! Fetching a model's files from a Hugging Face-compatible hub (through `dd-hub`'s verified cache)
//! by knowing which files each format needs: `config.json`, the weights (single, sharded, or a
//! named GGUF), and a tokenizer, possibly from the repository a TransformerLens config names.
//!
//! It sits here, between the hub and the runtime, because the data flows hub → model files →
//! runtime: `dd-model` only reads files already on disk (and says what a config or shard index
//! names), `dd-hub` only downloads files it is told about.

use std::path::{Path, PathBuf};

use dd_hub::{HubConfig, HubError, RepoFile};
use dd_model::{ModelFiles, TokenizerFiles};

use crate::error::RecordError;

/// A model on a hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubModel {
    /// `org/name`.
    pub repo_id: String,
    /// Branch, tag or commit.
    pub revision: String,
    /// One file to load, for repositories holding several (`*.gguf`); `None` finds the weights.
    pub file: Option<String>,
}

impl HubModel {
    /// Parses `org/name[@revision][:file]`, e.g. `EleutherAI/pythia-70m@step3000` or
    /// `HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:smollm2-135m-instruct-q8_0.gguf`.
    pub fn parse(reference: &str) -> Self {
        let (rest, file) = match reference.split_once(':') {
            Some((rest, file)) => (rest, Some(file.to_owned())),
            None => (reference, None),
        };
        let (repo_id, revision) = rest.split_once('@').unwrap_or((rest, dd_hub::DEFAULT_REVISION));
        Self { repo_id: repo_id.to_owned(), revision: revision.to_owned(), file }
    }

    fn file(&self, name: &str) -> RepoFile {
        RepoFile::at_revision(&self.repo_id, &self.revision, name)
    }
}

/// Weight files tried in order when the reference names none; index files pull their shards.
const WEIGHT_FILES: [&str; 5] = [
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "model_final.pth",
];

/// Downloads (or finds in the cache) what is needed to load `model`, and locates it.
pub fn fetch_model(hub: &HubConfig, model: &HubModel) -> Result<ModelFiles, RecordError> {
    if let Some(file) = &model.file {
        let path = dd_hub::download(hub, &model.file(file))?;
        if file.ends_with(".gguf") {
            // A GGUF file carries its configuration and tokenizer.
            return Ok(dd_model::locate(&path)?);
        }
        let config_path = dd_hub::download(hub, &model.file("config.json"))?;
        return locate_with_tokenizer(hub, model, &config_path, &path);
    }
    let config_path = match dd_hub::download(hub, &model.file("config.json")) {
        Ok(path) => path,
        Err(HubError::FileNotFound { .. }) => {
            return Err(RecordError::NoModelOnHub {
                repo: model.repo_id.clone(),
                reason: "the repository has no config.json; for a GGUF repository name the file, as \
                         `org/name:file.gguf`"
                    .to_owned(),
            });
        }
        Err(err) => return Err(err.into()),
    };
    let snapshot = config_path.parent().map_or_else(PathBuf::new, Path::to_path_buf);
    let mut found_weights = false;
    for name in WEIGHT_FILES {
        let Some(path) = optional(hub, model, name)? else { continue };
        if name.ends_with(".index.json") {
            for shard in dd_model::shard_names(&path)? {
                dd_hub::download(hub, &model.file(&shard))?;
            }
        }
        found_weights = true;
        break;
    }
    if !found_weights {
        return Err(RecordError::NoModelOnHub {
            repo: model.repo_id.clone(),
            reason: format!("the repository has none of {}", WEIGHT_FILES.join(", ")),
        });
    }
    locate_with_tokenizer(hub, model, &config_path, &snapshot)
}

/// Fetches the tokenizer (the model's own, or the repository its config names) and locates the
/// downloaded model at `model_path`, a snapshot directory or weight file.
fn locate_with_tokenizer(
    hub: &HubConfig,
    model: &HubModel,
    config_path: &Path,
    model_path: &Path,
) -> Result<ModelFiles, RecordError> {
    let tokenizer_repo = dd_model::tokenizer_repository(config_path)?;
    let tokenizer = fetch_tokenizer(hub, model, tokenizer_repo.as_deref())?;
    let mut files = dd_model::locate(model_path)?;
    files.tokenizer = files.tokenizer.or(tokenizer);
    Ok(files)
}

/// The model's own tokenizer files, else `tokenizer.json` from the repository its config names
/// (TransformerLens configs name one in `tokenizer_name`).
fn fetch_tokenizer(
    hub: &HubConfig,
    model: &HubModel,
    tokenizer_repo: Option<&str>,
) -> Result<Option<TokenizerFiles>, RecordError> {
    if let Some(json) = optional(hub, model, "tokenizer.json")? {
        return Ok(Some(TokenizerFiles::Json(json)));
    }
    if let Some(encoder) = optional(hub, model, "vocab.json")? {
        if let Some(merges) = optional(hub, model, "merges.txt")? {
            return Ok(Some(TokenizerFiles::Gpt2 { encoder, merges }));
        }
    }
    let Some(repo_id) = tokenizer_repo else { return Ok(None) };
    let other = HubModel { repo_id: repo_id.to_owned(), revision: dd_hub::DEFAULT_REVISION.to_owned(), file: None };
    Ok(optional(hub, &other, "tokenizer.json")?.map(TokenizerFiles::Json))
}

/// A file that may be absent: not on the hub, or offline and not cached.
fn optional(hub: &HubConfig, model: &HubModel, name: &str) -> Result<Option<PathBuf>, RecordError> {
    match dd_hub::download(hub, &model.file(name)) {
        Ok(path) => Ok(Some(path)),
        Err(HubError::FileNotFound { .. } | HubError::OfflineMiss { .. }) => Ok(None),
        Err(err) => Err(err.into()),
    }
}
