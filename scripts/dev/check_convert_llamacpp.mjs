// Dev-only (never run by the build or CI): a file written by `infer convert` loads in llama.cpp (through
// node-llama-cpp) and gives transformers' tokens and logits there too; and llama.cpp's perplexity rule,
// computed from llama.cpp's logits, gives the number `infer perplexity` prints.
//   infer convert tests/fixtures/hf_tiny /tmp/tiny.gguf --type F32
//   cd /tmp/llref && node /path/to/check_convert_llamacpp.mjs /tmp/tiny.gguf tests/fixtures/hf_tiny [TEXT CTX]
// Prints, per fixture prompt, whether the token ids match and max |llama.cpp - transformers| / logit spread;
// with TEXT and CTX, "llama.cpp PPL = X" over all chunks (compare: infer perplexity -m ... -f TEXT --ctx CTX).
import fs from "node:fs";
import path from "node:path";
import {createRequire} from "node:module";
import {pathToFileURL} from "node:url";

const require = createRequire(path.join(process.cwd(), "noop.js"));
const {getLlama} = await import(pathToFileURL(require.resolve("node-llama-cpp")).href);

const [modelPath, fixtureDir, textPath, ctxArg] = process.argv.slice(2);
if (!modelPath || !fixtureDir) {
    console.error("usage: node check_convert_llamacpp.mjs MODEL.gguf FIXTURE_DIR [TEXT CTX]");
    process.exit(2);
}
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: 256, batchSize: 256, threads: 2, sequences: 1});
const seq = context.getSequence();
const withLogits = (t) => [t, {generateNext: {logits: true}}];

async function allLogits(tokens) {
    await seq.clearHistory();
    const res = await seq.controlledEvaluate(tokens.map(withLogits));
    return res.map((r) => {
        const a = new Float32Array(r.next.logits.size);
        for (const [tok, v] of r.next.logits) a[tok] = v;
        return a;
    });
}

const expected = JSON.parse(fs.readFileSync(path.join(fixtureDir, "expected.json"), "utf8"));
const blob = fs.readFileSync(path.join(fixtureDir, "expected_logits.f32"));
const ref = new Float32Array(blob.buffer, blob.byteOffset, blob.byteLength / 4);
const V = expected.vocab_size;
let offset = 0;
for (const p of expected.prompts) {
    const ids = [model.tokens.bos, ...model.tokenize(p.text)];
    const same = JSON.stringify(ids) === JSON.stringify(p.ids);
    const rows = await allLogits(p.ids);
    let lo = Infinity, hi = -Infinity, maxDiff = 0;
    rows.forEach((row, i) => {
        for (let k = 0; k < V; ++k) {
            const want = ref[offset + i * V + k];
            lo = Math.min(lo, want);
            hi = Math.max(hi, want);
            maxDiff = Math.max(maxDiff, Math.abs(row[k] - want));
        }
    });
    offset += p.ids.length * V;
    console.log(`${JSON.stringify(p.text)}: tokens ${same ? "match" : "DIFFER " + JSON.stringify(ids)}, ` +
                `max |llama.cpp - transformers| / spread = ${(maxDiff / (hi - lo)).toExponential(2)}`);
}

if (textPath) {
    // llama-perplexity's rule: tokens of the whole text with BOS, chunks of ctx, first token of each chunk
    // replaced by BOS, score positions ctx/2 .. ctx-2 predicting the next token.
    const ctx = Number(ctxArg ?? 128);
    const tokens = [model.tokens.bos, ...model.tokenize(fs.readFileSync(textPath, "utf8"))];
    const nChunk = Math.floor(tokens.length / ctx);
    let nll = 0, count = 0;
    for (let c = 0; c < nChunk; ++c) {
        const chunk = tokens.slice(c * ctx, (c + 1) * ctx);
        chunk[0] = model.tokens.bos;
        const rows = await allLogits(chunk);
        for (let j = ctx / 2; j < ctx - 1; ++j) {
            const row = rows[j];
            let max = -Infinity;
            for (const v of row) max = Math.max(max, v);
            let sum = 0;
            for (const v of row) sum += Math.exp(v - max);
            nll += -(row[chunk[j + 1]] - max - Math.log(sum));
            ++count;
        }
    }
    console.log(`llama.cpp PPL = ${Math.exp(nll / count).toFixed(4)} over ${nChunk} chunks of ${ctx} (${count} tokens)`);
}
await model.dispose();
