//! What to fetch: a repository id, a revision and a file name, checked once so that none of them
//! can escape the cache directory, and the hub URL built from them.

use crate::HubError;

/// The revision used when none is given, as in `huggingface_hub`.
pub const DEFAULT_REVISION: &str = "main";

/// Longest repository id the hub accepts (`huggingface_hub`'s `validate_repo_id`).
const MAX_REPO_ID_LEN: usize = 96;

/// One file of one model repository at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// Repository id: `name` or `org/name`, for example `EleutherAI/pythia-70m`.
    pub repo_id: String,
    /// Branch, tag or full 40-character commit hash, for example `main` or `refs/pr/1`.
    pub revision: String,
    /// Path of the file inside the repository, with `/` between folders, for example
    /// `config.json` or `onnx/model.onnx`.
    pub filename: String,
}

impl RepoFile {
    /// A file at the default revision, `main`.
    pub fn new(repo_id: &str, filename: &str) -> RepoFile {
        RepoFile::at_revision(repo_id, DEFAULT_REVISION, filename)
    }

    /// A file at a given branch, tag or commit hash.
    pub fn at_revision(repo_id: &str, revision: &str, filename: &str) -> RepoFile {
        RepoFile { repo_id: repo_id.to_owned(), revision: revision.to_owned(), filename: filename.to_owned() }
    }

    /// Checks the three parts; everything downstream relies on this to build paths and URLs.
    pub(crate) fn validate(&self) -> Result<(), HubError> {
        let invalid = |reason| HubError::InvalidRepoFile {
            repo: self.repo_id.clone(),
            revision: self.revision.clone(),
            file: self.filename.clone(),
            reason,
        };
        if let Some(reason) = repo_id_problem(&self.repo_id) {
            return Err(invalid(reason));
        }
        if !is_safe_relative_path(&self.revision) {
            return Err(invalid("the revision must be a branch, tag or commit without empty, `.` or `..` parts"));
        }
        if !is_safe_relative_path(&self.filename) {
            return Err(invalid("the file name must be a relative path without empty, `.` or `..` parts"));
        }
        Ok(())
    }

    /// `{endpoint}/{repo_id}/resolve/{revision}/{filename}`, quoted as `huggingface_hub` does: the
    /// revision entirely (so `refs/pr/1` stays one segment), the file name keeping its `/`.
    pub(crate) fn resolve_url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            endpoint.trim_end_matches('/'),
            self.repo_id,
            percent_encode(&self.revision, false),
            percent_encode(&self.filename, true),
        )
    }
}

/// Whether a revision is a full commit hash, which never moves and so never needs the network
/// once cached.
pub(crate) fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Why a repository id is not usable, following the hub's rules: one or two parts of letters,
/// digits, `-`, `_` and `.`, no `--` or `..`, at most 96 characters.
fn repo_id_problem(repo_id: &str) -> Option<&'static str> {
    if repo_id.is_empty() || repo_id.len() > MAX_REPO_ID_LEN {
        return Some("the repository id must have 1 to 96 characters");
    }
    let parts: Vec<&str> = repo_id.split('/').collect();
    if parts.len() > 2 {
        return Some("the repository id must be `name` or `org/name`");
    }
    for part in parts {
        let allowed = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.');
        if part.is_empty() || !part.bytes().all(allowed) {
            return Some("the repository id may only hold letters, digits, `-`, `_`, `.` and one `/`");
        }
        if part.contains("--") || part.contains("..") || part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
            return Some("the repository id may not hold `--` or `..` nor start or end a part with `-` or `.`");
        }
    }
    None
}

/// Whether a `/`-separated relative path (a revision or a file name) can be joined to a cache
/// directory safely: not empty, no backslash or control character, no empty, `.` or `..` part.
fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path.split('/').all(|component| !component.is_empty() && component != "." && component != "..")
}

/// Percent-encodes everything but unreserved characters (and `/` when `keep_slash`), like Python's
/// `urllib.parse.quote`.
fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_url_quotes_revision_whole_and_keeps_slashes_in_file_names() {
        let repo_file = RepoFile::at_revision("EleutherAI/pythia-70m", "refs/pr/1", "sub dir/x+y.bin");
        assert_eq!(
            repo_file.resolve_url("http://hub.test/"),
            "http://hub.test/EleutherAI/pythia-70m/resolve/refs%2Fpr%2F1/sub%20dir/x%2By.bin"
        );
        let plain = RepoFile::new("gpt2", "config.json");
        assert_eq!(plain.resolve_url("http://hub.test"), "http://hub.test/gpt2/resolve/main/config.json");
    }

    #[test]
    fn percent_encode_handles_non_ascii_bytes() {
        assert_eq!(percent_encode("é~a", true), "%C3%A9~a");
    }

    #[test]
    fn valid_repo_files_pass() {
        for (repo_id, revision, filename) in [
            ("EleutherAI/pythia-70m", "main", "model.safetensors"),
            ("gpt2", "v1.0", "subdir/x.bin"),
            ("org_1/name.v2", "refs/pr/1", "a/b/c.json"),
            ("org/name", "0123456789abcdef0123456789abcdef01234567", "config.json"),
        ] {
            let repo_file = RepoFile::at_revision(repo_id, revision, filename);
            assert!(repo_file.validate().is_ok(), "{repo_file:?}");
        }
    }

    #[test]
    fn unsafe_repo_files_are_rejected() {
        for (repo_id, revision, filename) in [
            ("", "main", "config.json"),
            ("a/b/c", "main", "config.json"),
            ("../etc", "main", "config.json"),
            ("org--x/name", "main", "config.json"),
            ("org/na me", "main", "config.json"),
            ("org/name", "", "config.json"),
            ("org/name", "../main", "config.json"),
            ("org/name", "/main", "config.json"),
            ("org/name", "main", ""),
            ("org/name", "main", "../config.json"),
            ("org/name", "main", "/etc/passwd"),
            ("org/name", "main", "a//b"),
            ("org/name", "main", "a\\b"),
            ("org/name", "main", "a/./b"),
            ("org/name", "main", "a\nb"),
        ] {
            let repo_file = RepoFile::at_revision(repo_id, revision, filename);
            assert!(
                matches!(repo_file.validate(), Err(HubError::InvalidRepoFile { .. })),
                "{repo_file:?} should be rejected"
            );
        }
    }

    #[test]
    fn commit_hashes_are_forty_hex_digits() {
        assert!(is_commit_hash("0123456789abcdef0123456789ABCDEF01234567"));
        assert!(!is_commit_hash("main"));
        assert!(!is_commit_hash("0123456789abcdef"));
        assert!(!is_commit_hash("0123456789abcdef0123456789abcdef0123456g"));
    }
}
