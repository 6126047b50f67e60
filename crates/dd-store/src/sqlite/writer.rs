//! The single writer of a SQLite file, the SQLite implementation of [`StoreWrite`] and
//! [`StoreBatch`]: creates and migrates databases and writes records in batched transactions.
//!
//! Every write goes through a transaction, so a killed process leaves the
//! database as of its last commit: WAL mode makes commits atomic and never
//! corrupts the file. [`StoreWriter::finish`] leaves WAL mode, which is what lets a finished
//! database be served `immutable`, unless a server is reading the file as it is written: then the
//! file stays in WAL mode until a later `finish`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dd_data::{
    LayerDataKind, LayerRecord, ModelDataKind, ModelMetadata, ModelRecord, NeuronRecord, SourceInfo, validate_name,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::catalog::read_catalog;
use super::schema::{self, new_content_id};
use crate::StoreError;
use crate::backend::{Catalog, ModelId, SourceId, StoreBatch, StoreWrite};
use crate::codec::{EncodeOptions, EncodedNeuron};
use crate::error::SqliteContext;

/// SQLite page size of new databases (see [`StoreWriter::open`]).
pub const PAGE_SIZE: u32 = 1024;

/// The one writer of a SQLite database; producers use it as a [`StoreWrite`].
pub struct StoreWriter {
    path: PathBuf,
    /// The path as text, for [`StoreWrite::location`].
    location: String,
    conn: Connection,
    options: EncodeOptions,
    /// Shapes of the sources written so far, to range-check indices without a query per record.
    source_shapes: HashMap<SourceId, (u64, u64)>,
}

/// Writes made in one SQLite transaction; dropped without [`WriteBatch::commit`], they are rolled back.
pub struct WriteBatch<'a> {
    path: &'a Path,
    tx: Transaction<'a>,
    options: EncodeOptions,
    source_shapes: &'a HashMap<SourceId, (u64, u64)>,
    n_records: u64,
}

impl StoreWriter {
    /// Opens a database for writing, creating and migrating it as needed.
    pub fn open(path: &Path, options: EncodeOptions) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).at(path)?;
        // Busy timeout: a reader checkpointing the WAL may hold a lock briefly.
        conn.busy_timeout(std::time::Duration::from_secs(10)).at(path)?;
        schema::read_version(&conn, path)?;
        // Only takes effect on a new file, before the first table exists. A neuron is one ~6 KB blob and a
        // few ~100-byte ones: with 4 KB pages the big cell's local part strands ~1.5 KB per neuron on its
        // leaf page; 1 KB pages cut that to a few hundred bytes (measured: 8.3 KB -> 7.1 KB per neuron).
        conn.pragma_update(None, "page_size", PAGE_SIZE).at(path)?;
        conn.pragma_update(None, "journal_mode", "WAL").at(path)?;
        conn.pragma_update(None, "synchronous", "NORMAL").at(path)?;
        conn.pragma_update(None, "foreign_keys", true).at(path)?;
        schema::migrate(&mut conn, path)?;
        let location = path.display().to_string();
        let mut writer = Self { path: path.to_owned(), location, conn, options, source_shapes: HashMap::new() };
        writer.reload_shapes()?;
        Ok(writer)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The catalog as the database holds it now.
    pub fn catalog(&self) -> Result<Catalog, StoreError> {
        read_catalog(&self.conn, &self.path)
    }

    /// Adds a model and its `mlp` source; fails if the name is taken.
    pub fn add_model(&mut self, metadata: &ModelMetadata) -> Result<(ModelId, SourceId), StoreError> {
        metadata.validate()?;
        let path = self.path.clone();
        let tx = self.conn.transaction().at(&path)?;
        let exists: Option<i64> = tx
            .query_row("SELECT id FROM model WHERE name = ?1", [&metadata.name], |r| r.get(0))
            .optional()
            .at(&path)?;
        if exists.is_some() {
            return Err(StoreError::ModelExists { name: metadata.name.clone() });
        }
        tx.execute(
            "INSERT INTO model (name, architecture, n_layers, d_mlp, d_model, activation_function, dataset, \
             n_parameters, context_length, data_source, tokens_recorded, tool_version, recorded_at, training_dataset, \
             model_source, weights) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                metadata.name,
                metadata.architecture,
                to_sql_int(metadata.n_layers)?,
                to_sql_int(metadata.d_mlp)?,
                to_sql_int(metadata.d_model)?,
                metadata.activation_function,
                metadata.dataset,
                to_sql_int(metadata.n_parameters)?,
                to_sql_int(metadata.context_length)?,
                metadata.provenance.data_source,
                to_sql_int(metadata.provenance.tokens_recorded)?,
                metadata.provenance.tool_version,
                metadata.provenance.recorded_at,
                metadata.training_dataset,
                metadata.provenance.model_source,
                metadata.provenance.weights,
            ],
        )
        .at(&path)?;
        let model = ModelId(tx.last_insert_rowid());
        let source = insert_source(&tx, &path, model, &metadata.mlp_source())?;
        touch(&tx, &path)?;
        tx.commit().at(&path)?;
        self.reload_shapes()?;
        Ok((model, source))
    }

    /// Adds another source (hook point) to a model.
    pub fn add_source(&mut self, model: ModelId, info: &SourceInfo) -> Result<SourceId, StoreError> {
        validate_name(&info.name)?;
        let path = self.path.clone();
        let tx = self.conn.transaction().at(&path)?;
        let source = insert_source(&tx, &path, model, info)?;
        touch(&tx, &path)?;
        tx.commit().at(&path)?;
        self.reload_shapes()?;
        Ok(source)
    }

    /// Widens a source to at least `n_layers` × `units_per_layer`; never narrows it.
    pub fn grow_source(&mut self, source: SourceId, n_layers: u64, units_per_layer: u64) -> Result<(), StoreError> {
        let (max_layers, max_units) = schema::MAX_SOURCE_SHAPE;
        if n_layers > max_layers || units_per_layer > max_units {
            return Err(StoreError::Invalid(format!(
                "a source of {n_layers} × {units_per_layer} units is past the largest the store keys ({max_layers} × {max_units})"
            )));
        }
        let path = self.path.clone();
        let tx = self.conn.transaction().at(&path)?;
        tx.execute(
            "UPDATE source SET n_layers = MAX(n_layers, ?2), units_per_layer = MAX(units_per_layer, ?3) WHERE id = ?1",
            (source.0, n_layers as i64, units_per_layer as i64),
        )
        .at(&path)?;
        touch(&tx, &path)?;
        tx.commit().at(&path)?;
        self.reload_shapes()
    }

    /// Deletes a model and all its data; returns whether it existed.
    pub fn delete_model(&mut self, name: &str) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().at(&path)?;
        // Neuron rows go by key range first: the cascade would have to scan the table for them.
        let source_ids: Vec<i64> = tx
            .prepare("SELECT s.id FROM source s JOIN model m ON m.id = s.model_id WHERE m.name = ?1")
            .and_then(|mut s| s.query_map([name], |row| row.get(0))?.collect())
            .at(&path)?;
        for source_id in source_ids {
            let (low, high) = schema::source_key_range(source_id);
            tx.execute("DELETE FROM neuron_data WHERE id BETWEEN ?1 AND ?2", [low, high]).at(&path)?;
        }
        let n_deleted = tx.execute("DELETE FROM model WHERE name = ?1", [name]).at(&path)?;
        touch(&tx, &path)?;
        tx.commit().at(&path)?;
        self.reload_shapes()?;
        Ok(n_deleted > 0)
    }

    /// Starts a transaction for many records.
    pub fn batch(&mut self) -> Result<WriteBatch<'_>, StoreError> {
        let tx = self.conn.transaction().at(&self.path)?;
        Ok(WriteBatch { path: &self.path, tx, options: self.options, source_shapes: &self.source_shapes, n_records: 0 })
    }

    /// Moves the WAL's content into the main file.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).at(&self.path)
    }

    /// Ends writing: checkpoints and leaves WAL mode, so the database is one self-contained file
    /// that opens read-only even where no `-shm` file can be created (a read-only mount).
    ///
    /// While other connections have the file open (a server reading it as it is written), SQLite
    /// refuses to leave WAL mode; the database then stays in WAL mode, which is as valid (readers
    /// open it normally, never `immutable`), and the next `finish` without readers leaves it.
    pub fn finish(self) -> Result<(), StoreError> {
        self.checkpoint()?;
        // Every connection in WAL mode holds a shared lock on the file for as long as it stays open,
        // not only while it reads, so SQLite refuses at once (SQLITE_BUSY, without waiting out the
        // busy timeout) while a server has the file open.
        match self.conn.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("delete") => Ok(()),
            Ok(mode) => {
                tracing::info!(path = %self.path.display(), %mode, "the database stays in this journal mode");
                Ok(())
            }
            Err(error) if is_busy(&error) => {
                tracing::info!(
                    path = %self.path.display(),
                    "the database stays in WAL mode: other connections (a server reading it?) have it open; \
                     it is complete, and the next `finish` without readers leaves WAL mode"
                );
                Ok(())
            }
            Err(error) => Err(error).at(&self.path),
        }
    }

    fn reload_shapes(&mut self) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare("SELECT id, n_layers, units_per_layer FROM source").at(&self.path)?;
        let shapes = statement
            .query_map([], |row| Ok((SourceId(row.get(0)?), (row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))))
            .at(&self.path)?
            .collect::<Result<Vec<_>, _>>()
            .at(&self.path)?;
        self.source_shapes = shapes.into_iter().map(|(id, (l, u))| (id, (l.max(0) as u64, u.max(0) as u64))).collect();
        Ok(())
    }
}

impl WriteBatch<'_> {
    /// Encodes and writes (or replaces) one neuron-level record.
    pub fn put_neuron(
        &mut self,
        source: SourceId,
        layer: u32,
        index: u32,
        record: &NeuronRecord,
    ) -> Result<(), StoreError> {
        StoreBatch::put_neuron(self, source, layer, index, record)
    }

    /// Encodes and writes (or replaces) one layer-level record.
    pub fn put_layer(&mut self, source: SourceId, layer: u32, record: &LayerRecord) -> Result<(), StoreError> {
        StoreBatch::put_layer(self, source, layer, record)
    }

    /// Encodes and writes (or replaces) one model-level record.
    pub fn put_model(&mut self, model: ModelId, record: &ModelRecord) -> Result<(), StoreError> {
        StoreBatch::put_model(self, model, record)
    }

    /// Writes (or replaces) one neuron-level record encoded elsewhere.
    pub fn put_encoded_neuron(
        &mut self,
        source: SourceId,
        layer: u32,
        index: u32,
        encoded: &EncodedNeuron,
    ) -> Result<(), StoreError> {
        self.check_unit(source, layer, Some(index))?;
        let (kind, blob) = (encoded.kind().code(), encoded.blob());
        let key = schema::neuron_key(source.0, layer, index, kind).ok_or(StoreError::OutOfRange {
            what: "unit",
            index: index.into(),
            len: schema::MAX_SOURCE_SHAPE.1,
        })?;
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO neuron_data (id, source_id, layer, unit, kind, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| s.execute(params![key, source.0, layer, index, kind, blob]))
            .at(self.path)?;
        self.tx
            .prepare_cached("INSERT OR IGNORE INTO source_kind (source_id, kind) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![source.0, kind]))
            .at(self.path)?;
        self.n_records += 1;
        Ok(())
    }

    /// Writes (or replaces) the encoded blob of one layer-level record.
    pub fn put_layer_blob(
        &mut self,
        source: SourceId,
        layer: u32,
        kind: LayerDataKind,
        blob: &[u8],
    ) -> Result<(), StoreError> {
        self.check_unit(source, layer, None)?;
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO layer_data (source_id, layer, kind, data) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![source.0, layer, kind.code(), blob]))
            .at(self.path)?;
        self.n_records += 1;
        Ok(())
    }

    /// Writes (or replaces) the encoded blob of one model-level record.
    pub fn put_model_blob(&mut self, model: ModelId, kind: ModelDataKind, blob: &[u8]) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO model_data (model_id, kind, data) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![model.0, kind.code(), blob]))
            .at(self.path)?;
        self.n_records += 1;
        Ok(())
    }

    /// Keeps `data` under `name` beside a model, replacing what was there: a producer's own state
    /// (the recorder's mergeable shard state), opaque to the store.
    pub fn put_model_state(&mut self, model: ModelId, name: &str, data: &[u8]) -> Result<(), StoreError> {
        // SQLite refuses blobs over a gigabyte; a recorder's state can be larger.
        self.put_model_state_in_parts(model, name, data, 256 << 20)
    }

    pub(crate) fn put_model_state_in_parts(
        &mut self,
        model: ModelId,
        name: &str,
        data: &[u8],
        part_bytes: usize,
    ) -> Result<(), StoreError> {
        self.tx
            .execute("DELETE FROM model_state WHERE model_id = ?1 AND name = ?2", params![model.0, name])
            .at(self.path)?;
        let parts: Vec<&[u8]> = if data.is_empty() { vec![data] } else { data.chunks(part_bytes.max(1)).collect() };
        for (part, bytes) in parts.into_iter().enumerate() {
            self.tx
                .execute(
                    "INSERT INTO model_state (model_id, name, part, data) VALUES (?1, ?2, ?3, ?4)",
                    params![model.0, name, part as i64, bytes],
                )
                .at(self.path)?;
        }
        Ok(())
    }

    /// Records written in this batch so far.
    pub fn n_records(&self) -> u64 {
        self.n_records
    }

    /// Commits every write of the batch at once.
    pub fn commit(self) -> Result<(), StoreError> {
        touch(&self.tx, self.path)?;
        self.tx.commit().at(self.path)
    }

    fn check_unit(&self, source: SourceId, layer: u32, index: Option<u32>) -> Result<(), StoreError> {
        let Some(&(n_layers, units_per_layer)) = self.source_shapes.get(&source) else {
            return Err(StoreError::OutOfRange { what: "source id", index: source.0.max(0) as u64, len: 0 });
        };
        if u64::from(layer) >= n_layers {
            return Err(StoreError::OutOfRange { what: "layer", index: layer.into(), len: n_layers });
        }
        match index {
            Some(index) if u64::from(index) >= units_per_layer => {
                Err(StoreError::OutOfRange { what: "unit", index: index.into(), len: units_per_layer })
            }
            _ => Ok(()),
        }
    }
}

impl StoreWrite for StoreWriter {
    fn location(&self) -> &str {
        &self.location
    }

    fn encode_options(&self) -> EncodeOptions {
        self.options
    }

    fn catalog(&self) -> Result<Catalog, StoreError> {
        StoreWriter::catalog(self)
    }

    fn add_model(&mut self, metadata: &ModelMetadata) -> Result<(ModelId, SourceId), StoreError> {
        StoreWriter::add_model(self, metadata)
    }

    fn add_source(&mut self, model: ModelId, info: &SourceInfo) -> Result<SourceId, StoreError> {
        StoreWriter::add_source(self, model, info)
    }

    fn grow_source(&mut self, source: SourceId, n_layers: u64, units_per_layer: u64) -> Result<(), StoreError> {
        StoreWriter::grow_source(self, source, n_layers, units_per_layer)
    }

    fn delete_model(&mut self, name: &str) -> Result<bool, StoreError> {
        StoreWriter::delete_model(self, name)
    }

    fn batch(&mut self) -> Result<Box<dyn StoreBatch + '_>, StoreError> {
        Ok(Box::new(StoreWriter::batch(self)?))
    }

    fn finish(self: Box<Self>) -> Result<(), StoreError> {
        StoreWriter::finish(*self)
    }
}

impl StoreBatch for WriteBatch<'_> {
    fn encode_options(&self) -> EncodeOptions {
        self.options
    }

    fn put_encoded_neuron(
        &mut self,
        source: SourceId,
        layer: u32,
        index: u32,
        encoded: &EncodedNeuron,
    ) -> Result<(), StoreError> {
        WriteBatch::put_encoded_neuron(self, source, layer, index, encoded)
    }

    fn put_layer_blob(
        &mut self,
        source: SourceId,
        layer: u32,
        kind: LayerDataKind,
        blob: &[u8],
    ) -> Result<(), StoreError> {
        WriteBatch::put_layer_blob(self, source, layer, kind, blob)
    }

    fn put_model_blob(&mut self, model: ModelId, kind: ModelDataKind, blob: &[u8]) -> Result<(), StoreError> {
        WriteBatch::put_model_blob(self, model, kind, blob)
    }

    fn put_model_state(&mut self, model: ModelId, name: &str, data: &[u8]) -> Result<(), StoreError> {
        WriteBatch::put_model_state(self, model, name, data)
    }

    fn n_records(&self) -> u64 {
        WriteBatch::n_records(self)
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        WriteBatch::commit(*self)
    }
}

fn insert_source(tx: &Transaction<'_>, path: &Path, model: ModelId, info: &SourceInfo) -> Result<SourceId, StoreError> {
    let n_sources: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM source", [], |r| r.get(0)).at(path)?;
    if n_sources + 1 > schema::MAX_SOURCE_ID {
        return Err(StoreError::OutOfRange {
            what: "source id",
            index: (n_sources + 1) as u64,
            len: schema::MAX_SOURCE_ID as u64,
        });
    }
    let (max_layers, max_units) = schema::MAX_SOURCE_SHAPE;
    if info.n_layers > max_layers {
        return Err(StoreError::OutOfRange { what: "layer count", index: info.n_layers, len: max_layers });
    }
    if info.units_per_layer > max_units {
        return Err(StoreError::OutOfRange { what: "units per layer", index: info.units_per_layer, len: max_units });
    }
    tx.execute(
        "INSERT INTO source (model_id, name, n_layers, units_per_layer) VALUES (?1, ?2, ?3, ?4)",
        params![model.0, info.name, to_sql_int(info.n_layers)?, to_sql_int(info.units_per_layer)?],
    )
    .at(path)?;
    Ok(SourceId(tx.last_insert_rowid()))
}

/// Marks the content as changed, so served ETags change with it.
fn touch(tx: &Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'content_id'")
        .and_then(|mut s| s.execute([new_content_id()]))
        .at(path)?;
    Ok(())
}

/// Whether SQLite refused because another connection holds a lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

fn to_sql_int(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::BadValue { what: "count", value: i64::MAX })
}
