//! `explain`: arguments into a `dd-explain` job, the progress bar, Ctrl-C. What to show the
//! explainer and how to score is `dd-explain`'s policy (`ExplainJob::standard`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dd_explain::endpoint::{ChatClient, EndpointConfig, TokenPrices};
use dd_explain::job::{ExplainEvent, ExplainJob, ExplainModels, ExplainSummary, explain_neurons};
use dd_explain::local::{LocalModel, LocalSampling};
use dd_explain::simulator::Simulator;
use dd_explain::{ChatSimulator, Explainer};
use dd_model::SentenceEncoder;
use dd_store::{NeuronChoice, StoreLocation, model_name_in};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{ExplainArgs, SimulatorChoice};
use crate::recording::{open_model, stop_on_signal};

pub(crate) fn explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let location = StoreLocation::SqliteFile(args.database.clone());
    let name = model_name_in(&location, args.model_name.as_deref(), None)?;
    let choice = NeuronChoice::from(args.choice);
    let mut job = ExplainJob::standard(&name, choice);
    job.commit_every = args.commit_every as usize;

    let sampling = match args.seed {
        Some(seed) => LocalSampling::Seeded { seed, temperature: args.temperature, top_p: args.top_p },
        None => LocalSampling::Greedy,
    };
    let local = match &args.local {
        Some(reference) => Some(local_model(reference)?.with_sampling(sampling)),
        None => None,
    };
    let client = match &args.endpoint {
        Some(url) => {
            let model = args
                .endpoint_model
                .clone()
                .context("--endpoint needs --endpoint-model (the model name the endpoint serves)")?;
            let mut config = EndpointConfig::new(url.clone(), model);
            config.api_key_env = args.api_key_env.clone();
            config.max_concurrency = usize::from(args.concurrency);
            config.requests_per_minute = args.requests_per_minute;
            config.timeout = Duration::from_secs_f64(args.timeout);
            config.max_retries = args.retries;
            if let (Some(prompt), Some(completion)) = (args.price_prompt, args.price_completion) {
                config.prices = Some(TokenPrices { prompt_per_million: prompt, completion_per_million: completion });
            }
            Some(ChatClient::new(config)?)
        }
        None => None,
    };
    let explainer: &dyn Explainer = match (&client, &local) {
        (Some(client), _) => client,
        (None, Some(local)) => local,
        (None, None) => {
            anyhow::bail!("say which model explains: --local MODEL or --endpoint URL --endpoint-model NAME")
        }
    };
    job.concurrency = if client.is_some() { usize::from(args.concurrency) } else { 1 };

    let separate_simulator = match &args.simulator_model {
        Some(reference) => Some(local_model(reference)?),
        None => None,
    };
    let chat_simulator = client.as_ref().map(ChatSimulator::new);
    let simulator: Option<&dyn Simulator> = match args.simulator {
        SimulatorChoice::None => None,
        SimulatorChoice::Endpoint => {
            Some(chat_simulator.as_ref().context("--simulator endpoint needs --endpoint")? as &dyn Simulator)
        }
        SimulatorChoice::Local => Some(match (&separate_simulator, &local) {
            (Some(model), _) | (None, Some(model)) => model as &dyn Simulator,
            (None, None) => anyhow::bail!(
                "the local simulator needs a local model: --simulator-model MODEL or --local MODEL (or --simulator endpoint)"
            ),
        }),
    };
    let encoder = match &args.embedder {
        Some(dir) => Some(
            SentenceEncoder::load(dir).with_context(|| format!("loading the sentence encoder in {}", dir.display()))?,
        ),
        None => None,
    };
    let models = ExplainModels { explainer, simulator, encoder: encoder.as_ref() };

    let stop = stop_on_signal();
    let bar = ExplainBar::new();
    let outcome = explain_neurons(&location, &models, &job, stop.flag(), &|event| bar.show(event));
    bar.finish();
    let usage = client.as_ref().map(ChatClient::usage);
    match outcome {
        Ok(summary) => {
            report(&summary, &name, &location, usage.as_ref(), encoder.is_some());
            match summary.failed.is_empty() {
                true => Ok(ExitCode::SUCCESS),
                // Some neurons failed: the rest is saved, and running again retries only those.
                false => Ok(ExitCode::from(1)),
            }
        }
        Err(dd_explain::ExplainError::Stopped) => {
            eprintln!("stopped; the explanations written so far are saved. Run the same command again to continue.");
            Ok(ExitCode::from(130))
        }
        Err(error) => Err(error).context(format!("explaining neurons of {name} in {location}")),
    }
}

fn local_model(reference: &str) -> anyhow::Result<LocalModel> {
    let opened = open_model(reference)?;
    Ok(LocalModel::new(Arc::new(opened.transformer), Arc::clone(&opened.tokenizer), &opened.default_name))
}

fn report(
    summary: &ExplainSummary,
    name: &str,
    location: &StoreLocation,
    usage: Option<&dd_explain::endpoint::UsageTotals>,
    embedded: bool,
) {
    let per_neuron = match summary.explained {
        0 => String::new(),
        n => format!(
            " ({:.1} s per neuron: {:.1} s explaining, {:.1} s simulating)",
            summary.total_time.as_secs_f64() / n as f64,
            summary.explain_time.as_secs_f64() / n as f64,
            summary.simulate_time.as_secs_f64() / n as f64
        ),
    };
    eprintln!(
        "explained {} neurons of {name} in {:.0} s{per_neuron}; {} already had an explanation by this explainer",
        summary.explained,
        summary.total_time.as_secs_f64(),
        summary.already_explained
    );
    if !summary.scores.is_empty() {
        let mut sorted = summary.scores.clone();
        sorted.sort_by(f64::total_cmp);
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        eprintln!(
            "scores (ev_correlation_score, held-out top and random): mean {mean:.2}, median {:.2}, min {:.2}, max {:.2}",
            sorted[sorted.len() / 2],
            sorted[0],
            sorted[sorted.len() - 1]
        );
    }
    match usage {
        Some(usage) => eprintln!(
            "endpoint: {} requests, {} retried, {} failed; {} prompt and {} completion tokens{}",
            usage.requests,
            usage.retries,
            usage.failures,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cost_usd.map_or_else(String::new, |cost| format!(", ${cost:.4}"))
        ),
        None => eprintln!(
            "local model: {} prompt and {} completion tokens",
            summary.prompt_tokens, summary.completion_tokens
        ),
    }
    for (neuron, reason) in summary.failed.iter().take(10) {
        eprintln!("  failed {}/{}: {reason}", neuron.layer, neuron.index);
    }
    if summary.failed.len() > 10 {
        eprintln!("  … and {} more failed", summary.failed.len() - 10);
    }
    if !embedded {
        eprintln!("no --embedder: these explanations are not searchable by meaning until embedded");
    }
    eprintln!("serve with `deepdecipher serve {location}`");
}

/// The progress bar of an explanation run, drawn from its events.
struct ExplainBar {
    bar: ProgressBar,
}

impl ExplainBar {
    fn new() -> Self {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} neurons, {per_sec}, ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix("explain");
        Self { bar }
    }

    fn show(&self, event: ExplainEvent) {
        match event {
            ExplainEvent::Planned { chosen, to_explain } => {
                self.bar.set_length(to_explain as u64);
                if chosen > to_explain {
                    self.bar
                        .println(format!("{} of {chosen} neurons already have an explanation", chosen - to_explain));
                }
            }
            ExplainEvent::Explained { neuron, text, score } => {
                self.bar.inc(1);
                let score = score.map_or_else(|| "unscored".to_owned(), |s| format!("{s:.2}"));
                let text: String = text.chars().take(50).collect();
                self.bar.set_message(format!("{}/{} {score}: {text}", neuron.layer, neuron.index));
            }
            ExplainEvent::Failed { neuron, reason } => {
                self.bar.inc(1);
                self.bar.println(format!("failed {}/{}: {reason}", neuron.layer, neuron.index));
            }
            ExplainEvent::Committed { .. } => {}
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
