#!/usr/bin/env bash
# One device call for the tensor-core batch path (matvec_mma_kernel, off by default: KINFER_MATVEC_MMA): build on
# the device's cores, its reference test in every mode (1: the measured policy, 2: every batch of 3-16 tokens;
# 16- and 32-row blocks), compute-sanitizer memcheck and racecheck on it, then `infer bench -s 1,8,16` on a
# synthesized Mistral-7B Q4_K_M file with the path off and on, alternating. Run from the repository root on the
# GPU machine:  scripts/dev/cuda_batch_check.sh [deps-dir]   (deps-dir: as scripts/dev/cuda_check.sh)
set -uo pipefail
DEPS=${1:-}
OUT=${OUT:-/tmp/cuda_batch_out}
KB=${KB:-/tmp/kb}
mkdir -p "$OUT"
source "$(dirname "$0")/cuda_deps.sh" "$DEPS"
t0=$(date +%s)
kb_build "$KB" infer
( "$KB/bin/infer" synth -o /tmp/m-Q4_K_M.gguf --preset mistral-7b --type Q4_K_M > "$OUT/synth.log" 2>&1 ) &
kb_build "$KB" kinfer_tests
echo "built after $(( $(date +%s) - t0 )) s"
T=$KB/bin/kinfer_tests
sel='cuda matvec: batches*'
for c in KINFER_MATVEC_MMA=0 KINFER_MATVEC_MMA=1 KINFER_MATVEC_MMA=2 "KINFER_MATVEC_MMA=2 KINFER_MMA_ROWS=16" \
  "KINFER_MATVEC_MMA=2 KINFER_MMA_ROWS=32"; do
  env $c "$T" -tc="$sel" 2>&1 | grep -E "ERROR|want|test cases|assertions" | head -8 | sed "s/^/$c: /"
done
KINFER_MATVEC_MMA=1 "$T" -tc='cuda*' 2>&1 | grep -E "ERROR|test cases|assertions" | head -6 | sed "s/^/all cuda tests, mode 1: /"
KINFER_MATVEC_MMA=2 timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 "$T" -tc="$sel" > "$OUT/memcheck.log" 2>&1
echo "memcheck (mode 2) rc=$?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
KINFER_MATVEC_MMA=2 timeout 200 compute-sanitizer --tool racecheck --error-exitcode 9 "$T" -tc="$sel" > "$OUT/racecheck.log" 2>&1
echo "racecheck (mode 2) rc=$?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1)"
wait
for c in KINFER_MATVEC_MMA=0 KINFER_MATVEC_MMA=1 KINFER_MATVEC_MMA=0 KINFER_MATVEC_MMA=1; do
  env $c "$KB/bin/infer" bench -m /tmp/m-Q4_K_M.gguf --device cuda --no-bandwidth -p 0 -n 64 -r 2 -s 1,8,16 2>&1 |
    grep "|" | grep tg | awk -F'|' -v c="$c" '{print c": "$8" "$9}'
done
echo "done after $(( $(date +%s) - t0 )) s"
