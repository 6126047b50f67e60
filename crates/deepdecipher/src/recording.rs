//! `record` and `merge`: progress bars, Ctrl-C handling and reporting around `dd-record`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use dd_record::dataset::{DatasetConfig, Shard};
use dd_record::{
    AccumulatorConfig, OpenedModel, RecordConfig, RecordEvent, RecordOutcome, Recording, SelectionSizes, WriteConfig,
};
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
        runtime.block_on(crate::shutdown_signal());
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
        runtime.block_on(crate::shutdown_signal());
        if phase.load(Ordering::Relaxed) != DETACHED {
            std::process::exit(130);
        }
    });
    signal
}

/// Minutes to a duration between one second and about thirty years; NaN means one second
/// (`Duration::from_secs_f64` panics on infinity and NaN).
fn checkpoint_interval(minutes: f64) -> Duration {
    let seconds = minutes * 60.0;
    Duration::from_secs_f64(if seconds.is_nan() { 1.0 } else { seconds.clamp(1.0, 1e9) })
}

/// Whether the database at `path` exists and holds a model named `name`.
pub(crate) fn holds_model(path: &Path, name: &str) -> bool {
    path.exists()
        && dd_store::SqliteStore::open(path, &dd_store::ReadConfig::serving())
            .is_ok_and(|store| dd_store::StoreRead::catalog(&store).model(name).is_some())
}

/// Where `record` keeps the checkpoint of a run writing `output`.
pub(crate) fn checkpoint_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".checkpoint");
    output.with_file_name(name)
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

/// Records `dataset` through `model` into `output`; `Ok(None)` when interrupted.
pub(crate) fn record_dataset(
    opened: &OpenedModel,
    dataset: &Path,
    output: &Path,
    args: &RecordingArgs,
    data_source: &str,
) -> anyhow::Result<Option<RecordReport>> {
    let config = opened.transformer.config();
    let name = args.name.clone().unwrap_or_else(|| opened.default_name.clone());
    let bottom = args.bottom.unwrap_or(if config.activation == dd_model::Activation::Relu { 0 } else { 10 });
    let (index, count) = args.shard.unwrap_or((0, 1));
    let record_config = RecordConfig {
        model_name: name.clone(),
        dataset: DatasetConfig { path: dataset.to_owned(), format: None, text_field: args.text_field.clone() },
        context_length: args.context.min(config.n_ctx),
        token_budget: args.tokens,
        shard: Shard { index, count },
        batch_size: args.batch,
        accumulator: AccumulatorConfig {
            sizes: SelectionSizes {
                top: args.top,
                bottom,
                bands: args.bands,
                per_band: args.per_band,
                random: args.random,
            },
            histogram_bins: dd_data::HISTOGRAM_BINS as u32,
        },
        token_table_bytes: args.token_table_mb.saturating_mul(1 << 20),
        checkpoint_path: checkpoint_path(output),
        // `from_secs_f64` panics on infinity; NaN falls to the floor.
        checkpoint_interval: checkpoint_interval(args.checkpoint_minutes),
    };
    if holds_model(output, &name) && !record_config.checkpoint_path.exists() {
        anyhow::bail!("{} already holds a model named {name:?}; pass --name or use another --output", output.display());
    }
    let stop = stop_on_signal();
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {bar:40} {human_pos}/{human_len} tokens ({per_sec}, ETA {eta}) {prefix}")
    {
        bar.set_style(style);
    }
    bar.set_message("recording");
    let started = Instant::now();
    let progress = |event: RecordEvent| match event {
        RecordEvent::Counting { tokens } => {
            bar.set_message("counting tokens");
            bar.set_position(tokens);
        }
        RecordEvent::Recording { tokens, total } => {
            bar.set_message("recording");
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(tokens);
        }
        RecordEvent::Checkpointed { tokens } => bar.set_prefix(format!("checkpoint at {tokens} tokens")),
    };
    let outcome = dd_record::record(&opened.transformer, &opened.tokenizer, &record_config, stop.flag(), &progress)?;
    bar.finish_and_clear();
    let recording = match outcome {
        RecordOutcome::Interrupted { tokens: 0 } => {
            eprintln!("stopped before recording anything; nothing was saved");
            return Ok(None);
        }
        RecordOutcome::Interrupted { tokens } => {
            eprintln!(
                "stopped after {tokens} tokens; the checkpoint is {}. Run the same command again to continue.",
                record_config.checkpoint_path.display()
            );
            return Ok(None);
        }
        RecordOutcome::Finished(recording) => recording,
    };
    stop.recording_done();
    // The checkpoint matched these settings, and it is removed only once the database is complete:
    // a model already there is what an interrupted write left, and is written again.
    if holds_model(output, &name) {
        let mut writer = dd_store::StoreWriter::open(output, dd_store::EncodeOptions::STANDARD)?;
        writer.delete_model(&name)?;
        writer.finish()?;
        eprintln!("{} holds an unfinished write of {name}; writing it again", output.display());
    }
    let seconds = started.elapsed().as_secs_f64();
    let tokens = recording.tokens_recorded();
    eprintln!(
        "recorded {tokens} tokens ({} contexts) in {seconds:.1} s: {:.0} tokens/s",
        recording.contexts_recorded(),
        tokens as f64 / seconds
    );
    if args.shard.is_some() {
        // A shard is a database of its slice (servable as it is) with its mergeable state inside;
        // the weight-based facts are left to `merge`, which computes them once.
        write_database(opened, &recording, output, &name, data_source, false)?;
        recording.save_to_database(output, &name)?;
        eprintln!("wrote shard {index}/{count} to {}; combine the shards with `deepdecipher merge`", output.display());
    } else {
        write_database(opened, &recording, output, &name, data_source, !args.no_weights)?;
    }
    std::fs::remove_file(&record_config.checkpoint_path).ok();
    Ok(Some(RecordReport { tokens, seconds }))
}

fn write_database(
    opened: &OpenedModel,
    recording: &Recording,
    output: &Path,
    name: &str,
    data_source: &str,
    weights: bool,
) -> anyhow::Result<()> {
    let write_config = WriteConfig {
        model_name: name.to_owned(),
        training_dataset: "unknown".to_owned(),
        data_source: data_source.to_owned(),
        activating_tokens: 20,
        min_token_count: 3,
        encode: dd_store::EncodeOptions::STANDARD,
    };
    let bar = crate::progress_bar("writing", "neurons");
    let summary = dd_record::write_recording(
        recording,
        opened.transformer.config(),
        &opened.tokenizer,
        output,
        &write_config,
        &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )?;
    bar.finish_and_clear();
    if weights {
        let started = Instant::now();
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {percent}% (ETA {eta})") {
            bar.set_style(style);
        }
        let n_records = dd_record::write_weight_facts(
            &opened.transformer,
            output,
            name,
            10,
            dd_store::EncodeOptions::STANDARD,
            &|progress| {
                let what = match progress.fact {
                    dd_model::WeightFact::LogitAttribution => "logit attribution",
                    dd_model::WeightFact::InputTokens => "input tokens",
                    dd_model::WeightFact::NeuronConnections => "neuron connections",
                };
                bar.set_message(what);
                bar.set_length(progress.total);
                bar.set_position(progress.done);
            },
        )?;
        bar.finish_and_clear();
        eprintln!(
            "wrote {n_records} weight-based records (logit attribution, input tokens, connections) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let bytes = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} neurons ({} records) of {name} to {}; file is {}",
        summary.n_neurons,
        summary.n_records,
        output.display(),
        crate::human_bytes(bytes)
    );
    Ok(())
}

pub(crate) fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let opened = open_model(&args.model)?;
    let data_source = args.dataset.display().to_string();
    match record_dataset(&opened, &args.dataset, &args.output, &args.recording, &data_source)? {
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
    let data_source = format!("{} shards merged", paths.len());
    write_database(&opened, &merged, &args.output, &name, &data_source, !args.no_weights)?;
    Ok(ExitCode::SUCCESS)
}
