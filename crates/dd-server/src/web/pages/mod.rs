//! One function per page type, each turning store records into a [`Page`].

mod layer;
mod model;
mod neuron;
mod search;

use std::collections::HashMap;

use dd_data::NeuronIndex;

use super::html::{count, escape, number};
use super::layout::Page;
use super::live::LiveResult;
use super::{PageContext, PageError, View};
use crate::api::clip;
use crate::error::ApiError;
use crate::state::{AppState, ModelContext};

pub(crate) use search::jump_target;

/// Rows per page of ranked lists.
const PAGE_SIZE: usize = 100;

/// The page for `view` (never [`View::Random`], which redirects).
pub(crate) fn render(context: &PageContext<'_>, view: View, live: Option<&LiveResult>) -> Result<Page, PageError> {
    match view {
        View::Model | View::Random => model::page(context, live),
        View::Layer(layer) => layer::page(context, layer),
        View::Neuron(layer, neuron) => neuron::page(context, layer, neuron, live),
        View::Search => search::page(context),
    }
}

/// The home page: every model with its shape and data.
pub(crate) fn home(state: &AppState) -> Page {
    let mut models: Vec<_> = state.models.values().collect();
    models.sort_by(|a, b| a.entry.metadata.name.cmp(&b.entry.metadata.name));
    let mut body = String::from("<h1>Models</h1>");
    if models.is_empty() {
        body.push_str("<p>This database holds no models yet. Record one with <code>deepdecipher record</code>.</p>");
    } else {
        body.push_str(
            "<table id=models><thead><tr><th>Model</th><th>Activation</th><th>Dataset</th><th class=num>Layers</th>\
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
                Some(source) => model.services(source).iter().map(|s| s.name()).filter(|s| *s != "metadata").collect(),
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

/// Appends a link to a neuron, labelled `layer/neuron`.
pub(crate) fn neuron_link(out: &mut String, context: &PageContext<'_>, neuron: NeuronIndex) {
    out.push_str("<a href=\"");
    escape(out, &context.href(&format!("/{}/{}", neuron.layer, neuron.index)));
    out.push_str("\">");
    out.push_str(itoa::Buffer::new().format(neuron.layer));
    out.push('/');
    out.push_str(itoa::Buffer::new().format(neuron.index));
    out.push_str("</a>");
}

/// The 1-based page number in `?page=`; a malformed one is a 400.
pub(crate) fn page_number(params: &HashMap<String, String>) -> Result<usize, ApiError> {
    match params.get("page") {
        None => Ok(1),
        Some(text) => match text.parse::<usize>() {
            Ok(page) if (1..=1_000_000).contains(&page) => Ok(page),
            _ => Err(ApiError::bad_parameter(format!("page must be a positive integer, got {:?}", clip(text)))),
        },
    }
}

/// The first row of page `page` of `n_rows`; a page past the end is a 404.
pub(crate) fn page_start(page: usize, n_rows: usize) -> Result<usize, ApiError> {
    let start = (page - 1).saturating_mul(PAGE_SIZE);
    if page > 1 && start >= n_rows {
        return Err(ApiError::not_found(
            "out_of_range",
            format!("page {page} is past the end: there are {} pages", n_rows.div_ceil(PAGE_SIZE).max(1)),
        ));
    }
    Ok(start)
}

/// Appends previous/next links for page `page` of `n_rows` rows, keeping the other query parameters.
pub(crate) fn pager(out: &mut String, context: &PageContext<'_>, base_href: &str, page: usize, n_rows: usize) {
    let n_pages = n_rows.div_ceil(PAGE_SIZE).max(1);
    if n_pages == 1 {
        return;
    }
    let href = |target: usize| {
        let mut params: Vec<(&str, String)> =
            context.params.iter().filter(|(k, _)| *k != "page").map(|(k, v)| (k.as_str(), v.clone())).collect();
        params.sort();
        params.push(("page", target.to_string()));
        let query: Vec<String> =
            params.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
        format!("{base_href}?{}", query.join("&"))
    };
    out.push_str("<nav class=pager aria-label=Pages>");
    if page > 1 {
        out.push_str("<a class=button rel=prev href=\"");
        escape(out, &href(page - 1));
        out.push_str("\">← previous</a>");
    }
    out.push_str("<span>page ");
    out.push_str(itoa::Buffer::new().format(page));
    out.push_str(" of ");
    out.push_str(itoa::Buffer::new().format(n_pages));
    out.push_str("</span>");
    if page < n_pages {
        out.push_str("<a class=button rel=next href=\"");
        escape(out, &href(page + 1));
        out.push_str("\">next →</a>");
    }
    out.push_str("</nav>");
}

/// Percent-encodes everything but unreserved characters, for query values.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Appends a `<td class=num>` with a short number.
pub(crate) fn number_cell(out: &mut String, value: f64) {
    out.push_str("<td class=num>");
    // NaN marks a value that was not recorded (an unranked neuron): the cell stays empty.
    if !value.is_nan() {
        number(out, value, 3);
    }
    out.push_str("</td>");
}

/// The form for a visitor's text, shown when the server runs the model.
pub(crate) fn live_text_form(
    out: &mut String,
    context: &PageContext<'_>,
    action: &str,
    text: Option<&str>,
    what: &str,
) {
    let Some(live) = context.state.live.get(context.model_name()) else { return };
    out.push_str("<h2 id=try>Try your own text</h2><form method=post action=\"");
    escape(out, action);
    out.push_str("#try\"><label for=text class=muted>");
    escape(out, what);
    out.push_str(" (at most ");
    out.push_str(itoa::Buffer::new().format(live.limits().max_tokens));
    out.push_str(" tokens)</label><textarea id=text name=text required maxlength=");
    // `maxlength` counts UTF-16 units, not bytes: a first guard; the server checks the bytes.
    out.push_str(itoa::Buffer::new().format(super::MAX_TEXT_BYTES));
    out.push('>');
    if let Some(text) = text {
        escape(out, text);
    }
    out.push_str("</textarea><div class=toolbar><button type=submit id=run>Run</button></div></form>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_past_the_end_are_not_found() {
        assert_eq!(page_start(1, 0).expect("the first page always exists"), 0);
        assert_eq!(page_start(2, 101).expect("page 2"), PAGE_SIZE);
        assert_eq!(page_start(2, 100).expect_err("past the end").status(), 404);
        assert_eq!(page_start(1_000_000, 5).expect_err("far past").status(), 404);
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(percent_encode("safe-_.~09"), "safe-_.~09");
    }
}
