//! Starts the real `deepdecipher` binary: fixture databases made with `synth`, and servers on
//! ephemeral ports that stop when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

pub(crate) const MODEL: &str = "synth-small";
pub(crate) const N_LAYERS: u64 = 2;
pub(crate) const N_NEURONS: u64 = 32;

pub(crate) fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deepdecipher"))
}

/// Runs the binary to completion and returns (exit code, stdout, stderr).
pub(crate) fn run(args: &[&str]) -> (i32, String, String) {
    let output = binary().args(args).env("RUST_LOG", "warn").output().expect("run deepdecipher");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A downloaded test asset, file or directory (`scripts/fetch-test-assets.sh` puts them in
/// `$DD_TEST_ASSETS`, by default `/var/tmp/deepdecipher-assets`).
pub(crate) fn asset(name: &str) -> PathBuf {
    let directory =
        std::env::var_os("DD_TEST_ASSETS").map_or_else(|| PathBuf::from("/var/tmp/deepdecipher-assets"), PathBuf::from);
    let path = directory.join(name);
    assert!(path.exists(), "test asset {} is missing: run scripts/fetch-test-assets.sh", path.display());
    path
}

/// A directory that lives for the whole test run.
pub(crate) fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir")).path()
}

/// The shared fixture: two synthetic models in one database, made once per test run.
pub(crate) fn fixture_db() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = scratch_dir().join("fixture.db");
        let path_text = path.to_str().expect("utf8 path");
        let (layers, neurons) = (N_LAYERS.to_string(), N_NEURONS.to_string());
        let (code, _, stderr) = run(&[
            "synth",
            path_text,
            "--name",
            MODEL,
            "--layers",
            &layers,
            "--neurons",
            &neurons,
            "--bottom-examples",
            "3",
            "--vocab",
            "5000",
        ]);
        assert_eq!(code, 0, "synth failed: {stderr}");
        let (code, _, stderr) =
            run(&["synth", path_text, "--name", "other", "--layers", "1", "--neurons", "8", "--tokens", "16"]);
        assert_eq!(code, 0, "synth failed: {stderr}");
        path
    })
}

/// A running server; killed on drop.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) child: Child,
}

impl Server {
    pub(crate) fn start(database: &Path, extra: &[&str]) -> Server {
        Server::start_logging(database, extra, "warn")
    }

    /// Starts a server whose log filter is `log`.
    pub(crate) fn start_logging(database: &Path, extra: &[&str], log: &str) -> Server {
        let mut child = binary()
            .arg("serve")
            .arg(database)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let addr = listening_addr(child.stdout.take().expect("stdout"));
        Server { addr, child }
    }
}

/// Reads the address from the server's first line of output, `listening on http://ADDR`.
pub(crate) fn listening_addr(stdout: std::process::ChildStdout) -> SocketAddr {
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read listening line");
    line.trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One server on the fixture, shared by the read-only tests.
///
/// Statics are never dropped, so the server runs under a shell that kills it when its standard
/// input closes, which happens when the test process exits, however it exits.
#[expect(clippy::zombie_processes, reason = "the shell exits with the test process; nothing is left to reap")]
pub(crate) fn shared() -> SocketAddr {
    static SERVER: OnceLock<(SocketAddr, std::sync::Mutex<std::process::ChildStdin>)> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let mut child = Command::new("sh")
                .args(["-c", "\"$0\" serve \"$1\" --addr 127.0.0.1:0 & pid=$!; read _; kill $pid; wait $pid"])
                .arg(env!("CARGO_BIN_EXE_deepdecipher"))
                .arg(fixture_db())
                .env("RUST_LOG", "warn")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn shared server");
            let stdin = child.stdin.take().expect("stdin");
            (listening_addr(child.stdout.take().expect("stdout")), std::sync::Mutex::new(stdin))
        })
        .0
}
