// Dev-only: the llama.cpp side of the full-size check (issue 5). Loads a model with node-llama-cpp (CPU),
// feeds a fixed token prompt, generates greedily and prints the tokens with load time and speeds.
//   cd /tmp/llref && node /path/to/fullsize_llama.mjs MODEL.gguf N_GEN THREADS TOKEN,TOKEN,...
import fs from "node:fs";
import path from "node:path";
import {createRequire} from "node:module";
import {pathToFileURL} from "node:url";

const require = createRequire(path.join(process.cwd(), "noop.js"));
const {getLlama} = await import(pathToFileURL(require.resolve("node-llama-cpp")).href);

const [modelPath, nGenArg, threadsArg, tokensArg] = process.argv.slice(2);
const nGen = Number(nGenArg), threads = Number(threadsArg);
const prompt = tokensArg.split(",").map(Number);

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
let t0 = performance.now();
const model = await llama.loadModel({modelPath, useMmap: true});
const context = await model.createContext({contextSize: 256, batchSize: 256, threads, sequences: 1});
const loadS = (performance.now() - t0) / 1000;
const seq = context.getSequence();

// Greedy: node-llama-cpp's sampler with temperature 0 (its default) picks the argmax.
const step = async (tokens) => {
    const res = await seq.controlledEvaluate(tokens.map((t, i) => i === tokens.length - 1
        ? [t, {generateNext: {token: true, options: {temperature: 0}}}] : t));
    return res[tokens.length - 1].next.token;
};
t0 = performance.now();
const out = [await step(prompt)];
const prefillS = (performance.now() - t0) / 1000;
t0 = performance.now();
while (out.length < nGen) out.push(await step([out.at(-1)]));
const decodeS = (performance.now() - t0) / 1000;
console.log(JSON.stringify({
    tokens: out, load_s: +loadS.toFixed(3), prefill_s: +prefillS.toFixed(3),
    prefill_tok_s: +(prompt.length / prefillS).toFixed(2), decode_tok_s: +((nGen - 1) / decodeS).toFixed(3),
    threads}));
await context.dispose();
await model.dispose();
