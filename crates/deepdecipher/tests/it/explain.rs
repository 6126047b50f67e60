//! `deepdecipher explain` as a user runs it: through an OpenAI-compatible endpoint (the fake
//! server on 127.0.0.1, answering in the real shape, with 429s and 500s on the way), killed with
//! SIGKILL mid-run and started again without duplicates; and locally with SmolLM2 explaining and
//! simulating, all-MiniLM-L6-v2 embedding, and the served search finding what it wrote.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dd_data::{Explanations, NeuronDataKind, NeuronRecord};
use dd_explain::testing::{FakeServer, Reply};
use dd_store::{ReadConfig, SqliteStore, StoreRead};

use crate::server::{asset, binary};

/// The tiny GGUF fixture: two layers, its own 320-token BPE.
fn fixture_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dd-model/tests/fixtures/llama-gguf/model.gguf")
}

/// A recording of `model` over some Shakespeare.
fn recorded(dir: &Path, model: &Path, tokens: &str) -> PathBuf {
    let database = dir.join("recorded.db");
    let output = binary()
        .args(["record", model.to_str().expect("utf-8"), asset("shakespeare").to_str().expect("utf-8"), "-o"])
        .arg(&database)
        .args(["--tokens", tokens, "--context", "64", "--no-weights"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("record");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    database
}

/// Every neuron's stored explanations.
fn explanations(database: &Path) -> Vec<((u32, u32), Explanations)> {
    let config = ReadConfig { immutable: false, n_connections: 1, ..ReadConfig::serving() };
    let Ok(store) = SqliteStore::open(database, &config) else { return Vec::new() };
    let Some(model) = store.catalog().models().first().cloned() else { return Vec::new() };
    let source = &model.sources[0];
    let mut found = Vec::new();
    for layer in 0..model.metadata.n_layers as u32 {
        for index in 0..model.metadata.d_mlp as u32 {
            if let Ok(Some(NeuronRecord::Explanations(e))) =
                store.neuron_record(source, layer, index, NeuronDataKind::Explanations)
            {
                found.push(((layer, index), e));
            }
        }
    }
    found
}

/// Answers as an explainer and as a simulator would: the simulator's prompt says how many tokens
/// it holds, and tokens with an `e` get a high prediction.
fn respond(request: &dd_explain::testing::RecordedRequest) -> Reply {
    let last = request.last_message();
    if let Some(rest) = last.split("The document's ").nth(1) {
        let n: usize = rest.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let lines: Vec<&str> =
            last.lines().filter(|line| line.split(' ').next().is_some_and(|p| p.parse::<usize>().is_ok())).collect();
        let values: Vec<String> =
            (0..n).map(|i| if lines.get(i).is_some_and(|l| l.contains('e')) { "8" } else { "0" }.to_owned()).collect();
        return Reply::Ok(format!("{{\"activations\": [{}]}}", values.join(", ")));
    }
    Reply::Ok(" words with the letter e.".to_owned())
}

const KEY_VARIABLE: &str = "DD_TEST_EXPLAIN_KEY";
const KEY: &str = "sk-test-7f3a9c1e5b";

fn explain_via(server: &FakeServer, database: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = binary();
    command
        .arg("explain")
        .arg(database)
        .args(["--endpoint", &server.url(), "--endpoint-model", "fake-gpt", "--api-key-env", KEY_VARIABLE])
        .args(extra)
        .env(KEY_VARIABLE, KEY)
        .env("RUST_LOG", "warn");
    command
}

#[test]
fn an_endpoint_run_explains_scores_and_survives_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = recorded(dir.path(), &fixture_model(), "20000");
    let server = FakeServer::start(respond);
    // The first requests meet a rate limit and a server error; the client retries them.
    server.script([Reply::Status(429, Some(0)), Reply::Status(500, None)]);
    let output = explain_via(
        &server,
        &database,
        &["--top-interesting", "6", "--retries", "3", "--simulator", "endpoint", "--concurrency", "3"],
    )
    .output()
    .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("explained 6 neurons"), "{stderr}");
    // The 429 and the 500 were each retried once: the report counts both.
    let retried: u64 = stderr
        .split(" retried")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retry count: {stderr}"));
    assert!(retried >= 2, "{stderr}");
    assert!(!stderr.contains(KEY), "the key reached the output: {stderr}");

    let stored = explanations(&database);
    assert_eq!(stored.len(), 6, "one record per chosen neuron");
    for (neuron, record) in &stored {
        let generated: Vec<_> = record.explanations.iter().filter(|e| e.origin == "generated").collect();
        assert_eq!(generated.len(), 1, "{neuron:?}");
        let explanation = generated[0];
        assert_eq!(explanation.text, "words with the letter e");
        assert_eq!(explanation.author.as_deref(), Some("fake-gpt"));
        let provenance = explanation.provenance.as_ref().expect("provenance");
        assert_eq!(provenance.prompt_version, "oai-token-activation-pairs/1");
        assert!(provenance.prompt.contains("the main thing this neuron does is find"), "{}", provenance.prompt);
        assert_eq!(provenance.simulator.as_deref(), Some("fake-gpt (json-per-token/1)"));
        assert!(provenance.created.starts_with("20") && provenance.created.ends_with('Z'), "{}", provenance.created);
        // Scored where defined; the simulated sequences kept for the page line up with their tokens.
        for sequence in &explanation.simulations {
            assert_eq!(sequence.token_ids.len(), sequence.simulated_activations.len());
            assert_eq!(sequence.token_ids.len(), sequence.true_activations.len());
        }
    }
    assert!(
        stored.iter().any(|(_, r)| r.explanations[0].score("ev_correlation_score").is_some()),
        "no neuron was scored"
    );
    let bytes = std::fs::read(&database).expect("read database");
    assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()), "the key reached the database");
    let requests = server.requests();
    assert!(requests.iter().all(|r| r.header("authorization") == Some(&*format!("Bearer {KEY}"))));
    assert!(server.max_in_flight() <= 3, "{} requests in flight", server.max_in_flight());

    // A second run finds them explained and asks nothing.
    let before = server.n_requests();
    let output = explain_via(&server, &database, &["--top-interesting", "6", "--simulator", "endpoint"])
        .output()
        .expect("rerun");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("6 already had an explanation"), "{stderr}");
    assert_eq!(server.n_requests(), before);
}

#[test]
fn failures_are_summarised_and_a_missing_key_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = recorded(dir.path(), &fixture_model(), "20000");
    let server = FakeServer::start(|_| Reply::Malformed);
    let output = explain_via(&server, &database, &["--top-interesting", "2", "--retries", "1", "--simulator", "none"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed 2/") || stderr.contains("failed 0/") || stderr.contains("failed 1/"), "{stderr}");
    assert!(explanations(&database).is_empty(), "nothing half-written");

    let output = binary()
        .arg("explain")
        .arg(&database)
        .args(["--endpoint", &server.url(), "--endpoint-model", "m", "--api-key-env", "DD_TEST_UNSET_VARIABLE"])
        .env_remove("DD_TEST_UNSET_VARIABLE")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("DD_TEST_UNSET_VARIABLE"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_killed_run_resumes_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = recorded(dir.path(), &fixture_model(), "20000");
    // Slow answers: the run is still going when a few neurons are committed.
    let server = FakeServer::start(|request| match respond(request) {
        Reply::Ok(text) => Reply::Slow(Duration::from_millis(150), text),
        other => other,
    });
    let args = ["--top-interesting", "10", "--commit-every", "1", "--concurrency", "1", "--simulator", "endpoint"];
    let mut child = explain_via(&server, &database, &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while explanations(&database).len() < 3 {
        assert!(child.try_wait().expect("poll").is_none(), "the run ended before three neurons were committed");
        assert!(started.elapsed() < Duration::from_secs(120), "nothing committed after two minutes");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    let before = explanations(&database).len();
    assert!(before < 10, "the run finished before it was killed");
    let output = explain_via(&server, &database, &args).output().expect("resumed run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{before} already had an explanation")), "{stderr}");
    let stored = explanations(&database);
    assert_eq!(stored.len(), 10);
    for (neuron, record) in stored {
        assert_eq!(record.explanations.iter().filter(|e| e.origin == "generated").count(), 1, "{neuron:?}");
    }
}

/// SmolLM2 explains and simulates two of its own neurons; all-MiniLM-L6-v2 embeds them; the
/// served search finds them by meaning.
#[test]
fn smollm2_explains_simulates_and_the_search_finds_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let smollm2 = asset("SmolLM2-135M-Instruct.Q4_1.gguf");
    let database = recorded(dir.path(), &smollm2, "6000");
    let minilm = asset("all-MiniLM-L6-v2");
    let output = binary()
        .arg("explain")
        .arg(&database)
        .args(["--top-interesting", "2", "--local"])
        .arg(&smollm2)
        .arg("--embedder")
        .arg(&minilm)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("explained 2 neurons"), "{stderr}");
    let stored = explanations(&database);
    assert_eq!(stored.len(), 2);
    for (neuron, record) in &stored {
        let explanation = &record.explanations[0];
        assert!(!explanation.text.is_empty(), "{neuron:?}");
        assert_eq!(explanation.author.as_deref(), Some("SmolLM2-135M-Instruct"));
        let provenance = explanation.provenance.as_ref().expect("provenance");
        assert_eq!(provenance.simulator.as_deref(), Some("SmolLM2-135M-Instruct (oai-all-at-once/1)"));
        let embedding = explanation.embedding.as_ref().expect("embedded");
        assert_eq!((embedding.model.as_str(), embedding.values.len()), ("all-MiniLM-L6-v2", 384));
        // The local simulator gives expected values on every token of the scored sequences.
        let simulated = &explanation.simulations[0];
        assert!(!simulated.simulated_activations.is_empty());
        assert!(simulated.simulated_activations.iter().all(|v| v.is_finite()));
    }

    // Served with the encoder, the search by the explanation's own words ranks its neuron first.
    let ((layer, index), record) = &stored[0];
    let text = record.explanations[0].text.clone();
    let server = crate::server::Server::start(&database, &["--embedder", minilm.to_str().expect("utf-8")]);
    let response = crate::http::get(
        server.addr,
        &format!("/api/SmolLM2-135M-Instruct/explanation-search?q={}&limit=2", url_encode(&text)),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    let first = &body["data"]["explanations"][0];
    assert_eq!(
        (first["layer"].as_u64(), first["neuron"].as_u64()),
        (Some(u64::from(*layer)), Some(u64::from(*index))),
        "{body}"
    );
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
