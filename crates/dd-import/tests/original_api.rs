//! The original DeepDecipher API importer against files laid out as the original's routes
//! (`api/{model}/{service}/{layer}/{neuron}`, answered as the original answers them), served by
//! the fixture server with gaps, malformed answers and server errors, then read back from SQLite.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use dd_data::{ModelDataKind, ModelRecord, NeuronDataKind, NeuronRecord};
use dd_import::formats::original_api::OriginalApiImporter;
use dd_import::testing::{Fault, FixtureServer};
use dd_import::{DatasetLocation, FetchConfig, Fetcher, ImportJob, ImportRequest, ImportSummary, Importer, run_import};
use dd_store::{ReadConfig, SqliteStore, StoreLocation, StoreRead};
use serde_json::{Value, json};

const MODEL: &str = "toy-2l";

fn metadata(name: &str, services: &[&str]) -> Value {
    json!({
        "activation_function": "GELU", "available_services": services, "dataset": "The Pile",
        "layer_size": 5, "name": name, "num_layers": 2, "num_total_neurons": 10, "num_total_parameters": 1_234_567
    })
}

fn all_services() -> Value {
    metadata(MODEL, &["metadata", "neuroscope", "neuron_explainer", "neuron2graph", "neuron2graph-search"])
}

/// A neuroscope page with the given texts as (data index, tokens, activations, max index).
fn neuroscope(layer: u32, neuron: u32, texts: &[(u64, &[&str], &[f32], u32)]) -> Value {
    let texts: Vec<Value> = texts
        .iter()
        .map(|(data_index, tokens, activations, max_index)| {
            json!({
                "activations": activations, "data_index": data_index, "max_activating_token_index": max_index,
                "max_activation": 2.0, "max_range": 2.0, "min_activation": -0.5, "min_range": -2.0, "tokens": tokens
            })
        })
        .collect();
    json!({"data": {"neuron_index": {"layer": layer, "neuron": neuron}, "texts": texts}, "metadata": all_services()})
}

fn write_server(root: &Path) {
    let write = |path: &str, body: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write");
    };
    let page = |service: &str, layer: u32, neuron: u32| format!("api/{MODEL}/{service}/{layer}/{neuron}");
    write(&format!("api/{MODEL}/metadata"), &json!({"data": all_services(), "metadata": all_services()}).to_string());

    let text: (u64, &[&str], &[f32], u32) = (17, &["<|endoftext|>", " she", " said"], &[0.0, 2.0, -0.5], 1);
    write(&page("neuroscope", 0, 0), &neuroscope(0, 0, &[text, (3, &[" x"], &[1.0], 0)]).to_string());
    write(
        &page("neuron_explainer", 0, 0),
        &json!({"data": {"explanation": "pronouns after quotes", "score": 0.42}, "metadata": null}).to_string(),
    );
    let graph = json!({"data": {
        "graph": {"graph": [
            {"importance": 1.0, "required": [], "token": "\"she\""},
            {"importance": 0.5, "required": [0], "token": "\"\\\"\""},
            {"importance": 0.25, "required": [0, 1], "token": "\" said\""}
        ], "subgraph_indices": [0, 0, 1]},
        "graphviz": "digraph {}",
        "similar": [{"layer": 1, "neuron": 2, "similarity": 0.5}, {"layer": 0, "neuron": 3, "similarity": 0.9}]
    }, "metadata": all_services()});
    write(&page("neuron2graph", 0, 0), &graph.to_string());

    // 0/1: examples only; the explainer lacks the data type, the graph is a 404.
    write(&page("neuroscope", 0, 1), &neuroscope(0, 1, &[text]).to_string());
    write(
        &page("neuron_explainer", 0, 1),
        &json!({"missing_data_types": ["neuron_explainer"], "metadata": all_services()}).to_string(),
    );
    // 0/2: nothing anywhere. 0/3: a graph with a node pointing past the end.
    write(
        &page("neuron2graph", 0, 3),
        &json!({"data": {"graph": {"graph": [{"importance": 1.0, "required": [5], "token": "\"a\""}], "subgraph_indices": [0]}, "graphviz": "", "similar": []}})
            .to_string(),
    );
    // 1/0: cut off. 1/1: the explainer fails every time. 1/2: another neuron's page. 1/3: more
    // activations than tokens.
    let full = neuroscope(1, 0, &[text]).to_string();
    write(&page("neuroscope", 1, 0), &full[..full.len() / 2]);
    write(&page("neuroscope", 1, 1), &neuroscope(1, 1, &[text]).to_string());
    // Its `all` answer says the explainer has no data for it: a gap, and its examples are kept.
    let all = |service: &str, error: &str| {
        json!({"metadata": {"data": all_services()}, service: {"error": error}, "neuron2graph-search": {"error": "x"}})
            .to_string()
    };
    write(
        &format!("api/{MODEL}/all/1/1"),
        &all(
            "neuron_explainer",
            "No neuron explainer page exists for neuron l1n1 in model 'toy-2l' and fetching from source failed.\n\n\
             Caused by:\n    0: error sending request for url (https://openaipublic.blob.core.windows.net/x)",
        ),
    );
    // 0/4: the graph's 500 is a real fault of the server, which `all` names. 1/4: a 500 and no
    // `all` answer.
    write(&page("neuroscope", 0, 4), &neuroscope(0, 4, &[text]).to_string());
    write(
        &format!("api/{MODEL}/all/0/4"),
        &all(
            "neuron2graph",
            "Failed to unpack neuron2graph graph for neuron l0n4 in model 'toy-2l'.\n\nCaused by:\n  bad",
        ),
    );
    write(&page("neuroscope", 1, 4), &neuroscope(1, 4, &[text]).to_string());
    write(&page("neuroscope", 1, 2), &neuroscope(0, 2, &[text]).to_string());
    write(&page("neuroscope", 1, 3), &neuroscope(1, 3, &[(1, &[" a"], &[1.0, 2.0], 0)]).to_string());
}

fn job(url: String) -> ImportJob {
    let mut job = ImportJob::new(DatasetLocation::Http(url));
    job.fetch = FetchConfig { retry_delay: Duration::from_millis(2), max_retries: 2, ..FetchConfig::default() };
    job.workers = 3;
    job.commit_every = 2;
    job.model_name = Some(MODEL.to_owned());
    job
}

fn import(database: &Path, job: &ImportJob) -> ImportSummary {
    let stop = AtomicBool::new(false);
    run_import(&StoreLocation::SqliteFile(database.to_owned()), &OriginalApiImporter::default(), job, &stop, &|_| {})
        .expect("import runs")
}

fn record(store: &SqliteStore, layer: u32, neuron: u32, kind: NeuronDataKind) -> Option<NeuronRecord> {
    let model = store.catalog().model(MODEL).expect("model");
    store.neuron_record(&model.sources[0], layer, neuron, kind).expect("read")
}

fn check_database(database: &Path) {
    let store = SqliteStore::open(database, &ReadConfig::serving()).expect("open");
    let model = store.catalog().model(MODEL).expect("model");
    let metadata = &model.metadata;
    assert_eq!((metadata.n_layers, metadata.d_mlp, metadata.n_parameters), (2, 5, 1_234_567));
    assert_eq!((metadata.activation_function.as_str(), metadata.dataset.as_str()), ("gelu", "The Pile"));
    assert!(metadata.provenance.data_source.starts_with("DeepDecipher API (http://127.0.0.1:"));
    let Some(ModelRecord::Vocabulary(vocabulary)) =
        store.model_record(model, ModelDataKind::Vocabulary).expect("vocabulary")
    else {
        panic!("no vocabulary")
    };

    let Some(NeuronRecord::Examples(examples)) = record(&store, 0, 0, NeuronDataKind::Examples) else {
        panic!("0/0 has no examples")
    };
    let top = examples.top().expect("top group");
    assert_eq!(top.examples.len(), 2);
    let first = &top.examples[0];
    let shown: Vec<&str> = first.tokens.iter().map(|&id| vocabulary.tokens[id as usize].as_str()).collect();
    assert_eq!(shown, ["<|endoftext|>", "·she", "·said"]);
    assert_eq!((first.dataset_index, first.max_token_index), (17, 1));
    for (actual, expected) in first.activations.iter().zip([0.0, 2.0, -0.5]) {
        assert!((actual - expected).abs() < 0.02, "{:?}", first.activations);
    }
    assert_eq!((top.examples[1].dataset_index, top.examples[1].tokens.len()), (3, 1));

    let Some(NeuronRecord::Explanations(explanations)) = record(&store, 0, 0, NeuronDataKind::Explanations) else {
        panic!("0/0 has no explanation")
    };
    let [explanation] = &explanations.explanations[..] else { panic!("{explanations:?}") };
    assert_eq!(explanation.text, "pronouns after quotes");
    assert_eq!((explanation.origin.as_str(), explanation.author.as_deref()), ("openai", Some("gpt-4")));
    assert!((explanation.score("ev_correlation_score").expect("score") - 0.42).abs() < 1e-3);

    let Some(NeuronRecord::Graph(graph)) = record(&store, 0, 0, NeuronDataKind::Graph) else { panic!("no graph") };
    assert_eq!(graph.subgraph_indices, [0, 0, 1]);
    let nodes: Vec<(&str, &[u32])> = graph.nodes.iter().map(|node| (node.token.as_str(), &node.required[..])).collect();
    assert_eq!(nodes, [("she", &[][..]), ("\"", &[0][..]), (" said", &[0, 1][..])]);
    assert!((graph.nodes[1].importance - 0.5).abs() < 0.01);
    let Some(NeuronRecord::Similar(similar)) = record(&store, 0, 0, NeuronDataKind::Similar) else {
        panic!("no similar neurons")
    };
    let neighbours: Vec<(u32, u32)> = similar.neurons.iter().map(|n| (n.layer, n.index)).collect();
    assert_eq!(neighbours, [(0, 3), (1, 2)]);
    assert!((similar.neurons[0].similarity - 0.9).abs() < 0.01);

    assert!(record(&store, 0, 1, NeuronDataKind::Examples).is_some());
    assert!(record(&store, 0, 1, NeuronDataKind::Explanations).is_none());
    assert!(record(&store, 0, 1, NeuronDataKind::Graph).is_none());
    let Some(NeuronRecord::Examples(gap_explained)) = record(&store, 1, 1, NeuronDataKind::Examples) else {
        panic!("1/1 lost its examples to the explainer's gap")
    };
    assert_eq!(gap_explained.top().expect("top").examples[0].dataset_index, 17);
    assert!(record(&store, 1, 1, NeuronDataKind::Explanations).is_none());
    for (layer, neuron) in [(0, 2), (0, 3), (0, 4), (1, 0), (1, 2), (1, 3), (1, 4)] {
        assert!(record(&store, layer, neuron, NeuronDataKind::Examples).is_none(), "{layer}/{neuron}");
    }
}

/// Full neurons, partial ones, gaps, malformed and inconsistent answers and server errors; then a
/// rerun that asks again only for the neurons that failed.
#[test]
fn a_model_is_mirrored_and_failures_are_retried_by_a_rerun() {
    let root = tempfile::tempdir().expect("tempdir");
    write_server(root.path());
    let server = FixtureServer::serve(root.path()).expect("serve");
    for path in ["neuron_explainer/1/1", "neuron2graph/0/4", "neuron2graph/1/4"] {
        server.set_fault(&format!("api/{MODEL}/{path}"), Fault::Status { status: 500, times: 1000 });
    }
    server.set_fault(&format!("api/{MODEL}/neuroscope/0/0"), Fault::Status { status: 503, times: 1 });
    server.set_fault(&format!("api/{MODEL}/neuron2graph/0/0"), Fault::Truncated { times: 1 });
    let database_dir = tempfile::tempdir().expect("tempdir");
    let database = database_dir.path().join("db.sqlite");
    let job = job(server.url());

    let summary = import(&database, &job);
    assert_eq!((summary.items, summary.imported, summary.missing), (10, 3, 1), "{summary:?}");
    let failures: Vec<(&str, &str)> =
        summary.failures.iter().map(|failure| (failure.key.as_str(), failure.reason.as_str())).collect();
    let expected = [
        ("toy-2l/0/3", "neuron2graph: the graph is inconsistent"),
        ("toy-2l/0/4", "neuron2graph: "),
        ("toy-2l/1/0", "neuroscope: malformed JSON"),
        ("toy-2l/1/2", "neuroscope: the page is about neuron 0/2, not 1/2"),
        ("toy-2l/1/3", "neuroscope: the texts are inconsistent"),
        ("toy-2l/1/4", "neuron2graph: "),
    ];
    assert_eq!(failures.len(), expected.len(), "{failures:?}");
    for ((key, reason), (expected_key, expected_reason)) in failures.iter().zip(expected) {
        assert_eq!(*key, expected_key);
        assert!(reason.starts_with(expected_reason), "{key}: {reason}");
    }
    assert!(
        failures[1].1.contains("status 500")
            && failures[1]
                .1
                .ends_with("the server says: Failed to unpack neuron2graph graph for neuron l0n4 in model 'toy-2l'."),
        "{}",
        failures[1].1
    );
    assert!(failures[5].1.contains("status 500") && !failures[5].1.contains("server says"), "{}", failures[5].1);
    // Only the services the model lists are asked for.
    assert_eq!(server.requests_for(&format!("api/{MODEL}/neuron2graph-search/0/0")), 0);
    check_database(&database);

    let done: Vec<String> = ["0/0", "0/1", "0/2", "1/1"]
        .iter()
        .flat_map(|unit| ["neuroscope", "neuron_explainer", "neuron2graph"].map(|s| format!("api/{MODEL}/{s}/{unit}")))
        .collect();
    let before: Vec<usize> = done.iter().map(|path| server.requests_for(path)).collect();
    let rerun = import(&database, &job);
    assert_eq!((rerun.already_imported, rerun.imported, rerun.failures.len()), (4, 0, 6), "{rerun:?}");
    assert_eq!(server.requests_for(&format!("api/{MODEL}/all/1/1")), 1);
    assert_eq!(done.iter().map(|path| server.requests_for(path)).collect::<Vec<_>>(), before);
    check_database(&database);
}

/// Without the model's own route the list at `/api` is read; a model that is not there, or a
/// choice among several left open, or a model without per-neuron services, is refused by name.
#[test]
fn the_model_list_finds_and_refuses_models() {
    let root = tempfile::tempdir().expect("tempdir");
    let list = json!({"models": [
        all_services(),
        metadata("search-only", &["metadata", "neuron2graph-search"]),
    ]});
    std::fs::write(root.path().join("api"), list.to_string()).expect("write");
    let server = FixtureServer::serve(root.path()).expect("serve");
    let fetcher = Fetcher::new(DatasetLocation::Http(server.url()), FetchConfig::default());
    let request = |model: Option<&str>| ImportRequest {
        model_name: model.map(str::to_owned),
        layers: Some(vec![1]),
        units_per_layer: Some(2),
    };

    let plan = OriginalApiImporter::default().plan(&fetcher, &request(Some(MODEL))).expect("found in the list");
    let keys: Vec<&str> = plan.items.iter().map(|item| item.key.as_str()).collect();
    assert_eq!(keys, ["toy-2l/1/0", "toy-2l/1/1"]);
    assert_eq!((plan.metadata.n_layers, plan.metadata.d_mlp), (2, 5));
    assert_eq!(server.requests_for(&format!("api/{MODEL}/metadata")), 1);

    let error = OriginalApiImporter::new(Some("other")).plan(&fetcher, &request(None)).expect_err("unknown");
    assert!(error.to_string().contains("choose one of [\"toy-2l\", \"search-only\"]"), "{error}");
    let error = OriginalApiImporter::default().plan(&fetcher, &request(None)).expect_err("ambiguous");
    assert!(error.to_string().contains("choose one of"), "{error}");
    let error = OriginalApiImporter::new(Some("search-only")).plan(&fetcher, &request(None)).expect_err("no services");
    assert!(error.to_string().contains("none of the per-neuron services"), "{error}");

    std::fs::write(root.path().join("api"), "{\"models\": [").expect("write");
    let error = OriginalApiImporter::default().plan(&fetcher, &request(None)).expect_err("malformed list");
    assert!(error.to_string().contains("malformed JSON"), "{error}");
}
