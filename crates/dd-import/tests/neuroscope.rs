//! The Neuroscope importer against pages written as `make_neuroscope_page.py` writes them, served
//! by the fixture server (with gaps, faults and layout changes) and read from a directory, then
//! read back from the SQLite database field by field.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use dd_data::{ExampleGroupKind, ModelDataKind, ModelRecord, NeuronDataKind, NeuronRecord};
use dd_import::formats::neuroscope::{NeuroscopeImporter, parse_neuron_page};
use dd_import::testing::{Fault, FixtureServer};
use dd_import::{DatasetLocation, FetchConfig, ImportJob, ImportSummary, run_import};
use dd_store::{ReadConfig, SqliteStore, StoreLocation, StoreRead};

/// One text of a page: data index, tokens and their activations.
struct Text<'a> {
    data_index: u64,
    tokens: &'a [&'a str],
    values: &'a [f32],
}

/// A CircuitsVis `render_cdn("ColoredTokens", ...)` block as circuitsvis writes it.
fn colored_tokens(id: &str, tokens: &[&str], values: &[f32], max_range: f32) -> String {
    let props = serde_json::json!({"tokens": tokens, "values": values, "minValue": -max_range, "maxValue": max_range});
    format!(
        "<div id=\"circuits-vis-{id}\" style=\"margin: 15px 0;\"/>\n    <script crossorigin type=\"module\">\n    \
         import {{ render, ColoredTokens }} from \"https://unpkg.com/circuitsvis@1.39.1/dist/cdn/esm.js\";\n    \
         render(\n      \"circuits-vis-{id}\",\n      ColoredTokens,\n      {props}\n    )\n    </script>"
    )
}

/// A neuron page as `make_html` writes it: header, (empty) logits, then the texts, joined by `<hr>`.
fn neuron_page(layer: u32, neuron: u32, texts: &[Text<'_>]) -> String {
    let header = format!(
        "<div style='font-size:medium;'>\n< <a href='./{prev}.html'>Prev</a> | \n<a href='../../index.html'>Home</a> | \n\
         <a href='../model.html'>Model</a> | \n<a href='javascript:void(0)' onclick=\"location.href='./' + Math.floor(Math.random() * 4) + '.html'\">Random</a> | \n\
         <a href='./{next}.html'>Next</a> >\n</div>\n<h1>Model: SoLU Model: 2 Layers, 4 Neurons per Layer</h1>\n\
         <h1>Dataset: 80% C4 (Web Text) and 20% Python Code</h1>\n<h2>Neuron {neuron} in Layer {layer} </h2>\n\
         <h2>Load this data into an <a href='https://neelnanda.io/interactive-neuroscope'>Interactive Neuroscope</a></h2>\n\
         <h3><a href='https://neelnanda.io/neuroscope-docs'>See Documentation here</a></h3>\n\
         <h3>Transformer Lens Loading: <span style='font-family: \"Courier New\"'>HookedTransformer.from_pretrained('solu-2l')</span></h3>",
        prev = neuron.saturating_sub(1),
        next = neuron + 1
    );
    let max_range = texts.iter().flat_map(|text| text.values.iter().copied()).fold(f32::MIN, f32::max);
    let sections: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let max_index = text
                .values
                .iter()
                .enumerate()
                .fold(0, |best, (j, &value)| if value > text.values[best] { j } else { best });
            let act_max = text.values.iter().copied().fold(f32::MIN, f32::max);
            let act_min = text.values.iter().copied().fold(f32::MAX, f32::min);
            let start = max_index.saturating_sub(2);
            format!(
                "<h2>Text #{i}</h2><h4>Max Range: <b>{max_range:.4}</b>. Min Range: <b>{:.4}</b></h4>\n\
                 <h4>Max Act: <b>{act_max:.4}</b>. Min Act: <b>{act_min:.4}</b></h4>\n\
                 <h4>Data Index: <b>{}</b> (C4 (Web Text))</h4>\n<h4>Max Activating Token Index: <b>{max_index}</b></h4>\n\
                 <details><summary><b style='color: red'>Click toggle to see full text</b>\n<h3>Truncated</h3>\n{}\n</summary>\n\
                 <h3>Full Text #{i}</h3>\n{}\n</details>",
                -max_range,
                text.data_index,
                colored_tokens(&format!("t{i}"), &text.tokens[start..], &text.values[start..], max_range),
                colored_tokens(&format!("f{i}"), text.tokens, text.values, max_range),
            )
        })
        .collect();
    [header, String::new(), sections.join("\n<hr>\n")].join("\n<hr>\n")
}

/// The site's index page: pandas' `to_html` of the model table, as `gen_main_index_page` writes it.
fn index_page() -> String {
    let row = |name: &str, act: &str, dataset: &str, layers: u32, neurons: &str, total: &str, params: &str| {
        format!(
            "    <tr>\n      <td><a href='./{name}/index.html'>{name}</a></td>\n      <td><a href='./{name}/random.html'>Random</a></td>\n      \
             <td>{act}</td>\n      <td>{dataset}</td>\n      <td>{layers}</td>\n      <td>{neurons}</td>\n      <td>{total}</td>\n      <td>{params}</td>\n    </tr>\n"
        )
    };
    format!(
        "\n<h1>Neuroscope: A Website for Mechanistic Interpretability of Language Models</h1>\n\
         <div>Each model has a page per neuron, displaying the top 20 maximum activating dataset examples.</div>\n\
         <h2>Supported models</h2>\n<table border=\"1\" class=\"dataframe\">\n  <thead>\n    <tr style=\"text-align: right;\">\n      \
         <th>Model</th>\n      <th>Random</th>\n      <th>Act Fn</th>\n      <th>Dataset</th>\n      <th>Layers</th>\n      \
         <th>Neurons per Layer</th>\n      <th>Total Neurons</th>\n      <th>Params</th>\n    </tr>\n  </thead>\n  <tbody>\n{}{}  </tbody>\n</table>\n",
        row("solu-2l", "solu", "80% C4 (Web Text) and 20% Python Code", 2, "4", "8", "3,145,728"),
        row("gpt2-small", "gelu", "Open Web Text", 12, "3,072", "36,864", "84,934,656"),
    )
}

const TOKENS: [&str; 4] = ["<|endoftext|>", " The", " cat", "\n"];

/// Writes the site: the index, the model page and the neuron pages, good and bad.
fn write_site(root: &Path) {
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write("index.html", &index_page());
    write(
        "solu-2l/index.html",
        "<h2>Layers:</h2><ul><li><b><a href='./0/0.html'>Layer #0</b></a></li><li><b><a href='./1/0.html'>Layer #1</b></a></li></ul>",
    );
    let good = [
        Text { data_index: 7, tokens: &TOKENS, values: &[0.0, 0.5, 2.25, -0.125] },
        Text { data_index: 1_200_001, tokens: &TOKENS[..3], values: &[0.0, 1.5, 0.25] },
    ];
    write("solu-2l/0/0.html", &neuron_page(0, 0, &good));
    // Layout changes: extra elements and attributes, another heading level, the labels' order
    // changed, no truncated view, no Data Index suffix, no Max/Min Range line.
    let script = colored_tokens("x", &TOKENS[..2], &[0.75, -1.0], 1.0);
    write(
        "solu-2l/0/1.html",
        &format!(
            "<!DOCTYPE html><html><head><title>Neuroscope</title></head><body class='page'>\
             <nav><a href='../../index.html'>Home</a></nav><div class='hdr'><h3 id='n' class='title'>Neuron 1 in Layer 0</h3></div>\
             <h3>Direct Logit Effect</h3><p style='color: blue'>#0 +1.2 <span class='token'> dog</span></p>\
             <section><h5 class='r' style='x'>Max Act: <b>0.7500</b>. Min Act: <b>-1.0000</b></h5>\
             <h5>Max Range: <b>1.0000</b>. Min Range: <b>-1.0000</b></h5><p>an extra note</p>\
             <h5>Max Activating Token Index: <b>0</b></h5><h5>Data Index: <b>42</b></h5>{script}</section></body></html>"
        )
        .replace("<h5>Max Range", "<h5 data-a='1'>Max Range"),
    );
    // 0/2 has no page (a gap). 0/3 says it is another neuron.
    write("solu-2l/0/3.html", &neuron_page(1, 3, &good));
    // Cut off in the middle of the ColoredTokens data.
    let truncated = neuron_page(1, 0, &good);
    write("solu-2l/1/0.html", &truncated[..truncated.rfind("\"values\"").expect("values")]);
    // Served with a 500 over HTTP; in the directory, a page cut short after its header.
    let header_only = neuron_page(1, 1, &good);
    write("solu-2l/1/1.html", &header_only[..header_only.find("<h2>Text #0").expect("texts")]);
    // An empty page says nothing: a gap.
    write("solu-2l/1/2.html", "");
    write("solu-2l/1/3.html", &neuron_page(1, 3, &good[1..]));
}

fn job(location: DatasetLocation) -> ImportJob {
    let mut job = ImportJob::new(location);
    job.fetch = FetchConfig { retry_delay: Duration::from_millis(2), max_retries: 2, ..FetchConfig::default() };
    job.workers = 2;
    job.commit_every = 3;
    job.model_name = Some("solu-2l".to_owned());
    job
}

fn import(database: &Path, job: &ImportJob) -> ImportSummary {
    let stop = AtomicBool::new(false);
    run_import(&StoreLocation::SqliteFile(database.to_owned()), &NeuroscopeImporter::default(), job, &stop, &|_| {})
        .expect("import runs")
}

/// A stored example: data index, tokens as the vocabulary shows them, activations, max position.
type StoredExample = (u64, Vec<String>, Vec<f32>, u32);

/// The examples stored for a neuron, with tokens shown through the stored vocabulary.
fn stored_examples(store: &SqliteStore, layer: u32, neuron: u32) -> Option<Vec<StoredExample>> {
    let model = store.catalog().model("solu-2l").expect("model");
    let Some(ModelRecord::Vocabulary(vocabulary)) =
        store.model_record(model, ModelDataKind::Vocabulary).expect("vocabulary")
    else {
        panic!("no vocabulary")
    };
    let record = store.neuron_record(&model.sources[0], layer, neuron, NeuronDataKind::Examples).expect("read")?;
    let NeuronRecord::Examples(examples) = record else { panic!("not examples") };
    assert_eq!(examples.groups.len(), 1);
    assert_eq!(examples.groups[0].kind, ExampleGroupKind::Top);
    Some(
        examples.groups[0]
            .examples
            .iter()
            .map(|example| {
                let tokens = example.tokens.iter().map(|&id| vocabulary.tokens[id as usize].clone()).collect();
                (example.dataset_index, tokens, example.activations.clone(), example.max_token_index)
            })
            .collect(),
    )
}

fn assert_close(actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() < 0.02, "{actual:?} vs {expected:?}");
    }
}

fn check_database(database: &Path) {
    let store = SqliteStore::open(database, &ReadConfig::serving()).expect("open");
    let model = store.catalog().model("solu-2l").expect("model");
    let metadata = &model.metadata;
    assert_eq!((metadata.n_layers, metadata.d_mlp, metadata.n_parameters), (2, 4, 3_145_728));
    assert_eq!(metadata.activation_function, "solu");
    assert_eq!(metadata.dataset, "80% C4 (Web Text) and 20% Python Code");
    assert_eq!(metadata.architecture, "tlens");
    assert!(metadata.provenance.data_source.starts_with("neuroscope.io ("), "{}", metadata.provenance.data_source);

    let examples = stored_examples(&store, 0, 0).expect("0/0 imported");
    assert_eq!(examples.len(), 2);
    assert_eq!(examples[0].0, 7);
    assert_eq!(examples[0].1, ["<|endoftext|>", "·The", "·cat", "↵"]);
    assert_close(&examples[0].2, &[0.0, 0.5, 2.25, -0.125]);
    assert_eq!(examples[0].3, 2);
    assert_eq!(examples[1].0, 1_200_001);
    assert_eq!(examples[1].1, ["<|endoftext|>", "·The", "·cat"]);
    assert_close(&examples[1].2, &[0.0, 1.5, 0.25]);
    assert_eq!(examples[1].3, 1);

    let changed = stored_examples(&store, 0, 1).expect("0/1 imported despite its layout");
    assert_eq!(changed.len(), 1);
    assert_eq!((changed[0].0, changed[0].3), (42, 0));
    assert_eq!(changed[0].1, ["<|endoftext|>", "·The"]);
    assert_close(&changed[0].2, &[0.75, -1.0]);

    let last = stored_examples(&store, 1, 3).expect("1/3 imported");
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].0, 1_200_001);
    for (layer, neuron) in [(0, 2), (0, 3), (1, 0), (1, 2)] {
        assert!(stored_examples(&store, layer, neuron).is_none(), "{layer}/{neuron} has examples");
    }
}

/// Good pages, a changed layout, gaps, a wrong header, a truncated page and a server error,
/// served over HTTP; then a rerun that fetches only what failed.
#[test]
fn a_site_over_http_imports_what_parses_and_reports_the_rest() {
    let site = tempfile::tempdir().expect("tempdir");
    write_site(site.path());
    let server = FixtureServer::serve(site.path()).expect("serve");
    server.set_fault("solu-2l/1/1.html", Fault::Status { status: 500, times: 100 });
    server.set_fault("solu-2l/1/3.html", Fault::Status { status: 503, times: 2 });
    server.set_fault("solu-2l/0/0.html", Fault::Truncated { times: 1 });
    let database_dir = tempfile::tempdir().expect("tempdir");
    let database = database_dir.path().join("db.sqlite");
    let job = job(DatasetLocation::Http(server.url()));

    let summary = import(&database, &job);
    assert_eq!((summary.items, summary.imported, summary.missing), (8, 3, 2), "{summary:?}");
    let reasons: Vec<(&str, &str)> =
        summary.failures.iter().map(|failure| (failure.key.as_str(), failure.reason.as_str())).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[0].0, "solu-2l/0/3");
    assert!(reasons[0].1.contains("neuron 3 in layer 1, not neuron 3 in layer 0"), "{}", reasons[0].1);
    assert_eq!(reasons[1].0, "solu-2l/1/0");
    assert!(reasons[1].1.contains("text #1") && reasons[1].1.contains("ColoredTokens"), "{}", reasons[1].1);
    assert_eq!(reasons[2].0, "solu-2l/1/1");
    assert!(reasons[2].1.contains("status 500"), "{}", reasons[2].1);
    check_database(&database);

    // The rerun skips every page that was imported or missing; only the failures are fetched again.
    let done = ["solu-2l/0/0.html", "solu-2l/0/1.html", "solu-2l/0/2.html", "solu-2l/1/2.html", "solu-2l/1/3.html"];
    let before: Vec<usize> = done.iter().map(|path| server.requests_for(path)).collect();
    let total_before = server.total_requests();
    let rerun = import(&database, &job);
    assert_eq!((rerun.already_imported, rerun.imported, rerun.failures.len()), (5, 0, 3), "{rerun:?}");
    assert_eq!(done.iter().map(|path| server.requests_for(path)).collect::<Vec<_>>(), before);
    // The index and the model page, then 0/3 and 1/0 once and 1/1 with its two retries.
    assert_eq!(server.total_requests() - total_before, 2 + 1 + 1 + 3);
    check_database(&database);
}

/// The same site read from a directory gives the same records.
#[test]
fn a_site_in_a_directory_imports_the_same() {
    let site = tempfile::tempdir().expect("tempdir");
    write_site(site.path());
    let database_dir = tempfile::tempdir().expect("tempdir");
    let database = database_dir.path().join("db.sqlite");
    let summary = import(&database, &job(DatasetLocation::Directory(site.path().to_owned())));
    assert_eq!((summary.imported, summary.missing, summary.failures.len()), (3, 2, 3), "{summary:?}");
    let header_only = summary.failures.iter().find(|failure| failure.key == "solu-2l/1/1").expect("1/1 fails");
    assert_eq!(header_only.reason, "the page has its header but no texts");
    check_database(&database);
}

/// A model the index does not list, or no model named where the index has several, stops the
/// import before anything is written, naming the models there are.
#[test]
fn an_unknown_model_is_refused_with_the_choices() {
    let site = tempfile::tempdir().expect("tempdir");
    write_site(site.path());
    let database_dir = tempfile::tempdir().expect("tempdir");
    let stop = AtomicBool::new(false);
    let mut job = job(DatasetLocation::Directory(site.path().to_owned()));
    job.model_name = None;
    let location = StoreLocation::SqliteFile(database_dir.path().join("db.sqlite"));
    let error = run_import(&location, &NeuroscopeImporter::new(Some("solu-9l")), &job, &stop, &|_| {})
        .expect_err("unknown model");
    assert!(error.to_string().contains("\"solu-2l\", \"gpt2-small\""), "{error}");
    let error = run_import(&location, &NeuroscopeImporter::default(), &job, &stop, &|_| {}).expect_err("ambiguous");
    assert!(error.to_string().contains("choose one of"), "{error}");
    // Layers an older model page marks "(Not yet added)" are left out of the plan.
    std::fs::write(
        site.path().join("solu-2l/index.html"),
        "<h2>Layers:</h2>\n<ul>\n<li><b><a href='./0/0.html'>Layer #0</b></a></li>\n<li>Layer #1 (Not yet added)</li>\n</ul>",
    )
    .expect("write");
    let fetcher = dd_import::Fetcher::new(job.location.clone(), job.fetch.clone());
    let plan =
        dd_import::Importer::plan(&NeuroscopeImporter::new(Some("solu-2l")), &fetcher, &job.request).expect("plan");
    let keys: Vec<&str> = plan.items.iter().map(|item| item.key.as_str()).collect();
    assert_eq!(keys, ["solu-2l/0/0", "solu-2l/0/1", "solu-2l/0/2", "solu-2l/0/3"]);
    // Narrowed to a layer and a few neurons, the big model plans only those.
    job.request.layers = Some(vec![11]);
    job.request.units_per_layer = Some(2);
    let plan =
        dd_import::Importer::plan(&NeuroscopeImporter::new(Some("gpt2-small")), &fetcher, &job.request).expect("plan");
    let keys: Vec<&str> = plan.items.iter().map(|item| item.key.as_str()).collect();
    assert_eq!(keys, ["gpt2-small/11/0", "gpt2-small/11/1"]);
    assert_eq!((plan.metadata.n_layers, plan.metadata.d_mlp, plan.metadata.n_parameters), (12, 3072, 84_934_656));
    assert_eq!((plan.metadata.architecture.as_str(), plan.metadata.dataset.as_str()), ("gpt2", "Open Web Text"));
}

/// Pages that cannot be read give reasons, never a panic; a page with a header and no texts has
/// nothing to import.
#[test]
fn malformed_pages_give_reasons() {
    let page = |texts: &str| format!("<h2>Neuron 3 in Layer 1 </h2><hr><hr>{texts}");
    assert_eq!(parse_neuron_page(&page("")).expect("header only").texts, []);
    let cases = [
        ("<h2>Neuron in Layer</h2>", "header"),
        (&page("<h4>Max Range: <b>1</b></h4><h4>Max Activating Token Index: <b>0</b></h4>") as &str, "no Data Index"),
        (&page("<h4>Max Range: <b>1</b></h4><h4>Data Index: <b>x1</b></h4>"), "Data Index \"x1\""),
        (&page("<h4>Max Range: <b>oops</b>.</h4><h4>Data Index: <b>1</b></h4>"), "Max Range \"oops\""),
        (
            &page(
                "<h4>Max Range: <b>1</b></h4><h4>Data Index: <b>1</b></h4><h4>Max Activating Token Index: <b>0</b></h4>",
            ),
            "no ColoredTokens",
        ),
        (
            &page(
                "<h4>Max Range: <b>1</b></h4><h4>Data Index: <b>1</b></h4><h4>Max Activating Token Index: <b>0</b></h4><script>render('a', ColoredTokens, {\"tokens\": [\"a\"], \"values\": [1, 2]})</script>",
            ),
            "1 tokens but 2 values",
        ),
        (
            &page(
                "<h4>Max Range: <b>1</b></h4><h4>Data Index: <b>1</b></h4><h4>Max Activating Token Index: <b>0</b></h4><script>render('a', ColoredTokens, {\"tokens\": [\"a\"], \"values\": [NaN]})</script>",
            ),
            "malformed",
        ),
        (
            &page(
                "<h4>Max Range: <b>1</b></h4><h4>Data Index: <b>1</b></h4><h4>Max Activating Token Index: <b>5</b></h4><script>render('a', ColoredTokens, {\"tokens\": [\"a\"], \"values\": [1]})</script>",
            ),
            "Max Activating Token Index 5 is past the text's 1 tokens",
        ),
        ("\u{0}<<<>>>&&&", "header"),
    ];
    for (html, expected) in cases {
        let error = parse_neuron_page(html).expect_err(html);
        assert!(error.contains(expected), "{html}: {error}");
    }
}
