//! Writing HTML by hand: escaping and short numbers, for the website, the token strings and `/doc`.
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
    // Pages print thousands of values; float formatting through `fmt` was a third of a neuron
    // page's time. Scaled to an integer, the digits come from `itoa`; `fmt` is the fallback for
    // values too large for the scaled integer to be exact.
    let scaled = (value.abs() * POWERS_OF_TEN[decimals]).round();
    if scaled < 4.0e15 {
        let mut integer = scaled as u64;
        let mut decimals = decimals;
        while decimals > 0 && integer % 10 == 0 {
            integer /= 10;
            decimals -= 1;
        }
        if integer == 0 {
            out.push('0');
            return;
        }
        if value < 0.0 {
            out.push('-');
        }
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(integer);
        if decimals == 0 {
            out.push_str(text);
        } else if text.len() <= decimals {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', decimals - text.len()));
            out.push_str(text);
        } else {
            let (whole, fraction) = text.split_at(text.len() - decimals);
            out.push_str(whole);
            out.push('.');
            out.push_str(fraction);
        }
        return;
    }
    number_with_fmt(out, value, decimals);
}

/// 10⁰ to 10¹².
const POWERS_OF_TEN: [f64; 13] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12];

/// [`number`] through `fmt`, for values whose scaled integer would not be exact.
fn number_with_fmt(out: &mut String, value: f64, decimals: usize) {
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

    /// The integer path prints what `fmt` prints, but for values within a rounding error of a tie.
    #[test]
    fn the_integer_path_agrees_with_fmt() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut disagreements = 0;
        for i in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mantissa = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            let value = mantissa * 10f64.powi((i % 16) - 8);
            for digits in [2, 3, 4] {
                let mut fast = String::new();
                number(&mut fast, value, digits);
                let magnitude = value.abs().log10().floor() as i32;
                let decimals = (digits as i32 - 1 - magnitude).clamp(0, 12) as usize;
                let mut reference = String::new();
                number_with_fmt(&mut reference, value, decimals);
                if fast != reference {
                    // Allowed only at a tie, where `fmt` rounds the exact binary value.
                    let gap = (fast.parse::<f64>().expect("fast") - reference.parse::<f64>().expect("reference")).abs();
                    assert!(gap <= 1.01 * 10f64.powi(-(decimals as i32)), "{value}: {fast} vs {reference}");
                    disagreements += 1;
                }
            }
        }
        assert!(disagreements < 60, "{disagreements} of 600,000 differ");
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
