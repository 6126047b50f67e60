//! Default names, as a person would write them: a model's from its own metadata and the name of its
//! file, directory or hub repository (safe in URLs, since it is part of every URL of the model), a
//! dataset's from its path. The weights' encoding (`Q4_1`) is a property of the file, not of the
//! model, so it is left out of the name (the database keeps it in the provenance).

use std::path::Path;

use dd_model::ModelDescription;

/// What a recording was recorded on: the dataset as a person names it, and exactly where its text
/// came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetDescription {
    /// The name the pages show (`Shakespeare's plays`, `openwebtext-10k`).
    pub name: String,
    /// The exact path or package, kept as provenance.
    pub source: String,
}

impl DatasetDescription {
    /// The dataset at `path`: named by its file or directory (see [`dataset_name`]), its source the
    /// path as given.
    pub fn of_path(path: &Path) -> Self {
        Self { name: dataset_name(path), source: path.display().to_string() }
    }
}

/// The name of the dataset at `path`: the file's name without its extensions
/// (`openwebtext-10k.jsonl.zst` → `openwebtext-10k`) or the directory's, skipping names that say
/// nothing (`train-00000-of-00001.parquet`, `data/`, a hub cache's revision folders) for the folder
/// above, and reading a Hugging Face cache folder as its repository (`datasets--org--name` →
/// `name`). The path as given when no part of it names anything.
pub fn dataset_name(path: &Path) -> String {
    let file_name = path.file_name().map(|name| name.to_string_lossy().into_owned());
    let own = file_name.as_deref().map(|name| without_shard_number(without_dataset_extensions(name)).to_owned());
    telling_name(own, path, "datasets--", is_generic_dataset_name)
        .unwrap_or_else(|| file_name.unwrap_or_else(|| path.display().to_string()))
}

/// The name a model's local path gives it, before its metadata is consulted: a file's name without
/// its encoding and shard number (`SmolLM2-135M-Instruct.Q4_1.gguf` → `SmolLM2-135M-Instruct`), or
/// the directory's, skipping names that say nothing (`model.safetensors`, `checkpoint-500`, a hub
/// cache's revision folders) and reading a Hugging Face cache folder as its repository
/// (`models--org--name` → `name`).
pub(crate) fn name_from_path(path: &Path) -> Option<String> {
    let own = match path.is_file() {
        true => path.file_stem().map(|stem| without_encoding(&stem.to_string_lossy()).to_owned()),
        false => None,
    };
    telling_name(own, path, "models--", is_generic_model_name)
}

/// The name a hub file gives its model (`smollm2-135m-instruct-q8_0.gguf` → `smollm2-135m-instruct`).
pub(crate) fn name_from_file_name(file: &str) -> String {
    let file_name = file.rsplit('/').next().unwrap_or(file);
    let stem = file_name.rsplit_once('.').map_or(file_name, |(stem, _extension)| stem);
    without_encoding(stem).to_owned()
}

/// The model's part of a hub id (`HuggingFaceTB/SmolLM2-135M` → `SmolLM2-135M`).
pub(crate) fn repo_name(repo_id: &str) -> &str {
    repo_id.rsplit('/').next().unwrap_or(repo_id)
}

/// The model's name when the caller gives none, safe in URLs. `given` are the names its path or
/// hub reference gives, best first ([`name_from_path`], a repository's name); `description` is what
/// its files say ([`dd_model::describe`]).
///
/// The metadata identifies the model, but converters often fill it from whatever directory they
/// ran on: the demo's SmolLM2 GGUF calls itself `smollm2-135M-8k-lc100k-mix1-ep2`, a training
/// checkpoint, where its publisher named the file `SmolLM2-135M-Instruct.Q4_1.gguf`. So a given
/// name that belongs to the family the metadata names (it contains the GGUF `general.basename`, or
/// else the metadata name's first word) wins, spelled as its publisher spelled it; a given name of
/// another family (a file renamed `my-experiment.gguf`) loses to the metadata's; a given name
/// stands alone when the metadata names nothing; `model` when nothing names the model at all.
pub(crate) fn default_model_name(given: &[String], description: &ModelDescription) -> String {
    let metadata_name = description.name.as_deref().map(repo_name).filter(|name| !is_generic_model_name(name));
    let chosen = match metadata_name {
        Some(metadata_name) => {
            let family = description.family.as_deref().unwrap_or_else(|| first_word(metadata_name));
            given.iter().map(String::as_str).find(|name| belongs_to_family(name, family)).unwrap_or(metadata_name)
        }
        None => given.first().map_or("model", String::as_str),
    };
    url_safe_name(chosen)
}

/// `name` made safe in URLs and file names: every other character becomes `-`, runs of `-` become
/// one, and `-` and `.` are trimmed from the ends (`Meta Llama 3.1 8B` → `Meta-Llama-3.1-8B`);
/// at most 100 characters; `model` when nothing is left.
pub fn url_safe_name(name: &str) -> String {
    let mut cleaned = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' };
        if !(c == '-' && cleaned.ends_with('-')) {
            cleaned.push(c);
        }
    }
    let trimmed: String = cleaned.trim_matches(['.', '-']).chars().take(100).collect();
    if trimmed.is_empty() { "model".to_owned() } else { trimmed }
}

/// The first telling name of `own` (a file's cleaned name) and the folders above `path`, where a
/// Hugging Face cache folder (`{cache_prefix}org--name`) names its repository.
fn telling_name(own: Option<String>, path: &Path, cache_prefix: &str, generic: fn(&str) -> bool) -> Option<String> {
    if let Some(own) = own.filter(|name| !generic(name)) {
        return Some(own);
    }
    // Relative paths (`.`, `../x`) have their folders' names only once made absolute; symbolic
    // links are left alone, since a hub cache's files link to blobs named by their hashes.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let folders = match absolute.is_file() {
        true => absolute.parent().map_or_else(Vec::new, |parent| parent.ancestors().collect()),
        false => absolute.ancestors().collect(),
    };
    folders.into_iter().filter_map(|folder| folder.file_name()).find_map(|name| {
        let name = name.to_string_lossy();
        match name.strip_prefix(cache_prefix) {
            Some(repository) => Some(repository.rsplit("--").next().unwrap_or(repository).to_owned()),
            None => (!generic(&name)).then(|| name.into_owned()),
        }
    })
}

/// `name` without the encodings llama.cpp's naming convention puts at its end, after `.` or `-`
/// (`x.Q4_K_M`, `x-f16`, `x.ggmlv3.q4_0`), and without a shard number (`x-00001-of-00003`).
fn without_encoding(name: &str) -> &str {
    let mut rest = without_shard_number(name);
    while let Some((head, tail)) = rest.rsplit_once(['.', '-']) {
        if !is_encoding(tail) {
            break;
        }
        rest = head;
    }
    rest
}

/// Whether `part` names a weight encoding: a llama.cpp quantization (`Q4_1`, `Q4_K_M`, `IQ2_XXS`,
/// `TQ1_0`), a float type, or an old GGML container version.
fn is_encoding(part: &str) -> bool {
    let upper = part.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "F32" | "F16" | "BF16" | "FP16" | "FP32" | "FP8" | "GGML" | "GGMLV2" | "GGMLV3" | "GGJT"
    ) {
        return true;
    }
    let quantization = upper.strip_prefix(['I', 'T']).unwrap_or(&upper);
    quantization.strip_prefix('Q').is_some_and(|rest| {
        rest.starts_with(|c: char| c.is_ascii_digit()) && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// `name` without a trailing shard number, `-00001-of-00003` (Hugging Face and llama.cpp shards).
fn without_shard_number(name: &str) -> &str {
    let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let Some((head, count)) = name.rsplit_once("-of-") else { return name };
    match head.rsplit_once(['-', '.']) {
        Some((base, index)) if all_digits(index) && all_digits(count) => base,
        _ => name,
    }
}

/// `name` without the extensions of dataset files: compression, then format.
fn without_dataset_extensions(name: &str) -> &str {
    const EXTENSIONS: [&str; 13] =
        [".gz", ".zst", ".zstd", ".xz", ".bz2", ".jsonl", ".json", ".parquet", ".txt", ".text", ".csv", ".tsv", ".md"];
    let mut rest = name;
    while let Some(extension) = EXTENSIONS.iter().find(|extension| {
        rest.len() > extension.len()
            && rest.get(rest.len() - extension.len()..).is_some_and(|end| end.eq_ignore_ascii_case(extension))
    }) {
        rest = &rest[..rest.len() - extension.len()];
    }
    rest
}

/// Names of model files and folders that say nothing about the model.
fn is_generic_model_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let lower = lower.as_str();
    matches!(
        lower,
        "" | "model"
            | "models"
            | "ggml-model"
            | "pytorch_model"
            | "model_final"
            | "consolidated"
            | "weights"
            | "final"
            | "latest"
            | "output"
            | "out"
    ) || lower
        .strip_prefix("checkpoint")
        .is_some_and(|rest| rest.trim_start_matches(['-', '_']).bytes().all(|b| b.is_ascii_digit()))
        || is_cache_folder(lower)
}

/// Names of dataset files and folders that say nothing about the dataset: splits, configurations,
/// shard numbers.
fn is_generic_dataset_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let lower = lower.as_str();
    matches!(
        lower,
        "" | "data"
            | "dataset"
            | "datasets"
            | "train"
            | "training"
            | "test"
            | "validation"
            | "valid"
            | "val"
            | "dev"
            | "default"
            | "plain_text"
            | "text"
            | "raw"
    ) || lower.bytes().all(|b| b.is_ascii_digit())
        || is_cache_folder(lower)
}

/// A hub cache's folders below a repository: `snapshots`, `refs`, and revisions (hex commits).
fn is_cache_folder(lower: &str) -> bool {
    matches!(lower, "snapshots" | "refs" | "main")
        || (lower.len() >= 32 && lower.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The first word of a name (`Smollm2 135M 8k` → `Smollm2`, `LLaMA-v2` → `LLaMA`).
fn first_word(name: &str) -> &str {
    name.split([' ', '-', '_', '/']).find(|word| !word.is_empty()).unwrap_or(name)
}

/// Whether `name` belongs to `family`: it holds the family's letters and digits, whatever the
/// case and separators (`SmolLM2-135M-Instruct` belongs to `smollm2`). A family of fewer than three
/// characters proves nothing.
fn belongs_to_family(name: &str, family: &str) -> bool {
    let fold = |text: &str| -> String {
        text.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
    };
    let family = fold(family);
    family.len() >= 3 && fold(name).contains(&family)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn description(name: Option<&str>, family: Option<&str>) -> ModelDescription {
        ModelDescription {
            name: name.map(str::to_owned),
            family: family.map(str::to_owned),
            ..ModelDescription::default()
        }
    }

    fn named(given: &[&str], description: &ModelDescription) -> String {
        let given: Vec<String> = given.iter().map(|name| (*name).to_owned()).collect();
        default_model_name(&given, description)
    }

    /// The demo's GGUF: its metadata names a training checkpoint of the SmolLM2 family, its file the
    /// published model.
    #[test]
    fn a_file_name_of_the_metadata_s_family_wins() {
        let smollm2 = description(Some("smollm2-135M-8k-lc100k-mix1-ep2"), Some("smollm2"));
        assert_eq!(named(&["SmolLM2-135M-Instruct"], &smollm2), "SmolLM2-135M-Instruct");
        // Without `general.basename`, the first word of `general.name` is the family.
        let old = description(Some("LLaMA v2"), None);
        assert_eq!(named(&["llama-2-7b-chat"], &old), "llama-2-7b-chat");
        // A name of another family loses to the metadata's.
        let llama = description(Some("Llama-3.2-1B-Instruct"), Some("Llama-3.2"));
        assert_eq!(named(&["my-experiment"], &llama), "Llama-3.2-1B-Instruct");
        assert_eq!(named(&["my-experiment", "llama-3.2-1b-instruct"], &llama), "llama-3.2-1b-instruct");
    }

    #[test]
    fn metadata_names_the_model_when_the_path_does_not() {
        let fixture = description(Some("DeepDecipher tiny llama fixture"), None);
        assert_eq!(named(&[], &fixture), "DeepDecipher-tiny-llama-fixture");
        let hub_id = description(Some("HuggingFaceTB/SmolLM2-135M-Instruct"), None);
        assert_eq!(named(&[], &hub_id), "SmolLM2-135M-Instruct", "a config's hub id gives its name");
        assert_eq!(named(&["pythia-70m"], &description(None, None)), "pythia-70m", "no metadata: the path's name");
        assert_eq!(named(&[], &description(Some("models"), None)), "model", "nothing names it");
        assert_eq!(named(&["gpt2-finetune"], &description(Some("model"), None)), "gpt2-finetune");
    }

    #[test]
    fn file_names_lose_their_encoding() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, b"").expect("write");
            path
        };
        for (name, expected) in [
            ("SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct"),
            ("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", "Meta-Llama-3.1-8B-Instruct"),
            ("qwen2.5-0.5b-instruct-q4_k_m.gguf", "qwen2.5-0.5b-instruct"),
            ("llama-2-7b.ggmlv3.q4_0.gguf", "llama-2-7b"),
            ("Mistral-7B-v0.1.IQ2_XXS.gguf", "Mistral-7B-v0.1"),
            ("gpt2-f16.gguf", "gpt2"),
            ("Mixtral-8x7B-v0.1-Q2_K-00001-of-00003.gguf", "Mixtral-8x7B-v0.1"),
        ] {
            assert_eq!(name_from_path(&file(name)).as_deref(), Some(expected), "{name}");
        }
        assert_eq!(name_from_file_name("sub/smollm2-135m-instruct-q8_0.gguf"), "smollm2-135m-instruct");
        assert_eq!(repo_name("HuggingFaceTB/SmolLM2-135M"), "SmolLM2-135M");
        assert_eq!(repo_name("gpt2"), "gpt2");
    }

    #[test]
    fn generic_file_names_give_their_folder_s_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model_dir = dir.path().join("pythia-70m-deduped");
        let checkpoint = model_dir.join("checkpoint-500");
        std::fs::create_dir_all(&checkpoint).expect("mkdir");
        std::fs::write(checkpoint.join("model.safetensors"), b"").expect("write");
        std::fs::write(model_dir.join("ggml-model-q4_0.gguf"), b"").expect("write");
        assert_eq!(name_from_path(&checkpoint).as_deref(), Some("pythia-70m-deduped"));
        assert_eq!(name_from_path(&checkpoint.join("model.safetensors")).as_deref(), Some("pythia-70m-deduped"));
        assert_eq!(name_from_path(&model_dir.join("ggml-model-q4_0.gguf")).as_deref(), Some("pythia-70m-deduped"));
        let snapshot = dir.path().join("hub/models--EleutherAI--pythia-70m/snapshots").join("a".repeat(40));
        std::fs::create_dir_all(&snapshot).expect("mkdir");
        assert_eq!(name_from_path(&snapshot).as_deref(), Some("pythia-70m"));
    }

    #[test]
    fn names_are_url_safe() {
        for (name, expected) in [
            ("Meta Llama 3.1 8B Instruct", "Meta-Llama-3.1-8B-Instruct"),
            ("org/name (v2)", "org-name-v2"),
            ("..hidden..", "hidden"),
            ("Modèle", "Mod-le"),
            ("ü", "model"),
            ("", "model"),
            ("SmolLM2-135M_x.y", "SmolLM2-135M_x.y"),
        ] {
            assert_eq!(url_safe_name(name), expected, "{name:?}");
            assert!(dd_data::validate_name(&url_safe_name(name)).is_ok(), "{name:?}");
        }
        let long = url_safe_name(&"x".repeat(300));
        assert_eq!(long.len(), 100);
        let default = named(&["a b/c?d#e"], &description(None, None));
        assert!(dd_data::validate_name(&default).is_ok(), "{default}");
    }

    #[test]
    fn datasets_are_named_by_their_file_or_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let at = |relative: &str| -> PathBuf {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, b"").expect("write");
            path
        };
        assert_eq!(dataset_name(&at("corpora/openwebtext-10k.jsonl.zst")), "openwebtext-10k");
        assert_eq!(dataset_name(&at("corpora/pile-10k.JSONL.GZ")), "pile-10k");
        assert_eq!(dataset_name(&at("corpora/notes.txt")), "notes");
        assert_eq!(dataset_name(&at("wiki/train-00000-of-00004.parquet")), "wiki");
        assert_eq!(dataset_name(&at("books/data/0000.parquet")), "books");
        assert_eq!(dataset_name(&dir.path().join("corpora")), "corpora");
        let cached = format!(
            "hub/datasets--stas--openwebtext-10k/snapshots/{}/plain_text/train-00000-of-00001.parquet",
            "b".repeat(40)
        );
        assert_eq!(dataset_name(&at(&cached)), "openwebtext-10k");
        let shakespeare = DatasetDescription::of_path(Path::new("assets/shakespeare"));
        assert_eq!(shakespeare, DatasetDescription { name: "shakespeare".into(), source: "assets/shakespeare".into() });
    }
}
