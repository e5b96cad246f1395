#!/usr/bin/env bash
# Where a decode step's time goes: ncu times every kernel (CUDA graph nodes one by one) of a short
# `infer bench --device cuda -p 0 -n N` on synthesized Mistral-7B files, then sums per kernel name.
# Run from a source tree on the GPU machine:  scripts/dev/cuda_step_profile.sh [deps-dir]
# Environment: TYPES (default "Q4_K_M Q8_0"), NTOK (default 4), SEQS (sequences per step, default 1). The
# per-kernel table per step (scripts/dev/sum_ncu_csv.py; NTOK + 1 steps: the bench's warm-up is one) and the
# raw CSV go to $OUT.
set -uo pipefail
DEPS=${1:-}
OUT=${OUT:-/tmp/cuda_profile_out}
KB=${KB:-/tmp/kb}
mkdir -p "$OUT"
source "$(dirname "$0")/cuda_deps.sh" "$DEPS"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader
t0=$(date +%s)
kb_build $KB infer
echo "infer built after $(($(date +%s) - t0)) s"
NTOK=${NTOK:-4}
SEQS=${SEQS:-1}
for ty in ${TYPES:-Q4_K_M Q8_0}; do
  f=/tmp/m-$ty.gguf
  $KB/bin/infer synth -o $f --preset mistral-7b --type $ty > "$OUT/synth-$ty.log" 2>&1 || { tail -3 "$OUT/synth-$ty.log"; continue; }
  $KB/bin/infer bench -m $f --device cuda --no-bandwidth -p 0 -n 128 -r 2 2>&1 | grep -E "tg128" | grep "|" | sed "s/^/$ty: /"
  timeout 400 ncu --graph-profiling node --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum \
    --csv --page raw --print-units base $KB/bin/infer bench -m $f --device cuda --no-bandwidth -p 0 -n $NTOK -r 1 -s $SEQS \
    > "$OUT/ncu-$ty.csv" 2> "$OUT/ncu-$ty.err"
  echo "$ty ncu rc=$? rows=$(wc -l < "$OUT/ncu-$ty.csv") after $(($(date +%s) - t0)) s"
  python3 "$(dirname "$0")/sum_ncu_csv.py" "$OUT/ncu-$ty.csv" $((NTOK + 1)) | tee "$OUT/steps-$ty.txt"
  rm -f $f
done
