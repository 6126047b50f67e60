//! Checks JSON values against the OpenAPI document's schemas: the subset utoipa emits
//! (`$ref`, `type` including `null`, `properties`, `required`, `items`, `prefixItems`, `oneOf`,
//! `additionalProperties`, `minimum`).

use serde_json::Value;

/// Errors found validating `value` against `schema`, with JSON-pointer-like paths.
pub(crate) fn validate(document: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(document, schema, value, "$", &mut errors);
    errors
}

fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            document.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}"))
        }
        None => schema,
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown schema type {other}"),
    }
}

fn check(document: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = resolve(document, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let n_matching = options.iter().filter(|option| validate(document, option, value).is_empty()).count();
        if n_matching != 1 {
            errors.push(format!("{path}: matches {n_matching} of {} oneOf options", options.len()));
        }
        return;
    }
    match schema.get("type") {
        Some(Value::String(name)) if !type_matches(name, value) => {
            errors.push(format!("{path}: expected {name}, got {value}"));
            return;
        }
        Some(Value::Array(names)) if !names.iter().filter_map(Value::as_str).any(|n| type_matches(n, value)) => {
            errors.push(format!("{path}: expected one of {names:?}, got {value}"));
            return;
        }
        _ => {}
    }
    if let (Some(minimum), Some(number)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64())
        && number < minimum
    {
        errors.push(format!("{path}: {number} < minimum {minimum}"));
    }
    if let Value::Object(object) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                errors.push(format!("{path}: missing required {name}"));
            }
        }
        for (key, item) in object {
            match (properties.and_then(|p| p.get(key)), schema.get("additionalProperties")) {
                (Some(property), _) => check(document, property, item, &format!("{path}.{key}"), errors),
                (None, Some(additional)) if additional.is_object() => {
                    check(document, additional, item, &format!("{path}.{key}"), errors)
                }
                (None, Some(Value::Bool(false))) => errors.push(format!("{path}: unexpected key {key}")),
                (None, _) if properties.is_some() => errors.push(format!("{path}: undocumented key {key}")),
                _ => {}
            }
        }
    }
    if let Value::Array(items) = value {
        if let Some(prefix) = schema.get("prefixItems").and_then(Value::as_array) {
            if items.len() != prefix.len() && schema.get("items") == Some(&Value::Bool(false)) {
                errors.push(format!("{path}: expected {} items, got {}", prefix.len(), items.len()));
            }
            for (i, (item, item_schema)) in items.iter().zip(prefix).enumerate() {
                check(document, item_schema, item, &format!("{path}[{i}]"), errors);
            }
        } else if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
            for (i, item) in items.iter().enumerate() {
                check(document, item_schema, item, &format!("{path}[{i}]"), errors);
            }
        }
    }
}
