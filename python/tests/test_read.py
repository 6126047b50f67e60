"""Reading a synthetic database from Python: the same records the Rust reader sees."""

import json
import subprocess

import numpy as np
import pytest

import deepdecipher


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "synth.db"
    binary = pytest.importorskip("os").environ.get("DD_BINARY", "deepdecipher")
    subprocess.run([binary, "synth", str(path), "--layers", "2", "--neurons", "16", "--examples", "4",
                    "--tokens", "16", "--log", "warn"], check=True)
    return path


def test_a_neuron_reads_as_the_api_serves_it(database):
    model = deepdecipher.open(database).model()
    assert model.shape == (2, 16)
    neuron = model.neuron(1, 3)
    examples = neuron.examples
    assert [e.group for e in examples][:4] == ["top"] * 4
    first = examples[0]
    assert first.token_ids.dtype == np.uint32 and first.activations.dtype == np.float32
    assert len(first.tokens) == len(first.token_ids) == len(first.activations) == 16
    assert first.max_token_index == int(np.argmax(first.activations))
    assert neuron.stats["count"] > 0
    assert neuron.explanations[0][1] == "synthetic"


def test_errors_are_one_exception_class(database):
    model = deepdecipher.open(database).model()
    with pytest.raises(deepdecipher.DeepDecipherError, match="outside the model"):
        model.neuron(9, 0)
    with pytest.raises(deepdecipher.DeepDecipherError, match="does not exist"):
        deepdecipher.open(database.parent / "absent.db")
