#!/usr/bin/env bash
# One device call: where the staged tensor-core blocks' time goes inside a real 8-sequence decode step
# (KINFER_MMA_PROBE, kernels/cuda/mma_probe.cuh, read by scripts/dev/mma_probe.py), for each of CONFIGS, with
# the cuda tests and `infer bench -s 1,8,16` alternating between the configurations. Run from the repository
# root on the GPU machine:   scripts/dev/cuda_probe.sh [deps-dir]   (deps-dir: as scripts/dev/cuda_check.sh)
# Environment: CONFIGS (space-separated configurations, each one or more comma-separated environment settings;
# default "KINFER_NONE=0 KINFER_MMA_ROTATE=0"), TEST_CONFIGS (those whose cuda tests run; default CONFIGS),
# ROUNDS (engine rounds, default 2), KTRACE=1 (also the CUPTI timeline of the 8-sequence step per config),
# RACE=FILTER (racecheck on those test cases under the last of CONFIGS).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
source scripts/dev/cuda_deps.sh "${1:-}"
KB=${KB:-/tmp/kb}
CONFIGS=${CONFIGS:-"KINFER_NONE=0 KINFER_MMA_ROTATE=0"} ROUNDS=${ROUNDS:-2}
t0=$(date +%s)
kb_build "$KB" infer kinfer_tests
echo "built after $(( $(date +%s) - t0 )) s"
cuda_tests "$KB" ${TEST_CONFIGS:-$CONFIGS}
if [[ -n "${RACE:-}" ]]; then
  last=${CONFIGS##* }
  env ${last//,/ } timeout 200 compute-sanitizer --tool racecheck --error-exitcode 9 "$KB/bin/kinfer_tests" -tc="$RACE" \
    > "$OUT/racecheck.log" 2>&1
  echo "racecheck [$last] rc=$?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1)"
fi
F=/tmp/m-Q4_K_M.gguf
[[ -f $F ]] || "$KB/bin/infer" synth -o "$F" --preset mistral-7b --type Q4_K_M --quiet > /dev/null 2>&1
for r in $(seq 1 "$ROUNDS"); do
  for cfg in $CONFIGS; do
    env ${cfg//,/ } timeout 120 "$KB/bin/infer" bench -m "$F" --device cuda --no-bandwidth -p 0 -n 64 -r 2 -s 1,8,16 2>&1 |
      grep -E "^\|.*tg" | sed "s/^/[$cfg] round $r: /"
  done
done
for cfg in $CONFIGS; do
  name=${cfg//[^A-Za-z0-9]/_}
  env ${cfg//,/ } KINFER_MMA_PROBE="$OUT/probe-$name.bin" timeout 120 "$KB/bin/infer" bench -m "$F" --device cuda \
    --no-bandwidth -p 0 -n 32 -r 1 -s 8 2>&1 | grep -E "^\|.*tg" | sed "s/^/[$cfg] probed: /"
  echo "== $cfg"
  python3 scripts/dev/mma_probe.py "$OUT/probe-$name.bin" --launches > "$OUT/probe-$name.txt"
  sed -n '1p;/^shape/,$p' "$OUT/probe-$name.txt"
  gzip -f "$OUT/probe-$name.bin"
done
if [[ "${KTRACE:-0}" == 1 ]]; then
  for cfg in $CONFIGS; do
    echo "== ktrace $cfg"
    env ${cfg//,/ } TYPES=Q4_K_M SEQS=8 KB="$KB" OUT=/tmp/kt bash scripts/dev/cuda_ktrace.sh "${1:-}" 2>&1 |
      grep -vE "^built|^done"
  done
fi
echo "done after $(( $(date +%s) - t0 )) s"
