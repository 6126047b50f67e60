//! The SQLite backend: one file, WAL, a pool of read-only connections and one batched writer.
//!
//! # Layout
//! - `schema.rs`: tables, migrations, the packed key of neuron rows and the content id (a leaf).
//! - `pool.rs`: how read-only connections are opened ([`ReadConfig`]) and pooled (a leaf).
//! - `catalog.rs`: reading the catalog of models from a connection (a leaf).
//! - `writer.rs`: the one writer ([`StoreWriter`]), SQLite's [`StoreWrite`](crate::StoreWrite).
//! - `check.rs`: `deepdecipher check`.
//! - this file: the read-only [`SqliteStore`], SQLite's [`StoreRead`].

mod catalog;
mod check;
mod pool;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dd_data::{LayerDataKind, ModelDataKind, NeuronDataKind};
use rusqlite::{Connection, OptionalExtension};

pub use check::{CheckReport, check};
pub use pool::ReadConfig;
pub use schema::{MAX_SOURCE_SHAPE, SCHEMA_VERSION};
pub use writer::{PAGE_SIZE, StoreWriter, WriteBatch};

use self::catalog::read_catalog;
use self::pool::open_reader;
use crate::StoreError;
use crate::backend::{Catalog, KindUsage, ModelId, SourceId, StoreRead};
use crate::error::SqliteContext;

/// A store opened read-only, with its catalog cached.
pub struct SqliteStore {
    path: PathBuf,
    /// Shared with the stores [`StoreRead::refreshed`] makes, which differ only in their catalog.
    pool: Arc<pool::ReadPool>,
    catalog: Catalog,
    /// Whether the connections were opened `immutable`: they would not see later writes.
    immutable: bool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens an existing database read-only and reads its catalog.
    pub fn open(path: &Path, config: &ReadConfig) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing { path: path.to_owned() });
        }
        let first = open_reader(path, config, false)?;
        let version = schema::read_version(&first, path)?;
        if version < SCHEMA_VERSION {
            return Err(StoreError::SchemaTooOld { path: path.to_owned(), found: version, supported: SCHEMA_VERSION });
        }
        let catalog = read_catalog(&first, path)?;
        // An immutable open ignores the WAL, so it is only safe for a finished database: a WAL file
        // may still hold committed data (a killed writer) or a writer may be at work.
        let journal_mode: String = first.query_row("PRAGMA journal_mode", [], |row| row.get(0)).at(path)?;
        let immutable =
            config.immutable && !journal_mode.eq_ignore_ascii_case("wal") && pool::immutable_uri(path).is_some();
        let connections = (0..config.n_connections.max(1))
            .map(|_| open_reader(path, config, immutable))
            .collect::<Result<Vec<_>, _>>()?;
        drop(first);
        tracing::debug!(path = %path.display(), n_models = catalog.models().len(), "opened store");
        Ok(Self { path: path.to_owned(), pool: Arc::new(pool::ReadPool::new(connections)), catalog, immutable })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state a producer kept under `name` beside a model (see
    /// [`StoreBatch::put_model_state`](crate::StoreBatch::put_model_state)).
    pub fn model_state(&self, model: ModelId, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.pool
            .with(|conn| {
                let mut statement =
                    conn.prepare("SELECT part, data FROM model_state WHERE model_id = ?1 AND name = ?2 ORDER BY part")?;
                let mut rows = statement.query((model.0, name))?;
                let mut state: Option<Vec<u8>> = None;
                let mut expected_part = 0i64;
                while let Some(row) = rows.next()? {
                    let part: i64 = row.get(0)?;
                    if part != expected_part {
                        // A missing part: the state is unusable, as if absent.
                        return Ok(None);
                    }
                    expected_part += 1;
                    state.get_or_insert_with(Vec::new).extend_from_slice(row.get_ref(1)?.as_blob()?);
                }
                Ok(state)
            })
            .at(&self.path)
    }

    fn blob(&self, sql: &str, params: impl rusqlite::Params) -> Result<Option<Vec<u8>>, StoreError> {
        self.pool
            .with(|conn| {
                let mut statement = conn.prepare_cached(sql)?;
                statement.query_row(params, |row| row.get::<_, Vec<u8>>(0)).optional()
            })
            .at(&self.path)
    }
}

impl StoreRead for SqliteStore {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn refreshed(&self) -> Result<Arc<dyn StoreRead>, StoreError> {
        if self.immutable {
            return Err(StoreError::OpenedImmutable { path: self.path.clone() });
        }
        // A new query on a pooled connection sees every commit so far, in WAL mode or not.
        let catalog = self.pool.with(|conn| read_catalog(conn, &self.path))?;
        Ok(Arc::new(Self { path: self.path.clone(), pool: self.pool.clone(), catalog, immutable: false }))
    }

    fn neuron_blob(
        &self,
        source: SourceId,
        layer: u32,
        index: u32,
        kind: NeuronDataKind,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(key) = schema::neuron_key(source.0, layer, index, kind.code()) else { return Ok(None) };
        self.blob("SELECT data FROM neuron_data WHERE id = ?1", [key])
    }

    fn layer_blob(&self, source: SourceId, layer: u32, kind: LayerDataKind) -> Result<Option<Vec<u8>>, StoreError> {
        self.blob(
            "SELECT data FROM layer_data WHERE source_id = ?1 AND layer = ?2 AND kind = ?3",
            (source.0, layer, kind.code()),
        )
    }

    fn model_blob(&self, model: ModelId, kind: ModelDataKind) -> Result<Option<Vec<u8>>, StoreError> {
        self.blob("SELECT data FROM model_data WHERE model_id = ?1 AND kind = ?2", (model.0, kind.code()))
    }

    fn model_state(&self, model: ModelId, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        SqliteStore::model_state(self, model, name)
    }

    fn usage(&self, model: ModelId) -> Result<Vec<KindUsage>, StoreError> {
        self.pool.with(|conn| usage(conn, model)).at(&self.path)
    }
}

fn usage(conn: &Connection, model: ModelId) -> rusqlite::Result<Vec<KindUsage>> {
    let mut usage = Vec::new();
    let count = |sql: &str, level: &'static str, name: fn(u8) -> Option<&'static str>, out: &mut Vec<KindUsage>| {
        let mut statement = conn.prepare(sql)?;
        let rows = statement.query_map([model.0], |row| {
            Ok((row.get::<_, u8>(0)?, row.get::<_, i64>(1)?, row.get::<_, Option<i64>>(2)?))
        })?;
        for row in rows {
            let (code, n_records, n_bytes) = row?;
            out.push(KindUsage {
                level,
                kind: name(code).unwrap_or("unknown"),
                n_records: n_records.max(0) as u64,
                n_bytes: n_bytes.unwrap_or(0).max(0) as u64,
            });
        }
        Ok::<_, rusqlite::Error>(())
    };
    count(
        "SELECT kind, COUNT(*), SUM(LENGTH(data)) FROM model_data WHERE model_id = ?1 GROUP BY kind",
        "model",
        |c| ModelDataKind::from_code(c).map(ModelDataKind::name),
        &mut usage,
    )?;
    count(
        "SELECT kind, COUNT(*), SUM(LENGTH(data)) FROM layer_data \
         WHERE source_id IN (SELECT id FROM source WHERE model_id = ?1) GROUP BY kind",
        "layer",
        |c| LayerDataKind::from_code(c).map(LayerDataKind::name),
        &mut usage,
    )?;
    // Per source, by `id` range: `neuron_data` has no index on `source_id`.
    let mut totals: std::collections::BTreeMap<u8, (u64, u64)> = std::collections::BTreeMap::new();
    let mut sources = conn.prepare("SELECT id FROM source WHERE model_id = ?1")?;
    let source_ids: Vec<i64> = sources.query_map([model.0], |row| row.get(0))?.collect::<Result<_, _>>()?;
    let mut statement = conn.prepare(
        "SELECT kind, COUNT(*), SUM(LENGTH(data)) FROM neuron_data WHERE id BETWEEN ?1 AND ?2 GROUP BY kind",
    )?;
    for source_id in source_ids {
        let (low, high) = schema::source_key_range(source_id);
        let rows = statement.query_map([low, high], |row| {
            Ok((row.get::<_, u8>(0)?, row.get::<_, i64>(1)?, row.get::<_, Option<i64>>(2)?))
        })?;
        for row in rows {
            let (code, n_records, n_bytes) = row?;
            let total = totals.entry(code).or_default();
            total.0 += n_records.max(0) as u64;
            total.1 += n_bytes.unwrap_or(0).max(0) as u64;
        }
    }
    usage.extend(totals.into_iter().map(|(code, (n_records, n_bytes))| KindUsage {
        level: "neuron",
        kind: NeuronDataKind::from_code(code).map_or("unknown", NeuronDataKind::name),
        n_records,
        n_bytes,
    }));
    Ok(usage)
}

#[cfg(test)]
mod tests;
