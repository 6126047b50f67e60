//! A fake OpenAI-compatible Chat Completions server for tests (feature `testing`): real HTTP/1.1 on
//! an ephemeral port of 127.0.0.1, one thread per connection, scripted replies and a responder for
//! the rest, every request recorded, and the most requests seen in flight at once.
//!
//! It lives in the library behind a feature, not in `tests/`, so that the tests of other crates
//! (the explanation job, the binary) drive the same server: they add
//! `dd-explain = { workspace = true, features = ["testing"] }` to their dev-dependencies. This
//! crate's own tests get the feature from a dev-dependency on itself (see its `Cargo.toml`), so a
//! plain `cargo test -p dd-explain` runs them.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::chat::{ChatMessage, Role};

/// The largest request body read; a test client never sends more.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// What the server answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 200 with a real Chat Completions answer of this text, `finish_reason` "stop", and usage
    /// counted in whitespace-separated words (prompt: all messages' contents; completion: the text).
    Ok(String),
    /// This status with an OpenAI-shaped error body; `Retry-After: {seconds}` when given.
    Status(u16, Option<u64>),
    /// Waits, then answers as `Ok`.
    Slow(Duration, String),
    /// Announces the full `Content-Length` of an answer, sends half of it, and closes.
    Truncated,
    /// Sends the first half of an answer with a `Content-Length` that matches it: valid HTTP whose
    /// JSON is cut off.
    CutShort,
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with an HTML page, as a proxy in front of an endpoint sends.
    Html,
    /// Anything else: this status, content type and body.
    Raw {
        /// The status code.
        status: u16,
        /// The `Content-Type`.
        content_type: String,
        /// The body.
        body: String,
    },
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `POST`, normally.
    pub method: String,
    /// The path, without query.
    pub path: String,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// A header's value (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The request's messages, those with a known role and text content.
    pub fn messages(&self) -> Vec<ChatMessage> {
        let Some(messages) = self.body.get("messages").and_then(serde_json::Value::as_array) else {
            return Vec::new();
        };
        messages
            .iter()
            .filter_map(|message| {
                let role = match message.get("role")?.as_str()? {
                    "system" => Role::System,
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    _ => return None,
                };
                Some(ChatMessage::new(role, message.get("content")?.as_str()?))
            })
            .collect()
    }

    /// The content of the last message, or "" when there is none.
    pub fn last_message(&self) -> String {
        self.messages().pop().map(|message| message.content).unwrap_or_default()
    }
}

/// The answer a responder gives to a request that no scripted reply took.
type Responder = dyn Fn(&RecordedRequest) -> Reply + Send + Sync;

/// A running fake endpoint; stopped when dropped.
pub struct FakeServer {
    address: SocketAddr,
    state: Arc<ServerState>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

struct ServerState {
    script: Mutex<VecDeque<Reply>>,
    responder: Box<Responder>,
    requests: Mutex<Vec<RecordedRequest>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl FakeServer {
    /// Starts a server that answers with the scripted replies first, in order, then with
    /// `responder` (which can answer by content: an explanation to an explainer's prompt, JSON to
    /// a simulator's).
    pub fn start(responder: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static) -> FakeServer {
        // A test cannot run without its server, so failing to bind is the test's failure.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let state = Arc::new(ServerState {
            script: Mutex::new(VecDeque::new()),
            responder: Box::new(responder),
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept_thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = Arc::clone(&state);
                    thread::spawn(move || {
                        // A client that hangs up early (a time-out) is not the server's problem.
                        let _ = handle_connection(stream, &state);
                    });
                }
            })
        };
        FakeServer { address, state, stop, accept_thread: Some(accept_thread) }
    }

    /// The base URL to configure a client with: `http://127.0.0.1:{port}/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// Queues replies for the next requests, before the responder's turn.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.script).extend(replies);
    }

    /// Every request so far, in the order they were read.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// How many requests so far.
    pub fn n_requests(&self) -> usize {
        lock(&self.state.requests).len()
    }

    /// The most requests that were being answered at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(accept_thread) = self.accept_thread.take() {
            let _ = accept_thread.join();
        }
    }
}

/// The body of a Chat Completions answer, for `Reply::Raw` variations (another finish reason,
/// other usage counts).
pub fn completion_json(text: &str, prompt_tokens: u64, completion_tokens: u64, finish_reason: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish_reason,
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    })
    .to_string()
}

/// Whitespace-separated words: the fake server's token count.
pub fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a ServerState);

impl<'a> InFlight<'a> {
    fn enter(state: &'a ServerState) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn handle_connection(stream: TcpStream, state: &ServerState) -> io::Result<()> {
    let request = read_request(&stream)?;
    let _in_flight = InFlight::enter(state);
    lock(&state.requests).push(request.clone());
    let reply = if request.method != "POST" || !request.path.ends_with("/chat/completions") {
        Reply::Raw {
            status: 404,
            content_type: "application/json".to_owned(),
            body: r#"{"error":{"message":"not found","type":"invalid_request_error"}}"#.to_owned(),
        }
    } else {
        let scripted = lock(&state.script).pop_front();
        scripted.unwrap_or_else(|| (state.responder)(&request))
    };
    write_reply(stream, &request, reply)
}

fn read_request(stream: &TcpStream) -> io::Result<RecordedRequest> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let content_length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST_BYTES);
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    Ok(RecordedRequest {
        method: method.to_owned(),
        path: target.split('?').next().unwrap_or_default().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    })
}

/// The status, headers and body of a reply, and how many body bytes to send.
struct Wire {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// `Content-Length`; the body sent stops there or at the body's end, whichever is first.
    content_length: usize,
    send_bytes: usize,
}

fn write_reply(mut stream: TcpStream, request: &RecordedRequest, reply: Reply) -> io::Result<()> {
    let wire = wire_reply(request, reply);
    let mut head = format!("HTTP/1.1 {} {}\r\n", wire.status, reason(wire.status));
    for (name, value) in &wire.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", wire.content_length));
    stream.write_all(head.as_bytes())?;
    stream.write_all(&wire.body[..wire.send_bytes.min(wire.body.len())])?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

fn wire_reply(request: &RecordedRequest, reply: Reply) -> Wire {
    let json = |status: u16, body: String| {
        let len = body.len();
        Wire {
            status,
            headers: vec![("Content-Type", "application/json".to_owned())],
            body: body.into_bytes(),
            content_length: len,
            send_bytes: len,
        }
    };
    let answer = |text: &str| {
        let prompt_tokens = request.messages().iter().map(|message| count_words(&message.content)).sum();
        completion_json(text, prompt_tokens, count_words(text), "stop")
    };
    match reply {
        Reply::Ok(text) => json(200, answer(&text)),
        Reply::Slow(delay, text) => {
            thread::sleep(delay);
            json(200, answer(&text))
        }
        Reply::Status(status, retry_after) => {
            let body = serde_json::json!({
                "error": {"message": format!("fake server: status {status}"), "type": "fake_error", "code": null}
            });
            let mut wire = json(status, body.to_string());
            if let Some(seconds) = retry_after {
                wire.headers.push(("Retry-After", seconds.to_string()));
            }
            wire
        }
        Reply::Truncated => {
            let mut wire = json(200, answer("this answer is cut off by the server"));
            wire.send_bytes = wire.body.len() / 2;
            wire
        }
        Reply::CutShort => {
            let mut wire = json(200, answer("this answer is cut off by the server"));
            wire.content_length = wire.body.len() / 2;
            wire.send_bytes = wire.content_length;
            wire
        }
        Reply::Malformed => json(200, r#"{"choices": [oops], "usage": }"#.to_owned()),
        Reply::Html => {
            let body = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
            let mut wire = json(200, body.to_owned());
            wire.headers = vec![("Content-Type", "text/html".to_owned())];
            wire
        }
        Reply::Raw { status, content_type, body } => {
            let mut wire = json(status, body);
            wire.headers = vec![("Content-Type", content_type)];
            wire
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Other",
    }
}
