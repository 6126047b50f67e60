//! Explanations of neurons: an explainer model writes one from a neuron's top examples, a
//! simulator model predicts the neuron's activations from the explanation alone, and the agreement
//! on held-out examples is the score (OpenAI's automated-interpretability method; see
//! `docs/explanations.md`).
//!
//! Modules in layers, each using only those above it:
//! 1. `error`, `chat` (the messages both kinds of model read), `prompt` (the explainer's and the
//!    simulator's prompts), `score` (calibration and the three scores).
//! 2. `endpoint` (an OpenAI-compatible Chat Completions client), `local` (our own runtime).
//! 3. `explainer`, `simulator`: either kind of model behind one interface.
//! 4. `job`: which neurons, resumable, written through the store.

pub mod chat;
pub mod endpoint;
pub mod error;
pub mod prompt;
pub mod score;

pub use chat::{ChatMessage, Role};
pub use error::ExplainError;
