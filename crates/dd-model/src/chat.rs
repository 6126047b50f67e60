//! Conversations written the way an instruct model was trained to read them. Models ship their
//! template as Jinja (GGUF `tokenizer.chat_template`, `tokenizer_config.json`); rather than run
//! Jinja we recognise the few formats in use by their special tokens and write them ourselves.

use crate::tokenizer::Tokenizer;

/// How an instruct model's tokenizer expects a conversation to be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n` per message (SmolLM2, Qwen).
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` per message, after
    /// `<|begin_of_text|>` (Llama 3).
    Llama3,
    /// `User: …\nAssistant:` for models without a chat format (base models).
    Plain,
}

impl ChatTemplate {
    /// Detected from the tokenizer's special tokens (<|im_start|>/<|im_end|> → ChatMl; <|start_header_id|> → Llama3; else Plain "User: …\nAssistant:").
    pub fn detect(tokenizer: &Tokenizer) -> Self {
        let has = |token: &str| tokenizer.token_id(token).is_some();
        if has("<|im_start|>") && has("<|im_end|>") {
            Self::ChatMl
        } else if has("<|start_header_id|>") && has("<|end_header_id|>") {
            Self::Llama3
        } else {
            Self::Plain
        }
    }

    /// The conversation as text, `messages` as (role, content) with roles "system" | "user" | "assistant", ending with the assistant's turn opened.
    ///
    /// No default system prompt is added: templates that add one (SmolLM2's) do so only when the
    /// conversation has none, and the answers barely depend on it.
    pub fn render(&self, messages: &[(&str, &str)]) -> String {
        let mut text = String::new();
        match self {
            Self::ChatMl => {
                for (role, content) in messages {
                    text.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
                }
                text.push_str("<|im_start|>assistant\n");
            }
            Self::Llama3 => {
                text.push_str("<|begin_of_text|>");
                for (role, content) in messages {
                    text.push_str(&format!("<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"));
                }
                text.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
            }
            Self::Plain => {
                for (role, content) in messages {
                    match *role {
                        // A system message is the preamble a base model reads as context.
                        "system" => text.push_str(&format!("{content}\n\n")),
                        "assistant" => text.push_str(&format!("Assistant: {content}\n")),
                        _ => text.push_str(&format!("User: {content}\n")),
                    }
                }
                text.push_str("Assistant:");
            }
        }
        text
    }

    /// Token ids that end the assistant's turn (e.g. <|im_end|>, the EOS token).
    pub fn stop_tokens(&self, tokenizer: &Tokenizer) -> Vec<u32> {
        let turn_ends: &[&str] = match self {
            Self::ChatMl => &["<|im_end|>", "<|endoftext|>"],
            Self::Llama3 => &["<|eot_id|>", "<|end_of_text|>"],
            Self::Plain => &["<|endoftext|>", "</s>"],
        };
        let mut ids: Vec<u32> = turn_ends.iter().filter_map(|token| tokenizer.token_id(token)).collect();
        ids.extend(tokenizer.eos_token_id());
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONVERSATION: &[(&str, &str)] =
        &[("system", "Be brief."), ("user", "Hi!"), ("assistant", "Hello."), ("user", "2+2?")];

    #[test]
    fn chatml_writes_every_turn_and_opens_the_assistant() {
        assert_eq!(
            ChatTemplate::ChatMl.render(CONVERSATION),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n\
             <|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        assert_eq!(ChatTemplate::ChatMl.render(&[]), "<|im_start|>assistant\n");
    }

    #[test]
    fn llama3_starts_with_the_bos_and_opens_the_assistant() {
        assert_eq!(
            ChatTemplate::Llama3.render(&CONVERSATION[..2]),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn plain_writes_a_dialogue_ending_with_the_assistant_prompt() {
        assert_eq!(
            ChatTemplate::Plain.render(CONVERSATION),
            "Be brief.\n\nUser: Hi!\nAssistant: Hello.\nUser: 2+2?\nAssistant:"
        );
    }
}
