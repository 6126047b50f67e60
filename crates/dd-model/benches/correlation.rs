//! The correlation pass (`dd_model::correlation`) at a model's size: random activations of
//! NEURONS neurons on TOKENS tokens (groups sharing a signal, so lists are not all noise), added in
//! chunks of 1,024 tokens, then every neuron's 10 most positively and negatively correlated others.
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p dd-model --bench correlation [-- NEURONS TOKENS]
//!
//! Defaults: 46,080 neurons (SmolLM2-135M) and 20,000 tokens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dd_model::correlation::{ActivationSample, CorrelationOptions};

#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

fn main() {
    dd_alloc::keep_freed_pages();
    let arguments: Vec<usize> = std::env::args().skip(1).filter_map(|argument| argument.parse().ok()).collect();
    let neurons = arguments.first().copied().unwrap_or(46_080);
    let tokens = arguments.get(1).copied().unwrap_or(20_000);
    let options = CorrelationOptions::default();
    println!(
        "{neurons} neurons × {tokens} tokens, k {}, tiles of {n} × {n}, sample {:.2} GB, {} threads",
        options.k,
        ActivationSample::memory_bytes(neurons, tokens) as f64 / 1e9,
        rayon::current_num_threads(),
        n = options.neuron_block,
    );
    let started = Instant::now();
    let mut sample = ActivationSample::new(neurons, tokens).expect("sample");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let chunk = 1024;
    let mut rows = vec![0f32; chunk * neurons];
    let mut added = 0;
    while added < tokens {
        let count = chunk.min(tokens - added);
        for row in rows[..count * neurons].chunks_exact_mut(neurons) {
            let signals: Vec<f32> = (0..64).map(|_| next()).collect();
            for (neuron, value) in row.iter_mut().enumerate() {
                *value = signals[neuron % 64] + next() * 0.5;
            }
        }
        sample.push(&rows[..count * neurons]).expect("push");
        added += count;
    }
    let filled = started.elapsed();
    let done = AtomicU64::new(0);
    let started = Instant::now();
    let lists = sample
        .correlations(&options, &|n| {
            done.fetch_add(n, Ordering::Relaxed);
        })
        .expect("correlations");
    let elapsed = started.elapsed();
    let flops = 2.0 * (neurons as f64) * (neurons as f64 + options.neuron_block as f64) / 2.0 * tokens as f64;
    println!(
        "filling the sample (random values): {:.1} s; correlations: {:.1} s ({:.1} GFLOP/s over the tiles computed)",
        filled.as_secs_f64(),
        elapsed.as_secs_f64(),
        flops / elapsed.as_secs_f64() / 1e9
    );
    let first = &lists[0];
    println!("neuron 0: most positive {:?}", &first.positive[..3.min(first.positive.len())]);
}
