//! An aligned power-of-two grid of bins that widens as values arrive, the same whatever their order.
//!
//! Bins have width `2^exponent` and sit at multiples of it, so doubling the width merges pairs of
//! bins exactly. The grid always uses the smallest exponent (at least [`MIN_EXPONENT`]) whose bins
//! cover every value seen in at most `n_bins` bins. That exponent depends only on the smallest and
//! largest value, so a grid built from shards and merged equals the grid of one run, and so do the
//! counts or samples kept per bin.

/// The finest bin width is 2^-24: below float noise for activations of order one.
pub(crate) const MIN_EXPONENT: i32 = -24;

/// No finite f32 range needs wider bins than 2^200.
pub(crate) const MAX_EXPONENT: i32 = 200;

/// Bin indices must stay exact in f64 and far from i64 overflow.
const MAX_SCALED: f64 = (1u64 << 50) as f64;

/// Where a grid's bins are and the range of values it covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AlignedGrid {
    pub(crate) n_bins: u32,
    pub(crate) exponent: i32,
    /// Global index of the first bin (`floor(min / width)`).
    pub(crate) start: i64,
    pub(crate) min: f32,
    pub(crate) max: f32,
    /// Values seen so far.
    pub(crate) count: u64,
}

/// `floor(x)` as an integer without a libm call (the baseline x86-64 target has no SSE4.1 `roundsd`).
#[inline]
pub(crate) fn floor_to_i64(x: f64) -> i64 {
    let truncated = x as i64;
    truncated - i64::from((truncated as f64) > x)
}

/// A whole number below 2^31 in magnitude as an i32. Adding 1.5·2^52 puts it in the low mantissa
/// bits, a conversion that vectorises; `as i32` saturates, which the compiler does one lane at a
/// time (the histogram's binning ran four scalar conversions per vector). Other inputs give
/// unspecified values, which the caller masks.
#[inline(always)]
pub(crate) fn whole_to_i32(x: f64) -> i32 {
    const ROUNDING_SHIFT: f64 = 6_755_399_441_055_744.0;
    (x + ROUNDING_SHIFT).to_bits() as u32 as i32
}

/// `2^-exponent`, exact for the exponents a grid uses.
#[inline]
pub(crate) fn inverse_width(exponent: i32) -> f64 {
    f64::from_bits(((1023 - i64::from(exponent)) as u64) << 52)
}

/// How bins moved when a grid widened: old bin `i` becomes `((old_start + i) >> shift) - new_start`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Regrid {
    pub(crate) shift: u32,
    pub(crate) old_start: i64,
    pub(crate) new_start: i64,
}

impl Regrid {
    /// Where old bin `old_bin` lands.
    pub(crate) fn target(self, old_bin: usize) -> usize {
        (((self.old_start + old_bin as i64) >> self.shift) - self.new_start) as usize
    }
}

impl AlignedGrid {
    /// An empty grid of `n_bins` bins.
    pub(crate) fn new(n_bins: u32) -> Self {
        Self { n_bins, exponent: MIN_EXPONENT, start: 0, min: f32::INFINITY, max: f32::NEG_INFINITY, count: 0 }
    }

    /// The global bin index of `x` at `exponent`.
    #[inline]
    fn global_bin(x: f32, exponent: i32) -> i64 {
        floor_to_i64(f64::from(x) * inverse_width(exponent))
    }

    fn fits(&self, min: f32, max: f32, exponent: i32) -> bool {
        let scale = inverse_width(exponent);
        let largest = f64::from(min.abs().max(max.abs())) * scale;
        largest < MAX_SCALED
            && Self::global_bin(max, exponent) - Self::global_bin(min, exponent) < i64::from(self.n_bins)
    }

    /// The bin of `x` inside the grid, once [`Self::cover`] has made room for it.
    #[inline]
    pub(crate) fn bin(&self, x: f32) -> usize {
        (Self::global_bin(x, self.exponent) - self.start) as usize
    }

    /// Makes the grid cover `x` (counting it); returns how existing bins moved, if they did.
    pub(crate) fn cover(&mut self, x: f32) -> Option<Regrid> {
        self.count += 1;
        self.include(x.min(self.min), x.max(self.max))
    }

    /// Makes the grid cover `[min, max]` without counting a value.
    pub(crate) fn include(&mut self, min: f32, max: f32) -> Option<Regrid> {
        let was_empty = self.min > self.max;
        let (min, max) = (min.min(self.min), max.max(self.max));
        if !was_empty && min == self.min && max == self.max {
            return None;
        }
        let mut exponent = self.exponent;
        // Finite values fit by exponent 128 + 50; the cap only stops a damaged state from looping.
        while !self.fits(min, max, exponent) && exponent < MAX_EXPONENT {
            exponent += 1;
        }
        let new_start = Self::global_bin(min, exponent);
        let regrid = Regrid { shift: (exponent - self.exponent) as u32, old_start: self.start, new_start };
        self.min = min;
        self.max = max;
        self.exponent = exponent;
        self.start = new_start;
        if was_empty || (regrid.shift == 0 && regrid.old_start == new_start) {
            return None;
        }
        Some(regrid)
    }

    /// Whether a grid read from a file is one this code could have built: empty, or finite extremes
    /// inside its bins at a sane exponent.
    pub(crate) fn is_consistent(&self) -> bool {
        let sane = (2..=1000).contains(&self.n_bins) && (MIN_EXPONENT..=MAX_EXPONENT).contains(&self.exponent);
        if self.min > self.max || self.count == 0 {
            return sane && self.count == 0;
        }
        sane && self.min.is_finite()
            && self.max.is_finite()
            && self.fits(self.min, self.max, self.exponent)
            && self.start == Self::global_bin(self.min, self.exponent)
    }

    /// Lower edge of bin `bin`.
    pub(crate) fn edge(&self, bin: usize) -> f64 {
        (self.start + bin as i64) as f64 * f64::from(self.exponent).exp2()
    }

    /// The bins that hold values: first and one past the last.
    pub(crate) fn occupied(&self) -> Option<(usize, usize)> {
        if self.min > self.max {
            return None;
        }
        Some((self.bin(self.min), self.bin(self.max) + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_convert_exactly() {
        for x in [0.0, 1.0, -1.0, 49.0, -7.0, 123_456_789.0, -2_147_483_647.0, 2_147_483_647.0] {
            assert_eq!(whole_to_i32(x), x as i32, "{x}");
        }
    }

    fn grid_of(values: &[f32]) -> AlignedGrid {
        let mut grid = AlignedGrid::new(10);
        for &x in values {
            grid.cover(x);
        }
        grid
    }

    #[test]
    fn order_does_not_matter() {
        let values = [0.3f32, -1.25, 7.0, 0.0, 2.5, 1e-3, 6.99];
        let forward = grid_of(&values);
        let mut reversed = values;
        reversed.reverse();
        assert_eq!(forward, grid_of(&reversed));
        let (first, last) = forward.occupied().expect("values");
        assert!(last - first <= 10);
        assert!(forward.edge(first) <= -1.25 && forward.edge(last) > 7.0);
    }

    #[test]
    fn width_is_the_smallest_that_fits() {
        let grid = grid_of(&[0.0, 9.5]);
        // Width 1 puts 0 and 9.5 in bins 0 and 9: ten bins; width 0.5 would need twenty.
        assert_eq!(grid.exponent, 0);
        let single = grid_of(&[3.0, 3.0]);
        assert_eq!(single.exponent, MIN_EXPONENT);
        assert_eq!(single.occupied(), Some((0, 1)));
    }

    #[test]
    fn huge_values_stay_exact() {
        let grid = grid_of(&[-3e30, 1.0, 3e30]);
        let (first, last) = grid.occupied().expect("values");
        assert!(last - first <= 10 && grid.edge(first) <= -3e30 && grid.edge(last) > 3e30);
    }
}
