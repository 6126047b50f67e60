//! `token-search`'s query language, read leniently: every text is a query (maybe of no terms), so
//! the OpenAPI document needs no pattern and a visitor's typing is never an error.
//!
//! - Terms are separated by commas and intersect, as in the original's Neuron2Graph search.
//! - A term may start with `activating:`, `important:` or `any:` (the default); any other prefix
//!   is part of the token, so `http:` finds the token `http:`.
//! - Unquoted, a term's whitespace separates words, each its own term of the same type: `she said`
//!   is `she,said`, because a token is one word and a person typing two means both.
//! - A token in double quotes is taken whole, commas, colons and spaces included: `" the"` is the
//!   token with a leading space, `","` the comma. `·` reads as a space anywhere, as tokens display.

/// Where a term's token must appear in a neuron's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TermKind {
    /// Among the tokens the neuron fires on: its activating tokens or its graph's activating nodes.
    Activating,
    /// Among its graph's context nodes.
    Important,
    /// Anywhere.
    Any,
}

impl TermKind {
    /// The name used in queries and pages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TermKind::Activating => "activating",
            TermKind::Important => "important",
            TermKind::Any => "any",
        }
    }
}

/// How query tokens are compared with token forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchMode {
    /// Trimmed and lower-cased on both sides: `paris` finds `·Paris`, `PARIS` and `paris`.
    Insensitive,
    /// The token's form exactly, `·` read as a space on both sides: `·Paris` finds only `·Paris`.
    Exact,
}

impl MatchMode {
    /// The values of `?match=`, the default first.
    pub(crate) const NAMES: &'static [&'static str] = &["insensitive", "exact"];

    /// The mode named `name` in `?match=`; anything else is insensitive.
    pub(crate) fn from_name(name: &str) -> Self {
        if name == "exact" { MatchMode::Exact } else { MatchMode::Insensitive }
    }

    /// The name used in `?match=`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            MatchMode::Insensitive => "insensitive",
            MatchMode::Exact => "exact",
        }
    }
}

/// One term of a query: a token and where it must appear.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Term {
    /// Where the token must appear.
    pub(crate) kind: TermKind,
    /// The token as typed, quotes removed.
    pub(crate) token: String,
}

/// Reads a query into its terms, duplicates dropped; never fails.
pub(crate) fn parse(query: &str) -> Vec<Term> {
    let mut terms: Vec<Term> = Vec::new();
    for piece in split_outside_quotes(query) {
        let piece = piece.trim();
        let (kind, rest) = match piece.split_once(':') {
            Some(("activating", rest)) => (TermKind::Activating, rest),
            Some(("important", rest)) => (TermKind::Important, rest),
            Some(("any", rest)) => (TermKind::Any, rest),
            _ => (TermKind::Any, piece),
        };
        let rest = rest.trim();
        let quoted = rest.len() >= 2 && rest.starts_with('"') && rest.ends_with('"');
        let tokens: Vec<&str> = match quoted {
            true => vec![&rest[1..rest.len() - 1]],
            false => rest.split_whitespace().collect(),
        };
        for token in tokens {
            let term = Term { kind, token: token.to_owned() };
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
    }
    terms
}

/// Splits at commas that are not inside double quotes; an unclosed quote runs to the end.
fn split_outside_quotes(query: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (position, character) in query.char_indices() {
        match character {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                pieces.push(&query[start..position]);
                start = position + 1;
            }
            _ => {}
        }
    }
    pieces.push(&query[start..]);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(query: &str) -> Vec<(TermKind, String)> {
        parse(query).into_iter().map(|t| (t.kind, t.token)).collect()
    }

    fn any(token: &str) -> (TermKind, String) {
        (TermKind::Any, token.to_owned())
    }

    #[test]
    fn the_original_syntax_reads_as_it_did() {
        assert_eq!(
            terms("any:the,important:dog,activating:cat"),
            [any("the"), (TermKind::Important, "dog".into()), (TermKind::Activating, "cat".into())]
        );
        assert_eq!(terms("the"), [any("the")]);
        assert_eq!(terms(",,the,,"), [any("the")]);
        assert_eq!(terms("activating:"), []);
        assert_eq!(terms(""), []);
    }

    #[test]
    fn words_are_terms_and_quotes_keep_a_token_whole() {
        assert_eq!(terms("she said"), [any("she"), any("said")]);
        assert_eq!(
            terms("important:she  said"),
            [(TermKind::Important, "she".into()), (TermKind::Important, "said".into())]
        );
        assert_eq!(terms("\" the\""), [any(" the")]);
        assert_eq!(terms("any:\",\",x"), [any(","), any("x")]);
        assert_eq!(terms("\"a:b\""), [any("a:b")]);
        assert_eq!(terms("\"\""), [any("")]);
        assert_eq!(terms("\"open, x"), [any("\"open,"), any("x")]);
    }

    #[test]
    fn unknown_prefixes_are_tokens_and_duplicates_go() {
        assert_eq!(terms("http:"), [any("http:")]);
        assert_eq!(terms("bogus:the"), [any("bogus:the")]);
        assert_eq!(terms("the,any:the,the"), [any("the")]);
        assert_eq!(terms("·the"), [any("·the")]);
    }
}
