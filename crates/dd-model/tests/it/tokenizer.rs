//! Tokenizers against references from Python (`tests/fixtures/tokenizers/reference.json`): the ids
//! and every token's bytes for awkward strings (whitespace runs, CJK, emoji split mid-character,
//! special tokens in the text, the empty string), and decoding back to the text.

use dd_model::Tokenizer;

use crate::{asset, fixture};

/// The single place that checks a tokenizer against one reference entry.
fn check_tokenizer(tokenizer: &Tokenizer, reference_key: &str) {
    let text = std::fs::read_to_string(fixture("tokenizers/reference.json")).expect("reference.json");
    let reference: serde_json::Value = serde_json::from_str(&text).expect("reference JSON");
    let strings = reference["strings"].as_array().expect("strings");
    let entry = &reference[reference_key];
    let all_ids = entry["ids"].as_array().expect("ids");
    let all_pieces = entry["piece_bytes"].as_array().expect("piece_bytes");
    assert_eq!(strings.len(), all_ids.len());
    for ((string, ids), pieces) in strings.iter().zip(all_ids).zip(all_pieces) {
        let string = string.as_str().expect("string");
        let expected: Vec<u32> =
            ids.as_array().expect("ids").iter().map(|id| id.as_u64().expect("id") as u32).collect();
        let actual = tokenizer.encode(string).expect("encode");
        assert_eq!(actual, expected, "{reference_key}: ids of {string:?}");
        for (&id, piece) in actual.iter().zip(pieces.as_array().expect("pieces")) {
            let expected_bytes: Vec<u8> =
                piece.as_array().expect("bytes").iter().map(|byte| byte.as_u64().expect("byte") as u8).collect();
            assert_eq!(tokenizer.token_bytes(id), Some(expected_bytes.as_slice()), "{reference_key}: bytes of {id}");
        }
        assert_eq!(tokenizer.decode(&actual), string, "{reference_key}: round trip of {string:?}");
    }
}

#[test]
fn gpt2_encoder_json_and_vocab_bpe() {
    let tokenizer =
        Tokenizer::from_gpt2_files(&asset("gpt2/encoder.json"), &asset("gpt2/vocab.bpe")).expect("GPT-2 BPE");
    assert_eq!(tokenizer.vocab_size(), 50257);
    assert_eq!(tokenizer.bos_token_id(), Some(50256));
    assert!(tokenizer.is_special(50256));
    check_tokenizer(&tokenizer, "gpt2_bpe");
}

#[test]
fn tokenizer_json() {
    let tokenizer = Tokenizer::from_tokenizer_json(&fixture("tokenizers/tiny-tokenizer.json")).expect("tokenizer.json");
    check_tokenizer(&tokenizer, "tiny_json");
}

#[test]
fn tokenizer_embedded_in_gguf() {
    let tokenizer = Tokenizer::from_gguf(&fixture("llama-gguf/model.gguf")).expect("GGUF tokenizer");
    assert_eq!(tokenizer.vocab_size(), 320);
    check_tokenizer(&tokenizer, "tiny_gguf");
}

#[test]
fn smollm2_gguf_tokenizer() {
    let tokenizer = Tokenizer::from_gguf(&asset("SmolLM2-135M-Instruct.Q4_1.gguf")).expect("SmolLM2 tokenizer");
    assert_eq!(tokenizer.vocab_size(), 49152);
    check_tokenizer(&tokenizer, "smollm2_gguf");
    // Display strings: whitespace visible, the emoji's halves shown as bytes.
    let ids = tokenizer.encode(" Paris\n").expect("encode");
    let shown: Vec<String> = ids.iter().map(|&id| tokenizer.display(id)).collect();
    assert_eq!(shown.concat(), "·Paris↵");
}

#[test]
fn broken_tokenizer_files_are_clear_errors() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let broken = directory.path().join("tokenizer.json");
    std::fs::write(&broken, "{\"model\": 7}").expect("write");
    let err = Tokenizer::from_tokenizer_json(&broken).expect_err("not a tokenizer");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
    let merges = directory.path().join("vocab.bpe");
    std::fs::write(&merges, "#version: 0.2\nonlyonetoken\n").expect("write");
    let encoder = directory.path().join("encoder.json");
    std::fs::write(&encoder, "{\"a\": 0}").expect("write");
    let err = Tokenizer::from_gpt2_files(&encoder, &merges).expect_err("bad merges");
    assert!(err.to_string().contains("line 2"), "{err}");
}
