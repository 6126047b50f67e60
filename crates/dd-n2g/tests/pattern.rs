//! End to end on a model built to fire on a known pattern: record it with the real recorder, build
//! its pattern neuron's graph through the real job, and check that the graph is the pattern and
//! predicts the neuron perfectly, on held-out top examples and on random text.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use dd_data::{NeuronDataKind, NeuronRecord};
use dd_n2g::build::TokenTexts;
use dd_n2g::fixture::write_pattern_model;
use dd_n2g::job::{N2gJob, N2gModel, build_graphs};
use dd_n2g::probe::{ModelProbe, ProbeConfig};
use dd_n2g::substitutes::EmbeddingNeighbours;
use dd_store::NeuronChoice;
use dd_store::StoreLocation;

/// Text over a few letters, so that `a ? b` is common: about one position in 36.
fn letters(n: usize, seed: u64) -> String {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            b"abcde "[(state >> 33) as usize % 6] as char
        })
        .collect()
}

#[test]
fn the_pattern_neurons_graph_is_the_pattern_and_predicts_it_perfectly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model_dir = dir.path().join("pattern-model");
    std::fs::create_dir_all(&model_dir).expect("model dir");
    let pattern = write_pattern_model(&model_dir).expect("fixture model");
    let dataset = dir.path().join("letters.txt");
    let text: Vec<String> = (0..40).map(|i| letters(400, i)).collect();
    std::fs::write(&dataset, text.join("\n\n")).expect("dataset");
    let database = dir.path().join("pattern.db");

    let opened = dd_record::open_model(model_dir.to_str().expect("utf-8 path")).expect("the fixture loads");
    let mut recording = dd_record::RecordingJob::standard(&dataset, &database);
    recording.context_length = 64;
    recording.weight_facts = None;
    dd_record::record_to_database(&opened, &recording, &|_| {}, &AtomicBool::new(false)).expect("recorded");

    let location = StoreLocation::SqliteFile(database.clone());
    let name = dd_store::model_name_in(&location, None, None).expect("one model");
    let choice =
        NeuronChoice { layers: Some(vec![pattern.layer]), neurons: Some(vec![pattern.neuron]), top_interesting: None };
    let job = N2gJob::standard(&name, &opened.tokenizer, choice);
    let transformer = Arc::new(opened.transformer);
    let probe = ModelProbe::new(Arc::clone(&transformer), ProbeConfig::default());
    let substitutes =
        EmbeddingNeighbours::new(&transformer, &opened.tokenizer, Default::default()).expect("neighbours");
    let texts = TokenTexts::from_tokenizer(&opened.tokenizer);
    let model = N2gModel { source: &probe, substitutes: &substitutes, texts: &texts };
    let summary = build_graphs(&location, &model, &job, &AtomicBool::new(false), &|_| {}).expect("built");
    assert_eq!((summary.built, summary.indexed), (1, 1), "{summary:?}");

    let reader = location.open_reader().expect("reader");
    let entry = reader.catalog().model(&name).expect("model").clone();
    let source = &entry.sources[0];
    let Some(NeuronRecord::Graph(graph)) =
        reader.neuron_record(source, pattern.layer, pattern.neuron, NeuronDataKind::Graph).expect("read")
    else {
        panic!("the pattern neuron has a graph");
    };
    // The graph: `b` activates, `a` is its context; nothing else is important.
    let depth = |d: usize| -> Vec<Option<u32>> {
        let start = graph.subgraph_indices[d] as usize;
        let end = graph.subgraph_indices.get(d + 1).map_or(graph.nodes.len(), |&e| e as usize);
        graph.nodes[start..end].iter().map(|n| n.token_id).collect()
    };
    assert_eq!(depth(1), vec![Some(pattern.b)], "{graph:?}");
    assert_eq!(depth(2), vec![Some(pattern.a)], "{graph:?}");
    let scores = graph.scores.expect("built graphs are scored");
    assert!(scores.held_out_top.firing > 0 && scores.random.firing > 0, "{scores:?}");
    assert_eq!(scores.held_out_top.f1(), Some(1.0), "{scores:?}");
    assert_eq!(scores.random.f1(), Some(1.0), "{scores:?}");
}
