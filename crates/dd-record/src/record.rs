//! Recording: contexts stream through the model batch by batch into the accumulators, with
//! checkpoints from which an interrupted run resumes exactly where it stopped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::Tensor;
use dd_model::{Hook, RunRequest, Tokenizer, Transformer};

use crate::accumulate::{AccumulatorConfig, BatchActivations, ContextsView, ModelAccumulator, TokenSlots};
use crate::contexts::ContextTokens;
use crate::dataset::{self, Context, ContextConfig, DatasetConfig, Shard};
use crate::error::RecordError;
use crate::recording::{RecordTiming, Recording, model_identity};
use crate::state::RecorderState;

/// What to record and how.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// The model's name in the database (also part of the settings a checkpoint must match).
    pub model_name: String,
    /// The text to record.
    pub dataset: DatasetConfig,
    /// Tokens per context, BOS included.
    pub context_length: usize,
    /// Stop after this many tokens (all shards together).
    pub token_budget: Option<u64>,
    /// The slice of the dataset this run records.
    pub shard: Shard,
    /// Contexts per forward pass.
    pub batch_size: usize,
    /// What to keep per neuron.
    pub accumulator: AccumulatorConfig,
    /// Memory for the per-token mean activations of every neuron, in bytes.
    pub token_table_bytes: u64,
    /// The checkpoint file.
    pub checkpoint_path: PathBuf,
    /// Time between checkpoints.
    pub checkpoint_interval: Duration,
}

/// Progress of a recording, for the caller to display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RecordEvent {
    /// Counting token frequencies before recording (chooses the token table).
    Counting {
        /// Tokens counted so far.
        tokens: u64,
    },
    /// Recording is under way.
    Recording {
        /// Tokens recorded by this shard so far, resumed ones included.
        tokens: u64,
        /// The most tokens this shard will record, when known.
        total: Option<u64>,
    },
    /// A checkpoint was written.
    Checkpointed {
        /// Tokens it holds.
        tokens: u64,
    },
}

/// How a recording ended.
#[derive(Debug)]
pub enum RecordOutcome {
    /// Every context was recorded.
    Finished(Recording),
    /// The stop flag was raised; a checkpoint holds everything recorded so far.
    Interrupted {
        /// Tokens in the checkpoint.
        tokens: u64,
    },
}

/// The settings a checkpoint or shard must share with the run that continues or merges it.
fn settings_of(config: &RecordConfig, model: &Transformer, n_token_slots: usize) -> String {
    let a = &config.accumulator;
    format!(
        "model={} {} dataset={} format={:?} field={} context={} budget={} batch={} \
         top={} bottom={} bands={}x{} random={} bins={} token_slots={}",
        config.model_name,
        model_identity(model.config()),
        config.dataset.path.display(),
        config.dataset.format,
        config.dataset.text_field,
        config.context_length,
        config.token_budget.map_or("all".to_owned(), |b| b.to_string()),
        config.batch_size,
        a.sizes.top,
        a.sizes.bottom,
        a.sizes.bands,
        a.sizes.per_band,
        a.sizes.random,
        a.histogram_bins,
        n_token_slots,
    )
}

fn validate(config: &RecordConfig, model: &Transformer) -> Result<(), RecordError> {
    let n_ctx = model.config().n_ctx;
    if config.context_length < 2 || config.context_length > n_ctx {
        return Err(RecordError::InvalidConfig(format!(
            "the context length must be between 2 and the model's {n_ctx} tokens, not {}",
            config.context_length
        )));
    }
    if config.batch_size == 0 {
        return Err(RecordError::InvalidConfig("the batch size must be at least 1".to_owned()));
    }
    if config.shard.count == 0 || config.shard.index >= config.shard.count {
        return Err(RecordError::InvalidConfig(format!(
            "shard {}/{} does not exist (shards count from 0)",
            config.shard.index, config.shard.count
        )));
    }
    let sizes = &config.accumulator.sizes;
    if !(2..=1000).contains(&config.accumulator.histogram_bins) {
        return Err(RecordError::InvalidConfig("histograms need between 2 and 1,000 bins".to_owned()));
    }
    // One band could never hold maxima of both signs: 0 is an edge of every grid.
    if sizes.bands == 1 || sizes.bands > 1000 {
        return Err(RecordError::InvalidConfig("bands must be 0 (none) or between 2 and 1,000".to_owned()));
    }
    if [sizes.top, sizes.bottom, sizes.per_band, sizes.random].iter().any(|&n| n > 10_000) {
        return Err(RecordError::InvalidConfig("at most 10,000 examples per group".to_owned()));
    }
    Ok(())
}

fn open_contexts(
    config: &RecordConfig,
    tokenizer: &Arc<Tokenizer>,
    shard: Shard,
    start_context: u64,
) -> Result<dataset::Contexts, RecordError> {
    let documents = dataset::open_documents(&config.dataset)?;
    let context_config =
        ContextConfig { length: config.context_length, token_budget: config.token_budget, shard, start_context };
    Ok(dataset::split_into_contexts(documents, Arc::clone(tokenizer), &context_config)?)
}

/// Counts every token of the (unsharded) dataset and tracks the most frequent ones that fit the
/// token table's memory, so that every shard tracks the same tokens.
///
/// `None` when `stop` was raised during the count (nothing is recorded yet, so nothing is saved).
fn choose_token_slots(
    config: &RecordConfig,
    model: &Transformer,
    tokenizer: &Arc<Tokenizer>,
    stop: &AtomicBool,
    progress: &(dyn Fn(RecordEvent) + Sync),
) -> Result<Option<TokenSlots>, RecordError> {
    let vocab_size = model.config().d_vocab.max(tokenizer.vocab_size());
    let n_neurons = model.config().n_neurons().max(1);
    let capacity = (config.token_table_bytes / (n_neurons * 8)) as usize;
    let mut counts: HashMap<u32, u64> = HashMap::new();
    let mut n_tokens = 0u64;
    if capacity > 0 {
        for context in open_contexts(config, tokenizer, Shard::WHOLE, 0)? {
            for &token in &context?.tokens {
                *counts.entry(token).or_default() += 1;
            }
            n_tokens += config.context_length as u64;
            if n_tokens % (1 << 16) < config.context_length as u64 {
                progress(RecordEvent::Counting { tokens: n_tokens });
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
            }
        }
    }
    let mut by_frequency: Vec<(u32, u64)> = counts.into_iter().filter(|(t, _)| (*t as usize) < vocab_size).collect();
    by_frequency.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    by_frequency.truncate(capacity);
    Ok(Some(TokenSlots::new(vocab_size, by_frequency.into_iter().map(|(token, _)| token).collect())))
}

/// Records `config.dataset` through `model`, resuming from the checkpoint if there is one.
///
/// Raising `stop` makes the run finish its batch, write a checkpoint and return
/// [`RecordOutcome::Interrupted`]; running again with the same settings continues from there and
/// ends with exactly what an uninterrupted run records.
pub fn record(
    model: &Transformer,
    tokenizer: &Arc<Tokenizer>,
    config: &RecordConfig,
    stop: &AtomicBool,
    progress: &(dyn Fn(RecordEvent) + Sync),
) -> Result<RecordOutcome, RecordError> {
    validate(config, model)?;
    let shard = (config.shard.index, config.shard.count);
    let mut state = if config.checkpoint_path.exists() {
        let state = RecorderState::load(&config.checkpoint_path)?;
        let ours = settings_of(config, model, state.accumulator.token_slots.tokens.len());
        if state.settings != ours || state.shard != shard {
            return Err(RecordError::SettingsMismatch {
                what: format!("checkpoint {}", config.checkpoint_path.display()),
                theirs: format!("{} shard={}/{}", state.settings, state.shard.0, state.shard.1),
                ours: format!("{ours} shard={}/{}", shard.0, shard.1),
                hint: "run with the same settings, or delete the checkpoint to start over",
            });
        }
        tracing::info!(tokens = state.tokens_recorded, "resuming from {}", config.checkpoint_path.display());
        state
    } else {
        let Some(token_slots) = choose_token_slots(config, model, tokenizer, stop, progress)? else {
            return Ok(RecordOutcome::Interrupted { tokens: 0 });
        };
        let c = model.config();
        RecorderState {
            settings: settings_of(config, model, token_slots.tokens.len()),
            shard,
            next_context: 0,
            contexts_recorded: 0,
            tokens_recorded: 0,
            // Contexts start with BOS exactly when the tokenizer has one (`dataset::contexts`).
            accumulator: ModelAccumulator::new(
                c.n_layers as u32,
                c.d_mlp as u32,
                &config.accumulator,
                token_slots,
                tokenizer.bos_token_id().is_some(),
            ),
            contexts: ContextTokens::default(),
        }
    };

    let mut timing = RecordTiming::default();
    let total = config.token_budget.map(|budget| budget.div_ceil(config.shard.count));
    let request = RunRequest::all_layers(model.config());
    let mut last_checkpoint = Instant::now();
    let contexts = open_contexts(config, tokenizer, config.shard, state.next_context)?;
    let batch_size = config.batch_size;
    let interrupted = std::thread::scope(|scope| -> Result<bool, RecordError> {
        // Tokenizing on its own thread overlaps it with the forward pass.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<Vec<Context>, RecordError>>(2);
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(batch_size);
            for context in contexts {
                match context {
                    Ok(context) => batch.push(context),
                    Err(error) => {
                        let _ = sender.send(Err(error.into()));
                        return;
                    }
                }
                if batch.len() == batch_size && sender.send(Ok(std::mem::take(&mut batch))).is_err() {
                    return;
                }
            }
            if !batch.is_empty() {
                let _ = sender.send(Ok(batch));
            }
        });
        for batch in receiver {
            let batch = batch?;
            record_batch(model, &request, &batch, &mut state, &mut timing)?;
            progress(RecordEvent::Recording { tokens: state.tokens_recorded, total });
            let stopping = stop.load(Ordering::Relaxed);
            if stopping || last_checkpoint.elapsed() >= config.checkpoint_interval {
                state.save(&config.checkpoint_path)?;
                progress(RecordEvent::Checkpointed { tokens: state.tokens_recorded });
                last_checkpoint = Instant::now();
            }
            if stopping {
                // Dropping the receiver ends the producer at its next send.
                return Ok(true);
            }
        }
        Ok(false)
    })?;
    tracing::info!(
        forward_s = timing.forward.as_secs_f64(),
        accumulate_s = timing.accumulate.as_secs_f64(),
        "time in the forward pass and in the accumulators"
    );
    if interrupted {
        return Ok(RecordOutcome::Interrupted { tokens: state.tokens_recorded });
    }
    if state.contexts_recorded == 0 {
        return Err(RecordError::NothingRecorded);
    }
    // The checkpoint stays until the caller's database is complete: a run killed while writing
    // then resumes with nothing left to record and writes again, and a reader can tell a
    // database with a checkpoint beside it is unfinished.
    state.save(&config.checkpoint_path)?;
    progress(RecordEvent::Checkpointed { tokens: state.tokens_recorded });
    Ok(RecordOutcome::Finished(Recording { state: Box::new(state), timing, dataset: None }))
}

/// Runs one batch of contexts (right-padded to the longest) and accumulates every layer.
fn record_batch(
    model: &Transformer,
    request: &RunRequest,
    batch: &[Context],
    state: &mut RecorderState,
    timing: &mut RecordTiming,
) -> Result<(), RecordError> {
    let positions = batch.iter().map(|c| c.tokens.len()).max().unwrap_or(0);
    if positions == 0 {
        return Ok(());
    }
    // Padding sits after each context's tokens, so causal attention keeps it out of their activations.
    let mut ids = vec![0u32; batch.len() * positions];
    for (c, context) in batch.iter().enumerate() {
        ids[c * positions..c * positions + context.tokens.len()].copy_from_slice(&context.tokens);
    }
    let input =
        Tensor::from_vec(ids.clone(), (batch.len(), positions), model.device()).map_err(dd_model::ModelError::from)?;
    let started = Instant::now();
    let output = model.run(&input, request)?;
    timing.forward += started.elapsed();
    let started = Instant::now();
    // Read the activations where the forward pass left them: copying 150 MB a batch (gpt2-small)
    // cost page faults worth a tenth of the run.
    let tensors: Vec<Tensor> = (0..model.config().n_layers)
        .map(|layer| {
            let values = output.get(layer, Hook::Post).ok_or_else(|| {
                RecordError::InvalidConfig(format!("the model returned no activations for layer {layer}"))
            })?;
            let host = values.to_device(&candle_core::Device::Cpu).and_then(|v| v.to_dtype(candle_core::DType::F32));
            host.and_then(|v| v.contiguous()).map_err(|e| dd_model::ModelError::from(e).into())
        })
        .collect::<Result<_, RecordError>>()?;
    let guards: Vec<_> = tensors.iter().map(Tensor::storage_and_layout).collect();
    let layers: Vec<&[f32]> = guards
        .iter()
        .map(|(storage, layout)| {
            let candle_core::Storage::Cpu(storage) = &**storage else {
                return Err(RecordError::InvalidConfig("activations did not move to the CPU".to_owned()));
            };
            let values = storage.as_slice::<f32>().map_err(dd_model::ModelError::from)?;
            let (start, end) = layout
                .contiguous_offsets()
                .ok_or_else(|| RecordError::InvalidConfig("activations are not contiguous".to_owned()))?;
            Ok(&values[start..end])
        })
        .collect::<Result<_, _>>()?;
    let indices: Vec<u64> = batch.iter().map(|c| c.index).collect();
    let lengths: Vec<usize> = batch.iter().map(|c| c.tokens.len()).collect();
    state
        .accumulator
        .accumulate(&BatchActivations {
            layers,
            contexts: ContextsView { indices: &indices, lengths: &lengths, positions },
            tokens: &ids,
        })
        .map_err(|bad| RecordError::NonFinite { layer: bad.layer, neuron: bad.neuron, context: bad.context })?;
    for context in batch {
        state.contexts.push(context.index, &context.tokens);
        state.tokens_recorded += context.tokens.len() as u64;
    }
    timing.accumulate += started.elapsed();
    state.contexts_recorded += batch.len() as u64;
    state.next_context = indices.last().map_or(state.next_context, |last| last + 1);
    Ok(())
}
