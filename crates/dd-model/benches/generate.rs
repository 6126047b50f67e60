//! Generation with the key/value cache on the real SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised
//! to f32): prefill of a long prompt, the per-token decode step, a prompt plus 40 new tokens end to
//! end, the old uncached loop (one whole-sequence `run` per token) for comparison, and the logits of
//! a few tokens at every position of the prompt.
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p dd-model --bench generate [-- --prompt N] [--new N] [--runs N]
//!
//! `--profile prefill` (or `decode`) runs only that step, `--runs` times, for `perf record`.
//! The model comes from `$DD_TEST_ASSETS` (default `/var/tmp/deepdecipher-assets`), as in the tests.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use dd_model::{
    GenerationConfig, RunRequest, Sampling, StopReason, Tokenizer, Transformer, generate, load_transformer,
};

/// As the forward bench: mimalloc keeps the pages of the per-op tensors.
#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

/// Tokens cached before the prefill that follows a prefix.
const PREFIX: usize = 20;

/// Uncached steps timed; 40 of them would take minutes, and each costs about the same.
const UNCACHED_STEPS: usize = 3;

struct Options {
    prompt: usize,
    new_tokens: usize,
    runs: usize,
    /// Only this step, for a profiler.
    profile: Option<String>,
}

fn options() -> Options {
    let arguments: Vec<String> = std::env::args().skip(1).filter(|argument| argument != "--bench").collect();
    let mut options = Options { prompt: 1000, new_tokens: 40, runs: 3, profile: None };
    for pair in arguments.chunks(2) {
        let value = pair.get(1).and_then(|value| value.parse().ok()).filter(|&value: &usize| value > 0);
        match (pair[0].as_str(), value) {
            ("--prompt", Some(value)) => options.prompt = value,
            ("--new", Some(value)) => options.new_tokens = value,
            ("--runs", Some(value)) => options.runs = value,
            ("--profile", _) => options.profile = pair.get(1).cloned(),
            (other, _) => {
                panic!("bad argument {other}: expected --prompt N, --new N, --runs N (N > 0) or --profile STEP")
            }
        }
    }
    options
}

/// `length` tokens of varied English prose (numbers change from sentence to sentence, so the text
/// is not one repeated n-gram).
fn prompt_ids(tokenizer: &Tokenizer, length: usize) -> Vec<u32> {
    let mut text = String::new();
    let mut ids = Vec::new();
    let mut sentence = 0;
    while ids.len() < length {
        for _ in 0..50 {
            sentence += 1;
            text.push_str(&format!(
                "In year {}, the village of Ashford counted {} households, {} more than the survey of the \
                 previous decade, and its mill ground {} sacks of grain each week. ",
                1700 + sentence,
                120 + sentence * 7 % 53,
                sentence % 11,
                40 + sentence * 13 % 29
            ));
        }
        ids = tokenizer.encode(&text).expect("encode");
    }
    ids.truncate(length);
    ids
}

/// Runs `step` `runs` times and returns the times, sorted.
fn timed(runs: usize, mut step: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            step();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    times
}

/// The process's user + system CPU seconds so far (Linux `/proc/self/stat`, at the usual 100
/// ticks per second), or `None` elsewhere. On this shared machine other tenants' work stretches
/// the wall clock several-fold while the CPU time a step needs barely moves: CPU seconds ÷ threads
/// is what the step would take on free cores.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// [`timed`], with the CPU seconds per run ÷ the thread count when they can be read.
fn timed_with_cpu(runs: usize, step: impl FnMut()) -> (Vec<Duration>, String) {
    let before = cpu_seconds();
    let times = timed(runs, step);
    let threads = candle_core::utils::get_num_threads() as f64;
    let cpu = match (before, cpu_seconds()) {
        (Some(before), Some(after)) => {
            format!(", CPU ÷ {threads} threads {:.2} s per run", (after - before) / runs as f64 / threads)
        }
        _ => String::new(),
    };
    (times, cpu)
}

fn seconds(times: &[Duration]) -> String {
    times.iter().map(|time| format!("{:.2}", time.as_secs_f64())).collect::<Vec<_>>().join(", ")
}

fn median(times: &[Duration]) -> Duration {
    times[times.len() / 2]
}

/// The machine's GEMM rate at the moment, GFLOP/s (median of 10), at the shape of the prefill's MLP
/// input product: on this shared machine it moves several-fold from one hour to the next, and
/// the prefill moves with it.
fn gemm_rate(rows: usize, device: &Device) -> f64 {
    let left = Tensor::randn(0f32, 1.0, (rows, 576), device).expect("left");
    let right = Tensor::randn(0f32, 1.0, (576, 3072), device).expect("right");
    left.matmul(&right).expect("warm-up");
    let times = timed(10, || {
        left.matmul(&right).expect("matmul");
    });
    2.0 * rows as f64 * 576.0 * 3072.0 / median(&times).as_secs_f64() / 1e9
}

/// The most likely next token after the last row of `hidden`.
fn greedy_next(model: &Transformer, hidden: &Tensor) -> u32 {
    let rows = hidden.dim(0).expect("rows");
    let logits = model.logits_of(&hidden.narrow(0, rows - 1, 1).expect("last row")).expect("logits");
    logits.squeeze(0).expect("squeeze").argmax(0).expect("argmax").to_scalar().expect("id")
}

fn main() {
    dd_alloc::keep_freed_pages();
    let Options { prompt: prompt_length, new_tokens, runs, profile } = options();
    let directory =
        std::env::var_os("DD_TEST_ASSETS").map_or_else(|| PathBuf::from("/var/tmp/deepdecipher-assets"), PathBuf::from);
    let path = directory.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let device = Device::Cpu;
    let model = load_transformer(&path, &device).expect("SmolLM2 loads");
    let tokenizer = Tokenizer::from_gguf(&path).expect("tokenizer");
    let prompt = prompt_ids(&tokenizer, prompt_length);
    println!(
        "SmolLM2-135M-Instruct (Q4_1 → f32), threads: {}, prompt {prompt_length} tokens, {new_tokens} new, {runs} runs each",
        candle_core::utils::get_num_threads()
    );
    println!("GEMM ({prompt_length}×576)×(576×3072): {:.0} GFLOP/s now", gemm_rate(prompt_length, &device));
    // One untimed pass: the first touches every weight page and warms the allocator.
    model.extend(&mut model.new_cache(), &prompt).expect("warm-up");
    match profile.as_deref() {
        None => {}
        Some("prefill") => {
            let times = timed(runs, || {
                model.extend(&mut model.new_cache(), &prompt).expect("prefill");
            });
            println!("prefill: {} s", seconds(&times));
            return;
        }
        Some("decode") => {
            let mut cache = model.new_cache();
            model.extend(&mut cache, &prompt).expect("prefill");
            let mut next = 1;
            let steps = timed(runs * new_tokens, || {
                next = greedy_next(&model, &model.extend(&mut cache, &[next]).expect("decode"));
            });
            println!("decode: median {:.1} ms", median(&steps).as_secs_f64() * 1e3);
            return;
        }
        Some(other) => panic!("--profile takes prefill or decode, not {other}"),
    }

    let (prefill, cpu) = timed_with_cpu(runs, || {
        model.extend(&mut model.new_cache(), &prompt).expect("prefill");
    });
    println!("prefill of {prompt_length} tokens: {} s (sorted){cpu}", seconds(&prefill));
    // The same tokens after a cached prefix (a shared system prompt) go through the cached
    // attention kernel instead of the tiled causal one.
    let mut prefix = model.new_cache();
    model.extend(&mut prefix, &prompt[..PREFIX]).expect("prefix");
    let (after_prefix, cpu) = timed_with_cpu(runs, || {
        model.extend(&mut prefix.clone(), &prompt).expect("prefill after a prefix");
    });
    println!(
        "prefill of {prompt_length} tokens after a cached {PREFIX}-token prefix: {} s (sorted){cpu}",
        seconds(&after_prefix)
    );

    // Decode steps as generation runs them: logits of the last row, then the chosen token's pass.
    let mut cache = model.new_cache();
    let mut next = greedy_next(&model, &model.extend(&mut cache, &prompt).expect("prefill"));
    let mut steps = Vec::with_capacity(new_tokens);
    let cpu_before = cpu_seconds();
    for _ in 0..new_tokens {
        let start = Instant::now();
        let hidden = model.extend(&mut cache, &[next]).expect("decode");
        next = greedy_next(&model, &hidden);
        steps.push(start.elapsed());
    }
    let cpu = match (cpu_before, cpu_seconds()) {
        (Some(before), Some(after)) => format!(
            ", CPU ÷ threads {:.1} ms",
            (after - before) / new_tokens as f64 / candle_core::utils::get_num_threads() as f64 * 1e3
        ),
        _ => String::new(),
    };
    steps.sort_unstable();
    let mean_step = steps.iter().sum::<Duration>() / steps.len().max(1) as u32;
    println!(
        "decode per token (cache {prompt_length}–{}): mean {:.1} ms, median {:.1} ms, min {:.1} ms, max {:.1} ms{cpu}",
        prompt_length + new_tokens,
        mean_step.as_secs_f64() * 1e3,
        median(&steps).as_secs_f64() * 1e3,
        steps[0].as_secs_f64() * 1e3,
        steps[steps.len() - 1].as_secs_f64() * 1e3
    );

    let config = GenerationConfig { max_new_tokens: new_tokens, stop_tokens: Vec::new(), sampling: Sampling::Greedy };
    let (end_to_end, cpu) = timed_with_cpu(runs, || {
        let generated = generate(&model, &prompt, &config).expect("generate");
        assert_eq!((generated.tokens.len(), generated.stop), (new_tokens, StopReason::MaxTokens));
    });
    println!("generate, {prompt_length} + {new_tokens} tokens end to end: {} s (sorted){cpu}", seconds(&end_to_end));

    // The old loop: the whole sequence through `run`, with logits at every position, per token.
    let mut ids = prompt.clone();
    let uncached = timed(UNCACHED_STEPS, || {
        let input = Tensor::from_slice(&ids, (1, ids.len()), &device).expect("ids");
        let logits = model.run(&input, &RunRequest::logits_only()).expect("run").logits.expect("logits");
        let last = logits.squeeze(0).expect("squeeze").get(ids.len() - 1).expect("last row");
        ids.push(last.argmax(0).expect("argmax").to_scalar().expect("id"));
    });
    let per_step = uncached.iter().sum::<Duration>() / UNCACHED_STEPS as u32;
    println!(
        "uncached loop: {:.2} s per token at {prompt_length} tokens ({UNCACHED_STEPS} steps: {} s), so about {:.0} s for {new_tokens} tokens",
        per_step.as_secs_f64(),
        seconds(&uncached),
        per_step.as_secs_f64() * new_tokens as f64
    );

    // Use (b): a few candidate tokens at every position of one prompt.
    let hidden = model.extend(&mut model.new_cache(), &prompt).expect("prefill");
    let candidates: Vec<u32> = (0..10).map(|digit| tokenizer.token_id(&digit.to_string()).expect("digit")).collect();
    let full = timed(runs, || {
        model.logits_of(&hidden).expect("logits_of");
    });
    let picked = timed(runs, || {
        model.token_logits(&hidden, &candidates).expect("token_logits");
    });
    println!(
        "logits at all {prompt_length} positions: full vocabulary {:.0} ms, 10 candidate tokens {:.2} ms (medians)",
        median(&full).as_secs_f64() * 1e3,
        median(&picked).as_secs_f64() * 1e3
    );
    println!("GEMM ({prompt_length}×576)×(576×3072): {:.0} GFLOP/s at the end", gemm_rate(prompt_length, &device));
}
