//! Natural-language explanations of a neuron, from any origin, with their scores.

/// A named score of an explanation (`ev_correlation_score`, `n2g_precision`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedScore {
    /// Name of the score.
    pub name: String,
    /// Its value.
    pub value: f32,
}

/// One explanation of a neuron.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The explanation text.
    pub text: String,
    /// Where it came from (`openai`, `neuronpedia`, `neuron2graph`, `synthetic`).
    pub origin: String,
    /// Who or what wrote it (a model name or a person), when known.
    pub author: Option<String>,
    /// Scores of the explanation, most important first.
    pub scores: Vec<NamedScore>,
}

/// All explanations of one neuron.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Explanations {
    /// The explanations, best first.
    pub explanations: Vec<Explanation>,
}
