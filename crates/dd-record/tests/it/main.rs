//! Integration tests of the recorder, and of fetching models by hub id against the fake hub of
//! `dd-hub`'s tests.
mod byte_tokenizer;
mod dataset;
/// The fake hub of `dd-hub`'s tests, shared so both crates test against the same server.
#[path = "../../../dd-hub/tests/hub/server.rs"]
#[allow(dead_code)]
mod fake_hub;
mod hub;
mod record;

use std::path::{Path, PathBuf};

/// The committed model fixture `name` of `dd-model`'s tests.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dd-model/tests/fixtures").join(name)
}
