//! Loading models by hub id: the fake hub from `dd-hub`'s tests serves `dd-model`'s fixture models
//! at the hub's URL layout on 127.0.0.1, and the model loads from the verified cache exactly as from
//! disk.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use candle_core::{Device, Tensor};
use dd_hub::{HubConfig, ProgressMode};
use dd_model::{ModelError, RunRequest, TokenizerFiles, load_located, load_tokenizer};
use dd_record::{HubModel, RecordError, fetch_model};

use crate::fake_hub::{FileFixture, Fixtures, RepoFixture, TestServer};
use crate::fixture;

/// A repository whose files are the fixture directory's, weights stored with LFS as on the hub.
fn repo_from_fixture(directory: &str, commit_digit: char, extra: &[(&str, Vec<u8>)]) -> RepoFixture {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(fixture(directory)).expect("fixture directory") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|name| name.to_str()).expect("name").to_owned();
        if name == "reference.safetensors" {
            continue;
        }
        let lfs = !name.ends_with(".json");
        files.insert(name, FileFixture { content: std::fs::read(&path).expect("read"), lfs });
    }
    for (name, content) in extra {
        files.insert((*name).to_owned(), FileFixture { content: content.clone(), lfs: false });
    }
    RepoFixture { commit: commit_digit.to_string().repeat(40), files, gated_token: None }
}

fn hub_config(server: &TestServer, cache: &std::path::Path, offline: bool) -> HubConfig {
    HubConfig {
        endpoint: server.url(),
        cache_dir: cache.to_path_buf(),
        offline,
        token: None,
        timeout: Duration::from_secs(10),
        progress: ProgressMode::Hidden,
    }
}

fn reference(directory: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(directory).join("reference.safetensors"), &Device::Cpu).expect("reference")
}

/// Runs the fetched model on the fixture's tokens and compares layer 0 with the reference.
fn assert_matches_reference(files: &dd_model::ModelFiles, directory: &str) {
    let model = load_located(files, &Device::Cpu).expect("model loads from the cache");
    let reference = reference(directory);
    let ids = reference["input_ids"].to_dtype(candle_core::DType::U32).expect("ids");
    let request = RunRequest { layers: vec![0], hooks: vec![dd_model::Hook::Post], logits: false };
    let output = model.run(&ids, &request).expect("run");
    let difference = (&output.layers[0].values - &reference["hook_post.0"]).expect("subtract").abs().expect("abs");
    let largest = difference.flatten_all().expect("flatten").max(0).expect("max").to_scalar::<f32>().expect("scalar");
    assert!(largest <= 1e-4, "{directory}: fetched model differs by {largest}");
}

#[test]
fn hf_and_transformer_lens_and_gguf_repositories_load_by_id() {
    let fixtures = Arc::new(Fixtures::default());
    let tokenizer_json = std::fs::read(fixture("tokenizers/tiny-tokenizer.json")).expect("tokenizer");
    fixtures
        .set_repo("test-org/tiny-gpt2", repo_from_fixture("gpt2", 'a', &[("tokenizer.json", tokenizer_json.clone())]));
    fixtures.set_repo("test-org/tiny-solu", repo_from_fixture("tl-solu", 'b', &[]));
    fixtures.set_repo("test-org/tiny-llama-gguf", repo_from_fixture("llama-gguf", 'c', &[]));
    // The tokenizer a TransformerLens config names lives in its own repository.
    fixtures.set_repo(
        "NeelNanda/gpt-neox-tokenizer-digits",
        RepoFixture {
            commit: "d".repeat(40),
            files: BTreeMap::from([("tokenizer.json".to_owned(), FileFixture { content: tokenizer_json, lfs: false })]),
            gated_token: None,
        },
    );
    let server = TestServer::start(fixtures);
    let cache = tempfile::tempdir().expect("cache");
    let hub = hub_config(&server, cache.path(), false);

    let gpt2 = fetch_model(&hub, &HubModel::parse("test-org/tiny-gpt2")).expect("gpt2 by id");
    assert!(gpt2.weights[0].starts_with(cache.path()), "weights come from the hub cache");
    assert!(matches!(gpt2.tokenizer, Some(TokenizerFiles::Json(_))));
    assert_matches_reference(&gpt2, "gpt2");

    let solu = fetch_model(&hub, &HubModel::parse("test-org/tiny-solu@main")).expect("TransformerLens by id");
    let Some(TokenizerFiles::Json(tokenizer_path)) = &solu.tokenizer else { panic!("no tokenizer: {solu:?}") };
    assert!(tokenizer_path.to_string_lossy().contains("gpt-neox-tokenizer-digits"), "{}", tokenizer_path.display());
    assert_matches_reference(&solu, "tl-solu");

    let gguf = fetch_model(&hub, &HubModel::parse("test-org/tiny-llama-gguf:model.gguf")).expect("GGUF by id");
    let tokenizer = load_tokenizer(gguf.tokenizer.as_ref().expect("GGUF tokenizer")).expect("tokenizer");
    assert_eq!(tokenizer.vocab_size(), 320);
    assert_matches_reference(&gguf, "llama-gguf");

    // Offline, everything comes from the cache and the hub sees no request.
    let requests_before = server.n_requests();
    let offline = hub_config(&server, cache.path(), true);
    let again = fetch_model(&offline, &HubModel::parse("test-org/tiny-gpt2")).expect("offline from cache");
    assert_eq!(again.weights, gpt2.weights);
    assert_eq!(server.n_requests(), requests_before);
}

#[test]
fn repositories_without_a_model_are_clear_errors() {
    let fixtures = Arc::new(Fixtures::default());
    let config_only = BTreeMap::from([(
        "config.json".to_owned(),
        FileFixture { content: std::fs::read(fixture("gpt2/config.json")).expect("config"), lfs: false },
    )]);
    fixtures
        .set_repo("test-org/no-weights", RepoFixture { commit: "e".repeat(40), files: config_only, gated_token: None });
    fixtures
        .set_repo("test-org/empty", RepoFixture { commit: "f".repeat(40), files: BTreeMap::new(), gated_token: None });
    let broken = BTreeMap::from([
        (
            "config.json".to_owned(),
            FileFixture { content: std::fs::read(fixture("gpt2/config.json")).expect("config"), lfs: false },
        ),
        (
            "model.safetensors".to_owned(),
            FileFixture { content: b"\x10\x00\x00\x00\x00\x00\x00\x00{not json".to_vec(), lfs: true },
        ),
    ]);
    fixtures.set_repo("test-org/broken", RepoFixture { commit: "0".repeat(40), files: broken, gated_token: None });
    let server = TestServer::start(fixtures);
    let cache = tempfile::tempdir().expect("cache");
    let hub = hub_config(&server, cache.path(), false);

    let err = fetch_model(&hub, &HubModel::parse("test-org/no-weights")).expect_err("no weights");
    assert!(matches!(err, RecordError::NoModelOnHub { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("test-org/no-weights") && message.contains("model.safetensors"), "{message}");

    let err = fetch_model(&hub, &HubModel::parse("test-org/empty")).expect_err("no config");
    assert!(err.to_string().contains("config.json"), "{err}");

    let err = fetch_model(&hub, &HubModel::parse("test-org/missing")).expect_err("unknown repository");
    assert!(matches!(err, RecordError::Hub(_)), "{err:?}");
    assert!(err.to_string().contains("test-org/missing"), "{err}");

    let files = fetch_model(&hub, &HubModel::parse("test-org/broken")).expect("files download fine");
    let err = load_located(&files, &Device::Cpu).expect_err("malformed safetensors");
    assert!(matches!(err, ModelError::WeightFile { .. }), "{err:?}");
}
