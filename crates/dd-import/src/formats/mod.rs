//! One importer per published format, and [`importer_for`]: the importer a format name and the
//! user's options call for (the CLI and the Python package only translate arguments into these).

pub mod openai;

use crate::error::ImportError;
use crate::fetch::DatasetLocation;
use crate::job::Importer;
use openai::{OpenAiImporter, OpenAiModel, OpenAiPart};

/// The formats `deepdecipher import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI's automated-interpretability per-neuron files.
    OpenAi,
}

impl Format {
    /// Every format.
    pub const ALL: &'static [Format] = &[Format::OpenAi];

    /// The format's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
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
        }
    }
}

/// What a user may say about a dataset beyond its location.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormatOptions {
    /// The model the dataset describes, when the format cannot tell (`gpt2-xl` for OpenAI's).
    pub dataset_model: Option<String>,
    /// Which parts of a dataset with several (OpenAI's: `activations`, `explanations`,
    /// `related-tokens`, `related-neurons`); empty for all.
    pub parts: Vec<String>,
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
