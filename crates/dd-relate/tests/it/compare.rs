//! Two training checkpoints of one model recorded over one dataset, compared end to end.

use std::collections::BTreeSet;

use candle_core::{Device, Tensor};
use dd_data::{ExampleGroupKind, LayerDataKind, LayerRecord, NeuronDataKind, NeuronRecord};
use dd_model::{Hook, RunRequest};
use dd_relate::{CompareJob, compare};
use dd_store::{ReadConfig, SqliteStore, StoreLocation, StoreRead};

use crate::{open, pearson, record};

#[test]
fn two_checkpoints_compare_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let early = open(dir.path(), "pythia-checkpoints/step1000");
    let late = open(dir.path(), "pythia-checkpoints/step2000");
    let (a, b) = (dir.path().join("step1000.db"), dir.path().join("step2000.db"));
    record(dir.path(), &early, &a, "ckpt-step1000");
    record(dir.path(), &late, &b, "ckpt-step2000");
    let job = CompareJob {
        baseline: StoreLocation::SqliteFile(a.clone()),
        baseline_model: "ckpt-step1000".into(),
        current: StoreLocation::SqliteFile(b.clone()),
        current_model: "ckpt-step2000".into(),
        baseline_name: "ckpt-step1000".into(),
    };
    let summary = compare(&job, &|_| {}).expect("compares");
    assert!(summary.copied > 0, "the baseline is copied beside the compared model");
    assert_eq!(summary.neurons, 128);

    let store_a = SqliteStore::open(&a, &ReadConfig::serving()).expect("open a");
    let store_b = SqliteStore::open(&b, &ReadConfig::serving()).expect("open b");
    let names: Vec<&str> = store_b.catalog().models().iter().map(|m| m.metadata.name.as_str()).collect();
    assert_eq!(names, ["ckpt-step2000", "ckpt-step1000"]);
    let source_a = &store_a.catalog().models()[0].sources[0];
    let copied = &store_b.catalog().model("ckpt-step1000").expect("copied").sources[0];
    let source_b = &store_b.catalog().model("ckpt-step2000").expect("compared").sources[0];
    assert_eq!(
        store_a.neuron_blob(source_a.id, 1, 5, NeuronDataKind::Examples).expect("read"),
        store_b.neuron_blob(copied.id, 1, 5, NeuronDataKind::Examples).expect("read"),
        "copied blob for blob"
    );

    let mut scores = Vec::new();
    for layer in 0..2u32 {
        let Some(LayerRecord::Changes(changes)) =
            store_b.layer_record(source_b, layer, LayerDataKind::Changes).expect("read")
        else {
            panic!("no changes for layer {layer}")
        };
        assert_eq!(changes.baseline, "ckpt-step1000");
        assert_eq!(changes.neurons.len(), 64);
        for (index, change) in changes.neurons.iter().enumerate() {
            let index = index as u32;
            let examples =
                |store: &SqliteStore, source| match store.neuron_record(source, layer, index, NeuronDataKind::Examples)
                {
                    Ok(Some(NeuronRecord::Examples(examples))) => examples,
                    other => panic!("{other:?}"),
                };
            let (ex_a, ex_b) = (examples(&store_a, source_a), examples(&store_b, source_b));
            let top = |ex: &dd_data::NeuronExamples| -> BTreeSet<u64> {
                ex.groups
                    .iter()
                    .filter(|g| g.kind == ExampleGroupKind::Top)
                    .flat_map(|g| g.examples.iter().map(|e| e.dataset_index))
                    .collect()
            };
            let (ta, tb) = (top(&ex_a), top(&ex_b));
            let overlap = ta.intersection(&tb).count() as f32 / ta.union(&tb).count() as f32;
            assert!((change.top_overlap - overlap).abs() < 1e-6);
            // The shared contexts' activations from the two checkpoints themselves, run here.
            let shared: Vec<&dd_data::Example> = {
                let in_a: BTreeSet<u64> =
                    ex_a.groups.iter().flat_map(|g| g.examples.iter().map(|e| e.dataset_index)).collect();
                let mut seen = BTreeSet::new();
                ex_b.groups
                    .iter()
                    .flat_map(|g| &g.examples)
                    .filter(|e| in_a.contains(&e.dataset_index) && seen.insert(e.dataset_index))
                    .collect()
            };
            assert_eq!(change.shared_contexts as usize, shared.len());
            if index % 16 == 0 && !shared.is_empty() {
                let (mut xs, mut ys) = (Vec::new(), Vec::new());
                for example in &shared {
                    let ids =
                        Tensor::new(example.tokens.as_slice(), &Device::Cpu).expect("ids").unsqueeze(0).expect("batch");
                    for (model, out) in [(&early, &mut xs), (&late, &mut ys)] {
                        let run = model
                            .transformer
                            .run(&ids, &RunRequest::all_layers(model.transformer.config()))
                            .expect("runs");
                        let values: Vec<Vec<f32>> = run
                            .get(layer as usize, Hook::Post)
                            .expect("layer")
                            .squeeze(0)
                            .expect("squeeze")
                            .to_vec2()
                            .expect("values");
                        out.extend(values.iter().skip(1).map(|row| f64::from(row[index as usize])));
                    }
                }
                let r = pearson(&xs, &ys);
                match (change.activation_correlation, r) {
                    (Some(stored), Some(exact)) => {
                        assert!((f64::from(stored) - exact).abs() < 1e-3, "{layer}/{index}: {stored} vs {exact}")
                    }
                    (stored, exact) => assert_eq!(stored.is_some(), exact.is_some()),
                }
            }
            scores.push(change.score);
        }
    }
    // Training changed some neurons much more than others, and the ranking leads with the most changed.
    let max = scores.iter().copied().fold(f32::MIN, f32::max);
    assert_eq!(summary.most_changed[0].1, max);
    assert!(max > 0.2 && scores.iter().copied().fold(f32::MAX, f32::min) < max);
    drop((store_a, store_b));

    // A rerun uses the copy already there; a model compared with itself has not changed at all.
    assert_eq!(compare(&job, &|_| {}).expect("again").copied, 0);
    let itself = CompareJob {
        baseline: StoreLocation::SqliteFile(a.clone()),
        baseline_model: "ckpt-step1000".into(),
        current: StoreLocation::SqliteFile(a.clone()),
        current_model: "ckpt-step1000".into(),
        baseline_name: "ckpt-step1000".into(),
    };
    assert_eq!(compare(&itself, &|_| {}).expect("itself").copied, 0);
    let store_a = SqliteStore::open(&a, &ReadConfig::serving()).expect("open a");
    let source = &store_a.catalog().models()[0].sources[0];
    for layer in 0..2 {
        let Some(LayerRecord::Changes(changes)) =
            store_a.layer_record(source, layer, LayerDataKind::Changes).expect("read")
        else {
            panic!("no changes")
        };
        for change in &changes.neurons {
            assert_eq!((change.score, change.top_overlap, change.mean_change), (0.0, 1.0, 0.0));
            assert!(change.activation_correlation.is_none_or(|r| r > 0.999_999));
        }
    }

    // Different shapes are refused with the reason.
    let gpt2 = open(dir.path(), "gpt2");
    let other = dir.path().join("gpt2.db");
    record(dir.path(), &gpt2, &other, "gpt2");
    let mismatched = CompareJob {
        current: StoreLocation::SqliteFile(other),
        current_model: "gpt2".into(),
        baseline_name: "base".into(),
        ..job
    };
    let error = compare(&mismatched, &|_| {}).expect_err("refused");
    assert!(error.to_string().contains("differ in shape"), "{error}");
}
