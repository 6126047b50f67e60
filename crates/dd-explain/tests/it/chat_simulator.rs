//! The chat simulator against the fake server: a right count, a wrong count corrected, and
//! answers it cannot use.

use std::time::Duration;

use dd_explain::testing::{FakeServer, Reply};
use dd_explain::{ChatClient, EndpointConfig, ExplainError, Role, simulate_with_chat};

fn client(server: &FakeServer) -> ChatClient {
    let mut config = EndpointConfig::new(server.url(), "fake-simulator");
    config.retry_delay = Duration::from_millis(10);
    ChatClient::new(config).expect("a valid configuration")
}

fn tokens() -> Vec<String> {
    ["The", " cat", " sat"].map(str::to_owned).to_vec()
}

/// A responder that answers by content, as the job's tests will: JSON to a simulator's prompt,
/// an explanation to anything else.
#[test]
fn predictions_come_back_one_per_token() {
    let server = FakeServer::start(|request| {
        let asks_for_activations = request.messages().iter().any(|message| message.content.contains("\"activations\""));
        if asks_for_activations {
            Reply::Ok("```json\n{\"activations\": [0, \"7\", 12]}\n```".to_owned())
        } else {
            Reply::Ok("the word cat".to_owned())
        }
    });
    let client = client(&server);
    let predictions = simulate_with_chat(&client, "the word cat", &tokens()).expect("predictions");
    assert_eq!(predictions, [0.0, 7.0, 10.0]);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.body["response_format"]["type"], "json_object");
    assert_eq!(sent.body["temperature"], 0.0);
    let messages = sent.messages();
    assert_eq!(messages.iter().map(|message| message.role).collect::<Vec<_>>(), [Role::System, Role::User]);
    assert!(messages[1].content.contains("the word cat"), "{}", messages[1].content);
    assert!(messages[1].content.contains("0 \"The\"\n1 \" cat\"\n2 \" sat\"\n"), "{}", messages[1].content);
    assert_eq!(client.usage().requests, 1);
}

/// An answer with the wrong count gets one corrective turn, which the model follows.
#[test]
fn a_wrong_count_is_corrected_once() {
    let server = FakeServer::start(|_| Reply::Ok(r#"{"activations": [1, 2, 3]}"#.to_owned()));
    server.script([Reply::Ok(r#"{"activations": [1, 2]}"#.to_owned())]);
    let client = client(&server);
    assert_eq!(simulate_with_chat(&client, "numbers", &tokens()).expect("predictions"), [1.0, 2.0, 3.0]);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let messages = requests[1].messages();
    let roles = messages.iter().map(|message| message.role).collect::<Vec<_>>();
    assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::User]);
    assert_eq!(messages[2].content, r#"{"activations": [1, 2]}"#);
    assert!(messages[3].content.contains("2 numbers for 3 tokens"), "{}", messages[3].content);
    assert!(messages[3].content.contains("exactly 3 numbers"), "{}", messages[3].content);
}

/// A wrong count twice is an error that says the counts.
#[test]
fn a_wrong_count_twice_is_an_error() {
    let server = FakeServer::start(|_| Reply::Ok(r#"{"activations": [1, 2, 3, 4]}"#.to_owned()));
    let client = client(&server);
    match simulate_with_chat(&client, "numbers", &tokens()) {
        Err(ExplainError::Endpoint(message)) => assert!(message.contains("4 numbers for 3 tokens"), "{message}"),
        other => panic!("expected an endpoint error, got {other:?}"),
    }
    assert_eq!(server.n_requests(), 2);
}

/// Prose instead of JSON, twice, is an error quoting the answer.
#[test]
fn garbage_answers_are_an_error() {
    let server = FakeServer::start(|_| Reply::Ok("I think this neuron likes cats.".to_owned()));
    let client = client(&server);
    match simulate_with_chat(&client, "cats", &tokens()) {
        Err(ExplainError::Endpoint(message)) => {
            assert!(message.contains("not JSON"), "{message}");
            assert!(message.contains("I think this neuron likes cats."), "{message}");
        }
        other => panic!("expected an endpoint error, got {other:?}"),
    }
    assert_eq!(server.n_requests(), 2);
}

/// No tokens, no request.
#[test]
fn no_tokens_no_request() {
    let server = FakeServer::start(|_| Reply::Ok("{}".to_owned()));
    let client = client(&server);
    assert_eq!(simulate_with_chat(&client, "anything", &[]).expect("nothing to predict"), Vec::<f32>::new());
    assert_eq!(server.n_requests(), 0);
}
