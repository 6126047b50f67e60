"""`load_model` with a hub id: the runtime's real hub client against a hub on 127.0.0.1 that
serves a model fixture the way the hub does (HEAD with `X-Repo-Commit`, `ETag`, size; GET of the
content), then the cached copy offline."""

import hashlib
import http.server
import threading

import numpy as np
import pytest

import deepdecipher
from conftest import MODEL_FIXTURES
from test_runtime import read_safetensors

COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = {("tests/llama-gguf", "main", "model.gguf"): MODEL_FIXTURES / "llama-gguf" / "model.gguf"}


class FakeHub(http.server.BaseHTTPRequestHandler):
    requests = []

    def file(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        # /{org}/{name}/resolve/{revision}/{file}
        if len(parts) != 5 or parts[2] != "resolve":
            return None
        return FILES.get(("/".join(parts[:2]), parts[3], parts[4]))

    def answer(self, body):
        path = self.file()
        FakeHub.requests.append((self.command, self.path))
        if path is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        content = path.read_bytes()
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"%s"' % hashlib.sha256(content).hexdigest())
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)

    def do_HEAD(self):  # noqa: N802
        self.answer(body=False)

    def do_GET(self):  # noqa: N802
        self.answer(body=True)

    def log_message(self, *args):
        pass


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    FakeHub.requests.clear()
    yield server
    server.shutdown()


def test_load_model_from_a_hub_id(hub, monkeypatch):
    model = deepdecipher.load_model("tests/llama-gguf:model.gguf")
    assert ("GET", "/tests/llama-gguf/resolve/main/model.gguf") in FakeHub.requests
    reference = read_safetensors(MODEL_FIXTURES / "llama-gguf" / "reference.safetensors")
    result = model.run(reference["input_ids"], logits=True)
    assert np.abs(result.logits - reference["logits"]).max() <= 1e-4
    # Offline, the cached copy loads without a request.
    FakeHub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = deepdecipher.load_model("tests/llama-gguf:model.gguf")
    assert FakeHub.requests == [] and again.config == model.config


def test_a_missing_hub_file_is_a_clear_error(hub):
    with pytest.raises(deepdecipher.DeepDecipherError, match="file missing.gguf not found in repository tests/llama-gguf"):
        deepdecipher.load_model("tests/llama-gguf:missing.gguf")
