//! The Python package `deepdecipher` (built with maturin from `python/`): a thin layer over the
//! libraries that translates Python calls into library calls and library values into Python
//! objects, with no policy of its own.
//!
//! Layers, each using only those above it: `error`; `backend` (a local file or a server, the same
//! records either way); `data` (a record's typed objects); `neuron`; `database` (databases,
//! models, tables, searches); `runtime` (running models); `produce` (record, import, export,
//! serve).

mod backend;
mod data;
mod database;
mod error;
mod neuron;
mod produce;
mod runtime;

use pyo3::prelude::*;

/// Opens the DeepDecipher database at `path` for reading; `embedder` names an all-MiniLM-L6-v2
/// folder for `Model.search_explanations`.
#[pyfunction]
#[pyo3(signature = (path, embedder=None))]
fn open(path: std::path::PathBuf, embedder: Option<std::path::PathBuf>) -> PyResult<database::Database> {
    if !path.exists() {
        return Err(error::py_message(format!("no database at {}", path.display())));
    }
    let backend = backend::Backend::open(&path, embedder).map_err(|e| error::py_error(&e))?;
    Ok(database::Database::new(backend))
}

#[pymodule]
fn _deepdecipher(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("DeepDecipherError", py.get_type::<error::DeepDecipherError>())?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_class::<database::Database>()?;
    module.add_class::<database::Client>()?;
    module.add_class::<database::Model>()?;
    module.add_class::<database::SearchHit>()?;
    module.add_class::<database::SearchResults>()?;
    module.add_class::<neuron::Neuron>()?;
    module.add_class::<data::Example>()?;
    module.add_class::<data::Stats>()?;
    module.add_class::<data::TokenValue>()?;
    module.add_class::<data::TokenLists>()?;
    module.add_class::<data::TokenMean>()?;
    module.add_class::<data::Connection>()?;
    module.add_class::<data::SimilarNeuron>()?;
    module.add_class::<data::Explanation>()?;
    module.add_class::<data::Graph>()?;
    module.add_class::<data::GraphNode>()?;
    module.add_class::<runtime::LoadedModel>()?;
    module.add_class::<runtime::RunResult>()?;
    module.add_class::<produce::Server>()?;
    module.add_function(wrap_pyfunction!(open, module)?)?;
    module.add_function(wrap_pyfunction!(runtime::load_model, module)?)?;
    module.add_function(wrap_pyfunction!(produce::record, module)?)?;
    module.add_function(wrap_pyfunction!(produce::export, module)?)?;
    module.add_function(wrap_pyfunction!(produce::import_dataset, module)?)?;
    module.add_function(wrap_pyfunction!(produce::serve, module)?)?;
    Ok(())
}
