//! A tokenizer for the fixture models, shared with `dd-relate`'s tests (`#[path]`).

use std::path::Path;

use dd_model::Tokenizer;

/// A byte-level BPE with no merges: one token per byte (ids 0–255) and `<|endoftext|>` (256), which
/// fits the fixtures' 320-token vocabulary.
pub(crate) fn byte_tokenizer(dir: &Path) -> Tokenizer {
    let mut printable: Vec<u32> = (33..=126).chain(161..=172).chain(174..=255).collect();
    let mut extra = 0;
    let mut char_of = [' '; 256];
    for byte in 0..256u32 {
        let code = if printable.contains(&byte) {
            byte
        } else {
            extra += 1;
            255 + extra
        };
        char_of[byte as usize] = char::from_u32(code).expect("valid char");
    }
    printable.clear();
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..256).map(|b| (char_of[b].to_string(), serde_json::json!(b))).collect();
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [{"id": 256, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
                          "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": []}
    });
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, json.to_string()).expect("write tokenizer");
    Tokenizer::from_tokenizer_json(&path).expect("byte tokenizer loads")
}
