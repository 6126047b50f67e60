//! The Chat Completions wire format: the request body we send, the answer shape we accept, and
//! the message we quote from an error body. The serde structs stay private to this file.

use serde::{Deserialize, Serialize};

use super::{ChatAnswer, ChatRequest};

/// The most characters of a server's message quoted in an error.
const MAX_QUOTED_CHARS: usize = 300;

#[derive(Serialize)]
struct RequestBody<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    max_tokens: u32,
    temperature: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The fields of an answer we read; everything else is ignored, so that servers' extensions
/// (`system_fingerprint`, `reasoning_content`, logprobs) do not matter.
#[derive(Deserialize)]
struct Completion {
    choices: Option<Vec<Choice>>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<AnswerMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct AnswerMessage {
    content: Option<String>,
    /// OpenAI's models put a refusal here and leave `content` null.
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

/// The JSON body for `request` to `model`.
pub(super) fn request_body(model: &str, request: &ChatRequest) -> Vec<u8> {
    let body = RequestBody {
        model,
        messages: request
            .messages
            .iter()
            .map(|message| WireMessage { role: message.role.as_str(), content: &message.content })
            .collect(),
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        seed: request.seed,
        response_format: request.json_object.then_some(ResponseFormat { kind: "json_object" }),
    };
    // Serializing strings and numbers into memory cannot fail (a non-finite temperature becomes
    // `null`, which the endpoint refuses with a 400 that names it).
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The answer in `body`, or what is wrong with it (never quoting the body: it may hold the
/// prompt).
pub(super) fn parse_answer(body: &[u8]) -> Result<ChatAnswer, String> {
    let completion: Completion = serde_json::from_slice(body).map_err(|error| {
        let start = body.iter().position(|byte| !byte.is_ascii_whitespace()).map(|idx| body[idx]);
        match (start, error.classify()) {
            (None, _) => "the body is empty".to_owned(),
            (Some(b'<'), _) => "the body is HTML, not JSON".to_owned(),
            (_, serde_json::error::Category::Eof) => format!("the body is cut off ({} bytes)", body.len()),
            _ => format!("the body is not a Chat Completions answer ({error})"),
        }
    })?;
    let Some(choice) = completion.choices.and_then(|choices| choices.into_iter().next()) else {
        return Err("the answer has no choices".to_owned());
    };
    let finish_reason = choice.finish_reason;
    let Some(message) = choice.message else {
        return Err("the answer's first choice has no message".to_owned());
    };
    let Some(text) = message.content else {
        return Err(match message.refusal {
            Some(refusal) => format!("the model refused: {}", clip(&refusal)),
            None => format!("the answer's content is null (finish reason {finish_reason:?})"),
        });
    };
    let usage = completion.usage.unwrap_or(Usage { prompt_tokens: None, completion_tokens: None });
    Ok(ChatAnswer {
        text,
        prompt_tokens: usage.prompt_tokens.unwrap_or(0),
        completion_tokens: usage.completion_tokens.unwrap_or(0),
        finish_reason,
    })
}

/// The message an error body carries, clipped: OpenAI's `error.message`, a bare `error` string,
/// vLLM's `message`, FastAPI's `detail`; otherwise the start of the text with its whitespace
/// collapsed. Empty when the body says nothing.
pub(super) fn server_message(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        let found = [
            value.pointer("/error/message"),
            value.get("error").filter(|error| error.is_string()),
            value.get("message"),
            value.get("detail"),
        ]
        .into_iter()
        .flatten()
        .next();
        if let Some(found) = found {
            return clip(&found.as_str().map_or_else(|| found.to_string(), str::to_owned));
        }
    }
    clip(body)
}

/// `text` with whitespace runs collapsed to one space, cut to `MAX_QUOTED_CHARS` characters.
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
    use crate::chat::{ChatMessage, Role};

    #[test]
    fn request_body_has_the_chat_completions_fields() {
        let mut request = ChatRequest::new(vec![ChatMessage::new(Role::User, "hi")]);
        request.seed = Some(7);
        request.json_object = true;
        let body: serde_json::Value = serde_json::from_slice(&request_body("m", &request)).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 512,
                "temperature": 0.0,
                "seed": 7,
                "response_format": {"type": "json_object"},
            })
        );
        request.json_object = false;
        request.seed = None;
        let body: serde_json::Value = serde_json::from_slice(&request_body("m", &request)).expect("JSON");
        assert!(body.get("seed").is_none() && body.get("response_format").is_none());
    }

    #[test]
    fn answers_parse_and_bad_shapes_say_why() {
        let good = br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},
            "finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#;
        let answer = parse_answer(good).expect("a good answer");
        assert_eq!((answer.text.as_str(), answer.prompt_tokens, answer.completion_tokens), ("hello", 5, 1));
        assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
        let no_usage = parse_answer(br#"{"choices":[{"message":{"content":"a"}}]}"#).expect("no usage is fine");
        assert_eq!((no_usage.prompt_tokens, no_usage.finish_reason), (0, None));

        let problem = |body: &[u8]| parse_answer(body).expect_err("a bad answer");
        assert!(problem(br#"{"choices":[{"message":{"content":"hel"#).contains("cut off"));
        assert!(problem(b"<html><body>502</body></html>").contains("HTML"));
        assert!(problem(b"").contains("empty"));
        assert!(problem(br#"{"choices":[]}"#).contains("no choices"));
        assert!(problem(br#"{"object":"list"}"#).contains("no choices"));
        assert!(problem(br#"{"choices":[{"message":{"content":null}}]}"#).contains("null"));
        assert!(problem(br#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#).contains("refused"));
        assert!(problem(br#"{"choices":"#).contains("cut off"));
        assert!(problem(b"not json").contains("not a Chat Completions answer"));
    }

    #[test]
    fn server_messages_are_found_and_clipped() {
        assert_eq!(server_message(r#"{"error":{"message":"bad model","type":"invalid"}}"#), "bad model");
        assert_eq!(server_message(r#"{"error":"overloaded"}"#), "overloaded");
        assert_eq!(server_message(r#"{"object":"error","message":"too long"}"#), "too long");
        assert_eq!(server_message("  Bad\n\n gateway "), "Bad gateway");
        assert_eq!(server_message(""), "");
        let long = server_message(&"x".repeat(1000));
        assert_eq!(long.chars().count(), MAX_QUOTED_CHARS + 1);
    }
}
