//! A fixture file server for tests (feature `testing`): real HTTP/1.1 on an ephemeral port of
//! 127.0.0.1, one thread per connection, serving a directory as a publisher's server would, with
//! faults scripted per path: error statuses a number of times, bodies cut short under a full
//! `Content-Length`, slow answers. Every request is counted per path.
//!
//! It lives in the library behind a feature so that the binary's tests drive the same server;
//! this crate's own tests get the feature from a dev-dependency on itself.

pub mod openai;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A fault the server plays for one path.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer this status for the first `times` requests, then serve the file.
    Status {
        /// The status code.
        status: u16,
        /// How many requests get it.
        times: usize,
    },
    /// Announce the file's full length, send half of it and close, the first `times` requests.
    Truncated {
        /// How many requests get it.
        times: usize,
    },
    /// Wait this long before every answer.
    Slow(Duration),
}

struct Shared {
    root: PathBuf,
    faults: HashMap<String, Fault>,
    requests: HashMap<String, usize>,
}

/// A running fixture server; stops when dropped.
pub struct FixtureServer {
    address: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FixtureServer {
    /// Serves the files under `root` at `http://127.0.0.1:{port}/`.
    pub fn serve(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let shared =
            Arc::new(Mutex::new(Shared { root: root.into(), faults: HashMap::new(), requests: HashMap::new() }));
        let stopping = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (shared, stopping) = (Arc::clone(&shared), Arc::clone(&stopping));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = Arc::clone(&shared);
                    thread::spawn(move || handle(stream, &shared));
                }
            })
        };
        Ok(Self { address, shared, stopping, acceptor: Some(acceptor) })
    }

    /// The base URL, without a trailing `/`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Plays `fault` for requests of `path` (relative, as requested).
    pub fn set_fault(&self, path: &str, fault: Fault) {
        lock(&self.shared).faults.insert(path.to_owned(), fault);
    }

    /// Requests seen for `path`.
    pub fn requests_for(&self, path: &str) -> usize {
        lock(&self.shared).requests.get(path).copied().unwrap_or(0)
    }

    /// Requests seen in all.
    pub fn total_requests(&self) -> usize {
        lock(&self.shared).requests.values().sum()
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor so that it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn handle(stream: TcpStream, shared: &Mutex<Shared>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    // Head and body go out in separate writes: with Nagle's algorithm the body's last segment
    // would wait for the client's delayed ACK, 40 ms a file.
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(stream) => stream,
        Err(_) => return,
    });
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // Headers: nothing in them matters to a file server.
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("/");
        let path = target.split('?').next().unwrap_or("").trim_start_matches('/').to_owned();
        let (fault, root, count) = {
            let mut shared = lock(shared);
            let count = shared.requests.entry(path.clone()).or_insert(0);
            *count += 1;
            let count = *count;
            (shared.faults.get(&path).cloned(), shared.root.clone(), count)
        };
        if let Some(Fault::Slow(delay)) = &fault {
            thread::sleep(*delay);
        }
        if let Some(Fault::Status { status, times }) = &fault
            && count <= *times
        {
            let body = format!("fault {status}");
            let head = format!("HTTP/1.1 {status} Fault\r\ncontent-length: {}\r\nretry-after: 0\r\n\r\n", body.len());
            if stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes())).is_err() {
                return;
            }
            continue;
        }
        let file = (!path.split('/').any(|part| part == ".." || part.is_empty()))
            .then(|| std::fs::read(root.join(&path)).ok())
            .flatten();
        let Some(body) = file else {
            let head = "HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nnot found";
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            continue;
        };
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        if let Some(Fault::Truncated { times }) = &fault
            && count <= *times
        {
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body[..body.len() / 2]));
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        if stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body)).is_err() {
            return;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
