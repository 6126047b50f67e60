//! One importer per published format.
pub mod neuroscope;
pub mod original_api;
