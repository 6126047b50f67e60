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

/// `text` escaped, as a new string.
pub(crate) fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape(&mut out, text);
    out
}

/// Appends a count with thousands separators: `124,439,808`.
pub(crate) fn count(out: &mut String, value: u64) {
    let digits = value.to_string();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
}

/// Appends an SVG coordinate to one decimal; a non-finite one becomes 0 so the SVG stays valid.
pub(crate) fn coordinate(out: &mut String, at: f64) {
    let rounded = if at.is_finite() { (at * 10.0).round() / 10.0 + 0.0 } else { 0.0 };
    let _ = write!(out, "{rounded}");
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
    fn counts_have_thousands_separators() {
        for (value, expected) in [(0, "0"), (999, "999"), (1000, "1,000"), (124_439_808, "124,439,808")] {
            let mut out = String::new();
            count(&mut out, value);
            assert_eq!(out, expected);
        }
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
