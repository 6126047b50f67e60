//! Integration tests of `dd_hub::download` against a real HTTP hub on 127.0.0.1 (see `server.rs`):
//! the cache layout, cache hits, offline mode, resuming, checksums, errors and the token's path.

mod server;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dd_hub::{HubConfig, HubError, ProgressMode, RepoFile, cached_path, download};
use server::{FileFixture, Fixtures, RepoFixture, TestServer, git_sha1_hex, sha256_hex};
use tempfile::TempDir;

const REPO: &str = "EleutherAI/pythia-tiny";
const COMMIT: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const NEW_COMMIT: &str = "ffffeeeeddddccccbbbbaaaa9999888877776666";
const GATED_REPO: &str = "meta/gated-model";
const GATED_COMMIT: &str = "0000111122223333444455556666777788889999";
const TOKEN: &str = "hf_test_token";
const CONFIG_JSON: &[u8] = b"{\"hidden_size\": 8, \"num_hidden_layers\": 2}\n";

/// A hub, a separate content server (another port, so another origin), shared fixtures and an
/// empty cache directory.
struct Setup {
    hub: TestServer,
    content_server: TestServer,
    fixtures: Arc<Fixtures>,
    cache_dir: TempDir,
}

/// Deterministic bytes that are not all alike, so a misplaced range shows.
fn weights(n_bytes: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n_bytes)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) as u8
        })
        .collect()
}

fn model_weights() -> Vec<u8> {
    weights(300_000, 1)
}

fn subdir_weights() -> Vec<u8> {
    weights(5_000, 2)
}

fn setup() -> Setup {
    let fixtures = Arc::new(Fixtures::default());
    let files = BTreeMap::from([
        ("config.json".to_owned(), FileFixture { content: CONFIG_JSON.to_vec(), lfs: false }),
        ("model.safetensors".to_owned(), FileFixture { content: model_weights(), lfs: true }),
        ("subdir/x.bin".to_owned(), FileFixture { content: subdir_weights(), lfs: true }),
    ]);
    fixtures.set_repo(REPO, RepoFixture { commit: COMMIT.to_owned(), files, gated_token: None });
    let gated_files =
        BTreeMap::from([("model.safetensors".to_owned(), FileFixture { content: weights(10_000, 3), lfs: true })]);
    fixtures.set_repo(
        GATED_REPO,
        RepoFixture { commit: GATED_COMMIT.to_owned(), files: gated_files, gated_token: Some(TOKEN.to_owned()) },
    );
    let hub = TestServer::start(Arc::clone(&fixtures));
    let content_server = TestServer::start(Arc::clone(&fixtures));
    hub.redirect_lfs_to(&content_server);
    Setup { hub, content_server, fixtures, cache_dir: tempfile::tempdir().expect("temporary directory") }
}

fn config(setup: &Setup) -> HubConfig {
    HubConfig {
        endpoint: setup.hub.url(),
        cache_dir: setup.cache_dir.path().to_path_buf(),
        offline: false,
        token: None,
        timeout: Duration::from_secs(30),
        progress: ProgressMode::Hidden,
    }
}

fn repo_dir(setup: &Setup) -> PathBuf {
    setup.cache_dir.path().join("models--EleutherAI--pythia-tiny")
}

/// Names in a directory, sorted; empty when it does not exist.
fn entries(dir: &Path) -> Vec<String> {
    let Ok(read_dir) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> =
        read_dir.map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Every request of both servers, as `METHOD path` lines.
fn request_lines(setup: &Setup) -> Vec<String> {
    let hub = setup.hub.requests().into_iter().map(|request| format!("hub {} {}", request.method, request.path));
    let content = setup
        .content_server
        .requests()
        .into_iter()
        .map(|request| format!("content {} {}", request.method, request.path));
    hub.chain(content).collect()
}

/// A fresh download writes blobs named by ETag, `refs/main`, and relative snapshot links that
/// resolve to the right bytes, for LFS files (redirected) and git files (served by the hub).
#[test]
fn fresh_download_fills_the_huggingface_hub_cache_layout() {
    let setup = setup();
    let config = config(&setup);

    let weights_path = download(&config, &RepoFile::new(REPO, "model.safetensors")).expect("LFS download");
    let config_path = download(&config, &RepoFile::new(REPO, "config.json")).expect("git file download");
    let subdir_path = download(&config, &RepoFile::new(REPO, "subdir/x.bin")).expect("subdir download");

    let repo_dir = repo_dir(&setup);
    let snapshot_dir = repo_dir.join("snapshots").join(COMMIT);
    assert_eq!(weights_path, snapshot_dir.join("model.safetensors"));
    assert_eq!(config_path, snapshot_dir.join("config.json"));
    assert_eq!(subdir_path, snapshot_dir.join("subdir").join("x.bin"));
    assert_eq!(fs::read(&weights_path).expect("read weights"), model_weights());
    assert_eq!(fs::read(&config_path).expect("read config"), CONFIG_JSON);
    assert_eq!(fs::read(&subdir_path).expect("read subdir file"), subdir_weights());

    let weights_etag = sha256_hex(&model_weights());
    let config_etag = git_sha1_hex(CONFIG_JSON);
    let subdir_etag = sha256_hex(&subdir_weights());
    let mut expected_blobs = vec![weights_etag.clone(), config_etag.clone(), subdir_etag.clone()];
    expected_blobs.sort();
    assert_eq!(entries(&repo_dir.join("blobs")), expected_blobs, "only whole blobs, no .incomplete");
    assert_eq!(fs::read_to_string(repo_dir.join("refs").join("main")).expect("refs/main"), COMMIT);

    assert_eq!(fs::read_link(&weights_path).expect("weights link"), Path::new("../../blobs").join(&weights_etag));
    assert_eq!(fs::read_link(&config_path).expect("config link"), Path::new("../../blobs").join(&config_etag));
    assert_eq!(fs::read_link(&subdir_path).expect("subdir link"), Path::new("../../../blobs").join(&subdir_etag));

    // Metadata by HEAD without following the redirect; content from the content server for LFS
    // files and from the hub for git files.
    let expected_requests = [
        "hub HEAD /EleutherAI/pythia-tiny/resolve/main/model.safetensors".to_owned(),
        "hub HEAD /EleutherAI/pythia-tiny/resolve/main/config.json".to_owned(),
        "hub GET /EleutherAI/pythia-tiny/resolve/main/config.json".to_owned(),
        "hub HEAD /EleutherAI/pythia-tiny/resolve/main/subdir/x.bin".to_owned(),
        format!("content GET /lfs-cdn/{weights_etag}"),
        format!("content GET /lfs-cdn/{subdir_etag}"),
    ];
    assert_eq!(request_lines(&setup), expected_requests);
    let user_agent = setup.hub.requests()[0].header("user-agent").unwrap_or_default().to_owned();
    assert!(user_agent.starts_with("deepdecipher/"), "{user_agent}");
}

/// Once cached, a commit-hash revision and offline mode need no request at all; a branch online
/// costs exactly one HEAD to see whether it moved, and no content.
#[test]
fn cached_files_are_served_without_transfers() {
    let setup = setup();
    let config = config(&setup);
    let first = download(&config, &RepoFile::new(REPO, "model.safetensors")).expect("first download");
    let n_hub = setup.hub.n_requests();
    let n_content = setup.content_server.n_requests();

    let by_commit = download(&config, &RepoFile::at_revision(REPO, COMMIT, "model.safetensors")).expect("by commit");
    assert_eq!(by_commit, first);
    assert_eq!((setup.hub.n_requests(), setup.content_server.n_requests()), (n_hub, n_content));

    let offline = HubConfig { offline: true, ..config.clone() };
    let offline_path = download(&offline, &RepoFile::new(REPO, "model.safetensors")).expect("offline hit");
    assert_eq!(offline_path, first);
    assert_eq!((setup.hub.n_requests(), setup.content_server.n_requests()), (n_hub, n_content));

    assert_eq!(cached_path(&config, &RepoFile::new(REPO, "model.safetensors")).expect("lookup"), Some(first.clone()));
    assert_eq!(cached_path(&config, &RepoFile::new(REPO, "config.json")).expect("lookup"), None);

    let by_branch = download(&config, &RepoFile::new(REPO, "model.safetensors")).expect("by branch");
    assert_eq!(by_branch, first);
    assert_eq!(setup.hub.n_requests(), n_hub + 1);
    assert_eq!(setup.hub.requests().last().map(|request| request.method.clone()).as_deref(), Some("HEAD"));
    assert_eq!(setup.content_server.n_requests(), n_content);
}

/// Offline, a file never downloaded is an error naming the repository, the file, the cache and the
/// switch, and no request is made.
#[test]
fn offline_miss_is_a_clear_error() {
    let setup = setup();
    let offline = HubConfig { offline: true, ..config(&setup) };
    let error = download(&offline, &RepoFile::new(REPO, "config.json")).expect_err("offline miss");
    assert!(matches!(error, HubError::OfflineMiss { .. }), "{error:?}");
    let message = error.to_string();
    for expected in [REPO, "config.json", "HF_HUB_OFFLINE", &setup.cache_dir.path().display().to_string()] {
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
    assert_eq!(setup.hub.n_requests(), 0);
}

/// A transfer cut off halfway fails as Truncated and keeps the partial file; the next call asks
/// for the rest with `Range` and ends with the right bytes.
#[test]
fn interrupted_download_resumes_with_a_range_request() {
    let setup = setup();
    let config = config(&setup);
    let repo_file = RepoFile::new(REPO, "model.safetensors");
    let etag = sha256_hex(&model_weights());
    let incomplete = repo_dir(&setup).join("blobs").join(format!("{etag}.incomplete"));

    setup.content_server.set_behaviour(|behaviour| behaviour.truncate_next_body = true);
    let error = download(&config, &repo_file).expect_err("cut-off transfer");
    let HubError::Truncated { received, expected, .. } = &error else {
        panic!("expected Truncated, got {error:?}");
    };
    assert_eq!(*expected, Some(model_weights().len() as u64));
    assert!(*received > 0 && *received < model_weights().len() as u64, "{received}");
    assert_eq!(fs::metadata(&incomplete).expect("partial file kept").len(), *received);
    assert!(error.to_string().contains("resume"), "{error}");
    assert!(!repo_dir(&setup).join("snapshots").exists());

    let path = download(&config, &repo_file).expect("resumed download");
    assert_eq!(fs::read(&path).expect("read"), model_weights());
    assert!(!incomplete.exists());
    let last = setup.content_server.requests().pop().expect("a content request");
    assert_eq!(last.header("range"), Some(format!("bytes={received}-").as_str()));
}

/// A server that answers a `Range` request with the whole file (200) gets a clean restart, not
/// the new bytes appended to the old ones.
#[test]
fn full_answer_to_a_range_request_restarts_the_file() {
    let setup = setup();
    let config = config(&setup);
    let repo_file = RepoFile::new(REPO, "model.safetensors");

    setup.content_server.set_behaviour(|behaviour| behaviour.truncate_next_body = true);
    download(&config, &repo_file).expect_err("cut-off transfer");
    setup.content_server.set_behaviour(|behaviour| behaviour.ignore_range = true);

    let path = download(&config, &repo_file).expect("restarted download");
    assert_eq!(fs::read(&path).expect("read"), model_weights());
    let last = setup.content_server.requests().pop().expect("a content request");
    assert!(last.header("range").is_some(), "a resume was tried");
}

/// Content that does not hash to the ETag is rejected, for LFS (SHA-256) and git (SHA-1) files,
/// and nothing stays in `blobs/` or `snapshots/`.
#[test]
fn corrupted_content_fails_the_checksum_and_leaves_nothing() {
    let setup = setup();
    let config = config(&setup);
    setup.content_server.set_behaviour(|behaviour| behaviour.corrupt_content = true);
    setup.hub.set_behaviour(|behaviour| behaviour.corrupt_content = true);

    let lfs_error = download(&config, &RepoFile::new(REPO, "model.safetensors")).expect_err("corrupt LFS file");
    assert!(matches!(lfs_error, HubError::ChecksumMismatch { .. }), "{lfs_error:?}");
    let message = lfs_error.to_string();
    assert!(message.contains("sha256") && message.contains(&sha256_hex(&model_weights())), "{message}");

    let git_error = download(&config, &RepoFile::new(REPO, "config.json")).expect_err("corrupt git file");
    assert!(matches!(git_error, HubError::ChecksumMismatch { .. }), "{git_error:?}");
    assert!(git_error.to_string().contains("git-sha1"), "{git_error}");

    assert_eq!(entries(&repo_dir(&setup).join("blobs")), Vec::<String>::new());
    assert_eq!(entries(&repo_dir(&setup).join("snapshots")), Vec::<String>::new());
}

/// The hub's `X-Error-Code` tells a missing repository, revision and file apart, and a gated
/// repository asks for HF_TOKEN.
#[test]
fn hub_errors_name_what_is_missing_and_what_to_do() {
    let setup = setup();
    let config = config(&setup);
    let check = |repo_file: RepoFile, is_expected: fn(&HubError) -> bool, words: &[&str]| {
        let error = download(&config, &repo_file).expect_err("an error");
        assert!(is_expected(&error), "{error:?}");
        let message = error.to_string();
        for word in words {
            assert!(message.contains(word), "{message:?} lacks {word:?}");
        }
    };

    check(
        RepoFile::new("nobody/nothing", "config.json"),
        |error| matches!(error, HubError::RepoNotFound { .. }),
        &["nobody/nothing", "not found", "HF_TOKEN"],
    );
    check(
        RepoFile::new(REPO, "missing.bin"),
        |error| matches!(error, HubError::FileNotFound { .. }),
        &[REPO, "missing.bin", "not found"],
    );
    check(
        RepoFile::at_revision(REPO, "v9", "config.json"),
        |error| matches!(error, HubError::RevisionNotFound { .. }),
        &[REPO, "\"v9\"", "config.json"],
    );
    check(
        RepoFile::new(GATED_REPO, "model.safetensors"),
        |error| matches!(error, HubError::Unauthorized { status: 401, gated: true, .. }),
        &[GATED_REPO, "model.safetensors", "gated", "HF_TOKEN"],
    );
    let wrong_token = HubConfig { token: Some("hf_wrong".to_owned()), ..config.clone() };
    let error = download(&wrong_token, &RepoFile::new(GATED_REPO, "model.safetensors")).expect_err("wrong token");
    assert!(matches!(error, HubError::Unauthorized { status: 403, .. }), "{error:?}");
    assert!(!repo_dir(&setup).join("refs").exists(), "no ref is written for a failed request");
}

/// The token goes to the hub as a Bearer token but not to a content server on another port,
/// while a content URL on the hub's own origin keeps it.
#[test]
fn token_reaches_the_hub_but_not_another_origin() {
    let setup = setup();
    let with_token = HubConfig { token: Some(TOKEN.to_owned()), ..config(&setup) };
    let path = download(&with_token, &RepoFile::new(GATED_REPO, "model.safetensors")).expect("gated download");
    assert_eq!(fs::read(path).expect("read"), weights(10_000, 3));

    let bearer = format!("Bearer {TOKEN}");
    let hub_requests = setup.hub.requests();
    assert!(!hub_requests.is_empty());
    for request in &hub_requests {
        assert_eq!(request.header("authorization"), Some(bearer.as_str()), "{request:?}");
    }
    let content_requests = setup.content_server.requests();
    assert_eq!(content_requests.len(), 1);
    assert_eq!(content_requests[0].header("authorization"), None);

    // A hub that serves LFS content itself gets the token on the content request too.
    let same_origin_hub = TestServer::start(Arc::clone(&setup.fixtures));
    let cache_dir = tempfile::tempdir().expect("temporary directory");
    let same_origin =
        HubConfig { endpoint: same_origin_hub.url(), cache_dir: cache_dir.path().to_path_buf(), ..with_token.clone() };
    download(&same_origin, &RepoFile::new(GATED_REPO, "model.safetensors")).expect("same-origin download");
    let requests = same_origin_hub.requests();
    let content_request =
        requests.iter().find(|request| request.path.starts_with("/lfs-cdn/")).expect("a content request");
    assert_eq!(content_request.header("authorization"), Some(bearer.as_str()));
}

/// `HF_ENDPOINT` and `HF_HOME` given through the lookup closure decide where requests go and
/// where files land.
#[test]
fn endpoint_and_home_from_the_lookup_are_honoured() {
    let setup = setup();
    let hf_home = tempfile::tempdir().expect("temporary directory");
    let endpoint = format!("{}/", setup.hub.url());
    let hf_home_text = hf_home.path().to_string_lossy().into_owned();
    let mut config = HubConfig::from_lookup(|name| match name {
        "HF_ENDPOINT" => Some(endpoint.clone()),
        "HF_HOME" => Some(hf_home_text.clone()),
        _ => None,
    })
    .expect("configuration");
    config.progress = ProgressMode::Hidden;

    let path = download(&config, &RepoFile::new(REPO, "config.json")).expect("download");
    assert_eq!(
        path,
        hf_home.path().join("hub/models--EleutherAI--pythia-tiny/snapshots").join(COMMIT).join("config.json")
    );
    assert_eq!(fs::read(path).expect("read"), CONFIG_JSON);
    assert_eq!(setup.hub.n_requests(), 2);
}

/// When a branch moves, the new commit gets its own snapshot and `refs/main` follows, while a file
/// whose content did not change reuses its blob without a transfer.
#[test]
fn moved_branch_gets_a_new_snapshot_sharing_unchanged_blobs() {
    let setup = setup();
    let config = config(&setup);
    let old_weights = download(&config, &RepoFile::new(REPO, "model.safetensors")).expect("download");
    let old_config = download(&config, &RepoFile::new(REPO, "config.json")).expect("download");
    let n_content = setup.content_server.n_requests();

    let new_config_json = b"{\"hidden_size\": 16}\n".to_vec();
    setup.fixtures.update_repo(REPO, |repo| {
        repo.commit = NEW_COMMIT.to_owned();
        repo.files.insert("config.json".to_owned(), FileFixture { content: new_config_json.clone(), lfs: false });
    });

    let new_weights = download(&config, &RepoFile::new(REPO, "model.safetensors")).expect("download");
    let new_config = download(&config, &RepoFile::new(REPO, "config.json")).expect("download");
    assert_eq!(new_weights, repo_dir(&setup).join("snapshots").join(NEW_COMMIT).join("model.safetensors"));
    assert_eq!(fs::read(&new_weights).expect("read"), model_weights());
    assert_eq!(setup.content_server.n_requests(), n_content, "the unchanged blob is reused");
    assert_eq!(fs::read(&new_config).expect("read"), new_config_json);
    assert_eq!(fs::read(&old_config).expect("read"), CONFIG_JSON, "the old snapshot is intact");
    assert_eq!(fs::read(&old_weights).expect("read"), model_weights());
    assert_eq!(fs::read_to_string(repo_dir(&setup).join("refs/main")).expect("refs/main"), NEW_COMMIT);
}

/// A hub that cannot be reached falls back to the cached snapshot of the branch, as
/// `huggingface_hub` does, and is an error for files never cached.
#[test]
fn unreachable_hub_falls_back_to_the_cache() {
    let setup = setup();
    let path = download(&config(&setup), &RepoFile::new(REPO, "config.json")).expect("download");

    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let unreachable = HubConfig { endpoint: format!("http://127.0.0.1:{closed_port}"), ..config(&setup) };
    assert_eq!(download(&unreachable, &RepoFile::new(REPO, "config.json")).expect("fallback"), path);
    let error = download(&unreachable, &RepoFile::new(REPO, "model.safetensors")).expect_err("not cached");
    assert!(matches!(error, HubError::Connection { .. }), "{error:?}");
    assert!(error.to_string().contains("model.safetensors"), "{error}");
}

/// Names that could escape the cache are refused before any request.
#[test]
fn unsafe_names_are_refused_without_a_request() {
    let setup = setup();
    let config = config(&setup);
    for repo_file in [
        RepoFile::new(REPO, "../../etc/passwd"),
        RepoFile::new("../escape", "config.json"),
        RepoFile::at_revision(REPO, "../../main", "config.json"),
    ] {
        let error = download(&config, &repo_file).expect_err("refused");
        assert!(matches!(error, HubError::InvalidRepoFile { .. }), "{error:?}");
    }
    assert_eq!(setup.hub.n_requests(), 0);
}

/// A partial file that already holds every byte (a run stopped between transfer and rename) is
/// verified and moved into place without a content request.
#[test]
fn complete_partial_file_is_verified_without_a_transfer() {
    let setup = setup();
    let etag = sha256_hex(&model_weights());
    let blobs_dir = repo_dir(&setup).join("blobs");
    fs::create_dir_all(&blobs_dir).expect("create blobs");
    fs::write(blobs_dir.join(format!("{etag}.incomplete")), model_weights()).expect("write partial file");

    let path = download(&config(&setup), &RepoFile::new(REPO, "model.safetensors")).expect("download");
    assert_eq!(fs::read(path).expect("read"), model_weights());
    assert_eq!(setup.content_server.n_requests(), 0);
    assert_eq!(entries(&blobs_dir), vec![etag]);
}
