//! The recorder end to end on tiny fixture models: every selection and statistic against brute
//! force over contexts run one at a time, resumption, sharding and bad input.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use candle_core::{Device, Tensor};
use dd_data::{ExampleGroupKind, NeuronDataKind, NeuronExamples, NeuronRecord, NeuronStats};
use dd_model::{Hook, RunRequest, Tokenizer, Transformer};
use dd_record::dataset::{self, Context, ContextConfig, DatasetConfig, DatasetFormat, Shard};
use dd_record::{
    AccumulatorConfig, DatasetDescription, JobEvent, JobOutcome, ModelOrigin, RecordConfig, RecordError, RecordOutcome,
    RecordingJob, SelectionSizes, WriteConfig,
};
use dd_store::{EncodeOptions, ReadConfig, SqliteStore, StoreLocation, StoreRead};

use crate::byte_tokenizer::byte_tokenizer;
use crate::fixture;

const TOP: usize = 5;

const TEXT: &str = "The quick brown fox jumps over the lazy dog. 0123456789!\nShe sells sea shells by the sea shore; \
    peter piper picked a peck of pickled peppers. What a to-do: \"quoted\" (bracketed) [square] {curly}.\n";

struct Setup {
    dir: tempfile::TempDir,
    model: Transformer,
    tokenizer: Arc<Tokenizer>,
    dataset: DatasetConfig,
}

fn setup(model_name: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dd_model::load_transformer(&fixture(model_name), &Device::Cpu).expect("fixture loads");
    let tokenizer = Arc::new(byte_tokenizer(dir.path()));
    let lines: Vec<String> = (0..40)
        .map(|i| serde_json::json!({ "body": TEXT.repeat(1 + i % 3)[(i * 7) % 50..].to_owned() }).to_string())
        .collect();
    let data = dir.path().join("data.jsonl");
    std::fs::write(&data, lines.join("\n")).expect("write dataset");
    let dataset = DatasetConfig { path: data, format: Some(DatasetFormat::Jsonl), text_field: "body".to_owned() };
    Setup { dir, model, tokenizer, dataset }
}

fn config(setup: &Setup, checkpoint: &str, shard: Shard) -> RecordConfig {
    RecordConfig {
        model_name: "tiny".to_owned(),
        dataset: setup.dataset.clone(),
        context_length: 24,
        token_budget: Some(4000),
        shard,
        batch_size: 3,
        accumulator: AccumulatorConfig {
            sizes: SelectionSizes { top: TOP as u32, bottom: 4, bands: 6, per_band: 3, random: 3 },
            histogram_bins: 50,
        },
        token_table_bytes: 1 << 20,
        checkpoint_path: setup.dir.path().join(checkpoint),
        checkpoint_interval: Duration::from_secs(3600),
    }
}

fn write_config() -> WriteConfig {
    WriteConfig {
        model_name: "tiny".to_owned(),
        dataset: DatasetDescription { name: "test text".to_owned(), source: "data.jsonl".to_owned() },
        origin: ModelOrigin {
            reference: "gpt2".to_owned(),
            weights: "safetensors F32".to_owned(),
            training_dataset: Some("random init".to_owned()),
        },
        activating_tokens: 10,
        min_token_count: 2,
    }
}

/// The encoding of the test databases: 16-bit activations, so comparisons lose little.
const ENCODE: EncodeOptions = EncodeOptions { activation_bits: 16, zstd_level: 3 };

fn record_to(setup: &Setup, config: &RecordConfig, db: &str) -> PathBuf {
    let outcome = dd_record::record(&setup.model, &setup.tokenizer, config, &AtomicBool::new(false), &|_| {})
        .expect("recording succeeds");
    let RecordOutcome::Finished(recording) = outcome else { panic!("not interrupted") };
    write_db(setup, &recording, db)
}

fn write_db(setup: &Setup, recording: &dd_record::Recording, db: &str) -> PathBuf {
    let path = setup.dir.path().join(db);
    let mut store = StoreLocation::SqliteFile(path.clone()).open_writer(ENCODE).expect("open writer");
    let (config, tokenizer) = (setup.model.config(), &setup.tokenizer);
    dd_record::write_recording(recording, config, tokenizer, &mut *store, &write_config(), &|_, _| {})
        .expect("write succeeds");
    store.finish().expect("finish");
    path
}

/// Every neuron's record of `kind`, in (layer, index) order, read back from a database.
fn read_kind(path: &Path, kind: NeuronDataKind) -> Vec<NeuronRecord> {
    let store = SqliteStore::open(path, &ReadConfig::serving()).expect("open");
    let model = store.catalog().model("tiny").expect("model stored").clone();
    let source = &model.sources[0];
    let mut all = Vec::new();
    for layer in 0..model.metadata.n_layers as u32 {
        for index in 0..model.metadata.d_mlp as u32 {
            let record = store.neuron_record(source, layer, index, kind).expect("read");
            all.push(record.unwrap_or_else(|| panic!("{} of {layer}/{index} missing", kind.name())));
        }
    }
    all
}

/// Every neuron's examples and stats.
fn read_all(path: &Path) -> Vec<(NeuronExamples, NeuronStats)> {
    let examples = read_kind(path, NeuronDataKind::Examples);
    let stats = read_kind(path, NeuronDataKind::Stats);
    examples
        .into_iter()
        .zip(stats)
        .map(|records| match records {
            (NeuronRecord::Examples(examples), NeuronRecord::Stats(stats)) => (examples, stats),
            other => panic!("wrong kinds: {other:?}"),
        })
        .collect()
}

fn read_activating_tokens(path: &Path) -> Vec<dd_data::ActivatingTokens> {
    let records = read_kind(path, NeuronDataKind::ActivatingTokens);
    records
        .into_iter()
        .map(|record| match record {
            NeuronRecord::ActivatingTokens(tokens) => tokens,
            other => panic!("not activating tokens: {other:?}"),
        })
        .collect()
}

/// Contexts run one at a time without padding: the reference activations, [context][position][neuron] per layer.
/// Activations `[layer][context][position][neuron]`.
type ReferenceActivations = Vec<Vec<Vec<Vec<f32>>>>;

fn reference(setup: &Setup, config: &RecordConfig) -> (Vec<Context>, ReferenceActivations) {
    let documents = dataset::open_documents(&setup.dataset).expect("dataset");
    let context_config = ContextConfig {
        length: config.context_length,
        token_budget: config.token_budget,
        shard: Shard::WHOLE,
        start_context: 0,
    };
    let contexts: Vec<Context> = dataset::split_into_contexts(documents, Arc::clone(&setup.tokenizer), &context_config)
        .expect("contexts")
        .collect::<Result<_, _>>()
        .expect("contexts");
    let n_layers = setup.model.config().n_layers;
    let mut per_layer = vec![Vec::new(); n_layers];
    for context in &contexts {
        let ids = Tensor::new(context.tokens.as_slice(), &Device::Cpu).and_then(|t| t.unsqueeze(0)).expect("ids");
        let output = setup.model.run(&ids, &RunRequest::all_layers(setup.model.config())).expect("run");
        for (layer, values) in per_layer.iter_mut().enumerate() {
            let tensor = output.get(layer, Hook::Post).expect("layer").squeeze(0).expect("squeeze");
            values.push(tensor.to_vec2::<f32>().expect("values"));
        }
    }
    (contexts, per_layer)
}

#[test]
fn selections_and_statistics_match_brute_force() {
    for model_name in ["gpt2", "llama"] {
        let setup = setup(model_name);
        let config = config(&setup, "checkpoint", Shard::WHOLE);
        let db = record_to(&setup, &config, "out.db");
        let recorded = read_all(&db);
        let activating = read_activating_tokens(&db);
        let (contexts, reference) = reference(&setup, &config);
        let d_mlp = setup.model.config().d_mlp;
        assert_eq!(recorded.len(), reference.len() * d_mlp);
        // Every context starts with the tokenizer's BOS, whose activations the recorder keeps apart.
        let bos = setup.tokenizer.bos_token_id().expect("the byte tokenizer has a BOS token");
        assert!(contexts.iter().all(|context| context.tokens[0] == bos));
        for (neuron_idx, (examples, stats)) in recorded.iter().enumerate() {
            let (layer, index) = (neuron_idx / d_mlp, neuron_idx % d_mlp);
            // Every position's value, as the examples store them.
            let with_bos = |c: usize| reference[layer][c].iter().map(move |row| row[index]);
            // The text's values, after BOS: what statistics, selections and token means cover.
            let values = |c: usize| with_bos(c).skip(1);
            let all: Vec<f64> = (0..contexts.len()).flat_map(values).map(f64::from).collect();
            let context_max: Vec<f32> = (0..contexts.len()).map(|c| values(c).fold(f32::MIN, f32::max)).collect();
            let context_min: Vec<f32> = (0..contexts.len()).map(|c| values(c).fold(f32::MAX, f32::min)).collect();
            let what = format!("{model_name} neuron {layer}/{index}");

            // Top: the k largest context maxima (ties may swap between batched and single runs).
            let top = examples.top().expect("top group");
            let mut want: Vec<f32> = context_max.clone();
            want.sort_by(|a, b| b.total_cmp(a));
            assert_eq!(top.examples.len(), TOP, "{what}");
            for (example, want) in top.examples.iter().zip(&want) {
                let c = example.dataset_index as usize;
                assert_eq!(example.tokens, contexts[c].tokens, "{what}: tokens of context {c}");
                let selecting = example.activations[example.max_token_index as usize];
                assert!(
                    (selecting - want).abs() <= example.activation_error + 1e-4,
                    "{what}: top {selecting} vs {want}"
                );
                assert_eq!(example.activations.len(), contexts[c].tokens.len(), "{what}: BOS included");
                for (got, value) in example.activations.iter().zip(with_bos(c)) {
                    assert!((got - value).abs() <= example.activation_error + 1e-4, "{what}: {got} vs {value}");
                }
                let at = example.max_token_index as usize;
                assert!(at >= 1, "{what}: the selecting token is never BOS");
                assert!(
                    (with_bos(c).nth(at).expect("position") - context_max[c]).abs() <= 1e-4,
                    "{what}: max position"
                );
            }
            let bottom = examples.bottom().expect("bottom group");
            let mut want: Vec<f32> = context_min.clone();
            want.sort_by(f32::total_cmp);
            for (example, want) in bottom.examples.iter().zip(&want) {
                let selecting = example.activations[example.max_token_index as usize];
                assert!(
                    (selecting - want).abs() <= example.activation_error + 1e-4,
                    "{what}: bottom {selecting} vs {want}"
                );
            }
            // Bands hold contexts whose maximum lies in the band, and cover the range of maxima.
            let mut band_total = 0;
            for group in &examples.groups {
                if let ExampleGroupKind::Quantile { lower, upper, .. } = group.kind {
                    for example in &group.examples {
                        let max = context_max[example.dataset_index as usize];
                        assert!(max >= lower - 1e-4 && max < upper + 1e-4, "{what}: {max} outside [{lower}, {upper})");
                        band_total += 1;
                    }
                }
            }
            assert!(band_total >= 3, "{what}: bands hold {band_total} examples");
            let random = examples.groups.iter().find(|g| g.kind == ExampleGroupKind::Random).expect("random group");
            assert_eq!(random.examples.len(), 3);

            // Statistics against a two-pass computation in f64.
            let n = all.len() as f64;
            let mean = all.iter().sum::<f64>() / n;
            let central = |p: i32| all.iter().map(|x| (x - mean).powi(p)).sum::<f64>() / n;
            let variance = central(2);
            assert_eq!(stats.count, all.len() as u64, "{what}");
            let close = |a: f64, b: f64, what2: &str| {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1e-2), "{what} {what2}: {a} vs {b}")
            };
            close(stats.mean, mean, "mean");
            close(stats.variance, variance, "variance");
            close(stats.skewness, central(3) / variance.powf(1.5), "skewness");
            close(stats.kurtosis, central(4) / (variance * variance), "kurtosis");
            close(stats.max, all.iter().copied().fold(f64::MIN, f64::max), "max");
            close(stats.min, all.iter().copied().fold(f64::MAX, f64::min), "min");
            close(stats.density, all.iter().filter(|&&x| x > 0.0).count() as f64 / n, "density");
            // BOS: one value per context, apart.
            let bos_values: Vec<f64> = (0..contexts.len()).map(|c| f64::from(reference[layer][c][0][index])).collect();
            let bos_stats = stats.bos.expect("BOS statistics");
            assert_eq!(bos_stats.count, contexts.len() as u64, "{what}");
            close(bos_stats.max, bos_values.iter().copied().fold(f64::MIN, f64::max), "BOS max");
            close(bos_stats.min, bos_values.iter().copied().fold(f64::MAX, f64::min), "BOS min");
            close(bos_stats.mean, bos_values.iter().sum::<f64>() / bos_values.len() as f64, "BOS mean");
            // The histogram: every value in some bin, counts matching up to values on a bin edge.
            let h = &stats.histogram;
            assert!(
                h.counts.len() <= 50 && h.counts.len() >= 2 || stats.max == stats.min,
                "{what}: {} bins",
                h.counts.len()
            );
            assert_eq!(h.counts.iter().sum::<u64>(), stats.count);
            let edges = h.edges();
            let mut want_counts = vec![0u64; h.counts.len()];
            for &x in &all {
                let bin = edges.partition_point(|&e| f64::from(e) <= x).saturating_sub(1).min(h.counts.len() - 1);
                want_counts[bin] += 1;
            }
            let moved: u64 = want_counts.iter().zip(&h.counts).map(|(a, b)| a.abs_diff(*b)).sum();
            assert!(moved <= 4, "{what}: histogram {:?} vs {want_counts:?}", h.counts);

            // Activating tokens: the mean activation per token over tokens seen at least twice.
            let mut sums: std::collections::BTreeMap<u32, (f64, u64)> = Default::default();
            for (c, context) in contexts.iter().enumerate() {
                for (&token, value) in context.tokens.iter().skip(1).zip(values(c)) {
                    let entry = sums.entry(token).or_default();
                    entry.0 += f64::from(value);
                    entry.1 += 1;
                }
            }
            let mut want: Vec<(f64, u64)> =
                sums.values().filter(|(_, n)| *n >= 2).map(|&(sum, n)| (sum / n as f64, n)).collect();
            want.sort_by(|a, b| b.0.total_cmp(&a.0));
            want.truncate(10);
            let got = &activating[neuron_idx].tokens;
            assert_eq!(got.len(), want.len(), "{what}");
            for (token, (mean, _)) in got.iter().zip(&want) {
                assert!((f64::from(token.mean) - mean).abs() <= 1e-4, "{what}: token mean {} vs {mean}", token.mean);
                let (sum, count) = sums[&token.token];
                assert_eq!(token.count, count, "{what}: count of token {}", token.token);
                assert!(
                    (f64::from(token.mean) - sum / count as f64).abs() <= 1e-4,
                    "{what}: mean of token {}",
                    token.token
                );
            }
        }
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_result() {
    let setup = setup("gpt2");
    let whole = record_to(&setup, &config(&setup, "whole.checkpoint", Shard::WHOLE), "whole.db");

    let config = config(&setup, "resumed.checkpoint", Shard::WHOLE);
    let stop = AtomicBool::new(false);
    let mut interruptions = 0;
    loop {
        let stop_after = |event: dd_record::RecordEvent| {
            if let dd_record::RecordEvent::Recording { tokens, .. } = event {
                if tokens >= 1000 * (interruptions + 1) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        };
        stop.store(false, Ordering::Relaxed);
        match dd_record::record(&setup.model, &setup.tokenizer, &config, &stop, &stop_after).expect("records") {
            RecordOutcome::Interrupted { tokens } => {
                assert!(tokens >= 1000 * (interruptions + 1));
                assert!(config.checkpoint_path.exists());
                interruptions += 1;
            }
            RecordOutcome::Finished(recording) => {
                let resumed = write_db(&setup, &recording, "resumed.db");
                assert!(interruptions >= 2, "only {interruptions} interruptions");
                assert_eq!(read_all(&resumed), read_all(&whole));
                break;
            }
        }
    }
}

#[test]
fn merged_shards_equal_one_run() {
    let setup = setup("llama");
    let whole = read_all(&record_to(&setup, &config(&setup, "whole.checkpoint", Shard::WHOLE), "whole.db"));
    let mut shard_files = Vec::new();
    for index in 0..3 {
        let config = config(&setup, &format!("shard{index}.checkpoint"), Shard { index, count: 3 });
        let outcome = dd_record::record(&setup.model, &setup.tokenizer, &config, &AtomicBool::new(false), &|_| {})
            .expect("shard records");
        let RecordOutcome::Finished(recording) = outcome else { panic!("not interrupted") };
        // Each shard is a database of its own, servable, with its mergeable state inside.
        let path = write_db(&setup, &recording, &format!("shard{index}.db"));
        let mut store = StoreLocation::SqliteFile(path.clone()).open_writer(ENCODE).expect("open writer");
        recording.save_to_database(&mut *store, "tiny").expect("save shard state");
        store.finish().expect("finish");
        assert_eq!(read_all(&path).len(), whole.len(), "a shard database holds every neuron");
        shard_files.push(path);
    }
    let paths: Vec<&Path> = shard_files.iter().map(PathBuf::as_path).collect();
    let merged = dd_record::merge_shards(&paths).expect("merge");
    let merged = read_all(&write_db(&setup, &merged, "merged.db"));
    assert_eq!(merged.len(), whole.len());
    for ((examples, stats), (want_examples, want_stats)) in merged.iter().zip(&whole) {
        assert_eq!(examples, want_examples);
        assert_eq!(stats.histogram, want_stats.histogram);
        assert_eq!(
            (stats.count, stats.max, stats.min, stats.density),
            (want_stats.count, want_stats.max, want_stats.min, want_stats.density)
        );
        for (a, b) in [
            (stats.mean, want_stats.mean),
            (stats.variance, want_stats.variance),
            (stats.kurtosis, want_stats.kurtosis),
        ] {
            // Each shard sums its contexts in f32 around its own running mean: equal to rounding.
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
    // A shard given twice, or one missing, is refused.
    let twice = [paths[0], paths[1], paths[1]];
    assert!(matches!(dd_record::merge_shards(&twice), Err(RecordError::InvalidConfig(_))));
    assert!(matches!(dd_record::merge_shards(&paths[..2]), Err(RecordError::InvalidConfig(_))));
    // A database without shard state (an unsharded run) is refused by name.
    let plain = setup.dir.path().join("whole.db");
    let error = dd_record::merge_shards(&[paths[0], plain.as_path()]).expect_err("no state");
    assert!(error.to_string().contains("whole.db"), "{error}");
}

#[test]
fn bad_datasets_and_settings_are_clear_errors() {
    let setup = setup("gpt2");
    let record = |config: &RecordConfig| {
        dd_record::record(&setup.model, &setup.tokenizer, config, &AtomicBool::new(false), &|_| {}).map(|_| ())
    };
    let empty = setup.dir.path().join("empty.txt");
    std::fs::write(&empty, "").expect("write");
    let mut bad = config(&setup, "bad.checkpoint", Shard::WHOLE);
    bad.dataset = DatasetConfig { path: empty, format: None, text_field: "text".to_owned() };
    let message = record(&bad).expect_err("empty file").to_string();
    assert!(message.contains("empty.txt"), "{message}");

    let broken = setup.dir.path().join("broken.jsonl");
    std::fs::write(&broken, "{\"text\": \"fine\"}\n{\"text\": oops}\n").expect("write");
    bad.dataset = DatasetConfig { path: broken, format: None, text_field: "text".to_owned() };
    let message = record(&bad).expect_err("malformed line").to_string();
    assert!(message.contains("broken.jsonl") && message.contains('2'), "{message}");

    let mut too_long = config(&setup, "long.checkpoint", Shard::WHOLE);
    too_long.context_length = 10_000;
    assert!(matches!(record(&too_long), Err(RecordError::InvalidConfig(_))));
    let mut no_shard = config(&setup, "shard.checkpoint", Shard { index: 3, count: 3 });
    no_shard.batch_size = 2;
    assert!(matches!(record(&no_shard), Err(RecordError::InvalidConfig(_))));

    // A damaged checkpoint is an error, never a panic: truncated anywhere, or with bytes flipped.
    let damaged = config(&setup, "damaged.checkpoint", Shard::WHOLE);
    let stop = AtomicBool::new(true);
    let outcome = dd_record::record(&setup.model, &setup.tokenizer, &damaged, &stop, &|_| {}).expect("records");
    assert!(matches!(outcome, RecordOutcome::Interrupted { .. }));
    let good = std::fs::read(&damaged.checkpoint_path).expect("checkpoint");
    for cut in [0, 7, 8, 20, good.len() / 3, good.len() / 2, good.len() - 1] {
        std::fs::write(&damaged.checkpoint_path, &good[..cut]).expect("write");
        assert!(matches!(record(&damaged), Err(RecordError::State { .. })), "cut at {cut}");
    }
    for position in (12..good.len()).step_by(good.len() / 41) {
        let mut flipped = good.clone();
        flipped[position] ^= 0xA5;
        std::fs::write(&damaged.checkpoint_path, &flipped).expect("write");
        // Some flips only change a value; none may panic.
        let _ = record(&damaged);
        let _ = std::fs::remove_file(&damaged.checkpoint_path);
        // `record` may have finished and left its final checkpoint; start each flip afresh.
    }

    // A checkpoint from other settings is refused rather than silently mixed in.
    let first = config(&setup, "mixed.checkpoint", Shard::WHOLE);
    let stop = AtomicBool::new(true);
    let outcome = dd_record::record(&setup.model, &setup.tokenizer, &first, &stop, &|_| {}).expect("records");
    assert!(matches!(outcome, RecordOutcome::Interrupted { .. }));
    let mut other = first.clone();
    other.context_length = 16;
    assert!(matches!(record(&other), Err(RecordError::SettingsMismatch { .. })));
}

/// `record_to_database` runs the whole sequence with the library's choices: events in order, the
/// context cut to the model's, bottom examples for a GELU model, the checkpoint removed once the
/// database is complete, a second run refused, a run whose write was interrupted writing the model
/// again, and a shard keeping its mergeable state instead of the weight-based facts.
#[test]
fn record_to_database_runs_the_whole_sequence() {
    let Setup { dir, model, tokenizer, dataset } = setup("gpt2");
    let origin =
        ModelOrigin { reference: "gpt2".to_owned(), weights: "safetensors F32".to_owned(), training_dataset: None };
    let opened = dd_record::OpenedModel { transformer: model, tokenizer, default_name: "tiny".to_owned(), origin };
    let job_for = |db: &str| RecordingJob {
        dataset: dataset.clone(),
        context_length: 100_000,
        token_budget: Some(2000),
        batch_size: 3,
        token_table_bytes: 1 << 20,
        weight_facts: Some(3),
        ..RecordingJob::standard(&dataset.path, &dir.path().join(db))
    };
    let run = |job: &RecordingJob, stop: bool| {
        let events = std::sync::Mutex::new(Vec::new());
        let push = |event: JobEvent| events.lock().expect("events").push(event);
        let outcome = dd_record::record_to_database(&opened, job, &push, &AtomicBool::new(stop));
        (outcome, events.into_inner().expect("events"))
    };
    let milestones = |events: &[JobEvent]| -> Vec<&'static str> {
        events
            .iter()
            .filter_map(|event| match event {
                JobEvent::Started => Some("started"),
                JobEvent::RecordingFinished => Some("recorded"),
                JobEvent::WriteStarting { deleted_unfinished_write: false, .. } => Some("write"),
                JobEvent::WriteStarting { deleted_unfinished_write: true, .. } => Some("rewrite"),
                JobEvent::NeuronsWritten => Some("neurons"),
                JobEvent::WeightFactsWritten { .. } => Some("weights"),
                JobEvent::DatabaseWritten(_) => Some("database"),
                _ => None,
            })
            .collect()
    };

    let job = job_for("job.db");
    let config = job.record_config(&opened);
    assert_eq!(config.context_length, opened.transformer.config().n_ctx);
    assert_eq!(config.accumulator.sizes.bottom, dd_record::standard_bottom_examples(dd_model::Activation::GeluTanh));
    let (outcome, events) = run(&job, false);
    let JobOutcome::Finished { tokens, written, .. } = outcome.expect("records") else { panic!("not interrupted") };
    assert!(tokens > 0 && written.n_neurons == opened.transformer.config().n_neurons());
    assert_eq!(milestones(&events), ["started", "recorded", "write", "neurons", "weights", "database"]);
    assert!(!job.output.checkpoint_path.exists() && job.output.holds_finished_recording("tiny"));
    let path = dir.path().join("job.db");
    assert!(read_kind(&path, NeuronDataKind::Logits).len() as u64 == written.n_neurons);
    // The database names the dataset after its folder (`data.jsonl` says nothing), keeps its path
    // and the weights recorded from, and says nothing of a training set no file named.
    let folder = dir.path().file_name().expect("folder").to_string_lossy().into_owned();
    let store = SqliteStore::open(&path, &ReadConfig::serving()).expect("open");
    let metadata = &store.catalog().models()[0].metadata;
    assert_eq!((&metadata.dataset, &metadata.training_dataset), (&folder, &None));
    assert_eq!(metadata.provenance.data_source, dataset.path.display().to_string());
    assert_eq!(metadata.provenance.model_source.as_deref(), Some("gpt2"));
    assert_eq!(metadata.provenance.weights.as_deref(), Some("safetensors F32"));
    drop(store);
    assert!(
        read_all(&path).iter().all(|(examples, _)| examples.groups.iter().any(|g| g.kind == ExampleGroupKind::Bottom))
    );

    let (refused, _) = run(&job, false);
    assert!(matches!(refused, Err(RecordError::AlreadyRecorded { .. })), "{refused:?}");

    // Interrupted after its first batch, then given a database holding the model, as if killed
    // while writing: the next run resumes, deletes the unfinished model and writes it again.
    let rewritten = job_for("rewritten.db");
    let (outcome, _) = run(&rewritten, true);
    assert!(matches!(outcome, Ok(JobOutcome::Interrupted { tokens }) if tokens > 0), "{outcome:?}");
    std::fs::copy(&path, dir.path().join("rewritten.db")).expect("copy");
    let (outcome, events) = run(&rewritten, false);
    assert!(matches!(outcome, Ok(JobOutcome::Finished { .. })), "{outcome:?}");
    assert_eq!(milestones(&events), ["started", "recorded", "rewrite", "neurons", "weights", "database"]);
    assert_eq!(read_all(&dir.path().join("rewritten.db")), read_all(&path));

    let shard = RecordingJob { shard: Some(Shard { index: 0, count: 1 }), ..job_for("shard.db") };
    let (outcome, events) = run(&shard, false);
    assert!(matches!(outcome, Ok(JobOutcome::Finished { .. })), "{outcome:?}");
    assert_eq!(milestones(&events), ["started", "recorded", "write", "neurons", "database"]);
    let store = SqliteStore::open(&dir.path().join("shard.db"), &ReadConfig::serving()).expect("open");
    assert!(!store.catalog().models()[0].sources[0].has_neuron_kind(NeuronDataKind::Logits));
    let merged = dd_record::merge_shards(&[dir.path().join("shard.db").as_path()]).expect("the shard state is kept");
    let described = DatasetDescription { name: folder, source: dataset.path.display().to_string() };
    assert_eq!(merged.dataset(), Some(&described), "a merge writes what the shards were recorded on");
}
