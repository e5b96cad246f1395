// Dev-only: runs llama.cpp (through node-llama-cpp) on one GGUF model and writes its raw logits at every
// position of a few fixed prompts plus a 32-token greedy continuation of each. golden_reference.py turns this
// into a fixture. Run from a folder where `node-llama-cpp` resolves (see /work/notes/reference-tools.md):
//   cd /tmp/llref && node /path/to/make_golden_logits.mjs MODEL.gguf OUT_DIR
// Writes OUT_DIR/llama.json (prompts, greedy tokens, versions) and OUT_DIR/<prompt>.f32: float32 little-endian,
// n_vocab per position, for positions 0 .. n_prompt + n_gen - 2 of prompt + greedy (the last greedy token is
// chosen but never fed back).
import fs from "node:fs";
import path from "node:path";
import {createRequire} from "node:module";
import {pathToFileURL} from "node:url";

// node-llama-cpp is resolved from the current directory (it lives outside the repo, e.g. in /tmp/llref).
const require = createRequire(path.join(process.cwd(), "noop.js"));
const {getLlama} = await import(pathToFileURL(require.resolve("node-llama-cpp")).href);

const [modelPath, outDir] = process.argv.slice(2);
if (!modelPath || !outDir) {
    console.error("usage: node make_golden_logits.mjs MODEL.gguf OUT_DIR");
    process.exit(2);
}
const N_GEN = 32;
const THREADS = 2;
const BATCH = 512;

// Prompts: BOS alone, then BOS + the first tokens of a fixed English text (the vocabulary is mistral v0.3's;
// the model is random, so what matters is that the ids are real and varied). Tokenized here, stored in the
// fixture, so the test never tokenizes.
const TEXT =
    "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined " +
    "movable metal type, oil-based ink and a wooden screw press into a system that could produce books " +
    "quickly and cheaply. Within fifty years, presses were operating in more than two hundred cities across " +
    "Europe, and millions of volumes had been printed. Scholars argue about the consequences: literacy rose, " +
    "scientific results spread faster, vernacular languages gained prestige, and religious disputes reached " +
    "audiences that had never read a theological tract before. Some numbers: 1455, 3.14159, 42%, and x = y + 1.";
const PROMPT_LENGTHS = {p1: 1, p7: 7, p112: 112};

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});

const context = await model.createContext({contextSize: 512, batchSize: BATCH, threads: THREADS, sequences: 1});
const seq = context.getSequence();

const bos = model.tokens.bos;
const textTokens = model.tokenize(TEXT);
const withLogits = (t) => [t, {generateNext: {logits: true}}];

function toArray(map, n) {
    const a = new Float32Array(n).fill(NaN);
    for (const [tok, v] of map) a[tok] = v;
    for (let i = 0; i < n; ++i) if (Number.isNaN(a[i])) throw new Error(`logit ${i} missing`);
    return a;
}
function argmax(a) {
    let best = 0;
    for (let i = 1; i < a.length; ++i) if (a[i] > a[best]) best = i;
    return best;
}

fs.mkdirSync(outDir, {recursive: true});
const prompts = [];
let vocabSize = null;
for (const [name, len] of Object.entries(PROMPT_LENGTHS)) {
    const tokens = [bos, ...textTokens].slice(0, len);
    if (tokens.length !== len) throw new Error(`text too short for ${name}`);
    await seq.clearHistory();
    const rows = [];
    const res = await seq.controlledEvaluate(tokens.map(withLogits));
    for (let i = 0; i < tokens.length; ++i) {
        const map = res[i]?.next?.logits;
        if (!map) throw new Error(`no logits at ${name}[${i}]`);
        vocabSize ??= map.size;
        rows.push(toArray(map, vocabSize));
    }
    const greedy = [argmax(rows.at(-1))];
    while (greedy.length < N_GEN) {
        const r = await seq.controlledEvaluate([withLogits(greedy.at(-1))]);
        rows.push(toArray(r[0].next.logits, vocabSize));
        greedy.push(argmax(rows.at(-1)));
    }
    const file = `${name}.f32`;
    const buf = Buffer.alloc(rows.length * vocabSize * 4);
    rows.forEach((row, i) => Buffer.from(row.buffer).copy(buf, i * vocabSize * 4));
    fs.writeFileSync(path.join(outDir, file), buf);
    prompts.push({name, tokens, greedy, logits_file: file});
    console.log(`${name}: ${tokens.length} prompt tokens, greedy ${greedy.join(",")}`);
}

const pkgDir = path.join(path.dirname(require.resolve("node-llama-cpp")), "..");
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
const info = JSON.parse(fs.readFileSync(path.join(pkgDir, "llama", "llama.cpp.info.json"), "utf8"));
fs.writeFileSync(
    path.join(outDir, "llama.json"),
    JSON.stringify(
        {n_vocab: vocabSize, node_llama_cpp: pkg.version, llama_cpp: info.tag, threads: THREADS, batch_size: BATCH,
         prompts},
        null, 1));
await context.dispose();
await model.dispose();
