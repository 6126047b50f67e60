//! An OpenAI-compatible Chat Completions client (OpenAI, vLLM, llama.cpp's server, OpenRouter...):
//! blocking, shared by worker threads, with a bound on requests in flight, a client-side rate
//! limit, retries with backoff, and token and cost accounting.
//!
//! The API key is read once from the environment variable the configuration names and lives only
//! in the client: it is sent in the `Authorization` header and nowhere else. `Debug` prints no key,
//! and server messages quoted in errors have the key cut out, since some servers echo what they
//! were sent.

mod wire;

use std::sync::Mutex;
use std::time::Duration;
use std::{env, fmt, thread};

use dd_http::{Backoff, Pacer, Slots, display_url, is_retryable_status, is_transient, lock, retry_after};
use ureq::Agent;
use ureq::http::Response;

use crate::chat::ChatMessage;
use crate::error::ExplainError;
use crate::explainer::{Explainer, ExplainerAnswer};

/// The most bytes read from a successful answer: far above any completion we ask for, and small
/// enough that a hostile or broken endpoint cannot exhaust memory.
const MAX_ANSWER_BYTES: u64 = 4 * 1024 * 1024;

/// The most bytes read from an error answer: only its message is kept.
const MAX_ERROR_BYTES: u64 = 64 * 1024;

/// Sent with every request so that endpoint operators can tell our traffic apart.
const USER_AGENT: &str = concat!("deepdecipher/", env!("CARGO_PKG_VERSION"), " (dd-explain)");

/// How to reach an OpenAI-compatible Chat Completions endpoint, and how hard to use it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    /// Base URL (`http://127.0.0.1:8000/v1`); `/chat/completions` is appended unless already there.
    pub url: String,
    /// The `model` field sent.
    pub model: String,
    /// Name of the environment variable holding the API key (sent as a bearer token); `None`: no
    /// authentication.
    pub api_key_env: Option<String>,
    /// Requests in flight at once, across all threads sharing the client.
    pub max_concurrency: usize,
    /// Client-side rate limit, shared across threads: requests are spaced `60 s / n` apart.
    pub requests_per_minute: Option<u32>,
    /// Time limit of one request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// Retries after the first attempt, on 408, 429, 5xx, time-outs, connection errors and
    /// unusable answers.
    pub max_retries: u32,
    /// The wait before the first retry, doubled for each further one (with jitter, capped at a
    /// minute); a server's `Retry-After` takes its place when present.
    pub retry_delay: Duration,
    /// Prices for cost accounting; `None`: cost unknown.
    pub prices: Option<TokenPrices>,
}

impl EndpointConfig {
    /// A configuration for `model` at `url` with defaults: 4 in flight, no rate limit, 60 s per
    /// request, 4 retries starting at 1 s, no key, no prices.
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            model: model.into(),
            api_key_env: None,
            max_concurrency: 4,
            requests_per_minute: None,
            timeout: Duration::from_secs(60),
            max_retries: 4,
            retry_delay: Duration::from_secs(1),
            prices: None,
        }
    }
}

/// Prices in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenPrices {
    /// Per million prompt (input) tokens.
    pub prompt_per_million: f64,
    /// Per million completion (output) tokens.
    pub completion_per_million: f64,
}

/// One Chat Completions request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// The most tokens the answer may have (`max_tokens`).
    pub max_tokens: u32,
    /// Sampling temperature; 0 for the most deterministic answers an endpoint gives.
    pub temperature: f32,
    /// A sampling seed, for endpoints that honour one.
    pub seed: Option<u64>,
    /// Asks for a JSON object (`response_format: {"type": "json_object"}`).
    pub json_object: bool,
}

impl ChatRequest {
    /// A request for `messages` at temperature 0, at most 512 tokens, no seed, plain text.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self { messages, max_tokens: 512, temperature: 0.0, seed: None, json_object: false }
    }
}

/// The endpoint's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatAnswer {
    /// The first choice's message content.
    pub text: String,
    /// Prompt tokens as the endpoint counted them (0 when it does not say).
    pub prompt_tokens: u64,
    /// Completion tokens as the endpoint counted them (0 when it does not say).
    pub completion_tokens: u64,
    /// Why generation stopped (`stop`, `length`...), when the endpoint says.
    pub finish_reason: Option<String>,
}

/// What a client has used so far, over all threads.
#[derive(Clone, Debug, Default)]
pub struct UsageTotals {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests that were retries of an earlier one.
    pub retries: u64,
    /// Calls to `complete` that ended in an error.
    pub failures: u64,
    /// Prompt tokens of successful answers.
    pub prompt_tokens: u64,
    /// Completion tokens of successful answers.
    pub completion_tokens: u64,
    /// Cost in US dollars of those tokens, when prices are configured.
    pub cost_usd: Option<f64>,
}

/// A blocking Chat Completions client; `Send + Sync`, to be shared by worker threads.
pub struct ChatClient {
    config: EndpointConfig,
    /// The full Chat Completions URL.
    completions_url: String,
    /// The URL without credentials or query, for messages.
    display_url: String,
    api_key: Option<ApiKey>,
    agent: Agent,
    slots: Slots,
    pacer: Option<Pacer>,
    usage: Mutex<UsageTotals>,
    backoff: Backoff,
}

/// The key, kept out of every `Debug` and `Display`.
struct ApiKey(String);

/// Why one attempt failed.
struct Failure {
    /// What went wrong, fit for an error message (key already cut out).
    message: String,
    /// Whether another attempt may succeed.
    retryable: bool,
    /// How long the server asked us to wait.
    retry_after: Option<Duration>,
}

impl ChatClient {
    /// A client for `config`, reading the key from its environment variable now.
    pub fn new(config: EndpointConfig) -> Result<Self, ExplainError> {
        let url = config.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ExplainError::Invalid(format!(
                "the endpoint URL {:?} must start with http:// or https://",
                display_url(url)
            )));
        }
        if config.model.trim().is_empty() {
            return Err(ExplainError::Invalid("the endpoint's model name is empty".to_owned()));
        }
        if config.max_concurrency == 0 {
            return Err(ExplainError::Invalid("the endpoint's max_concurrency must be at least 1".to_owned()));
        }
        if config.requests_per_minute == Some(0) {
            return Err(ExplainError::Invalid("the endpoint's requests_per_minute must be at least 1".to_owned()));
        }
        let api_key = match &config.api_key_env {
            Some(variable) => Some(read_api_key(variable)?),
            None => None,
        };
        let trimmed = url.trim_end_matches('/');
        let completions_url = if trimmed.ends_with("/chat/completions") {
            trimmed.to_owned()
        } else {
            format!("{trimmed}/chat/completions")
        };
        let agent = Agent::config_builder()
            // Error answers carry the server's message, which the error should quote.
            .http_status_as_error(false)
            // A POST is never redirected with its body, and the key must not follow a redirect.
            .max_redirects(0)
            .user_agent(USER_AGENT)
            .timeout_global(Some(config.timeout))
            .build()
            .new_agent();
        let pacer = config.requests_per_minute.map(Pacer::per_minute);
        Ok(Self {
            display_url: display_url(trimmed),
            completions_url,
            api_key,
            agent,
            slots: Slots::new(config.max_concurrency),
            pacer,
            usage: Mutex::new(UsageTotals { cost_usd: config.prices.map(|_| 0.0), ..UsageTotals::default() }),
            backoff: Backoff::new(config.retry_delay),
            config,
        })
    }

    /// Sends `request`, retrying transient failures; `ExplainError::Endpoint` once retries are
    /// spent or at once for a refusal (a 4xx other than 408 and 429).
    pub fn complete(&self, request: &ChatRequest) -> Result<ChatAnswer, ExplainError> {
        let body = wire::request_body(&self.config.model, request);
        let mut attempt = 0;
        loop {
            let failure = match self.attempt(&body) {
                Ok(answer) => {
                    self.count_answer(&answer);
                    return Ok(answer);
                }
                Err(failure) => failure,
            };
            if !failure.retryable || attempt >= self.config.max_retries {
                lock(&self.usage).failures += 1;
                let attempts = attempt + 1;
                let plural = if attempts == 1 { "" } else { "s" };
                return Err(ExplainError::Endpoint(format!(
                    "{} gave no usable answer after {attempts} attempt{plural}: {}",
                    self.describe(),
                    failure.message
                )));
            }
            let delay = self.backoff.delay(attempt, failure.retry_after);
            // The reason is the failure's own message: status, transport error or shape problem,
            // never the prompt or the key.
            tracing::debug!(
                endpoint = %self.describe(),
                retry = attempt + 1,
                delay_ms = delay.as_millis() as u64,
                reason = %failure.message,
                "retrying chat request"
            );
            lock(&self.usage).retries += 1;
            thread::sleep(delay);
            attempt += 1;
        }
    }

    /// Totals so far.
    pub fn usage(&self) -> UsageTotals {
        lock(&self.usage).clone()
    }

    /// `{model} at {url}`, without credentials or query: the explainer's name in the store.
    pub fn describe(&self) -> String {
        format!("{} at {}", self.config.model, self.display_url)
    }

    /// The model name requests carry.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// One HTTP request: waits for a slot and the rate limit, sends, reads and parses.
    fn attempt(&self, body: &[u8]) -> Result<ChatAnswer, Failure> {
        // The slot comes first: a rate-limit turn taken while still waiting for a slot would be
        // wasted, and the request would go later than its turn.
        let _slot = self.slots.acquire();
        if let Some(pacer) = &self.pacer {
            pacer.wait_turn();
        }
        lock(&self.usage).requests += 1;
        let mut request = self.agent.post(&self.completions_url).header("content-type", "application/json");
        if let Some(ApiKey(key)) = &self.api_key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let response = request.send(body).map_err(|error| self.transport_failure(&error))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return self.read_answer(response);
        }
        let retry_after = retry_after(&response);
        // An error body that cannot be read still leaves the status to report.
        let text = response.into_body().with_config().limit(MAX_ERROR_BYTES).lossy_utf8(true).read_to_string().ok();
        // The key is cut out before clipping, which could otherwise leave part of it.
        let server_message = text.map(|text| wire::server_message(&self.redact(&text))).unwrap_or_default();
        let message = if server_message.is_empty() {
            format!("status {status}")
        } else {
            format!("status {status}: {server_message}")
        };
        let retryable = is_retryable_status(status);
        Err(Failure { message, retryable, retry_after })
    }

    /// Reads and parses a successful answer; a body that is not a completion is retryable.
    fn read_answer(&self, response: Response<ureq::Body>) -> Result<ChatAnswer, Failure> {
        let bytes = response
            .into_body()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|error| self.transport_failure(&error))?;
        wire::parse_answer(&bytes).map_err(|problem| Failure {
            message: format!("status 200 but {}", self.redact(&problem)),
            retryable: true,
            retry_after: None,
        })
    }

    /// A transport error: retryable unless it is about our settings or an oversized answer.
    fn transport_failure(&self, error: &ureq::Error) -> Failure {
        let retryable = is_transient(error);
        let message = match error {
            ureq::Error::BodyExceedsLimit(limit) => format!("the answer is larger than {limit} bytes"),
            ureq::Error::Timeout(_) => format!("no complete answer within {:?}", self.config.timeout),
            ureq::Error::Io(source) => {
                format!("the connection failed or broke off: {}", self.redact(&source.to_string()))
            }
            other => self.redact(&other.to_string()),
        };
        Failure { message, retryable, retry_after: None }
    }

    /// Adds a successful answer's tokens and cost to the totals.
    fn count_answer(&self, answer: &ChatAnswer) {
        let mut usage = lock(&self.usage);
        usage.prompt_tokens += answer.prompt_tokens;
        usage.completion_tokens += answer.completion_tokens;
        if let (Some(prices), Some(cost)) = (self.config.prices, usage.cost_usd.as_mut()) {
            *cost += (answer.prompt_tokens as f64 * prices.prompt_per_million
                + answer.completion_tokens as f64 * prices.completion_per_million)
                / 1e6;
        }
    }

    /// `text` with the key cut out.
    fn redact(&self, text: &str) -> String {
        match &self.api_key {
            Some(ApiKey(key)) => text.replace(key.as_str(), "[key]"),
            None => text.to_owned(),
        }
    }
}

impl fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatClient")
            .field("config", &self.config)
            .field("completions_url", &self.display_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[set]"))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[key]")
    }
}

/// The key from `variable`; errors name the variable, never a value.
fn read_api_key(variable: &str) -> Result<ApiKey, ExplainError> {
    let key = match env::var(variable) {
        Ok(key) => key,
        Err(env::VarError::NotPresent) => {
            return Err(ExplainError::Invalid(format!(
                "the environment variable {variable}, named for the endpoint's API key, is not set"
            )));
        }
        Err(env::VarError::NotUnicode(_)) => {
            return Err(ExplainError::Invalid(format!(
                "the environment variable {variable}, named for the endpoint's API key, is not valid Unicode"
            )));
        }
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(ExplainError::Invalid(format!(
            "the environment variable {variable}, named for the endpoint's API key, is empty"
        )));
    }
    // A control character would make the header invalid, and the HTTP library's error for that
    // must not be the first place the problem shows.
    if key.chars().any(char::is_control) {
        return Err(ExplainError::Invalid(format!(
            "the environment variable {variable}, named for the endpoint's API key, holds control characters"
        )));
    }
    Ok(ApiKey(key.to_owned()))
}

/// Explanations are short: 60 tokens leave room for a phrase and a model's preamble.
const EXPLANATION_MAX_TOKENS: u32 = 60;

impl Explainer for ChatClient {
    fn name(&self) -> String {
        self.model().to_owned()
    }

    fn explain(&self, messages: &[ChatMessage]) -> Result<ExplainerAnswer, ExplainError> {
        let request = ChatRequest { max_tokens: EXPLANATION_MAX_TOKENS, ..ChatRequest::new(messages.to_vec()) };
        let answer = self.complete(&request)?;
        Ok(ExplainerAnswer {
            text: answer.text,
            prompt_tokens: answer.prompt_tokens,
            completion_tokens: answer.completion_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_url_is_appended_once() {
        let client = |url: &str| ChatClient::new(EndpointConfig::new(url, "m")).map(|client| client.completions_url);
        assert_eq!(client("http://h/v1").ok().as_deref(), Some("http://h/v1/chat/completions"));
        assert_eq!(client("http://h/v1/").ok().as_deref(), Some("http://h/v1/chat/completions"));
        assert_eq!(client("http://h/v1/chat/completions").ok().as_deref(), Some("http://h/v1/chat/completions"));
        assert!(client("ftp://h/v1").is_err());
    }
}
