//! The correlation pass against brute force: Pearson's r of every pair in f64, on activations with
//! planted structure (groups of neurons sharing a signal, some with flipped sign, a constant
//! neuron), tiles that do not divide the neurons, and chunks of tokens added one by one.

use dd_model::correlation::{ActivationSample, CorrelationOptions};

/// A deterministic uniform in [0, 1).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

const NEURONS: usize = 150;
const TOKENS: usize = 400;
const CONSTANT: usize = 77;

/// `[tokens, neurons]`: neuron n follows signal n % 7 (negated for every third neuron) plus noise
/// of its own size, offset far from zero (where f16 would lose the spread without the shift).
fn activations() -> Vec<f32> {
    let mut random = SplitMix(7);
    let mut values = vec![0f32; TOKENS * NEURONS];
    for token in 0..TOKENS {
        let signals: Vec<f64> = (0..7).map(|_| random.next() * 2.0 - 1.0).collect();
        for neuron in 0..NEURONS {
            let sign = if neuron % 3 == 0 { -1.0 } else { 1.0 };
            let noise = (random.next() * 2.0 - 1.0) * (0.2 + (neuron % 5) as f64 * 0.3);
            let value = 100.0 + (neuron as f64) + sign * signals[neuron % 7] * 3.0 + noise;
            values[token * NEURONS + neuron] = if neuron == CONSTANT { 4.25 } else { value as f32 };
        }
    }
    values
}

fn pearson(values: &[f32], a: usize, b: usize) -> f64 {
    let column = |n: usize| values.chunks_exact(NEURONS).map(move |row| f64::from(row[n]));
    let mean = |n: usize| column(n).sum::<f64>() / TOKENS as f64;
    let (ma, mb) = (mean(a), mean(b));
    let covariance: f64 = column(a).zip(column(b)).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let norm = |n: usize, m: f64| column(n).map(|x| (x - m) * (x - m)).sum::<f64>().sqrt();
    covariance / (norm(a, ma) * norm(b, mb))
}

#[test]
fn correlations_match_brute_force() {
    let values = activations();
    let mut sample = ActivationSample::new(NEURONS, TOKENS).expect("sample");
    for chunk in values.chunks(37 * NEURONS) {
        sample.push(chunk).expect("push");
    }
    assert_eq!(sample.tokens(), TOKENS);
    let options = CorrelationOptions { k: 6, neuron_block: 64 };
    let counted = std::sync::atomic::AtomicU64::new(0);
    let found = sample
        .correlations(&options, &|n| {
            counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .expect("correlations");
    assert_eq!(counted.into_inner(), (NEURONS * NEURONS) as u64);
    assert_eq!(found.len(), NEURONS);
    assert!(found[CONSTANT].positive.is_empty() && found[CONSTANT].negative.is_empty());

    let mut checked = 0;
    for (neuron, lists) in found.iter().enumerate() {
        if neuron == CONSTANT {
            continue;
        }
        let mut truth: Vec<(usize, f64)> = (0..NEURONS)
            .filter(|&other| other != neuron && other != CONSTANT)
            .map(|other| (other, pearson(&values, neuron, other)))
            .collect();
        truth.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (list, expected) in
            [(&lists.positive, &truth[..]), (&lists.negative, &truth.iter().rev().copied().collect::<Vec<_>>()[..])]
        {
            assert_eq!(list.len(), options.k, "neuron {neuron}");
            for (rank, entry) in list.iter().enumerate() {
                assert_ne!(entry.neuron as usize, neuron);
                assert_ne!(entry.neuron as usize, CONSTANT);
                let exact = pearson(&values, neuron, entry.neuron as usize);
                // f16 storage of the shifted activations: r within 2e-3 of the exact value.
                assert!((f64::from(entry.correlation) - exact).abs() < 2e-3, "{neuron}: {entry:?} vs {exact}");
                // The same neurons as brute force, up to near-ties with what brute force ranks here.
                assert!(
                    (exact - expected[rank].1).abs() < 4e-3,
                    "{neuron} rank {rank}: {entry:?} (exact {exact}) vs {:?}",
                    expected[rank]
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, (NEURONS - 1) * 2 * options.k);
    // The planted structure: a neuron's strongest positive partners share its signal and sign.
    let neuron = 10;
    for entry in &found[neuron].positive[..3] {
        let other = entry.neuron as usize;
        assert_eq!(other % 7, neuron % 7);
        assert_eq!(other % 3 == 0, neuron % 3 == 0);
        assert!(entry.correlation > 0.5, "{entry:?}");
    }
}

#[test]
fn the_same_lists_whatever_the_tile_size() {
    let values = activations();
    let mut sample = ActivationSample::new(NEURONS, TOKENS).expect("sample");
    sample.push(&values).expect("push");
    let lists = |block| sample.correlations(&CorrelationOptions { k: 4, neuron_block: block }, &|_| {}).expect("run");
    let whole = lists(NEURONS);
    for block in [1, 7, 64] {
        let tiled = lists(block);
        for (a, b) in whole.iter().zip(&tiled) {
            let ids = |l: &[dd_model::correlation::Correlated]| l.iter().map(|c| c.neuron).collect::<Vec<_>>();
            assert_eq!(ids(&a.positive), ids(&b.positive), "block {block}");
            assert_eq!(ids(&a.negative), ids(&b.negative), "block {block}");
        }
    }
}

#[test]
fn bad_samples_are_refused() {
    let mut sample = ActivationSample::new(3, 4).expect("sample");
    assert!(sample.push(&[1.0; 7]).is_err(), "not whole rows");
    assert!(sample.push(&[1.0; 15]).is_err(), "past the room");
    sample.push(&[1.0, 2.0, 3.0]).expect("one row");
    let error = sample.correlations(&CorrelationOptions::default(), &|_| {}).expect_err("one token");
    assert!(error.to_string().contains("too few"), "{error}");
    assert!(ActivationSample::new(usize::MAX, 3).is_err());
}
