#!/usr/bin/env bash
# Dev-only: checks that a model written by `infer synth` loads and runs in llama.cpp, through node-llama-cpp
# (prebuilt llama.cpp in /tmp/llref) and, where built, llama.cpp's own llama-simple: a short greedy generation.
#
# usage: scripts/dev/check_synth_llama_cpp.sh [MODEL.gguf [synth flags...]]
#   MODEL defaults to /tmp/m7b-q4km.gguf; if it does not exist it is written first with
#   `infer synth --preset mistral-7b --type Q4_K_M` (or the synth flags given), and the time that took is shown.
# env: INFER (default build/bin/infer), LLREF (default /tmp/llref), LLAMA_SIMPLE
#      (default /tmp/llama.cpp/build/bin/llama-simple), PROMPT, N_PREDICT (default 16)
set -euo pipefail
cd "$(dirname "$0")/../.."
INFER=${INFER:-build/bin/infer}
LLREF=${LLREF:-/tmp/llref}
LLAMA_SIMPLE=${LLAMA_SIMPLE:-/tmp/llama.cpp/build/bin/llama-simple}
PROMPT=${PROMPT:-"The capital of France is"}
N_PREDICT=${N_PREDICT:-16}
model=${1:-/tmp/m7b-q4km.gguf}
shift || true
flags=("$@")
[[ ${#flags[@]} -eq 0 ]] && flags=(--preset mistral-7b --type Q4_K_M)

if [[ ! -f "$model" ]]; then
  echo "== writing $model: infer synth ${flags[*]}"
  start=$(date +%s.%N)
  "$INFER" synth "${flags[@]}" -o "$model" --quiet
  echo "synth took $(echo "$(date +%s.%N) - $start" | bc) s"
fi
ls -l "$model"
"$INFER" inspect "$model" | tail -n 12

echo "== node-llama-cpp: load and greedy generation"
script="$LLREF/kinfer_check_synth.mjs"
cat >"$script" <<'EOF'
import {getLlama} from "node-llama-cpp";
const [modelPath, prompt, nPredict] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
let t = performance.now();
const model = await llama.loadModel({modelPath});
console.log(`loaded in ${((performance.now() - t) / 1000).toFixed(1)} s: ${model.fileInfo.tensorInfo.length} tensors, ` +
            `train context ${model.trainContextSize}, vocab ${model.tokens.bos !== undefined ? "with BOS" : "no BOS"}, ` +
            `size ${(model.size / 1e9).toFixed(2)} GB`);
const context = await model.createContext({contextSize: 256});
const seq = context.getSequence();
const input = model.tokenize(prompt);
const out = [];
t = performance.now();
for await (const tok of seq.evaluate(input, {temperature: 0})) {
    out.push(tok);
    if (out.length >= Number(nPredict)) break;
}
const secs = (performance.now() - t) / 1000;
console.log(`prompt ${JSON.stringify(prompt)} -> tokens ${JSON.stringify(input)}`);
console.log(`greedy ${out.length} tokens in ${secs.toFixed(2)} s: ${JSON.stringify(out)}`);
console.log(`text: ${JSON.stringify(model.detokenize(out))}`);
await context.dispose();
await model.dispose();
EOF
(cd "$LLREF" && node "$script" "$(realpath "$model")" "$PROMPT" "$N_PREDICT")

if [[ -x "$LLAMA_SIMPLE" ]]; then
  echo "== llama-simple (llama.cpp CPU build)"
  "$LLAMA_SIMPLE" -m "$model" -n "$N_PREDICT" "$PROMPT" 2>/dev/null
  echo
fi
