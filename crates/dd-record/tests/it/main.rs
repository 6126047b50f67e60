//! Integration tests of the recorder.
mod dataset;
mod record;
