//! `import`: arguments into a `dd-import` job, the progress bar, Ctrl-C, the closing summary.
//! Which importer and how it maps a format is `dd-import`'s policy (`formats::importer_for`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use dd_import::formats::{Format, FormatOptions, prepare};
use dd_import::{DatasetLocation, FetchConfig, ImportEvent, ImportJob, ImportRequest, ImportSummary, run_import};
use dd_store::StoreLocation;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ImportArgs;
use crate::recording::stop_on_signal;

pub(crate) fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let format = Format::from_name(&args.format).with_context(|| {
        let known: Vec<String> = Format::ALL.iter().map(|f| format!("  {:<14} {}", f.name(), f.describe())).collect();
        format!("unknown format {:?}; the formats are:\n{}", args.format, known.join("\n"))
    })?;
    if let DatasetLocation::Directory(path) = DatasetLocation::parse(&args.source) {
        anyhow::ensure!(path.exists(), "{} does not exist", path.display());
    }
    let options = FormatOptions {
        dataset_model: args.dataset_model.clone(),
        parts: args.parts.clone(),
        batches: args.batches,
        units_per_layer: args.width,
        mlp_neurons: args.mlp_neurons,
        source: args.source_name.clone(),
        // A database given by URL is downloaded beside the one it is imported into.
        download_dir: args.database.parent().map(std::path::Path::to_path_buf),
        fetch: fetch_config(&args),
    };
    let (location, importer) = prepare(format, &args.source, &options)?;

    let mut job = ImportJob::new(location.clone());
    job.model_name = args.model_name.clone();
    job.request =
        ImportRequest { layers: args.layers.clone(), units_per_layer: args.units_per_layer, model_name: None };
    job.fetch = fetch_config(&args);
    job.commit_every = args.commit_every.max(1) as usize;
    job.replace = args.replace;
    if let Some(workers) = args.workers {
        job.workers = workers.max(1);
    } else if matches!(location, DatasetLocation::Http(_)) {
        job.workers = job.workers.max(job.fetch.max_concurrency);
    }
    if let Some(path) = &args.tokenizer {
        let files = dd_model::tokenizer_at(path)?;
        let tokenizer = dd_model::load_tokenizer(&files)?;
        job.vocabulary = Some(dd_record::vocabulary_of(&tokenizer, 0));
    }

    let database = StoreLocation::SqliteFile(args.database.clone());
    let stop = stop_on_signal();
    let bar = ImportBar::new(format.name());
    let outcome = run_import(&database, importer.as_ref(), &job, stop.flag(), &|event| bar.show(event));
    bar.finish();
    let summary = outcome?;
    report(&summary, &location, &database);
    Ok(if summary.failures.is_empty() && !summary.stopped { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// How hard to use a dataset's server, from the arguments.
fn fetch_config(args: &ImportArgs) -> FetchConfig {
    FetchConfig {
        max_concurrency: usize::from(args.concurrency.max(1)),
        requests_per_minute: args.requests_per_minute,
        timeout: Duration::from_secs_f64(args.timeout.max(0.001)),
        max_retries: args.retries,
        ..FetchConfig::default()
    }
}

fn report(summary: &ImportSummary, location: &DatasetLocation, database: &StoreLocation) {
    eprintln!(
        "imported {} of {} items from {} into model {} (source {}) in {:.1} s: {} units, {} records, {:.0} units/s",
        summary.imported,
        summary.items,
        location.describe(),
        summary.model,
        summary.source,
        summary.elapsed.as_secs_f64(),
        summary.units_written,
        summary.records_written,
        summary.units_per_second()
    );
    if summary.already_imported > 0 {
        eprintln!("{} items were imported by an earlier run and skipped", summary.already_imported);
    }
    if summary.missing > 0 {
        eprintln!("{} items are not published (no file for them)", summary.missing);
    }
    for skipped in &summary.skipped {
        eprintln!("skipped: {skipped}");
    }
    if summary.kept_existing > 0 {
        eprintln!("kept {} records the database already had (--replace to overwrite them)", summary.kept_existing);
    }
    let (distinct, occurrences) = summary.unmapped_tokens;
    if distinct > 0 {
        eprintln!(
            "{distinct} token strings ({occurrences} occurrences) are not in the tokenizer's vocabulary: added after its last id"
        );
    }
    eprintln!(
        "fetched {} files, {:.1} MB, {} retries{}",
        summary.fetch.requests,
        summary.fetch.bytes as f64 / 1e6,
        summary.fetch.retries,
        summary.last_retry_reason.as_ref().map_or_else(String::new, |reason| format!(" (last: {reason})"))
    );
    if summary.stopped {
        eprintln!("stopped: run the same command again to go on where this run stopped");
    }
    if !summary.failures.is_empty() {
        eprintln!("{} items failed (run again to retry them):", summary.failures.len());
        for failure in summary.failures.iter().take(10) {
            eprintln!("  {}: {}", failure.key, failure.reason);
        }
        if summary.failures.len() > 10 {
            eprintln!("  … and {} more", summary.failures.len() - 10);
        }
    }
    eprintln!("serve with `deepdecipher serve {database}`");
}

/// The progress bar of an import, drawn from its events.
struct ImportBar {
    bar: ProgressBar,
}

impl ImportBar {
    fn new(format: &str) -> Self {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} items, {per_sec}, ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("import {format}"));
        Self { bar }
    }

    fn show(&self, event: ImportEvent) {
        match event {
            ImportEvent::Planned { items, already_imported } => {
                self.bar.set_length((items - already_imported) as u64);
                if already_imported > 0 {
                    self.bar.println(format!("{already_imported} of {items} items were imported by an earlier run"));
                }
            }
            ImportEvent::ItemDone { key, failure } => {
                self.bar.inc(1);
                match failure {
                    Some(reason) => self.bar.println(format!("failed {key}: {reason}")),
                    None => self.bar.set_message(key),
                }
            }
            ImportEvent::Committed { .. } => {}
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
