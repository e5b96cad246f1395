#!/usr/bin/env bash
# The timeline of real decode steps on the GPU machine: builds `infer`, the CUPTI recorder
# (scripts/dev/cuda_ktrace.cpp), synthesizes the Mistral-7B files, then per type runs `infer bench --device cuda`
# plainly (tg128) and under the recorder, and prints per kernel its launches, mean and exclusive time per step
# (scripts/dev/cuda_ktrace_summary.py), and the GPU time and host gap per step from graph-level records
# (scripts/dev/cuda_ktrace_gaps.py). Run from a source tree on the GPU machine:
#   scripts/dev/cuda_ktrace.sh [deps-dir]
# Environment: TYPES (default "Q4_K_M Q8_0"), SEQS (sequences per step, default 1), DEPTH (default 0), OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source scripts/dev/cuda_deps.sh "${1:-}"
KB=${KB:-/tmp/kb}
TYPES=${TYPES:-"Q4_K_M Q8_0"} SEQS=${SEQS:-1} DEPTH=${DEPTH:-0}
t0=$(date +%s)
kb_build "$KB" infer
echo "built after $(( $(date +%s) - t0 )) s"
H=$(find /usr/local/cuda*/ -name cupti_activity.h 2>/dev/null | head -1)
[ -n "$H" ] || { echo "no cupti_activity.h under /usr/local/cuda*"; exit 1; }
INC=$(dirname "$H")
LIB=$(dirname "$(find /usr/local/cuda*/ -name 'libcupti.so*' 2>/dev/null | head -1)")
KREC=$(grep -o "CUpti_ActivityKernel[0-9]*" "$H" | sort -V | tail -1)
GREC=$(grep -o "CUpti_ActivityGraphTrace[0-9]*" "$H" | sort -V | tail -1)
g++ -O2 -shared -fPIC -I"$INC" -I/usr/local/cuda/include -DKREC="$KREC" -DGREC="$GREC" scripts/dev/cuda_ktrace.cpp \
  -L"$LIB" -lcupti -Wl,-rpath,"$LIB" -o /tmp/libktrace.so || exit 1
for T in $TYPES; do
  F=/tmp/m-$T.gguf
  [ -f "$F" ] || "$KB/bin/infer" synth -o "$F" --preset mistral-7b --type "$T" --quiet > /dev/null 2>&1
  args=(-m "$F" --device cuda --no-bandwidth -p 0 -s "$SEQS" -d "$DEPTH")
  timeout 120 "$KB/bin/infer" bench "${args[@]}" -n 128 -r 2 2>&1 | grep -E "^\|.*tg" | sed "s/^/$T plain: /"
  CUDA_INJECTION64_PATH=/tmp/libktrace.so KTRACE_OUT="$OUT/kernels-$T.tsv" \
    timeout 120 "$KB/bin/infer" bench "${args[@]}" -n 64 -r 1 2>&1 | grep -E "^\|.*tg|^ktrace" | sed "s/^/$T traced: /"
  python3 scripts/dev/cuda_ktrace_summary.py "$OUT/kernels-$T.tsv" embed_kernel 30
  KTRACE_GRAPH=1 CUDA_INJECTION64_PATH=/tmp/libktrace.so KTRACE_OUT="$OUT/graphs-$T.tsv" \
    timeout 120 "$KB/bin/infer" bench "${args[@]}" -n 128 -r 1 2>&1 | grep -E "^\|.*tg" | sed "s/^/$T graph-traced: /"
  python3 scripts/dev/cuda_ktrace_gaps.py "$OUT/graphs-$T.tsv" 100
done
gzip -f "$OUT"/*.tsv
echo "done after $(( $(date +%s) - t0 )) s"
