//! The explainer: whatever writes an explanation from the explainer prompt's messages, an
//! OpenAI-compatible endpoint or a local instruct model.

use crate::ExplainError;
use crate::chat::ChatMessage;

/// What an explainer answered, with what it cost in tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainerAnswer {
    /// The model's raw answer (the explanation is parsed from it).
    pub text: String,
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    /// Tokens of the answer.
    pub completion_tokens: u64,
}

/// A model that writes explanations.
pub trait Explainer: Sync {
    /// The name stored as each explanation's author (a model name, never a key).
    fn name(&self) -> String;
    /// Completes the conversation.
    fn explain(&self, messages: &[ChatMessage]) -> Result<ExplainerAnswer, ExplainError>;
}
