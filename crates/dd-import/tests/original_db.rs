//! The original DeepDecipher's `data.db`: a fixture written with the original's exact schema and
//! blobs from an independent postcard encoder plus Snappy, damaged blobs among them, imported into
//! a real database and read back field by field; then a resume that writes nothing new.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use dd_data::{ExampleGroupKind, GraphNode, ModelDataKind, ModelRecord, NeuronDataKind, NeuronIndex, NeuronRecord};
use dd_import::formats::original_db::OriginalDbImporter;
use dd_import::formats::{Format, FormatOptions, prepare};
use dd_import::testing::{Fault, FixtureServer};
use dd_import::{DatasetLocation, FetchConfig, ImportError, ImportJob, ImportSummary, run_import};
use dd_store::{ReadConfig, SqliteStore, StoreLocation, StoreRead};
use rusqlite::{Connection, params};

/// The original's tables, as `src/data/database/table_definitions.rs` creates them.
const TABLES: [&str; 7] = [
    "CREATE TABLE model (
        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, num_layers INTEGER NOT NULL,
        neurons_per_layer INTEGER NOT NULL, activation_function TEXT NOT NULL,
        num_total_parameters INTEGER NOT NULL, dataset TEXT NOT NULL
        CHECK (num_layers >= 0 AND neurons_per_layer >= 0 AND num_total_parameters >= 0)) STRICT;",
    "CREATE TABLE service (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
        provider BLOB NOT NULL) STRICT;",
    "CREATE TABLE data_type (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL, type_args BLOB NOT NULL) STRICT;",
    "CREATE TABLE model_data_type (model_id INTEGER NOT NULL, data_type_id INTEGER NOT NULL,
        FOREIGN KEY(model_id) REFERENCES model(id), FOREIGN KEY(data_type_id) REFERENCES data_type(id)
        UNIQUE(model_id, data_type_id))",
    "CREATE TABLE model_data (model_id INTEGER NOT NULL, data_type_id INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY(model_id, data_type_id), FOREIGN KEY(model_id) REFERENCES model(id),
        FOREIGN KEY(data_type_id) REFERENCES data_type(id)) STRICT;",
    "CREATE TABLE layer_data (model_id INTEGER NOT NULL, data_type_id INTEGER NOT NULL,
        layer_index INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(model_id, data_type_id, layer_index),
        FOREIGN KEY(model_id) REFERENCES model(id), FOREIGN KEY(data_type_id) REFERENCES data_type(id)
        CHECK (layer_index >= 0)) STRICT;",
    "CREATE TABLE neuron_data (model_id INTEGER NOT NULL, data_type_id INTEGER NOT NULL,
        layer_index INTEGER NOT NULL, neuron_index INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY(model_id, data_type_id, layer_index, neuron_index),
        FOREIGN KEY(model_id) REFERENCES model(id), FOREIGN KEY(data_type_id) REFERENCES data_type(id)
        CHECK (layer_index >= 0 AND neuron_index >= 0)) STRICT;",
];

/// Postcard 1.x as its specification writes it, for the fixture only.
#[derive(Default)]
struct Postcard(Vec<u8>);

impl Postcard {
    fn varint(&mut self, mut value: u64) -> &mut Self {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
        self
    }

    fn f32(&mut self, value: f32) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn str(&mut self, value: &str) -> &mut Self {
        self.varint(value.len() as u64);
        self.0.extend_from_slice(value.as_bytes());
        self
    }

    fn snapped(&self) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(&self.0).expect("compress")
    }
}

/// A neuroscope text of the fixture.
struct Text {
    data_index: u64,
    max_index: u32,
    tokens: Vec<&'static str>,
    activations: Vec<f32>,
}

fn neuroscope_page(layer: u32, neuron: u32, texts: &[Text]) -> Postcard {
    let mut page = Postcard::default();
    page.varint(layer.into()).varint(neuron.into()).varint(texts.len() as u64);
    for text in texts {
        let (min, max) = text.activations.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &a| (lo.min(a), hi.max(a)));
        page.f32(min).f32(max).f32(min).f32(max).varint(text.data_index).varint(text.max_index.into());
        page.varint(text.tokens.len() as u64);
        for token in &text.tokens {
            page.str(token);
        }
        page.varint(text.activations.len() as u64);
        for &activation in &text.activations {
            page.f32(activation);
        }
    }
    page
}

fn explainer_page(explanation: &str, score: f32) -> Postcard {
    let mut page = Postcard::default();
    page.str(explanation).f32(score);
    page
}

/// `Graph { subgraph_indices, graph: [Node { token, required, importance }] }`.
fn graph(subgraph_indices: &[u64], nodes: &[(&str, &[u64], f32)]) -> Postcard {
    let mut page = Postcard::default();
    page.varint(subgraph_indices.len() as u64);
    for &index in subgraph_indices {
        page.varint(index);
    }
    page.varint(nodes.len() as u64);
    for (token, required, importance) in nodes {
        page.str(token).varint(required.len() as u64);
        for &r in *required {
            page.varint(r);
        }
        page.f32(*importance);
    }
    page
}

fn similar(neighbours: &[(u32, u32, f32)]) -> Postcard {
    let mut list = Postcard::default();
    list.varint(neighbours.len() as u64);
    for &(layer, neuron, similarity) in neighbours {
        list.varint(layer.into()).varint(neuron.into()).f32(similarity);
    }
    list
}

/// `NeuronStore { layer_size, num_layers, activating, important }`, maps of token → neuron sets.
fn neuron_store(activating: &[(&str, &[(u32, u32)])], important: &[(&str, &[(u32, u32)])]) -> Postcard {
    let mut store = Postcard::default();
    store.varint(4).varint(2);
    for map in [activating, important] {
        store.varint(map.len() as u64);
        for (token, neurons) in map {
            store.str(token).varint(neurons.len() as u64);
            for &(layer, neuron) in *neurons {
                store.varint(layer.into()).varint(neuron.into());
            }
        }
    }
    store
}

const NEUROSCOPE: i64 = 1;
const EXPLAINER: i64 = 2;
const GRAPH: i64 = 3;
const STORE: i64 = 4;
const JSON: i64 = 5;
const MYSTERY: i64 = 6;

/// Two models; `orig-2l` has 2 layers × 4 neurons: 0/0 and 0/1 whole, 0/2 bad Snappy, 0/3 a page
/// claiming to be another neuron, 1/0 truncated postcard, 1/1 a lying node count, 1/2 a Snappy
/// header claiming 4 GiB, 1/3 nothing at all.
fn write_fixture(path: &Path, skip_table: Option<&str>) {
    let db = Connection::open(path).expect("create fixture");
    for sql in TABLES {
        if skip_table.is_some_and(|table| sql.starts_with(&format!("CREATE TABLE {table} "))) {
            continue;
        }
        db.execute_batch(sql).expect("table");
    }
    db.execute_batch(
        "INSERT INTO model VALUES (1, 'orig-2l', 2, 4, 'gelu', 1234, 'the pile');
         INSERT INTO model VALUES (2, 'other', 1, 1, 'solu', 10, 'c4');
         INSERT INTO data_type VALUES (1, 'neuroscope', 'Neuroscope', X'');
         INSERT INTO data_type VALUES (2, 'neuron_explainer', 'NeuronExplainer', X'');
         INSERT INTO data_type VALUES (3, 'neuron2graph', 'Neuron2Graph', X'');
         INSERT INTO data_type VALUES (4, 'neuron_store', 'NeuronStore', X'CDCCCC3E');
         INSERT INTO data_type VALUES (5, 'notes', 'Json', X'');
         INSERT INTO data_type VALUES (6, 'mystery', 'Mystery', X'');
         INSERT INTO model_data_type VALUES (1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 1);",
    )
    .expect("rows");
    db.execute("INSERT INTO model_data_type VALUES (1, ?)", [MYSTERY]).expect("unknown type");
    if skip_table == Some("neuron_data") {
        return;
    }
    let put = |data_type: i64, layer: u32, neuron: u32, blob: Vec<u8>| {
        db.execute("INSERT INTO neuron_data VALUES (1, ?, ?, ?, ?)", params![data_type, layer, neuron, blob])
            .expect("neuron row");
    };
    let texts = [
        Text {
            data_index: 77,
            max_index: 1,
            tokens: vec![" she", " said", "\n"],
            activations: vec![0.5, 2.25, -0.125],
        },
        Text { data_index: 3, max_index: 0, tokens: vec!["She", " the"], activations: vec![1.5, 0.0] },
    ];
    put(NEUROSCOPE, 0, 0, neuroscope_page(0, 0, &texts).snapped());
    put(EXPLAINER, 0, 0, explainer_page("pronoun \"she\"", 0.625).snapped());
    put(GRAPH, 0, 0, graph(&[0, 1], &[("\"she\"", &[], 1.0), ("\" said\"", &[0], 0.25)]).snapped());
    put(STORE, 0, 0, similar(&[(0, 1, 0.5), (1, 0, 0.75)]).0);
    // Json data the original itself cannot read back: never looked at.
    put(JSON, 0, 0, vec![0xde, 0xad]);

    put(NEUROSCOPE, 0, 1, neuroscope_page(0, 1, &texts[1..]).snapped());
    put(EXPLAINER, 0, 1, explainer_page("the", -0.5).snapped());

    let good = neuroscope_page(0, 2, &texts).snapped();
    put(NEUROSCOPE, 0, 2, good[..good.len() / 2].to_vec());
    put(NEUROSCOPE, 0, 3, neuroscope_page(1, 1, &texts).snapped());
    let mut truncated = explainer_page("cut short", 0.5);
    truncated.0.truncate(12);
    put(EXPLAINER, 1, 0, truncated.snapped());
    let mut lying = Postcard::default();
    lying.varint(0).varint(1_000_000).str("x").varint(0).f32(1.0);
    put(GRAPH, 1, 1, lying.snapped());
    put(NEUROSCOPE, 1, 2, vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);

    if skip_table != Some("model_data") {
        let store = neuron_store(&[(" She", &[(0, 0), (1, 1)]), ("she", &[(0, 2)])], &[("dog", &[(0, 0), (7, 7)])]);
        db.execute("INSERT INTO model_data VALUES (1, ?, ?)", params![STORE, store.snapped()]).expect("model row");
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    source: PathBuf,
    db: PathBuf,
}

fn fixture(skip_table: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("data.db");
    write_fixture(&source, skip_table);
    let db = dir.path().join("ours.db");
    Fixture { _dir: dir, source, db }
}

fn import(fixture: &Fixture, model_name: Option<&str>) -> Result<(ImportSummary, Vec<String>), ImportError> {
    let location = DatasetLocation::Directory(fixture.source.clone());
    let importer = OriginalDbImporter::open(&location)?;
    let mut job = ImportJob::new(location);
    job.model_name = model_name.map(str::to_owned);
    job.commit_every = 3;
    job.workers = 2;
    let summary =
        run_import(&StoreLocation::SqliteFile(fixture.db.clone()), &importer, &job, &AtomicBool::new(false), &|_| {})?;
    Ok((summary, importer.skipped()))
}

fn open(db: &Path) -> SqliteStore {
    SqliteStore::open(db, &ReadConfig::serving_while_written()).expect("open")
}

fn record(store: &SqliteStore, layer: u32, index: u32, kind: NeuronDataKind) -> Option<NeuronRecord> {
    let model = store.catalog().model("orig-2l").expect("model");
    store.neuron_record(&model.sources[0], layer, index, kind).expect("read")
}

/// Every field that the fixture wrote, read back from our database, and what was left out.
#[test]
fn every_kind_is_imported_field_by_field_and_bad_blobs_fail_their_neuron() {
    let fixture = fixture(None);
    let (summary, skipped) = import(&fixture, Some("orig-2l")).expect("import runs");
    assert_eq!((summary.items, summary.imported, summary.missing), (8, 2, 1));
    let failures: Vec<(&str, &str)> = summary.failures.iter().map(|f| (f.key.as_str(), f.reason.as_str())).collect();
    let expect_failure = |key: &str, words: &str| {
        let reason = failures.iter().find(|(k, _)| *k == key).map(|(_, r)| *r).unwrap_or("no failure");
        assert!(reason.contains(words), "{key}: {reason:?} lacks {words:?}");
    };
    assert_eq!(failures.len(), 5, "{failures:?}");
    expect_failure("0/2", "neuroscope page: not a Snappy raw block");
    expect_failure("0/3", "it says it is neuron 1/1");
    expect_failure("1/0", "neuron explainer page: postcard data ends at byte 12 inside score");
    expect_failure("1/1", "claims 1000000 items");
    expect_failure("1/2", "more than Snappy can expand to");
    assert!(skipped.iter().any(|s| s.contains("\"notes\" (Json)")), "{skipped:?}");
    assert!(skipped.iter().any(|s| s.contains("\"mystery\": unknown type \"Mystery\"")), "{skipped:?}");
    assert!(skipped.iter().any(|s| s.contains("1 neuron store entries outside")), "{skipped:?}");

    let store = open(&fixture.db);
    let model = store.catalog().model("orig-2l").expect("model");
    let metadata = &model.metadata;
    assert_eq!((metadata.n_layers, metadata.d_mlp, metadata.n_parameters), (2, 4, 1234));
    assert_eq!((metadata.activation_function.as_str(), metadata.dataset.as_str()), ("gelu", "the pile"));
    assert!(metadata.provenance.data_source.starts_with("original DeepDecipher database "));
    assert!(metadata.provenance.data_source.ends_with("data.db"));

    let vocabulary = match store.model_record(model, ModelDataKind::Vocabulary).expect("read") {
        Some(ModelRecord::Vocabulary(vocabulary)) => vocabulary.tokens,
        other => panic!("no vocabulary: {other:?}"),
    };
    let Some(NeuronRecord::Examples(examples)) = record(&store, 0, 0, NeuronDataKind::Examples) else {
        panic!("no examples for 0/0");
    };
    assert_eq!(examples.groups.len(), 1);
    assert_eq!(examples.groups[0].kind, ExampleGroupKind::Top);
    let want =
        [(77, 1, vec![" she", " said", "\n"], vec![0.5, 2.25, -0.125]), (3, 0, vec!["She", " the"], vec![1.5, 0.0])];
    for (example, (data_index, max_index, tokens, activations)) in examples.groups[0].examples.iter().zip(&want) {
        assert_eq!((example.dataset_index, example.max_token_index), (*data_index, *max_index));
        let texts: Vec<&str> = example.tokens.iter().map(|&id| vocabulary[id as usize].as_str()).collect();
        let shown: Vec<String> = tokens.iter().map(|t| dd_data::display_token(t.as_bytes())).collect();
        assert_eq!(texts, shown);
        assert_eq!(example.activations.len(), activations.len());
        for (got, want) in example.activations.iter().zip(activations) {
            assert!((got - want).abs() <= example.activation_error + 1e-6, "{got} vs {want}");
        }
    }
    assert_eq!(examples.groups[0].examples.len(), 2);

    let Some(NeuronRecord::Explanations(explanations)) = record(&store, 0, 0, NeuronDataKind::Explanations) else {
        panic!("no explanations for 0/0");
    };
    let [explanation] = explanations.explanations.as_slice() else { panic!("{explanations:?}") };
    assert_eq!(explanation.text, "pronoun \"she\"");
    assert_eq!((explanation.origin.as_str(), explanation.author.as_deref()), ("openai", Some("gpt-4")));
    assert_eq!(explanation.score("ev_correlation_score"), Some(0.625));

    let Some(NeuronRecord::Graph(graph)) = record(&store, 0, 0, NeuronDataKind::Graph) else {
        panic!("no graph for 0/0");
    };
    assert_eq!(graph.subgraph_indices, [0, 1]);
    let want_nodes = [
        GraphNode {
            token: "she".into(),
            token_id: None,
            required: vec![],
            importance: 1.0,
            activation: None,
            is_end: false,
        },
        GraphNode {
            token: " said".into(),
            token_id: None,
            required: vec![0],
            importance: 0.25,
            activation: None,
            is_end: false,
        },
    ];
    assert_eq!(graph.nodes, want_nodes);
    assert_eq!(graph.scores, None);

    let Some(NeuronRecord::Similar(similar)) = record(&store, 0, 0, NeuronDataKind::Similar) else {
        panic!("no similar neurons for 0/0");
    };
    let neighbours: Vec<(u32, u32, f32)> = similar.neurons.iter().map(|n| (n.layer, n.index, n.similarity)).collect();
    assert_eq!(neighbours, [(1, 0, 0.75), (0, 1, 0.5)], "most similar first");

    let Some(NeuronRecord::Explanations(second)) = record(&store, 0, 1, NeuronDataKind::Explanations) else {
        panic!("no explanations for 0/1");
    };
    assert_eq!(
        (second.explanations[0].text.as_str(), second.explanations[0].score("ev_correlation_score")),
        ("the", Some(-0.5))
    );
    assert_eq!(record(&store, 0, 1, NeuronDataKind::Graph), None);
    for (layer, index) in [(0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3)] {
        for kind in [NeuronDataKind::Examples, NeuronDataKind::Explanations, NeuronDataKind::Graph] {
            assert_eq!(record(&store, layer, index, kind), None, "{layer}/{index} {kind:?}");
        }
    }

    let Some(ModelRecord::TokenIndex(index)) = store.model_record(model, ModelDataKind::TokenIndex).expect("read")
    else {
        panic!("no token index");
    };
    let n = |layer, index| NeuronIndex { layer, index };
    let entries: Vec<(&str, &[NeuronIndex], &[NeuronIndex])> =
        index.entries.iter().map(|e| (e.token.as_str(), e.activating.as_slice(), e.important.as_slice())).collect();
    assert_eq!(entries, [("dog", &[][..], &[n(0, 0)][..]), ("she", &[n(0, 0), n(0, 2), n(1, 1)][..], &[][..])]);
}

/// A rerun skips what was done, writes nothing new and tries the failed neurons again.
#[test]
fn a_rerun_writes_nothing_new() {
    let fixture = fixture(None);
    let (first, _) = import(&fixture, Some("orig-2l")).expect("first run");
    assert!(first.records_written >= 6, "{first:?}");
    let (again, _) = import(&fixture, Some("orig-2l")).expect("second run");
    assert_eq!((again.already_imported, again.imported, again.missing), (3, 0, 0));
    assert_eq!((again.records_written, again.units_written), (0, 0));
    assert_eq!(again.failures.len(), 5);
}

/// The model is chosen by name, or is the only one; several without a name is refused by listing them.
#[test]
fn the_model_is_named_or_the_only_one() {
    let fixture = fixture(None);
    let error = import(&fixture, None).expect_err("several models refused").to_string();
    assert!(error.contains("several models (orig-2l, other)"), "{error}");
    let (summary, _) = import(&fixture, Some("other")).expect("the other model");
    assert_eq!((summary.model.as_str(), summary.items, summary.missing), ("other", 1, 1));
}

/// A file without the original's tables is refused by name; one without `model_data` is imported
/// without a token index; a URL is refused.
#[test]
fn missing_tables_and_urls_are_refused_clearly() {
    let fixture_without_neurons = fixture(Some("neuron_data"));
    let error = import(&fixture_without_neurons, Some("orig-2l")).expect_err("refused").to_string();
    assert!(error.contains("lacks the table(s) neuron_data"), "{error}");

    let fixture_without_store = fixture(Some("model_data"));
    let (summary, skipped) = import(&fixture_without_store, Some("orig-2l")).expect("imports");
    assert_eq!(summary.imported, 2);
    assert!(skipped.iter().any(|s| s.contains("has no neuron store")), "{skipped:?}");
    let store = open(&fixture_without_store.db);
    let model = store.catalog().model("orig-2l").expect("model");
    assert_eq!(store.model_record(model, ModelDataKind::TokenIndex).expect("read"), None);

    let url = DatasetLocation::parse("https://example.org/data.db");
    let error = OriginalDbImporter::open(&url).err().expect("refused").to_string();
    assert!(error.contains("local SQLite file") && error.contains("https://example.org/data.db"), "{error}");
    let options = FormatOptions {
        download_dir: Some(fixture_without_store.db.with_extension("missing")),
        ..FormatOptions::default()
    };
    let server = FixtureServer::serve(fixture_without_store.source.parent().expect("dir")).expect("serve");
    let error =
        prepare(Format::OriginalDb, &format!("{}/absent.db", server.url()), &options).err().expect("404").to_string();
    assert!(error.contains("absent.db: no such file"), "{error}");
    let directory = DatasetLocation::Directory(fixture_without_store.source.parent().expect("dir").to_path_buf());
    assert!(OriginalDbImporter::open(&directory).is_ok(), "a directory holding data.db");
}

/// The database given by URL is downloaded (past a truncated answer and a 503), kept beside the
/// output, and imports as the local file does.
#[test]
fn a_database_given_by_url_is_downloaded_and_imported() {
    let fixture = fixture(None);
    let served = fixture.source.parent().expect("dir");
    let server = FixtureServer::serve(served).expect("serve");
    server.set_fault("data.db", Fault::Truncated { times: 1 });
    let downloads = served.join("downloads");
    let options = FormatOptions {
        download_dir: Some(downloads.clone()),
        fetch: FetchConfig { retry_delay: std::time::Duration::from_millis(5), ..FetchConfig::default() },
        ..FormatOptions::default()
    };
    let (location, importer) =
        prepare(Format::OriginalDb, &format!("{}/data.db", server.url()), &options).expect("downloaded");
    assert_eq!(server.requests_for("data.db"), 2, "the truncated answer was retried");
    let DatasetLocation::Directory(local) = &location else { panic!("a local copy") };
    assert!(local.starts_with(&downloads));
    assert_eq!(std::fs::read(local).expect("copy"), std::fs::read(&fixture.source).expect("original"));
    let mut job = ImportJob::new(location.clone());
    job.model_name = Some("orig-2l".into());
    let downloaded_db = served.join("from-url.db");
    let summary = run_import(
        &StoreLocation::SqliteFile(downloaded_db.clone()),
        importer.as_ref(),
        &job,
        &AtomicBool::new(false),
        &|_| {},
    )
    .expect("import");
    let (local_summary, _) = import(&fixture, Some("orig-2l")).expect("local import");
    assert_eq!((summary.imported, summary.failures.len()), (local_summary.imported, local_summary.failures.len()));
    // Token ids depend on the order the workers met the strings: compare the tokens' texts.
    let with_texts = |db: &Path, layer: u32, index: u32, kind: NeuronDataKind| {
        let store = open(db);
        let model = store.catalog().model("orig-2l").expect("model").clone();
        let Some(ModelRecord::Vocabulary(vocabulary)) =
            store.model_record(&model, ModelDataKind::Vocabulary).expect("read")
        else {
            panic!("a vocabulary")
        };
        match record(&store, layer, index, kind) {
            Some(NeuronRecord::Examples(examples)) => {
                let texts: Vec<Vec<String>> = examples.groups[0]
                    .examples
                    .iter()
                    .map(|e| e.tokens.iter().map(|&id| vocabulary.tokens[id as usize].clone()).collect())
                    .collect();
                let values: Vec<Vec<f32>> = examples.groups[0].examples.iter().map(|e| e.activations.clone()).collect();
                format!("{texts:?} {values:?}")
            }
            other => format!("{other:?}"),
        }
    };
    for (layer, index) in [(0, 0), (0, 1), (1, 0)] {
        for kind in [NeuronDataKind::Examples, NeuronDataKind::Explanations, NeuronDataKind::Graph] {
            assert_eq!(with_texts(&downloaded_db, layer, index, kind), with_texts(&fixture.db, layer, index, kind));
        }
    }
    // A second run reads the kept copy: no request.
    let before = server.total_requests();
    prepare(Format::OriginalDb, &format!("{}/data.db", server.url()), &options).expect("kept copy");
    assert_eq!(server.total_requests(), before);
}
