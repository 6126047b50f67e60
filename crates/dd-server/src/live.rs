//! "Try your own text": the served model run on a visitor's text, bounded in length and in runs at once.
//!
//! A forward pass takes a core for tenths of a second, so runs wait for one of a few permits and a
//! visitor who finds them all busy for [`LiveLimits::queue_wait`] gets a 503 rather than a queue
//! that grows without bound. Texts are cut to [`LiveLimits::max_tokens`] tokens. Inputs start with
//! the tokenizer's BOS token, as the recorder's contexts do, so values compare with the examples.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use candle_core::Tensor;
use dd_data::{LayerDataKind, LayerRecord};
use dd_model::{Hook, RunRequest, Tokenizer, Transformer};
use dd_store::StoreRead;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::model_context::ModelContext;

/// Neurons listed per token on the model page.
pub(crate) const NEURONS_PER_TOKEN: usize = 5;

/// Bounds on visitors' model runs.
#[derive(Debug, Clone)]
pub struct LiveLimits {
    /// Tokens of a text that are run (BOS included); the rest is cut off, and the page says so.
    pub max_tokens: usize,
    /// Forward passes at once.
    pub max_concurrent_runs: usize,
    /// How long a run waits for a permit before the visitor gets 503.
    pub queue_wait: Duration,
}

impl LiveLimits {
    /// Defaults for a public deployment: 256 tokens, one run at a time, two seconds of waiting.
    pub fn standard() -> Self {
        LiveLimits { max_tokens: 256, max_concurrent_runs: 1, queue_wait: Duration::from_secs(2) }
    }
}

/// A model the server runs on visitors' texts, with its tokenizer and bounds.
pub struct LiveModel {
    transformer: Transformer,
    tokenizer: Arc<Tokenizer>,
    limits: LiveLimits,
    runs: Arc<Semaphore>,
}

/// Why a model cannot serve a database's pages.
#[derive(Debug, thiserror::Error)]
pub enum LiveModelError {
    /// The database has no model of that name.
    #[error("the database has no model named {0:?}")]
    UnknownModel(String),
    /// The weights have another shape than the recorded data.
    #[error("model {name:?} was recorded with {recorded}, but the given weights have {given}")]
    ShapeMismatch {
        /// The served model.
        name: String,
        /// Layers × neurons in the database.
        recorded: String,
        /// Layers × neurons of the weights.
        given: String,
    },
}

impl LiveModel {
    /// Wraps a loaded model.
    pub fn new(transformer: Transformer, tokenizer: Arc<Tokenizer>, limits: LiveLimits) -> Self {
        let runs = Arc::new(Semaphore::new(limits.max_concurrent_runs.max(1)));
        LiveModel { transformer, tokenizer, limits, runs }
    }

    /// The bounds.
    pub(crate) fn limits(&self) -> &LiveLimits {
        &self.limits
    }

    /// The run permits, for tests that make the model busy.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> Arc<Semaphore> {
        self.runs.clone()
    }

    /// This model, checked against the shape `model` was recorded with, with texts capped at its
    /// context; for `AppState::with_live_model`.
    pub(crate) fn fitted_to(mut self, model_name: &str, model: &ModelContext) -> Result<Self, LiveModelError> {
        let metadata = &model.entry.metadata;
        let config = self.transformer.config().clone();
        if metadata.n_layers != config.n_layers as u64 || metadata.d_mlp != config.d_mlp as u64 {
            return Err(LiveModelError::ShapeMismatch {
                name: model_name.into(),
                recorded: format!("{} layers × {} neurons", metadata.n_layers, metadata.d_mlp),
                given: format!("{} layers × {} neurons", config.n_layers, config.d_mlp),
            });
        }
        let vocabulary_len = model.tokens.len();
        let tokenizer_len = self.tokenizer.vocab_size();
        if vocabulary_len > 0 && vocabulary_len != tokenizer_len {
            return Err(LiveModelError::ShapeMismatch {
                name: model_name.into(),
                recorded: format!("a {vocabulary_len}-token vocabulary"),
                given: format!("a {tokenizer_len}-token tokenizer"),
            });
        }
        // A text longer than the model's context would fail in the forward pass.
        self.limits.max_tokens = self.limits.max_tokens.clamp(1, config.n_ctx.max(1));
        Ok(self)
    }
}

/// What a run reads for: a neuron page's neuron, or the model page's strongest neurons per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LiveTarget {
    /// Every layer, for the model page.
    Model,
    /// One neuron, `(layer, neuron)`, for its page.
    Neuron(u32, u32),
}

/// One neuron's activations on a text.
#[derive(Debug)]
pub(crate) struct NeuronTrace {
    /// One value per token.
    pub(crate) activations: Vec<f32>,
}

/// A neuron that fired on one token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Firing {
    /// Layer.
    pub(crate) layer: u32,
    /// Neuron.
    pub(crate) neuron: u32,
    /// Its activation on the token.
    pub(crate) activation: f32,
    /// The activation over the neuron's recorded maximum, when the layer's summary is stored.
    pub(crate) relative: Option<f32>,
}

/// What a run found, per page type.
#[derive(Debug)]
pub(crate) enum LiveFindings {
    /// The neuron page's neuron.
    Neuron(NeuronTrace),
    /// The model page: per token, the neurons that fired most.
    Model(Vec<Vec<Firing>>),
}

/// The result of running a visitor's text.
#[derive(Debug)]
pub(crate) struct LiveResult {
    /// The text as submitted.
    pub(crate) text: String,
    /// The tokens run (BOS included).
    pub(crate) tokens: Vec<u32>,
    /// Whether the first token is the BOS the run put there (left out of the text's extremes).
    pub(crate) starts_with_bos: bool,
    /// Tokens cut off by the limit.
    pub(crate) n_cut: usize,
    /// What the run found.
    pub(crate) findings: LiveFindings,
}

/// The 404 for a text sent to a model the server does not run.
pub(crate) fn no_live_model(name: &str) -> ApiError {
    ApiError::not_found(
        "no_live_model",
        format!("this server does not run model {name:?}; start it with `serve --model`"),
    )
}

/// Runs `text` on `live`, the model of `model`, for `target`; 503 when busy.
pub(crate) async fn run_text(
    live: Arc<LiveModel>,
    store: Arc<dyn StoreRead>,
    model: &Arc<ModelContext>,
    target: LiveTarget,
    text: &str,
) -> Result<LiveResult, ApiError> {
    let permit = match tokio::time::timeout(live.limits.queue_wait, live.runs.clone().acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(error)) => return Err(ApiError::internal(&error)),
        Err(_) => {
            return Err(ApiError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the model is busy with other visitors' texts; try again in a moment",
            ));
        }
    };
    let text = text.to_owned();
    let task_model = model.clone();
    tokio::task::spawn_blocking(move || {
        let result = run(&live, store.as_ref(), &task_model, target, text);
        drop(permit);
        result
    })
    .await?
}

/// Tokenizes and runs `text`, then reads what `target` shows. Blocking.
fn run(
    live: &LiveModel,
    store: &dyn StoreRead,
    model: &ModelContext,
    target: LiveTarget,
    text: String,
) -> Result<LiveResult, ApiError> {
    let mut tokens: Vec<u32> = live.tokenizer.bos_token_id().into_iter().collect();
    let starts_with_bos = !tokens.is_empty();
    tokens.extend(live.tokenizer.encode(&text).map_err(|error| ApiError::internal(&error))?);
    let n_cut = tokens.len().saturating_sub(live.limits.max_tokens);
    tokens.truncate(live.limits.max_tokens);
    if tokens.is_empty() {
        // A tokenizer without BOS may read a text as no tokens at all: nothing to run, nothing found.
        let findings = match target {
            LiveTarget::Neuron(..) => LiveFindings::Neuron(NeuronTrace { activations: Vec::new() }),
            LiveTarget::Model => LiveFindings::Model(Vec::new()),
        };
        return Ok(LiveResult { text, tokens, starts_with_bos, n_cut, findings });
    }
    let config = live.transformer.config();
    let layers: Vec<usize> = match target {
        LiveTarget::Neuron(layer, _) => vec![layer as usize],
        LiveTarget::Model => (0..config.n_layers).collect(),
    };
    let input = Tensor::new(tokens.as_slice(), live.transformer.device())
        .and_then(|t| t.unsqueeze(0))
        .map_err(|error| ApiError::internal(&error))?;
    let request = RunRequest { layers: layers.clone(), hooks: vec![Hook::Post], logits: false };
    let output = live.transformer.run(&input, &request).map_err(|error| ApiError::internal(&error))?;
    let d_mlp = config.d_mlp;
    let layer_values = |layer: usize| -> Result<Vec<f32>, ApiError> {
        let Some(values) = output.get(layer, Hook::Post) else {
            return Err(ApiError::internal_message(format!("running the live model: layer {layer} was not returned")));
        };
        values.flatten_all().and_then(|v| v.to_vec1::<f32>()).map_err(|error| ApiError::internal(&error))
    };
    let findings = match target {
        LiveTarget::Neuron(layer, neuron) => {
            let values = layer_values(layer as usize)?;
            let activations = values.chunks_exact(d_mlp).filter_map(|row| row.get(neuron as usize).copied()).collect();
            LiveFindings::Neuron(NeuronTrace { activations })
        }
        LiveTarget::Model => {
            let mut per_token: Vec<Vec<Firing>> = vec![Vec::new(); tokens.len()];
            for &layer in &layers {
                let values = layer_values(layer)?;
                let recorded_max = recorded_maxima(store, model, layer as u32)?;
                for (position, row) in values.chunks_exact(d_mlp).enumerate() {
                    let Some(firings) = per_token.get_mut(position) else { continue };
                    for (neuron, &activation) in row.iter().enumerate() {
                        let relative = recorded_max
                            .as_ref()
                            .and_then(|maxima| maxima.get(neuron))
                            .filter(|max| **max > 0.0)
                            .map(|max| activation / max);
                        let firing = Firing { layer: layer as u32, neuron: neuron as u32, activation, relative };
                        keep_strongest(firings, firing);
                    }
                }
            }
            LiveFindings::Model(per_token)
        }
    };
    Ok(LiveResult { text, tokens, starts_with_bos, n_cut, findings })
}

/// Each neuron's recorded maximum in `layer`, from the layer summary, when stored.
fn recorded_maxima(store: &dyn StoreRead, model: &ModelContext, layer: u32) -> Result<Option<Vec<f32>>, ApiError> {
    let Some(source) = model.source(None) else { return Ok(None) };
    match store.layer_record(source, layer, LayerDataKind::Summary)? {
        Some(LayerRecord::Summary(summary)) => Ok(Some(summary.neurons.iter().map(|n| n.max_activation).collect())),
        _ => Ok(None),
    }
}

/// Keeps the [`NEURONS_PER_TOKEN`] strongest firings, strongest first: by share of the recorded
/// maximum where known (raw values favour layers with large activations), then, after all of
/// those, by value; a share and a raw value are never compared.
fn keep_strongest(kept: &mut Vec<Firing>, firing: Firing) {
    let strength = |f: &Firing| (f.relative.is_some(), f.relative.unwrap_or(f.activation));
    let value = strength(&firing);
    if !value.1.is_finite()
        || (kept.len() == NEURONS_PER_TOKEN && kept.last().is_some_and(|last| strength(last) >= value))
    {
        return;
    }
    let position = kept.iter().position(|k| strength(k) < value).unwrap_or(kept.len());
    kept.insert(position, firing);
    kept.truncate(NEURONS_PER_TOKEN);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_strongest_firings_in_order() {
        let mut kept = Vec::new();
        let values = [0.5f32, 3.0, -1.0, 2.0, 7.0, 0.1, 6.0, f32::NAN, 2.5];
        for (i, &activation) in values.iter().enumerate() {
            keep_strongest(&mut kept, Firing { layer: 0, neuron: i as u32, activation, relative: None });
        }
        let kept_values: Vec<f32> = kept.iter().map(|f| f.activation).collect();
        let mut expected: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        expected.sort_by(|a, b| b.total_cmp(a));
        expected.truncate(NEURONS_PER_TOKEN);
        assert_eq!(kept_values, expected);
    }

    /// With the one run permit taken, a visitor's text is a 503 after the queue wait; once it is
    /// free, the same request runs. Through the whole application, in process.
    #[test]
    fn a_busy_model_answers_503() {
        use axum::body::Body;
        use axum::http::Request;

        let limits = LiveLimits { max_tokens: 8, max_concurrent_runs: 1, queue_wait: Duration::from_millis(100) };
        let app = crate::testing::LiveApp::new(limits);
        let post = || {
            app.send(
                Request::post("/viz/m/1/2")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("content-length", "10")
                    .body(Body::from("text=hello"))
                    .expect("request"),
            )
        };
        let api = || app.get("/api/m/activations/1/2?text=hello");
        let permit = app.runs.clone().try_acquire_owned().expect("the permit is free");
        let (status, body) = post();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("busy"), "{body}");
        let (status, body) = api();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("\"code\":\"busy\""), "the API keeps its JSON shape: {body}");
        drop(permit);
        let (status, body) = post();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("id=live-result"), "{body}");
        let (status, body) = api();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"activation\""), "{body}");
    }

    #[test]
    fn relative_strength_wins_over_raw_values() {
        let mut kept = Vec::new();
        keep_strongest(&mut kept, Firing { layer: 0, neuron: 0, activation: 10.0, relative: Some(0.2) });
        keep_strongest(&mut kept, Firing { layer: 1, neuron: 0, activation: 1.0, relative: Some(0.9) });
        keep_strongest(&mut kept, Firing { layer: 2, neuron: 0, activation: 50.0, relative: None });
        let layers: Vec<u32> = kept.iter().map(|f| f.layer).collect();
        assert_eq!(layers, [1, 0, 2], "shares first, highest first; raw values after them");
    }
}
