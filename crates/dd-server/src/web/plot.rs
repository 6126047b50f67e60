//! Small SVG plots drawn on the server, so neuron and layer pages show distributions without JavaScript.
//!
//! Every plot is a fixed 480×180 `viewBox` that scales to its container's width. The SVG sets only
//! geometry and `currentColor`; the page's CSS colours these classes:
//! - `plot`: the `<svg>` element (`width="100%"`, so give it a `max-width`).
//! - `axis`: axis lines, ticks and all text, drawn in `currentColor`: set `color`.
//! - `note`: text shown instead of bars, or saying what was left out (inside `axis`).
//! - `zero`: the dashed line at x = 0, stroked in `currentColor`: set `color`.
//! - `pos`, `neg`: activation-histogram bars above, and at or below, zero: set `color`.
//! - `bar`: layer-distribution bars: set `color`.
//!
//! Bars are thick vertical strokes in `currentColor` rather than `<rect>`s: half the bytes per bar,
//! which keeps a 50-bin histogram with a hover `<title>` per bar well under 6 KB.

use std::fmt::Write;

/// Bins in a layer distribution: a few thousand neurons fill 40 bins well, and bars stay ~10 units wide.
const DISTRIBUTION_BINS: usize = 40;

/// How [`distribution_svg`] draws one per-neuron quantity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DistributionConfig<'a> {
    /// The quantity, as the x-axis title (escaped when written).
    pub(crate) label: &'a str,
    /// Log-scaled x axis, for positive quantities spanning decades (densities); values ≤ 0 are counted, not drawn.
    pub(crate) log_x: bool,
}

/// Appends the activation histogram of one neuron, with a log-scaled count axis and `label` as the x-axis title.
pub(crate) fn histogram_svg(out: &mut String, histogram: &dd_data::Histogram, label: &str) {
    let (lower, upper) = (f64::from(histogram.lower), f64::from(histogram.upper));
    let total = histogram.counts.iter().fold(0u64, |sum, &count| sum.saturating_add(count));
    let max_count = histogram.counts.iter().copied().max().unwrap_or(0);
    if histogram.counts.is_empty() || !lower.is_finite() || !upper.is_finite() || lower > upper {
        return draw::empty(out, "No activation histogram recorded");
    }
    if total == 0 {
        return draw::empty(out, "No activations recorded");
    }
    if lower == upper {
        let mut text = String::from("All ");
        crate::html::count(&mut text, total);
        text.push_str(" activations equal ");
        draw::value(&mut text, lower, 4);
        return draw::empty(out, &text);
    }

    let mut aria = String::from("Histogram of ");
    crate::html::count(&mut aria, total);
    aria.push_str(" activations from ");
    draw::value(&mut aria, lower, 3);
    aria.push_str(" to ");
    draw::value(&mut aria, upper, 3);
    aria.push_str(", log count axis");
    draw::open(out, &aria);

    let x = draw::Scale::new(lower, upper, draw::LEFT, draw::RIGHT);
    let y = draw::Scale::new(0.0, draw::log_count(max_count), draw::BOTTOM, draw::TOP);
    let width = (upper - lower) / histogram.counts.len() as f64;
    // Bars straddling zero take their midpoint's sign; grouping by sign names each class once.
    for (class, negative) in [("neg", true), ("pos", false)] {
        let mut group = String::new();
        for (i, &count) in histogram.counts.iter().enumerate() {
            let (from, to) = (lower + width * i as f64, lower + width * (i + 1) as f64);
            if ((from + to) / 2.0 <= 0.0) == negative {
                draw::bar(&mut group, &x, (from + to) / 2.0, y.map(draw::log_count(count)), |title| {
                    draw::value(title, from, 3);
                    title.push_str(" to ");
                    draw::value(title, to, 3);
                    title.push_str(": ");
                    crate::html::count(title, count);
                    title.push_str(" activations");
                });
            }
        }
        if !group.is_empty() {
            draw::open_bars(out, class, &x, width);
            out.push_str(&group);
            out.push_str("</g>");
        }
    }
    draw::zero_line(out, &x);
    draw::axes(out, &x, &draw::linear_ticks(lower, upper), &y, &draw::count_ticks(max_count, true), label, "");
    out.push_str("<text class=\"axis\" fill=\"currentColor\" x=\"2\" y=\"11\">count (log scale)</text></svg>");
}

/// Appends the distribution of a per-neuron quantity (one value per neuron) over a layer's neurons.
pub(crate) fn distribution_svg(out: &mut String, values: &[f32], config: &DistributionConfig<'_>) {
    let binned = Binned::new(values, config.log_x, DISTRIBUTION_BINS);
    let mut left_out = String::new();
    for (count, what) in [(binned.non_positive, " ≤ 0"), (binned.non_finite, " not finite")] {
        if count > 0 {
            left_out.push_str(if left_out.is_empty() { "" } else { ", " });
            crate::html::count(&mut left_out, count);
            left_out.push_str(what);
        }
    }
    if !left_out.is_empty() {
        left_out.push_str(" not shown");
    }
    let shown = binned.counts.iter().fold(0u64, |sum, &count| sum.saturating_add(count));
    if shown == 0 {
        let text = if left_out.is_empty() { "No values".to_owned() } else { format!("No values ({left_out})") };
        return draw::empty(out, &text);
    }

    // Edges in the plotted space (log10 of the value on a log axis), labels in the value's own units.
    let unlog = |t: f64| if config.log_x { 10f64.powf(t) } else { t };
    let mut aria = format!("Distribution of {} over ", config.label);
    crate::html::count(&mut aria, shown);
    aria.push_str(" neurons, from ");
    draw::value(&mut aria, unlog(binned.lower), 3);
    aria.push_str(" to ");
    draw::value(&mut aria, unlog(binned.upper), 3);
    if config.log_x {
        aria.push_str(", log scale");
    }
    if !left_out.is_empty() {
        let _ = write!(aria, "; {left_out}");
    }
    draw::open(out, &aria);

    let max_count = binned.counts.iter().copied().max().unwrap_or(0);
    let x = draw::Scale::new(binned.lower, binned.upper, draw::LEFT, draw::RIGHT);
    let y = draw::Scale::new(0.0, max_count as f64, draw::BOTTOM, draw::TOP);
    let width = (binned.upper - binned.lower) / binned.counts.len() as f64;
    draw::open_bars(out, "bar", &x, width);
    for (i, &count) in binned.counts.iter().enumerate() {
        let (from, to) = (binned.lower + width * i as f64, binned.lower + width * (i + 1) as f64);
        draw::bar(out, &x, (from + to) / 2.0, y.map(count as f64), |title| {
            draw::value(title, unlog(from), 3);
            title.push_str(" to ");
            draw::value(title, unlog(to), 3);
            title.push_str(": ");
            crate::html::count(title, count);
            title.push_str(if count == 1 { " neuron" } else { " neurons" });
        });
    }
    out.push_str("</g>");
    let x_ticks = if config.log_x {
        draw::log_ticks(binned.lower, binned.upper)
    } else {
        draw::zero_line(out, &x);
        draw::linear_ticks(binned.lower, binned.upper)
    };
    let suffix = if config.log_x { " (log scale)" } else { "" };
    draw::axes(out, &x, &x_ticks, &y, &draw::count_ticks(max_count, false), config.label, suffix);
    out.push_str("<text class=\"axis\" fill=\"currentColor\" x=\"2\" y=\"11\">neurons</text>");
    if !left_out.is_empty() {
        out.push_str("<text class=\"axis note\" fill=\"currentColor\" x=\"478\" y=\"11\" text-anchor=\"end\">");
        out.push_str(&left_out);
        out.push_str("</text>");
    }
    out.push_str("</svg>");
}

/// Values binned for [`distribution_svg`], in plotted space (log10 of the value when the axis is logarithmic).
#[derive(Debug)]
struct Binned {
    /// Lower edge of the first bin.
    lower: f64,
    /// Upper edge of the last bin.
    upper: f64,
    /// Values in each equal-width bin; empty when nothing could be plotted.
    counts: Vec<u64>,
    /// Values skipped as NaN or infinite.
    non_finite: u64,
    /// Values skipped as ≤ 0 on a log axis.
    non_positive: u64,
}

impl Binned {
    /// Bins `values` into `bins` equal bins spanning them; a single distinct value gets a range around it.
    fn new(values: &[f32], log_x: bool, bins: usize) -> Self {
        let (mut non_finite, mut non_positive) = (0, 0);
        let mut plotted = Vec::with_capacity(values.len());
        for &value in values {
            let value = f64::from(value);
            if !value.is_finite() {
                non_finite += 1;
            } else if log_x && value <= 0.0 {
                non_positive += 1;
            } else {
                plotted.push(if log_x { value.log10() } else { value });
            }
        }
        let lowest = plotted.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = plotted.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if plotted.is_empty() || bins == 0 {
            return Self { lower: 0.0, upper: 1.0, counts: Vec::new(), non_finite, non_positive };
        }
        // One distinct value still needs a range to draw: half a decade, or a tenth of the value, either side.
        let pad = if highest > lowest {
            0.0
        } else if log_x || lowest == 0.0 {
            0.5
        } else {
            lowest.abs() / 10.0
        };
        let (lower, upper) = (lowest - pad, highest + pad);
        let mut counts = vec![0u64; bins];
        for t in plotted {
            // `as` saturates, and the top value lands one past the end: both clamp into the last bin.
            let index = (((t - lower) / (upper - lower)) * bins as f64).floor() as usize;
            if let Some(count) = counts.get_mut(index.min(bins - 1)) {
                *count += 1;
            }
        }
        Self { lower, upper, counts, non_finite, non_positive }
    }
}

/// Shared drawing: layout, scales, nice ticks, axes and number formats.
mod draw {
    use std::fmt::Write;

    use crate::html::{coordinate, escape, number};

    /// Left edge of the plot area; room for short count labels.
    pub(super) const LEFT: f64 = 40.0;
    /// Right edge of the plot area; room for half of the last x label.
    pub(super) const RIGHT: f64 = 464.0;
    /// Top of the plot area, below the y-axis title.
    pub(super) const TOP: f64 = 20.0;
    /// Bottom of the plot area (the x axis), above the tick labels and x-axis title.
    pub(super) const BOTTOM: f64 = 146.0;
    /// Estimated width of one label character at font size 10, erring wide so labels never touch.
    const CHAR_WIDTH: f64 = 6.0;

    /// Linear map from data to viewBox coordinates.
    pub(super) struct Scale {
        /// Data value at `from`.
        low: f64,
        /// Data value at `to`.
        high: f64,
        /// Coordinate of `low`.
        from: f64,
        /// Coordinate of `high`.
        to: f64,
    }

    impl Scale {
        /// Maps `low..=high` onto `from..=to`.
        pub(super) fn new(low: f64, high: f64, from: f64, to: f64) -> Self {
            Self { low, high, from, to }
        }

        /// The coordinate of `value`; an empty domain maps to the middle rather than dividing by zero.
        pub(super) fn map(&self, value: f64) -> f64 {
            if self.high > self.low {
                self.from + (value - self.low) / (self.high - self.low) * (self.to - self.from)
            } else {
                (self.from + self.to) / 2.0
            }
        }
    }

    /// A candidate x-axis tick, in the scale's data space.
    pub(super) struct Tick {
        /// Position in data space.
        value: f64,
        /// Label text.
        label: String,
        /// Drawn (at least its mark) even when its label does not fit; optional ticks are dropped instead.
        required: bool,
    }

    /// Positions of ticks at 1, 2 or 5 × 10ⁿ spanning `low..=high`, about `target` of them.
    pub(super) fn nice_ticks(low: f64, high: f64, target: u32) -> Vec<f64> {
        if !low.is_finite() || !high.is_finite() || high <= low {
            return if low.is_finite() && low == high { vec![low] } else { Vec::new() };
        }
        let raw = (high - low) / f64::from(target.max(1));
        let exponent = raw.log10().floor() as i32;
        let magnitude = 10f64.powi(exponent);
        let mantissa = match raw / magnitude {
            m if m < 1.5 => 1.0,
            m if m < 3.0 => 2.0,
            m if m < 7.0 => 5.0,
            _ => 10.0,
        };
        // Dividing by an exact power of ten keeps 0.3 from printing as 0.30000000000000004.
        let at = |k: f64| if exponent < 0 { k * mantissa / 10f64.powi(-exponent) } else { k * mantissa * magnitude };
        let step = mantissa * magnitude;
        let (first, last) = ((low / step - 1e-9).ceil(), (high / step + 1e-9).floor());
        if !(first.is_finite() && last.is_finite()) || last < first || last - first > 100.0 {
            return Vec::new();
        }
        (0..=(last - first) as u32).map(|k| at(first + f64::from(k))).collect()
    }

    /// X ticks for a linear axis: both ends and zero (required), plus nice ticks between.
    pub(super) fn linear_ticks(low: f64, high: f64) -> Vec<Tick> {
        // Zero first: when it sits near an end, the end's label is the one to hang aside.
        let mut ticks = Vec::with_capacity(12);
        if low < 0.0 && high > 0.0 {
            ticks.push(required(0.0, 0.0));
        }
        ticks.extend([required(low, low), required(high, high)]);
        let nice = nice_ticks(low, high, 5);
        // Enough digits to tell neighbouring ticks apart.
        let step = nice.get(1).zip(nice.first()).map_or(1.0, |(b, a)| b - a);
        let digits = (low.abs().max(high.abs()).log10().floor() - step.log10().floor() + 1.0).clamp(1.0, 6.0) as u32;
        ticks.extend(nice.into_iter().map(|t| optional(t, t, digits)));
        ticks
    }

    /// X ticks for a log axis over log10 space `low..=high`: both ends, plus whole decades.
    ///
    /// A range within about one decade has too few decades to read, so it gets nice values instead.
    pub(super) fn log_ticks(low: f64, high: f64) -> Vec<Tick> {
        let (bottom, top) = (10f64.powf(low), 10f64.powf(high));
        let mut ticks = vec![required(low, bottom), required(high, top)];
        let decades: Vec<f64> = nice_ticks(low, high, 5).into_iter().filter(|t| t.fract() == 0.0).collect();
        if decades.len() >= 2 {
            ticks.extend(decades.into_iter().map(|t| optional(t, 10f64.powf(t), 1)));
        } else {
            let nice = nice_ticks(bottom, top, 5).into_iter().filter(|&v| v > 0.0);
            ticks.extend(nice.map(|v| optional(v.log10(), v, 3)));
        }
        ticks
    }

    /// A required tick at `at` labelled with `value` (they differ on log axes).
    fn required(at: f64, value: f64) -> Tick {
        Tick { value: at, label: label(value, 3), required: true }
    }

    /// An optional tick at `at` labelled with `value` to `digits` significant digits.
    fn optional(at: f64, value: f64, digits: u32) -> Tick {
        Tick { value: at, label: label(value, digits), required: false }
    }

    /// `x` in [`value`]'s format, as a new string.
    fn label(x: f64, digits: u32) -> String {
        let mut out = String::new();
        value(&mut out, x, digits);
        out
    }

    /// Y ticks for a count axis (position in the scale's space, label): nice counts, decades on a log axis, and the peak.
    pub(super) fn count_ticks(max: u64, log: bool) -> Vec<(f64, String)> {
        let top = if log { log_count(max) } else { max as f64 };
        let mut ticks = Vec::new();
        // Counts are whole, and on a log axis only whole decades read well.
        for t in nice_ticks(0.0, top, 4).into_iter().filter(|t| t.fract() == 0.0) {
            let count = if log && t > 0.0 { 10f64.powf(t) } else { t };
            let at = if log { (count + 1.0).log10() } else { count };
            if at <= top {
                ticks.push((at, compact_count(count)));
            }
        }
        // Label the peak too unless it would crowd the last tick (16 units ≈ a label's height and a half).
        let gap = 16.0 / (BOTTOM - TOP) * top;
        if ticks.last().is_none_or(|(at, _)| top - at >= gap) {
            ticks.push((top, compact_count(max as f64)));
        }
        ticks
    }

    /// The log-axis height of a count: log10(count + 1), so zero counts sit on the axis.
    pub(super) fn log_count(count: u64) -> f64 {
        (count as f64 + 1.0).log10()
    }

    /// Opens a plot's `<svg>` with `aria` (escaped) as its accessible summary.
    pub(super) fn open(out: &mut String, aria: &str) {
        out.push_str(concat!(
            "<svg class=\"plot\" width=\"100%\" viewBox=\"0 0 480 180\" preserveAspectRatio=\"xMidYMid meet\"",
            " font-size=\"10\" role=\"img\" aria-label=\""
        ));
        escape(out, aria);
        out.push_str("\">");
    }

    /// A whole plot holding only `text` (escaped), for data with nothing to draw.
    pub(super) fn empty(out: &mut String, text: &str) {
        open(out, text);
        out.push_str("<text class=\"axis note\" fill=\"currentColor\" x=\"240\" y=\"94\" text-anchor=\"middle\">");
        escape(out, text);
        out.push_str("</text></svg>");
    }

    /// Opens a group of bars with CSS class `class`, each `width` data units wide.
    pub(super) fn open_bars(out: &mut String, class: &str, x: &Scale, width: f64) {
        let pixels = x.map(x.low + width) - x.map(x.low);
        // A small gap separates bars; thin bars give up less of their width.
        let _ = write!(out, "<g class=\"{class}\" stroke=\"currentColor\" stroke-width=\"");
        coordinate(out, pixels - (pixels * 0.15).min(1.0));
        out.push_str("\">");
    }

    /// A bar centred on data value `middle`, from the x axis up to coordinate `top`, hovering `title`'s text.
    ///
    /// Empty bars have no height to hover, so they get no title.
    pub(super) fn bar(out: &mut String, x: &Scale, middle: f64, top: f64, title: impl FnOnce(&mut String)) {
        let top = top.min(BOTTOM);
        out.push_str("<path d=\"M");
        coordinate(out, x.map(middle));
        let _ = write!(out, " {BOTTOM}V");
        coordinate(out, top);
        if top < BOTTOM {
            out.push_str("\"><title>");
            title(out);
            out.push_str("</title></path>");
        } else {
            out.push_str("\"/>");
        }
    }

    /// The dashed line at x = 0, when zero lies strictly inside the axis.
    pub(super) fn zero_line(out: &mut String, x: &Scale) {
        if x.low < 0.0 && x.high > 0.0 {
            out.push_str("<path class=\"zero\" stroke=\"currentColor\" stroke-dasharray=\"3 2\" d=\"M");
            coordinate(out, x.map(0.0));
            let _ = write!(out, " {TOP}V{BOTTOM}\"/>");
        }
    }

    /// Axis lines, ticks, tick labels and the x-axis title (`title` escaped, then `suffix` raw).
    ///
    /// X labels are placed in order, required ticks first; each tries centred, then hanging to
    /// either side, and is dropped if it would still overlap a placed label.
    pub(super) fn axes(
        out: &mut String,
        x: &Scale,
        x_ticks: &[Tick],
        y: &Scale,
        y_ticks: &[(f64, String)],
        title: &str,
        suffix: &str,
    ) {
        let mut path = format!("M{LEFT} {TOP}V{BOTTOM}H{RIGHT}");
        let mut labels = String::new();
        let mut placed: Vec<(f64, f64)> = Vec::new();
        let order = x_ticks.iter().filter(|t| t.required).chain(x_ticks.iter().filter(|t| !t.required));
        for tick in order {
            let at = x.map(tick.value);
            if !(LEFT - 0.5..=RIGHT + 0.5).contains(&at) {
                continue;
            }
            let width = tick.label.chars().count() as f64 * CHAR_WIDTH;
            let sides = if at < (LEFT + RIGHT) / 2.0 { ["middle", "end", "start"] } else { ["middle", "start", "end"] };
            let fits = sides.into_iter().find_map(|anchor| {
                let span = match anchor {
                    "middle" => (at - width / 2.0, at + width / 2.0),
                    "end" => (at - width, at + 1.0),
                    _ => (at - 1.0, at + width),
                };
                let free = placed.iter().all(|&(a, b)| span.1 + 4.0 <= a || b + 4.0 <= span.0);
                (free && span.0 >= 0.0 && span.1 <= 480.0).then_some((anchor, span))
            });
            if let Some((anchor, span)) = fits {
                placed.push(span);
                labels.push_str("<text x=\"");
                coordinate(&mut labels, at);
                let _ = write!(labels, "\" y=\"{}\"", BOTTOM + 14.0);
                if anchor != "middle" {
                    let _ = write!(labels, " text-anchor=\"{anchor}\"");
                }
                labels.push('>');
                escape(&mut labels, &tick.label);
                labels.push_str("</text>");
            } else if !tick.required {
                continue;
            }
            path.push('M');
            coordinate(&mut path, at);
            let _ = write!(path, " {BOTTOM}v4");
        }
        out.push_str("<g class=\"axis\" fill=\"currentColor\"><path fill=\"none\" stroke=\"currentColor\" d=\"");
        out.push_str(&path);
        for (at, _) in y_ticks {
            let _ = write!(out, "M{LEFT} ");
            coordinate(out, y.map(*at));
            out.push_str("h-4");
        }
        out.push_str("\"/><g text-anchor=\"middle\">");
        out.push_str(&labels);
        out.push_str("<text x=\"");
        coordinate(out, (LEFT + RIGHT) / 2.0);
        out.push_str("\" y=\"176\">");
        escape(out, title);
        out.push_str(suffix);
        out.push_str("</text></g><g text-anchor=\"end\">");
        for (at, label) in y_ticks {
            let _ = write!(out, "<text x=\"{}\" y=\"", LEFT - 6.0);
            coordinate(out, y.map(*at) + 3.5);
            let _ = write!(out, "\">{label}</text>");
        }
        out.push_str("</g></g>");
    }

    /// Appends a data value with `digits` significant digits, in scientific notation when very small or large.
    pub(super) fn value(out: &mut String, value: f64, digits: u32) {
        let size = value.abs();
        if value == 0.0 || !value.is_finite() || (1e-3..1e5).contains(&size) {
            return number(out, value, digits);
        }
        let precision = digits.saturating_sub(1) as usize;
        let text = format!("{value:.precision$e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa =
            if mantissa.contains('.') { mantissa.trim_end_matches('0').trim_end_matches('.') } else { mantissa };
        let _ = write!(out, "{mantissa}e{exponent}");
    }

    /// A count in two significant digits with a k, M or B suffix, for tick labels.
    fn compact_count(count: f64) -> String {
        // Round first, so 999,999 reads `1M` rather than `1000k`.
        let rounded = if count >= 1000.0 {
            let unit = 10f64.powi(count.log10().floor() as i32 - 1);
            (count / unit).round() * unit
        } else {
            count
        };
        let (scaled, suffix) = match rounded {
            c if c >= 1e9 => (c / 1e9, "B"),
            c if c >= 1e6 => (c / 1e6, "M"),
            c if c >= 1e3 => (c / 1e3, "k"),
            c => (c, ""),
        };
        let mut out = String::new();
        number(&mut out, scaled, 3);
        out.push_str(suffix);
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn close(actual: &[f64], expected: &[f64]) -> bool {
            actual.len() == expected.len() && actual.iter().zip(expected).all(|(a, e)| (a - e).abs() <= 1e-12)
        }

        #[test]
        fn nice_ticks_pick_round_steps() {
            let cases: [(f64, f64, &[f64]); 6] = [
                (-0.17, 3.4, &[0.0, 1.0, 2.0, 3.0]),
                (0.0, 100.0, &[0.0, 20.0, 40.0, 60.0, 80.0, 100.0]),
                (-3.0, -1.0, &[-3.0, -2.5, -2.0, -1.5, -1.0]),
                (0.001, 0.0012, &[0.001, 0.00105, 0.0011, 0.00115, 0.0012]),
                (-5.0, 0.0, &[-5.0, -4.0, -3.0, -2.0, -1.0, 0.0]),
                (0.2, 0.4, &[0.2, 0.25, 0.3, 0.35, 0.4]),
            ];
            for (low, high, expected) in cases {
                let ticks = nice_ticks(low, high, 4);
                assert!(close(&ticks, expected), "{low}..{high}: {ticks:?}");
            }
            assert_eq!(nice_ticks(0.2, 0.4, 4).get(2), Some(&0.3), "no floating-point noise");
            assert!(nice_ticks(1.0, 0.0, 4).is_empty());
            assert!(nice_ticks(f64::NAN, 1.0, 4).is_empty());
            assert_eq!(nice_ticks(2.0, 2.0, 4), vec![2.0]);
            let tiny = nice_ticks(1.0, 1.0 + 1e-12, 4);
            assert!((2..=10).contains(&tiny.len()), "{tiny:?}");
            assert!(tiny.iter().all(|t| (1.0..=1.0 + 1e-12).contains(t)), "{tiny:?}");
        }

        #[test]
        fn labels_are_short() {
            let cases = [(1e-5, "1e-5"), (1.234e-5, "1.23e-5"), (0.0012, "0.0012"), (-0.17, "-0.17"), (2.5e7, "2.5e7")];
            for (v, expected) in cases {
                assert_eq!(label(v, 3), expected);
            }
            assert_eq!(compact_count(1234.0), "1.2k");
            assert_eq!(compact_count(999_999.0), "1M");
            assert_eq!(compact_count(7.0), "7");
        }

        #[test]
        fn log_axes_tick_decades_or_values_within_one() {
            let labels = |ticks: Vec<Tick>| ticks.into_iter().map(|t| t.label).collect::<Vec<_>>();
            assert_eq!(labels(log_ticks(-5.0, 0.0)), ["1e-5", "1", "1e-5", "1e-4", "0.001", "0.01", "0.1", "1"]);
            let within = log_ticks(0.2f64.log10(), 0.7f64.log10());
            assert!(within.iter().any(|t| t.label == "0.3" && (t.value - 0.3f64.log10()).abs() < 1e-12));
        }

        #[test]
        fn log_count_ticks_are_decades_and_peak() {
            let ticks = count_ticks(1_234_567, true);
            let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
            assert_eq!(labels, ["0", "100", "10k", "1M"], "peak 1.2M is too close to 1M to label");
            let ticks = count_ticks(5, true);
            let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
            assert_eq!(labels, ["0", "5"]);
        }
    }
}

#[cfg(test)]
mod tests {
    use dd_data::Histogram;

    use super::*;

    fn histogram(lower: f32, upper: f32, counts: Vec<u64>) -> String {
        let mut out = String::new();
        histogram_svg(&mut out, &Histogram { lower, upper, counts }, "activation");
        out
    }

    /// Bars are the only paths with `d` as their first attribute.
    const BAR: &str = "<path d=\"";

    /// The height of each bar in document order, from its `d="M{x} {bottom}V{top}"`.
    fn heights(svg: &str) -> Vec<f64> {
        svg.split(BAR)
            .skip(1)
            .filter_map(|bar| {
                let (bottom, top) = bar.split('"').next()?.split_once(' ')?.1.split_once('V')?;
                Some(bottom.parse::<f64>().ok()? - top.parse::<f64>().ok()?)
            })
            .collect()
    }

    /// The bars inside the `<g class="{class}" …>` group.
    fn bars_in(svg: &str, class: &str) -> usize {
        let start = format!("<g class=\"{class}\"");
        svg.split_once(&start).and_then(|(_, rest)| rest.split_once("</g>")).map_or(0, |(g, _)| g.matches(BAR).count())
    }

    #[test]
    fn histogram_has_a_bar_per_bin_split_by_sign() {
        // Bins of 0.5 from -1: midpoints -0.75, -0.25, 0.25, 0.75, 1.25, 1.75.
        let svg = histogram(-1.0, 2.0, vec![3, 40, 500, 6, 0, 1]);
        assert_eq!(svg.matches(BAR).count(), 6);
        assert_eq!(bars_in(&svg, "neg"), 2);
        assert_eq!(bars_in(&svg, "pos"), 4);
        assert!(svg.contains("-0.5 to 0: 40 activations"), "{svg}");
        assert!(svg.contains("class=\"zero\""));
        assert!(svg.contains("aria-label=\"Histogram of 550 activations from -1 to 2"));
        assert!(svg.contains("count (log scale)"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn histogram_bars_grow_with_counts() {
        let counts = vec![0, 1, 2, 10, 11, 1000, 1_000_000, 5];
        let svg = histogram(0.0, 8.0, counts.clone());
        let heights = heights(&svg);
        assert_eq!(heights.len(), counts.len());
        assert!(!svg.contains("class=\"zero\""), "zero is the axis's edge, not inside it");
        let mut pairs: Vec<(u64, f64)> = counts.into_iter().zip(heights).collect();
        pairs.sort_by_key(|&(count, _)| count);
        assert_eq!(pairs.first().map(|p| p.1), Some(0.0));
        for window in pairs.windows(2) {
            if let [(c0, h0), (c1, h1)] = window {
                assert!(h0 < h1, "count {c0} drew {h0}, count {c1} drew {h1}");
            }
        }
    }

    #[test]
    fn degenerate_histograms_say_so() {
        let cases = [
            (0.0, 1.0, vec![], "No activation histogram"),
            (0.0, 1.0, vec![0, 0], "No activations recorded"),
            (1.5, 1.5, vec![7, 0], "All 7 activations equal 1.5"),
            (f32::NAN, 1.0, vec![1], "No activation histogram"),
            (0.0, f32::INFINITY, vec![1], "No activation histogram"),
            (2.0, 1.0, vec![1], "No activation histogram"),
        ];
        for (lower, upper, counts, note) in cases {
            let svg = histogram(lower, upper, counts);
            assert!(svg.contains(note), "{svg}");
            assert!(!svg.contains(BAR));
        }
        // Subnormal widths and one bin still draw.
        assert_eq!(histogram(0.0, f32::MIN_POSITIVE, vec![1]).matches(BAR).count(), 1);
        assert_eq!(histogram(-f32::MAX, f32::MAX, vec![1, 2]).matches(BAR).count(), 2);
    }

    #[test]
    fn labels_are_escaped() {
        let mut out = String::new();
        histogram_svg(&mut out, &Histogram { lower: 0.0, upper: 1.0, counts: vec![1] }, "<b>&\"");
        assert!(out.contains("&lt;b&gt;&amp;&quot;") && !out.contains("<b>"));
        let mut out = String::new();
        distribution_svg(&mut out, &[1.0, 2.0], &DistributionConfig { label: "a<\"b", log_x: false });
        assert!(out.contains("a&lt;&quot;b") && !out.contains("a<"), "{out}");
    }

    #[test]
    fn histogram_of_50_bins_is_small() {
        let counts: Vec<u64> = (0..50u32).map(|i| 1_234_567 / (u64::from(i) + 1).pow(3)).collect();
        let svg = histogram(-0.1734, 3.4128, counts);
        assert_eq!(svg.matches(BAR).count(), 50);
        assert!(svg.len() < 6000, "{} bytes", svg.len());
    }

    #[test]
    fn distribution_bins_match_a_hand_count() {
        // Range 0..10 in 40 bins of 0.25; 9.99 and the maximum 10 both land in the last bin.
        let values = [0.0, 1.0, 1.0, 2.5, 9.99, 10.0, f32::NAN, f32::INFINITY];
        let binned = Binned::new(&values, false, 40);
        let mut expected = vec![0u64; 40];
        for (bin, count) in [(0, 1), (4, 2), (10, 1), (39, 2)] {
            if let Some(slot) = expected.get_mut(bin) {
                *slot = count;
            }
        }
        assert_eq!(binned.counts, expected);
        assert_eq!((binned.lower, binned.upper, binned.non_finite), (0.0, 10.0, 2));

        // Pseudo-random values against counting each bin's half-open interval directly.
        let mut state = 12345u32;
        let values: Vec<f32> = (0..3072)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1 << 24) as f32 * 7.0 - 2.0
            })
            .collect();
        let binned = Binned::new(&values, false, 40);
        let width = (binned.upper - binned.lower) / 40.0;
        for (i, &count) in binned.counts.iter().enumerate() {
            let (from, to) = (binned.lower + width * i as f64, binned.lower + width * (i + 1) as f64);
            let last = i == 39;
            let direct = values.iter().map(|&v| f64::from(v)).filter(|&v| v >= from && (v < to || last)).count();
            assert_eq!(count, direct as u64, "bin {i}");
        }

        let mut svg = String::new();
        distribution_svg(&mut svg, &values, &DistributionConfig { label: "max activation", log_x: false });
        assert_eq!(svg.matches(BAR).count(), 40);
        assert!(svg.contains("over 3,072 neurons"));
    }

    #[test]
    fn log_distribution_leaves_out_non_positive_values() {
        let values = [-1.0, 0.0, 1e-5, 1e-3, 0.1, 1.0, f32::NAN];
        let binned = Binned::new(&values, true, 40);
        assert_eq!((binned.non_positive, binned.non_finite), (2, 1));
        // log10 spans -5..0 in 40 bins of 0.125: -3 is bin 16, -1 bin 32.
        let filled: Vec<(usize, u64)> = binned.counts.iter().copied().enumerate().filter(|&(_, c)| c > 0).collect();
        assert_eq!(filled, [(0, 1), (16, 1), (32, 1), (39, 1)]);
        let mut svg = String::new();
        distribution_svg(&mut svg, &values, &DistributionConfig { label: "density", log_x: true });
        assert!(svg.contains("2 ≤ 0, 1 not finite not shown"), "{svg}");
        assert!(svg.contains("density (log scale)"));
        assert!(svg.contains(">1e-5<") && svg.contains(">0.01<"), "decade ticks: {svg}");
    }

    #[test]
    fn degenerate_distributions_do_not_panic() {
        let cases: [(&[f32], bool, &str); 5] = [
            (&[], false, "No values"),
            (&[f32::NAN], false, "No values (1 not finite not shown)"),
            (&[0.0, -2.0], true, "No values (2 ≤ 0 not shown)"),
            (&[3.0, 3.0], false, "2 neurons"),
            (&[0.5], true, "1 neuron<"),
        ];
        for (values, log_x, expected) in cases {
            let mut svg = String::new();
            distribution_svg(&mut svg, values, &DistributionConfig { label: "x", log_x });
            assert!(svg.contains(expected), "{values:?}: {svg}");
        }
        let extremes = [f32::MAX, -f32::MAX, f32::MIN_POSITIVE];
        let mut svg = String::new();
        distribution_svg(&mut svg, &extremes, &DistributionConfig { label: "x", log_x: false });
        assert_eq!(svg.matches(BAR).count(), 40);
    }
}
