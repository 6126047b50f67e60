//! Fetching a model's files from a Hugging Face-compatible hub (through `dd-hub`'s verified cache)
//! by knowing which files each format needs: `config.json`, the weights (single, sharded, or a
//! named GGUF), and a tokenizer, possibly from the repository a TransformerLens config names.

use std::path::{Path, PathBuf};

use dd_hub::{HubConfig, HubError, RepoFile};

use crate::config::JsonConfig;
use crate::error::ModelError;
use crate::load::{self, ModelFiles, TokenizerFiles};

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
pub fn fetch_model(hub: &HubConfig, model: &HubModel) -> Result<ModelFiles, ModelError> {
    if let Some(file) = &model.file {
        let path = dd_hub::download(hub, &model.file(file))?;
        if file.ends_with(".gguf") {
            return Ok(load::gguf_files(&path));
        }
        let config_path = dd_hub::download(hub, &model.file("config.json"))?;
        return locate_with_tokenizer(hub, model, &config_path, &path);
    }
    let config_path = match dd_hub::download(hub, &model.file("config.json")) {
        Ok(path) => path,
        Err(HubError::FileNotFound { .. }) => {
            return Err(ModelError::UnknownFormat {
                path: PathBuf::from(&model.repo_id),
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
            for shard in load::shard_names(&path)? {
                dd_hub::download(hub, &model.file(&shard))?;
            }
        }
        found_weights = true;
        break;
    }
    if !found_weights {
        return Err(ModelError::UnknownFormat {
            path: PathBuf::from(&model.repo_id),
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
) -> Result<ModelFiles, ModelError> {
    let tokenizer_repo = JsonConfig::read(config_path)?.str_opt(&["tokenizer_name"])?.map(str::to_owned);
    let tokenizer = fetch_tokenizer(hub, model, tokenizer_repo.as_deref())?;
    let mut files = load::locate(model_path)?;
    files.tokenizer = files.tokenizer.or(tokenizer);
    Ok(files)
}

/// The model's own tokenizer files, else `tokenizer.json` from the repository its config names
/// (TransformerLens configs name one in `tokenizer_name`).
fn fetch_tokenizer(
    hub: &HubConfig,
    model: &HubModel,
    tokenizer_repo: Option<&str>,
) -> Result<Option<TokenizerFiles>, ModelError> {
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
fn optional(hub: &HubConfig, model: &HubModel, name: &str) -> Result<Option<PathBuf>, ModelError> {
    match dd_hub::download(hub, &model.file(name)) {
        Ok(path) => Ok(Some(path)),
        Err(HubError::FileNotFound { .. } | HubError::OfflineMiss { .. }) => Ok(None),
        Err(err) => Err(err.into()),
    }
}
