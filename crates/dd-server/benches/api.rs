//! Criterion benchmark of the API's hot path in process (no sockets): a neuron's `neuroscope` page
//! and its `examples` page on a gpt2-small-like synthetic neuron (20 examples × 128 tokens, 50,257-token vocabulary),
//! and the website's neuron page of the same neurons.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use dd_server::{AppState, ServerConfig};
use dd_store::{ReadConfig, SqliteStore, StoreRead};
use tower::ServiceExt;

fn bench_api(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let config = dd_synth::SynthConfig {
        model_name: "m".into(),
        n_layers: 2,
        d_mlp: 512,
        n_examples: 20,
        n_bottom_examples: 0,
        n_tokens: 128,
        vocab_size: 50_257,
        seed: 1,
        replace: false,
        n_threads: 2,
    };
    dd_synth::synthesize(&path, &config, &mut |_, _| {}).expect("synth");
    let store = Arc::new(SqliteStore::open(&path, &ReadConfig::serving()).expect("open"));
    let state = Arc::new(AppState::load(store.clone(), ServerConfig::standard()).expect("state"));
    let app = dd_server::app(state);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut group = c.benchmark_group("render");
    let examples = {
        let model = store.catalog().model("m").expect("model").clone();
        let source = model.sources[0].clone();
        let blob =
            store.neuron_blob(source.id, 0, 7, dd_data::NeuronDataKind::Examples).expect("read").expect("stored");
        dd_store::codec::decode_examples_quantized(&blob).expect("decode")
    };
    let vocabulary =
        match store.model_record(store.catalog().model("m").expect("model"), dd_data::ModelDataKind::Vocabulary) {
            Ok(Some(dd_data::ModelRecord::Vocabulary(v))) => v,
            _ => panic!("no vocabulary"),
        };
    let tokens = dd_server::bench::Tokens::new(&vocabulary);
    group.bench_function("neuroscope_page", |b| b.iter(|| tokens.neuroscope_page(&examples)));
    group.finish();
    let mut group = c.benchmark_group("api");
    for service in ["neuroscope", "examples", "stats"] {
        let mut neuron = 0u32;
        group.bench_function(service, |b| {
            b.iter(|| {
                neuron = (neuron + 97) % 1024;
                let uri = format!("/api/m/{service}/{}/{}", neuron / 512, neuron % 512);
                let request = Request::get(uri).body(Body::empty()).expect("request");
                let response = runtime.block_on(app.clone().oneshot(request)).expect("response");
                assert!(response.status().is_success());
                runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).expect("body")
            })
        });
    }
    group.finish();

    // The website's neuron page, whole (every record of the neuron, framed); its weight printed once.
    let mut group = c.benchmark_group("web");
    let neuron_page = |neuron: u32| {
        let uri = format!("/viz/m/{}/{}", neuron / 512, neuron % 512);
        let request = Request::get(uri).body(Body::empty()).expect("request");
        let response = runtime.block_on(app.clone().oneshot(request)).expect("response");
        assert!(response.status().is_success());
        runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).expect("body")
    };
    let weights: Vec<usize> = (0..64).map(|i| neuron_page(i * 16).len()).collect();
    eprintln!(
        "neuron page weight over 64 neurons: mean {:.1} KB, max {:.1} KB",
        weights.iter().sum::<usize>() as f64 / weights.len() as f64 / 1000.0,
        *weights.iter().max().unwrap_or(&0) as f64 / 1000.0
    );
    let mut neuron = 0u32;
    group.bench_function("neuron_page", |b| {
        b.iter(|| {
            neuron = (neuron + 97) % 1024;
            neuron_page(neuron)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_api);
criterion_main!(benches);
