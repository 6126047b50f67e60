//! The explainer's and the simulator's prompts: OpenAI's token-activation-pair format (Bills et
//! al. 2023), in our own words, with two made-up neurons as few-shot examples.
//!
//! A sequence is shown one token per line as `token<TAB>activation`, activations scaled to whole
//! numbers 0–10 by the largest activation shown. When fewer than a fifth of the tokens shown are
//! non-zero, the explainer also sees the non-zero lines alone, as OpenAI's explainer does for
//! sparse neurons. The simulator sees the explanation and a sequence whose activations read
//! `unknown`; the model's probabilities for the digits at each slot are its prediction.

use crate::chat::{ChatMessage, Role};

/// The explainer prompt's format and version, stored with every explanation it writes.
pub const EXPLAINER_PROMPT_VERSION: &str = "oai-token-activation-pairs/1";
/// The all-at-once simulator prompt's format and version, stored with every score it gives.
pub const SIMULATOR_PROMPT_VERSION: &str = "oai-all-at-once/1";
/// The largest normalised activation.
pub const MAX_NORMALIZED: u8 = 10;
/// What a simulation slot holds before the simulator fills it.
pub const UNKNOWN: &str = "unknown";
/// The words the explanation completes; stored explanations are only the completion.
pub const EXPLANATION_LEAD: &str = "the main thing this neuron does is find";

/// Below this share of non-zero tokens a neuron is sparse: its non-zero lines are listed again.
const SPARSE_SHARE: f64 = 0.2;

const EXPLAINER_SYSTEM: &str = "We are studying neurons in a neural network. Each neuron looks for one \
particular thing in a short document. Look at the parts of the document the neuron activates for and \
say in one short phrase what the neuron is looking for. Do not list examples of words.\n\n\
The activation format is token<tab>activation. Activations go from 0 to 10. A neuron finding what it \
looks for has a non-zero activation; the higher the activation, the stronger the match.";

const SIMULATOR_SYSTEM: &str = "We are studying neurons in a neural network. Each neuron looks for one \
particular thing in a short document. Given an explanation of what a neuron looks for, predict its \
activation on each token.\n\n\
The activation format is token<tab>activation, activations go from 0 to 10, \"unknown\" marks an \
activation still to be predicted. Most activations are 0.";

/// A made-up neuron the prompts show first: tokens, activations and its explanation.
struct FewShot {
    tokens: &'static [&'static str],
    activations: &'static [f32],
    explanation: &'static str,
}

const FEW_SHOTS: [FewShot; 2] = [
    FewShot {
        tokens: &[
            "We", " met", " on", " Monday", " and", " again", " on", " Friday", " before", " the", " holiday", ".",
        ],
        activations: &[0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 1.0, 0.0],
        explanation: "days of the week",
    },
    FewShot {
        tokens: &[
            "The", " result", " (", "see", " table", " 2", ")", " was", " clear", " (", "p", "<", "0", ".", "01", ").",
        ],
        activations: &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0],
        explanation: "closing parentheses",
    },
];

/// A sequence as the prompts show it: each token's text and the neuron's activation on it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownSequence {
    /// Token texts, one per token (any string; tabs and newlines are escaped when shown).
    pub tokens: Vec<String>,
    /// The neuron's activation on each token, in its own units.
    pub activations: Vec<f32>,
}

/// `min(10, floor(10 · max(a, 0) / max_activation))` for every activation: OpenAI's scale.
/// All zeros when `max_activation` is not positive.
pub fn normalize(activations: &[f32], max_activation: f32) -> Vec<u8> {
    activations
        .iter()
        .map(|&a| match max_activation > 0.0 && a.is_finite() {
            true => {
                (f32::from(MAX_NORMALIZED) * a.max(0.0) / max_activation).floor().min(f32::from(MAX_NORMALIZED)) as u8
            }
            false => 0,
        })
        .collect()
}

/// A token's text on one line of a prompt: tabs, newlines and carriage returns escaped, so they
/// cannot break the line format.
pub fn token_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r")
}

/// The lines `token<TAB>activation` of sequences on one shared scale, in `<start>`/`<end>`
/// blocks; for sparse neurons followed by the non-zero lines alone.
fn activation_listing(sequences: &[(Vec<String>, Vec<u8>)]) -> String {
    let mut text = String::new();
    let block = |text: &mut String, filter_zeros: bool| {
        for (tokens, levels) in sequences {
            text.push_str("<start>\n");
            for (token, level) in tokens.iter().zip(levels) {
                if !filter_zeros || *level > 0 {
                    text.push_str(&format!("{}\t{level}\n", token_text(token)));
                }
            }
            text.push_str("<end>\n");
        }
    };
    block(&mut text, false);
    let (nonzero, total) = sequences
        .iter()
        .flat_map(|(_, levels)| levels)
        .fold((0usize, 0usize), |(nonzero, total), &level| (nonzero + usize::from(level > 0), total + 1));
    if total > 0 && nonzero > 0 && (nonzero as f64) < SPARSE_SHARE * total as f64 {
        text.push_str("\nThe same activations, with the zeros left out:\n");
        block(&mut text, true);
    }
    text
}

fn few_shot_levels(shot: &FewShot) -> Vec<(Vec<String>, Vec<u8>)> {
    let tokens = shot.tokens.iter().map(|t| (*t).to_owned()).collect();
    vec![(tokens, normalize(shot.activations, f32::from(MAX_NORMALIZED)))]
}

fn explanation_request(number: usize) -> String {
    format!("Explanation of neuron {number} behavior: {EXPLANATION_LEAD}")
}

/// The explainer's conversation for a neuron's training sequences: the instructions, the two
/// few-shot neurons as earlier turns, then this neuron, ending where the explanation begins.
pub fn explainer_messages(sequences: &[ShownSequence]) -> Vec<ChatMessage> {
    let max_activation = sequences.iter().flat_map(|s| &s.activations).copied().fold(0f32, f32::max);
    let mut messages = vec![ChatMessage::new(Role::System, EXPLAINER_SYSTEM)];
    let neuron = |number: usize, shown: &[(Vec<String>, Vec<u8>)]| {
        format!(
            "Neuron {number}\nActivations:\n{}\n{}\n{}",
            activation_listing(shown),
            strongest_tokens(shown),
            explanation_request(number)
        )
    };
    for (number, shot) in FEW_SHOTS.iter().enumerate() {
        messages.push(ChatMessage::new(Role::User, neuron(number + 1, &few_shot_levels(shot))));
        messages.push(ChatMessage::new(Role::Assistant, format!("{EXPLANATION_LEAD} {}.", shot.explanation)));
    }
    let shown: Vec<(Vec<String>, Vec<u8>)> =
        sequences.iter().map(|s| (s.tokens.clone(), normalize(&s.activations, max_activation))).collect();
    messages.push(ChatMessage::new(Role::User, neuron(FEW_SHOTS.len() + 1, &shown)));
    messages
}

/// How many distinct tokens [`strongest_tokens`] names.
const STRONGEST_SHOWN: usize = 6;

/// "Strongest on: ..." with the distinct tokens of the highest levels, strongest first. Not in
/// OpenAI's prompt: small explainers (SmolLM2-135M) otherwise copy a few-shot answer, and a line
/// naming the tokens gives them something of this neuron's to say; large ones lose nothing.
fn strongest_tokens(shown: &[(Vec<String>, Vec<u8>)]) -> String {
    let mut best: Vec<(u8, &str)> = Vec::new();
    for (tokens, levels) in shown {
        for (token, &level) in tokens.iter().zip(levels) {
            if level == 0 {
                continue;
            }
            match best.iter_mut().find(|(_, t)| *t == token.as_str()) {
                Some(entry) => entry.0 = entry.0.max(level),
                None => best.push((level, token.as_str())),
            }
        }
    }
    // Stable: equal levels keep the order they were first seen in.
    best.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let names: Vec<String> =
        best.iter().take(STRONGEST_SHOWN).map(|(_, token)| format!("\"{}\"", token_text(token))).collect();
    format!("Strongest on: {}", if names.is_empty() { "nothing".to_owned() } else { names.join(", ") })
}

/// Whether an explanation is one of the few-shot neurons' answers: an explainer that copies one
/// has not explained this neuron.
pub fn copies_an_example(explanation: &str) -> bool {
    FEW_SHOTS.iter().any(|shot| explanation.trim().eq_ignore_ascii_case(shot.explanation))
}

/// The conversation as one text, for the record kept with each explanation.
pub fn transcript(messages: &[ChatMessage]) -> String {
    messages.iter().map(|m| format!("[{}]\n{}\n", m.role.as_str(), m.content)).collect::<Vec<_>>().join("\n")
}

/// The explanation in an explainer's answer: its first line, without the lead the prompt ends
/// with if the model repeats it, quotes or a final period; `None` when nothing is left.
pub fn parse_explanation(answer: &str) -> Option<String> {
    let line = answer.trim().lines().next().unwrap_or("").trim();
    let mut text = line;
    for lead in [EXPLANATION_LEAD, "this neuron finds ", "find "] {
        let starts = line.get(..lead.len()).is_some_and(|start| start.eq_ignore_ascii_case(lead));
        if starts {
            text = line[lead.len()..].trim_start_matches([':', ' ']);
            break;
        }
    }
    let mut text = text.trim().trim_end_matches('.').trim();
    // Quotes around the whole answer go; quotes inside it (the word "thou") stay.
    for quote in ['"', '\'', '`'] {
        if text.len() >= 2 && text.starts_with(quote) && text.ends_with(quote) {
            text = text[1..text.len() - 1].trim();
        }
    }
    // Explanations are short phrases; a model that rambles is cut at a sentence-sized bound.
    // Small models sometimes answer with the strongest tokens as a quoted list, repeated until
    // the token budget ends ("Under", "Under", …): keep each item once.
    let deduplicated;
    if text.contains("\", \"") {
        let mut items: Vec<&str> = Vec::new();
        for item in text.split(',').map(|item| item.trim().trim_matches('"').trim()).filter(|item| !item.is_empty()) {
            if !items.contains(&item) {
                items.push(item);
            }
        }
        deduplicated = items.join(", ");
        text = &deduplicated;
    }
    let text: String = text.chars().take(300).collect();
    // A model that copies the prompt's scaffolding back has not explained anything.
    let copied = ["<start>", "<end>", "\t", "The same activations", "Activations:", "Neuron "]
        .iter()
        .any(|scaffold| text.contains(scaffold));
    (!text.is_empty() && !copied).then_some(text)
}

/// The simulator's prompt before a sequence: the instructions, one made-up neuron with its
/// activations as an example, and the neuron to simulate with its explanation; each token of
/// the sequence then follows as a [`simulation_line`].
pub fn simulation_prefix(explanation: &str) -> String {
    let mut text = format!("{SIMULATOR_SYSTEM}\n\n");
    let shot = &FEW_SHOTS[0];
    text.push_str(&format!(
        "Neuron 1\nExplanation of neuron 1 behavior: {EXPLANATION_LEAD} {}\nActivations:\n{}\n",
        shot.explanation,
        activation_listing(&few_shot_levels(shot))
    ));
    text.push_str(&format!(
        "Neuron 2\nExplanation of neuron 2 behavior: {EXPLANATION_LEAD} {}\nActivations:\n<start>\n",
        explanation.trim()
    ));
    text
}

/// One token's line in the simulator's prompt, up to its slot: the model's next-token
/// probabilities after this text are its prediction; [`UNKNOWN`] and a newline follow it.
pub fn simulation_line(token: &str) -> String {
    format!("{}\t", token_text(token))
}

/// The words the expected value reads probabilities of: `"0"` to `"10"`.
pub fn level_words() -> impl Iterator<Item = (u8, String)> {
    (0..=MAX_NORMALIZED).map(|level| (level, level.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_is_openais() {
        assert_eq!(normalize(&[-1.0, 0.0, 0.05, 0.5, 0.99, 1.0, 2.0], 1.0), vec![0, 0, 0, 5, 9, 10, 10]);
        assert_eq!(normalize(&[1.0, 2.0], 0.0), vec![0, 0]);
        assert_eq!(normalize(&[f32::NAN], 1.0), vec![0]);
    }

    #[test]
    fn sparse_neurons_get_their_nonzero_lines_again() {
        let dense = ShownSequence { tokens: vec!["a".into(), "b".into()], activations: vec![1.0, 2.0] };
        let messages = explainer_messages(&[dense]);
        let last = &messages.last().expect("messages").content;
        assert!(last.contains("a\t5\nb\t10\n"), "{last}");
        assert!(!last.contains("zeros left out"), "{last}");
        let tokens: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        let mut activations = vec![0.0; 10];
        activations[3] = 4.0;
        let sparse = ShownSequence { tokens, activations };
        let last = explainer_messages(&[sparse]).pop().expect("message").content;
        assert!(last.contains("zeros left out:\n<start>\nt3\t10\n<end>"), "{last}");
        assert!(last.ends_with(&format!("Explanation of neuron 3 behavior: {EXPLANATION_LEAD}")), "{last}");
    }

    #[test]
    fn messages_alternate_after_the_instructions() {
        let messages = explainer_messages(&[ShownSequence { tokens: vec!["x".into()], activations: vec![1.0] }]);
        let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::User, Role::Assistant, Role::User]);
        assert!(messages[1].content.contains(" Monday\t10\n"), "{}", messages[1].content);
        assert!(
            messages[1].content.contains("Strongest on: \" Monday\", \" Friday\", \" holiday\""),
            "{}",
            messages[1].content
        );
        assert!(copies_an_example("Days of the week ") && !copies_an_example("days"));
    }

    #[test]
    fn token_texts_cannot_break_lines() {
        assert_eq!(token_text("a\tb\nc\\"), "a\\tb\\nc\\\\");
        assert_eq!(simulation_line("\n"), "\\n\t");
    }

    #[test]
    fn explanations_are_parsed_from_answers() {
        assert_eq!(parse_explanation(" the word \"thou\".\nMore text").as_deref(), Some("the word \"thou\""));
        assert_eq!(parse_explanation("The main thing this neuron does is find: verbs.").as_deref(), Some("verbs"));
        assert_eq!(parse_explanation("\"names of kings\"").as_deref(), Some("names of kings"));
        assert_eq!(parse_explanation("  \n ").as_deref(), None);
        assert_eq!(parse_explanation(&"x".repeat(1000)).map(|t| t.len()), Some(300));
        assert_eq!(parse_explanation("findings of fact").as_deref(), Some("findings of fact"));
        assert_eq!(parse_explanation("The same activations, with the zeros left out:"), None);
        assert_eq!(parse_explanation("<start>"), None);
        assert_eq!(parse_explanation("Under\", \"Under\", \"Under\", \"Under").as_deref(), Some("Under"));
        assert_eq!(parse_explanation("ick\", \"ICK\", \" kicks\", \"icks").as_deref(), Some("ick, ICK, kicks, icks"));
        assert_eq!(parse_explanation("\u{212A}elvin").as_deref(), Some("\u{212A}elvin"));
    }

    #[test]
    fn the_simulation_prompt_ends_at_the_first_line() {
        let prefix = simulation_prefix(" closing brackets ");
        assert!(prefix.ends_with(&format!("{EXPLANATION_LEAD} closing brackets\nActivations:\n<start>\n")), "{prefix}");
        assert!(prefix.contains(" Friday\t9\n"), "{prefix}");
    }
}
