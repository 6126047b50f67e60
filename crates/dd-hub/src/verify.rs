//! What the hub's ETag promises about a file's content, and the hashes that check it.
//!
//! For files stored with Git LFS the hub sends `X-Linked-Etag`, the SHA-256 of the content. For
//! files stored in git the ETag is the git blob id: the SHA-1 of `"blob {len}\0"` followed by the
//! content. Any other ETag (a hub that does not follow these rules) is used as a name only.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Buffer size for hashing files already on disk.
const HASH_BUFFER_LEN: usize = 256 * 1024;

/// The check a normalised ETag allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checksum {
    /// 64 hex digits: SHA-256 of the content (LFS files).
    Sha256,
    /// 40 hex digits: git blob SHA-1 (files stored in git).
    GitSha1,
    /// Anything else: no check beyond the size.
    Unchecked,
}

impl Checksum {
    /// The check for an ETag, by its shape.
    pub(crate) fn for_etag(etag: &str) -> Checksum {
        let is_hex = etag.bytes().all(|byte| byte.is_ascii_hexdigit());
        match etag.len() {
            64 if is_hex => Checksum::Sha256,
            40 if is_hex => Checksum::GitSha1,
            _ => Checksum::Unchecked,
        }
    }

    /// The algorithm's name for error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Checksum::Sha256 => "sha256",
            Checksum::GitSha1 => "git-sha1",
            Checksum::Unchecked => "none",
        }
    }
}

/// Strips the `W/` prefix and the quotes of an ETag header, as `huggingface_hub` does, so that it
/// can name a file.
pub(crate) fn normalize_etag(header: &str) -> &str {
    let header = header.trim();
    let header = header.strip_prefix("W/").unwrap_or(header);
    header.trim_matches('"')
}

/// Lowercase hexadecimal digits of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Feeds the first `n_bytes` of `file` (read from its current position) to `hasher`; used when
/// resuming so that the hash covers the part downloaded earlier.
pub(crate) fn hash_prefix(file: &mut File, n_bytes: u64, hasher: &mut Sha256) -> io::Result<()> {
    let mut limited = file.take(n_bytes);
    let mut buffer = vec![0u8; HASH_BUFFER_LEN];
    loop {
        let n_read = limited.read(&mut buffer)?;
        if n_read == 0 {
            break;
        }
        hasher.update(&buffer[..n_read]);
    }
    Ok(())
}

/// The git blob id of a file on disk.
pub(crate) fn git_blob_sha1(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {len}\0").as_bytes());
    let mut buffer = vec![0u8; HASH_BUFFER_LEN];
    loop {
        let n_read = file.read(&mut buffer)?;
        if n_read == 0 {
            break;
        }
        hasher.update(&buffer[..n_read]);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_lose_quotes_and_weak_prefix() {
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("abc"), "abc");
        assert_eq!(normalize_etag(" \"abc\" "), "abc");
    }

    #[test]
    fn checksum_kind_follows_etag_shape() {
        assert_eq!(Checksum::for_etag(&"a".repeat(64)), Checksum::Sha256);
        assert_eq!(Checksum::for_etag(&"A".repeat(40)), Checksum::GitSha1);
        assert_eq!(Checksum::for_etag(&"g".repeat(64)), Checksum::Unchecked);
        assert_eq!(Checksum::for_etag("abc-123"), Checksum::Unchecked);
    }

    #[test]
    fn git_blob_ids_match_git() -> Result<(), Box<dyn std::error::Error>> {
        // `git hash-object` of an empty file and of "hello\n".
        let dir = tempfile::tempdir()?;
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"")?;
        assert_eq!(git_blob_sha1(&empty)?, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
        let hello = dir.path().join("hello");
        std::fs::write(&hello, b"hello\n")?;
        assert_eq!(git_blob_sha1(&hello)?, "ce013625030ba8dba906f756967f9e9ca394464a");
        Ok(())
    }

    #[test]
    fn hashing_a_prefix_matches_hashing_those_bytes() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("data");
        std::fs::write(&path, b"abcdefgh")?;
        let mut hasher = Sha256::new();
        hash_prefix(&mut File::open(&path)?, 3, &mut hasher)?;
        assert_eq!(hex(&hasher.finalize()), hex(&Sha256::digest(b"abc")));
        Ok(())
    }
}
