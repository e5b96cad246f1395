#!/usr/bin/env bash
# One device call for the tensor-core batch path (matvec_mma_kernel): build on the device's cores, its reference
# test under each setting in TEST_CONFIGS, compute-sanitizer memcheck and racecheck on it (with SAN_CONFIG), the
# kernel bench (`kinfer_cuda_bench --quick`, 8-token rows) under each BENCH_CONFIGS setting, then `infer bench
# -s 1,8,16` on a synthesized Mistral-7B Q4_K_M file under each BENCH_CONFIGS setting, alternating, ROUNDS times.
# Settings are space-separated lists of VAR=VALUE,VAR=VALUE ("-" for none). Run from the repository root on the
# GPU machine:  scripts/dev/cuda_batch_check.sh [deps-dir]   (deps-dir: as scripts/dev/cuda_check.sh)
set -uo pipefail
DEPS=${1:-}
OUT=${OUT:-/tmp/cuda_batch_out}
KB=${KB:-/tmp/kb}
TEST_CONFIGS=${TEST_CONFIGS:-"KINFER_MATVEC_MMA=0 KINFER_MATVEC_MMA=1 KINFER_MATVEC_MMA=2"}
SAN_CONFIG=${SAN_CONFIG:-KINFER_MATVEC_MMA=2}
BENCH_CONFIGS=${BENCH_CONFIGS:-"KINFER_MATVEC_MMA=0 KINFER_MATVEC_MMA=1"}
ROUNDS=${ROUNDS:-2}
mkdir -p "$OUT"
source "$(dirname "$0")/cuda_deps.sh" "$DEPS"
envs() { [ "$1" = "-" ] && return; echo "$1" | tr ',' ' '; }
t0=$(date +%s)
kb_build "$KB" infer
( "$KB/bin/infer" synth -o /tmp/m-Q4_K_M.gguf --preset mistral-7b --type Q4_K_M > "$OUT/synth.log" 2>&1 ) &
kb_build "$KB" kinfer_tests kinfer_cuda_bench
echo "built after $(( $(date +%s) - t0 )) s"
T=$KB/bin/kinfer_tests
sel='cuda matvec: batches*'
for c in $TEST_CONFIGS; do
  env $(envs "$c") "$T" -tc="$sel" 2>&1 | grep -E "ERROR|want|test cases|assertions" | head -8 | sed "s/^/$c: /"
done
env $(envs "$SAN_CONFIG") "$T" -tc='cuda*' 2>&1 | grep -E "ERROR|test cases|assertions" | head -6 |
  sed "s/^/all cuda tests, $SAN_CONFIG: /"
env $(envs "$SAN_CONFIG") timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 "$T" -tc="$sel" \
  > "$OUT/memcheck.log" 2>&1
echo "memcheck ($SAN_CONFIG) rc=$?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
env $(envs "$SAN_CONFIG") timeout 200 compute-sanitizer --tool racecheck --error-exitcode 9 "$T" -tc="$sel" \
  > "$OUT/racecheck.log" 2>&1
echo "racecheck ($SAN_CONFIG) rc=$?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1)"
for c in $BENCH_CONFIGS; do
  env $(envs "$c") "$KB/bin/kinfer_cuda_bench" --quick 2>&1 | grep -E "(q4_K|q6_K|q8_0) .*nt=8" | sed "s/^/$c: /"
done
wait
for r in $(seq "$ROUNDS"); do
  for c in $BENCH_CONFIGS; do
    env $(envs "$c") "$KB/bin/infer" bench -m /tmp/m-Q4_K_M.gguf --device cuda --no-bandwidth -p 0 -n 64 -r 2 \
      -s 1,8,16 2>&1 | grep "|" | grep tg | awk -F'|' -v c="$c" '{print c": "$8" "$9}'
  done
done
echo "done after $(( $(date +%s) - t0 )) s"
