#!/usr/bin/env bash
# Load test of `deepdecipher serve` with wrk (Debian package `wrk`), as reported in docs/benchmarks.md.
#
#   scripts/load/run.sh [DATABASE]
#
# Builds the release binary, writes a gpt2-small-shaped synthetic database if DATABASE does not
# exist (12 layers × 3,072 neurons, 20 examples × 128 tokens), starts the server on 127.0.0.1:18080,
# and runs wrk with 32 connections against random neurons for each route. Prints requests/s,
# latency percentiles and the server's CPU time per request (from /proc), which is steadier than
# requests/s on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
DB="${1:-/var/tmp/deepdecipher-bench/gpt2-small-synth.db}"
PORT=18080
DURATION="${DURATION:-10s}"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -q
BIN=target/release/deepdecipher
mkdir -p "$(dirname "$DB")"
[ -f "$DB" ] || "$BIN" synth "$DB" --name gpt2-small-synth --layers 12 --neurons 3072 --examples 20 --tokens 128
RUST_LOG=warn "$BIN" serve "$DB" --addr "127.0.0.1:$PORT" >/dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
sleep 1
TICKS=$(getconf CLK_TCK)
run() { # name, wrk arguments...
  local name=$1; shift
  wrk -t1 -c32 -d2s "$@" >/dev/null 2>&1   # warm-up
  local t0 t1 out requests
  t0=$(awk '{print $14+$15}' /proc/$SERVER/stat)
  out=$(wrk -t1 -c32 -d"$DURATION" --latency "$@" 2>&1)
  t1=$(awk '{print $14+$15}' /proc/$SERVER/stat)
  requests=$(echo "$out" | grep -oE '^ +[0-9]+ requests' | grep -oE '[0-9]+')
  printf '%-28s %10s req/s  %s  server CPU %d us/request\n' "$name" \
    "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
    "$(echo "$out" | grep -oE 'p50 .*non-2xx [0-9]+')" \
    $(( (t1 - t0) * 1000000 / TICKS / requests ))
}
URL="http://127.0.0.1:$PORT"
SCRIPT=scripts/load/random_neuron.lua
for service in ${SERVICES:-neuroscope all stats metadata}; do
  SERVICE=$service run "$service/{l}/{n}" -s "$SCRIPT" "$URL"
done
SERVICE=viz run "website neuron page" -s "$SCRIPT" "$URL"
for encoding in zstd br gzip; do
  SERVICE=neuroscope run "neuroscope/{l}/{n} $encoding" -s "$SCRIPT" -H "Accept-Encoding: $encoding" "$URL"
done
[ -n "${QUICK:-}" ] && exit 0
run "/api" -s scripts/load/percentiles.lua "$URL/api"
run "neuroscope (model ranking)" -s scripts/load/percentiles.lua "$URL/api/gpt2-small-synth/neuroscope"
run "neuron2graph-search" -s scripts/load/percentiles.lua "$URL/api/gpt2-small-synth/neuron2graph-search?query=any:the"
