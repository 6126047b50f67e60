//! Pieces several pages share: neuron links, paging, number cells, score badges, and the form for a
//! visitor's text.

use std::collections::HashMap;

use dd_data::NeuronIndex;

use super::super::tokens::ColourScale;
use super::super::view::{MAX_TEXT_BYTES, PageContext};
use crate::error::ApiError;
use crate::html::{escape, number};
use crate::params::clip;

/// Rows per page of ranked lists.
pub(super) const PAGE_SIZE: usize = 100;

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

/// Appends a badge with a named score; a `main` one is coloured by its value on the activation
/// colours (orange above zero, blue below, darker towards ±1), since scores such as
/// `ev_correlation_score` are correlations.
pub(crate) fn score_badge(out: &mut String, name: &str, value: f32, main: bool) {
    out.push_str("<span class=\"badge score");
    if main {
        out.push_str(" main");
        if let Some(class) = ColourScale::new(1.0).class(value) {
            out.push(' ');
            out.push_str(class);
        }
    }
    out.push_str("\">");
    escape(out, name);
    out.push(' ');
    number(out, f64::from(value), 3);
    out.push_str("</span>");
}

/// Whether the model's explanations can be searched by meaning here: the server embeds queries and
/// the model has explanations (whether they carry embeddings, the search page says).
pub(crate) fn meaning_search_available(context: &PageContext<'_>) -> bool {
    context.state.query_encoder.is_some() && context.source.has_neuron_kind(dd_data::NeuronDataKind::Explanations)
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
    out.push_str(itoa::Buffer::new().format(MAX_TEXT_BYTES));
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
