//! Opening the model to record: a local directory or file, or a hub id fetched into the cache
//! (`fetch`: which files each format needs from the hub).

mod fetch;

use std::path::Path;
use std::sync::Arc;

use candle_core::Device;
use dd_model::{ModelFiles, Tokenizer, Transformer};

use crate::error::RecordError;

pub use fetch::{HubModel, fetch_model};

/// A model ready to record, with its tokenizer and a name for the database.
#[derive(Debug)]
pub struct OpenedModel {
    /// The weights.
    pub transformer: Transformer,
    /// Its tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    /// A name derived from the path or hub id, safe in URLs (`SmolLM2-135M-Instruct.Q4_1`).
    pub default_name: String,
}

/// Opens `reference`: an existing path, or else a hub id (`org/name[@rev][:file]`) fetched with
/// the `HF_*` environment's settings.
pub fn open_model(reference: &str) -> Result<OpenedModel, RecordError> {
    let path = Path::new(reference);
    let (files, name): (ModelFiles, String) = if path.exists() {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        (dd_model::locate(path)?, name)
    } else {
        let hub = dd_hub::HubConfig::from_env()?;
        let model = HubModel::parse(reference);
        let name = model.repo_id.rsplit('/').next().unwrap_or(&model.repo_id).to_owned();
        (fetch_model(&hub, &model)?, name)
    };
    let tokenizer_files = files.tokenizer.clone().ok_or_else(|| {
        RecordError::InvalidConfig(format!(
            "no tokenizer found with {reference} (looked for tokenizer.json, vocab.json + merges.txt, or one inside the GGUF)"
        ))
    })?;
    let tokenizer = Arc::new(dd_model::load_tokenizer(&tokenizer_files)?);
    let transformer = dd_model::load_located(&files, &Device::Cpu)?;
    Ok(OpenedModel { transformer, tokenizer, default_name: url_safe_name(&name) })
}

/// Replaces every character a model name may not hold with `-`.
pub fn url_safe_name(name: &str) -> String {
    let cleaned: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect();
    let trimmed = cleaned.trim_matches('.');
    if trimmed.is_empty() { "model".to_owned() } else { trimmed.chars().take(100).collect() }
}
