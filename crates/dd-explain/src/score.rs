//! Calibration and scores of a simulation against the neuron's true activations, with OpenAI's
//! definitions (automated-interpretability `explanations/scoring.py` and its linear calibration),
//! pooled over every token of every sequence scored. Checked against an independent Python
//! implementation (`scripts/make_explanation_score_fixture.py`).

/// Names of the scores stored with an explanation, most important first.
pub mod names {
    /// Pearson correlation of simulated and true activations over held-out top and random
    /// sequences pooled: OpenAI's headline "top-and-random" score.
    pub const EV_CORRELATION: &str = "ev_correlation_score";
    /// `1 − mean((t − p)²) / mean(t²)` with calibrated predictions.
    pub const RSQUARED: &str = "rsquared_score";
    /// `1 − mean|t − p| / mean|t|` with calibrated predictions.
    pub const ABSOLUTE_DEV_EXPLAINED: &str = "absolute_dev_explained_score";
    /// The correlation over the held-out top sequences alone.
    pub const EV_CORRELATION_TOP: &str = "ev_correlation_score_top";
    /// The correlation over the random sequences alone.
    pub const EV_CORRELATION_RANDOM: &str = "ev_correlation_score_random";
}

/// Pearson's r between two equally long series; `None` when either is constant or empty.
pub fn correlation(true_values: &[f64], predicted: &[f64]) -> Option<f64> {
    let n = true_values.len().min(predicted.len());
    if n < 2 {
        return None;
    }
    let mean = |values: &[f64]| values[..n].iter().sum::<f64>() / n as f64;
    let (mean_t, mean_p) = (mean(true_values), mean(predicted));
    let (mut cov, mut var_t, mut var_p) = (0.0, 0.0, 0.0);
    for (t, p) in true_values[..n].iter().zip(&predicted[..n]) {
        cov += (t - mean_t) * (p - mean_p);
        var_t += (t - mean_t) * (t - mean_t);
        var_p += (p - mean_p) * (p - mean_p);
    }
    (var_t > 0.0 && var_p > 0.0).then(|| cov / (var_t.sqrt() * var_p.sqrt()))
}

/// `1 − mean((t − p)²) / mean(t²)`; `None` when every true value is zero.
pub fn rsquared(true_values: &[f64], predicted: &[f64]) -> Option<f64> {
    let n = true_values.len().min(predicted.len());
    let squares = true_values[..n].iter().map(|t| t * t).sum::<f64>();
    let errors = true_values[..n].iter().zip(&predicted[..n]).map(|(t, p)| (t - p) * (t - p)).sum::<f64>();
    (squares > 0.0).then(|| 1.0 - errors / squares)
}

/// `1 − mean|t − p| / mean|t|`; `None` when every true value is zero.
pub fn absolute_dev_explained(true_values: &[f64], predicted: &[f64]) -> Option<f64> {
    let n = true_values.len().min(predicted.len());
    let magnitude = true_values[..n].iter().map(|t| t.abs()).sum::<f64>();
    let deviation = true_values[..n].iter().zip(&predicted[..n]).map(|(t, p)| (t - p).abs()).sum::<f64>();
    (magnitude > 0.0).then(|| 1.0 - deviation / magnitude)
}

/// `true ≈ slope · simulated + intercept` by least squares, as OpenAI's linear calibration fits
/// it (scikit-learn's `LinearRegression`); a constant simulation gets slope 0 and the mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearCalibration {
    /// Activation units per simulated unit.
    pub slope: f64,
    /// Activation at a simulated 0.
    pub intercept: f64,
}

impl LinearCalibration {
    /// Fits the calibration on pooled (simulated, true) pairs; the identity when there are none.
    pub fn fit(simulated: &[f64], true_values: &[f64]) -> Self {
        let n = simulated.len().min(true_values.len());
        if n == 0 {
            return Self { slope: 1.0, intercept: 0.0 };
        }
        let mean_s = simulated[..n].iter().sum::<f64>() / n as f64;
        let mean_t = true_values[..n].iter().sum::<f64>() / n as f64;
        let (mut cov, mut var) = (0.0, 0.0);
        for (s, t) in simulated[..n].iter().zip(&true_values[..n]) {
            cov += (s - mean_s) * (t - mean_t);
            var += (s - mean_s) * (s - mean_s);
        }
        let slope = if var > 0.0 { cov / var } else { 0.0 };
        Self { slope, intercept: mean_t - slope * mean_s }
    }

    /// A simulated value in activation units.
    pub fn apply(&self, simulated: f64) -> f64 {
        self.slope * simulated + self.intercept
    }
}

/// A simulated sequence beside the truth: the simulator's expected values (0–10 scale) and the
/// neuron's activations.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulated {
    /// Expected values, one per token.
    pub expected: Vec<f64>,
    /// The neuron's activations, one per token.
    pub true_values: Vec<f64>,
    /// Whether the sequence is a random one (else a held-out top one).
    pub random: bool,
}

/// Every score of a simulation: calibrated on `calibration`, scored on `scored`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// The fitted calibration.
    pub calibration: LinearCalibration,
    /// [`names::EV_CORRELATION`].
    pub ev_correlation: Option<f64>,
    /// [`names::RSQUARED`].
    pub rsquared: Option<f64>,
    /// [`names::ABSOLUTE_DEV_EXPLAINED`].
    pub absolute_dev_explained: Option<f64>,
    /// [`names::EV_CORRELATION_TOP`].
    pub ev_correlation_top: Option<f64>,
    /// [`names::EV_CORRELATION_RANDOM`].
    pub ev_correlation_random: Option<f64>,
}

impl Scores {
    /// Fits the calibration on the `calibration` sequences and scores the `scored` ones.
    pub fn compute(calibration: &[Simulated], scored: &[Simulated]) -> Self {
        let pooled = |sequences: &mut dyn Iterator<Item = &Simulated>| {
            let (mut expected, mut true_values) = (Vec::new(), Vec::new());
            for sequence in sequences {
                let n = sequence.expected.len().min(sequence.true_values.len());
                expected.extend_from_slice(&sequence.expected[..n]);
                true_values.extend_from_slice(&sequence.true_values[..n]);
            }
            (expected, true_values)
        };
        let (cal_expected, cal_true) = pooled(&mut calibration.iter());
        let fit = LinearCalibration::fit(&cal_expected, &cal_true);
        let (expected, true_values) = pooled(&mut scored.iter());
        let calibrated: Vec<f64> = expected.iter().map(|&e| fit.apply(e)).collect();
        let (top_expected, top_true) = pooled(&mut scored.iter().filter(|s| !s.random));
        let (random_expected, random_true) = pooled(&mut scored.iter().filter(|s| s.random));
        Self {
            calibration: fit,
            ev_correlation: correlation(&true_values, &expected),
            rsquared: rsquared(&true_values, &calibrated),
            absolute_dev_explained: absolute_dev_explained(&true_values, &calibrated),
            ev_correlation_top: correlation(&top_true, &top_expected),
            ev_correlation_random: correlation(&random_true, &random_expected),
        }
    }

    /// The defined scores as (name, value), most important first.
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        [
            (names::EV_CORRELATION, self.ev_correlation),
            (names::RSQUARED, self.rsquared),
            (names::ABSOLUTE_DEV_EXPLAINED, self.absolute_dev_explained),
            (names::EV_CORRELATION_TOP, self.ev_correlation_top),
            (names::EV_CORRELATION_RANDOM, self.ev_correlation_random),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_constant_predictions() {
        let t = [0.0, 1.0, 2.0, 3.0];
        assert!((correlation(&t, &[1.0, 3.0, 5.0, 7.0]).expect("defined") - 1.0).abs() < 1e-12);
        assert_eq!(correlation(&t, &[2.0; 4]), None);
        assert_eq!(rsquared(&t, &t), Some(1.0));
        assert_eq!(absolute_dev_explained(&t, &t), Some(1.0));
        assert_eq!(rsquared(&[0.0; 3], &[1.0; 3]), None);
        let fit = LinearCalibration::fit(&[1.0, 3.0, 5.0, 7.0], &t);
        assert!((fit.slope - 0.5).abs() < 1e-12 && (fit.intercept + 0.5).abs() < 1e-12, "{fit:?}");
        let flat = LinearCalibration::fit(&[4.0; 4], &t);
        assert_eq!((flat.slope, flat.intercept), (0.0, 1.5));
    }
}
