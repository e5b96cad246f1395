#!/usr/bin/env bash
# One device call for decode work: build (16 cores), the GPU tests, compute-sanitizer on the kernel tests, the
# kernel benchmark for each matvec variant, then `infer bench --device cuda` tg128 (and at depth 4096) on
# synthesized Mistral-7B files for each environment setting in CONFIGS. Run from a source tree on the GPU
# machine:  scripts/dev/cuda_decode.sh [deps-dir]   (deps-dir: as scripts/dev/cuda_check.sh)
# Environment: TYPES (default "Q4_K_M Q8_0"), CONFIGS (';'-separated env settings, default below),
# DEPTH_CONFIGS (the settings also run at depth 4096), SKIP_SANITIZER=1, SKIP_TESTS=1.
set -uo pipefail
DEPS=${1:-}
OUT=${OUT:-/tmp/cuda_decode_out}
KB=${KB:-/tmp/kb}
mkdir -p "$OUT"
source "$(dirname "$0")/cuda_deps.sh" "$DEPS"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader
t0=$(date +%s)
kb_build $KB infer
echo "infer built after $(( $(date +%s) - t0 )) s"
TYPES=${TYPES:-"Q4_K_M Q8_0"}
# The files, synthesized on the CPU while the tests run.
( for ty in $TYPES; do $KB/bin/infer synth -o /tmp/m-$ty.gguf --preset mistral-7b --type $ty > "$OUT/synth-$ty.log" 2>&1; done ) &
spid=$!
kb_build $KB kinfer_tests kinfer_cuda_bench
echo "all built after $(( $(date +%s) - t0 )) s"
T=$KB/bin/kinfer_tests
if [[ -z "${SKIP_TESTS:-}" ]]; then
  $T -tc='cuda*' 2>&1 | tee "$OUT/tests.log" | grep -E "ERROR|FAILED|test cases|assertions" | head -30
  KINFER_MATVEC_VARIANT=1 $T -tc='cuda*' 2>&1 | grep -E "ERROR|test cases|assertions" | sed 's/^/variant 1: /' | head -10
  KINFER_PDL=0 $T -tc='cuda*' 2>&1 | grep -E "ERROR|test cases|assertions" | sed 's/^/pdl 0: /' | head -10
fi
if [[ -z "${SKIP_SANITIZER:-}" ]]; then
  sel='cuda small*,cuda rope*,cuda matvec_swiglu*,cuda backend*'
  timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 $T -tc="$sel" > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
  timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 $T -tc='cuda small*,cuda rope*,cuda matvec_swiglu*' > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc=$?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1)"
fi
for v in ${VARIANTS:-0 1}; do
  echo "matvec variant $v:"
  KINFER_MATVEC_VARIANT=$v $KB/bin/kinfer_cuda_bench --quick 2>&1 | tee "$OUT/bench-$v.log" | grep -E "q4_K|q6_K|q8_0|attention" | head -14
done
wait $spid
echo "synth done after $(( $(date +%s) - t0 )) s"
CONFIGS=${CONFIGS:-"KINFER_FUSED_SWIGLU=0;KINFER_FUSED_SWIGLU=1;KINFER_MATVEC_VARIANT=1;KINFER_PDL=0"}
DEPTH_CONFIGS=${DEPTH_CONFIGS:-"KINFER_FUSED_SWIGLU=1"}
for ty in $TYPES; do
  f=/tmp/m-$ty.gguf
  [[ -f $f ]] || { echo "no $f"; tail -3 "$OUT/synth-$ty.log"; continue; }
  IFS=';' read -ra cfgs <<< "$CONFIGS"
  for c in "${cfgs[@]}"; do
    env $c $KB/bin/infer bench -m $f --device cuda --no-bandwidth -p 0 -n 128 -r 3 2>&1 | grep -E "tg128" | grep "|" | sed "s/^/$ty $c: /"
  done
  IFS=';' read -ra cfgs <<< "$DEPTH_CONFIGS"
  for c in "${cfgs[@]}"; do
    env $c $KB/bin/infer bench -m $f --device cuda --no-bandwidth -p 0 -n 128 -d 4096 -r 3 2>&1 | grep -E "tg128" | grep "|" | sed "s/^/$ty $c: /"
  done
done
echo "done after $(( $(date +%s) - t0 )) s"
