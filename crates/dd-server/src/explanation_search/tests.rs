//! The index in memory against brute force (counts, ranking, filters, pages), then the route and
//! the pages through the whole application over the test database (`testing.rs`: real SQLite,
//! explanations with embeddings, provenance and simulations, the bag-of-words query encoder).

use dd_data::{Explanation, Explanations, NamedScore, NeuronIndex, TextEmbedding};
use serde_json::Value;

use super::*;
use crate::LiveLimits;
use crate::testing::{LiveApp, MARKUP_NEURON, MARKUP_TEXT, MODEL, N_LAYERS, N_NEURONS, TEST_EMBEDDING_MODEL, TOPICS};

/// SplitMix64, for random vectors that are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn signed(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// A random unit vector.
    fn unit_vector(&mut self, dimension: usize) -> Vec<f32> {
        let vector: Vec<f32> = (0..dimension).map(|_| self.signed()).collect();
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        vector.iter().map(|x| x / norm).collect()
    }
}

fn explanation(text: &str, origin: &str, score: Option<f32>, embedding: Option<TextEmbedding>) -> Explanation {
    Explanation {
        text: text.into(),
        origin: origin.into(),
        author: Some("explainer".into()),
        scores: score.map(|value| NamedScore { name: FILTER_SCORE.into(), value }).into_iter().collect(),
        embedding,
        ..Explanation::default()
    }
}

fn build(neurons: Vec<(NeuronIndex, Explanations)>, preferred: Option<&str>) -> ExplanationIndex {
    let neurons = neurons.into_iter().map(Ok::<_, std::convert::Infallible>);
    match ExplanationIndex::from_explanations(neurons, preferred) {
        Ok(index) => index,
        Err(never) => match never {},
    }
}

/// A random index: `n_neurons` neurons over 4 layers, one explanation each of 384 dimensions, with
/// origins `a`/`b` alternating and scores `i / n_neurons` but every seventh unscored; with the
/// exact vectors, by row.
fn random_index(n_neurons: u32, seed: u64) -> (ExplanationIndex, Vec<Vec<f32>>) {
    let mut rng = Rng(seed);
    let per_layer = n_neurons / 4;
    let mut vectors = Vec::new();
    let neurons = (0..n_neurons)
        .map(|i| {
            let vector = rng.unit_vector(384);
            let score = (i % 7 != 0).then_some(i as f32 / n_neurons as f32);
            let origin = if i % 2 == 0 { "a" } else { "b" };
            let embedding = TextEmbedding::quantize("m", &vector);
            vectors.push(vector);
            let neuron = NeuronIndex { layer: i / per_layer, index: i % per_layer };
            (neuron, Explanations { explanations: vec![explanation(&format!("e{i}"), origin, score, Some(embedding))] })
        })
        .collect();
    (build(neurons, None), vectors)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Every explanation is read; those of the most common model (or the preferred one) are indexed,
/// and the others are counted by why they were left out.
#[test]
fn the_build_counts_what_it_indexes_and_skips() {
    let embed = |model: &str, values: Vec<i8>, scale: f32| Some(TextEmbedding { model: model.into(), scale, values });
    let neuron =
        |layer, index, explanations: Vec<Explanation>| (NeuronIndex { layer, index }, Explanations { explanations });
    let neurons = vec![
        neuron(
            0,
            0,
            vec![
                explanation("first", "generated", Some(0.5), embed("a", vec![127, 0, 0], 1.0 / 127.0)),
                explanation("unembedded", "openai", Some(0.9), None),
            ],
        ),
        neuron(0, 1, vec![explanation("second", "openai", None, embed("a", vec![0, 127, 0], 1.0 / 127.0))]),
        neuron(
            1,
            0,
            vec![
                explanation("other model", "generated", None, embed("b", vec![1, 2], 0.1)),
                explanation("short", "generated", None, embed("a", vec![1, 2], 0.1)),
                explanation("no scale", "generated", None, embed("a", vec![1, 2, 3], f32::NAN)),
                explanation("third", "generated", Some(-0.2), embed("a", vec![0, 0, 127], 1.0 / 127.0)),
            ],
        ),
    ];
    let index = build(neurons.clone(), None);
    assert_eq!(index.embedding_model(), "a");
    assert_eq!(index.dimension(), 3);
    assert_eq!(
        index.counts(),
        &IndexCounts {
            explanations: 7,
            indexed: 3,
            without_embedding: 1,
            other_models: vec![("b".into(), 1)],
            malformed: 2,
        }
    );
    let texts: Vec<&str> = (0..index.len() as u32).filter_map(|row| index.entry(row)).map(|e| e.text).collect();
    assert_eq!(texts, ["first", "second", "third"]);
    let third = index.entry(2).expect("third");
    assert_eq!((third.neuron, third.explanation), (NeuronIndex { layer: 1, index: 0 }, 3), "its position is kept");
    assert_eq!((third.origin, third.author, third.score), ("generated", Some("explainer"), Some(-0.2)));
    assert_eq!(index.origins().collect::<Vec<_>>(), ["generated", "openai"]);

    // The query encoder's model wins over the most common one.
    let preferred = build(neurons.clone(), Some("b"));
    assert_eq!((preferred.embedding_model(), preferred.len()), ("b", 1));
    assert_eq!(preferred.counts().other_models, vec![("a".to_owned(), 3)]);
    // An encoder no explanation was embedded with leaves the most common.
    assert_eq!(build(neurons, Some("c")).embedding_model(), "a");

    let empty = build(vec![neuron(0, 0, vec![explanation("x", "o", None, None)])], None);
    assert!(empty.is_empty());
    assert_eq!(empty.search(&[], &Filters::default(), 0, 10), Results { total: 0, hits: Vec::new() });
}

/// A row's own vector finds it first at similarity 1, and on random data the top 10 are brute
/// force's (exact f32 cosines of the unquantised vectors) in the same order, but for neighbours
/// whose exact cosines are within 1e-3, which quantisation may swap.
#[test]
fn the_nearest_vector_ranks_first_and_the_ranking_matches_brute_force() {
    let (index, vectors) = random_index(4096, 7);
    for row in [0usize, 1234, 4095] {
        let results = index.search(&vectors[row], &Filters::default(), 0, 3);
        assert_eq!(results.total, 4096);
        assert_eq!(results.hits[0].row as usize, row);
        assert!((results.hits[0].similarity - 1.0).abs() < 2e-3, "{:?}", results.hits[0]);
    }
    let mut rng = Rng(99);
    for _ in 0..20 {
        let query = rng.unit_vector(384);
        let exact: Vec<f32> = vectors.iter().map(|vector| cosine(&query, vector)).collect();
        let mut expected: Vec<usize> = (0..vectors.len()).collect();
        expected.sort_by(|&a, &b| exact[b].total_cmp(&exact[a]));
        let found = index.search(&query, &Filters::default(), 0, 10);
        for (position, (hit, &wanted)) in found.hits.iter().zip(&expected).enumerate() {
            let got = hit.row as usize;
            assert!(
                got == wanted || (exact[got] - exact[wanted]).abs() <= 1e-3,
                "position {position}: row {got} ({}) where brute force has {wanted} ({})",
                exact[got],
                exact[wanted]
            );
            assert!((hit.similarity - exact[got]).abs() < 2e-3, "{} vs {}", hit.similarity, exact[got]);
        }
        assert!(found.hits.windows(2).all(|pair| pair[0].similarity >= pair[1].similarity));
    }
}

/// Filters apply before ranking: a filtered search is the full ranking with the rows that fail
/// the filters taken out, so its page is full and its total counts the rows that pass.
#[test]
fn filters_apply_before_ranking() {
    let (index, vectors) = random_index(2048, 11);
    let query = &vectors[5];
    let all = index.search(query, &Filters::default(), 0, usize::MAX);
    assert_eq!(all.hits.len(), 2048);
    let cases = [
        Filters { min_score: Some(0.5), ..Filters::default() },
        Filters { min_score: Some(-1.0), ..Filters::default() },
        Filters { origin: Some("b"), ..Filters::default() },
        Filters { layer: Some(2), ..Filters::default() },
        Filters { min_score: Some(0.3), origin: Some("a"), layer: Some(1) },
        Filters { origin: Some("no such origin"), ..Filters::default() },
        Filters { layer: Some(9), ..Filters::default() },
    ];
    for filters in cases {
        let passes = |row: u32| {
            let entry = index.entry(row).expect("entry");
            filters.min_score.is_none_or(|min| entry.score.is_some_and(|score| score >= min))
                && filters.origin.is_none_or(|origin| entry.origin == origin)
                && filters.layer.is_none_or(|layer| entry.neuron.layer == layer)
        };
        let expected: Vec<Hit> = all.hits.iter().copied().filter(|hit| passes(hit.row)).collect();
        let found = index.search(query, &filters, 0, 25);
        assert_eq!(found.total, expected.len(), "{filters:?}");
        assert_eq!(found.hits, expected[..expected.len().min(25)], "{filters:?}");
    }
    // Unscored explanations fail any minimum, even -1.
    let unscored = index.search(query, &Filters { min_score: Some(-1.0), ..Filters::default() }, 0, usize::MAX);
    assert_eq!(unscored.total, 2048 - 2048usize.div_ceil(7));
}

/// Pages are consecutive slices of one ranking, whatever their size; past the end, empty.
#[test]
fn pages_are_slices_of_one_ranking() {
    let (index, vectors) = random_index(1024, 3);
    let query = &vectors[0];
    let filters = Filters { origin: Some("a"), ..Filters::default() };
    let whole = index.search(query, &filters, 0, 1000);
    assert_eq!(whole.total, 512);
    let mut paged = Vec::new();
    for offset in (0..600).step_by(37) {
        let page = index.search(query, &filters, offset, 37);
        assert_eq!(page.total, 512);
        paged.extend(page.hits);
    }
    assert_eq!(paged, whole.hits);
    assert!(index.search(query, &filters, 512, 10).hits.is_empty());
    assert!(index.search(query, &filters, usize::MAX, usize::MAX).hits.is_empty(), "no overflow");
}

// Through the application.

fn json(app: &LiveApp, target: &str) -> (u16, Value) {
    let (status, body) = app.get(target);
    (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("{target}: not JSON: {body}")))
}

/// `value` against an OpenAPI schema: every required property present, none undeclared, and the
/// JSON types the schema names, through `$ref`, arrays and nullable types.
fn check_schema(document: &Value, schema: &Value, value: &Value, at: &str) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().expect("name");
        return check_schema(document, &document["components"]["schemas"][name], value, at);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let fits = |option: &Value| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_schema(document, option, value, at))).is_ok()
        };
        assert!(options.iter().any(fits), "{at}: {value} fits none of {options:?}");
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_u64() || number.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    assert!(types.contains(&kind) || (kind == "integer" && types.contains(&"number")), "{at}: {kind} is not {types:?}");
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_schema(document, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        Value::Object(fields) => {
            let properties = schema["properties"].as_object().expect("properties");
            for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                assert!(fields.contains_key(required), "{at}: `{required}` is missing");
            }
            for (name, field) in fields {
                let property = properties.get(name).unwrap_or_else(|| panic!("{at}: `{name}` is undeclared"));
                check_schema(document, property, field, &format!("{at}.{name}"));
            }
        }
        _ => {}
    }
}

/// The route finds explanations by meaning, most similar first, in its documented shape: the
/// explanations about prime numbers for `prime numbers`; filters narrow it and the index counts
/// what it left out.
#[test]
fn the_route_finds_explanations_by_meaning_in_its_documented_shape() {
    let app = LiveApp::new(LiveLimits::standard());
    let (status, metadata) = json(&app, &format!("/api/{MODEL}/metadata"));
    assert_eq!(status, 200);
    let services = metadata["data"]["available_services"].as_array().expect("services");
    assert!(services.contains(&Value::from("explanation-search")), "{services:?}");

    let (status, body) = json(&app, &format!("/api/{MODEL}/explanation-search?q=prime%20numbers&limit=5"));
    assert_eq!(status, 200, "{body}");
    let document = crate::openapi::document();
    let schema = &document["paths"]["/api/{model}/explanation-search"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    check_schema(document, schema, &body, "body");
    let page = &body["data"];
    assert_eq!(page["embedding_model"], TEST_EMBEDDING_MODEL);
    // Every neuron's synthetic explanation, and the generated ones of even neurons and of 1/3 (not
    // 1/5's, which has no embedding, nor 0/7's, which is another model's).
    let n_generated = N_LAYERS * N_NEURONS / 2 + 1;
    assert_eq!(page["indexed"], N_LAYERS * N_NEURONS + n_generated);
    assert_eq!(page["total"], page["indexed"]);
    let hits = page["explanations"].as_array().expect("explanations");
    assert_eq!(hits.len(), 5);
    // Even neurons whose index / 2 is 3 modulo 4 are about prime numbers: 6 and 14 of each layer.
    for hit in &hits[..4] {
        assert_eq!(hit["text"], format!("{} in layer {}", TOPICS[3], hit["layer"]), "{hit}");
        assert_eq!((&hit["origin"], &hit["author"]), (&Value::from("generated"), &Value::from("test-explainer")));
        assert_eq!(hit["explanation_index"], 1);
        assert_eq!(hit["score"], hit["scores"][0]["value"]);
    }
    let similarities: Vec<f64> = hits.iter().map(|hit| hit["similarity"].as_f64().expect("similarity")).collect();
    assert!(similarities.windows(2).all(|pair| pair[0] >= pair[1]), "{similarities:?}");

    for (filter, holds) in [
        ("origin=synthetic", &(|hit: &Value| hit["origin"] == "synthetic") as &dyn Fn(&Value) -> bool),
        ("layer=1", &|hit: &Value| hit["layer"] == 1),
        ("min_score=0.5", &|hit: &Value| hit["score"].as_f64().is_some_and(|score| score >= 0.5)),
    ] {
        let (status, body) =
            json(&app, &format!("/api/{MODEL}/explanation-search?q=prime%20numbers&limit=1000&{filter}"));
        assert_eq!(status, 200, "{filter}: {body}");
        let hits = body["data"]["explanations"].as_array().expect("explanations");
        assert!(!hits.is_empty(), "{filter}");
        assert_eq!(body["data"]["total"], hits.len(), "{filter}");
        assert!(hits.iter().all(holds), "{filter}: {hits:?}");
    }
    let (status, body) = json(&app, &format!("/api/{MODEL}/explanation-search?q=x&origin=nobody"));
    assert_eq!((status, &body["data"]["total"]), (200, &Value::from(0)));

    // Pages: the second of two starts where the first ended.
    let (_, first) = json(&app, &format!("/api/{MODEL}/explanation-search?q=rivers&limit=4"));
    let (_, second) = json(&app, &format!("/api/{MODEL}/explanation-search?q=rivers&limit=2&offset=2"));
    assert_eq!(first["data"]["explanations"][2], second["data"]["explanations"][0]);
    assert_eq!(second["data"]["offset"], 2);
}

/// Bad parameters are 400, unknown names and out-of-range layers 404, and a server without a
/// query encoder answers 404 `no_query_encoder` saying how to start one, and does not list the
/// service.
#[test]
fn the_route_answers_its_documented_statuses() {
    let app = LiveApp::new(LiveLimits::standard());
    let route = format!("/api/{MODEL}/explanation-search");
    for (target, status, code) in [
        (format!("{route}?q="), 400, "bad_parameter"),
        (route.clone(), 400, "bad_parameter"),
        (format!("{route}?q=a&min_score=2"), 400, "bad_parameter"),
        (format!("{route}?q=a&min_score=NaN"), 400, "bad_parameter"),
        (format!("{route}?q=a&layer=-1"), 400, "bad_parameter"),
        (format!("{route}?q=a&limit=0"), 400, "bad_parameter"),
        (format!("{route}?q=a&query=b"), 400, "unknown_parameter"),
        (format!("{route}?q=a&q=b"), 400, "bad_parameter"),
        (format!("{route}?q=a&layer={N_LAYERS}"), 404, "out_of_range"),
        (format!("{route}?q=a&source=attn"), 404, "unknown_source"),
        ("/api/nope/explanation-search?q=a".to_owned(), 404, "unknown_model"),
        (format!("{route}/1?q=a"), 404, "unsupported_level"),
    ] {
        let (answered, body) = json(&app, &target);
        assert_eq!((answered, body["error"]["code"].as_str()), (status, Some(code)), "{target}: {body}");
    }
    let (status, _) = json(&app, &format!("{route}?q=%20"));
    assert_eq!(status, 200, "spaces are a query too, as the document allows");

    let bare = LiveApp::without_query_encoder(LiveLimits::standard());
    let (status, body) = json(&bare, &format!("{route}?q=a"));
    assert_eq!((status, &body["error"]["code"]), (404, &Value::from("no_query_encoder")), "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("serve --embedder"), "{body}");
    let (_, metadata) = json(&bare, &format!("/api/{MODEL}/metadata"));
    let services = metadata["data"]["available_services"].as_array().expect("services");
    assert!(!services.contains(&Value::from("explanation-search")), "{services:?}");
    let (status, body) = json(&bare, &format!("{route}?q="));
    assert_eq!(status, 400, "parameters are checked first: {body}");
}

/// The `explanations` service serves how each explanation was made, its simulations with their
/// tokens, and its embedding's model but not the vector.
#[test]
fn explanations_carry_provenance_simulations_and_the_embedding_model() {
    let app = LiveApp::new(LiveLimits::standard());
    let (status, body) = json(&app, &format!("/api/{MODEL}/explanations/0/2"));
    assert_eq!(status, 200, "{body}");
    let document = crate::openapi::document();
    let schema = &document["paths"]["/api/{model}/explanations/{layer}/{neuron}"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    check_schema(document, schema, &body, "body");
    let explanations = body["data"]["explanations"].as_array().expect("explanations");
    assert_eq!(explanations.len(), 2);
    let first = &explanations[0];
    assert_eq!(first["embedding_model"], TEST_EMBEDDING_MODEL);
    assert_eq!(first["provenance"]["simulator"], "test-simulator");
    assert_eq!(first["provenance"]["prompt_version"], "test-prompt/1");
    let simulation = &first["simulations"][0];
    let n_tokens = simulation["token_ids"].as_array().expect("ids").len();
    assert!(n_tokens > 0);
    for key in ["tokens", "true_activations", "simulated_activations"] {
        assert_eq!(simulation[key].as_array().expect(key).len(), n_tokens, "{key}");
    }
    let text = serde_json::to_string(&body).expect("text");
    assert!(!text.contains("\"values\"") && !text.contains("\"scale\""), "no vector: {text}");
}

/// The neuron page shows each explanation's score badge coloured by value, origin, explainer,
/// simulator, prompt version and date, the prompt folded in `<details>`, and the held-out text
/// twice: the true activations and the simulator's, with the JSON's values.
#[test]
fn the_neuron_page_shows_how_each_explanation_was_made_and_where_it_fails() {
    let app = LiveApp::new(LiveLimits::standard());
    let (_, twin) = json(&app, &format!("/api/{MODEL}/explanations/0/2"));
    let (status, html) = app.get(&format!("/viz/{MODEL}/0/2"));
    assert_eq!(status, 200);
    let section =
        html.split("<section id=explanations>").nth(1).expect("section").split("</section>").next().expect("end");
    let generated = section.split("id=explanation-1>").nth(1).expect("the generated explanation");
    // Its score, 2 / 16, is orange at 0.125 of the way to 1: the palest of eight steps.
    assert!(generated.contains("<span class=\"badge score main p1\">ev_correlation_score 0.125</span>"), "{generated}");
    assert!(generated.contains("<span class=\"badge score\">rsquared_score -0.188</span>"), "{generated}");
    assert!(generated.contains(">generated</span>") && generated.contains("explainer: test-explainer"), "{generated}");
    let first = section.split("id=explanation-1>").next().expect("the synthetic explanation");
    for shown in ["test-simulator", "test-prompt/1", "2026-12-06T10:40:00Z", TEST_EMBEDDING_MODEL] {
        assert!(first.contains(&format!("<dd>{shown}</dd>")), "{shown} in {first}");
    }
    assert!(
        first.contains("<details class=prompt><summary>The prompt the explainer saw</summary><pre>Explain neuron 0/2 from &lt;these&gt; examples.</pre></details>"),
        "{first}"
    );
    let figure = first
        .split("<figure class=simulation>")
        .nth(1)
        .expect("the simulation")
        .split("</figure>")
        .next()
        .expect("end");
    let simulation = &twin["data"]["explanations"][0]["simulations"][0];
    for (id, key) in [("x0-true", "true_activations"), ("x0-sim", "simulated_activations")] {
        let row = figure.split(&format!("id={id} ")).nth(1).unwrap_or_else(|| panic!("{id} in {figure}"));
        let mut values = String::new();
        for (i, value) in simulation[key].as_array().expect(key).iter().enumerate() {
            values.push_str(if i == 0 { "" } else { " " });
            crate::html::number(&mut values, value.as_f64().expect("value"), 3);
        }
        assert!(row.contains(&format!("data-a=\"{values}\"")), "{id}: {values} in {row}");
        let n_tokens = row.split("</div>").next().expect("row").matches("<i").count();
        assert_eq!(n_tokens, simulation["token_ids"].as_array().expect("ids").len(), "{id}");
    }
    assert!(figure.contains("class=legend"), "one colour scale, shown");
    assert!(first.contains("/explanation-search?q="), "a link to explanations that mean the same");
}

/// Explanation texts are data: escaped on the neuron page and in search results.
#[test]
fn explanation_markup_is_escaped() {
    let app = LiveApp::new(LiveLimits::standard());
    let mut escaped = String::new();
    crate::html::escape(&mut escaped, MARKUP_TEXT);
    let (layer, neuron) = MARKUP_NEURON;
    let (_, page) = app.get(&format!("/viz/{MODEL}/{layer}/{neuron}"));
    let (_, search) = app.get(&format!("/viz/{MODEL}/explanation-search?q=closes%20tags%20quotes"));
    for html in [page, search] {
        assert!(html.contains(&escaped), "{escaped} in {html}");
        assert!(!html.contains("<script>alert"), "{html}");
    }
}

/// The search page lists the JSON twin's explanations in its order with links, similarity and
/// badges; without an encoder it says how to start one, and the model page offers the search only
/// where it works.
#[test]
fn the_search_page_shows_the_twin_and_says_how_to_enable_search() {
    let app = LiveApp::new(LiveLimits::standard());
    let (status, html) = app.get(&format!("/viz/{MODEL}/explanation-search?q=prime+numbers&origin=generated"));
    assert_eq!(status, 200);
    let twin_href = format!("/api/{MODEL}/explanation-search?q=prime%20numbers&amp;limit=100&amp;origin=generated");
    assert!(html.contains(&twin_href), "{html}");
    let (_, twin) = json(&app, &twin_href.replace("&amp;", "&"));
    let hits = twin["data"]["explanations"].as_array().expect("hits");
    let rows: Vec<&str> = html.split("<tbody>").nth(1).expect("a table").split("<tr>").skip(1).collect();
    assert_eq!(rows.len(), hits.len());
    for (row, hit) in rows.iter().zip(hits) {
        assert!(row.contains(&format!("href=\"/viz/{MODEL}/{}/{}\"", hit["layer"], hit["neuron"])), "{row}");
        let mut text = String::new();
        crate::html::escape(&mut text, hit["text"].as_str().expect("text"));
        assert!(row.contains(&text), "{row}");
        assert!(row.contains("class=\"badge score main"), "{row}");
    }
    assert!(html.contains("<option selected>generated</option>"), "the filter stays chosen");
    let (_, model_page) = app.get(&format!("/viz/{MODEL}"));
    assert!(model_page.contains("/explanation-search\"><label for=meaning>"), "offered on the model page");
    let (status, bad) = app.get(&format!("/viz/{MODEL}/explanation-search?q=a&min_score=high"));
    assert_eq!(status, 400, "{bad}");

    let bare = LiveApp::without_query_encoder(LiveLimits::standard());
    let (status, html) = bare.get(&format!("/viz/{MODEL}/explanation-search?q=prime"));
    assert_eq!(status, 200);
    let notice = html.split("id=unavailable>").nth(1).expect("a notice");
    assert!(notice.contains("serve --embedder DIR"), "{notice}");
    let (_, model_page) = bare.get(&format!("/viz/{MODEL}"));
    assert!(!model_page.contains("label for=meaning"), "not offered where it cannot work");
}
