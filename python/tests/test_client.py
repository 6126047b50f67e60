"""The same interface over HTTP: a neuron, a table and a search read from a server equal those read
from the file, whether the server is the CLI's or one started from Python."""

import pytest

import deepdecipher


def assert_same(local, remote):
    assert local.model_names() == remote.model_names()
    model, served = local.model(), remote.model()
    assert model == served
    for layer, index in [(0, 0), (0, 47), (1, 13), (2, 30)]:
        neuron, remote_neuron = model.neuron(layer, index), served.neuron(layer, index)
        assert neuron == remote_neuron
        assert neuron.examples == remote_neuron.examples
        assert neuron.stats == remote_neuron.stats
        assert neuron.explanations == remote_neuron.explanations
        assert neuron.graph == remote_neuron.graph
        assert neuron != model.neuron(layer, (index + 1) % 48)
    assert model.layer_stats(2).equals(served.layer_stats(2))
    assert model.ranking().equals(served.ranking())
    token = model.neuron(0, 3).activating_tokens[0].token.strip()
    assert model.search(token).hits == served.search(token).hits
    assert model.vocabulary() == served.vocabulary()


def test_client_of_the_cli_server_equals_the_file(synth_db, synth_server):
    client = deepdecipher.Client(synth_server.url)
    assert isinstance(client, deepdecipher.Database)
    assert repr(client) == f'Client("{synth_server.url}")'
    assert_same(deepdecipher.open(synth_db), client)


def test_serve_from_python(synth_db):
    with deepdecipher.serve(synth_db) as server:
        assert server.running and server.url.startswith("http://127.0.0.1:")
        assert_same(deepdecipher.open(synth_db), deepdecipher.Client(server.url))
    assert not server.running
    with pytest.raises(deepdecipher.DeepDecipherError):
        deepdecipher.Client(server.url, timeout=2).model_names()


def test_client_errors(synth_server):
    client = deepdecipher.Client(synth_server.url)
    with pytest.raises(deepdecipher.DeepDecipherError, match='no model named "nope"'):
        client.model("nope")
    model = client.model()
    with pytest.raises(deepdecipher.DeepDecipherError, match="out of range"):
        model.neuron(0, 4800)
    with pytest.raises(deepdecipher.DeepDecipherError, match="404"):
        model.neuron(0, 0, source="res-jb")
    with pytest.raises(deepdecipher.DeepDecipherError, match="not an http"):
        deepdecipher.Client("ftp://example")
