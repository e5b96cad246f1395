// Dev check (run by check_writer_llamacpp.sh from a copy inside /tmp/llref so that node-llama-cpp
// resolves): loads an original vocabulary GGUF and kinfer-written copies of its metadata in llama.cpp
// (vocabOnly) and requires identical token ids for a set of strings, plain and with special-token parsing,
// and identical special-token ids.
//   node check_writer_llamacpp.mjs ORIGINAL.gguf COPY.gguf...
import {getLlama} from "node-llama-cpp";

const [original, ...copies] = process.argv.slice(2);
if (!original || copies.length === 0) {
    console.error("usage: node check_writer_llamacpp.mjs ORIGINAL.gguf COPY.gguf...");
    process.exit(2);
}
const texts = [
    "Hello world, 你好",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces, trailing  ",
    "[INST] What is 2+2? [/INST]",
    "<s>special</s> tokens\n\ttabs and newlines\n",
    "émojis 😀🚀 and ümlauts; code: `for (int i = 0; i < n; ++i) {}`",
    "",
];

// (node-llama-cpp logs "missing tensor 'token_embd.weight'" once per load, for the original file too: harmless.)
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const a = await llama.loadModel({modelPath: original, vocabOnly: true});
let failures = 0;
for (const copy of copies) {
    console.log(`-- ${copy}`);
    const b = await llama.loadModel({modelPath: copy, vocabOnly: true});
    for (const text of texts) {
        for (const special of [false, true]) {
            const ta = Array.from(a.tokenize(text, special));
            const tb = Array.from(b.tokenize(text, special));
            const same = JSON.stringify(ta) === JSON.stringify(tb);
            if (!same) failures++;
            console.log(`${same ? "same" : "DIFFERENT"} special=${special} ${JSON.stringify(text)} -> ` +
                        JSON.stringify(tb) + (same ? "" : ` (original ${JSON.stringify(ta)})`));
        }
    }
    for (const name of ["bos", "eos", "nl"]) {
        const ia = a.tokens[name], ib = b.tokens[name];
        if (ia !== ib) failures++;
        console.log(`${ia === ib ? "same" : "DIFFERENT"} ${name} token: ${ib} (original ${ia})`);
    }
    const roundTrip = b.detokenize(b.tokenize(texts[1]));
    if (roundTrip !== texts[1]) failures++;
    console.log(`detokenize(tokenize(text)) on the copy: ${JSON.stringify(roundTrip)}`);
    await b.dispose();
}
await a.dispose();
console.log(failures === 0 ? "PASS: llama.cpp tokenizes identically with every copy" : `FAIL: ${failures} differences`);
process.exit(failures === 0 ? 0 : 1);
