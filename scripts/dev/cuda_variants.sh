#!/usr/bin/env bash
# One short device call comparing matvec variants (KINFER_MATVEC_VARIANT): build (16 cores), the matvec/rope/
# backend GPU tests per variant, memcheck on the matvec tests of the first non-zero variant, the kernel bench per
# variant, then `infer bench --device cuda` tg128 on synthesized Mistral-7B files per variant.
# Run from a source tree on the GPU machine:  scripts/dev/cuda_variants.sh [deps-dir]
# Environment: TYPES (default "Q4_K_M Q8_0"), VARIANTS (default "0 4 5"), REPS (default 2).
set -uo pipefail
DEPS=${1:-}
OUT=${OUT:-/tmp/cuda_variants_out}
KB=${KB:-/tmp/kb}
mkdir -p "$OUT"
source "$(dirname "$0")/cuda_deps.sh" "$DEPS"
TYPES=${TYPES:-"Q4_K_M Q8_0"}
VARIANTS=${VARIANTS:-"0 4 5"}
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
kb_build $KB infer
stamp "infer built"
( for ty in $TYPES; do $KB/bin/infer synth -o /tmp/m-$ty.gguf --preset mistral-7b --type $ty > "$OUT/synth-$ty.log" 2>&1
  echo "[$(( $(date +%s) - t0 )) s] synth $ty done"; done ) &
spid=$!
kb_build $KB kinfer_tests kinfer_cuda_bench
stamp "all built"
T=$KB/bin/kinfer_tests
for v in $VARIANTS; do
  KINFER_MATVEC_VARIANT=$v $T -tc='cuda matvec*,cuda rope*,cuda backend*' 2>&1 | tee "$OUT/tests-$v.log" |
    grep -E "ERROR|FAILED|test cases|assertions" | head -10 | sed "s/^/variant $v: /"
done
v1=$(echo $VARIANTS | tr ' ' '\n' | grep -v '^0$' | head -1)
KINFER_MATVEC_VARIANT=$v1 timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 $T \
  -tc='cuda matvec: one and two*,cuda rope*' > "$OUT/memcheck.log" 2>&1
stamp "memcheck (variant $v1) rc=$?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
for v in $VARIANTS; do
  KINFER_MATVEC_VARIANT=$v timeout 60 $KB/bin/kinfer_cuda_bench --quick > "$OUT/bench-$v.log" 2>&1
  grep -E "^.*(q4_K|q8_0|q6_K).*" "$OUT/bench-$v.log" | head -12 | sed "s/^/variant $v: /"
done
stamp "kernel bench done"
wait $spid
for ty in $TYPES; do
  f=/tmp/m-$ty.gguf
  [[ -f $f ]] || { echo "no $f"; tail -3 "$OUT/synth-$ty.log"; continue; }
  for v in $VARIANTS; do
    KINFER_MATVEC_VARIANT=$v $KB/bin/infer bench -m $f --device cuda --no-bandwidth -p 0 -n 128 -r ${REPS:-2} 2>&1 |
      grep -E "tg128" | grep "|" | sed "s/^/$ty variant $v: /"
  done
  stamp "$ty done"
done
