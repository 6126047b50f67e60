//! The website in headless Chromium: every page type loaded, links followed, the search, the jump
//! form, keyboard navigation, the context control and "try your own text" used, and the rendered
//! content asserted. Screenshots of each page type land in `target/tmp/screenshots/`.
//!
//! `check_site` is the one walk over the site; the synthetic database runs it here, and the demo
//! test runs it on the real SmolLM2 recording with the live model.

mod webdriver;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::get;
use crate::server::{Server, run, scratch_dir};
use webdriver::Browser;

/// What the walk expects of a served model.
pub(crate) struct SiteCheck<'a> {
    /// The model's name.
    pub(crate) model: &'a str,
    /// Screenshot names start with this.
    pub(crate) shot_prefix: &'a str,
    /// The neuron visited: (layer, neuron), with neuron + 1 in the same layer.
    pub(crate) neuron: (u64, u64),
    /// Whether the server runs the model on visitors' text.
    pub(crate) live: bool,
    /// Whether the top example's max token must have the darkest colour (true when positive values dominate).
    pub(crate) darkest_at_max: bool,
    /// Whether the data keeps BOS statistics apart (a real recording; synthetic data has no BOS).
    pub(crate) bos_apart: bool,
}

/// The directory screenshots are saved in.
fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

fn shot(browser: &Browser, check: &SiteCheck<'_>, page: &str) {
    let path = screenshot_dir().join(format!("{}-{page}.png", check.shot_prefix));
    browser.screenshot(&path).expect("screenshot");
}

/// Polls until the current URL satisfies `wanted`.
fn wait_url(browser: &Browser, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let url = browser.current_url().expect("current url");
        if wanted(&url) {
            return url;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "waited for {what}; still at {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn text(browser: &Browser, css: &str) -> String {
    browser.find(css).unwrap_or_else(|e| panic!("{css}: {e}")).text().expect("text")
}

fn count(browser: &Browser, css: &str) -> usize {
    browser.find_all(css).unwrap_or_else(|e| panic!("{css}: {e}")).len()
}

fn script(browser: &Browser, source: &str) -> Value {
    browser.execute(source, vec![]).unwrap_or_else(|e| panic!("script failed ({e}): {source}"))
}

/// The activations an example carries for the tooltip (`data-a` of the element with id `id`).
fn token_values(browser: &Browser, id: &str) -> Vec<f64> {
    let values = script(browser, &format!("return document.getElementById('{id}').dataset.a.split(' ').map(Number)"));
    values.as_array().expect("values").iter().filter_map(Value::as_f64).collect()
}

/// Walks every page type of `check.model` on the server at `addr`.
pub(crate) fn check_site(addr: SocketAddr, check: &SiteCheck<'_>) {
    let browser = Browser::start().expect("start headless Chromium (apt-get install chromium chromium-driver)");
    let base = format!("http://{addr}");
    let model = check.model;
    let (layer, neuron) = check.neuron;

    // Home: the models table links to the model page.
    browser.goto(&format!("{base}/")).expect("home");
    assert!(text(&browser, "#models").contains(model), "home lists {model}");
    shot(&browser, check, "home");
    browser.find(&format!("#models a[href='/viz/{model}']")).expect("model link").click().expect("click");
    wait_url(&browser, "the model page", |url| url.ends_with(&format!("/viz/{model}")));
    assert_eq!(text(&browser, "h1"), model);
    assert!(text(&browser, "#metadata").contains("Neurons per layer"));
    assert!(count(&browser, "#layers a") >= 3, "layer links");
    let median_density = text(&browser, "#layers tbody tr:first-child td:nth-child(3)");
    assert!(median_density.parse::<f64>().is_ok_and(|d| (0.0..=1.0).contains(&d)), "{median_density:?}");
    shot(&browser, check, "model");

    // The jump form leads to the neuron page.
    browser.find("#jump-layer").expect("layer input").send_keys(&layer.to_string()).expect("type");
    browser.find("#jump-neuron").expect("neuron input").send_keys(&neuron.to_string()).expect("type");
    browser.find("#go").expect("go").click().expect("click");
    let neuron_path = format!("/viz/{model}/{layer}/{neuron}");
    wait_url(&browser, "the jump", |url| url.ends_with(&neuron_path));
    check_neuron_page(&browser, addr, check);

    // Keyboard: j goes to the next neuron, k back.
    script(&browser, "document.activeElement && document.activeElement.blur()");
    browser.press_key("j").expect("j");
    wait_url(&browser, "the next neuron", |url| url.ends_with(&format!("/viz/{model}/{layer}/{}", neuron + 1)));
    assert!(text(&browser, "h1").starts_with(&format!("Neuron {} in layer {layer}", neuron + 1)));
    browser.press_key("k").expect("k");
    wait_url(&browser, "the previous neuron", |url| url.ends_with(&neuron_path));

    // The JSON twin holds the same neuron.
    let json_href = browser.find("#json").expect("json link").attribute("href").expect("href").expect("href");
    assert_eq!(json_href, format!("/api/{model}/all/{layer}/{neuron}"));
    let twin = get(addr, &json_href).json();
    assert_eq!(twin["metadata"]["data"]["name"], json!(model), "{twin}");

    // Dark mode switches and sticks to the document.
    browser.find("#theme").expect("theme").click().expect("click");
    assert_eq!(script(&browser, "return document.documentElement.dataset.theme"), json!("dark"));
    let background = script(&browser, "return getComputedStyle(document.body).backgroundColor");
    assert_eq!(background, json!("rgb(21, 23, 27)"), "dark background");
    shot(&browser, check, "neuron-dark");
    browser.find("#theme").expect("theme").click().expect("click");
    assert_eq!(script(&browser, "return document.documentElement.dataset.theme"), json!("light"));

    // The layer page through the breadcrumbs.
    browser.find(&format!("header nav a[href='/viz/{model}/{layer}']")).expect("crumb").click().expect("click");
    wait_url(&browser, "the layer page", |url| url.ends_with(&format!("/viz/{model}/{layer}")));
    assert!(text(&browser, "h1").starts_with(&format!("Layer {layer}")));
    let rows = count(&browser, "#neurons tbody tr");
    assert!(rows > 0 && rows <= 100, "{rows} rows");
    assert!(count(&browser, "#max-distribution svg path") > 0, "max-activation distribution");
    assert!(count(&browser, "#density-distribution svg") == 1, "density distribution");
    shot(&browser, check, "layer");
    if let Ok(next_page) = browser.find(".pager a[rel=next]") {
        next_page.click().expect("click");
        wait_url(&browser, "page 2", |url| url.contains("page=2"));
        assert!(text(&browser, ".pager").contains("page 2 of"));
        assert!(text(&browser, "#neurons tbody tr:first-child td:first-child") == "101");
    }
    // Sorting by max activation orders the rows.
    browser.goto(&format!("{base}/viz/{model}/{layer}?sort=max")).expect("sorted");
    let maxima = script(
        &browser,
        "return Array.from(document.querySelectorAll('#neurons tbody tr')).map(r => parseFloat(r.children[3].textContent))",
    );
    let maxima: Vec<f64> = maxima.as_array().expect("array").iter().filter_map(Value::as_f64).collect();
    assert!(maxima.windows(2).all(|w| w[0] >= w[1]), "sorted by max: {maxima:?}");

    // Search by the neuron's top token.
    let tokens = get(addr, &format!("/api/{model}/activating_tokens/{layer}/{neuron}")).json();
    let token = tokens["data"]["tokens"][0]["token"].as_str().expect("token").replace('·', " ").trim().to_owned();
    // The index is built on a background thread at start-up, and a search meanwhile is a 503
    // `index_building` after 3 s: a debug build reads the demo's 46,080 neurons more slowly than that.
    let started = Instant::now();
    while get(addr, &format!("/api/{model}/token-search?query=the")).status == 503 {
        assert!(started.elapsed() < Duration::from_secs(120), "the search index is never built");
        std::thread::sleep(Duration::from_millis(200));
    }
    browser.goto(&format!("{base}/viz/{model}")).expect("model page");
    let search = browser.find("#q").expect("search box");
    search.send_keys(&token).expect("type");
    browser.press_key("Enter").expect("enter");
    wait_url(&browser, "the search", |url| url.contains("/search?q="));
    assert!(text(&browser, "#result-count").contains(" for "), "result count");
    let results = count(&browser, "#results tbody tr");
    assert!(results >= 1, "no results for {token:?}");
    let search_html = browser.page_source().expect("source");
    assert!(
        search_html.contains(&format!("href=\"{neuron_path}\"")) || results == 100,
        "{neuron_path} not found for {token:?}"
    );
    // Its JSON twin ranks the same neurons: the first row is the first neuron there.
    let twin_href = browser.find("#json").expect("json link").attribute("href").expect("href").expect("href");
    assert!(twin_href.starts_with(&format!("/api/{model}/token-search?query=")), "{twin_href}");
    let twin = get(addr, &twin_href).json();
    let first = &twin["data"]["neurons"][0];
    let first_href = format!("/viz/{model}/{}/{}", first["layer"], first["neuron"]);
    let first_row =
        browser.find("#results tbody tr:first-child a").expect("first row").attribute("href").expect("href");
    assert_eq!(first_row.as_deref(), Some(first_href.as_str()), "{twin}");
    shot(&browser, check, "search");

    // Random goes to some neuron of the model.
    browser.back().expect("back to the model page");
    wait_url(&browser, "the model page", |url| url.ends_with(&format!("/viz/{model}")));
    browser.find("#random").expect("random").click().expect("click");
    let random_url = wait_url(&browser, "a random neuron", |url| {
        let tail = url.rsplit(&format!("/viz/{model}/")).next().unwrap_or_default();
        let parts: Vec<&str> = tail.split('/').collect();
        parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    assert!(count(&browser, "h1") == 1, "{random_url}");

    // No page so far logged a script error or a failed request (the log is read and cleared).
    let errors = browser.console_errors().expect("console");
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // Unknown pages are HTML errors with the status in the title.
    browser.goto(&format!("{base}/viz/{model}/99999/0")).expect("missing layer");
    assert!(text(&browser, "h1").starts_with("404"), "{}", text(&browser, "h1"));
    shot(&browser, check, "error");

    if check.live {
        check_live_text(&browser, &base, check);
    }
}

/// The neuron page: coloured examples, the colour scale, the context control, values on focus.
fn check_neuron_page(browser: &Browser, addr: SocketAddr, check: &SiteCheck<'_>) {
    let (layer, neuron) = check.neuron;
    assert!(text(browser, "h1").starts_with(&format!("Neuron {neuron} in layer {layer}")));
    let n_top = count(browser, "details[data-kind=top] .ex");
    assert!(n_top > 0, "top examples");
    assert!(count(browser, ".ex i[class^=p]") > 0, "positive tokens are coloured");
    // One legend for the examples, and one more for each explanation's simulated text.
    let legends = count(browser, ".legend");
    assert!(legends >= 1, "legend");
    assert_eq!(count(browser, ".legend .scale i"), 16 * legends, "16 swatches per legend");
    assert!(count(browser, "#histogram svg path") > 0, "histogram");
    assert!(count(browser, "#stats table tr") >= 6, "statistics");
    let interest = text(browser, "#interest");
    assert!(interest.starts_with("Interest"), "the interestingness row: {interest}");
    assert_eq!(count(browser, "#stats tr#bos"), usize::from(check.bos_apart), "the BOS row");
    // The max token of the first top example carries a positive colour, the darkest when it is the neuron's max.
    let marked_class = script(
        browser,
        "const e = document.getElementById('e0-0'); return e.children[parseInt(e.dataset.m)].className",
    );
    let marked_class = marked_class.as_str().expect("class").trim().to_owned();
    assert!(marked_class.starts_with('p'), "max token class {marked_class:?}");
    if check.darkest_at_max {
        assert_eq!(marked_class.split(' ').next(), Some("p8"));
    }
    // The values the tooltip shows are the example's activations.
    let values = token_values(browser, "e0-0");
    let n_tokens = count(browser, "#e0-0 > i");
    assert_eq!(values.len(), n_tokens, "one value per token");
    assert!(values.iter().all(|v| v.is_finite()));

    // The context control hides tokens far from the max; "full text" shows them again.
    let visible = |browser: &Browser| {
        script(
            browser,
            "return Array.from(document.getElementById('e0-0').children).filter(c => getComputedStyle(c).display !== 'none').length",
        )
        .as_u64()
        .expect("count") as usize
    };
    script(browser, "const s = document.getElementById('ctx'); s.value = '8'; s.dispatchEvent(new Event('change'))");
    let windowed = visible(browser);
    assert!((1..=17).contains(&windowed), "{windowed} tokens shown around the max");
    browser.find("button[data-full='e0-0']").expect("full text").click().expect("click");
    assert_eq!(visible(browser), n_tokens, "full text");

    // Focus an example and step through its tokens with the arrows; the value is announced.
    browser.find("#e0-0").expect("example").click().expect("focus");
    browser.press_key("ArrowRight").expect("arrow");
    let status = text(browser, "#status");
    assert!(status.contains("position"), "status {status:?}");
    script(browser, "const s = document.getElementById('ctx'); s.value = '32'; s.dispatchEvent(new Event('change'))");
    shot(browser, check, "neuron");

    // Bottom examples, where recorded, open from their summary.
    if let Ok(summary) = browser.find("details[data-kind=bottom] > summary") {
        summary.click().expect("open bottom examples");
        let shown = script(
            browser,
            "return Array.from(document.querySelectorAll('details[data-kind=bottom] .ex')).filter(e => e.offsetHeight > 0).length",
        );
        assert!(shown.as_u64().is_some_and(|n| n > 0), "bottom examples shown: {shown}");
    }
    // The Neuron2Graph graph, where present, has one box per node of the stored graph.
    if browser.find("#graph svg").is_ok() {
        let graph = get(addr, &format!("/api/{}/neuron2graph/{layer}/{neuron}", check.model)).json();
        let n_nodes = graph["data"]["graph"]["graph"].as_array().expect("nodes").len();
        assert_eq!(count(browser, "#graph svg rect.n2g-node"), n_nodes.min(200), "{graph}");
        // End nodes have the thick outline, and scores, where the graph has them, sit above it.
        let n_end = graph["data"]["graph"]["graph"].as_array().expect("nodes").iter().filter(|n| n["is_end"] == true);
        if n_nodes <= 200 {
            assert_eq!(count(browser, "#graph svg rect.n2g-end"), n_end.count(), "{graph}");
        }
        if !graph["data"]["scores"].is_null() {
            assert!(text(browser, "#graph-scores").contains("held-out top"), "the graph's scores are shown");
        }
        let first_link = browser.find("#graph svg a").expect("node link").attribute("href").expect("href");
        assert!(first_link.is_some_and(|href| href.contains("/search?q=")), "nodes link to the token search");
        script(browser, "document.getElementById('graph').scrollIntoView()");
        shot(browser, check, "neuron-graph");
    }
}

/// "Try your own text" on the neuron page and on the model page.
fn check_live_text(browser: &Browser, base: &str, check: &SiteCheck<'_>) {
    let (layer, neuron) = check.neuron;
    browser.goto(&format!("{base}/viz/{}/{layer}/{neuron}", check.model)).expect("neuron page");
    browser.find("#text").expect("text box").send_keys("To be, or not to be, that is the question.").expect("type");
    browser.find("#run").expect("run").click().expect("click");
    browser.wait_for("#live-result", Duration::from_secs(60)).expect("live result");
    let n_tokens = count(browser, "#live > i");
    assert!(n_tokens >= 10, "{n_tokens} tokens");
    let shown: String = text(browser, "#live");
    assert!(shown.contains("question"), "{shown}");
    let values = token_values(browser, "live");
    assert_eq!(values.len(), n_tokens);
    assert!(values.iter().any(|v| *v != 0.0), "the neuron responds somewhere: {values:?}");
    assert!(text(browser, "#text").contains("To be, or not"), "the text stays in the box");
    shot(browser, check, "neuron-live");

    browser.goto(&format!("{base}/viz/{}", check.model)).expect("model page");
    browser.find("#text").expect("text box").send_keys("The capital of France is Paris.").expect("type");
    browser.find("#run").expect("run").click().expect("click");
    browser.wait_for("#firing", Duration::from_secs(60)).expect("firing table");
    let rows = count(browser, "#firing tbody tr");
    assert!(rows >= 7, "{rows} token rows");
    assert!(count(browser, "#firing tbody tr:last-child a") >= 1, "neurons listed for the last token");
    shot(browser, check, "model-live");
}

/// The synthetic database: three layers of 256 neurons with bottom examples, paging on the layer page.
#[test]
fn synthetic_site_in_headless_chromium() {
    let database = scratch_dir().join("browser.db");
    let path = database.to_str().expect("utf8 path");
    let (code, _, stderr) = run(&[
        "synth",
        path,
        "--name",
        "synth-web",
        "--layers",
        "3",
        "--neurons",
        "256",
        "--bottom-examples",
        "5",
        "--vocab",
        "5000",
    ]);
    assert_eq!(code, 0, "synth failed: {stderr}");
    let server = Server::start(&database, &[]);
    let check = SiteCheck {
        model: "synth-web",
        shot_prefix: "synth",
        neuron: (1, 3),
        live: false,
        darkest_at_max: true,
        bos_apart: false,
    };
    check_site(server.addr, &check);
}
