//! `deepdecipher import` as a user runs it: OpenAI's layout from a fixture server on 127.0.0.1,
//! killed with SIGKILL mid-run and started again with nothing lost or doubled; and imported
//! explanations served beside a model's own, with their origin badges.

use std::path::Path;
use std::time::{Duration, Instant};

use dd_data::{NeuronDataKind, NeuronRecord};
use dd_import::testing::openai::{OpenAiFixture, write_openai_dataset};
use dd_import::testing::{Fault, FixtureServer};
use dd_store::{ReadConfig, SqliteStore, StoreRead};

use crate::http::get;
use crate::server::{Server, binary};

fn fixture() -> OpenAiFixture {
    OpenAiFixture {
        top: 5,
        random: 3,
        quantiles: (2, 2),
        tokens_per_record: 24,
        simulated_sequences: 2,
        ..OpenAiFixture::realistic(1, 24)
    }
}

/// The neurons of layer 0 with examples, and every stored blob of theirs.
fn stored(database: &Path) -> Vec<(u32, Vec<Option<Vec<u8>>>)> {
    let config = ReadConfig { immutable: false, n_connections: 1, ..ReadConfig::serving() };
    let Ok(store) = SqliteStore::open(database, &config) else { return Vec::new() };
    let Some(model) = store.catalog().model("gpt2-small").cloned() else { return Vec::new() };
    let source = &model.sources[0];
    (0..24)
        .filter_map(|index| {
            let blobs: Vec<Option<Vec<u8>>> = NeuronDataKind::ALL
                .iter()
                .map(|&kind| store.neuron_blob(source.id, 0, index, kind).ok().flatten())
                .collect();
            blobs[0].is_some().then_some((index, blobs))
        })
        .collect()
}

fn import_args<'a>(url: &'a str, database: &'a Path) -> Vec<&'a str> {
    vec![
        "import",
        "openai",
        url,
        "-o",
        database.to_str().expect("utf-8"),
        "--dataset-model",
        "gpt2-small",
        "--layers",
        "0",
        "--units-per-layer",
        "24",
        "--commit-every",
        "2",
        "--concurrency",
        "1",
        "--workers",
        "1",
    ]
}

#[test]
fn a_killed_import_resumes_with_nothing_lost_or_doubled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    write_openai_dataset(&root, &fixture()).expect("fixture");
    let server = FixtureServer::serve(&root).expect("serve");
    // Slow files: the run is still going when a few neurons are committed.
    for neuron in 0..24 {
        server.set_fault(&format!("collated-activations/0/{neuron}.json"), Fault::Slow(Duration::from_millis(60)));
    }
    server.set_fault("explanations/0/7.jsonl", Fault::Status { status: 503, times: 1 });
    let url = server.url();
    let database = dir.path().join("imported.db");
    let mut child = binary()
        .args(import_args(&url, &database))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while stored(&database).len() < 4 {
        assert!(child.try_wait().expect("poll").is_none(), "the run ended before four neurons were committed");
        assert!(started.elapsed() < Duration::from_secs(120), "nothing committed after two minutes");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    let before = stored(&database).len();
    assert!(before < 24, "the run finished before it was killed");

    let output = binary().args(import_args(&url, &database)).env("RUST_LOG", "warn").output().expect("resumed run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("were imported by an earlier run and skipped"), "{stderr}");
    // The vocabulary the first run built from strings goes on growing; nothing is "unmapped".
    assert!(!stderr.contains("not in the tokenizer's vocabulary"), "{stderr}");
    let resumed = stored(&database);
    assert_eq!(resumed.len(), 24);

    // The same import in one go gives the same blobs: nothing lost, nothing doubled.
    let clean = dir.path().join("clean.db");
    let output = binary().args(import_args(&url, &clean)).env("RUST_LOG", "warn").output().expect("clean run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(resumed, stored(&clean));
    let config = ReadConfig { immutable: false, n_connections: 1, ..ReadConfig::serving() };
    let store = SqliteStore::open(&database, &config).expect("open");
    let model = store.catalog().model("gpt2-small").expect("model");
    for index in 0..24 {
        let Some(NeuronRecord::Explanations(explanations)) =
            store.neuron_record(&model.sources[0], 0, index, NeuronDataKind::Explanations).expect("read")
        else {
            panic!("0/{index} has explanations")
        };
        assert_eq!(explanations.explanations.len(), 1, "0/{index}");
    }
}

#[test]
fn bad_formats_sources_and_failures_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = dir.path().join("x.db");
    let output = binary().args(["import", "nope", "x", "-o"]).arg(&database).output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("unknown format \"nope\"") && stderr.contains("openai"),
        "{stderr}"
    );
    let output = binary()
        .args(["import", "openai"])
        .arg(dir.path().join("absent"))
        .arg("-o")
        .arg(&database)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("does not exist"), "{stderr}");

    // One malformed file: the rest imports, the failure is listed, the exit status says so.
    let root = dir.path().join("data");
    write_openai_dataset(&root, &OpenAiFixture { layers: 1, neurons: 3, ..fixture() }).expect("fixture");
    std::fs::write(root.join("explanations/0/1.jsonl"), "{\"scored_explanations\": [").expect("break");
    let args = ["--dataset-model", "gpt2-small", "--layers", "0", "--units-per-layer", "3"];
    let output =
        binary().args(["import", "openai"]).arg(&root).arg("-o").arg(&database).args(args).output().expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("imported 2 of 3 items") && stderr.contains("0/1: explanations of 0/1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Imported explanations sit beside the model's own on its neuron page, each with its origin.
#[test]
fn imported_explanations_are_served_beside_the_models_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = dir.path().join("both.db");
    let output = binary()
        .args(["synth"])
        .arg(&database)
        .args([
            "--name",
            "gpt2-small",
            "--layers",
            "1",
            "--neurons",
            "8",
            "--examples",
            "4",
            "--tokens",
            "16",
            "--vocab",
            "500",
        ])
        .output()
        .expect("synth");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let root = dir.path().join("data");
    write_openai_dataset(&root, &OpenAiFixture { layers: 1, neurons: 8, ..fixture() }).expect("fixture");
    let output = binary()
        .args(["import", "openai"])
        .arg(&root)
        .arg("-o")
        .arg(&database)
        .args(["--dataset-model", "gpt2-small", "--parts", "explanations", "--layers", "0", "--units-per-layer", "8"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("import");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let server = Server::start(&database, &[]);
    let page = get(server.addr, "/viz/gpt2-small/0/3").text();
    assert!(page.contains(">synthetic<") && page.contains(">openai<"), "both origins are badged");
    assert!(page.contains("words about"), "the imported text is shown");
    let json = get(server.addr, "/api/gpt2-small/explanations/0/3").json();
    let origins: Vec<&str> = json["data"]["explanations"]
        .as_array()
        .expect("explanations")
        .iter()
        .filter_map(|e| e["origin"].as_str())
        .collect();
    assert!(origins.contains(&"synthetic") && origins.contains(&"openai"), "{origins:?}");
}

/// With `--tokenizer`, token strings take GPT-2's own ids; what GPT-2 has no single token for is
/// added after its last id and reported.
#[test]
fn a_tokenizer_maps_token_strings_to_its_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    write_openai_dataset(&root, &OpenAiFixture { layers: 1, neurons: 3, ..fixture() }).expect("fixture");
    let database = dir.path().join("gpt2.db");
    let output = binary()
        .args(["import", "openai"])
        .arg(&root)
        .arg("-o")
        .arg(&database)
        .args(["--dataset-model", "gpt2-small", "--layers", "0", "--units-per-layer", "3", "--tokenizer"])
        .arg(crate::server::asset("gpt2"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("import");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // " über" is two GPT-2 tokens, so no id of GPT-2's stands for it.
    assert!(stderr.contains("1 token strings") && stderr.contains("not in the tokenizer's vocabulary"), "{stderr}");
    let config = ReadConfig { immutable: false, n_connections: 1, ..ReadConfig::serving() };
    let store = SqliteStore::open(&database, &config).expect("open");
    let model = store.catalog().model("gpt2-small").expect("model");
    let Some(dd_data::ModelRecord::Vocabulary(vocabulary)) =
        store.model_record(model, dd_data::ModelDataKind::Vocabulary).expect("read")
    else {
        panic!("a vocabulary")
    };
    assert_eq!(vocabulary.tokens.len(), 50_257 + 1);
    assert_eq!(vocabulary.tokens[262], "·the", "GPT-2's id of \" the\"");
    assert_eq!(vocabulary.tokens[50_257], "·über");
    let Some(NeuronRecord::Examples(examples)) =
        store.neuron_record(&model.sources[0], 0, 1, NeuronDataKind::Examples).expect("read")
    else {
        panic!("examples")
    };
    assert!(examples.groups[0].examples[0].tokens.iter().all(|&id| (id as usize) < vocabulary.tokens.len()));
}
