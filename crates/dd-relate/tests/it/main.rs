//! Relations end to end on fixture models recorded by the real recorder: correlations, groups,
//! roles and embeddings against brute force, and two training checkpoints compared.

#[path = "../../../dd-record/tests/it/byte_tokenizer.rs"]
mod byte_tokenizer;
mod compare;
mod relate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use candle_core::Device;
use dd_record::dataset::{DatasetConfig, DatasetFormat};
use dd_record::{JobOutcome, ModelOrigin, OpenedModel, RecordingJob};
use dd_store::EncodeOptions;

/// The committed model fixture `name` of `dd-model`'s tests.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dd-model/tests/fixtures").join(name)
}

const TEXT: &str = "The quick brown fox jumps over the lazy dog. 0123456789!\nShe sells sea shells by the sea shore; \
    peter piper picked a peck of pickled peppers. What a to-do: \"quoted\" (bracketed) [square] {curly}.\n";

/// A fixture model opened with the byte tokenizer, as `dd_record::open_model` opens a model.
pub(crate) fn open(dir: &Path, model: &str) -> OpenedModel {
    let transformer = dd_model::load_transformer(&fixture(model), &Device::Cpu).expect("fixture loads");
    let tokenizer = Arc::new(byte_tokenizer::byte_tokenizer(dir));
    let origin = ModelOrigin { reference: model.to_owned(), weights: "safetensors".to_owned(), training_dataset: None };
    OpenedModel { transformer, tokenizer, default_name: "tiny".to_owned(), origin }
}

/// Records `model` under `name` into `db` over a small JSONL dataset written into `dir`, with
/// 16-bit activations, five random contexts per neuron and the weight-based facts.
pub(crate) fn record(dir: &Path, opened: &OpenedModel, db: &Path, name: &str) {
    let data = dir.join("data.jsonl");
    let lines: Vec<String> = (0..60)
        .map(|i| serde_json::json!({ "text": TEXT.repeat(1 + i % 3)[(i * 7) % 50..].to_owned() }).to_string())
        .collect();
    std::fs::write(&data, lines.join("\n")).expect("write dataset");
    let job = RecordingJob {
        dataset: DatasetConfig {
            path: data.clone(),
            format: Some(DatasetFormat::Jsonl),
            text_field: "text".to_owned(),
        },
        model_name: Some(name.to_owned()),
        context_length: 24,
        token_budget: Some(4000),
        batch_size: 4,
        token_table_bytes: 1 << 20,
        weight_facts: Some(6),
        encode: EncodeOptions { activation_bits: 16, zstd_level: 3 },
        ..RecordingJob::standard(&data, db)
    };
    let outcome = dd_record::record_to_database(opened, &job, &|_| {}, &AtomicBool::new(false)).expect("records");
    assert!(matches!(outcome, JobOutcome::Finished { .. }), "{outcome:?}");
}

/// Pearson's r in f64, `None` for a constant side: the brute-force reference.
pub(crate) fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    (sxx > 1e-12 && syy > 1e-12).then(|| sxy / (sxx * syy).sqrt())
}
