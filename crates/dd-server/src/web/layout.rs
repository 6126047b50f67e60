//! The frame every page shares: head, breadcrumbs, theme switch, JSON twin link, the server's
//! notice, footer and assets.

use super::assets;
use crate::html::escape;

/// A page before framing: what [`frame`] needs besides the body.
pub(crate) struct Page {
    /// The `<title>`, without the site name.
    pub(crate) title: String,
    /// Breadcrumbs after "DeepDecipher": (label, href); the last is the current page and not a link.
    pub(crate) crumbs: Vec<(String, String)>,
    /// The same data as JSON (Datasette's rule: every page has a JSON twin).
    pub(crate) json_href: Option<String>,
    /// `<link rel=prev/next>` targets, which the keyboard shortcuts follow.
    pub(crate) prev_href: Option<String>,
    /// See `prev_href`.
    pub(crate) next_href: Option<String>,
    /// The `<main>` content, already HTML.
    pub(crate) body: String,
}

impl Page {
    /// A page with a title and body and nothing else.
    pub(crate) fn new(title: impl Into<String>, body: String) -> Self {
        Page { title: title.into(), crumbs: Vec::new(), json_href: None, prev_href: None, next_href: None, body }
    }
}

/// The whole HTML document of `page`, with the server's `notice` (plain text: what is still being
/// added to the database) under the header.
pub(crate) fn frame(page: &Page, notice: Option<&str>) -> String {
    let mut out = String::with_capacity(page.body.len() + 2048);
    out.push_str("<!doctype html>\n<html lang=en><head><meta charset=utf-8>");
    out.push_str("<meta name=viewport content=\"width=device-width,initial-scale=1\">");
    out.push_str("<meta name=color-scheme content=\"light dark\"><link rel=icon href=\"data:,\"><title>");
    escape(&mut out, &page.title);
    out.push_str(" · DeepDecipher</title><link rel=stylesheet href=\"");
    out.push_str(&assets::STYLE.href());
    out.push_str("\">");
    for (rel, href) in [("prev", &page.prev_href), ("next", &page.next_href), ("alternate", &page.json_href)] {
        if let Some(href) = href {
            out.push_str("<link rel=");
            out.push_str(rel);
            if rel == "alternate" {
                out.push_str(" type=application/json");
            }
            out.push_str(" href=\"");
            escape(&mut out, href);
            out.push_str("\">");
        }
    }
    // The saved theme is applied before the first paint, so a dark page never flashes light.
    out.push_str("<script>try{var t=localStorage.getItem('dd-theme');if(t)document.documentElement.dataset.theme=t}catch(e){}</script>");
    out.push_str("<script defer src=\"");
    out.push_str(&assets::SCRIPT.href());
    out.push_str("\"></script></head><body><header class=top><a class=brand href=\"/\">DeepDecipher</a><nav aria-label=Breadcrumbs>");
    let n_crumbs = page.crumbs.len();
    for (i, (label, href)) in page.crumbs.iter().enumerate() {
        out.push_str("<span class=crumb-sep>›</span> ");
        if i + 1 == n_crumbs {
            out.push_str("<span aria-current=page>");
            escape(&mut out, label);
            out.push_str("</span>");
        } else {
            out.push_str("<a href=\"");
            escape(&mut out, href);
            out.push_str("\">");
            escape(&mut out, label);
            out.push_str("</a>");
        }
    }
    out.push_str("</nav>");
    if let Some(href) = &page.json_href {
        out.push_str("<a class=button id=json href=\"");
        escape(&mut out, href);
        out.push_str("\">JSON</a>");
    }
    out.push_str("<a class=button href=\"/doc\">API</a><button id=theme type=button title=\"Switch light and dark\">◐ Theme</button></header>\n");
    if let Some(notice) = notice {
        // A live region, so screen readers announce it without moving focus.
        out.push_str("<div class=server-notice role=status><p>");
        escape(&mut out, notice);
        out.push_str("</p></div>");
    }
    out.push_str("<main>");
    out.push_str(&page.body);
    out.push_str("</main><footer>DeepDecipher ");
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str(
        " · keys: <span class=kbd>j</span>/<span class=kbd>k</span> next/previous, <span class=kbd>r</span> random, \
         <span class=kbd>/</span> search · <a href=\"/api\">JSON API</a></footer><div id=tip hidden role=tooltip></div></body></html>\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notice sits between the header and the content, escaped; without one nothing is added.
    #[test]
    fn the_notice_is_framed_escaped() {
        let page = Page::new("t", "<p>body</p>".to_owned());
        let framed = frame(&page, Some("3 of 20 <done> & counting"));
        assert!(framed.contains(
            "</header>\n<div class=server-notice role=status><p>3 of 20 &lt;done&gt; &amp; counting</p></div><main>"
        ));
        assert!(!frame(&page, None).contains("server-notice"));
    }
}
