//! `record` and `merge`: arguments into `dd-record` jobs, progress bars drawn from the library's
//! events, Ctrl-C handling and the messages. The recording policy is `dd-record`'s
//! (`record_to_database`, `RecordingJob::standard`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use dd_record::dataset::{DatasetConfig, Shard};
use dd_record::{DatabaseWrite, DatasetDescription, JobEvent, JobOutcome, OpenedModel, RecordEvent, RecordingJob};
use dd_store::StoreLocation;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{MergeArgs, RecordArgs, RecordingArgs};

/// What a finished `record` produced, for the caller's report.
pub(crate) struct RecordReport {
    pub(crate) tokens: u64,
    pub(crate) seconds: f64,
}

/// Ctrl-C and SIGTERM while recording: the first asks the recorder to checkpoint and stop after
/// its batch, a second aborts. While the database is written they abort at once (the checkpoint
/// stays, so the next run writes it again). Once dropped, the signals are someone else's (`demo`
/// then serves, and the server shuts down gracefully).
pub(crate) struct StopSignal {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU8>,
}

const RECORDING: u8 = 0;
const WRITING: u8 = 1;
const DETACHED: u8 = 2;

impl StopSignal {
    /// The flag the recorder polls.
    pub(crate) fn flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// Recording is over: a signal now aborts.
    pub(crate) fn recording_done(&self) {
        self.phase.store(WRITING, Ordering::Relaxed);
    }
}

impl Drop for StopSignal {
    fn drop(&mut self) {
        self.phase.store(DETACHED, Ordering::Relaxed);
    }
}

pub(crate) fn stop_on_signal() -> StopSignal {
    let signal = StopSignal { stop: Arc::new(AtomicBool::new(false)), phase: Arc::new(AtomicU8::new(RECORDING)) };
    let (flag, phase) = (Arc::clone(&signal.stop), Arc::clone(&signal.phase));
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async { crate::shutdown_signal().await });
        match phase.load(Ordering::Relaxed) {
            DETACHED => return,
            WRITING => {
                eprintln!("interrupted; the checkpoint is kept, so running again finishes the database");
                std::process::exit(130);
            }
            _ => {}
        }
        eprintln!("stopping: finishing this batch and writing a checkpoint (interrupt again to abort)");
        flag.store(true, Ordering::Relaxed);
        runtime.block_on(async { crate::shutdown_signal().await });
        if phase.load(Ordering::Relaxed) != DETACHED {
            std::process::exit(130);
        }
    });
    signal
}

pub(crate) fn open_model(reference: &str) -> anyhow::Result<OpenedModel> {
    let spinner = ProgressBar::new_spinner().with_message(format!("loading {reference}"));
    spinner.enable_steady_tick(Duration::from_millis(200));
    let opened = dd_record::open_model(reference).with_context(|| format!("opening the model {reference}"))?;
    spinner.finish_and_clear();
    let c = opened.transformer.config();
    tracing::info!(layers = c.n_layers, d_mlp = c.d_mlp, d_model = c.d_model, "loaded {reference}");
    Ok(opened)
}

/// The library job for `record`'s (and the demo's) arguments: every flag as given, the rest as
/// [`RecordingJob::standard`] has it.
pub(crate) fn recording_job(args: &RecordingArgs, dataset: &Path, output: &Path) -> RecordingJob {
    let standard = RecordingJob::standard(dataset, output);
    let dataset_description = DatasetDescription {
        name: args.dataset_name.clone().unwrap_or_else(|| standard.dataset_description.name.clone()),
        ..standard.dataset_description.clone()
    };
    RecordingJob {
        dataset: DatasetConfig { path: dataset.to_owned(), format: None, text_field: args.text_field.clone() },
        dataset_description,
        model_name: args.name.clone(),
        context_length: args.context,
        token_budget: args.tokens,
        batch_size: args.batch,
        top: args.top,
        bottom: args.bottom,
        bands: args.bands,
        per_band: args.per_band,
        random: args.random,
        token_table_bytes: args.token_table_mb.saturating_mul(1 << 20),
        shard: args.shard.map(|(index, count)| Shard { index, count }),
        checkpoint_interval: dd_record::checkpoint_interval_from_minutes(args.checkpoint_minutes),
        weight_facts: if args.no_weights { None } else { standard.weight_facts },
        ..standard
    }
}

/// Runs `job` with progress bars and Ctrl-C handling; `Ok(None)` when interrupted.
pub(crate) fn run_job(opened: &OpenedModel, job: &RecordingJob) -> anyhow::Result<Option<RecordReport>> {
    let stop = stop_on_signal();
    let display = JobDisplay::new(&job.output.store, job.model_name(opened), Some(&stop));
    let outcome = dd_record::record_to_database(opened, job, &|event| display.show(event), stop.flag());
    display.clear_recording_bar();
    match outcome? {
        JobOutcome::Interrupted { tokens: 0 } => {
            eprintln!("stopped before recording anything; nothing was saved");
            Ok(None)
        }
        JobOutcome::Interrupted { tokens } => {
            eprintln!(
                "stopped after {tokens} tokens; the checkpoint is {}. Run the same command again to continue.",
                job.output.checkpoint_path.display()
            );
            Ok(None)
        }
        JobOutcome::Finished { tokens, .. } => {
            if let Some(Shard { index, count }) = job.shard {
                eprintln!(
                    "wrote shard {index}/{count} to {}; combine the shards with `deepdecipher merge`",
                    job.output.store
                );
            }
            let seconds = display.recording_seconds.get().copied().unwrap_or_default();
            Ok(Some(RecordReport { tokens, seconds }))
        }
    }
}

/// The bars and messages of a job, drawn from its events. A bar appears with its phase's first
/// event and is cleared when the phase ends.
struct JobDisplay<'a> {
    store: &'a StoreLocation,
    model_name: &'a str,
    /// The signal to switch to aborting once recording is over (none for `merge`).
    stop: Option<&'a StopSignal>,
    started: OnceLock<Instant>,
    recording_seconds: OnceLock<f64>,
    recording: OnceLock<ProgressBar>,
    writing: OnceLock<ProgressBar>,
    weights: OnceLock<ProgressBar>,
}

impl<'a> JobDisplay<'a> {
    fn new(store: &'a StoreLocation, model_name: &'a str, stop: Option<&'a StopSignal>) -> Self {
        Self {
            store,
            model_name,
            stop,
            started: OnceLock::new(),
            recording_seconds: OnceLock::new(),
            recording: OnceLock::new(),
            writing: OnceLock::new(),
            weights: OnceLock::new(),
        }
    }

    fn show(&self, event: JobEvent) {
        match event {
            JobEvent::Started => {
                self.recording_bar().set_message("recording");
                let _ = self.started.set(Instant::now());
            }
            JobEvent::Record(RecordEvent::Counting { tokens }) => {
                let bar = self.recording_bar();
                bar.set_message("counting tokens");
                bar.set_position(tokens);
            }
            JobEvent::Record(RecordEvent::Recording { tokens, total }) => {
                let bar = self.recording_bar();
                bar.set_message("recording");
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(tokens);
            }
            JobEvent::Record(RecordEvent::Checkpointed { tokens }) => {
                self.recording_bar().set_prefix(format!("checkpoint at {tokens} tokens"));
            }
            JobEvent::RecordingFinished => {
                self.clear_recording_bar();
                if let Some(stop) = self.stop {
                    stop.recording_done();
                }
            }
            JobEvent::WriteStarting { tokens, contexts, deleted_unfinished_write } => {
                if deleted_unfinished_write {
                    eprintln!("{} holds an unfinished write of {}; writing it again", self.store, self.model_name);
                }
                let seconds = self.started.get().map_or(0.0, |started| started.elapsed().as_secs_f64());
                let _ = self.recording_seconds.set(seconds);
                eprintln!(
                    "recorded {tokens} tokens ({contexts} contexts) in {seconds:.1} s: {:.0} tokens/s",
                    tokens as f64 / seconds
                );
            }
            JobEvent::WritingNeurons { done, total } => {
                let bar = self.writing.get_or_init(|| crate::progress_bar("writing", "neurons"));
                bar.set_length(total);
                bar.set_position(done);
            }
            JobEvent::NeuronsWritten => {
                if let Some(bar) = self.writing.get() {
                    bar.finish_and_clear();
                }
            }
            JobEvent::WeightFacts(progress) => {
                let bar = self.weights.get_or_init(|| {
                    let bar = ProgressBar::new(0);
                    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {percent}% (ETA {eta})") {
                        bar.set_style(style);
                    }
                    bar
                });
                let what = match progress.fact {
                    dd_model::WeightFact::LogitAttribution => "logit attribution",
                    dd_model::WeightFact::InputTokens => "input tokens",
                    dd_model::WeightFact::NeuronConnections => "neuron connections",
                };
                bar.set_message(what);
                bar.set_length(progress.total);
                bar.set_position(progress.done);
            }
            JobEvent::WeightFactsWritten { n_records, elapsed } => {
                if let Some(bar) = self.weights.get() {
                    bar.finish_and_clear();
                }
                eprintln!(
                    "wrote {n_records} weight-based records (logit attribution, input tokens, connections) in {:.1} s",
                    elapsed.as_secs_f64()
                );
            }
            JobEvent::DatabaseWritten(summary) => {
                eprintln!(
                    "wrote {} neurons ({} records) of {} to {}; file is {}",
                    summary.n_neurons,
                    summary.n_records,
                    self.model_name,
                    self.store,
                    crate::human_bytes(store_bytes(self.store))
                );
            }
        }
    }

    fn recording_bar(&self) -> &ProgressBar {
        self.recording.get_or_init(|| {
            let bar = ProgressBar::new(0);
            let template = "{msg} {bar:40} {human_pos}/{human_len} tokens ({per_sec}, ETA {eta}) {prefix}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        })
    }

    fn clear_recording_bar(&self) {
        if let Some(bar) = self.recording.get() {
            bar.finish_and_clear();
        }
    }
}

/// The size of a database file, for messages (0 for a store that is not one file).
fn store_bytes(store: &StoreLocation) -> u64 {
    match store {
        StoreLocation::SqliteFile(path) => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        _ => 0,
    }
}

pub(crate) fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let opened = open_model(&args.model)?;
    let job = recording_job(&args.recording, &args.dataset, &args.output);
    match run_job(&opened, &job)? {
        Some(_) => Ok(ExitCode::SUCCESS),
        None => Ok(ExitCode::from(130)),
    }
}

pub(crate) fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let paths: Vec<&Path> = args.shards.iter().map(PathBuf::as_path).collect();
    let merged = dd_record::merge_shards(&paths)?;
    let opened = open_model(&args.model)?;
    merged.check_model(&opened.transformer)?;
    let name = args.name.clone().unwrap_or_else(|| opened.default_name.clone());
    let shards_dataset = merged.dataset().context("the shards do not say what they were recorded on")?;
    let dataset = DatasetDescription {
        name: args.dataset_name.clone().unwrap_or_else(|| shards_dataset.name.clone()),
        ..shards_dataset.clone()
    };
    let store = StoreLocation::SqliteFile(args.output.clone());
    let standard = DatabaseWrite::standard(store, &name, &dataset, &opened.origin);
    let database =
        DatabaseWrite { weight_facts: if args.no_weights { None } else { standard.weight_facts }, ..standard };
    let display = JobDisplay::new(&database.store, &name, None);
    dd_record::write_to_database(&opened, &merged, &database, &|event| display.show(event))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// `record` without options runs the library's standard job: the flags' defaults and
    /// `RecordingJob::standard` cannot drift apart.
    #[test]
    fn record_defaults_are_the_standard_job() {
        let cli = Cli::try_parse_from(["deepdecipher", "record", "model.gguf", "corpus"]).expect("parses");
        let Command::Record(args) = cli.command else { panic!("not record: {:?}", cli.command) };
        let standard = RecordingJob::standard(Path::new("corpus"), Path::new("data.db"));
        assert_eq!(recording_job(&args.recording, &args.dataset, &args.output), standard);
    }
}
