//! HTML for notebooks (the Python package's `_repr_html_`): a neuron, an example and a search result
//! drawn as the website draws them, with the same colour scale and classes, in one self-contained
//! fragment. Its style is the website's stylesheet cut down to those classes, scoped to the fragment,
//! so a notebook's own styles are left alone and the colours stay defined in one place.

use std::sync::OnceLock;

use dd_data::{ExampleGroupKind, Explanations, NeuronExamples, NeuronStats, Vocabulary};

use super::pages::score_badge;
use super::tokens::{ColourScale, example_text, group_title, legend_with_note};
use crate::html::{escape, number};
use crate::token_strings::TokenStrings;

/// The legend's note: a notebook has no page script to show values on hover.
const LEGEND_NOTE: &str = "blue below zero, orange above; values in the example's activations";

/// Examples of the top group drawn for a neuron; the rest are counted.
const NOTEBOOK_EXAMPLES: usize = 5;

/// A model's token strings as the website shows them, built once per model.
pub struct NotebookTokens {
    strings: TokenStrings,
}

impl NotebookTokens {
    /// Escapes every token of `vocabulary` once.
    pub fn new(vocabulary: Vocabulary) -> Self {
        Self { strings: TokenStrings::new(vocabulary) }
    }

    /// Tokens in the vocabulary.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether the vocabulary is empty (a database without one).
    pub fn is_empty(&self) -> bool {
        self.strings.len() == 0
    }

    /// The token as the API and the website show it; unknown ids show as `<id>`.
    pub fn display(&self, token: u32) -> String {
        self.strings.display(token)
    }
}

/// One row of a search result: a neuron, its score, and a short text (matched tokens, an explanation).
#[derive(Debug, Clone)]
pub struct SearchRow {
    /// Layer.
    pub layer: u32,
    /// Neuron.
    pub neuron: u32,
    /// The ranking score.
    pub score: f32,
    /// What matched.
    pub text: String,
}

/// What a neuron's fragment shows.
pub struct NeuronView<'a> {
    /// The model's name.
    pub model: &'a str,
    /// Layer.
    pub layer: u32,
    /// Neuron.
    pub neuron: u32,
    /// Its examples, when stored.
    pub examples: Option<&'a NeuronExamples>,
    /// Its statistics, when stored.
    pub stats: Option<&'a NeuronStats>,
    /// Its explanations, when stored.
    pub explanations: Option<&'a Explanations>,
}

/// A neuron: title, first explanation with its scores, statistics, the colour legend and the first
/// examples of its top group.
pub fn neuron_html(view: &NeuronView<'_>, tokens: &NotebookTokens) -> String {
    let mut out = open();
    out.push_str("<h3 style=\"margin:.2rem 0\">");
    escape(&mut out, view.model);
    out.push_str(" · layer ");
    out.push_str(itoa::Buffer::new().format(view.layer));
    out.push_str(" · neuron ");
    out.push_str(itoa::Buffer::new().format(view.neuron));
    out.push_str("</h3>");
    if let Some(explanation) = view.explanations.and_then(|e| e.explanations.first()) {
        out.push_str("<p style=\"margin:.2rem 0\">");
        escape(&mut out, &explanation.text);
        for (i, score) in explanation.scores.iter().enumerate() {
            score_badge(&mut out, &score.name, score.value, i == 0);
        }
        out.push_str("<span class=badge>");
        escape(&mut out, &explanation.origin);
        out.push_str("</span></p>");
    }
    if let Some(stats) = view.stats {
        out.push_str("<p class=muted style=\"margin:.2rem 0;font-size:.85rem\">max ");
        number(&mut out, stats.max, 3);
        out.push_str(" · min ");
        number(&mut out, stats.min, 3);
        out.push_str(" · mean ");
        number(&mut out, stats.mean, 3);
        out.push_str(" · density ");
        number(&mut out, stats.density, 3);
        out.push_str(" · over ");
        out.push_str(itoa::Buffer::new().format(stats.count));
        out.push_str(" tokens</p>");
    }
    match view.examples {
        Some(examples) => {
            let scale = ColourScale::for_groups(&examples.groups);
            legend_with_note(&mut out, &scale, LEGEND_NOTE);
            let group = examples
                .groups
                .iter()
                .find(|group| group.kind == ExampleGroupKind::Top)
                .or_else(|| examples.groups.first());
            if let Some(group) = group {
                out.push_str("<h4 style=\"margin:.4rem 0 0\">");
                group_title(&mut out, group.kind);
                out.push_str("</h4><div class=examples>");
                for (i, example) in group.examples.iter().take(NOTEBOOK_EXAMPLES).enumerate() {
                    let id = format!("dd-nb-{}-{}-{i}", view.layer, view.neuron);
                    example_text(
                        &mut out,
                        &id,
                        &example.tokens,
                        &example.activations,
                        example.max_token_index,
                        &scale,
                        &tokens.strings,
                    );
                }
                out.push_str("</div>");
                if group.examples.len() > NOTEBOOK_EXAMPLES {
                    out.push_str("<p class=muted style=\"font-size:.8rem\">and ");
                    out.push_str(itoa::Buffer::new().format(group.examples.len() - NOTEBOOK_EXAMPLES));
                    out.push_str(" more in <code>neuron.examples</code></p>");
                }
            }
        }
        None => out.push_str("<p class=muted>No examples stored.</p>"),
    }
    close(out)
}

/// One example: its tokens coloured on a scale reaching its own largest absolute activation.
pub fn example_html(tokens: &[u32], activations: &[f32], mark_index: u32, strings: &NotebookTokens) -> String {
    let max_abs =
        activations.iter().fold(0.0f32, |acc, value| if value.is_finite() { acc.max(value.abs()) } else { acc });
    let scale = ColourScale::new(max_abs);
    let mut out = open();
    legend_with_note(&mut out, &scale, LEGEND_NOTE);
    example_text(&mut out, "dd-nb-example", tokens, activations, mark_index, &scale, &strings.strings);
    close(out)
}

/// A search result as a table: layer, neuron, score and what matched.
pub fn search_html(title: &str, rows: &[SearchRow]) -> String {
    let mut out = open();
    out.push_str("<table><caption style=\"text-align:left\">");
    escape(&mut out, title);
    out.push_str("</caption><thead><tr><th>layer</th><th>neuron</th><th>score</th><th></th></tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr><td>");
        out.push_str(itoa::Buffer::new().format(row.layer));
        out.push_str("</td><td>");
        out.push_str(itoa::Buffer::new().format(row.neuron));
        out.push_str("</td><td>");
        number(&mut out, f64::from(row.score), 3);
        out.push_str("</td><td style=\"text-align:left\">");
        escape(&mut out, &row.text);
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
    close(out)
}

fn open() -> String {
    let mut out = String::with_capacity(8 * 1024);
    out.push_str("<div class=dd-nb><style>");
    out.push_str(notebook_css());
    out.push_str("</style>");
    out
}

fn close(mut out: String) -> String {
    out.push_str("</div>");
    out
}

/// The website's colour variables (light theme) and the rules of the classes these fragments use,
/// nested under `.dd-nb`.
fn notebook_css() -> &'static str {
    static CSS: OnceLock<String> = OnceLock::new();
    CSS.get_or_init(|| {
        let sheet = super::assets::STYLE.body;
        let mut css = String::from(".dd-nb {");
        let mut lines = sheet.lines();
        // The first `:root` block is the light theme's variables.
        for line in lines.by_ref() {
            if line.starts_with(":root {") {
                break;
            }
        }
        for line in lines.by_ref() {
            if line.starts_with('}') {
                break;
            }
            if !line.trim_start().starts_with("color-scheme") {
                css.push_str(line.trim());
            }
        }
        css.push_str("color: var(--fg); background: var(--bg); font-family: system-ui, sans-serif;");
        const CLASSES: [&str; 12] =
            [".legend", ".examples", ".ex ", ".ex.", ".exhead", ".p1", ".p5", ".n1", ".n5", ".badge", ".tok", ".muted"];
        for line in sheet.lines().filter(|line| CLASSES.iter().any(|class| line.starts_with(class))) {
            css.push_str(line);
        }
        css.push('}');
        css
    })
}
