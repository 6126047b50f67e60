//! One file per page type, each turning store records into a [`Page`] (`explanations` is the neuron
//! page's explanations section, `meaning` the search by meaning, `relations` the neuron page's
//! relations and the pages of groups, roles and changes); `parts` holds what several share.

mod explanations;
mod home;
mod layer;
mod meaning;
mod model;
mod neuron;
mod parts;
mod relations;
mod search;

use std::collections::HashMap;

use super::layout::Page;
use super::view::{PageContext, PageError, View};
use crate::live::LiveResult;
use crate::model_context::ModelContext;

pub(crate) use home::page as home;
pub(crate) use parts::{page_number, score_badge};
pub(crate) use search::jump_target;

/// The page for `view` (never [`View::Random`], which redirects).
pub(crate) fn render(context: &PageContext<'_>, view: View, live: Option<&LiveResult>) -> Result<Page, PageError> {
    match view {
        View::Model | View::Random => model::page(context, live),
        View::Layer(layer) => layer::page(context, layer),
        View::Neuron(layer, neuron) => neuron::page(context, layer, neuron, live),
        View::Search => search::page(context),
        View::ExplanationSearch => meaning::page(context),
        View::Groups => relations::groups_page(context),
        View::Group(layer, index) => relations::group_page(context, dd_data::NeuronIndex { layer, index }),
        View::Roles => relations::roles_page(context),
        View::Changes => relations::changes_page(context),
        View::Comparison(layer, index) => relations::comparison_page(context, dd_data::NeuronIndex { layer, index }),
    }
}

/// Where the random-neuron link goes: `?layer=` keeps it in one layer.
pub(crate) fn random_neuron_href(model: &ModelContext, params: &HashMap<String, String>) -> String {
    let name = &model.entry.metadata.name;
    let Some(source) = model.source(None) else { return format!("/viz/{name}") };
    let (n_layers, n_neurons) = (source.info.n_layers.max(1), source.info.units_per_layer.max(1));
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let random = split_mix(seed);
    let layer = params.get("layer").and_then(|l| l.parse::<u64>().ok()).filter(|l| *l < n_layers);
    let layer = layer.unwrap_or(random % n_layers);
    let neuron = split_mix(random) % n_neurons;
    format!("/viz/{name}/{layer}/{neuron}")
}

/// SplitMix64: enough randomness for picking a neuron, without a dependency.
fn split_mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
