//! The store's error type.

use std::path::PathBuf;

use crate::codec::CodecError;

/// Anything that can go wrong reading or writing a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed on this database.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a DeepDecipher database.
    #[error("{path} is not a DeepDecipher database")]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file does not exist.
    #[error("{path} does not exist")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The database was written by a newer DeepDecipher.
    #[error("{path} has schema version {found}; this build supports up to {supported}")]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// The database needs a migration that a read-only open cannot run.
    #[error("{path} has schema version {found}; run `deepdecipher migrate` to upgrade it to {supported}")]
    SchemaTooOld {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// The version this build uses.
        supported: u32,
    },
    /// A stored blob cannot be decoded.
    #[error("{what}: {source}")]
    Codec {
        /// Which record (model, source, layer, neuron, kind).
        what: String,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// A request that cannot be met (an unknown model, layer or neuron, a missing data kind), in
    /// words for the user.
    #[error("{0}")]
    Invalid(String),
    /// A model with this name is already stored.
    #[error("model {name:?} already exists")]
    ModelExists {
        /// The name.
        name: String,
    },
    /// No model has this name.
    #[error("no model named {name:?}")]
    UnknownModel {
        /// The name.
        name: String,
    },
    /// A layer or unit index is outside its source's shape.
    #[error("{what} {index} out of range: the source has {len}")]
    OutOfRange {
        /// `layer` or `unit`.
        what: &'static str,
        /// The index.
        index: u64,
        /// The number of layers or units.
        len: u64,
    },
    /// Metadata breaks an invariant.
    #[error(transparent)]
    InvalidData(#[from] dd_data::DataError),
    /// The store was opened as unchanging, so it cannot be read again to see new writes.
    #[error("{path} was opened immutable, so it cannot see what was written since; open it with `immutable: false`")]
    OpenedImmutable {
        /// The database file.
        path: PathBuf,
    },
    /// A stored number does not fit its type.
    #[error("{what} holds {value}, which is out of range")]
    BadValue {
        /// Which column.
        what: &'static str,
        /// The value.
        value: i64,
    },
}

/// Attaches the database path to SQLite errors.
pub(crate) trait SqliteContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StoreError>;
}

impl<T> SqliteContext<T> for Result<T, rusqlite::Error> {
    fn at(self, path: &std::path::Path) -> Result<T, StoreError> {
        self.map_err(|source| match source.sqlite_error_code() {
            // SQLite reports a foreign file lazily, on whichever statement first reads it.
            Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase { path: path.to_owned() },
            _ => StoreError::Sqlite { path: path.to_owned(), source },
        })
    }
}
