//! Hand-written JSON for example texts, the API's hot path.
//!
//! A 20 × 128-token neuron is 2,560 token strings and 2,560 numbers. Token
//! strings are JSON-escaped once per model at start-up and copied here, and
//! activations are printed in fixed point with only the digits the stored
//! precision supports, which is several times faster than generic float
//! formatting and gives shorter output. Tests check the output against the
//! serde rendering of the same wire types (`wire::NeuroscopeText`, `wire::ExampleObject`).

use dd_data::ExampleGroupKind;
use dd_store::codec::{QuantizedExample, QuantizedExamples, QuantizedGroup};

use crate::json::{JsonOut, Slot};
use crate::token_strings::TokenStrings;

/// Decimals that print a value with error bound `error` while adding at most a tenth of it; `None` when exact.
pub(crate) fn decimals_for(error: f32) -> Option<u32> {
    if error.is_nan() || error <= 0.0 || !error.is_finite() {
        return None;
    }
    Some((5.0 / f64::from(error)).log10().ceil().clamp(0.0, 9.0) as u32)
}

fn tokens(out: &mut JsonOut, tokens: &[u32], strings: &TokenStrings) {
    // Slots are gathered 16 at a time before any is written: the loads are then independent and
    // their cache misses overlap, where writing each before loading the next made every miss wait
    // for the previous one (the output position depends on the previous token's length).
    const CHUNK: usize = 16;
    let start = out.begin_items();
    for chunk in tokens.chunks(CHUNK) {
        let mut slots = [Slot([0; 16]); CHUNK];
        for (slot, &token) in slots.iter_mut().zip(chunk) {
            *slot = *strings.slot(token);
        }
        for (slot, &token) in slots.iter().zip(chunk) {
            if slot.is_long() {
                strings.write_long(token, slot, out);
            } else {
                out.slot(slot);
            }
        }
    }
    out.end_items(start);
}

/// Formatted activations of one example, by code: an 8-bit example has at most 256 distinct
/// values, each formatted once. 16-bit codes share the table, keyed by the full code.
struct CodeMemo {
    keys: [u32; 256],
    slots: [Slot; 256],
}

impl CodeMemo {
    fn new() -> Self {
        Self { keys: [u32::MAX; 256], slots: [Slot([0; 16]); 256] }
    }

    fn reset(&mut self) {
        self.keys = [u32::MAX; 256];
    }
}

fn activations(out: &mut JsonOut, memo: &mut CodeMemo, stored: &QuantizedExamples, example: &QuantizedExample) {
    let decimals = decimals_for(example.activation_error(stored.bits));
    let step = example.step(stored.bits);
    memo.reset();
    let mut scratch = JsonOut::with_capacity(32);
    let start = out.begin_items();
    for &code in stored.codes(example) {
        let index = usize::from(code & 0xff);
        if memo.keys[index] != u32::from(code) {
            let value = example.value_with_step(code, step);
            scratch.buf.clear();
            match decimals {
                Some(decimals) => scratch.f32_fixed(value, decimals),
                None => scratch.f32(value),
            }
            let Some(slot) = Slot::item(&scratch.buf) else {
                out.raw(",");
                out.buf.extend_from_slice(&scratch.buf);
                continue;
            };
            memo.keys[index] = u32::from(code);
            memo.slots[index] = slot;
        }
        out.slot(&memo.slots[index]);
    }
    out.end_items(start);
}

/// The `neuroscope` neuron page: `{"neuron_index": …, "texts": [NeuroscopeText]}` from the top group.
pub(crate) fn neuroscope_page(
    out: &mut JsonOut,
    layer: u32,
    neuron: u32,
    stored: &QuantizedExamples,
    group: &QuantizedGroup,
    strings: &TokenStrings,
) {
    let examples = &group.examples;
    let mut memo = CodeMemo::new();
    let max_range = examples.iter().map(|e| e.upper).fold(f32::NEG_INFINITY, f32::max);
    let min_range = examples.iter().map(|e| e.lower).fold(f32::INFINITY, f32::min);
    out.raw("{\"neuron_index\":");
    neuron_index(out, layer, neuron);
    out.raw(",\"texts\":[");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw("{\"min_range\":");
        out.f32(min_range);
        out.raw(",\"max_range\":");
        out.f32(max_range);
        out.raw(",\"min_activation\":");
        out.f32(example.lower);
        out.raw(",\"max_activation\":");
        out.f32(example.upper);
        out.raw(",\"data_index\":");
        out.u64(example.dataset_index);
        out.raw(",\"max_activating_token_index\":");
        out.u64(example.max_token_index.into());
        out.raw(",\"tokens\":");
        tokens(out, stored.tokens(example), strings);
        out.raw(",\"activations\":");
        activations(out, &mut memo, stored, example);
        out.raw(",\"activation_error\":");
        out.f32(example.activation_error(stored.bits));
        out.raw("}");
    }
    out.raw("]}");
}

/// The `examples` page: every group with token ids (`wire::ExamplesPage`).
pub(crate) fn examples_page(
    out: &mut JsonOut,
    layer: u32,
    neuron: u32,
    stored: &QuantizedExamples,
    strings: &TokenStrings,
) {
    let mut memo = CodeMemo::new();
    out.raw("{\"neuron_index\":");
    neuron_index(out, layer, neuron);
    out.raw(",\"groups\":[");
    for (g, group) in stored.groups.iter().enumerate() {
        if g > 0 {
            out.raw(",");
        }
        let (kind, band) = match group.kind {
            ExampleGroupKind::Top => ("top", None),
            ExampleGroupKind::Bottom => ("bottom", None),
            ExampleGroupKind::Quantile { band, lower, upper } => ("quantile", Some((band, lower, upper))),
            ExampleGroupKind::Random => ("random", None),
        };
        out.raw("{\"kind\":\"");
        out.raw(kind);
        match band {
            Some((band, lower, upper)) => {
                out.raw("\",\"band\":");
                out.u64(band.into());
                out.raw(",\"lower\":");
                out.f32(lower);
                out.raw(",\"upper\":");
                out.f32(upper);
            }
            None => out.raw("\",\"band\":null,\"lower\":null,\"upper\":null"),
        }
        out.raw(",\"examples\":[");
        for (i, example) in group.examples.iter().enumerate() {
            if i > 0 {
                out.raw(",");
            }
            out.raw("{\"data_index\":");
            out.u64(example.dataset_index);
            out.raw(",\"max_token_index\":");
            out.u64(example.max_token_index.into());
            out.raw(",\"max_activation\":");
            out.f32(example.upper);
            out.raw(",\"min_activation\":");
            out.f32(example.lower);
            out.raw(",\"activation_error\":");
            out.f32(example.activation_error(stored.bits));
            out.raw(",\"token_ids\":[");
            for (t, &token) in stored.tokens(example).iter().enumerate() {
                if t > 0 {
                    out.raw(",");
                }
                out.u64(token.into());
            }
            out.raw("],\"tokens\":");
            tokens(out, stored.tokens(example), strings);
            out.raw(",\"activations\":");
            activations(out, &mut memo, stored, example);
            out.raw("}");
        }
        out.raw("]}");
    }
    out.raw("]}");
}

fn neuron_index(out: &mut JsonOut, layer: u32, neuron: u32) {
    out.raw("{\"layer\":");
    out.u64(layer.into());
    out.raw(",\"neuron\":");
    out.u64(neuron.into());
    out.raw("}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written pages parse as JSON and carry exactly the serde rendering of the same tokens,
    /// with awkward token strings, long ones and ids outside the vocabulary.
    #[test]
    fn pages_match_serde_for_awkward_tokens() {
        use dd_data::{Example, ExampleGroup, NeuronExamples, NeuronRecord, Vocabulary};
        use dd_store::EncodeOptions;
        use dd_store::codec::{decode_examples_quantized, encode_neuron};

        let vocabulary = Vocabulary {
            tokens: vec![
                "\"".into(),
                "\\".into(),
                "\n\t".into(),
                "\u{0}\u{1f}".into(),
                "🦠".into(),
                String::new(),
                " a much longer token than a slot holds".into(),
                "</script>".into(),
                "é".into(),
            ],
        };
        let tokens: Vec<u32> = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4_000_000, 6];
        let activations: Vec<f32> = (0..tokens.len()).map(|i| i as f32 * 0.37 - 1.1).collect();
        let examples = NeuronExamples {
            groups: vec![ExampleGroup {
                kind: ExampleGroupKind::Top,
                examples: vec![Example {
                    dataset_index: 7,
                    tokens: tokens.clone(),
                    activations: activations.clone(),
                    max_token_index: 11,
                    activation_error: 0.0,
                }],
            }],
        };
        let blob = encode_neuron(&NeuronRecord::Examples(examples), &EncodeOptions::STANDARD).expect("encode");
        let stored = decode_examples_quantized(&blob).expect("decode");
        let strings = TokenStrings::new(vocabulary.clone());
        let expected_tokens: Vec<String> = tokens.iter().map(|&t| strings.display(t)).collect();
        assert_eq!(expected_tokens[10], "<4000000>");

        let mut out = JsonOut::with_capacity(1024);
        neuroscope_page(&mut out, 1, 2, &stored, stored.top().expect("top"), &strings);
        let page: serde_json::Value = serde_json::from_slice(&out.buf).expect("valid JSON");
        let text = &page["texts"][0];
        assert_eq!(text["tokens"], serde_json::json!(expected_tokens));
        let bound = f64::from(stored.groups[0].examples[0].activation_error(stored.bits)) * 1.1;
        for (printed, recorded) in text["activations"].as_array().expect("array").iter().zip(&activations) {
            assert!((printed.as_f64().expect("number") - f64::from(*recorded)).abs() <= bound);
        }
        assert_eq!(page["neuron_index"], serde_json::json!({ "layer": 1, "neuron": 2 }));

        let mut out = JsonOut::with_capacity(1024);
        examples_page(&mut out, 1, 2, &stored, &strings);
        let page: serde_json::Value = serde_json::from_slice(&out.buf).expect("valid JSON");
        let example = &page["groups"][0]["examples"][0];
        assert_eq!(example["tokens"], serde_json::json!(expected_tokens));
        assert_eq!(example["token_ids"], serde_json::json!(tokens));
        assert_eq!(page["groups"][0]["kind"], "top");
        assert!(page["groups"][0]["band"].is_null());
    }

    #[test]
    fn decimals_keep_printing_error_small() {
        assert_eq!(decimals_for(0.0), None);
        assert_eq!(decimals_for(f32::NAN), None);
        // 8-bit codes over a range of 5: error ≈ 0.0098, printing adds ≤ 0.0005.
        assert_eq!(decimals_for(0.0098), Some(3));
        assert_eq!(decimals_for(1e-6), Some(7));
        for error in [1e-5f32, 3e-3, 0.2, 7.0] {
            let decimals = decimals_for(error).expect("some");
            assert!(0.5 * 10f64.powi(-(decimals as i32)) <= f64::from(error) / 10.0 + 1e-12, "{error}");
        }
    }
}
