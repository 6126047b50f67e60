//! The SQLite backend: one file, WAL, a pool of read-only connections and one batched writer.

mod check;
mod pool;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dd_data::{LayerDataKind, ModelDataKind, ModelMetadata, NeuronDataKind, Provenance, SourceInfo};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};

pub use check::{CheckReport, check};
pub use schema::{MAX_SOURCE_SHAPE, SCHEMA_VERSION};
pub use writer::{PAGE_SIZE, StoreWriter, WriteBatch};

use crate::StoreError;
use crate::backend::{Catalog, KindUsage, ModelEntry, ModelId, SourceEntry, SourceId, StoreRead};
use crate::error::SqliteContext;

/// How a store is opened for reading.
#[derive(Debug, Clone)]
pub struct ReadConfig {
    /// Number of pooled read connections; the most queries that run at once.
    pub n_connections: usize,
    /// Page cache per connection, in KiB.
    pub cache_kib: u32,
    /// Bytes of the file to memory-map (0 to read through syscalls).
    pub mmap_bytes: u64,
    /// Treat a finished database (not in WAL mode) as unchanging while open: SQLite then takes no
    /// file lock per query. Do not write to a database opened this way.
    pub immutable: bool,
}

impl ReadConfig {
    /// Sizes that suit serving on a small machine.
    pub fn serving() -> Self {
        Self { n_connections: 8, cache_kib: 16 * 1024, mmap_bytes: 1 << 30, immutable: true }
    }
}

/// A store opened read-only, with its catalog cached.
pub struct SqliteStore {
    path: PathBuf,
    pool: pool::ReadPool,
    catalog: Catalog,
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
        let immutable = config.immutable && !journal_mode.eq_ignore_ascii_case("wal");
        let connections = (0..config.n_connections.max(1))
            .map(|_| open_reader(path, config, immutable))
            .collect::<Result<Vec<_>, _>>()?;
        drop(first);
        tracing::debug!(path = %path.display(), n_models = catalog.models().len(), "opened store");
        Ok(Self { path: path.to_owned(), pool: pool::ReadPool::new(connections), catalog })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state a producer kept under `name` beside a model (see [`WriteBatch::put_model_state`]).
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

fn open_reader(path: &Path, config: &ReadConfig, immutable: bool) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = match immutable_uri(path).filter(|_| immutable) {
        // Measured: 10-15 % less CPU per served request than taking a shared lock per query.
        Some(uri) => Connection::open_with_flags(uri, flags),
        None => Connection::open_with_flags(path, flags),
    }
    .at(path)?;
    conn.pragma_update(None, "query_only", true).at(path)?;
    conn.pragma_update(None, "cache_size", -i64::from(config.cache_kib)).at(path)?;
    conn.pragma_update(None, "mmap_size", config.mmap_bytes).at(path)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// `file:PATH?immutable=1`, with the path percent-encoded as SQLite's URI filenames require.
fn immutable_uri(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let mut uri = String::from("file:");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/._-~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    Some(uri)
}

/// A fresh id for the store's content, changed on every committed write.
pub(crate) fn new_content_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{:x}-{counter:x}", nanos, std::process::id())
}

fn read_u64(row: &Row<'_>, index: usize, what: &'static str) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Integer, Box::new(BadColumn(what)))
    })
}

#[derive(Debug)]
struct BadColumn(&'static str);

impl std::fmt::Display for BadColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is negative", self.0)
    }
}

impl std::error::Error for BadColumn {}

pub(crate) fn read_catalog(conn: &Connection, path: &Path) -> Result<Catalog, StoreError> {
    let content_id: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'content_id'", [], |row| row.get(0))
        .optional()
        .at(path)?
        .unwrap_or_default();
    let mut statement = conn
        .prepare(
            "SELECT id, name, architecture, n_layers, d_mlp, d_model, activation_function, dataset, n_parameters, \
             context_length, data_source, tokens_recorded, tool_version, recorded_at FROM model ORDER BY id",
        )
        .at(path)?;
    let models = statement
        .query_map([], |row| {
            Ok((
                ModelId(row.get(0)?),
                ModelMetadata {
                    name: row.get(1)?,
                    architecture: row.get(2)?,
                    n_layers: read_u64(row, 3, "n_layers")?,
                    d_mlp: read_u64(row, 4, "d_mlp")?,
                    d_model: read_u64(row, 5, "d_model")?,
                    activation_function: row.get(6)?,
                    dataset: row.get(7)?,
                    n_parameters: read_u64(row, 8, "n_parameters")?,
                    context_length: read_u64(row, 9, "context_length")?,
                    provenance: Provenance {
                        data_source: row.get(10)?,
                        tokens_recorded: read_u64(row, 11, "tokens_recorded")?,
                        tool_version: row.get(12)?,
                        recorded_at: row.get(13)?,
                    },
                },
            ))
        })
        .at(path)?
        .collect::<Result<Vec<_>, _>>()
        .at(path)?;
    let mut entries = Vec::with_capacity(models.len());
    for (id, metadata) in models {
        let sources = read_sources(conn, id).at(path)?;
        let model_kinds = codes(conn, "SELECT kind FROM model_data WHERE model_id = ?1 ORDER BY kind", id.0)
            .at(path)?
            .into_iter()
            .filter_map(ModelDataKind::from_code)
            .collect();
        entries.push(ModelEntry { id, metadata, sources, model_kinds });
    }
    Ok(Catalog::new(entries, content_id))
}

fn read_sources(conn: &Connection, model: ModelId) -> rusqlite::Result<Vec<SourceEntry>> {
    let mut statement = conn.prepare(
        "SELECT id, name, n_layers, units_per_layer FROM source WHERE model_id = ?1 \
         ORDER BY name != 'mlp', id",
    )?;
    let sources = statement
        .query_map([model.0], |row| {
            Ok((
                SourceId(row.get(0)?),
                SourceInfo {
                    name: row.get(1)?,
                    n_layers: read_u64(row, 2, "n_layers")?,
                    units_per_layer: read_u64(row, 3, "units_per_layer")?,
                },
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    sources
        .into_iter()
        .map(|(id, info)| {
            let neuron_kinds = codes(conn, "SELECT kind FROM source_kind WHERE source_id = ?1 ORDER BY kind", id.0)?
                .into_iter()
                .filter_map(NeuronDataKind::from_code)
                .collect();
            let layer_kinds =
                codes(conn, "SELECT DISTINCT kind FROM layer_data WHERE source_id = ?1 ORDER BY kind", id.0)?
                    .into_iter()
                    .filter_map(LayerDataKind::from_code)
                    .collect();
            Ok(SourceEntry { id, info, neuron_kinds, layer_kinds })
        })
        .collect()
}

fn codes(conn: &Connection, sql: &str, id: i64) -> rusqlite::Result<Vec<u8>> {
    let mut statement = conn.prepare(sql)?;
    statement.query_map([id], |row| row.get::<_, u8>(0))?.collect()
}

#[cfg(test)]
mod tests;
