#!/usr/bin/env bash
# One device call comparing settings of the CUDA backend: the cuda tests under each of TEST_CONFIGS, memcheck
# and racecheck on TEST_FILTER under the first of CONFIGS, then `infer bench -s 1,8,16` (and with DEPTH=N the
# one-token step N positions deep) alternating between CONFIGS for ROUNDS rounds, on a synthesized Mistral-7B
# Q4_K_M file. Run from the repository root on the GPU machine:   scripts/dev/cuda_ab.sh [deps-dir]
# (deps-dir: as scripts/dev/cuda_check.sh). Environment: CONFIGS (space-separated, each one or more
# comma-separated environment settings; default "KINFER_NONE=0"), TEST_CONFIGS (default CONFIGS), ROUNDS
# (default 2), KB (build dir, default build-dev: kept between the calls of one warm machine).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
source scripts/dev/cuda_deps.sh "${1:-}"
KB=${KB:-build-dev}
CONFIGS=${CONFIGS:-KINFER_NONE=0} ROUNDS=${ROUNDS:-2} TEST_FILTER=${TEST_FILTER:-cuda rope*}
t0=$(date +%s)
kb_build "$KB" infer kinfer_tests
echo "built after $(( $(date +%s) - t0 )) s"
cuda_tests "$KB" ${TEST_CONFIGS:-$CONFIGS}
first=${CONFIGS%% *}
for tool in memcheck racecheck; do
  env ${first//,/ } timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 "$KB/bin/kinfer_tests" \
    -tc="$TEST_FILTER" > "$OUT/$tool.log" 2>&1
  echo "$tool [$first] rc=$?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/$tool.log" | tail -1)"
done
echo "tested after $(( $(date +%s) - t0 )) s"
F=/tmp/m-Q4_K_M.gguf
[[ -f $F ]] || "$KB/bin/infer" synth -o "$F" --preset mistral-7b --type Q4_K_M --quiet > /dev/null 2>&1
for r in $(seq 1 "$ROUNDS"); do
  for cfg in $CONFIGS; do
    env ${cfg//,/ } timeout 120 "$KB/bin/infer" bench -m "$F" --device cuda --no-bandwidth -p 0 -n 64 -r 2 \
      -s 1,8,16 2>&1 | grep -E "^\|.*tg" | sed "s/^/[$cfg] round $r: /"
    if [[ -n "${DEPTH:-}" ]]; then
      env ${cfg//,/ } timeout 120 "$KB/bin/infer" bench -m "$F" --device cuda --no-bandwidth -p 0 -n 64 -r 2 \
        -d "$DEPTH" 2>&1 | grep -E "^\|.*tg" | sed "s/^/[$cfg] round $r depth $DEPTH: /"
    fi
  done
done
echo "done after $(( $(date +%s) - t0 )) s"
