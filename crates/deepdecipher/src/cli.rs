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
    /// Upgrade a database's schema to this version's.
    Migrate {
        /// The database file.
        database: PathBuf,
    },
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
