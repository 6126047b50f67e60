//! Tokenizers from `tokenizer.json`, from GPT-2's `encoder.json` + `vocab.bpe`, or from the
//! vocabulary and merges embedded in a GGUF file; plus the bytes and a display string for every
//! token, so partial UTF-8 and whitespace are shown rather than lost.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, DecoderWrapper};

use crate::error::ModelError;
pub use dd_data::display_token;

/// A tokenizer with the raw bytes of every token id.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// The bytes each id stands for; special tokens hold their text.
    token_bytes: Vec<Vec<u8>>,
    /// Ids of special tokens (control tokens, `<|endoftext|>`).
    special: Vec<bool>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<u32>,
    /// Where it came from, for errors.
    source: PathBuf,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Tokenizer")
            .field("source", &self.source)
            .field("vocab_size", &self.token_bytes.len())
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Reads a Hugging Face `tokenizer.json`.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self, ModelError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|err| tokenizer_error(path, err))?;
        let byte_level = uses_byte_level(inner.get_decoder());
        Ok(Self::with_tables(inner, byte_level, [None, None], path))
    }

    /// Builds GPT-2's byte-level BPE from `encoder.json` (token → id) and `vocab.bpe` (merges).
    pub fn from_gpt2_files(encoder: &Path, merges: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(encoder).map_err(|err| ModelError::io(encoder, err))?;
        let vocab: HashMap<String, u32> = serde_json::from_str(&text)
            .map_err(|err| tokenizer_error(encoder, format!("not a token → id map: {err}")))?;
        let text = std::fs::read_to_string(merges).map_err(|err| ModelError::io(merges, err))?;
        let mut merge_pairs = Vec::new();
        for (line_number, line) in text.lines().enumerate() {
            if line.starts_with("#version") || line.trim().is_empty() {
                continue;
            }
            let Some((left, right)) = line.split_once(' ') else {
                return Err(tokenizer_error(merges, format!("line {}: expected two tokens", line_number + 1)));
            };
            merge_pairs.push((left.to_owned(), right.to_owned()));
        }
        let specials: Vec<String> = vocab.keys().filter(|token| token.as_str() == "<|endoftext|>").cloned().collect();
        let inner = byte_level_bpe(encoder, vocab, merge_pairs, PreTokenization::Gpt2, &specials)?;
        Ok(Self::with_tables(inner, true, [None, None], encoder))
    }

    /// Builds the tokenizer a GGUF file embeds (`tokenizer.ggml.model` = `gpt2`, byte-level BPE).
    pub fn from_gguf(path: &Path) -> Result<Self, ModelError> {
        let mut file = std::fs::File::open(path).map_err(|err| ModelError::io(path, err))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|source| ModelError::WeightFile { path: path.to_path_buf(), source })?;
        Self::from_gguf_metadata(path, &content.metadata)
    }

    pub(crate) fn from_gguf_metadata(
        path: &Path,
        metadata: &HashMap<String, gguf_file::Value>,
    ) -> Result<Self, ModelError> {
        let string = |key: &str| match metadata.get(key) {
            Some(gguf_file::Value::String(value)) => Some(value.as_str()),
            _ => None,
        };
        match string("tokenizer.ggml.model") {
            Some("gpt2") => {}
            Some(other) => {
                return Err(tokenizer_error(
                    path,
                    format!("GGUF tokenizer model `{other}` is not supported (only gpt2)"),
                ));
            }
            None => return Err(tokenizer_error(path, "the GGUF file has no tokenizer.ggml.model")),
        }
        let strings = |key: &str| -> Result<Vec<String>, ModelError> {
            let Some(gguf_file::Value::Array(values)) = metadata.get(key) else {
                return Err(tokenizer_error(path, format!("missing {key}")));
            };
            values
                .iter()
                .map(|value| match value {
                    gguf_file::Value::String(text) => Ok(text.clone()),
                    _ => Err(tokenizer_error(path, format!("{key} must hold strings"))),
                })
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let token_types: Vec<i64> = match metadata.get("tokenizer.ggml.token_type") {
            Some(gguf_file::Value::Array(values)) => values.iter().map(gguf_signed).collect(),
            _ => Vec::new(),
        };
        let mut merge_pairs = Vec::with_capacity(merges.len());
        for (index, merge) in merges.iter().enumerate() {
            let Some((left, right)) = merge.split_once(' ') else {
                return Err(tokenizer_error(path, format!("merge {index} `{merge}` is not two tokens")));
            };
            merge_pairs.push((left.to_owned(), right.to_owned()));
        }
        // llama.cpp token types: 3 = control, 4 = user-defined; both are matched whole.
        let specials: Vec<String> = tokens
            .iter()
            .zip(token_types.iter().copied().chain(std::iter::repeat(1)))
            .filter(|(_, token_type)| matches!(token_type, 3 | 4))
            .map(|(token, _)| token.clone())
            .collect();
        let vocab: HashMap<String, u32> =
            tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
        if vocab.len() != tokens.len() {
            return Err(tokenizer_error(path, "tokenizer.ggml.tokens holds duplicate tokens"));
        }
        let pre_tokenization = match string("tokenizer.ggml.pre") {
            None | Some("default" | "gpt2" | "gpt-2") => PreTokenization::Gpt2,
            Some("smollm" | "starcoder" | "refact") => PreTokenization::Gpt2WithSingleDigits,
            Some(other) => {
                return Err(tokenizer_error(path, format!("GGUF pre-tokenizer `{other}` is not supported")));
            }
        };
        let inner = byte_level_bpe(path, vocab, merge_pairs, pre_tokenization, &specials)?;
        let id = |key: &str| metadata.get(key).map(gguf_signed).and_then(|id| u32::try_from(id).ok());
        let bos_and_eos = [id("tokenizer.ggml.bos_token_id"), id("tokenizer.ggml.eos_token_id")];
        Ok(Self::with_tables(inner, true, bos_and_eos, path))
    }

    /// `bos_and_eos`: the ids the file's metadata names, if any.
    fn with_tables(
        inner: tokenizers::Tokenizer,
        byte_level: bool,
        bos_and_eos: [Option<u32>; 2],
        source: &Path,
    ) -> Self {
        let vocab = inner.get_vocab(true);
        let size = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        let mut token_bytes = vec![Vec::new(); size];
        let mut special = vec![false; size];
        let added = inner.get_added_vocabulary();
        let unicode_to_byte = byte_decoder();
        for (token, id) in vocab {
            let index = id as usize;
            let is_special = added.is_special_token(&token);
            special[index] = is_special;
            token_bytes[index] = match (byte_level && !is_special, byte_fallback_byte(&token)) {
                (true, _) => token
                    .chars()
                    .map(|character| unicode_to_byte.get(&character).copied())
                    .collect::<Option<Vec<u8>>>()
                    .unwrap_or_else(|| token.clone().into_bytes()),
                (false, Some(byte)) => vec![byte],
                (false, None) => token.replace('▁', " ").into_bytes(),
            };
        }
        let [bos_token_id, eos_token_id] = bos_and_eos;
        Self { inner, token_bytes, special, bos_token_id, eos_token_id, source: source.to_path_buf() }
    }

    /// Token ids for `text`, without any special tokens added; special tokens written in the text
    /// (`<|im_start|>` in a chat prompt) become their single ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self.inner.encode(text, false).map_err(|err| tokenizer_error(&self.source, err))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids` joined (invalid UTF-8 replaced by U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> =
            ids.iter().flat_map(|&id| self.token_bytes(id).unwrap_or_default().iter().copied()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The id models expect at the start of a context, if the tokenizer names one.
    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_token_id.or_else(|| {
            ["<|endoftext|>", "<s>", "<|begin_of_text|>"].iter().find_map(|token| self.inner.token_to_id(token))
        })
    }

    /// The id that ends a document, if the tokenizer names one.
    pub fn eos_token_id(&self) -> Option<u32> {
        self.eos_token_id.or_else(|| {
            ["<|endoftext|>", "</s>", "<|end_of_text|>"].iter().find_map(|token| self.inner.token_to_id(token))
        })
    }

    /// The id of the vocabulary entry spelt exactly `token_text` as the tokenizer stores it
    /// (byte-level BPE writes a leading space as `Ġ`: `"Ġthe"`, not `" the"`), special tokens
    /// included.
    pub fn token_id(&self, token_text: &str) -> Option<u32> {
        self.inner.token_to_id(token_text)
    }

    /// One more than the largest id.
    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// The bytes token `id` stands for.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.token_bytes.get(id as usize).map(Vec::as_slice)
    }

    /// Whether `id` is a special (control) token.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false)
    }

    /// How token `id` is shown to a person: see [`display_token`]. Unknown ids show as `<unused>`.
    pub fn display(&self, id: u32) -> String {
        match self.token_bytes(id) {
            Some(bytes) if !bytes.is_empty() => display_token(bytes),
            _ => "<unused>".to_owned(),
        }
    }
}

/// How text is split before BPE.
#[derive(Clone, Copy)]
enum PreTokenization {
    /// GPT-2's regex.
    Gpt2,
    /// Every digit alone, then GPT-2's regex (SmolLM2, StarCoder).
    Gpt2WithSingleDigits,
}

fn byte_level_bpe(
    source: &Path,
    vocab: HashMap<String, u32>,
    merges: Vec<(String, String)>,
    pre_tokenization: PreTokenization,
    specials: &[String],
) -> Result<tokenizers::Tokenizer, ModelError> {
    let vocab: tokenizers::models::bpe::Vocab = vocab.into_iter().collect();
    let model = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|err| tokenizer_error(source, err))?;
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    let byte_level = ByteLevel::new(false, true, true);
    let pre_tokenizer: PreTokenizerWrapper = match pre_tokenization {
        PreTokenization::Gpt2 => byte_level.into(),
        PreTokenization::Gpt2WithSingleDigits => {
            Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
        }
    };
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevel::new(false, true, true)));
    let specials: Vec<AddedToken> = specials.iter().map(|token| AddedToken::from(token.clone(), true)).collect();
    tokenizer.add_special_tokens(&specials);
    Ok(tokenizer)
}

/// Whether a tokenizer.json decodes byte-level tokens (GPT-2 style) rather than SentencePiece ones.
fn uses_byte_level(decoder: Option<&DecoderWrapper>) -> bool {
    match decoder {
        Some(DecoderWrapper::ByteLevel(_)) => true,
        Some(DecoderWrapper::Sequence(sequence)) => {
            sequence.get_decoders().iter().any(|inner| uses_byte_level(Some(inner)))
        }
        _ => false,
    }
}

/// SentencePiece byte-fallback tokens such as `<0x0A>`.
fn byte_fallback_byte(token: &str) -> Option<u8> {
    let hex = token.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// GPT-2's byte → printable character table, inverted: printable Latin-1 bytes stand for
/// themselves, the other 68 bytes for U+0100 onwards in byte order.
fn byte_decoder() -> HashMap<char, u8> {
    let mut table = HashMap::with_capacity(256);
    let mut next_unprintable = 0u32;
    for byte in 0..=255u8 {
        let printable = matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let character = match printable {
            true => char::from(byte),
            false => {
                let character = char::from_u32(256 + next_unprintable).unwrap_or(char::REPLACEMENT_CHARACTER);
                next_unprintable += 1;
                character
            }
        };
        table.insert(character, byte);
    }
    table
}

fn gguf_signed(value: &gguf_file::Value) -> i64 {
    use gguf_file::Value;
    match *value {
        Value::U8(number) => number.into(),
        Value::I8(number) => number.into(),
        Value::U16(number) => number.into(),
        Value::I16(number) => number.into(),
        Value::U32(number) => number.into(),
        Value::I32(number) => number.into(),
        Value::I64(number) => number,
        Value::U64(number) => i64::try_from(number).unwrap_or(i64::MAX),
        _ => -1,
    }
}

fn tokenizer_error(path: &Path, err: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer { path: path.to_path_buf(), message: err.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_makes_whitespace_and_partial_characters_visible() {
        assert_eq!(display_token(b" the"), "·the");
        assert_eq!(display_token(b"\n\n"), "↵↵");
        assert_eq!(display_token(b"\t\r"), "→␍");
        assert_eq!(display_token(b"\x07"), "\\u{7}");
        // The first two bytes of 👋 (F0 9F 91 8B).
        assert_eq!(display_token(b"\xF0\x9F"), "<0xF0><0x9F>");
        assert_eq!(display_token("é".as_bytes()), "é");
    }

    #[test]
    fn byte_decoder_covers_every_byte_once() {
        let table = byte_decoder();
        assert_eq!(table.len(), 256);
        let mut bytes: Vec<u8> = table.values().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
        // The well-known GPT-2 mappings: space is Ġ (U+0120), newline Ċ (U+010A).
        assert_eq!(table[&'Ġ'], b' ');
        assert_eq!(table[&'Ċ'], b'\n');
    }
}
