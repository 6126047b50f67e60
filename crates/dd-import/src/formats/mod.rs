//! One importer per published format.
pub mod deepdecipher;
