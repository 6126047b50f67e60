//! Moving one blob's bytes from the content server into `blobs/{etag}`: resumable through
//! `blobs/{etag}.incomplete` and `Range`, checked against the announced size and the ETag's hash,
//! and renamed into place only once both checks pass.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::cache::RepoCache;
use crate::http::{FileMetadata, HubClient, header, without_query};
use crate::verify::{Checksum, git_blob_sha1, hash_prefix, hex};
use crate::{HubError, ProgressMode};

/// Bytes read from the network per write to disk.
const BUFFER_LEN: usize = 256 * 1024;

/// Downloads the blob described by `metadata` into the cache and returns its path.
pub(crate) fn download_blob(
    client: &HubClient<'_>,
    repo_cache: &RepoCache,
    metadata: &FileMetadata,
    progress: ProgressMode,
) -> Result<PathBuf, HubError> {
    let blob = repo_cache.blob_path(&metadata.etag);
    let incomplete = repo_cache.incomplete_path(&metadata.etag);
    if let Some(blobs_dir) = incomplete.parent() {
        fs::create_dir_all(blobs_dir).map_err(HubError::io("create directory", blobs_dir))?;
    }
    let checksum = Checksum::for_etag(&metadata.etag);

    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&incomplete)
        .map_err(HubError::io("open", &incomplete))?;
    let mut n_existing = file.metadata().map_err(HubError::io("read metadata of", &incomplete))?.len();
    if metadata.size.is_some_and(|size| n_existing > size) {
        tracing::warn!(path = %incomplete.display(), "partial download is longer than the file; starting over");
        file.set_len(0).map_err(HubError::io("truncate", &incomplete))?;
        n_existing = 0;
    }
    let mut sha256 = Sha256::new();
    if n_existing > 0 && checksum == Checksum::Sha256 {
        hash_prefix(&mut file, n_existing, &mut sha256).map_err(HubError::io("hash", &incomplete))?;
    }

    let already_complete = n_existing > 0 && metadata.size == Some(n_existing);
    let (content_url, n_on_disk, expected) = if already_complete {
        tracing::debug!(path = %incomplete.display(), "partial download already complete; verifying");
        (metadata.content_url.clone(), n_existing, metadata.size)
    } else {
        let progress_bar = progress_bar(progress, metadata.size, &client.filename());
        let result = fetch_into(client, metadata, &incomplete, &mut file, n_existing, &mut sha256, &progress_bar);
        progress_bar.finish_and_clear();
        result?
    };
    file.sync_all().map_err(HubError::io("flush", &incomplete))?;
    drop(file);

    if let Some(expected) = expected {
        if n_on_disk < expected {
            return Err(HubError::Truncated {
                repo: client.repo_id(),
                file: client.filename(),
                url: without_query(&content_url),
                received: n_on_disk,
                expected: Some(expected),
                source: None,
            });
        }
    }

    let actual = match checksum {
        Checksum::Sha256 => Some(hex(&sha256.finalize())),
        Checksum::GitSha1 => Some(git_blob_sha1(&incomplete).map_err(HubError::io("hash", &incomplete))?),
        Checksum::Unchecked => None,
    };
    if let Some(actual) = actual {
        if !actual.eq_ignore_ascii_case(&metadata.etag) {
            discard(&incomplete);
            return Err(HubError::ChecksumMismatch {
                repo: client.repo_id(),
                file: client.filename(),
                url: without_query(&content_url),
                expected: metadata.etag.clone(),
                actual,
            });
        }
    }

    fs::rename(&incomplete, &blob).map_err(HubError::io("rename to", &blob))?;
    tracing::info!(repo = %client.repo_id(), file = %client.filename(), n_bytes = n_on_disk, "downloaded");
    Ok(blob)
}

/// Requests the content (resuming from `n_existing` bytes when there are some) and appends it to
/// `file`, hashing as it goes. Returns the URL that served it, the bytes now on disk and the size
/// the file should have.
fn fetch_into(
    client: &HubClient<'_>,
    metadata: &FileMetadata,
    incomplete: &Path,
    file: &mut File,
    mut n_existing: u64,
    sha256: &mut Sha256,
    progress_bar: &ProgressBar,
) -> Result<(String, u64, Option<u64>), HubError> {
    let mut range_start = (n_existing > 0).then_some(n_existing);
    // At most two rounds: a resume the server refuses becomes one full request.
    let (url, response) = loop {
        let (url, response) = client.get_content(&metadata.content_url, range_start)?;
        let restart = match (response.status().as_u16(), range_start) {
            (206, Some(start)) if content_range(&response).map(|(first, _)| first) == Some(start) => {
                tracing::info!(file = %client.filename(), n_bytes = start, "resuming download");
                break (url, response);
            }
            (200, _) => {
                if n_existing > 0 {
                    tracing::info!(file = %client.filename(), "server ignored the range; downloading from the start");
                    file.set_len(0).map_err(HubError::io("truncate", incomplete))?;
                    *sha256 = Sha256::new();
                    n_existing = 0;
                }
                break (url, response);
            }
            // A wrong range or "range not satisfiable": start over without a range.
            (206 | 416, Some(_)) => true,
            _ => false,
        };
        if !restart {
            return Err(client.status_error(&url, &response));
        }
        tracing::info!(file = %client.filename(), "cannot resume; downloading from the start");
        file.set_len(0).map_err(HubError::io("truncate", incomplete))?;
        *sha256 = Sha256::new();
        n_existing = 0;
        range_start = None;
    };

    let announced = match response.status().as_u16() {
        206 => content_range(&response).and_then(|(_, total)| total),
        _ => header(&response, "content-length").and_then(|length| length.trim().parse::<u64>().ok()),
    };
    let expected = metadata.size.or(announced);
    if let Some(expected) = expected {
        progress_bar.set_length(expected);
    }
    progress_bar.set_position(n_existing);

    let mut reader = response.into_body().into_reader();
    let mut buffer = vec![0u8; BUFFER_LEN];
    let mut n_on_disk = n_existing;
    loop {
        let n_read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n_read) => n_read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => {
                // What arrived is kept for the next call to resume from.
                file.flush().map_err(HubError::io("flush", incomplete))?;
                return Err(HubError::Truncated {
                    repo: client.repo_id(),
                    file: client.filename(),
                    url: without_query(&url),
                    received: n_on_disk,
                    expected,
                    source: Some(error),
                });
            }
        };
        let chunk = &buffer[..n_read];
        n_on_disk += n_read as u64;
        if let Some(expected) = expected {
            if n_on_disk > expected {
                discard(incomplete);
                return Err(HubError::SizeMismatch {
                    repo: client.repo_id(),
                    file: client.filename(),
                    url: without_query(&url),
                    received: n_on_disk,
                    expected,
                });
            }
        }
        file.write_all(chunk).map_err(HubError::io("write", incomplete))?;
        sha256.update(chunk);
        progress_bar.inc(n_read as u64);
    }
    Ok((url, n_on_disk, expected))
}

/// `(first byte, total size)` from `Content-Range: bytes {first}-{last}/{total or *}`.
fn content_range(response: &ureq::http::Response<ureq::Body>) -> Option<(u64, Option<u64>)> {
    parse_content_range(header(response, "content-range")?)
}

fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let range_and_total = value.trim().strip_prefix("bytes ")?;
    let (range, total) = range_and_total.split_once('/')?;
    let (first, _last) = range.split_once('-')?;
    let first = first.trim().parse::<u64>().ok()?;
    let total = match total.trim() {
        "*" => None,
        total => Some(total.parse::<u64>().ok()?),
    };
    Some((first, total))
}

/// Deletes a partial download that can never become valid; a failure is only logged because the
/// error being returned matters more.
fn discard(incomplete: &Path) {
    if let Err(error) = fs::remove_file(incomplete) {
        tracing::warn!(path = %incomplete.display(), %error, "cannot delete a bad partial download");
    }
}

/// A byte-counting bar on standard error (hidden when it is not a terminal), or none at all.
fn progress_bar(progress: ProgressMode, size: Option<u64>, filename: &str) -> ProgressBar {
    let target = match progress {
        ProgressMode::Auto => ProgressDrawTarget::stderr(),
        ProgressMode::Hidden => ProgressDrawTarget::hidden(),
    };
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let progress_bar = ProgressBar::with_draw_target(size, target).with_style(style);
    progress_bar.set_message(filename.to_owned());
    progress_bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, None)));
        assert_eq!(parse_content_range("bytes */200"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
