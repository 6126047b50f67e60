//! OpenAI's automated-interpretability layout, imported from a directory and from a fixture server
//! with faults, checked field by field against the fixture JSON read independently.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dd_data::{ExampleGroupKind, NeuronDataKind, NeuronRecord};
use dd_import::formats::openai::{OpenAiImporter, OpenAiModel, OpenAiPart};
use dd_import::testing::openai::{OpenAiFixture, write_openai_dataset};
use dd_import::testing::{Fault, FixtureServer};
use dd_import::{DatasetLocation, ImportEvent, ImportJob, ImportRequest, ImportSummary, run_import};
use dd_store::{ReadConfig, SqliteStore, StoreLocation, StoreRead};
use serde_json::Value;

fn small_fixture() -> OpenAiFixture {
    OpenAiFixture {
        top: 4,
        random: 3,
        quantiles: (3, 2),
        tokens_per_record: 16,
        simulated_sequences: 2,
        ..OpenAiFixture::realistic(2, 6)
    }
}

fn job(location: DatasetLocation) -> ImportJob {
    let mut job = ImportJob::new(location);
    job.request = ImportRequest { layers: Some(vec![0, 1]), units_per_layer: Some(6), ..ImportRequest::default() };
    job.fetch.retry_delay = Duration::from_millis(5);
    job.commit_every = 4;
    job
}

fn import(db: &Path, job: &ImportJob) -> ImportSummary {
    let importer = OpenAiImporter::new(OpenAiModel::Gpt2Small, OpenAiPart::ALL);
    run_import(&StoreLocation::SqliteFile(db.to_path_buf()), &importer, job, &AtomicBool::new(false), &|_| {})
        .expect("import runs")
}

fn open(db: &Path) -> SqliteStore {
    SqliteStore::open(db, &ReadConfig::serving_while_written()).expect("open")
}

fn record(store: &SqliteStore, layer: u32, index: u32, kind: NeuronDataKind) -> Option<NeuronRecord> {
    let model = store.catalog().model("gpt2-small").expect("model");
    store.neuron_record(&model.sources[0], layer, index, kind).expect("read")
}

fn read_json(root: &Path, path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root.join(path)).expect("fixture")).expect("fixture json")
}

fn vocabulary(store: &SqliteStore) -> Vec<String> {
    let model = store.catalog().model("gpt2-small").expect("model");
    match store.model_record(model, dd_data::ModelDataKind::Vocabulary).expect("read") {
        Some(dd_data::ModelRecord::Vocabulary(vocabulary)) => vocabulary.tokens,
        other => panic!("no vocabulary: {other:?}"),
    }
}

/// Every field of neuron 1/3 against the fixture files, read as plain JSON.
fn check_neuron(store: &SqliteStore, root: &Path) {
    let words = vocabulary(store);
    let text =
        |ids: &[u32]| ids.iter().map(|&id| words[id as usize].replace('·', " ").replace('↵', "\n")).collect::<Vec<_>>();
    let strings = |value: &Value| {
        value.as_array().expect("array").iter().map(|v| v.as_str().expect("str").to_owned()).collect::<Vec<_>>()
    };
    let floats = |value: &Value| {
        value.as_array().expect("array").iter().map(|v| v.as_f64().expect("number") as f32).collect::<Vec<_>>()
    };

    let published = read_json(root, "collated-activations/1/3.json");
    let Some(NeuronRecord::Examples(examples)) = record(store, 1, 3, NeuronDataKind::Examples) else {
        panic!("examples")
    };
    let top = &examples.groups[0];
    assert_eq!(top.kind, ExampleGroupKind::Top);
    let published_top = published["most_positive_activation_records"].as_array().expect("top");
    assert_eq!(top.examples.len(), published_top.len());
    for (example, published) in top.examples.iter().zip(published_top) {
        assert_eq!(text(&example.tokens), strings(&published["tokens"]));
        let want = floats(&published["activations"]);
        for (got, want) in example.activations.iter().zip(&want) {
            assert!((got - want).abs() <= example.activation_error + 1e-6, "{got} vs {want}");
        }
        let argmax = want.iter().enumerate().fold(0, |best, (i, &a)| if a > want[best] { i } else { best });
        assert_eq!(example.max_token_index as usize, argmax);
    }
    assert_eq!(examples.groups[1].kind, ExampleGroupKind::Random);
    assert_eq!(examples.groups[1].examples.len(), published["random_sample"].as_array().expect("random").len());
    let bands: Vec<_> =
        examples.groups.iter().filter(|g| matches!(g.kind, ExampleGroupKind::Quantile { .. })).collect();
    assert_eq!(bands.len(), 3);
    // Two published boundaries separate three bands: band 1 lies between them.
    let boundaries = floats(&published["quantile_boundaries"]);
    assert_eq!(bands[1].kind, ExampleGroupKind::Quantile { band: 1, lower: boundaries[0], upper: boundaries[1] });

    let Some(NeuronRecord::Stats(stats)) = record(store, 1, 3, NeuronDataKind::Stats) else { panic!("stats") };
    assert_eq!(stats.mean, published["mean"].as_f64().expect("mean"));
    assert_eq!(stats.kurtosis, published["kurtosis"].as_f64().expect("kurtosis"));
    let top_max = published_top.iter().flat_map(|r| floats(&r["activations"])).fold(f32::MIN, f32::max);
    assert_eq!(stats.max, f64::from(top_max));

    let line: Value = serde_json::from_str(
        std::fs::read_to_string(root.join("explanations/1/3.jsonl")).expect("fixture").lines().next().expect("line"),
    )
    .expect("json");
    let scored = &line["scored_explanations"][0];
    let Some(NeuronRecord::Explanations(explanations)) = record(store, 1, 3, NeuronDataKind::Explanations) else {
        panic!("explanations")
    };
    let explanation = &explanations.explanations[0];
    assert_eq!(explanation.text, scored["explanation"].as_str().expect("text").trim());
    assert_eq!((explanation.origin.as_str(), explanation.author.as_deref()), ("openai", Some("gpt-4")));
    for name in ["ev_correlation_score", "rsquared_score", "absolute_dev_explained_score"] {
        assert_eq!(
            explanation.score(name),
            Some(scored["scored_simulation"][name].as_f64().expect("score") as f32),
            "{name}"
        );
    }
    let sequences = scored["scored_simulation"]["scored_sequence_simulations"].as_array().expect("sequences");
    assert_eq!(explanation.simulations.len(), sequences.len());
    assert_eq!(text(&explanation.simulations[1].token_ids), strings(&sequences[1]["simulation"]["tokens"]));
    assert_eq!(
        explanation.simulations[1].simulated_activations,
        floats(&sequences[1]["simulation"]["expected_activations"])
    );
    assert_eq!(explanation.simulations[1].true_activations, floats(&sequences[1]["true_activations"]));

    let weights = read_json(root, "related-tokens/weight-based/1/3.json");
    let Some(NeuronRecord::Logits(logits)) = record(store, 1, 3, NeuronDataKind::Logits) else { panic!("logits") };
    assert_eq!(
        text(&logits.top.iter().map(|t| t.token).collect::<Vec<_>>()),
        strings(&weights["output_positive"]["tokens"])
    );
    assert_eq!(
        logits.bottom.iter().map(|t| t.value).collect::<Vec<_>>(),
        floats(&weights["output_negative"]["strengths"])
    );
    let Some(NeuronRecord::InputTokens(input)) = record(store, 1, 3, NeuronDataKind::InputTokens) else {
        panic!("input")
    };
    assert_eq!(input.top.iter().map(|t| t.value).collect::<Vec<_>>(), floats(&weights["input_positive"]["strengths"]));

    let lookup = read_json(root, "related-tokens/activation-based/1/3.json");
    let Some(NeuronRecord::ActivatingTokens(activating)) = record(store, 1, 3, NeuronDataKind::ActivatingTokens) else {
        panic!("activating")
    };
    let best = floats(&lookup["average_activations"]).into_iter().fold(f32::MIN, f32::max);
    assert_eq!(activating.tokens[0].mean, best);

    let related = read_json(root, "related-neurons/weight-based/1/3.json");
    let Some(NeuronRecord::Connections(connections)) = record(store, 1, 3, NeuronDataKind::Connections) else {
        panic!("connections")
    };
    let strongest = &connections.inputs[0];
    assert_eq!(
        format!("{}_{}", strongest.neuron.layer, strongest.neuron.index),
        related["c_fc"]["top_positive_neurons"][0].as_str().expect("name")
    );
    assert_eq!(strongest.weight, related["c_fc"]["top_positive_weights"][0].as_f64().expect("weight") as f32);
    assert_eq!(connections.outputs.len(), 10);
}

#[test]
fn a_directory_imports_field_by_field_and_a_rerun_skips_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    write_openai_dataset(&root, &small_fixture()).expect("fixture");
    // A gap the publisher left: no explanation for 0/2, nothing at all for 0/5.
    std::fs::remove_file(root.join("explanations/0/2.jsonl")).expect("rm");
    for part in [
        "collated-activations/0/5.json",
        "explanations/0/5.jsonl",
        "related-tokens/activation-based/0/5.json",
        "related-tokens/weight-based/0/5.json",
        "related-neurons/weight-based/0/5.json",
    ] {
        std::fs::remove_file(root.join(part)).expect("rm");
    }
    let db = dir.path().join("imported.db");
    let summary = import(&db, &job(DatasetLocation::Directory(root.clone())));
    assert_eq!(
        (summary.items, summary.imported, summary.missing, summary.failures.len()),
        (12, 11, 1, 0),
        "{summary:?}"
    );
    assert_eq!(summary.units_written, 11);
    let store = open(&db);
    check_neuron(&store, &root);
    assert!(record(&store, 0, 2, NeuronDataKind::Explanations).is_none());
    assert!(record(&store, 0, 2, NeuronDataKind::Examples).is_some());
    assert!(record(&store, 0, 5, NeuronDataKind::Examples).is_none());
    // Imported statistics rank the layers, as a recording would: the best are imported neurons.
    let model = store.catalog().model("gpt2-small").expect("model");
    let Some(dd_data::LayerRecord::Ranking(ranking)) =
        store.layer_record(&model.sources[0], 1, dd_data::LayerDataKind::Ranking).expect("read")
    else {
        panic!("layer 1 has a ranking")
    };
    assert_eq!(ranking.neurons.len(), 3_072);
    assert!(ranking.neurons[..6].iter().all(|ranked| ranked.neuron.index < 6), "{:?}", &ranking.neurons[..6]);
    assert!(ranking.neurons[0].score > 0.0);
    let layer_2 = store.layer_record(&model.sources[0], 2, dd_data::LayerDataKind::Ranking).expect("read");
    assert!(layer_2.is_none(), "a layer with nothing imported has no ranking");
    drop(store);

    let again = import(&db, &job(DatasetLocation::Directory(root.clone())));
    assert_eq!((again.already_imported, again.imported, again.units_written, again.fetch.requests), (12, 0, 0, 0));
}

#[test]
fn a_server_with_faults_is_retried_and_failures_are_collected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    write_openai_dataset(&root, &small_fixture()).expect("fixture");
    std::fs::write(
        root.join("collated-activations/0/4.json"),
        b"{\"most_positive_activation_records\": [{\"tokens\": [\"a\"]",
    )
    .expect("malformed");
    let server = FixtureServer::serve(&root).expect("serve");
    server.set_fault("collated-activations/1/3.json", Fault::Truncated { times: 1 });
    server.set_fault("explanations/1/3.jsonl", Fault::Status { status: 503, times: 2 });
    server.set_fault("explanations/1/1.jsonl", Fault::Status { status: 500, times: 1000 });
    server.set_fault("related-neurons/weight-based/0/0.json", Fault::Slow(Duration::from_millis(200)));
    let db = dir.path().join("imported.db");
    let summary = import(&db, &job(DatasetLocation::Http(server.url())));
    assert_eq!(summary.imported, 10, "{summary:?}");
    let keys: Vec<&str> = summary.failures.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["0/4", "1/1"]);
    assert!(summary.failures[0].reason.contains("not the published JSON"), "{}", summary.failures[0].reason);
    assert!(summary.failures[1].reason.contains("status 500"), "{}", summary.failures[1].reason);
    assert!(summary.fetch.retries >= 3 + 4, "{:?}", summary.fetch);
    check_neuron(&open(&db), &root);

    // The failed items are tried again next time, and nothing else is fetched.
    std::fs::write(
        root.join("collated-activations/0/4.json"),
        dd_import::testing::openai::collated_activations(&small_fixture(), 0, 4),
    )
    .expect("fix");
    server.set_fault("explanations/1/1.jsonl", Fault::Status { status: 500, times: 0 });
    let before = server.total_requests();
    let again = import(&db, &job(DatasetLocation::Http(server.url())));
    assert_eq!((again.already_imported, again.imported, again.failures.len()), (10, 2, 0), "{again:?}");
    assert_eq!(server.total_requests() - before, 2 * 5);
}

#[test]
fn a_stopped_import_resumes_with_nothing_lost_or_doubled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    write_openai_dataset(&root, &small_fixture()).expect("fixture");
    let db = dir.path().join("imported.db");
    let importer = OpenAiImporter::new(OpenAiModel::Gpt2Small, OpenAiPart::ALL);
    let stop = AtomicBool::new(false);
    let commits = AtomicUsize::new(0);
    let mut first_job = job(DatasetLocation::Directory(root.clone()));
    first_job.workers = 1;
    let location = StoreLocation::SqliteFile(db.clone());
    let first = run_import(&location, &importer, &first_job, &stop, &|event| {
        if let ImportEvent::Committed { .. } = event
            && commits.fetch_add(1, Ordering::SeqCst) == 0
        {
            stop.store(true, Ordering::SeqCst);
        }
    })
    .expect("first run");
    assert!(first.stopped && first.imported < 12, "{first:?}");
    let second = import(&db, &job(DatasetLocation::Directory(root.clone())));
    assert_eq!(second.already_imported + second.imported, 12, "{second:?}");
    assert!(second.already_imported >= 4);
    let store = open(&db);
    check_neuron(&store, &root);
    for layer in 0..2 {
        for index in 0..6 {
            let Some(NeuronRecord::Explanations(explanations)) =
                record(&store, layer, index, NeuronDataKind::Explanations)
            else {
                panic!("{layer}/{index}")
            };
            assert_eq!(explanations.explanations.len(), 1, "one explanation, not doubled");
        }
    }
}

#[test]
fn a_tokenizer_vocabulary_maps_tokens_and_counts_what_it_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    write_openai_dataset(&root, &small_fixture()).expect("fixture");
    let db = dir.path().join("imported.db");
    let mut with_vocabulary = job(DatasetLocation::Directory(root));
    // A tokenizer that knows every word of the fixture but " neuron".
    let known = [
        "·the", "·of", "·and", ",", ".", "·to", "·a", "·in", "↵", "·is", "·that", "·for", "·it", "·was", "·on",
        "·with", "·he", "·as", "·you", "·at", "·Paris", "ing", "·über", "é", "·1999", "\"", "·—", "·cat", "·dog",
        "words",
    ];
    with_vocabulary.vocabulary = Some(dd_data::Vocabulary { tokens: known.iter().map(|t| (*t).to_owned()).collect() });
    let summary = import(&db, &with_vocabulary);
    assert_eq!(summary.unmapped_tokens.0, 1, "{summary:?}");
    assert!(summary.unmapped_tokens.1 > 0);
    assert_eq!(summary.vocabulary_size, known.len() + 1);
    let words = vocabulary(&open(&db));
    assert_eq!(words[20], "·Paris");
    assert_eq!(words[known.len()], "·neuron");
}

/// Explanations first, then every part: the second import is not mistaken for the first.
#[test]
fn another_choice_of_parts_is_imported_not_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    write_openai_dataset(&root, &small_fixture()).expect("fixture");
    let db = dir.path().join("imported.db");
    let location = StoreLocation::SqliteFile(db.clone());
    let explanations_only = OpenAiImporter::new(OpenAiModel::Gpt2Small, &[OpenAiPart::Explanations]);
    let job = job(DatasetLocation::Directory(root.clone()));
    let first = run_import(&location, &explanations_only, &job, &AtomicBool::new(false), &|_| {}).expect("first");
    assert_eq!(first.imported, 12);
    assert!(record(&open(&db), 1, 3, NeuronDataKind::Examples).is_none());
    let second = import(&db, &job);
    assert_eq!((second.already_imported, second.imported), (0, 12), "{second:?}");
    let store = open(&db);
    check_neuron(&store, &root);
    let Some(NeuronRecord::Explanations(explanations)) = record(&store, 1, 3, NeuronDataKind::Explanations) else {
        panic!()
    };
    assert_eq!(explanations.explanations.len(), 1, "imported twice, stored once");
}

/// Records of kinds the database already has are kept and counted, unless the job replaces them;
/// explanations are merged either way, one per origin and author.
#[test]
fn stored_records_are_kept_unless_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("data");
    write_openai_dataset(&root, &small_fixture()).expect("fixture");
    let db = dir.path().join("imported.db");
    let location = StoreLocation::SqliteFile(db.clone());
    let activations = OpenAiImporter::new(OpenAiModel::Gpt2Small, &[OpenAiPart::Activations, OpenAiPart::Explanations]);
    let first = run_import(
        &location,
        &activations,
        &job(DatasetLocation::Directory(root.clone())),
        &AtomicBool::new(false),
        &|_| {},
    )
    .expect("first");
    // 12 neurons × examples, stats and explanations.
    assert_eq!(first.records_written, 36);
    // The same files from another folder are another dataset: nothing is skipped as done.
    let copy = dir.path().join("copy");
    std::fs::rename(&root, &copy).expect("move");
    let kept = run_import(
        &location,
        &activations,
        &job(DatasetLocation::Directory(copy.clone())),
        &AtomicBool::new(false),
        &|_| {},
    )
    .expect("kept");
    assert_eq!((kept.kept_existing, kept.records_written), (24, 12), "{kept:?}");
    let mut replacing = job(DatasetLocation::Directory(copy));
    replacing.replace = true;
    replacing.request.units_per_layer = Some(5);
    let replaced = run_import(&location, &activations, &replacing, &AtomicBool::new(false), &|_| {}).expect("replaced");
    assert_eq!((replaced.kept_existing, replaced.records_written), (0, 30), "{replaced:?}");
    let Some(NeuronRecord::Explanations(explanations)) = record(&open(&db), 1, 3, NeuronDataKind::Explanations) else {
        panic!("explanations")
    };
    assert_eq!(explanations.explanations.len(), 1);
}
