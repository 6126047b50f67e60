//! The OpenAPI 3.1 document (`/api/openapi.json`) and the doc page rendered from it (`/doc`).
//!
//! Schemas come from the wire types' `ToSchema` derives; paths are generated from the service table,
//! and parameters and statuses from `contract`, which the handlers enforce, so none can drift from
//! what the server does.

use std::sync::OnceLock;

use dd_export::ExportFormat;
use serde_json::{Value, json};
use utoipa::OpenApi;

use crate::contract::Route;
use crate::params::{MAX_INDEX, MAX_NAME_CHARS, ParameterValue, QueryParameter};
use crate::services::{Level, Service};
use crate::wire;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DeepDecipher API",
        description = "Per-neuron interpretability data of transformer language models: examples, statistics, \
                       logit attribution, explanations, Neuron2Graph graphs, similar neurons, activating and \
                       input tokens, weight connections, and relations between neurons (correlations, co-activating \
                       groups, roles in the weight graph, behaviour embeddings, change between recordings).",
        license(name = "MIT")
    ),
    components(schemas(
        wire::ModelsResponse,
        wire::MetadataObject,
        wire::ProvenanceObject,
        wire::SourceObject,
        wire::NeuronIndexObject,
        wire::NeuroscopeModelPage,
        wire::NeuroscopeLayerPage,
        wire::NeuroscopeNeuronPage,
        wire::NeuroscopeText,
        wire::ExamplesPage,
        wire::ExampleGroupObject,
        wire::ExampleObject,
        wire::StatsPage,
        wire::HistogramObject,
        wire::LayerStatsPage,
        wire::NeuronSummaryObject,
        wire::LogitsPage,
        wire::TokenValueObject,
        wire::NeuronExplainerPage,
        wire::ExplanationsPage,
        wire::ExplanationObject,
        wire::ExplanationProvenanceObject,
        wire::SimulatedSequenceObject,
        wire::ScoreObject,
        wire::ExplanationSearchPage,
        wire::ExplanationSearchHitObject,
        wire::Neuron2GraphPage,
        wire::GraphObject,
        wire::GraphNodeObject,
        wire::SimilarNeuronObject,
        wire::GraphScoresObject,
        wire::FiringCountsObject,
        wire::SimilarPage,
        wire::ActivatingTokensPage,
        wire::TokenMeanObject,
        wire::TokenSearchPage,
        wire::TextActivationsPage,
        wire::RecordsPage,
        wire::RecordObject,
        wire::TokenActivationObject,
        wire::TextFiringPage,
        wire::TokenFiringObject,
        wire::FiringObject,
        wire::TokenSearchHitObject,
        wire::SearchTermObject,
        wire::TermMatchObject,
        wire::InputTokensPage,
        wire::ConnectionsPage,
        wire::ConnectionObject,
        wire::CorrelationsPage,
        wire::CorrelatedNeuronObject,
        wire::GroupsPage,
        wire::GroupSummaryObject,
        wire::NeuronGroupPage,
        wire::GroupPage,
        wire::GroupContextObject,
        wire::RoleObject,
        wire::LayerRolesPage,
        wire::RolesModelPage,
        wire::EmbeddingPage,
        wire::ChangeObject,
        wire::NeuronChangePage,
        wire::LayerChangesPage,
        wire::ChangesModelPage,
        wire::LayerChangeSummaryObject,
        wire::ErrorResponse,
        wire::ErrorObject,
        wire::VersionResponse,
    ))
)]
struct ApiDoc;

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn path_parameter(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn query_parameter(parameter: &QueryParameter) -> Value {
    let schema = match parameter.value {
        ParameterValue::Text { min_chars, max_chars, pattern, default } => {
            let mut schema = json!({ "type": "string", "maxLength": max_chars });
            if min_chars > 0 {
                schema["minLength"] = json!(min_chars);
            }
            if let Some(pattern) = pattern {
                schema["pattern"] = json!(pattern);
            }
            if let Some(default) = default {
                schema["default"] = json!(default);
            }
            schema
        }
        ParameterValue::Choice { values, default } => {
            json!({ "type": "string", "enum": values, "default": default })
        }
        ParameterValue::Number { minimum, maximum } => {
            json!({ "type": "number", "minimum": minimum, "maximum": maximum })
        }
        ParameterValue::Integer { minimum, maximum, default } => {
            let mut schema = json!({ "type": "integer", "minimum": minimum, "maximum": maximum });
            if let Some(default) = default {
                schema["default"] = json!(default);
            }
            schema
        }
    };
    // A number's example is a number in JSON, as its values are.
    let example = match (parameter.value, parameter.example.parse::<u64>(), parameter.example.parse::<f64>()) {
        (ParameterValue::Integer { .. }, Ok(number), _) => json!(number),
        (ParameterValue::Number { .. }, _, Ok(number)) => json!(number),
        _ => json!(parameter.example),
    };
    json!({
        "name": parameter.name,
        "in": "query",
        "required": parameter.required,
        "description": parameter.description,
        "schema": schema,
        "example": example,
    })
}

/// The path and query parameters of a route.
fn parameters(route: Route) -> Vec<Value> {
    let mut parameters = Vec::new();
    if route == Route::Export {
        let name = json!({ "type": "string", "maxLength": MAX_NAME_CHARS });
        parameters.push(path_parameter("model", "Model name, from `GET /api`.", name));
    }
    if let Some(level) = route.level() {
        let name = json!({ "type": "string", "maxLength": MAX_NAME_CHARS });
        parameters.push(path_parameter("model", "Model name, from `GET /api`.", name));
        let index = json!({ "type": "integer", "minimum": 0, "maximum": MAX_INDEX });
        if level != Level::Model {
            parameters.push(path_parameter("layer", "Layer index.", index.clone()));
        }
        if level == Level::Neuron {
            parameters.push(path_parameter("neuron", "Neuron index within the layer.", index));
        }
    }
    parameters.extend(route.query_parameters().iter().map(query_parameter));
    parameters
}

/// The page a route answers with 200.
fn page_schema(route: Route) -> (&'static str, Value) {
    let envelope = |data: Value| {
        json!({
            "type": "object",
            "required": ["data", "metadata"],
            "properties": { "data": data, "metadata": schema_ref("MetadataObject") }
        })
    };
    match route {
        Route::Index => ("Every model with its metadata.", schema_ref("ModelsResponse")),
        Route::OpenApi => ("This OpenAPI document.", json!({ "type": "object" })),
        Route::Health => (
            "Liveness check.",
            json!({ "type": "object", "properties": { "ok": { "type": "boolean" } }, "required": ["ok"] }),
        ),
        Route::Version => ("Versions of the server, schema and format.", schema_ref("VersionResponse")),
        Route::Export => (
            "The model's metadata and every record (or those of `kinds`) as one Parquet or jsonl.gz file, streamed \
             as it is read, with `Content-Disposition: attachment` (schema: `docs/export.md`).",
            json!({ "type": "string", "contentMediaType": "application/octet-stream" }),
        ),
        Route::Service(Service::Neuron2GraphSearch, _) => (
            Service::Neuron2GraphSearch.summary(),
            envelope(json!({ "type": "array", "items": schema_ref("NeuronIndexObject") })),
        ),
        Route::Service(service, level) => (service.summary(), envelope(schema_ref(service.schema(level)))),
        Route::All(_) => {
            let entry = json!({
                "oneOf": [
                    { "type": "object", "required": ["data"], "properties": { "data": {} } },
                    {
                        "type": "object",
                        "required": ["missing_data_types"],
                        "properties": { "missing_data_types": { "type": "array", "items": { "type": "string" } } }
                    }
                ]
            });
            (
                "Every available service's page for this level in one response, keyed by service name.",
                json!({ "type": "object", "additionalProperties": entry }),
            )
        }
    }
}

fn operation(route: Route) -> Value {
    let (summary, schema) = page_schema(route);
    let mut responses = serde_json::Map::new();
    let content = match route {
        Route::Export => {
            let file = |format: ExportFormat| (format.content_type().to_owned(), json!({ "schema": schema.clone() }));
            Value::Object(ExportFormat::ALL.into_iter().map(file).collect())
        }
        _ => json!({ "application/json": { "schema": schema } }),
    };
    responses.insert("200".into(), json!({ "description": "OK", "content": content }));
    for (status, description) in route.other_statuses() {
        let response = match status {
            304 => json!({ "description": description }),
            _ => json!({
                "description": description,
                "content": { "application/json": { "schema": schema_ref("ErrorResponse") } }
            }),
        };
        responses.insert(status.to_string(), response);
    }
    json!({ "get": { "summary": summary, "parameters": parameters(route), "responses": responses } })
}

/// What holds for every route, for the document's description.
const CONVENTIONS: &str = "Every route takes only the query parameters listed for it: an unknown one is a 400 \
    `unknown_parameter` naming the ones it takes, and one given twice is a 400 `bad_parameter`. Lengths are in \
    characters (Unicode code points); no request this document allows is refused as too long. A request the \
    document allows is answered 200, or 404 when something it names does not exist or has no data, or 503 when the \
    server is busy; one it forbids is answered 400 (or 404 for a name that does not exist). Methods other than GET \
    and HEAD (and CORS preflights) are answered 405 with `Allow`. Errors are \
    `{\"error\": {\"code\", \"status\", \"message\"}}`.";

fn build_document() -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    document["openapi"] = json!("3.1.0");
    document["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let description = document["info"]["description"].as_str().unwrap_or_default().to_owned();
    document["info"]["description"] = json!(format!("{description}\n\n{CONVENTIONS}"));
    let paths: serde_json::Map<String, Value> = Route::all().into_iter().map(|r| (r.path(), operation(r))).collect();
    document["paths"] = Value::Object(paths);
    document
}

/// The OpenAPI document.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build_document)
}

/// The OpenAPI document as JSON text.
pub(crate) fn document_json() -> String {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| serde_json::to_string_pretty(document()).unwrap_or_default()).clone()
}

fn type_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{0}\">{0}</a>", crate::html::escaped(name));
    }
    if let Some(items) = schema.get("items") {
        return format!("array of {}", type_name(items));
    }
    if let Some(prefix) = schema.get("prefixItems").and_then(Value::as_array) {
        return format!("[{}]", prefix.iter().map(type_name).collect::<Vec<_>>().join(", "));
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        return options.iter().map(type_name).collect::<Vec<_>>().join(" or ");
    }
    match schema.get("type") {
        Some(Value::String(name)) => crate::html::escaped(name),
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        _ => "any".into(),
    }
}

/// A parameter's bounds as words: `, 0 to 4294967295`, `, at most 1000 characters`.
fn bounds(schema: &Value) -> String {
    if schema["type"] == "number" {
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
        return format!(", {} to {}", bound("minimum"), bound("maximum"));
    }
    let number = |key: &str| schema.get(key).and_then(Value::as_u64);
    match (number("minimum"), number("maximum"), number("minLength"), number("maxLength")) {
        (Some(minimum), Some(maximum), _, _) => format!(", {minimum} to {maximum}"),
        (_, _, Some(min_length), Some(max_length)) => format!(", {min_length} to {max_length} characters"),
        (_, _, None, Some(max_length)) => format!(", at most {max_length} characters"),
        _ => String::new(),
    }
}

fn build_doc_html() -> String {
    use std::fmt::Write;
    let document = document();
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>DeepDecipher API</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
         code{background:#f3f3f3;padding:0 .2em}table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
         td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}\
         h3{margin-bottom:.2rem}@media (prefers-color-scheme:dark){body{background:#151515;color:#ddd}\
         code{background:#2a2a2a}td,th{border-color:#444}a{color:#8ab4f8}}</style></head><body>",
    );
    let info = &document["info"];
    let _ = write!(
        html,
        "<h1>{}</h1><p>{}</p><p>Version {}. Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a>. \
         Errors are <code>{{\"error\": {{\"code\", \"status\", \"message\"}}}}</code>.</p><h2>Routes</h2>",
        crate::html::escaped(info["title"].as_str().unwrap_or_default()),
        crate::html::escaped(info["description"].as_str().unwrap_or_default()),
        crate::html::escaped(info["version"].as_str().unwrap_or_default()),
    );
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            let get = &item["get"];
            let _ = write!(
                html,
                "<h3><code>GET {}</code></h3><p>{}</p>",
                crate::html::escaped(path),
                crate::html::escaped(get["summary"].as_str().unwrap_or_default())
            );
            if let Some(parameters) = get["parameters"].as_array().filter(|p| !p.is_empty()) {
                html.push_str("<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>");
                for parameter in parameters {
                    let _ = write!(
                        html,
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        crate::html::escaped(parameter["name"].as_str().unwrap_or_default()),
                        if parameter["required"].as_bool() == Some(true) { "" } else { " (optional)" },
                        crate::html::escaped(parameter["in"].as_str().unwrap_or_default()),
                        type_name(&parameter["schema"]) + &bounds(&parameter["schema"]),
                        crate::html::escaped(parameter["description"].as_str().unwrap_or_default()),
                    );
                }
                html.push_str("</table>");
            }
            let schema = &get["responses"]["200"]["content"]["application/json"]["schema"];
            let returns = match schema.pointer("/properties/data") {
                Some(data) => format!("<code>{{\"data\": {}, \"metadata\": MetadataObject}}</code>", type_name(data)),
                None => type_name(schema),
            };
            let _ = write!(html, "<p>Returns {returns}.</p>");
            if let Some(responses) = get["responses"].as_object() {
                html.push_str("<ul>");
                for (status, response) in responses.iter().filter(|(status, _)| *status != "200") {
                    let _ = write!(
                        html,
                        "<li><b>{}</b>: {}</li>",
                        crate::html::escaped(status),
                        crate::html::escaped(response["description"].as_str().unwrap_or_default())
                    );
                }
                html.push_str("</ul>");
            }
        }
    }
    html.push_str("<h2>Schemas</h2>");
    if let Some(schemas) = document["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let _ = write!(
                html,
                "<h3 id=\"schema-{0}\">{0}</h3><p>{1}</p>",
                crate::html::escaped(name),
                crate::html::escaped(schema["description"].as_str().unwrap_or_default())
            );
            let Some(properties) = schema["properties"].as_object() else { continue };
            html.push_str("<table><tr><th>field</th><th>type</th><th>description</th></tr>");
            for (field, property) in properties {
                let _ = write!(
                    html,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    crate::html::escaped(field),
                    type_name(property),
                    crate::html::escaped(property["description"].as_str().unwrap_or_default()),
                );
            }
            html.push_str("</table>");
        }
    }
    html.push_str("</body></html>");
    html
}

/// The `/doc` page.
pub(crate) fn doc_html() -> String {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(build_doc_html).clone()
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use serde_json::Value;

    /// Each route with its statuses and its parameters' schemas: the contract at a glance, so that
    /// a change to it shows in review.
    #[test]
    fn routes_declare_their_parameters_and_statuses() {
        let document = super::document();
        let mut lines = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            let get = &item["get"];
            let statuses: Vec<&str> =
                get["responses"].as_object().expect("responses").keys().map(String::as_str).collect();
            lines.push(format!("GET {path}: {}", statuses.join(" ")));
            for parameter in get["parameters"].as_array().expect("parameters") {
                lines.push(format!(
                    "    {}{} in {}: {}",
                    parameter["name"].as_str().unwrap_or_default(),
                    if parameter["required"] == true { "" } else { "?" },
                    parameter["in"].as_str().unwrap_or_default(),
                    parameter["schema"]
                ));
            }
        }
        expect![[r#"
            GET /-/health: 200 400 413 414 503
            GET /-/version: 200 400 413 414 503
            GET /api: 200 304 400 413 414 503
            GET /api/openapi.json: 200 304 400 413 414 503
            GET /api/{model}/activating_tokens/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/activations: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
                text in query: {"maxLength":1000,"minLength":1,"type":"string"}
            GET /api/{model}/activations/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
                text in query: {"maxLength":1000,"minLength":1,"type":"string"}
            GET /api/{model}/all: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/all/{layer}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/all/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/changes: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/changes/{layer}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/changes/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/connections/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/correlations/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/embedding/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/examples/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/explanation-search: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
                q in query: {"maxLength":1000,"minLength":1,"type":"string"}
                limit? in query: {"default":20,"maximum":1000,"minimum":1,"type":"integer"}
                offset? in query: {"default":0,"maximum":100000000,"minimum":0,"type":"integer"}
                min_score? in query: {"maximum":1.0,"minimum":-1.0,"type":"number"}
                origin? in query: {"maxLength":100,"minLength":1,"type":"string"}
                layer? in query: {"maximum":4294967295,"minimum":0,"type":"integer"}
            GET /api/{model}/explanations/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/export: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                format? in query: {"default":"parquet","enum":["parquet","jsonl.gz"],"type":"string"}
                kinds? in query: {"maxLength":400,"minLength":1,"type":"string"}
            GET /api/{model}/groups: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/groups/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/input_tokens/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/logits/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/metadata: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/metadata/{layer}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/metadata/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/neuron2graph-search: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
                query in query: {"maxLength":1000,"minLength":1,"pattern":"^,*(?:(?:activating|important|any):[^,]*|[^,:]+)(?:,+(?:(?:activating|important|any):[^,]*|[^,:]+)){0,15},*$","type":"string"}
            GET /api/{model}/neuron2graph/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/neuron_explainer/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/neuroscope: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/neuroscope/{layer}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/neuroscope/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/records: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
                kinds? in query: {"maxLength":400,"minLength":1,"type":"string"}
            GET /api/{model}/records/{layer}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
                kinds? in query: {"maxLength":400,"minLength":1,"type":"string"}
            GET /api/{model}/records/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
                kinds? in query: {"maxLength":400,"minLength":1,"type":"string"}
            GET /api/{model}/roles: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/roles/{layer}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/roles/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/similar/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/stats/{layer}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/stats/{layer}/{neuron}: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                layer in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                neuron in path: {"maximum":4294967295,"minimum":0,"type":"integer"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
            GET /api/{model}/token-search: 200 304 400 404 413 414 500 503
                model in path: {"maxLength":100,"type":"string"}
                source? in query: {"default":"mlp","maxLength":100,"type":"string"}
                query in query: {"maxLength":1000,"minLength":1,"type":"string"}
                match? in query: {"default":"insensitive","enum":["insensitive","exact"],"type":"string"}
                limit? in query: {"default":100,"maximum":1000,"minimum":1,"type":"integer"}
                offset? in query: {"default":0,"maximum":100000000,"minimum":0,"type":"integer"}"#]].assert_eq(&lines.join("\n"));
        // Every error answer carries the error body; 304 carries none.
        for item in document["paths"].as_object().expect("paths").values() {
            for (status, response) in item["get"]["responses"].as_object().expect("responses") {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                match status.as_str() {
                    "200" => {}
                    "304" => assert_eq!(response.get("content"), None),
                    _ => assert_eq!(schema, &Value::from("#/components/schemas/ErrorResponse"), "{status}"),
                }
            }
        }
    }
}
