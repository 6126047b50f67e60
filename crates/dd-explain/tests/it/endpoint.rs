//! The endpoint client against the fake server: answers and accounting, retries and what is not
//! retried, the key's path, and the bounds on concurrency and rate.

use std::env;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use dd_explain::testing::{FakeServer, Reply};
use dd_explain::{ChatClient, ChatMessage, ChatRequest, EndpointConfig, ExplainError, Role, TokenPrices};

/// A configuration for `server` whose backoff is short, so that only a `Retry-After` can make a
/// test wait long.
fn config(server: &FakeServer) -> EndpointConfig {
    let mut config = EndpointConfig::new(server.url(), "fake-model");
    config.retry_delay = Duration::from_millis(10);
    config.timeout = Duration::from_secs(10);
    config
}

fn client(config: EndpointConfig) -> ChatClient {
    ChatClient::new(config).expect("a valid configuration")
}

/// Three words of system prompt and two of user prompt: five prompt tokens on the fake server.
fn request() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::new(Role::System, "you explain neurons"),
        ChatMessage::new(Role::User, "hello there"),
    ])
}

/// The message of an endpoint error.
fn endpoint_error(result: Result<dd_explain::ChatAnswer, ExplainError>) -> String {
    match result {
        Err(ExplainError::Endpoint(message)) => message,
        other => panic!("expected an endpoint error, got {other:?}"),
    }
}

/// A successful answer: its text, finish reason and token counts, the request's fields, and the
/// usage and cost totals.
#[test]
fn answers_are_read_and_usage_and_cost_counted() {
    let server = FakeServer::start(|_| Reply::Ok("cats and dogs".to_owned()));
    let mut config = config(&server);
    config.prices = Some(TokenPrices { prompt_per_million: 2.0, completion_per_million: 8.0 });
    let client = client(config);
    let mut request = request();
    request.max_tokens = 77;
    request.temperature = 0.5;
    request.seed = Some(42);
    request.json_object = true;

    let answer = client.complete(&request).expect("an answer");
    assert_eq!(answer.text, "cats and dogs");
    assert_eq!((answer.prompt_tokens, answer.completion_tokens), (5, 3));
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
    client.complete(&request).expect("a second answer");

    let usage = client.usage();
    assert_eq!((usage.requests, usage.retries, usage.failures), (2, 0, 0));
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (10, 6));
    let cost = usage.cost_usd.expect("prices give a cost");
    assert!((cost - (10.0 * 2.0 + 6.0 * 8.0) / 1e6).abs() < 1e-12, "{cost}");

    let sent = &server.requests()[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["model"], "fake-model");
    assert_eq!(sent.body["max_tokens"], 77);
    assert_eq!(sent.body["temperature"], 0.5);
    assert_eq!(sent.body["seed"], 42);
    assert_eq!(sent.body["response_format"]["type"], "json_object");
    assert_eq!(sent.messages(), request.messages);
    assert_eq!(client.describe(), format!("fake-model at {}", server.url()));
}

/// Without prices there is no cost; a URL that already ends in `/chat/completions` is used as is.
#[test]
fn no_prices_no_cost_and_full_urls_are_kept() {
    let server = FakeServer::start(|_| Reply::Ok("fine".to_owned()));
    let mut config = config(&server);
    config.url = format!("{}/chat/completions", server.url());
    let client = client(config);
    client.complete(&request()).expect("an answer");
    assert_eq!(client.usage().cost_usd, None);
    assert_eq!(server.requests()[0].path, "/v1/chat/completions");
}

/// A 429 is retried after the `Retry-After` the server asks for, not the (short) backoff.
#[test]
fn rate_limit_answers_are_retried_after_retry_after() {
    let server = FakeServer::start(|_| Reply::Ok("finally".to_owned()));
    server.script([Reply::Status(429, Some(1))]);
    let client = client(config(&server));
    let start = Instant::now();
    let answer = client.complete(&request()).expect("an answer after the retry");
    assert!(start.elapsed() >= Duration::from_millis(950), "waited only {:?}", start.elapsed());
    assert_eq!(answer.text, "finally");
    let usage = client.usage();
    assert_eq!((usage.requests, usage.retries, usage.failures), (2, 1, 0));
    assert_eq!(server.n_requests(), 2);
}

/// Server errors are retried with backoff until one succeeds.
#[test]
fn server_errors_are_retried() {
    let server = FakeServer::start(|_| Reply::Ok("recovered".to_owned()));
    server.script([Reply::Status(500, None), Reply::Status(503, None)]);
    let client = client(config(&server));
    assert_eq!(client.complete(&request()).expect("an answer").text, "recovered");
    let usage = client.usage();
    assert_eq!((usage.requests, usage.retries, usage.prompt_tokens), (3, 2, 5));
}

/// An answer slower than the time-out is given up on and asked again.
#[test]
fn slow_answers_time_out_and_are_retried() {
    let server = FakeServer::start(|_| Reply::Ok("on time".to_owned()));
    server.script([Reply::Slow(Duration::from_secs(3), "too late".to_owned())]);
    let mut config = config(&server);
    config.timeout = Duration::from_millis(300);
    let client = client(config);
    let start = Instant::now();
    assert_eq!(client.complete(&request()).expect("an answer").text, "on time");
    assert!(start.elapsed() < Duration::from_secs(3), "the time-out did not cut the slow answer");
    assert_eq!(client.usage().retries, 1);
}

/// Bodies that are not a completion (cut off, not JSON, HTML, no choices, null content) are
/// retried, and once retries are spent the error says how many attempts and why.
#[test]
fn unusable_bodies_are_retried_then_reported() {
    let null_content =
        r#"{"choices":[{"index":0,"message":{"role":"assistant","content":null},"finish_reason":"stop"}]}"#;
    let cases = [
        (Reply::Truncated, "broke off"),
        (Reply::CutShort, "cut off"),
        (Reply::Malformed, "not a Chat Completions answer"),
        (Reply::Html, "HTML"),
        (
            Reply::Raw { status: 200, content_type: "application/json".into(), body: r#"{"object":"x"}"#.into() },
            "no choices",
        ),
        (Reply::Raw { status: 200, content_type: "application/json".into(), body: null_content.into() }, "null"),
    ];
    for (reply, reason) in cases {
        let server = FakeServer::start(move |_| reply.clone());
        let mut config = config(&server);
        config.max_retries = 2;
        let client = client(config);
        let message = endpoint_error(client.complete(&request()));
        assert!(message.contains("after 3 attempts"), "{message}");
        assert!(message.contains(reason), "{message} should say {reason:?}");
        assert_eq!(server.n_requests(), 3, "{message}");
        let usage = client.usage();
        assert_eq!((usage.requests, usage.retries, usage.failures, usage.prompt_tokens), (3, 2, 1, 0));
    }
}

/// A client error other than 408 and 429 is not retried, and the error quotes the server.
#[test]
fn client_errors_are_not_retried() {
    let server = FakeServer::start(|_| Reply::Raw {
        status: 400,
        content_type: "application/json".to_owned(),
        body: r#"{"error":{"message":"The model `fake-model` does not exist","type":"invalid_request_error"}}"#
            .to_owned(),
    });
    let client = client(config(&server));
    let message = endpoint_error(client.complete(&request()));
    assert!(message.contains("status 400: The model `fake-model` does not exist"), "{message}");
    assert!(message.contains("after 1 attempt:"), "{message}");
    assert_eq!(server.n_requests(), 1);
    assert_eq!(client.usage().failures, 1);
}

/// A key named by the configuration but absent from the environment is an error that names the
/// variable.
#[test]
fn a_missing_key_variable_is_named() {
    let mut config = EndpointConfig::new("http://127.0.0.1:9/v1", "m");
    config.api_key_env = Some("DD_EXPLAIN_TEST_KEY_THAT_IS_NOT_SET".to_owned());
    match ChatClient::new(config) {
        Err(ExplainError::Invalid(message)) => {
            assert!(message.contains("DD_EXPLAIN_TEST_KEY_THAT_IS_NOT_SET"), "{message}");
            assert!(message.contains("not set"), "{message}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

const KEY_VARIABLE: &str = "DD_EXPLAIN_TEST_KEY_FOR_HEADER";
const KEY: &str = "sk-test-0123456789abcdef-secret";

/// The key is read from the named variable and sent as a bearer token, and appears in no error
/// (even when the server echoes it) and in no `Debug` output.
///
/// Setting a variable in this process would need `unsafe` (other test threads read the
/// environment), so the test runs itself again in a child process that has the variable.
#[test]
fn the_key_goes_in_the_header_and_nowhere_else() {
    if env::var_os(KEY_VARIABLE).is_none() {
        let test_name = format!("{}::the_key_goes_in_the_header_and_nowhere_else", module_path!())
            .split_once("::")
            .map(|(_, name)| name.to_owned())
            .expect("a module path");
        let output = Command::new(env::current_exe().expect("the test binary"))
            .args(["--exact", &test_name, "--test-threads=1", "--nocapture"])
            .env(KEY_VARIABLE, KEY)
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains("1 passed"), "the child ran no test: {stdout}");
        return;
    }
    // A server that answers once, then refuses the key and quotes it, as some servers do.
    let server = FakeServer::start(|request| {
        Reply::Raw {
        status: 401,
        content_type: "application/json".to_owned(),
        body: serde_json::json!({
            "error": {"message": format!("Incorrect API key provided: {}", request.header("authorization").unwrap_or_default())}
        })
        .to_string(),
    }
    });
    server.script([Reply::Ok("welcome".to_owned())]);
    let mut config = config(&server);
    config.api_key_env = Some(KEY_VARIABLE.to_owned());
    let client = client(config.clone());

    assert_eq!(client.complete(&request()).expect("an answer").text, "welcome");
    assert_eq!(server.requests()[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let message = endpoint_error(client.complete(&request()));
    assert!(message.contains("status 401: Incorrect API key provided: Bearer [key]"), "{message}");
    assert_eq!(server.n_requests(), 2, "a 401 is not retried");
    for shown in [message, format!("{client:?}"), format!("{config:?}"), client.describe()] {
        assert!(!shown.contains(KEY) && !shown.contains("secret"), "the key shows in {shown}");
    }
}

/// However many threads share the client, no more requests than `max_concurrency` are in flight.
#[test]
fn concurrency_is_bounded_across_threads() {
    let server = FakeServer::start(|_| Reply::Slow(Duration::from_millis(150), "ok".to_owned()));
    let mut config = config(&server);
    config.max_concurrency = 3;
    let client = client(config);
    thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| client.complete(&request()).expect("an answer"));
        }
    });
    assert_eq!(server.n_requests(), 8);
    assert!(server.max_in_flight() <= 3, "{} in flight", server.max_in_flight());
    // Eight threads waiting 150 ms each: the slots were used in parallel, not one at a time.
    assert!(server.max_in_flight() >= 2, "{} in flight", server.max_in_flight());
}

/// The rate limit spaces requests from all threads: 8 requests at 600 a minute take at least
/// 7 × 100 ms.
#[test]
fn the_rate_limit_spaces_requests() {
    let server = FakeServer::start(|_| Reply::Ok("ok".to_owned()));
    let mut config = config(&server);
    config.requests_per_minute = Some(600);
    let client = client(config);
    let start = Instant::now();
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..2 {
                    client.complete(&request()).expect("an answer");
                }
            });
        }
    });
    assert!(start.elapsed() >= Duration::from_millis(650), "8 requests in {:?}", start.elapsed());
    assert_eq!(client.usage().requests, 8);
}
