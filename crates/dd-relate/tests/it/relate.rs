//! `relate` on a recorded fixture against brute force: every context of the sample run alone,
//! every pair's Pearson r in f64.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};
use dd_data::{
    ExampleGroupKind, LayerDataKind, LayerRecord, ModelDataKind, ModelRecord, NeuronDataKind, NeuronIndex, NeuronRecord,
};
use dd_model::{Hook, RunRequest, Transformer};
use dd_relate::sample::{ContextSample, sample_contexts};
use dd_relate::{RelateError, RelateJob, relate};
use dd_store::{ReadConfig, SqliteStore, StoreLocation, StoreRead};

use crate::{open, pearson, record};

const K: usize = 5;

fn job() -> RelateJob {
    let mut job = RelateJob::standard("tiny");
    job.token_budget = 300;
    job.correlation.k = K;
    job.correlation.neuron_block = 48;
    job.neighbours = 4;
    job.roles.betweenness_sources = 10_000;
    job
}

/// Every neuron's activation on every measured token of the sample, each context run alone, in f64.
fn brute_force_activations(model: &Transformer, sample: &ContextSample) -> Vec<Vec<f64>> {
    let config = model.config();
    let neurons = config.n_layers * config.d_mlp;
    let mut rows = vec![Vec::new(); neurons];
    for context in &sample.contexts {
        let ids = Tensor::new(context.tokens.as_slice(), &Device::Cpu).expect("ids").unsqueeze(0).expect("batch");
        let output = model.run(&ids, &RunRequest::all_layers(config)).expect("runs");
        for layer in 0..config.n_layers {
            let values: Vec<Vec<f32>> =
                output.get(layer, Hook::Post).expect("layer").squeeze(0).expect("squeeze").to_vec2().expect("values");
            for row in values.iter().take(context.tokens.len()).skip(usize::from(sample.skip_first)) {
                for (neuron, &value) in row.iter().enumerate() {
                    rows[layer * config.d_mlp + neuron].push(f64::from(value));
                }
            }
        }
    }
    rows
}

fn open_store(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &ReadConfig::serving()).expect("open")
}

#[test]
fn correlations_groups_roles_and_embeddings_match_brute_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = open(dir.path(), "gpt2");
    let db = dir.path().join("tiny.db");
    record(dir.path(), &opened, &db, "tiny");
    let copy = dir.path().join("copy.db");
    std::fs::copy(&db, &copy).expect("copy");
    let location = StoreLocation::SqliteFile(db.clone());
    let summary =
        relate(&location, Some(&opened.transformer), &job(), &AtomicBool::new(false), &|_| {}).expect("relates");
    assert_eq!(summary.tokens, 300);
    assert!(summary.edges > 0);

    let store = open_store(&db);
    let entry = store.catalog().model("tiny").expect("model").clone();
    let source = entry.sources[0].clone();
    let (n_layers, per_layer) = (source.info.n_layers as usize, source.info.units_per_layer as usize);
    let neurons = n_layers * per_layer;

    // The sample: contexts of the neurons' random examples, exactly as stored, 300 tokens in all.
    let sample = sample_contexts(&store, &source, 300, true, 0).expect("sample");
    assert_eq!(sample.tokens(), 300);
    let mut random = std::collections::HashMap::new();
    for layer in 0..n_layers as u32 {
        for index in 0..per_layer as u32 {
            let Some(NeuronRecord::Examples(examples)) =
                store.neuron_record(&source, layer, index, NeuronDataKind::Examples).expect("read")
            else {
                panic!("examples of {layer}/{index}")
            };
            for group in examples.groups.iter().filter(|g| g.kind == ExampleGroupKind::Random) {
                for example in &group.examples {
                    random.insert(example.dataset_index, example.tokens.clone());
                }
            }
        }
    }
    for context in &sample.contexts {
        let stored = &random[&context.dataset_index];
        assert_eq!(&stored[..context.tokens.len()], context.tokens.as_slice());
    }

    let rows = brute_force_activations(&opened.transformer, &sample);
    let at = |node: usize| NeuronIndex { layer: (node / per_layer) as u32, index: (node % per_layer) as u32 };
    let node_of = |neuron: NeuronIndex| neuron.layer as usize * per_layer + neuron.index as usize;
    let mut checked = 0;
    for node in 0..neurons {
        let neuron = at(node);
        let Some(NeuronRecord::Correlations(stored)) =
            store.neuron_record(&source, neuron.layer, neuron.index, NeuronDataKind::Correlations).expect("read")
        else {
            panic!("correlations of {neuron:?}")
        };
        assert_eq!(stored.tokens, 300);
        let mut exact: Vec<(f64, usize)> = (0..neurons)
            .filter(|&other| other != node)
            .filter_map(|other| Some((pearson(&rows[node], &rows[other])?, other)))
            .collect();
        if pearson(&rows[node], &rows[node]).is_none() {
            assert!(stored.positive.is_empty() && stored.negative.is_empty());
            continue;
        }
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        assert_eq!(stored.positive.len(), K.min(exact.len()));
        for (rank, entry) in stored.positive.iter().enumerate() {
            let r = pearson(&rows[node], &rows[node_of(entry.neuron)]).expect("defined");
            assert!(
                (f64::from(entry.correlation) - r).abs() < 2e-3,
                "{neuron:?} ~ {:?}: {} vs {r}",
                entry.neuron,
                entry.correlation
            );
            // The k-th best by brute force, up to the f16 sample's rounding.
            assert!((r - exact[rank].0).abs() < 2e-3, "{neuron:?} rank {rank}: {r} vs {}", exact[rank].0);
        }
        for (rank, entry) in stored.negative.iter().enumerate() {
            let r = pearson(&rows[node], &rows[node_of(entry.neuron)]).expect("defined");
            assert!((r - exact[exact.len() - 1 - rank].0).abs() < 2e-3);
        }
        checked += 1;
    }
    assert!(checked > neurons / 2, "only {checked} neurons vary");

    // Groups: each group's cohesion is the mean r over its pairs; roles name each member's group.
    let Some(ModelRecord::Groups(groups)) = store.model_record(&entry, ModelDataKind::Groups).expect("read") else {
        panic!("no groups")
    };
    assert!(!groups.groups.is_empty(), "the fixture has co-activating neurons");
    assert_eq!(groups.tokens, 300);
    let mut boundary = f32::NAN;
    let roles: Vec<dd_data::NeuronRole> = (0..n_layers as u32)
        .flat_map(|layer| match store.layer_record(&source, layer, LayerDataKind::Roles).expect("read") {
            Some(LayerRecord::Roles(roles)) => {
                boundary = roles.connector_participation;
                roles.neurons
            }
            other => panic!("roles of layer {layer}: {other:?}"),
        })
        .collect();
    assert_eq!(roles.len(), neurons);
    for (number, group) in groups.groups.iter().enumerate() {
        assert!(group.members.len() >= 3);
        let nodes: Vec<usize> = group.members.iter().map(|&m| node_of(m)).collect();
        let mut pairs = Vec::new();
        for (i, &a) in nodes.iter().enumerate() {
            for &b in &nodes[i + 1..] {
                pairs.push(pearson(&rows[a], &rows[b]).unwrap_or(0.0));
            }
        }
        let cohesion = pairs.iter().sum::<f64>() / pairs.len() as f64;
        assert!(
            (f64::from(group.cohesion) - cohesion).abs() < 2e-3,
            "group {number}: {} vs {cohesion}",
            group.cohesion
        );
        for &node in &nodes {
            assert_eq!(roles[node].group, Some(number as u32));
        }
        if number > 0 {
            assert!(groups.groups[number - 1].cohesion >= group.cohesion, "most cohesive first");
        }
        let context = &group.contexts[0];
        assert_eq!(context.tokens.len(), context.scores.len());
    }
    let grouped: usize = groups.groups.iter().map(|g| g.members.len()).sum();
    assert_eq!(roles.iter().filter(|r| r.group.is_some()).count(), grouped);

    // Roles: degrees from the stored connections, each pair once.
    let mut edges = BTreeSet::new();
    for node in 0..neurons {
        let neuron = at(node);
        if let Some(NeuronRecord::Connections(lists)) =
            store.neuron_record(&source, neuron.layer, neuron.index, NeuronDataKind::Connections).expect("read")
        {
            edges.extend(lists.inputs.iter().map(|c| (node_of(c.neuron), node)));
            edges.extend(lists.outputs.iter().map(|c| (node, node_of(c.neuron))));
        }
    }
    for (node, role) in roles.iter().enumerate() {
        assert_eq!(role.in_degree as usize, edges.iter().filter(|e| e.1 == node).count());
        assert_eq!(role.out_degree as usize, edges.iter().filter(|e| e.0 == node).count());
        assert_eq!(role.role, dd_data::Role::classify(role.strength_z, role.participation, boundary));
    }
    // The connector boundary is the 90th percentile of participation.
    let mut sorted: Vec<f32> = roles.iter().map(|r| r.participation).collect();
    sorted.sort_by(f32::total_cmp);
    assert_eq!(boundary, sorted[(neurons as f32 * 0.9).ceil() as usize - 1]);

    // Embeddings: the weighted mean of the activating tokens' embedding rows, unit length.
    let table: Vec<Vec<f32>> = opened.transformer.token_embedding().to_vec2().expect("embedding");
    let mut embedded = 0;
    for node in 0..neurons {
        let neuron = at(node);
        let activating =
            match store.neuron_record(&source, neuron.layer, neuron.index, NeuronDataKind::ActivatingTokens) {
                Ok(Some(NeuronRecord::ActivatingTokens(tokens))) => tokens.tokens,
                _ => Vec::new(),
            };
        let stored = store.neuron_record(&source, neuron.layer, neuron.index, NeuronDataKind::Embedding).expect("read");
        let weighted: Vec<(u32, f64)> =
            activating.iter().filter(|t| t.mean > 0.0).map(|t| (t.token, f64::from(t.mean))).collect();
        let Some(NeuronRecord::Embedding(stored)) = stored else {
            assert!(weighted.is_empty(), "{neuron:?} has activating tokens but no embedding");
            continue;
        };
        let mut vector = vec![0f64; table[0].len()];
        for &(token, weight) in &weighted {
            vector.iter_mut().zip(&table[token as usize]).for_each(|(v, &e)| *v += weight * f64::from(e));
        }
        let norm = vector.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (value, exact) in stored.values.iter().zip(&vector) {
            let restored = f64::from(*value) * f64::from(stored.scale);
            assert!((restored - exact / norm).abs() <= f64::from(stored.scale) * 0.51 + 1e-6);
        }
        assert!(stored.neighbours.len() <= 4);
        embedded += 1;
    }
    assert!(embedded > neurons / 2);
    drop(store);

    // The same run on a copy of the recording writes the same bytes.
    let copy_location = StoreLocation::SqliteFile(copy.clone());
    relate(&copy_location, Some(&opened.transformer), &job(), &AtomicBool::new(false), &|_| {}).expect("relates again");
    let (first, second) = (open_store(&db), open_store(&copy));
    let (source_a, source_b) = (&first.catalog().models()[0].sources[0], &second.catalog().models()[0].sources[0]);
    for node in (0..neurons).step_by(7) {
        let neuron = at(node);
        for kind in [NeuronDataKind::Correlations, NeuronDataKind::Embedding] {
            assert_eq!(
                first.neuron_blob(source_a.id, neuron.layer, neuron.index, kind).expect("read"),
                second.neuron_blob(source_b.id, neuron.layer, neuron.index, kind).expect("read"),
            );
        }
    }
    for layer in 0..n_layers as u32 {
        assert_eq!(
            first.layer_blob(source_a.id, layer, LayerDataKind::Roles).expect("read"),
            second.layer_blob(source_b.id, layer, LayerDataKind::Roles).expect("read")
        );
    }
    let (model_a, model_b) = (first.catalog().models()[0].id, second.catalog().models()[0].id);
    assert_eq!(
        first.model_blob(model_a, ModelDataKind::Groups).expect("read"),
        second.model_blob(model_b, ModelDataKind::Groups).expect("read")
    );
}

#[test]
fn bad_requests_are_clear_errors_and_a_stopped_run_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = open(dir.path(), "gpt2");
    let db = dir.path().join("tiny.db");
    record(dir.path(), &opened, &db, "tiny");
    let location = StoreLocation::SqliteFile(db.clone());
    let message = |result: Result<dd_relate::RelateSummary, RelateError>| match result {
        Err(error) => error.to_string(),
        Ok(_) => panic!("succeeded"),
    };
    let never = AtomicBool::new(false);
    let mut unknown = job();
    unknown.model_name = "nope".into();
    assert!(
        message(relate(&location, Some(&opened.transformer), &unknown, &never, &|_| {})).contains("no model \"nope\"")
    );
    assert!(message(relate(&location, None, &job(), &never, &|_| {})).contains("need the recorded model"));
    let other = open(dir.path(), "pythia");
    let mismatch = message(relate(&location, Some(&other.transformer), &job(), &never, &|_| {}));
    assert!(mismatch.contains("layers of"), "{mismatch}");
    let stopped = relate(&location, Some(&opened.transformer), &job(), &AtomicBool::new(true), &|_| {});
    assert!(matches!(stopped, Err(RelateError::Stopped)), "{stopped:?}");
    let store = open_store(&db);
    let source = &store.catalog().models()[0].sources[0];
    assert!(!source.neuron_kinds.contains(&NeuronDataKind::Correlations));
    // Roles alone need neither the model nor correlations.
    drop(store);
    let mut roles_only = job();
    roles_only.parts = dd_relate::RelateParts { correlations: false, roles: true, embeddings: false };
    relate(&location, None, &roles_only, &never, &|_| {}).expect("roles alone");
    let store = open_store(&db);
    assert!(store.catalog().models()[0].sources[0].layer_kinds.contains(&LayerDataKind::Roles));
}
