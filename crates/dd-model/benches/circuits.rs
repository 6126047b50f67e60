//! Weight-based neuron facts (`dd_model::circuits`) on random models of real shapes: seconds per
//! fact and the GEMM rate it reaches. After each fact the same matrix products run alone (same
//! shapes and strides, no scan, no normalisation), so the report can say what share of the CPU
//! time is not GEMM even on a machine that is busy with other work.
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p dd-model --bench circuits [-- SHAPES] [--facts LIST] [--k K]
//!         [--neuron-block N] [--column-block N] [--no-replay]
//!
//! SHAPES is a comma list of smollm2, gpt2-small (default: smollm2); LIST a comma list of
//! logits, inputs, connections (default: all).

use std::time::Instant;

use candle_core::{Device, Tensor};
use dd_model::{
    CircuitOptions, ModelConfig, Transformer, WeightFact, input_tokens, logit_attribution, neuron_connections,
    work_estimate,
};

/// The same allocator as the binary, so the measured allocation costs are the real ones.
#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

fn shape(name: &str) -> Option<ModelConfig> {
    // Only the rotary tables depend on the context length; the facts never read them.
    ModelConfig::benchmark_shape(name).map(|config| ModelConfig { n_ctx: 64, ..config })
}

/// `(start, length)` of consecutive tiles of at most `size` covering `start..end`, as the library
/// walks them.
fn tiles(start: usize, end: usize, size: usize) -> impl Iterator<Item = (usize, usize)> {
    (start..end).step_by(size).map(move |tile_start| (tile_start, size.min(end - tile_start)))
}

/// The products one fact runs, alone: `left [rows, d_model] × right`, right being a column tile
/// of a [d_model, columns] matrix, or for the input tokens of the transpose of the normalised
/// [columns, d_model] embedding tile.
fn gemms_only(config: &ModelConfig, fact: WeightFact, options: &CircuitOptions, device: &Device) {
    let ModelConfig { n_layers, d_model, d_mlp, d_vocab, .. } = *config;
    let random = |rows: usize, columns: usize| Tensor::randn(0f32, 0.02, (rows, columns), device).expect("random");
    let left = random(d_mlp, d_model);
    let run = |right: &Tensor| {
        for (row_start, rows) in tiles(0, d_mlp, options.neuron_block) {
            left.narrow(0, row_start, rows).expect("rows").matmul(right).expect("matmul");
        }
    };
    match fact {
        WeightFact::LogitAttribution => {
            let unembedding = random(d_model, d_vocab);
            for _ in 0..n_layers {
                for (column_start, width) in tiles(0, d_vocab, options.column_block) {
                    run(&unembedding.narrow(1, column_start, width).expect("tile"));
                }
            }
        }
        WeightFact::InputTokens => {
            let normalised = random(d_vocab, d_model);
            for _ in 0..n_layers {
                for (column_start, width) in tiles(0, d_vocab, options.column_block) {
                    run(&normalised.narrow(0, column_start, width).expect("tile").t().expect("transpose"));
                }
            }
        }
        WeightFact::NeuronConnections => {
            let readers = random(d_model, n_layers * d_mlp);
            for source in 0..n_layers.saturating_sub(1) {
                for (column_start, width) in tiles((source + 1) * d_mlp, n_layers * d_mlp, options.column_block) {
                    run(&readers.narrow(1, column_start, width).expect("tile"));
                }
            }
        }
    }
}

/// CPU seconds this process has used, all threads together (Linux; NaN elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // utime and stime are fields 14 and 15, the 12th and 13th after the parenthesised name.
    let Some((_, rest)) = text.rsplit_once(')') else { return f64::NAN };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let Some(ticks) = fields.get(11..13) else { return f64::NAN };
    // In USER_HZ, 100 on every mainstream Linux configuration.
    ticks.iter().filter_map(|tick| tick.parse::<f64>().ok()).sum::<f64>() / 100.0
}

/// Wall and CPU seconds of `work`.
fn timed(work: impl FnOnce()) -> (f64, f64) {
    let (start, start_cpu) = (Instant::now(), cpu_seconds());
    work();
    (start.elapsed().as_secs_f64(), cpu_seconds() - start_cpu)
}

fn main() {
    dd_alloc::keep_freed_pages();
    let arguments: Vec<String> = std::env::args().skip(1).filter(|argument| argument != "--bench").collect();
    let mut shapes = vec!["smollm2".to_owned()];
    let mut facts = vec!["logits".to_owned(), "inputs".to_owned(), "connections".to_owned()];
    let mut options = CircuitOptions::new(20);
    let mut replay = true;
    let mut index = 0;
    while index < arguments.len() {
        let value = arguments.get(index + 1).cloned().unwrap_or_default();
        let number = |fallback: usize| value.parse().unwrap_or(fallback);
        match arguments[index].as_str() {
            "--facts" => facts = value.split(',').map(str::to_owned).collect(),
            "--k" => options.k = number(options.k),
            "--neuron-block" => options.neuron_block = number(options.neuron_block),
            "--column-block" => options.column_block = number(options.column_block),
            "--no-replay" => {
                replay = false;
                index += 1;
                continue;
            }
            list => {
                shapes = list.split(',').map(str::to_owned).collect();
                index += 1;
                continue;
            }
        }
        index += 2;
    }
    let device = Device::Cpu;
    println!(
        "threads: {}  k {}  tile {} × {}",
        candle_core::utils::get_num_threads(),
        options.k,
        options.neuron_block,
        options.column_block
    );
    println!(
        "| shape | fact | seconds | CPU s | GFLOP | GFLOP/s | GEMM alone s | GEMM alone CPU s | non-GEMM CPU share |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for name in &shapes {
        let Some(config) = shape(name) else {
            eprintln!("unknown shape {name}");
            continue;
        };
        let model = Transformer::random(config.clone(), &device).expect("random model");
        for fact in &facts {
            let kind = match fact.as_str() {
                "logits" => WeightFact::LogitAttribution,
                "inputs" => WeightFact::InputTokens,
                "connections" => WeightFact::NeuronConnections,
                other => {
                    eprintln!("unknown fact {other}");
                    continue;
                }
            };
            let (seconds, cpu) = timed(|| {
                let layers = match kind {
                    WeightFact::LogitAttribution => logit_attribution(&model, &options, &|_| ()).expect("logits").len(),
                    WeightFact::InputTokens => input_tokens(&model, &options, &|_| ()).expect("inputs").len(),
                    WeightFact::NeuronConnections => {
                        neuron_connections(&model, &options, &|_| ()).expect("connections").len()
                    }
                };
                assert_eq!(layers, config.n_layers);
            });
            let (gemm_seconds, gemm_cpu) =
                if replay { timed(|| gemms_only(&config, kind, &options, &device)) } else { (f64::NAN, f64::NAN) };
            let gflop = work_estimate(&config, kind).flops as f64 / 1e9;
            println!(
                "| {name} | {fact} | {seconds:.1} | {cpu:.1} | {gflop:.0} | {:.1} | {gemm_seconds:.1} | {gemm_cpu:.1} | {:.0} % |",
                gflop / seconds,
                (1.0 - gemm_cpu / cpu) * 100.0
            );
        }
    }
}
