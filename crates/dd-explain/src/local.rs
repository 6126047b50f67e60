//! A local instruct model run by our own runtime (dd-model), as explainer and as simulator.
//!
//! Explaining is generation with a KV cache: the prompt is run once, then one token at a time.
//! Simulating is OpenAI's all-at-once method, exactly: one pass over the simulator prompt with
//! every activation `unknown`, reading at each slot the model's probabilities of the activation
//! words `"0"`…`"10"` (renormalised over those words) and taking their expected value. The
//! prompt's shared beginning is run once per explanation and its cache reused for every sequence.
//! Only words that are one token each can be read in one pass: SmolLM2's tokenizer writes numbers
//! digit by digit, so `"10"` (two tokens) is not among its candidates and its scale tops at 9;
//! the linear calibration absorbs the difference and the correlation is unaffected.

use std::sync::Arc;

use candle_core::Tensor;
use dd_model::{ChatTemplate, GenerationConfig, Sampling, Tokenizer, Transformer, generate};

use crate::ExplainError;
use crate::chat::ChatMessage;
use crate::explainer::{Explainer, ExplainerAnswer};
use crate::prompt::{
    EXPLANATION_LEAD, SIMULATOR_PROMPT_VERSION, UNKNOWN, level_words, simulation_line, simulation_prefix,
};
use crate::simulator::Simulator;

/// How a local explainer picks each token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LocalSampling {
    /// The most likely token: the same explanation every run.
    Greedy,
    /// Sampled at a temperature with nucleus `top_p`, repeatable for a seed.
    Seeded {
        /// The seed.
        seed: u64,
        /// The temperature.
        temperature: f32,
        /// The nucleus.
        top_p: f32,
    },
}

/// A local model, with its tokenizer and the name explanations record.
pub struct LocalModel {
    transformer: Arc<Transformer>,
    tokenizer: Arc<Tokenizer>,
    name: String,
    template: ChatTemplate,
    sampling: LocalSampling,
    max_new_tokens: usize,
}

impl LocalModel {
    /// A model that explains greedily in at most 40 tokens.
    pub fn new(transformer: Arc<Transformer>, tokenizer: Arc<Tokenizer>, name: &str) -> Self {
        let template = ChatTemplate::detect(&tokenizer);
        Self {
            transformer,
            tokenizer,
            name: name.to_owned(),
            template,
            sampling: LocalSampling::Greedy,
            max_new_tokens: 40,
        }
    }

    /// The same model, sampling as `sampling` says.
    pub fn with_sampling(mut self, sampling: LocalSampling) -> Self {
        self.sampling = sampling;
        self
    }

    /// The same model, writing at most `max_new_tokens` tokens.
    pub fn with_max_new_tokens(mut self, max_new_tokens: usize) -> Self {
        self.max_new_tokens = max_new_tokens.max(1);
        self
    }

    fn check_fits(&self, tokens: usize, what: &str) -> Result<(), ExplainError> {
        let n_ctx = self.transformer.config().n_ctx;
        if tokens > n_ctx {
            return Err(ExplainError::Invalid(format!(
                "the {what} takes {tokens} tokens, more than {}'s context of {n_ctx}",
                self.name
            )));
        }
        Ok(())
    }

    /// The activation words this tokenizer writes as one token, with their values.
    fn level_tokens(&self) -> Vec<(f64, u32)> {
        level_words()
            .filter_map(|(level, word)| match self.tokenizer.encode(&word).ok()?.as_slice() {
                [id] => Some((f64::from(level), *id)),
                _ => None,
            })
            .collect()
    }

    fn prompt_prefix(&self, text: &str) -> Result<Vec<u32>, ExplainError> {
        let mut ids: Vec<u32> = self.tokenizer.bos_token_id().into_iter().collect();
        ids.extend(self.tokenizer.encode(text)?);
        Ok(ids)
    }
}

impl Explainer for LocalModel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn explain(&self, messages: &[ChatMessage]) -> Result<ExplainerAnswer, ExplainError> {
        let turns: Vec<(&str, &str)> = messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
        // The assistant's turn opens with the lead the few-shot answers start with, so even a small
        // model continues with the explanation rather than commenting on the prompt.
        let rendered = format!("{}{EXPLANATION_LEAD}", self.template.render(&turns));
        let prompt = self.tokenizer.encode(&rendered)?;
        self.check_fits(prompt.len() + self.max_new_tokens, "explainer prompt and its answer")?;
        let sampling = match self.sampling {
            LocalSampling::Greedy => Sampling::Greedy,
            LocalSampling::Seeded { seed, temperature, top_p } => Sampling::Temperature { seed, temperature, top_p },
        };
        let config = GenerationConfig {
            max_new_tokens: self.max_new_tokens,
            stop_tokens: self.template.stop_tokens(&self.tokenizer),
            sampling,
        };
        let generated = generate(&self.transformer, &prompt, &config)?;
        Ok(ExplainerAnswer {
            text: self.tokenizer.decode(&generated.tokens),
            prompt_tokens: prompt.len() as u64,
            completion_tokens: generated.tokens.len() as u64,
        })
    }
}

impl Simulator for LocalModel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn prompt_version(&self) -> &'static str {
        SIMULATOR_PROMPT_VERSION
    }

    fn simulate(&self, explanation: &str, sequences: &[Vec<String>]) -> Result<Vec<Vec<f64>>, ExplainError> {
        let levels = self.level_tokens();
        if levels.len() < 2 {
            return Err(ExplainError::Invalid(format!("{}'s tokenizer has no single-token digits to read", self.name)));
        }
        let level_ids: Vec<u32> = levels.iter().map(|&(_, id)| id).collect();
        let prefix = self.prompt_prefix(&simulation_prefix(explanation))?;
        let mut shared = self.transformer.new_cache();
        self.transformer.extend(&mut shared, &prefix)?;
        let after_slot = self.tokenizer.encode(&format!("{UNKNOWN}\n"))?;
        let mut all = Vec::with_capacity(sequences.len());
        for sequence in sequences {
            if sequence.is_empty() {
                all.push(Vec::new());
                continue;
            }
            let mut ids = Vec::new();
            let mut slots = Vec::with_capacity(sequence.len());
            for token in sequence {
                ids.extend(self.tokenizer.encode(&simulation_line(token))?);
                slots.push(ids.len() as u32 - 1);
                ids.extend_from_slice(&after_slot);
            }
            self.check_fits(prefix.len() + ids.len(), "simulator prompt")?;
            let mut cache = shared.clone();
            let hidden = self.transformer.extend(&mut cache, &ids)?;
            let slot_rows = hidden.index_select(&Tensor::new(slots.as_slice(), hidden.device())?, 0)?;
            let logits = self.transformer.token_logits(&slot_rows, &level_ids)?.to_vec2::<f32>()?;
            all.push(logits.iter().map(|row| expected_level(row, &levels)).collect());
        }
        Ok(all)
    }
}

/// The expected level under the softmax of the candidates' logits.
fn expected_level(logits: &[f32], levels: &[(f64, u32)]) -> f64 {
    let largest = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits.iter().map(|&l| f64::from(l - largest).exp()).collect();
    let total: f64 = weights.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return 0.0;
    }
    weights.iter().zip(levels).map(|(w, (level, _))| w * level).sum::<f64>() / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_level_weighs_levels_by_probability() {
        let levels = [(0.0, 0), (1.0, 1), (2.0, 2)];
        assert!((expected_level(&[0.0, 0.0, 0.0], &levels) - 1.0).abs() < 1e-12);
        assert!((expected_level(&[-100.0, -100.0, 0.0], &levels) - 2.0).abs() < 1e-9);
        let (p0, p1) = (1.0 / (1.0 + 1f64.exp()), 1f64.exp() / (1.0 + 1f64.exp()));
        assert!((expected_level(&[0.0, 1.0, f32::NEG_INFINITY], &levels) - (0.0 * p0 + p1)).abs() < 1e-6);
    }
}
