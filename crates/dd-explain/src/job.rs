//! Explaining many neurons of a recorded model into its database: which neurons, their examples
//! split into what the explainer sees and what scores it, workers in parallel, resumable.
//!
//! Splits, per neuron (its top examples by rank, its random examples in order):
//! - the explainer sees the top examples at even ranks (0, 2, 4, …, `train_examples` of them);
//! - held-out top examples (odd ranks) and random examples alternate between calibration and
//!   scoring: top ranks 1, 5, 9, … and random 1, 3, … calibrate; top ranks 3, 7, 11, … and random
//!   0, 2, 4, … are scored (OpenAI scores on top and random sequences 1:1; we have fewer random).
//!
//! Each sequence is shown as a window of tokens: top ones end `window_after` tokens after their
//! largest activation, random ones start after BOS, so prompts stay about a thousand tokens.
//!
//! Resuming: each finished neuron is written in a transaction with its other explanations, and a
//! neuron that already has a generated explanation by this explainer is skipped, so a killed run
//! loses at most its open batch and a rerun continues without duplicates.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dd_data::{
    Example, ExampleGroupKind, Explanation, ExplanationProvenance, Explanations, ModelDataKind, ModelRecord,
    NamedScore, NeuronDataKind, NeuronIndex, NeuronRecord, SimulatedSequence, TextEmbedding,
};
use dd_model::SentenceEncoder;
use dd_store::{NeuronChoice, SourceEntry, StoreLocation, StoreRead, choose_neurons, find_model};

use crate::ExplainError;
use crate::explainer::Explainer;
use crate::prompt::{
    EXPLAINER_PROMPT_VERSION, ShownSequence, copies_an_example, explainer_messages, parse_explanation, transcript,
};
use crate::score::{Scores, Simulated};
use crate::simulator::Simulator;

/// The origin of explanations this crate writes.
pub const GENERATED: &str = "generated";

/// An explanation run.
#[derive(Clone, Debug)]
pub struct ExplainJob {
    /// The model in the database.
    pub model_name: String,
    /// Which neurons.
    pub choice: NeuronChoice,
    /// Top examples the explainer sees (even ranks).
    pub train_examples: usize,
    /// Tokens shown before a top sequence's largest activation (and the random sequences' length
    /// is `window_before + window_after + 1`).
    pub window_before: usize,
    /// Tokens shown after it.
    pub window_after: usize,
    /// Neurons explained at once (endpoint requests in flight; 1 for a local model, which uses
    /// every core for each neuron).
    pub concurrency: usize,
    /// Neurons committed per transaction: what a kill can lose.
    pub commit_every: usize,
}

impl ExplainJob {
    /// The standard settings: 5 training sequences, windows of 24 tokens before and 8 after the
    /// largest activation, one neuron at a time, commits of 4.
    pub fn standard(model_name: &str, choice: NeuronChoice) -> Self {
        Self {
            model_name: model_name.to_owned(),
            choice,
            train_examples: 5,
            window_before: 24,
            window_after: 8,
            concurrency: 1,
            commit_every: 4,
        }
    }
}

/// The models a run uses besides the database.
pub struct ExplainModels<'a> {
    /// Writes the explanations.
    pub explainer: &'a dyn Explainer,
    /// Scores them; unscored when `None`.
    pub simulator: Option<&'a dyn Simulator>,
    /// Embeds them for search by meaning; no embedding when `None`.
    pub encoder: Option<&'a SentenceEncoder>,
}

/// What a run reports as it goes, for the binary's progress bar.
#[derive(Clone, Debug, PartialEq)]
pub enum ExplainEvent {
    /// The neurons are chosen: `to_explain` of `chosen` still need an explanation.
    Planned {
        /// Neurons chosen.
        chosen: usize,
        /// Of those, neurons without an explanation by this explainer.
        to_explain: usize,
    },
    /// One neuron is explained (not yet committed).
    Explained {
        /// The neuron.
        neuron: NeuronIndex,
        /// The explanation.
        text: String,
        /// Its top-and-random correlation score, where defined.
        score: Option<f64>,
    },
    /// A neuron could not be explained: why.
    Failed {
        /// The neuron.
        neuron: NeuronIndex,
        /// Why.
        reason: String,
    },
    /// Explanations up to here are in the database.
    Committed {
        /// Neurons committed in this run so far.
        explained: usize,
    },
}

/// What a finished run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExplainSummary {
    /// Neurons chosen.
    pub chosen: usize,
    /// Neurons explained in this run.
    pub explained: usize,
    /// Neurons that already had an explanation by this explainer.
    pub already_explained: usize,
    /// Neurons that failed, with the reason.
    pub failed: Vec<(NeuronIndex, String)>,
    /// The top-and-random correlation of each neuron explained in this run where defined.
    pub scores: Vec<f64>,
    /// Tokens of the explainer's prompts.
    pub prompt_tokens: u64,
    /// Tokens of its answers.
    pub completion_tokens: u64,
    /// Wall time writing explanations.
    pub explain_time: Duration,
    /// Wall time simulating them.
    pub simulate_time: Duration,
    /// Wall time in all.
    pub total_time: Duration,
}

/// A neuron's sequences, split for the explainer, calibration and scoring.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NeuronSplits {
    /// What the explainer sees.
    pub train: Vec<Window>,
    /// What calibrates the simulator.
    pub calibration: Vec<Window>,
    /// What is scored.
    pub scored: Vec<Window>,
}

/// A window of one example: token ids and activations, and whether it is a random example.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    /// Token ids.
    pub tokens: Vec<u32>,
    /// The neuron's activations.
    pub activations: Vec<f32>,
    /// From the random sample (else from the top examples).
    pub random: bool,
}

/// Explains the chosen neurons into the database at `location`. `stop` ends the run after the
/// neurons in progress; everything committed stays.
pub fn explain_neurons(
    location: &StoreLocation,
    models: &ExplainModels<'_>,
    job: &ExplainJob,
    stop: &AtomicBool,
    events: &(dyn Fn(ExplainEvent) + Sync),
) -> Result<ExplainSummary, ExplainError> {
    let started = Instant::now();
    let mut writer = location.open_writer(dd_store::EncodeOptions::STANDARD)?;
    let reader = location.open_reader()?;
    let (entry, source) =
        find_model(reader.as_ref(), &job.model_name, NeuronDataKind::Examples, "to explain neurons from")?;
    let Some(ModelRecord::Vocabulary(vocabulary)) = reader.model_record(&entry, ModelDataKind::Vocabulary)? else {
        return Err(ExplainError::Invalid(format!(
            "model {:?} has no vocabulary to show its tokens with: record it again with this version",
            job.model_name
        )));
    };
    let token_texts: Vec<String> = vocabulary.tokens.iter().map(|display| plain_text(display)).collect();
    let chosen = choose_neurons(reader.as_ref(), &source, &job.choice)?;
    let author = models.explainer.name();
    let mut to_explain = Vec::new();
    for &neuron in &chosen {
        if !has_generated(&existing(reader.as_ref(), &source, neuron)?, &author) {
            to_explain.push(neuron);
        }
    }
    events(ExplainEvent::Planned { chosen: chosen.len(), to_explain: to_explain.len() });
    let mut summary = ExplainSummary {
        chosen: chosen.len(),
        already_explained: chosen.len() - to_explain.len(),
        ..Default::default()
    };

    let next = AtomicUsize::new(0);
    let finished: Mutex<Vec<(NeuronIndex, Explanation)>> = Mutex::new(Vec::new());
    let failed: Mutex<Vec<(NeuronIndex, String)>> = Mutex::new(Vec::new());
    let fatal: Mutex<Option<ExplainError>> = Mutex::new(None);
    let timing = Mutex::new((Duration::ZERO, Duration::ZERO, 0u64, 0u64));
    let halt = AtomicBool::new(false);
    let workers = job.concurrency.clamp(1, 64).min(to_explain.len().max(1));
    let work = || {
        loop {
            if stop.load(Ordering::Relaxed) || halt.load(Ordering::Relaxed) {
                return;
            }
            let Some(&neuron) = to_explain.get(next.fetch_add(1, Ordering::Relaxed)) else { return };
            match explain_one(reader.as_ref(), &source, neuron, models, &token_texts, job, &author) {
                Ok(Ok(done)) => {
                    events(ExplainEvent::Explained {
                        neuron,
                        text: done.explanation.text.clone(),
                        score: done.explanation.score(crate::score::names::EV_CORRELATION).map(f64::from),
                    });
                    if let Ok(mut timing) = timing.lock() {
                        timing.0 += done.explain_time;
                        timing.1 += done.simulate_time;
                        timing.2 += done.prompt_tokens;
                        timing.3 += done.completion_tokens;
                    }
                    if let Ok(mut finished) = finished.lock() {
                        finished.push((neuron, done.explanation));
                    }
                }
                Ok(Err(reason)) => {
                    events(ExplainEvent::Failed { neuron, reason: reason.clone() });
                    if let Ok(mut failed) = failed.lock() {
                        failed.push((neuron, reason));
                    }
                }
                Err(error) => {
                    halt.store(true, Ordering::Relaxed);
                    if let Ok(mut fatal) = fatal.lock() {
                        fatal.get_or_insert(error);
                    }
                    return;
                }
            }
        }
    };
    let commit_every = job.commit_every.max(1);
    let commit = |writer: &mut dyn dd_store::StoreWrite,
                  summary: &mut ExplainSummary,
                  batch: Vec<(NeuronIndex, Explanation)>|
     -> Result<(), ExplainError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut transaction = writer.batch()?;
        for (neuron, explanation) in &batch {
            // Read again at commit: a neuron's other explanations are kept beside the new one.
            let mut record = existing(reader.as_ref(), &source, *neuron)?;
            record.explanations.retain(|e| !(e.origin == GENERATED && e.author.as_deref() == Some(author.as_str())));
            record.explanations.push(explanation.clone());
            sort_best_first(&mut record.explanations);
            transaction.put_neuron(source.id, neuron.layer, neuron.index, &NeuronRecord::Explanations(record))?;
            if let Some(score) = explanation.score(crate::score::names::EV_CORRELATION) {
                summary.scores.push(f64::from(score));
            }
        }
        transaction.commit()?;
        summary.explained += batch.len();
        events(ExplainEvent::Committed { explained: summary.explained });
        Ok(())
    };
    let outcome = std::thread::scope(|scope| -> Result<(), ExplainError> {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
        // The writer commits as results arrive, so a kill loses at most one batch.
        loop {
            let all_done = handles.iter().all(|handle| handle.is_finished());
            let ready: Vec<_> = {
                let mut finished = finished.lock().map_err(|_| poisoned())?;
                if finished.len() >= commit_every || all_done { std::mem::take(&mut *finished) } else { Vec::new() }
            };
            for chunk in ready.chunks(commit_every) {
                commit(writer.as_mut(), &mut summary, chunk.to_vec())?;
            }
            if all_done {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    outcome?;
    if let Some(error) = fatal.into_inner().map_err(|_| poisoned())? {
        return Err(error);
    }
    if stop.load(Ordering::Relaxed) {
        return Err(ExplainError::Stopped);
    }
    let (explain_time, simulate_time, prompt_tokens, completion_tokens) =
        timing.into_inner().map_err(|_| poisoned())?;
    summary.explain_time = explain_time;
    summary.simulate_time = simulate_time;
    summary.prompt_tokens = prompt_tokens;
    summary.completion_tokens = completion_tokens;
    summary.failed = failed.into_inner().map_err(|_| poisoned())?;
    summary.failed.sort_by_key(|(neuron, _)| *neuron);
    drop(reader);
    writer.finish()?;
    summary.total_time = started.elapsed();
    Ok(summary)
}

/// A neuron's stored explanations (none when it has no record).
fn existing(reader: &dyn StoreRead, source: &SourceEntry, neuron: NeuronIndex) -> Result<Explanations, ExplainError> {
    Ok(match reader.neuron_record(source, neuron.layer, neuron.index, NeuronDataKind::Explanations)? {
        Some(NeuronRecord::Explanations(explanations)) => explanations,
        _ => Explanations::default(),
    })
}

fn has_generated(explanations: &Explanations, author: &str) -> bool {
    explanations.explanations.iter().any(|e| e.origin == GENERATED && e.author.as_deref() == Some(author))
}

/// Best first: by the headline score where there is one, unscored ones after, ties in their order.
fn sort_best_first(explanations: &mut [Explanation]) {
    let key = |e: &Explanation| e.score(crate::score::names::EV_CORRELATION).filter(|s| s.is_finite());
    explanations.sort_by(|a, b| match (key(a), key(b)) {
        (Some(a), Some(b)) => b.total_cmp(&a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// One neuron's finished explanation and what it took.
struct Done {
    explanation: Explanation,
    explain_time: Duration,
    simulate_time: Duration,
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// Explains, simulates, scores and embeds one neuron; the inner error is a per-neuron failure
/// (no examples, an endpoint that gave up, an empty answer), the outer one stops the run.
fn explain_one(
    reader: &dyn StoreRead,
    source: &SourceEntry,
    neuron: NeuronIndex,
    models: &ExplainModels<'_>,
    token_texts: &[String],
    job: &ExplainJob,
    author: &str,
) -> Result<Result<Done, String>, ExplainError> {
    let Some(NeuronRecord::Examples(examples)) =
        reader.neuron_record(source, neuron.layer, neuron.index, NeuronDataKind::Examples)?
    else {
        return Ok(Err("no recorded examples".into()));
    };
    let top = examples.examples_of(ExampleGroupKind::Top);
    let random = examples.examples_of(ExampleGroupKind::Random);
    let splits = split(&top, &random, job);
    if splits.train.is_empty() || splits.train.iter().all(|w| w.activations.iter().all(|&a| a <= 0.0)) {
        return Ok(Err("no top example where the neuron fires".into()));
    }
    let texts = |window: &Window| -> Vec<String> {
        window
            .tokens
            .iter()
            .map(|&t| token_texts.get(t as usize).cloned().unwrap_or_else(|| format!("<{t}>")))
            .collect()
    };
    let shown: Vec<ShownSequence> =
        splits.train.iter().map(|w| ShownSequence { tokens: texts(w), activations: w.activations.clone() }).collect();
    let messages = explainer_messages(&shown);
    let explaining = Instant::now();
    let answer = match models.explainer.explain(&messages) {
        Ok(answer) => answer,
        Err(ExplainError::Endpoint(message)) => return Ok(Err(message)),
        Err(ExplainError::Invalid(message)) => return Ok(Err(message)),
        Err(error) => return Err(error),
    };
    let explain_time = explaining.elapsed();
    let Some(text) = parse_explanation(&answer.text) else {
        return Ok(Err(format!("the explainer's answer holds no explanation: {:?}", clip(&answer.text))));
    };
    if copies_an_example(&text) {
        return Ok(Err(format!("the explainer copied the prompt's example answer {text:?}")));
    }
    let mut explanation = Explanation {
        text,
        origin: GENERATED.to_owned(),
        author: Some(author.to_owned()),
        provenance: Some(ExplanationProvenance {
            prompt_version: EXPLAINER_PROMPT_VERSION.to_owned(),
            prompt: transcript(&messages),
            simulator: None,
            created: now_rfc3339(),
        }),
        ..Explanation::default()
    };
    let simulating = Instant::now();
    if let Some(simulator) = models.simulator {
        let windows: Vec<&Window> = splits.calibration.iter().chain(&splits.scored).collect();
        let sequences: Vec<Vec<String>> = windows.iter().map(|w| texts(w)).collect();
        let expected = match simulator.simulate(&explanation.text, &sequences) {
            Ok(expected) => expected,
            Err(ExplainError::Endpoint(message)) => return Ok(Err(format!("simulating: {message}"))),
            Err(ExplainError::Invalid(message)) => return Ok(Err(format!("simulating: {message}"))),
            Err(error) => return Err(error),
        };
        let simulated: Vec<Simulated> = windows
            .iter()
            .zip(expected)
            .map(|(w, expected)| Simulated {
                expected,
                true_values: w.activations.iter().map(|&a| f64::from(a)).collect(),
                random: w.random,
            })
            .collect();
        let (calibration, scored) = simulated.split_at(splits.calibration.len());
        let scores = Scores::compute(calibration, scored);
        explanation.scores = scores
            .named()
            .into_iter()
            .map(|(name, value)| NamedScore { name: name.to_owned(), value: value as f32 })
            .collect();
        // One scored top and one scored random sequence, calibrated, for the page to draw.
        for random in [false, true] {
            if let Some((window, sim)) = splits.scored.iter().zip(scored).find(|(w, _)| w.random == random) {
                explanation.simulations.push(SimulatedSequence {
                    token_ids: window.tokens.clone(),
                    true_activations: window.activations.clone(),
                    simulated_activations: sim.expected.iter().map(|&e| scores.calibration.apply(e) as f32).collect(),
                });
            }
        }
        if let Some(provenance) = &mut explanation.provenance {
            provenance.simulator = Some(format!("{} ({})", simulator.name(), simulator.prompt_version()));
        }
    }
    let simulate_time = simulating.elapsed();
    if let Some(encoder) = models.encoder {
        let vectors = encoder.embed(&[explanation.text.as_str()])?;
        if let Some(vector) = vectors.first() {
            explanation.embedding = Some(TextEmbedding::quantize(encoder.model_name(), vector));
        }
    }
    Ok(Ok(Done {
        explanation,
        explain_time,
        simulate_time,
        prompt_tokens: answer.prompt_tokens,
        completion_tokens: answer.completion_tokens,
    }))
}

/// The neuron's sequences split as the module documentation says.
pub fn split(top: &[Example], random: &[Example], job: &ExplainJob) -> NeuronSplits {
    let mut splits = NeuronSplits::default();
    for (rank, example) in top.iter().enumerate() {
        let window = top_window(example, job);
        if window.tokens.is_empty() {
            continue;
        }
        match rank % 4 {
            0 | 2 if splits.train.len() < job.train_examples => splits.train.push(window),
            0 | 2 => {}
            1 => splits.calibration.push(window),
            _ => splits.scored.push(window),
        }
    }
    for (index, example) in random.iter().enumerate() {
        let start = FIRST_SHOWN;
        let end = (start + job.window_before + job.window_after + 1).min(example.tokens.len());
        if start >= end {
            continue;
        }
        let window = Window {
            tokens: example.tokens[start..end].to_vec(),
            activations: example.activations[start..end].to_vec(),
            random: true,
        };
        match index % 2 {
            1 => splits.calibration.push(window),
            _ => splits.scored.push(window),
        }
    }
    splits
}

/// Every recorded context starts with the model's BOS token, which no prompt shows (the
/// statistics leave it out too: dd-data's `NeuronStats`).
const FIRST_SHOWN: usize = 1;

/// The tokens around a top example's largest activation, BOS left out.
fn top_window(example: &Example, job: &ExplainJob) -> Window {
    let n = example.tokens.len().min(example.activations.len());
    let first = FIRST_SHOWN;
    if first >= n {
        return Window::default();
    }
    let peak = (first..n).max_by(|&a, &b| example.activations[a].total_cmp(&example.activations[b])).unwrap_or(first);
    let start = peak.saturating_sub(job.window_before).max(first);
    let end = (peak + job.window_after + 1).min(n);
    Window {
        tokens: example.tokens[start..end].to_vec(),
        activations: example.activations[start..end].to_vec(),
        random: false,
    }
}

/// A token's text from the display string the vocabulary stores (`dd_model::display_token`:
/// space `·`, tab `→`, newline `↵`, carriage return `␍`), as the models should read it.
pub fn plain_text(display: &str) -> String {
    display.replace('·', " ").replace('→', "\t").replace('↵', "\n").replace('␍', "\r")
}

fn clip(text: &str) -> String {
    text.chars().take(120).collect()
}

fn poisoned() -> ExplainError {
    ExplainError::Invalid("an explaining thread panicked".into())
}

pub use dd_data::time::now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    fn example(peak: usize, len: usize) -> Example {
        let mut activations = vec![0.0; len];
        activations[peak] = 5.0;
        Example {
            dataset_index: 0,
            tokens: (0..len as u32).collect(),
            activations,
            max_token_index: peak as u32,
            activation_error: 0.0,
        }
    }

    #[test]
    fn splits_keep_training_calibration_and_scoring_apart() {
        let job = ExplainJob::standard("m", NeuronChoice::default());
        let top: Vec<Example> = (0..20).map(|i| example(30 + i, 64)).collect();
        let random: Vec<Example> = (0..5).map(|_| example(3, 64)).collect();
        let splits = split(&top, &random, &job);
        assert_eq!(splits.train.len(), 5);
        // Held-out top: ranks 1, 5, 9, 13, 17 calibrate; 3, 7, 11, 15, 19 are scored.
        assert_eq!(splits.calibration.iter().filter(|w| !w.random).count(), 5);
        assert_eq!(splits.scored.iter().filter(|w| !w.random).count(), 5);
        assert_eq!(splits.calibration.iter().filter(|w| w.random).count(), 2);
        assert_eq!(splits.scored.iter().filter(|w| w.random).count(), 3);
        // The first scored top window is rank 3's: its peak at position 33, 24 before and 8 after.
        assert_eq!(splits.scored[0].tokens, (9..42).collect::<Vec<u32>>());
        // A peak near the start is cut at BOS.
        assert_eq!(top_window(&example(5, 64), &job).tokens, (1..14).collect::<Vec<u32>>());
        // Random windows start after BOS.
        assert_eq!(splits.scored.iter().find(|w| w.random).map(|w| w.tokens[0]), Some(1));
        assert_eq!(splits.train[1].tokens.len(), 33);
    }

    #[test]
    fn best_explanations_come_first() {
        let scored = |value: f32| Explanation {
            scores: vec![NamedScore { name: crate::score::names::EV_CORRELATION.into(), value }],
            ..Explanation::default()
        };
        let mut list = vec![Explanation::default(), scored(0.1), scored(0.7), scored(f32::NAN)];
        sort_best_first(&mut list);
        let firsts: Vec<Option<f32>> = list.iter().map(|e| e.score(crate::score::names::EV_CORRELATION)).collect();
        assert_eq!(firsts[..2], [Some(0.7), Some(0.1)]);
    }
}
