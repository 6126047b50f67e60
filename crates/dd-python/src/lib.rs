//! The Python package `deepdecipher` (built with maturin): a thin layer over the libraries that
//! translates Python calls into library calls and library values into Python objects.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pyo3::create_exception!(_deepdecipher, DeepDecipherError, PyException, "Every error the package raises.");

/// A DeepDecipher database opened for reading.
#[pyclass(frozen)]
struct Database {
    store: dd_store::SqliteStore,
}

#[pymethods]
impl Database {
    /// The models in the database, as dictionaries of their metadata.
    fn models<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        use dd_store::StoreRead;
        self.store
            .catalog()
            .models()
            .iter()
            .map(|model| {
                let dict = PyDict::new(py);
                dict.set_item("name", &model.metadata.name)?;
                dict.set_item("n_layers", model.metadata.n_layers)?;
                dict.set_item("d_mlp", model.metadata.d_mlp)?;
                Ok(dict)
            })
            .collect()
    }
}

/// Opens the database at `path` for reading.
#[pyfunction]
fn open(path: std::path::PathBuf) -> PyResult<Database> {
    let config = dd_store::ReadConfig::serving_while_written();
    let store =
        dd_store::SqliteStore::open(&path, &config).map_err(|error| DeepDecipherError::new_err(error.to_string()))?;
    Ok(Database { store })
}

#[pymodule]
fn _deepdecipher(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("DeepDecipherError", module.py().get_type::<DeepDecipherError>())?;
    module.add_class::<Database>()?;
    module.add_function(wrap_pyfunction!(open, module)?)?;
    Ok(())
}
