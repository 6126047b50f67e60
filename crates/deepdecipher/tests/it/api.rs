//! The JSON API against a real server on 127.0.0.1: every documented route, the data it returns,
//! and every kind of bad request.

use std::io::Read;

use dd_data::{ModelDataKind, ModelRecord, NeuronDataKind, NeuronRecord};
use dd_store::{ReadConfig, SqliteStore, StoreRead};
use serde_json::Value;

use crate::http::{self, get, request};
use crate::schema;
use crate::server::{MODEL, N_LAYERS, N_NEURONS, fixture_db, shared};

/// Every service a neuron of the fixture has; `neuron2graph-search` is model-level only.
const NEURON_SERVICES: [&str; 12] = [
    "metadata",
    "neuroscope",
    "examples",
    "stats",
    "logits",
    "neuron_explainer",
    "explanations",
    "neuron2graph",
    "similar",
    "activating_tokens",
    "input_tokens",
    "connections",
];

pub(crate) fn openapi() -> Value {
    get(shared(), "/api/openapi.json").json()
}

fn store() -> SqliteStore {
    SqliteStore::open(fixture_db(), &ReadConfig { n_connections: 1, cache_kib: 1024, mmap_bytes: 0, immutable: true })
        .expect("open fixture")
}

/// Fills a documented path template with real values.
fn concrete(template: &str) -> String {
    let path = template.replace("{model}", MODEL).replace("{layer}", "1").replace("{neuron}", "3");
    if path.contains("neuron2graph-search") {
        format!("{path}?query=any:the")
    } else if path.contains("/activations") {
        format!("{path}?text=hello")
    } else if path.contains("explanation-search") {
        format!("{path}?q=the%20end")
    } else if path.contains("token-search") {
        format!("{path}?query=the&limit=5")
    } else {
        path
    }
}

/// Checks the canonical error shape and that nothing internal leaks.
fn assert_error(response: &http::HttpResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], status);
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    let text = response.text();
    for leak in ["/tmp", "panicked", "rusqlite", "src/", "backtrace"] {
        assert!(!text.contains(leak), "error body leaks {leak:?}: {text}");
    }
}

#[test]
fn every_documented_route_answers_with_its_schema() {
    let document = openapi();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "{} paths", paths.len());
    for (template, item) in paths {
        let target = concrete(template);
        let response = get(shared(), &target);
        if template.contains("/explanation-search") {
            // The fixture server has no sentence encoder (`serve --embedder`).
            assert_error(&response, 404, "no_query_encoder");
            continue;
        }
        if template.contains("/activations") {
            // Only a server holding the model answers these (`tests/it/web.rs` checks them there).
            assert_error(&response, 404, "no_live_model");
            continue;
        }
        assert_eq!(response.status, 200, "{target}: {}", response.text());
        if template.ends_with("/export") {
            // A file, not JSON: Parquet by default (`tests/it/export.rs` and dd-export read it).
            let content = &item["get"]["responses"]["200"]["content"];
            let content_type = response.header("content-type").expect("a content type");
            assert!(content.get(content_type).is_some(), "{target}: undocumented {content_type}");
            assert!(response.body.starts_with(b"PAR1"), "{target}: not Parquet");
            continue;
        }
        assert_eq!(response.header("content-type"), Some("application/json"), "{target}");
        let schema = &item["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        let errors = schema::validate(&document, schema, &response.json());
        assert!(errors.is_empty(), "{target} does not match its schema:\n{}", errors.join("\n"));
    }
}

/// Each service's page inside `/all` matches the schema of that service's own route.
#[test]
fn all_pages_match_their_service_schemas() {
    let document = openapi();
    for (suffix, target) in [
        ("", format!("/api/{MODEL}/all")),
        ("/{layer}", format!("/api/{MODEL}/all/1")),
        ("/{layer}/{neuron}", format!("/api/{MODEL}/all/1/3")),
    ] {
        let body = get(shared(), &target).json();
        let pages = body.as_object().expect("object");
        assert!(!pages.is_empty());
        for (service, page) in pages {
            let path = format!("/api/{{model}}/{service}{suffix}");
            let schema = &document["paths"][&path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["properties"]["data"];
            assert!(schema.is_object(), "{path} is not documented");
            let errors = schema::validate(&document, schema, &page["data"]);
            assert!(errors.is_empty(), "{target} {service}:\n{}", errors.join("\n"));
        }
    }
}

#[test]
fn error_responses_match_their_schema() {
    let document = openapi();
    let schema = serde_json::json!({ "$ref": "#/components/schemas/ErrorResponse" });
    for target in ["/api/nope/neuroscope/0/0", "/api/synth-small/neuroscope/0/x"] {
        let errors = schema::validate(&document, &schema, &get(shared(), target).json());
        assert!(errors.is_empty(), "{target}: {errors:?}");
    }
}

#[test]
fn index_lists_models_with_metadata() {
    let body = get(shared(), "/api").json();
    let models = body["models"].as_array().expect("models");
    let names: Vec<&str> = models.iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(names, vec![MODEL, "other"]);
    let model = &models[0];
    assert_eq!(model["num_layers"], N_LAYERS);
    assert_eq!(model["layer_size"], N_NEURONS);
    assert_eq!(model["num_total_neurons"], N_LAYERS * N_NEURONS);
    assert_eq!(model["activation_function"], "gelu");
    assert_eq!(model["sources"][0]["name"], "mlp");
    let services: Vec<&str> =
        model["available_services"].as_array().expect("services").iter().filter_map(Value::as_str).collect();
    for service in NEURON_SERVICES.iter().chain(&["neuron2graph-search"]) {
        assert!(services.contains(service), "{service} missing from {services:?}");
    }
}

#[test]
fn neuroscope_page_serves_the_stored_examples() {
    let store = store();
    let entry = store.catalog().model(MODEL).expect("model");
    let source = &entry.sources[0];
    let Some(ModelRecord::Vocabulary(vocabulary)) =
        store.model_record(entry, ModelDataKind::Vocabulary).expect("vocab")
    else {
        panic!("no vocabulary");
    };
    for (layer, neuron) in [(0u32, 0u32), (1, 3), (1, 31)] {
        let Some(NeuronRecord::Examples(examples)) =
            store.neuron_record(source, layer, neuron, NeuronDataKind::Examples).expect("read")
        else {
            panic!("no examples");
        };
        let top = examples.top().expect("top group");
        let body = get(shared(), &format!("/api/{MODEL}/neuroscope/{layer}/{neuron}")).json();
        let data = &body["data"];
        assert_eq!(data["neuron_index"], serde_json::json!({ "layer": layer, "neuron": neuron }));
        let texts = data["texts"].as_array().expect("texts");
        assert_eq!(texts.len(), top.examples.len());
        let max_range = top.examples.iter().map(|e| e.max_activation()).fold(f32::MIN, f32::max);
        for (text, example) in texts.iter().zip(&top.examples) {
            let tokens: Vec<&str> =
                text["tokens"].as_array().expect("tokens").iter().filter_map(Value::as_str).collect();
            let expected: Vec<&str> = example.tokens.iter().map(|&t| vocabulary.token(t).expect("in vocab")).collect();
            assert_eq!(tokens, expected);
            let activations = text["activations"].as_array().expect("activations");
            assert_eq!(activations.len(), example.activations.len());
            // The stored values are within `activation_error` of the recorded ones; printing them
            // adds at most a tenth of that bound.
            let bound = f64::from(example.activation_error) * 0.1 + 1e-7;
            for (printed, stored) in activations.iter().zip(&example.activations) {
                let printed = printed.as_f64().expect("number");
                assert!((printed - f64::from(*stored)).abs() <= bound, "{printed} vs {stored} (bound {bound})");
            }
            // Extremes are stored exactly; JSON carries them as the shortest f32 text.
            assert_eq!(text["max_activation"].as_f64().map(|v| v as f32), Some(example.max_activation()));
            assert_eq!(text["data_index"], example.dataset_index);
            assert_eq!(text["max_activating_token_index"], example.max_token_index);
            assert_eq!(text["max_range"].as_f64().map(|v| v as f32), Some(max_range));
        }
        assert_eq!(body["metadata"]["name"], MODEL);
    }
}

/// An f32 as JSON carries it: its shortest round-trip decimal, read back as f64.
fn number(value: f32) -> Value {
    serde_json::json!(value.to_string().parse::<f64>().expect("a finite f32 prints as a number"))
}

/// `activating_tokens`, `input_tokens` and `connections` serve exactly the stored records, token ids
/// resolved through the model's vocabulary, in the first and the last layer.
#[test]
fn token_and_weight_pages_serve_the_stored_records() {
    let store = store();
    let entry = store.catalog().model(MODEL).expect("model");
    let source = &entry.sources[0];
    let Some(ModelRecord::Vocabulary(vocabulary)) =
        store.model_record(entry, ModelDataKind::Vocabulary).expect("vocab")
    else {
        panic!("no vocabulary");
    };
    let token_values = |values: &[dd_data::TokenValue]| -> Value {
        values
            .iter()
            .map(|v| {
                let token = vocabulary.token(v.token).expect("in vocab");
                serde_json::json!({ "token_id": v.token, "token": token, "value": number(v.value) })
            })
            .collect()
    };
    let connections = |list: &[dd_data::Connection]| -> Value {
        list.iter()
            .map(|c| {
                let (layer, neuron) = (c.neuron.layer, c.neuron.index);
                serde_json::json!({ "layer": layer, "neuron": neuron, "weight": number(c.weight) })
            })
            .collect()
    };
    for (layer, neuron) in [(0u32, 0u32), (0, 17), (1, 31)] {
        let read = |kind| store.neuron_record(source, layer, neuron, kind).expect("read").expect("stored");
        let page =
            |service: &str| get(shared(), &format!("/api/{MODEL}/{service}/{layer}/{neuron}")).json()["data"].clone();

        let NeuronRecord::ActivatingTokens(activating) = read(NeuronDataKind::ActivatingTokens) else {
            panic!("wrong kind");
        };
        let expected: Value = activating
            .tokens
            .iter()
            .map(|t| {
                let token = vocabulary.token(t.token).expect("in vocab");
                serde_json::json!({ "token_id": t.token, "token": token, "mean": number(t.mean), "count": t.count })
            })
            .collect();
        assert_eq!(page("activating_tokens"), serde_json::json!({ "tokens": expected }));

        let NeuronRecord::InputTokens(inputs) = read(NeuronDataKind::InputTokens) else { panic!("wrong kind") };
        let expected = serde_json::json!({ "top": token_values(&inputs.top), "bottom": token_values(&inputs.bottom) });
        assert_eq!(page("input_tokens"), expected);

        let NeuronRecord::Connections(stored) = read(NeuronDataKind::Connections) else { panic!("wrong kind") };
        let served = page("connections");
        let expected =
            serde_json::json!({ "inputs": connections(&stored.inputs), "outputs": connections(&stored.outputs) });
        assert_eq!(served, expected);
        // The fixture has two layers: layer 0 reads from nothing, layer 1 writes to nothing.
        assert_eq!(served["inputs"].as_array().expect("inputs").is_empty(), layer == 0, "{served}");
        assert_eq!(served["outputs"].as_array().expect("outputs").is_empty(), layer == 1, "{served}");
    }
}

#[test]
fn layer_and_model_rankings_are_sorted_and_complete() {
    let layer = get(shared(), &format!("/api/{MODEL}/neuroscope/1")).json();
    assert_eq!(layer["data"]["num_neurons"], N_NEURONS);
    let entries = layer["data"]["important_neurons"].as_array().expect("ranking");
    assert_eq!(entries.len() as u64, N_NEURONS);
    let scores: Vec<f64> = entries.iter().map(|e| e[1].as_f64().expect("score")).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "descending: {scores:?}");
    assert!(entries.iter().all(|e| e[0]["layer"] == 1));
    let model = get(shared(), &format!("/api/{MODEL}/neuroscope")).json();
    let entries = model["data"]["important_neurons"].as_array().expect("ranking");
    assert_eq!(entries.len() as u64, N_LAYERS * N_NEURONS);
    let stats = get(shared(), &format!("/api/{MODEL}/stats/0")).json();
    assert_eq!(stats["data"]["neurons"].as_array().expect("summaries").len() as u64, N_NEURONS);
}

#[test]
fn records_serve_the_stored_blobs_that_decode_to_the_stored_records() {
    use base64::Engine;
    let store = store();
    let model = store.catalog().model(MODEL).expect("model").clone();
    let source = model.source(dd_data::MLP_SOURCE).expect("mlp").clone();
    let decode = |value: &Value| {
        base64::engine::general_purpose::STANDARD.decode(value.as_str().expect("base64 text")).expect("base64")
    };
    let body = get(shared(), &format!("/api/{MODEL}/records/1/2")).json();
    let records = body["data"]["records"].as_array().expect("records");
    let mut served = Vec::new();
    for record in records {
        let kind = NeuronDataKind::from_name(record["kind"].as_str().expect("kind")).expect("a neuron kind");
        let blob = decode(&record["data"]);
        assert_eq!(Some(&blob), store.neuron_blob(source.id, 1, 2, kind).expect("read").as_ref(), "{kind:?}");
        assert_eq!(
            dd_store::codec::decode_neuron(kind, &blob).expect("decodes"),
            store.neuron_record(&source, 1, 2, kind).expect("read").expect("stored")
        );
        served.push(kind);
    }
    let stored: Vec<NeuronDataKind> = NeuronDataKind::ALL
        .iter()
        .copied()
        .filter(|&kind| store.neuron_blob(source.id, 1, 2, kind).expect("read").is_some())
        .collect();
    assert_eq!(served, stored, "every stored kind, in kind order");
    assert!(served.len() >= 5, "{served:?}");

    let only = get(shared(), &format!("/api/{MODEL}/records/1/2?kinds=stats,vocabulary")).json();
    let kinds: Vec<&str> = only["data"]["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["stats"], "a name of another level is ignored");

    let model_level = get(shared(), &format!("/api/{MODEL}/records?kinds=vocabulary")).json();
    let vocabulary = decode(&model_level["data"]["records"][0]["data"]);
    assert!(matches!(
        dd_store::codec::decode_model(ModelDataKind::Vocabulary, &vocabulary).expect("decodes"),
        ModelRecord::Vocabulary(_)
    ));
    let layer_level = get(shared(), &format!("/api/{MODEL}/records/1")).json();
    let layer_kinds: Vec<&str> = layer_level["data"]["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["kind"].as_str().expect("kind"))
        .collect();
    assert!(layer_kinds.contains(&"summary"), "{layer_kinds:?}");
    // Raw data stays out of `/all`.
    assert!(
        !get(shared(), &format!("/api/{MODEL}/all/1/2")).json().as_object().expect("object").contains_key("records")
    );
}

#[test]
fn all_returns_every_service_of_a_neuron() {
    let body = get(shared(), &format!("/api/{MODEL}/all/1/2")).json();
    let object = body.as_object().expect("object");
    for service in NEURON_SERVICES {
        assert!(object[service]["data"].is_object(), "{service}: {}", object[service]);
    }
    assert!(!object.contains_key("neuron2graph-search"));
    let examples = &object["examples"]["data"]["groups"];
    assert_eq!(examples[0]["kind"], "top");
    assert_eq!(examples[1]["kind"], "bottom");
    assert_eq!(examples[1]["examples"].as_array().expect("bottom").len(), 3);
    let layer = get(shared(), &format!("/api/{MODEL}/all/1")).json();
    assert!(layer["neuroscope"]["data"]["important_neurons"].is_array());
    assert!(layer["stats"]["data"]["neurons"].is_array());
}

#[test]
fn search_finds_neurons_by_token() {
    let store = store();
    let entry = store.catalog().model(MODEL).expect("model");
    let Some(ModelRecord::TokenIndex(index)) = store.model_record(entry, ModelDataKind::TokenIndex).expect("index")
    else {
        panic!("no token index");
    };
    let entry = index
        .entries
        .iter()
        .find(|e| !e.activating.is_empty() && !e.token.contains([',', ':', '%', '&', '+', '#', ' ']))
        .expect("a plain token");
    let body = get(shared(), &format!("/api/{MODEL}/neuron2graph-search?query=activating:{}", entry.token)).json();
    let found: Vec<(u64, u64)> = body["data"]
        .as_array()
        .expect("results")
        .iter()
        .map(|n| (n["layer"].as_u64().expect("l"), n["neuron"].as_u64().expect("n")))
        .collect();
    let expected: Vec<(u64, u64)> = entry.activating.iter().map(|n| (u64::from(n.layer), u64::from(n.index))).collect();
    assert_eq!(found, expected);
    let none = get(shared(), &format!("/api/{MODEL}/neuron2graph-search?query=any:zzzz-not-a-token")).json();
    assert_eq!(none["data"], serde_json::json!([]));
}

#[test]
fn bad_requests_get_the_right_status_and_shape() {
    let addr = shared();
    let long = format!("/api/{MODEL}/neuroscope/0/{}", "9".repeat(20_000));
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("GET", "/api/nope/neuroscope/0/0".into(), 404, "unknown_model"),
        ("GET", format!("/api/{MODEL}/nope/0/0"), 404, "unknown_service"),
        ("GET", format!("/api/{MODEL}/nope/x"), 404, "unknown_service"),
        ("GET", format!("/api/{MODEL}/neuroscope/0/0?source=sae"), 404, "unknown_source"),
        ("GET", format!("/api/{MODEL}/neuroscope/2/0"), 404, "out_of_range"),
        ("GET", format!("/api/{MODEL}/neuroscope/0/32"), 404, "out_of_range"),
        ("GET", format!("/api/{MODEL}/neuroscope/0/4294967295"), 404, "out_of_range"),
        ("GET", format!("/api/{MODEL}/neuroscope/0/4294967296"), 400, "bad_parameter"),
        ("GET", format!("/api/{}/metadata", "m".repeat(101)), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/neuroscope/0/0?sort=up"), 400, "unknown_parameter"),
        ("GET", format!("/api/{MODEL}/neuroscope/0/0?source=mlp&source=mlp"), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/token-search?query=the&limit=1001"), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/neuron2graph-search?query="), 400, "bad_parameter"),
        ("GET", "/api?x=1".into(), 400, "unknown_parameter"),
        ("GET", "/api/openapi.json?x=1".into(), 400, "unknown_parameter"),
        ("GET", "/-/health?x=1".into(), 400, "unknown_parameter"),
        ("GET", "/-/version?x=1".into(), 400, "unknown_parameter"),
        ("GET", format!("/api/{MODEL}/neuroscope/0/99999999999999999999999"), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/neuroscope/0/abc"), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/neuroscope/-1/0"), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/neuroscope/1.5/0"), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/neuroscope/%FF/0"), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/logits/0"), 404, "unsupported_level"),
        ("GET", format!("/api/{MODEL}/connections/0"), 404, "unsupported_level"),
        ("GET", format!("/api/{MODEL}/activating_tokens"), 404, "unsupported_level"),
        ("GET", format!("/api/{MODEL}/input_tokens/0/x"), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/neuron2graph-search"), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/neuron2graph-search?query=bogus:the"), 400, "bad_parameter"),
        ("GET", format!("/api/{MODEL}/neuron2graph-search?query=,,,"), 400, "bad_parameter"),
        ("GET", "/api/a/b/c/d/e".into(), 404, "not_found"),
        ("GET", "/nothing-here".into(), 404, "not_found"),
        ("GET", long, 414, "uri_too_long"),
        ("POST", format!("/api/{MODEL}/neuroscope/0/0"), 405, "method_not_allowed"),
        ("PUT", "/api".into(), 405, "method_not_allowed"),
        ("DELETE", format!("/api/{MODEL}/neuroscope/0/0"), 405, "method_not_allowed"),
        ("PATCH", "/nothing-here".into(), 405, "method_not_allowed"),
    ];
    for (method, target, status, code) in cases {
        let response = request(addr, method, &target, &[], b"");
        assert_error(&response, status, code);
        if status == 405 {
            assert_eq!(response.header("allow"), Some("GET, HEAD, OPTIONS"));
        }
    }
    let big_body = vec![b'x'; 20_000];
    assert_error(&request(addr, "GET", "/api", &[], &big_body), 413, "payload_too_large");
}

/// Over real HTTP: the longest query the document allows (1000 characters that percent-encode to
/// 12 bytes each) is answered, one character more is a 400, and only a target past the server's
/// limit is a 414. The routes outside the document (`/doc`, its original path, the website) keep
/// ignoring parameters they do not know.
#[test]
fn the_document_bounds_hold_over_http() {
    let addr = shared();
    let document = openapi();
    let query = &document["paths"]["/api/{model}/neuron2graph-search"]["get"]["parameters"][2];
    assert_eq!(query["name"], "query");
    let max_chars = query["schema"]["maxLength"].as_u64().expect("maxLength") as usize;
    let widest = "%F0%9F%98%80";
    let longest = format!("/api/{MODEL}/neuron2graph-search?source=mlp&query={}", widest.repeat(max_chars));
    assert!(longest.len() > 12_000, "{}", longest.len());
    let response = get(addr, &longest);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["data"], serde_json::json!([]));
    let past = format!("{longest}{widest}");
    assert_error(&get(addr, &past), 400, "bad_parameter");
    let unknown = get(addr, &format!("/api/{MODEL}/token-search?query=the&lmit=5"));
    assert_error(&unknown, 400, "unknown_parameter");
    assert!(
        unknown.text().contains("this route takes `source`, `query`, `match`, `limit`, `offset`"),
        "{}",
        unknown.text()
    );
    assert_error(&get(addr, &format!("/api/{MODEL}/metadata?x={}", "a".repeat(20_000))), 414, "uri_too_long");
    for target in ["/doc/openapi.json?x=1", "/doc?x=1", "/viz?x=1"] {
        assert_eq!(get(addr, &format!("{target}&x=2")).status, 200, "{target}");
    }
    assert_eq!(get(addr, &format!("/viz/{MODEL}/1/2?x=1&x=2")).status, 200);
}

#[test]
fn trailing_slashes_and_head_work() {
    let addr = shared();
    assert_eq!(get(addr, &format!("/api/{MODEL}/neuroscope/1/2/")).status, 200);
    assert_eq!(get(addr, "/api/").status, 200);
    let head = request(addr, "HEAD", &format!("/api/{MODEL}/stats/1/2"), &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[test]
fn responses_are_compressed_on_request() {
    let addr = shared();
    let target = format!("/api/{MODEL}/neuroscope/1/4");
    let plain = get(addr, &target);
    assert_eq!(plain.header("content-encoding"), None);
    for encoding in ["gzip", "zstd", "br"] {
        let response = request(addr, "GET", &target, &[("Accept-Encoding", encoding)], b"");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-encoding"), Some(encoding));
        assert!(
            response.body.len() * 2 < plain.body.len(),
            "{encoding}: {} vs {}",
            response.body.len(),
            plain.body.len()
        );
        let mut decoded = Vec::new();
        match encoding {
            "gzip" => {
                flate2::read::GzDecoder::new(&response.body[..]).read_to_end(&mut decoded).expect("gunzip");
            }
            "zstd" => decoded = zstd::decode_all(&response.body[..]).expect("unzstd"),
            _ => {
                brotli::Decompressor::new(&response.body[..], 4096).read_to_end(&mut decoded).expect("unbrotli");
            }
        }
        assert_eq!(decoded, plain.body, "{encoding} round trip");
    }
}

#[test]
fn etags_and_cache_headers_allow_revalidation() {
    let addr = shared();
    let target = format!("/api/{MODEL}/logits/0/1");
    let first = get(addr, &target);
    let etag = first.header("etag").expect("etag").to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    assert!(first.header("cache-control").is_some_and(|c| c.contains("max-age")));
    let revalidated = request(addr, "GET", &target, &[("If-None-Match", &etag)], b"");
    assert_eq!(revalidated.status, 304);
    assert!(revalidated.body.is_empty());
    let changed = request(addr, "GET", &target, &[("If-None-Match", "W/\"something-else\"")], b"");
    assert_eq!(changed.status, 200);
    let error = get(addr, "/api/nope/logits/0/1");
    assert_eq!(error.header("etag"), None, "errors are not cached as content");
    // A tag only matches a representation that exists: unknown names stay 404.
    let unknown = request(addr, "GET", "/api/nope/logits/0/1", &[("If-None-Match", "*")], b"");
    assert_eq!(unknown.status, 404);
    assert_eq!(revalidated.header("vary"), Some("accept-encoding"));
    let health = get(addr, "/-/health");
    assert_eq!(health.header("cache-control"), Some("no-store"));
}

#[test]
fn cors_allows_any_origin_for_reads() {
    let addr = shared();
    let response = request(addr, "GET", "/api", &[("Origin", "https://example.org")], b"");
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    let preflight = request(
        addr,
        "OPTIONS",
        &format!("/api/{MODEL}/neuroscope/0/0"),
        &[("Origin", "https://example.org"), ("Access-Control-Request-Method", "GET")],
        b"",
    );
    assert!(preflight.status == 200 || preflight.status == 204, "{}", preflight.status);
    assert!(preflight.header("access-control-allow-methods").is_some_and(|m| m.contains("GET")));
}

#[test]
fn doc_page_documents_every_route() {
    let addr = shared();
    let page = get(addr, "/doc");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    let html = page.text();
    let document = openapi();
    for path in document["paths"].as_object().expect("paths").keys() {
        assert!(html.contains(&format!("GET {path}")), "/doc lacks {path}");
    }
    for schema in document["components"]["schemas"].as_object().expect("schemas").keys() {
        assert!(html.contains(&format!("id=\"schema-{schema}\"")), "/doc lacks schema {schema}");
    }
    // docs/api.md is the written companion: it must name every route too.
    let api_md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).expect("docs/api.md");
    for path in document["paths"].as_object().expect("paths").keys() {
        assert!(api_md.contains(&format!("`GET {path}`")), "docs/api.md lacks `GET {path}`");
    }
}

#[test]
fn parallel_clients_all_succeed() {
    let addr = shared();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..25u64 {
                    let (layer, neuron) = ((i + t) % N_LAYERS, (i * 7 + t) % N_NEURONS);
                    let response = get(addr, &format!("/api/{MODEL}/all/{layer}/{neuron}"));
                    assert_eq!(response.status, 200);
                    assert_eq!(response.json()["neuroscope"]["data"]["neuron_index"]["neuron"], neuron);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().expect("client thread"));
}
