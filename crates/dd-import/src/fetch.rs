//! Where a published dataset lives (a local directory or an HTTP(S) base URL laid out as the
//! publisher lays it out) and fetching its files: bounded concurrency, a shared rate limit,
//! retries with backoff on 408, 429, 5xx, time-outs, broken connections and truncated bodies.
//!
//! A file that is not there (404, or no such file) is `Ok(None)`, not an error: publishers leave
//! gaps (OpenAI's GPT-2 XL explanations lack some neurons) and the importer counts them as missing.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dd_http::{Backoff, Pacer, Slots, display_url, is_retryable_status, is_transient, lock, retry_after};
use ureq::Agent;

/// The most bytes one file may have: far above any published item, small enough that a broken
/// or hostile server cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Sent with every request so that server operators can tell our traffic apart.
const USER_AGENT: &str = concat!("deepdecipher/", env!("CARGO_PKG_VERSION"), " (dd-import)");

/// Where a dataset lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetLocation {
    /// A local directory holding the publisher's layout.
    Directory(PathBuf),
    /// An HTTP(S) base URL; file paths are appended after a `/`.
    Http(String),
}

impl DatasetLocation {
    /// `http://` and `https://` strings are URLs (a trailing `/` is dropped); anything else is a path.
    pub fn parse(text: &str) -> Self {
        let trimmed = text.trim();
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            DatasetLocation::Http(trimmed.trim_end_matches('/').to_owned())
        } else {
            DatasetLocation::Directory(PathBuf::from(trimmed))
        }
    }

    /// The location for messages: a URL without credentials or query.
    pub fn describe(&self) -> String {
        match self {
            DatasetLocation::Directory(path) => path.display().to_string(),
            DatasetLocation::Http(url) => display_url(url),
        }
    }
}

/// How hard to use a server.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchConfig {
    /// Requests in flight at once, across all threads.
    pub max_concurrency: usize,
    /// Client-side rate limit, shared across threads; `None`: none.
    pub requests_per_minute: Option<u32>,
    /// Time limit of one request, from connecting to the last byte.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The wait before the first retry, doubled for each further one (with jitter).
    pub retry_delay: Duration,
}

impl Default for FetchConfig {
    /// 8 in flight, no rate limit, 60 s per request, 4 retries starting at 500 ms.
    fn default() -> Self {
        Self {
            max_concurrency: 8,
            requests_per_minute: None,
            timeout: Duration::from_secs(60),
            max_retries: 4,
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// Why a file could not be fetched (after retries, for transient failures).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct FetchError {
    /// The file, relative to the dataset.
    pub path: String,
    /// What went wrong, fit for a message (no credentials).
    pub reason: String,
}

/// Counters over all threads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchTotals {
    /// Files read or HTTP requests sent, retries included.
    pub requests: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// Bytes of files fetched.
    pub bytes: u64,
}

/// Fetches files of one dataset; `Send + Sync`, shared by the import's worker threads.
pub struct Fetcher {
    location: DatasetLocation,
    config: FetchConfig,
    agent: Agent,
    slots: Slots,
    pacer: Option<Pacer>,
    backoff: Backoff,
    requests: AtomicU64,
    retries: AtomicU64,
    bytes: AtomicU64,
    /// The last transient failure, for a summary that says why retries happened.
    last_retry_reason: Mutex<Option<String>>,
}

/// Why one attempt failed.
struct Failure {
    reason: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Fetcher {
    /// A fetcher for `location`.
    pub fn new(location: DatasetLocation, config: FetchConfig) -> Self {
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .timeout_global(Some(config.timeout))
            .build()
            .new_agent();
        Self {
            slots: Slots::new(config.max_concurrency),
            pacer: config.requests_per_minute.map(Pacer::per_minute),
            backoff: Backoff::new(config.retry_delay),
            agent,
            location,
            config,
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_retry_reason: Mutex::new(None),
        }
    }

    /// Where the files come from.
    pub fn location(&self) -> &DatasetLocation {
        &self.location
    }

    /// The file at `path` (relative, `/`-separated), `None` when the dataset has no such file.
    pub fn get(&self, path: &str) -> Result<Option<Vec<u8>>, FetchError> {
        let error = |reason: String| FetchError { path: path.to_owned(), reason };
        let Some(relative) = safe_relative(path) else {
            return Err(error("not a relative path inside the dataset".to_owned()));
        };
        let bytes = match &self.location {
            DatasetLocation::Directory(root) => {
                self.requests.fetch_add(1, Ordering::Relaxed);
                read_local(&root.join(relative)).map_err(error)?
            }
            DatasetLocation::Http(base) => {
                self.with_retries(path, &format!("{base}/{path}"), &|mut body, declared| {
                    let bytes =
                        body.with_config().limit(MAX_FILE_BYTES).read_to_vec().map_err(|e| self.transport(e))?;
                    check_length(bytes.len() as u64, declared)?;
                    Ok(bytes)
                })?
            }
        };
        if let Some(bytes) = &bytes {
            self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        Ok(bytes)
    }

    /// Streams the file at `path` of an HTTP dataset into `destination` (through a `.partial`
    /// file renamed when complete, so a file there is always whole), however large; returns its
    /// size, `None` when the dataset has no such file. For files too large for [`Fetcher::get`]
    /// (the original DeepDecipher's database).
    pub fn download(&self, path: &str, destination: &Path) -> Result<Option<u64>, FetchError> {
        let error = |reason: String| FetchError { path: path.to_owned(), reason };
        if safe_relative(path).is_none() {
            return Err(error("not a relative path inside the dataset".to_owned()));
        }
        let DatasetLocation::Http(base) = &self.location else {
            return Err(error("only an HTTP dataset is downloaded; a local one is read where it is".to_owned()));
        };
        let partial = destination.with_extension("partial");
        let written = self.with_retries(path, &format!("{base}/{path}"), &|mut body, declared| {
            let mut file = std::fs::File::create(&partial).map_err(|e| Failure {
                reason: format!("{}: {e}", partial.display()),
                retryable: false,
                retry_after: None,
            })?;
            let written = std::io::copy(&mut body.as_reader(), &mut file).map_err(|e| Failure {
                reason: format!("the connection broke off: {e}"),
                retryable: true,
                retry_after: None,
            })?;
            check_length(written, declared)?;
            file.sync_all().map_err(|e| Failure {
                reason: format!("{}: {e}", partial.display()),
                retryable: false,
                retry_after: None,
            })?;
            Ok(written)
        });
        let written = match written {
            Ok(written) => written,
            Err(failure) => {
                let _ = std::fs::remove_file(&partial);
                return Err(failure);
            }
        };
        if written.is_some() {
            std::fs::rename(&partial, destination).map_err(|e| error(format!("{}: {e}", destination.display())))?;
            self.bytes.fetch_add(written.unwrap_or(0), Ordering::Relaxed);
        }
        Ok(written)
    }

    /// The counters so far.
    pub fn totals(&self) -> FetchTotals {
        FetchTotals {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Why the last retry happened, if any did.
    pub fn last_retry_reason(&self) -> Option<String> {
        lock(&self.last_retry_reason).clone()
    }

    /// Requests `url` until an attempt succeeds, a failure is not worth another, or retries are
    /// spent; `read` consumes a successful answer's body.
    fn with_retries<T>(
        &self,
        path: &str,
        url: &str,
        read: &dyn Fn(ureq::Body, Option<u64>) -> Result<T, Failure>,
    ) -> Result<Option<T>, FetchError> {
        let mut attempt = 0;
        loop {
            let failure = match self.attempt(url, read) {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            if !failure.retryable || attempt >= self.config.max_retries {
                let attempts = attempt + 1;
                let plural = if attempts == 1 { "" } else { "s" };
                return Err(FetchError {
                    path: path.to_owned(),
                    reason: format!("{} (after {attempts} attempt{plural})", failure.reason),
                });
            }
            let delay = self.backoff.delay(attempt, failure.retry_after);
            tracing::debug!(path, retry = attempt + 1, delay_ms = delay.as_millis() as u64, reason = %failure.reason, "retrying");
            *lock(&self.last_retry_reason) = Some(failure.reason);
            self.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(delay);
            attempt += 1;
        }
    }

    /// One request: waits for a slot and the rate limit, sends, and hands a successful answer's
    /// body and declared length to `read`; `None` for a 404 or 410.
    fn attempt<T>(
        &self,
        url: &str,
        read: &dyn Fn(ureq::Body, Option<u64>) -> Result<T, Failure>,
    ) -> Result<Option<T>, Failure> {
        let _slot = self.slots.acquire();
        if let Some(pacer) = &self.pacer {
            pacer.wait_turn();
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = self.agent.get(url).call().map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        if status == 404 || status == 410 {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(Failure {
                reason: format!("status {status}"),
                retryable: is_retryable_status(status),
                retry_after: retry_after(&response),
            });
        }
        let declared: Option<u64> = response
            .headers()
            .get("content-length")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok());
        read(response.into_body(), declared).map(Some)
    }

    /// A transport error as a failure: retryable unless it is about our limits or settings.
    fn transport(&self, error: ureq::Error) -> Failure {
        Failure {
            retryable: is_transient(&error),
            reason: match error {
                ureq::Error::BodyExceedsLimit(limit) => format!("larger than {limit} bytes"),
                ureq::Error::Timeout(_) => format!("no complete answer within {:?}", self.config.timeout),
                other => display_url(&other.to_string()),
            },
            retry_after: None,
        }
    }
}

/// A server that closes early without chunked framing leaves a short body that reads as complete:
/// the declared length is the only witness.
fn check_length(received: u64, declared: Option<u64>) -> Result<(), Failure> {
    match declared {
        Some(declared) if declared != received => Err(Failure {
            reason: format!("truncated: {received} of {declared} bytes"),
            retryable: true,
            retry_after: None,
        }),
        _ => Ok(()),
    }
}

/// `path` as a relative path that cannot leave the dataset (no `..`, no root, no drive).
fn safe_relative(path: &str) -> Option<PathBuf> {
    let relative = Path::new(path);
    (!path.is_empty() && relative.components().all(|component| matches!(component, Component::Normal(_))))
        .then(|| relative.to_path_buf())
}

fn read_local(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|error| error.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(Some(bytes))
}

/// `bytes` gunzipped when they start with gzip's magic number (publishers serve `.gz` files with
/// and without `Content-Encoding`), as they are otherwise; a limit keeps a gzip bomb out.
pub fn gunzip_if_gzipped(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|error| format!("bad gzip data: {error}"))?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes once unzipped"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_urls_and_paths() {
        assert_eq!(DatasetLocation::parse("https://host/data/"), DatasetLocation::Http("https://host/data".into()));
        assert_eq!(DatasetLocation::parse("./data"), DatasetLocation::Directory(PathBuf::from("./data")));
        assert_eq!(DatasetLocation::parse("https://u:p@host/d?sig=1").describe(), "https://host/d");
    }

    #[test]
    fn paths_cannot_leave_the_dataset() {
        assert!(safe_relative("explanations/0/1.jsonl").is_some());
        for bad in ["", "../etc/passwd", "/etc/passwd", "a/../../b"] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn local_files_and_gaps() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a")).expect("mkdir");
        std::fs::write(dir.path().join("a/1.json"), b"{}").expect("write");
        let fetcher = Fetcher::new(DatasetLocation::Directory(dir.path().to_path_buf()), FetchConfig::default());
        assert_eq!(fetcher.get("a/1.json").expect("read"), Some(b"{}".to_vec()));
        assert_eq!(fetcher.get("a/2.json").expect("gap"), None);
        assert!(fetcher.get("../x").is_err());
        assert_eq!(fetcher.totals().bytes, 2);
    }

    #[test]
    fn gzip_is_undone_and_plain_bytes_pass() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"hello").expect("gzip");
        let gzipped = encoder.finish().expect("gzip");
        assert_eq!(gunzip_if_gzipped(gzipped.clone()).expect("gunzip"), b"hello");
        assert_eq!(gunzip_if_gzipped(b"plain".to_vec()).expect("plain"), b"plain");
        assert!(gunzip_if_gzipped(gzipped[..gzipped.len() - 4].to_vec()).is_err());
    }
}
