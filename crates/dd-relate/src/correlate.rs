//! Every neuron's activations on the sampled tokens, from the model, and the correlations between
//! them (`dd_model::correlation`: exact Pearson r in tiles, never the full matrix).

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Device, Tensor};
use dd_data::{CorrelatedNeuron, NeuronCorrelations, NeuronIndex};
use dd_model::correlation::{ActivationSample, CorrelationOptions};
use dd_model::{RunRequest, Transformer};

use crate::RelateError;
use crate::sample::ContextSample;

/// Contexts of one length run together, at most this many tokens a run.
const TOKENS_PER_RUN: usize = 2048;

/// Runs the sample's contexts through `model` and keeps every neuron's activation on every measured
/// token, in the sample's order; `progress` gets the tokens done so far.
pub fn sample_activations(
    model: &Transformer,
    sample: &ContextSample,
    stop: &AtomicBool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<ActivationSample, RelateError> {
    let config = model.config();
    let (n_layers, d_mlp) = (config.n_layers, config.d_mlp);
    let neurons = n_layers * d_mlp;
    let mut activations = ActivationSample::new(neurons, sample.tokens())?;
    let request = RunRequest::all_layers(config);
    let first = usize::from(sample.skip_first);
    let mut done = 0;
    let mut start = 0;
    while start < sample.contexts.len() {
        if stop.load(Ordering::Relaxed) {
            return Err(RelateError::Stopped);
        }
        // Consecutive contexts of one length, so the sample's order is kept.
        let length = sample.contexts[start].tokens.len();
        let mut end = start + 1;
        while end < sample.contexts.len()
            && sample.contexts[end].tokens.len() == length
            && (end - start + 1) * length <= TOKENS_PER_RUN
        {
            end += 1;
        }
        let batch = &sample.contexts[start..end];
        let ids: Vec<u32> = batch.iter().flat_map(|context| context.tokens.iter().copied()).collect();
        let input = Tensor::from_vec(ids, (batch.len(), length), &Device::Cpu)?.to_device(model.device())?;
        let output = model.run(&input, &request)?;
        let measured = length - first;
        let mut rows = vec![0f32; batch.len() * measured * neurons];
        for layer in 0..n_layers {
            let values = output
                .get(layer, dd_model::Hook::Post)
                .ok_or_else(|| RelateError::Invalid(format!("the model returned no activations for layer {layer}")))?;
            let values: Vec<f32> = values.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?;
            for context in 0..batch.len() {
                for position in first..length {
                    let from = (context * length + position) * d_mlp;
                    let row = context * measured + position - first;
                    let to = row * neurons + layer * d_mlp;
                    rows[to..to + d_mlp].copy_from_slice(&values[from..from + d_mlp]);
                }
            }
        }
        activations.push(&rows)?;
        done += batch.len() * measured;
        progress(done);
        start = end;
    }
    Ok(activations)
}

/// Every neuron's most correlated neurons, by layer and index; `progress` gets the correlations
/// computed so far (of `neurons²`).
pub fn correlate(
    activations: &ActivationSample,
    neurons_per_layer: usize,
    options: &CorrelationOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<NeuronCorrelations>, RelateError> {
    let tokens = activations.tokens() as u32;
    let at = |global: u64| NeuronIndex {
        layer: (global / neurons_per_layer as u64) as u32,
        index: (global % neurons_per_layer as u64) as u32,
    };
    let convert = |list: &[dd_model::correlation::Correlated]| -> Vec<CorrelatedNeuron> {
        list.iter().map(|c| CorrelatedNeuron { neuron: at(c.neuron), correlation: c.correlation }).collect()
    };
    Ok(activations
        .correlations(options, progress)?
        .iter()
        .map(|lists| NeuronCorrelations {
            tokens,
            positive: convert(&lists.positive),
            negative: convert(&lists.negative),
        })
        .collect())
}
