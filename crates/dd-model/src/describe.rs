//! What a model's own files say about it beyond its shape: the name its metadata gives, what it
//! was trained on, and how its weights are stored. Read from headers and `config.json` only, never
//! the weights; what a caller does with a name (dd-record's default model names) is its own policy.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::quantized::gguf_file;

use crate::config::JsonConfig;
use crate::error::ModelError;
use crate::load::{ModelFiles, WeightFormat, gguf_integer};
use crate::weights::WeightFiles;

/// What a model's files say about the model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelDescription {
    /// The model's name as its metadata writes it, when it gives one: a GGUF file's name parts
    /// (`general.basename`, `size_label`, `finetune`, `version`) joined by `-` as llama.cpp names
    /// its files, else its `general.name`; an HF `config.json`'s `_name_or_path` when that is a hub
    /// id (`org/name`, not a local path); a TransformerLens config's `model_name`.
    pub name: Option<String>,
    /// The model family the name starts with, when the metadata says (GGUF `general.basename`:
    /// `SmolLM2`, `Meta-Llama-3.1`).
    pub family: Option<String>,
    /// What the model was trained on, when the files say (GGUF `general.datasets`).
    pub training_datasets: Vec<String>,
    /// How the weights are stored: the format and, where the files say, the encoding (`GGUF Q4_1`,
    /// `safetensors BF16`, `PyTorch`).
    pub weights: String,
}

/// Describes the model `files` locate. Fails only when a file cannot be read or parsed at all; a
/// metadata field of an unexpected type is left out.
pub fn describe(files: &ModelFiles) -> Result<ModelDescription, ModelError> {
    let mut description = match files.format {
        WeightFormat::Gguf => match files.weights.first() {
            Some(path) => describe_gguf(&WeightFiles::gguf(path)?),
            None => ModelDescription::default(),
        },
        WeightFormat::Safetensors => {
            let dtype = match files.weights.first() {
                Some(path) => safetensors_dtype(path)?,
                None => None,
            };
            let weights = dtype.map_or_else(|| "safetensors".to_owned(), |dtype| format!("safetensors {dtype}"));
            ModelDescription { weights, ..ModelDescription::default() }
        }
        WeightFormat::PyTorch => ModelDescription { weights: "PyTorch".to_owned(), ..ModelDescription::default() },
    };
    if let Some(config_path) = &files.config {
        description.name = config_name(&JsonConfig::read(config_path)?);
    }
    Ok(description)
}

/// The name an HF or TransformerLens `config.json` gives its model.
fn config_name(config: &JsonConfig<'_>) -> Option<String> {
    let is_hf = config.model_type().ok().flatten().is_some();
    if !is_hf {
        return config.str_opt(&["model_name"]).ok().flatten().map(str::to_owned);
    }
    // `_name_or_path` is what `from_pretrained` was given: a hub id names the model, a local path
    // (a training run's checkpoint directory) does not.
    let name_or_path = config.str_opt(&["_name_or_path"]).ok().flatten()?;
    let is_hub_id = !name_or_path.is_empty()
        && !name_or_path.starts_with(['/', '.', '~'])
        && !name_or_path.contains('\\')
        && name_or_path.matches('/').count() <= 1;
    is_hub_id.then(|| name_or_path.to_owned())
}

/// What a GGUF file's `general.*` metadata says.
fn describe_gguf(weights: &WeightFiles) -> ModelDescription {
    let Some(metadata) = weights.gguf_metadata() else { return ModelDescription::default() };
    let text = |key: &str| match metadata.get(key) {
        Some(gguf_file::Value::String(value)) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ => None,
    };
    let family = text("general.basename");
    // llama.cpp's naming convention, `<basename>-<size_label>-<finetune>-<version>`, spaces as `-`.
    let name = match &family {
        Some(basename) => {
            let parts =
                [Some(basename.clone()), text("general.size_label"), text("general.finetune"), text("general.version")];
            Some(parts.into_iter().flatten().map(|part| part.replace(' ', "-")).collect::<Vec<_>>().join("-"))
        }
        None => text("general.name"),
    };
    let training_datasets = match metadata.get("general.datasets") {
        Some(gguf_file::Value::Array(values)) => values
            .iter()
            .filter_map(|value| match value {
                gguf_file::Value::String(dataset) if !dataset.trim().is_empty() => Some(dataset.trim().to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let encoding = metadata.get("general.file_type").and_then(gguf_integer).and_then(gguf_file_type_name);
    let weights = encoding.map_or_else(|| "GGUF".to_owned(), |encoding| format!("GGUF {encoding}"));
    ModelDescription { name, family, training_datasets, weights }
}

/// The encoding llama.cpp's `general.file_type` stands for (its `llama_ftype`: the type most
/// tensors have), as llama.cpp writes it in file names.
fn gguf_file_type_name(file_type: u64) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        _ => return None,
    })
}

/// Largest safetensors header read: real ones are kilobytes to a few megabytes.
const MAX_SAFETENSORS_HEADER: u64 = 100 << 20;

/// The dtype holding most of a safetensors file's elements, from its JSON header.
fn safetensors_dtype(path: &Path) -> Result<Option<String>, ModelError> {
    let mut file = std::fs::File::open(path).map_err(|err| ModelError::io(path, err))?;
    let mut length = [0u8; 8];
    file.read_exact(&mut length).map_err(|err| ModelError::io(path, err))?;
    let length = u64::from_le_bytes(length);
    if length > MAX_SAFETENSORS_HEADER {
        return Err(ModelError::config(path, format!("safetensors header of {length} bytes")));
    }
    let mut header = Vec::new();
    file.take(length).read_to_end(&mut header).map_err(|err| ModelError::io(path, err))?;
    let header: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|err| ModelError::config(path, format!("safetensors header is not valid JSON: {err}")))?;
    let mut elements_per_dtype: HashMap<&str, u64> = HashMap::new();
    for (name, tensor) in &header {
        let (Some(dtype), Some(shape)) = (tensor["dtype"].as_str(), tensor["shape"].as_array()) else { continue };
        if name == "__metadata__" {
            continue;
        }
        let elements = shape.iter().map(|dim| dim.as_u64().unwrap_or(0)).fold(1u64, u64::saturating_mul);
        *elements_per_dtype.entry(dtype).or_default() += elements;
    }
    // Ties go to the name, so the answer never depends on the map's order.
    Ok(elements_per_dtype
        .into_iter()
        .max_by_key(|&(dtype, elements)| (elements, std::cmp::Reverse(dtype)))
        .map(|(dtype, _)| dtype.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
    }

    fn described(name: &str) -> ModelDescription {
        describe(&crate::locate(&fixture(name)).expect("locate")).expect("describe")
    }

    #[test]
    fn gguf_metadata_names_the_model_and_its_encoding() {
        let description = described("llama-gguf/model.gguf");
        assert_eq!(description.name.as_deref(), Some("DeepDecipher tiny llama fixture"));
        assert_eq!(description.family, None);
        assert_eq!(description.weights, "GGUF Q8_0");
        assert!(description.training_datasets.is_empty());
    }

    #[test]
    fn configs_without_a_name_name_nothing() {
        for name in ["gpt2", "llama", "pythia", "tl-solu"] {
            let description = described(name);
            assert_eq!(description.name, None, "{name}");
        }
        assert_eq!(described("gpt2").weights, "safetensors F32");
        assert_eq!(described("gpt2-bin").weights, "PyTorch");
    }

    /// A GGUF file holding only `metadata`.
    fn gguf_with(metadata: &[(&str, gguf_file::Value)]) -> ModelDescription {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.gguf");
        let mut file = std::fs::File::create(&path).expect("create");
        let pairs: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(key, value)| (*key, value)).collect();
        gguf_file::write(&mut file, &pairs, &[]).expect("write");
        describe_gguf(&WeightFiles::gguf(&path).expect("read"))
    }

    #[test]
    fn gguf_names_follow_llama_cpp_naming_convention() {
        let text = |value: &str| gguf_file::Value::String(value.to_owned());
        // What the SmolLM2 GGUF of the demo holds: its converter named a training checkpoint.
        let smollm2 = gguf_with(&[
            ("general.name", text("Smollm2 135M 8k Lc100K Mix1 Ep2")),
            ("general.basename", text("smollm2")),
            ("general.size_label", text("135M")),
            ("general.finetune", text("8k-lc100k-mix1-ep2")),
            ("general.file_type", gguf_file::Value::U32(3)),
        ]);
        assert_eq!(smollm2.name.as_deref(), Some("smollm2-135M-8k-lc100k-mix1-ep2"));
        assert_eq!(smollm2.family.as_deref(), Some("smollm2"));
        assert_eq!(smollm2.weights, "GGUF Q4_1");
        let llama = gguf_with(&[
            ("general.name", text("Meta Llama 3.1 8B Instruct")),
            ("general.basename", text("Meta-Llama-3.1")),
            ("general.size_label", text("8B")),
            ("general.finetune", text("Instruct")),
            ("general.datasets", gguf_file::Value::Array(vec![text("HuggingFaceFW/fineweb"), text(" ")])),
            ("general.file_type", gguf_file::Value::U32(15)),
        ]);
        assert_eq!(llama.name.as_deref(), Some("Meta-Llama-3.1-8B-Instruct"));
        assert_eq!(llama.training_datasets, ["HuggingFaceFW/fineweb"]);
        assert_eq!(llama.weights, "GGUF Q4_K_M");
        let bare = gguf_with(&[("general.name", text("  ")), ("general.file_type", gguf_file::Value::U32(99))]);
        assert_eq!(bare, ModelDescription { weights: "GGUF".to_owned(), ..ModelDescription::default() });
    }

    fn config_named(json: &str) -> Option<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).expect("write");
        config_name(&JsonConfig::read(&path).expect("read"))
    }

    #[test]
    fn a_config_names_its_model_by_hub_id_not_by_path() {
        let hf = |name_or_path: &str| {
            config_named(&format!(r#"{{"model_type": "llama", "_name_or_path": "{name_or_path}"}}"#))
        };
        assert_eq!(hf("HuggingFaceTB/SmolLM2-135M-Instruct").as_deref(), Some("HuggingFaceTB/SmolLM2-135M-Instruct"));
        assert_eq!(hf("gpt2").as_deref(), Some("gpt2"));
        for path in ["/fsx/runs/checkpoint-500", "./out", "~/models/x", "runs/a/b", "C:\\\\models\\\\x", ""] {
            assert_eq!(hf(path), None, "{path}");
        }
        assert_eq!(config_named(r#"{"model_type": "gpt2", "_name_or_path": 7}"#), None, "a number is no name");
        assert_eq!(
            config_named(r#"{"d_model": 8, "n_layers": 1, "model_name": "solu-1l"}"#).as_deref(),
            Some("solu-1l")
        );
    }
}
