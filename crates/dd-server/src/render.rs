//! Hand-written JSON for example texts, the API's hot path.
//!
//! A 20 × 128-token neuron is 2,560 token strings and 2,560 numbers. Token
//! strings are JSON-escaped once per model at start-up and copied here, and
//! activations are printed in fixed point with only the digits the stored
//! precision supports, which is several times faster than generic float
//! formatting and gives shorter output. Tests check the output against the
//! serde rendering of the same wire types (`wire::NeuroscopeText`, `wire::ExampleObject`).

use dd_data::{Example, ExampleGroup, ExampleGroupKind, NeuronExamples};

use crate::state::TokenStrings;

/// Appends JSON to a byte buffer.
pub(crate) struct JsonOut {
    pub(crate) buf: Vec<u8>,
}

impl JsonOut {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { buf: Vec::with_capacity(capacity) }
    }

    pub(crate) fn raw(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// Shortest round-trip form; `null` for non-finite values, as serde_json does.
    pub(crate) fn f32(&mut self, value: f32) {
        if value.is_finite() {
            self.buf.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
        } else {
            self.raw("null");
        }
    }

    /// Fixed point with at most `decimals` digits after the point, trailing zeros dropped.
    pub(crate) fn f32_fixed(&mut self, value: f32, decimals: u32) {
        if !value.is_finite() {
            return self.raw("null");
        }
        let scale = 10u64.pow(decimals);
        let scaled = (f64::from(value) * scale as f64).round();
        if scaled.abs() >= 9.0e15 {
            return self.f32(value);
        }
        let scaled = scaled as i64;
        if scaled < 0 {
            self.buf.push(b'-');
        }
        let magnitude = scaled.unsigned_abs();
        self.u64(magnitude / scale);
        let mut fraction = magnitude % scale;
        if fraction == 0 {
            return;
        }
        let mut n_digits = decimals;
        while fraction % 10 == 0 {
            fraction /= 10;
            n_digits -= 1;
        }
        self.buf.push(b'.');
        let digits = itoa::Buffer::new().format(fraction).len() as u32;
        for _ in digits..n_digits {
            self.buf.push(b'0');
        }
        self.u64(fraction);
    }

    pub(crate) fn string(&mut self, value: &str) {
        // serde_json's escaping, so hand-written and derived output agree byte for byte.
        let escaped = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned());
        self.raw(&escaped);
    }
}

/// Decimals that print a value with error bound `error` while adding at most a fifth of it; `None` when exact.
pub(crate) fn decimals_for(error: f32) -> Option<u32> {
    if !(error > 0.0) || !error.is_finite() {
        return None;
    }
    Some((5.0 / f64::from(error)).log10().ceil().clamp(0.0, 9.0) as u32)
}

fn activation(out: &mut JsonOut, value: f32, decimals: Option<u32>) {
    match decimals {
        Some(decimals) => out.f32_fixed(value, decimals),
        None => out.f32(value),
    }
}

fn tokens(out: &mut JsonOut, example: &Example, strings: &TokenStrings) {
    out.raw("[");
    for (i, &token) in example.tokens.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        strings.write_json(token, out);
    }
    out.raw("]");
}

fn activations(out: &mut JsonOut, example: &Example) {
    let decimals = decimals_for(example.activation_error);
    out.raw("[");
    for (i, &value) in example.activations.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        activation(out, value, decimals);
    }
    out.raw("]");
}

/// The `neuroscope` neuron page: `{"neuron_index": …, "texts": [NeuroscopeText]}` from the top group.
pub(crate) fn neuroscope_page(
    out: &mut JsonOut,
    layer: u32,
    neuron: u32,
    group: &ExampleGroup,
    strings: &TokenStrings,
) {
    let examples = &group.examples;
    let max_range = examples.iter().map(Example::max_activation).fold(f32::NEG_INFINITY, f32::max);
    let min_range = examples.iter().map(Example::min_activation).fold(f32::INFINITY, f32::min);
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
        out.f32(example.min_activation());
        out.raw(",\"max_activation\":");
        out.f32(example.max_activation());
        out.raw(",\"data_index\":");
        out.u64(example.dataset_index);
        out.raw(",\"max_activating_token_index\":");
        out.u64(example.max_token_index.into());
        out.raw(",\"tokens\":");
        tokens(out, example, strings);
        out.raw(",\"activations\":");
        activations(out, example);
        out.raw(",\"activation_error\":");
        out.f32(example.activation_error);
        out.raw("}");
    }
    out.raw("]}");
}

/// The `examples` page: every group with token ids (`wire::ExamplesPage`).
pub(crate) fn examples_page(
    out: &mut JsonOut,
    layer: u32,
    neuron: u32,
    examples: &NeuronExamples,
    strings: &TokenStrings,
) {
    out.raw("{\"neuron_index\":");
    neuron_index(out, layer, neuron);
    out.raw(",\"groups\":[");
    for (g, group) in examples.groups.iter().enumerate() {
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
            out.f32(example.max_activation());
            out.raw(",\"min_activation\":");
            out.f32(example.min_activation());
            out.raw(",\"activation_error\":");
            out.f32(example.activation_error);
            out.raw(",\"token_ids\":[");
            for (t, &token) in example.tokens.iter().enumerate() {
                if t > 0 {
                    out.raw(",");
                }
                out.u64(token.into());
            }
            out.raw("],\"tokens\":");
            tokens(out, example, strings);
            out.raw(",\"activations\":");
            activations(out, example);
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

    fn fixed(value: f32, decimals: u32) -> String {
        let mut out = JsonOut::with_capacity(16);
        out.f32_fixed(value, decimals);
        String::from_utf8(out.buf).expect("utf8")
    }

    #[test]
    fn fixed_point_is_valid_short_json() {
        assert_eq!(fixed(0.0, 3), "0");
        assert_eq!(fixed(-0.0001, 3), "0");
        assert_eq!(fixed(1.5, 3), "1.5");
        assert_eq!(fixed(-0.17, 3), "-0.17");
        assert_eq!(fixed(0.0625, 3), "0.063");
        assert_eq!(fixed(0.0049, 3), "0.005");
        assert_eq!(fixed(0.0012, 4), "0.0012");
        assert_eq!(fixed(123456.78, 1), "123456.8");
        assert_eq!(fixed(f32::NAN, 2), "null");
        for value in [0.1234f32, -5.5, 1e-3, 77.77] {
            let text = fixed(value, 4);
            let parsed: f64 = serde_json::from_str(&text).expect("valid JSON number");
            assert!((parsed - f64::from(value)).abs() <= 0.5e-4 + 1e-9, "{value} -> {text}");
        }
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
