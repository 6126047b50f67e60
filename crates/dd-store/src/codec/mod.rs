//! The versioned binary encoding of every stored record; `docs/format.md` is its specification.
//!
//! A blob is a 4-byte header (format version, level, kind, flags), then the
//! payload, zstd-compressed when that makes it smaller. Decoding checks the
//! header against the level and kind the caller expects, so a blob stored
//! under the wrong key is an error, not garbage.

mod examples;
mod records;
mod relations;
mod wire;

use std::cell::RefCell;

use dd_data::{LayerDataKind, LayerRecord, ModelDataKind, ModelRecord, NeuronDataKind, NeuronRecord};

pub use examples::{QuantizedExample, QuantizedExamples, QuantizedGroup, activation_error_bound, quantize_example};

/// The format version written into every blob; bump it when any payload changes.
///
/// Version 2 added the BOS section to `stats`; version 3 the node details and scores of `graph`;
/// version 4 the provenance, simulations and embedding of `explanations`; version 5 packed an
/// explanation's optional parts into one flags byte, so one without them costs what it did in
/// version 3; every other payload reads as in version 1.
pub const FORMAT_VERSION: u8 = 5;

/// The oldest format version this build still reads.
pub const OLDEST_READABLE_VERSION: u8 = 1;

/// Activation bits used unless a caller asks otherwise: 8 bits keeps a 20 × 128-token neuron near 5 KB.
pub const DEFAULT_ACTIVATION_BITS: u8 = 8;

/// zstd level used unless a caller asks otherwise; decoding speed does not depend on it.
pub const DEFAULT_ZSTD_LEVEL: i32 = 9;

/// Payloads shorter than this are stored uncompressed: zstd's frame overhead would eat the gain.
const MIN_COMPRESS_LEN: usize = 64;

/// Decompressed payloads above this are refused, so a corrupt length cannot exhaust memory.
const MAX_PAYLOAD_LEN: u64 = 1 << 30;

/// Largest accepted ratio of payload to compressed bytes; real blobs stay far below 100.
const MAX_COMPRESSION_RATIO: u64 = 1024;

const FLAG_ZSTD: u8 = 1;

/// How records are encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodeOptions {
    /// Bits per quantized activation: 8 or 16.
    pub activation_bits: u8,
    /// zstd compression level (1-22).
    pub zstd_level: i32,
}

impl EncodeOptions {
    /// The options the recorder and `synth` use.
    pub const STANDARD: EncodeOptions =
        EncodeOptions { activation_bits: DEFAULT_ACTIVATION_BITS, zstd_level: DEFAULT_ZSTD_LEVEL };
}

/// The level a blob belongs to; part of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Model-level data.
    Model,
    /// Layer-level data.
    Layer,
    /// Neuron-level data.
    Neuron,
}

impl Level {
    fn tag(self) -> u8 {
        match self {
            Level::Model => b'M',
            Level::Layer => b'L',
            Level::Neuron => b'N',
        }
    }
}

/// A blob that cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The blob ends before its content does.
    #[error("blob is truncated")]
    Truncated,
    /// The blob was written by a newer or unknown format.
    #[error("blob has format version {found}; this build reads versions {OLDEST_READABLE_VERSION} to {FORMAT_VERSION}")]
    UnsupportedVersion {
        /// The version in the blob.
        found: u8,
    },
    /// The blob's header names another level or kind than the key it was stored under.
    #[error(
        "blob header says level {found_level:?} kind {found_kind}, expected level {expected_level:?} kind {expected_kind}"
    )]
    WrongKind {
        /// Level the caller expected.
        expected_level: char,
        /// Kind code the caller expected.
        expected_kind: u8,
        /// Level in the header.
        found_level: char,
        /// Kind code in the header.
        found_kind: u8,
    },
    /// The payload is inconsistent.
    #[error("blob is malformed: {0}")]
    Invalid(&'static str),
    /// Bytes remain after the payload.
    #[error("blob has {n_bytes} unexpected trailing bytes")]
    TrailingBytes {
        /// How many bytes remain.
        n_bytes: usize,
    },
    /// zstd failed.
    #[error("zstd: {0}")]
    Zstd(#[source] std::io::Error),
    /// The record breaks an invariant of its type and is not written.
    #[error("record is invalid: {0}")]
    InvalidRecord(#[from] dd_data::DataError),
    /// Options outside the supported range.
    #[error("unsupported encode options: {0}")]
    BadOptions(&'static str),
}

/// Encodes a neuron-level record.
pub fn encode_neuron(record: &NeuronRecord, options: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    record.validate()?;
    let payload = records::neuron_payload(record, options)?;
    seal(Level::Neuron, record.kind().code(), payload, options)
}

/// A neuron-level record already encoded, so encoding can run on other threads than the writer.
#[derive(Debug, Clone)]
pub struct EncodedNeuron {
    kind: NeuronDataKind,
    blob: Vec<u8>,
}

impl EncodedNeuron {
    /// Validates and encodes a record.
    pub fn new(record: &NeuronRecord, options: &EncodeOptions) -> Result<Self, CodecError> {
        Ok(Self { kind: record.kind(), blob: encode_neuron(record, options)? })
    }

    /// A blob as a store holds it, checked by decoding it and kept byte for byte (for copying a
    /// record between stores without re-quantizing it).
    pub fn from_blob(kind: NeuronDataKind, blob: Vec<u8>) -> Result<Self, CodecError> {
        decode_neuron(kind, &blob)?;
        Ok(Self { kind, blob })
    }

    /// The record's kind.
    pub fn kind(&self) -> NeuronDataKind {
        self.kind
    }

    /// The encoded blob.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }
}

/// Decodes a neuron-level record stored under `kind`.
pub fn decode_neuron(kind: NeuronDataKind, blob: &[u8]) -> Result<NeuronRecord, CodecError> {
    with_payload(Level::Neuron, kind.code(), blob, |payload| records::read_neuron(kind, payload))
}

/// Decodes an `examples` blob into its stored form, without decoding activations.
pub fn decode_examples_quantized(blob: &[u8]) -> Result<QuantizedExamples, CodecError> {
    with_payload(Level::Neuron, NeuronDataKind::Examples.code(), blob, examples::read_quantized)
}

/// Encodes a layer-level record.
pub fn encode_layer(record: &LayerRecord, options: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    record.validate()?;
    let payload = records::layer_payload(record);
    seal(Level::Layer, record.kind().code(), payload, options)
}

/// Decodes a layer-level record stored under `kind`.
pub fn decode_layer(kind: LayerDataKind, blob: &[u8]) -> Result<LayerRecord, CodecError> {
    with_payload(Level::Layer, kind.code(), blob, |payload| records::read_layer(kind, payload))
}

/// Encodes a model-level record.
pub fn encode_model(record: &ModelRecord, options: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    record.validate()?;
    let payload = records::model_payload(record);
    seal(Level::Model, record.kind().code(), payload, options)
}

/// Decodes a model-level record stored under `kind`.
pub fn decode_model(kind: ModelDataKind, blob: &[u8]) -> Result<ModelRecord, CodecError> {
    with_payload(Level::Model, kind.code(), blob, |payload| records::read_model(kind, payload))
}

thread_local! {
    // Decompression contexts are reused per thread: creating one costs more than decoding a small blob.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn seal(level: Level, kind: u8, payload: Vec<u8>, options: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    let mut blob = vec![FORMAT_VERSION, level.tag(), kind, 0];
    if payload.len() >= MIN_COMPRESS_LEN {
        let compressed = zstd::bulk::compress(&payload, options.zstd_level).map_err(CodecError::Zstd)?;
        let mut length_prefix = wire::WireWriter::default();
        length_prefix.varint(payload.len() as u64);
        // A payload that compresses past the ratio decoding accepts (a layer of all-zero summaries
        // does) is stored as it is: the encoder never writes what the decoder refuses.
        let plausible = payload.len() as u64 <= (compressed.len() as u64).saturating_mul(MAX_COMPRESSION_RATIO) + 4096;
        if compressed.len() + length_prefix.buf.len() < payload.len() && plausible {
            blob[3] = FLAG_ZSTD;
            blob.extend_from_slice(&length_prefix.buf);
            blob.extend_from_slice(&compressed);
            return Ok(blob);
        }
    }
    blob.extend_from_slice(&payload);
    Ok(blob)
}

fn with_payload<T>(
    level: Level,
    kind: u8,
    blob: &[u8],
    read: impl FnOnce(&mut wire::WireReader<'_>) -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    let [version, level_tag, kind_code, flags, rest @ ..] = blob else {
        return Err(CodecError::Truncated);
    };
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(version) {
        return Err(CodecError::UnsupportedVersion { found: *version });
    }
    if *level_tag != level.tag() || *kind_code != kind {
        return Err(CodecError::WrongKind {
            expected_level: char::from(level.tag()),
            expected_kind: kind,
            found_level: char::from(*level_tag),
            found_kind: *kind_code,
        });
    }
    match *flags {
        0 => {
            let mut reader = wire::WireReader::new(rest).with_version(*version);
            let value = read(&mut reader)?;
            reader.finish()?;
            Ok(value)
        }
        FLAG_ZSTD => {
            let mut header = wire::WireReader::new(rest);
            let payload_len = header.varint()?;
            if payload_len > MAX_PAYLOAD_LEN {
                return Err(CodecError::Invalid("payload length too large"));
            }
            let compressed = &rest[rest.len() - header.remaining()..];
            // The buffer is allocated up front, so its size must be justified by the blob itself: the
            // frame must declare the same length, and no more than a generous ratio of its own size.
            let declared = zstd::zstd_safe::get_frame_content_size(compressed).ok().flatten();
            if declared != Some(payload_len) {
                return Err(CodecError::Invalid("zstd frame size differs from header"));
            }
            if payload_len > (compressed.len() as u64).saturating_mul(MAX_COMPRESSION_RATIO) + 4096 {
                return Err(CodecError::Invalid("payload length implausible for its compressed size"));
            }
            let payload = DECOMPRESSOR.with(|cell| {
                let mut slot = cell.borrow_mut();
                let decompressor = match slot.as_mut() {
                    Some(decompressor) => decompressor,
                    None => slot.insert(zstd::bulk::Decompressor::new().map_err(CodecError::Zstd)?),
                };
                decompressor.decompress(compressed, payload_len as usize).map_err(CodecError::Zstd)
            })?;
            if payload.len() as u64 != payload_len {
                return Err(CodecError::Invalid("decompressed length differs from header"));
            }
            let mut reader = wire::WireReader::new(&payload).with_version(*version);
            let value = read(&mut reader)?;
            reader.finish()?;
            Ok(value)
        }
        _ => Err(CodecError::Invalid("unknown flags")),
    }
}

#[cfg(test)]
mod tests;
