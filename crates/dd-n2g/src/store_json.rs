//! The original's `neuron_store.json` (spec §8), written and read:
//!
//! ```text
//! {
//!   "activating": {
//!     "<token>": [
//!       "<layer>_<neuron>",
//!       ...
//!     ]
//!   },
//!   "important": {}
//! }
//! ```
//!
//! Python's `json.dump(store, f, indent=2, ensure_ascii=False)` writes exactly this layout: two
//! spaces per level, `", "`-free separators (`,` then a newline, `": "` after keys), non-ASCII kept,
//! control characters escaped, no trailing newline. We write tokens and neurons sorted (the original
//! wrote them in the order its BFS met them) and leave out tokens with no neurons of a type.
//! Reading normalises keys with [`normalise_token`], since the original's own normalisation
//! (title-case lowering, spec §5) kept `USA` and ` 1` apart from what our search looks up.

use std::collections::BTreeMap;

use dd_data::{NeuronIndex, TokenIndex, TokenIndexEntry, normalise_token};
use serde_json::{Map, Value};

/// The store's two sections, in the order the original writes them.
const SECTIONS: [&str; 2] = ["activating", "important"];

/// Writes a token index as the original's `neuron_store.json`.
pub fn to_neuron_store_json(index: &TokenIndex) -> String {
    let mut store = Map::new();
    for (section_idx, section) in SECTIONS.into_iter().enumerate() {
        // Merged through a sorted map, so that a hand-made index with repeated or unsorted tokens
        // still gives one sorted key each.
        let mut tokens: BTreeMap<&str, Vec<NeuronIndex>> = BTreeMap::new();
        for entry in &index.entries {
            let neurons = if section_idx == 0 { &entry.activating } else { &entry.important };
            if !neurons.is_empty() {
                tokens.entry(&entry.token).or_default().extend(neurons);
            }
        }
        let mut object = Map::new();
        for (token, mut neurons) in tokens {
            neurons.sort_unstable();
            neurons.dedup();
            let ids = neurons.iter().map(|n| Value::String(format!("{}_{}", n.layer, n.index))).collect();
            object.insert(token.to_owned(), Value::Array(ids));
        }
        store.insert(section.to_owned(), Value::Object(object));
    }
    // `{:#}` is serde_json's pretty printer: two-space indent, as Python's `indent=2`.
    format!("{:#}", Value::Object(store))
}

/// Reads an original `neuron_store.json` into a token index (tokens normalised as `normalise_token`, merging keys that normalise alike).
///
/// The error says where the file breaks the layout: not JSON, a missing or unknown section, a value
/// of the wrong shape, or a neuron id other than `<layer>_<neuron>` in decimal.
pub fn from_neuron_store_json(text: &str) -> Result<TokenIndex, String> {
    let value: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(store) = value else {
        return Err(format!("expected an object with \"activating\" and \"important\", found {}", kind(&value)));
    };
    if let Some(unknown) = store.keys().find(|key| !SECTIONS.contains(&key.as_str())) {
        return Err(format!("unknown section {unknown:?}: a neuron store has only \"activating\" and \"important\""));
    }
    let mut tokens: BTreeMap<String, [Vec<NeuronIndex>; 2]> = BTreeMap::new();
    for (section_idx, section) in SECTIONS.into_iter().enumerate() {
        let Some(value) = store.get(section) else {
            return Err(format!("missing section {section:?}"));
        };
        let Value::Object(section_tokens) = value else {
            return Err(format!("{section}: expected an object of token → neuron ids, found {}", kind(value)));
        };
        for (token, ids) in section_tokens {
            let Value::Array(ids) = ids else {
                return Err(format!("{section}[{token:?}]: expected a list of neuron ids, found {}", kind(ids)));
            };
            let neurons = &mut tokens.entry(normalise_token(token)).or_default()[section_idx];
            for (position, id) in ids.iter().enumerate() {
                let neuron = match id {
                    Value::String(id) => parse_neuron_id(id),
                    _ => None,
                };
                let Some(neuron) = neuron else {
                    return Err(format!(
                        "{section}[{token:?}][{position}]: {id} is not a neuron id like \"3_1024\" (layer_neuron)"
                    ));
                };
                neurons.push(neuron);
            }
        }
    }
    let entries = tokens
        .into_iter()
        .filter(|(_, [activating, important])| !(activating.is_empty() && important.is_empty()))
        .map(|(token, [mut activating, mut important])| {
            for neurons in [&mut activating, &mut important] {
                neurons.sort_unstable();
                neurons.dedup();
            }
            TokenIndexEntry { token, activating, important }
        })
        .collect();
    Ok(TokenIndex { entries })
}

/// `<layer>_<neuron>`, both plain decimal (no sign, no spaces) that fit a `u32`.
fn parse_neuron_id(id: &str) -> Option<NeuronIndex> {
    let (layer, index) = id.split_once('_')?;
    let number = |text: &str| -> Option<u32> {
        match !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            true => text.parse().ok(),
            false => None,
        }
    };
    Some(NeuronIndex { layer: number(layer)?, index: number(index)? })
}

/// A JSON value's kind, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(layer: u32, index: u32) -> NeuronIndex {
        NeuronIndex { layer, index }
    }

    fn entry(token: &str, activating: &[NeuronIndex], important: &[NeuronIndex]) -> TokenIndexEntry {
        TokenIndexEntry { token: token.into(), activating: activating.to_vec(), important: important.to_vec() }
    }

    /// A store as the original wrote it (BFS order, its own title-case normalisation, raw
    /// whitespace tokens, non-ASCII kept), read into our keys: `USA`, `paris`/`Paris` and the
    /// whitespace tokens merge, lists come out sorted and deduplicated.
    #[test]
    fn reads_the_originals_layout() {
        let text = include_str!("../tests/data/neuron_store.json");
        let index = from_neuron_store_json(text).expect("the fixture parses");
        let expected = TokenIndex {
            entries: vec![
                entry("", &[n(0, 7)], &[n(1, 2), n(5, 3071)]),
                entry("1", &[], &[n(2, 9)]),
                entry("paris", &[n(0, 7), n(3, 1024), n(11, 40)], &[]),
                entry("the", &[], &[n(0, 7), n(3, 1024)]),
                entry("usa", &[n(11, 40)], &[]),
                entry("\u{201c}", &[], &[n(3, 1024)]),
                entry("été", &[n(2, 9)], &[]),
                entry("\"quoted\"\\", &[n(1, 2)], &[]),
            ]
            .into_iter()
            .map(|e| (e.token.clone(), e))
            .collect::<BTreeMap<_, _>>()
            .into_values()
            .collect(),
        };
        assert_eq!(index, expected);
    }

    /// Written stores are in the original's exact layout (Python's `json.dumps(store, indent=2,
    /// ensure_ascii=False)` of the same dict gives these bytes), and read back to the same index.
    #[test]
    fn writes_the_originals_layout_and_round_trips() {
        let index = TokenIndex {
            entries: vec![
                entry("\n", &[n(0, 1)], &[]),
                entry("caf\u{e9}", &[], &[n(10, 3000), n(2, 5)]),
                entry("the", &[n(0, 1), n(0, 1)], &[n(1, 0)]),
            ],
        };
        let text = to_neuron_store_json(&index);
        let expected = "{\n  \"activating\": {\n    \"\\n\": [\n      \"0_1\"\n    ],\n    \"the\": [\n      \"0_1\"\n    ]\n  },\n  \"important\": {\n    \"café\": [\n      \"2_5\",\n      \"10_3000\"\n    ],\n    \"the\": [\n      \"1_0\"\n    ]\n  }\n}";
        assert_eq!(text, expected);
        assert_eq!(to_neuron_store_json(&TokenIndex::default()), "{\n  \"activating\": {},\n  \"important\": {}\n}");

        // Normalised, sorted indices survive the round trip unchanged.
        let tidy = from_neuron_store_json(&text).expect("our own output parses");
        assert_eq!(tidy.entries.iter().map(|e| e.token.as_str()).collect::<Vec<_>>(), ["", "café", "the"]);
        assert_eq!(from_neuron_store_json(&to_neuron_store_json(&tidy)), Ok(tidy.clone()));
        let fixture = from_neuron_store_json(include_str!("../tests/data/neuron_store.json")).expect("parses");
        assert_eq!(from_neuron_store_json(&to_neuron_store_json(&fixture)), Ok(fixture));
    }

    /// Each malformed input is an error naming the problem, never a panic.
    #[test]
    fn malformed_stores_are_errors() {
        let cases = [
            ("", "not JSON"),
            ("{\"activating\": {}", "not JSON"),
            ("[]", "found a list"),
            ("{\"activating\": {}}", "missing section \"important\""),
            ("{\"activating\": {}, \"important\": {}, \"extra\": {}}", "unknown section \"extra\""),
            ("{\"activating\": [], \"important\": {}}", "activating: expected an object"),
            ("{\"activating\": {\"a\": \"0_1\"}, \"important\": {}}", "activating[\"a\"]: expected a list"),
            ("{\"activating\": {}, \"important\": {\"a\": [\"3_x\"]}}", "important[\"a\"][0]: \"3_x\""),
            ("{\"activating\": {\"a\": [\"0_1\", \"-1_2\"]}, \"important\": {}}", "[1]: \"-1_2\""),
            ("{\"activating\": {\"a\": [\"+1_2\"]}, \"important\": {}}", "\"+1_2\""),
            ("{\"activating\": {\"a\": [\"1_2_3\"]}, \"important\": {}}", "\"1_2_3\""),
            ("{\"activating\": {\"a\": [\"12\"]}, \"important\": {}}", "\"12\""),
            ("{\"activating\": {\"a\": [\"_2\"]}, \"important\": {}}", "\"_2\""),
            ("{\"activating\": {\"a\": [\"1_\"]}, \"important\": {}}", "\"1_\""),
            ("{\"activating\": {\"a\": [\"1_4294967296\"]}, \"important\": {}}", "\"1_4294967296\""),
            ("{\"activating\": {\"a\": [\" 1_2\"]}, \"important\": {}}", "\" 1_2\""),
            ("{\"activating\": {\"a\": [12]}, \"important\": {}}", "[0]: 12 is not"),
            ("{\"activating\": {\"a\": [null]}, \"important\": {}}", "null is not"),
        ];
        for (text, message) in cases {
            match from_neuron_store_json(text) {
                Ok(index) => panic!("{text:?} parsed as {index:?}"),
                Err(error) => assert!(error.contains(message), "{text:?}: {error:?} lacks {message:?}"),
            }
        }
        let largest = from_neuron_store_json("{\"activating\": {\"a\": [\"4294967295_0\"]}, \"important\": {}}");
        assert_eq!(largest.map(|i| i.entries[0].activating.clone()), Ok(vec![n(u32::MAX, 0)]));
    }
}
