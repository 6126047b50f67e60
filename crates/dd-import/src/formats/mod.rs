//! One importer per published format.

pub mod neuronpedia;
mod neuronpedia_mapping;
pub mod saedashboard;
