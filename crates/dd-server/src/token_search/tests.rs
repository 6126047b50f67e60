//! The index against brute force over random neurons: every query's total, order, scores and
//! matched forms, in both match modes, with typed and several terms, paged.

use std::collections::HashMap;

use dd_data::{FiringCounts, GraphNode, GraphScores, Histogram, TokenMean, Vocabulary};

use super::*;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

const WORDS: [&str; 8] = ["the", "paris", "dog", "she", "said", "a", "cat", "of"];

/// Display forms: each word with and without a leading space, in three cases.
fn vocabulary() -> Vocabulary {
    let mut tokens = vec!["<|endoftext|>".to_owned()];
    for word in WORDS {
        let capital = format!("{}{}", word[..1].to_uppercase(), &word[1..]);
        for form in [word.to_owned(), capital, word.to_uppercase()] {
            tokens.push(form.clone());
            tokens.push(format!("·{form}"));
        }
    }
    Vocabulary { tokens }
}

fn stats(mean: f64, variance: f64) -> NeuronStats {
    NeuronStats {
        count: 100,
        max: 10.0,
        min: -1.0,
        mean,
        variance,
        skewness: 0.0,
        kurtosis: 3.0,
        density: 0.1,
        histogram: Histogram { lower: -1.0, upper: 10.0, counts: vec![100] },
        bos: None,
    }
}

/// Random neurons: some with activating tokens, some with graphs (nodes with and without token
/// ids, activations and scores), some with neither, some without stats.
fn neurons(rng: &mut Rng, n_layers: u32, units: u32, n_tokens: usize) -> Vec<NeuronTokens> {
    let mut all = Vec::new();
    for layer in 0..n_layers {
        for index in 0..units {
            let neuron = NeuronIndex { layer, index };
            let stats = (rng.below(8) > 0).then(|| stats(f64::from(rng.unit()), f64::from(rng.unit()) * 2.0));
            let activating = (rng.below(4) > 0).then(|| ActivatingTokens {
                tokens: (0..rng.below(6))
                    .map(|_| TokenMean {
                        token: 1 + rng.below(n_tokens - 1) as u32,
                        mean: rng.unit() * 5.0 - 1.0,
                        count: 1 + rng.below(50) as u64,
                    })
                    .collect(),
            });
            let graph = (rng.below(3) > 0).then(|| {
                let n_nodes = rng.below(6);
                let n_first = rng.below(n_nodes + 1) as u32;
                let nodes = (0..n_nodes)
                    .map(|_| {
                        let id = 1 + rng.below(n_tokens - 1) as u32;
                        let with_id = rng.below(3) > 0;
                        let raw = vocabulary().tokens[id as usize].replace('·', " ");
                        GraphNode {
                            token: if with_id { raw } else { raw.to_lowercase() },
                            token_id: with_id.then_some(id),
                            required: vec![],
                            importance: rng.unit(),
                            activation: (rng.below(4) > 0).then(|| rng.unit()),
                            is_end: rng.below(2) == 0,
                        }
                    })
                    .collect();
                let counts = FiringCounts::default();
                let scores = (rng.below(4) > 0).then(|| GraphScores {
                    threshold: 0.5,
                    scale: 1.0 + rng.unit() * 4.0,
                    held_out_top: counts,
                    random: counts,
                });
                // `[0, 0]` reads as DeepDecipher's empty root cluster, so the other shape has a first depth.
                let subgraph_indices = if rng.below(2) == 0 { vec![0, 0, n_first] } else { vec![0, n_first.max(1)] };
                NeuronGraph { subgraph_indices, nodes, scores }
            });
            let explanation = (rng.below(2) == 0).then(|| format!("neuron {layer}/{index}"));
            all.push(NeuronTokens { neuron, stats, activating, graph, explanation });
        }
    }
    all
}

/// The spec, written plainly: a neuron's forms with mean, count and places.
fn brute_forms(strings: &TokenStrings, neuron: &NeuronTokens) -> HashMap<String, (f32, u64, u8)> {
    let mut forms: HashMap<String, (f32, u64, u8)> = HashMap::new();
    for token in neuron.activating.iter().flat_map(|a| &a.tokens) {
        let form = strings.display(token.token).replace('·', " ");
        let entry = forms.entry(form).or_insert((f32::NEG_INFINITY, 0, IN_ACTIVATING_TOKENS));
        if token.mean > entry.0 {
            (entry.0, entry.1) = (token.mean, token.count);
        }
    }
    let Some(graph) = &neuron.graph else { return forms };
    let empty_root = graph.subgraph_indices.get(1) == Some(&0);
    let first_end = *graph.subgraph_indices.get(if empty_root { 2 } else { 1 }).unwrap_or(&0) as usize;
    for (i, node) in graph.nodes.iter().enumerate() {
        // Forms are compared as exact matching compares them, `·` read as a space.
        let form = match node.token_id {
            Some(id) => strings.display(id),
            None => node.token.clone(),
        }
        .replace('·', " ");
        let activating = i < first_end || node.activation.is_some_and(|a| a >= 0.5);
        let place = if activating { IN_GRAPH_ACTIVATING } else { IN_GRAPH_CONTEXT };
        let mean = match (node.activation, graph.scores) {
            (Some(a), Some(scores)) => a * scores.scale,
            _ => f32::NAN,
        };
        let entry = forms.entry(form).or_insert((f32::NAN, 0, 0));
        if entry.2 & IN_ACTIVATING_TOKENS == 0 && (entry.0.is_nan() || mean > entry.0) {
            entry.0 = mean;
        }
        entry.2 |= place;
    }
    forms
}

/// Every neuron matching all terms, with its score and matched forms per term, in ranking order.
fn brute_search(
    strings: &TokenStrings,
    neurons: &[NeuronTokens],
    terms: &[Term],
    mode: MatchMode,
) -> Vec<(NeuronIndex, f32, Vec<Vec<String>>)> {
    let key = |text: &str| match mode {
        MatchMode::Exact => text.replace('·', " "),
        MatchMode::Insensitive => text.replace('·', " ").trim().to_lowercase(),
    };
    let mut found = Vec::new();
    for neuron in neurons {
        let forms = brute_forms(strings, neuron);
        let z = |mean: f32| match &neuron.stats {
            Some(s) if s.variance > 0.0 && mean.is_finite() => ((f64::from(mean) - s.mean) / s.variance.sqrt()) as f32,
            _ => f32::NEG_INFINITY,
        };
        let mut score = f32::INFINITY;
        let mut matched = Vec::new();
        for term in terms {
            let wanted = places_of(term.kind);
            let mut names: Vec<String> = forms
                .iter()
                .filter(|(form, entry)| key(form) == key(&term.token) && entry.2 & wanted != 0)
                .map(|(form, _)| form.clone())
                .collect();
            if names.is_empty() {
                break;
            }
            names.sort();
            let best = names.iter().map(|form| z(forms[form].0)).fold(f32::NEG_INFINITY, f32::max);
            score = score.min(best);
            matched.push(names);
        }
        if matched.len() == terms.len() && !terms.is_empty() {
            found.push((neuron.neuron, score, matched));
        }
    }
    found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    found
}

fn index_of(strings: &TokenStrings, units: u32, neurons: Vec<NeuronTokens>) -> TokenSearchIndex {
    let neurons = neurons.into_iter().map(Ok::<_, std::convert::Infallible>);
    match TokenSearchIndex::from_neurons(strings, units, neurons) {
        Ok(index) => index,
        Err(never) => match never {},
    }
}

fn random_query(rng: &mut Rng, strings: &TokenStrings) -> String {
    let n_terms = 1 + rng.below(3);
    let terms: Vec<String> = (0..n_terms)
        .map(|_| {
            let kind = ["", "any:", "activating:", "important:"][rng.below(4)];
            let token = match rng.below(3) {
                0 => WORDS[rng.below(WORDS.len())].to_owned(),
                1 => strings.display(1 + rng.below(strings.len() - 1) as u32),
                _ => format!("\" {}\"", WORDS[rng.below(WORDS.len())].to_uppercase()),
            };
            format!("{kind}{token}")
        })
        .collect();
    terms.join(",")
}

#[test]
fn random_queries_agree_with_brute_force() {
    let strings = TokenStrings::new(vocabulary());
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (n_layers, units) = (4, 50);
    let records = neurons(&mut rng, n_layers, units, strings.len());
    let copies = neurons(&mut Rng(0x5EED_1234_ABCD_0001), n_layers, units, strings.len());
    let index = index_of(&strings, units, records);
    let mut n_nonempty = 0;
    for round in 0..400 {
        let query = random_query(&mut rng, &strings);
        let mode = if round % 2 == 0 { MatchMode::Insensitive } else { MatchMode::Exact };
        let terms = parse(&query);
        let expected = brute_search(&strings, &copies, &terms, mode);
        let all = index.search(&query, mode, 0, usize::MAX);
        assert_eq!(all.total, expected.len(), "{query:?} {mode:?}");
        n_nonempty += usize::from(!expected.is_empty());
        for (found, (neuron, score, forms)) in all.found.iter().zip(&expected) {
            assert_eq!(found.neuron, *neuron, "{query:?} {mode:?}");
            assert_eq!(rank(found.z), *score, "{query:?} {mode:?} {neuron:?}");
            let mut got: Vec<Vec<String>> =
                found.matches.iter().map(|m| m.forms.iter().map(|f| f.replace('·', " ")).collect()).collect();
            got.iter_mut().for_each(|names| names.sort());
            assert_eq!(&got, forms, "{query:?} {mode:?} {neuron:?}");
            let expected_explanation = format!("neuron {}/{}", neuron.layer, neuron.index);
            assert!(found.explanation.is_none_or(|e| e == expected_explanation));
        }
        // A page is the same slice of the whole.
        let (offset, limit) = (rng.below(5), 1 + rng.below(4));
        let page = index.search(&query, mode, offset, limit);
        assert_eq!(page.total, all.total);
        // Compared as text: undefined scores are NaN, which is not equal to itself.
        let expected_page: Vec<&Found<'_>> = all.found.iter().skip(offset).take(limit).collect();
        assert_eq!(format!("{:?}", page.found.iter().collect::<Vec<_>>()), format!("{expected_page:?}"), "{query:?}");
    }
    assert!(n_nonempty > 100, "only {n_nonempty} queries found anything");
}

#[test]
fn selectivity_outranks_magnitude() {
    let strings = TokenStrings::new(vocabulary());
    // Word 1 (`paris`), its second form: the one with a leading space.
    let id = 8;
    assert_eq!(strings.display(id), "·paris");
    let neuron = |index, mean_on_token, neuron_mean, variance| NeuronTokens {
        neuron: NeuronIndex { layer: 0, index },
        stats: Some(stats(neuron_mean, variance)),
        activating: Some(ActivatingTokens { tokens: vec![TokenMean { token: id, mean: mean_on_token, count: 3 }] }),
        graph: None,
        explanation: None,
    };
    // Neuron 0 fires hard on everything (z = 1); neuron 1 fires a little, but only here (z = 4).
    let index = index_of(&strings, 4, vec![neuron(0, 20.0, 10.0, 100.0), neuron(1, 2.0, 0.0, 0.25)]);
    let results = index.search("paris", MatchMode::Insensitive, 0, 10);
    let order: Vec<(u32, f32)> = results.found.iter().map(|f| (f.neuron.index, f.z)).collect();
    assert_eq!(order, [(1, 4.0), (0, 1.0)]);
    assert_eq!(results.found[0].matches[0].forms, ["·paris"]);
    assert_eq!(results.found[0].matches[0].places, IN_ACTIVATING_TOKENS);
}

#[test]
fn exact_forms_need_their_space_and_case() {
    let strings = TokenStrings::new(vocabulary());
    let tokens = vec![
        TokenMean { token: 1, mean: 1.0, count: 1 },
        TokenMean { token: 2, mean: 2.0, count: 2 },
        TokenMean { token: 3, mean: 3.0, count: 3 },
    ];
    let neuron = NeuronTokens {
        neuron: NeuronIndex { layer: 1, index: 2 },
        stats: Some(stats(0.0, 1.0)),
        activating: Some(ActivatingTokens { tokens }),
        graph: None,
        explanation: Some("fires on the".into()),
    };
    let index = index_of(&strings, 4, vec![neuron]);
    let forms = |query: &str, mode| -> Vec<Vec<&str>> {
        index.search(query, mode, 0, 10).found.iter().map(|f| f.matches[0].forms.clone()).collect()
    };
    assert_eq!(forms("THE", MatchMode::Insensitive), [["the", "·the", "The"]]);
    assert_eq!(forms("the", MatchMode::Exact), [["the"]]);
    assert_eq!(forms("·the", MatchMode::Exact), [["·the"]]);
    assert_eq!(forms("\" the\"", MatchMode::Exact), [["·the"]]);
    assert!(forms("THE", MatchMode::Exact).is_empty());
    let page = index.page("the", MatchMode::Insensitive, 0, 10);
    assert_eq!((page.total, page.token.as_str(), page.match_mode.as_str()), (1, "the", "insensitive"));
    let hit = &page.neurons[0];
    assert_eq!((hit.layer, hit.neuron, hit.z, hit.mean, hit.count), (1, 2, Some(3.0), Some(3.0), Some(3)));
    assert_eq!(hit.explanation.as_deref(), Some("fires on the"));
    assert_eq!(hit.matches[0].found_in, ["activating_tokens"]);
    assert_eq!(index.page("", MatchMode::Insensitive, 0, 10).total, 0);
}

#[test]
fn graphs_alone_are_searched_and_an_empty_index_finds_nothing() {
    let strings = TokenStrings::new(vocabulary());
    let node = |token: &str, activation| GraphNode {
        token: token.into(),
        token_id: None,
        required: vec![],
        importance: 1.0,
        activation,
        is_end: true,
    };
    let scores = GraphScores {
        threshold: 0.5,
        scale: 4.0,
        held_out_top: FiringCounts::default(),
        random: FiringCounts::default(),
    };
    let graph = NeuronGraph {
        subgraph_indices: vec![0, 0, 1],
        nodes: vec![node(" dog", Some(1.0)), node("the", Some(0.25)), node("cat", Some(0.75)), node("a", None)],
        scores: Some(scores),
    };
    let neuron = NeuronTokens {
        neuron: NeuronIndex { layer: 0, index: 3 },
        stats: Some(stats(1.0, 1.0)),
        activating: None,
        graph: Some(graph),
        explanation: None,
    };
    let index = index_of(&strings, 4, vec![neuron]);
    let one = |query: &str| {
        let results = index.search(query, MatchMode::Insensitive, 0, 10);
        results.found.first().map(|f| (f.z, f.matches[0].places, f.matches[0].forms.clone()))
    };
    assert_eq!(one("dog"), Some((3.0, IN_GRAPH_ACTIVATING, vec![" dog"])), "depth 0: activation 1 × scale 4");
    assert_eq!(one("activating:cat").map(|m| m.1), Some(IN_GRAPH_ACTIVATING), "activation ≥ 0.5");
    assert_eq!(one("important:the"), Some((0.0, IN_GRAPH_CONTEXT, vec!["the"])));
    assert_eq!(one("activating:the"), None);
    assert!(one("a").is_some_and(|m| m.0.is_nan()), "no activation: no mean, no z");
    assert_eq!(index.search("dog,the", MatchMode::Insensitive, 0, 10).found[0].z, 0.0, "the smaller z");

    let empty = index_of(&strings, 4, Vec::new());
    assert_eq!(empty.search("the", MatchMode::Insensitive, 0, 10).total, 0);
}
