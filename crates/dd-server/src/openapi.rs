//! The OpenAPI 3.1 document (`/api/openapi.json`) and the doc page rendered from it (`/doc`).
//!
//! Schemas come from the wire types' `ToSchema` derives; paths are generated
//! from the service table, so neither can drift from what the server does.

use std::sync::OnceLock;

use serde_json::{Value, json};
use utoipa::OpenApi;

use crate::services::{Level, Service};
use crate::wire;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DeepDecipher API",
        description = "Per-neuron interpretability data of transformer language models: examples, statistics, \
                       logit attribution, explanations, Neuron2Graph graphs, similar neurons, activating and \
                       input tokens, and weight connections.",
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
        wire::ScoreObject,
        wire::Neuron2GraphPage,
        wire::GraphObject,
        wire::GraphNodeObject,
        wire::SimilarNeuronObject,
        wire::SimilarPage,
        wire::ActivatingTokensPage,
        wire::TokenMeanObject,
        wire::TokenSearchPage,
        wire::TextActivationsPage,
        wire::TokenActivationObject,
        wire::TextFiringPage,
        wire::TokenFiringObject,
        wire::FiringObject,
        wire::TokenSearchHitObject,
        wire::InputTokensPage,
        wire::ConnectionsPage,
        wire::ConnectionObject,
        wire::ErrorResponse,
        wire::ErrorObject,
        wire::VersionResponse,
    ))
)]
struct ApiDoc;

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn path_parameter(name: &str, description: &str, integer: bool) -> Value {
    let schema = if integer { json!({ "type": "integer", "minimum": 0 }) } else { json!({ "type": "string" }) };
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn error_responses() -> Value {
    let error = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": schema_ref("ErrorResponse") } } });
    json!({
        "400": error("A parameter is malformed (a non-numeric index, a bad query)."),
        "404": error("Unknown model, source, service, layer or neuron, or no data for it."),
    })
}

fn operation(summary: &str, parameters: Vec<Value>, schema: Value) -> Value {
    let mut responses = error_responses();
    responses["200"] = json!({ "description": "OK", "content": { "application/json": { "schema": schema } } });
    json!({ "get": { "summary": summary, "parameters": parameters, "responses": responses } })
}

fn level_parameters(level: Level) -> Vec<Value> {
    let mut parameters = vec![path_parameter("model", "Model name, from `GET /api`.", false)];
    if level != Level::Model {
        parameters.push(path_parameter("layer", "Layer index.", true));
    }
    if level == Level::Neuron {
        parameters.push(path_parameter("neuron", "Neuron index within the layer.", true));
    }
    parameters.push(json!({
        "name": "source", "in": "query", "required": false,
        "description": "Hook point whose units are addressed; default `mlp`.",
        "schema": { "type": "string", "default": "mlp" }
    }));
    parameters
}

fn level_suffix(level: Level) -> &'static str {
    match level {
        Level::Model => "",
        Level::Layer => "/{layer}",
        Level::Neuron => "/{layer}/{neuron}",
    }
}

fn build_document() -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    document["openapi"] = json!("3.1.0");
    document["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let mut paths = serde_json::Map::new();
    paths.insert("/api".into(), operation("Every model with its metadata.", vec![], schema_ref("ModelsResponse")));
    paths.insert("/api/openapi.json".into(), operation("This OpenAPI document.", vec![], json!({ "type": "object" })));
    paths.insert(
        "/-/health".into(),
        operation(
            "Liveness check.",
            vec![],
            json!({ "type": "object", "properties": { "ok": { "type": "boolean" } }, "required": ["ok"] }),
        ),
    );
    paths.insert(
        "/-/version".into(),
        operation("Versions of the server, schema and format.", vec![], schema_ref("VersionResponse")),
    );
    for &service in Service::ALL {
        for &level in service.levels() {
            let data = if service == Service::Neuron2GraphSearch {
                json!({ "type": "array", "items": schema_ref("NeuronIndexObject") })
            } else {
                schema_ref(service.schema(level))
            };
            let envelope = json!({
                "type": "object",
                "required": ["data", "metadata"],
                "properties": { "data": data, "metadata": schema_ref("MetadataObject") }
            });
            let mut parameters = level_parameters(level);
            if service == Service::Neuron2GraphSearch {
                parameters.push(json!({
                    "name": "query", "in": "query", "required": true,
                    "description": "Comma-separated terms `activating:TOKEN`, `important:TOKEN` or `any:TOKEN`; terms intersect.",
                    "schema": { "type": "string" }
                }));
            }
            if service == Service::Activations {
                parameters.push(json!({
                    "name": "text", "in": "query", "required": true,
                    "description": "The text to run, percent-encoded; the whole request target may be at most 2,048 bytes (post longer texts to the website's form). It is cut to the server's token limit.",
                    "schema": { "type": "string" }
                }));
            }
            if service == Service::TokenSearch {
                parameters.push(json!({
                    "name": "query", "in": "query", "required": true,
                    "description": "One token, matched trimmed and lower-cased (`Paris`, ` paris` and `paris` are the same).",
                    "schema": { "type": "string" }
                }));
                parameters.push(json!({
                    "name": "limit", "in": "query", "required": false,
                    "description": "Neurons returned, at most 1000 (default 100).",
                    "schema": { "type": "integer", "minimum": 1, "maximum": 1000 }
                }));
            }
            let path = format!("/api/{{model}}/{}{}", service.name(), level_suffix(level));
            paths.insert(path, operation(service.summary(), parameters, envelope));
        }
    }
    for level in [Level::Model, Level::Layer, Level::Neuron] {
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
        let schema = json!({ "type": "object", "additionalProperties": entry });
        let path = format!("/api/{{model}}/all{}", level_suffix(level));
        let summary = "Every available service's page for this level in one response, keyed by service name.";
        paths.insert(path, operation(summary, level_parameters(level), schema));
    }
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
                        type_name(&parameter["schema"]),
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
