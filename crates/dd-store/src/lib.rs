//! DeepDecipher's store: the versioned blob codec, the backend-neutral read and write interfaces,
//! and the SQLite backend.
//!
//! # Layout
//! - [`codec`]: the binary encoding of every record kind (`docs/format.md`).
//! - [`backend`]: the narrow [`StoreRead`] interface the server uses and the [`Catalog`] cached at
//!   open; [`StoreWrite`] and [`StoreBatch`], the interface every producer writes through. Another
//!   backend (PostgreSQL) implements these.
//! - [`sqlite`]: schema and migrations, the read pool, the batched writer and `check`.
//! - `location`: [`StoreLocation`], where a store lives; the one place a backend is chosen.
//! - [`foreign`]: the original DeepDecipher's `data.db`, read-only, for its importer.
//! - `copy`: a model copied from one store into another, blob for blob ([`copy_model`]).
//! - `choice`: which model and neurons a producer works on ([`NeuronChoice`], [`choose_neurons`]).
//!
//! **Invariant:** this is the only crate that links `rusqlite` or knows the schema.

pub mod backend;
mod choice;
pub mod codec;
mod copy;
mod error;
pub mod foreign;
mod location;
pub mod sqlite;

pub use backend::{Catalog, KindUsage, ModelEntry, ModelId, SourceEntry, SourceId, StoreBatch, StoreRead, StoreWrite};
pub use choice::{NeuronChoice, choose_neurons, find_model, model_name_in};
pub use codec::{CodecError, EncodeOptions, EncodedNeuron};
pub use copy::copy_model;
pub use error::StoreError;
pub use foreign::{OriginalDataType, OriginalDatabase, OriginalModel};
pub use location::StoreLocation;
pub use sqlite::{CheckReport, ReadConfig, SqliteStore, StoreWriter, WriteBatch, check};
