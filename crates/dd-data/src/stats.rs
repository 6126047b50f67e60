//! Activation statistics of one neuron over the recorded tokens.

use crate::DataError;

/// Number of bins in the recorder's activation histograms.
pub const HISTOGRAM_BINS: usize = 50;

/// Summary statistics of a neuron's activations over every recorded token.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronStats {
    /// Number of activations summarised.
    pub count: u64,
    /// Largest activation.
    pub max: f64,
    /// Smallest activation.
    pub min: f64,
    /// Mean activation.
    pub mean: f64,
    /// Population variance.
    pub variance: f64,
    /// Skewness (third standardised moment).
    pub skewness: f64,
    /// Kurtosis (fourth standardised moment, not excess).
    pub kurtosis: f64,
    /// Share of tokens on which the neuron fires (activation > 0).
    pub density: f64,
    /// Histogram of the activations.
    pub histogram: Histogram,
}

/// Equal-width histogram over `[lower, upper]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Lower edge of the first bin.
    pub lower: f32,
    /// Upper edge of the last bin.
    pub upper: f32,
    /// Count in each bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Checks that the histogram has bins and a non-empty range.
    pub fn validate(&self) -> Result<(), DataError> {
        if self.counts.is_empty() || self.lower.partial_cmp(&self.upper) != Some(std::cmp::Ordering::Less) {
            return Err(DataError::BadHistogram { n_bins: self.counts.len() });
        }
        Ok(())
    }

    /// The edges of the bins (`counts.len() + 1` values).
    pub fn edges(&self) -> Vec<f32> {
        let n_bins = self.counts.len();
        let width = (f64::from(self.upper) - f64::from(self.lower)) / n_bins as f64;
        (0..=n_bins).map(|i| (f64::from(self.lower) + width * i as f64) as f32).collect()
    }
}

impl NeuronStats {
    /// Checks that every number is finite and the histogram is well formed.
    pub fn validate(&self) -> Result<(), DataError> {
        for (what, value) in [
            ("max", self.max),
            ("min", self.min),
            ("mean", self.mean),
            ("variance", self.variance),
            ("skewness", self.skewness),
            ("kurtosis", self.kurtosis),
            ("density", self.density),
        ] {
            if !value.is_finite() {
                return Err(DataError::NotFinite { what });
            }
        }
        self.histogram.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_span_the_range() {
        let h = Histogram { lower: -1.0, upper: 4.0, counts: vec![1; 5] };
        assert_eq!(h.edges(), vec![-1.0, 0.0, 1.0, 2.0, 3.0, 4.0]);
        assert!(h.validate().is_ok());
        assert!(Histogram { lower: 1.0, upper: 1.0, counts: vec![1] }.validate().is_err());
        assert!(Histogram { lower: 0.0, upper: 1.0, counts: vec![] }.validate().is_err());
    }
}
