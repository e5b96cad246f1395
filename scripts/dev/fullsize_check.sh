#!/usr/bin/env bash
# Dev-only: the full-size check of issue 5. A Mistral-7B-shaped Q4_K_M model from `infer synth`, a 20-token
# prompt, 16 greedy tokens from kinfer (`infer run --temp 0`) and from llama.cpp (node-llama-cpp,
# fullsize_llama.mjs); the tokens must be identical. Also checks kinfer's logits along llama.cpp's tokens
# (`infer logits --all`: every one of the 16 is kinfer's argmax too). Prints load time and speeds of both.
# Needs a built infer, node-llama-cpp in $LLREF (default /tmp/llref), ~5 GB in /tmp.
# Usage: scripts/dev/fullsize_check.sh [MODEL]   (default /tmp/m7b-q4km.gguf, made if missing)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
infer=${INFER:-$repo/build/bin/infer}
llref=${LLREF:-/tmp/llref}
threads=${THREADS:-2}
model=${1:-/tmp/m7b-q4km.gguf}
n_gen=16
work=$(mktemp -d /tmp/kinfer-fullsize.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ ! -f "$model" ]; then
    "$infer" synth --preset mistral-7b --type Q4_K_M --vocab "$repo/../shared/vocab/mistral-v0.3-vocab.gguf" --quiet -o "$model"
fi

# 20 tokens: BOS + a fixed text of 19 tokens, tokenized by llama.cpp for llama.cpp and by kinfer for
# `infer run` (kinfer's tokenizer is tested against llama.cpp's elsewhere; `infer run --verbose` prints the
# count, and `infer logits` below takes llama.cpp's ids themselves).
text="The old lighthouse keeper climbed the spiral stairs every evening, counting the steps and"
cat > "$work/tok.mjs" <<'JS'
import path from "node:path";
import {createRequire} from "node:module";
import {pathToFileURL} from "node:url";
const require = createRequire(path.join(process.cwd(), "noop.js"));
const {getLlama} = await import(pathToFileURL(require.resolve("node-llama-cpp")).href);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: process.argv[2], vocabOnly: true});
const mode = process.argv[3];
if (mode === "tokenize") console.log([model.tokens.bos, ...model.tokenize(process.argv[4])].join(","));
else console.log(model.detokenize(process.argv[4].split(",").map(Number)));
JS
cp "$work/tok.mjs" "$llref/.kinfer-fullsize-tok.mjs"
tokens=$(cd "$llref" && node .kinfer-fullsize-tok.mjs "$model" tokenize "$text")
echo "prompt ($(echo "$tokens" | tr ',' '\n' | wc -l) tokens): $tokens"

echo "== llama.cpp (node-llama-cpp, $threads threads)"
llama_json=$(cd "$llref" && node "$repo/scripts/dev/fullsize_llama.mjs" "$model" $n_gen "$threads" "$tokens")
echo "$llama_json"
llama_tokens=$(echo "$llama_json" | /usr/bin/python3 -c 'import json,sys; print(",".join(map(str, json.load(sys.stdin)["tokens"])))')
llama_text=$(cd "$llref" && node .kinfer-fullsize-tok.mjs "$model" detokenize "$llama_tokens")

echo "== kinfer (infer run, $threads threads)"
# --raw: no chat template, BOS + the text.
kinfer_text=$("$infer" run -m "$model" --raw -p "$text" --temp 0 -n $n_gen -t "$threads" --ctx 256 \
    --verbose 2> "$work/run.err")
cat "$work/run.err"

# kinfer's generated ids: its text re-tokenized after the prompt text, then confirmed by `infer logits`
# (each must be kinfer's argmax after the ones before it).
n_prompt=$(echo "$tokens" | tr ',' '\n' | wc -l)
kinfer_tokens=$(cd "$llref" && node .kinfer-fullsize-tok.mjs "$model" tokenize "$text$kinfer_text" |
    cut -d, -f$((n_prompt + 1))-$((n_prompt + n_gen)))
rm -f "$llref/.kinfer-fullsize-tok.mjs"

argmax_check() {  # LOGITS.f32 N_PROMPT GEN_IDS LABEL: prints kinfer's argmax per step against GEN_IDS
    /usr/bin/python3 - "$@" <<'PY'
import sys, numpy as np
logits = np.fromfile(sys.argv[1], dtype="<f4")
n_prompt = int(sys.argv[2]); gen = [int(t) for t in sys.argv[3].split(",")]; label = sys.argv[4]
rows = logits.reshape(n_prompt + len(gen) - 1, -1)
picks = [int(np.argmax(rows[n_prompt - 1 + i])) for i in range(len(gen))]
same = sum(p == g for p, g in zip(picks, gen))
print(f"kinfer argmax along {label}: {','.join(map(str, picks))}: {same}/{len(gen)} agree")
for i, (p, g) in enumerate(zip(picks, gen)):
    r = rows[n_prompt - 1 + i]
    if p != g:
        print(f"  step {i}: kinfer's logit for its pick {p}: {r[p]:.4f}, for {g}: {r[g]:.4f} "
              f"(gap {r[p] - r[g]:.4f} = {(r[p] - r[g]) / (r.max() - r.min()):.2e} of the spread)")
sys.exit(0 if same == len(gen) else 1)
PY
}
echo "== kinfer logits along llama.cpp's tokens (teacher-forced)"
"$infer" logits -m "$model" --tokens "$tokens,$(echo "$llama_tokens" | cut -d, -f1-$((n_gen - 1)))" --all \
    -t "$threads" --quiet -o "$work/llama_path.f32"
argmax_check "$work/llama_path.f32" "$n_prompt" "$llama_tokens" "llama.cpp's path" && llama_path_ok=1 || llama_path_ok=0
echo "== kinfer logits along its own tokens"
"$infer" logits -m "$model" --tokens "$tokens,$(echo "$kinfer_tokens" | cut -d, -f1-$((n_gen - 1)))" --all \
    -t "$threads" --quiet -o "$work/kinfer_path.f32"
argmax_check "$work/kinfer_path.f32" "$n_prompt" "$kinfer_tokens" "its own path (re-tokenized text)" || true

echo "llama.cpp tokens: $llama_tokens"
echo "kinfer tokens:    $kinfer_tokens"
echo "llama.cpp text: $llama_text"
echo "kinfer text:    $kinfer_text"
# Where they differ, the float64 reference says which is exact (slow: minutes for a 7B model). PROBE is the
# compiled reference_logits.cpp (see its header).
if [ -n "${PROBE:-}" ]; then
    echo "== float64 reference along kinfer's tokens"
    "$PROBE" "$model" "$tokens,$kinfer_tokens" $((n_prompt - 1)) || true
fi
if [ "$llama_tokens" == "$kinfer_tokens" ]; then echo "SAME $n_gen greedy tokens"; else echo "DIFFERENT greedy tokens"; exit 1; fi
