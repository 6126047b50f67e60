//! Downloads model files from a Hugging Face-compatible hub into the local cache that the Python
//! `huggingface_hub` library uses, so files fetched by either tool serve both.
//!
//! ```no_run
//! use dd_hub::{HubConfig, RepoFile, download};
//!
//! let config = HubConfig::from_env()?;
//! let config_json = download(&config, &RepoFile::new("EleutherAI/pythia-70m", "config.json"))?;
//! let weights = download(&config, &RepoFile::new("EleutherAI/pythia-70m", "model.safetensors"))?;
//! println!("{} {}", config_json.display(), weights.display());
//! # Ok::<(), dd_hub::HubError>(())
//! ```
//!
//! # Layout
//! - `config`: [`HubConfig`], read from `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`,
//!   `HF_HUB_OFFLINE`, `HF_TOKEN` as `huggingface_hub` reads them.
//! - `repo`: [`RepoFile`], the repository id, revision and file name, validated before use.
//! - `cache`: the `models--{org}--{name}/{blobs,refs,snapshots}` layout.
//! - `http`: the metadata and content requests.
//! - `transfer`: the resumable, verified download of one blob.
//! - `verify`: ETag normalisation and the SHA-256 / git SHA-1 checks.
//! - `error`: [`HubError`].
//!
//! # What [`download`] does
//! 1. A full 40-hex commit hash whose snapshot file is cached is returned with no request.
//! 2. Offline, the cache alone answers: `refs/{revision}` gives the commit, and a missing snapshot
//!    file is [`HubError::OfflineMiss`].
//! 3. Otherwise one `HEAD {endpoint}/{repo}/resolve/{revision}/{file}` reads `X-Repo-Commit`, the
//!    ETag (`X-Linked-Etag` for LFS files) and the size, following only relative redirects, so
//!    that a branch such as `main` always resolves to its current commit. This is
//!    `huggingface_hub`'s choice too: a cached branch costs one small request per call, and if
//!    the hub cannot be reached at all the cached snapshot is used with a warning.
//! 4. `refs/{revision}` is updated; a snapshot or blob already cached for that commit or ETag is
//!    linked and returned.
//! 5. Otherwise the content is fetched (following the redirect to the content server) into
//!    `blobs/{etag}.incomplete`, resuming with `Range` when that file exists, checked against the
//!    announced size and the ETag's hash, renamed to `blobs/{etag}`, and linked from
//!    `snapshots/{commit}/{file}` by a relative symlink (a copy where symlinks fail).
//!
//! The token goes only to the endpoint's own origin (scheme, host and port): never to a content
//! server on another host.
//!
//! # HTTP client
//! `ureq` 3 with rustls and the webpki root certificates: a small blocking client (no async
//! runtime) whose body reader streams, reports a connection closed before `Content-Length` as an
//! error, and lets us turn off redirect following so the metadata request sees the hub's own
//! answer. Proxies are taken from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` as usual. gzip is left
//! out: we ask for `identity` so sizes and hashes apply to the bytes on the wire.
//!
//! # Not done
//! Only model repositories (not datasets or spaces); no `.no_exist` markers; no cross-process
//! lock, so two processes downloading the same blob at once may both fail verification and
//! need a rerun, but never leave a bad blob in the cache.

mod cache;
mod config;
mod error;
mod http;
mod repo;
mod transfer;
mod verify;

use std::path::PathBuf;

pub use config::{DEFAULT_ENDPOINT, HubConfig, ProgressMode};
pub use error::HubError;
pub use repo::{DEFAULT_REVISION, RepoFile};

use cache::RepoCache;
use http::HubClient;
use repo::is_commit_hash;

/// Returns a local path to `repo_file`, downloading it into the cache if needed.
///
/// The path is `{cache_dir}/models--{org}--{name}/snapshots/{commit}/{filename}`; read it, do not
/// write to it (it is a link into `blobs/`, shared with other revisions and tools).
pub fn download(config: &HubConfig, repo_file: &RepoFile) -> Result<PathBuf, HubError> {
    repo_file.validate()?;
    let repo_cache = RepoCache::new(&config.cache_dir, &repo_file.repo_id);

    if is_commit_hash(&repo_file.revision) {
        if let Some(path) = repo_cache.cached_file(&repo_file.revision, &repo_file.filename)? {
            tracing::debug!(path = %path.display(), "cache hit for a commit hash");
            return Ok(path);
        }
    }
    if config.offline {
        return match repo_cache.cached_file(&repo_file.revision, &repo_file.filename)? {
            Some(path) => Ok(path),
            None => Err(HubError::OfflineMiss {
                repo: repo_file.repo_id.clone(),
                revision: repo_file.revision.clone(),
                file: repo_file.filename.clone(),
                cache_dir: config.cache_dir.clone(),
            }),
        };
    }

    let client = HubClient::new(config, repo_file)?;
    let metadata = match client.fetch_metadata() {
        Ok(metadata) => metadata,
        Err(error @ HubError::Connection { .. }) => {
            // As `huggingface_hub` does, an unreachable hub falls back to what the cache has.
            return match repo_cache.cached_file(&repo_file.revision, &repo_file.filename)? {
                Some(path) => {
                    tracing::warn!(%error, path = %path.display(), "hub unreachable; using the cached file");
                    Ok(path)
                }
                None => Err(error),
            };
        }
        Err(error) => return Err(error),
    };
    tracing::debug!(?metadata, "file metadata");

    repo_cache.write_ref(&repo_file.revision, &metadata.commit)?;
    let snapshot = repo_cache.snapshot_path(&metadata.commit, &repo_file.filename);
    if snapshot.is_file() {
        return Ok(snapshot);
    }
    if !repo_cache.blob_path(&metadata.etag).is_file() {
        tracing::info!(repo = %repo_file.repo_id, file = %repo_file.filename, size = ?metadata.size, "downloading");
        transfer::download_blob(&client, &repo_cache, &metadata, config.progress)?;
    }
    repo_cache.link_snapshot(&metadata.commit, &repo_file.filename, &metadata.etag)
}

/// Returns the cached path of `repo_file` without any network request, or `None` when it is not
/// cached. A branch or tag resolves through `refs/{revision}` to the commit last downloaded.
pub fn cached_path(config: &HubConfig, repo_file: &RepoFile) -> Result<Option<PathBuf>, HubError> {
    repo_file.validate()?;
    RepoCache::new(&config.cache_dir, &repo_file.repo_id).cached_file(&repo_file.revision, &repo_file.filename)
}
