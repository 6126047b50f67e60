//! The Python package `deepdecipher` (built with maturin from `python/`): a thin layer over the
//! libraries that translates Python calls into library calls and library values into Python
//! objects, with no policy of its own.
//!
//! Layers, each using only those above it: `error`; `backend` (a local file or a server, the same
//! records either way); `data` (a record's typed objects), `relations` (correlations, embeddings,
//! groups); `neuron`; `database` (databases,
//! models, tables, searches); `runtime` (running models); `progress` (long jobs with progress and
//! interrupts); `produce` (record, Neuron2Graph, explain, import, export); `serve`.

mod backend;
mod data;
mod database;
mod error;
mod neuron;
mod produce;
mod progress;
mod relations;
mod runtime;
mod serve;

use pyo3::prelude::*;

/// The runtime allocates a fresh tensor per operation; mimalloc keeps the freed pages where glibc
/// would return and fault them back in every batch (see `dd-alloc`), as in the `deepdecipher` binary.
#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

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
    dd_alloc::keep_freed_pages();
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
    module.add_class::<relations::Correlation>()?;
    module.add_class::<relations::Embedding>()?;
    module.add_class::<relations::Group>()?;
    module.add_class::<relations::GroupContext>()?;
    module.add_class::<runtime::LoadedModel>()?;
    module.add_class::<runtime::RunResult>()?;
    module.add_class::<serve::Server>()?;
    module.add_function(wrap_pyfunction!(open, module)?)?;
    module.add_function(wrap_pyfunction!(runtime::load_model, module)?)?;
    module.add_function(wrap_pyfunction!(produce::record, module)?)?;
    module.add_function(wrap_pyfunction!(produce::export, module)?)?;
    module.add_function(wrap_pyfunction!(produce::import_dataset, module)?)?;
    module.add_function(wrap_pyfunction!(produce::neuron2graph, module)?)?;
    module.add_function(wrap_pyfunction!(produce::explain, module)?)?;
    module.add_function(wrap_pyfunction!(serve::serve, module)?)?;
    Ok(())
}
