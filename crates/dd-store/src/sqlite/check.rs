//! `deepdecipher check`: SQLite's own integrity check, then a decode of every stored blob.

use std::path::Path;

use dd_data::{LayerDataKind, ModelDataKind, NeuronDataKind};
use rusqlite::Connection;

use super::pool::{ReadConfig, open_reader};
use super::schema;
use crate::StoreError;
use crate::codec::{decode_layer, decode_model, decode_neuron};
use crate::error::SqliteContext;

/// Problems found by [`check`] (empty lists mean a healthy database).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CheckReport {
    /// Blobs decoded.
    pub n_blobs: u64,
    /// Messages from `PRAGMA integrity_check` other than "ok".
    pub integrity_errors: Vec<String>,
    /// Rows whose foreign keys point nowhere.
    pub foreign_key_errors: Vec<String>,
    /// Blobs that fail to decode or sit outside their source's shape (at most 100 listed).
    pub blob_errors: Vec<String>,
    /// Total count of blob errors, including those not listed.
    pub n_blob_errors: u64,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.integrity_errors.is_empty() && self.foreign_key_errors.is_empty() && self.n_blob_errors == 0
    }

    fn blob_error(&mut self, message: String) {
        self.n_blob_errors += 1;
        if self.blob_errors.len() < 100 {
            self.blob_errors.push(message);
        }
    }
}

/// Checks a database; `progress(done, total)` is called as blobs are decoded.
///
/// Damage that stops SQLite from reading on is reported as a finding, not as an error: the
/// check did its job.
pub fn check(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport::default();
    match check_into(path, &mut report, progress) {
        Ok(()) => Ok(report),
        Err(StoreError::Sqlite { source, .. })
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt) =>
        {
            report.integrity_errors.push(format!("reading stopped: {source}"));
            Ok(report)
        }
        Err(error) => Err(error),
    }
}

fn check_into(path: &Path, report: &mut CheckReport, progress: &mut dyn FnMut(u64, u64)) -> Result<(), StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing { path: path.to_owned() });
    }
    let conn = open_reader(
        path,
        &ReadConfig { n_connections: 1, cache_kib: 64 * 1024, mmap_bytes: 0, immutable: false },
        false,
    )?;
    schema::read_version(&conn, path)?;
    report.integrity_errors = strings(&conn, "PRAGMA integrity_check").at(path)?;
    report.integrity_errors.retain(|m| m != "ok");
    if !report.integrity_errors.is_empty() {
        // Reading blobs from a damaged b-tree can return garbage; report what SQLite found and stop.
        return Ok(());
    }
    let mut statement = conn.prepare("PRAGMA foreign_key_check").at(path)?;
    report.foreign_key_errors = statement
        .query_map([], |row| {
            Ok(format!("{} row {} -> {}", row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?))
        })
        .at(path)?
        .collect::<Result<_, _>>()
        .at(path)?;
    let total: i64 = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM neuron_data) + (SELECT COUNT(*) FROM layer_data) + (SELECT COUNT(*) FROM model_data)",
            [],
            |row| row.get(0),
        )
        .at(path)?;
    let total = total.max(0) as u64;
    let mut done = 0u64;

    let mut statement = conn.prepare("SELECT model_id, kind, data FROM model_data").at(path)?;
    let mut rows = statement.query([]).at(path)?;
    while let Some(row) = rows.next().at(path)? {
        let (model, code, blob): (i64, u8, Vec<u8>) =
            (row.get(0).at(path)?, row.get(1).at(path)?, row.get(2).at(path)?);
        match ModelDataKind::from_code(code) {
            None => report.blob_error(format!("model {model}: unknown kind code {code}")),
            Some(kind) => {
                if let Err(error) = decode_model(kind, &blob) {
                    report.blob_error(format!("model {model} {}: {error}", kind.name()));
                }
            }
        }
        done += 1;
    }
    progress(done, total);

    let mut statement = conn
        .prepare("SELECT d.source_id, d.layer, d.kind, d.data, s.n_layers FROM layer_data d JOIN source s ON s.id = d.source_id")
        .at(path)?;
    let mut rows = statement.query([]).at(path)?;
    while let Some(row) = rows.next().at(path)? {
        let source: i64 = row.get(0).at(path)?;
        let layer: i64 = row.get(1).at(path)?;
        let code: u8 = row.get(2).at(path)?;
        let n_layers: i64 = row.get(4).at(path)?;
        let blob: Vec<u8> = row.get(3).at(path)?;
        if layer >= n_layers {
            report.blob_error(format!("source {source} layer {layer}: outside {n_layers} layers"));
        }
        match LayerDataKind::from_code(code) {
            None => report.blob_error(format!("source {source} layer {layer}: unknown kind code {code}")),
            Some(kind) => {
                if let Err(error) = decode_layer(kind, &blob) {
                    report.blob_error(format!("source {source} layer {layer} {}: {error}", kind.name()));
                }
            }
        }
        done += 1;
    }
    progress(done, total);

    let mut statement = conn
        .prepare(
            "SELECT d.source_id, d.layer, d.unit, d.kind, d.data, s.n_layers, s.units_per_layer, d.id \
             FROM neuron_data d JOIN source s ON s.id = d.source_id",
        )
        .at(path)?;
    let mut rows = statement.query([]).at(path)?;
    while let Some(row) = rows.next().at(path)? {
        let source: i64 = row.get(0).at(path)?;
        let layer: i64 = row.get(1).at(path)?;
        let unit: i64 = row.get(2).at(path)?;
        let code: u8 = row.get(3).at(path)?;
        let blob = row.get_ref(4).at(path)?.as_blob().map_err(rusqlite::Error::from).at(path)?;
        let (n_layers, units): (i64, i64) = (row.get(5).at(path)?, row.get(6).at(path)?);
        if layer >= n_layers || unit >= units {
            report.blob_error(format!("source {source} neuron {layer}/{unit}: outside {n_layers}x{units}"));
        }
        let id: i64 = row.get(7).at(path)?;
        let expected = u32::try_from(layer)
            .ok()
            .zip(u32::try_from(unit).ok())
            .and_then(|(l, u)| schema::neuron_key(source, l, u, code));
        if expected != Some(id) {
            report.blob_error(format!("source {source} neuron {layer}/{unit}: row id {id} does not match its key"));
        }
        match NeuronDataKind::from_code(code) {
            None => report.blob_error(format!("source {source} neuron {layer}/{unit}: unknown kind code {code}")),
            Some(kind) => {
                if let Err(error) = decode_neuron(kind, blob) {
                    report.blob_error(format!("source {source} neuron {layer}/{unit} {}: {error}", kind.name()));
                }
            }
        }
        done += 1;
        if done % 1024 == 0 {
            progress(done, total);
        }
    }
    progress(done, total);
    report.n_blobs = done;
    Ok(())
}

fn strings(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare(sql)?;
    statement.query_map([], |row| row.get(0))?.collect()
}
