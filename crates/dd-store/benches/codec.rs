//! Criterion benchmarks of the blob codec: encoding and decoding one neuron's examples
//! (20 × 128 tokens, GELU-like activations, Zipf tokens) at 8 and 16 activation bits.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dd_data::{Example, ExampleGroup, ExampleGroupKind, NeuronDataKind, NeuronExamples, NeuronRecord};
use dd_store::EncodeOptions;
use dd_store::codec::{decode_examples_quantized, decode_neuron, encode_neuron};

/// A neuron whose examples look like a GELU neuron's: small negative values, a few strong peaks.
fn realistic_examples() -> NeuronRecord {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let examples = (0..20)
        .map(|e| {
            let tokens: Vec<u32> = (0..128).map(|_| (1.0 / (next() + 2e-5)) as u32 % 50_257).collect();
            let mut activations: Vec<f32> = (0..128).map(|_| -0.17 * next() as f32).collect();
            let peak = (next() * 128.0) as usize;
            activations[peak] = 6.0 - e as f32 * 0.1;
            Example {
                dataset_index: e * 1000,
                tokens,
                activations,
                max_token_index: peak as u32,
                activation_error: 0.0,
            }
        })
        .collect();
    NeuronRecord::Examples(NeuronExamples { groups: vec![ExampleGroup { kind: ExampleGroupKind::Top, examples }] })
}

fn bench_codec(c: &mut Criterion) {
    let record = realistic_examples();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(20 * 128));
    for bits in [8u8, 16] {
        let options = EncodeOptions { activation_bits: bits, ..EncodeOptions::STANDARD };
        let blob = encode_neuron(&record, &options).expect("encode");
        println!("examples blob with {bits}-bit activations: {} bytes", blob.len());
        group.bench_function(format!("encode_examples_{bits}bit"), |b| {
            b.iter(|| encode_neuron(&record, &options).expect("encode"))
        });
        group.bench_function(format!("decode_examples_{bits}bit"), |b| {
            b.iter(|| decode_neuron(NeuronDataKind::Examples, &blob).expect("decode"))
        });
        group.bench_function(format!("decode_examples_stored_{bits}bit"), |b| {
            b.iter(|| decode_examples_quantized(&blob).expect("decode"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
