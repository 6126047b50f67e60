//! Reading the catalog (models, sources and the kinds each holds) from a connection, once per open.

use std::path::Path;

use dd_data::{LayerDataKind, ModelDataKind, ModelMetadata, NeuronDataKind, Provenance, SourceInfo};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::StoreError;
use crate::backend::{Catalog, ModelEntry, ModelId, SourceEntry, SourceId};
use crate::error::SqliteContext;

/// Reads every model with its sources and present kinds, and the content id.
pub(crate) fn read_catalog(conn: &Connection, path: &Path) -> Result<Catalog, StoreError> {
    let content_id: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'content_id'", [], |row| row.get(0))
        .optional()
        .at(path)?
        .unwrap_or_default();
    let mut statement = conn
        .prepare(
            "SELECT id, name, architecture, n_layers, d_mlp, d_model, activation_function, dataset, n_parameters, \
             context_length, data_source, tokens_recorded, tool_version, recorded_at, training_dataset, model_source, \
             weights FROM model ORDER BY id",
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
                    training_dataset: row.get(14)?,
                    n_parameters: read_u64(row, 8, "n_parameters")?,
                    context_length: read_u64(row, 9, "context_length")?,
                    provenance: Provenance {
                        data_source: row.get(10)?,
                        tokens_recorded: read_u64(row, 11, "tokens_recorded")?,
                        tool_version: row.get(12)?,
                        recorded_at: row.get(13)?,
                        model_source: row.get(15)?,
                        weights: row.get(16)?,
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
