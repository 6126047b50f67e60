//! The fetcher against the fixture server: gaps, retried faults, truncated bodies, failures.

use std::time::Duration;

use dd_import::testing::{Fault, FixtureServer};
use dd_import::{DatasetLocation, FetchConfig, Fetcher};

fn fetcher(url: String) -> Fetcher {
    let config = FetchConfig { retry_delay: Duration::from_millis(5), max_retries: 3, ..FetchConfig::default() };
    Fetcher::new(DatasetLocation::Http(url), config)
}

#[test]
fn files_gaps_retries_and_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("d")).expect("mkdir");
    std::fs::write(dir.path().join("d/a.json"), vec![b'x'; 4000]).expect("write");
    std::fs::write(dir.path().join("d/b.json"), b"b").expect("write");
    std::fs::write(dir.path().join("d/c.json"), b"c").expect("write");
    let server = FixtureServer::serve(dir.path()).expect("serve");
    server.set_fault("d/a.json", Fault::Truncated { times: 2 });
    server.set_fault("d/b.json", Fault::Status { status: 503, times: 2 });
    server.set_fault("d/c.json", Fault::Status { status: 500, times: 100 });
    let fetcher = fetcher(server.url());

    assert_eq!(fetcher.get("d/a.json").expect("retried past truncation").map(|b| b.len()), Some(4000));
    assert_eq!(server.requests_for("d/a.json"), 3);
    assert_eq!(fetcher.get("d/b.json").expect("retried past 503"), Some(b"b".to_vec()));
    assert_eq!(fetcher.get("d/missing.json").expect("a gap"), None);
    let failure = fetcher.get("d/c.json").expect_err("500 every time");
    assert!(failure.reason.contains("status 500") && failure.reason.contains("4 attempts"), "{failure}");
    assert_eq!(server.requests_for("d/c.json"), 4);
    assert_eq!(fetcher.totals().retries, 2 + 2 + 3);
}
