//! The layer page: the distributions of maxima and densities across the layer, and its neurons ranked and paged.

use dd_data::{LayerDataKind, LayerRecord, NeuronIndex, NeuronSummary};

use super::super::layout::Page;
use super::super::plot::{DistributionConfig, distribution_svg};
use super::super::view::{PageContext, PageError};
use super::parts::{PAGE_SIZE, neuron_link, number_cell, page_number, page_start, pager};
use crate::error::ApiError;
use crate::html::escape;

/// How the table is ordered (`?sort=`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum SortBy {
    Interest,
    Max,
    Density,
    Index,
}

const SORTS: [(SortBy, &str, &str); 4] = [
    (SortBy::Interest, "interest", "interest"),
    (SortBy::Max, "max", "max activation"),
    (SortBy::Density, "density", "density"),
    (SortBy::Index, "index", "index"),
];

/// Renders the layer page.
pub(super) fn page(context: &PageContext<'_>, layer: u32) -> Result<Page, PageError> {
    let name = context.model_name();
    let n_layers = context.source.info.n_layers;
    let sort = match context.params.get("sort").map(String::as_str) {
        None => SortBy::Interest,
        Some(value) => match SORTS.iter().find(|(_, key, _)| *key == value) {
            Some((sort, _, _)) => *sort,
            None => {
                return Err(ApiError::bad_parameter(format!(
                    "sort must be one of interest, max, density, index; got {:?}",
                    crate::params::clip(value)
                ))
                .into());
            }
        },
    };
    let page_index = page_number(&context.params)?;
    let store = context.state.store.as_ref();
    let summary = match store.layer_record(context.source, layer, LayerDataKind::Summary)? {
        Some(LayerRecord::Summary(summary)) => summary.neurons,
        _ => Vec::new(),
    };
    let ranking = match store.layer_record(context.source, layer, LayerDataKind::Ranking)? {
        Some(LayerRecord::Ranking(ranking)) => ranking.neurons,
        _ => Vec::new(),
    };

    let mut body = String::with_capacity(64 * 1024);
    body.push_str("<h1>Layer ");
    body.push_str(itoa::Buffer::new().format(layer));
    body.push_str(" <span class=muted>of ");
    escape(&mut body, name);
    body.push_str("</span></h1><div class=toolbar>");
    let prev_href = (layer > 0).then(|| context.href(&format!("/{}", layer - 1)));
    let next_href = (u64::from(layer) + 1 < n_layers).then(|| context.href(&format!("/{}", layer + 1)));
    if let Some(href) = &prev_href {
        body.push_str("<a class=button href=\"");
        escape(&mut body, href);
        body.push_str("\">← layer ");
        body.push_str(itoa::Buffer::new().format(layer - 1));
        body.push_str("</a>");
    }
    if let Some(href) = &next_href {
        body.push_str("<a class=button href=\"");
        escape(&mut body, href);
        body.push_str("\">layer ");
        body.push_str(itoa::Buffer::new().format(layer + 1));
        body.push_str(" →</a>");
    }
    body.push_str("<a class=button id=random href=\"");
    escape(&mut body, &context.href(&format!("/random?layer={layer}")));
    body.push_str("\">Random neuron in this layer</a></div>");

    if summary.is_empty() {
        body.push_str("<p class=muted>No per-neuron summary is stored for this layer.</p>");
    } else {
        body.push_str(
            "<div class=grid><figure id=max-distribution><figcaption>Max activation of each neuron</figcaption>",
        );
        let maxima: Vec<f32> = summary.iter().map(|n| n.max_activation).collect();
        distribution_svg(&mut body, &maxima, &DistributionConfig { label: "max activation", log_x: false });
        body.push_str("</figure><figure id=density-distribution><figcaption>Density of each neuron (share of tokens it is active on)</figcaption>");
        let densities: Vec<f32> = summary.iter().map(|n| n.density).collect();
        distribution_svg(&mut body, &densities, &DistributionConfig { label: "density", log_x: true });
        body.push_str("</figure></div>");
    }

    // Rows: every neuron, with its interest score where ranked.
    let mut scores = vec![f32::NAN; context.source.info.units_per_layer as usize];
    for ranked in &ranking {
        if let Some(slot) = scores.get_mut(ranked.neuron.index as usize) {
            *slot = ranked.score;
        }
    }
    let mut rows: Vec<u32> = if ranking.is_empty() || sort != SortBy::Interest {
        (0..scores.len() as u32).collect()
    } else {
        ranking.iter().map(|r| r.neuron.index).collect()
    };
    let summary_of = |neuron: u32| summary.get(neuron as usize);
    let key = |neuron: &u32, pick: fn(&NeuronSummary) -> f32| summary_of(*neuron).map_or(f32::NEG_INFINITY, pick);
    match sort {
        SortBy::Max => rows.sort_by(|a, b| key(b, |n| n.max_activation).total_cmp(&key(a, |n| n.max_activation))),
        SortBy::Density => rows.sort_by(|a, b| key(b, |n| n.density).total_cmp(&key(a, |n| n.density))),
        SortBy::Interest | SortBy::Index => {}
    }

    body.push_str("<h2>Neurons</h2><div class=toolbar><span>Sort by</span>");
    for (option, key, label) in SORTS {
        if option == sort {
            body.push_str("<strong>");
            body.push_str(label);
            body.push_str("</strong>");
        } else {
            body.push_str("<a href=\"");
            escape(&mut body, &context.href(&format!("/{layer}?sort={key}")));
            body.push_str("\">");
            body.push_str(label);
            body.push_str("</a>");
        }
    }
    body.push_str("</div>");
    let max_of_layer = summary.iter().map(|n| n.max_activation.abs()).fold(0.0f32, f32::max);
    body.push_str("<table id=neurons><thead><tr><th class=num>#</th><th>Neuron</th><th class=num><abbr title=\"");
    body.push_str(dd_data::INTERESTINGNESS_FORMULA);
    body.push_str(
        ": how selective the neuron is, BOS excluded\">Interest</abbr></th>\
         <th class=num>Max</th><th></th><th class=num>Min</th><th class=num>Density</th><th class=num>Kurtosis</th></tr></thead><tbody>",
    );
    let start = page_start(page_index, rows.len())?;
    for (position, &neuron) in rows.iter().enumerate().skip(start).take(PAGE_SIZE) {
        body.push_str("<tr><td class=num>");
        body.push_str(itoa::Buffer::new().format(position + 1));
        body.push_str("</td><td>");
        neuron_link(&mut body, context, NeuronIndex { layer, index: neuron });
        body.push_str("</td>");
        number_cell(&mut body, f64::from(scores.get(neuron as usize).copied().unwrap_or(f32::NAN)));
        match summary_of(neuron) {
            Some(n) => {
                number_cell(&mut body, f64::from(n.max_activation));
                let width =
                    if max_of_layer > 0.0 { (n.max_activation.abs() / max_of_layer * 80.0).round() } else { 0.0 };
                body.push_str("<td><span class=\"bar-inline");
                if n.max_activation < 0.0 {
                    body.push_str(" neg");
                }
                body.push_str("\" style=\"width:");
                body.push_str(itoa::Buffer::new().format(width as u32));
                body.push_str("px\"></span></td>");
                number_cell(&mut body, f64::from(n.min_activation));
                number_cell(&mut body, f64::from(n.density));
                number_cell(&mut body, f64::from(n.kurtosis));
            }
            None => body.push_str("<td></td><td></td><td></td><td></td><td></td>"),
        }
        body.push_str("</tr>");
    }
    body.push_str("</tbody></table>");
    pager(&mut body, context, &context.href(&format!("/{layer}")), page_index, rows.len());

    let mut page = Page::new(format!("Layer {layer} of {name}"), body);
    page.crumbs =
        vec![(name.to_owned(), context.href("")), (format!("Layer {layer}"), context.href(&format!("/{layer}")))];
    page.json_href = Some(format!("/api/{name}/stats/{layer}"));
    page.prev_href = prev_href;
    page.next_href = next_href;
    Ok(page)
}
