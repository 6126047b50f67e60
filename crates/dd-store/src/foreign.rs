//! Reading the original DeepDecipher's `data.db` (spec: `original-deepdecipher.md` §3), read-only,
//! for its importer: models with their metadata and data types, and raw blobs. The blobs stay
//! opaque here (their postcard and Snappy encoding is the importer's business), so that this crate
//! keeps owning SQLite and nothing else of the foreign format.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{SqliteContext, StoreError};

/// Tables without which the file cannot be imported at all.
const REQUIRED_TABLES: [&str; 4] = ["model", "data_type", "model_data_type", "neuron_data"];

/// The original DeepDecipher's database, opened read-only; `Sync`, shared by import workers.
pub struct OriginalDatabase {
    path: PathBuf,
    has_model_data: bool,
    /// Idle connections: a `Connection` is not `Sync`, so each reading thread borrows its own.
    idle: Mutex<Vec<Connection>>,
}

/// One model of an original database, as its `model` row and `model_data_type` rows say.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginalModel {
    /// Row id, the key of its data.
    pub id: i64,
    /// Name (`gpt2-small`).
    pub name: String,
    /// `num_layers`.
    pub num_layers: u64,
    /// `neurons_per_layer`.
    pub neurons_per_layer: u64,
    /// `activation_function`.
    pub activation_function: String,
    /// `num_total_parameters`.
    pub num_total_parameters: u64,
    /// `dataset`.
    pub dataset: String,
    /// The data types the model has, by id.
    pub data_types: Vec<OriginalDataType>,
}

/// One `data_type` row.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginalDataType {
    /// Row id, the key of its data.
    pub id: i64,
    /// Name (`neuroscope`, or any name for `Json` data).
    pub name: String,
    /// The `type` column (`Neuroscope`, `NeuronExplainer`, `Neuron2Graph`, `NeuronStore`, `Json`).
    pub type_name: String,
    /// The `type_args` column (postcard; the similarity threshold for `NeuronStore`).
    pub type_args: Vec<u8>,
}

impl OriginalDatabase {
    /// Opens `path` read-only and checks that it has the original's tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Missing { path: path.to_owned() });
        }
        let connection = open_connection(path)?;
        let mut statement = connection.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").at(path)?;
        let tables: Vec<String> =
            statement.query_map([], |row| row.get(0)).at(path)?.collect::<Result<_, _>>().at(path)?;
        drop(statement);
        let missing: Vec<&str> =
            REQUIRED_TABLES.iter().copied().filter(|table| !tables.iter().any(|t| t == table)).collect();
        if !missing.is_empty() {
            return Err(StoreError::Invalid(format!(
                "{} is not an original DeepDecipher database: it lacks the table(s) {}",
                path.display(),
                missing.join(", ")
            )));
        }
        let has_model_data = tables.iter().any(|table| table == "model_data");
        Ok(Self { path: path.to_owned(), has_model_data, idle: Mutex::new(vec![connection]) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every model, by id, with its data types.
    pub fn models(&self) -> Result<Vec<OriginalModel>, StoreError> {
        self.with_connection(|connection, path| {
            let mut statement = connection
                .prepare(
                    "SELECT id, name, num_layers, neurons_per_layer, activation_function, num_total_parameters, \
                     dataset FROM model ORDER BY id",
                )
                .at(path)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        [row.get::<_, i64>(2)?, row.get::<_, i64>(3)?, row.get::<_, i64>(5)?],
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(6)?,
                    ))
                })
                .at(path)?
                .collect::<Result<Vec<_>, _>>()
                .at(path)?;
            let mut types = connection
                .prepare(
                    "SELECT d.id, d.name, d.type, d.type_args FROM model_data_type m \
                     JOIN data_type d ON d.id = m.data_type_id WHERE m.model_id = ? ORDER BY d.id",
                )
                .at(path)?;
            let mut models = Vec::with_capacity(rows.len());
            for (id, name, [num_layers, neurons_per_layer, num_total_parameters], activation_function, dataset) in rows
            {
                let data_types = types
                    .query_map([id], |row| {
                        Ok(OriginalDataType {
                            id: row.get(0)?,
                            name: row.get(1)?,
                            type_name: row.get(2)?,
                            type_args: row.get(3)?,
                        })
                    })
                    .at(path)?
                    .collect::<Result<Vec<_>, _>>()
                    .at(path)?;
                models.push(OriginalModel {
                    id,
                    name,
                    num_layers: non_negative("model.num_layers", num_layers)?,
                    neurons_per_layer: non_negative("model.neurons_per_layer", neurons_per_layer)?,
                    activation_function,
                    num_total_parameters: non_negative("model.num_total_parameters", num_total_parameters)?,
                    dataset,
                    data_types,
                });
            }
            Ok(models)
        })
    }

    /// The blob of one neuron and data type, `None` when the database has none.
    pub fn neuron_blob(
        &self,
        model_id: i64,
        data_type_id: i64,
        layer: u32,
        neuron: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_connection(|connection, path| {
            connection
                .prepare_cached(
                    "SELECT data FROM neuron_data \
                     WHERE model_id = ? AND data_type_id = ? AND layer_index = ? AND neuron_index = ?",
                )
                .at(path)?
                .query_row(params![model_id, data_type_id, layer, neuron], |row| row.get(0))
                .optional()
                .at(path)
        })
    }

    /// The model-level blob of one data type, `None` when the database has none (or no
    /// `model_data` table).
    pub fn model_blob(&self, model_id: i64, data_type_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        if !self.has_model_data {
            return Ok(None);
        }
        self.with_connection(|connection, path| {
            connection
                .prepare_cached("SELECT data FROM model_data WHERE model_id = ? AND data_type_id = ?")
                .at(path)?
                .query_row(params![model_id, data_type_id], |row| row.get(0))
                .optional()
                .at(path)
        })
    }

    /// Runs `read` on an idle connection (a new one when all are busy), then returns it.
    fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection, &Path) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_connection(&self.path)?,
        };
        let result = read(&connection, &self.path);
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(connection);
        result
    }
}

/// A read-only connection that cannot write even by mistake.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).at(path)?;
    connection.pragma_update(None, "query_only", true).at(path)?;
    Ok(connection)
}

fn non_negative(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::BadValue { what, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(dir: &Path, tables: &[&str]) -> PathBuf {
        let path = dir.join("data.db");
        let connection = Connection::open(&path).expect("create");
        for sql in tables {
            connection.execute_batch(sql).expect("table");
        }
        path
    }

    const MODEL: &str = "CREATE TABLE model (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, \
        num_layers INTEGER NOT NULL, neurons_per_layer INTEGER NOT NULL, activation_function TEXT NOT NULL, \
        num_total_parameters INTEGER NOT NULL, dataset TEXT NOT NULL) STRICT;";
    const DATA_TYPE: &str = "CREATE TABLE data_type (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL \
        UNIQUE, type TEXT NOT NULL, type_args BLOB NOT NULL) STRICT;";
    const MODEL_DATA_TYPE: &str = "CREATE TABLE model_data_type (model_id INTEGER NOT NULL, data_type_id INTEGER \
        NOT NULL, UNIQUE(model_id, data_type_id));";
    const NEURON_DATA: &str = "CREATE TABLE neuron_data (model_id INTEGER NOT NULL, data_type_id INTEGER NOT NULL, \
        layer_index INTEGER NOT NULL, neuron_index INTEGER NOT NULL, data BLOB NOT NULL, \
        PRIMARY KEY(model_id, data_type_id, layer_index, neuron_index)) STRICT;";

    #[test]
    fn models_types_and_blobs_are_read_and_absent_ones_are_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = fixture(dir.path(), &[MODEL, DATA_TYPE, MODEL_DATA_TYPE, NEURON_DATA]);
        let connection = Connection::open(&path).expect("open");
        connection
            .execute_batch(
                "INSERT INTO model VALUES (1, 'solu-1l', 1, 4, 'solu', 1000, 'pile');
                 INSERT INTO data_type VALUES (1, 'neuroscope', 'Neuroscope', X'');
                 INSERT INTO data_type VALUES (2, 'neuron_store', 'NeuronStore', X'CDCCCC3E');
                 INSERT INTO model_data_type VALUES (1, 2);
                 INSERT INTO neuron_data VALUES (1, 2, 0, 3, X'0102');",
            )
            .expect("rows");
        let database = OriginalDatabase::open(&path).expect("open");
        let models = database.models().expect("models");
        assert_eq!(models.len(), 1);
        assert_eq!((models[0].name.as_str(), models[0].num_layers, models[0].neurons_per_layer), ("solu-1l", 1, 4));
        assert_eq!(models[0].data_types.len(), 1);
        assert_eq!(models[0].data_types[0].type_args, [0xCD, 0xCC, 0xCC, 0x3E]);
        assert_eq!(database.neuron_blob(1, 2, 0, 3).expect("read"), Some(vec![1, 2]));
        assert_eq!(database.neuron_blob(1, 2, 0, 2).expect("read"), None);
        assert_eq!(database.model_blob(1, 2).expect("no table"), None);
    }

    #[test]
    fn a_file_without_the_tables_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = fixture(dir.path(), &[MODEL, DATA_TYPE]);
        let error = OriginalDatabase::open(&path).err().expect("refused").to_string();
        assert!(error.contains("model_data_type, neuron_data"), "{error}");
        let missing = OriginalDatabase::open(&dir.path().join("nothing.db")).err().expect("refused");
        assert!(matches!(missing, StoreError::Missing { .. }), "{missing}");
    }
}
