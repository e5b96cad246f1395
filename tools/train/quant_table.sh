#!/usr/bin/env bash
# The README's per-quant-type table of the demo model: converts the float checkpoint to F16
# (`infer convert`), quantizes that to each type (`infer quantize`), then measures quality and speed of all
# of them in one `infer bench --perplexity` run on the held-out books (KLD and same top against the F16).
#
#   tools/train/quant_table.sh CHECKPOINT_DIR HELDOUT.txt [OUT_DIR] [-- extra infer bench flags]
#
# CHECKPOINT_DIR: train_kjv.py's output model (save_pretrained); HELDOUT.txt: prepare_kjv.py's heldout.txt.
# INFER (default build/bin/infer) picks the binary; OUT_DIR (default /tmp/kjv-quant) receives the GGUF files.
set -euo pipefail
if [[ $# -lt 2 ]]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
ckpt=$1 text=$2
out=${3:-/tmp/kjv-quant}
shift $(($# < 3 ? $# : 3))
[[ ${1:-} == -- ]] && shift
infer=${INFER:-build/bin/infer}
types=(Q8_0 Q6_K Q5_K_M Q4_K_M Q4_0 Q3_K_M Q2_K)

mkdir -p "$out"
"$infer" convert "$ckpt" "$out/kjv-f16.gguf" --type F16
models=(-m "$out/kjv-f16.gguf")
for t in "${types[@]}"; do
    f="$out/kjv-${t,,}.gguf"
    "$infer" quantize "$out/kjv-f16.gguf" "$f" "$t"
    models+=(-m "$f")
done
echo "# $(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores" >&2
"$infer" bench "${models[@]}" --perplexity "$text" --ctx 256 -p 128 -n 32 -r 3 "$@"
