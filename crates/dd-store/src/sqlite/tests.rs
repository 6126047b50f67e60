//! Tests of the SQLite backend on real database files.

use dd_data::*;
// Explicit, because both globs name a `Connection`: this file's is SQLite's.
use rusqlite::Connection;

use super::pool::immutable_uri;
use super::*;
use crate::codec::{EncodeOptions, EncodedNeuron};
use crate::{StoreLocation, StoreWrite};

fn metadata(name: &str) -> ModelMetadata {
    ModelMetadata {
        name: name.to_owned(),
        architecture: "synthetic".into(),
        n_layers: 2,
        d_mlp: 4,
        d_model: 8,
        activation_function: "gelu".into(),
        dataset: "test".into(),
        training_dataset: Some("the pile".into()),
        n_parameters: 5_000_000_000,
        context_length: 128,
        provenance: Provenance {
            data_source: "unit test".into(),
            model_source: Some("models/m.gguf".into()),
            weights: Some("GGUF Q4_1".into()),
            tokens_recorded: 1 << 40,
            tool_version: "0".into(),
            recorded_at: "2026-01-01T00:00:00Z".into(),
        },
    }
}

fn similar(layer: u32) -> NeuronRecord {
    NeuronRecord::Similar(SimilarNeurons { neurons: vec![SimilarNeuron { layer, index: 1, similarity: 0.5 }] })
}

fn read_config() -> ReadConfig {
    ReadConfig { n_connections: 2, cache_kib: 1024, mmap_bytes: 0, immutable: true }
}

#[test]
fn written_records_are_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let (model, source) = writer.add_model(&metadata("m1")).expect("add model");
    let mut batch = writer.batch().expect("batch");
    batch.put_neuron(source, 1, 3, &similar(7)).expect("put neuron");
    batch.put_layer(source, 0, &LayerRecord::Ranking(NeuronRanking::default())).expect("put layer");
    batch
        .put_model(model, &ModelRecord::Vocabulary(Vocabulary { tokens: vec!["a".into(), " b".into()] }))
        .expect("put model");
    assert_eq!(batch.n_records(), 3);
    batch.commit().expect("commit");
    drop(writer);

    let store = SqliteStore::open(&path, &read_config()).expect("open store");
    let entry = store.catalog().model("m1").expect("model in catalog");
    assert_eq!(entry.metadata, metadata("m1"), "u64 fields above 2^32 survive");
    let mlp = entry.source(MLP_SOURCE).expect("mlp source");
    assert_eq!(mlp.neuron_kinds, vec![NeuronDataKind::Similar]);
    assert_eq!(mlp.layer_kinds, vec![LayerDataKind::Ranking]);
    assert_eq!(entry.model_kinds, vec![ModelDataKind::Vocabulary]);
    assert_eq!(store.neuron_record(mlp, 1, 3, NeuronDataKind::Similar).expect("read"), Some(similar(7)));
    assert_eq!(store.neuron_record(mlp, 1, 2, NeuronDataKind::Similar).expect("read"), None);
    assert_eq!(store.neuron_record(mlp, 1, 3, NeuronDataKind::Stats).expect("read"), None);
    assert!(store.layer_record(mlp, 0, LayerDataKind::Ranking).expect("read").is_some());
    assert!(store.model_record(entry, ModelDataKind::Vocabulary).expect("read").is_some());
    let usage = store.usage(entry.id).expect("usage");
    assert_eq!(usage.len(), 3);
    assert!(usage.iter().all(|u| u.n_records == 1 && u.n_bytes > 4));
    assert!(check(&path, &mut |_, _| {}).expect("check").is_ok());
}

#[test]
fn uncommitted_batches_leave_no_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let (_, source) = writer.add_model(&metadata("m1")).expect("add model");
    let before = writer.catalog().expect("catalog").content_id().to_owned();
    {
        let mut batch = writer.batch().expect("batch");
        batch.put_neuron(source, 0, 0, &similar(1)).expect("put");
    }
    let store = SqliteStore::open(&path, &read_config()).expect("open store");
    let mlp = &store.catalog().model("m1").expect("model").sources[0];
    assert!(mlp.neuron_kinds.is_empty());
    assert_eq!(store.neuron_blob(mlp.id, 0, 0, NeuronDataKind::Similar).expect("read"), None);
    assert_eq!(store.catalog().content_id(), before, "content id changes only on commit");
}

#[test]
fn writer_rejects_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let (_, source) = writer.add_model(&metadata("m1")).expect("add model");
    assert!(matches!(writer.add_model(&metadata("m1")), Err(StoreError::ModelExists { .. })));
    assert!(matches!(writer.add_model(&metadata("bad/name")), Err(StoreError::InvalidData(_))));
    let mut batch = writer.batch().expect("batch");
    assert!(matches!(batch.put_neuron(source, 2, 0, &similar(0)), Err(StoreError::OutOfRange { what: "layer", .. })));
    assert!(matches!(batch.put_neuron(source, 1, 4, &similar(0)), Err(StoreError::OutOfRange { what: "unit", .. })));
    drop(batch);
    assert!(writer.delete_model("m1").expect("delete"));
    assert!(!writer.delete_model("m1").expect("delete again"));
    assert!(writer.catalog().expect("catalog").models().is_empty());
}

#[test]
fn foreign_files_and_newer_schemas_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not sqlite, just some text that is long enough to be read as a header....")
        .expect("write");
    assert!(matches!(SqliteStore::open(&text, &read_config()), Err(StoreError::NotADatabase { .. })));
    assert!(matches!(StoreWriter::open(&text, EncodeOptions::STANDARD), Err(StoreError::NotADatabase { .. })));

    let other = dir.path().join("other.db");
    Connection::open(&other).and_then(|c| c.execute_batch("CREATE TABLE t (x INTEGER);")).expect("other db");
    assert!(matches!(SqliteStore::open(&other, &read_config()), Err(StoreError::NotADatabase { .. })));

    let path = dir.path().join("data.db");
    drop(StoreWriter::open(&path, EncodeOptions::STANDARD).expect("create"));
    Connection::open(&path).and_then(|c| c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)).expect("bump");
    assert!(matches!(SqliteStore::open(&path, &read_config()), Err(StoreError::SchemaTooNew { .. })));

    let missing = dir.path().join("missing.db");
    assert!(matches!(SqliteStore::open(&missing, &read_config()), Err(StoreError::Missing { .. })));
    assert!(!missing.exists(), "a read-only open never creates a file");
}

#[test]
fn check_finds_corrupt_and_misplaced_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let (_, source) = writer.add_model(&metadata("m1")).expect("add model");
    let mut batch = writer.batch().expect("batch");
    batch.put_neuron(source, 0, 0, &similar(1)).expect("put");
    batch.commit().expect("commit");
    drop(writer);
    let conn = Connection::open(&path).expect("raw connection");
    conn.execute("UPDATE neuron_data SET data = x'01ff' WHERE unit = 0", []).expect("corrupt");
    let key = schema::neuron_key(source.0, 9, 0, 6).expect("key");
    conn.execute("INSERT INTO neuron_data VALUES (?1, ?2, 9, 0, 6, x'00')", [key, source.0]).expect("misplace");
    conn.execute("INSERT INTO neuron_data VALUES (5, ?1, 0, 1, 6, x'00')", [source.0]).expect("wrong id");
    drop(conn);
    let mut calls = 0;
    let report = check(&path, &mut |done, total| {
        calls += 1;
        assert!(done <= total);
    })
    .expect("check");
    assert!(calls > 0);
    assert!(!report.is_ok());
    assert_eq!(report.n_blobs, 3);
    assert_eq!(report.n_blob_errors, 5, "{:?}", report.blob_errors);
}

/// A finished database opens immutable even from a path with characters URIs must escape; one still
/// in WAL mode opens normally, so data only in the WAL is still seen.
#[test]
fn immutable_opens_are_only_used_on_finished_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("odd name?#%.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let (_, source) = writer.add_model(&metadata("m1")).expect("add model");
    let mut batch = writer.batch().expect("batch");
    batch.put_neuron(source, 0, 1, &similar(4)).expect("put");
    batch.commit().expect("commit");
    // Still in WAL mode with the writer open: the reader must see the committed neuron.
    let store = SqliteStore::open(&path, &read_config()).expect("open while writing");
    let mlp = store.catalog().model("m1").expect("model").sources[0].clone();
    assert_eq!(store.neuron_record(&mlp, 0, 1, NeuronDataKind::Similar).expect("read"), Some(similar(4)));
    drop(store);
    writer.finish().expect("finish");
    let store = SqliteStore::open(&path, &read_config()).expect("open finished");
    let mlp = store.catalog().model("m1").expect("model").sources[0].clone();
    assert_eq!(store.neuron_record(&mlp, 0, 1, NeuronDataKind::Similar).expect("read"), Some(similar(4)));
    assert!(immutable_uri(&path).expect("utf8").contains("odd%20name%3F%23%25.db"));
}

#[test]
fn neuron_keys_pack_without_overlap() {
    let key = |s, l, u, k| schema::neuron_key(s, l, u, k).expect("fits");
    assert_eq!(key(0, 0, 0, 0), 0);
    assert!(key(1, 0, 0, 0) > key(0, 4095, (1 << 28) - 1, 63));
    assert!(key(1, 1, 0, 0) > key(1, 0, (1 << 28) - 1, 63));
    let (low, high) = schema::source_key_range(7);
    assert!(low <= key(7, 0, 0, 0) && key(7, 4095, (1 << 28) - 1, 63) <= high);
    assert!(schema::neuron_key(1, 4096, 0, 0).is_none());
    assert!(schema::neuron_key(1, 0, 1 << 28, 0).is_none());
    assert!(schema::neuron_key(1, 0, 0, 64).is_none());
    assert!(schema::neuron_key(-1, 0, 0, 0).is_none());
    let (low, high) = schema::source_key_range(schema::MAX_SOURCE_ID);
    assert_eq!(high, i64::MAX, "the last source's range ends at the last id without overflow");
    assert!(low > 0);
}

#[test]
fn pool_serves_parallel_readers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let (_, source) = writer.add_model(&metadata("m1")).expect("add model");
    let mut batch = writer.batch().expect("batch");
    for layer in 0..2 {
        for index in 0..4 {
            batch.put_neuron(source, layer, index, &similar(layer * 10 + index)).expect("put");
        }
    }
    batch.commit().expect("commit");
    let store = std::sync::Arc::new(SqliteStore::open(&path, &read_config()).expect("open store"));
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mlp = store.catalog().model("m1").expect("model").sources[0].clone();
                for i in 0..200u32 {
                    let (layer, index) = ((i + t) % 2, i % 4);
                    let record = store.neuron_record(&mlp, layer, index, NeuronDataKind::Similar).expect("read");
                    assert_eq!(record, Some(similar(layer * 10 + index)));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().expect("reader thread"));
}

#[test]
fn model_state_round_trips_in_parts_and_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let (model, _) = writer.add_model(&metadata("m1")).expect("add model");
    let state: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut batch = writer.batch().expect("batch");
    batch.put_model_state_in_parts(model, "recorder", &[9; 50], 7).expect("first state");
    // Fewer parts than before: the old ones must not survive.
    batch.put_model_state_in_parts(model, "recorder", &state, 300).expect("state");
    batch.put_model_state(model, "other", &[]).expect("empty state");
    batch.commit().expect("commit");
    writer.finish().expect("finish");

    let store = SqliteStore::open(&path, &read_config()).expect("open store");
    let id = store.catalog().model("m1").expect("model").id;
    assert_eq!(store.model_state(id, "recorder").expect("read"), Some(state));
    assert_eq!(store.model_state(id, "other").expect("read"), Some(Vec::new()));
    assert_eq!(store.model_state(id, "absent").expect("read"), None);
    assert!(check(&path, &mut |_, _| {}).expect("check").is_ok());
}

/// A source grows to take units past its old shape, never shrinks, and refuses shapes the keys
/// cannot hold.
#[test]
fn sources_grow_but_never_shrink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let (model, _) = writer.add_model(&metadata("m1")).expect("add model");
    let sae = writer
        .add_source(model, &SourceInfo { name: "res-jb".into(), n_layers: 1, units_per_layer: 4 })
        .expect("add source");
    {
        let mut batch = writer.batch().expect("batch");
        assert!(batch.put_neuron(sae, 2, 9, &similar(2)).is_err(), "layer 2, unit 9 is outside 1 × 4");
    }
    writer.grow_source(sae, 3, 10).expect("grow");
    writer.grow_source(sae, 1, 2).expect("a smaller shape is no change");
    let mut batch = writer.batch().expect("batch");
    batch.put_neuron(sae, 2, 9, &similar(2)).expect("inside 3 × 10");
    batch.commit().expect("commit");
    assert!(writer.grow_source(sae, 1 << 40, 1).is_err());
    writer.finish().expect("finish");
    let store = SqliteStore::open(&path, &read_config()).expect("open store");
    let source = store.catalog().model("m1").expect("model").source("res-jb").expect("source").clone();
    assert_eq!((source.info.n_layers, source.info.units_per_layer), (3, 10));
}

#[test]
fn version_1_databases_gain_the_state_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let (_, source) = writer.add_model(&metadata("m1")).expect("add model");
    let mut batch = writer.batch().expect("batch");
    batch.put_neuron(source, 0, 1, &similar(3)).expect("put neuron");
    batch.commit().expect("commit");
    writer.finish().expect("finish");
    // Back to what version 1 wrote.
    let conn = Connection::open(&path).expect("open");
    conn.execute_batch(&format!("{DOWNGRADE_TO_2} DROP TABLE model_state; PRAGMA user_version = 1;"))
        .expect("downgrade");
    drop(conn);

    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("migrates");
    let model = writer.catalog().expect("catalog").model("m1").expect("model kept").id;
    let mut batch = writer.batch().expect("batch");
    batch.put_model_state(model, "recorder", b"state").expect("state table exists");
    batch.commit().expect("commit");
    writer.finish().expect("finish");
    let store = SqliteStore::open(&path, &read_config()).expect("open store");
    let entry = store.catalog().model("m1").expect("model");
    assert_eq!(store.neuron_record(&entry.sources[0], 0, 1, NeuronDataKind::Similar).expect("read"), Some(similar(3)));
    assert_eq!(store.model_state(entry.id, "recorder").expect("read"), Some(b"state".to_vec()));
}

/// Undoes version 3: the columns it added.
const DOWNGRADE_TO_2: &str = "ALTER TABLE model DROP COLUMN training_dataset; \
    ALTER TABLE model DROP COLUMN model_source; ALTER TABLE model DROP COLUMN weights; PRAGMA user_version = 2;";

/// Version 3 gives `dataset` the recorded text: the recorder's `unknown` becomes its data source,
/// any other dataset stays, and the new columns start unknown.
#[test]
fn version_2_databases_name_the_recorded_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let recorded = ModelMetadata { dataset: "unknown".into(), ..metadata("recorded") };
    writer.add_model(&recorded).expect("add model");
    writer.add_model(&metadata("imported")).expect("add model");
    writer.finish().expect("finish");
    let conn = Connection::open(&path).expect("open");
    conn.execute_batch(DOWNGRADE_TO_2).expect("downgrade");
    drop(conn);
    assert!(matches!(SqliteStore::open(&path, &read_config()), Err(StoreError::SchemaTooOld { found: 2, .. })));

    StoreWriter::open(&path, EncodeOptions::STANDARD).expect("migrates").finish().expect("finish");
    let store = SqliteStore::open(&path, &read_config()).expect("open store");
    let unknown_origin = |metadata: ModelMetadata| ModelMetadata {
        training_dataset: None,
        provenance: Provenance { model_source: None, weights: None, ..metadata.provenance },
        ..metadata
    };
    let recorded = ModelMetadata { dataset: "unit test".into(), ..unknown_origin(metadata("recorded")) };
    assert_eq!(store.catalog().model("recorded").expect("model").metadata, recorded);
    assert_eq!(store.catalog().model("imported").expect("model").metadata, unknown_origin(metadata("imported")));
}

/// Producers write through `dyn StoreWrite`, opened by location: records encoded by the provided
/// methods with the writer's options, producer state, deletion, and a `finish` that leaves the file
/// out of WAL mode.
#[test]
fn the_write_interface_writes_what_the_reader_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.db");
    let location = StoreLocation::SqliteFile(path.clone());
    assert!(location.existing_catalog().expect("nothing there yet").is_none());
    assert!(!path.exists(), "looking does not create a store");
    let options = EncodeOptions { activation_bits: 16, zstd_level: 3 };
    let mut store: Box<dyn StoreWrite> = location.open_writer(options).expect("open writer");
    assert_eq!(store.location(), path.display().to_string());
    assert_eq!(store.encode_options(), options);
    let (model, source) = store.add_model(&metadata("m1")).expect("add model");
    assert!(matches!(store.add_model(&metadata("m1")), Err(StoreError::ModelExists { .. })));
    let mut batch = store.batch().expect("batch");
    assert_eq!(batch.encode_options(), options);
    batch.put_neuron(source, 1, 3, &similar(7)).expect("put neuron");
    let encoded = EncodedNeuron::new(&similar(2), &options).expect("encode");
    batch.put_encoded_neuron(source, 0, 0, &encoded).expect("put encoded neuron");
    batch.put_layer(source, 0, &LayerRecord::Ranking(NeuronRanking::default())).expect("put layer");
    batch.put_model(model, &ModelRecord::Vocabulary(Vocabulary { tokens: vec!["a".into()] })).expect("put model");
    batch.put_model_state(model, "producer", b"state").expect("put state");
    assert!(matches!(batch.put_neuron(source, 2, 0, &similar(1)), Err(StoreError::OutOfRange { .. })));
    assert_eq!(batch.n_records(), 4);
    batch.commit().expect("commit");
    store.add_model(&metadata("m2")).expect("add another");
    assert!(store.delete_model("m2").expect("delete"));
    let catalog = store.catalog().expect("catalog");
    assert!(catalog.model("m1").is_some() && catalog.model("m2").is_none());
    store.finish().expect("finish");

    let journal_mode: String =
        Connection::open(&path).expect("open").query_row("PRAGMA journal_mode", [], |row| row.get(0)).expect("mode");
    assert_eq!(journal_mode, "delete");
    let catalog = location.existing_catalog().expect("read").expect("a store now");
    assert_eq!(catalog.models().len(), 1);
    let store = SqliteStore::open(&path, &read_config()).expect("open store");
    let entry = store.catalog().model("m1").expect("model in catalog");
    let mlp = entry.source(MLP_SOURCE).expect("mlp source");
    assert_eq!(store.neuron_record(mlp, 1, 3, NeuronDataKind::Similar).expect("read"), Some(similar(7)));
    assert_eq!(store.neuron_record(mlp, 0, 0, NeuronDataKind::Similar).expect("read"), Some(similar(2)));
    assert!(store.layer_record(mlp, 0, LayerDataKind::Ranking).expect("read").is_some());
    assert_eq!(store.model_state(entry.id, "producer").expect("read"), Some(b"state".to_vec()));
}

fn explanation(text: &str) -> NeuronRecord {
    NeuronRecord::Explanations(Explanations {
        explanations: vec![Explanation { text: text.into(), origin: "test".into(), ..Explanation::default() }],
    })
}

fn journal_mode(path: &std::path::Path) -> String {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).expect("mode")
}

/// A server reads a finished database while a writer adds a new kind to it: the writer switches the
/// file to WAL under the open readers, new reads see each commit, a refreshed catalog lists the new
/// kind, `finish` succeeds with the readers still open (staying in WAL mode), and the next `finish`
/// without readers leaves WAL mode.
#[test]
fn a_served_database_can_be_written_and_finished_under_its_readers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("served.db");
    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer");
    let (_, source) = writer.add_model(&metadata("m1")).expect("add model");
    let mut batch = writer.batch().expect("batch");
    batch.put_neuron(source, 0, 1, &similar(4)).expect("put");
    batch.commit().expect("commit");
    writer.finish().expect("finish");
    assert_eq!(journal_mode(&path), "delete");

    let reader = SqliteStore::open(&path, &ReadConfig { immutable: false, ..read_config() }).expect("open reader");
    let mlp = reader.catalog().model("m1").expect("model").sources[0].clone();
    assert_eq!(reader.neuron_record(&mlp, 0, 1, NeuronDataKind::Similar).expect("read"), Some(similar(4)));

    let mut writer = StoreWriter::open(&path, EncodeOptions::STANDARD).expect("a writer opens under readers");
    assert_eq!(journal_mode(&path), "wal");
    let mut batch = writer.batch().expect("batch");
    batch.put_neuron(source, 1, 2, &explanation("commas")).expect("put new kind");
    batch.put_neuron(source, 1, 3, &similar(5)).expect("put known kind");
    batch.commit().expect("commit");

    // Records of a kind the catalog lists are seen by the next query; a new kind needs a new catalog.
    assert_eq!(reader.neuron_record(&mlp, 1, 3, NeuronDataKind::Similar).expect("read"), Some(similar(5)));
    assert!(!reader.catalog().model("m1").expect("model").sources[0].has_neuron_kind(NeuronDataKind::Explanations));
    let refreshed = reader.refreshed().expect("refresh");
    let refreshed_mlp = refreshed.catalog().model("m1").expect("model").sources[0].clone();
    assert!(refreshed_mlp.has_neuron_kind(NeuronDataKind::Explanations));
    assert_ne!(refreshed.catalog().content_id(), reader.catalog().content_id(), "commits change the content id");
    assert_eq!(
        refreshed.neuron_record(&refreshed_mlp, 1, 2, NeuronDataKind::Explanations).expect("read"),
        Some(explanation("commas"))
    );

    writer.finish().expect("finish succeeds while readers are open");
    assert_eq!(journal_mode(&path), "wal", "SQLite cannot leave WAL mode under open readers");
    assert_eq!(reader.neuron_record(&mlp, 0, 1, NeuronDataKind::Similar).expect("read"), Some(similar(4)));
    assert_eq!(
        refreshed.neuron_record(&refreshed_mlp, 1, 2, NeuronDataKind::Explanations).expect("read after finish"),
        Some(explanation("commas"))
    );
    drop((reader, refreshed));

    // A database left in WAL mode opens (normally, though `immutable` was asked for) and reads.
    let reopened = SqliteStore::open(&path, &read_config()).expect("open a WAL-mode database");
    assert!(reopened.catalog().model("m1").expect("model").sources[0].has_neuron_kind(NeuronDataKind::Explanations));
    assert!(reopened.refreshed().is_ok(), "a WAL-mode database is never opened immutable");
    drop(reopened);
    StoreWriter::open(&path, EncodeOptions::STANDARD).expect("open writer").finish().expect("finish");
    assert_eq!(journal_mode(&path), "delete", "without readers, finish leaves WAL mode");
    let immutable = SqliteStore::open(&path, &read_config()).expect("open immutable");
    assert!(matches!(immutable.refreshed(), Err(StoreError::OpenedImmutable { .. })));
}
