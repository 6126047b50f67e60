//! The home page: every served model with its shape and data.

use super::super::layout::Page;
use crate::html::{count, escape};
use crate::services::Service;
use crate::state::AppState;

/// The home page: every model with its shape and data.
pub(crate) fn page(state: &AppState) -> Page {
    let mut models: Vec<_> = state.models.values().collect();
    models.sort_by(|a, b| a.entry.metadata.name.cmp(&b.entry.metadata.name));
    let mut body = String::from("<h1>Models</h1>");
    if models.is_empty() {
        body.push_str("<p>This database holds no models yet. Record one with <code>deepdecipher record</code>.</p>");
    } else {
        body.push_str(
            "<table id=models><thead><tr><th>Model</th><th>Activation</th><th title=\"The text the data was recorded on\">Recorded on</th><th class=num>Layers</th>\
             <th class=num>Neurons per layer</th><th class=num>Total neurons</th><th class=num>Parameters</th>\
             <th>Data</th></tr></thead><tbody>",
        );
        for model in models {
            let metadata = &model.entry.metadata;
            body.push_str("<tr><td><a href=\"/viz/");
            escape(&mut body, &metadata.name);
            body.push_str("\">");
            escape(&mut body, &metadata.name);
            body.push_str("</a></td><td>");
            escape(&mut body, &metadata.activation_function);
            body.push_str("</td><td>");
            escape(&mut body, &metadata.dataset);
            body.push_str("</td><td class=num>");
            count(&mut body, metadata.n_layers);
            body.push_str("</td><td class=num>");
            count(&mut body, metadata.d_mlp);
            body.push_str("</td><td class=num>");
            count(&mut body, metadata.n_neurons());
            body.push_str("</td><td class=num>");
            count(&mut body, metadata.n_parameters);
            body.push_str("</td><td>");
            let services: Vec<&str> = match model.source(None) {
                Some(source) => Service::with_data(&model.entry, source)
                    .iter()
                    .map(|s| s.name())
                    .filter(|s| *s != "metadata")
                    .collect(),
                None => Vec::new(),
            };
            escape(&mut body, &services.join(", "));
            if state.live.contains_key(&metadata.name) {
                body.push_str(" <span class=badge>try your own text</span>");
            }
            body.push_str("</td></tr>");
        }
        body.push_str("</tbody></table>");
    }
    body.push_str(
        "<h2>What the data means</h2><dl><dt>Examples</dt><dd>The texts on which a neuron's activation is highest \
         (and lowest, and in bands between), every token coloured by its activation.</dd><dt>Statistics</dt><dd>\
         Mean, spread, skew and tails of all recorded activations, and the share of tokens on which the neuron is \
         active (density).</dd><dt>Logits and input tokens</dt><dd>Read from the weights alone: the tokens a neuron \
         pushes the output towards and away from, and the tokens that drive it directly.</dd><dt>Neuron2Graph</dt>\
         <dd>A graph of the token patterns that make a neuron fire, searchable by token.</dd><dt>Explanations</dt>\
         <dd>Natural-language descriptions, with how well they predict the neuron.</dd></dl>",
    );
    let mut page = Page::new("Models", body);
    page.json_href = Some("/api".into());
    page
}
