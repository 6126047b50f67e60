//! Neurons per second of importing OpenAI's GPT-2 XL layout (collated activations and
//! explanations, generated at the published sizes by `dd_import::testing::openai`), from local
//! disk and from a local HTTP server with 8 requests in flight, into a fresh database.
//!
//!     cargo bench -p dd-import --bench import_openai [-- --neurons N] [--layers L] [--keep DIR]
//!
//! The full dataset (307,200 neurons, about 90 GB of JSON) does not fit this machine's disk; the
//! generator writes `--layers` × `--neurons` of it (default 1 × 2,000, about 600 MB) and the rate
//! is per neuron, which is what scales: each neuron is two files, parsed and written on its own.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use dd_import::formats::openai::{OpenAiImporter, OpenAiModel, OpenAiPart};
use dd_import::testing::FixtureServer;
use dd_import::testing::openai::{OpenAiFixture, write_openai_dataset};
use dd_import::{DatasetLocation, ImportJob, ImportRequest, run_import};
use dd_store::StoreLocation;

/// The binary's allocator: imports allocate a little per token.
#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

fn argument(name: &str) -> Option<String> {
    let arguments: Vec<String> = std::env::args().collect();
    arguments.iter().position(|argument| argument == name).and_then(|index| arguments.get(index + 1)).cloned()
}

fn main() {
    let layers: u32 = argument("--layers").and_then(|v| v.parse().ok()).unwrap_or(1);
    let neurons: u32 = argument("--neurons").and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = argument("--keep").map_or_else(|| scratch.path().join("data"), PathBuf::from);
    let shape = OpenAiFixture::realistic(layers, neurons);
    if !root.join("explanations").join((layers - 1).to_string()).join(format!("{}.jsonl", neurons - 1)).exists() {
        let started = Instant::now();
        let bytes = write_openai_dataset(&root, &shape).expect("generate");
        println!(
            "generated {} neurons, {:.0} MB of JSON ({:.0} KB per neuron) in {:.1} s",
            layers * neurons,
            bytes as f64 / 1e6,
            bytes as f64 / 1e3 / f64::from(layers * neurons),
            started.elapsed().as_secs_f64()
        );
    }
    let parts = [OpenAiPart::Activations, OpenAiPart::Explanations];
    let importer = OpenAiImporter::new(OpenAiModel::Gpt2Xl, &parts);
    let server = FixtureServer::serve(&root).expect("serve");
    for (label, location) in [
        ("local disk", DatasetLocation::Directory(root.clone())),
        ("HTTP, 8 in flight", DatasetLocation::Http(server.url())),
    ] {
        let db = scratch.path().join(format!("{}.db", label.len()));
        let mut job = ImportJob::new(location);
        job.request = ImportRequest {
            layers: Some((0..layers).collect()),
            units_per_layer: Some(neurons),
            ..ImportRequest::default()
        };
        let started = Instant::now();
        let summary =
            run_import(&StoreLocation::SqliteFile(db.clone()), &importer, &job, &AtomicBool::new(false), &|_| {})
                .expect("import");
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(
            summary.units_written,
            u64::from(layers * neurons),
            "{:?}",
            &summary.failures[..summary.failures.len().min(3)]
        );
        println!(
            "{label}: {} neurons in {seconds:.1} s = {:.0} neurons/s ({} workers), {:.0} MB read, database {:.0} MB, peak RSS {} MB",
            summary.units_written,
            summary.units_written as f64 / seconds,
            job.workers,
            summary.fetch.bytes as f64 / 1e6,
            std::fs::metadata(&db).map_or(0, |m| m.len()) as f64 / 1e6,
            peak_rss_mb()
        );
    }
}

/// The process's peak resident memory, from `/proc` (Linux).
fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|line| line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb / 1024)
}
