//! Requests to the hub: a metadata request that reads `X-Repo-Commit`, the ETag and the size
//! without following the redirect to the content, and a content request that follows redirects
//! itself so that the token only ever goes to the hub's own origin.

use ureq::http::{Response, Uri};
use ureq::{Agent, Body};

use crate::cache::is_safe_file_name;
use crate::verify::normalize_etag;
use crate::{HubConfig, HubError, RepoFile};

/// More redirects than the hub ever chains (a renamed repository, then the content server).
const MAX_REDIRECTS: usize = 10;

/// Sent with every request so that hub operators can tell our traffic apart.
const USER_AGENT: &str = concat!("deepdecipher/", env!("CARGO_PKG_VERSION"), " (dd-hub)");

/// What the hub says about one file before any content is transferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileMetadata {
    /// The commit the revision points at (`X-Repo-Commit`).
    pub(crate) commit: String,
    /// The normalised `X-Linked-Etag` (LFS files) or `ETag`: the blob's name in the cache.
    pub(crate) etag: String,
    /// The file's size in bytes (`X-Linked-Size`, or `Content-Length` when the hub serves the
    /// content itself), when announced.
    pub(crate) size: Option<u64>,
    /// Where the content is: the redirect target for LFS files, the resolve URL otherwise.
    pub(crate) content_url: String,
}

/// A blocking client for one file of one repository; it carries the repository and file into
/// every error.
pub(crate) struct HubClient<'a> {
    agent: Agent,
    endpoint: &'a str,
    endpoint_origin: Origin,
    token: Option<&'a str>,
    repo_file: &'a RepoFile,
}

/// Scheme, host and port: the `Authorization` header goes only to the endpoint's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Head,
    Get,
}

impl<'a> HubClient<'a> {
    /// A client for `repo_file` at the configured endpoint.
    pub(crate) fn new(config: &'a HubConfig, repo_file: &'a RepoFile) -> Result<HubClient<'a>, HubError> {
        let endpoint = config.endpoint.trim_end_matches('/');
        let endpoint_origin =
            origin(endpoint).ok_or_else(|| HubError::InvalidEndpoint { endpoint: config.endpoint.clone() })?;
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            // Redirects are followed by hand: the metadata request must see the first answer, and
            // the token must not follow a redirect to another origin.
            .max_redirects(0)
            .user_agent(USER_AGENT)
            // The sizes in the headers must be those of the bytes on the wire.
            .accept_encoding("identity")
            .timeout_connect(Some(config.timeout))
            .timeout_per_read(Some(config.timeout))
            .build()
            .new_agent();
        Ok(HubClient { agent, endpoint, endpoint_origin, token: config.token.as_deref(), repo_file })
    }

    /// Asks the hub where the file is and what it is, as `huggingface_hub`'s `get_hf_file_metadata`:
    /// a HEAD request that follows only relative redirects (a renamed repository) and reads the
    /// headers of the first absolute redirect (to the content server) or of the final answer.
    pub(crate) fn fetch_metadata(&self) -> Result<FileMetadata, HubError> {
        let mut url = self.repo_file.resolve_url(self.endpoint);
        for _ in 0..MAX_REDIRECTS {
            let response = self.send(Method::Head, &url, None)?;
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                let content_url = url.clone();
                return self.metadata_from(&url, &response, content_url);
            }
            if !(300..400).contains(&status) {
                return Err(self.status_error(&url, &response));
            }
            let location = self.location(&url, &response)?;
            if is_relative_reference(header(&response, "location").unwrap_or_default()) {
                url = location;
                continue;
            }
            return self.metadata_from(&url, &response, location);
        }
        Err(HubError::TooManyRedirects { repo: self.repo_id(), file: self.filename(), url: without_query(&url) })
    }

    /// GETs the content, from `range_start` on when given, following redirects. Returns the URL
    /// that answered and its response, whatever the status.
    pub(crate) fn get_content(
        &self,
        content_url: &str,
        range_start: Option<u64>,
    ) -> Result<(String, Response<Body>), HubError> {
        let mut url = content_url.to_owned();
        for _ in 0..MAX_REDIRECTS {
            let response = self.send(Method::Get, &url, range_start)?;
            if !response.status().is_redirection() {
                return Ok((url, response));
            }
            url = self.location(&url, &response)?;
        }
        Err(HubError::TooManyRedirects { repo: self.repo_id(), file: self.filename(), url: without_query(&url) })
    }

    /// The error for an unsuccessful answer, using the hub's `X-Error-Code` to tell a missing
    /// repository from a missing revision or file, and a gated repository from other refusals.
    pub(crate) fn status_error(&self, url: &str, response: &Response<Body>) -> HubError {
        let status = response.status().as_u16();
        let (repo, file, url) = (self.repo_id(), self.filename(), without_query(url));
        let revision = self.repo_file.revision.clone();
        match (header(response, "x-error-code"), status) {
            (Some("RepoNotFound"), _) => HubError::RepoNotFound { repo, file, url },
            (Some("RevisionNotFound"), _) => HubError::RevisionNotFound { repo, revision, file, url },
            (Some("EntryNotFound"), _) | (None, 404) => HubError::FileNotFound { repo, revision, file, url },
            (Some("GatedRepo"), _) => HubError::Unauthorized { repo, file, url, status, gated: true },
            (_, 401 | 403) => HubError::Unauthorized { repo, file, url, status, gated: false },
            _ => HubError::Status { repo, file, url, status },
        }
    }

    /// The repository id, for errors.
    pub(crate) fn repo_id(&self) -> String {
        self.repo_file.repo_id.clone()
    }

    /// The file name, for errors.
    pub(crate) fn filename(&self) -> String {
        self.repo_file.filename.clone()
    }

    /// Sends one request, with the token only when `url` is on the endpoint's origin.
    fn send(&self, method: Method, url: &str, range_start: Option<u64>) -> Result<Response<Body>, HubError> {
        tracing::debug!(?method, url, ?range_start, "hub request");
        let mut request = match method {
            Method::Head => self.agent.head(url),
            Method::Get => self.agent.get(url),
        };
        if let Some(token) = self.token {
            if origin(url).as_ref() == Some(&self.endpoint_origin) {
                request = request.header("authorization", format!("Bearer {token}"));
            }
        }
        if let Some(range_start) = range_start {
            request = request.header("range", format!("bytes={range_start}-"));
        }
        request.call().map_err(|source| HubError::Connection {
            repo: self.repo_id(),
            file: self.filename(),
            url: without_query(url),
            source: Box::new(source),
        })
    }

    /// The absolute URL a redirect points to.
    fn location(&self, url: &str, response: &Response<Body>) -> Result<String, HubError> {
        let Some(location) = header(response, "location") else {
            return Err(HubError::MissingHeader {
                repo: self.repo_id(),
                file: self.filename(),
                url: without_query(url),
                header: "Location",
            });
        };
        resolve_reference(url, location).ok_or_else(|| self.invalid_header(url, "Location", location))
    }

    /// Reads commit, ETag and size from a metadata answer.
    fn metadata_from(
        &self,
        url: &str,
        response: &Response<Body>,
        content_url: String,
    ) -> Result<FileMetadata, HubError> {
        let missing = |header| HubError::MissingHeader {
            repo: self.repo_id(),
            file: self.filename(),
            url: without_query(url),
            header,
        };
        let commit = header(response, "x-repo-commit").ok_or_else(|| missing("X-Repo-Commit"))?.trim();
        if !is_safe_file_name(commit) {
            return Err(self.invalid_header(url, "X-Repo-Commit", commit));
        }
        let (etag_header, raw_etag) = match (header(response, "x-linked-etag"), header(response, "etag")) {
            (Some(linked), _) => ("X-Linked-Etag", linked),
            (None, Some(etag)) => ("ETag", etag),
            (None, None) => return Err(missing("ETag")),
        };
        let etag = normalize_etag(raw_etag);
        if !is_safe_file_name(etag) {
            return Err(self.invalid_header(url, etag_header, raw_etag));
        }
        // The Content-Length of a redirect is that of its own short body, not of the file.
        let (size_header, raw_size) = match header(response, "x-linked-size") {
            Some(linked) => ("X-Linked-Size", Some(linked)),
            None if response.status().is_success() => ("Content-Length", header(response, "content-length")),
            None => ("Content-Length", None),
        };
        let size = match raw_size {
            Some(raw_size) => {
                Some(raw_size.trim().parse::<u64>().map_err(|_| self.invalid_header(url, size_header, raw_size))?)
            }
            None => None,
        };
        Ok(FileMetadata { commit: commit.to_owned(), etag: etag.to_owned(), size, content_url })
    }

    fn invalid_header(&self, url: &str, header: &'static str, value: &str) -> HubError {
        HubError::InvalidHeader {
            repo: self.repo_id(),
            file: self.filename(),
            url: without_query(url),
            header,
            value: value.to_owned(),
        }
    }
}

/// A URL for error messages: content servers sign their URLs in the query string, and a
/// signature does not belong in logs.
pub(crate) fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// A header's value when present and text.
pub(crate) fn header<'r>(response: &'r Response<Body>, name: &str) -> Option<&'r str> {
    response.headers().get(name)?.to_str().ok()
}

/// The scheme, lowercase host and port (default 80 or 443) of an `http` or `https` URL.
fn origin(url: &str) -> Option<Origin> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let host = uri.host()?.to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some(Origin { scheme, host, port: uri.port_u16().unwrap_or(default_port) })
}

/// Whether a `Location` has neither a scheme nor a host, so it stays on the same server; these are
/// the only redirects the metadata request follows, as in `huggingface_hub`.
fn is_relative_reference(location: &str) -> bool {
    !location.starts_with("//") && !has_scheme(location)
}

/// Whether a reference starts with `scheme:` (RFC 3986: a letter, then letters, digits, `+-.`).
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|byte| byte.is_ascii_alphabetic())
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'-' | b'.'))
}

/// Resolves a `Location` against the URL that answered: absolute, scheme-relative (`//host/p`),
/// absolute-path (`/p`) and relative-path (`p`) references. Query and fragment handling is that
/// of plain string joining, which is all hub redirects need.
fn resolve_reference(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.is_empty() {
        return None;
    }
    let base_uri: Uri = base.parse().ok()?;
    let scheme = base_uri.scheme_str()?;
    let resolved = if has_scheme(location) {
        location.to_owned()
    } else if location.starts_with("//") {
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        format!("{scheme}://{}{location}", base_uri.authority()?)
    } else {
        let base_path = base_uri.path();
        let directory = &base_path[..base_path.rfind('/').map_or(0, |slash_idx| slash_idx + 1)];
        let directory = if directory.is_empty() { "/" } else { directory };
        format!("{scheme}://{}{directory}{location}", base_uri.authority()?)
    };
    // Only http and https URLs are followed.
    origin(&resolved).map(|_| resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let hub = origin("https://Hub.Example/org/name");
        assert_eq!(hub, origin("https://hub.example:443/x"));
        assert_ne!(hub, origin("http://hub.example/x"));
        assert_ne!(hub, origin("https://cdn.example/x"));
        assert_ne!(origin("http://127.0.0.1:8000/a"), origin("http://127.0.0.1:8001/a"));
        assert_eq!(origin("ftp://hub.example/x"), None);
        assert_eq!(origin("not a url"), None);
        assert_eq!(origin("/relative"), None);
    }

    #[test]
    fn locations_resolve_against_the_answering_url() {
        let base = "http://127.0.0.1:8000/org/name/resolve/main/file.bin";
        assert_eq!(
            resolve_reference(base, "https://cdn.example/blob?sig=1").as_deref(),
            Some("https://cdn.example/blob?sig=1")
        );
        assert_eq!(resolve_reference(base, "//cdn.example/x").as_deref(), Some("http://cdn.example/x"));
        assert_eq!(
            resolve_reference(base, "/new-org/name/resolve/main/file.bin").as_deref(),
            Some("http://127.0.0.1:8000/new-org/name/resolve/main/file.bin")
        );
        assert_eq!(
            resolve_reference(base, "other.bin").as_deref(),
            Some("http://127.0.0.1:8000/org/name/resolve/main/other.bin")
        );
        assert_eq!(resolve_reference(base, ""), None);
        assert_eq!(resolve_reference(base, "file:///etc/passwd"), None);
    }

    #[test]
    fn error_urls_drop_signed_queries() {
        assert_eq!(without_query("https://cdn.example/blob?X-Amz-Signature=abc"), "https://cdn.example/blob");
        assert_eq!(without_query("http://hub.example/a/b"), "http://hub.example/a/b");
    }

    #[test]
    fn only_scheme_less_host_less_locations_are_relative() {
        assert!(is_relative_reference("/org/name/resolve/main/x"));
        assert!(is_relative_reference("x/y:z"));
        assert!(!is_relative_reference("//cdn.example/x"));
        assert!(!is_relative_reference("https://cdn.example/x"));
    }
}
