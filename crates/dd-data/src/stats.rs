//! Activation statistics of one neuron over the recorded tokens.

use crate::DataError;

/// Number of bins in the recorder's activation histograms.
pub const HISTOGRAM_BINS: usize = 50;

/// Summary statistics of a neuron's activations over every recorded token but the BOS token that
/// starts each context, whose activations are summarised apart in [`NeuronStats::bos`].
///
/// Many models park huge activations on the first position (an "attention sink": SmolLM2's
/// neuron 11/1229 reaches 3,272 there and about 2 elsewhere). Mixed in, they would make every
/// statistic describe the sink instead of what the neuron responds to in text.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronStats {
    /// Number of activations summarised (BOS positions excluded).
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
    /// The activations at the BOS position, when contexts start with one and the recorder kept
    /// them apart (`None` in records written before it did, and for tokenizers without BOS).
    pub bos: Option<PositionStats>,
}

/// Activations of a neuron at one position of every context (the BOS token that starts them).
///
/// A causal model sees nothing before the first position, so its activation there is the same in
/// every context: `min`, `max` and `mean` agree unless contexts start with different tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionStats {
    /// Contexts summarised.
    pub count: u64,
    /// Largest activation.
    pub max: f64,
    /// Smallest activation.
    pub min: f64,
    /// Mean activation.
    pub mean: f64,
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

    /// About the value that `count` values reach: counting down from the top bin, within the bin
    /// where the count is reached as if its values were spread evenly; the lower edge when the
    /// histogram holds fewer.
    pub fn value_exceeded_by(&self, count: f64) -> f64 {
        let (lower, width) = self.bin_layout();
        let mut above = 0.0;
        for (i, &in_bin) in self.counts.iter().enumerate().rev() {
            let in_bin = in_bin as f64;
            if in_bin > 0.0 && above + in_bin >= count {
                let top = lower + width * (i + 1) as f64;
                return top - width * (count - above) / in_bin;
            }
            above += in_bin;
        }
        lower
    }

    /// The lower edge and the width of the bins, in f64.
    fn bin_layout(&self) -> (f64, f64) {
        let lower = f64::from(self.lower);
        (lower, (f64::from(self.upper) - lower) / self.counts.len().max(1) as f64)
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
        if let Some(bos) = &self.bos {
            for (what, value) in [("bos max", bos.max), ("bos min", bos.min), ("bos mean", bos.mean)] {
                if !value.is_finite() {
                    return Err(DataError::NotFinite { what });
                }
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

    #[test]
    fn the_value_a_count_reaches_interpolates_within_a_bin() {
        let h = Histogram { lower: 0.0, upper: 4.0, counts: vec![10, 20, 30, 40] };
        assert_eq!(h.value_exceeded_by(40.0), 3.0);
        assert_eq!(h.value_exceeded_by(20.0), 3.5);
        assert_eq!(h.value_exceeded_by(55.0), 2.5);
        assert_eq!(h.value_exceeded_by(100.0), 0.0);
        assert_eq!(h.value_exceeded_by(1000.0), 0.0);
    }
}
