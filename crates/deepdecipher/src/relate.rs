//! `relate` and `compare`: arguments into `dd-relate` jobs, the progress bar, Ctrl-C. What to
//! compute and how is `dd-relate`'s policy (`RelateJob::standard`).

use std::process::ExitCode;

use anyhow::Context;
use dd_relate::{CompareJob, RelateEvent, RelateJob, RelateParts, RelateSummary};
use dd_store::{StoreLocation, model_name_in};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{CompareArgs, RelateArgs, RelateStep};
use crate::recording::{open_model, stop_on_signal};

pub(crate) fn relate(args: RelateArgs) -> anyhow::Result<ExitCode> {
    let location = StoreLocation::SqliteFile(args.database.clone());
    let opened = args.model.as_deref().map(open_model).transpose()?;
    let name = model_name_in(&location, args.name.as_deref(), opened.as_ref().map(|o| o.default_name.as_str()))?;
    let mut job = RelateJob::standard(&name);
    job.parts = RelateParts {
        correlations: !args.skip.contains(&RelateStep::Correlations),
        roles: !args.skip.contains(&RelateStep::Roles),
        embeddings: !args.skip.contains(&RelateStep::Embeddings),
    };
    anyhow::ensure!(
        opened.is_some() || !(job.parts.correlations || job.parts.embeddings),
        "correlations and embeddings run the model: pass --model, or --skip correlations,embeddings"
    );
    job.token_budget = args.tokens;
    job.seed = args.seed;
    job.correlation.k = args.correlated;
    job.groups.edge_threshold = args.group_threshold;
    job.groups.min_size = args.min_group_size.max(2);
    let stop = stop_on_signal();
    let bar = RelateBar::new();
    let outcome =
        dd_relate::relate(&location, opened.as_ref().map(|o| &o.transformer), &job, stop.flag(), &|e| bar.show(e));
    bar.finish();
    match outcome {
        Ok(summary) => {
            report(&summary, &name, &location);
            Ok(ExitCode::SUCCESS)
        }
        Err(dd_relate::RelateError::Stopped) => {
            eprintln!("stopped; nothing was written.");
            Ok(ExitCode::from(130))
        }
        Err(error) => Err(error).context(format!("relating the neurons of {name} in {location}")),
    }
}

fn report(summary: &RelateSummary, name: &str, location: &StoreLocation) {
    let steps: Vec<String> =
        summary.steps.iter().map(|(step, took)| format!("{step} {:.1} s", took.as_secs_f64())).collect();
    if summary.tokens > 0 {
        eprintln!(
            "correlated every neuron of {name} over {} tokens of {} contexts; {} groups hold {} neurons",
            summary.tokens, summary.contexts, summary.groups.0, summary.groups.1
        );
    }
    if summary.edges > 0 {
        eprintln!("roles from a weight graph of {} edges", summary.edges);
    }
    if summary.embedded != (0, 0) {
        eprintln!(
            "embedded {} neurons from their graphs and {} from their activating tokens",
            summary.embedded.0, summary.embedded.1
        );
    }
    eprintln!("{}; serve with `deepdecipher serve {location}`", steps.join(", "));
}

/// The progress bar of a `relate` run, drawn from its events.
struct RelateBar {
    bar: ProgressBar,
}

impl RelateBar {
    fn new() -> Self {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {msg}, ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix("relate");
        Self { bar }
    }

    fn show(&self, event: RelateEvent) {
        match event {
            RelateEvent::Sampled { contexts, tokens, bytes } => self.line(format!(
                "sampled {tokens} tokens of {contexts} contexts; the activations take {:.1} MB",
                bytes as f64 / 1e6
            )),
            RelateEvent::Running { done, total } => {
                self.bar.set_length(total as u64);
                self.bar.set_position(done as u64);
                self.bar.set_message(format!("{done}/{total} tokens through the model"));
            }
            RelateEvent::Correlating { done, total } => {
                self.bar.set_length(total);
                self.bar.set_position(done);
                self.bar.set_message(format!("{:.2e}/{total:.2e} correlations", done as f64));
            }
            RelateEvent::Finished { step, took } => self.line(format!("{step}: {:.1} s", took.as_secs_f64())),
            RelateEvent::Skipped { step, reason } => self.line(format!("no {step}: {reason}")),
        }
    }

    /// A line above the bar, also when the bar is hidden (stderr is not a terminal: a log).
    fn line(&self, text: String) {
        self.bar.suspend(|| eprintln!("{text}"));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

pub(crate) fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let baseline = StoreLocation::SqliteFile(args.baseline.clone());
    let current = StoreLocation::SqliteFile(args.database.clone());
    let baseline_model = model_name_in(&baseline, args.model_a.as_deref(), None).context("--model-a")?;
    let current_model = model_name_in(&current, args.model_b.as_deref(), None).context("--model-b")?;
    let baseline_name = args.baseline_name.unwrap_or_else(|| baseline_model.clone());
    let job = CompareJob { baseline, baseline_model, current, current_model, baseline_name };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("compare [{bar:30}] {pos}/{len} layers")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let summary = dd_relate::compare(&job, &|layers| bar.set_position(layers as u64))
        .with_context(|| format!("comparing {} with {}", job.current_model, job.baseline_model))?;
    bar.finish_and_clear();
    if summary.copied > 0 {
        eprintln!("copied {} ({} records) into {}", job.baseline_name, summary.copied, job.current);
    }
    eprintln!(
        "compared {} neurons of {} with {}; most changed:",
        summary.neurons, job.current_model, job.baseline_name
    );
    for (neuron, score) in &summary.most_changed {
        eprintln!("  {}/{}  {score:.3}", neuron.layer, neuron.index);
    }
    eprintln!("serve with `deepdecipher serve {}`", job.current);
    Ok(ExitCode::SUCCESS)
}
