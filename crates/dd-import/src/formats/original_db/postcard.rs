//! The original DeepDecipher's blobs (spec `original-deepdecipher.md` §2): postcard 1.x, wrapped in
//! a Snappy raw block except for similar-neuron lists. Postcard writes struct fields in declaration
//! order with no names or tags: unsigned integers as LEB128 varints (`usize` as a 64-bit one),
//! `f32` as 4 little-endian bytes, strings and sequences (maps too) as a varint length then the
//! items. These are the original's own structs, field for field, private to this importer.
//!
//! Every length is checked against the bytes left before anything is allocated, so a lying blob
//! costs no more memory than its own size, and nothing here panics on any input.

/// Why a blob could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// The Snappy block is damaged.
    #[error("not a Snappy raw block: {0}")]
    Snappy(String),
    /// The Snappy header claims more bytes than any block of this size can hold.
    #[error("the Snappy block claims {claimed} bytes from {compressed}, more than Snappy can expand to")]
    Inflated {
        /// What the header says.
        claimed: usize,
        /// The block's size.
        compressed: usize,
    },
    /// The postcard bytes end inside a value.
    #[error("postcard data ends at byte {at} inside {what}")]
    Truncated {
        /// The value being read.
        what: &'static str,
        /// Where the data ended.
        at: usize,
    },
    /// A varint is too long or does not fit its type.
    #[error("{what} at byte {at} is not a valid varint of its type")]
    BadVarint {
        /// The value being read.
        what: &'static str,
        /// Where it starts.
        at: usize,
    },
    /// A length is larger than the bytes left could hold.
    #[error("{what} at byte {at} claims {claimed} items, more than the {left} bytes left can hold")]
    LyingLength {
        /// The sequence.
        what: &'static str,
        /// Where its length starts.
        at: usize,
        /// The claimed number of items.
        claimed: u64,
        /// Bytes left after the length.
        left: usize,
    },
    /// A string is not UTF-8.
    #[error("{what} at byte {at} is not UTF-8")]
    NotUtf8 {
        /// The string.
        what: &'static str,
        /// Where its bytes start.
        at: usize,
    },
    /// Bytes follow the value: the blob is not of the type its data type says.
    #[error("{left} bytes left over after the value")]
    TrailingBytes {
        /// How many.
        left: usize,
    },
}

/// `NeuroscopeNeuronPage`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NeuroscopePage {
    pub(crate) layer: u32,
    pub(crate) neuron: u32,
    pub(crate) texts: Vec<Text>,
}

/// `Text` of a neuroscope page (its `min_range`/`max_range`/`min_activation`/`max_activation`
/// are read and dropped: they follow from the activations).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Text {
    pub(crate) data_index: u64,
    pub(crate) max_activating_token_index: u32,
    pub(crate) tokens: Vec<String>,
    pub(crate) activations: Vec<f32>,
}

/// `NeuronExplainerPage`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExplainerPage {
    pub(crate) explanation: String,
    pub(crate) score: f32,
}

/// Neuron2Graph's `Graph`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Graph {
    pub(crate) subgraph_indices: Vec<u64>,
    pub(crate) nodes: Vec<Node>,
}

/// A `Node` of a graph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) token: String,
    pub(crate) required: Vec<u64>,
    pub(crate) importance: f32,
}

/// A `SimilarNeuron`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Similar {
    pub(crate) layer: u32,
    pub(crate) neuron: u32,
    pub(crate) similarity: f32,
}

/// One map of the model-level `NeuronStore`: each token with its neurons as (layer, neuron).
pub(crate) type TokenNeurons = Vec<(String, Vec<(u32, u32)>)>;

/// The model-level `NeuronStore`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NeuronStore {
    pub(crate) activating: TokenNeurons,
    pub(crate) important: TokenNeurons,
}

/// Snappy's densest element, a 3-byte copy of 64 bytes, bounds how far a block can expand.
const MAX_SNAPPY_RATIO: usize = 22;

/// The bytes inside a Snappy raw block, refusing a header that claims more than the block can hold
/// before allocating for it.
pub(crate) fn unsnap(blob: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let claimed = snap::raw::decompress_len(blob).map_err(|error| DecodeError::Snappy(error.to_string()))?;
    if claimed > blob.len().saturating_mul(MAX_SNAPPY_RATIO) {
        return Err(DecodeError::Inflated { claimed, compressed: blob.len() });
    }
    snap::raw::Decoder::new().decompress_vec(blob).map_err(|error| DecodeError::Snappy(error.to_string()))
}

/// A neuroscope neuron page from its (Snappy-wrapped) blob.
pub(crate) fn neuroscope_page(blob: &[u8]) -> Result<NeuroscopePage, DecodeError> {
    let bytes = unsnap(blob)?;
    let mut reader = Reader::new(&bytes);
    let layer = reader.u32("neuron_index.layer")?;
    let neuron = reader.u32("neuron_index.neuron")?;
    // min_range, max_range, min_activation, max_activation, data_index, max token index, 2 lengths.
    let n_texts = reader.length("texts", 4 * 4 + 4)?;
    let mut texts = Vec::with_capacity(n_texts);
    for _ in 0..n_texts {
        for what in ["min_range", "max_range", "min_activation", "max_activation"] {
            reader.f32(what)?;
        }
        let data_index = reader.u64("data_index")?;
        let max_activating_token_index = reader.u32("max_activating_token_index")?;
        let n_tokens = reader.length("tokens", 1)?;
        let tokens = (0..n_tokens).map(|_| reader.string("token")).collect::<Result<_, _>>()?;
        let n_activations = reader.length("activations", 4)?;
        let activations = (0..n_activations).map(|_| reader.f32("activation")).collect::<Result<_, _>>()?;
        texts.push(Text { data_index, max_activating_token_index, tokens, activations });
    }
    reader.finish()?;
    Ok(NeuroscopePage { layer, neuron, texts })
}

/// A neuron explainer page from its (Snappy-wrapped) blob.
pub(crate) fn explainer_page(blob: &[u8]) -> Result<ExplainerPage, DecodeError> {
    let bytes = unsnap(blob)?;
    let mut reader = Reader::new(&bytes);
    let page = ExplainerPage { explanation: reader.string("explanation")?, score: reader.f32("score")? };
    reader.finish()?;
    Ok(page)
}

/// A Neuron2Graph graph from its (Snappy-wrapped) blob.
pub(crate) fn graph(blob: &[u8]) -> Result<Graph, DecodeError> {
    let bytes = unsnap(blob)?;
    let mut reader = Reader::new(&bytes);
    let n_indices = reader.length("subgraph_indices", 1)?;
    let subgraph_indices = (0..n_indices).map(|_| reader.u64("subgraph index")).collect::<Result<_, _>>()?;
    // token length, required length, importance.
    let n_nodes = reader.length("graph", 1 + 1 + 4)?;
    let mut nodes = Vec::with_capacity(n_nodes);
    for _ in 0..n_nodes {
        let token = reader.string("node token")?;
        let n_required = reader.length("required", 1)?;
        let required = (0..n_required).map(|_| reader.u64("required")).collect::<Result<_, _>>()?;
        nodes.push(Node { token, required, importance: reader.f32("importance")? });
    }
    reader.finish()?;
    Ok(Graph { subgraph_indices, nodes })
}

/// A similar-neuron list from its blob (plain postcard: the original does not compress these).
pub(crate) fn similar_neurons(blob: &[u8]) -> Result<Vec<Similar>, DecodeError> {
    let mut reader = Reader::new(blob);
    let n_similar = reader.length("similar neurons", 1 + 1 + 4)?;
    let mut similar = Vec::with_capacity(n_similar);
    for _ in 0..n_similar {
        similar.push(Similar {
            layer: reader.u32("layer")?,
            neuron: reader.u32("neuron")?,
            similarity: reader.f32("similarity")?,
        });
    }
    reader.finish()?;
    Ok(similar)
}

/// The model's neuron store from its (Snappy-wrapped) blob.
pub(crate) fn neuron_store(blob: &[u8]) -> Result<NeuronStore, DecodeError> {
    let bytes = unsnap(blob)?;
    let mut reader = Reader::new(&bytes);
    reader.u32("layer_size")?;
    reader.u32("num_layers")?;
    let activating = token_map(&mut reader, "activating")?;
    let important = token_map(&mut reader, "important")?;
    reader.finish()?;
    Ok(NeuronStore { activating, important })
}

fn token_map(reader: &mut Reader<'_>, what: &'static str) -> Result<TokenNeurons, DecodeError> {
    // A key (at least its length byte) and a set (at least its length byte).
    let n_tokens = reader.length(what, 2)?;
    let mut entries = Vec::with_capacity(n_tokens);
    for _ in 0..n_tokens {
        let token = reader.string("neuron store token")?;
        let n_neurons = reader.length("neuron set", 2)?;
        let neurons = (0..n_neurons)
            .map(|_| Ok((reader.u32("neuron layer")?, reader.u32("neuron index")?)))
            .collect::<Result<_, DecodeError>>()?;
        entries.push((token, neurons));
    }
    Ok(entries)
}

/// A cursor over postcard bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let taken = self
            .bytes
            .get(self.at..self.at.saturating_add(n))
            .ok_or(DecodeError::Truncated { what, at: self.bytes.len() })?;
        self.at += n;
        Ok(taken)
    }

    /// A LEB128 varint of at most `max_bits` bits.
    fn varint(&mut self, what: &'static str, max_bits: u32) -> Result<u64, DecodeError> {
        let start = self.at;
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = self.take(1, what)?[0];
            let bits = u64::from(byte & 0x7f);
            // The last group may only hold the bits the type has left.
            if shift >= max_bits || (max_bits - shift < 7 && bits >> (max_bits - shift) != 0) {
                return Err(DecodeError::BadVarint { what, at: start });
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.varint(what, 64)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        // At most 32 bits by construction.
        self.varint(what, 32).map(|value| value as u32)
    }

    fn f32(&mut self, what: &'static str) -> Result<f32, DecodeError> {
        let bytes = self.take(4, what)?;
        Ok(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A sequence length whose items take at least `min_item_bytes` each, so it is never more
    /// than the bytes left can hold.
    fn length(&mut self, what: &'static str, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let start = self.at;
        let claimed = self.varint(what, 64)?;
        let left = self.left();
        match usize::try_from(claimed) {
            Ok(n) if n.saturating_mul(min_item_bytes) <= left => Ok(n),
            _ => Err(DecodeError::LyingLength { what, at: start, claimed, left }),
        }
    }

    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let n_bytes = self.length(what, 1)?;
        let start = self.at;
        let bytes = self.take(n_bytes, what)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::NotUtf8 { what, at: start })
    }

    fn finish(self) -> Result<(), DecodeError> {
        match self.left() {
            0 => Ok(()),
            left => Err(DecodeError::TrailingBytes { left }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An explainer page written by hand: "hi", 0.5.
    const EXPLAINER: [u8; 7] = [2, b'h', b'i', 0, 0, 0, 0x3f];

    fn snapped(bytes: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(bytes).expect("compress")
    }

    #[test]
    fn varints_of_every_width_and_their_limits() {
        let mut reader = Reader::new(&[0x7f, 0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(reader.u32("a"), Ok(127));
        assert_eq!(reader.u32("b"), Ok(128));
        assert_eq!(reader.u32("c"), Ok(u32::MAX));
        for too_big in [&[0xff, 0xff, 0xff, 0xff, 0x10][..], &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]] {
            assert!(matches!(Reader::new(too_big).u32("x"), Err(DecodeError::BadVarint { .. })), "{too_big:?}");
        }
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&max).u64("m"), Ok(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(matches!(Reader::new(&over).u64("o"), Err(DecodeError::BadVarint { .. })));
    }

    #[test]
    fn every_truncation_is_an_error_and_trailing_bytes_too() {
        assert_eq!(explainer_page(&snapped(&EXPLAINER)), Ok(ExplainerPage { explanation: "hi".into(), score: 0.5 }));
        for end in 0..EXPLAINER.len() {
            assert!(explainer_page(&snapped(&EXPLAINER[..end])).is_err(), "prefix of {end} bytes accepted");
        }
        let mut longer = EXPLAINER.to_vec();
        longer.push(0);
        assert_eq!(explainer_page(&snapped(&longer)), Err(DecodeError::TrailingBytes { left: 1 }));
    }

    #[test]
    fn lying_lengths_are_refused_before_allocating() {
        // A graph claiming 2^62 subgraph indices in 10 bytes.
        let lying = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0];
        assert!(matches!(graph(&snapped(&lying)), Err(DecodeError::LyingLength { claimed, .. }) if claimed == 1 << 62));
        // A Snappy header claiming 4 GiB over a handful of bytes.
        let inflated = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0];
        assert!(matches!(unsnap(&inflated), Err(DecodeError::Inflated { .. })));
        assert!(matches!(similar_neurons(&[0xff, 0xff, 0x03]), Err(DecodeError::LyingLength { .. })));
    }
}
