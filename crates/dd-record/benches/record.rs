//! Recording throughput and overhead: `record` end to end (tokenizing, forward pass, accumulators)
//! on random weights of real shapes, over real English text, with the time split between the
//! forward pass and the accumulators (top-k, bottom-k, bands, random sample, moments, histograms,
//! token table) measured in the same run, over the whole run and over its second half (a run of
//! half the tokens is recorded first and subtracted), where the selections are full and rarely
//! change, as in any real recording.
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p dd-record --bench record [-- SHAPES] [--tokens N]
//!
//! SHAPES is a comma list of gpt2-small, smollm2 (default both). The tokenizers come from the test
//! assets (`scripts/fetch-test-assets.sh`, `$DD_TEST_ASSETS`); the text is this repository's
//! documentation, repeated as needed (`--dataset PATH` for another).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use candle_core::Device;
use dd_model::{ModelConfig, Tokenizer, Transformer};
use dd_record::dataset::{DatasetConfig, Shard};
use dd_record::{AccumulatorConfig, RecordConfig, RecordOutcome, SelectionSizes};

#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

fn assets() -> PathBuf {
    std::env::var_os("DD_TEST_ASSETS").map_or_else(|| PathBuf::from("/var/tmp/deepdecipher-assets"), PathBuf::from)
}

fn shape(name: &str) -> Option<(ModelConfig, Tokenizer)> {
    let tokenizer = match name {
        "gpt2-small" => {
            Tokenizer::from_gpt2_files(&assets().join("gpt2/encoder.json"), &assets().join("gpt2/vocab.bpe"))
                .expect("GPT-2 tokenizer in the test assets")
        }
        "smollm2" => Tokenizer::from_gguf(&assets().join("SmolLM2-135M-Instruct.Q4_1.gguf"))
            .expect("SmolLM2 GGUF in the test assets"),
        _ => return None,
    };
    Some((ModelConfig::benchmark_shape(name)?, tokenizer))
}

/// The repository's Markdown, repeated until it holds about `bytes`.
fn documentation_dataset(dir: &Path, bytes: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut text = String::new();
    for file in
        ["README.md", "ARCHITECTURE.md", "docs/api.md", "docs/format.md", "docs/models.md", "docs/benchmarks.md"]
    {
        text.push_str(&std::fs::read_to_string(root.join(file)).unwrap_or_default());
        text.push('\n');
    }
    let path = dir.join("docs.txt");
    let mut data = String::new();
    while data.len() < bytes {
        data.push_str(&text);
    }
    std::fs::write(&path, data).expect("write dataset");
    path
}

fn main() {
    dd_alloc::keep_freed_pages();
    let arguments: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut tokens = 32 * 1024u64;
    let mut names = vec!["gpt2-small".to_owned(), "smollm2".to_owned()];
    let mut dataset: Option<PathBuf> = None;
    let mut index = 0;
    while index < arguments.len() {
        match arguments[index].as_str() {
            "--tokens" => {
                tokens = arguments.get(index + 1).and_then(|v| v.parse().ok()).unwrap_or(tokens);
                index += 1;
            }
            "--dataset" => {
                dataset = arguments.get(index + 1).map(PathBuf::from);
                index += 1;
            }
            list => names = list.split(',').map(str::to_owned).collect(),
        }
        index += 1;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = dataset.unwrap_or_else(|| documentation_dataset(dir.path(), 8 * tokens as usize));
    println!(
        "threads: {}  batch 8 × 128, {tokens} tokens, dataset {}",
        rayon::current_num_threads(),
        dataset.display()
    );
    println!(
        "| shape | record tokens/s | forward-only tokens/s | accumulators / forward | same, second half | wall s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for name in names {
        let Some((config, tokenizer)) = shape(&name) else {
            eprintln!("unknown shape {name}");
            continue;
        };
        let model = Transformer::random(config.clone(), &Device::Cpu).expect("random model");
        let record_config = RecordConfig {
            model_name: name.clone(),
            dataset: DatasetConfig { path: dataset.clone(), format: None, text_field: "text".to_owned() },
            context_length: 128,
            token_budget: Some(tokens),
            shard: Shard::WHOLE,
            batch_size: 8,
            accumulator: AccumulatorConfig {
                sizes: SelectionSizes { top: 20, bottom: 10, bands: 10, per_band: 2, random: 5 },
                histogram_bins: 50,
            },
            token_table_bytes: std::env::var("DD_BENCH_TOKEN_TABLE_MB")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(512)
                << 20,
            checkpoint_path: PathBuf::new(),
            checkpoint_interval: Duration::from_secs(1 << 30),
        };
        let tokenizer = Arc::new(tokenizer);
        let run = |budget: u64| {
            // Each run its own checkpoint: a finished run's checkpoint would refuse another budget.
            let config = RecordConfig {
                token_budget: Some(budget),
                checkpoint_path: dir.path().join(format!("{name}-{budget}.checkpoint")),
                ..record_config.clone()
            };
            let started = Instant::now();
            let outcome =
                dd_record::record(&model, &tokenizer, &config, &AtomicBool::new(false), &|_| {}).expect("record");
            let wall = started.elapsed().as_secs_f64();
            let RecordOutcome::Finished(recording) = outcome else { unreachable!("never stopped") };
            (recording.timing(), recording.tokens_recorded() as f64, wall)
        };
        // The first batches fill every selection, so each context is copied into dozens of them;
        // later ones rarely enter any. The difference of a run and one half as long is the steady state.
        let (half, _, _) = run(tokens / 2);
        let (timing, recorded, wall) = run(tokens);
        let steady = (timing.accumulate.as_secs_f64() - half.accumulate.as_secs_f64())
            / (timing.forward.as_secs_f64() - half.forward.as_secs_f64());
        println!(
            "| {name} | {:.0} | {:.0} | {:.1} % | {:.1} % | {wall:.1} |",
            recorded / wall,
            recorded / timing.forward.as_secs_f64(),
            100.0 * timing.accumulate.as_secs_f64() / timing.forward.as_secs_f64(),
            100.0 * steady
        );
    }
}
