//! One importer per published format, and [`importer_for`]: the importer a format name and the
//! user's options call for (the CLI and the Python package only translate arguments into these).

pub mod deepdecipher;
pub mod neuronpedia;
mod neuronpedia_mapping;
pub mod neuroscope;
pub mod openai;
pub mod original_api;
pub mod original_db;
pub mod saedashboard;

use std::path::PathBuf;

use crate::error::ImportError;
use crate::fetch::{DatasetLocation, FetchConfig, Fetcher};
use crate::job::Importer;
use deepdecipher::{DeepDecipherImporter, split_export_source};
use neuronpedia::{NeuronpediaConfig, NeuronpediaImporter};
use neuroscope::NeuroscopeImporter;
use openai::{OpenAiImporter, OpenAiModel, OpenAiPart};
use original_api::OriginalApiImporter;
use original_db::OriginalDbImporter;
use saedashboard::{SaeDashboardConfig, SaeDashboardImporter};

/// The formats `deepdecipher import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI's automated-interpretability per-neuron files.
    OpenAi,
    /// A Neuronpedia export (`v1/{model}/{source}/`).
    Neuronpedia,
    /// SAEDashboard's Neuronpedia-runner batches.
    SaeDashboard,
    /// Neuroscope's site (`index.html`, `{model}/{layer}/{neuron}.html`).
    Neuroscope,
    /// The original DeepDecipher's `data.db`.
    OriginalDb,
    /// A running original DeepDecipher server's API.
    OriginalApi,
    /// DeepDecipher's own export (`deepdecipher export`: Parquet or jsonl.gz).
    Export,
}

impl Format {
    /// Every format.
    pub const ALL: &'static [Format] = &[
        Format::OpenAi,
        Format::Neuroscope,
        Format::Neuronpedia,
        Format::SaeDashboard,
        Format::OriginalDb,
        Format::OriginalApi,
        Format::Export,
    ];

    /// The format's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
            Format::Neuronpedia => "neuronpedia",
            Format::SaeDashboard => "saedashboard",
            Format::Neuroscope => "neuroscope",
            Format::OriginalDb => "deepdecipher-db",
            Format::OriginalApi => "deepdecipher-api",
            Format::Export => "deepdecipher",
        }
    }

    /// The format called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|format| format.name() == name)
    }

    /// What the format is, for help texts.
    pub fn describe(self) -> &'static str {
        match self {
            Format::OpenAi => {
                "OpenAI automated-interpretability (`{part}/{layer}/{neuron}.json(l)`, GPT-2 small and XL)"
            }
            Format::Neuronpedia => {
                "Neuronpedia export of one source (`model.jsonl`, `{features,explanations,activations}/batch-N.jsonl.gz`)"
            }
            Format::SaeDashboard => "SAEDashboard's Neuronpedia batches (`batch-N.json`, `skipped_indexes.json`)",
            Format::Neuroscope => "Neuroscope's pages (`index.html`, `{model}/{layer}/{neuron}.html`)",
            Format::OriginalDb => "the original DeepDecipher's data.db (a local file, or a folder holding one)",
            Format::OriginalApi => "a running original DeepDecipher server (`/api/...`), to mirror one model",
            Format::Export => "DeepDecipher's own export (a .parquet or .jsonl.gz file, or its URL)",
        }
    }
}

/// What a user may say about a dataset beyond its location.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormatOptions {
    /// The model the dataset describes, when the format cannot tell (`gpt2-xl` for OpenAI's) or
    /// the site has several (Neuroscope, the original's API).
    pub dataset_model: Option<String>,
    /// Which parts of a dataset with several (OpenAI's: `activations`, `explanations`,
    /// `related-tokens`, `related-neurons`); empty for all.
    pub parts: Vec<String>,
    /// How many batch files a batched dataset has; `None`: probe for them.
    pub batches: Option<u32>,
    /// Units per layer (an SAE's width), when the dataset does not say.
    pub units_per_layer: Option<u64>,
    /// The dataset's units are MLP neurons (they go into the `mlp` source, not one named after the set).
    pub mlp_neurons: bool,
    /// Which source of a dataset with several (our export's); `None`: `mlp`.
    pub source: Option<String>,
    /// Where a dataset that must be local (the original's SQLite database) is downloaded to when
    /// given as a URL; `None`: the system's temporary directory.
    pub download_dir: Option<PathBuf>,
    /// How hard to use the server such a download comes from.
    pub fetch: FetchConfig,
}

/// Where the dataset `source` (a path or URL as the user gave it) lives for `format`, and its
/// importer: a file-shaped dataset (our export) lives in the folder or URL above its file.
pub fn prepare(
    format: Format,
    source: &str,
    options: &FormatOptions,
) -> Result<(DatasetLocation, Box<dyn Importer>), ImportError> {
    if format == Format::OriginalDb
        && let DatasetLocation::Http(url) = DatasetLocation::parse(source)
    {
        let local = download_original_db(&url, options)?;
        return Ok((local.clone(), Box::new(OriginalDbImporter::open(&local)?)));
    }
    if format == Format::Export {
        let (location, file) = split_export_source(source)?;
        let unit_source = options.source.as_deref().unwrap_or(dd_data::MLP_SOURCE);
        return Ok((location, Box::new(DeepDecipherImporter::new(&file, unit_source))));
    }
    let location = DatasetLocation::parse(source);
    let importer = importer_for(format, &location, options)?;
    Ok((location, importer))
}

/// The importer of `format` for the dataset at `location`.
pub fn importer_for(
    format: Format,
    location: &DatasetLocation,
    options: &FormatOptions,
) -> Result<Box<dyn Importer>, ImportError> {
    match format {
        Format::OpenAi => {
            let model = openai_model(location, options)?;
            let parts = if options.parts.is_empty() {
                OpenAiPart::ALL.to_vec()
            } else {
                options
                    .parts
                    .iter()
                    .map(|name| {
                        OpenAiPart::from_name(name).ok_or_else(|| {
                            let known: Vec<&str> = OpenAiPart::ALL.iter().map(|part| part.name()).collect();
                            ImportError::Invalid(format!(
                                "unknown part {name:?} of the OpenAI dataset; known: {}",
                                known.join(", ")
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            };
            Ok(Box::new(OpenAiImporter::new(model, &parts)))
        }
        Format::Neuronpedia => Ok(Box::new(NeuronpediaImporter::new(NeuronpediaConfig {
            batches: options.batches,
            mlp_neurons: options.mlp_neurons,
        }))),
        Format::SaeDashboard => Ok(Box::new(SaeDashboardImporter::new(SaeDashboardConfig {
            batches: options.batches,
            units_per_layer: options.units_per_layer,
            mlp_neurons: options.mlp_neurons,
        }))),
        Format::Neuroscope => Ok(Box::new(NeuroscopeImporter::new(options.dataset_model.as_deref()))),
        Format::OriginalDb => Ok(Box::new(OriginalDbImporter::open(location)?)),
        Format::OriginalApi => Ok(Box::new(OriginalApiImporter::new(options.dataset_model.as_deref()))),
        Format::Export => Err(ImportError::Invalid(
            "an export is a file: use formats::prepare, which finds the folder or URL it lives in".to_owned(),
        )),
    }
}

/// GPT-2 small or XL: as the user says, else from the publisher's directory name (`data` is XL,
/// `gpt2_small_data` small).
fn openai_model(location: &DatasetLocation, options: &FormatOptions) -> Result<OpenAiModel, ImportError> {
    if let Some(name) = &options.dataset_model {
        return OpenAiModel::from_name(name).ok_or_else(|| {
            ImportError::Invalid(format!("OpenAI published data for gpt2-small and gpt2-xl, not {name:?}"))
        });
    }
    let last = match location {
        DatasetLocation::Directory(path) => path.file_name().and_then(|name| name.to_str()).map(str::to_owned),
        DatasetLocation::Http(url) => url.rsplit('/').next().map(str::to_owned),
    };
    last.as_deref().and_then(OpenAiModel::from_name).ok_or_else(|| {
        ImportError::Invalid(
            "say which model the OpenAI dataset describes (--dataset-model gpt2-small or gpt2-xl): the location does not end in `data` or `gpt2_small_data`"
                .to_owned(),
        )
    })
}

/// The original's database at `url` (the file, or a folder URL holding `data.db`), downloaded
/// once into the download directory under a name made from the URL, and kept: a rerun (to resume
/// the import) reads the same file.
fn download_original_db(url: &str, options: &FormatOptions) -> Result<DatasetLocation, ImportError> {
    let url = url.trim_end_matches('/');
    let (base, file) = match url.rsplit_once('/') {
        Some((base, file))
            if file.ends_with(".db") && base.contains("://") && !base.ends_with(':') && !base.ends_with('/') =>
        {
            (base.to_owned(), file.to_owned())
        }
        _ => (url.to_owned(), original_db::DATABASE_FILE.to_owned()),
    };
    let directory = options.download_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&directory)
        .map_err(|error| ImportError::Dataset(format!("{}: {error}", directory.display())))?;
    // FNV-1a of the URL: the same URL finds its download again, another gets its own file.
    let hash = url
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    let destination = directory.join(format!("original-deepdecipher-{hash:016x}.db"));
    if !destination.is_file() {
        // The time limit is for one request from connecting to its last byte: a database of
        // gigabytes needs hours, not the minute a dataset's small files get.
        let fetch = FetchConfig {
            timeout: options.fetch.timeout.max(std::time::Duration::from_secs(6 * 3600)),
            ..options.fetch.clone()
        };
        let fetcher = Fetcher::new(DatasetLocation::Http(base), fetch);
        tracing::info!(url = %crate::fetch::DatasetLocation::Http(url.to_owned()).describe(), to = %destination.display(), "downloading the original's database");
        match fetcher.download(&file, &destination) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(ImportError::Dataset(format!(
                    "{}: no such file",
                    DatasetLocation::Http(url.to_owned()).describe()
                )));
            }
            Err(error) => return Err(ImportError::Dataset(format!("downloading the original's database: {error}"))),
        }
    }
    Ok(DatasetLocation::Directory(destination))
}
