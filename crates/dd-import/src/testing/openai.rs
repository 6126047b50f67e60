//! Writes datasets in OpenAI's automated-interpretability layout, with the published field names
//! and realistic sizes, for tests and the import benchmark (never committed: a GPT-2 XL-sized one
//! is tens of gigabytes).

use std::fmt::Write as _;
use std::path::Path;

/// The shape of a generated dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenAiFixture {
    /// Layers written (from 0).
    pub layers: u32,
    /// Neurons written per layer (from 0).
    pub neurons: u32,
    /// Top-activating records per neuron (OpenAI's collated activations hold 20).
    pub top: usize,
    /// Random-sample records per neuron.
    pub random: usize,
    /// Quantile bands of the random sample by quantile, and records per band.
    pub quantiles: (usize, usize),
    /// Tokens per record (OpenAI's are 64).
    pub tokens_per_record: usize,
    /// Scored sequences per explanation.
    pub simulated_sequences: usize,
    /// Seed of the values.
    pub seed: u64,
}

impl OpenAiFixture {
    /// Sizes close to the published GPT-2 XL files: 20 top, 20 random and 5 × 20 quantile
    /// records of 64 tokens (about 200 KB of JSON per neuron), 10 scored sequences per explanation.
    pub fn realistic(layers: u32, neurons: u32) -> Self {
        Self {
            layers,
            neurons,
            top: 20,
            random: 20,
            quantiles: (5, 20),
            tokens_per_record: 64,
            simulated_sequences: 10,
            seed: 7,
        }
    }
}

/// The words generated tokens are drawn from: spaces, punctuation, a newline and non-ASCII text,
/// as real GPT-2 tokens have.
const WORDS: &[&str] = &[
    " the", " of", " and", ",", ".", " to", " a", " in", "\n", " is", " that", " for", " it", " was", " on", " with",
    " he", " as", " you", " at", " Paris", "ing", " über", "é", " 1999", "\"", " —", " neuron", " cat", " dog",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn json_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::Value::String(text.to_owned()).to_string());
}

fn record(out: &mut String, rng: &mut Rng, n_tokens: usize, scale: f64) {
    out.push_str("{\"dataclass_name\": \"ActivationRecord\", \"tokens\": [");
    for i in 0..n_tokens {
        if i > 0 {
            out.push_str(", ");
        }
        json_string(out, WORDS[(rng.next() % WORDS.len() as u64) as usize]);
    }
    out.push_str("], \"activations\": [");
    for i in 0..n_tokens {
        if i > 0 {
            out.push_str(", ");
        }
        // GELU-like: mostly slightly negative, sometimes large.
        let value = if rng.unit() < 0.1 { scale * rng.unit() } else { -0.17 * rng.unit() };
        let _ = write!(out, "{value}");
    }
    out.push_str("]}");
}

fn records(out: &mut String, rng: &mut Rng, n: usize, n_tokens: usize, scale: f64) {
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        record(out, rng, n_tokens, scale);
    }
    out.push(']');
}

/// The collated activations of one neuron, as OpenAI's `NeuronRecord` JSON.
pub fn collated_activations(shape: &OpenAiFixture, layer: u32, neuron: u32) -> String {
    let mut rng = Rng(shape.seed ^ (u64::from(layer) << 32 | u64::from(neuron)));
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "{{\"dataclass_name\": \"NeuronRecord\", \"neuron_id\": {{\"dataclass_name\": \"NeuronId\", \"layer_index\": {layer}, \"neuron_index\": {neuron}}}, \"random_sample\": "
    );
    records(&mut out, &mut rng, shape.random, shape.tokens_per_record, 2.0);
    out.push_str(", \"random_sample_by_quantile\": [");
    for band in 0..shape.quantiles.0 {
        if band > 0 {
            out.push_str(", ");
        }
        records(&mut out, &mut rng, shape.quantiles.1, shape.tokens_per_record, 1.0 + band as f64);
    }
    out.push_str("], \"quantile_boundaries\": [");
    for boundary in 0..shape.quantiles.0.saturating_sub(1) {
        if boundary > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}", 1.0 + boundary as f64);
    }
    let _ = write!(
        out,
        "], \"mean\": {}, \"variance\": {}, \"skewness\": {}, \"kurtosis\": {}, \"most_positive_activation_records\": ",
        0.01 + rng.unit() * 0.1,
        0.2 + rng.unit(),
        3.0 + rng.unit(),
        20.0 + rng.unit() * 10.0
    );
    records(&mut out, &mut rng, shape.top, shape.tokens_per_record, 8.0);
    out.push('}');
    out
}

/// The explanations of one neuron, as one line of OpenAI's `NeuronSimulationResults` JSON.
pub fn explanations(shape: &OpenAiFixture, layer: u32, neuron: u32) -> String {
    let mut rng = Rng(shape.seed.wrapping_mul(31) ^ (u64::from(layer) << 32 | u64::from(neuron)));
    let mut out = String::with_capacity(128 * 1024);
    let _ = write!(
        out,
        "{{\"dataclass_name\": \"NeuronSimulationResults\", \"neuron_id\": {{\"layer_index\": {layer}, \"neuron_index\": {neuron}}}, \"scored_explanations\": [{{\"dataclass_name\": \"ScoredExplanation\", \"explanation\": {}, \"scored_simulation\": {{\"dataclass_name\": \"ScoredSimulation\", \"scored_sequence_simulations\": [",
        serde_json::Value::String(format!(
            " words about {} near {neuron}",
            WORDS[(layer as usize + neuron as usize) % WORDS.len()].trim()
        ))
    );
    for sequence in 0..shape.simulated_sequences {
        if sequence > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"dataclass_name\": \"ScoredSequenceSimulation\", \"simulation\": {\"dataclass_name\": \"SequenceSimulation\", \"tokens\": [");
        let n = shape.tokens_per_record;
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            json_string(&mut out, WORDS[(rng.next() % WORDS.len() as u64) as usize]);
        }
        out.push_str("], \"expected_activations\": [");
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}", rng.unit() * 3.0);
        }
        out.push_str("], \"activation_scale\": \"neuron_activations\", \"distribution_values\": [");
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str("[0, 1, 2, 3, 10]");
        }
        out.push_str("], \"distribution_probabilities\": [");
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "[{}, 0.1, 0.1, 0.05, 0.05]", 0.7);
        }
        out.push_str("], \"uncalibrated_simulation\": null}, \"true_activations\": [");
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}", rng.unit() * 5.0 - 0.1);
        }
        let _ = write!(
            out,
            "], \"ev_correlation_score\": {}, \"rsquared_score\": {}, \"absolute_dev_explained_score\": {}}}",
            rng.unit(),
            rng.unit() - 0.5,
            rng.unit() - 0.5
        );
    }
    let _ = writeln!(
        out,
        "], \"ev_correlation_score\": {}, \"rsquared_score\": {}, \"absolute_dev_explained_score\": {}}}}}]}}",
        rng.unit(),
        rng.unit() - 0.5,
        rng.unit() - 0.5
    );
    out
}

/// Activation-based related tokens of one neuron (`TokenLookupTableSummaryOfNeuron`).
pub fn activation_based_tokens(shape: &OpenAiFixture, layer: u32, neuron: u32) -> String {
    let mut rng = Rng(shape.seed.wrapping_mul(17) ^ (u64::from(layer) << 32 | u64::from(neuron)));
    let tokens: Vec<&str> = WORDS.iter().take(12).copied().collect();
    let means: Vec<f64> = tokens.iter().map(|_| rng.unit() * 4.0 - 0.5).collect();
    serde_json::json!({"dataclass_name": "TokenLookupTableSummaryOfNeuron", "tokens": tokens, "average_activations": means})
        .to_string()
}

/// Weight-based related tokens of one neuron (`WeightBasedSummaryOfNeuron`).
pub fn weight_based_tokens(shape: &OpenAiFixture, layer: u32, neuron: u32) -> String {
    let mut rng = Rng(shape.seed.wrapping_mul(13) ^ (u64::from(layer) << 32 | u64::from(neuron)));
    let mut side = |sign: f64| {
        let tokens: Vec<&str> = (0..10).map(|i| WORDS[(i * 3 + neuron as usize) % WORDS.len()]).collect();
        let strengths: Vec<f64> = (0..10).map(|i| sign * (1.0 + rng.unit()) / (1.0 + f64::from(i))).collect();
        serde_json::json!({"dataclass_name": "TokensAndWeights", "tokens": tokens, "strengths": strengths})
    };
    serde_json::json!({
        "dataclass_name": "WeightBasedSummaryOfNeuron",
        "input_positive": side(1.0), "input_negative": side(-1.0),
        "output_positive": side(1.0), "output_negative": side(-1.0),
    })
    .to_string()
}

/// Weight-based related neurons of one neuron (`c_fc` inputs from earlier layers, `c_proj`
/// outputs to later ones).
pub fn related_neurons(shape: &OpenAiFixture, layer: u32, neuron: u32) -> String {
    let mut rng = Rng(shape.seed.wrapping_mul(11) ^ (u64::from(layer) << 32 | u64::from(neuron)));
    let mut side = |other_layer: u32| {
        let names: Vec<String> =
            (0..5).map(|i| format!("{other_layer}_{}", (neuron + i * 7) % shape.neurons.max(1))).collect();
        let positive: Vec<f64> = (0..5).map(|i| (1.0 + rng.unit()) / (1.0 + f64::from(i))).collect();
        let negative: Vec<f64> = positive.iter().map(|w| -w * 0.5).collect();
        serde_json::json!({"top_positive_neurons": names, "top_positive_weights": positive,
                           "top_negative_neurons": names, "top_negative_weights": negative})
    };
    serde_json::json!({"c_fc": side(layer.saturating_sub(1)), "c_proj": side(layer + 1)}).to_string()
}

/// Writes every part of the dataset under `root` in the published layout; returns the bytes written.
pub fn write_openai_dataset(root: &Path, shape: &OpenAiFixture) -> std::io::Result<u64> {
    let mut written = 0u64;
    for layer in 0..shape.layers {
        for part in [
            "collated-activations",
            "explanations",
            "related-tokens/activation-based",
            "related-tokens/weight-based",
            "related-neurons/weight-based",
        ] {
            std::fs::create_dir_all(root.join(part).join(layer.to_string()))?;
        }
        for neuron in 0..shape.neurons {
            let files = [
                (format!("collated-activations/{layer}/{neuron}.json"), collated_activations(shape, layer, neuron)),
                (format!("explanations/{layer}/{neuron}.jsonl"), explanations(shape, layer, neuron)),
                (
                    format!("related-tokens/activation-based/{layer}/{neuron}.json"),
                    activation_based_tokens(shape, layer, neuron),
                ),
                (
                    format!("related-tokens/weight-based/{layer}/{neuron}.json"),
                    weight_based_tokens(shape, layer, neuron),
                ),
                (format!("related-neurons/weight-based/{layer}/{neuron}.json"), related_neurons(shape, layer, neuron)),
            ];
            for (path, text) in files {
                written += text.len() as u64;
                std::fs::write(root.join(path), text)?;
            }
        }
    }
    Ok(written)
}
