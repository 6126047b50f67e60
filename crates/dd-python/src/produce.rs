//! Producing data from Python: recording, Neuron2Graph, explaining, importing and exporting, each
//! the library job the CLI runs, with Python arguments overriding its standard settings (see
//! `progress` for how they run).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dd_record::{JobEvent, JobOutcome, RecordEvent, RecordingJob};
use dd_store::{NeuronChoice, SqliteStore, StoreLocation};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{py_error, py_message};
use crate::progress::{ItemProgress, Progress, outcome, run_interruptible};
use crate::runtime::{LoadedModel, load_model};

/// `model` as a loaded model: itself, or what `load_model` makes of a path or hub id.
fn loaded_model<'py>(py: Python<'py>, model: &Bound<'py, PyAny>) -> PyResult<Bound<'py, LoadedModel>> {
    match model.cast::<LoadedModel>() {
        Ok(loaded) => Ok(loaded.clone()),
        Err(_) => Bound::new(py, load_model(py, &model.extract::<String>()?)?),
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
    let loaded = loaded_model(py, model)?;
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
    let (result, interrupt) =
        run_interruptible(py, &format!("recording {model_name}"), "tok", progress, |stop, report| {
            let on_event = |event: JobEvent| match event {
                JobEvent::Record(RecordEvent::Recording { tokens, total }) => report(Progress { done: tokens, total }),
                JobEvent::WritingNeurons { done, total } => report(Progress { done, total: Some(total) }),
                _ => {}
            };
            dd_record::record_to_database(opened, &job, &on_event, stop)
        });
    let finished = outcome(result, interrupt)?;
    let summary = PyDict::new(py);
    summary.set_item("model", &model_name)?;
    match finished {
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
    let store =
        SqliteStore::open(&database, &dd_store::ReadConfig::serving_while_written()).map_err(|e| py_error(&e))?;
    let options = dd_export::ExportOptions { format, kinds, layers: None };
    let (result, interrupt) = run_interruptible(
        py,
        &format!("exporting {model}"),
        "unit",
        progress,
        |stop, report| -> Result<dd_export::ExportSummary, dd_export::ExportError> {
            let file = std::fs::File::create(&output).map_err(dd_export::ExportError::Io)?;
            let writer = StoppableWriter { inner: std::io::BufWriter::new(file), stop };
            let mut on_progress = |done: u64, total: u64| report(Progress { done, total: Some(total) });
            let (summary, mut writer) = dd_export::export_model(&store, model, &options, writer, &mut on_progress)?;
            std::io::Write::flush(&mut writer.inner).map_err(dd_export::ExportError::Io)?;
            Ok(summary)
        },
    );
    if interrupt.is_some() || result.is_err() {
        // A part of a file is no export: nothing reads it back.
        std::fs::remove_file(&output).ok();
    }
    let summary = outcome(result, interrupt)?;
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
    let (result, interrupt) = run_interruptible(py, "importing", "item", progress, |stop, report| {
        let items = ItemProgress::new(report);
        let events = |event: dd_import::ImportEvent| match event {
            dd_import::ImportEvent::Planned { items: planned, already_imported } => {
                items.planned(planned, already_imported)
            }
            dd_import::ImportEvent::ItemDone { .. } => items.one_done(),
            dd_import::ImportEvent::Committed { .. } => {}
        };
        dd_import::run_import(&database, importer.as_ref(), &job, stop, &events)
    });
    let summary = outcome(result, interrupt)?;
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

/// Builds Neuron2Graph graphs for chosen neurons of the model recorded into `database` (as
/// `deepdecipher n2g` does: the original's settings, augmentation from embedding neighbours), then
/// its token index and similar neurons. `model` is the recorded model (a `LoadedModel` or what
/// `load_model` takes); `name` its name in the database when it holds several. Resumable; an
/// interrupt keeps the graphs committed. Returns the summary's counts.
#[pyfunction]
#[pyo3(signature = (database, model, *, name=None, top_interesting=None, layers=None, neurons=None, progress=true))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn neuron2graph<'py>(
    py: Python<'py>,
    database: PathBuf,
    model: &Bound<'py, PyAny>,
    name: Option<String>,
    top_interesting: Option<usize>,
    layers: Option<Vec<u32>>,
    neurons: Option<Vec<u32>>,
    progress: bool,
) -> PyResult<Bound<'py, PyDict>> {
    use dd_n2g::job::{N2gEvent, N2gJob, N2gModel, build_graphs};
    let loaded = loaded_model(py, model)?;
    let opened = loaded.get().opened()?;
    let location = StoreLocation::SqliteFile(database);
    let name =
        dd_store::model_name_in(&location, name.as_deref(), Some(&opened.default_name)).map_err(|e| py_error(&e))?;
    let job = N2gJob::standard(&name, &opened.tokenizer, NeuronChoice { layers, neurons, top_interesting });
    let transformer = Arc::new(opened.transformer.clone());
    let texts = dd_n2g::build::TokenTexts::from_tokenizer(&opened.tokenizer);
    let probe = dd_n2g::probe::ModelProbe::new(Arc::clone(&transformer), dd_n2g::probe::ProbeConfig::default());
    let substitutes = dd_n2g::substitutes::EmbeddingNeighbours::new(
        &transformer,
        &opened.tokenizer,
        dd_n2g::substitutes::ShapeRule::default(),
    )
    .map_err(|e| py_error(&e))?;
    let n2g_model = N2gModel { source: &probe, substitutes: &substitutes, texts: &texts };
    let (result, interrupt) = run_interruptible(py, &format!("graphs of {name}"), "graph", progress, |stop, report| {
        let items = ItemProgress::new(report);
        let events = |event: N2gEvent| match event {
            N2gEvent::Planned { to_build, .. } => items.planned(to_build, 0),
            N2gEvent::Built { .. } | N2gEvent::Skipped { .. } => items.one_done(),
            N2gEvent::Committed { .. } | N2gEvent::Indexing { .. } => {}
        };
        build_graphs(&location, &n2g_model, &job, stop, &events)
    });
    let summary = outcome(result, interrupt)?;
    let dict = PyDict::new(py);
    dict.set_item("model", &name)?;
    dict.set_item("chosen", summary.chosen)?;
    dict.set_item("built", summary.built)?;
    dict.set_item("already_built", summary.already_built)?;
    dict.set_item("skipped", summary.skipped.len())?;
    dict.set_item("indexed", summary.indexed)?;
    dict.set_item("mean_held_out_f1", summary.mean_f1.0)?;
    dict.set_item("mean_random_f1", summary.mean_f1.1)?;
    Ok(dict)
}

/// Explains chosen neurons of the model in `database` with a local instruct model run by our
/// runtime (`explainer`: a `LoadedModel` or what `load_model` takes), simulates each explanation
/// with the same model to score it unless `simulate` is false, and embeds it for search by meaning
/// when `embedder` names an all-MiniLM-L6-v2 folder — `deepdecipher explain --local` with its
/// standard settings (endpoints are the CLI's). Resumable; an interrupt keeps what was committed.
#[pyfunction]
#[pyo3(signature = (database, explainer, *, model_name=None, top_interesting=None, layers=None, neurons=None,
    simulate=true, embedder=None, progress=true))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn explain<'py>(
    py: Python<'py>,
    database: PathBuf,
    explainer: &Bound<'py, PyAny>,
    model_name: Option<String>,
    top_interesting: Option<usize>,
    layers: Option<Vec<u32>>,
    neurons: Option<Vec<u32>>,
    simulate: bool,
    embedder: Option<PathBuf>,
    progress: bool,
) -> PyResult<Bound<'py, PyDict>> {
    use dd_explain::job::{ExplainEvent, ExplainJob, ExplainModels, explain_neurons};
    let loaded = loaded_model(py, explainer)?;
    let opened = loaded.get().opened()?;
    let location = StoreLocation::SqliteFile(database);
    let name = dd_store::model_name_in(&location, model_name.as_deref(), None).map_err(|e| py_error(&e))?;
    let job = ExplainJob::standard(&name, NeuronChoice { layers, neurons, top_interesting });
    let local = dd_explain::local::LocalModel::new(
        Arc::new(opened.transformer.clone()),
        Arc::clone(&opened.tokenizer),
        &opened.default_name,
    );
    let encoder = match &embedder {
        Some(directory) => Some(dd_model::SentenceEncoder::load(directory).map_err(|e| py_error(&e))?),
        None => None,
    };
    let models = ExplainModels {
        explainer: &local,
        simulator: simulate.then_some(&local as &dyn dd_explain::Simulator),
        encoder: encoder.as_ref(),
    };
    let (result, interrupt) =
        run_interruptible(py, &format!("explaining {name}"), "neuron", progress, |stop, report| {
            let items = ItemProgress::new(report);
            let events = |event: ExplainEvent| match event {
                ExplainEvent::Planned { to_explain, .. } => items.planned(to_explain, 0),
                ExplainEvent::Explained { .. } | ExplainEvent::Failed { .. } => items.one_done(),
                ExplainEvent::Committed { .. } => {}
            };
            explain_neurons(&location, &models, &job, stop, &events)
        });
    let summary = outcome(result, interrupt)?;
    let dict = PyDict::new(py);
    dict.set_item("model", &name)?;
    dict.set_item("chosen", summary.chosen)?;
    dict.set_item("explained", summary.explained)?;
    dict.set_item("already_explained", summary.already_explained)?;
    dict.set_item("failed", summary.failed.len())?;
    dict.set_item("scores", summary.scores.clone())?;
    if let Some((neuron, reason)) = summary.failed.first() {
        dict.set_item("first_failure", format!("{}/{}: {reason}", neuron.layer, neuron.index))?;
    }
    Ok(dict)
}
