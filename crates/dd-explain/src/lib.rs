//! Explanations of neurons: an explainer model writes one from a neuron's top examples, a
//! simulator model predicts the neuron's activations from the explanation alone, and the agreement
//! on held-out examples is the score (OpenAI's automated-interpretability method; see
//! `docs/explanations.md`).
//!
//! Modules in layers, each using only those above it:
//! 1. `error`, `chat` (the messages both kinds of model read), `prompt` (the explainer's and the
//!    simulator's prompts), `score` (calibration and the scores), `explainer` and `simulator`
//!    (the two roles' interfaces).
//! 2. `endpoint` (an OpenAI-compatible Chat Completions client, an explainer), `local` (an instruct
//!    model on our own runtime, explainer and simulator); `testing` (feature `testing`: a fake
//!    Chat Completions server for tests, using only `chat`).
//! 3. `chat_simulator` (a simulator behind an endpoint, asking for JSON).
//! 4. `job`: which neurons, their examples split, workers, resumable, written through the store.

pub mod chat;
pub mod chat_simulator;
pub mod endpoint;
pub mod error;
pub mod explainer;
pub mod job;
pub mod local;
pub mod prompt;
pub mod score;
pub mod simulator;
#[cfg(feature = "testing")]
pub mod testing;

pub use chat::{ChatMessage, Role};
pub use chat_simulator::{CHAT_SIMULATOR_PROMPT_VERSION, ChatSimulator, simulate_with_chat};
pub use endpoint::{ChatAnswer, ChatClient, ChatRequest, EndpointConfig, TokenPrices, UsageTotals};
pub use error::ExplainError;
pub use explainer::{Explainer, ExplainerAnswer};
pub use simulator::Simulator;
