"""Reading a database from Python: the records the server serves, as typed objects and DataFrames."""

import json
import urllib.request

import numpy as np
import pandas as pd
import pytest

import deepdecipher


def api(server, path):
    with urllib.request.urlopen(server.url + path, timeout=30) as response:
        return json.load(response)


def test_models_and_metadata(synth_db):
    db = deepdecipher.open(synth_db)
    assert db.model_names() == ["synth"]
    model = db.model()
    assert model == db.model("synth")
    assert model.shape == (3, 48) and model.n_layers == 3 and model.layer_size == 48
    assert model.metadata["name"] == "synth"
    assert model.metadata["num_total_neurons"] == 3 * 48
    assert "examples" in model.metadata["available_services"]
    assert len(model.vocabulary()) > 100


def test_neuron_matches_the_servers_pages(synth_db, synth_server):
    """Every kind of a neuron equals what the API (a separate server process) renders from the file."""
    model = deepdecipher.open(synth_db).model()
    for layer, index in [(0, 0), (1, 7), (2, 47)]:
        neuron = model.neuron(layer, index)
        assert neuron.address == (layer, index)
        page = api(synth_server, f"/api/synth/all/{layer}/{index}")

        groups = page["examples"]["data"]["groups"]
        served = [(g["kind"], e) for g in groups for e in g["examples"]]
        assert len(neuron.examples) == len(served) > 0
        for example, (kind, want) in zip(neuron.examples, served):
            assert example.group == kind
            assert example.token_ids.dtype == np.uint32 and example.activations.dtype == np.float32
            assert example.token_ids.tolist() == want["token_ids"]
            assert example.tokens == want["tokens"]
            assert example.dataset_index == want["data_index"]
            assert example.max_token_index == want["max_token_index"]
            # The API rounds activations for the wire; the object holds the stored values.
            np.testing.assert_allclose(example.activations, want["activations"], rtol=1e-3, atol=1e-3)
            assert len(example) == len(want["tokens"])
        top = neuron.top_examples
        assert [e.max_activation for e in top] == sorted((e.max_activation for e in top), reverse=True)

        stats = page["stats"]["data"]
        assert neuron.stats.count == stats["count"]
        assert neuron.stats.max == pytest.approx(stats["max"], rel=1e-6)
        assert neuron.stats.density == pytest.approx(stats["density"], rel=1e-6)
        assert neuron.stats.histogram_edges.tolist() == pytest.approx(stats["histogram"]["edges"], rel=1e-6)
        assert neuron.stats.histogram_counts.tolist() == stats["histogram"]["counts"]
        assert len(neuron.stats.histogram_edges) == len(neuron.stats.histogram_counts) + 1

        logits = page["logits"]["data"]
        assert [t.token for t in neuron.logits.top] == [t["token"] for t in logits["top"]]
        assert [t.value for t in neuron.logits.bottom] == pytest.approx([t["value"] for t in logits["bottom"]])
        assert [t.token for t in neuron.input_tokens.top] == [t["token"] for t in page["input_tokens"]["data"]["top"]]
        assert [(t.token, t.count) for t in neuron.activating_tokens] == [
            (t["token"], t["count"]) for t in page["activating_tokens"]["data"]["tokens"]
        ]
        inputs, outputs = neuron.connections
        want_inputs = page["connections"]["data"]["inputs"]
        assert [(c.layer, c.neuron) for c in inputs] == [(c["layer"], c["neuron"]) for c in want_inputs]
        assert [e.text for e in neuron.explanations] == [
            e["text"] for e in page["explanations"]["data"]["explanations"]
        ]
        assert neuron.explanations[0].score == pytest.approx(page["neuron_explainer"]["data"]["score"])
        assert [(s.layer, s.neuron) for s in neuron.similar] == [
            (s["layer"], s["neuron"]) for s in page["similar"]["data"]["similar"]
        ]
        assert len(neuron.graph.nodes) > 0


def test_tables_are_dataframes(synth_db, synth_server):
    model = deepdecipher.open(synth_db).model()
    stats = model.layer_stats(1)
    assert isinstance(stats, pd.DataFrame)
    assert list(stats.columns) == ["max_activation", "min_activation", "density", "kurtosis"]
    served = api(synth_server, "/api/synth/stats/1")["data"]["neurons"]
    assert len(stats) == 48 == len(served)
    assert stats["max_activation"].tolist() == pytest.approx([n["max_activation"] for n in served], rel=1e-6)
    assert model.neuron(1, 5).stats.max == pytest.approx(stats.loc[5, "max_activation"], rel=1e-6)

    ranking = model.layer_ranking(1)
    assert list(ranking.columns) == ["layer", "neuron", "score"]
    assert ranking["score"].is_monotonic_decreasing
    assert set(ranking["layer"]) == {1}
    whole = model.ranking()
    assert whole["score"].is_monotonic_decreasing
    served_ranking = api(synth_server, "/api/synth/neuroscope")["data"]["important_neurons"]
    assert [(r["layer"], r["neuron"]) for r in whole.to_dict("records")][:10] == [
        (n[0]["layer"], n[0]["neuron"]) for n in served_ranking
    ][:10]


def test_search_finds_what_the_api_finds(synth_db, synth_server):
    model = deepdecipher.open(synth_db).model()
    token = model.neuron(0, 3).activating_tokens[0].token.strip()
    results = model.search(token, limit=5)
    served = api(synth_server, f"/api/synth/token-search?query={urllib.request.quote(token)}&limit=5")["data"]
    assert [(h.layer, h.neuron) for h in results] == [(n["layer"], n["neuron"]) for n in served["neurons"]]
    assert len(results) > 0 and results.page["total"] == served["total"]
    assert list(results.to_pandas().columns) == ["layer", "neuron", "score", "text"]
    assert results[0] == results.hits[0] and results[-1] == results.hits[-1]


def test_bad_input_raises_one_exception_class(synth_db, tmp_path):
    db = deepdecipher.open(synth_db)
    model = db.model()
    with pytest.raises(deepdecipher.DeepDecipherError, match="layer 3 is out of range"):
        model.neuron(3, 0)
    with pytest.raises(deepdecipher.DeepDecipherError, match="neuron 48 is out of range"):
        model.neuron(0, 48)
    with pytest.raises(deepdecipher.DeepDecipherError, match='no model named "nope"'):
        db.model("nope")
    with pytest.raises(deepdecipher.DeepDecipherError, match="no source"):
        model.neuron(0, 0, source="res-jb")
    with pytest.raises(deepdecipher.DeepDecipherError, match="no database"):
        deepdecipher.open(tmp_path / "missing.db")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(deepdecipher.DeepDecipherError):
        deepdecipher.open(garbage)
    with pytest.raises(OverflowError):
        model.neuron(-1, 0)
    with pytest.raises(deepdecipher.DeepDecipherError, match="explanation-search|encoder|embed"):
        model.search_explanations("legal language")


def test_notebook_html(synth_db):
    model = deepdecipher.open(synth_db).model()
    neuron = model.neuron(1, 2)
    html = neuron._repr_html_()
    assert html.startswith("<div class=dd-nb><style>") and html.endswith("</div>")
    # The website's colour scale: its classes, legend and variables.
    assert "class=legend" in html and "--p8:" in html and "<i class=p" in html
    assert neuron.explanations[0].text.replace('"', "&quot;") in html
    assert html.count("<div class=ex ") == 5
    example = neuron.top_examples[0]
    example_html = example._repr_html_()
    assert example_html.count("<i") >= len(example)
    search = model.search(neuron.activating_tokens[0].token.strip(), limit=3)._repr_html_()
    assert "<table>" in search and "<td>" in search


def test_relations_match_the_servers_pages(synth_db, synth_server):
    """Correlations, embeddings, roles, changes and groups equal what the API serves."""
    model = deepdecipher.open(synth_db).model()
    neuron = model.neuron(1, 7)
    positive, negative = neuron.correlations
    served = api(synth_server, "/api/synth/correlations/1/7")["data"]
    assert [(c.layer, c.neuron) for c in positive] == [(c["layer"], c["neuron"]) for c in served["positive"]]
    assert [c.correlation for c in negative] == pytest.approx([c["correlation"] for c in served["negative"]])
    embedding = neuron.embedding
    served = api(synth_server, "/api/synth/embedding/1/7")["data"]
    assert embedding.source == served["source"]
    assert embedding.vector.dtype == np.float32
    np.testing.assert_allclose(embedding.vector, served["vector"], rtol=1e-6)
    assert [(n.layer, n.neuron) for n in embedding.neighbours] == [(n["layer"], n["neuron"]) for n in served["neighbours"]]

    roles = model.layer_roles(2)
    served = api(synth_server, "/api/synth/roles/2")["data"]["neurons"]
    assert len(roles) == 48 and roles["role"].tolist() == [r["role"] for r in served]
    assert roles["strength_z"].tolist() == pytest.approx([r["strength_z"] for r in served], rel=1e-6)
    changes = model.layer_changes(0)
    assert changes.attrs["baseline"] == "synth"
    served = api(synth_server, "/api/synth/changes/0")["data"]["neurons"]
    assert changes["score"].tolist() == pytest.approx([c["score"] for c in served], rel=1e-6)

    groups = model.groups()
    served = api(synth_server, "/api/synth/groups")["data"]["groups"]
    assert [g.members for g in groups] == [[(m["layer"], m["neuron"]) for m in g["members"]] for g in served]
    first = groups[0]
    assert len(first) == len(first.members) and first.number == 0
    layer, index = first.members[0]
    page = api(synth_server, f"/api/synth/groups/{layer}/{index}")["data"]["group"]
    context = first.contexts[0]
    assert context.tokens == page["contexts"][0]["tokens"]
    assert context.scores.tolist() == pytest.approx(page["contexts"][0]["scores"])
