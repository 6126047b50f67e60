"""The quickstart notebook, executed end to end by a real Jupyter kernel on a SmolLM2 recording."""

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_runs(smollm2_db, smollm2_gguf, monkeypatch):
    monkeypatch.setenv("DD_NOTEBOOK_DATABASE", str(smollm2_db))
    monkeypatch.setenv("DD_NOTEBOOK_MODEL", str(smollm2_gguf))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "data" in o and "text/html" in o["data"]]
    # The neuron renders with the website's colour scale; the DataFrames render as tables.
    assert any(h.startswith("<div class=dd-nb>") and "class=legend" in h for h in html), html
    assert sum("<table" in h for h in html) >= 4
    texts = "".join(o["data"].get("text/plain", "") for o in outputs if "data" in o)
    assert "Model(" in texts
