//! Everything recorded about one neuron while the dataset streams past.

use super::grid::{AlignedGrid, Regrid, floor_to_i64, inverse_width};
use super::moments::{Moments, ShiftedSums};
use super::selection::{Selection, ordered_key, sample_hash};

/// Salts that make the band and random samples independent of each other.
const BAND_SALT: u64 = 0x6261_6E64;
const RANDOM_SALT: u64 = 0x7261_6E64;

/// How many examples of each kind to keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectionSizes {
    /// Top-activating contexts.
    pub top: u32,
    /// Bottom-activating contexts (0 for non-negative activations).
    pub bottom: u32,
    /// Activation bands of the context maxima.
    pub bands: u32,
    /// Contexts kept per band.
    pub per_band: u32,
    /// Uniformly random contexts.
    pub random: u32,
}

/// An exact histogram on an aligned power-of-two grid (see [`super::grid`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GridHistogram {
    pub(crate) grid: AlignedGrid,
    pub(crate) counts: Vec<u64>,
    /// `2^-grid.exponent`, kept beside the grid because every value needs it.
    pub(crate) inverse_width: f64,
}

/// Samples of contexts per band of their maximum activation, on an aligned power-of-two grid.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BandSamples {
    pub(crate) grid: AlignedGrid,
    pub(crate) bands: Vec<Selection>,
}

/// A neuron's activations at the BOS position that starts every context, kept apart from the rest
/// (see `dd_data::NeuronStats`: models park attention-sink values there).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BosValues {
    pub(crate) count: u64,
    pub(crate) min: f32,
    pub(crate) max: f32,
    /// In f64: one addition per context, exact enough over any dataset.
    pub(crate) sum: f64,
}

impl BosValues {
    pub(crate) const EMPTY: BosValues = BosValues { count: 0, min: f32::INFINITY, max: f32::NEG_INFINITY, sum: 0.0 };

    /// Counts one context's BOS activation.
    pub(crate) fn add(&mut self, x: f32) {
        self.count += 1;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.sum += f64::from(x);
    }

    /// Folds a shard's values in.
    pub(crate) fn merge(&mut self, other: &BosValues) {
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }
}

/// The running record of one neuron.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NeuronAccumulator {
    /// Moments, positive count, histogram and selections cover every position but BOS.
    pub(crate) moments: Moments,
    /// Tokens with a positive activation.
    pub(crate) positive: u64,
    pub(crate) histogram: GridHistogram,
    pub(crate) top: Selection,
    pub(crate) bottom: Selection,
    pub(crate) bands: BandSamples,
    pub(crate) random: Selection,
    pub(crate) bos: BosValues,
}

/// Where a context's largest and smallest activation are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ContextExtremes {
    pub(crate) max: f32,
    pub(crate) max_at: u32,
    pub(crate) min: f32,
    pub(crate) min_at: u32,
    /// The smallest and largest of all the context's values, BOS included: the range its kept
    /// activations are quantized over.
    pub(crate) range: (f32, f32),
}

/// The contexts of one batch as one neuron sees them.
pub(crate) struct ContextsView<'a> {
    /// Global dataset index of each context.
    pub(crate) indices: &'a [u64],
    /// Real (unpadded) length of each context.
    pub(crate) lengths: &'a [usize],
    /// Padded length: context `c`'s values start at `c * positions`.
    pub(crate) positions: usize,
}

impl GridHistogram {
    pub(crate) fn new(n_bins: u32) -> Self {
        Self::from_parts(AlignedGrid::new(n_bins), vec![0; n_bins as usize])
    }

    /// A histogram from a stored grid and its counts.
    pub(crate) fn from_parts(grid: AlignedGrid, counts: Vec<u64>) -> Self {
        Self { grid, counts, inverse_width: inverse_width(grid.exponent) }
    }

    /// Counts one value. The grid's extremes move rarely after the first batch, so the common case
    /// is a multiply, a floor and an increment.
    #[inline(always)]
    pub(crate) fn add(&mut self, x: f32) {
        if x >= self.grid.min && x <= self.grid.max {
            let bin = floor_to_i64(f64::from(x) * self.inverse_width) - self.grid.start;
            self.grid.count += 1;
            self.counts[bin as usize] += 1;
            return;
        }
        self.add_outside(x);
    }

    #[cold]
    #[inline(never)]
    fn add_outside(&mut self, x: f32) {
        if let Some(regrid) = self.grid.cover(x) {
            self.counts = regrid_counts(&self.counts, regrid);
        }
        self.inverse_width = inverse_width(self.grid.exponent);
        let bin = self.grid.bin(x);
        self.counts[bin] += 1;
    }

    pub(crate) fn merge(&mut self, other: &GridHistogram) {
        if other.grid.count == 0 {
            return;
        }
        if let Some(regrid) = self.grid.include(other.grid.min, other.grid.max) {
            self.counts = regrid_counts(&self.counts, regrid);
        }
        self.inverse_width = inverse_width(self.grid.exponent);
        let mut other_grid = other.grid;
        let counts = match other_grid.include(self.grid.min, self.grid.max) {
            Some(regrid) => regrid_counts(&other.counts, regrid),
            None => other.counts.clone(),
        };
        debug_assert_eq!((other_grid.exponent, other_grid.start), (self.grid.exponent, self.grid.start));
        self.grid.count += other.grid.count;
        self.counts.iter_mut().zip(counts).for_each(|(a, b)| *a += b);
    }
}

fn regrid_counts(counts: &[u64], regrid: Regrid) -> Vec<u64> {
    let mut moved = vec![0; counts.len()];
    for (bin, &count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        moved[regrid.target(bin)] += count;
    }
    moved
}

impl BandSamples {
    fn new(n_bands: u32, per_band: u32) -> Self {
        Self { grid: AlignedGrid::new(n_bands.max(1)), bands: (0..n_bands).map(|_| Selection::new(per_band)).collect() }
    }

    fn regrid(&mut self, regrid: Regrid) {
        let capacity = self.bands.first().map_or(0, Selection::capacity);
        let fresh = (0..self.bands.len()).map(|_| Selection::new(capacity)).collect();
        let old = std::mem::replace(&mut self.bands, fresh);
        // Bins outside the occupied range are empty and may have no place in the new grid.
        for (bin, selection) in old.into_iter().enumerate().filter(|(_, s)| !s.slots().is_empty()) {
            self.bands[regrid.target(bin)].merge(selection);
        }
    }

    /// Makes room for a context maximum and returns its band.
    fn band_for(&mut self, max: f32) -> usize {
        if let Some(regrid) = self.grid.cover(max) {
            self.regrid(regrid);
        }
        self.grid.bin(max)
    }

    pub(crate) fn merge(&mut self, other: BandSamples) {
        if other.grid.count == 0 {
            return;
        }
        if let Some(regrid) = self.grid.include(other.grid.min, other.grid.max) {
            self.regrid(regrid);
        }
        let mut other = other;
        if let Some(regrid) = other.grid.include(self.grid.min, self.grid.max) {
            other.regrid(regrid);
        }
        self.grid.count += other.grid.count;
        for (mine, theirs) in self.bands.iter_mut().zip(other.bands) {
            mine.merge(theirs);
        }
    }
}

impl NeuronAccumulator {
    pub(crate) fn new(sizes: &SelectionSizes, histogram_bins: u32) -> Self {
        Self {
            moments: Moments::default(),
            positive: 0,
            histogram: GridHistogram::new(histogram_bins),
            top: Selection::new(sizes.top),
            bottom: Selection::new(sizes.bottom),
            bands: BandSamples::new(sizes.bands, sizes.per_band),
            random: Selection::new(sizes.random),
            bos: BosValues::EMPTY,
        }
    }

    /// Offers one finished context to the selections. `gather` writes the context's activations into
    /// the buffer it is given; it runs only when some selection takes the context, which after the
    /// first few batches is rare.
    pub(crate) fn offer_context(
        &mut self,
        id: (u32, u32),
        context: u64,
        extremes: &ContextExtremes,
        buffer: &mut Vec<f32>,
        gather: impl Fn(&mut Vec<f32>),
    ) {
        let (layer, neuron) = id;
        let ContextExtremes { max, max_at, min, min_at, range } = *extremes;
        let mut gathered = false;
        let mut values = |buffer: &mut Vec<f32>| {
            if !std::mem::replace(&mut gathered, true) {
                gather(buffer);
            }
        };
        let top_key = ordered_key(max);
        if self.top.admits(top_key, context) {
            values(buffer);
            self.top.insert(top_key, context, max_at, max, range, buffer);
        }
        let bottom_key = ordered_key(-min);
        if self.bottom.admits(bottom_key, context) {
            values(buffer);
            self.bottom.insert(bottom_key, context, min_at, max, range, buffer);
        }
        let random_key = !sample_hash(context, layer, neuron, RANDOM_SALT);
        if self.random.admits(random_key, context) {
            values(buffer);
            self.random.insert(random_key, context, max_at, max, range, buffer);
        }
        if !self.bands.bands.is_empty() {
            let band_key = !sample_hash(context, layer, neuron, BAND_SALT);
            let band = self.bands.band_for(max);
            if self.bands.bands[band].admits(band_key, context) {
                values(buffer);
                self.bands.bands[band].insert(band_key, context, max_at, max, range, buffer);
            }
        }
    }

    /// Adds one batch's sums (taken around `shift`, the mean before the batch) and positive count.
    pub(crate) fn add_batch(&mut self, sums: ShiftedSums, shift: f64, positive: u64) {
        self.moments.merge(&Moments::from_shifted(sums, shift));
        self.positive += positive;
    }

    /// Folds a shard's record of the same neuron into this one.
    pub(crate) fn merge(&mut self, other: NeuronAccumulator) {
        self.moments.merge(&other.moments);
        self.positive += other.positive;
        self.histogram.merge(&other.histogram);
        self.top.merge(other.top);
        self.bottom.merge(other.bottom);
        self.random.merge(other.random);
        self.bands.merge(other.bands);
        self.bos.merge(&other.bos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_merge_equals_one_pass() {
        let values: Vec<f32> = (0..500).map(|i| ((i * 37 % 101) as f32 - 20.0) / 7.0).collect();
        let mut whole = GridHistogram::new(50);
        values.iter().for_each(|&x| whole.add(x));
        let (mut left, mut right) = (GridHistogram::new(50), GridHistogram::new(50));
        values[..123].iter().for_each(|&x| left.add(x));
        values[123..].iter().for_each(|&x| right.add(x));
        right.merge(&left);
        assert_eq!(right, whole);
        assert_eq!(whole.counts.iter().sum::<u64>(), 500);
        // Every value falls in its bin's edges.
        for &x in &values {
            let bin = whole.grid.bin(x);
            assert!(whole.grid.edge(bin) <= f64::from(x) && f64::from(x) < whole.grid.edge(bin + 1));
        }
    }

    /// Offers `n` contexts with pseudo-random maxima (a heavy tail, as neurons have) to one neuron.
    fn offered(n: u64, sizes: &SelectionSizes) -> (NeuronAccumulator, Vec<f32>) {
        let mut neuron = NeuronAccumulator::new(sizes, 50);
        let mut buffer = Vec::new();
        let maxima: Vec<f32> = (0..n)
            .map(|c| {
                let u = (sample_hash(c, 9, 9, 1) >> 40) as f32 / (1u64 << 24) as f32;
                if u < 0.8 { u } else { (u - 0.8) * 50.0 }
            })
            .collect();
        for (context, &max) in maxima.iter().enumerate() {
            let extremes = ContextExtremes { max, max_at: 1, min: max - 1.0, min_at: 0, range: (max - 1.0, max) };
            let values = [max - 1.0, max];
            neuron.offer_context((3, 7), context as u64, &extremes, &mut buffer, |b| {
                b.clear();
                b.extend_from_slice(&values);
            });
        }
        (neuron, maxima)
    }

    #[test]
    fn band_and_random_samples_equal_brute_force() {
        let sizes = SelectionSizes { top: 4, bottom: 0, bands: 10, per_band: 3, random: 5 };
        let (neuron, maxima) = offered(2000, &sizes);
        let grid = &neuron.bands.grid;
        let (first, last) = grid.occupied().expect("contexts were offered");
        assert!(last - first >= 5 && last - first <= 10, "{first}..{last}");
        for band in first..last {
            let (lower, upper) = (grid.edge(band), grid.edge(band + 1));
            // The contexts whose maximum lies in the band, by ascending hash: a uniform sample.
            let mut members: Vec<u64> = (0..maxima.len() as u64)
                .filter(|&c| f64::from(maxima[c as usize]) >= lower && f64::from(maxima[c as usize]) < upper)
                .collect();
            members.sort_by_key(|&c| sample_hash(c, 3, 7, BAND_SALT));
            members.truncate(3);
            let got: Vec<u64> = neuron.bands.bands[band].sorted().iter().map(|s| s.context).collect();
            assert_eq!(got, members, "band {band} [{lower}, {upper})");
        }
        let mut everyone: Vec<u64> = (0..maxima.len() as u64).collect();
        everyone.sort_by_key(|&c| sample_hash(c, 3, 7, RANDOM_SALT));
        let got: Vec<u64> = neuron.random.sorted().iter().map(|s| s.context).collect();
        assert_eq!(got, everyone[..5].to_vec());
        // And the top contexts are the largest maxima.
        let mut by_max: Vec<u64> = (0..maxima.len() as u64).collect();
        by_max.sort_by(|&a, &b| maxima[b as usize].total_cmp(&maxima[a as usize]).then(a.cmp(&b)));
        let got: Vec<u64> = neuron.top.sorted().iter().map(|s| s.context).collect();
        assert_eq!(got, by_max[..4].to_vec());
    }

    #[test]
    fn samples_merge_exactly() {
        let sizes = SelectionSizes { top: 4, bottom: 2, bands: 10, per_band: 3, random: 5 };
        let (whole, _) = offered(1500, &sizes);
        // The same contexts offered to two neurons as two shards, then merged.
        let (mut left, mut right) = (NeuronAccumulator::new(&sizes, 50), NeuronAccumulator::new(&sizes, 50));
        let (_, maxima) = offered(1500, &sizes);
        let mut buffer = Vec::new();
        for (context, &max) in maxima.iter().enumerate() {
            let extremes = ContextExtremes { max, max_at: 1, min: max - 1.0, min_at: 0, range: (max - 1.0, max) };
            let values = [max - 1.0, max];
            let shard = if context % 3 == 0 { &mut left } else { &mut right };
            shard.offer_context((3, 7), context as u64, &extremes, &mut buffer, |b| {
                b.clear();
                b.extend_from_slice(&values);
            });
        }
        left.merge(right);
        assert_eq!(left.bands.grid, whole.bands.grid);
        for (merged, single) in left.bands.bands.iter().zip(&whole.bands.bands) {
            assert_eq!(merged.sorted(), single.sorted());
        }
        assert_eq!(left.top.sorted(), whole.top.sorted());
        assert_eq!(left.bottom.sorted(), whole.bottom.sorted());
        assert_eq!(left.random.sorted(), whole.random.sorted());
    }
}
