//! The SQLite schema, its version and the migrations between versions.
//!
//! `PRAGMA user_version` holds the number of migrations applied and
//! `PRAGMA application_id` marks the file as ours. Migrations only ever get
//! appended: a released one is never edited.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::StoreError;
use crate::error::SqliteContext;

/// `PRAGMA application_id` of DeepDecipher databases ("DDec").
pub(crate) const APPLICATION_ID: i32 = 0x4444_6563;

/// Each entry upgrades the schema by one version.
const MIGRATIONS: &[&str] = &[
    // Version 1. Blobs are encoded by `codec`; `kind` columns hold the data kinds' stable codes.
    r#"
    CREATE TABLE meta (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) STRICT;
    CREATE TABLE model (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        architecture TEXT NOT NULL,
        n_layers INTEGER NOT NULL CHECK (n_layers >= 0),
        d_mlp INTEGER NOT NULL CHECK (d_mlp >= 0),
        d_model INTEGER NOT NULL CHECK (d_model >= 0),
        activation_function TEXT NOT NULL,
        dataset TEXT NOT NULL,
        n_parameters INTEGER NOT NULL CHECK (n_parameters >= 0),
        context_length INTEGER NOT NULL CHECK (context_length >= 0),
        data_source TEXT NOT NULL,
        tokens_recorded INTEGER NOT NULL CHECK (tokens_recorded >= 0),
        tool_version TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE source (
        id INTEGER PRIMARY KEY,
        model_id INTEGER NOT NULL REFERENCES model (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        n_layers INTEGER NOT NULL CHECK (n_layers >= 0),
        units_per_layer INTEGER NOT NULL CHECK (units_per_layer >= 0),
        UNIQUE (model_id, name)
    ) STRICT;
    CREATE TABLE source_kind (
        source_id INTEGER NOT NULL REFERENCES source (id) ON DELETE CASCADE,
        kind INTEGER NOT NULL,
        PRIMARY KEY (source_id, kind)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE model_data (
        model_id INTEGER NOT NULL REFERENCES model (id) ON DELETE CASCADE,
        kind INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (model_id, kind)
    ) STRICT;
    CREATE TABLE layer_data (
        source_id INTEGER NOT NULL REFERENCES source (id) ON DELETE CASCADE,
        layer INTEGER NOT NULL CHECK (layer >= 0),
        kind INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (source_id, layer, kind)
    ) STRICT;
    -- `id` packs (source_id, layer, unit, kind) (see `neuron_key`): a lookup is one rowid b-tree
    -- descent, with no separate primary-key index to search and store.
    CREATE TABLE neuron_data (
        id INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL REFERENCES source (id) ON DELETE CASCADE,
        layer INTEGER NOT NULL CHECK (layer >= 0),
        unit INTEGER NOT NULL CHECK (unit >= 0),
        kind INTEGER NOT NULL,
        data BLOB NOT NULL
    ) STRICT;
    "#,
    // Version 2. A producer's own state kept beside a model, opaque to the store (the recorder's
    // mergeable shard state), split into parts below SQLite's one-gigabyte blob limit.
    r#"
    CREATE TABLE model_state (
        model_id INTEGER NOT NULL REFERENCES model (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        part INTEGER NOT NULL CHECK (part >= 0),
        data BLOB NOT NULL,
        PRIMARY KEY (model_id, name, part)
    ) STRICT;
    "#,
    // Version 3. `dataset` names the text the data was recorded on; what the model was trained on
    // (when known) and the weights it was recorded from get columns of their own. The recorder
    // wrote `unknown` into `dataset` (it never knew the training set): its recorded text is what
    // `data_source` holds.
    r#"
    ALTER TABLE model ADD COLUMN training_dataset TEXT;
    ALTER TABLE model ADD COLUMN model_source TEXT;
    ALTER TABLE model ADD COLUMN weights TEXT;
    UPDATE model SET dataset = data_source WHERE dataset = 'unknown';
    "#,
];

/// Bits of `neuron_data.id` given to the kind, the unit and the layer; the source id takes the rest.
const KIND_BITS: u32 = 6;
const UNIT_BITS: u32 = 28;
const LAYER_BITS: u32 = 12;
const SOURCE_BITS: u32 = 63 - KIND_BITS - UNIT_BITS - LAYER_BITS;

/// The largest source id a database can hold.
pub(crate) const MAX_SOURCE_ID: i64 = (1 << SOURCE_BITS) - 1;

/// The largest layer and unit index a source can have, as (layers, units per layer).
pub const MAX_SOURCE_SHAPE: (u64, u64) = (1 << LAYER_BITS, 1 << UNIT_BITS);

/// `neuron_data.id` of a record, or `None` when a part does not fit its bits.
pub(crate) fn neuron_key(source_id: i64, layer: u32, unit: u32, kind: u8) -> Option<i64> {
    let fits = (0..1 << SOURCE_BITS).contains(&source_id)
        && u64::from(layer) < 1 << LAYER_BITS
        && u64::from(unit) < 1 << UNIT_BITS
        && u64::from(kind) < 1 << KIND_BITS;
    fits.then(|| {
        (source_id << (LAYER_BITS + UNIT_BITS + KIND_BITS))
            | (i64::from(layer) << (UNIT_BITS + KIND_BITS))
            | (i64::from(unit) << KIND_BITS)
            | i64::from(kind)
    })
}

/// The range of `neuron_data.id` holding a source's records.
pub(crate) fn source_key_range(source_id: i64) -> (i64, i64) {
    let shift = LAYER_BITS + UNIT_BITS + KIND_BITS;
    let low = source_id.clamp(0, MAX_SOURCE_ID) << shift;
    // `low + (2^shift - 1)` stays below 2^63 for every source id that fits.
    (low, low + ((1i64 << shift) - 1))
}

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Reads the schema version and checks that the file is ours (or empty).
pub(crate) fn read_version(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let application_id: i32 = conn.query_row("PRAGMA application_id", [], |row| row.get(0)).at(path)?;
    let version: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).at(path)?;
    let n_tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |row| row.get(0)).at(path)?;
    let is_empty = application_id == 0 && version == 0 && n_tables == 0;
    if application_id != APPLICATION_ID && !is_empty {
        return Err(StoreError::NotADatabase { path: path.to_owned() });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew { path: path.to_owned(), found: version, supported: SCHEMA_VERSION });
    }
    Ok(version)
}

/// Applies every pending migration, each in its own transaction.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version = read_version(conn, path)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().at(path)?;
        tx.execute_batch(sql).at(path)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID).at(path)?;
        tx.pragma_update(None, "user_version", index as u32 + 1).at(path)?;
        if index == 0 {
            tx.execute("INSERT INTO meta (key, value) VALUES ('content_id', ?1)", [new_content_id()]).at(path)?;
        }
        tx.commit().at(path)?;
        tracing::info!(path = %path.display(), version = index + 1, "migrated database schema");
    }
    Ok(())
}

/// A fresh id for the store's content, changed on every committed write.
pub(crate) fn new_content_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{:x}-{counter:x}", nanos, std::process::id())
}
