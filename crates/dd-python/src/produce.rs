//! Producing data from Python: recording, importing and exporting run in a worker thread while
//! the calling thread shows progress (tqdm when installed) and watches for Ctrl-C or a notebook's
//! interrupt, which stops the job the way the CLI's Ctrl-C does; `serve` runs the server in the
//! background until stopped.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dd_record::{JobEvent, JobOutcome, RecordEvent, RecordingJob};
use dd_store::{SqliteStore, StoreLocation};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{py_error, py_message};
use crate::runtime::{LoadedModel, load_model};

/// Progress of a job: work done and the total, when known.
#[derive(Debug, Clone, Copy)]
struct Progress {
    done: u64,
    total: Option<u64>,
}

/// A progress display: a tqdm bar when tqdm is installed, else a line on stderr now and then.
struct ProgressDisplay<'py> {
    bar: Option<Bound<'py, PyAny>>,
    description: String,
    last_line: Instant,
}

impl<'py> ProgressDisplay<'py> {
    fn new(py: Python<'py>, description: &str, unit: &str, show: bool) -> Self {
        let bar = show
            .then(|| -> PyResult<Bound<'py, PyAny>> {
                let kwargs = PyDict::new(py);
                kwargs.set_item("desc", description)?;
                kwargs.set_item("unit", unit)?;
                kwargs.set_item("unit_scale", true)?;
                py.import("tqdm.auto")?.getattr("tqdm")?.call((), Some(&kwargs))
            })
            .and_then(Result::ok);
        ProgressDisplay { bar, description: description.to_owned(), last_line: Instant::now() }
    }

    fn show(&mut self, py: Python<'py>, progress: Progress, show: bool) {
        if !show {
            return;
        }
        match &self.bar {
            Some(bar) => {
                let _ = bar.setattr("total", progress.total);
                let _ = bar.setattr("n", progress.done);
                let _ = bar.call_method0("refresh");
            }
            None if self.last_line.elapsed() > Duration::from_secs(5) => {
                self.last_line = Instant::now();
                let line = match progress.total {
                    Some(total) => format!("{}: {} of {total}\n", self.description, progress.done),
                    None => format!("{}: {}\n", self.description, progress.done),
                };
                let _ = py.import("sys").and_then(|sys| sys.getattr("stderr")?.call_method1("write", (line,)));
            }
            None => {}
        }
    }

    fn close(self) {
        if let Some(bar) = self.bar {
            let _ = bar.call_method0("close");
        }
    }
}

/// Runs `job` in a worker thread, showing its progress here and raising its stop flag on an
/// interrupt; returns its result and whether it was interrupted (then the caller raises
/// `KeyboardInterrupt` once the job has stopped cleanly).
fn run_interruptible<T: Send>(
    py: Python<'_>,
    description: &str,
    unit: &str,
    show: bool,
    job: impl FnOnce(&AtomicBool, &(dyn Fn(Progress) + Sync)) -> T + Send,
) -> (T, Option<PyErr>) {
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<Progress>();
    // Read with the GIL released, so from a closure that must be `Send`.
    let receiver = std::sync::Mutex::new(receiver);
    let mut display = ProgressDisplay::new(py, description, unit, show);
    let mut interrupt = None;
    let result = std::thread::scope(|scope| {
        let stop = &stop;
        let worker = scope.spawn(move || {
            let sender = std::sync::Mutex::new(sender);
            let report = move |progress: Progress| {
                if let Ok(sender) = sender.lock() {
                    let _ = sender.send(progress);
                }
            };
            job(stop, &report)
        });
        while !worker.is_finished() {
            let latest = py.detach(|| {
                let Ok(receiver) = receiver.lock() else { return None };
                let mut latest = receiver.recv_timeout(Duration::from_millis(100)).ok();
                while let Ok(progress) = receiver.try_recv() {
                    latest = Some(progress);
                }
                latest
            });
            if let Some(progress) = latest {
                display.show(py, progress, show);
            }
            if interrupt.is_none()
                && let Err(error) = py.check_signals()
            {
                stop.store(true, Ordering::Relaxed);
                interrupt = Some(error);
            }
        }
        py.detach(|| worker.join())
    });
    display.close();
    match result {
        Ok(value) => (value, interrupt),
        // The libraries return errors rather than panic; a panic here is a bug, resumed as one.
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Records `dataset` (a `.txt`, `.jsonl`, `.json`, `.parquet` or folder of them) through `model`
/// (a `LoadedModel` or what `load_model` takes) into the database `output`, with the CLI's
/// defaults. Progress shows in a tqdm bar; an interrupt checkpoints and raises
/// `KeyboardInterrupt`, and calling again resumes. Returns `{"tokens", "contexts", "model"}`.
#[pyfunction]
#[pyo3(signature = (model, dataset, output, *, name=None, tokens=None, context=128, batch=8, top=20, bottom=None,
    bands=10, per_band=2, random=5, weight_facts=true, dataset_name=None, text_field="text", progress=true))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn record<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    dataset: PathBuf,
    output: PathBuf,
    name: Option<String>,
    tokens: Option<u64>,
    context: usize,
    batch: usize,
    top: u32,
    bottom: Option<u32>,
    bands: u32,
    per_band: u32,
    random: u32,
    weight_facts: bool,
    dataset_name: Option<String>,
    text_field: &str,
    progress: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let loaded: Bound<'py, LoadedModel> = match model.cast::<LoadedModel>() {
        Ok(loaded) => loaded.clone(),
        Err(_) => Bound::new(py, load_model(py, &model.extract::<String>()?)?)?,
    };
    let standard = RecordingJob::standard(&dataset, &output);
    let mut job = RecordingJob {
        model_name: name,
        context_length: context,
        token_budget: tokens,
        batch_size: batch.max(1),
        top,
        bottom,
        bands,
        per_band,
        random,
        weight_facts: if weight_facts { standard.weight_facts } else { None },
        ..standard
    };
    job.dataset.text_field = text_field.to_owned();
    if let Some(dataset_name) = dataset_name {
        job.dataset_description.name = dataset_name;
    }
    let loaded_ref = loaded.get();
    let opened = loaded_ref.opened()?;
    let model_name = job.model_name(opened).to_owned();
    let (outcome, interrupt) = run_interruptible(py, &format!("recording {model_name}"), "tok", progress, |stop, report| {
        let on_event = |event: JobEvent| match event {
            JobEvent::Record(RecordEvent::Recording { tokens, total }) => report(Progress { done: tokens, total }),
            JobEvent::WritingNeurons { done, total } => report(Progress { done, total: Some(total) }),
            _ => {}
        };
        dd_record::record_to_database(opened, &job, &on_event, stop)
    });
    let outcome = outcome.map_err(|e| py_error(&e))?;
    if let Some(interrupt) = interrupt {
        return Err(interrupt);
    }
    let summary = PyDict::new(py);
    summary.set_item("model", &model_name)?;
    match outcome {
        JobOutcome::Finished { tokens, contexts, .. } => {
            summary.set_item("tokens", tokens)?;
            summary.set_item("contexts", contexts)?;
            summary.set_item("interrupted", false)?;
        }
        // Stopped by something other than this call's interrupt: the checkpoint holds `tokens`.
        JobOutcome::Interrupted { tokens } => {
            summary.set_item("tokens", tokens)?;
            summary.set_item("interrupted", true)?;
        }
    }
    Ok(summary)
}

/// Exports `model` of the database `database` into `output` as `parquet` or `jsonl.gz` (the
/// schema of `docs/export.md`), only `kinds` when given. Returns `{"rows", "blob_bytes"}`.
#[pyfunction]
#[pyo3(signature = (database, model, output, format="parquet", kinds=None, progress=true))]
pub(crate) fn export<'py>(
    py: Python<'py>,
    database: PathBuf,
    model: &str,
    output: PathBuf,
    format: &str,
    kinds: Option<Vec<String>>,
    progress: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let format = dd_export::ExportFormat::parse(format).map_err(|e| py_error(&e))?;
    let store = SqliteStore::open(&database, &dd_store::ReadConfig::serving_while_written()).map_err(|e| py_error(&e))?;
    let options = dd_export::ExportOptions { format, kinds, layers: None };
    let (outcome, interrupt) = run_interruptible(py, &format!("exporting {model}"), "unit", progress, |stop, report| -> Result<
        dd_export::ExportSummary,
        dd_export::ExportError,
    > {
        let file = std::fs::File::create(&output).map_err(dd_export::ExportError::Io)?;
        let writer = StoppableWriter { inner: std::io::BufWriter::new(file), stop };
        let mut on_progress = |done: u64, total: u64| report(Progress { done, total: Some(total) });
        let (summary, mut writer) = dd_export::export_model(&store, model, &options, writer, &mut on_progress)?;
        std::io::Write::flush(&mut writer.inner).map_err(dd_export::ExportError::Io)?;
        Ok(summary)
    });
    if let Some(interrupt) = interrupt {
        std::fs::remove_file(&output).ok();
        return Err(interrupt);
    }
    let summary = outcome.map_err(|e| py_error(&e))?;
    let dict = PyDict::new(py);
    dict.set_item("rows", summary.rows)?;
    dict.set_item("blob_bytes", summary.blob_bytes)?;
    Ok(dict)
}

/// Imports a published dataset (`format`: `openai`, `neuroscope`, `neuronpedia`, `saedashboard`,
/// `deepdecipher-db`, `deepdecipher-api`, `deepdecipher`; `source`: a folder, file or URL) into the
/// database `output`, as `deepdecipher import` does (`docs/import.md`). Resumable; an interrupt
/// keeps what was committed. Returns the summary's counts.
#[pyfunction]
#[pyo3(signature = (format, source, output, *, model_name=None, layers=None, units_per_layer=None, replace=false, progress=true))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn import_dataset<'py>(
    py: Python<'py>,
    format: &str,
    source: &str,
    output: PathBuf,
    model_name: Option<String>,
    layers: Option<Vec<u32>>,
    units_per_layer: Option<u32>,
    replace: bool,
    progress: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let format = dd_import::formats::Format::from_name(format).ok_or_else(|| {
        py_message(format!(
            "unknown import format {format:?}; formats: openai, neuroscope, neuronpedia, saedashboard, deepdecipher-db, \
             deepdecipher-api, deepdecipher"
        ))
    })?;
    let options = dd_import::formats::FormatOptions { dataset_model: model_name.clone(), ..Default::default() };
    // Holding the GIL: an importer is shared by the import's workers but not sent between threads.
    let (location, importer) = dd_import::formats::prepare(format, source, &options).map_err(|e| py_error(&e))?;
    let mut job = dd_import::ImportJob::new(location);
    job.model_name = model_name.clone();
    job.request = dd_import::ImportRequest { layers, units_per_layer, model_name: None };
    job.replace = replace;
    let database = StoreLocation::SqliteFile(output);
    let (outcome, interrupt) = run_interruptible(py, "importing", "item", progress, |stop, report| {
        let total = std::sync::atomic::AtomicU64::new(0);
        let done = std::sync::atomic::AtomicU64::new(0);
        let events = |event: dd_import::ImportEvent| match event {
            dd_import::ImportEvent::Planned { items, already_imported } => {
                total.store(items as u64, Ordering::Relaxed);
                done.store(already_imported as u64, Ordering::Relaxed);
            }
            dd_import::ImportEvent::ItemDone { .. } => {
                let done = done.fetch_add(1, Ordering::Relaxed) + 1;
                report(Progress { done, total: Some(total.load(Ordering::Relaxed)) });
            }
            dd_import::ImportEvent::Committed { .. } => {}
        };
        dd_import::run_import(&database, importer.as_ref(), &job, stop, &events)
    });
    let summary = outcome.map_err(|e| py_error(&e))?;
    if let Some(interrupt) = interrupt {
        return Err(interrupt);
    }
    let dict = PyDict::new(py);
    dict.set_item("model", &summary.model)?;
    dict.set_item("source", &summary.source)?;
    dict.set_item("items", summary.items)?;
    dict.set_item("imported", summary.imported)?;
    dict.set_item("already_imported", summary.already_imported)?;
    dict.set_item("missing", summary.missing)?;
    dict.set_item("failed", summary.failures.len())?;
    dict.set_item("records_written", summary.records_written)?;
    if let Some(failure) = summary.failures.first() {
        dict.set_item("first_failure", format!("{failure:?}"))?;
    }
    Ok(dict)
}

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
pub(crate) fn serve(py: Python<'_>, database: PathBuf, port: u16, host: &str, embedder: Option<PathBuf>) -> PyResult<Server> {
    let app = py
        .detach(|| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
            let store = SqliteStore::open(&database, &dd_store::ReadConfig::serving_while_written())?;
            let mut state = dd_server::AppState::load(Arc::new(store), dd_server::ServerConfig::standard())?;
            if let Some(directory) = &embedder {
                state = state.with_query_encoder(Arc::new(dd_model::SentenceEncoder::load(directory)?));
            }
            let state = Arc::new(state);
            state.warm_search_indexes();
            Ok(dd_server::app(state))
        })
        .map_err(|e| py_error(e.as_ref()))?;
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
    Ok(Server { url: format!("http://{address}"), port: address.port(), shutdown: Some(shutdown), thread: Some(thread) })
}

/// A writer that fails once `stop` is raised, so an export ends at its next write.
struct StoppableWriter<'a, W> {
    inner: W,
    stop: &'a AtomicBool,
}

impl<W: std::io::Write> std::io::Write for StoppableWriter<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"));
        }
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
