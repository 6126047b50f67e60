//! `n2g`, `n2g-import` and `n2g-export`: arguments into `dd-n2g` jobs, the progress bar, Ctrl-C.
//! What to build and how is `dd-n2g`'s policy (`N2gJob::standard`).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use dd_n2g::build::TokenTexts;
use dd_n2g::job::{N2gEvent, N2gJob, N2gModel, N2gSummary, build_graphs};
use dd_n2g::probe::{ModelProbe, ProbeConfig};
use dd_n2g::substitutes::{EmbeddingNeighbours, NextTokenPredictions, NoSubstitutes, ShapeRule, Substitutes};
use dd_store::StoreLocation;
use dd_store::{NeuronChoice, model_name_in};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{N2gArgs, N2gExchangeArgs, SubstituteSource};
use crate::recording::{open_model, stop_on_signal};

pub(crate) fn build(args: N2gArgs) -> anyhow::Result<ExitCode> {
    let location = StoreLocation::SqliteFile(args.database.clone());
    let opened = open_model(&args.model)?;
    let name = model_name_in(&location, args.name.as_deref(), Some(&opened.default_name))?;
    let choice = NeuronChoice::from(args.choice);
    let mut job = N2gJob::standard(&name, &opened.tokenizer, choice);
    job.config.augment.substitutes = args.augment;
    job.config.augment.remeasure_variants = args.remeasure_variants;
    job.commit_every = args.commit_every as usize;
    if let Some(mask) = args.mask_token {
        anyhow::ensure!(
            (mask as usize) < opened.tokenizer.vocab_size(),
            "--mask-token {mask} is not a token id: the vocabulary has {} tokens",
            opened.tokenizer.vocab_size()
        );
        job.config.mask_token = mask;
    }
    let tokenizer = Arc::clone(&opened.tokenizer);
    let transformer = Arc::new(opened.transformer);
    let texts = TokenTexts::from_tokenizer(&tokenizer);
    let probe = ModelProbe::new(Arc::clone(&transformer), ProbeConfig::default());
    let substitutes: Box<dyn Substitutes> = match args.substitutes {
        SubstituteSource::Embedding => {
            Box::new(EmbeddingNeighbours::new(&transformer, &tokenizer, ShapeRule::default())?)
        }
        SubstituteSource::NextToken => {
            Box::new(NextTokenPredictions::new(Arc::clone(&transformer), &tokenizer, ShapeRule::default()))
        }
        SubstituteSource::None => Box::new(NoSubstitutes),
    };
    let model = N2gModel { source: &probe, substitutes: substitutes.as_ref(), texts: &texts };
    let stop = stop_on_signal();
    let bar = GraphBar::new();
    let outcome = build_graphs(&location, &model, &job, stop.flag(), &|event| bar.show(event));
    bar.finish();
    match outcome {
        Ok(summary) => {
            report(&summary, &name, &location);
            Ok(ExitCode::SUCCESS)
        }
        Err(dd_n2g::N2gError::Stopped) => {
            eprintln!("stopped; the graphs built so far are saved. Run the same command again to continue.");
            Ok(ExitCode::from(130))
        }
        Err(error) => Err(error).context(format!("building graphs into {location}")),
    }
}

pub(crate) fn import(args: N2gExchangeArgs) -> anyhow::Result<ExitCode> {
    let location = StoreLocation::SqliteFile(args.database.clone());
    let name = model_name_in(&location, args.name.as_deref(), None)?;
    let summary = dd_n2g::exchange::import_original(&location, &name, &args.dir, &|_| {})
        .with_context(|| format!("importing {}", args.dir.display()))?;
    let index = match summary.used_neuron_store {
        true => "its neuron_store.json as the token index",
        false => "a token index built from them",
    };
    eprintln!("imported {} graphs for {name} into {location}, with {index}", summary.graphs);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn export(args: N2gExchangeArgs) -> anyhow::Result<ExitCode> {
    let location = StoreLocation::SqliteFile(args.database.clone());
    let name = model_name_in(&location, args.name.as_deref(), None)?;
    let reader = location.open_reader()?;
    let n = dd_n2g::exchange::export_original(reader.as_ref(), &name, &args.dir)
        .with_context(|| format!("exporting to {}", args.dir.display()))?;
    eprintln!("wrote {n} graphs of {name} to {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}

fn report(summary: &N2gSummary, name: &str, location: &StoreLocation) {
    let f1 = |value: Option<f64>| value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"));
    let per_graph = match summary.built {
        0 => String::new(),
        n => format!(" ({:.1} s per graph)", summary.build_time.as_secs_f64() / n as f64),
    };
    eprintln!(
        "built {} graphs of {name} in {:.0} s{per_graph}; {} already had one; mean F1 {} on held-out top examples, {} on random ones",
        summary.built,
        summary.build_time.as_secs_f64(),
        summary.already_built,
        f1(summary.mean_f1.0),
        f1(summary.mean_f1.1),
    );
    for (neuron, reason) in summary.skipped.iter().take(5) {
        eprintln!("  no graph for {}/{}: {reason}", neuron.layer, neuron.index);
    }
    if summary.skipped.len() > 5 {
        eprintln!("  … and {} more without a graph", summary.skipped.len() - 5);
    }
    eprintln!(
        "indexed {} graphs for search and similar neurons in {:.1} s; serve with `deepdecipher serve {location}`",
        summary.indexed,
        summary.index_time.as_secs_f64()
    );
}

/// The progress bar of a graph-building run, drawn from its events.
pub(crate) struct GraphBar {
    bar: ProgressBar,
    built: std::sync::atomic::AtomicU64,
}

impl GraphBar {
    pub(crate) fn new() -> Self {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} graphs, {per_sec}, ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix("n2g");
        Self { bar, built: Default::default() }
    }

    pub(crate) fn show(&self, event: N2gEvent) {
        match event {
            N2gEvent::Planned { chosen, to_build } => {
                self.bar.set_length(to_build as u64);
                if chosen > to_build {
                    self.bar.println(format!("{} of {chosen} neurons already have a graph", chosen - to_build));
                }
            }
            N2gEvent::Built { neuron, held_out_f1 } => {
                self.built.fetch_add(1, Ordering::Relaxed);
                self.bar.inc(1);
                let f1 = held_out_f1.map_or_else(|| "n/a".to_owned(), |f| format!("{f:.2}"));
                self.bar.set_message(format!("last {}/{} F1 {f1}", neuron.layer, neuron.index));
            }
            N2gEvent::Skipped { .. } => self.bar.inc(1),
            N2gEvent::Committed { .. } => {}
            N2gEvent::Indexing { graphs } => {
                self.bar.set_message(format!("indexing {graphs} graphs"));
            }
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
