#!/usr/bin/env bash
# The README's test command: everything the tests need on a fresh Debian machine, then the tests.
#
#   1. Chromium and ChromeDriver (Debian's `chromium` and `chromium-driver`), installed with apt-get
#      when either is missing from the PATH, through sudo only when not root: the website's tests
#      drive headless Chromium.
#   2. The large test assets (scripts/fetch-test-assets.sh: SmolLM2's GGUF, GPT-2's BPE files,
#      Shakespeare, all-MiniLM-L6-v2), fetched once into $DD_TEST_ASSETS.
#   3. pyarrow, pandas and DuckDB in a venv beside the assets, for the test that reads exports with them
#      (DD_PYARROW_PYTHON names its python).
#   4. `cargo test --workspace`.
#   5. The Python package: `pip install ./python` into a venv beside the assets (maturin, pytest, NumPy,
#      pandas, tqdm, nbclient and ipykernel, pinned), then its tests (python/tests), which execute the
#      quickstart notebook. Built with the dev profile, whose model crates are optimised (Cargo.toml), so
#      it reuses the test build.
#   6. The API contract (scripts/api-contract.sh): schemathesis against the served OpenAPI document.
#
# `.ci/run` calls exactly this script after its format, lint and dependency checks. Arguments are
# passed to `cargo test` (e.g. `scripts/test.sh -p dd-store`); with arguments, the API contract
# and Python runs are skipped unless DD_API_CONTRACT=1 and DD_PYTHON_TESTS=1.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== browser (headless Chromium for the website's tests)"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "error: ${missing[*]} not found and apt-get is not available; install Chromium and ChromeDriver" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
  fi
  echo "installing ${missing[*]} with ${SUDO:+sudo }apt-get (Debian packages chromium chromium-driver)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi
chromium --version 2>/dev/null | grep -v '^\[' || true

echo "== test assets (SmolLM2 GGUF, GPT-2 BPE files, Shakespeare, all-MiniLM-L6-v2; cached outside the clone)"
scripts/fetch-test-assets.sh

echo "== pyarrow, pandas and DuckDB (read exports in dd-export's tests)"
PYARROW_VERSION=22.0.0
PANDAS_VERSION=2.3.3
DUCKDB_VERSION=1.4.2
PYARROW_VENV="${DD_TEST_ASSETS:-/var/tmp/deepdecipher-assets}/pyarrow-$PYARROW_VERSION-pandas-$PANDAS_VERSION-duckdb-$DUCKDB_VERSION"
# As in api-contract.sh: the venv is built where it lives, and the stamp says the install finished.
if [ ! -f "$PYARROW_VENV/installed" ]; then
  echo "installing pyarrow $PYARROW_VERSION, pandas $PANDAS_VERSION and duckdb $DUCKDB_VERSION with pip into $PYARROW_VENV"
  rm -rf "$PYARROW_VENV"
  python3 -m venv "$PYARROW_VENV"
  "$PYARROW_VENV/bin/pip" install --quiet "pyarrow==$PYARROW_VERSION" "pandas==$PANDAS_VERSION" "duckdb==$DUCKDB_VERSION"
  touch "$PYARROW_VENV/installed"
fi
export DD_PYARROW_PYTHON="$PYARROW_VENV/bin/python"

echo "== tests"
# Model tests use the machine's cores through rayon; candle reads this for its thread count too.
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-$(nproc)}"
if [ $# -eq 0 ]; then
  cargo test --locked --workspace
else
  cargo test --locked "$@"
fi

if [ $# -eq 0 ] || [ "${DD_PYTHON_TESTS:-0}" = 1 ]; then
  echo "== Python package (pip install ./python, then pytest python/tests)"
  PYTHON_PACKAGES="maturin==1.9.6 pytest==9.2.0 numpy==2.4.6 pandas==3.1.1 tqdm==4.70.1 nbclient==0.11.0 nbformat==5.11.1 ipykernel==7.4.0"
  PYTHON_VENV="${DD_TEST_ASSETS:-/var/tmp/deepdecipher-assets}/python-$(echo "$PYTHON_PACKAGES" | sha256sum | cut -c1-12)"
  if [ ! -f "$PYTHON_VENV/installed" ]; then
    echo "installing $PYTHON_PACKAGES with pip into $PYTHON_VENV"
    rm -rf "$PYTHON_VENV"
    python3 -m venv "$PYTHON_VENV"
    # shellcheck disable=SC2086
    "$PYTHON_VENV/bin/pip" install --quiet $PYTHON_PACKAGES
    touch "$PYTHON_VENV/installed"
  fi
  cargo build --locked --quiet --bin deepdecipher
  # maturin from the venv builds the extension in the shared target directory.
  PATH="$PYTHON_VENV/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev" \
    "$PYTHON_VENV/bin/pip" install --quiet --no-build-isolation --no-deps --force-reinstall ./python
  DD_BINARY="${CARGO_TARGET_DIR:-$PWD/target}/debug/deepdecipher" "$PYTHON_VENV/bin/pytest" -q python/tests
fi

if [ $# -eq 0 ] || [ "${DD_API_CONTRACT:-0}" = 1 ]; then
  echo "== API contract (schemathesis against /api/openapi.json)"
  scripts/api-contract.sh
fi
