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
    for example in examples.groups.iter().flat_map(|g| &g.examples) {
        example.tokens.iter().for_each(|&t| out.varint(t.into()));
    }
    if bits == 16 {
        quantized.iter().flatten().for_each(|&code| out.u8((code >> 8) as u8));
    }
    quantized.iter().flatten().for_each(|&code| out.u8(code as u8));
    Ok(())
}

struct ExampleHeader {
    dataset_index: u64,
    n_tokens: usize,
    max_token_index: u32,
    lower: f32,
    upper: f32,
}

pub(super) fn read(input: &mut WireReader<'_>) -> Result<NeuronExamples, CodecError> {
    let bits = input.u8()?;
    if bits != 8 && bits != 16 {
        return Err(CodecError::Invalid("activation bits must be 8 or 16"));
    }
    let bytes_per_code = usize::from(bits / 8);
    let n_groups = input.count(2)?;
    let mut groups = Vec::with_capacity(n_groups);
    let mut headers: Vec<Vec<ExampleHeader>> = Vec::with_capacity(n_groups);
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
        let mut group_headers = Vec::with_capacity(n_examples);
        for _ in 0..n_examples {
            let header = ExampleHeader {
                dataset_index: input.varint()?,
                n_tokens: input.count(1)?,
                max_token_index: input.u32()?,
                lower: input.f32()?,
                upper: input.f32()?,
            };
            n_tokens_total = n_tokens_total.saturating_add(header.n_tokens);
            group_headers.push(header);
        }
        groups.push(ExampleGroup { kind, examples: Vec::with_capacity(n_examples) });
        headers.push(group_headers);
    }
    // Each token takes at least one byte of varint and `bytes_per_code` bytes of activation.
    if n_tokens_total.saturating_mul(1 + bytes_per_code) > input.remaining() {
        return Err(CodecError::Truncated);
    }
    let mut tokens = Vec::with_capacity(n_tokens_total);
    for _ in 0..n_tokens_total {
        tokens.push(input.u32()?);
    }
    let high_plane = if bits == 16 { input.bytes(n_tokens_total)? } else { &[][..] };
    let low_plane = input.bytes(n_tokens_total)?;
    let max_code = f64::from((1u32 << bits) - 1);
    let mut offset = 0;
    for (group, group_headers) in groups.iter_mut().zip(headers) {
        for header in group_headers {
            let range = offset..offset + header.n_tokens;
            let step = (f64::from(header.upper) - f64::from(header.lower)) / max_code;
            let lower = f64::from(header.lower);
            let activations: Vec<f32> = if bits == 16 {
                high_plane[range.clone()]
                    .iter()
                    .zip(&low_plane[range.clone()])
                    .map(|(&hi, &lo)| (lower + f64::from(u16::from_be_bytes([hi, lo])) * step) as f32)
                    .collect()
            } else {
                low_plane[range.clone()].iter().map(|&code| (lower + f64::from(code) * step) as f32).collect()
            };
            if header.n_tokens > 0 && header.max_token_index as usize >= header.n_tokens {
                return Err(CodecError::Invalid("max token index out of range"));
            }
            group.examples.push(Example {
                dataset_index: header.dataset_index,
                tokens: tokens[range].to_vec(),
                activations,
                max_token_index: header.max_token_index,
                activation_error: activation_error_bound(header.lower, header.upper, bits),
            });
            offset += header.n_tokens;
        }
    }
    Ok(NeuronExamples { groups })
}
