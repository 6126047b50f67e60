//! Where a store lives, and opening it there: the one place that picks a backend by location.

use std::fmt;
use std::path::PathBuf;

use crate::StoreError;
use crate::backend::{Catalog, StoreRead, StoreWrite};
use crate::codec::EncodeOptions;
use crate::sqlite::{ReadConfig, SqliteStore, StoreWriter};

/// Where a store lives; the variant picks the backend that opens it. Displayed as its path (or,
/// for a server, its address without credentials), for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreLocation {
    /// A SQLite database file, created when first written.
    SqliteFile(PathBuf),
}

impl StoreLocation {
    /// Opens the store for writing, creating it (and migrating its schema) as needed.
    pub fn open_writer(&self, options: EncodeOptions) -> Result<Box<dyn StoreWrite>, StoreError> {
        match self {
            StoreLocation::SqliteFile(path) => Ok(Box::new(StoreWriter::open(path, options)?)),
        }
    }

    /// Opens the store for reading while a producer may be writing it (a producer reads what an
    /// earlier step wrote, such as the examples graphs are built from): never `immutable`, a few
    /// connections, no memory map. The catalog is the one at open.
    pub fn open_reader(&self) -> Result<Box<dyn StoreRead>, StoreError> {
        match self {
            StoreLocation::SqliteFile(path) => {
                let config = ReadConfig { n_connections: 4, cache_kib: 16 * 1024, mmap_bytes: 0, immutable: false };
                Ok(Box::new(SqliteStore::open(path, &config)?))
            }
        }
    }

    /// The catalog of the store as it is now, or `None` when there is no store there yet; never
    /// creates one (a producer can check for a model before it has anything to write).
    pub fn existing_catalog(&self) -> Result<Option<Catalog>, StoreError> {
        match self {
            StoreLocation::SqliteFile(path) => {
                if !path.exists() {
                    return Ok(None);
                }
                // One connection, no memory map: only the catalog is read.
                let config = ReadConfig { n_connections: 1, cache_kib: 1024, mmap_bytes: 0, immutable: false };
                let store = SqliteStore::open(path, &config)?;
                Ok(Some(store.catalog().clone()))
            }
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::SqliteFile(path) => write!(formatter, "{}", path.display()),
        }
    }
}
