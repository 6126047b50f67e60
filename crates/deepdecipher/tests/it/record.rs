//! `deepdecipher record` as a user runs it: killed with SIGKILL mid-run and started again, it ends
//! with the same database as a run never interrupted; bad datasets fail with a message, not a panic;
//! models and datasets get the names a person would give them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dd_data::{NeuronDataKind, NeuronRecord};
use dd_store::{ReadConfig, SqliteStore, StoreRead};
use serde_json::json;

use crate::http::get;
use crate::server::{Server, asset, binary, run};

/// The tiny GGUF fixture: two layers, its own 320-token BPE, so the tests need no download.
fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dd-model/tests/fixtures/llama-gguf/model.gguf")
}

fn corpus() -> PathBuf {
    asset("shakespeare")
}

const RECORD_ARGS: [&str; 7] =
    ["--tokens", "120000", "--context", "64", "--no-weights", "--checkpoint-minutes", "0.02"];

/// Every neuron's examples and stats in a database.
fn neuron_records(database: &Path) -> Vec<NeuronRecord> {
    let store = SqliteStore::open(database, &ReadConfig::serving()).expect("open database");
    let model = store.catalog().models()[0].clone();
    let source = &model.sources[0];
    let mut records = Vec::new();
    for layer in 0..model.metadata.n_layers as u32 {
        for index in 0..model.metadata.d_mlp as u32 {
            for kind in [NeuronDataKind::Examples, NeuronDataKind::Stats] {
                records.push(store.neuron_record(source, layer, index, kind).expect("read").expect("stored"));
            }
        }
    }
    records
}

#[test]
fn a_run_killed_and_restarted_equals_an_uninterrupted_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, corpus) = (model(), corpus());
    let record = |output: &Path| {
        let mut command = binary();
        command.arg("record").arg(&model).arg(&corpus).arg("-o").arg(output).args(RECORD_ARGS).env("RUST_LOG", "warn");
        command
    };
    let whole = dir.path().join("whole.db");
    let status = record(&whole).output().expect("uninterrupted run");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    let killed = dir.path().join("killed.db");
    let checkpoint = dir.path().join("killed.db.checkpoint");
    let mut child =
        record(&killed).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("spawn");
    let started = Instant::now();
    while !checkpoint.exists() {
        assert!(child.try_wait().expect("poll").is_none(), "the run ended before its first checkpoint");
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint after two minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: no chance to clean up; whatever followed the checkpoint is lost.
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(!killed.exists() || neuron_records_or_none(&killed).is_none(), "a killed run wrote a database");
    // Pretend the kill came while the database was being written: it holds the model, and the
    // checkpoint is still there. The rerun must write the model again, not refuse or keep it.
    std::fs::copy(&whole, &killed).expect("copy");
    let output = record(&killed).output().expect("resumed run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("holds an unfinished write"), "{stderr}");
    assert!(!checkpoint.exists(), "a finished run removes its checkpoint");
    assert_eq!(neuron_records(&killed), neuron_records(&whole));
}

fn neuron_records_or_none(database: &Path) -> Option<()> {
    let store = SqliteStore::open(database, &ReadConfig::serving()).ok()?;
    store.catalog().models().first().map(|_| ())
}

#[test]
fn bad_datasets_fail_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = model();
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(&broken, "{\"text\": \"fine\"}\nnot json\n").expect("write");
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").expect("write");
    let output = dir.path().join("out.db");
    let (model, output) = (model.to_string_lossy().into_owned(), output.to_string_lossy().into_owned());
    for (dataset, expected) in [(&broken, "broken.jsonl:2: not valid JSON"), (&empty, "empty.txt")] {
        let (code, _, stderr) = run(&["record", &model, &dataset.to_string_lossy(), "-o", &output, "--no-weights"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(expected) && !stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line, each cause once: {stderr}");
    }
    let (code, _, stderr) = run(&["record", &model, "/nonexistent/corpus", "-o", &output]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run(&["record", &model, &broken.to_string_lossy(), "--shard", "3/3"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("shard"), "{stderr}");
}

#[test]
fn shard_databases_merge_into_the_unsharded_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, corpus) = (model().to_string_lossy().into_owned(), corpus().to_string_lossy().into_owned());
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let args = ["--tokens", "20000", "--context", "64", "--no-weights"];
    let record = |output: &str, shard: Option<&str>| {
        let mut argv = vec!["record", &model, &corpus, "-o", output];
        argv.extend(args);
        if let Some(shard) = shard {
            argv.extend(["--shard", shard]);
        }
        let (code, _, stderr) = run(&argv);
        assert_eq!(code, 0, "{stderr}");
    };
    record(&path("whole.db"), None);
    record(&path("part0.db"), Some("0/2"));
    record(&path("part1.db"), Some("1/2"));
    let (code, _, stderr) = run(&[
        "merge",
        &path("part0.db"),
        &path("part1.db"),
        "--model",
        &model,
        "-o",
        &path("merged.db"),
        "--no-weights",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (merged, whole) = (neuron_records(Path::new(&path("merged.db"))), neuron_records(Path::new(&path("whole.db"))));
    assert_eq!(merged.len(), whole.len());
    for (a, b) in merged.iter().zip(&whole) {
        match (a, b) {
            (NeuronRecord::Examples(a), NeuronRecord::Examples(b)) => assert_eq!(a, b),
            (NeuronRecord::Stats(a), NeuronRecord::Stats(b)) => {
                assert_eq!((a.count, a.max, a.min, &a.histogram), (b.count, b.max, b.min, &b.histogram));
                assert!((a.mean - b.mean).abs() <= 1e-6 * b.mean.abs().max(1.0));
            }
            other => panic!("unexpected records {other:?}"),
        }
    }
    // A shard given twice is refused with a message.
    let (code, _, stderr) =
        run(&["merge", &path("part0.db"), &path("part0.db"), "--model", &model, "-o", &path("bad.db")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("given twice"), "{stderr}");
}

/// The real SmolLM2 GGUF, whose converter named a training checkpoint in its metadata
/// (`smollm2-135M-8k-lc100k-mix1-ep2`), is named as published, without the weights' encoding,
/// which the provenance keeps; the dataset is named after its folder, unless told otherwise; and
/// `serve --model` finds the model its weights name among several.
#[test]
fn smollm2_is_named_as_published_and_its_dataset_after_its_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = dir.path().join("names.db");
    let (gguf, corpus) = (asset("SmolLM2-135M-Instruct.Q4_1.gguf"), asset("shakespeare"));
    let record = |model: &Path, extra: &[&str]| {
        let mut argv = vec!["record", model.to_str().expect("utf8"), corpus.to_str().expect("utf8")];
        argv.extend(["-o", database.to_str().expect("utf8"), "--tokens", "256", "--context", "64", "--no-weights"]);
        argv.extend(extra);
        let (code, _, stderr) = run(&argv);
        assert_eq!(code, 0, "{stderr}");
    };
    record(&gguf, &[]);
    // The tiny fixture is quick to record: the flags are what is tested.
    record(&model(), &["--name", "tiny-renamed", "--dataset-name", "Shakespeare's plays"]);

    let server = Server::start(&database, &["--model", gguf.to_str().expect("utf8")]);
    let index = get(server.addr, "/api").json();
    let models = index["models"].as_array().expect("models");
    let (smollm2, renamed) = (&models[0], &models[1]);
    assert_eq!(smollm2["name"], "SmolLM2-135M-Instruct", "{index}");
    assert_eq!(smollm2["dataset"], "shakespeare", "{index}");
    assert_eq!(smollm2["training_dataset"], json!(null), "the GGUF names no training set: {index}");
    let provenance = &smollm2["provenance"];
    assert_eq!(provenance["data_source"], json!(corpus.to_str()), "{index}");
    assert_eq!(provenance["model_source"], json!(gguf.to_str()), "{index}");
    assert_eq!(provenance["weights"], "GGUF Q4_1", "{index}");
    assert_eq!((&renamed["name"], &renamed["dataset"]), (&json!("tiny-renamed"), &json!("Shakespeare's plays")));
    let has_live_text = |model: &serde_json::Value| {
        model["available_services"].as_array().expect("services").contains(&json!("activations"))
    };
    assert!(has_live_text(smollm2) && !has_live_text(renamed), "--model serves the weights' own name: {index}");

    // The pages say what the data was recorded on, and leave out what is unknown.
    let home = get(server.addr, "/").text();
    assert!(home.contains(">Recorded on</th>") && home.contains("<td>shakespeare</td>"), "{home}");
    let page = get(server.addr, "/viz/SmolLM2-135M-Instruct").text();
    let recorded_on =
        "<th title=\"The text the examples and statistics come from\">Recorded on</th><td>shakespeare</td>";
    for row in [recorded_on, ">Weights</th><td>GGUF Q4_1</td>"] {
        assert!(page.contains(row), "{row} missing from {page}");
    }
    assert!(!page.contains("Trained on") && !page.contains("unknown"), "{page}");
}
