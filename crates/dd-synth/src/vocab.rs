//! A synthetic vocabulary with English-like display strings and Zipf-distributed token frequencies.

use dd_data::Vocabulary;

use crate::rng::SynthRng;

/// The most frequent tokens of English web text in GPT-2's display form, so examples read plausibly.
const COMMON: &[&str] = &[
    " the", ",", ".", " of", " and", " to", " a", " in", "\n", " is", " that", " for", " it", " on", " was", " with",
    " as", " be", " by", " this", " are", " or", " at", " from", " have", " an", " not", " his", " but", " they",
    " he", " which", " we", " you", " I", " their", " has", " one", " all", " were", " can", " been", " more", " will",
    " would", " there", " also", " who", "'s", " so", " time", " new", " she", " her", " people", " about", " into",
    " first", " after", " what", " two", " years", " like", " when", " only", " other", " over", " its", " may",
    " could", " out", " year", " state", " city", " game", " music", " school", " world", "\"", "(", ")", ":", ";",
    "-", " -", " 1", " 2", " 2020", " $", "%", "!", "?", " The", " In", " It", " A", " He", " This",
];

const ONSETS: &[&str] = &["b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "tr", "pl"];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ea", "ou", "ai"];
const CODAS: &[&str] = &["", "n", "r", "s", "t", "l", "nd", "st", "ng"];

/// Builds `size` display strings: the common tokens, then invented words (with or without a leading space).
pub fn vocabulary(size: u32, seed: u64) -> Vocabulary {
    let mut rng = SynthRng::new(seed, &[0x70C]);
    let mut tokens: Vec<String> = COMMON.iter().take(size as usize).map(|s| (*s).to_owned()).collect();
    let mut seen: std::collections::HashSet<String> = tokens.iter().cloned().collect();
    while tokens.len() < size as usize {
        let n_syllables = 1 + rng.below(3) as usize;
        let mut word = String::new();
        if rng.below(4) != 0 {
            word.push(' ');
        }
        for _ in 0..n_syllables {
            word.push_str(ONSETS[rng.below(ONSETS.len() as u64) as usize]);
            word.push_str(VOWELS[rng.below(VOWELS.len() as u64) as usize]);
            word.push_str(CODAS[rng.below(CODAS.len() as u64) as usize]);
        }
        if !seen.contains(&word) {
            seen.insert(word.clone());
            tokens.push(word);
        } else {
            // Short words run out; a numeric suffix keeps every display string unique.
            let unique = format!("{word}{}", tokens.len());
            seen.insert(unique.clone());
            tokens.push(unique);
        }
    }
    Vocabulary { tokens }
}

/// Samples token ids with Zipf frequencies (p(rank) ∝ 1 / (rank + 2.7)), as in natural text.
pub struct ZipfSampler {
    cumulative: Vec<f64>,
}

impl ZipfSampler {
    /// A sampler over `size` tokens.
    pub fn new(size: u32) -> Self {
        let mut total = 0.0;
        let cumulative = (0..size.max(1))
            .map(|rank| {
                total += 1.0 / (f64::from(rank) + 2.7);
                total
            })
            .collect::<Vec<_>>();
        let cumulative = cumulative.iter().map(|c| c / total).collect();
        Self { cumulative }
    }

    /// One token id.
    pub fn sample(&self, rng: &mut SynthRng) -> u32 {
        let u = rng.unit();
        self.cumulative.partition_point(|&c| c < u).min(self.cumulative.len() - 1) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_is_unique_and_sized() {
        let vocabulary = vocabulary(5000, 1);
        assert_eq!(vocabulary.len(), 5000);
        let unique: std::collections::HashSet<_> = vocabulary.tokens.iter().collect();
        assert_eq!(unique.len(), 5000);
        assert_eq!(vocabulary.token(0), Some(" the"));
    }

    #[test]
    fn zipf_favours_low_ranks() {
        let sampler = ZipfSampler::new(1000);
        let mut rng = SynthRng::new(3, &[]);
        let samples: Vec<u32> = (0..10_000).map(|_| sampler.sample(&mut rng)).collect();
        assert!(samples.iter().all(|&t| t < 1000));
        let n_top10 = samples.iter().filter(|&&t| t < 10).count();
        let n_next10 = samples.iter().filter(|&&t| (10..20).contains(&t)).count();
        assert!(n_top10 > 2 * n_next10, "{n_top10} vs {n_next10}");
    }
}
