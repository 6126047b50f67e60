//! The crate's error type: every variant names the repository and file (and the URL when a request
//! was involved) so that a failed `deepdecipher record` says what to fix.

use std::path::PathBuf;

/// Everything that can go wrong while resolving a file from the hub or the cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The repository id, revision or file name cannot be used (bad characters, `..`, absolute path).
    #[error("invalid request for {file:?} in {repo:?} at revision {revision:?}: {reason}")]
    InvalidRepoFile {
        /// Repository id as given.
        repo: String,
        /// Revision as given.
        revision: String,
        /// File name as given.
        file: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The hub endpoint is not an `http://` or `https://` URL with a host.
    #[error("invalid hub endpoint {endpoint:?} (set HF_ENDPOINT to a URL such as http://host:port)")]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
    },

    /// An environment variable has a value that cannot be used.
    #[error("environment variable {name} has an invalid value {value:?}: {reason}")]
    InvalidEnv {
        /// The variable's name.
        name: &'static str,
        /// Its value.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },

    /// No cache directory could be derived: neither `HF_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME` nor
    /// `HOME` is set.
    #[error("cannot find a cache directory: set HF_HUB_CACHE or HF_HOME (HOME is not set either)")]
    NoCacheDir,

    /// The hub says the repository does not exist (or is private and no valid token was sent).
    #[error(
        "repository {repo} not found on the hub ({url}): check the name; if it is private or gated, set HF_TOKEN to a token that can read it"
    )]
    RepoNotFound {
        /// Repository id.
        repo: String,
        /// File that was asked for.
        file: String,
        /// URL of the request.
        url: String,
    },

    /// The repository exists but the revision (branch, tag or commit) does not.
    #[error("revision {revision:?} not found in repository {repo} while fetching {file} ({url})")]
    RevisionNotFound {
        /// Repository id.
        repo: String,
        /// Revision that was asked for.
        revision: String,
        /// File that was asked for.
        file: String,
        /// URL of the request.
        url: String,
    },

    /// The repository and revision exist but the file does not.
    #[error("file {file} not found in repository {repo} at revision {revision:?} ({url})")]
    FileNotFound {
        /// Repository id.
        repo: String,
        /// Revision that was asked for.
        revision: String,
        /// File that was asked for.
        file: String,
        /// URL of the request.
        url: String,
    },

    /// The hub refused access (HTTP 401 or 403): a gated or private repository.
    #[error(
        "access to {file} in repository {repo} denied (HTTP {status}{gated_note}) at {url}: the repository is gated or private; accept its conditions on the hub and set HF_TOKEN to a token with read access",
        gated_note = gated_note(*.gated)
    )]
    Unauthorized {
        /// Repository id.
        repo: String,
        /// File that was asked for.
        file: String,
        /// URL of the request.
        url: String,
        /// 401 or 403.
        status: u16,
        /// Whether the hub said the repository is gated (`X-Error-Code: GatedRepo`).
        gated: bool,
    },

    /// The hub or the content server answered with an unexpected HTTP status.
    #[error("HTTP {status} fetching {file} of repository {repo} from {url}")]
    Status {
        /// Repository id.
        repo: String,
        /// File that was asked for.
        file: String,
        /// URL of the request.
        url: String,
        /// The status code.
        status: u16,
    },

    /// A header the hub always sends is missing, so the file cannot be placed in the cache.
    #[error(
        "the answer for {file} of repository {repo} from {url} lacks the {header} header; is the endpoint a Hugging Face-compatible hub?"
    )]
    MissingHeader {
        /// Repository id.
        repo: String,
        /// File that was asked for.
        file: String,
        /// URL of the request.
        url: String,
        /// Header name.
        header: &'static str,
    },

    /// A header has a value that cannot be used (an ETag with a `/`, a size that is not a number).
    #[error("the answer for {file} of repository {repo} from {url} has an invalid {header} header {value:?}")]
    InvalidHeader {
        /// Repository id.
        repo: String,
        /// File that was asked for.
        file: String,
        /// URL of the request.
        url: String,
        /// Header name.
        header: &'static str,
        /// Its value.
        value: String,
    },

    /// More redirects than any hub uses: probably a loop.
    #[error("too many redirects fetching {file} of repository {repo}, last from {url}")]
    TooManyRedirects {
        /// Repository id.
        repo: String,
        /// File that was asked for.
        file: String,
        /// The last URL requested.
        url: String,
    },

    /// The server could not be reached or the request could not be sent.
    #[error("cannot fetch {file} of repository {repo} from {url}")]
    Connection {
        /// Repository id.
        repo: String,
        /// File that was asked for.
        file: String,
        /// URL of the request.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The transfer stopped before the whole file arrived. The partial file is kept, and the next
    /// call resumes from where this one stopped.
    #[error(
        "download of {file} of repository {repo} from {url} stopped after {received} of {expected_text} bytes; run again to resume",
        expected_text = expected_text(*.expected)
    )]
    Truncated {
        /// Repository id.
        repo: String,
        /// File that was asked for.
        file: String,
        /// URL of the content.
        url: String,
        /// Bytes on disk when the transfer stopped.
        received: u64,
        /// The file's size, when the server said.
        expected: Option<u64>,
        /// The read error, when the connection failed rather than closing early.
        #[source]
        source: Option<std::io::Error>,
    },

    /// More bytes arrived than the hub announced; the partial file was deleted.
    #[error(
        "download of {file} of repository {repo} from {url} produced {received} bytes but the hub announced {expected}"
    )]
    SizeMismatch {
        /// Repository id.
        repo: String,
        /// File that was asked for.
        file: String,
        /// URL of the content.
        url: String,
        /// Bytes received.
        received: u64,
        /// Bytes announced.
        expected: u64,
    },

    /// The downloaded content does not hash to the hub's ETag; the partial file was deleted.
    #[error(
        "checksum mismatch for {file} of repository {repo} from {url}: expected {algorithm} {expected}, got {actual}; the download was discarded",
        algorithm = crate::verify::Checksum::for_etag(.expected).name()
    )]
    ChecksumMismatch {
        /// Repository id.
        repo: String,
        /// File that was asked for.
        file: String,
        /// URL of the content.
        url: String,
        /// The hub's ETag: a SHA-256 (64 hex digits) for LFS files, a git blob SHA-1 (40) otherwise.
        expected: String,
        /// The hash of what arrived.
        actual: String,
    },

    /// Offline mode is on and the file is not in the cache.
    #[error(
        "{file} of repository {repo} at revision {revision:?} is not in the cache {cache_dir} and offline mode is on (HF_HUB_OFFLINE): download it once while online"
    )]
    OfflineMiss {
        /// Repository id.
        repo: String,
        /// Revision that was asked for.
        revision: String,
        /// File that was asked for.
        file: String,
        /// The cache directory searched.
        cache_dir: PathBuf,
    },

    /// A file system operation in the cache failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done ("create directory", "write", "rename to blob").
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl HubError {
    /// Wraps an IO error with what was being done and where.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HubError {
        let path = path.into();
        move |source| HubError::Io { action, path, source }
    }
}

/// The note added to [`HubError::Unauthorized`] when the hub said the repository is gated.
fn gated_note(gated: bool) -> &'static str {
    if gated { ", gated repository" } else { "" }
}

/// The announced size in [`HubError::Truncated`], or words saying that none was announced.
fn expected_text(expected: Option<u64>) -> String {
    match expected {
        Some(n_bytes) => n_bytes.to_string(),
        None => "an unknown number of".to_owned(),
    }
}
