//! Writing HTML by hand: escaping, numbers, and the buffer every page is built in.
//!
//! Pages are plain strings rather than a template engine's output: the neuron page's coloured
//! tokens are the hot path (thousands of spans) and its weight is budgeted, so every byte is chosen
//! here. Everything that comes from data (token strings, explanations, model names) goes through
//! [`escape`]; only literal markup is written raw.

use std::fmt::Write;

/// Appends `text` with `&`, `<`, `>`, `"` and `'` escaped, safe in element content and quoted attributes.
pub(crate) fn escape(out: &mut String, text: &str) {
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(entity);
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// Appends a number with at most `digits` significant digits and no trailing zeros: `0.0123`, `-4.5`, `1200`.
///
/// Plots and tables show values, not exact floats; short numbers keep pages light.
pub(crate) fn number(out: &mut String, value: f64, digits: u32) {
    if !value.is_finite() {
        out.push_str(if value.is_nan() {
            "NaN"
        } else if value > 0.0 {
            "∞"
        } else {
            "-∞"
        });
        return;
    }
    if value == 0.0 {
        out.push('0');
        return;
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits as i32 - 1 - magnitude).clamp(0, 12) as usize;
    let start = out.len();
    let _ = write!(out, "{value:.decimals$}");
    if decimals > 0 {
        while out.ends_with('0') {
            out.pop();
        }
        if out.ends_with('.') {
            out.pop();
        }
    }
    if &out[start..] == "-0" {
        out.replace_range(start.., "0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` escaped, as a new string.
    fn escaped(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        escape(&mut out, text);
        out
    }

    /// A number as a new string (see [`number`]).
    fn format_number(value: f64, digits: u32) -> String {
        let mut out = String::new();
        number(&mut out, value, digits);
        out
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escaped("<a href=\"x\">it's & more</a>"),
            "&lt;a href=&quot;x&quot;&gt;it&#39;s &amp; more&lt;/a&gt;"
        );
        assert_eq!(escaped("plain ⏎ text"), "plain ⏎ text");
        assert_eq!(escaped(""), "");
    }

    #[test]
    fn numbers_are_short() {
        let cases = [
            (0.0, 3, "0"),
            (-0.0001, 3, "-0.0001"),
            (0.012345, 3, "0.0123"),
            (-4.5, 3, "-4.5"),
            (1234.0, 3, "1234"),
            (1.0, 3, "1"),
            (2.999, 2, "3"),
            (-0.00001, 1, "-0.00001"),
            (f64::NAN, 3, "NaN"),
        ];
        for (value, digits, expected) in cases {
            assert_eq!(format_number(value, digits), expected, "{value}");
        }
    }
}
