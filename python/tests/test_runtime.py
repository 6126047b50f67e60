"""The model runtime from Python: the PyTorch references of the architecture fixtures, the Rust
recorder's activations on SmolLM2, batching and padding, and the GIL released while it runs."""

import json
import struct
import threading
import time

import numpy as np
import pytest

import deepdecipher
from conftest import MODEL_FIXTURES

DTYPES = {"F32": np.float32, "I64": np.int64, "F16": np.float16, "BF16": None}


def read_safetensors(path):
    """The tensors of a safetensors file, read with NumPy alone (an independent reader)."""
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[base + start : base + end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors


@pytest.mark.parametrize("fixture", ["gpt2", "gpt2-bin", "pythia", "neox-serial", "tl-gelu", "tl-solu", "llama", "llama-gguf"])
def test_run_matches_pytorch_within_1e_4(fixture):
    directory = MODEL_FIXTURES / fixture
    reference = read_safetensors(directory / "reference.safetensors")
    path = directory / "model.gguf" if fixture == "llama-gguf" else directory
    model = deepdecipher.load_model(str(path))
    n_layers = model.config["n_layers"]
    ids = reference["input_ids"].astype(np.int64)
    result = model.run(ids, logits=True)
    assert result.token_ids.tolist() == ids.tolist()
    assert result.lengths == [ids.shape[1]] * ids.shape[0]
    for layer in range(n_layers):
        expected = reference[f"hook_post.{layer}"]
        actual = result[layer]
        assert actual.shape == expected.shape and actual.dtype == np.float32
        assert np.abs(actual - expected).max() <= 1e-4, f"{fixture} layer {layer}"
    assert result.logits.shape == reference["logits"].shape
    assert np.abs(result.logits - reference["logits"]).max() <= 1e-4
    # One layer alone stops early and gives the same values.
    only = model.run(ids, layers=[0])
    assert list(only.activations) == [0] and only.logits is None
    np.testing.assert_array_equal(only[0], result[0])


def test_bad_runs_raise(smollm2_model):
    weights_only = deepdecipher.load_model(str(MODEL_FIXTURES / "gpt2"))
    with pytest.raises(deepdecipher.DeepDecipherError, match="without a tokenizer"):
        weights_only.run("a text")
    with pytest.raises(deepdecipher.DeepDecipherError, match="layer 2 is out of range"):
        weights_only.run([1, 2, 3], layers=[2])
    with pytest.raises(deepdecipher.DeepDecipherError, match="outside the model's vocabulary"):
        weights_only.run([1, 2, 320])
    with pytest.raises(deepdecipher.DeepDecipherError, match="exceed the model's context"):
        weights_only.run([1] * 5000)
    with pytest.raises(deepdecipher.DeepDecipherError, match="inputs must be"):
        weights_only.run([[1.5]])
    with pytest.raises(deepdecipher.DeepDecipherError):
        deepdecipher.load_model("/no/such/model/here")


def test_smollm2_run_equals_the_recorders_activations(smollm2_model, smollm2_db):
    """The activations the Rust recorder stored for top examples, recomputed from Python."""
    model = deepdecipher.open(smollm2_db).model()
    assert model.shape == (smollm2_model.config["n_layers"], smollm2_model.config["d_mlp"])
    checked = 0
    for layer, index in [(0, 5), (15, 100), (29, 1535)]:
        for example in model.neuron(layer, index).top_examples[:2]:
            run = smollm2_model.run(example.token_ids, layers=[layer], bos=False)
            actual = run[layer][0, :, index]
            stored = example.activations
            # Stored activations are quantised to 8 bits over the example's range.
            bound = (stored.max() - stored.min()) / 255 + 1e-3
            assert np.abs(actual - stored).max() <= bound, (layer, index)
            assert int(np.argmax(actual)) == example.max_token_index or actual.max() - actual[example.max_token_index] <= bound
            checked += 1
    assert checked == 6


def test_smollm2_texts_batches_and_padding(smollm2_model):
    ids = smollm2_model.tokenize("The capital of France is")
    assert ids[0] == smollm2_model.tokenize("", bos=True)[0] and len(ids) > 3
    assert smollm2_model.tokenize("The capital of France is", bos=False) == ids[1:]
    assert "".join(smollm2_model.tokens(ids[1:])).replace("·", " ").strip().startswith("The")
    single = smollm2_model.run("The capital of France is", layers=[3], logits=True)
    assert single[3].shape == (1, len(ids), 1536)
    top = int(np.argmax(single.logits[0, -1]))
    assert "Paris" in smollm2_model.tokens([top])[0]
    batch = smollm2_model.run(["The capital of France is", "Hello"], layers=[3])
    assert batch.lengths == [len(ids), len(smollm2_model.tokenize("Hello"))]
    np.testing.assert_allclose(batch[3][0], single[3][0], atol=1e-4)
    short = batch.lengths[1]
    assert np.isnan(batch[3][1, short:]).all() and not np.isnan(batch[3][1, :short]).any()


def test_the_gil_is_released_while_running(smollm2_model):
    counter = 0
    running = threading.Event()
    done = threading.Event()

    def count():
        nonlocal counter
        running.set()
        while not done.is_set():
            counter += 1
            time.sleep(0)

    thread = threading.Thread(target=count)
    thread.start()
    running.wait()
    before = counter
    smollm2_model.run(" ".join(["word"] * 120))
    during = counter - before
    done.set()
    thread.join()
    assert during > 1000, during
