#!/usr/bin/env bash
# Dev-only: regenerates tests/fixtures/golden/<type>.txt. For each weight type it
#   1. builds a small synthetic llama model with `infer synth` (the arguments are recorded in the fixture, and
#      golden_test rebuilds the same model from them: synth is deterministic),
#   2. runs llama.cpp on it through node-llama-cpp (make_golden_logits.mjs): logits at every position of
#      prompts of 1, 7 and 112 tokens and of a 32-token greedy continuation,
#   3. measures llama.cpp against a float64 numpy reference and writes the fixture (golden_reference.py).
# Needs: a built `infer` (build/bin/infer), node-llama-cpp in $LLREF (default /tmp/llref), /usr/bin/python3 with
# numpy, gguf-py in $GGUF_PY (default /tmp/llama.cpp/gguf-py). See /work/notes/reference-tools.md.
# Usage: scripts/dev/make_golden_logits.sh [TYPE...]    (default: all types below)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
infer=${INFER:-$repo/build/bin/infer}
llref=${LLREF:-/tmp/llref}
gguf_py=${GGUF_PY:-/tmp/llama.cpp/gguf-py}
work=${WORK:-/tmp/kinfer-golden-work}
out=$repo/tests/fixtures/golden

vocab=${VOCAB:-$repo/../shared/vocab/mistral-v0.3-vocab.gguf}

# The model: synth's tiny preset (4 layers, n_embd 256, n_ff 768: multiples of 256, so k-quants apply) with
# 8 heads on 2 KV heads (GQA groups of 4) and a fixed seed. The fixture records these arguments; the test
# adds --vocab (the mistral v0.3 tokenizer, found through KINFER_DATA_DIR) and -o.
synth_common="--preset tiny --n-head 8 --n-head-kv 2 --seed 1234"
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(F32 F16 Q8_0 Q6_K Q5_K_M Q4_K_M Q3_K_M Q2_K)

mkdir -p "$work" "$out"
for type in "${types[@]}"; do
    args="$synth_common --type $type"
    model=$work/$type.gguf
    echo "== $type: infer synth $args"
    "$infer" synth $args --vocab "$vocab" --quiet -o "$model"
    rm -rf "$work/$type.llama"
    (cd "$llref" && node "$repo/scripts/dev/make_golden_logits.mjs" "$model" "$work/$type.llama")
    PYTHONPATH=$gguf_py /usr/bin/python3 "$repo/scripts/dev/golden_reference.py" --model "$model" \
        --llama-dir "$work/$type.llama" --synth "$args" --type "$type" --out "$out/$type.txt"
done
du -ch "$out"/*.txt | tail -1
