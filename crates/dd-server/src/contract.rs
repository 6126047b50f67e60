//! What each JSON route takes and answers besides its page: its query parameters, with the bounds
//! the server enforces, and the statuses other than 200 it can send. `api.rs` enforces the
//! parameters and `openapi.rs` declares both, so the OpenAPI document is the contract the server
//! keeps: a request the document allows is never refused except by a 404 (something it names does
//! not exist) or a 503, and a request it forbids is refused.
//!
//! Lengths are counted in characters, as JSON Schema counts them, and chosen so that the longest
//! request the document allows fits in [`MAX_URI_BYTES`] even with every character percent-encoded
//! at its widest (12 bytes for a 4-byte UTF-8 character): a valid request is never a 414.

use crate::params::{MAX_INDEX, MAX_NAME_CHARS, ParameterValue, QueryParameter};
use crate::search::{MAX_TERMS, QUERY_PATTERN};
use crate::services::{Level, Service};
use crate::token_query::MatchMode;

/// The longest request target (path and query) the standard configuration accepts, in bytes
/// (`ServerConfig::standard().max_uri_len`). It leaves room for the longest request the document
/// allows, which a test computes.
pub(crate) const MAX_URI_BYTES: usize = 16 * 1024;

/// The longest `activations` text, in characters: more than the 256 tokens a run takes by default
/// (about four characters a token in English). The website's form takes longer texts (8 KB).
pub(crate) const MAX_TEXT_CHARS: usize = 1000;

/// The longest `neuron2graph-search` query, in characters.
pub(crate) const MAX_GRAPH_QUERY_CHARS: usize = 1000;

/// The longest `token-search` query, in characters.
pub(crate) const MAX_TOKEN_QUERY_CHARS: usize = 1000;

/// The largest `token-search` offset: more neurons than any model has.
pub(crate) const MAX_OFFSET: u64 = 100_000_000;

/// The longest `explanation-search` query, in characters: a sentence encoder reads 256 tokens at most.
pub(crate) const MAX_MEANING_QUERY_CHARS: usize = 1000;

/// `?source=`, taken by every model route.
pub(crate) const SOURCE: QueryParameter = QueryParameter {
    name: "source",
    required: false,
    description: "Hook point whose units are addressed (`GET /api` lists each model's sources); default `mlp`.",
    example: "mlp",
    value: ParameterValue::Text { min_chars: 0, max_chars: MAX_NAME_CHARS, pattern: None, default: Some("mlp") },
};

/// `export`'s `?format=`.
pub(crate) const EXPORT_FORMAT: QueryParameter = QueryParameter {
    name: "format",
    required: false,
    description: "The file's format: `parquet` (zstd-compressed pages) or `jsonl.gz` (gzip-compressed JSON lines, \
                  `blob` in base64); default `parquet`. Both have the columns of `docs/export.md`.",
    example: "parquet",
    value: ParameterValue::Choice { values: &["parquet", "jsonl.gz"], default: "parquet" },
};

/// `export`'s `?kinds=`.
pub(crate) const EXPORT_KINDS: QueryParameter = QueryParameter {
    name: "kinds",
    required: false,
    description: "Only records of these kinds, comma-separated kind names (`examples,stats`; `GET /api` lists a \
                  model's kinds); the metadata row is always written. Default: every kind. A name that is no \
                  kind is a 404 `unknown_kind`.",
    example: "examples,stats",
    value: ParameterValue::Text { min_chars: 1, max_chars: 400, pattern: None, default: None },
};

/// `records`' `?kinds=`.
const RECORD_KINDS: QueryParameter = QueryParameter {
    name: "kinds",
    required: false,
    description: "Only records of these kinds, comma-separated kind names (`examples,stats`); names that are no kind \
                  of the level asked for are ignored. Default: every kind.",
    example: "examples,stats",
    value: ParameterValue::Text { min_chars: 1, max_chars: 400, pattern: None, default: None },
};

/// `activations`' `?text=`.
const TEXT: QueryParameter = QueryParameter {
    name: "text",
    required: true,
    description: "The text to run, percent-encoded, 1 to 1000 characters (the website's form takes longer ones). \
                  BOS is put first and the tokens are cut to the server's limit (`--max-live-tokens`, 256 by default).",
    example: "To be, or not to be",
    value: ParameterValue::Text { min_chars: 1, max_chars: MAX_TEXT_CHARS, pattern: None, default: None },
};

/// `neuron2graph-search`'s `?query=`.
const GRAPH_QUERY: QueryParameter = QueryParameter {
    name: "query",
    required: true,
    description: "1 to 16 comma-separated terms: `activating:TOKEN`, `important:TOKEN`, `any:TOKEN`, or a bare `TOKEN` \
                  without `:` (meaning `any`); empty terms are skipped. Each term selects the union of its kinds; \
                  terms intersect. Tokens are matched trimmed and lower-cased.",
    example: "any:the",
    value: ParameterValue::Text {
        min_chars: 1,
        max_chars: MAX_GRAPH_QUERY_CHARS,
        pattern: Some(QUERY_PATTERN),
        default: None,
    },
};

/// `token-search`'s `?query=`: any text is a query (`token_query.rs`), so it has no pattern.
const TOKEN_QUERY: QueryParameter = QueryParameter {
    name: "query",
    required: true,
    description: "1 to 1000 characters: comma-separated terms that must all match, each `activating:TOKEN`, \
                  `important:TOKEN`, `any:TOKEN` or a bare `TOKEN` (`any`); unquoted, a term's words are separate \
                  terms (`she said` is `she,said`), and a token in double quotes is taken whole (`\" the\"`, \
                  `\",\"`). `·` reads as a space. Any text is accepted; one without terms finds nothing.",
    example: "Paris",
    value: ParameterValue::Text { min_chars: 1, max_chars: MAX_TOKEN_QUERY_CHARS, pattern: None, default: None },
};

/// `token-search`'s `?match=`.
const MATCH: QueryParameter = QueryParameter {
    name: "match",
    required: false,
    description: "`insensitive` (default): tokens are compared trimmed and lower-cased, so `paris` finds `·Paris` and \
                  `PARIS`; `exact`: the token's form exactly, case and spaces included, with a space or `·` for a space (`·Paris`, `\" Paris\"`).",
    example: "exact",
    value: ParameterValue::Choice { values: MatchMode::NAMES, default: "insensitive" },
};

/// `token-search`'s `?limit=`.
const LIMIT: QueryParameter = QueryParameter {
    name: "limit",
    required: false,
    description: "Neurons returned, from 1 to 1000 (default 100).",
    example: "10",
    value: ParameterValue::Integer { minimum: 1, maximum: 1000, default: Some(100) },
};

/// `token-search`'s `?offset=`.
const OFFSET: QueryParameter = QueryParameter {
    name: "offset",
    required: false,
    description: "Neurons skipped before the first returned, from 0 to 100,000,000 (default 0); past `total` the page \
                  is empty.",
    example: "100",
    value: ParameterValue::Integer { minimum: 0, maximum: MAX_OFFSET, default: Some(0) },
};

/// `explanation-search`'s `?q=`: any text; the encoder embeds whatever it is given.
const MEANING_QUERY: QueryParameter = QueryParameter {
    name: "q",
    required: true,
    description: "1 to 1000 characters: what the explanations should mean, in plain words (`a verb in the past tense`). \
                  It is embedded by the server's sentence encoder and compared with each explanation's embedding.",
    example: "the end of a sentence",
    value: ParameterValue::Text { min_chars: 1, max_chars: MAX_MEANING_QUERY_CHARS, pattern: None, default: None },
};

/// `explanation-search`'s `?limit=`.
const MEANING_LIMIT: QueryParameter = QueryParameter {
    name: "limit",
    required: false,
    description: "Explanations returned, from 1 to 1000 (default 20).",
    example: "10",
    value: ParameterValue::Integer { minimum: 1, maximum: 1000, default: Some(20) },
};

/// `explanation-search`'s `?offset=`.
const MEANING_OFFSET: QueryParameter = QueryParameter {
    name: "offset",
    required: false,
    description: "Explanations skipped before the first returned, from 0 to 100,000,000 (default 0); past `total` \
                  the page is empty.",
    example: "20",
    value: ParameterValue::Integer { minimum: 0, maximum: MAX_OFFSET, default: Some(0) },
};

/// `explanation-search`'s `?min_score=`.
const MIN_SCORE: QueryParameter = QueryParameter {
    name: "min_score",
    required: false,
    description: "Only explanations whose `ev_correlation_score` (the correlation of the simulated activations with \
                  the true ones, from -1 to 1) is at least this; explanations without that score are left out.",
    example: "0.3",
    value: ParameterValue::Number { minimum: -1.0, maximum: 1.0 },
};

/// `explanation-search`'s `?origin=`.
const ORIGIN: QueryParameter = QueryParameter {
    name: "origin",
    required: false,
    description: "Only explanations of this origin, exactly (`generated`, `openai`, `neuron2graph`, ...); one no \
                  explanation has finds nothing.",
    example: "generated",
    value: ParameterValue::Text { min_chars: 1, max_chars: MAX_NAME_CHARS, pattern: None, default: None },
};

/// `explanation-search`'s `?layer=`.
const LAYER: QueryParameter = QueryParameter {
    name: "layer",
    required: false,
    description: "Only explanations of neurons in this layer; past the model's last layer is a 404 `out_of_range`.",
    example: "1",
    value: ParameterValue::Integer { minimum: 0, maximum: MAX_INDEX, default: None },
};

/// A route of the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /api`.
    Index,
    /// `GET /api/openapi.json`.
    OpenApi,
    /// `GET /-/health`.
    Health,
    /// `GET /-/version`.
    Version,
    /// `GET /api/{model}/{service}…` at one of the service's levels.
    Service(Service, Level),
    /// `GET /api/{model}/all…`.
    All(Level),
    /// `GET /api/{model}/export`: the model's records as one file.
    Export,
}

impl Route {
    /// Every documented route.
    pub(crate) fn all() -> Vec<Route> {
        let mut routes = vec![Route::Index, Route::OpenApi, Route::Health, Route::Version];
        for &service in Service::ALL {
            routes.extend(service.levels().iter().map(|&level| Route::Service(service, level)));
        }
        routes.extend([Level::Model, Level::Layer, Level::Neuron].map(Route::All));
        routes.push(Route::Export);
        routes
    }

    /// The path template, as the document spells it.
    pub(crate) fn path(self) -> String {
        let suffix = |level| match level {
            Level::Model => "",
            Level::Layer => "/{layer}",
            Level::Neuron => "/{layer}/{neuron}",
        };
        match self {
            Route::Index => "/api".into(),
            Route::OpenApi => "/api/openapi.json".into(),
            Route::Health => "/-/health".into(),
            Route::Version => "/-/version".into(),
            Route::Service(service, level) => format!("/api/{{model}}/{}{}", service.name(), suffix(level)),
            Route::All(level) => format!("/api/{{model}}/all{}", suffix(level)),
            Route::Export => "/api/{model}/export".into(),
        }
    }

    /// The level of a model route, `None` for the others.
    pub(crate) fn level(self) -> Option<Level> {
        match self {
            Route::Service(_, level) | Route::All(level) => Some(level),
            Route::Index | Route::OpenApi | Route::Health | Route::Version | Route::Export => None,
        }
    }

    /// The query parameters this route takes.
    pub(crate) fn query_parameters(self) -> &'static [QueryParameter] {
        match self {
            Route::Index | Route::OpenApi | Route::Health | Route::Version => &[],
            Route::Service(service, _) => service_parameters(Some(service)),
            Route::All(_) => service_parameters(None),
            Route::Export => &[EXPORT_FORMAT, EXPORT_KINDS],
        }
    }

    /// The statuses other than 200 this route can answer, each with what it means here; all but
    /// 304 carry the JSON error body.
    pub(crate) fn other_statuses(self) -> Vec<(u16, String)> {
        let service = match self {
            Route::Service(service, _) => Some(service),
            _ => None,
        };
        let mut statuses = Vec::new();
        if !matches!(self, Route::Health | Route::Version) {
            statuses.push((
                304,
                "Not Modified: `If-None-Match` names the ETag this answer would carry (a served database never \
                 changes); no body."
                    .to_owned(),
            ));
        }
        if self == Route::Export {
            statuses.push((
                400,
                format!(
                    "`bad_parameter`: a model name over {MAX_NAME_CHARS} characters, or a query parameter outside \
                     its bounds or given twice. `unknown_parameter`: a query parameter this route does not take."
                ),
            ));
            statuses.push((
                404,
                "`unknown_model`: no model of that name; `unknown_kind`: `kinds` names a kind that does not exist."
                    .to_owned(),
            ));
            statuses.extend(shared_statuses(None));
            statuses.push((
                500,
                "`internal`: a bug or a damaged database; the details go to the server log only. A record that \
                 fails once the file has started ends the body early instead."
                    .to_owned(),
            ));
            statuses.sort_by_key(|(status, _)| *status);
            return statuses;
        }
        let Some(level) = self.level() else {
            statuses.push((400, "`unknown_parameter`: a query parameter (this route takes none).".to_owned()));
            statuses.extend(shared_statuses(service));
            return statuses;
        };
        let parameters = self.query_parameters();
        let mut malformed = vec![format!("a model name over {MAX_NAME_CHARS} characters")];
        if level != Level::Model {
            malformed.push(format!("a layer or neuron that is not an integer from 0 to {MAX_INDEX}"));
        }
        malformed.push("a query parameter outside its bounds or given twice".to_owned());
        if parameters.iter().any(|p| p.required) {
            malformed.push("a missing required parameter".to_owned());
        }
        if service == Some(Service::Neuron2GraphSearch) {
            malformed.push(format!("a query that is not 1 to {MAX_TERMS} terms of the grammar above"));
        }
        statuses.push((
            400,
            format!(
                "`bad_parameter`: {}. `unknown_parameter`: a query parameter this route does not take.",
                malformed.join("; ")
            ),
        ));
        let mut missing = vec!["`unknown_model`: no model of that name".to_owned()];
        missing.push("`unknown_source`: the model has no such `source`".to_owned());
        if level != Level::Model {
            missing.push("`out_of_range`: a layer or neuron past the end".to_owned());
        }
        match service {
            None | Some(Service::Metadata | Service::Records) => {}
            Some(Service::Activations) => {
                missing.push("`no_live_model`: the server does not run this model (`serve --model`)".to_owned());
                missing.push("`unsupported_source`: a `source` other than `mlp`".to_owned());
            }
            Some(Service::TokenSearch) => {
                missing.push("`missing_data`: the model has neither activating tokens nor graphs".to_owned());
                missing.push("`unsupported_source`: a `source` other than `mlp`".to_owned());
            }
            Some(Service::ExplanationSearch) => {
                missing.push(
                    "`missing_data`: the model has no explanations, or none with a sentence embedding (`deepdecipher \
                     explain` writes them)"
                        .to_owned(),
                );
                missing.push(
                    "`no_query_encoder`: the server embeds no queries (start it with `serve --embedder DIR`), or its \
                     encoder is not the model the explanations were embedded with"
                        .to_owned(),
                );
                missing.push("`out_of_range`: a `layer` past the model's last layer".to_owned());
                missing.push("`unsupported_source`: a `source` other than `mlp`".to_owned());
            }
            Some(_) => {
                missing.push("`missing_data`: the model, layer or neuron has no data for this service".to_owned())
            }
        }
        statuses.push((404, format!("{}.", missing.join("; "))));
        statuses.extend(shared_statuses(service));
        statuses
            .push((500, "`internal`: a bug or a damaged database; the details go to the server log only.".to_owned()));
        statuses.sort_by_key(|(status, _)| *status);
        statuses
    }
}

/// The query parameters of a service's routes (`None`: `all`'s).
pub(crate) fn service_parameters(service: Option<Service>) -> &'static [QueryParameter] {
    match service {
        Some(Service::Neuron2GraphSearch) => &[SOURCE, GRAPH_QUERY],
        Some(Service::TokenSearch) => &[SOURCE, TOKEN_QUERY, MATCH, LIMIT, OFFSET],
        Some(Service::ExplanationSearch) => {
            &[SOURCE, MEANING_QUERY, MEANING_LIMIT, MEANING_OFFSET, MIN_SCORE, ORIGIN, LAYER]
        }
        Some(Service::Activations) => &[SOURCE, TEXT],
        Some(Service::Records) => &[SOURCE, RECORD_KINDS],
        _ => &[SOURCE],
    }
}

/// 413, 414 and 503, which any route can answer.
fn shared_statuses(service: Option<Service>) -> Vec<(u16, String)> {
    let mut unavailable = vec!["`timeout`: the request ran past the server's limit (`--timeout-ms`, 10 s by default)"];
    match service {
        Some(Service::Activations) => {
            unavailable.push("`busy`: the model is running other texts and none finished within 2 s");
        }
        Some(Service::TokenSearch | Service::ExplanationSearch) => {
            unavailable.push("`index_building`: the search index is still being built, in the seconds after start-up");
        }
        _ => {}
    }
    vec![
        (
            413,
            "`payload_too_large`: a request body over 16 KiB, or a chunked one (the API takes no bodies).".to_owned(),
        ),
        (
            414,
            format!(
                "`uri_too_long`: a request target over {MAX_URI_BYTES} bytes; no request this document allows is that \
                 long."
            ),
        ),
        (503, format!("{}.", unavailable.join("; "))),
    ]
}

#[cfg(test)]
mod tests {
    //! The document against the server, in process: every route answers its documented statuses
    //! only, every declared bound holds at its limit and is refused just past it, unknown and
    //! repeated parameters are refused, and the longest request the document allows fits.

    use std::time::Duration;

    use serde_json::Value;

    use super::*;
    use crate::LiveLimits;
    use crate::testing::{LiveApp, MODEL};

    /// A character that percent-encodes to 12 bytes, the most any character takes.
    const WIDEST: char = '😀';

    /// Percent-encodes every byte but the unreserved ones, as a client may.
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// A parameter's value in a request: its name, where it goes, and the value.
    type Values = Vec<(String, String, String)>;

    fn target(template: &str, values: &Values) -> String {
        let mut path = template.to_owned();
        let mut query = Vec::new();
        for (name, location, value) in values {
            match location.as_str() {
                "path" => path = path.replace(&format!("{{{name}}}"), &encode(value)),
                _ => query.push(format!("{}={}", encode(name), encode(value))),
            }
        }
        if query.is_empty() { path } else { format!("{path}?{}", query.join("&")) }
    }

    /// Values that address real data: the model, layer 1, neuron 2, and each required parameter's example.
    fn base_values(parameters: &[Value]) -> Values {
        parameters
            .iter()
            .filter(|p| p["required"] == true)
            .map(|p| {
                let name = p["name"].as_str().expect("name");
                let value = match name {
                    "model" => MODEL.to_owned(),
                    "layer" => "1".to_owned(),
                    "neuron" => "2".to_owned(),
                    _ => p["example"].as_str().expect("a required query parameter has an example").to_owned(),
                };
                (name.to_owned(), p["in"].as_str().expect("in").to_owned(), value)
            })
            .collect()
    }

    fn with_value(values: &Values, parameter: &Value, value: String) -> Values {
        let name = parameter["name"].as_str().expect("name").to_owned();
        let mut values: Values = values.iter().filter(|(n, _, _)| *n != name).cloned().collect();
        values.push((name, parameter["in"].as_str().expect("in").to_owned(), value));
        values
    }

    /// Values at and just past each bound of a parameter's schema: (value, whether the schema allows it).
    fn bound_cases(schema: &Value) -> Vec<(String, bool)> {
        let number = |key: &str| schema.get(key).and_then(Value::as_u64);
        let mut cases = Vec::new();
        if let Some(max_length) = number("maxLength") {
            let max_length = max_length as usize;
            cases.push((WIDEST.to_string().repeat(max_length), true));
            cases.push(("a".repeat(max_length), true));
            cases.push((WIDEST.to_string().repeat(max_length + 1), false));
        }
        if let Some(min_length) = number("minLength").filter(|&n| n > 0) {
            cases.push(("a".repeat(min_length as usize), true));
            cases.push(("a".repeat(min_length as usize - 1), false));
        }
        if schema["type"] == "number" {
            // Decimal bounds: at each, a little past each, and what `f64` parses but JSON has not.
            let bound = |key: &str| schema[key].as_f64().expect("a number's bounds");
            let (minimum, maximum) = (bound("minimum"), bound("maximum"));
            for (value, allowed) in
                [(minimum, true), (maximum, true), (minimum - 0.001, false), (maximum + 0.001, false)]
            {
                cases.push((value.to_string(), allowed));
            }
            cases.extend(["NaN", "inf", "-inf", "", "x"].map(|text| (text.to_owned(), false)));
            return cases;
        }
        if let Some(maximum) = number("maximum") {
            cases.push((maximum.to_string(), true));
            cases.push(((u128::from(maximum) + 1).to_string(), false));
        }
        if let Some(minimum) = number("minimum") {
            cases.push((minimum.to_string(), true));
            cases.push((minimum.checked_sub(1).map_or_else(|| "-1".to_owned(), |n| n.to_string()), false));
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            cases.extend(values.iter().map(|value| (value.to_string(), true)));
            for near in [String::new(), values.concat(), values.first().map(|v| v.to_uppercase()).unwrap_or_default()] {
                cases.push((near.clone(), values.contains(&near.as_str())));
            }
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            // The cases above assume the filler characters are in the language; say so if not.
            let pattern = regex::Regex::new(pattern).expect("pattern");
            for (value, allowed) in &cases {
                assert!(!allowed || pattern.is_match(value), "{value:?} is not an allowed value");
            }
        }
        cases
    }

    /// Every value a schema allows at its limits is answered 200 or 404, and every value just
    /// past one is a 400; nothing else, and only documented statuses.
    #[test]
    fn every_declared_bound_is_enforced_at_and_past_its_limit() {
        let limits = LiveLimits { max_tokens: 8, max_concurrent_runs: 1, queue_wait: Duration::from_secs(30) };
        let app = LiveApp::new(limits);
        let document = crate::openapi::document();
        let mut longest = (0, String::new());
        let mut n_requests = 0;
        for (template, item) in document["paths"].as_object().expect("paths") {
            let operation = &item["get"];
            let documented: Vec<&String> = operation["responses"].as_object().expect("responses").keys().collect();
            let send = |target: &str| {
                let (status, body) = app.get(target);
                assert!(documented.contains(&&status.to_string()), "{target}: undocumented {status}: {body}");
                (status, body)
            };
            let parameters = operation["parameters"].as_array().expect("parameters");
            let base = base_values(parameters);
            let base_target = target(template, &base);
            let (status, body) = send(&base_target);
            assert_eq!(status, 200, "{base_target}: {body}");
            let mut widest = base.clone();
            for parameter in parameters {
                let cases = bound_cases(&parameter["schema"]);
                for (value, allowed) in cases {
                    let request = target(template, &with_value(&base, parameter, value));
                    let (status, body) = send(&request);
                    n_requests += 1;
                    if allowed {
                        assert!(status == 200 || status == 404, "{} allowed: {status} {body}", clip(&request));
                    } else {
                        assert_eq!(status, 400, "{} forbidden: {body}", clip(&request));
                    }
                }
                let schema = &parameter["schema"];
                let widest_value = match (schema.get("maxLength"), schema.get("maximum"), schema.get("enum")) {
                    (Some(max_length), _, _) => {
                        WIDEST.to_string().repeat(max_length.as_u64().expect("length") as usize)
                    }
                    (_, Some(maximum), _) => maximum.to_string(),
                    (_, _, Some(Value::Array(values))) => {
                        values.iter().filter_map(Value::as_str).max_by_key(|v| v.len()).expect("a value").to_owned()
                    }
                    _ => panic!("{template}: {} has no upper bound", parameter["name"]),
                };
                widest = with_value(&widest, parameter, widest_value);
            }
            // Everything at its longest at once: the longest request the document allows here.
            let widest_target = target(template, &widest);
            let (status, body) = send(&widest_target);
            assert!(status == 200 || status == 404, "{}: {status} {body}", clip(&widest_target));
            if widest_target.len() > longest.0 {
                longest = (widest_target.len(), template.clone());
            }
            // A parameter the route does not take, and one given twice.
            let unknown = target(
                template,
                &with_value(&base, &serde_json::json!({ "name": "bogus", "in": "query" }), "1".into()),
            );
            let (status, body) = send(&unknown);
            assert_eq!(status, 400, "{unknown}: {body}");
            assert!(body.contains("\"code\":\"unknown_parameter\""), "{unknown}: {body}");
            for parameter in parameters.iter().filter(|p| p["in"] == "query") {
                assert!(body.contains(&format!("`{}`", parameter["name"].as_str().expect("name"))), "{body}");
                let value =
                    parameter["example"].as_str().map_or_else(|| parameter["example"].to_string(), str::to_owned);
                let mut twice = with_value(&base, parameter, value.clone());
                twice.push((parameter["name"].as_str().expect("name").to_owned(), "query".into(), value));
                let (status, body) = send(&target(template, &twice));
                assert_eq!(status, 400, "{template} {}: {body}", parameter["name"]);
                assert!(body.contains("more than once"), "{body}");
            }
        }
        assert!(n_requests > 100, "{n_requests} requests");
        assert!(
            longest.0 <= MAX_URI_BYTES,
            "the longest request the document allows ({}) is {} bytes, over the {MAX_URI_BYTES}-byte limit",
            longest.1,
            longest.0
        );
    }

    fn clip(target: &str) -> String {
        target.chars().take(200).collect()
    }

    /// A text of spaces is a text (the document allows it), and so is one the tokenizer reads as
    /// nothing but BOS.
    #[test]
    fn any_non_empty_text_runs() {
        let app = LiveApp::new(LiveLimits::standard());
        for text in ["%20", "%20%20%0A", "%00", "a"] {
            for route in ["activations", "activations/1/2"] {
                let (status, body) = app.get(&format!("/api/{MODEL}/{route}?text={text}"));
                assert_eq!(status, 200, "{route}?text={text}: {body}");
            }
        }
    }

    /// Routes and parameters here and in the service table agree: every service level is a route.
    #[test]
    fn every_service_level_is_a_route() {
        let routes = Route::all();
        for &service in Service::ALL {
            for &level in service.levels() {
                assert!(routes.contains(&Route::Service(service, level)), "{service:?} {level:?}");
            }
        }
        let paths: std::collections::HashSet<String> = routes.iter().map(|r| r.path()).collect();
        assert_eq!(paths.len(), routes.len(), "paths are distinct");
    }
}
