//! Natural-language explanations of a neuron, from any origin, with their scores, how they were
//! made, the simulations that scored them and their sentence embedding for search by meaning.

/// A named score of an explanation (`ev_correlation_score`, `n2g_precision`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedScore {
    /// Name of the score.
    pub name: String,
    /// Its value.
    pub value: f32,
}

/// One explanation of a neuron.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Explanation {
    /// The explanation text.
    pub text: String,
    /// Where it came from (`generated`, `openai`, `neuronpedia`, `neuron2graph`, `synthetic`).
    pub origin: String,
    /// Who or what wrote it (for generated ones, the explainer model), when known.
    pub author: Option<String>,
    /// Scores of the explanation, most important first.
    pub scores: Vec<NamedScore>,
    /// How a generated explanation was made; `None` for imported ones that do not say.
    pub provenance: Option<ExplanationProvenance>,
    /// Held-out sequences as the simulator predicted them, for drawing beside the true activations.
    pub simulations: Vec<SimulatedSequence>,
    /// The explanation's sentence embedding, for search by meaning.
    pub embedding: Option<TextEmbedding>,
}

impl Explanation {
    /// The value of the score called `name`, if the explanation has one.
    pub fn score(&self, name: &str) -> Option<f32> {
        self.scores.iter().find(|score| score.name == name).map(|score| score.value)
    }
}

/// How an explanation was generated: the prompt the explainer saw, the simulator that scored it
/// and when.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExplanationProvenance {
    /// The prompt format and its version (`oai-token-activation-pairs/1`).
    pub prompt_version: String,
    /// The exact prompt sent to the explainer (chat messages as one text).
    pub prompt: String,
    /// The simulator that produced the scores, when scored.
    pub simulator: Option<String>,
    /// When it was generated, as an RFC 3339 UTC timestamp (`2026-12-06T10:40:00Z`).
    pub created: String,
}

/// One held-out sequence: its tokens, the neuron's true activations and the simulator's
/// calibrated predictions, position by position.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimulatedSequence {
    /// Token ids of the sequence.
    pub token_ids: Vec<u32>,
    /// The neuron's recorded activations, one per token.
    pub true_activations: Vec<f32>,
    /// The simulator's predictions, calibrated to activation units, one per token.
    pub simulated_activations: Vec<f32>,
}

/// A unit-length sentence embedding stored as signed bytes: `values[i] as f32 * scale` is
/// component `i`, with `scale = max |component| / 127`, so one explanation costs `dimension + 4`
/// bytes and cosine similarities keep about three decimals.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextEmbedding {
    /// The embedding model (`all-MiniLM-L6-v2`): only vectors of one model are comparable.
    pub model: String,
    /// The value of one quantisation step.
    pub scale: f32,
    /// The quantised components.
    pub values: Vec<i8>,
}

impl TextEmbedding {
    /// Quantises `vector` (any length; normally unit length) to signed bytes.
    pub fn quantize(model: &str, vector: &[f32]) -> Self {
        let largest = vector.iter().fold(0f32, |largest, value| largest.max(value.abs()));
        let scale = if largest > 0.0 && largest.is_finite() { largest / 127.0 } else { 1.0 };
        let values = vector
            .iter()
            .map(|value| if value.is_finite() { (value / scale).round().clamp(-127.0, 127.0) as i8 } else { 0 })
            .collect();
        Self { model: model.to_owned(), scale, values }
    }

    /// The components as floats.
    pub fn dequantize(&self) -> Vec<f32> {
        self.values.iter().map(|&value| f32::from(value) * self.scale).collect()
    }
}

/// All explanations of one neuron.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Explanations {
    /// The explanations, best first.
    pub explanations: Vec<Explanation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_embeddings_keep_cosines_to_three_decimals() {
        let a: Vec<f32> = (0..384).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let b: Vec<f32> = (0..384).map(|i| ((i * 53 % 89) as f32 - 44.0) / 44.0).collect();
        let unit = |v: &[f32]| {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / norm).collect::<Vec<_>>()
        };
        let (a, b) = (unit(&a), unit(&b));
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let (qa, qb) = (TextEmbedding::quantize("m", &a).dequantize(), TextEmbedding::quantize("m", &b).dequantize());
        let approximate: f32 = qa.iter().zip(&qb).map(|(x, y)| x * y).sum();
        assert!((exact - approximate).abs() < 2e-3, "{exact} vs {approximate}");
        assert_eq!(TextEmbedding::quantize("m", &[0.0, 0.0]).values, vec![0, 0]);
    }
}
