//! Relations between neurons ([docs/relations.md](../../docs/relations.md)): which neurons'
//! activations correlate, which fire together as groups, what role each plays in the weight graph,
//! a vector for its behaviour with its nearest neighbours, and how it changed between two
//! recordings. A producer beside dd-record: it reads a recording back through `StoreRead` and
//! writes through `StoreWrite`.
//!
//! # Layout, bottom-up
//! 1. `error`, `hash`, and the pure structures: [`louvain`] (community detection), [`roles`]
//!    (degrees, strength, participation, betweenness of the weight graph), [`embed`] (token-set
//!    vectors and their nearest neighbours).
//! 2. [`sample`] (the contexts, from the recording's random examples), [`correlate`] (the model
//!    run over them and the correlation pass), [`groups`] (communities of the correlation graph
//!    with their cohesion and contexts), [`compare`] (two recordings' change per neuron).
//! 3. [`job`]: the runs (`relate`, `compare`), their policy (`RelateJob::standard`) and writes.
//!
//! It never loads models (the caller passes a `dd_model::Transformer`) and never prints: it reports
//! [`job::RelateEvent`]s.

pub mod compare;
pub mod correlate;
pub mod embed;
mod error;
pub mod groups;
mod hash;
pub mod job;
pub mod louvain;
pub mod roles;
pub mod sample;

pub use error::RelateError;
pub use job::{CompareJob, CompareSummary, RelateEvent, RelateJob, RelateParts, RelateSummary, compare, relate};
