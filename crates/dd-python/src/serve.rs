//! `serve` from Python: the server on its own thread and tokio runtime, in the background of the
//! interpreter until `stop()`.

use std::path::PathBuf;
use std::sync::Arc;

use dd_store::SqliteStore;
use pyo3::prelude::*;

use crate::backend::{BackendError, app_state};
use crate::error::{py_error, py_message};

/// A DeepDecipher server running in the background of this process (`deepdecipher.serve`).
#[pyclass(module = "deepdecipher")]
pub(crate) struct Server {
    /// `http://host:port`.
    #[pyo3(get)]
    url: String,
    /// The port it listens on.
    #[pyo3(get)]
    port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    fn shut_down(&mut self) -> std::io::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| Err(std::io::Error::other("the server thread failed"))),
            None => Ok(()),
        }
    }
}

#[pymethods]
impl Server {
    /// Stops the server and waits until it has.
    fn stop(&mut self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.shut_down()).map_err(|e| py_error(&e))
    }

    /// Whether it is still serving.
    #[getter]
    fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|thread| !thread.is_finished())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&mut self, py: Python<'_>, _kind: Py<PyAny>, _value: Py<PyAny>, _traceback: Py<PyAny>) -> PyResult<()> {
        self.stop(py)
    }

    fn __repr__(&self) -> String {
        format!("Server({:?}, running={})", self.url, self.running())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

/// Serves the database `database` (the API and the website) on `host:port` (0: a free port) in the
/// background; `embedder` names an all-MiniLM-L6-v2 folder for search by meaning. Returns a
/// `Server` with its `url`; `stop()` it, or use it as a context manager.
#[pyfunction]
#[pyo3(signature = (database, port=0, host="127.0.0.1", embedder=None))]
pub(crate) fn serve(
    py: Python<'_>,
    database: PathBuf,
    port: u16,
    host: &str,
    embedder: Option<PathBuf>,
) -> PyResult<Server> {
    let app = py
        .detach(|| -> Result<_, BackendError> {
            let store = SqliteStore::open(&database, &dd_store::ReadConfig::serving_while_written())?;
            let state = app_state(Arc::new(store), dd_server::ServerConfig::standard(), embedder.as_deref())?;
            let state = Arc::new(state);
            state.warm_search_indexes();
            Ok(dd_server::app(state))
        })
        .map_err(|e| py_error(&e))?;
    let listener = std::net::TcpListener::bind((host, port))
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .map_err(|e| py_message(format!("cannot listen on {host}:{port}: {e}")))?;
    let address = listener.local_addr().map_err(|e| py_error(&e))?;
    let (shutdown, shutdown_signal) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("deepdecipher-serve".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                dd_server::serve(listener, app, async move {
                    let _ = shutdown_signal.await;
                })
                .await
            })
        })
        .map_err(|e| py_error(&e))?;
    Ok(Server {
        url: format!("http://{address}"),
        port: address.port(),
        shutdown: Some(shutdown),
        thread: Some(thread),
    })
}
