#!/usr/bin/env bash
# One device call for issue 12's GPU figures: `infer serve --device cuda --parallel 8` under
# bench/serve_load.py (the device machine has Python, not Node), 1 stream then 8 concurrent streams, on a
# synthesized Mistral-7B Q4_K_M file and on the demo model, ROUNDS times each (default 2); `infer bench -s 1,8`
# beside it for the engine without HTTP. Run from the repository root on the GPU machine:
#   scripts/dev/cuda_serve.sh [deps-dir]      (deps-dir: as scripts/dev/cuda_check.sh)
# Environment: ROUNDS, REQUESTS (per level, default 32), MAX_TOKENS (default 128), TYPES (default Q4_K_M),
# CTX (each slot's context, default 1024), CONFIGS (space-separated environment settings compared in turn in
# each round, e.g. "KINFER_ATTN_FIXED_SPLITS=1 KINFER_ATTN_FIXED_SPLITS=0"; default: one run as is),
# TESTS=1 (first build kinfer_tests and run the cuda tests, memcheck and racecheck on TEST_FILTER),
# DEPTH=N (also `infer bench -d N -n 64` under each of CONFIGS, twice), DEMO=0 (the synthesized files only),
# PER_STREAM=N (N requests per stream at each level instead of REQUESTS per level: serve_load's --per-stream).
set -uo pipefail
DEPS=${1:-}
OUT=${OUT:-/tmp/cuda_serve_out}
KB=${KB:-/tmp/kb}
ROUNDS=${ROUNDS:-2} REQUESTS=${REQUESTS:-32} MAX_TOKENS=${MAX_TOKENS:-128} TYPES=${TYPES:-Q4_K_M}
CTX=${CTX:-1024} CONFIGS=${CONFIGS:-KINFER_NONE=0} TEST_FILTER=${TEST_FILTER:-cuda rope*}
mkdir -p "$OUT"
source "$(dirname "$0")/cuda_deps.sh" "$DEPS"
t0=$(date +%s)
kb_build "$KB" infer
echo "built after $(( $(date +%s) - t0 )) s"
if [[ "${TESTS:-0}" == 1 ]]; then
  kb_build "$KB" kinfer_tests
  "$KB/bin/kinfer_tests" -tc='cuda*' 2>&1 | grep -E "ERROR|want|test cases|assertions" | head -12
  timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 "$KB/bin/kinfer_tests" -tc="$TEST_FILTER" > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
  timeout 200 compute-sanitizer --tool racecheck --error-exitcode 9 "$KB/bin/kinfer_tests" -tc="$TEST_FILTER" > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc=$?: $(grep -E 'RACECHECK SUMMARY' "$OUT/racecheck.log" | tail -1)"
fi
models=()
for t in $TYPES; do
  f=/tmp/m-$t.gguf
  [[ -f $f ]] || "$KB/bin/infer" synth -o "$f" --preset mistral-7b --type "$t" --quiet > "$OUT/synth-$t.log" 2>&1
  models+=("$f")
done
[[ "${DEMO:-1}" == 1 ]] && models+=(models/kjv-q8_0.gguf)
port=18700
for m in "${models[@]}"; do
  name=$(basename "$m" .gguf)
  "$KB/bin/infer" bench -m "$m" --device cuda --no-bandwidth -p 0 -n "$MAX_TOKENS" -r 2 -s 1,8 2>&1 |
    grep "|" | grep tg | awk -F'|' -v n="$name" '{print n" engine: "$8" "$9}'
  if [[ -n "${DEPTH:-}" ]]; then
    for r in 1 2; do
      for c in $CONFIGS; do
        env ${c//,/ } "$KB/bin/infer" bench -m "$m" --device cuda --no-bandwidth -p 0 -n 64 -r 2 -d "$DEPTH" 2>&1 |
          grep "|" | grep tg | awk -F'|' -v n="$name" -v c="$c" '{print n" "c" engine: "$8" "$9}'
      done
    done
  fi
  for r in $(seq "$ROUNDS"); do
    for c in $CONFIGS; do
      port=$((port + 1))
      env ${c//,/ } "$KB/bin/infer" serve -m "$m" --device cuda --parallel 8 --ctx "$CTX" --port "$port" \
        > "$OUT/serve-$name-$r-$port.log" 2>&1 &
      pid=$!
      for _ in $(seq 240); do
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
          "http://127.0.0.1:$port/health" 2> /dev/null && break
        sleep 0.5
      done
      timeout 400 python3 bench/serve_load.py --url "http://127.0.0.1:$port" --streams 1,8 --requests "$REQUESTS" \
        --per-stream "${PER_STREAM:-0}" \
        --max-tokens "$MAX_TOKENS" --temperature 0 2>&1 | sed "s/^/$name ctx $CTX $c round $r: /"
      kill "$pid"; wait "$pid" 2> /dev/null
    done
  done
done
echo "done after $(( $(date +%s) - t0 )) s"
