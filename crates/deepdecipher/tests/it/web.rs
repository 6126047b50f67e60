//! The website over HTTP without a browser: status codes of bad page requests, and "try your own
//! text" through `serve --model` on the tiny GGUF fixture (recorded first, so shapes match), with
//! its limits and its refusals.

use std::path::{Path, PathBuf};

use crate::http::{get, request};
use crate::server::{MODEL, N_LAYERS, Server, asset, fixture_db, run, scratch_dir, shared};

fn gguf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dd-model/tests/fixtures/llama-gguf/model.gguf")
}

fn post_text(addr: std::net::SocketAddr, target: &str, text: &str) -> crate::http::HttpResponse {
    let body: String = text
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let body = format!("text={body}");
    request(addr, "POST", target, &[("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes())
}

/// The values of the visitor's text on a neuron page (its `data-a` attribute).
fn live_values(html: &str) -> Vec<f64> {
    let values = html.split("id=live ").nth(1).and_then(|rest| rest.split("data-a=\"").nth(1)).expect("values");
    values[..values.find('"').expect("end")].split(' ').map(|v| v.parse().expect("number")).collect()
}

/// Bad page requests answer with an HTML error page and the API's status codes.
#[test]
fn bad_page_requests_get_html_errors_with_the_right_status() {
    let addr = shared();
    let cases: [(&str, u16); 14] = [
        ("/viz/no-such-model", 404),
        (&format!("/viz/{MODEL}/{N_LAYERS}"), 404),
        (&format!("/viz/{MODEL}/0/99999"), 404),
        (&format!("/viz/{MODEL}/0/abc"), 400),
        (&format!("/viz/{MODEL}/bogus"), 404),
        (&format!("/viz/{MODEL}/bogus/0/1"), 404),
        (&format!("/viz/{MODEL}/0?page=0"), 400),
        (&format!("/viz/{MODEL}/0?sort=colour"), 400),
        (&format!("/viz/{MODEL}/search?layer=1&neuron=99999"), 404),
        (&format!("/viz/{MODEL}/1?page=2"), 404),
        (&format!("/viz/{MODEL}/search?q=x&page=0"), 400),
        (&format!("/viz/{MODEL}/0/1/2/3/4"), 404),
        ("/static/nothing.js", 404),
        (&format!("/viz/{MODEL}?page=x"), 400),
    ];
    for (target, status) in cases {
        let response = get(addr, target);
        assert_eq!(response.status, status, "{target}: {}", response.text());
        assert!(response.header("content-type").is_some_and(|c| c.starts_with("text/html")), "{target}");
        let html = response.text();
        assert!(html.contains(&format!("<h1>{status} ")), "{target}: {html}");
        assert!(!html.contains("/work/") && !html.contains("panicked"), "{target} leaks: {html}");
    }
    // Every page type answers 200, and the original's service segment is accepted.
    for target in [
        "/".to_owned(),
        "/viz".to_owned(),
        format!("/viz/{MODEL}"),
        format!("/viz/{MODEL}/neuroscope"),
        format!("/viz/{MODEL}/1"),
        format!("/viz/{MODEL}/all/1"),
        format!("/viz/{MODEL}/1/2"),
        format!("/viz/{MODEL}/neuroscope/1/2"),
        format!("/viz/{MODEL}/search?q=the"),
        format!("/viz/{MODEL}/search"),
    ] {
        let response = get(addr, &target);
        assert_eq!(response.status, 200, "{target}: {}", response.text());
    }
    // Jumps and random picks redirect, uncached.
    // `3/17` jumps when it names a neuron; out of range it is just text to search.
    assert_eq!(get(addr, &format!("/viz/{MODEL}/search?q=1/99999")).status, 200);
    let jump = get(addr, &format!("/viz/{MODEL}/search?q=1/2"));
    assert_eq!((jump.status, jump.header("location")), (303, Some(format!("/viz/{MODEL}/1/2").as_str())));
    let random = get(addr, &format!("/viz/{MODEL}/random?layer=1"));
    assert_eq!(random.status, 303);
    assert!(random.header("location").is_some_and(|l| l.starts_with(&format!("/viz/{MODEL}/1/"))));
    assert_eq!(random.header("cache-control"), Some("no-store"));
    // The API stays read-only, and without --model a page's form is refused.
    assert_eq!(request(addr, "POST", &format!("/api/{MODEL}/stats/0/0"), &[], b"text=a").status, 405);
    let refused = post_text(addr, &format!("/viz/{MODEL}/0/0"), "hello");
    assert_eq!(refused.status, 404, "{}", refused.text());
    assert!(refused.text().contains("serve --model"));
    // Assets are served with their content type.
    let home = get(addr, "/").text();
    let css = home.split("href=\"/static/style.css").nth(1).expect("stylesheet link");
    let css_href = format!("/static/style.css{}", &css[..css.find('"').expect("end")]);
    let stylesheet = get(addr, &css_href);
    assert_eq!(stylesheet.status, 200);
    assert!(stylesheet.header("content-type").is_some_and(|c| c.starts_with("text/css")));
}

/// `serve --model` runs visitors' text through the recorded model on neuron and model pages, cuts
/// long texts, refuses empty and oversized ones, and refuses weights of another shape at start-up.
#[test]
fn serve_with_the_model_colours_visitors_text() {
    let database = scratch_dir().join("live.db");
    let (code, _, stderr) = run(&[
        "record",
        gguf().to_str().expect("utf8"),
        asset("shakespeare").to_str().expect("utf8"),
        "-o",
        database.to_str().expect("utf8"),
        "--tokens",
        "4096",
        "--context",
        "64",
        "--no-weights",
    ]);
    assert_eq!(code, 0, "record failed: {stderr}");
    let model_path = gguf();
    let model_arg = model_path.to_str().expect("utf8");
    let mut server = Server::start_logging(
        &database,
        &["--model", model_arg, "--max-live-tokens", "16"],
        "warn,dd_server::access=info",
    );
    let addr = server.addr;
    let name = get(addr, "/api").json()["models"][0]["name"].as_str().expect("name").to_owned();

    let page = post_text(addr, &format!("/viz/{name}/1/3"), "To be, or not to be");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("id=live-result") && html.contains("id=live "), "{html}");
    let values = live_values(&html);
    assert!(values.len() >= 6 && values.iter().all(|v| v.is_finite()), "{values:?}");
    assert!(page.header("cache-control").is_none(), "form answers are not cached");

    // The JSON twin of the text box: both levels, in their documented schemas.
    let document = crate::api::openapi();
    for (target, template) in [
        (
            format!("/api/{name}/activations/1/3?text=To%20be%2C%20or%20not"),
            "/api/{model}/activations/{layer}/{neuron}",
        ),
        (format!("/api/{name}/activations?text=The%20king"), "/api/{model}/activations"),
    ] {
        let response = get(addr, &target);
        assert_eq!(response.status, 200, "{target}: {}", response.text());
        let body = response.json();
        let schema = &document["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        let errors = crate::schema::validate(&document, schema, &body);
        assert!(errors.is_empty(), "{target}: {}", errors.join("\n"));
        let tokens = body["data"]["tokens"].as_array().expect("tokens");
        assert!(tokens.len() >= 3, "{body}");
    }
    let neuron_values = get(addr, &format!("/api/{name}/activations/1/3?text=To%20be%2C%20or%20not")).json();
    let from_api: Vec<f64> = neuron_values["data"]["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["activation"].as_f64().expect("activation"))
        .collect();
    let from_page = post_text(addr, &format!("/viz/{name}/1/3"), "To be, or not").text();
    let shown = live_values(&from_page);
    assert_eq!(shown.len(), from_api.len(), "the page and the API run the same tokens");
    for (page_value, api_value) in shown.iter().zip(&from_api) {
        assert!((page_value - api_value).abs() <= 0.0051 * api_value.abs().max(1.0), "{page_value} vs {api_value}");
    }
    assert!(
        get(addr, "/api").json()["models"][0]["available_services"]
            .as_array()
            .expect("services")
            .iter()
            .any(|s| s == "activations")
    );
    assert_eq!(get(addr, &format!("/api/{name}/activations/1/3")).status, 400, "no text");
    assert_eq!(get(addr, &format!("/api/{name}/activations/1/3?text=")).status, 400, "an empty text");
    // Any text of 1 to 1000 characters runs, spaces alone included; longer ones go to the form.
    for (text, status) in [("%20%20".to_owned(), 200), ("%C3%A9".repeat(1000), 200), ("%C3%A9".repeat(1001), 400)] {
        let response = get(addr, &format!("/api/{name}/activations?text={text}"));
        assert_eq!(response.status, status, "{} characters: {}", text.len() / 6, response.text());
    }

    // A long text is cut to the limit, and the page says so.
    let long = post_text(addr, &format!("/viz/{name}/0/0"), &"word ".repeat(200));
    assert_eq!(long.status, 200);
    assert!(long.text().contains("cut to its first 16 tokens"), "{}", long.text());

    let model_page = post_text(addr, &format!("/viz/{name}"), "The king");
    assert_eq!(model_page.status, 200);
    assert!(model_page.text().contains("id=firing"), "{}", model_page.text());

    // A raw body as curl sends it (`+` for spaces, a bare `#`) reads as the text it is.
    let raw = request(
        addr,
        "POST",
        &format!("/viz/{name}/0/0"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"text=C#+rocks",
    );
    assert_eq!(raw.status, 200, "{}", raw.text());
    assert!(raw.text().contains("C# rocks</textarea>"), "{}", raw.text());
    // The limit is on the decoded text: 3,000 three-byte characters (27 KB encoded) pass; 9 KB fail.
    let wide = post_text(addr, &format!("/viz/{name}/0/0"), &"語".repeat(2700));
    assert_eq!(wide.status, 200, "{}", wide.text());
    assert_eq!(post_text(addr, &format!("/viz/{name}/0/0"), "   ").status, 400);
    assert_eq!(post_text(addr, &format!("/viz/{name}/0"), "layer pages take no text").status, 400);
    let huge = post_text(addr, &format!("/viz/{name}/0/0"), &"x".repeat(9000));
    assert_eq!(huge.status, 413, "{}", huge.text());
    let enormous = post_text(addr, &format!("/viz/{name}/0/0"), &"語".repeat(20_000));
    assert_eq!(enormous.status, 413, "the guard refuses it unread");
    assert!(enormous.text().contains("<h1>413 "), "as a page: {}", enormous.text());
    // The access log names the activations requests but keeps the visitors' texts out.
    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().expect("stderr"), &mut log).expect("log");
    assert!(log.contains("/activations/1/3?…"), "{log}");
    assert!(!log.contains("To%20be") && !log.contains("The%20king"), "visitor text in the log: {log}");
    drop(server);

    // Weights of another shape than the database's are refused with both shapes named.
    let (code, _, stderr) =
        run(&["serve", fixture_db().to_str().expect("utf8"), "--model", model_arg, "--model-name", MODEL]);
    assert_ne!(code, 0);
    assert!(stderr.contains("recorded with") && stderr.contains("neurons"), "{stderr}");
}
