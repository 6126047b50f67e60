//! The neuron page's explanations: each with its scores, origin and explainer, how it was made
//! (simulator, prompt version, date, and the prompt itself folded away), and its first held-out
//! sequence with the simulator's predictions drawn under the true activations on one colour scale,
//! so a reader sees where the explanation fails.

use dd_data::{Explanation, Explanations, SimulatedSequence};

use super::super::tokens::{ColourScale, example_text, legend};
use super::super::view::PageContext;
use super::parts::{meaning_search_available, percent_encode, score_badge};
use crate::html::escape;

/// Appends the explanations section.
pub(super) fn explanations_section(out: &mut String, context: &PageContext<'_>, explanations: &Explanations) {
    out.push_str("<section id=explanations><h2>Explanations</h2>");
    let searchable = meaning_search_available(context);
    for (position, explanation) in explanations.explanations.iter().enumerate() {
        out.push_str("<article class=explanation-card id=explanation-");
        out.push_str(itoa::Buffer::new().format(position));
        out.push_str("><p class=explanation>");
        escape(out, &explanation.text);
        out.push_str("</p>");
        badges(out, explanation);
        details(out, explanation);
        if searchable {
            out.push_str("<p class=small><a href=\"");
            escape(out, &context.href(&format!("/explanation-search?q={}", percent_encode(&explanation.text))));
            out.push_str("\">Explanations of other neurons that mean the same</a></p>");
        }
        if let Some(sequence) = explanation.simulations.first() {
            simulation(out, context, position, sequence, explanation.simulations.len());
        }
        out.push_str("</article>");
    }
    out.push_str("</section>");
}

/// The scores (the first, the most important, coloured by its value), origin and explainer.
fn badges(out: &mut String, explanation: &Explanation) {
    out.push_str("<p class=badges>");
    for (i, score) in explanation.scores.iter().enumerate() {
        score_badge(out, &score.name, score.value, i == 0);
    }
    out.push_str("<span class=\"badge origin\" title=\"Where the explanation came from\">");
    escape(out, &explanation.origin);
    out.push_str("</span>");
    if let Some(author) = &explanation.author {
        out.push_str("<span class=\"badge author\" title=\"Who or what wrote it\">explainer: ");
        escape(out, author);
        out.push_str("</span>");
    }
    out.push_str("</p>");
}

/// How it was made, and the prompt in a collapsed `<details>`.
fn details(out: &mut String, explanation: &Explanation) {
    let provenance = explanation.provenance.as_ref();
    let embedding = explanation.embedding.as_ref().map(|embedding| embedding.model.as_str());
    let rows = [
        (
            "Simulator",
            "The model that predicted activations from the explanation, for the scores",
            provenance.and_then(|p| p.simulator.as_deref()),
        ),
        ("Prompt", "The prompt format and its version", provenance.map(|p| p.prompt_version.as_str())),
        ("Made", "When it was generated", provenance.map(|p| p.created.as_str())),
        ("Embedding", "The sentence encoder its embedding for search by meaning comes from", embedding),
    ];
    if rows.iter().all(|(_, _, value)| value.is_none_or(str::is_empty)) {
        return;
    }
    out.push_str("<dl class=provenance>");
    for (label, meaning, value) in rows {
        let Some(value) = value.filter(|value| !value.is_empty()) else { continue };
        out.push_str("<div><dt title=\"");
        out.push_str(meaning);
        out.push_str("\">");
        out.push_str(label);
        out.push_str("</dt><dd>");
        escape(out, value);
        out.push_str("</dd></div>");
    }
    out.push_str("</dl>");
    if let Some(prompt) = provenance.map(|p| p.prompt.as_str()).filter(|prompt| !prompt.is_empty()) {
        out.push_str("<details class=prompt><summary>The prompt the explainer saw</summary><pre>");
        escape(out, prompt);
        out.push_str("</pre></details>");
    }
}

/// The held-out sequence twice, true activations above the simulated ones, on one colour scale.
fn simulation(
    out: &mut String,
    context: &PageContext<'_>,
    position: usize,
    sequence: &SimulatedSequence,
    n_sequences: usize,
) {
    // Stored lengths agree (the store validates them), but a page must not trust that.
    let n_tokens =
        sequence.token_ids.len().min(sequence.true_activations.len()).min(sequence.simulated_activations.len());
    if n_tokens == 0 {
        return;
    }
    let tokens = &sequence.token_ids[..n_tokens];
    let true_values = &sequence.true_activations[..n_tokens];
    let simulated = &sequence.simulated_activations[..n_tokens];
    let largest = true_values
        .iter()
        .chain(simulated)
        .filter(|value| value.is_finite())
        .fold(0f32, |max, value| max.max(value.abs()));
    let scale = ColourScale::new(largest);
    let mark = true_values.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(index, _)| index as u32);
    out.push_str(
        "<figure class=simulation><figcaption>How the explanation predicts the neuron on a text it was \
                  not written from",
    );
    if n_sequences > 1 {
        out.push_str(" (the first of ");
        out.push_str(itoa::Buffer::new().format(n_sequences));
        out.push_str(" held-out texts; the JSON has all)");
    }
    out.push_str(
        ": the neuron's true activations above, the simulator's predictions from the explanation below, \
                  on one colour scale.</figcaption>",
    );
    legend(out, &scale);
    for (kind, label, values) in [("true", "true", true_values), ("sim", "simulated", simulated)] {
        out.push_str("<div class=sim-row><span class=sim-label>");
        out.push_str(label);
        out.push_str("</span>");
        let id = format!("x{position}-{kind}");
        example_text(out, &id, tokens, values, mark, &scale, &context.model.tokens);
        out.push_str("</div>");
    }
    out.push_str("</figure>");
}
