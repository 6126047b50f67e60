//! One importer per published format.

pub mod openai;
