//! The `deepdecipher` command: parses arguments, sets up logging and progress bars, and hands
//! off to the library crates. All logic lives in the libraries; errors become messages here.

mod cli;
mod demo;
mod explain;
mod export;
mod import;
mod n2g;
mod recording;
mod relate;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use dd_record::OpenedModel;
use dd_server::{AppState, LiveLimits, LiveModel, ReloadHandle, ServerConfig};
use dd_store::{ReadConfig, SqliteStore, StoreRead, StoreWriter};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Cli, Command, ServeArgs, SynthArgs};

/// Model runs allocate a fresh tensor per op; this allocator reuses the freed pages rather than
/// faulting them back in on every batch (see `dd_alloc`).
#[global_allocator]
static ALLOCATOR: dd_alloc::Allocator = dd_alloc::Allocator;

fn main() -> ExitCode {
    dd_alloc::keep_freed_pages();
    let cli = Cli::parse();
    init_logging(&cli.log);
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", error_message(&error));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text its parent already quotes
/// (many library errors print their source inside their own message).
fn error_message(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours only on a terminal: log files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(args, None, Served::Unchanging),
        Command::Info { database } => info(&database),
        Command::Check { database } => check(&database),
        Command::Synth(args) => synth(args),
        Command::Record(args) => recording::record(args),
        Command::Merge(args) => recording::merge(args),
        Command::Demo(args) => demo::demo(args),
        Command::N2g(args) => n2g::build(args),
        Command::N2gImport(args) => n2g::import(args),
        Command::N2gExport(args) => n2g::export(args),
        Command::Relate(args) => relate::relate(args),
        Command::Compare(args) => relate::compare(args),
        Command::Explain(args) => explain::explain(args),
        Command::Import(args) => import::import(args),
        Command::Export(args) => export::export(args),
        Command::Migrate { database } => {
            if !database.exists() {
                anyhow::bail!("{} does not exist", database.display());
            }
            StoreWriter::open(&database, dd_store::EncodeOptions::STANDARD)?;
            println!("{}: schema version {}", database.display(), dd_store::sqlite::SCHEMA_VERSION);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What happens to a database while it is served.
pub(crate) enum Served {
    /// Nothing writes to it: a finished database is opened `immutable`, and one state serves the
    /// whole run (`serve`).
    Unchanging,
    /// The function writes to it while it is served (`demo`): the database is never opened
    /// `immutable`, and the function runs on its own thread once the server listens, with the
    /// handle that shows visitors its progress (`set_notice`) and what it wrote (`reload`).
    Growing(Box<dyn FnOnce(ReloadHandle) -> anyhow::Result<()> + Send>),
}

/// Serves `args.database`; `opened` is the model `args.model` names when the caller has it open
/// already (`demo`), so it is not loaded twice.
pub(crate) fn serve(args: ServeArgs, opened: Option<OpenedModel>, served: Served) -> anyhow::Result<ExitCode> {
    // Two per core keeps both cores busy while one request waits on IO; more only adds context
    // switches (measured: 4 connections on 2 cores served 15% more requests than 16).
    let n_connections = match args.connections {
        Some(n) => usize::from(n),
        None => 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let read_config = match served {
        Served::Unchanging => ReadConfig { n_connections, ..ReadConfig::serving() },
        Served::Growing(_) => ReadConfig { n_connections, ..ReadConfig::serving_while_written() },
    };
    let store = SqliteStore::open(&args.database, &read_config)?;
    let server_config = ServerConfig {
        request_timeout: Duration::from_millis(args.timeout_ms),
        max_concurrent_reads: n_connections,
        ..ServerConfig::standard()
    };
    let mut state = AppState::load(Arc::new(store), server_config)?;
    let opened = match (opened, &args.model) {
        (Some(opened), _) => Some(opened),
        (None, Some(reference)) => Some(crate::recording::open_model(reference)?),
        (None, None) => None,
    };
    if let Some(opened) = opened {
        let model_name = match &args.model_name {
            Some(name) => name.clone(),
            None => match state.model_names().as_slice() {
                [only] => only.clone(),
                // `record` gave these weights this name unless told otherwise.
                names if names.contains(&opened.default_name) => opened.default_name.clone(),
                names => anyhow::bail!(
                    "{} holds {} models ({}), none named {}; say which one --model is with --model-name",
                    args.database.display(),
                    names.len(),
                    names.join(", "),
                    opened.default_name
                ),
            },
        };
        let limits = LiveLimits { max_tokens: args.max_live_tokens as usize, ..LiveLimits::standard() };
        let live = LiveModel::new(opened.transformer, opened.tokenizer, limits);
        state = state.with_live_model(&model_name, live)?;
        tracing::info!(model = %model_name, "visitors can run their own text");
    }
    if let Some(dir) = &args.embedder {
        let encoder = dd_model::SentenceEncoder::load(dir)
            .with_context(|| format!("loading the sentence encoder in {}", dir.display()))?;
        tracing::info!(encoder = encoder.model_name(), "visitors can search explanations by meaning");
        state = state.with_query_encoder(Arc::new(encoder));
    }
    let state = Arc::new(state);
    state.warm_search_indexes();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        // Before anyone can learn the address: a SIGTERM from then on shuts down gracefully.
        let shutdown = shutdown_signal();
        let listener =
            tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("binding {}", args.addr))?;
        let addr: SocketAddr = listener.local_addr()?;
        // Tests and scripts read this line to find an ephemeral port.
        println!("listening on http://{addr}");
        eprintln!("website: http://{addr}/   API: http://{addr}/api   API docs: http://{addr}/doc");
        tracing::info!(%addr, database = %args.database.display(), "serving");
        match served {
            Served::Unchanging => dd_server::serve(listener, dd_server::app(state), shutdown).await,
            Served::Growing(add) => {
                let (app, handle) = dd_server::reloadable_app(state);
                add_while_serving(add, handle)?;
                dd_server::serve(listener, app, shutdown).await
            }
        }
        .context("serving")?;
        tracing::info!("shut down cleanly");
        Ok(ExitCode::SUCCESS)
    })
}

/// Starts `add` on its own thread: it blocks (SQLite writes, model runs), and the server answers
/// meanwhile. Its failure is logged; the server keeps serving what was written.
fn add_while_serving(
    add: Box<dyn FnOnce(ReloadHandle) -> anyhow::Result<()> + Send>,
    handle: ReloadHandle,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("add-while-serving".into())
        .spawn(move || {
            if let Err(error) = add(handle.clone()) {
                tracing::error!(error = %error_message(&error), "adding to the served database");
                handle.set_notice(None);
            }
        })
        .context("starting the thread that adds to the served database")?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: the server polls it on a task of its own, and a SIGTERM that came before
/// that task ran would otherwise kill the process instead of shutting it down (seen under load).
/// Call it inside the runtime.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|error| tracing::error!(%error, "cannot listen for {name}")).ok()
        };
        (install(SignalKind::interrupt(), "SIGINT"), install(SignalKind::terminate(), "SIGTERM"))
    };
    async move {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = handlers;
            let interrupt = async {
                match interrupt.as_mut() {
                    Some(signal) => drop(signal.recv().await),
                    None => std::future::pending::<()>().await,
                }
            };
            let terminate = async {
                match terminate.as_mut() {
                    Some(signal) => drop(signal.recv().await),
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = interrupt => {},
                () = terminate => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}

/// Writes to stdout; a closed pipe (`deepdecipher info | head`) ends the output quietly.
fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

fn info(database: &Path) -> anyhow::Result<ExitCode> {
    use std::fmt::Write;
    let store = SqliteStore::open(
        database,
        &ReadConfig { n_connections: 1, cache_kib: 8 * 1024, mmap_bytes: 0, immutable: false },
    )?;
    let file_bytes = std::fs::metadata(database).map(|m| m.len()).unwrap_or(0);
    let mut out = String::new();
    writeln!(out, "{}: {} model(s), {}", database.display(), store.catalog().models().len(), human_bytes(file_bytes))?;
    for model in store.catalog().models() {
        let m = &model.metadata;
        writeln!(out)?;
        writeln!(out, "{}  ({}, {} activation)", m.name, m.architecture, m.activation_function)?;
        writeln!(out, "  layers × neurons   {} × {} = {} neurons", m.n_layers, m.d_mlp, m.n_neurons())?;
        writeln!(out, "  d_model            {}", m.d_model)?;
        writeln!(out, "  parameters         {}", m.n_parameters)?;
        writeln!(out, "  context length     {}", m.context_length)?;
        writeln!(out, "  recorded on        {}", m.dataset)?;
        if let Some(training_dataset) = &m.training_dataset {
            writeln!(out, "  trained on         {training_dataset}")?;
        }
        writeln!(out, "  data source        {}", m.provenance.data_source)?;
        if let Some(weights) = &m.provenance.weights {
            writeln!(out, "  weights            {weights}")?;
        }
        if let Some(model_source) = &m.provenance.model_source {
            writeln!(out, "  weights from       {model_source}")?;
        }
        writeln!(out, "  tokens recorded    {}", m.provenance.tokens_recorded)?;
        writeln!(
            out,
            "  written by         deepdecipher {} at {}",
            m.provenance.tool_version, m.provenance.recorded_at
        )?;
        let sources: Vec<String> = model
            .sources
            .iter()
            .map(|s| format!("{} ({} × {})", s.info.name, s.info.n_layers, s.info.units_per_layer))
            .collect();
        writeln!(out, "  sources            {}", sources.join(", "))?;
        let usage = store.usage(model.id)?;
        // As wide as the longest kind name present, so new kinds never break the columns.
        let kind_width = usage.iter().map(|u| u.kind.len()).max().unwrap_or(0).max(14);
        writeln!(
            out,
            "  {:<8} {:<kind_width$} {:>10} {:>12} {:>10}",
            "level", "kind", "records", "bytes", "per record"
        )?;
        for usage in &usage {
            writeln!(
                out,
                "  {:<8} {:<kind_width$} {:>10} {:>12} {:>10}",
                usage.level,
                usage.kind,
                usage.n_records,
                human_bytes(usage.n_bytes),
                human_bytes(usage.n_bytes / usage.n_records.max(1))
            )?;
        }
        let neuron_bytes: u64 = usage.iter().filter(|u| u.level == "neuron").map(|u| u.n_bytes).sum();
        writeln!(out, "  neuron data per neuron: {}", human_bytes(neuron_bytes / m.n_neurons().max(1)))?;
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn check(database: &Path) -> anyhow::Result<ExitCode> {
    let bar = progress_bar("checking", "blobs");
    let report = dd_store::check(database, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    for message in report.integrity_errors.iter().chain(&report.foreign_key_errors).chain(&report.blob_errors) {
        println!("problem: {message}");
    }
    if report.is_ok() {
        println!("{}: ok ({} blobs decoded)", database.display(), report.n_blobs);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{}: {} integrity, {} foreign-key and {} blob problem(s)",
            database.display(),
            report.integrity_errors.len(),
            report.foreign_key_errors.len(),
            report.n_blob_errors
        );
        Ok(ExitCode::from(1))
    }
}

fn synth(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let config = dd_synth::SynthConfig {
        model_name: args.name,
        n_layers: args.layers,
        d_mlp: args.neurons,
        n_examples: args.examples,
        n_bottom_examples: args.bottom_examples,
        n_tokens: args.tokens,
        vocab_size: args.vocab,
        seed: args.seed,
        replace: args.replace,
        n_threads: args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    let bar = progress_bar("synthesizing", "neurons");
    let started = std::time::Instant::now();
    let summary = dd_synth::synthesize(&args.database, &config, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let file_bytes = std::fs::metadata(&args.database).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} neurons ({} records) of {} to {} in {:.1} s; file is {}",
        summary.n_neurons,
        summary.n_records,
        config.model_name,
        args.database.display(),
        started.elapsed().as_secs_f64(),
        human_bytes(file_bytes)
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn progress_bar(verb: &'static str, unit: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let template = format!("{verb} {{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
