//! Round-trip, error-bound and corruption tests for every record kind.

use dd_data::*;

use super::*;

/// SplitMix64: a tiny deterministic generator so the tests need no extra crate.
struct TestRng(u64);

impl TestRng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn random_examples(rng: &mut TestRng, n_examples: usize, n_tokens: usize, scale: f32) -> NeuronExamples {
    let example = |rng: &mut TestRng| {
        let activations: Vec<f32> = (0..n_tokens).map(|_| (rng.unit() * 2.0 - 0.3) * scale).collect();
        Example {
            dataset_index: rng.next_u64() >> 20,
            tokens: (0..n_tokens).map(|_| (rng.next_u64() % 50_257) as u32).collect(),
            max_token_index: (rng.next_u64() % n_tokens as u64) as u32,
            activations,
            activation_error: 0.0,
        }
    };
    NeuronExamples {
        groups: vec![
            ExampleGroup { kind: ExampleGroupKind::Top, examples: (0..n_examples).map(|_| example(rng)).collect() },
            ExampleGroup { kind: ExampleGroupKind::Bottom, examples: (0..2).map(|_| example(rng)).collect() },
            ExampleGroup {
                kind: ExampleGroupKind::Quantile { band: 3, lower: 0.25, upper: 0.5 },
                examples: vec![example(rng)],
            },
            ExampleGroup { kind: ExampleGroupKind::Random, examples: vec![] },
        ],
    }
}

fn sample_records() -> Vec<NeuronRecord> {
    let mut rng = TestRng(7);
    vec![
        NeuronRecord::Examples(random_examples(&mut rng, 20, 128, 4.0)),
        NeuronRecord::Stats(NeuronStats {
            count: 10_000_000_000,
            max: 7.5,
            min: -0.17,
            mean: 0.01,
            variance: 0.2,
            skewness: 9.0,
            kurtosis: 120.0,
            density: 0.003,
            histogram: Histogram { lower: -0.17, upper: 7.5, counts: (0..50).map(|i| i * 1000).collect() },
            bos: Some(PositionStats { count: 781, max: 3272.5, min: 3272.5, mean: 3272.5 }),
        }),
        NeuronRecord::Stats(NeuronStats {
            count: 3,
            max: 1.0,
            min: 0.0,
            mean: 0.5,
            variance: 0.25,
            skewness: 0.0,
            kurtosis: 1.0,
            density: 0.5,
            histogram: Histogram { lower: 0.0, upper: 1.0, counts: vec![1, 2] },
            bos: None,
        }),
        NeuronRecord::Logits(LogitAttribution {
            top: vec![TokenValue { token: 50_000, value: 1.5 }],
            bottom: vec![TokenValue { token: 3, value: -2.0 }, TokenValue { token: 4, value: -1.0 }],
        }),
        NeuronRecord::Explanations(Explanations {
            explanations: vec![
                Explanation {
                    text: "mentions of \"Paris\" — ünïcode".into(),
                    origin: "openai".into(),
                    author: Some("gpt-4".into()),
                    scores: vec![NamedScore { name: "ev_correlation_score".into(), value: 0.43 }],
                    ..Explanation::default()
                },
                Explanation { text: String::new(), origin: "synthetic".into(), ..Explanation::default() },
                Explanation {
                    text: "the word \"thou\"".into(),
                    origin: "generated".into(),
                    author: Some("SmolLM2-135M-Instruct".into()),
                    scores: vec![NamedScore { name: "rsquared_score".into(), value: -0.25 }],
                    provenance: Some(ExplanationProvenance {
                        prompt_version: "oai-token-activation-pairs/1".into(),
                        prompt: "system\nWe're studying neurons".into(),
                        simulator: Some("SmolLM2-135M-Instruct".into()),
                        created: "2026-12-06T10:40:00Z".into(),
                    }),
                    simulations: vec![SimulatedSequence {
                        token_ids: vec![1, 300, 70_000],
                        true_activations: vec![0.0, 2.5, -0.1],
                        simulated_activations: vec![0.1, 1.75, 0.0],
                    }],
                    embedding: Some(TextEmbedding::quantize("all-MiniLM-L6-v2", &[0.6, -0.8, 0.0])),
                },
                Explanation {
                    text: "unscored".into(),
                    origin: "generated".into(),
                    provenance: Some(ExplanationProvenance { simulator: None, ..ExplanationProvenance::default() }),
                    ..Explanation::default()
                },
            ],
        }),
        NeuronRecord::Graph(NeuronGraph {
            subgraph_indices: vec![0, 0, 2],
            nodes: vec![
                GraphNode {
                    token: "the".into(),
                    token_id: Some(1_000_000),
                    required: vec![],
                    importance: 1.0,
                    activation: Some(1.25),
                    is_end: true,
                },
                GraphNode {
                    token: " cat".into(),
                    token_id: None,
                    required: vec![0],
                    importance: 0.5,
                    activation: None,
                    is_end: false,
                },
            ],
            scores: Some(GraphScores {
                threshold: 0.5,
                scale: 3.25,
                held_out_top: FiringCounts { texts: 10, tokens: 1270, firing: 14, predicted: 12, true_positives: 11 },
                random: FiringCounts { texts: 5, tokens: 635, firing: 0, predicted: 1, true_positives: 0 },
            }),
        }),
        NeuronRecord::Graph(NeuronGraph {
            subgraph_indices: vec![0, 1],
            nodes: vec![GraphNode {
                token: "x".into(),
                token_id: Some(0),
                required: vec![],
                importance: 0.0,
                activation: Some(0.0),
                is_end: false,
            }],
            scores: None,
        }),
        NeuronRecord::Similar(SimilarNeurons {
            neurons: vec![SimilarNeuron { layer: 11, index: 3071, similarity: 0.9 }],
        }),
        NeuronRecord::ActivatingTokens(ActivatingTokens {
            tokens: vec![
                TokenMean { token: 128_255, mean: 6.25, count: 1 },
                TokenMean { token: 0, mean: 0.5, count: 10_000_000_000 },
                TokenMean { token: 3, mean: -0.17, count: 42 },
            ],
        }),
        NeuronRecord::InputTokens(InputTokens {
            top: vec![TokenValue { token: 50_256, value: 0.75 }, TokenValue { token: 7, value: 0.5 }],
            bottom: vec![TokenValue { token: 1 << 24, value: -1.25 }],
        }),
        NeuronRecord::Connections(NeuronConnections {
            inputs: vec![
                Connection { neuron: NeuronIndex { layer: 0, index: 70_000 }, weight: -0.5 },
                Connection { neuron: NeuronIndex { layer: 2, index: 1 }, weight: 0.25 },
            ],
            outputs: vec![Connection { neuron: NeuronIndex { layer: 47, index: 3071 }, weight: 1.5 }],
        }),
        // Empty lists are valid: a last-layer neuron has no outputs, a first-layer one no inputs.
        NeuronRecord::Connections(NeuronConnections::default()),
        NeuronRecord::InputTokens(InputTokens::default()),
        NeuronRecord::ActivatingTokens(ActivatingTokens::default()),
        NeuronRecord::Correlations(NeuronCorrelations {
            tokens: 20_000,
            positive: vec![CorrelatedNeuron { neuron: NeuronIndex { layer: 29, index: 1535 }, correlation: 0.875 }],
            negative: vec![
                CorrelatedNeuron { neuron: NeuronIndex { layer: 0, index: 3 }, correlation: -0.5 },
                CorrelatedNeuron { neuron: NeuronIndex { layer: 4, index: 70_000 }, correlation: -0.25 },
            ],
        }),
        NeuronRecord::Correlations(NeuronCorrelations::default()),
        NeuronRecord::Embedding(NeuronEmbedding {
            source: EmbeddingSource::Graph,
            scale: 1.0 / 127.0,
            values: vec![127, -128, 0, 5, -7],
            neighbours: vec![SimilarNeuron { layer: 3, index: 9, similarity: 0.75 }],
        }),
        NeuronRecord::Embedding(NeuronEmbedding {
            source: EmbeddingSource::ActivatingTokens,
            scale: 0.0,
            values: vec![],
            neighbours: vec![],
        }),
    ]
}

fn relation_layer_records() -> Vec<LayerRecord> {
    let role = |group| NeuronRole {
        in_degree: 12,
        out_degree: 70_000,
        in_strength: 1.5,
        out_strength: 0.25,
        strength_z: -0.75,
        participation: 0.5,
        betweenness: 0.125,
        role: Role::Connector,
        group,
    };
    let change = |activation_correlation| NeuronChange {
        mean_change: 0.5,
        std_change: -0.25,
        max_change: 2.0,
        density_change: -0.125,
        top_overlap: 0.75,
        shared_contexts: 17,
        activation_correlation,
        score: 0.3,
    };
    vec![
        LayerRecord::Roles(LayerRoles {
            connector_participation: 0.875,
            neurons: vec![role(None), role(Some(0)), role(Some(4_000_000))],
        }),
        LayerRecord::Changes(LayerChanges {
            baseline: "pythia-70m@step1000".into(),
            neurons: vec![change(Some(-0.5)), change(None)],
        }),
    ]
}

fn groups_record() -> ModelRecord {
    ModelRecord::Groups(NeuronGroups {
        method: "Louvain communities".into(),
        tokens: 2_000,
        groups: vec![
            NeuronGroup {
                members: vec![NeuronIndex { layer: 0, index: 1 }, NeuronIndex { layer: 7, index: 70_000 }],
                cohesion: 0.625,
                contexts: vec![GroupContext {
                    dataset_index: 1 << 40,
                    tokens: vec![1, 50_256],
                    scores: vec![-0.5, 3.25],
                    firing: 2,
                }],
            },
            NeuronGroup { members: vec![], cohesion: 0.0, contexts: vec![] },
        ],
    })
}

/// Full-length lists of the three weight- and token-level kinds, large enough to be stored compressed.
fn long_token_and_connection_records() -> Vec<NeuronRecord> {
    let mut rng = TestRng(3);
    let token_values = |rng: &mut TestRng, sign: f32| -> Vec<TokenValue> {
        (0..50)
            .map(|i| TokenValue { token: (rng.next_u64() % 50_257) as u32, value: sign * (2.0 - i as f32 * 0.03) })
            .collect()
    };
    let connections = |rng: &mut TestRng| -> Vec<Connection> {
        (0..50)
            .map(|i| Connection {
                neuron: NeuronIndex { layer: (rng.next_u64() % 12) as u32, index: (rng.next_u64() % 3072) as u32 },
                weight: (1.0 - i as f32 * 0.01) * if rng.next_u64() % 2 == 0 { 1.0 } else { -1.0 },
            })
            .collect()
    };
    vec![
        NeuronRecord::ActivatingTokens(ActivatingTokens {
            tokens: (0..100)
                .map(|i| TokenMean {
                    token: (rng.next_u64() % 50_257) as u32,
                    mean: 8.0 - i as f32 * 0.05,
                    count: 1 + rng.next_u64() % 100_000,
                })
                .collect(),
        }),
        NeuronRecord::InputTokens(InputTokens {
            top: token_values(&mut rng, 1.0),
            bottom: token_values(&mut rng, -1.0),
        }),
        NeuronRecord::Connections(NeuronConnections { inputs: connections(&mut rng), outputs: connections(&mut rng) }),
    ]
}

/// Compares two example sets, allowing each activation its documented error.
fn assert_examples_close(original: &NeuronExamples, decoded: &NeuronExamples) {
    assert_eq!(original.groups.len(), decoded.groups.len());
    for (group, decoded_group) in original.groups.iter().zip(&decoded.groups) {
        assert_eq!(group.kind, decoded_group.kind);
        assert_eq!(group.examples.len(), decoded_group.examples.len());
        for (example, decoded_example) in group.examples.iter().zip(&decoded_group.examples) {
            assert_eq!(example.tokens, decoded_example.tokens);
            assert_eq!(example.dataset_index, decoded_example.dataset_index);
            assert_eq!(example.max_token_index, decoded_example.max_token_index);
            let bound = decoded_example.activation_error;
            let range = example.max_activation() - example.min_activation();
            assert!(bound <= range / 510.0 * 1.001 + 1e-6, "bound {bound} looser than documented for range {range}");
            for (a, b) in example.activations.iter().zip(&decoded_example.activations) {
                assert!((a - b).abs() <= bound, "|{a} - {b}| > {bound}");
            }
            assert_eq!(example.max_activation(), decoded_example.max_activation(), "max is exact");
            assert_eq!(example.min_activation(), decoded_example.min_activation(), "min is exact");
        }
    }
}

#[test]
fn every_neuron_kind_round_trips() {
    // A kind missing from the samples would escape this test and the corruption tests below.
    let sampled: std::collections::BTreeSet<NeuronDataKind> = sample_records().iter().map(|r| r.kind()).collect();
    assert_eq!(sampled.into_iter().collect::<Vec<_>>(), NeuronDataKind::ALL.to_vec());
    for record in sample_records() {
        let blob = encode_neuron(&record, &EncodeOptions::STANDARD).expect("encode");
        assert_eq!(blob[0], FORMAT_VERSION);
        let decoded = decode_neuron(record.kind(), &blob).expect("decode");
        match (&record, &decoded) {
            (NeuronRecord::Examples(a), NeuronRecord::Examples(b)) => assert_examples_close(a, b),
            _ => assert_eq!(record, decoded),
        }
    }
}

/// Long lists go through zstd and still decode to exactly what was written.
#[test]
fn long_token_and_connection_lists_round_trip_compressed() {
    for record in long_token_and_connection_records() {
        let blob = encode_neuron(&record, &EncodeOptions::STANDARD).expect("encode");
        assert_eq!(blob[3], FLAG_ZSTD, "{:?} is stored compressed", record.kind());
        assert_eq!(decode_neuron(record.kind(), &blob).expect("decode"), record);
    }
}

#[test]
fn sixteen_bit_activations_meet_their_bound() {
    let mut rng = TestRng(11);
    for scale in [1e-3, 1.0, 250.0] {
        let examples = random_examples(&mut rng, 5, 64, scale);
        let options = EncodeOptions { activation_bits: 16, zstd_level: 3 };
        let blob = encode_neuron(&NeuronRecord::Examples(examples.clone()), &options).expect("encode");
        let NeuronRecord::Examples(decoded) = decode_neuron(NeuronDataKind::Examples, &blob).expect("decode") else {
            panic!("wrong record kind");
        };
        for (a, b) in
            examples.groups.iter().flat_map(|g| &g.examples).zip(decoded.groups.iter().flat_map(|g| &g.examples))
        {
            let range = a.max_activation() - a.min_activation();
            assert!(b.activation_error <= range / 131_070.0 * 1.001 + scale * 1e-6);
            for (x, y) in a.activations.iter().zip(&b.activations) {
                assert!((x - y).abs() <= b.activation_error, "|{x} - {y}| > {}", b.activation_error);
            }
        }
    }
}

#[test]
fn constant_and_empty_examples_round_trip_exactly() {
    let examples = NeuronExamples {
        groups: vec![ExampleGroup {
            kind: ExampleGroupKind::Top,
            examples: vec![
                Example {
                    dataset_index: 1,
                    tokens: vec![5, 6],
                    activations: vec![0.25, 0.25],
                    max_token_index: 0,
                    activation_error: 0.0,
                },
                Example {
                    dataset_index: 2,
                    tokens: vec![],
                    activations: vec![],
                    max_token_index: 0,
                    activation_error: 0.0,
                },
            ],
        }],
    };
    let record = NeuronRecord::Examples(examples.clone());
    let blob = encode_neuron(&record, &EncodeOptions::STANDARD).expect("encode");
    let NeuronRecord::Examples(decoded) = decode_neuron(NeuronDataKind::Examples, &blob).expect("decode") else {
        panic!("wrong record kind");
    };
    assert_eq!(decoded.groups[0].examples[0].activations, vec![0.25, 0.25]);
    assert!(decoded.groups[0].examples[1].tokens.is_empty());
}

#[test]
fn layer_and_model_kinds_round_trip() {
    let ranking = NeuronRanking::from_unsorted(vec![
        RankedNeuron { neuron: NeuronIndex { layer: 1, index: 2 }, score: 3.5 },
        RankedNeuron { neuron: NeuronIndex { layer: 0, index: 9 }, score: 1.5 },
    ]);
    let layers = [
        LayerRecord::Ranking(ranking.clone()),
        LayerRecord::Summary(LayerSummary {
            neurons: vec![
                NeuronSummary { max_activation: 3.0, min_activation: -0.1, density: 0.01, kurtosis: 40.0 };
                100
            ],
        }),
    ];
    let layers = layers.into_iter().chain(relation_layer_records());
    let mut layer_kinds = std::collections::BTreeSet::new();
    for record in layers {
        layer_kinds.insert(record.kind());
        let blob = encode_layer(&record, &EncodeOptions::STANDARD).expect("encode");
        assert_eq!(decode_layer(record.kind(), &blob).expect("decode"), record);
    }
    assert_eq!(layer_kinds.into_iter().collect::<Vec<_>>(), LayerDataKind::ALL.to_vec());
    let models = [
        ModelRecord::Vocabulary(Vocabulary { tokens: (0..1000).map(|i| format!("tok{i}")).collect() }),
        ModelRecord::Ranking(ranking),
        ModelRecord::TokenIndex(TokenIndex {
            entries: vec![TokenIndexEntry {
                token: "the".into(),
                activating: vec![NeuronIndex { layer: 0, index: 1 }],
                important: vec![NeuronIndex { layer: 3, index: 70_000 }],
            }],
        }),
    ];
    let mut model_kinds = std::collections::BTreeSet::new();
    for record in models.into_iter().chain([groups_record()]) {
        model_kinds.insert(record.kind());
        let blob = encode_model(&record, &EncodeOptions::STANDARD).expect("encode");
        assert_eq!(decode_model(record.kind(), &blob).expect("decode"), record);
    }
    assert_eq!(model_kinds.into_iter().collect::<Vec<_>>(), ModelDataKind::ALL.to_vec());
}

/// The relation kinds at the layer and model levels refuse every truncation and never panic on a
/// flipped byte.
#[test]
fn truncated_relation_records_are_errors_not_panics() {
    for record in relation_layer_records() {
        let blob = encode_layer(&record, &EncodeOptions::STANDARD).expect("encode");
        for len in 0..blob.len() {
            assert!(decode_layer(record.kind(), &blob[..len]).is_err(), "prefix of {len} bytes decoded");
        }
        let mut flipped = blob.clone();
        for i in 4..flipped.len() {
            flipped[i] ^= 0x5a;
            let _ = decode_layer(record.kind(), &flipped);
            flipped[i] ^= 0x5a;
        }
    }
    let blob = encode_model(&groups_record(), &EncodeOptions::STANDARD).expect("encode");
    for len in 0..blob.len() {
        assert!(decode_model(ModelDataKind::Groups, &blob[..len]).is_err(), "prefix of {len} bytes decoded");
    }
}

#[test]
fn corrupt_blobs_are_errors_not_panics() {
    for record in sample_records() {
        let blob = encode_neuron(&record, &EncodeOptions::STANDARD).expect("encode");
        for len in 0..blob.len() {
            assert!(decode_neuron(record.kind(), &blob[..len]).is_err(), "prefix of {len} bytes decoded");
        }
        let mut flipped = blob.clone();
        for i in 4..flipped.len() {
            flipped[i] ^= 0x5a;
            let _ = decode_neuron(record.kind(), &flipped);
            flipped[i] ^= 0x5a;
        }
    }
}

/// A blob whose length header claims far more than its frame holds is refused before any
/// allocation, and so is a payload that is corrupt inside a valid frame.
#[test]
fn lying_lengths_and_corrupt_payloads_are_refused() {
    // Repetitive text, so the blob is stored compressed.
    let compressible = NeuronRecord::Examples(NeuronExamples {
        groups: vec![ExampleGroup {
            kind: ExampleGroupKind::Top,
            examples: (0..20)
                .map(|e| Example {
                    dataset_index: e,
                    tokens: (0..128).map(|t| t % 7).collect(),
                    activations: (0..128).map(|t| (t % 5) as f32).collect(),
                    max_token_index: 4,
                    activation_error: 0.0,
                })
                .collect(),
        }],
    });
    let blob = encode_neuron(&compressible, &EncodeOptions::STANDARD).expect("encode");
    assert_eq!(blob[3], FLAG_ZSTD, "the examples blob is compressed");
    let mut header = wire::WireReader::new(&blob[4..]);
    let payload_len = header.varint().expect("length");
    let frame = &blob[blob.len() - header.remaining()..];
    let mut lying = blob[..4].to_vec();
    let mut length = wire::WireWriter::default();
    length.varint(1 << 29);
    lying.extend_from_slice(&length.buf);
    lying.extend_from_slice(frame);
    assert!(matches!(decode_neuron(NeuronDataKind::Examples, &lying), Err(CodecError::Invalid(_))));

    // Corrupt the payload itself and store it uncompressed, so the payload reader sees the damage.
    let payload = zstd::decode_all(frame).expect("payload");
    assert_eq!(payload.len() as u64, payload_len);
    for record in [&compressible] {
        for cut in [1, 2, 10, payload.len() / 2, payload.len() - 1] {
            let mut raw = vec![FORMAT_VERSION, b'N', record.kind().code(), 0];
            raw.extend_from_slice(&payload[..cut]);
            assert!(decode_neuron(record.kind(), &raw).is_err(), "payload cut at {cut} decoded");
        }
        let mut raw = vec![FORMAT_VERSION, b'N', record.kind().code(), 0];
        raw.extend_from_slice(&payload);
        raw[6] = 0xff; // the group count (after the bits and token-encoding bytes) becomes huge
        assert!(decode_neuron(record.kind(), &raw).is_err());
    }
}

/// Counts that claim more entries than the bytes left could hold are refused before any allocation,
/// and cut or damaged payloads of the token and connection kinds are errors, never panics.
#[test]
fn token_and_connection_payloads_with_lying_counts_are_refused() {
    for record in sample_records().iter().chain(&long_token_and_connection_records()).filter(|r| {
        matches!(r.kind(), NeuronDataKind::ActivatingTokens | NeuronDataKind::InputTokens | NeuronDataKind::Connections)
    }) {
        let payload = super::records::neuron_payload(record, &EncodeOptions::STANDARD).expect("payload");
        let raw = |payload: &[u8]| {
            let mut blob = vec![FORMAT_VERSION, b'N', record.kind().code(), 0];
            blob.extend_from_slice(payload);
            blob
        };
        assert_eq!(decode_neuron(record.kind(), &raw(&payload)).expect("uncompressed decodes"), *record);
        for cut in 0..payload.len() {
            assert!(decode_neuron(record.kind(), &raw(&payload[..cut])).is_err(), "payload cut at {cut} decoded");
        }
        // The first list's count is the first varint of every one of these payloads.
        for lie in [1u64 << 40, u64::from(u32::MAX), payload.len() as u64] {
            let mut count = wire::WireWriter::default();
            count.varint(lie);
            let mut rest = wire::WireReader::new(&payload);
            rest.varint().expect("count");
            let mut lying = count.buf;
            lying.extend_from_slice(&payload[payload.len() - rest.remaining()..]);
            assert!(
                matches!(decode_neuron(record.kind(), &raw(&lying)), Err(CodecError::Truncated)),
                "{:?} with count {lie} was not refused as truncated",
                record.kind()
            );
        }
        let mut trailing = payload.clone();
        trailing.push(0);
        assert!(matches!(decode_neuron(record.kind(), &raw(&trailing)), Err(CodecError::TrailingBytes { n_bytes: 1 })));
    }
    // A token id or layer that does not fit 32 bits is malformed, not truncated to a wrong value.
    let mut too_wide = wire::WireWriter::default();
    too_wide.varint(1);
    too_wide.varint(u64::from(u32::MAX) + 1);
    too_wide.f32(1.0);
    too_wide.varint(1);
    for kind in [NeuronDataKind::ActivatingTokens, NeuronDataKind::InputTokens, NeuronDataKind::Connections] {
        let mut blob = vec![FORMAT_VERSION, b'N', kind.code(), 0];
        blob.extend_from_slice(&too_wide.buf);
        blob.extend_from_slice(&[0, 0, 0, 0, 0]);
        assert!(matches!(decode_neuron(kind, &blob), Err(CodecError::Invalid(_))), "{kind:?}");
    }
}

/// A `stats` blob of format version 1 (no BOS section), as databases written before version 2
/// hold them, still decodes: with no BOS statistics.
#[test]
fn version_1_stats_still_decode() {
    let mut payload = wire::WireWriter::default();
    payload.varint(1000);
    for value in [4.0, -0.5, 0.1, 0.3, 2.0, 11.0, 0.2] {
        payload.f64(value);
    }
    payload.f32(-0.5);
    payload.f32(4.0);
    payload.len(3);
    for count in [900, 90, 10] {
        payload.varint(count);
    }
    let mut blob = vec![1, b'N', NeuronDataKind::Stats.code(), 0];
    blob.extend_from_slice(&payload.buf);
    let NeuronRecord::Stats(stats) = decode_neuron(NeuronDataKind::Stats, &blob).expect("version 1 decodes") else {
        panic!("stats decode as stats");
    };
    assert_eq!((stats.count, stats.max, stats.kurtosis, stats.bos), (1000, 4.0, 11.0, None));
    assert_eq!(stats.histogram.counts, vec![900, 90, 10]);
    // The same bytes under version 2 lack the BOS flag: truncated, not misread.
    blob[0] = 2;
    assert!(decode_neuron(NeuronDataKind::Stats, &blob).is_err());
    blob[0] = 0;
    assert!(matches!(decode_neuron(NeuronDataKind::Stats, &blob), Err(CodecError::UnsupportedVersion { found: 0 })));
}

/// A `graph` blob of format version 2 (tokens, edges and importances only), as imported graphs were
/// stored before version 3, still decodes: without ids, activations, end flags or scores.
#[test]
fn version_2_graphs_still_decode() {
    let mut payload = wire::WireWriter::default();
    payload.len(2);
    payload.varint(0);
    payload.varint(1);
    payload.len(2);
    payload.str("the");
    payload.len(0);
    payload.f32(1.0);
    payload.str(" cat");
    payload.len(1);
    payload.varint(0);
    payload.f32(0.5);
    let mut blob = vec![2, b'N', NeuronDataKind::Graph.code(), 0];
    blob.extend_from_slice(&payload.buf);
    let NeuronRecord::Graph(graph) = decode_neuron(NeuronDataKind::Graph, &blob).expect("version 2 decodes") else {
        panic!("graphs decode as graphs");
    };
    assert_eq!(graph.nodes.len(), 2);
    assert_eq!((graph.nodes[1].token.as_str(), &graph.nodes[1].required[..]), (" cat", &[0][..]));
    assert!(graph.nodes.iter().all(|n| n.token_id.is_none() && n.activation.is_none() && !n.is_end));
    assert_eq!(graph.scores, None);
    // The same bytes under version 3 lack the node flags: truncated, not misread.
    blob[0] = 3;
    assert!(decode_neuron(NeuronDataKind::Graph, &blob).is_err());
}

/// `explanations` blobs of format version 4 (the author's byte, then a second flags byte and an
/// always-present list of simulations) still decode, with and without their details.
#[test]
fn version_4_explanations_still_decode() {
    let mut payload = wire::WireWriter::default();
    payload.len(2);
    // An explanation with an author, provenance (no simulator), one simulated token, no embedding.
    payload.str("dates");
    payload.str("generated");
    payload.u8(1);
    payload.str("smollm2");
    payload.len(1);
    payload.str("ev_correlation_score");
    payload.f32(0.5);
    payload.u8(1);
    payload.str("oai-token-activation-pairs/1");
    payload.str("prompt");
    payload.str("2026-12-06T00:00:00Z");
    payload.len(1);
    payload.len(1);
    payload.varint(7);
    payload.f32(2.0);
    payload.f32(1.5);
    // An explanation with nothing but text and origin.
    payload.str("plain");
    payload.str("imported");
    payload.u8(0);
    payload.len(0);
    payload.u8(0);
    payload.len(0);
    let mut blob = vec![4, b'N', NeuronDataKind::Explanations.code(), 0];
    blob.extend_from_slice(&payload.buf);
    let NeuronRecord::Explanations(decoded) =
        decode_neuron(NeuronDataKind::Explanations, &blob).expect("version 4 decodes")
    else {
        panic!("explanations decode as explanations");
    };
    let [first, second] = &decoded.explanations[..] else { panic!("two explanations") };
    assert_eq!(first.author.as_deref(), Some("smollm2"));
    assert_eq!(first.score("ev_correlation_score"), Some(0.5));
    let provenance = first.provenance.as_ref().expect("provenance");
    assert_eq!((provenance.prompt.as_str(), provenance.simulator.as_deref()), ("prompt", None));
    assert_eq!(first.simulations.len(), 1);
    assert_eq!(first.simulations[0].token_ids, [7]);
    assert_eq!(first.simulations[0].simulated_activations, [1.5]);
    assert!(first.embedding.is_none());
    assert_eq!(
        (second.text.as_str(), second.author.as_ref(), second.provenance.as_ref(), second.simulations.len()),
        ("plain", None, None, 0)
    );
    // Version 5 spends one byte where version 4 spent two on an explanation without details.
    let record = NeuronRecord::Explanations(dd_data::Explanations { explanations: vec![second.clone()] });
    let version_5 = encode_neuron(&record, &EncodeOptions::STANDARD).expect("encode");
    assert_eq!(version_5[0], 5);
    assert_eq!(version_5.len(), 4 + 1 + 6 + 9 + 1 + 1);
    assert_eq!(decode_neuron(NeuronDataKind::Explanations, &version_5).expect("decode"), record);
}

/// A payload that compresses past the ratio decoding accepts is stored uncompressed, and decodes.
#[test]
fn extremely_compressible_payloads_still_decode() {
    let zero = dd_data::NeuronSummary { max_activation: 0.0, min_activation: 0.0, density: 0.0, kurtosis: 0.0 };
    let record = LayerRecord::Summary(dd_data::LayerSummary { neurons: vec![zero; 100_000] });
    let blob = encode_layer(&record, &EncodeOptions::STANDARD).expect("encode");
    assert_eq!(blob[3], 0, "stored without compression");
    assert_eq!(decode_layer(LayerDataKind::Summary, &blob).expect("decodes"), record);
}

#[test]
fn header_mismatches_are_reported() {
    let blob = encode_neuron(&sample_records()[1], &EncodeOptions::STANDARD).expect("encode");
    assert!(matches!(decode_neuron(NeuronDataKind::Logits, &blob), Err(CodecError::WrongKind { .. })));
    assert!(matches!(decode_layer(LayerDataKind::Ranking, &blob), Err(CodecError::WrongKind { .. })));
    let mut newer = blob.clone();
    newer[0] = FORMAT_VERSION + 1;
    assert!(matches!(decode_neuron(NeuronDataKind::Stats, &newer), Err(CodecError::UnsupportedVersion { .. })));
}

#[test]
fn invalid_records_are_refused() {
    let bad = NeuronRecord::Examples(NeuronExamples {
        groups: vec![ExampleGroup {
            kind: ExampleGroupKind::Top,
            examples: vec![Example {
                dataset_index: 0,
                tokens: vec![1],
                activations: vec![],
                max_token_index: 0,
                activation_error: 0.0,
            }],
        }],
    });
    assert!(matches!(encode_neuron(&bad, &EncodeOptions::STANDARD), Err(CodecError::InvalidRecord(_))));
    let nan_logit =
        NeuronRecord::Logits(LogitAttribution { top: vec![TokenValue { token: 1, value: f32::NAN }], bottom: vec![] });
    assert!(matches!(encode_neuron(&nan_logit, &EncodeOptions::STANDARD), Err(CodecError::InvalidRecord(_))));
    let nan_weights = [
        NeuronRecord::ActivatingTokens(ActivatingTokens {
            tokens: vec![TokenMean { token: 1, mean: f32::NAN, count: 3 }],
        }),
        NeuronRecord::InputTokens(InputTokens {
            top: vec![],
            bottom: vec![TokenValue { token: 1, value: f32::NEG_INFINITY }],
        }),
        NeuronRecord::Connections(NeuronConnections {
            inputs: vec![],
            outputs: vec![Connection { neuron: NeuronIndex { layer: 1, index: 0 }, weight: f32::INFINITY }],
        }),
    ];
    for record in &nan_weights {
        assert!(
            matches!(encode_neuron(record, &EncodeOptions::STANDARD), Err(CodecError::InvalidRecord(_))),
            "{record:?}"
        );
    }
    let nan_rank = RankedNeuron { neuron: NeuronIndex { layer: 0, index: 0 }, score: f32::INFINITY };
    let ranking = NeuronRanking { neurons: vec![nan_rank] };
    assert!(matches!(
        encode_layer(&LayerRecord::Ranking(ranking.clone()), &EncodeOptions::STANDARD),
        Err(CodecError::InvalidRecord(_))
    ));
    assert!(matches!(
        encode_model(&ModelRecord::Ranking(ranking), &EncodeOptions::STANDARD),
        Err(CodecError::InvalidRecord(_))
    ));
    let odd_bits = EncodeOptions { activation_bits: 12, zstd_level: 3 };
    assert!(matches!(encode_neuron(&sample_records()[0], &odd_bits), Err(CodecError::BadOptions(_))));
}

/// Token ids of 65,536 and above (Llama-3-sized vocabularies) use the varint column.
#[test]
fn large_token_ids_round_trip() {
    let tokens: Vec<u32> = vec![0, 65_535, 65_536, 128_255, 3, 1 << 24];
    let record = NeuronRecord::Examples(NeuronExamples {
        groups: vec![ExampleGroup {
            kind: ExampleGroupKind::Top,
            examples: vec![Example {
                dataset_index: 1,
                activations: vec![0.5; tokens.len()],
                tokens: tokens.clone(),
                max_token_index: 0,
                activation_error: 0.0,
            }],
        }],
    });
    let blob = encode_neuron(&record, &EncodeOptions::STANDARD).expect("encode");
    let stored = decode_examples_quantized(&blob).expect("decode");
    assert_eq!(stored.tokens, tokens);
}
