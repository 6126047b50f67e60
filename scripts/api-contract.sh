#!/usr/bin/env bash
# The API contract: schemathesis (pinned) runs every check against the OpenAPI document the server
# serves, on two databases: a synthetic one holding every data kind (`synth`), and a small real
# recording of SmolLM2-135M served with `--model`, so that the text routes run the model. Any
# finding fails, warnings included. Called by scripts/test.sh; needs the test assets
# (scripts/fetch-test-assets.sh).
#
#   DD_SCHEMATHESIS_SEED   the generation seed (default fixed, so a CI failure replays exactly)
#   DD_SCHEMATHESIS_TIME   seconds of generation per database (default 60); schemathesis repeats its
#                          phases until they are spent
#   DD_SCHEMATHESIS_EXAMPLES  test cases per operation in each repetition (default 100)
#
# The SmolLM2 recording is 256 tokens (recording is the slow step in a debug build; two contexts
# make every kind of data a recording without weights has). Its server gets one request at a time
# (one worker), so a text never waits for another one's run (that 503 `busy` is the live tests'
# business, not a contract finding), and cuts texts to 32 tokens, so that a run in a debug build
# stays well inside the 10 s request timeout and schemathesis's 10 s response-time check on a
# loaded 2-core machine (a 250-token run over all 30 layers took 20 s there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ASSETS="${DD_TEST_ASSETS:-/var/tmp/deepdecipher-assets}"
SCHEMATHESIS_VERSION=4.32.5
VENV="$ASSETS/schemathesis-$SCHEMATHESIS_VERSION"
SEED="${DD_SCHEMATHESIS_SEED:-20261206}"
SECONDS_PER_DATABASE="${DD_SCHEMATHESIS_TIME:-60}"
EXAMPLES="${DD_SCHEMATHESIS_EXAMPLES:-100}"

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
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/deepdecipher"
GGUF="$ASSETS/SmolLM2-135M-Instruct.Q4_1.gguf"

WORK=$(mktemp -d)
SERVERS=()
cleanup() {
  for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts `deepdecipher serve ARGS...` on a free port and sets ADDR once it answers. (Not in a
# command substitution: its subshell would keep the server's pid from `cleanup`.)
serve() {
  local log="$WORK/serve-${#SERVERS[@]}.log"
  "$BIN" serve --addr 127.0.0.1:0 --log warn "$@" >"$log" 2>&1 &
  SERVERS+=($!)
  ADDR=""
  for _ in $(seq 1 600); do
    local addr
    addr=$(sed -n 's|^listening on http://||p' "$log")
    if [ -n "$addr" ] && curl -sf "http://$addr/-/health" >/dev/null; then
      ADDR=$addr
      return 0
    fi
    sleep 0.1
  done
  echo "error: the server did not start:" >&2
  cat "$log" >&2
  return 1
}

# Runs schemathesis with WORKERS workers against the server at ADDR, with parameters drawn from
# what it serves. It runs in $WORK, where it keeps its cache.
contract() {
  local name=$1 workers=$2 config="$WORK/$1.toml"
  python3 "$ROOT/scripts/api_contract_config.py" "http://$ADDR" >"$config"
  echo "-- $name: schemathesis $SCHEMATHESIS_VERSION, every check, seed $SEED, ${SECONDS_PER_DATABASE}s," \
    "$EXAMPLES cases per operation and round, $workers worker(s)"
  (cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$config" run "http://$ADDR/api/openapi.json" \
    --checks all --seed "$SEED" --max-time "$SECONDS_PER_DATABASE" --max-examples "$EXAMPLES" \
    --workers "$workers" --no-color)
}

"$BIN" synth "$WORK/synth.db" --name synth-2l --layers 2 --neurons 64 --examples 4 --bottom-examples 2 \
  --tokens 24 --vocab 2000 --log warn >/dev/null
serve "$WORK/synth.db"
contract synthetic 2

"$BIN" record "$GGUF" "$ASSETS/shakespeare" -o "$WORK/smollm2.db" --tokens 256 --no-weights --log warn >/dev/null
serve "$WORK/smollm2.db" --model "$GGUF" --max-live-tokens 32
contract smollm2 1
