//! `deepdecipher demo` end to end on the real SmolLM2-135M-Instruct and Shakespeare from the test
//! assets (`scripts/fetch-test-assets.sh`): it records, serves pages holding real text (JSON and
//! the website in headless Chromium, with "try your own text"), and a second run serves the
//! database it finds instead of recording again.

use std::process::Stdio;

use crate::http::get;
use crate::server::{asset, binary, listening_addr};

#[test]
fn demo_records_smollm2_over_shakespeare_and_serves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = dir.path().join("demo.db");
    let gguf = asset("SmolLM2-135M-Instruct.Q4_1.gguf");
    let corpus = asset("shakespeare");
    let demo = |extra: &[&str]| {
        let mut command = binary();
        command
            .arg("demo")
            .arg("--database")
            .arg(&database)
            .arg("--model-file")
            .arg(&gguf)
            .arg("--corpus")
            .arg(&corpus)
            .args(["--tokens", "1024", "--addr", "127.0.0.1:0", "--no-weights", "--graphs", "2", "--explanations", "2"])
            .args(["--relate-tokens", "512"])
            .arg("--embedder")
            .arg(asset("all-MiniLM-L6-v2"))
            .args(extra)
            .env("RUST_LOG", "warn");
        command
    };
    let mut child = KillOnDrop(demo(&[]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn demo"));
    let addr = listening_addr(child.0.stdout.take().expect("stdout"));

    let models = get(addr, "/api").json();
    let model = &models["models"][0];
    // Named from its metadata and file, not `SmolLM2-135M-Instruct.Q4_1`; the corpus after its folder.
    assert_eq!(model["name"], "SmolLM2-135M-Instruct", "{models}");
    assert_eq!(model["dataset"], "shakespeare", "{models}");
    assert_eq!(model["provenance"]["weights"], "GGUF Q4_1", "{models}");
    assert_eq!(model["num_layers"], 30, "{models}");
    assert_eq!(model["provenance"]["tokens_recorded"], 1024, "{models}");

    // The most interesting neuron's page shows text from the plays, with real activations.
    let ranking = get(addr, "/api/SmolLM2-135M-Instruct/neuroscope").json();
    let top = &ranking["data"]["important_neurons"][0][0];
    let (layer, neuron) = (top["layer"].as_u64().expect("layer"), top["neuron"].as_u64().expect("neuron"));
    let page = get(addr, &format!("/api/SmolLM2-135M-Instruct/neuroscope/{layer}/{neuron}")).json();
    let texts = page["data"]["texts"].as_array().expect("texts");
    assert_eq!(texts.len(), 8, "1024 tokens are 8 contexts of 128: {page}");
    let text: String = texts
        .iter()
        .flat_map(|t| t["tokens"].as_array().expect("tokens").iter().map(|s| s.as_str().unwrap_or_default().to_owned()))
        .collect::<String>()
        .replace('·', " ");
    assert!(text.contains("COUNTESS") || text.contains("BERTRAM"), "not All's Well That Ends Well: {text}");
    let max = texts[0]["max_activation"].as_f64().expect("max");
    assert!(max.is_finite() && max > 0.0, "{max}");
    let stats = get(addr, &format!("/api/SmolLM2-135M-Instruct/stats/{layer}/{neuron}")).json();
    // Statistics cover the text; the 8 contexts' BOS positions are summarised apart, and a causal
    // model computes the same value there in every context.
    assert_eq!(stats["data"]["count"], 1024 - 8, "{stats}");
    let bos = &stats["data"]["bos"];
    assert_eq!(bos["count"], 8, "{stats}");
    let (bos_min, bos_max) = (bos["min"].as_f64().expect("min"), bos["max"].as_f64().expect("max"));
    assert!((bos_max - bos_min).abs() <= 1e-3 * bos_max.abs().max(1.0), "{stats}");
    assert!(stats["data"]["interestingness"].as_f64().expect("interestingness") > 0.0, "{stats}");
    let tokens = get(addr, &format!("/api/SmolLM2-135M-Instruct/activating_tokens/{layer}/{neuron}")).json();
    assert!(!tokens["data"]["tokens"].as_array().expect("tokens").is_empty(), "{tokens}");

    // Neuron2Graph graphs, then explanations, for the two most interesting neurons, made after
    // serving started: the notice says so until they are served, then goes.
    let started = std::time::Instant::now();
    let graph_path = format!("/api/SmolLM2-135M-Instruct/neuron2graph/{layer}/{neuron}");
    let explanation_path = format!("/api/SmolLM2-135M-Instruct/explanations/{layer}/{neuron}");
    loop {
        let models = get(addr, "/api").json();
        match models["notice"].as_str() {
            None if get(addr, &graph_path).status == 200 && get(addr, &explanation_path).status == 200 => break,
            None => {}
            Some(notice) => assert!(
                notice.contains("Neuron2Graph graphs are being built")
                    || notice.contains("Relations between neurons are being computed")
                    || notice.contains("Explanations are being written"),
                "{notice}"
            ),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(900), "graphs still building after 15 minutes");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // Every neuron is related: correlations over 512 tokens of the recording, groups, embeddings
    // (from the graph for this one). No weights were recorded, so there are no roles.
    let correlations = get(addr, &format!("/api/SmolLM2-135M-Instruct/correlations/{layer}/{neuron}")).json();
    assert_eq!(correlations["data"]["tokens"], 512, "{correlations}");
    assert_eq!(correlations["data"]["positive"].as_array().expect("positive").len(), 10, "{correlations}");
    let embedding = get(addr, &format!("/api/SmolLM2-135M-Instruct/embedding/{layer}/{neuron}")).json();
    assert_eq!(embedding["data"]["source"], "graph", "{embedding}");
    assert_eq!(embedding["data"]["vector"].as_array().expect("vector").len(), 576, "{embedding}");
    let groups = get(addr, "/api/SmolLM2-135M-Instruct/groups").json();
    assert!(!groups["data"]["groups"].as_array().expect("groups").is_empty(), "{groups}");
    assert_eq!(get(addr, "/api/SmolLM2-135M-Instruct/roles").status, 404, "no connections were recorded");

    // SmolLM2 explained and scored it; the explanation is searchable by its own words.
    let explained = get(addr, &explanation_path).json();
    let first = &explained["data"]["explanations"][0];
    assert_eq!(first["origin"], "generated", "{explained}");
    assert_eq!(first["author"], "SmolLM2-135M-Instruct", "{explained}");
    assert!(first["provenance"]["prompt"].as_str().is_some_and(|p| p.contains("Strongest on")), "{explained}");
    let text = first["text"].as_str().expect("text");
    let query: String = text
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let started = std::time::Instant::now();
    let found = loop {
        let response = get(addr, &format!("/api/SmolLM2-135M-Instruct/explanation-search?q={query}"));
        if response.status != 503 {
            assert_eq!(response.status, 200, "{}", response.text());
            break response.json();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(300), "the explanation index is never built");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let hits = found["data"]["explanations"].as_array().expect("hits");
    assert!(
        hits.iter().any(|h| h["layer"].as_u64() == Some(layer) && h["neuron"].as_u64() == Some(neuron)),
        "searching {text:?} finds {layer}/{neuron}: {found}"
    );
    let graph = get(addr, &graph_path).json();
    let data = &graph["data"];
    let nodes = data["graph"]["graph"].as_array().expect("nodes");
    assert!(!nodes.is_empty(), "the most interesting neuron's graph has patterns: {graph}");
    let held_out = &data["scores"]["held_out_top"];
    assert!(held_out["tokens"].as_u64().expect("tokens") > 0, "{graph}");
    assert!(data["scores"]["random"]["texts"].as_u64().is_some(), "{graph}");
    assert!(data["graphviz"].as_str().expect("dot").starts_with("digraph"), "{graph}");
    // Its activating token finds it by search, from the graph.
    let first = data["graph"]["subgraph_indices"][1].as_u64().expect("activating cluster") as usize;
    let token = nodes[first]["token"].as_str().expect("token");
    let encoded: String = token
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let search = format!("/api/SmolLM2-135M-Instruct/token-search?query=%22{encoded}%22&match=exact&limit=1000");
    // The reload that served the graphs dropped the search index; it is rebuilt in the background,
    // and a search meanwhile is a 503 `index_building`.
    let started = std::time::Instant::now();
    let hits = loop {
        let response = get(addr, &search);
        if response.status != 503 {
            break response.json();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(300), "the search index is never rebuilt");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let hit = hits["data"]["neurons"]
        .as_array()
        .expect("hits")
        .iter()
        .find(|h| h["layer"].as_u64() == Some(layer) && h["neuron"].as_u64() == Some(neuron))
        .unwrap_or_else(|| panic!("searching {token:?} finds {layer}/{neuron}: {hits}"));
    assert!(hit["matches"][0]["found_in"].to_string().contains("graph_activating"), "{hit}");

    // The website in headless Chromium, with the model running visitors' text, once the graphs are
    // in (a reload drops the search index, and a search while it is rebuilt is a 503).
    let check = crate::browser::SiteCheck {
        model: "SmolLM2-135M-Instruct",
        shot_prefix: "demo",
        neuron: (layer, neuron.min(1534)),
        live: true,
        darkest_at_max: false,
        bos_apart: true,
    };
    crate::browser::check_site(addr, &check);
    drop(child);

    // A second run finds the model in the database and only serves.
    let output = demo(&["--no-serve"]).output().expect("second demo");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("already holds SmolLM2-135M-Instruct"), "{stderr}");
}

/// The demo's server, killed when the test ends, also when an assertion fails: it would otherwise
/// keep serving (and building graphs) after the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
