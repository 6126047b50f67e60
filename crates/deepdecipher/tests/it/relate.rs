//! `relate` and `compare` as a user runs them: two training checkpoints of a fixture model recorded
//! with `record` over Shakespeare, related, compared, and served; the API and the pages show it.

use std::path::{Path, PathBuf};

use crate::http::get;
use crate::server::{Server, asset, run};

/// A checkpoint of the fixture script's small GPT-NeoX (with its byte-level tokenizer).
fn checkpoint(step: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dd-model/tests/fixtures/pythia-checkpoints").join(step)
}

fn record(step: &str, database: &Path) {
    let (code, _, stderr) = run(&[
        "record",
        checkpoint(step).to_str().expect("utf-8"),
        asset("shakespeare").to_str().expect("utf-8"),
        "-o",
        database.to_str().expect("utf-8"),
        "--name",
        &format!("ckpt-{step}"),
        "--tokens",
        "3000",
        "--context",
        "32",
    ]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn two_checkpoints_are_recorded_related_compared_and_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (early, late) = (dir.path().join("step1000.db"), dir.path().join("step2000.db"));
    record("step1000", &early);
    record("step2000", &late);
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();

    let (code, _, stderr) = run(&["relate", &path(&late)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("pass --model"), "{stderr}");
    let model = checkpoint("step2000");
    let (code, _, stderr) =
        run(&["relate", &path(&late), "--model", model.to_str().expect("utf-8"), "--tokens", "600"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("correlated every neuron of ckpt-step2000 over 600 tokens"), "{stderr}");
    assert!(stderr.contains("roles from a weight graph of"), "{stderr}");

    let (code, _, stderr) = run(&["compare", &path(&early), &path(&late)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("copied ckpt-step1000") && stderr.contains("compared 128 neurons"), "{stderr}");

    let server = Server::start(&late, &[]);
    let models = get(server.addr, "/api").json();
    let names: Vec<&str> =
        models["models"].as_array().expect("models").iter().map(|m| m["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["ckpt-step2000", "ckpt-step1000"]);
    let changes = get(server.addr, "/api/ckpt-step2000/changes").json();
    assert_eq!(changes["data"]["baseline"], "ckpt-step1000", "{changes}");
    let most = &changes["data"]["most_changed"][0];
    let (layer, neuron) = (most["layer"].as_u64().expect("layer"), most["neuron"].as_u64().expect("neuron"));
    assert!(most["score"].as_f64().expect("score") > 0.0, "{changes}");
    for target in [
        format!("/api/ckpt-step2000/correlations/{layer}/{neuron}"),
        format!("/api/ckpt-step2000/roles/{layer}/{neuron}"),
        format!("/api/ckpt-step2000/embedding/{layer}/{neuron}"),
        "/api/ckpt-step2000/groups".to_owned(),
        "/api/ckpt-step2000/roles".to_owned(),
    ] {
        assert_eq!(get(server.addr, &target).status, 200, "{target}");
    }
    let side_by_side = get(server.addr, &format!("/viz/ckpt-step2000/changes/{layer}/{neuron}"));
    assert_eq!(side_by_side.status, 200);
    let html = side_by_side.text();
    assert!(html.contains("<section id=baseline>") && html.contains("<section id=current>"), "{html}");
    assert!(html.contains("href=\"/viz/ckpt-step1000/"), "links the baseline's neuron page");
    let neuron_page = get(server.addr, &format!("/viz/ckpt-step2000/{layer}/{neuron}")).text();
    assert!(neuron_page.contains("<section id=relations>") && neuron_page.contains("id=change>"), "{neuron_page}");
    // The baseline was copied whole: its own pages are served too.
    assert_eq!(get(server.addr, &format!("/viz/ckpt-step1000/{layer}/{neuron}")).status, 200);
}
