//! Generation over a key/value cache: every architecture's cached passes give the logits of one
//! whole-sequence `run`, the cache refuses what does not fit, and SmolLM2-135M-Instruct generates
//! as the uncached loop did and answers a chat question.

use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use dd_model::{
    ChatTemplate, GenerationConfig, ModelError, RunRequest, Sampling, StopReason, Tokenizer, Transformer, generate,
    load_transformer,
};

use crate::{asset, fixture};

/// As the parity tests: f32 with 1e-4.
const TOLERANCE: f32 = 1e-4;

fn max_abs_difference(actual: &Tensor, expected: &Tensor) -> f32 {
    assert_eq!(actual.dims(), expected.dims(), "shapes differ");
    let difference = (actual - expected).expect("subtract").abs().expect("abs");
    difference.flatten_all().expect("flatten").max(0).expect("max").to_scalar::<f32>().expect("scalar")
}

/// The logits [positions, d_vocab] of one whole-sequence pass over `ids`.
fn run_logits(model: &Transformer, ids: &[u32]) -> Tensor {
    let input = Tensor::from_slice(ids, (1, ids.len()), model.device()).expect("ids");
    let output = model.run(&input, &RunRequest::logits_only()).expect("run");
    output.logits.expect("logits requested").squeeze(0).expect("squeeze")
}

/// `ids` through `extend` in chunks of 5, 1, 1 and the rest must give `run`'s logits, and
/// `token_logits` the matching columns of `logits_of`; a cache cloned after the first chunk and
/// extended with other tokens must give the logits of that other sequence.
fn check_chunks_match_run(name: &str, model: &Transformer, ids: &[u32]) {
    assert!(ids.len() > 8, "{name}: too short a sequence to cut into chunks");
    let mut cache = model.new_cache();
    assert!(cache.is_empty());
    let mut hidden = Vec::new();
    let mut start = 0;
    for size in [5, 1, 1, ids.len() - 7] {
        hidden.push(model.extend(&mut cache, &ids[start..start + size]).expect("extend"));
        start += size;
        assert_eq!(cache.len(), start);
    }
    let hidden = Tensor::cat(&hidden, 0).expect("cat");
    let logits = model.logits_of(&hidden).expect("logits_of");
    let expected = run_logits(model, ids);
    let error = max_abs_difference(&logits, &expected);
    assert!(error <= TOLERANCE, "{name}: cached logits differ from run's by {error}");
    // A comparison of two all-zero tensors would prove nothing.
    let spread = expected.abs().expect("abs").max_all().expect("max").to_scalar::<f32>().expect("scalar");
    assert!(spread > 1e-2, "{name}: degenerate logits");

    let d_vocab = model.config().d_vocab as u32;
    let tokens = [0, 7, d_vocab - 1, 7, ids[3]];
    let picked = model.token_logits(&hidden, &tokens).expect("token_logits");
    let columns: Vec<Tensor> =
        tokens.iter().map(|&token| logits.narrow(1, token as usize, 1).expect("column")).collect();
    let error = max_abs_difference(&picked, &Tensor::cat(&columns, 1).expect("cat"));
    assert!(error <= TOLERANCE, "{name}: token_logits differ from logits_of's columns by {error}");

    // A prefix shared by cloning, continued differently.
    let mut first = model.new_cache();
    model.extend(&mut first, &ids[..5]).expect("prefix");
    let mut other = first.clone();
    let other_tail: Vec<u32> = ids[5..].iter().map(|&id| (id + 1) % d_vocab).collect();
    let tail_hidden = model.extend(&mut other, &other_tail).expect("other continuation");
    assert_eq!((first.len(), other.len()), (5, ids.len()));
    let other_ids: Vec<u32> = ids[..5].iter().chain(&other_tail).copied().collect();
    let expected = run_logits(model, &other_ids).narrow(0, 5, other_tail.len()).expect("tail rows");
    let error = max_abs_difference(&model.logits_of(&tail_hidden).expect("logits_of"), &expected);
    assert!(error <= TOLERANCE, "{name}: continuation of a cloned cache differs by {error}");
}

/// Both reference sequences of a committed fixture, cut into chunks.
fn check_fixture(name: &str) {
    let device = Device::Cpu;
    let directory = fixture(name);
    let reference =
        candle_core::safetensors::load(directory.join("reference.safetensors"), &device).expect("reference");
    let model = load_transformer(&directory, &device).unwrap_or_else(|err| panic!("{name}: {err}"));
    let ids = reference["input_ids"].to_dtype(candle_core::DType::U32).expect("ids");
    let rows: Vec<Vec<u32>> = ids.to_vec2().expect("rows");
    for row in rows {
        check_chunks_match_run(name, &model, &row);
    }
}

#[test]
fn cached_chunks_match_run_gpt2_learned_positions() {
    check_fixture("gpt2");
}

#[test]
fn cached_chunks_match_run_pythia_partial_rotary_parallel_residual() {
    check_fixture("pythia");
}

#[test]
fn cached_chunks_match_run_neox_full_rotary() {
    check_fixture("neox-serial");
}

#[test]
fn cached_chunks_match_run_llama_grouped_query() {
    check_fixture("llama");
}

#[test]
fn cached_chunks_match_run_llama_gguf_interleaved_rotary() {
    check_fixture("llama-gguf");
}

#[test]
fn cached_chunks_match_run_transformer_lens_solu_with_unembedding_bias() {
    check_fixture("tl-solu");
}

#[test]
fn cached_chunks_match_run_transformer_lens_gelu() {
    check_fixture("tl-gelu");
}

/// What does not fit is refused with an input error, and the cache is left as it was.
#[test]
fn extend_refuses_what_does_not_fit() {
    let model = load_transformer(&fixture("gpt2"), &Device::Cpu).expect("gpt2 fixture");
    let (n_ctx, d_vocab) = (model.config().n_ctx, model.config().d_vocab as u32);
    let is_input_error = |result: Result<Tensor, ModelError>| matches!(result, Err(ModelError::Input(_)));
    let mut cache = model.new_cache();
    model.extend(&mut cache, &[1, 2, 3]).expect("three tokens");

    assert!(is_input_error(model.extend(&mut cache, &[])), "empty input");
    assert!(is_input_error(model.extend(&mut cache, &[4, d_vocab])), "out of vocabulary");
    assert!(is_input_error(model.extend(&mut cache, &vec![5; n_ctx - 2])), "past the context");
    assert_eq!(cache.len(), 3, "a refused extension must not change the cache");

    // Exactly filling the context is allowed; one more position is not.
    model.extend(&mut cache, &vec![5; n_ctx - 3]).expect("up to n_ctx");
    assert_eq!(cache.len(), n_ctx);
    assert!(is_input_error(model.extend(&mut cache, &[6])), "a full context");

    // Another model's cache, and hidden rows or tokens that do not fit, are refused too.
    let llama = load_transformer(&fixture("llama"), &Device::Cpu).expect("llama fixture");
    assert!(is_input_error(model.extend(&mut llama.new_cache(), &[1])), "a cache of another shape");
    let wrong_width =
        Tensor::zeros((2, model.config().d_model + 1), candle_core::DType::F32, &Device::Cpu).expect("zeros");
    assert!(is_input_error(model.logits_of(&wrong_width)), "hidden rows of the wrong width");
    let hidden = model.extend(&mut model.new_cache(), &[1, 2]).expect("two tokens");
    assert!(is_input_error(model.token_logits(&hidden, &[d_vocab])), "a token outside the vocabulary");
    assert_eq!(model.token_logits(&hidden, &[]).expect("no tokens").dims(), &[2, 0]);

    // generate refuses the same inputs before any work.
    let config = GenerationConfig { max_new_tokens: 3, stop_tokens: Vec::new(), sampling: Sampling::Greedy };
    assert!(matches!(generate(&model, &[], &config), Err(ModelError::Input(_))), "empty prompt");
    assert!(matches!(generate(&model, &[d_vocab], &config), Err(ModelError::Input(_))), "prompt out of vocabulary");
}

/// Generation stops at the end of the context (prompt and new tokens never pass n_ctx), and at
/// max_new_tokens.
#[test]
fn generate_stops_at_the_context_and_the_token_budget() {
    let model = load_transformer(&fixture("llama"), &Device::Cpu).expect("llama fixture");
    let n_ctx = model.config().n_ctx;
    let config = GenerationConfig { max_new_tokens: 10, stop_tokens: Vec::new(), sampling: Sampling::Greedy };
    let near_the_end = generate(&model, &vec![3; n_ctx - 2], &config).expect("generate");
    assert_eq!((near_the_end.tokens.len(), near_the_end.stop), (2, StopReason::ContextFull));
    let full = generate(&model, &vec![3; n_ctx], &config).expect("generate");
    assert_eq!((full.tokens.len(), full.stop), (0, StopReason::ContextFull));
    let short = generate(&model, &[3, 4, 5], &config).expect("generate");
    assert_eq!((short.tokens.len(), short.stop), (10, StopReason::MaxTokens));
    let none = generate(&model, &[3, 4, 5], &GenerationConfig { max_new_tokens: 0, ..config }).expect("generate");
    assert_eq!((none.tokens.len(), none.stop), (0, StopReason::MaxTokens));
}

/// SmolLM2-135M-Instruct and its tokenizer, loaded once for the tests below.
fn smollm2() -> &'static (Transformer, Tokenizer) {
    static MODEL: OnceLock<(Transformer, Tokenizer)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = asset("SmolLM2-135M-Instruct.Q4_1.gguf");
        let model = load_transformer(&path, &Device::Cpu).expect("SmolLM2 loads");
        let tokenizer = Tokenizer::from_gguf(&path).expect("tokenizer from GGUF metadata");
        (model, tokenizer)
    })
}

#[test]
fn cached_chunks_match_run_smollm2() {
    let (model, tokenizer) = smollm2();
    let ids = tokenizer.encode("The quick brown fox jumps over the lazy dog, and then it runs away.").expect("encode");
    check_chunks_match_run("SmolLM2", model, &ids);
}

/// The uncached loop `greedy_continuation` used to be: the whole sequence rerun for every token.
fn uncached_greedy(model: &Transformer, prompt: &[u32], new_tokens: usize) -> Vec<u32> {
    let mut ids = prompt.to_vec();
    for _ in 0..new_tokens {
        let logits = run_logits(model, &ids);
        let last = logits.get(ids.len() - 1).expect("last row");
        ids.push(last.argmax(0).expect("argmax").to_scalar::<u32>().expect("id"));
    }
    ids.split_off(prompt.len())
}

#[test]
fn greedy_generation_matches_the_uncached_loop_on_smollm2() {
    let (model, tokenizer) = smollm2();
    let prompt = tokenizer.encode("Once upon a time, in a small village,").expect("encode");
    let config = GenerationConfig { max_new_tokens: 12, stop_tokens: Vec::new(), sampling: Sampling::Greedy };
    let generated = generate(model, &prompt, &config).expect("generate");
    assert_eq!(generated.stop, StopReason::MaxTokens);
    assert_eq!(
        generated.tokens,
        uncached_greedy(model, &prompt, 12),
        "text: {:?}",
        tokenizer.decode(&generated.tokens)
    );
}

#[test]
fn seeded_sampling_repeats_for_a_seed_and_differs_across_seeds_on_smollm2() {
    let (model, tokenizer) = smollm2();
    let prompt = tokenizer.encode("My favourite food is").expect("encode");
    let sample = |seed: u64| {
        let sampling = Sampling::Temperature { seed, temperature: 1.0, top_p: 0.95 };
        let config = GenerationConfig { max_new_tokens: 16, stop_tokens: Vec::new(), sampling };
        generate(model, &prompt, &config).expect("generate").tokens
    };
    let first = sample(7);
    assert_eq!(first.len(), 16);
    assert_eq!(first, sample(7), "the same seed must give the same tokens");
    assert_ne!(first, sample(8), "two seeds gave the same 16 tokens: {:?}", tokenizer.decode(&first));
}

/// The chat format is recognised, its special tokens are single ids in the encoded prompt, and the
/// answer names Paris and ends with a stop token.
#[test]
fn smollm2_instruct_answers_a_chat_question() {
    let (model, tokenizer) = smollm2();
    let template = ChatTemplate::detect(tokenizer);
    assert_eq!(template, ChatTemplate::ChatMl);
    let im_start = tokenizer.token_id("<|im_start|>").expect("<|im_start|> is in the vocabulary");
    let im_end = tokenizer.token_id("<|im_end|>").expect("<|im_end|> is in the vocabulary");
    let stop_tokens = template.stop_tokens(tokenizer);
    assert!(stop_tokens.contains(&im_end), "stop tokens {stop_tokens:?}");

    let text = template.render(&[("user", "What is the capital of France?")]);
    let prompt = tokenizer.encode(&text).expect("encode");
    assert_eq!(prompt.iter().filter(|&&id| id == im_start).count(), 2, "prompt ids {prompt:?}");
    assert_eq!(prompt.iter().filter(|&&id| id == im_end).count(), 1, "prompt ids {prompt:?}");
    assert_eq!(prompt[0], im_start);

    let config = GenerationConfig { max_new_tokens: 40, stop_tokens, sampling: Sampling::Greedy };
    let answer = generate(model, &prompt, &config).expect("generate");
    let text = tokenizer.decode(&answer.tokens);
    assert!(text.contains("Paris"), "answer was {text:?}");
    assert_eq!(answer.stop, StopReason::StopToken, "answer was {text:?}");
}

/// Digits are single vocabulary entries, found by their text.
#[test]
fn token_id_finds_vocabulary_entries_by_their_text() {
    let (_, tokenizer) = smollm2();
    for digit in 0..10 {
        let text = digit.to_string();
        let id = tokenizer.token_id(&text).unwrap_or_else(|| panic!("{text} is not in the vocabulary"));
        assert_eq!(tokenizer.encode(&text).expect("encode"), vec![id]);
    }
    assert_eq!(tokenizer.token_id("Ġthe").map(|id| tokenizer.decode(&[id])), Some(" the".to_owned()));
    assert_eq!(tokenizer.token_id("no such token at all"), None);
}
