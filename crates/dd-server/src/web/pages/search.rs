//! The search page: neurons by token, from their activating tokens and graphs, ranked by how
//! selective they are (`token_search.rs`) and paged; `3/17` or a layer and neuron jump straight there.

use std::collections::HashMap;
use std::fmt::Write;

use dd_data::NeuronDataKind;

use super::super::layout::Page;
use super::super::view::{PageContext, PageError};
use super::parts::{PAGE_SIZE, meaning_search_available, neuron_link, page_number, page_start, pager, percent_encode};
use crate::error::ApiError;
use crate::html::{count, escape, number};
use crate::model_context::ModelContext;
use crate::token_query::MatchMode;
use crate::token_search::{Found, place_names};

/// Where a search that names a neuron goes: `?layer=&neuron=` (out of range: 404), or `?q=3/17`
/// (also `3:17`; out of range, it is searched as a token). `None` for token searches.
pub(crate) fn jump_target(model: &ModelContext, params: &HashMap<String, String>) -> Option<Result<String, ApiError>> {
    let source = model.source(None)?;
    let (layer, neuron) = match (params.get("layer"), params.get("neuron"), params.get("q")) {
        (Some(layer), Some(neuron), _) => (layer.trim().to_owned(), neuron.trim().to_owned()),
        (_, _, Some(query)) => {
            let query = query.trim();
            let (layer, neuron) = query.split_once(['/', ':'])?;
            let in_range = |text: &str, len: u64| {
                !text.is_empty()
                    && text.len() < 20
                    && text.bytes().all(|b| b.is_ascii_digit())
                    && text.parse::<u64>().is_ok_and(|value| value < len)
            };
            if !in_range(layer, source.info.n_layers) || !in_range(neuron, source.info.units_per_layer) {
                return None;
            }
            (layer.to_owned(), neuron.to_owned())
        }
        _ => return None,
    };
    let checked = crate::params::parse_index("layer", &layer, source.info.n_layers).and_then(|layer| {
        crate::params::parse_index("neuron", &neuron, source.info.units_per_layer).map(|neuron| (layer, neuron))
    });
    Some(checked.map(|(layer, neuron)| format!("/viz/{}/{layer}/{neuron}", model.entry.metadata.name)))
}

/// Renders the search page.
pub(super) fn page(context: &PageContext<'_>) -> Result<Page, PageError> {
    let name = context.model_name();
    let query = context.params.get("q").map(|q| q.trim().to_owned()).unwrap_or_default();
    let mode = MatchMode::from_name(context.params.get("match").map_or("", String::as_str));
    let page_index = page_number(&context.params)?;
    let mut body = String::with_capacity(32 * 1024);
    body.push_str("<h1>Search ");
    escape(&mut body, name);
    body.push_str("</h1><form class=toolbar role=search method=get action=\"");
    escape(&mut body, &context.href("/search"));
    body.push_str("\"><label for=q>Tokens</label><input id=q name=q type=search required value=\"");
    escape(&mut body, &query);
    body.push_str("\"><label><input type=checkbox id=exact name=match value=exact");
    if mode == MatchMode::Exact {
        body.push_str(" checked");
    }
    body.push_str(
        "> exact forms</label><button type=submit>Search</button></form><p class=\"muted small\">Terms \
         separated by commas must all match (<code>paris,france</code>; words are terms too); \
         <code>activating:</code> looks among the tokens a neuron fires on, <code>important:</code> among its \
         graph's context. Matching ignores case and spaces unless <em>exact forms</em> is ticked, where \
         <code>·the</code> or <code>\"&#32;the\"</code> is the token with a leading space.</p>",
    );
    if meaning_search_available(context) {
        body.push_str(
            "<p class=\"muted small\">To find neurons by what their explanations say, <a id=by-meaning href=\"",
        );
        let mut href = context.href("/explanation-search");
        if !query.is_empty() {
            href.push_str("?q=");
            href.push_str(&percent_encode(&query));
        }
        escape(&mut body, &href);
        body.push_str("\">search by meaning</a>.</p>");
    }

    let mut json_href = None;
    if query.is_empty() {
        body.push_str(
            "<p class=muted>Type a token, like <code>the</code> or <code>Paris</code>, to find the neurons that \
             fire on it, or <code>3/17</code> to go to neuron 17 of layer 3.</p>",
        );
    } else {
        let searchable = context.source.has_neuron_kind(NeuronDataKind::ActivatingTokens)
            || context.source.has_neuron_kind(NeuronDataKind::Graph);
        if !searchable {
            body.push_str(
                "<p class=notice>This model has neither activating tokens nor Neuron2Graph graphs, so there is \
                 nothing to search; record it with <code>deepdecipher record</code> to get them.</p>",
            );
        }
        let index = context.model.token_index(context.state.store.as_ref(), context.source)?;
        let offset = (page_index - 1).saturating_mul(PAGE_SIZE);
        let results = index.search(&query, mode, offset, PAGE_SIZE);
        if searchable {
            let mut href = format!("/api/{name}/token-search?query={}", percent_encode(&query));
            if mode == MatchMode::Exact {
                href.push_str("&match=exact");
            }
            let _ = write!(href, "&limit={PAGE_SIZE}");
            if offset > 0 {
                let _ = write!(href, "&offset={offset}");
            }
            json_href = Some(href);
        }
        let start = page_start(page_index, results.total)?;
        body.push_str("<p id=result-count>");
        count(&mut body, results.total as u64);
        body.push_str(if results.total == 1 { " neuron" } else { " neurons" });
        body.push_str(" for <span class=tok>");
        escape(&mut body, &query);
        body.push_str(
            "</span>, most selective first: <abbr title=\"(token mean − neuron mean) / neuron standard deviation, \
             BOS excluded; with several terms, the smallest\">z</abbr> is how far the neuron's mean activation on \
             the token lies above its usual level, in standard deviations.</p>",
        );
        if !results.found.is_empty() {
            body.push_str(
                "<table id=results><thead><tr><th class=num>#</th><th>Neuron</th><th class=num>z</th>\
                 <th class=num>Token mean</th><th class=num>Times seen</th><th>Matched</th><th>Explanation</th>\
                 </tr></thead><tbody>",
            );
            for (position, found) in results.found.iter().enumerate() {
                result_row(&mut body, context, start + position + 1, found);
            }
            body.push_str("</tbody></table>");
            pager(&mut body, context, &context.href("/search"), page_index, results.total);
        }
    }

    let mut page = Page::new(format!("Search {name}"), body);
    page.crumbs = vec![(name.to_owned(), context.href("")), ("Search".to_owned(), context.href("/search"))];
    page.json_href = json_href;
    Ok(page)
}

/// One row of the results table.
fn result_row(out: &mut String, context: &PageContext<'_>, rank: usize, found: &Found<'_>) {
    out.push_str("<tr><td class=num>");
    out.push_str(itoa::Buffer::new().format(rank));
    out.push_str("</td><td>");
    neuron_link(out, context, found.neuron);
    out.push_str("</td><td class=num>");
    optional_number(out, found.z);
    out.push_str("</td><td class=num>");
    let ranking = found.ranking_match();
    optional_number(out, ranking.map_or(f32::NAN, |m| m.mean));
    out.push_str("</td><td class=num>");
    if let Some(seen) = ranking.map(|m| m.count).filter(|&seen| seen > 0) {
        count(out, seen);
    }
    out.push_str("</td><td class=matched>");
    for (i, matched) in found.matches.iter().enumerate() {
        out.push_str(if i == 0 { "" } else { "; " });
        for form in &matched.forms {
            out.push_str("<span class=tok>");
            escape(out, form);
            out.push_str("</span> ");
        }
        for place in place_names(matched.places) {
            out.push_str("<span class=badge>");
            out.push_str(match place {
                "activating_tokens" => "activating tokens",
                "graph_activating" => "graph: activating",
                _ => "graph: context",
            });
            out.push_str("</span>");
        }
    }
    out.push_str("</td><td>");
    if let Some(explanation) = found.explanation {
        escape(out, explanation);
    }
    out.push_str("</td></tr>");
}

/// A number to three places, or nothing when undefined.
fn optional_number(out: &mut String, value: f32) {
    if value.is_finite() {
        number(out, f64::from(value), 3);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::percent_encode;
    use crate::LiveLimits;
    use crate::testing::{LiveApp, MODEL};

    /// The page lists the JSON twin's neurons in its order, with their z, matched forms and
    /// explanation, and links each neuron; `match=exact` reaches the twin too.
    #[test]
    fn the_page_shows_the_ranked_search() {
        let app = LiveApp::new(LiveLimits::standard());
        let (_, tokens) = app.get(&format!("/api/{MODEL}/activating_tokens/1/2"));
        let tokens: Value = serde_json::from_str(&tokens).expect("json");
        let token = tokens["data"]["tokens"][0]["token"].as_str().expect("token").to_owned();
        let query = percent_encode(&token.replace('·', " ").trim().to_lowercase());
        let (status, twin) = app.get(&format!("/api/{MODEL}/token-search?query={query}&limit=100"));
        assert_eq!(status, 200, "{twin}");
        let twin: Value = serde_json::from_str::<Value>(&twin).expect("json")["data"].clone();
        let neurons = twin["neurons"].as_array().expect("neurons");
        assert!(!neurons.is_empty(), "{twin}");
        let z: Vec<f64> = neurons.iter().filter_map(|n| n["z"].as_f64()).collect();
        assert!(z.windows(2).all(|w| w[0] >= w[1]), "most selective first: {z:?}");

        let (status, html) = app.get(&format!("/viz/{MODEL}/search?q={query}"));
        assert_eq!(status, 200);
        assert!(html.contains(&format!("/api/{MODEL}/token-search?query={query}&amp;limit=100")), "the JSON twin");
        let rows: Vec<&str> = html.split("<tbody>").nth(1).expect("a table").split("<tr>").skip(1).collect();
        assert_eq!(rows.len(), neurons.len());
        for (row, neuron) in rows.iter().zip(neurons) {
            assert!(row.contains(&format!("href=\"/viz/{MODEL}/{}/{}\"", neuron["layer"], neuron["neuron"])), "{row}");
            for form in neuron["matches"][0]["tokens"].as_array().expect("forms") {
                let mut escaped = String::new();
                crate::html::escape(&mut escaped, form.as_str().expect("form"));
                assert!(row.contains(&format!("<span class=tok>{escaped}</span>")), "{row}");
            }
            if let Some(explanation) = neuron["explanation"].as_str() {
                let mut escaped = String::new();
                crate::html::escape(&mut escaped, explanation);
                assert!(row.contains(&escaped), "{row}");
            }
        }

        let (status, exact) =
            app.get(&format!("/viz/{MODEL}/search?q={}&match=exact", percent_encode(&format!("\"{token}\""))));
        assert_eq!(status, 200);
        assert!(exact.contains("id=exact name=match value=exact checked"), "the box stays ticked");
        assert!(exact.contains("&amp;match=exact&amp;limit=100"), "the twin is exact too");
        assert!(exact.contains(&format!("href=\"/viz/{MODEL}/1/2\"")), "{token:?} finds 1/2 exactly");
    }
}
