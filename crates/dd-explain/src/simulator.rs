//! The simulator: whatever predicts a neuron's activations on sequences from an explanation alone,
//! on OpenAI's 0–10 scale.

use crate::ExplainError;

/// A model that predicts activations from an explanation.
pub trait Simulator: Sync {
    /// The name stored with the scores it gives.
    fn name(&self) -> String;
    /// The prompt format it uses (stored beside the name).
    fn prompt_version(&self) -> &'static str;
    /// Expected activations (0–10) for every token of every sequence, sequences given as token texts.
    fn simulate(&self, explanation: &str, sequences: &[Vec<String>]) -> Result<Vec<Vec<f64>>, ExplainError>;
}
