//! Reading a request's parameters, shared by the API and the website: path segments and query
//! strings with rejections in our error shape, layer and neuron indices, the JSON routes' declared
//! query parameters and their bounds, and client input clipped for echoing in messages.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::Uri;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest layer or neuron index a path may name: indices are 32-bit.
pub(crate) const MAX_INDEX: u64 = u32::MAX as u64;

/// The longest model or source name, in characters: the store refuses longer names
/// (`dd_data::validate_name`), so a longer one is malformed rather than unknown.
pub(crate) const MAX_NAME_CHARS: usize = dd_data::MAX_NAME_BYTES;

/// `Path`, with rejections (bad percent-encoding) answered in our error shape.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::bad_parameter(rejection.body_text())),
        }
    }
}

/// The query string's parameters, leniently (the website's reading: unknown names are ignored and
/// a repeated name keeps its last value); a malformed query string is a 400.
pub(crate) fn query_params(uri: &Uri) -> Result<HashMap<String, String>, ApiError> {
    match Query::try_from_uri(uri) {
        Ok(Query(params)) => Ok(params),
        Err(rejection) => Err(ApiError::bad_parameter(rejection.body_text())),
    }
}

/// A query parameter a JSON route takes: the OpenAPI document declares it and [`declared_query`]
/// enforces it, so that what the document allows and what the server accepts are the same.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueryParameter {
    /// The name in the query string.
    pub(crate) name: &'static str,
    /// Whether a request without it is refused.
    pub(crate) required: bool,
    /// One line for the documentation.
    pub(crate) description: &'static str,
    /// A value that works, for the documentation and for messages.
    pub(crate) example: &'static str,
    /// What its value may be.
    pub(crate) value: ParameterValue,
}

/// The values a [`QueryParameter`] takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ParameterValue {
    /// Text of `min_chars..=max_chars` characters (Unicode code points, as JSON Schema counts them).
    /// `pattern`, an anchored ECMA-262 regex, describes the grammar the route's own parser enforces
    /// (that parser's tests check that the two agree).
    Text { min_chars: usize, max_chars: usize, pattern: Option<&'static str>, default: Option<&'static str> },
    /// A decimal integer in `minimum..=maximum`, in digits only.
    Integer { minimum: u64, maximum: u64, default: Option<u64> },
    /// A finite decimal number in `minimum..=maximum` (`0.5`, `-1`, `2e-3`); absent means no bound.
    Number { minimum: f64, maximum: f64 },
    /// One of `values`, exactly; `default` when absent.
    Choice { values: &'static [&'static str], default: &'static str },
}

/// A JSON route's query, read by [`declared_query`]: every name declared, none repeated, every
/// value within its bounds, every required one present.
#[derive(Debug)]
pub(crate) struct DeclaredQuery {
    declared: &'static [QueryParameter],
    texts: HashMap<&'static str, String>,
    integers: HashMap<&'static str, u64>,
    numbers: HashMap<&'static str, f64>,
}

impl DeclaredQuery {
    /// The text of parameter `name`, or its declared default.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        if let Some(text) = self.texts.get(name) {
            return Some(text);
        }
        match self.declared.iter().find(|p| p.name == name).map(|p| p.value) {
            Some(ParameterValue::Text { default, .. }) => default,
            Some(ParameterValue::Choice { default, .. }) => Some(default),
            _ => None,
        }
    }

    /// The number given as parameter `name`, if any.
    pub(crate) fn number(&self, name: &str) -> Option<f64> {
        self.numbers.get(name).copied()
    }

    /// Whether parameter `name` was given.
    fn given(&self, name: &str) -> bool {
        self.texts.contains_key(name) || self.integers.contains_key(name) || self.numbers.contains_key(name)
    }

    /// The integer of parameter `name`, or its declared default.
    pub(crate) fn integer(&self, name: &str) -> Option<u64> {
        if let Some(&value) = self.integers.get(name) {
            return Some(value);
        }
        match self.declared.iter().find(|p| p.name == name).map(|p| p.value) {
            Some(ParameterValue::Integer { default, .. }) => default,
            _ => None,
        }
    }
}

/// Reads a JSON route's query against the parameters it declares. A name the route does not take
/// is a 400 `unknown_parameter` that lists the ones it does; a repeated name, a value out of its
/// bounds and a missing required parameter are 400 `bad_parameter`.
pub(crate) fn declared_query(uri: &Uri, declared: &'static [QueryParameter]) -> Result<DeclaredQuery, ApiError> {
    let pairs: Vec<(String, String)> = match Query::try_from_uri(uri) {
        Ok(Query(pairs)) => pairs,
        Err(rejection) => return Err(ApiError::bad_parameter(rejection.body_text())),
    };
    let mut query =
        DeclaredQuery { declared, texts: HashMap::new(), integers: HashMap::new(), numbers: HashMap::new() };
    for (name, value) in &pairs {
        let Some(parameter) = declared.iter().find(|p| p.name == name) else {
            return Err(unknown_parameter(name, declared));
        };
        if query.given(parameter.name) {
            return Err(ApiError::bad_parameter(format!(
                "query parameter `{}` is given more than once; give it once",
                parameter.name
            )));
        }
        match parameter.value {
            ParameterValue::Text { min_chars, max_chars, .. } => {
                let n_chars = value.chars().count();
                if n_chars < min_chars || n_chars > max_chars {
                    return Err(ApiError::bad_parameter(format!(
                        "`{}` must be {min_chars} to {max_chars} characters long, got {n_chars}",
                        parameter.name
                    )));
                }
                query.texts.insert(parameter.name, value.clone());
            }
            ParameterValue::Choice { values, .. } => {
                if !values.contains(&value.as_str()) {
                    return Err(ApiError::bad_parameter(format!(
                        "`{}` must be one of {}, got {:?}",
                        parameter.name,
                        values.join(", "),
                        clip(value)
                    )));
                }
                query.texts.insert(parameter.name, value.clone());
            }
            ParameterValue::Integer { minimum, maximum, .. } => match parse_integer(value, maximum) {
                Some(integer) if integer >= minimum => {
                    query.integers.insert(parameter.name, integer);
                }
                _ => {
                    return Err(ApiError::bad_parameter(format!(
                        "`{}` must be an integer from {minimum} to {maximum}, got {:?}",
                        parameter.name,
                        clip(value)
                    )));
                }
            },
            ParameterValue::Number { minimum, maximum } => match value.parse::<f64>() {
                // `parse` reads `inf` and `NaN` too, which are no numbers of the document's.
                Ok(number) if number.is_finite() && (minimum..=maximum).contains(&number) => {
                    query.numbers.insert(parameter.name, number);
                }
                _ => {
                    return Err(ApiError::bad_parameter(format!(
                        "`{}` must be a number from {minimum} to {maximum}, got {:?}",
                        parameter.name,
                        clip(value)
                    )));
                }
            },
        }
    }
    for parameter in declared.iter().filter(|p| p.required) {
        if !query.given(parameter.name) {
            return Err(ApiError::bad_parameter(format!(
                "this route needs `?{}=`, like `?{}={}`",
                parameter.name, parameter.name, parameter.example
            )));
        }
    }
    Ok(query)
}

/// The 400 for a query parameter the route does not take, naming the ones it does.
fn unknown_parameter(name: &str, declared: &[QueryParameter]) -> ApiError {
    let takes = match declared {
        [] => "this route takes no query parameters".to_owned(),
        declared => {
            let names: Vec<String> = declared.iter().map(|p| format!("`{}`", p.name)).collect();
            format!("this route takes {}", names.join(", "))
        }
    };
    ApiError::with_status(
        axum::http::StatusCode::BAD_REQUEST,
        "unknown_parameter",
        format!("unknown query parameter {:?}; {takes}", clip(name)),
    )
}

/// Checks a model name's length: one longer than any stored name can hold is malformed (400).
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), ApiError> {
    let n_chars = name.chars().count();
    if n_chars <= MAX_NAME_CHARS {
        return Ok(());
    }
    Err(ApiError::bad_parameter(format!("a {what} name has at most {MAX_NAME_CHARS} characters, got {n_chars}")))
}

/// Parses a layer or neuron index: not an integer from 0 to [`MAX_INDEX`] is a 400, past the end a 404.
pub(crate) fn parse_index(what: &'static str, text: &str, len: u64) -> Result<u32, ApiError> {
    let Some(value) = parse_integer(text, MAX_INDEX) else {
        return Err(ApiError::bad_parameter(format!(
            "{what} must be an integer from 0 to {MAX_INDEX}, got {:?}",
            clip(text)
        )));
    };
    if value >= len {
        return Err(ApiError::not_found("out_of_range", format!("{what} {value} out of range: there are {len}")));
    }
    u32::try_from(value).map_err(|_| ApiError::not_found("out_of_range", format!("{what} {value} out of range")))
}

/// A decimal integer in digits only (no sign; leading zeros allowed) that is at most `maximum`.
fn parse_integer(text: &str, maximum: u64) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = text.trim_start_matches('0');
    let value = if significant.is_empty() { 0 } else { significant.parse::<u64>().ok()? };
    (value <= maximum).then_some(value)
}

/// Echoes at most 64 characters of client input in messages.
pub(crate) fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_validated() {
        assert_eq!(parse_index("layer", "3", 12).expect("ok"), 3);
        assert_eq!(parse_index("layer", "0", 1).expect("ok"), 0);
        assert_eq!(parse_index("layer", "0000000000000000000000000011", 12).expect("leading zeros"), 11);
        for bad in ["", "-1", "+1", "1.0", "abc", "1e3", " 1", "99999999999999999999999", "4294967296"] {
            assert_eq!(parse_index("layer", bad, 12).expect_err(bad).status(), 400, "{bad:?}");
        }
        for missing in ["12", "4294967295", "000004294967295"] {
            assert_eq!(parse_index("layer", missing, 12).expect_err(missing).status(), 404, "{missing:?}");
        }
        // The largest index is valid whatever the model's size, so past the end it is a 404.
        assert_eq!(parse_index("layer", "4294967295", u64::MAX).expect("largest index"), u32::MAX);
    }

    const SEARCH: &[QueryParameter] = &[
        QueryParameter {
            name: "query",
            required: true,
            description: "",
            example: "the",
            value: ParameterValue::Text { min_chars: 1, max_chars: 4, pattern: None, default: None },
        },
        QueryParameter {
            name: "limit",
            required: false,
            description: "",
            example: "5",
            value: ParameterValue::Integer { minimum: 1, maximum: 1000, default: Some(100) },
        },
        QueryParameter {
            name: "match",
            required: false,
            description: "",
            example: "exact",
            value: ParameterValue::Choice { values: &["insensitive", "exact"], default: "insensitive" },
        },
        QueryParameter {
            name: "min",
            required: false,
            description: "",
            example: "0.5",
            value: ParameterValue::Number { minimum: -1.0, maximum: 1.0 },
        },
    ];

    fn read(query: &str) -> Result<DeclaredQuery, ApiError> {
        declared_query(&format!("/x?{query}").parse::<Uri>().expect("uri"), SEARCH)
    }

    fn refusal(query: &str) -> (u16, String) {
        let error = read(query).expect_err(query);
        (error.status().as_u16(), error.message().to_owned())
    }

    #[test]
    fn declared_parameters_are_read_within_their_bounds() {
        let query = read("query=%C3%A9t%C3%A9&limit=0007").expect("ok");
        assert_eq!((query.text("query"), query.integer("limit")), (Some("été"), Some(7)));
        let query = read("query=a").expect("ok");
        assert_eq!(query.integer("limit"), Some(100), "the declared default");
        assert_eq!(read("limit=1000&query=abcd").expect("at the bounds").integer("limit"), Some(1000));
        assert_eq!(read("query=a").expect("ok").text("match"), Some("insensitive"), "a choice's default");
        assert_eq!(read("query=a&match=exact").expect("ok").text("match"), Some("exact"));
        assert_eq!(read("query=a").expect("ok").number("min"), None, "no default");
        for (text, value) in [("0.5", 0.5), ("-1", -1.0), ("1", 1.0), ("2e-1", 0.2), ("-0.0", 0.0)] {
            assert_eq!(read(&format!("query=a&min={text}")).expect(text).number("min"), Some(value), "{text}");
        }
        for (bad, says) in [
            ("query=", "1 to 4 characters long, got 0"),
            ("query=abcde", "1 to 4 characters long, got 5"),
            ("query=a&limit=0", "from 1 to 1000"),
            ("query=a&limit=1001", "from 1 to 1000"),
            ("query=a&limit=-1", "from 1 to 1000"),
            ("query=a&limit=%2B5", "from 1 to 1000"),
            ("query=a&limit=1.0", "from 1 to 1000"),
            ("query=a&limit=", "from 1 to 1000"),
            ("limit=5", "needs `?query=`, like `?query=the`"),
            ("query=a&query=b", "`query` is given more than once"),
            ("query=a&match=Exact", "one of insensitive, exact"),
            ("query=a&match=", "one of insensitive, exact"),
            ("query=a&min=1.01", "a number from -1 to 1"),
            ("query=a&min=-2", "a number from -1 to 1"),
            ("query=a&min=NaN", "a number from -1 to 1"),
            ("query=a&min=inf", "a number from -1 to 1"),
            ("query=a&min=", "a number from -1 to 1"),
            ("query=a&min=half", "a number from -1 to 1"),
        ] {
            let (status, message) = refusal(bad);
            assert_eq!(status, 400, "{bad}");
            assert!(message.contains(says), "{bad}: {message}");
        }
    }

    #[test]
    fn unknown_parameters_are_refused_with_the_ones_the_route_takes() {
        for bad in ["query=a&sort=up", "sort", "=x", "query=a&Query=b"] {
            let error = read(bad).expect_err(bad);
            assert_eq!(error.status().as_u16(), 400, "{bad}");
            assert_eq!(error.code(), "unknown_parameter", "{bad}");
            assert!(error.message().contains("this route takes `query`, `limit`"), "{bad}: {}", error.message());
        }
        let none = declared_query(&"/x?a=1".parse::<Uri>().expect("uri"), &[]).expect_err("takes none");
        assert!(none.message().contains("takes no query parameters"), "{}", none.message());
        assert!(declared_query(&"/x".parse::<Uri>().expect("uri"), &[]).is_ok());
        assert!(declared_query(&"/x?".parse::<Uri>().expect("uri"), &[]).is_ok());
    }

    #[test]
    fn long_names_are_malformed() {
        assert!(check_name("model", &"m".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name("model", &"語".repeat(MAX_NAME_CHARS)).is_ok(), "characters, not bytes");
        assert_eq!(check_name("model", &"m".repeat(MAX_NAME_CHARS + 1)).expect_err("long").status(), 400);
    }
}
