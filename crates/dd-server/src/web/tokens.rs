//! Tokens coloured by activation: the colour scale, its legend and example texts, the neuron page's hot path.
//!
//! An example is one `<div class=ex>` whose children are exactly its tokens, as `<i>` elements
//! carrying a colour class; the values themselves travel once per example in `data-a`, which the
//! page script shows on hover and focus. That keeps a 128-token example near 2 KB, where a
//! `title` and inline style per token would triple it.

use dd_data::{Example, ExampleGroup, ExampleGroupKind};

use crate::html::number;
use crate::token_strings::TokenStrings;

/// Steps of colour on each side of zero.
const STEPS: f32 = 8.0;

/// Values closer to zero than this share of the scale stay uncoloured, so faint noise does not tint every token.
const DEAD_ZONE: f32 = 0.06;

/// The class of each step: orange for positive values, blue for negative.
/// See [`NEGATIVE`].
const POSITIVE: [&str; 8] = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"];
/// The class of each step below zero, palest first (orange above zero: readable with red-green colour blindness).
const NEGATIVE: [&str; 8] = ["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"];

/// A symmetric colour scale: `-scale` is the darkest blue, `+scale` the darkest orange.
///
/// Symmetric, so one colour means one value across all of a neuron's examples and groups.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColourScale {
    scale: f32,
}

impl ColourScale {
    /// A scale reaching `max_abs`; a zero or non-finite bound colours nothing.
    pub(crate) fn new(max_abs: f32) -> Self {
        let scale = if max_abs.is_finite() && max_abs > 0.0 { max_abs } else { f32::INFINITY };
        ColourScale { scale }
    }

    /// The scale for a neuron's examples: their largest absolute activation.
    ///
    /// When every example starts with the same token (the BOS token the recorder puts first), that
    /// position is left out: many models park huge "attention sink" activations there, and a scale
    /// reaching them would leave every other token uncoloured. Such values clamp to the darkest step.
    pub(crate) fn for_groups(groups: &[ExampleGroup]) -> Self {
        let examples = || groups.iter().flat_map(|group| &group.examples);
        let first_tokens: Vec<u32> = examples().filter_map(|example| example.tokens.first().copied()).collect();
        let shared_start = first_tokens.len() > 1 && first_tokens.windows(2).all(|pair| pair[0] == pair[1]);
        let skip = usize::from(shared_start);
        let max_abs = examples()
            .flat_map(|example| example.activations.iter().skip(skip))
            .fold(0.0f32, |acc, value| if value.is_finite() { acc.max(value.abs()) } else { acc });
        Self::new(max_abs)
    }

    /// The bound of the scale, or `None` when it colours nothing.
    pub(crate) fn bound(&self) -> Option<f32> {
        self.scale.is_finite().then_some(self.scale)
    }

    /// The CSS class of `value`, or `None` for values in the dead zone.
    pub(crate) fn class(&self, value: f32) -> Option<&'static str> {
        let share = value.abs() / self.scale;
        // NaN fails this test too, so it stays uncoloured.
        if share.is_nan() || share < DEAD_ZONE {
            return None;
        }
        let step = ((share * STEPS).ceil() as usize).clamp(1, 8) - 1;
        Some(if value > 0.0 { POSITIVE[step] } else { NEGATIVE[step] })
    }
}

/// Appends the legend of `scale`: the sixteen colours from `-bound` to `+bound`.
pub(crate) fn legend(out: &mut String, scale: &ColourScale) {
    legend_with_note(out, scale, "blue below zero, orange above; hover or focus a text and use ← → for values");
}

/// The legend with `note` after the colours (a page without the page script says less).
pub(crate) fn legend_with_note(out: &mut String, scale: &ColourScale, note: &str) {
    let Some(bound) = scale.bound() else { return };
    out.push_str("<div class=legend aria-label=\"Colour scale\"><span>");
    number(out, f64::from(-bound), 3);
    out.push_str("</span><span class=scale>");
    for class in NEGATIVE.iter().rev().chain(&POSITIVE) {
        out.push_str("<i class=");
        out.push_str(class);
        out.push_str("></i>");
    }
    out.push_str("</span><span>");
    number(out, f64::from(bound), 3);
    out.push_str("</span><span class=muted>");
    out.push_str(note);
    out.push_str("</span></div>");
}

/// Appends one example as a coloured text with the id `id`.
pub(crate) fn example_text(
    out: &mut String,
    id: &str,
    tokens: &[u32],
    activations: &[f32],
    mark_index: u32,
    scale: &ColourScale,
    strings: &TokenStrings,
) {
    out.push_str("<div class=ex tabindex=0 id=");
    out.push_str(id);
    out.push_str(" data-m=");
    out.push_str(itoa::Buffer::new().format(mark_index));
    out.push_str(" data-a=\"");
    for (i, value) in activations.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        number(out, f64::from(*value), 3);
    }
    out.push_str("\">");
    for (token, value) in tokens.iter().zip(activations) {
        match scale.class(*value) {
            Some(class) => {
                out.push_str("<i class=");
                out.push_str(class);
                out.push('>');
            }
            None => out.push_str("<i>"),
        }
        out.push_str(strings.html_text(*token));
        out.push_str("</i>");
    }
    out.push_str("</div>");
}

/// Appends a group's examples, each with a header line and a full-text toggle.
pub(crate) fn example_group(
    out: &mut String,
    id_prefix: &str,
    group: &ExampleGroup,
    scale: &ColourScale,
    strings: &TokenStrings,
) {
    out.push_str("<div class=examples>");
    for (i, example) in group.examples.iter().enumerate() {
        let id = format!("{id_prefix}{i}");
        example_header(out, &id, group.kind, example);
        example_text(out, &id, &example.tokens, &example.activations, example.max_token_index, scale, strings);
    }
    out.push_str("</div>");
}

/// The line above an example: its extreme, range and dataset index, and the full-text toggle.
fn example_header(out: &mut String, id: &str, kind: ExampleGroupKind, example: &Example) {
    let marked = example.activations.get(example.max_token_index as usize).copied().unwrap_or(f32::NAN);
    out.push_str("<div class=exhead><span>");
    out.push_str(if kind == ExampleGroupKind::Bottom { "min " } else { "max " });
    number(out, f64::from(marked), 3);
    out.push_str(" at token ");
    out.push_str(itoa::Buffer::new().format(example.max_token_index));
    out.push_str("</span><span>range ");
    number(out, f64::from(example.min_activation()), 3);
    out.push_str(" to ");
    number(out, f64::from(example.max_activation()), 3);
    out.push_str("</span><span>dataset index ");
    out.push_str(itoa::Buffer::new().format(example.dataset_index));
    out.push_str("</span><button type=button aria-expanded=false data-full=");
    out.push_str(id);
    out.push_str(">full text</button></div>");
}

/// The title of a group of examples.
pub(crate) fn group_title(out: &mut String, kind: ExampleGroupKind) {
    match kind {
        ExampleGroupKind::Top => out.push_str("Top activating texts"),
        ExampleGroupKind::Bottom => out.push_str("Bottom activating texts"),
        ExampleGroupKind::Quantile { band, lower, upper } => {
            out.push_str("Band ");
            out.push_str(itoa::Buffer::new().format(band));
            out.push_str(": maximum from ");
            number(out, f64::from(lower), 3);
            out.push_str(" to ");
            number(out, f64::from(upper), 3);
        }
        ExampleGroupKind::Random => out.push_str("Random texts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_symmetric_with_a_dead_zone() {
        let scale = ColourScale::new(2.0);
        assert_eq!(scale.class(2.0), Some("p8"));
        assert_eq!(scale.class(-2.0), Some("n8"));
        assert_eq!(scale.class(1.0), Some("p4"));
        assert_eq!(scale.class(-0.26), Some("n2"));
        assert_eq!(scale.class(0.05), None);
        assert_eq!(scale.class(0.0), None);
        assert_eq!(scale.class(f32::NAN), None);
        assert_eq!(scale.class(5.0), Some("p8"), "values past the bound clamp");
        assert_eq!(ColourScale::new(0.0).class(1.0), None, "a flat neuron colours nothing");
        assert_eq!(ColourScale::new(0.0).bound(), None);
    }

    #[test]
    fn a_shared_first_token_is_left_out_of_the_scale() {
        let example = |tokens: Vec<u32>, activations: Vec<f32>| Example {
            dataset_index: 0,
            tokens,
            activations,
            max_token_index: 0,
            activation_error: 0.0,
        };
        let group = |examples| ExampleGroup { kind: ExampleGroupKind::Top, examples };
        let with_bos = [group(vec![example(vec![1, 5], vec![3000.0, 2.0]), example(vec![1, 6], vec![2900.0, -1.0])])];
        assert_eq!(ColourScale::for_groups(&with_bos).bound(), Some(2.0));
        assert_eq!(ColourScale::for_groups(&with_bos).class(3000.0), Some("p8"), "the sink clamps");
        let mixed = [group(vec![example(vec![1, 5], vec![3000.0, 2.0]), example(vec![2, 6], vec![1.0, -1.0])])];
        assert_eq!(ColourScale::for_groups(&mixed).bound(), Some(3000.0));
    }
}
