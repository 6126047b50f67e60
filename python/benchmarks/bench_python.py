"""The Python package's speed: reading a neuron, and running a model, against the Rust forward pass
(`cargo bench -p dd-model --bench forward -- smollm2`, same shape and batch) and TransformerLens.

    python python/benchmarks/bench_python.py --database synth.db [--model SmolLM2.gguf] [--batches 10]

`--database`: a database whose neurons have 20 top examples of 128 tokens (`deepdecipher synth
DB --examples 20 --tokens 128`). `--model`: SmolLM2's GGUF; the run is batch 8 × 128 with every
layer's MLP activations and no logits, as the Rust bench runs it (token i is i·7919 mod vocabulary).
Install the package built in release (`pip install ./python`) to measure.
"""

import argparse
import random
import statistics
import time

import numpy as np

import deepdecipher


def time_neuron(path, calls):
    model = deepdecipher.open(path).model()
    n_layers, layer_size = model.shape
    rng = random.Random(0)
    addresses = [(rng.randrange(n_layers), rng.randrange(layer_size)) for _ in range(calls)]
    first = model.neuron(*addresses[0])
    shape = (len(first.top_examples), len(first.top_examples[0]))
    for address in addresses[:100]:  # warm the page cache and the vocabulary
        model.neuron(*address)
    times, with_arrays = [], []
    for address in addresses:
        start = time.perf_counter()
        neuron = model.neuron(*address)
        middle = time.perf_counter()
        for example in neuron.top_examples:
            example.token_ids, example.activations
        end = time.perf_counter()
        times.append(middle - start)
        with_arrays.append(end - start)
    times.sort()
    with_arrays.sort()
    pick = lambda values, q: values[int(q * (len(values) - 1))] * 1e6  # noqa: E731
    print(f"neuron(l, n), {shape[0]} top examples x {shape[1]} tokens, all kinds: "
          f"p50 {pick(times, 0.5):.1f} us, p90 {pick(times, 0.9):.1f} us, p99 {pick(times, 0.99):.1f} us")
    print(f"  ... plus every top example's token ids and activations as arrays: "
          f"p50 {pick(with_arrays, 0.5):.1f} us, p90 {pick(with_arrays, 0.9):.1f} us")


def time_run(path, batches):
    m = deepdecipher.load_model(path)
    vocab = m.config["d_vocab"]
    ids = (np.arange(8 * 128) * 7919 % vocab).reshape(8, 128).astype(np.uint32)
    for _ in range(2):
        m.run(ids, bos=False)
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        result = m.run(ids, bos=False)
        times.append(time.perf_counter() - start)
        assert len(result.activations) == m.config["n_layers"]
    mean = statistics.mean(times)
    print(f"run(8 x 128, all {m.config['n_layers']} layers): {8 * 128 / mean:.0f} tokens/s, "
          f"mean {mean * 1e3:.1f} ms, median {statistics.median(times) * 1e3:.1f} ms per batch")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database")
    parser.add_argument("--model")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    if args.database:
        time_neuron(args.database, args.calls)
    if args.model:
        time_run(args.model, args.batches)


if __name__ == "__main__":
    main()
