//! The model page: metadata, layers, the most interesting neurons, search, jump, random, and the visitor's text.

use dd_data::{LayerDataKind, LayerRecord, ModelDataKind, ModelRecord};

use super::super::layout::Page;
use super::super::view::{PageContext, PageError};
use super::parts::{
    PAGE_SIZE, live_text_form, meaning_search_available, neuron_link, number_cell, page_number, page_start, pager,
};
use crate::html::{count, escape, number};
use crate::live::{LiveFindings, LiveResult};

/// Renders the model page.
pub(super) fn page(context: &PageContext<'_>, live: Option<&LiveResult>) -> Result<Page, PageError> {
    let name = context.model_name();
    let metadata = &context.model.entry.metadata;
    let n_layers = context.source.info.n_layers;
    let n_neurons = context.source.info.units_per_layer;
    let mut body = String::with_capacity(32 * 1024);
    body.push_str("<h1>");
    escape(&mut body, name);
    body.push_str("</h1>");

    navigation(&mut body, context, n_layers, n_neurons);
    relation_links(&mut body, context);

    body.push_str("<div class=grid><section><h2>Model</h2><table id=metadata><tbody>");
    let provenance = &metadata.provenance;
    // (label, what it means, value): what the data was recorded on first, then where it came from;
    // what is unknown is left out rather than shown as "unknown".
    let rows: [(&str, &str, Option<&str>); 9] = [
        ("Architecture", "", Some(&metadata.architecture)),
        ("Activation", "", Some(&metadata.activation_function)),
        ("Recorded on", "The text the examples and statistics come from", Some(&metadata.dataset)),
        ("Trained on", "What the model was trained on, as its files say", metadata.training_dataset.as_deref()),
        ("Data source", "Where the recorded text was read from", Some(&provenance.data_source)),
        ("Weights", "How the weights recorded from are stored", provenance.weights.as_deref()),
        ("Weights from", "The model files recorded from", provenance.model_source.as_deref()),
        ("Recorded at", "", Some(&provenance.recorded_at)),
        ("Tool version", "", Some(&provenance.tool_version)),
    ];
    for (label, meaning, value) in rows {
        let Some(value) = value.filter(|value| !value.is_empty()) else { continue };
        body.push_str("<tr><th");
        if !meaning.is_empty() {
            body.push_str(" title=\"");
            body.push_str(meaning);
            body.push('"');
        }
        body.push('>');
        body.push_str(label);
        body.push_str("</th><td>");
        escape(&mut body, value);
        body.push_str("</td></tr>");
    }
    let counts = [
        ("Layers", metadata.n_layers),
        ("Neurons per layer", metadata.d_mlp),
        ("Total neurons", metadata.n_neurons()),
        ("d_model", metadata.d_model),
        ("Parameters", metadata.n_parameters),
        ("Context length", metadata.context_length),
        ("Tokens recorded", metadata.provenance.tokens_recorded),
    ];
    for (label, value) in counts.iter().filter(|(_, value)| *value > 0) {
        body.push_str("<tr><th>");
        body.push_str(label);
        body.push_str("</th><td class=num>");
        count(&mut body, *value);
        body.push_str("</td></tr>");
    }
    body.push_str(
        "</tbody></table></section><section><h2>Layers</h2><table id=layers><thead><tr><th>Layer</th><th></th>\
         <th class=num title=\"Median share of tokens a neuron is active on\">Median density</th>\
         <th class=num title=\"Neurons never active in the recorded text\">Silent</th>\
         <th class=num>Largest max</th></tr></thead><tbody>",
    );
    for layer in 0..n_layers {
        let base = context.href(&format!("/{layer}"));
        body.push_str("<tr><td><a href=\"");
        escape(&mut body, &base);
        body.push_str("\">Layer ");
        body.push_str(itoa::Buffer::new().format(layer));
        body.push_str("</a></td><td><a href=\"");
        escape(&mut body, &format!("{base}/0"));
        body.push_str("\">first</a> · <a href=\"");
        escape(&mut body, &context.href(&format!("/random?layer={layer}")));
        body.push_str("\">random</a> · <a href=\"");
        escape(&mut body, &format!("{base}/{}", n_neurons.saturating_sub(1)));
        body.push_str("\">last</a></td>");
        match layer_overview(context, layer as u32)? {
            Some(overview) => {
                number_cell(&mut body, f64::from(overview.median_density));
                body.push_str("<td class=num>");
                count(&mut body, overview.n_silent);
                body.push_str("</td>");
                number_cell(&mut body, f64::from(overview.largest_max));
            }
            None => body.push_str("<td></td><td></td><td></td>"),
        }
        body.push_str("</tr>");
    }
    body.push_str("</tbody></table></section></div>");

    live_text_form(
        &mut body,
        context,
        &context.href(""),
        live.map(|l| l.text.as_str()),
        "Which neurons fire most on each token of your text",
    );
    if let Some(live) = live {
        firing_table(&mut body, context, live);
    }

    let page_index = page_number(&context.params)?;
    match context.state.store.model_record(&context.model.entry, ModelDataKind::Ranking)? {
        Some(ModelRecord::Ranking(ranking)) => {
            body.push_str(
                "<h2 id=interesting>Most interesting neurons</h2><p class=\"muted small\">Ranked by how \
                 selective they are, whatever their scale: <code>",
            );
            body.push_str(dd_data::INTERESTINGNESS_FORMULA);
            body.push_str(
                "</code>, over every token but BOS. A neuron scores high when it is quiet on most tokens \
                 and far above that on at least as many as its top examples show.</p>",
            );
            body.push_str("<table id=ranking><thead><tr><th class=num>Rank</th><th>Neuron</th><th class=num>Score</th></tr></thead><tbody>");
            let start = page_start(page_index, ranking.neurons.len())?;
            for (rank, ranked) in ranking.neurons.iter().enumerate().skip(start).take(PAGE_SIZE) {
                body.push_str("<tr><td class=num>");
                body.push_str(itoa::Buffer::new().format(rank + 1));
                body.push_str("</td><td>");
                neuron_link(&mut body, context, ranked.neuron);
                body.push_str("</td>");
                number_cell(&mut body, f64::from(ranked.score));
                body.push_str("</tr>");
            }
            body.push_str("</tbody></table>");
            pager(&mut body, context, &context.href(""), page_index, ranking.neurons.len());
        }
        _ => body.push_str("<p class=muted>No ranking of neurons is stored for this model.</p>"),
    }

    let mut page = Page::new(name.to_owned(), body);
    page.crumbs = vec![(name.to_owned(), context.href(""))];
    page.json_href = Some(format!("/api/{name}/metadata"));
    Ok(page)
}

/// Numbers that tell layers apart at a glance, from the layer summary.
struct LayerOverview {
    median_density: f32,
    n_silent: u64,
    largest_max: f32,
}

/// The overview of `layer`, or `None` when no summary is stored.
fn layer_overview(context: &PageContext<'_>, layer: u32) -> Result<Option<LayerOverview>, PageError> {
    let summary = match context.state.store.layer_record(context.source, layer, LayerDataKind::Summary)? {
        Some(LayerRecord::Summary(summary)) if !summary.neurons.is_empty() => summary.neurons,
        _ => return Ok(None),
    };
    let mut densities: Vec<f32> = summary.iter().map(|n| n.density).filter(|d| d.is_finite()).collect();
    densities.sort_by(f32::total_cmp);
    Ok(Some(LayerOverview {
        median_density: densities.get(densities.len() / 2).copied().unwrap_or(f32::NAN),
        n_silent: summary.iter().filter(|n| n.density == 0.0).count() as u64,
        largest_max: summary.iter().map(|n| n.max_activation).fold(f32::NEG_INFINITY, f32::max),
    }))
}

/// The search box, the jump form, the random link, and search by meaning where the server has it.
fn navigation(out: &mut String, context: &PageContext<'_>, n_layers: u64, n_neurons: u64) {
    out.push_str("<div class=toolbar><form class=toolbar role=search method=get action=\"");
    escape(out, &context.href("/search"));
    out.push_str("\"><label for=q>Search neurons by token</label><input id=q name=q type=search placeholder=\"e.g. the, Paris, 3/17\" required><button type=submit>Search</button></form>");
    out.push_str("<form class=toolbar method=get action=\"");
    escape(out, &context.href("/search"));
    out.push_str("\"><label for=jump-layer>Layer</label><input id=jump-layer name=layer type=number min=0 max=");
    out.push_str(itoa::Buffer::new().format(n_layers.saturating_sub(1)));
    out.push_str(
        " required><label for=jump-neuron>Neuron</label><input id=jump-neuron name=neuron type=number min=0 max=",
    );
    out.push_str(itoa::Buffer::new().format(n_neurons.saturating_sub(1)));
    out.push_str(" required><button type=submit id=go>Go</button></form><a class=button id=random href=\"");
    escape(out, &context.href("/random"));
    out.push_str("\">Random neuron</a></div>");
    if meaning_search_available(context) {
        out.push_str("<form class=toolbar role=search method=get action=\"");
        escape(out, &context.href("/explanation-search"));
        out.push_str(
            "\"><label for=meaning>Search explanations by meaning</label><input id=meaning name=q type=search \
             placeholder=\"e.g. the end of a sentence\" required size=32><button type=submit>Search</button></form>",
        );
    }
}

/// Links to the model's relation pages that have data.
fn relation_links(out: &mut String, context: &PageContext<'_>) {
    let entry = &context.model.entry;
    let links = [
        ("groups", "Groups that fire together", entry.model_kinds.contains(&ModelDataKind::Groups)),
        ("roles", "Roles in the weight graph", context.source.layer_kinds.contains(&LayerDataKind::Roles)),
        ("changes", "Most changed neurons", context.source.layer_kinds.contains(&LayerDataKind::Changes)),
    ];
    if !links.iter().any(|(_, _, present)| *present) {
        return;
    }
    out.push_str("<div class=toolbar id=relation-links>");
    for (path, label, _) in links.iter().filter(|(_, _, present)| *present) {
        out.push_str("<a class=button href=\"");
        escape(out, &context.href(&format!("/{path}")));
        out.push_str("\">");
        out.push_str(label);
        out.push_str("</a>");
    }
    out.push_str("</div>");
}

/// Per token of the visitor's text, the neurons that fired most.
fn firing_table(out: &mut String, context: &PageContext<'_>, live: &LiveResult) {
    let LiveFindings::Model(per_token) = &live.findings else { return };
    if live.n_cut > 0 {
        out.push_str("<p class=notice>The text was cut to its first ");
        out.push_str(itoa::Buffer::new().format(live.tokens.len()));
        out.push_str(" tokens.</p>");
    }
    out.push_str("<p class=\"muted small\">Neurons ranked by their activation as a share of the largest activation \
         recorded for them (raw value in brackets), so that layers with large activations do not crowd out the rest.</p>");
    out.push_str(
        "<table id=firing class=firing><thead><tr><th>Token</th><th>Neurons that fire most</th></tr></thead><tbody>",
    );
    for (token, firings) in live.tokens.iter().zip(per_token) {
        out.push_str("<tr><td><span class=tok>");
        out.push_str(context.model.tokens.html_text(*token));
        out.push_str("</span></td><td>");
        for (i, firing) in firings.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            neuron_link(out, context, dd_data::NeuronIndex { layer: firing.layer, index: firing.neuron });
            out.push(' ');
            if let Some(relative) = firing.relative {
                number(out, f64::from(relative * 100.0), 2);
                out.push_str("% (");
                number(out, f64::from(firing.activation), 3);
                out.push(')');
            } else {
                number(out, f64::from(firing.activation), 3);
            }
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
}
