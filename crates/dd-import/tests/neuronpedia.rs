//! The Neuronpedia export and SAEDashboard batch importers, from a directory and from a fixture
//! server with faults, into a real SQLite database read back field by field.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use dd_data::{
    ExampleGroupKind, Explanation, Explanations, ModelDataKind, ModelMetadata, ModelRecord, NeuronDataKind,
    NeuronRecord, Provenance, SourceInfo, display_token,
};
use dd_import::formats::neuronpedia::{NeuronpediaConfig, NeuronpediaImporter};
use dd_import::formats::saedashboard::{SaeDashboardConfig, SaeDashboardImporter};
use dd_import::testing::{Fault, FixtureServer};
use dd_import::{DatasetLocation, FetchConfig, ImportJob, ImportSummary, Importer, run_import};
use dd_store::{EncodeOptions, ReadConfig, SqliteStore, StoreLocation, StoreRead};
use serde_json::{Value, json};

fn write_gz(path: &Path, lines: &[Value]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in lines {
        writeln!(encoder, "{line}").expect("gzip");
    }
    std::fs::write(path, encoder.finish().expect("gzip")).expect("write");
}

fn write_gz_text(path: &Path, text: &str) {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip");
    std::fs::write(path, encoder.finish().expect("gzip")).expect("write");
}

/// A feature row as the database export writes it (index a string, as Postgres holds it).
fn db_feature(index: u32) -> Value {
    json!({"modelId": "gpt2-small", "layer": "6-res-jb", "index": index.to_string(), "maxActApprox": 4.5,
        "creatorId": "c", "frac_nonzero": 0.01, "freq_hist_data_bar_heights": [1, 2], "freq_hist_data_bar_values": [0.1, 0.2],
        "logits_hist_data_bar_heights": [], "logits_hist_data_bar_values": [], "neuron_alignment_indices": [3],
        "neuron_alignment_l1": [0.1], "neuron_alignment_values": [0.2], "correlated_neurons_indices": [],
        "correlated_neurons_l1": [], "correlated_neurons_pearson": [], "decoder_weights_dist": [],
        "neg_str": [" down", "\u{0}low"], "neg_values": [-0.5, -0.25], "pos_str": [" up", " the"], "pos_values": [2.5, 1.25],
        "sourceSetName": "res-jb", "topkCosSimIndices": [index, index + 1], "topkCosSimValues": [1.0, 0.75],
        "vector": null, "vectorLabel": null, "hookName": null, "vectorDefaultSteerStrength": null, "hasVector": false})
}

/// An activation row of the database export.
fn db_activation(index: u32, bin: (f64, f64), tokens: &[&str], values: &[f64], max_at: u32) -> Value {
    json!({"id": format!("a{index}"), "modelId": "gpt2-small", "layer": "6-res-jb", "index": index.to_string(),
        "creatorId": "c", "dataSource": null, "tokens": tokens, "maxValue": 3.0, "minValue": 0.0, "values": values,
        "maxValueTokenIndex": max_at, "dfaValues": [], "dfaMaxValue": null, "dfaTargetIndex": null,
        "binContains": -1, "binMin": bin.0, "binMax": bin.1})
}

/// The converted variant: full rows, ISO timestamps, numbers for indices, `dataIndex`, NULs.
fn converted_feature(index: u32) -> Value {
    let mut row = db_feature(index);
    row["index"] = json!(index);
    row["createdAt"] = json!("2024-07-01T12:34:56.789012");
    row["correlated_features_indices"] = json!([1]);
    row["correlated_features_pearson"] = json!([0.5]);
    row["correlated_features_l1"] = json!([0.5]);
    row["topkCosSimIndices"] = json!([]);
    row["topkCosSimValues"] = json!([]);
    row
}

fn converted_activation(index: u32) -> Value {
    json!({"id": "x", "modelId": "gpt2-small", "layer": "6-res-jb", "index": index, "creatorId": "c",
        "createdAt": "2024-07-01T12:34:56.789012", "tokens": ["A\u{0}", " brigade", "."], "values": [0.0, 3.5, 0.25],
        "maxValue": 3.5, "minValue": 0.0, "maxValueTokenIndex": 1, "dataIndex": "98765", "dataSource": null,
        "lossValues": [], "logitContributions": null, "qualifyingTokenIndex": 1, "zIndices": [], "zValues": [],
        "dfaValues": [], "dfaMaxValue": null, "dfaTargetIndex": null, "binContains": -1, "binMin": -1, "binMax": 3.5})
}

fn explanation(index: Value, text: &str) -> Value {
    json!({"id": "e", "modelId": "gpt2-small", "layer": "6-res-jb", "index": index, "authorId": "a",
        "description": text, "embedding": [0.1, 0.2], "typeName": "oai_token-act-pair",
        "explanationModelName": "gpt-4o-mini", "umap_x": null, "umap_y": null, "umap_cluster": null,
        "umap_log_feature_sparsity": null})
}

/// An export of `6-res-jb`: batch 0 (database variant), no batch 1, batch 2 (converted variant),
/// batch 3 with a malformed explanations line, batch 4 with truncated activations.
fn write_export(root: &Path) {
    std::fs::create_dir_all(root).expect("mkdir");
    std::fs::write(
        root.join("model.jsonl"),
        "{\"id\":\"gpt2-small\",\"displayName\":\"GPT2-Small\",\"layers\":12,\"neuronsPerLayer\":3072,\"dimension\":768,\"createdAt\":\"2024-01-01T00:00:00.000Z\"}\n",
    )
    .expect("write");
    std::fs::write(
        root.join("source.jsonl"),
        "{\"id\":\"6-res-jb\",\"setName\":\"res-jb\",\"dataset\":\"openwebtext\"}\n",
    )
    .expect("write");
    write_gz(&root.join("features/batch-0.jsonl.gz"), &[db_feature(0), db_feature(1)]);
    write_gz(
        &root.join("activations/batch-0.jsonl.gz"),
        &[
            db_activation(0, (-1.0, 3.0), &[" the", " cat"], &[1.0, 3.0], 1),
            db_activation(0, (0.5, 1.0), &[" a"], &[0.75], 0),
            db_activation(0, (-1.0, 3.0), &[" up", " the"], &[2.0, 0.0], 0),
            db_activation(0, (0.0, 0.5), &[" b"], &[0.25], 0),
        ],
    );
    write_gz(&root.join("explanations/batch-0.jsonl.gz"), &[explanation(json!("0"), "military units")]);
    write_gz(&root.join("features/batch-2.jsonl.gz"), &[converted_feature(2048)]);
    write_gz(&root.join("activations/batch-2.jsonl.gz"), &[converted_activation(2048)]);
    write_gz(&root.join("features/batch-3.jsonl.gz"), &[db_feature(3072)]);
    std::fs::create_dir_all(root.join("explanations")).expect("mkdir");
    write_gz_text(&root.join("explanations/batch-3.jsonl.gz"), "{\"layer\": \"6-res-jb\", \"index\": \n");
    write_gz(&root.join("features/batch-4.jsonl.gz"), &[db_feature(4096)]);
    let mut whole = Vec::new();
    let mut encoder = flate2::write::GzEncoder::new(&mut whole, flate2::Compression::default());
    writeln!(encoder, "{}", db_activation(4096, (-1.0, 1.0), &[" x"], &[1.0], 0)).expect("gzip");
    encoder.finish().expect("gzip");
    std::fs::write(root.join("activations/batch-4.jsonl.gz"), &whole[..whole.len() - 12]).expect("write");
}

fn run(db: &Path, location: DatasetLocation, importer: &dyn Importer) -> ImportSummary {
    let mut job = ImportJob::new(location);
    job.fetch = FetchConfig { retry_delay: Duration::from_millis(5), max_retries: 3, ..FetchConfig::default() };
    job.workers = 2;
    job.commit_every = 2;
    run_import(&StoreLocation::SqliteFile(db.to_owned()), importer, &job, &AtomicBool::new(false), &|_| {})
        .expect("import")
}

fn neuronpedia() -> NeuronpediaImporter {
    NeuronpediaImporter::new(NeuronpediaConfig { batches: None, mlp_neurons: false })
}

fn saedashboard() -> SaeDashboardImporter {
    SaeDashboardImporter::new(SaeDashboardConfig { batches: None, units_per_layer: None, mlp_neurons: false })
}

/// The database's records of one unit, with token ids shown as the vocabulary shows them.
struct Stored {
    store: SqliteStore,
    model: String,
    source: String,
}

impl Stored {
    fn open(db: &Path, model: &str, source: &str) -> Self {
        let store = SqliteStore::open(db, &ReadConfig::serving()).expect("open");
        Self { store, model: model.to_owned(), source: source.to_owned() }
    }

    fn record(&self, layer: u32, index: u32, kind: NeuronDataKind) -> Option<NeuronRecord> {
        let model = self.store.catalog().model(&self.model).expect("model");
        let source = model.source(&self.source).expect("source");
        self.store.neuron_record(source, layer, index, kind).expect("read")
    }

    fn shown(&self, ids: &[u32]) -> Vec<String> {
        let model = self.store.catalog().model(&self.model).expect("model");
        let Some(ModelRecord::Vocabulary(vocabulary)) =
            self.store.model_record(model, ModelDataKind::Vocabulary).expect("read")
        else {
            panic!("no vocabulary")
        };
        ids.iter().map(|&id| vocabulary.tokens[id as usize].clone()).collect()
    }
}

fn displayed(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| display_token(text.as_bytes())).collect()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 0.02)
}

/// Units 0 and 2048 of the export, field by field.
fn check_export(stored: &Stored) {
    let Some(NeuronRecord::Examples(examples)) = stored.record(6, 0, NeuronDataKind::Examples) else {
        panic!("no examples")
    };
    let kinds: Vec<_> = examples.groups.iter().map(|group| group.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ExampleGroupKind::Top,
            ExampleGroupKind::Quantile { band: 0, lower: 0.0, upper: 0.5 },
            ExampleGroupKind::Quantile { band: 1, lower: 0.5, upper: 1.0 },
        ]
    );
    let top = &examples.groups[0].examples;
    assert_eq!(stored.shown(&top[0].tokens), displayed(&[" the", " cat"]));
    assert!(close(&top[0].activations, &[1.0, 3.0]));
    assert_eq!((top[0].max_token_index, top[0].dataset_index), (1, 0));
    assert_eq!(stored.shown(&top[1].tokens), displayed(&[" up", " the"]));
    assert_eq!(stored.shown(&examples.groups[2].examples[0].tokens), displayed(&[" a"]));

    let Some(NeuronRecord::Logits(logits)) = stored.record(6, 0, NeuronDataKind::Logits) else { panic!("no logits") };
    let top: Vec<_> = logits.top.iter().map(|t| t.token).collect();
    assert_eq!(stored.shown(&top), displayed(&[" up", " the"]));
    assert_eq!(logits.top.iter().map(|t| t.value).collect::<Vec<_>>(), vec![2.5, 1.25]);
    let bottom: Vec<_> = logits.bottom.iter().map(|t| t.token).collect();
    assert_eq!(stored.shown(&bottom), displayed(&[" down", "low"]), "NUL cleaned");
    assert_eq!(logits.bottom.iter().map(|t| t.value).collect::<Vec<_>>(), vec![-0.5, -0.25]);

    let Some(NeuronRecord::Similar(similar)) = stored.record(6, 0, NeuronDataKind::Similar) else {
        panic!("no similar")
    };
    assert_eq!(similar.neurons.len(), 1, "itself left out");
    assert_eq!((similar.neurons[0].layer, similar.neurons[0].index), (6, 1));
    assert!((similar.neurons[0].similarity - 0.75).abs() < 0.01);
    assert!(stored.record(6, 0, NeuronDataKind::Stats).is_none(), "no statistics are invented");

    let Some(NeuronRecord::Examples(examples)) = stored.record(6, 2048, NeuronDataKind::Examples) else {
        panic!("no examples of the converted variant")
    };
    assert_eq!(examples.groups.len(), 1);
    let example = &examples.groups[0].examples[0];
    assert_eq!(stored.shown(&example.tokens), displayed(&["A", " brigade", "."]));
    assert_eq!((example.max_token_index, example.dataset_index), (1, 98765));
    assert!(close(&example.activations, &[0.0, 3.5, 0.25]));
    assert!(stored.record(6, 2048, NeuronDataKind::Similar).is_none());
    assert!(stored.record(6, 2048, NeuronDataKind::Logits).is_some());
}

/// A directory export: the good batches import, the gap is missing, bad files fail with their
/// reason; a rerun skips all but the failures.
#[test]
fn neuronpedia_export_from_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("v1/gpt2-small/6-res-jb");
    write_export(&root);
    let db = dir.path().join("db.sqlite");
    let summary = run(&db, DatasetLocation::Directory(root.clone()), &neuronpedia());
    assert_eq!((summary.items, summary.imported, summary.missing), (5, 2, 1), "{summary:?}");
    assert_eq!((summary.model.as_str(), summary.source.as_str()), ("gpt2-small", "res-jb"));
    let failures: Vec<_> = summary.failures.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(failures, ["features/batch-3.jsonl.gz", "features/batch-4.jsonl.gz"]);
    assert!(summary.failures[0].reason.contains("explanations/batch-3.jsonl.gz line 1"), "{:?}", summary.failures);
    assert!(summary.failures[1].reason.contains("gzip"), "{:?}", summary.failures);

    let stored = Stored::open(&db, "gpt2-small", "res-jb");
    check_export(&stored);
    let Some(NeuronRecord::Explanations(explanations)) = stored.record(6, 0, NeuronDataKind::Explanations) else {
        panic!("no explanations")
    };
    assert_eq!(explanations.explanations.len(), 1);
    let explanation = &explanations.explanations[0];
    assert_eq!(
        (explanation.text.as_str(), explanation.origin.as_str(), explanation.author.as_deref()),
        ("military units", "neuronpedia", Some("gpt-4o-mini"))
    );
    let model = stored.store.catalog().model("gpt2-small").expect("model");
    let metadata = &model.metadata;
    assert_eq!((metadata.n_layers, metadata.d_mlp, metadata.d_model), (12, 3072, 768));
    assert_eq!((metadata.architecture.as_str(), metadata.dataset.as_str()), ("unknown", "openwebtext"));
    assert!(metadata.provenance.data_source.starts_with("neuronpedia export "));
    let source = model.source("res-jb").expect("source");
    assert_eq!((source.info.n_layers, source.info.units_per_layer), (12, 4097));
    drop(stored);

    let again = run(&db, DatasetLocation::Directory(root), &neuronpedia());
    assert_eq!((again.already_imported, again.imported, again.units_written), (3, 0, 0), "{again:?}");
    assert_eq!(again.failures.len(), 2);
}

/// Over HTTP: a 503 and a truncated body are retried; an explanation of another origin stays
/// beside the imported one.
#[test]
fn neuronpedia_export_over_http_with_faults_beside_existing_explanations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("export");
    write_export(&root);
    let db = dir.path().join("db.sqlite");
    {
        let mut writer = StoreLocation::SqliteFile(db.clone()).open_writer(EncodeOptions::STANDARD).expect("writer");
        let metadata = ModelMetadata {
            name: "gpt2-small".to_owned(),
            architecture: "gpt2".to_owned(),
            n_layers: 12,
            d_mlp: 3072,
            d_model: 768,
            activation_function: "gelu".to_owned(),
            dataset: "recorded".to_owned(),
            training_dataset: None,
            n_parameters: 1,
            context_length: 1024,
            provenance: Provenance {
                data_source: "test".to_owned(),
                model_source: None,
                weights: None,
                tokens_recorded: 0,
                tool_version: "0".to_owned(),
                recorded_at: "2026-01-01T00:00:00Z".to_owned(),
            },
        };
        let (model_id, _) = writer.add_model(&metadata).expect("model");
        let info = SourceInfo { name: "res-jb".to_owned(), n_layers: 12, units_per_layer: 8192 };
        let source_id = writer.add_source(model_id, &info).expect("source");
        let mut batch = writer.batch().expect("batch");
        let existing = Explanation {
            text: "soldiers".to_owned(),
            origin: "openai".to_owned(),
            author: Some("gpt-4".to_owned()),
            ..Explanation::default()
        };
        let record = NeuronRecord::Explanations(Explanations { explanations: vec![existing] });
        batch.put_neuron(source_id, 6, 0, &record).expect("put");
        batch.commit().expect("commit");
        writer.finish().expect("finish");
    }
    let server = FixtureServer::serve(&root).expect("serve");
    server.set_fault("features/batch-0.jsonl.gz", Fault::Status { status: 503, times: 2 });
    server.set_fault("activations/batch-2.jsonl.gz", Fault::Truncated { times: 1 });
    let summary = run(&db, DatasetLocation::Http(server.url()), &neuronpedia());
    assert_eq!((summary.imported, summary.missing, summary.failures.len()), (2, 1, 2), "{summary:?}");
    assert!(summary.fetch.retries >= 3, "{:?}", summary.fetch);
    assert_eq!(server.requests_for("activations/batch-2.jsonl.gz"), 2);

    let stored = Stored::open(&db, "gpt2-small", "res-jb");
    check_export(&stored);
    let Some(NeuronRecord::Explanations(explanations)) = stored.record(6, 0, NeuronDataKind::Explanations) else {
        panic!("no explanations")
    };
    let origins: Vec<_> = explanations.explanations.iter().map(|e| (e.origin.as_str(), e.text.as_str())).collect();
    assert_eq!(origins, [("openai", "soldiers"), ("neuronpedia", "military units")]);
    let model = stored.store.catalog().model("gpt2-small").expect("model");
    assert_eq!(model.metadata.architecture, "gpt2", "an existing model keeps its metadata");
}

/// A SAEDashboard activation entry.
fn dashboard_activation(bin: (f64, f64), tokens: &[&str], values: &[f64], qualifying: Option<u32>) -> Value {
    let mut entry = json!({"bin_min": bin.0, "bin_max": bin.1, "bin_contains": -1, "tokens": tokens, "values": values,
        "dfa_values": [], "dfa_maxValue": 0.0, "dfa_targetIndex": 0});
    if let Some(index) = qualifying {
        entry["qualifying_token_index"] = json!(index);
    }
    entry
}

fn dashboard_feature(index: u32, activations: Vec<Value>) -> Value {
    json!({"feature_index": index, "neuron_alignment_indices": [1], "neuron_alignment_values": [0.1],
        "neuron_alignment_l1": [0.1], "correlated_neurons_indices": [], "correlated_neurons_l1": [],
        "correlated_neurons_pearson": [], "correlated_features_indices": [0], "correlated_features_l1": [0.0],
        "correlated_features_pearson": [0.0], "neg_str": ["sequence"], "neg_values": [-0.707],
        "pos_str": [" Brigade", " brigade"], "pos_values": [3.753, 3.063], "frac_nonzero": 0.0002,
        "freq_hist_data_bar_values": [0.1], "freq_hist_data_bar_heights": [47], "logits_hist_data_bar_heights": [5],
        "logits_hist_data_bar_values": [-0.6], "num_tokens_for_dashboard": 5000, "n_prompts_total": 24576,
        "n_tokens_in_prompt": 128, "dataset": "Skylion007/openwebtext", "decoder_weights_dist": [],
        "activations": activations})
}

/// batch-0 and batch-3 good, batch-1 malformed, batch-2 missing, and dead feature 9.
fn write_dashboard(root: &Path) {
    std::fs::create_dir_all(root).expect("mkdir");
    let batch0 = json!({"model_id": "gpt2-small", "layer": 0, "sae_set": "res-jb", "features": [
        dashboard_feature(0, vec![
            dashboard_activation((-1.0, 2.214), &["\n", " brigade", "."], &[0.0, 2.214, 0.0], None),
            dashboard_activation((0.5, 1.2), &[" Brig", "ade\u{0}"], &[0.0, 0.9], Some(1)),
        ]),
        dashboard_feature(1, vec![]),
    ]});
    std::fs::write(root.join("batch-0.json"), batch0.to_string()).expect("write");
    std::fs::write(root.join("batch-1.json"), "{\"model_id\": \"gpt2-small\", \"layer\": 0, \"features\": [")
        .expect("write");
    let batch3 = json!({"model_id": "gpt2-small", "layer": "0", "sae_set": "res-jb", "features": [
        dashboard_feature(7, vec![dashboard_activation((-1.0, 1.0), &[" x"], &[1.0], Some(0))]),
    ]});
    std::fs::write(root.join("batch-3.json"), batch3.to_string()).expect("write");
    std::fs::write(
        root.join("skipped_indexes.json"),
        "{\"model_id\": \"gpt2-small\", \"layer\": \"0\", \"sae_set\": \"res-jb\", \"log_sparsity\": 1, \"skipped_indexes\": [9]}",
    )
    .expect("write");
}

fn check_dashboard(db: &Path) {
    let stored = Stored::open(db, "gpt2-small", "res-jb");
    let Some(NeuronRecord::Examples(examples)) = stored.record(0, 0, NeuronDataKind::Examples) else {
        panic!("no examples")
    };
    assert_eq!(examples.groups.len(), 2);
    assert_eq!(examples.groups[0].kind, ExampleGroupKind::Top);
    let top = &examples.groups[0].examples[0];
    assert_eq!(stored.shown(&top.tokens), displayed(&["\n", " brigade", "."]));
    assert_eq!((top.max_token_index, top.dataset_index), (1, 0), "the largest value, as no index is given");
    assert!(close(&top.activations, &[0.0, 2.214, 0.0]));
    assert_eq!(examples.groups[1].kind, ExampleGroupKind::Quantile { band: 0, lower: 0.5, upper: 1.2 });
    assert_eq!(stored.shown(&examples.groups[1].examples[0].tokens), displayed(&[" Brig", "ade"]));
    let Some(NeuronRecord::Logits(logits)) = stored.record(0, 1, NeuronDataKind::Logits) else { panic!("no logits") };
    let top: Vec<_> = logits.top.iter().map(|t| t.token).collect();
    assert_eq!(stored.shown(&top), displayed(&[" Brigade", " brigade"]));
    assert_eq!(logits.top.iter().map(|t| t.value).collect::<Vec<_>>(), vec![3.753, 3.063]);
    assert_eq!(logits.bottom[0].value, -0.707);
    assert!(stored.record(0, 1, NeuronDataKind::Examples).is_none());
    assert!(stored.record(0, 7, NeuronDataKind::Examples).is_some());
    let model = stored.store.catalog().model("gpt2-small").expect("model");
    assert_eq!((model.metadata.n_layers, model.metadata.d_mlp), (0, 0), "the runner does not say");
    assert_eq!(model.metadata.dataset, "Skylion007/openwebtext");
    let source = model.source("res-jb").expect("source");
    assert_eq!((source.info.n_layers, source.info.units_per_layer), (1, 10), "dead feature 9 counted");
}

/// SAEDashboard batches from a directory, then from a server with a 503 and a truncated body.
#[test]
fn saedashboard_batches_from_a_directory_and_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("dash");
    write_dashboard(&root);
    let db = dir.path().join("db.sqlite");
    let summary = run(&db, DatasetLocation::Directory(root.clone()), &saedashboard());
    assert_eq!((summary.items, summary.imported, summary.missing), (4, 2, 1), "{summary:?}");
    assert_eq!(summary.failures.len(), 1);
    assert_eq!(summary.failures[0].key, "batch-1.json");
    assert!(summary.failures[0].reason.contains("batch-1.json: EOF"), "{:?}", summary.failures);
    check_dashboard(&db);
    let again = run(&db, DatasetLocation::Directory(root.clone()), &saedashboard());
    assert_eq!((again.already_imported, again.imported, again.units_written), (3, 0, 0), "{again:?}");

    let db = dir.path().join("served.sqlite");
    let server = FixtureServer::serve(&root).expect("serve");
    server.set_fault("batch-0.json", Fault::Status { status: 503, times: 1 });
    server.set_fault("batch-3.json", Fault::Truncated { times: 1 });
    let summary = run(&db, DatasetLocation::Http(server.url()), &saedashboard());
    assert_eq!((summary.imported, summary.missing, summary.failures.len()), (2, 1, 1), "{summary:?}");
    assert!(summary.fetch.retries >= 2, "{:?}", summary.fetch);
    check_dashboard(&db);
}

/// A second layer of the same SAE set, imported later, widens the source instead of failing.
#[test]
fn a_later_layer_grows_the_sae_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite");
    for (layer, width) in [(0u32, 3u32), (2, 12)] {
        let root = dir.path().join(format!("layer{layer}"));
        std::fs::create_dir_all(&root).expect("mkdir");
        let features: Vec<Value> = (0..width)
            .map(|index| {
                dashboard_feature(index, vec![dashboard_activation((-1.0, 1.0), &[" x", " y"], &[0.5, 1.0], Some(1))])
            })
            .collect();
        let batch = json!({"model_id": "gpt2-small", "layer": layer, "sae_set": "res-jb", "features": features});
        std::fs::write(root.join("batch-0.json"), batch.to_string()).expect("write");
        let summary = run(&db, DatasetLocation::Directory(root), &saedashboard());
        assert_eq!((summary.imported, summary.failures.len()), (1, 0), "{summary:?}");
    }
    let stored = Stored::open(&db, "gpt2-small", "res-jb");
    let model = stored.store.catalog().model("gpt2-small").expect("model");
    let source = model.source("res-jb").expect("source");
    assert_eq!((source.info.n_layers, source.info.units_per_layer), (3, 12));
    assert!(stored.record(0, 2, NeuronDataKind::Examples).is_some());
    assert!(stored.record(2, 11, NeuronDataKind::Examples).is_some());
}
