//! One importer per published format.
