//! `deepdecipher n2g` as a user runs it: killed with SIGKILL mid-run and started again, it ends with
//! the same graphs, index and similar neurons as a run never interrupted; bad choices fail with a
//! message; exported graphs import back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dd_data::{ModelDataKind, NeuronDataKind};
use dd_store::{ReadConfig, SqliteStore, StoreRead};

use crate::server::{asset, binary, run};

/// The tiny GGUF fixture: two layers, its own 320-token BPE.
fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dd-model/tests/fixtures/llama-gguf/model.gguf")
}

/// A recording of the fixture over some Shakespeare, made once per test.
fn recorded(dir: &Path) -> PathBuf {
    let database = dir.join("recorded.db");
    let corpus = asset("shakespeare");
    let (code, _, stderr) = run(&[
        "record",
        model().to_str().expect("utf-8"),
        corpus.to_str().expect("utf-8"),
        "-o",
        database.to_str().expect("utf-8"),
        "--tokens",
        "20000",
        "--context",
        "64",
        "--no-weights",
    ]);
    assert_eq!(code, 0, "{stderr}");
    database
}

/// Every graph and similar-neuron blob, and the token index, as stored.
fn graph_blobs(database: &Path) -> (Vec<Option<Vec<u8>>>, Option<Vec<u8>>) {
    let config = ReadConfig { immutable: false, ..ReadConfig::serving() };
    let store = SqliteStore::open(database, &config).expect("open database");
    let model = store.catalog().models()[0].clone();
    let source = &model.sources[0];
    let mut blobs = Vec::new();
    for layer in 0..model.metadata.n_layers as u32 {
        for index in 0..model.metadata.d_mlp as u32 {
            for kind in [NeuronDataKind::Graph, NeuronDataKind::Similar] {
                blobs.push(store.neuron_blob(source.id, layer, index, kind).expect("read"));
            }
        }
    }
    (blobs, store.model_blob(model.id, ModelDataKind::TokenIndex).expect("read"))
}

fn count_graphs(database: &Path) -> usize {
    let config = ReadConfig { immutable: false, n_connections: 1, ..ReadConfig::serving() };
    let Ok(store) = SqliteStore::open(database, &config) else { return 0 };
    let Some(model) = store.catalog().models().first().cloned() else { return 0 };
    let source = &model.sources[0];
    (0..model.metadata.n_layers as u32)
        .flat_map(|layer| (0..model.metadata.d_mlp as u32).map(move |index| (layer, index)))
        .filter(|&(layer, index)| {
            store.neuron_blob(source.id, layer, index, NeuronDataKind::Graph).ok().flatten().is_some()
        })
        .count()
}

/// The twelve most interesting neurons, one graph per commit: enough batches to be killed between.
const N2G_ARGS: [&str; 6] = ["--top-interesting", "12", "--commit-every", "1", "--augment", "2"];

#[test]
fn a_run_killed_and_restarted_builds_the_same_graphs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recorded = recorded(dir.path());
    let n2g = |database: &Path| {
        let mut command = binary();
        command
            .arg("n2g")
            .arg(database)
            .arg("--model")
            .arg(model())
            .args(N2G_ARGS)
            .env("RUST_LOG", "warn")
            .env("RAYON_NUM_THREADS", "2");
        command
    };
    let whole = dir.path().join("whole.db");
    std::fs::copy(&recorded, &whole).expect("copy");
    let output = n2g(&whole).output().expect("uninterrupted run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("mean F1"), "{stderr}");
    let (whole_blobs, whole_index) = graph_blobs(&whole);
    let n_graphs = whole_blobs.iter().step_by(2).filter(|b| b.is_some()).count();
    assert_eq!(n_graphs, 12, "one graph per chosen neuron");
    assert!(whole_index.is_some(), "the token index is written");

    let killed = dir.path().join("killed.db");
    std::fs::copy(&recorded, &killed).expect("copy");
    let mut child =
        n2g(&killed).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("spawn");
    let started = Instant::now();
    while count_graphs(&killed) < 3 {
        assert!(child.try_wait().expect("poll").is_none(), "the run ended before three graphs were committed");
        assert!(started.elapsed() < Duration::from_secs(120), "no graphs after two minutes");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SIGKILL: the open batch is lost, committed graphs stay.
    child.kill().expect("kill");
    child.wait().expect("reap");
    let before = count_graphs(&killed);
    assert!(before < n_graphs, "the run finished before it was killed");
    let output = n2g(&killed).output().expect("resumed run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("already had one"), "{stderr}");
    let (killed_blobs, killed_index) = graph_blobs(&killed);
    assert_eq!(killed_blobs, whole_blobs, "the resumed run's graphs and similar neurons");
    assert_eq!(killed_index, whole_index, "the resumed run's token index");

    // Exported in the original's formats and imported into a fresh recording: the same graphs'
    // tokens and structure.
    let exported = dir.path().join("exported");
    let (code, _, stderr) =
        run(&["n2g-export", whole.to_str().expect("utf-8"), "--dir", exported.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(exported.join("neuron_store.json").is_file());
    let imported = dir.path().join("imported.db");
    std::fs::copy(&recorded, &imported).expect("copy");
    let (code, _, stderr) =
        run(&["n2g-import", imported.to_str().expect("utf-8"), "--dir", exported.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(count_graphs(&imported), n_graphs);
}

#[test]
fn bad_choices_fail_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recorded = recorded(dir.path());
    let database = recorded.to_str().expect("utf-8");
    let model = model();
    let model = model.to_str().expect("utf-8");
    for (args, message) in [
        (vec!["--layers", "7"], "layer 7 does not exist"),
        (vec!["--neurons", "100000"], "neuron 100000 does not exist"),
        (vec!["--name", "nope"], "no model \"nope\""),
        (vec!["--mask-token", "99999"], "is not a token id"),
    ] {
        let mut full = vec!["n2g", database, "--model", model];
        full.extend(args);
        let (code, _, stderr) = run(&full);
        assert_eq!(code, 2, "{full:?}: {stderr}");
        assert!(stderr.contains(message), "{full:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let missing = dir.path().join("missing.db");
    let (code, _, stderr) = run(&["n2g", missing.to_str().expect("utf-8"), "--model", model]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    let (code, _, stderr) =
        run(&["n2g-import", database, "--dir", dir.path().join("nothing").to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{stderr}");
}
