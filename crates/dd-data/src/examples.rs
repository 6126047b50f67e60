//! Example contexts: the texts a neuron fires on, with every token's activation.

use crate::DataError;

/// One context from the dataset with the neuron's activation on each token.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Index of this context in the recorded dataset, to trace it back.
    pub dataset_index: u64,
    /// Token ids of the context.
    pub tokens: Vec<u32>,
    /// The neuron's activation on each token (same length as `tokens`).
    pub activations: Vec<f32>,
    /// Position of the token that put this example in its group (the max for top examples, the min for bottom ones).
    pub max_token_index: u32,
    /// Largest absolute error of `activations` against the recorded values (0 when exact).
    ///
    /// The store quantizes activations; decoding fills this in so that readers
    /// can print no more digits than the data holds.
    pub activation_error: f32,
}

/// Why a group of examples was chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExampleGroupKind {
    /// The contexts with the highest maximum activation, highest first.
    Top,
    /// The contexts with the lowest minimum activation, lowest first.
    Bottom,
    /// Contexts whose maximum activation falls in one band of the activation range.
    Quantile {
        /// Band number, 0 for the lowest band.
        band: u32,
        /// Lower bound of the band's activations.
        lower: f32,
        /// Upper bound of the band's activations.
        upper: f32,
    },
    /// A uniform random sample of contexts.
    Random,
}

/// A list of examples chosen for one reason.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleGroup {
    /// Why these examples were chosen.
    pub kind: ExampleGroupKind,
    /// The examples, in the group's order.
    pub examples: Vec<Example>,
}

/// All example groups recorded for one neuron.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NeuronExamples {
    /// Groups, usually top first.
    pub groups: Vec<ExampleGroup>,
}

impl Example {
    /// Largest activation of this context.
    pub fn max_activation(&self) -> f32 {
        self.activations.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }

    /// Smallest activation of this context.
    pub fn min_activation(&self) -> f32 {
        self.activations.iter().copied().fold(f32::INFINITY, f32::min)
    }

    /// Checks lengths, the max-token position and that every activation is finite.
    pub fn validate(&self, example_idx: usize) -> Result<(), DataError> {
        if self.tokens.len() != self.activations.len() {
            return Err(DataError::ExampleLengthMismatch {
                example_idx,
                n_tokens: self.tokens.len(),
                n_activations: self.activations.len(),
            });
        }
        if !self.tokens.is_empty() && self.max_token_index as usize >= self.tokens.len() {
            return Err(DataError::IndexOutOfRange {
                what: "max_token_index",
                index: u64::from(self.max_token_index),
                len: self.tokens.len() as u64,
            });
        }
        if self.activations.iter().any(|a| !a.is_finite()) {
            return Err(DataError::NotFinite { what: "activation" });
        }
        Ok(())
    }
}

impl NeuronExamples {
    /// The top-activating group, if recorded.
    pub fn top(&self) -> Option<&ExampleGroup> {
        self.groups.iter().find(|g| g.kind == ExampleGroupKind::Top)
    }

    /// The bottom-activating group, if recorded.
    pub fn bottom(&self) -> Option<&ExampleGroup> {
        self.groups.iter().find(|g| g.kind == ExampleGroupKind::Bottom)
    }

    /// Every example of the groups of `kind`, in order: what producers that read a recording back
    /// (Neuron2Graph, the explainer) split into training and held-out texts.
    pub fn examples_of(&self, kind: ExampleGroupKind) -> Vec<Example> {
        self.groups.iter().filter(|g| g.kind == kind).flat_map(|g| g.examples.iter().cloned()).collect()
    }

    /// Checks every example of every group.
    pub fn validate(&self) -> Result<(), DataError> {
        self.groups.iter().flat_map(|g| g.examples.iter()).enumerate().try_for_each(|(i, e)| e.validate(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(tokens: Vec<u32>, activations: Vec<f32>, max_token_index: u32) -> Example {
        Example { dataset_index: 0, tokens, activations, max_token_index, activation_error: 0.0 }
    }

    #[test]
    fn validate_catches_inconsistent_examples() {
        assert!(example(vec![1, 2], vec![0.5, 1.0], 1).validate(0).is_ok());
        assert_eq!(
            example(vec![1, 2], vec![0.5], 0).validate(3),
            Err(DataError::ExampleLengthMismatch { example_idx: 3, n_tokens: 2, n_activations: 1 })
        );
        assert!(example(vec![1, 2], vec![0.5, 1.0], 2).validate(0).is_err());
        assert!(example(vec![1], vec![f32::NAN], 0).validate(0).is_err());
    }

    #[test]
    fn extremes() {
        let e = example(vec![1, 2, 3], vec![0.5, -2.0, 1.0], 2);
        assert_eq!(e.max_activation(), 1.0);
        assert_eq!(e.min_activation(), -2.0);
    }
}
