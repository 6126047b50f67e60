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

use crate::state::{LONG_TOKEN, TokenStrings};

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

    /// Appends `slot[1..=slot[0]]`: a fixed 15-byte copy then a truncate, which compiles to two stores
    /// where a variable-length copy is a `memcpy` call.
    pub(crate) fn short(&mut self, slot: &[u8; 16]) {
        let start = self.buf.len();
        let bytes: &[u8; 15] = slot[1..].try_into().unwrap_or(&[0; 15]);
        self.buf.extend_from_slice(bytes);
        self.buf.truncate(start + usize::from(slot[0]).min(15));
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

    /// Fixed point with at most `decimals` (≤ 9) digits after the point, trailing zeros dropped.
    pub(crate) fn f32_fixed(&mut self, value: f32, decimals: u32) {
        const POWERS: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
        let decimals = decimals.min(9);
        let scaled = f64::from(value) * POWERS[decimals as usize];
        if scaled.is_nan() || scaled.abs() >= 1e15 {
            return self.f32(value);
        }
        // Round half away from zero by truncation: `f64::round` is a libm call, this is one instruction.
        let scaled = (scaled + 0.5f64.copysign(scaled)) as i64;
        let mut magnitude = scaled.unsigned_abs();
        let mut n_decimals = decimals;
        while n_decimals > 0 && magnitude % 10 == 0 {
            magnitude /= 10;
            n_decimals -= 1;
        }
        // Digits right to left; dividing by the constant 10 compiles to a multiply, unlike a variable 10^d.
        let mut digits = [0u8; 24];
        let mut pos = digits.len();
        let mut n_written = 0;
        while magnitude > 0 || n_written <= n_decimals {
            if n_written == n_decimals && n_decimals > 0 {
                pos -= 1;
                digits[pos] = b'.';
            }
            pos -= 1;
            digits[pos] = b'0' + (magnitude % 10) as u8;
            magnitude /= 10;
            n_written += 1;
        }
        if scaled < 0 {
            pos -= 1;
            digits[pos] = b'-';
        }
        self.buf.extend_from_slice(&digits[pos..]);
    }

    pub(crate) fn string(&mut self, value: &str) {
        // serde_json's escaping, so hand-written and derived output agree byte for byte.
        let escaped = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned());
        self.raw(&escaped);
    }
}

/// Decimals that print a value with error bound `error` while adding at most a fifth of it; `None` when exact.
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
    out.raw("[");
    for (c, chunk) in tokens.chunks(CHUNK).enumerate() {
        let mut slots = [[0u8; 16]; CHUNK];
        for (slot, &token) in slots.iter_mut().zip(chunk) {
            *slot = strings.slot(token);
        }
        for (i, (slot, &token)) in slots.iter().zip(chunk).enumerate() {
            if c > 0 || i > 0 {
                out.raw(",");
            }
            if slot[0] == LONG_TOKEN {
                strings.write_long(token, slot, out);
            } else {
                out.short(slot);
            }
        }
    }
    out.raw("]");
}

fn activations(out: &mut JsonOut, stored: &QuantizedExamples, example: &QuantizedExample) {
    let codes = stored.codes(example);
    let error = example.activation_error(stored.bits);
    let decimals = decimals_for(error);
    // An 8-bit example has at most 256 distinct values: each is formatted once into a table indexed
    // by code. 16-bit codes share the table, keyed by the full code.
    let mut memo = [(u32::MAX, [0u8; 16]); 256];
    let mut scratch = JsonOut::with_capacity(32);
    out.raw("[");
    for (i, &code) in codes.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        let entry = &mut memo[usize::from(code & 0xff)];
        if entry.0 != u32::from(code) {
            let value = example.value(code, stored.bits);
            scratch.buf.clear();
            match decimals {
                Some(decimals) => scratch.f32_fixed(value, decimals),
                None => scratch.f32(value),
            }
            if scratch.buf.len() > 15 {
                out.buf.extend_from_slice(&scratch.buf);
                continue;
            }
            entry.1[0] = scratch.buf.len() as u8;
            entry.1[1..=scratch.buf.len()].copy_from_slice(&scratch.buf);
            entry.0 = u32::from(code);
        }
        out.short(&entry.1);
    }
    out.raw("]");
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
        activations(out, stored, example);
        out.raw(",\"activation_error\":");
        out.f32(example.activation_error(stored.bits));
        out.raw("}");
    }
    out.raw("]}");
}

/// The `examples` page: every group with token ids (`wire::ExamplesPage`).
pub(crate) fn examples_page(out: &mut JsonOut, layer: u32, neuron: u32, stored: &QuantizedExamples, strings: &TokenStrings) {
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
            activations(out, stored, example);
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
    fn fixed_point_matches_std_formatting() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = ((state >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0) as f32 / (1 + i % 1000) as f32;
            let decimals = (i % 10) as usize;
            let expected = format!("{:.*}", decimals, f64::from(value));
            let expected =
                if expected.contains('.') { expected.trim_end_matches('0').trim_end_matches('.') } else { &expected };
            let expected = if expected == "-0" { "0" } else { expected };
            let ours = fixed(value, decimals as u32);
            // std rounds half to even on the exact binary value; we round half away from zero: ties may differ by one ulp of the last digit.
            let (a, b): (f64, f64) = (ours.parse().expect("number"), expected.parse().expect("number"));
            assert!((a - b).abs() <= 1.01 * 10f64.powi(-(decimals as i32)), "{value} {decimals}: {ours} vs {expected}");
            if ours != expected {
                assert!((a - b).abs() > 0.0, "same value printed differently: {ours} vs {expected}");
            }
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
