//! A small hub on 127.0.0.1 for the tests: it serves fixture files at the hub's URL layout with the
//! hub's headers, redirects LFS files to a content server (itself or another instance), supports
//! `Range`, records every request, and misbehaves on demand.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The repositories every server instance of one test shares.
#[derive(Default)]
pub(crate) struct Fixtures {
    repos: Mutex<HashMap<String, RepoFixture>>,
}

/// One repository: its current commit, its files, and the token it requires if gated.
#[derive(Clone)]
pub(crate) struct RepoFixture {
    pub(crate) commit: String,
    pub(crate) files: BTreeMap<String, FileFixture>,
    pub(crate) gated_token: Option<String>,
}

/// One file's content and whether the hub stores it with LFS (served through a redirect).
#[derive(Clone)]
pub(crate) struct FileFixture {
    pub(crate) content: Vec<u8>,
    pub(crate) lfs: bool,
}

/// Ways to misbehave, set by a test before a request.
#[derive(Default)]
pub(crate) struct Behaviour {
    /// The next content answer announces the full length but sends half and closes.
    pub(crate) truncate_next_body: bool,
    /// Answer `Range` requests with the whole file and 200.
    pub(crate) ignore_range: bool,
    /// Flip one byte of the content served (headers unchanged).
    pub(crate) corrupt_content: bool,
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct RecordedRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
}

/// A running server; stopped when dropped.
pub(crate) struct TestServer {
    address: SocketAddr,
    state: Arc<ServerState>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

struct ServerState {
    fixtures: Arc<Fixtures>,
    /// Base URL LFS files redirect to; `None` means this server.
    content_base: Mutex<Option<String>>,
    own_base: String,
    requests: Mutex<Vec<RecordedRequest>>,
    behaviour: Mutex<Behaviour>,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then close.
    truncate_at: Option<usize>,
}

impl Fixtures {
    /// Adds or replaces a repository.
    pub(crate) fn set_repo(&self, repo_id: &str, repo: RepoFixture) {
        lock(&self.repos).insert(repo_id.to_owned(), repo);
    }

    /// Changes a repository in place.
    pub(crate) fn update_repo(&self, repo_id: &str, change: impl FnOnce(&mut RepoFixture)) {
        if let Some(repo) = lock(&self.repos).get_mut(repo_id) {
            change(repo);
        }
    }

    fn repo(&self, repo_id: &str) -> Option<RepoFixture> {
        lock(&self.repos).get(repo_id).cloned()
    }

    fn content_by_sha256(&self, sha256: &str) -> Option<Vec<u8>> {
        lock(&self.repos)
            .values()
            .flat_map(|repo| repo.files.values())
            .find(|file| sha256_hex(&file.content) == sha256)
            .map(|file| file.content.clone())
    }
}

impl RecordedRequest {
    /// A header's value (names compare case-insensitively).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

impl TestServer {
    /// Starts a server on an ephemeral port of 127.0.0.1 that redirects LFS files to itself.
    pub(crate) fn start(fixtures: Arc<Fixtures>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let state = Arc::new(ServerState {
            fixtures,
            content_base: Mutex::new(None),
            own_base: format!("http://{address}"),
            requests: Mutex::new(Vec::new()),
            behaviour: Mutex::new(Behaviour::default()),
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
                        // A client that hangs up early is not the server's problem.
                        let _ = handle_connection(stream, &state);
                    });
                }
            })
        };
        TestServer { address, state, stop, accept_thread: Some(accept_thread) }
    }

    /// `http://127.0.0.1:{port}`.
    pub(crate) fn url(&self) -> String {
        self.state.own_base.clone()
    }

    /// Makes LFS redirects point at `content_server` instead of this server.
    pub(crate) fn redirect_lfs_to(&self, content_server: &TestServer) {
        *lock(&self.state.content_base) = Some(content_server.url());
    }

    /// Every request so far, in order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// How many requests so far.
    pub(crate) fn n_requests(&self) -> usize {
        lock(&self.state.requests).len()
    }

    /// Changes how the server behaves from the next request on.
    pub(crate) fn set_behaviour(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut lock(&self.state.behaviour));
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(accept_thread) = self.accept_thread.take() {
            let _ = accept_thread.join();
        }
    }
}

/// SHA-256 of `content` in lowercase hex: the LFS ETag.
pub(crate) fn sha256_hex(content: &[u8]) -> String {
    hex(&Sha256::digest(content))
}

/// The git blob id of `content`: the ETag of files stored in git.
pub(crate) fn git_sha1_hex(content: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {}\0", content.len()).as_bytes());
    hasher.update(content);
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn handle_connection(stream: TcpStream, state: &ServerState) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(());
    };
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
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let request = RecordedRequest { method: method.to_owned(), path, headers };
    lock(&state.requests).push(request.clone());

    let response = route(state, &request);
    write_response(stream, &request, response)
}

fn write_response(mut stream: TcpStream, request: &RecordedRequest, response: Response) -> io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Other",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", response.status);
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", response.body.len()));
    stream.write_all(head.as_bytes())?;
    if request.method != "HEAD" {
        let n_sent = response.truncate_at.unwrap_or(response.body.len());
        stream.write_all(&response.body[..n_sent])?;
    }
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

fn route(state: &ServerState, request: &RecordedRequest) -> Response {
    if let Some(sha256) = request.path.strip_prefix("/lfs-cdn/") {
        return match state.fixtures.content_by_sha256(sha256) {
            Some(content) => serve_content(state, request, &content, vec![("ETag".into(), format!("\"{sha256}\""))]),
            None => plain(404, "no such blob"),
        };
    }
    let Some((repo_path, rest)) = request.path.split_once("/resolve/") else {
        return plain(404, "not a resolve URL");
    };
    let repo_id = repo_path.trim_start_matches('/');
    let Some((revision, filename)) = rest.split_once('/') else {
        return plain(404, "no file name");
    };
    let (revision, filename) = (percent_decode(revision), percent_decode(filename));

    let Some(repo) = state.fixtures.repo(repo_id) else {
        return error(404, "RepoNotFound", "Repository not found");
    };
    if let Some(token) = &repo.gated_token {
        match request.header("authorization") {
            None => return error(401, "GatedRepo", "Access to this repository is restricted"),
            Some(value) if value != format!("Bearer {token}") => {
                return error(403, "GatedRepo", "Access to this repository is restricted");
            }
            Some(_) => {}
        }
    }
    if revision != "main" && revision != repo.commit {
        return error(404, "RevisionNotFound", "Invalid rev id");
    }
    let commit_header = ("X-Repo-Commit".to_owned(), repo.commit.clone());
    let Some(file) = repo.files.get(&filename) else {
        let mut response = error(404, "EntryNotFound", "Entry not found");
        response.headers.push(commit_header);
        return response;
    };
    if file.lfs {
        let sha256 = sha256_hex(&file.content);
        let content_base = lock(&state.content_base).clone().unwrap_or_else(|| state.own_base.clone());
        let location = format!("{content_base}/lfs-cdn/{sha256}");
        return Response {
            status: 302,
            headers: vec![
                commit_header,
                ("Location".into(), location.clone()),
                ("X-Linked-Etag".into(), format!("\"{sha256}\"")),
                ("X-Linked-Size".into(), file.content.len().to_string()),
                // The hub's own ETag on a redirect is not the content's; the client must prefer
                // X-Linked-Etag.
                ("ETag".into(), "W/\"redirect-etag\"".into()),
            ],
            body: format!("Found. Redirecting to {location}").into_bytes(),
            truncate_at: None,
        };
    }
    let etag = ("ETag".to_owned(), format!("\"{}\"", git_sha1_hex(&file.content)));
    serve_content(state, request, &file.content, vec![commit_header, etag])
}

/// The content, or the part a `Range: bytes={start}-` asks for, as the behaviour says.
fn serve_content(
    state: &ServerState,
    request: &RecordedRequest,
    content: &[u8],
    mut headers: Vec<(String, String)>,
) -> Response {
    let mut behaviour = lock(&state.behaviour);
    let mut body = content.to_vec();
    if behaviour.corrupt_content && !body.is_empty() {
        let middle = body.len() / 2;
        body[middle] ^= 0xff;
    }
    let range_start = request
        .header("range")
        .and_then(|range| range.strip_prefix("bytes="))
        .and_then(|range| range.strip_suffix('-'))
        .and_then(|start| start.parse::<usize>().ok());
    let len = body.len();
    let mut status = 200;
    if let Some(start) = range_start.filter(|_| !behaviour.ignore_range) {
        if start >= len {
            headers.push(("Content-Range".into(), format!("bytes */{len}")));
            return Response { status: 416, headers, body: Vec::new(), truncate_at: None };
        }
        headers.push(("Content-Range".into(), format!("bytes {start}-{}/{len}", len - 1)));
        body.drain(..start);
        status = 206;
    }
    headers.push(("Accept-Ranges".into(), "bytes".into()));
    let truncate_at = if behaviour.truncate_next_body && request.method == "GET" {
        behaviour.truncate_next_body = false;
        Some(body.len() / 2)
    } else {
        None
    };
    Response { status, headers, body, truncate_at }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response {
        status,
        headers: vec![("X-Error-Code".into(), code.into()), ("Content-Type".into(), "application/json".into())],
        body: format!("{{\"error\":\"{message}\"}}").into_bytes(),
        truncate_at: None,
    }
}

fn plain(status: u16, message: &str) -> Response {
    Response { status, headers: Vec::new(), body: message.as_bytes().to_vec(), truncate_at: None }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut byte_idx = 0;
    while byte_idx < bytes.len() {
        let escaped = (bytes[byte_idx] == b'%')
            .then(|| text.get(byte_idx + 1..byte_idx + 3))
            .flatten()
            .and_then(|digits| u8::from_str_radix(digits, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                byte_idx += 3;
            }
            None => {
                decoded.push(bytes[byte_idx]);
                byte_idx += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
