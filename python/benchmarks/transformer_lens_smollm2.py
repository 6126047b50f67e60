"""TransformerLens on SmolLM2-135M's shape, for the Python package's side-by-side benchmark:
TransformerLens 4's native `TransformerBridge` (4.x removed `HookedTransformer`; `boot_native` is
how `pytorch_baseline.py --bridge` builds it) and `run_with_cache` keeping every layer's `mlp.hook_post`, batch 8 × 128 (token i
is i·7919 mod vocabulary, as `bench_python.py` and the Rust bench run it), 2 threads, random
weights (the same arithmetic as the real ones; no hub here). The setup follows
`../shared/bench/pytorch_baseline.py`.

    python python/benchmarks/transformer_lens_smollm2.py [--batches 10]
"""

import argparse
import statistics
import time

import numpy as np
import torch
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge.sources.native import boot

SMOLLM2 = dict(
    n_layers=30, d_model=576, n_ctx=2048, d_head=64, n_heads=9, n_key_value_heads=3, d_mlp=1536, d_vocab=49152,
    act_fn="silu", gated_mlp=True, normalization_type="RMS", positional_embedding_type="rotary", rotary_dim=64,
    final_rms=True,
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = boot(TransformerBridgeConfig(**SMOLLM2)).eval()
    parameters = sum(p.numel() for p in model.parameters())
    print(f"parameters: {parameters / 1e6:.1f} M (SmolLM2-135M: 134.5 M with tied embeddings, 162.8 M untied)")
    ids = torch.from_numpy((np.arange(8 * 128) * 7919 % SMOLLM2["d_vocab"]).reshape(8, 128).astype(np.int64))
    is_post = lambda name: name.endswith("mlp.hook_post")  # noqa: E731
    times = []
    with torch.inference_mode():
        for step in range(2 + args.batches):
            start = time.perf_counter()
            _, cache = model.run_with_cache(ids, names_filter=is_post)
            elapsed = time.perf_counter() - start
            assert len(cache) == SMOLLM2["n_layers"]
            del cache
            if step >= 2:
                times.append(elapsed)
    mean = statistics.mean(times)
    print(f"TransformerLens {__import__('importlib.metadata').metadata.version('transformer-lens')} run_with_cache(8 x 128, every mlp.hook_post): "
          f"{8 * 128 / mean:.0f} tokens/s, mean {mean * 1e3:.1f} ms, median {statistics.median(times) * 1e3:.1f} ms per batch")


if __name__ == "__main__":
    main()
