//! The package's one exception class and the conversion of every library error into it, with the
//! message the CLI prints (the error and its causes).

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(
    _deepdecipher,
    DeepDecipherError,
    PyException,
    "Every error the package raises: unknown models and neurons, unreadable files, failed requests."
);

/// An error as a `DeepDecipherError` whose message is the error and its causes, as the CLI gives them.
pub(crate) fn py_error(error: &dyn std::error::Error) -> PyErr {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    DeepDecipherError::new_err(message)
}

/// A `DeepDecipherError` with `message`.
pub(crate) fn py_message(message: impl Into<String>) -> PyErr {
    DeepDecipherError::new_err(message.into())
}
