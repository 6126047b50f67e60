//! The on-disk cache, laid out as `huggingface_hub` lays it out so that both tools share files:
//!
//! ```text
//! {cache_dir}/models--{org}--{name}/
//!     blobs/{etag}                        the content, named by its normalised ETag
//!     blobs/{etag}.incomplete             a download in progress (resumed by the next call)
//!     refs/{revision}                     the commit hash a branch or tag last pointed to
//!     snapshots/{commit}/{filename}       relative symlink to ../../blobs/{etag}
//! ```
//!
//! A file is only ever moved into `blobs/` whole and verified, so a snapshot link never points at
//! partial content.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::HubError;
use crate::repo::is_commit_hash;

/// The cache folder of one model repository.
#[derive(Debug, Clone)]
pub(crate) struct RepoCache {
    /// `{cache_dir}/models--{org}--{name}`.
    root: PathBuf,
}

impl RepoCache {
    /// The folder for `repo_id` (already validated) inside `cache_dir`.
    pub(crate) fn new(cache_dir: &Path, repo_id: &str) -> RepoCache {
        RepoCache { root: cache_dir.join(format!("models--{}", repo_id.replace('/', "--"))) }
    }

    /// `blobs/{etag}`.
    pub(crate) fn blob_path(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    /// `blobs/{etag}.incomplete`, the name `huggingface_hub` also resumes from.
    pub(crate) fn incomplete_path(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{etag}.incomplete"))
    }

    /// `snapshots/{commit}/{filename}`.
    pub(crate) fn snapshot_path(&self, commit: &str, filename: &str) -> PathBuf {
        join_components(&self.root.join("snapshots").join(commit), filename)
    }

    /// The commit a revision resolves to from the cache alone: the revision itself when it is a
    /// commit hash, otherwise the content of `refs/{revision}` if present.
    pub(crate) fn cached_commit(&self, revision: &str) -> Result<Option<String>, HubError> {
        if is_commit_hash(revision) {
            return Ok(Some(revision.to_owned()));
        }
        let ref_path = join_components(&self.root.join("refs"), revision);
        let contents = match fs::read_to_string(&ref_path) {
            Ok(contents) => contents,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(HubError::io("read ref", ref_path)(error)),
        };
        let commit = contents.trim();
        if !is_safe_file_name(commit) {
            tracing::warn!(path = %ref_path.display(), "ignoring a ref file that does not hold a commit hash");
            return Ok(None);
        }
        Ok(Some(commit.to_owned()))
    }

    /// The cached snapshot file for a revision, if the revision resolves locally and the file is
    /// there (following the link, so a link to a deleted blob counts as missing).
    pub(crate) fn cached_file(&self, revision: &str, filename: &str) -> Result<Option<PathBuf>, HubError> {
        let Some(commit) = self.cached_commit(revision)? else {
            return Ok(None);
        };
        let snapshot = self.snapshot_path(&commit, filename);
        Ok(snapshot.is_file().then_some(snapshot))
    }

    /// Records that `revision` (a branch or tag) points at `commit`, unless it already does.
    pub(crate) fn write_ref(&self, revision: &str, commit: &str) -> Result<(), HubError> {
        if revision == commit || self.cached_commit(revision)?.as_deref() == Some(commit) {
            return Ok(());
        }
        let ref_path = join_components(&self.root.join("refs"), revision);
        write_atomically(&ref_path, commit.as_bytes())
    }

    /// Makes `snapshots/{commit}/{filename}` point at `blobs/{etag}` with a relative symlink, as
    /// `huggingface_hub` does, or holds a copy where the file system refuses symlinks.
    pub(crate) fn link_snapshot(&self, commit: &str, filename: &str, etag: &str) -> Result<PathBuf, HubError> {
        let snapshot = self.snapshot_path(commit, filename);
        if let Some(parent) = snapshot.parent() {
            fs::create_dir_all(parent).map_err(HubError::io("create directory", parent))?;
        }
        // A link left from an older download (perhaps to a blob since deleted) is replaced.
        if fs::symlink_metadata(&snapshot).is_ok() {
            fs::remove_file(&snapshot).map_err(HubError::io("remove old snapshot entry", &snapshot))?;
        }
        let target = relative_blob_target(filename, etag);
        match make_symlink(&target, &snapshot) {
            Ok(()) => return Ok(snapshot),
            // Another process linked the same file between our removal and our link.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && snapshot.is_file() => return Ok(snapshot),
            Err(error) => {
                tracing::warn!(path = %snapshot.display(), %error, "cannot create a symlink; copying the file instead");
            }
        }
        let blob = self.blob_path(etag);
        let temporary = temporary_sibling(&snapshot);
        fs::copy(&blob, &temporary).map_err(HubError::io("copy blob to", &temporary))?;
        fs::rename(&temporary, &snapshot).map_err(HubError::io("rename copy to", &snapshot))?;
        Ok(snapshot)
    }
}

/// Whether a name from a server or a ref file (an ETag, a commit hash) can be used as one file
/// name: ASCII letters, digits, `-`, `_` and `.`, not starting with `.`.
pub(crate) fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// Writes a small file by writing a sibling and renaming it over, so readers never see half.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), HubError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(HubError::io("create directory", parent))?;
    }
    let temporary = temporary_sibling(path);
    let mut file = fs::File::create(&temporary).map_err(HubError::io("create", &temporary))?;
    file.write_all(contents).map_err(HubError::io("write", &temporary))?;
    drop(file);
    fs::rename(&temporary, path).map_err(HubError::io("rename to", path))
}

/// `base` joined with each `/`-separated component of a validated relative path.
fn join_components(base: &Path, relative: &str) -> PathBuf {
    let mut path = base.to_path_buf();
    path.extend(relative.split('/'));
    path
}

/// The link target from `snapshots/{commit}/{filename}` to `blobs/{etag}`: one `..` per folder
/// of the file name plus two for `{commit}` and `snapshots`.
fn relative_blob_target(filename: &str, etag: &str) -> PathBuf {
    let n_components = filename.split('/').count();
    let mut target = PathBuf::new();
    for _ in 0..=n_components {
        target.push("..");
    }
    target.push("blobs");
    target.push(etag);
    target
}

/// A hidden, unique name next to `path` for writing before an atomic rename.
fn temporary_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n_temporary = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n_temporary}.tmp", std::process::id()))
}

#[cfg(unix)]
fn make_symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn make_symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(not(any(unix, windows)))]
fn make_symlink(_target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "no symlinks on this platform"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_folder_replaces_slashes_with_double_dashes() {
        let cache = RepoCache::new(Path::new("/cache"), "EleutherAI/pythia-70m");
        assert_eq!(cache.blob_path("abc"), Path::new("/cache/models--EleutherAI--pythia-70m/blobs/abc"));
        assert_eq!(
            cache.snapshot_path("c0ffee", "sub/x.bin"),
            Path::new("/cache/models--EleutherAI--pythia-70m/snapshots/c0ffee/sub/x.bin")
        );
        let single = RepoCache::new(Path::new("/cache"), "gpt2");
        assert_eq!(single.incomplete_path("e"), Path::new("/cache/models--gpt2/blobs/e.incomplete"));
    }

    #[test]
    fn symlink_targets_climb_one_level_per_folder() {
        assert_eq!(relative_blob_target("config.json", "e1"), Path::new("../../blobs/e1"));
        assert_eq!(relative_blob_target("a/b/x.bin", "e2"), Path::new("../../../../blobs/e2"));
    }

    #[test]
    fn safe_file_names_exclude_separators_and_dots() {
        assert!(is_safe_file_name("0123abcdef"));
        assert!(is_safe_file_name("a-b_c.d"));
        for name in ["", ".", "..", ".hidden", "a/b", "a\\b", "a b", "é"] {
            assert!(!is_safe_file_name(name), "{name:?}");
        }
    }

    #[test]
    fn refs_round_trip_and_nested_refs_work() -> Result<(), Box<dyn std::error::Error>> {
        let cache_dir = tempfile::tempdir()?;
        let cache = RepoCache::new(cache_dir.path(), "org/name");
        assert_eq!(cache.cached_commit("main")?, None);
        let commit = "0123456789abcdef0123456789abcdef01234567";
        cache.write_ref("main", commit)?;
        cache.write_ref("refs/pr/1", commit)?;
        assert_eq!(cache.cached_commit("main")?.as_deref(), Some(commit));
        assert_eq!(cache.cached_commit("refs/pr/1")?.as_deref(), Some(commit));
        let ref_file = cache_dir.path().join("models--org--name/refs/refs/pr/1");
        assert_eq!(fs::read_to_string(ref_file)?, commit);
        // A commit hash resolves to itself and never creates a ref file.
        cache.write_ref(commit, commit)?;
        assert!(!cache_dir.path().join("models--org--name/refs").join(commit).exists());
        Ok(())
    }

    #[test]
    fn relinking_replaces_a_dangling_link() -> Result<(), Box<dyn std::error::Error>> {
        let cache_dir = tempfile::tempdir()?;
        let cache = RepoCache::new(cache_dir.path(), "org/name");
        fs::create_dir_all(cache.blob_path("e1").parent().ok_or("no parent")?)?;
        fs::write(cache.blob_path("e1"), b"one")?;
        fs::write(cache.blob_path("e2"), b"two")?;
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let linked = cache.link_snapshot(commit, "dir/f.txt", "e1")?;
        assert_eq!(fs::read_link(&linked)?, Path::new("../../../blobs/e1"));
        assert_eq!(cache.cached_file(commit, "dir/f.txt")?, Some(linked.clone()));
        fs::remove_file(cache.blob_path("e1"))?;
        assert_eq!(cache.cached_file(commit, "dir/f.txt")?, None, "a dangling link is a miss");
        let relinked = cache.link_snapshot(commit, "dir/f.txt", "e2")?;
        assert_eq!(fs::read(relinked)?, b"two");
        Ok(())
    }
}
