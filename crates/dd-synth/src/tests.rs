//! Tests of the synthetic generator against the real store.

use dd_data::{LayerDataKind, ModelDataKind, NeuronDataKind, NeuronRecord};
use dd_store::{ReadConfig, SqliteStore, StoreRead, check};

use super::*;

fn config(name: &str, n_layers: u32, d_mlp: u32, n_threads: usize) -> SynthConfig {
    SynthConfig {
        model_name: name.into(),
        n_layers,
        d_mlp,
        n_examples: 20,
        n_bottom_examples: 0,
        n_tokens: 128,
        vocab_size: 50_257,
        seed: 42,
        replace: false,
        n_threads,
    }
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &ReadConfig { n_connections: 1, cache_kib: 1024, mmap_bytes: 0, immutable: true })
        .expect("open")
}

#[test]
fn writes_every_kind_for_every_neuron() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("synth.db");
    let mut calls = Vec::new();
    let mut cfg = config("tiny", 2, 8, 2);
    cfg.n_bottom_examples = 3;
    let summary = synthesize(&path, &cfg, &mut |done, total| calls.push((done, total))).expect("synth");
    assert_eq!(summary.n_neurons, 16);
    assert_eq!(summary.n_records, 16 * NeuronDataKind::ALL.len() as u64);
    assert_eq!(calls.last(), Some(&(16, 16)));
    assert!(check(&path, &mut |_, _| {}).expect("check").is_ok());

    let store = open(&path);
    let model = store.catalog().model("tiny").expect("model");
    assert_eq!(model.metadata.n_neurons(), 16);
    let mlp = &model.sources[0];
    assert_eq!(mlp.neuron_kinds, NeuronDataKind::ALL.to_vec());
    assert_eq!(mlp.layer_kinds, LayerDataKind::ALL.to_vec());
    assert_eq!(model.model_kinds, ModelDataKind::ALL.to_vec());
    for layer in 0..2 {
        for index in 0..8 {
            let Some(NeuronRecord::Examples(examples)) =
                store.neuron_record(mlp, layer, index, NeuronDataKind::Examples).expect("read")
            else {
                panic!("missing examples for {layer}/{index}");
            };
            let top = examples.top().expect("top group");
            assert_eq!(top.examples.len(), 20);
            assert!(top.examples.windows(2).all(|w| w[0].max_activation() >= w[1].max_activation()), "sorted");
            let bottom = examples.bottom().expect("bottom group");
            assert_eq!(bottom.examples.len(), 3);
            let Some(NeuronRecord::Stats(stats)) =
                store.neuron_record(mlp, layer, index, NeuronDataKind::Stats).expect("read")
            else {
                panic!("missing stats");
            };
            assert_eq!(stats.histogram.counts.iter().sum::<u64>(), stats.count);
        }
    }
    assert!(matches!(
        synthesize(&path, &cfg, &mut |_, _| {}),
        Err(SynthError::Store(dd_store::StoreError::ModelExists { .. }))
    ));
    cfg.replace = true;
    synthesize(&path, &cfg, &mut |_, _| {}).expect("replace");
}

#[test]
fn output_does_not_depend_on_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (one, two) = (dir.path().join("one.db"), dir.path().join("two.db"));
    synthesize(&one, &config("m", 2, 16, 1), &mut |_, _| {}).expect("synth 1");
    synthesize(&two, &config("m", 2, 16, 3), &mut |_, _| {}).expect("synth 2");
    let (a, b) = (open(&one), open(&two));
    let (ma, mb) = (a.catalog().model("m").expect("m"), b.catalog().model("m").expect("m"));
    for layer in 0..2 {
        for index in 0..16 {
            for &kind in NeuronDataKind::ALL {
                assert_eq!(
                    a.neuron_blob(ma.sources[0].id, layer, index, kind).expect("a"),
                    b.neuron_blob(mb.sources[0].id, layer, index, kind).expect("b")
                );
            }
        }
    }
    for &kind in ModelDataKind::ALL {
        assert_eq!(a.model_blob(ma.id, kind).expect("a"), b.model_blob(mb.id, kind).expect("b"));
    }
}

/// The size budget: a neuron with 20 examples × 128 tokens takes at most 7.6 KB on disk.
#[test]
fn a_neuron_fits_the_size_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("size.db");
    let n_neurons = 256u64;
    synthesize(&path, &config("size", 1, n_neurons as u32, 2), &mut |_, _| {}).expect("synth");
    let store = open(&path);
    let model = store.catalog().model("size").expect("model");
    let usage = store.usage(model.id).expect("usage");
    let examples = usage.iter().find(|u| u.kind == "examples").expect("examples usage");
    let examples_per_neuron = examples.n_bytes / n_neurons;
    assert!(examples_per_neuron <= 6400, "examples blob {examples_per_neuron} B");
    // The whole file, vocabulary (50k tokens) excepted, divided by neurons: every kind included.
    let vocabulary = usage.iter().find(|u| u.kind == "vocabulary").expect("vocabulary").n_bytes;
    let file_bytes = std::fs::metadata(&path).expect("stat").len();
    let per_neuron = (file_bytes - vocabulary) / n_neurons;
    assert!(per_neuron <= 7600, "{per_neuron} B per neuron on disk");
}

#[test]
fn bad_shapes_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.db");
    for bad in [config("m", 0, 4, 1), config("m", 1, 0, 1), SynthConfig { n_tokens: 0, ..config("m", 1, 1, 1) }] {
        assert!(matches!(synthesize(&path, &bad, &mut |_, _| {}), Err(SynthError::BadShape(_))));
    }
}
