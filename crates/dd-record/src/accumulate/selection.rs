//! Bounded selections of example contexts: the best `capacity` by a key, with every token's activation.

/// One selected context and the neuron's activations on it, quantized to 16 bits over their own range.
///
/// Sixteen bits keep the error below (upper − lower) / 131,070, far under the 8-bit store's own
/// step, at half the memory of f32; the extremes decode exactly.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SelectedContext {
    /// Larger keys win; ties go to the earlier context.
    pub(crate) key: u64,
    /// Global index of the context in the dataset.
    pub(crate) context: u64,
    /// The token that made it (the max for top examples, the min for bottom ones).
    pub(crate) position: u32,
    /// The context's largest activation (bands and ranking show it).
    pub(crate) max: f32,
    pub(crate) lower: f32,
    pub(crate) upper: f32,
    pub(crate) codes: Vec<u16>,
}

/// The best `capacity` contexts by key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selection {
    capacity: u32,
    slots: Vec<SelectedContext>,
    /// Index of the worst slot, valid when full.
    worst: usize,
    /// What a context must beat to enter: the worst slot's key and context when full, else
    /// nothing. Kept beside the capacity, not read from the slots: every neuron asks for every
    /// context, and the slots are on the heap, a cache miss each time.
    threshold: Option<(u64, u64)>,
}

const CODE_MAX: f64 = u16::MAX as f64;

/// Maps an f32 to a u64 whose order is the float's total order.
pub(crate) fn ordered_key(value: f32) -> u64 {
    let bits = value.to_bits();
    u64::from(if bits >> 31 == 1 { !bits } else { bits | 0x8000_0000 })
}

/// A well-mixed 64-bit hash (SplitMix64's finaliser) of a context and a neuron, for sampling that is
/// uniform, independent between neurons, and the same in every shard.
pub(crate) fn sample_hash(context: u64, layer: u32, neuron: u32, salt: u64) -> u64 {
    let mut z = context
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((u64::from(layer) << 32 | u64::from(neuron)).wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(salt);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn better(key: u64, context: u64, than: &SelectedContext) -> bool {
    beats((key, context), (than.key, than.context))
}

/// Larger keys win; ties go to the earlier context.
#[inline]
fn beats((key, context): (u64, u64), (than_key, than_context): (u64, u64)) -> bool {
    key > than_key || (key == than_key && context < than_context)
}

/// The smallest and largest of `values`.
#[cfg(test)]
pub(crate) fn extremes(values: &[f32]) -> (f32, f32) {
    values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Quantizes `values`, whose extremes are `lower` and `upper`, into `codes` over that range.
pub(crate) fn quantize(values: &[f32], (lower, upper): (f32, f32), codes: &mut Vec<u16>) {
    codes.clear();
    let range = f64::from(upper) - f64::from(lower);
    if range > 0.0 {
        // f32 arithmetic (exact to 2^-24 of the range, far below a 16-bit step) vectorises; adding ½
        // and truncating rounds these non-negative values without a libm call.
        let scale = (CODE_MAX / range) as f32;
        codes.extend(values.iter().map(|&x| ((x - lower) * scale + 0.5).min(CODE_MAX as f32) as u16));
    } else {
        codes.resize(values.len(), 0);
    }
}

impl SelectedContext {
    /// The activations, decoded; the extremes come back exactly.
    pub(crate) fn activations(&self) -> Vec<f32> {
        let range = f64::from(self.upper) - f64::from(self.lower);
        self.codes
            .iter()
            .map(|&code| match code {
                0 => self.lower,
                u16::MAX => self.upper,
                _ => (f64::from(self.lower) + f64::from(code) * range / CODE_MAX) as f32,
            })
            .collect()
    }
}

impl Selection {
    /// An empty selection keeping at most `capacity` contexts.
    pub(crate) fn new(capacity: u32) -> Self {
        Self::from_slots(capacity, Vec::new())
    }

    /// Whether a context with this key would enter.
    #[inline]
    pub(crate) fn admits(&self, key: u64, context: u64) -> bool {
        match self.threshold {
            None => true,
            Some(threshold) => beats((key, context), threshold),
        }
    }

    /// Adds a context (the caller checked [`Self::admits`]); `values` are its activations, with
    /// `extremes` their smallest and largest, and `max` its largest outside BOS.
    pub(crate) fn insert(
        &mut self,
        key: u64,
        context: u64,
        position: u32,
        max: f32,
        extremes: (f32, f32),
        values: &[f32],
    ) {
        let slot = if self.slots.len() < self.capacity as usize {
            self.slots.push(SelectedContext {
                key,
                context,
                position,
                max,
                lower: 0.0,
                upper: 0.0,
                codes: Vec::with_capacity(values.len()),
            });
            self.slots.len() - 1
        } else {
            self.worst
        };
        let selected = &mut self.slots[slot];
        quantize(values, extremes, &mut selected.codes);
        let (lower, upper) = extremes;
        *selected =
            SelectedContext { key, context, position, max, lower, upper, codes: std::mem::take(&mut selected.codes) };
        self.find_worst();
    }

    /// Adds an already selected context if it beats the worst (merging selections).
    pub(crate) fn offer(&mut self, selected: SelectedContext) {
        if !self.admits(selected.key, selected.context) {
            return;
        }
        if self.slots.len() < self.capacity as usize {
            self.slots.push(selected);
        } else {
            self.slots[self.worst] = selected;
        }
        self.find_worst();
    }

    fn find_worst(&mut self) {
        self.worst =
            (0..self.slots.len())
                .reduce(|worst, i| {
                    if better(self.slots[worst].key, self.slots[worst].context, &self.slots[i]) { i } else { worst }
                })
                .unwrap_or(0);
        self.threshold = match self.slots.len() < self.capacity as usize {
            true => None,
            // A zero-capacity selection admits nothing: no (key, context) beats the maximum.
            false => Some(self.slots.get(self.worst).map_or((u64::MAX, 0), |worst| (worst.key, worst.context))),
        };
    }

    /// Folds another selection of the same capacity into this one.
    pub(crate) fn merge(&mut self, other: Selection) {
        for selected in other.slots {
            self.offer(selected);
        }
    }

    /// The selected contexts, best first.
    pub(crate) fn sorted(&self) -> Vec<&SelectedContext> {
        let mut slots: Vec<&SelectedContext> = self.slots.iter().collect();
        slots.sort_by(|a, b| b.key.cmp(&a.key).then(a.context.cmp(&b.context)));
        slots
    }

    /// The selected contexts in storage order.
    pub(crate) fn slots(&self) -> &[SelectedContext] {
        &self.slots
    }

    /// Rebuilds a selection from stored parts.
    pub(crate) fn from_slots(capacity: u32, slots: Vec<SelectedContext>) -> Self {
        let mut selection = Self { capacity, slots, worst: 0, threshold: None };
        selection.find_worst();
        selection
    }

    /// Most contexts kept.
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_with_ties_to_the_earlier_context() {
        let mut selection = Selection::new(3);
        for (context, key) in [(0u64, 5u64), (1, 9), (2, 5), (3, 1), (4, 9), (5, 7)] {
            if selection.admits(key, context) {
                let values = [key as f32];
                selection.insert(key, context, 0, key as f32, extremes(&values), &values);
            }
        }
        let order: Vec<u64> = selection.sorted().iter().map(|s| s.context).collect();
        assert_eq!(order, vec![1, 4, 5]);
    }

    #[test]
    fn keys_follow_float_order() {
        let values = [-f32::MAX, -2.0, -0.0, 0.0, 1e-30, 3.0, f32::MAX];
        let keys: Vec<u64> = values.iter().map(|&v| ordered_key(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }

    #[test]
    fn quantization_is_within_half_a_step_and_exact_at_the_extremes() {
        let values = [-0.17f32, 0.0, 0.5, 2.25, 4.99, 5.0];
        let mut codes = Vec::new();
        let (lower, upper) = extremes(&values);
        quantize(&values, (lower, upper), &mut codes);
        let selected = SelectedContext { key: 0, context: 0, position: 0, max: upper, lower, upper, codes };
        let decoded = selected.activations();
        assert_eq!((decoded[0], decoded[5]), (-0.17, 5.0));
        let step = (5.0 + 0.17) / 65535.0;
        assert!(values.iter().zip(&decoded).all(|(a, b)| (a - b).abs() <= step / 2.0 + 1e-6), "{decoded:?}");
    }
}
