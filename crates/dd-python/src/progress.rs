//! Long work from Python: a job runs in a worker thread while the calling thread shows its progress
//! (tqdm when installed) and watches for Ctrl-C or a notebook's interrupt, which raises the job's
//! stop flag the way the CLI's Ctrl-C does; the caller raises `KeyboardInterrupt` once the job has
//! stopped cleanly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Progress of a job: work done and the total, when known.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    /// Work done.
    pub(crate) done: u64,
    /// All the work, when known.
    pub(crate) total: Option<u64>,
}

/// A progress display: a tqdm bar when tqdm is installed, else a line on stderr now and then.
struct ProgressDisplay<'py> {
    /// Whether the caller wants progress at all.
    enabled: bool,
    bar: Option<Bound<'py, PyAny>>,
    description: String,
    last_line: Instant,
}

impl<'py> ProgressDisplay<'py> {
    fn new(py: Python<'py>, description: &str, unit: &str, enabled: bool) -> Self {
        let bar = enabled
            .then(|| -> PyResult<Bound<'py, PyAny>> {
                let kwargs = PyDict::new(py);
                kwargs.set_item("desc", description)?;
                kwargs.set_item("unit", unit)?;
                kwargs.set_item("unit_scale", true)?;
                py.import("tqdm.auto")?.getattr("tqdm")?.call((), Some(&kwargs))
            })
            .and_then(Result::ok);
        ProgressDisplay { enabled, bar, description: description.to_owned(), last_line: Instant::now() }
    }

    fn show(&mut self, py: Python<'py>, progress: Progress) {
        if !self.enabled {
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
pub(crate) fn run_interruptible<T: Send>(
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
                display.show(py, progress);
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

/// Progress of a job that announces how many items it will handle and then reports each one.
pub(crate) struct ItemProgress<'a> {
    planned: AtomicU64,
    done: AtomicU64,
    report: &'a (dyn Fn(Progress) + Sync),
}

impl<'a> ItemProgress<'a> {
    /// Progress reported through `report`.
    pub(crate) fn new(report: &'a (dyn Fn(Progress) + Sync)) -> Self {
        ItemProgress { planned: AtomicU64::new(0), done: AtomicU64::new(0), report }
    }

    /// The job will handle `items`, of which `done` are done already (by an earlier run).
    pub(crate) fn planned(&self, items: usize, done: usize) {
        self.planned.store(items as u64, Ordering::Relaxed);
        self.done.store(done as u64, Ordering::Relaxed);
    }

    /// One more item is handled.
    pub(crate) fn one_done(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        (self.report)(Progress { done, total: Some(self.planned.load(Ordering::Relaxed)) });
    }
}

/// What a job run by [`run_interruptible`] gives Python: the interrupt when there was one (the job
/// stopped because of it), else its result or its error.
pub(crate) fn outcome<T, E: std::error::Error>(result: Result<T, E>, interrupt: Option<PyErr>) -> PyResult<T> {
    match interrupt {
        Some(interrupt) => Err(interrupt),
        None => result.map_err(|e| crate::error::py_error(&e)),
    }
}
