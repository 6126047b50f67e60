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

/// The token- and weight-level kinds look like a recorder's: sorted, distinct, in range, triggers
/// leading both token lists, and connections only to earlier (inputs) or later (outputs) layers.
#[test]
fn token_and_weight_kinds_are_plausible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("weights.db");
    let (n_layers, d_mlp) = (3u32, 8u32);
    synthesize(&path, &config("w", n_layers, d_mlp, 2), &mut |_, _| {}).expect("synth");
    let store = open(&path);
    let mlp = &store.catalog().model("w").expect("model").sources[0];
    for layer in 0..n_layers {
        for index in 0..d_mlp {
            let read = |kind| store.neuron_record(mlp, layer, index, kind).expect("read").expect("stored");
            let NeuronRecord::ActivatingTokens(activating) = read(NeuronDataKind::ActivatingTokens) else {
                panic!("wrong kind");
            };
            let NeuronRecord::InputTokens(inputs) = read(NeuronDataKind::InputTokens) else { panic!("wrong kind") };
            let NeuronRecord::Connections(connections) = read(NeuronDataKind::Connections) else {
                panic!("wrong kind");
            };

            let tokens = &activating.tokens;
            assert_eq!(tokens.len(), 10, "{layer}/{index}");
            assert!(tokens.windows(2).all(|w| w[0].mean >= w[1].mean), "highest mean first: {tokens:?}");
            assert!(tokens.iter().all(|t| t.count >= 1 && t.token < 50_257 && t.mean > 0.0), "{tokens:?}");
            let distinct: std::collections::HashSet<u32> = tokens.iter().map(|t| t.token).collect();
            assert_eq!(distinct.len(), tokens.len(), "{tokens:?}");

            assert_eq!((inputs.top.len(), inputs.bottom.len()), (10, 10));
            assert!(inputs.top.windows(2).all(|w| w[0].value >= w[1].value) && inputs.top[9].value > 0.0);
            assert!(inputs.bottom.windows(2).all(|w| w[0].value <= w[1].value) && inputs.bottom[0].value < 0.0);
            assert!(inputs.bottom.iter().all(|b| inputs.top.iter().all(|t| t.token != b.token)));
            // The neuron's strongest trigger is both its most activating token and a top input token.
            assert!(inputs.top.iter().any(|t| t.token == tokens[0].token), "{tokens:?} {inputs:?}");

            for (list, layers) in [(&connections.inputs, 0..layer), (&connections.outputs, layer + 1..n_layers)] {
                assert_eq!(list.len(), (layers.len() * d_mlp as usize).min(10), "{layer}/{index}: {list:?}");
                assert!(list.iter().all(|c| layers.contains(&c.neuron.layer) && c.neuron.index < d_mlp), "{list:?}");
                assert!(list.windows(2).all(|w| w[0].weight.abs() >= w[1].weight.abs()), "{list:?}");
                let distinct: std::collections::HashSet<_> = list.iter().map(|c| c.neuron).collect();
                assert_eq!(distinct.len(), list.len(), "{list:?}");
            }
        }
    }
}

/// A vocabulary too small for full token lists gives shorter lists, not a generator that never ends.
#[test]
fn tiny_vocabularies_give_short_token_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.db");
    synthesize(&path, &SynthConfig { vocab_size: 2, ..config("t", 1, 2, 1) }, &mut |_, _| {}).expect("synth");
    assert!(check(&path, &mut |_, _| {}).expect("check").is_ok());
    let store = open(&path);
    let mlp = &store.catalog().model("t").expect("model").sources[0];
    let Some(NeuronRecord::InputTokens(inputs)) =
        store.neuron_record(mlp, 0, 1, NeuronDataKind::InputTokens).expect("read")
    else {
        panic!("no input tokens");
    };
    assert_eq!(inputs.top.len() + inputs.bottom.len(), 2, "{inputs:?}");
    let Some(NeuronRecord::Connections(connections)) =
        store.neuron_record(mlp, 0, 1, NeuronDataKind::Connections).expect("read")
    else {
        panic!("no connections");
    };
    assert!(connections.inputs.is_empty() && connections.outputs.is_empty(), "one layer has no neighbours");
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
    // One writer thread: neurons arrive in key order, so the file's size is the data's and the
    // same on every run. With two, rows arriving out of order split B-tree pages differently
    // each run (7,595–7,603 B a neuron against 7,531 in order), which failed CI at random.
    synthesize(&path, &config("size", 1, n_neurons as u32, 1), &mut |_, _| {}).expect("synth");
    let store = open(&path);
    let model = store.catalog().model("size").expect("model");
    let usage = store.usage(model.id).expect("usage");
    let examples = usage.iter().find(|u| u.kind == "examples").expect("examples usage");
    let examples_per_neuron = examples.n_bytes / n_neurons;
    assert!(examples_per_neuron <= 6400, "examples blob {examples_per_neuron} B");
    // The whole file, vocabulary (50k tokens) excepted, divided by neurons: every recorded kind
    // included. The relations between neurons (`dd-relate`) came after the budget and are left out:
    // they are derived data, written by their own command.
    let relations = ["correlations", "embedding", "roles", "changes", "groups"];
    let excepted: u64 =
        usage.iter().filter(|u| u.kind == "vocabulary" || relations.contains(&u.kind)).map(|u| u.n_bytes).sum();
    let file_bytes = std::fs::metadata(&path).expect("stat").len();
    let per_neuron = (file_bytes - excepted) / n_neurons;
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
