//! Sentence embeddings (`dd_model::SentenceEncoder`, all-MiniLM-L6-v2 from the test assets):
//! throughput embedding 1,000 explanation-length texts (10–20 words) in one call, as a database's
//! explanations are embedded, and the latency of one short search query, as a request embeds it.
//!
//!     scripts/fetch-test-assets.sh
//!     RAYON_NUM_THREADS=2 cargo bench -p dd-model --bench sentence [-- --rounds N] [--query-only]
//!
//! `--query-only` skips the throughput part, for profiling the query path.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dd_model::SentenceEncoder;

/// The same allocator as the binary, so the measured allocation costs are the real ones.
#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

const N_EXPLANATIONS: usize = 1_000;
/// Eight word pieces with `[CLS]` and `[SEP]`.
const QUERY: &str = "neurons that fire on legal language";
const QUERY_REPEATS: usize = 300;

/// Words explanations are made of; the texts are random sequences of them, which tokenize like
/// explanations (mostly one piece per word, some split).
const WORDS: &[&str] = &[
    "the",
    "word",
    "thou",
    "in",
    "Shakespearean",
    "dialogue",
    "tokens",
    "after",
    "a",
    "comma",
    "legal",
    "language",
    "names",
    "of",
    "cities",
    "numbers",
    "years",
    "closing",
    "parentheses",
    "Python",
    "code",
    "mentions",
    "French",
    "plural",
    "nouns",
    "verbs",
    "past",
    "tense",
    "questions",
    "end",
    "sentences",
    "quotation",
    "marks",
    "months",
    "colors",
    "body",
    "parts",
    "negation",
    "not",
    "and",
    "or",
    "between",
    "brackets",
    "HTML",
    "tags",
    "emotions",
    "sadness",
    "mathematical",
    "expressions",
    "variables",
    "units",
    "measurement",
    "kilometres",
    "first",
    "person",
    "pronouns",
    "biblical",
    "references",
    "kings",
    "queens",
    "when",
    "following",
    "preceding",
    "capitalised",
];

/// `N_EXPLANATIONS` texts of 10–20 words, the same every run (SplitMix64 from a fixed seed).
fn explanations() -> Vec<String> {
    let mut state = 0x5EED_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..N_EXPLANATIONS)
        .map(|_| {
            let n_words = 10 + (next() % 11) as usize;
            let words: Vec<&str> = (0..n_words).map(|_| WORDS[(next() % WORDS.len() as u64) as usize]).collect();
            words.join(" ")
        })
        .collect()
}

fn model_dir() -> PathBuf {
    let assets =
        std::env::var_os("DD_TEST_ASSETS").map_or_else(|| PathBuf::from("/var/tmp/deepdecipher-assets"), PathBuf::from);
    let dir = assets.join("all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").is_file(), "{} is missing: run scripts/fetch-test-assets.sh", dir.display());
    dir
}

/// CPU time of every thread of this process so far (Linux `schedstat`, in nanoseconds), or `None`
/// elsewhere. On a busy shared machine wall time includes waiting for a core; CPU time is steadier.
/// With several threads it includes rayon's workers spinning while they wait for work.
fn process_cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let text = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// `after - before` in milliseconds per item, or "n/a".
fn cpu_per_item(before: Option<Duration>, after: Option<Duration>, n_items: usize) -> String {
    match (before, after) {
        (Some(before), Some(after)) => format!("{:.2} ms", (after - before).as_secs_f64() * 1e3 / n_items as f64),
        _ => "n/a".to_owned(),
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

fn main() {
    dd_alloc::keep_freed_pages();
    let arguments: Vec<String> = std::env::args().skip(1).filter(|argument| argument != "--bench").collect();
    let query_only = arguments.iter().any(|argument| argument == "--query-only");
    let rounds = match arguments.iter().position(|argument| argument == "--rounds") {
        Some(flag_idx) => {
            arguments.get(flag_idx + 1).and_then(|value| value.parse().ok()).expect("--rounds takes a number")
        }
        None => 5,
    };
    let start = Instant::now();
    let encoder = SentenceEncoder::load(&model_dir()).expect("all-MiniLM-L6-v2 loads");
    println!(
        "threads: {}  model {} ({} dims) loaded in {:.0} ms",
        candle_core::utils::get_num_threads(),
        encoder.model_name(),
        encoder.dimension(),
        start.elapsed().as_secs_f64() * 1e3
    );

    if !query_only {
        throughput(&encoder, rounds);
    }
    query_latency(&encoder);
}

/// Explanations per second, embedding all of them in one call (the encoder batches).
fn throughput(encoder: &SentenceEncoder, rounds: usize) {
    let texts = explanations();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    encoder.embed(&text_refs[..64]).expect("warm-up");
    let cpu_before = process_cpu_time();
    let mut round_times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            let vectors = encoder.embed(&text_refs).expect("embed");
            assert_eq!(vectors.len(), N_EXPLANATIONS);
            start.elapsed()
        })
        .collect();
    let cpu = cpu_per_item(cpu_before, process_cpu_time(), rounds * N_EXPLANATIONS);
    round_times.sort_unstable();
    let rate = |time: Duration| N_EXPLANATIONS as f64 / time.as_secs_f64();
    println!(
        "{N_EXPLANATIONS} explanations of 10-20 words, {rounds} rounds: median {:.0} explanations/s ({:.2} s), \
         best {:.0}/s; CPU {cpu} per explanation",
        rate(percentile(&round_times, 0.5)),
        percentile(&round_times, 0.5).as_secs_f64(),
        rate(round_times[0]),
    );
}

/// One short query at a time, as a search request embeds it.
fn query_latency(encoder: &SentenceEncoder) {
    for _ in 0..20 {
        encoder.embed(&[QUERY]).expect("warm-up");
    }
    let cpu_before = process_cpu_time();
    let mut query_times: Vec<Duration> = (0..QUERY_REPEATS)
        .map(|_| {
            let start = Instant::now();
            encoder.embed(&[QUERY]).expect("embed");
            start.elapsed()
        })
        .collect();
    let cpu = cpu_per_item(cpu_before, process_cpu_time(), QUERY_REPEATS);
    query_times.sort_unstable();
    let ms = |time: Duration| time.as_secs_f64() * 1e3;
    println!(
        "one query {QUERY:?}, {QUERY_REPEATS} times: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms; CPU {cpu} per query",
        ms(percentile(&query_times, 0.5)),
        ms(percentile(&query_times, 0.9)),
        ms(percentile(&query_times, 0.99)),
    );
}
