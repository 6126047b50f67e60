//! Encoding of example contexts: headers first, then a token column, then quantized activation planes.
//!
//! Columns compress better than interleaved records: token ids sit together
//! and, for 16-bit activations, the high bytes (mostly alike) are in one plane
//! and the noisy low bytes in another.

use dd_data::{Example, ExampleGroup, ExampleGroupKind, NeuronExamples};

use super::wire::{WireReader, WireWriter};
use super::{CodecError, EncodeOptions};

const TAG_TOP: u8 = 0;
const TAG_BOTTOM: u8 = 1;
const TAG_QUANTILE: u8 = 2;
const TAG_RANDOM: u8 = 3;

/// Token column encodings: LEB128 varints, or two byte planes (high bytes, then low bytes) when every
/// id is below 65,536. Planes decode without a branch per token, which matters on the server's hot
/// path; varints cover vocabularies of any size.
const TOKENS_VARINT: u8 = 0;
const TOKENS_U16_PLANES: u8 = 1;

/// Largest absolute error of an activation quantized to `bits` over `[lower, upper]`.
///
/// Half a quantization step, plus one f32 rounding of the decoded value.
pub fn activation_error_bound(lower: f32, upper: f32, bits: u8) -> f32 {
    let n_steps = f64::from((1u32 << bits) - 1);
    let half_step = (f64::from(upper) - f64::from(lower)) / n_steps / 2.0;
    let rounding = f64::from(lower.abs().max(upper.abs())) * f64::from(f32::EPSILON);
    (half_step + rounding) as f32
}

/// Quantizes activations to `bits`-bit codes over their own range; returns (lower, upper, codes).
pub fn quantize_example(activations: &[f32], bits: u8) -> (f32, f32, Vec<u16>) {
    let lower = activations.iter().copied().fold(f32::INFINITY, f32::min);
    let upper = activations.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if activations.is_empty() || lower == upper {
        let lower = if activations.is_empty() { 0.0 } else { lower };
        return (lower, lower, vec![0; activations.len()]);
    }
    let max_code = f64::from((1u32 << bits) - 1);
    let scale = max_code / (f64::from(upper) - f64::from(lower));
    let codes = activations
        .iter()
        .map(|&a| ((f64::from(a) - f64::from(lower)) * scale).round().clamp(0.0, max_code) as u16)
        .collect();
    (lower, upper, codes)
}

pub(super) fn write(
    examples: &NeuronExamples,
    options: &EncodeOptions,
    out: &mut WireWriter,
) -> Result<(), CodecError> {
    let bits = options.activation_bits;
    if bits != 8 && bits != 16 {
        return Err(CodecError::BadOptions("activation_bits must be 8 or 16"));
    }
    out.u8(bits);
    let all_tokens = || examples.groups.iter().flat_map(|g| &g.examples).flat_map(|e| e.tokens.iter().copied());
    let token_encoding = if all_tokens().all(|t| t < 1 << 16) { TOKENS_U16_PLANES } else { TOKENS_VARINT };
    out.u8(token_encoding);
    out.len(examples.groups.len());
    let mut quantized = Vec::new();
    for group in &examples.groups {
        match group.kind {
            ExampleGroupKind::Top => out.u8(TAG_TOP),
            ExampleGroupKind::Bottom => out.u8(TAG_BOTTOM),
            ExampleGroupKind::Quantile { band, lower, upper } => {
                out.u8(TAG_QUANTILE);
                out.varint(band.into());
                out.f32(lower);
                out.f32(upper);
            }
            ExampleGroupKind::Random => out.u8(TAG_RANDOM),
        }
        out.len(group.examples.len());
        for example in &group.examples {
            let (lower, upper, codes) = quantize_example(&example.activations, bits);
            out.varint(example.dataset_index);
            out.len(example.tokens.len());
            out.varint(example.max_token_index.into());
            out.f32(lower);
            out.f32(upper);
            quantized.push(codes);
        }
    }
    if token_encoding == TOKENS_U16_PLANES {
        all_tokens().for_each(|t| out.u8((t >> 8) as u8));
        all_tokens().for_each(|t| out.u8(t as u8));
    } else {
        all_tokens().for_each(|t| out.varint(t.into()));
    }
    if bits == 16 {
        quantized.iter().flatten().for_each(|&code| out.u8((code >> 8) as u8));
    }
    quantized.iter().flatten().for_each(|&code| out.u8(code as u8));
    Ok(())
}

/// A neuron's examples as stored: token ids and quantized activation codes in two flat columns.
///
/// Readers that print activations (the API) work from the codes: an 8-bit example has at most 256
/// distinct values, each formatted once. [`QuantizedExamples::to_examples`] gives the usual
/// [`NeuronExamples`] with decoded activations.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedExamples {
    /// Bits per activation code (8 or 16).
    pub bits: u8,
    /// Token ids of every example, one after the other.
    pub tokens: Vec<u32>,
    /// Activation codes, parallel to `tokens`.
    pub codes: Vec<u16>,
    /// The groups, whose examples index into the columns.
    pub groups: Vec<QuantizedGroup>,
}

/// One group of stored examples.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedGroup {
    /// Why these examples were chosen.
    pub kind: ExampleGroupKind,
    /// The examples.
    pub examples: Vec<QuantizedExample>,
}

/// One stored example: where its columns are and how to decode its codes.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedExample {
    /// Index of the context in the recorded dataset.
    pub dataset_index: u64,
    /// Position of the token that selected the example.
    pub max_token_index: u32,
    /// Smallest activation (code 0), exact.
    pub lower: f32,
    /// Largest activation (the largest code), exact.
    pub upper: f32,
    /// Where the example's tokens and codes sit in the columns.
    pub range: std::ops::Range<usize>,
}

impl QuantizedExamples {
    /// The token ids of an example.
    pub fn tokens(&self, example: &QuantizedExample) -> &[u32] {
        &self.tokens[example.range.clone()]
    }

    /// The activation codes of an example.
    pub fn codes(&self, example: &QuantizedExample) -> &[u16] {
        &self.codes[example.range.clone()]
    }

    /// The top-activating group, if stored.
    pub fn top(&self) -> Option<&QuantizedGroup> {
        self.groups.iter().find(|g| g.kind == ExampleGroupKind::Top)
    }

    /// Decodes every activation.
    pub fn to_examples(&self) -> NeuronExamples {
        let groups = self
            .groups
            .iter()
            .map(|group| ExampleGroup {
                kind: group.kind,
                examples: group
                    .examples
                    .iter()
                    .map(|example| Example {
                        dataset_index: example.dataset_index,
                        tokens: self.tokens(example).to_vec(),
                        activations: {
                            let step = example.step(self.bits);
                            self.codes(example).iter().map(|&c| example.value_with_step(c, step)).collect()
                        },
                        max_token_index: example.max_token_index,
                        activation_error: example.activation_error(self.bits),
                    })
                    .collect(),
            })
            .collect();
        NeuronExamples { groups }
    }
}

impl QuantizedExample {
    /// The activation a code stands for.
    pub fn value(&self, code: u16, bits: u8) -> f32 {
        self.value_with_step(code, self.step(bits))
    }

    /// [`QuantizedExample::value`] with the step computed once by the caller, for loops over codes.
    pub fn value_with_step(&self, code: u16, step: f64) -> f32 {
        (f64::from(self.lower) + f64::from(code) * step) as f32
    }

    /// The difference between the activations of successive codes.
    pub fn step(&self, bits: u8) -> f64 {
        (f64::from(self.upper) - f64::from(self.lower)) / f64::from((1u32 << bits) - 1)
    }

    /// The largest error of decoded activations ([`activation_error_bound`]).
    pub fn activation_error(&self, bits: u8) -> f32 {
        activation_error_bound(self.lower, self.upper, bits)
    }
}

pub(super) fn read(input: &mut WireReader<'_>) -> Result<NeuronExamples, CodecError> {
    read_quantized(input).map(|quantized| quantized.to_examples())
}

pub(super) fn read_quantized(input: &mut WireReader<'_>) -> Result<QuantizedExamples, CodecError> {
    let bits = input.u8()?;
    if bits != 8 && bits != 16 {
        return Err(CodecError::Invalid("activation bits must be 8 or 16"));
    }
    let bytes_per_code = usize::from(bits / 8);
    let token_encoding = input.u8()?;
    if token_encoding != TOKENS_VARINT && token_encoding != TOKENS_U16_PLANES {
        return Err(CodecError::Invalid("unknown token encoding"));
    }
    let n_groups = input.count(2)?;
    let mut groups = Vec::with_capacity(n_groups);
    let mut n_tokens_total = 0usize;
    for _ in 0..n_groups {
        let kind = match input.u8()? {
            TAG_TOP => ExampleGroupKind::Top,
            TAG_BOTTOM => ExampleGroupKind::Bottom,
            TAG_QUANTILE => ExampleGroupKind::Quantile { band: input.u32()?, lower: input.f32()?, upper: input.f32()? },
            TAG_RANDOM => ExampleGroupKind::Random,
            _ => return Err(CodecError::Invalid("unknown example group tag")),
        };
        let n_examples = input.count(11)?;
        let mut examples = Vec::with_capacity(n_examples);
        for _ in 0..n_examples {
            let dataset_index = input.varint()?;
            let n_tokens = input.count(1)?;
            let max_token_index = input.u32()?;
            if n_tokens > 0 && max_token_index as usize >= n_tokens {
                return Err(CodecError::Invalid("max token index out of range"));
            }
            let (lower, upper) = (input.f32()?, input.f32()?);
            let start = n_tokens_total;
            n_tokens_total = n_tokens_total.saturating_add(n_tokens);
            examples.push(QuantizedExample {
                dataset_index,
                max_token_index,
                lower,
                upper,
                range: start..n_tokens_total,
            });
        }
        groups.push(QuantizedGroup { kind, examples });
    }
    // Each token takes at least one byte of varint and `bytes_per_code` bytes of activation.
    if n_tokens_total.saturating_mul(1 + bytes_per_code) > input.remaining() {
        return Err(CodecError::Truncated);
    }
    let tokens = if token_encoding == TOKENS_U16_PLANES {
        let high_plane = input.bytes(n_tokens_total)?;
        let low_plane = input.bytes(n_tokens_total)?;
        high_plane.iter().zip(low_plane).map(|(&hi, &lo)| u32::from(u16::from_be_bytes([hi, lo]))).collect()
    } else {
        let mut tokens = Vec::new();
        input.varints_u32(n_tokens_total, &mut tokens)?;
        tokens
    };
    let codes = if bits == 16 {
        let high_plane = input.bytes(n_tokens_total)?;
        let low_plane = input.bytes(n_tokens_total)?;
        high_plane.iter().zip(low_plane).map(|(&hi, &lo)| u16::from_be_bytes([hi, lo])).collect()
    } else {
        input.bytes(n_tokens_total)?.iter().map(|&code| u16::from(code)).collect()
    };
    Ok(QuantizedExamples { bits, tokens, codes, groups })
}
