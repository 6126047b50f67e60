//! The crate's error type: every variant names the file, tensor or input that was wrong.

use std::path::PathBuf;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Nothing at the path looks like a model we can load.
    #[error("{}: {reason}", path.display())]
    UnknownFormat {
        /// The file or directory.
        path: PathBuf,
        /// What was looked for and not found.
        reason: String,
    },
    /// A configuration (config.json or GGUF metadata) is missing a field or has a bad value.
    #[error("{}: {message}", path.display())]
    Config {
        /// The configuration's file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The model uses a feature this runtime does not implement.
    #[error("{}: unsupported model: {what}", path.display())]
    Unsupported {
        /// The configuration's file.
        path: PathBuf,
        /// The feature.
        what: String,
    },
    /// A weight file could not be parsed.
    #[error("{}: unreadable weights: {source}", path.display())]
    WeightFile {
        /// The weight file.
        path: PathBuf,
        /// The parser's error.
        source: candle_core::Error,
    },
    /// A tensor the architecture needs is not in the weight file.
    #[error("{}: missing tensor `{name}`", path.display())]
    MissingTensor {
        /// The weight file.
        path: PathBuf,
        /// The tensor's name in the file's naming scheme.
        name: String,
    },
    /// A tensor has a shape that does not fit the configuration.
    #[error("{}: tensor `{name}` has shape {found:?}, expected {expected:?}", path.display())]
    TensorShape {
        /// The weight file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tokenizer could not be built or used.
    #[error("{}: tokenizer: {message}", path.display())]
    Tokenizer {
        /// Where the tokenizer came from.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The caller's input does not fit the model (token id, length, layer).
    #[error("invalid input: {0}")]
    Input(String),
    /// A tensor operation failed; this is a bug in this crate, not in the caller's input.
    #[error("tensor computation failed: {0}")]
    Compute(#[from] candle_core::Error),
}

impl ModelError {
    /// An IO error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// A configuration error on `path`.
    pub(crate) fn config(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Config { path: path.into(), message: message.into() }
    }
}
