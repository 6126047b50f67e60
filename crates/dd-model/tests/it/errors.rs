//! Bad models and bad inputs: every one is a clear error naming the file, field or value, never a
//! panic.

use candle_core::{Device, Tensor};
use dd_model::{Hook, ModelError, RunRequest, load_transformer};

use crate::fixture;

/// A copy of fixture `name` in a temporary directory, with `change` applied to its files.
fn broken_copy(name: &str, change: impl FnOnce(&std::path::Path)) -> tempfile::TempDir {
    let directory = tempfile::tempdir().expect("temporary directory");
    for entry in std::fs::read_dir(fixture(name)).expect("fixture") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, directory.path().join(path.file_name().expect("name"))).expect("copy");
    }
    change(directory.path());
    directory
}

fn load_error(directory: &std::path::Path) -> ModelError {
    load_transformer(directory, &Device::Cpu).expect_err("the model must not load")
}

#[test]
fn malformed_model_files_are_clear_errors() {
    let missing = tempfile::tempdir().expect("temporary directory");
    let err = load_error(missing.path());
    assert!(matches!(err, ModelError::UnknownFormat { .. }), "{err:?}");
    assert!(err.to_string().contains("config.json"), "{err}");

    let unknown_type = broken_copy("gpt2", |directory| {
        std::fs::write(directory.join("config.json"), r#"{"model_type": "bert", "hidden_size": 8}"#).expect("write");
    });
    let err = load_error(unknown_type.path());
    assert!(err.to_string().contains("model_type `bert`"), "{err}");

    let missing_field = broken_copy("gpt2", |directory| {
        std::fs::write(directory.join("config.json"), r#"{"model_type": "gpt2", "n_embd": 32}"#).expect("write");
    });
    let err = load_error(missing_field.path());
    assert!(err.to_string().contains("n_head") || err.to_string().contains("n_layer"), "{err}");

    let not_json = broken_copy("pythia", |directory| {
        std::fs::write(directory.join("config.json"), "{ truncated").expect("write");
    });
    assert!(load_error(not_json.path()).to_string().contains("not valid JSON"));

    let truncated = broken_copy("gpt2", |directory| {
        let weights = std::fs::read(directory.join("model.safetensors")).expect("read");
        std::fs::write(directory.join("model.safetensors"), &weights[..weights.len() / 2]).expect("write");
    });
    let err = load_error(truncated.path());
    assert!(matches!(err, ModelError::WeightFile { .. }), "{err:?}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let wrong_shape = broken_copy("gpt2", |directory| {
        let text = std::fs::read_to_string(directory.join("config.json")).expect("read");
        std::fs::write(directory.join("config.json"), text.replace("\"n_inner\": null", "\"n_inner\": 100"))
            .expect("write");
    });
    let err = load_error(wrong_shape.path());
    assert!(matches!(err, ModelError::TensorShape { .. }), "{err:?}");

    let garbage_gguf = tempfile::tempdir().expect("temporary directory");
    std::fs::write(garbage_gguf.path().join("model.gguf"), b"GGUF\x03\x00\x00\x00garbage").expect("write");
    let err = load_error(garbage_gguf.path());
    assert!(matches!(err, ModelError::WeightFile { .. }), "{err:?}");

    let attention_only = broken_copy("tl-gelu", |directory| {
        let text = std::fs::read_to_string(directory.join("config.json")).expect("read");
        std::fs::write(directory.join("config.json"), text.replace("\"attn_only\": false", "\"attn_only\": true"))
            .expect("write");
    });
    assert!(load_error(attention_only.path()).to_string().contains("attention-only"));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let device = Device::Cpu;
    let model = load_transformer(&fixture("gpt2"), &device).expect("model");
    let config = model.config().clone();
    let run = |ids: &Tensor, request: &RunRequest| model.run(ids, request).expect_err("must fail").to_string();
    let all = RunRequest::all_layers(&config);

    let outside_vocabulary = Tensor::new(&[[1u32, config.d_vocab as u32]], &device).expect("ids");
    assert!(run(&outside_vocabulary, &all).contains("outside the vocabulary"));
    let too_long = Tensor::zeros((1, config.n_ctx + 1), candle_core::DType::U32, &device).expect("ids");
    assert!(run(&too_long, &all).contains("context"));
    let flat = Tensor::new(&[1u32, 2, 3], &device).expect("ids");
    assert!(run(&flat, &all).contains("[batch, position]"));
    let ids = Tensor::new(&[[1u32, 2, 3]], &device).expect("ids");
    let no_such_layer = RunRequest { layers: vec![config.n_layers], hooks: vec![Hook::Post], logits: false };
    assert!(run(&ids, &no_such_layer).contains("does not exist"));
    let mid_without_solu = RunRequest { layers: vec![0], hooks: vec![Hook::Mid], logits: false };
    assert!(run(&ids, &mid_without_solu).contains("SoLU"));
}
