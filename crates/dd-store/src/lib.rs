//! DeepDecipher's store: the versioned blob codec and the SQLite backend.
//!
//! # Layout
//! - [`codec`]: the binary encoding of every record kind (`docs/format.md`).
//! - [`backend`]: the narrow [`StoreRead`] interface the server uses and the
//!   [`Catalog`] cached at open, so another backend (PostgreSQL) can slot in.
//! - [`sqlite`]: schema and migrations, the read pool, the batched writer and `check`.
//!
//! **Invariant:** this is the only crate that links `rusqlite` or knows the schema.

pub mod backend;
pub mod codec;
mod error;
pub mod sqlite;

pub use backend::{Catalog, KindUsage, ModelEntry, ModelId, SourceEntry, SourceId, StoreRead};
pub use codec::{CodecError, EncodeOptions, EncodedNeuron};
pub use error::StoreError;
pub use sqlite::{CheckReport, ReadConfig, SqliteStore, StoreWriter, WriteBatch, check};
