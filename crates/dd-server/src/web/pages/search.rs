//! The search page: neurons by token, ranked by their mean activation on it and paged, plus the
//! Neuron2Graph index's matches when the model has one; `3/17` or a layer and neuron jump straight there.

use std::collections::HashMap;

use dd_data::NeuronIndex;

use super::super::layout::Page;
use super::super::view::{PageContext, PageError};
use super::parts::{PAGE_SIZE, neuron_link, page_number, page_start, pager, percent_encode};
use crate::error::ApiError;
use crate::html::{count, escape, number};
use crate::model_context::ModelContext;
use crate::search::TokenHit;

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

/// One row of results.
struct Row {
    neuron: NeuronIndex,
    hit: Option<TokenHit>,
    in_graph: bool,
}

/// Renders the search page.
pub(super) fn page(context: &PageContext<'_>) -> Result<Page, PageError> {
    let name = context.model_name();
    let query = context.params.get("q").map(|q| q.trim().to_owned()).unwrap_or_default();
    let page_index = page_number(&context.params)?;
    let mut body = String::with_capacity(32 * 1024);
    body.push_str("<h1>Search ");
    escape(&mut body, name);
    body.push_str("</h1><form class=toolbar role=search method=get action=\"");
    escape(&mut body, &context.href("/search"));
    body.push_str("\"><label for=q>Token</label><input id=q name=q type=search required value=\"");
    escape(&mut body, &query);
    body.push_str("\"><button type=submit>Search</button></form>");

    let mut json_href = None;
    if query.is_empty() {
        body.push_str(
            "<p class=muted>Type a token, like <code>the</code> or <code>Paris</code>, to find the neurons that \
             fire on it, or <code>3/17</code> to go to neuron 17 of layer 3.</p>",
        );
    } else {
        let searchable = context.source.has_neuron_kind(dd_data::NeuronDataKind::ActivatingTokens)
            || context.model.entry.model_kinds.contains(&dd_data::ModelDataKind::TokenIndex);
        if !searchable {
            body.push_str(
                "<p class=notice>This model has neither activating tokens nor a Neuron2Graph index, so there \
                 is nothing to search; record it with <code>deepdecipher record</code> to get them.</p>",
            );
        }
        let rows = search(context, &query, &mut json_href)?;
        body.push_str("<p id=result-count>");
        count(&mut body, rows.len() as u64);
        body.push_str(if rows.len() == 1 { " neuron" } else { " neurons" });
        body.push_str(" for <span class=tok>");
        escape(&mut body, &query);
        body.push_str("</span>, ranked by mean activation on the token.</p>");
        if !rows.is_empty() {
            body.push_str(
                "<table id=results><thead><tr><th class=num>#</th><th>Neuron</th><th class=num>Mean activation</th>\
                 <th class=num>Times seen</th><th></th></tr></thead><tbody>",
            );
            let start = page_start(page_index, rows.len())?;
            for (position, row) in rows.iter().enumerate().skip(start).take(PAGE_SIZE) {
                body.push_str("<tr><td class=num>");
                body.push_str(itoa::Buffer::new().format(position + 1));
                body.push_str("</td><td>");
                neuron_link(&mut body, context, row.neuron);
                body.push_str("</td><td class=num>");
                if let Some(hit) = row.hit {
                    number(&mut body, f64::from(hit.mean), 3);
                    body.push_str("</td><td class=num>");
                    count(&mut body, hit.count);
                } else {
                    body.push_str("</td><td class=num>");
                }
                body.push_str("</td><td>");
                if row.in_graph {
                    body.push_str("<span class=badge>in its Neuron2Graph</span>");
                }
                body.push_str("</td></tr>");
            }
            body.push_str("</tbody></table>");
            pager(&mut body, context, &context.href("/search"), page_index, rows.len());
        }
    }

    let mut page = Page::new(format!("Search {name}"), body);
    page.crumbs = vec![(name.to_owned(), context.href("")), ("Search".to_owned(), context.href("/search"))];
    page.json_href = json_href;
    Ok(page)
}

/// Hits from the activating-token index first (by mean), then Neuron2Graph-only neurons by position.
fn search(context: &PageContext<'_>, query: &str, json_href: &mut Option<String>) -> Result<Vec<Row>, ApiError> {
    let index = context.model.activating_index(context.state.store.as_ref(), context.source)?;
    if context.source.has_neuron_kind(dd_data::NeuronDataKind::ActivatingTokens) {
        *json_href = Some(format!("/api/{}/token-search?query={}", context.model_name(), percent_encode(query)));
    }
    let mut rows: Vec<Row> =
        index.lookup(query).iter().map(|hit| Row { neuron: hit.neuron, hit: Some(*hit), in_graph: false }).collect();
    if context.model.entry.model_kinds.contains(&dd_data::ModelDataKind::TokenIndex) {
        let graph_query = format!("any:{}", query.replace(',', " "));
        if json_href.is_none() {
            *json_href = Some(format!(
                "/api/{}/neuron2graph-search?query={}",
                context.model_name(),
                percent_encode(&graph_query)
            ));
        }
        let graph_index = context.model.search_index(context.state.store.as_ref())?;
        let graph_hits = graph_index.search(&graph_query)?;
        let mut in_rows = std::collections::HashSet::with_capacity(rows.len());
        for row in &mut rows {
            row.in_graph = graph_hits.binary_search(&row.neuron).is_ok();
            in_rows.insert(row.neuron);
        }
        let graph_only = graph_hits.into_iter().filter(|neuron| !in_rows.contains(neuron));
        rows.extend(graph_only.map(|neuron| Row { neuron, hit: None, in_graph: true }));
    }
    Ok(rows)
}
