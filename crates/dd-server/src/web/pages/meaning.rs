//! The search page for meaning: the explanations whose sentence embeddings are closest to a query
//! (`explanation_search.rs`), filtered by origin, layer and score and paged; its JSON twin is
//! `explanation-search`. Where the server embeds no queries or the explanations carry no
//! embeddings, the page says how to get them instead of failing.

use std::fmt::Write;

use super::super::layout::Page;
use super::super::view::{PageContext, PageError};
use super::parts::{PAGE_SIZE, neuron_link, page_number, page_start, pager, percent_encode, score_badge};
use crate::error::ApiError;
use crate::explanation_search::{ExplanationIndex, FILTER_SCORE, Filters, Hit, check_searchable, embed_query};
use crate::html::{count, escape, number};
use crate::params::{clip, parse_index};

/// The filters as the page's query string gives them; empty fields mean none.
struct PageFilters {
    origin: Option<String>,
    layer: Option<u32>,
    min_score: Option<f32>,
}

/// Renders the search page for meaning.
pub(super) fn page(context: &PageContext<'_>) -> Result<Page, PageError> {
    let name = context.model_name();
    let field = |key: &str| context.params.get(key).map(|value| value.trim()).filter(|value| !value.is_empty());
    let query = field("q").unwrap_or_default().to_owned();
    let filters = PageFilters {
        origin: field("origin").map(str::to_owned),
        layer: field("layer").map(|layer| parse_index("layer", layer, context.source.info.n_layers)).transpose()?,
        min_score: field("min_score").map(parse_score).transpose()?,
    };
    let page_index = page_number(&context.params)?;

    // Why the model cannot be searched here, if it cannot: said on the page, with the way out.
    let mut unavailable = None;
    let mut index = None;
    match context.state.query_encoder() {
        Err(error) => unavailable = Some(error.message().to_owned()),
        Ok(_) if !context.source.has_neuron_kind(dd_data::NeuronDataKind::Explanations) => {
            unavailable = Some(format!(
                "model {name:?} has no explanations; `deepdecipher explain` writes them, with embeddings"
            ));
        }
        Ok(encoder) => {
            let built = context.model.explanation_index(
                context.state.store.as_ref(),
                context.source,
                Some(encoder.model_name()),
            )?;
            match check_searchable(&built, encoder.as_ref(), name) {
                Ok(()) => index = Some((built, encoder.clone())),
                Err(error) => unavailable = Some(error.message().to_owned()),
            }
        }
    }

    let mut body = String::with_capacity(32 * 1024);
    body.push_str("<h1>Search explanations of ");
    escape(&mut body, name);
    body.push_str(" by meaning</h1>");
    form(&mut body, context, &query, &filters, index.as_ref().map(|(index, _)| &**index));
    body.push_str(
        "<p class=\"muted small\">Finds the neurons whose explanations mean what you type, in other words too: \
         each explanation's sentence embedding is compared with your text's, by their cosine similarity. To find \
         neurons by the tokens they fire on, use <a href=\"",
    );
    escape(&mut body, &context.href("/search"));
    body.push_str("\">token search</a>.</p>");

    let mut json_href = None;
    match (&index, unavailable) {
        (_, Some(message)) => {
            body.push_str("<p class=notice id=unavailable>");
            escape(&mut body, &message);
            body.push_str(".</p>");
        }
        (None, None) => {}
        (Some(_), None) if query.is_empty() => {
            body.push_str(
                "<p class=muted>Describe a behaviour, like <code>the end of a sentence</code> or <code>names of \
                 cities</code>, to find the neurons explained that way.</p>",
            );
        }
        (Some((index, encoder)), None) => {
            let vector = embed_query(index, encoder.as_ref(), &query)?;
            let page_filters =
                Filters { min_score: filters.min_score, origin: filters.origin.as_deref(), layer: filters.layer };
            let offset = (page_index - 1).saturating_mul(PAGE_SIZE);
            let results = index.search(&vector, &page_filters, offset, PAGE_SIZE);
            json_href = Some(twin_href(name, &query, &filters, offset));
            let start = page_start(page_index, results.total)?;
            body.push_str("<p id=result-count>");
            count(&mut body, results.total as u64);
            if results.total < index.len() {
                body.push_str(" of ");
                count(&mut body, index.len() as u64);
                body.push_str(" explanations (those the filters keep)");
            } else {
                body.push_str(if results.total == 1 { " explanation" } else { " explanations" });
            }
            body.push_str(" for <q>");
            escape(&mut body, &query);
            body.push_str("</q>, most similar first (embedded with ");
            escape(&mut body, index.embedding_model());
            body.push_str(").</p>");
            if !results.hits.is_empty() {
                body.push_str(
                    "<table id=results><thead><tr><th class=num>#</th><th>Neuron</th><th class=num>\
                     <abbr title=\"Cosine similarity of the sentence embeddings, from -1 to 1\">Similarity</abbr>\
                     </th><th>Explanation</th><th>Score</th></tr></thead><tbody>",
                );
                for (position, hit) in results.hits.iter().enumerate() {
                    result_row(&mut body, context, index, start + position + 1, hit);
                }
                body.push_str("</tbody></table>");
                pager(&mut body, context, &context.href("/explanation-search"), page_index, results.total);
            }
        }
    }

    let mut page = Page::new(format!("Search {name} by meaning"), body);
    page.crumbs = vec![
        (name.to_owned(), context.href("")),
        ("Search by meaning".to_owned(), context.href("/explanation-search")),
    ];
    page.json_href = json_href;
    Ok(page)
}

/// A minimum score as typed: a number from -1 to 1, else a 400.
fn parse_score(text: &str) -> Result<f32, ApiError> {
    match text.parse::<f32>() {
        Ok(score) if (-1.0..=1.0).contains(&score) => Ok(score),
        _ => Err(ApiError::bad_parameter(format!("min_score must be a number from -1 to 1, got {:?}", clip(text)))),
    }
}

/// The search form: the query and the three filters (origins from the index when it is built).
fn form(
    out: &mut String,
    context: &PageContext<'_>,
    query: &str,
    filters: &PageFilters,
    index: Option<&ExplanationIndex>,
) {
    out.push_str("<form class=toolbar role=search method=get action=\"");
    escape(out, &context.href("/explanation-search"));
    out.push_str("\"><label for=q>Meaning</label><input id=q name=q type=search required size=40 value=\"");
    escape(out, query);
    out.push_str("\"><label for=origin>Origin</label><select id=origin name=origin><option value=\"\">any</option>");
    let origins: Vec<&str> = index.map(|index| index.origins().collect()).unwrap_or_default();
    let chosen = filters.origin.as_deref();
    // A chosen origin the index lacks stays selectable, so the form shows what was asked.
    for origin in origins.iter().copied().chain(chosen.filter(|chosen| !origins.contains(chosen))) {
        out.push_str("<option");
        if chosen == Some(origin) {
            out.push_str(" selected");
        }
        out.push('>');
        escape(out, origin);
        out.push_str("</option>");
    }
    out.push_str("</select><label for=layer>Layer</label><input id=layer name=layer type=number min=0 max=");
    out.push_str(itoa::Buffer::new().format(context.source.info.n_layers.saturating_sub(1)));
    out.push_str(" value=\"");
    if let Some(layer) = filters.layer {
        out.push_str(itoa::Buffer::new().format(layer));
    }
    out.push_str("\"><label for=min_score title=\"The explanation's ");
    out.push_str(FILTER_SCORE);
    out.push_str(
        ", from -1 to 1\">Score at least</label><input id=min_score name=min_score type=number min=-1 \
                  max=1 step=0.05 value=\"",
    );
    if let Some(score) = filters.min_score {
        number(out, f64::from(score), 3);
    }
    out.push_str("\"><button type=submit>Search</button></form>");
}

/// The JSON twin of a page of results.
fn twin_href(model_name: &str, query: &str, filters: &PageFilters, offset: usize) -> String {
    let mut href = format!("/api/{model_name}/explanation-search?q={}&limit={PAGE_SIZE}", percent_encode(query));
    if offset > 0 {
        let _ = write!(href, "&offset={offset}");
    }
    if let Some(score) = filters.min_score {
        let _ = write!(href, "&min_score={score}");
    }
    if let Some(origin) = &filters.origin {
        let _ = write!(href, "&origin={}", percent_encode(origin));
    }
    if let Some(layer) = filters.layer {
        let _ = write!(href, "&layer={layer}");
    }
    href
}

/// One row of the results table.
fn result_row(out: &mut String, context: &PageContext<'_>, index: &ExplanationIndex, rank: usize, hit: &Hit) {
    let Some(entry) = index.entry(hit.row) else { return };
    out.push_str("<tr><td class=num>");
    out.push_str(itoa::Buffer::new().format(rank));
    out.push_str("</td><td>");
    neuron_link(out, context, entry.neuron);
    out.push_str("</td><td class=num>");
    number(out, f64::from(hit.similarity), 3);
    out.push_str("</td><td><span class=explanation-text>");
    escape(out, entry.text);
    out.push_str("</span> <span class=\"badge origin\">");
    escape(out, entry.origin);
    out.push_str("</span>");
    if let Some(author) = entry.author {
        out.push_str("<span class=\"badge author\">");
        escape(out, author);
        out.push_str("</span>");
    }
    out.push_str("</td><td>");
    if let Some(&(name, value)) = entry.scores.first() {
        score_badge(out, name, value, true);
    }
    out.push_str("</td></tr>");
}
