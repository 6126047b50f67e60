//! Our own export imported back: export → import gives the same database, from a directory and
//! over HTTP, in both formats.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use dd_data::{LayerDataKind, ModelDataKind, NeuronDataKind};
use dd_export::{ExportFormat, ExportOptions, export_model};
use dd_import::formats::deepdecipher::{DeepDecipherImporter, split_export_source};
use dd_import::testing::FixtureServer;
use dd_import::{DatasetLocation, ImportJob, run_import};
use dd_store::{ReadConfig, SqliteStore, StoreLocation, StoreRead};

const MODEL: &str = "synth-roundtrip";

fn synth_store(path: &Path) -> SqliteStore {
    let config = dd_synth::SynthConfig {
        model_name: MODEL.into(),
        n_layers: 3,
        d_mlp: 5,
        n_examples: 3,
        n_bottom_examples: 2,
        n_tokens: 9,
        vocab_size: 80,
        seed: 5,
        replace: false,
        n_threads: 1,
    };
    dd_synth::synthesize(path, &config, &mut |_, _| {}).expect("synth");
    SqliteStore::open(path, &ReadConfig::serving()).expect("open")
}

/// Imports `file` at `location` into a new database at `path` and opens it.
fn import(location: DatasetLocation, file: &str, path: &Path) -> SqliteStore {
    let mut job = ImportJob::new(location);
    job.workers = 2;
    job.commit_every = 2;
    let importer = DeepDecipherImporter::new(file, dd_data::MLP_SOURCE);
    let summary =
        run_import(&StoreLocation::SqliteFile(path.to_owned()), &importer, &job, &AtomicBool::new(false), &|_| {})
            .expect("import");
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert_eq!((summary.items, summary.imported), (3, 3), "one item per layer");
    SqliteStore::open(path, &ReadConfig::serving()).expect("open imported")
}

/// Every blob of every level and kind, and the model's metadata and sources, are the same.
fn assert_same_model(original: &SqliteStore, imported: &SqliteStore) {
    let (a, b) =
        (original.catalog().model(MODEL).expect("original"), imported.catalog().model(MODEL).expect("imported"));
    assert_eq!(a.metadata, b.metadata);
    assert_eq!(a.model_kinds, b.model_kinds);
    let mut n_compared = 0;
    for &kind in ModelDataKind::ALL {
        assert_eq!(
            original.model_blob(a.id, kind).expect("a"),
            imported.model_blob(b.id, kind).expect("b"),
            "{kind:?}"
        );
    }
    assert_eq!(a.sources.len(), b.sources.len());
    for (source_a, source_b) in a.sources.iter().zip(&b.sources) {
        assert_eq!(source_a.info, source_b.info);
        assert_eq!((&source_a.neuron_kinds, &source_a.layer_kinds), (&source_b.neuron_kinds, &source_b.layer_kinds));
        for layer in 0..source_a.info.n_layers as u32 {
            for &kind in LayerDataKind::ALL {
                let blob = original.layer_blob(source_a.id, layer, kind).expect("a");
                assert_eq!(blob, imported.layer_blob(source_b.id, layer, kind).expect("b"), "layer {layer} {kind:?}");
                n_compared += usize::from(blob.is_some());
            }
            for index in 0..source_a.info.units_per_layer as u32 {
                for &kind in NeuronDataKind::ALL {
                    let blob = original.neuron_blob(source_a.id, layer, index, kind).expect("a");
                    let copy = imported.neuron_blob(source_b.id, layer, index, kind).expect("b");
                    assert_eq!(blob, copy, "{layer}/{index} {kind:?}");
                    n_compared += usize::from(blob.is_some());
                }
            }
        }
    }
    assert!(n_compared > 3 * 5 * 3, "compared only {n_compared} records");
}

#[test]
fn an_export_imports_into_the_same_database_from_a_directory_and_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = synth_store(&dir.path().join("original.db"));
    let exports = dir.path().join("exports");
    std::fs::create_dir(&exports).expect("mkdir");
    for format in ExportFormat::ALL {
        let file = std::fs::File::create(exports.join(format!("model.{}", format.name()))).expect("create");
        export_model(&original, MODEL, &ExportOptions::everything(format), file, &mut |_, _| {}).expect("export");
    }
    let server = FixtureServer::serve(&exports).expect("serve");
    for format in ExportFormat::ALL {
        let file = format!("model.{}", format.name());
        let from_directory =
            import(DatasetLocation::Directory(exports.clone()), &file, &dir.path().join(format!("dir-{file}.db")));
        assert_same_model(&original, &from_directory);
        let (location, name) = split_export_source(&format!("{}/{file}", server.url())).expect("split");
        let over_http = import(location, &name, &dir.path().join(format!("http-{file}.db")));
        assert_same_model(&original, &over_http);
    }
}

#[test]
fn sources_split_into_a_location_and_a_file() {
    let split = split_export_source;
    assert_eq!(
        split("https://host/exports/gpt2.parquet").expect("url"),
        (DatasetLocation::Http("https://host/exports".into()), "gpt2.parquet".into())
    );
    assert_eq!(split("out/m.jsonl.gz").expect("path"), (DatasetLocation::Directory("out".into()), "m.jsonl.gz".into()));
    assert_eq!(split("m.parquet").expect("bare"), (DatasetLocation::Directory(".".into()), "m.parquet".into()));
    assert!(split("https://host/exports/").is_err());
}

#[test]
fn a_file_that_is_not_an_export_fails_the_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.parquet"), b"PAR1 not really").expect("write");
    let job = ImportJob::new(DatasetLocation::Directory(dir.path().to_owned()));
    let db = StoreLocation::SqliteFile(dir.path().join("x.db"));
    for file in ["bad.parquet", "absent.parquet"] {
        let importer = DeepDecipherImporter::new(file, "mlp");
        let error = run_import(&db, &importer, &job, &AtomicBool::new(false), &|_| {}).expect_err("not an export");
        assert!(error.to_string().contains(file), "{error}");
    }
}
