//! A small deterministic generator (SplitMix64) so synthetic databases are the same on every build.
//!
//! `rand`'s generators may change between versions; fixtures and benchmarks
//! must not.

/// SplitMix64 with helpers for the distributions `synth` needs.
#[derive(Debug, Clone)]
pub struct SynthRng(u64);

impl SynthRng {
    /// A generator for one stream, mixed from a seed and stream ids.
    pub fn new(seed: u64, streams: &[u64]) -> Self {
        let mut rng = SynthRng(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        for &stream in streams {
            rng.0 ^= stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            rng.next_u64();
        }
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| SynthRng::new(1, &[2, 3]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(SynthRng::new(1, &[2, 3]).next_u64(), SynthRng::new(1, &[3, 2]).next_u64());
        let mut rng = SynthRng::new(9, &[]);
        let n = 20_000;
        let mean = (0..n).map(|_| rng.normal()).sum::<f64>() / f64::from(n);
        assert!(mean.abs() < 0.05, "normal mean {mean}");
        assert!((0..1000).all(|_| rng.below(7) < 7));
    }
}
