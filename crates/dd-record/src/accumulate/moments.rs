//! Running central moments (count, mean, M2, M3, M4) that merge exactly in any grouping.
//!
//! Each batch is summed in f64 around the mean so far, which keeps the sums small, and then combined
//! with Pébay's formulas (Sandia report SAND2008-6212), the same ones that merge shards.

/// Count, mean and the sums of the 2nd to 4th powers of deviations from the mean.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Moments {
    pub(crate) count: u64,
    pub(crate) mean: f64,
    pub(crate) m2: f64,
    pub(crate) m3: f64,
    pub(crate) m4: f64,
}

/// Sums of powers of `x − shift` over a batch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ShiftedSums {
    pub(crate) count: u64,
    pub(crate) s1: f64,
    pub(crate) s2: f64,
    pub(crate) s3: f64,
    pub(crate) s4: f64,
}

impl ShiftedSums {
    /// Adds one value's deviation from the shift (the recorder adds whole rows at once instead).
    #[cfg(test)]
    pub(crate) fn add(&mut self, deviation: f64) {
        let d2 = deviation * deviation;
        self.s1 += deviation;
        self.s2 += d2;
        self.s3 += d2 * deviation;
        self.s4 += d2 * d2;
    }
}

impl Moments {
    /// The moments of a batch summed around `shift`.
    pub(crate) fn from_shifted(sums: ShiftedSums, shift: f64) -> Self {
        if sums.count == 0 {
            return Self::default();
        }
        let n = sums.count as f64;
        let d = sums.s1 / n;
        let (d2, d3, d4) = (d * d, d * d * d, d * d * d * d);
        Self {
            count: sums.count,
            mean: shift + d,
            m2: (sums.s2 - n * d2).max(0.0),
            m3: sums.s3 - 3.0 * d * sums.s2 + 2.0 * n * d3,
            m4: (sums.s4 - 4.0 * d * sums.s3 + 6.0 * d2 * sums.s2 - 3.0 * n * d4).max(0.0),
        }
    }

    /// Folds another set's moments into these.
    pub(crate) fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        let (delta2, delta3, delta4) = (delta * delta, delta * delta * delta, delta * delta * delta * delta);
        let m2 = self.m2 + other.m2 + delta2 * na * nb / n;
        let m3 = self.m3
            + other.m3
            + delta3 * na * nb * (na - nb) / (n * n)
            + 3.0 * delta * (na * other.m2 - nb * self.m2) / n;
        let m4 = self.m4
            + other.m4
            + delta4 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6.0 * delta2 * (na * na * other.m2 + nb * nb * self.m2) / (n * n)
            + 4.0 * delta * (na * other.m3 - nb * self.m3) / n;
        *self = Self { count: self.count + other.count, mean: self.mean + delta * nb / n, m2, m3, m4 };
    }

    /// Population variance.
    pub(crate) fn variance(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.m2 / self.count as f64 }
    }

    /// Third standardised moment; 0 for a constant.
    pub(crate) fn skewness(&self) -> f64 {
        let variance = self.variance();
        if variance <= 0.0 { 0.0 } else { self.m3 / self.count as f64 / variance.powf(1.5) }
    }

    /// Fourth standardised moment (not excess); 0 for a constant.
    pub(crate) fn kurtosis(&self) -> f64 {
        let variance = self.variance();
        if variance <= 0.0 { 0.0 } else { self.m4 / self.count as f64 / (variance * variance) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[f64], shift: f64) -> Moments {
        let mut sums = ShiftedSums { count: values.len() as u64, ..ShiftedSums::default() };
        values.iter().for_each(|&x| sums.add(x - shift));
        Moments::from_shifted(sums, shift)
    }

    /// Two-pass textbook moments, the reference.
    fn two_pass(values: &[f64]) -> (f64, f64, f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let central = |p: i32| values.iter().map(|x| (x - mean).powi(p)).sum::<f64>() / n;
        let variance = central(2);
        (mean, variance, central(3) / variance.powf(1.5), central(4) / (variance * variance))
    }

    #[test]
    fn merged_batches_match_two_passes() {
        let values: Vec<f64> =
            (0..1000).map(|i| ((i * 7919) % 1000) as f64 / 100.0 - 3.0 + ((i % 13) as f64).powi(3) / 50.0).collect();
        let mut merged = Moments::default();
        for chunk in values.chunks(37) {
            merged.merge(&of(chunk, merged.mean));
        }
        let (mean, variance, skewness, kurtosis) = two_pass(&values);
        for (got, want) in [
            (merged.mean, mean),
            (merged.variance(), variance),
            (merged.skewness(), skewness),
            (merged.kurtosis(), kurtosis),
        ] {
            assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{got} vs {want}");
        }
        assert_eq!(merged.count, 1000);
    }

    #[test]
    fn constants_have_zero_shape() {
        let constant = of(&[2.0; 10], 0.0);
        assert_eq!((constant.variance(), constant.skewness(), constant.kurtosis()), (0.0, 0.0, 0.0));
    }
}
