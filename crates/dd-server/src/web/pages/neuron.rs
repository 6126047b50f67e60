//! The neuron page: everything recorded about one neuron, with coloured examples, plots and links.

use dd_data::{
    Example, ExampleGroup, ExampleGroupKind, GraphScores, NeuronDataKind, NeuronGraph, NeuronIndex, NeuronRecord,
    NeuronStats, SimilarNeurons, TokenValue,
};

use super::super::graph_svg::graph_svg;
use super::super::layout::Page;
use super::super::plot::histogram_svg;
use super::super::tokens::{ColourScale, example_group, example_text, group_title, legend};
use super::super::view::{PageContext, PageError};
use super::explanations::explanations_section;
use super::parts::{live_text_form, neuron_link, percent_encode};
use super::relations::relations_section;
use crate::error::ApiError;
use crate::html::{count, escape, number};
use crate::live::{LiveFindings, LiveResult};

/// Tokens before the max token shown by default; the page's control changes it.
const DEFAULT_WINDOW: u32 = 32;

/// Renders the neuron page.
pub(super) fn page(
    context: &PageContext<'_>,
    layer: u32,
    neuron: u32,
    live: Option<&LiveResult>,
) -> Result<Page, PageError> {
    let name = context.model_name();
    let store = context.state.store.as_ref();
    let record = |kind| -> Result<Option<NeuronRecord>, ApiError> {
        Ok(store.neuron_record(context.source, layer, neuron, kind)?)
    };
    let (prev, next) = neighbours(context, layer, neuron);
    let mut body = String::with_capacity(160 * 1024);
    body.push_str("<h1>Neuron ");
    body.push_str(itoa::Buffer::new().format(neuron));
    body.push_str(" in layer ");
    body.push_str(itoa::Buffer::new().format(layer));
    body.push_str(" <span class=muted>of ");
    escape(&mut body, name);
    body.push_str("</span></h1><div class=toolbar>");
    for (label, href, id) in [("← previous", &prev, "prev"), ("next →", &next, "next")] {
        body.push_str("<a class=button id=");
        body.push_str(id);
        body.push_str(" href=\"");
        escape(&mut body, href);
        body.push_str("\">");
        body.push_str(label);
        body.push_str("</a>");
    }
    body.push_str("<a class=button id=random href=\"");
    escape(&mut body, &context.href("/random"));
    body.push_str("\">Random</a><a class=button href=\"");
    escape(&mut body, &context.href(&format!("/{layer}")));
    body.push_str("\">Layer ");
    body.push_str(itoa::Buffer::new().format(layer));
    body.push_str("</a></div>");

    if let Some(NeuronRecord::Explanations(explanations)) = record(NeuronDataKind::Explanations)? {
        explanations_section(&mut body, context, &explanations);
    }

    let examples = match store.neuron_blob(context.source.id, layer, neuron, NeuronDataKind::Examples)? {
        Some(blob) => match dd_store::codec::decode_examples_quantized(&blob) {
            Ok(stored) => stored.to_examples().groups,
            Err(error) => {
                return Err(ApiError::internal(&dd_store::StoreError::Codec {
                    what: format!("examples of {layer}/{neuron}"),
                    source: error,
                })
                .into());
            }
        },
        None => Vec::new(),
    };
    let stats = match record(NeuronDataKind::Stats)? {
        Some(NeuronRecord::Stats(stats)) => Some(stats),
        _ => None,
    };
    // One scale for the examples and the visitor's text, so the same colour means the same value.
    let mut scale = ColourScale::for_groups(&examples);
    if examples.is_empty() {
        if let Some(stats) = &stats {
            scale = ColourScale::new(stats.max.abs().max(stats.min.abs()) as f32);
        }
    }

    live_text_form(
        &mut body,
        context,
        &context.href(&format!("/{layer}/{neuron}")),
        live.map(|l| l.text.as_str()),
        "Colour your own text by this neuron's activation",
    );
    if let Some(live) = live {
        live_text(&mut body, context, live, &scale);
    }

    if let Some(stats) = &stats {
        statistics(&mut body, stats);
    }
    token_tables(&mut body, context, &record)?;

    if !examples.is_empty() {
        body.push_str("<section id=examples><h2>Examples</h2>");
        legend(&mut body, &scale);
        body.push_str("<div class=toolbar><label for=ctx>Tokens shown before the max token</label><select id=ctx>");
        for (value, label) in [(8, "8"), (16, "16"), (32, "32"), (64, "64"), (-1, "all")] {
            body.push_str("<option value=");
            body.push_str(itoa::Buffer::new().format(value));
            if value == DEFAULT_WINDOW as i32 {
                body.push_str(" selected");
            }
            body.push('>');
            body.push_str(label);
            body.push_str("</option>");
        }
        body.push_str("</select><span id=status class=status aria-live=polite></span></div>");
        for (group_index, group) in ordered(&examples).into_iter().enumerate() {
            let id_prefix = format!("e{group_index}-");
            let open = group.kind == ExampleGroupKind::Top;
            body.push_str(if open { "<details open" } else { "<details" });
            body.push_str(" class=group data-kind=");
            body.push_str(match group.kind {
                ExampleGroupKind::Top => "top",
                ExampleGroupKind::Bottom => "bottom",
                ExampleGroupKind::Quantile { .. } => "band",
                ExampleGroupKind::Random => "random",
            });
            body.push_str("><summary>");
            group_title(&mut body, group.kind);
            body.push_str(" <span class=muted>(");
            body.push_str(itoa::Buffer::new().format(group.examples.len()));
            body.push_str(")</span></summary>");
            example_group(&mut body, &id_prefix, group, &scale, &context.model.tokens);
            body.push_str("</details>");
        }
        body.push_str("</section>");
    }

    let similar = match record(NeuronDataKind::Similar)? {
        Some(NeuronRecord::Similar(similar)) => Some(similar),
        _ => None,
    };
    let graph_shown = match record(NeuronDataKind::Graph)? {
        Some(NeuronRecord::Graph(graph)) => {
            graph_section(&mut body, context, &graph, similar.as_ref());
            true
        }
        _ => false,
    };

    // Beside the graph when there is one; otherwise with the other related neurons.
    neighbour_links(&mut body, context, if graph_shown { None } else { similar.as_ref() }, &record)?;
    relations_section(&mut body, context, NeuronIndex { layer, index: neuron })?;

    let mut page = Page::new(format!("Neuron {layer}/{neuron} of {name}"), body);
    page.crumbs = vec![
        (name.to_owned(), context.href("")),
        (format!("Layer {layer}"), context.href(&format!("/{layer}"))),
        (format!("Neuron {neuron}"), context.href(&format!("/{layer}/{neuron}"))),
    ];
    page.json_href = Some(format!("/api/{name}/all/{layer}/{neuron}"));
    page.prev_href = Some(prev);
    page.next_href = Some(next);
    Ok(page)
}

/// The previous and next neuron, wrapping across layers and around the model.
fn neighbours(context: &PageContext<'_>, layer: u32, neuron: u32) -> (String, String) {
    let n_layers = context.source.info.n_layers.max(1) as u32;
    let n_neurons = context.source.info.units_per_layer.max(1) as u32;
    let prev = match (layer, neuron) {
        (0, 0) => (n_layers - 1, n_neurons - 1),
        (layer, 0) => (layer - 1, n_neurons - 1),
        (layer, neuron) => (layer, neuron - 1),
    };
    let next = if neuron + 1 < n_neurons {
        (layer, neuron + 1)
    } else if layer + 1 < n_layers {
        (layer + 1, 0)
    } else {
        (0, 0)
    };
    (context.href(&format!("/{}/{}", prev.0, prev.1)), context.href(&format!("/{}/{}", next.0, next.1)))
}

/// Groups in reading order: top, bottom, bands from the highest down, random.
fn ordered(groups: &[ExampleGroup]) -> Vec<&ExampleGroup> {
    let rank = |kind: &ExampleGroupKind| match kind {
        ExampleGroupKind::Top => (0, 0),
        ExampleGroupKind::Bottom => (1, 0),
        ExampleGroupKind::Quantile { band, .. } => (2, u32::MAX - band),
        ExampleGroupKind::Random => (3, 0),
    };
    let mut ordered: Vec<&ExampleGroup> = groups.iter().filter(|g| !g.examples.is_empty()).collect();
    ordered.sort_by_key(|g| rank(&g.kind));
    ordered
}

/// The statistics table and the activation histogram.
fn statistics(out: &mut String, stats: &NeuronStats) {
    out.push_str("<section id=stats><h2>Activation statistics</h2><div class=grid><table><tbody>");
    let rows = [
        ("Max", stats.max),
        ("Min", stats.min),
        ("Mean", stats.mean),
        ("Standard deviation", stats.variance.max(0.0).sqrt()),
        ("Skewness", stats.skewness),
        ("Kurtosis", stats.kurtosis),
    ];
    for (label, value) in rows {
        out.push_str("<tr><th>");
        out.push_str(label);
        out.push_str("</th><td class=num>");
        number(out, value, 4);
        out.push_str("</td></tr>");
    }
    out.push_str("<tr><th>Density</th><td class=num>");
    number(out, stats.density * 100.0, 3);
    out.push_str("%</td></tr><tr><th>Tokens</th><td class=num>");
    count(out, stats.count);
    out.push_str("</td></tr><tr id=interest><th><abbr title=\"");
    out.push_str(dd_data::INTERESTINGNESS_FORMULA);
    out.push_str(": how selective the neuron is, whatever its scale\">Interest</abbr></th><td class=num>");
    number(out, f64::from(dd_data::interestingness(stats)), 3);
    out.push_str("</td></tr>");
    // The BOS position apart: a causal model computes the same value there in every context.
    if let Some(bos) = &stats.bos {
        out.push_str("<tr id=bos><th><abbr title=\"The activation on the BOS token that starts every context, \
                      left out of the numbers above (many models park large values there)\">At BOS</abbr></th><td class=num>");
        number(out, bos.mean, 4);
        if bos.min != bos.max {
            out.push_str(" <span class=muted>(");
            number(out, bos.min, 4);
            out.push_str(" to ");
            number(out, bos.max, 4);
            out.push_str(")</span>");
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table><figure id=histogram><figcaption>Activations");
    if stats.bos.is_some() {
        out.push_str(" (BOS excluded)");
    }
    out.push_str("</figcaption>");
    histogram_svg(out, &stats.histogram, "activation");
    out.push_str("</figure></div></section>");
}

/// Logits, input tokens and activating tokens, side by side.
fn token_tables(
    out: &mut String,
    context: &PageContext<'_>,
    record: &dyn Fn(NeuronDataKind) -> Result<Option<NeuronRecord>, ApiError>,
) -> Result<(), ApiError> {
    let mut section = String::new();
    if let Some(NeuronRecord::Logits(logits)) = record(NeuronDataKind::Logits)? {
        token_list(&mut section, context, "logits-top", "Output: tokens it promotes", &logits.top);
        token_list(&mut section, context, "logits-bottom", "Output: tokens it suppresses", &logits.bottom);
    }
    if let Some(NeuronRecord::InputTokens(inputs)) = record(NeuronDataKind::InputTokens)? {
        token_list(&mut section, context, "inputs-top", "Input tokens that excite it", &inputs.top);
        token_list(&mut section, context, "inputs-bottom", "Input tokens that inhibit it", &inputs.bottom);
    }
    if let Some(NeuronRecord::ActivatingTokens(activating)) = record(NeuronDataKind::ActivatingTokens)? {
        section.push_str("<div id=activating-tokens><h3>Tokens with the highest mean activation</h3><ul class=tokens>");
        for token in &activating.tokens {
            let display = context.model.tokens.display(token.token);
            section.push_str("<li><a class=tok href=\"");
            escape(
                &mut section,
                &context.href(&format!("/search?q={}", percent_encode(display.replace('·', " ").trim()))),
            );
            section.push_str("\">");
            escape(&mut section, &display);
            section.push_str("</a><span>");
            number(&mut section, f64::from(token.mean), 3);
            // Imported tables (OpenAI's) publish means without counts: 0 means unknown.
            if token.count > 0 {
                section.push_str(" <span class=muted>× ");
                count(&mut section, token.count);
                section.push_str("</span>");
            }
            section.push_str("</span></li>");
        }
        section.push_str("</ul></div>");
    }
    if !section.is_empty() {
        out.push_str("<section id=tokens><h2>Tokens</h2><div class=grid>");
        out.push_str(&section);
        out.push_str("</div></section>");
    }
    Ok(())
}

/// One titled list of tokens with values.
fn token_list(out: &mut String, context: &PageContext<'_>, id: &str, title: &str, values: &[TokenValue]) {
    out.push_str("<div id=");
    out.push_str(id);
    out.push_str("><h3>");
    out.push_str(title);
    out.push_str("</h3><ul class=tokens>");
    for value in values {
        out.push_str("<li><span class=tok>");
        escape(out, &context.model.tokens.display(value.token));
        out.push_str("</span><span>");
        number(out, f64::from(value.value), 3);
        out.push_str("</span></li>");
    }
    out.push_str("</ul></div>");
}

/// The Neuron2Graph graph with its scores and, beside it, the similar neurons.
fn graph_section(out: &mut String, context: &PageContext<'_>, graph: &NeuronGraph, similar: Option<&SimilarNeurons>) {
    out.push_str(
        "<section id=graph><h2>Neuron2Graph</h2><p class=\"muted small\">Token patterns that make the neuron \
         fire: activating tokens on the right, the context before them to the left; a thick outline marks where a \
         pattern may end. Click a token to search for it.</p>",
    );
    if let Some(scores) = &graph.scores {
        graph_scores(out, scores);
    }
    out.push_str("<div class=grid><div class=graph>");
    let search_base = context.href("/search?q=");
    graph_svg(out, graph, &|token: &str| format!("{search_base}{}", percent_encode(token)));
    out.push_str("</div>");
    if let Some(similar) = similar {
        similar_list(out, context, similar);
    }
    out.push_str("</div></section>");
}

/// "F1 0.83 on 10 held-out top examples (P 0.90, R 0.77); on 5 random examples: …", explained.
fn graph_scores(out: &mut String, scores: &GraphScores) {
    out.push_str("<p id=graph-scores>");
    for (i, (counts, what)) in
        [(&scores.held_out_top, "held-out top"), (&scores.random, "random")].into_iter().enumerate()
    {
        out.push_str(if i == 0 { "" } else { "; " });
        let score = |out: &mut String, value: Option<f64>| match value {
            Some(value) => number(out, value, 2),
            None => out.push('—'),
        };
        out.push_str("<strong>F1 ");
        score(out, counts.f1());
        out.push_str("</strong> on ");
        out.push_str(itoa::Buffer::new().format(counts.texts));
        out.push(' ');
        out.push_str(what);
        out.push_str(if counts.texts == 1 { " example" } else { " examples" });
        out.push_str(" (P ");
        score(out, counts.precision());
        out.push_str(", R ");
        score(out, counts.recall());
        out.push(')');
    }
    out.push_str(
        "</p><p class=\"muted small\">How well the graph predicts the neuron on texts it was not built from, \
                  token by token: it fires when its activation reaches ",
    );
    number(out, f64::from(scores.threshold) * 100.0, 3);
    out.push_str("% of its maximum (");
    number(out, f64::from(scores.scale), 3);
    out.push_str(
        "); P is the share of tokens the graph predicts that fire, R the share of firing tokens it predicts, \
                  F1 their harmonic mean (— where nothing fired or was predicted).</p>",
    );
}

/// Links to similar neurons with their similarity.
fn similar_list(out: &mut String, context: &PageContext<'_>, similar: &SimilarNeurons) {
    out.push_str("<div id=similar><h3>Similar neurons</h3>");
    if similar.neurons.is_empty() {
        // An empty list would read as a page that failed to load.
        out.push_str("<p class=\"muted small\">No other graph of this model is similar enough to list.</p>");
    }
    out.push_str("<ul class=tokens>");
    for neighbour in &similar.neurons {
        out.push_str("<li>");
        neuron_link(out, context, NeuronIndex { layer: neighbour.layer, index: neighbour.index });
        out.push_str("<span>similarity ");
        number(out, f64::from(neighbour.similarity), 3);
        out.push_str("</span></li>");
    }
    out.push_str("</ul></div>");
}

/// Similar neurons (unless shown beside the graph) and weight-connected neurons, as links.
fn neighbour_links(
    out: &mut String,
    context: &PageContext<'_>,
    similar: Option<&SimilarNeurons>,
    record: &dyn Fn(NeuronDataKind) -> Result<Option<NeuronRecord>, ApiError>,
) -> Result<(), ApiError> {
    let mut section = String::new();
    if let Some(similar) = similar {
        similar_list(&mut section, context, similar);
    }
    if let Some(NeuronRecord::Connections(connections)) = record(NeuronDataKind::Connections)? {
        for (id, title, list) in [
            ("inputs", "Earlier neurons that feed it (by weights)", &connections.inputs),
            ("outputs", "Later neurons it feeds (by weights)", &connections.outputs),
        ] {
            section.push_str("<div id=connections-");
            section.push_str(id);
            section.push_str("><h3>");
            section.push_str(title);
            section.push_str("</h3><ul class=tokens>");
            for connection in list {
                section.push_str("<li>");
                neuron_link(&mut section, context, connection.neuron);
                section.push_str("<span>");
                number(&mut section, f64::from(connection.weight), 3);
                section.push_str("</span></li>");
            }
            section.push_str("</ul></div>");
        }
    }
    if !section.is_empty() {
        out.push_str("<section id=related><h2>Related neurons</h2><div class=grid>");
        out.push_str(&section);
        out.push_str("</div></section>");
    }
    Ok(())
}

/// The visitor's text coloured by this neuron.
fn live_text(out: &mut String, context: &PageContext<'_>, live: &LiveResult, scale: &ColourScale) {
    let LiveFindings::Neuron(trace) = &live.findings else { return };
    let example = Example {
        dataset_index: 0,
        tokens: live.tokens.clone(),
        activations: trace.activations.clone(),
        // The BOS position is left out, as in the colour scale: attention sinks park huge values there.
        max_token_index: trace
            .activations
            .iter()
            .enumerate()
            .skip(usize::from(live.starts_with_bos && trace.activations.len() > 1))
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i as u32),
        activation_error: 0.0,
    };
    out.push_str("<section id=live-result><h3>Your text</h3>");
    if live.n_cut > 0 {
        out.push_str("<p class=notice>The text was cut to its first ");
        out.push_str(itoa::Buffer::new().format(live.tokens.len()));
        out.push_str(" tokens.</p>");
    }
    let skip = usize::from(live.starts_with_bos && example.activations.len() > 1);
    let text_values = example.activations.get(skip..).unwrap_or_default();
    out.push_str("<p class=\"muted small\">Max ");
    number(out, f64::from(text_values.iter().copied().fold(f32::NEG_INFINITY, f32::max)), 3);
    out.push_str(", min ");
    number(out, f64::from(text_values.iter().copied().fold(f32::INFINITY, f32::min)), 3);
    out.push_str(if skip == 1 { " (BOS left out)" } else { "" });
    out.push_str("; coloured on the same scale as the recorded examples.</p>");
    legend(out, scale);
    example_text(
        out,
        "live",
        &example.tokens,
        &example.activations,
        example.max_token_index,
        scale,
        &context.model.tokens,
    );
    out.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::LiveLimits;
    use crate::testing::{LiveApp, MODEL, N_LAYERS, N_NEURONS};

    /// Each synthetic neuron's page shows its graph's scores and end nodes, and links its similar
    /// neurons with their similarity beside the graph, as its `neuron2graph` page has them.
    #[test]
    fn the_graph_comes_with_its_scores_and_similar_neurons() {
        let app = LiveApp::new(LiveLimits::standard());
        for (layer, neuron) in [(0, 0), (1, 2), (N_LAYERS - 1, N_NEURONS - 1)] {
            let (status, json) = app.get(&format!("/api/{MODEL}/neuron2graph/{layer}/{neuron}"));
            assert_eq!(status, 200, "{json}");
            let data: Value = serde_json::from_str::<Value>(&json).expect("json")["data"].clone();
            let (status, html) = app.get(&format!("/viz/{MODEL}/{layer}/{neuron}"));
            assert_eq!(status, 200);
            let graph = html.split("<section id=graph>").nth(1).expect("a graph section");
            let graph = graph.split("</section>").next().expect("its end");
            let top = &data["scores"]["held_out_top"];
            let texts = top["texts"].as_u64().expect("texts");
            assert!(graph.contains(&format!("on {texts} held-out top example")), "{graph}");
            assert!(graph.contains("<strong>F1 "), "{graph}");
            let mut f1 = String::new();
            match top["f1"].as_f64() {
                Some(value) => crate::html::number(&mut f1, value, 2),
                None => f1.push('—'),
            }
            assert!(graph.contains(&format!("<strong>F1 {f1}</strong>")), "{f1} {graph}");
            let n_end =
                data["graph"]["graph"].as_array().expect("nodes").iter().filter(|n| n["is_end"] == true).count();
            assert_eq!(graph.matches("n2g-end").count(), n_end, "one thick outline per end node");
            let similar = data["similar"].as_array().expect("similar");
            assert!(!similar.is_empty());
            let list = graph.split("<div id=similar>").nth(1).expect("similar neurons beside the graph");
            for neighbour in similar {
                let href = format!("href=\"/viz/{MODEL}/{}/{}\"", neighbour["layer"], neighbour["neuron"]);
                assert!(list.contains(&href), "{href} in {list}");
            }
            assert_eq!(html.matches("<div id=similar>").count(), 1, "listed once");
        }
    }
}
