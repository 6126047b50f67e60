//! Neuron2Graph (N2G) on DeepDecipher's runtime: for a neuron, a graph of the token patterns it fires
//! on, built from its recorded top examples by pruning, occlusion and augmentation; the graph's
//! prediction of the neuron on any text and its scores; the token index that searches a model's
//! graphs and the similarity between neurons' graphs. `../shared/specs/neuron2graph.md` (in the
//! repository's reference material) is the algorithm; `docs/neuron2graph.md` says where we differ.
//!
//! # Layers (bottom-up; a module uses only those below it)
//! 1. Pure data structures: [`error`]; [`rng`] (the deterministic generator of fixtures and tests); [`trie`] (patterns, wildcards, merging, prediction, the
//!    graph view); [`lines`] (importance matrices into patterns); [`index`] and [`similar`] (the
//!    neuron store: token → neurons, and similar neurons); [`dot`] and [`store_json`] (the
//!    original's file formats).
//! 2. The model: [`probe`] (batched activations of one layer), [`substitutes`] (augmentation
//!    without a masked language model), [`fixture`] (a model built to fire on a known pattern).
//! 3. [`build`]: one neuron's graph from its examples (prune, importance, augment, fit, score).
//! 4. [`job`]: choosing neurons, building in parallel, resuming, writing through the store; then
//!    [`exchange`]: the original's output folders imported and exported.

pub mod build;
pub mod dot;
pub mod error;
pub mod exchange;
pub mod fixture;
pub mod index;
pub mod job;
pub mod lines;
pub mod probe;
pub mod rng;
pub mod similar;
pub mod store_json;
pub mod substitutes;
pub mod trie;

pub use error::N2gError;
