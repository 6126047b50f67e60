//! A simulator behind a chat endpoint: given an explanation and a sequence of tokens, the model
//! predicts, as JSON, how strongly the neuron fires on each token, on OpenAI's 0–10 scale.
//!
//! OpenAI's original simulator read the logprobs of the digits after each token ("all at once"),
//! which most OpenAI-compatible servers do not return for chat models; asking for one number per
//! token in a JSON object works with any of them. The tokens are shown numbered, so that the model
//! keeps count, and a wrong count gets one corrective turn before it is an error.

use serde_json::Value;

use crate::chat::{ChatMessage, Role};
use crate::endpoint::{ChatClient, ChatRequest};
use crate::error::ExplainError;
use crate::simulator::Simulator;

/// The version of the prompt and answer format below, stored with each simulated score.
pub const CHAT_SIMULATOR_PROMPT_VERSION: &str = "json-per-token/1";

/// A simulator behind a chat endpoint: each sequence one request for its predictions as JSON.
pub struct ChatSimulator<'a> {
    client: &'a ChatClient,
}

impl<'a> ChatSimulator<'a> {
    /// Simulates through `client`.
    pub fn new(client: &'a ChatClient) -> Self {
        Self { client }
    }
}

impl Simulator for ChatSimulator<'_> {
    fn name(&self) -> String {
        self.client.model().to_owned()
    }

    fn prompt_version(&self) -> &'static str {
        CHAT_SIMULATOR_PROMPT_VERSION
    }

    fn simulate(&self, explanation: &str, sequences: &[Vec<String>]) -> Result<Vec<Vec<f64>>, ExplainError> {
        sequences
            .iter()
            .map(|tokens| {
                Ok(simulate_with_chat(self.client, explanation, tokens)?.into_iter().map(f64::from).collect())
            })
            .collect()
    }
}

/// The top of OpenAI's activation scale.
const MAX_ACTIVATION: f32 = 10.0;

/// How much of a bad answer is quoted in the error.
const MAX_QUOTED_CHARS: usize = 200;

const SYSTEM_PROMPT: &str = "We're studying neurons in a neural network. Each neuron looks for some \
particular thing in a short document. Look at an explanation of what the neuron does, and predict \
how strongly it activates on each token of a document.

For every token, give a number from 0 to 10: 0 means the neuron does not fire on that token, 10 \
means it fires as strongly as it ever does. Most tokens get 0. Answer with a JSON object and \
nothing else, of the form {\"activations\": [a0, a1, ...]}, with exactly one number per token, in \
the order of the tokens.";

/// The neuron's predicted activation on each of `tokens`, on the 0–10 scale, from a model behind
/// `client` that reads only `explanation`.
pub fn simulate_with_chat(client: &ChatClient, explanation: &str, tokens: &[String]) -> Result<Vec<f32>, ExplainError> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let mut messages = vec![
        ChatMessage::new(Role::System, SYSTEM_PROMPT),
        ChatMessage::new(Role::User, user_prompt(explanation, tokens)),
    ];
    let n_tokens = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
    let mut request = ChatRequest {
        messages: Vec::new(),
        // A number, a comma and a space are about three tokens; the rest is the JSON around them.
        max_tokens: n_tokens.saturating_mul(4).saturating_add(64),
        temperature: 0.0,
        seed: None,
        json_object: true,
    };
    let mut last_answer = String::new();
    let mut problem = String::new();
    for turn in 0..2 {
        if turn > 0 {
            messages.push(ChatMessage::new(Role::Assistant, std::mem::take(&mut last_answer)));
            messages.push(ChatMessage::new(Role::User, correction(&problem, tokens.len())));
        }
        request.messages.clone_from(&messages);
        last_answer = client.complete(&request)?.text;
        problem = match parse_activations(&last_answer) {
            Ok(activations) if activations.len() == tokens.len() => return Ok(activations),
            Ok(activations) => format!("it has {} numbers for {} tokens", activations.len(), tokens.len()),
            Err(reason) => reason,
        };
        tracing::debug!(simulator = %client.describe(), turn, %problem, "simulator answer unusable");
    }
    Err(ExplainError::Endpoint(format!(
        "the simulator {} gave no usable prediction, even after a correction: {problem} (its answer: {})",
        client.describe(),
        clip(&last_answer)
    )))
}

/// The explanation and the numbered tokens, each as a JSON string so that spaces and newlines
/// show.
fn user_prompt(explanation: &str, tokens: &[String]) -> String {
    let n_tokens = tokens.len();
    let mut prompt =
        format!("Neuron explanation: {}\n\nThe document's {n_tokens} tokens, numbered:\n", explanation.trim());
    for (position, token) in tokens.iter().enumerate() {
        let quoted = serde_json::to_string(token).unwrap_or_else(|_| format!("{token:?}"));
        prompt.push_str(&format!("{position} {quoted}\n"));
    }
    prompt.push_str(&format!(
        "\nAnswer with {{\"activations\": [...]}} holding exactly {n_tokens} numbers, one for each of tokens 0 to {}.",
        n_tokens - 1
    ));
    prompt
}

/// The corrective turn after an unusable answer.
fn correction(problem: &str, n_tokens: usize) -> String {
    format!(
        "That answer cannot be used: {problem}. There are exactly {n_tokens} tokens, numbered 0 to {}. Answer \
         again with only {{\"activations\": [...]}} holding exactly {n_tokens} numbers from 0 to 10.",
        n_tokens.saturating_sub(1)
    )
}

/// The numbers in a simulator's answer, clamped to 0–10, or why there are none. Lenient about
/// what models do: a ```json fence, prose around the JSON, a bare array, another key than
/// `activations`, an object keyed by position, numbers as strings, and `{"token", "activation"}`
/// objects.
fn parse_activations(text: &str) -> Result<Vec<f32>, String> {
    let value = parse_json(strip_fence(text)).ok_or_else(|| "the answer is not JSON".to_owned())?;
    let values = activation_values(&value)
        .ok_or_else(|| "the answer has no list of activations (expected {\"activations\": [...]})".to_owned())?;
    values
        .iter()
        .enumerate()
        .map(|(position, value)| {
            number(value)
                .filter(|number| number.is_finite())
                .map(|number| (number as f32).clamp(0.0, MAX_ACTIVATION))
                .ok_or_else(|| format!("activation {position} is not a number"))
        })
        .collect()
}

/// The text inside a Markdown code fence, or all of it.
fn strip_fence(text: &str) -> &str {
    let text = text.trim();
    let Some(after_fence) = text.strip_prefix("```") else {
        return text;
    };
    // The fence line may name a language (```json).
    let body = after_fence.split_once('\n').map_or("", |(_, body)| body);
    body.rsplit_once("```").map_or(body, |(inside, _)| inside).trim()
}

/// `text` as JSON, or the JSON between its first `{`/`[` and its last `}`/`]` when a model wrote
/// prose around it.
fn parse_json(text: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    let start = text.find(['{', '['])?;
    let end = text.rfind(['}', ']'])?;
    serde_json::from_str(text.get(start..=end)?).ok()
}

/// The list of per-token values in an answer.
fn activation_values(value: &Value) -> Option<Vec<Value>> {
    let object = match value {
        Value::Array(values) => return Some(values.clone()),
        Value::Object(object) => object,
        _ => return None,
    };
    if let Some((_, values)) = object.iter().find(|(key, _)| key.eq_ignore_ascii_case("activations")) {
        return activation_values(values);
    }
    // One array under another name ("predictions", "values").
    let mut arrays = object.values().filter(|value| value.is_array());
    if let (Some(Value::Array(values)), None) = (arrays.next(), arrays.next()) {
        return Some(values.clone());
    }
    // {"0": 3, "1": 0, ...}: every key a position, every position present.
    let mut by_position = object
        .iter()
        .map(|(key, value)| key.trim().parse::<usize>().ok().map(|position| (position, value.clone())))
        .collect::<Option<Vec<_>>>()?;
    by_position.sort_by_key(|(position, _)| *position);
    let complete =
        !by_position.is_empty() && by_position.iter().enumerate().all(|(idx, (position, _))| idx == *position);
    complete.then(|| by_position.into_iter().map(|(_, value)| value).collect())
}

/// A number, a string holding one, or an object's `activation`/`value`/`a` field.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        Value::Object(object) => ["activation", "value", "a"].iter().find_map(|key| object.get(*key)).and_then(number),
        _ => None,
    }
}

/// The start of an answer with whitespace collapsed, for an error message.
fn clip(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &collapsed[..cut]),
        None => collapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<f32> {
        parse_activations(text).unwrap_or_else(|reason| panic!("{text:?} should parse: {reason}"))
    }

    #[test]
    fn plain_answers_parse() {
        assert_eq!(parsed(r#"{"activations": [0, 3, 10]}"#), [0.0, 3.0, 10.0]);
        assert_eq!(parsed(r#"{"activations": [0.5, 2.25]}"#), [0.5, 2.25]);
        assert_eq!(parsed(r#"{"activations": []}"#), Vec::<f32>::new());
    }

    #[test]
    fn odd_answers_parse() {
        assert_eq!(parsed("```json\n{\"activations\": [1, 2]}\n```"), [1.0, 2.0]);
        assert_eq!(parsed("```\n[4, 5]\n```"), [4.0, 5.0]);
        assert_eq!(parsed(r#"Here you go: {"activations": [1, 0]} Hope this helps."#), [1.0, 0.0]);
        assert_eq!(parsed(r#"{"activations": ["3", " 7 ", "0.5"]}"#), [3.0, 7.0, 0.5]);
        assert_eq!(parsed(r#"{"Activations": [1]}"#), [1.0]);
        assert_eq!(parsed(r#"{"predictions": [2, 8]}"#), [2.0, 8.0]);
        assert_eq!(parsed("[0, 9]"), [0.0, 9.0]);
        assert_eq!(parsed(r#"{"1": 5, "0": 2, "2": "1"}"#), [2.0, 5.0, 1.0]);
        assert_eq!(
            parsed(r#"{"activations": [{"token": "a", "activation": 6}, {"token": "b", "value": "2"}]}"#),
            [6.0, 2.0]
        );
        assert_eq!(parsed(r#"{"activations": {"activations": [3]}}"#), [3.0]);
    }

    #[test]
    fn out_of_scale_numbers_are_clamped() {
        assert_eq!(parsed(r#"{"activations": [-2, 14, 1e9, 10.0]}"#), [0.0, 10.0, 10.0, 10.0]);
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let refused = |text: &str| parse_activations(text).expect_err(text);
        assert!(refused("I think the neuron fires on cats.").contains("not JSON"));
        assert!(refused("").contains("not JSON"));
        assert!(refused(r#"{"explanation": "cats"}"#).contains("no list"));
        assert!(refused(r#"{"a": [1], "b": [2]}"#).contains("no list"));
        assert!(refused(r#"{"0": 1, "2": 3}"#).contains("no list"));
        assert!(refused(r#""just a string""#).contains("no list"));
        assert!(refused(r#"{"activations": [1, "high", 3]}"#).contains("activation 1"));
        assert!(refused(r#"{"activations": [1, null]}"#).contains("activation 1"));
        assert!(refused(r#"{"activations": ["NaN"]}"#).contains("activation 0"));
    }

    #[test]
    fn the_prompt_numbers_tokens_and_shows_their_spaces() {
        let tokens = ["The".to_owned(), " cat".to_owned(), "\n".to_owned()];
        let prompt = user_prompt("cats", &tokens);
        assert!(prompt.contains("0 \"The\"\n1 \" cat\"\n2 \"\\n\"\n"), "{prompt}");
        assert!(prompt.contains("exactly 3 numbers, one for each of tokens 0 to 2"), "{prompt}");
    }
}
