//! `neuron2graph-search` over the stored Neuron2Graph token index, in memory, built once per model
//! (`ModelContext` keeps it); the ranked search over activating tokens and graphs is `token_search.rs`.
//!
//! Query syntax, as in the original: comma-separated terms `type:token` with
//! type `activating`, `important` or `any`; a term without a type means `any`.
//! Each term selects the union of its types' neurons; terms intersect. Results
//! are sorted by (layer, neuron). Query tokens are normalised as the index's are (trimmed and
//! lower-cased), so `The` and ` the` find what `the` finds.

use std::collections::HashMap;

use dd_data::{NeuronIndex, TokenIndex, normalise_token};

use crate::error::ApiError;

/// Longest accepted query, in terms.
pub(crate) const MAX_TERMS: usize = 16;

/// The queries [`SearchIndex::search`] accepts, as an anchored ECMA-262 regex for the OpenAPI
/// document: 1 to [`MAX_TERMS`] terms between commas (empty pieces are skipped), each a token
/// without `:` or `activating:`, `important:` or `any:` before any token. Tests check it against
/// `parse`.
pub(crate) const QUERY_PATTERN: &str = "^,*(?:(?:activating|important|any):[^,]*|[^,:]+)\
                                        (?:,+(?:(?:activating|important|any):[^,]*|[^,:]+)){0,15},*$";

/// Token to neurons, in memory.
pub(crate) struct SearchIndex {
    tokens: HashMap<String, (Vec<NeuronIndex>, Vec<NeuronIndex>)>,
}

/// Which neurons of a token a term asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TermKind {
    Activating,
    Important,
    Any,
}

impl SearchIndex {
    /// Keeps the stored Neuron2Graph token index in a hash map.
    pub(crate) fn new(index: TokenIndex) -> Self {
        let tokens = index.entries.into_iter().map(|e| (e.token, (e.activating, e.important))).collect();
        Self { tokens }
    }

    /// Runs a query; neurons sorted by (layer, index).
    pub(crate) fn search(&self, query: &str) -> Result<Vec<NeuronIndex>, ApiError> {
        let terms = parse(query)?;
        let mut result: Option<Vec<NeuronIndex>> = None;
        for (kind, token) in terms {
            let (activating, important) = match self.tokens.get(&normalise_token(token)) {
                Some((a, i)) => (a.as_slice(), i.as_slice()),
                None => (&[][..], &[][..]),
            };
            let mut neurons: Vec<NeuronIndex> = match kind {
                TermKind::Activating => activating.to_vec(),
                TermKind::Important => important.to_vec(),
                TermKind::Any => activating.iter().chain(important).copied().collect(),
            };
            neurons.sort_unstable();
            neurons.dedup();
            result = Some(match result {
                None => neurons,
                Some(previous) => previous.into_iter().filter(|n| neurons.binary_search(n).is_ok()).collect(),
            });
        }
        Ok(result.unwrap_or_default())
    }
}

fn parse(query: &str) -> Result<Vec<(TermKind, &str)>, ApiError> {
    let terms: Vec<&str> = query.split(',').filter(|t| !t.is_empty()).collect();
    if terms.is_empty() {
        return Err(ApiError::bad_parameter("`query` must hold at least one term, like `any:the`"));
    }
    if terms.len() > MAX_TERMS {
        return Err(ApiError::bad_parameter(format!("`query` has {} terms; at most {MAX_TERMS}", terms.len())));
    }
    terms
        .into_iter()
        .map(|term| match term.split_once(':') {
            None => Ok((TermKind::Any, term)),
            Some(("activating", token)) => Ok((TermKind::Activating, token)),
            Some(("important", token)) => Ok((TermKind::Important, token)),
            Some(("any", token)) => Ok((TermKind::Any, token)),
            Some((kind, _)) => Err(ApiError::bad_parameter(format!(
                "unknown search type {kind:?} in {term:?}: use activating, important or any"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use dd_data::TokenIndexEntry;

    use super::*;

    fn n(layer: u32, index: u32) -> NeuronIndex {
        NeuronIndex { layer, index }
    }

    fn index() -> SearchIndex {
        SearchIndex::new(TokenIndex {
            entries: vec![
                TokenIndexEntry { token: "the".into(), activating: vec![n(0, 1), n(1, 2)], important: vec![n(0, 3)] },
                TokenIndexEntry { token: "dog".into(), activating: vec![n(1, 2)], important: vec![n(0, 1)] },
            ],
        })
    }

    #[test]
    fn terms_union_types_and_intersect() {
        let index = index();
        assert_eq!(index.search("any:the").expect("ok"), vec![n(0, 1), n(0, 3), n(1, 2)]);
        assert_eq!(index.search("the").expect("ok"), vec![n(0, 1), n(0, 3), n(1, 2)]);
        assert_eq!(index.search("activating:the").expect("ok"), vec![n(0, 1), n(1, 2)]);
        assert_eq!(index.search("important:the").expect("ok"), vec![n(0, 3)]);
        assert_eq!(index.search("any:the,activating:dog").expect("ok"), vec![n(1, 2)]);
        assert_eq!(index.search("any:the,any:dog").expect("ok"), vec![n(0, 1), n(1, 2)]);
        assert!(index.search("any:cat").expect("ok").is_empty());
        assert_eq!(index.search("any: The").expect("ok"), index.search("any:the").expect("ok"));
    }

    /// The document's pattern accepts exactly the queries `parse` accepts.
    #[test]
    fn the_documented_pattern_is_the_grammar() {
        let pattern = regex::Regex::new(QUERY_PATTERN).expect("the pattern compiles");
        assert!(QUERY_PATTERN.contains(&format!("{{0,{}}}", MAX_TERMS - 1)), "the pattern counts MAX_TERMS terms");
        let mut queries: Vec<String> = [
            "",
            ",",
            ",,",
            "the",
            "any:the",
            "activating:",
            "important:a:b",
            "any:,",
            ",any:x,,",
            "a b",
            " ",
            "a:b",
            ":",
            ":the",
            "bogus:the",
            "ANY:the",
            "any",
            "activating",
            "any:the,dog",
            "any:the,:x",
            "x,y:z",
            "\n",
            "any:\n",
            "a\nb",
            "anyx:the",
            "any :the",
            "the,",
            "any:語",
            "語:x",
            "語",
        ]
        .iter()
        .map(|q| q.to_string())
        .collect();
        for n_terms in [15, 16, 17, 40] {
            queries.push(vec!["t"; n_terms].join(","));
            queries.push(vec!["any:t"; n_terms].join(",,"));
            queries.push(format!(",{},", vec!["a:"; n_terms].join(",")));
        }
        for query in &queries {
            assert_eq!(pattern.is_match(query), parse(query).is_ok(), "{query:?}");
        }
    }

    #[test]
    fn bad_queries_are_client_errors() {
        let index = index();
        for bad in ["", ",", "bogus:the", &"a,".repeat(40)] {
            let error = index.search(bad).expect_err(bad);
            assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
        }
    }
}
