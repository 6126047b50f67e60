//! Exports of a synthetic model, read back by our reader and by pyarrow and pandas.

use std::path::{Path, PathBuf};
use std::process::Command;

use dd_data::{LayerDataKind, ModelDataKind, NeuronDataKind};
use dd_export::{
    ExportError, ExportFormat, ExportOptions, ExportRow, RowLevel, export_model, parse_kinds, read_file, read_file_rows,
};
use dd_store::{ReadConfig, SqliteStore, StoreRead};

const MODEL: &str = "synth-export";

/// A finished synthetic database of 2 layers × 6 neurons in `dir`.
fn synth_store(dir: &Path) -> SqliteStore {
    synth_store_of(dir, 6)
}

fn synth_store_of(dir: &Path, d_mlp: u32) -> SqliteStore {
    let path = dir.join("data.db");
    let config = dd_synth::SynthConfig {
        model_name: MODEL.into(),
        n_layers: 2,
        d_mlp,
        n_examples: 3,
        n_bottom_examples: 1,
        n_tokens: 8,
        vocab_size: 64,
        seed: 11,
        replace: false,
        n_threads: 1,
    };
    dd_synth::synthesize(&path, &config, &mut |_, _| {}).expect("synth");
    SqliteStore::open(&path, &ReadConfig::serving()).expect("open")
}

fn export_to(store: &SqliteStore, options: &ExportOptions, path: &Path) -> u64 {
    let file = std::fs::File::create(path).expect("create");
    let (summary, _) = export_model(store, MODEL, options, file, &mut |_, _| {}).expect("export");
    summary.rows
}

fn rows_of(path: &Path) -> Vec<ExportRow> {
    let mut rows = Vec::new();
    read_file(path, &mut |row| {
        rows.push(row);
        Ok(())
    })
    .expect("read");
    rows
}

/// The stored blob a row claims to hold.
fn stored_blob(store: &SqliteStore, row: &ExportRow) -> Option<Vec<u8>> {
    let model = store.catalog().model(&row.model).expect("model");
    let source = || model.source(row.source.as_deref().expect("source")).expect("known source");
    match row.level {
        RowLevel::Model => {
            let kind = ModelDataKind::ALL.iter().find(|kind| kind.name() == row.kind).expect("model kind");
            store.model_blob(model.id, *kind).expect("read")
        }
        RowLevel::Layer => {
            let kind = LayerDataKind::ALL.iter().find(|kind| kind.name() == row.kind).expect("layer kind");
            store.layer_blob(source().id, row.layer.expect("layer"), *kind).expect("read")
        }
        RowLevel::Neuron => {
            let kind = NeuronDataKind::ALL.iter().find(|kind| kind.name() == row.kind).expect("neuron kind");
            store.neuron_blob(source().id, row.layer.expect("layer"), row.index.expect("index"), *kind).expect("read")
        }
    }
}

/// Every stored record is one row with its exact blob, after the metadata row, in both formats.
#[test]
fn an_export_holds_every_stored_record_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = synth_store(dir.path());
    let model = store.catalog().model(MODEL).expect("model").clone();
    let n_stored: u64 = store.usage(model.id).expect("usage").iter().map(|usage| usage.n_records).sum();
    for format in ExportFormat::ALL {
        let path = dir.path().join(format!("out.{}", format.name()));
        let n_written = export_to(&store, &ExportOptions::everything(format), &path);
        let rows = rows_of(&path);
        assert_eq!(rows.len() as u64, n_written, "{format:?}");
        assert_eq!(n_written, n_stored + 1, "{format:?}: one row per record plus the metadata row");
        assert_eq!((rows[0].level, rows[0].kind.as_str(), rows[0].blob.as_ref()), (RowLevel::Model, "metadata", None));
        let exported = dd_export::parse_metadata(&rows[0].json).expect("metadata json");
        assert_eq!(exported.metadata, model.metadata);
        assert_eq!(exported.sources, model.sources.iter().map(|source| source.info.clone()).collect::<Vec<_>>());
        for row in &rows[1..] {
            assert_eq!(row.blob, stored_blob(&store, row), "{format:?} {row:?}");
        }
        let examples = rows.iter().find(|row| row.kind == "examples").expect("an examples row");
        let json: serde_json::Value = serde_json::from_str(&examples.json).expect("json");
        let example = &json["groups"][0]["examples"][0];
        let Some(dd_data::ModelRecord::Vocabulary(vocabulary)) =
            store.model_record(&model, ModelDataKind::Vocabulary).expect("vocabulary")
        else {
            panic!("synth writes a vocabulary")
        };
        let first_token = example["tokens"][0].as_u64().expect("token id") as usize;
        assert_eq!(example["token_texts"][0], vocabulary.tokens[first_token].as_str());
    }
}

/// `kinds` and `layers` narrow the rows; the metadata row stays.
#[test]
fn kinds_and_layers_narrow_an_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = synth_store(dir.path());
    let options = ExportOptions {
        format: ExportFormat::Parquet,
        kinds: Some(parse_kinds("stats, ranking").expect("kinds")),
        layers: Some(vec![1]),
    };
    let path = dir.path().join("narrow.parquet");
    export_to(&store, &options, &path);
    let rows = rows_of(&path);
    let shape: Vec<(RowLevel, &str, Option<u32>)> =
        rows.iter().map(|row| (row.level, row.kind.as_str(), row.layer)).collect();
    let mut expected = vec![(RowLevel::Model, "metadata", None), (RowLevel::Model, "ranking", None)];
    expected.push((RowLevel::Layer, "ranking", Some(1)));
    expected.extend((0..6).map(|_| (RowLevel::Neuron, "stats", Some(1))));
    assert_eq!(shape, expected);
}

/// Unknown kinds, formats and models, and files that are not exports, are errors that say so.
#[test]
fn bad_input_is_a_clear_error() {
    let error = parse_kinds("examples,nope").expect_err("unknown kind");
    assert!(matches!(&error, ExportError::UnknownKind { kind, .. } if kind == "nope"), "{error}");
    assert!(error.to_string().contains("examples"), "{error}");
    assert!(matches!(ExportFormat::parse("csv"), Err(ExportError::UnknownFormat(_))));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = synth_store(dir.path());
    let options = ExportOptions::everything(ExportFormat::JsonlGz);
    let result = export_model(&store, "absent", &options, Vec::new(), &mut |_, _| {});
    assert!(matches!(result, Err(ExportError::UnknownModel(name)) if name == "absent"));
    let (_, bytes) = export_model(&store, MODEL, &options, Vec::new(), &mut |_, _| {}).expect("export");
    for bad in [b"hello, world".to_vec(), bytes[..bytes.len() / 2].to_vec(), b"PAR1 but not parquet".to_vec()] {
        let result = dd_export::read_bytes(bad.into(), &mut |_| Ok(()));
        assert!(result.is_err(), "accepted a broken file");
    }
}

/// pyarrow, pandas and DuckDB see the schema as documented: the Python that `scripts/test.sh`
/// sets up reads both files with each.
#[test]
fn pyarrow_pandas_and_duckdb_read_both_formats() {
    let Some(python) = std::env::var_os("DD_PYARROW_PYTHON").map(PathBuf::from) else {
        panic!("DD_PYARROW_PYTHON is unset: run scripts/test.sh, which creates a venv with pyarrow and sets it");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = synth_store(dir.path());
    let parquet = dir.path().join("out.parquet");
    let jsonl = dir.path().join("out.jsonl.gz");
    let n_rows = export_to(&store, &ExportOptions::everything(ExportFormat::Parquet), &parquet);
    export_to(&store, &ExportOptions::everything(ExportFormat::JsonlGz), &jsonl);
    let script = r#"
import base64, json, sys
import pyarrow.parquet as pq
import pandas as pd
table = pq.read_table(sys.argv[1])
frame = pd.read_json(sys.argv[2], lines=True, compression="gzip")
print(table.num_rows, frame.shape[0])
print(",".join(table.column_names))
print(",".join(frame.columns))
print(str(table.schema.field("layer").type), str(table.schema.field("blob").type), str(table.schema.field("json").type))
stats = table.filter(pq.filters_to_expression([("kind", "=", "stats"), ("layer", "=", 1), ("index", "=", 2)])).to_pylist()[0]
row = frame[(frame.kind == "stats") & (frame.layer == 1) & (frame["index"] == 2)].iloc[0]
print(json.loads(stats["json"])["count"], json.loads(row["json"])["count"], base64.b64decode(row["blob"]) == stats["blob"])
print(table.to_pylist()[0]["kind"], json.loads(table.to_pylist()[0]["json"])["name"])
import duckdb
where = "kind = 'stats' AND layer = 1 AND \"index\" = 2"
from_parquet = duckdb.execute(f"SELECT count(*) FROM read_parquet(?)", [sys.argv[1]]).fetchone()[0]
from_jsonl = duckdb.execute("SELECT count(*) FROM read_json_auto(?, format = 'newline_delimited', compression = 'gzip')", [sys.argv[2]]).fetchone()[0]
count = duckdb.execute(f"SELECT json_extract(json, '$.count') FROM read_parquet(?) WHERE {where}", [sys.argv[1]]).fetchone()[0]
print(from_parquet, from_jsonl, count)
"#;
    let output = Command::new(&python).arg("-c").arg(script).arg(&parquet).arg(&jsonl).output().expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "python failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("{n_rows} {n_rows}"));
    assert_eq!(lines[1], "model,source,layer,index,level,kind,json,blob");
    assert_eq!(lines[2], "model,source,layer,index,level,kind,json,blob");
    assert_eq!(lines[3], "int64 binary string");
    let model = store.catalog().model(MODEL).expect("model");
    let Some(dd_data::NeuronRecord::Stats(stats)) =
        store.neuron_record(&model.sources[0], 1, 2, NeuronDataKind::Stats).expect("stats")
    else {
        panic!("synth writes stats")
    };
    assert_eq!(lines[4], format!("{0} {0} True", stats.count));
    assert_eq!(lines[5], format!("metadata {MODEL}"));
    assert_eq!(lines[6], format!("{n_rows} {n_rows} {}", stats.count), "DuckDB reads both files");
}

/// A range of rows reads exactly those rows of the whole file, in both containers, across Parquet
/// row groups (2,048 rows each) and skipping the groups outside it.
#[test]
fn row_ranges_read_exactly_their_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 2 layers × 160 units × 9 kinds: more rows than one row group holds.
    let store = synth_store_of(dir.path(), 160);
    for format in [ExportFormat::Parquet, ExportFormat::JsonlGz] {
        let path = dir.path().join(format!("out.{}", format.name()));
        let n_rows = export_to(&store, &ExportOptions::everything(format), &path);
        assert!(n_rows > 2_048, "{n_rows} rows");
        let everything = rows_of(&path);
        for range in [0..5, 2_040..2_060, n_rows - 3..n_rows + 10] {
            let mut got = Vec::new();
            read_file_rows(&path, range.clone(), &mut |row| {
                got.push((row.layer, row.index, row.kind));
                Ok(())
            })
            .expect("read a range");
            let want: Vec<_> = everything[range.start as usize..(range.end.min(n_rows)) as usize]
                .iter()
                .map(|row| (row.layer, row.index, row.kind.clone()))
                .collect();
            assert_eq!(got, want, "{format:?} {range:?}");
        }
    }
}
