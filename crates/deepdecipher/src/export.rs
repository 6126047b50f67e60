//! `export`: one model of a database as a jsonl.gz or Parquet file (`dd-export`), with a progress
//! bar. The file is written beside its final name and renamed when complete, so a failed or
//! interrupted export never leaves a file that looks whole.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use dd_export::{ExportFormat, ExportOptions, export_model, parse_kinds};
use dd_store::{ReadConfig, SqliteStore, StoreLocation, model_name_in};

use crate::{human_bytes, progress_bar};

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The database file.
    #[arg(default_value = "data.db")]
    pub(crate) database: PathBuf,
    /// The model to export (default: the database's only model).
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// `parquet` or `jsonl.gz` (default: from the output file's extension).
    #[arg(long)]
    pub(crate) format: Option<String>,
    /// Only these kinds, comma-separated (`examples,stats`); the metadata row is always written.
    #[arg(long)]
    pub(crate) kinds: Option<String>,
    /// Only these layers' records, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) layers: Option<Vec<u32>>,
    /// The file to write.
    #[arg(short = 'o', long)]
    pub(crate) output: PathBuf,
}

pub(crate) fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let file_name = args.output.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let format = match &args.format {
        Some(name) => ExportFormat::parse(name)?,
        None => ExportFormat::from_file_name(&file_name).with_context(|| {
            format!("cannot tell the format from {file_name:?}: give --format parquet or --format jsonl.gz")
        })?,
    };
    let kinds = args.kinds.as_deref().map(parse_kinds).transpose()?;
    anyhow::ensure!(args.database.is_file(), "no database at {}", args.database.display());
    let location = StoreLocation::SqliteFile(args.database.clone());
    let model = model_name_in(&location, args.model.as_deref(), None)?;
    let store = SqliteStore::open(
        &args.database,
        &ReadConfig { n_connections: 1, cache_kib: 8 * 1024, mmap_bytes: 0, immutable: false },
    )?;
    let options = ExportOptions { format, kinds, layers: args.layers };
    let partial = args.output.with_file_name(format!(".{file_name}.partial"));
    let file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let bar = progress_bar("exporting", "records");
    let outcome = export_model(&store, &model, &options, std::io::BufWriter::new(file), &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let written = outcome.map_err(anyhow::Error::from).and_then(|(summary, mut out)| {
        out.flush()?;
        out.into_inner().map_err(|error| error.into_error())?.sync_all()?;
        Ok(summary)
    });
    let summary = match written {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error.context(format!("exporting {model} to {}", args.output.display())));
        }
    };
    std::fs::rename(&partial, &args.output).with_context(|| format!("renaming to {}", args.output.display()))?;
    let file_bytes = std::fs::metadata(&args.output).map(|m| m.len()).unwrap_or(0);
    println!(
        "exported {} rows of {model} ({} of stored records) to {} as {}; file is {}",
        summary.rows,
        human_bytes(summary.blob_bytes),
        args.output.display(),
        format.name(),
        human_bytes(file_bytes)
    );
    Ok(ExitCode::SUCCESS)
}
