// `infer serve` end to end, on loopback, with clients nobody here wrote: the official `openai` package,
// curl for the raw Server-Sent Events, and the chat page in headless Chromium (playwright-core). Also
// 16 concurrent greedy streams = each alone, hostile and malformed requests mixed with good ones, slow
// clients, 20 clients disconnecting mid-stream, clients dropping non-stream requests, the queue limit (503) and
// the API key (401).
//
//   node serve_test.mjs --infer build/bin/infer --vocab data/vocab/mistral-v0.3-vocab.gguf
//        [--hostile 500] [--only NAME] [--no-browser]
// Exit status 0 when every check passed. Each server must also exit cleanly on SIGTERM (status 0: under
// ASan that includes no leak report).
import { spawn, spawnSync } from "node:child_process";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const INFER = arg("--infer");
const VOCAB = arg("--vocab");
const HOSTILE = Number(arg("--hostile", "60"));
const ONLY = arg("--only", "");
const BROWSER = !args.includes("--no-browser");
if (!INFER || !VOCAB) {
  console.error("usage: node serve_test.mjs --infer PATH --vocab PATH [--hostile N] [--only NAME]");
  process.exit(2);
}
// The clients are installed by `npm ci --prefix tests/server` (scripts/test.sh does it).
let OpenAI;
try {
  OpenAI = (await import("openai")).default;
  await import("playwright-core");
} catch (e) {
  console.error("serve_test: the npm packages are missing: run `npm ci --prefix tests/server` (" + e.message + ")");
  process.exit(1);
}
const work = fs.mkdtempSync(path.join(os.tmpdir(), "kinfer-serve-"));
const MODEL = path.join(work, "tiny.gguf");
const CTX = 512;

// ---- helpers -------------------------------------------------------------------------------------------

const servers = [];
async function startServer(extra = []) {
  const proc = spawn(INFER, ["serve", "-m", MODEL, "--port", "0", "--ctx", String(CTX), "-t", "1", ...extra], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start:\n" + stderr)), 60000);
    proc.stderr.on("data", (d) => {
      stderr += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on("exit", (code) => reject(new Error(`server exited (${code}):\n${stderr}`)));
  });
  const server = { proc, port, base: `http://127.0.0.1:${port}`, stderr: () => stderr, exited: false };
  proc.on("exit", () => { server.exited = true; });
  servers.push(server);
  return server;
}

async function stopServer(server) {
  assert.equal(server.exited, false, "the server restarted or died:\n" + server.stderr());
  const code = await new Promise((resolve) => {
    server.proc.on("exit", (c, sig) => resolve(c ?? sig));
    server.proc.kill("SIGTERM");
  });
  assert.equal(code, 0, "the server did not exit cleanly on SIGTERM:\n" + server.stderr().slice(-4000));
}

const client = (server, options = {}) =>
  new OpenAI({ baseURL: server.base + "/v1", apiKey: "none", maxRetries: 0, timeout: 120000, ...options });

async function json(server, method, route, body, headers = {}) {
  const res = await fetch(server.base + route, {
    method, headers: { "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" || body instanceof Buffer ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

// Raw bytes over a socket (for what fetch will not send); resolves with the status of the first response.
function raw(server, bytes, { closeAfterWrite = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(server.port, "127.0.0.1");
    let data = "";
    sock.on("data", (d) => { data += d.toString("latin1"); });
    sock.on("error", () => {});
    sock.on("close", () => {
      const m = /^HTTP\/1\.1 (\d+)/m.exec(data.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ""));
      resolve({ status: m ? Number(m[1]) : 0, data });
    });
    sock.write(bytes, () => { if (closeAfterWrite) sock.end(); });
    setTimeout(() => sock.destroy(), 20000).unref();
  });
}

function checkErrorShape(r, status) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text.slice(0, 300)}`);
  assert.ok(r.body && r.body.error, "OpenAI error shape: " + r.text.slice(0, 300));
  assert.equal(typeof r.body.error.message, "string");
  assert.equal(typeof r.body.error.type, "string");
  assert.ok("code" in r.body.error);
}

async function streamChat(openai, request) {
  const stream = await openai.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta?.content) text += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
  return { text, finish, usage, chunks };
}

async function waitIdle(server, ms = 15000) {
  const t0 = Date.now();
  for (;;) {
    const h = await json(server, "GET", "/health");
    if (h.body.slots_busy === 0 && h.body.queued === 0) return h.body;
    if (Date.now() - t0 > ms) throw new Error("slots did not come back: " + h.text);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function metric(server, name, headers = {}) {
  const r = await fetch(server.base + "/metrics", { headers });
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(await r.text());
  return m ? Number(m[1]) : NaN;
}

const greedy = (content, max_tokens = 12) => ({ model: "tiny", messages: [{ role: "user", content }], max_tokens, temperature: 0 });

let failures = 0;
async function section(name, fn) {
  if (ONLY && !name.includes(ONLY)) return;
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

// ---- the model and the main server ---------------------------------------------------------------------

// F16 weights: one kernel per weight type whatever a step's size. The quantized types take int8-activation
// prefill kernels for steps of 16+ tokens, so how much of a prompt a slot's cache holds, or whether it is
// evaluated with others, can move a random model's logits across its many near-ties (the engine's
// numerics, not the scheduler's: the scheduler never mixes decode tokens with prompts in a step).
const synth = spawnSync(INFER, ["synth", "-o", MODEL, "--preset", "tiny", "--type", "F16", "--vocab", VOCAB, "--quiet"],
                        { encoding: "utf8" });
assert.equal(synth.status, 0, "infer synth failed: " + synth.stderr);
const main = await startServer(["--parallel", "8", "--queue", "32", "--timeout", "3"]);
const openai = client(main);

await section("openai: models, chat (non-stream and stream), usage", async () => {
  const models = await openai.models.list();
  assert.equal(models.data.length, 1);
  assert.equal(models.data[0].id, "tiny.gguf");

  const r = await openai.chat.completions.create(greedy("Hello there", 10));
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(r.choices[0].finish_reason, "length");
  assert.equal(r.usage.completion_tokens, 10);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 10);
  assert.ok(r.choices[0].message.content.length > 0);

  const s = await streamChat(openai, greedy("Hello there", 10));
  assert.equal(s.text, r.choices[0].message.content, "stream and non-stream give the same text");
  assert.equal(s.finish, "length");
  assert.deepEqual({ ...s.usage, prompt_tokens_details: undefined }, { ...r.usage, prompt_tokens_details: undefined });

  // A second turn of the conversation reuses the cache of the first.
  const turn2 = await openai.chat.completions.create({
    ...greedy("x", 4),
    messages: [{ role: "user", content: "Hello there" }, { role: "assistant", content: r.choices[0].message.content },
               { role: "user", content: "Go on" }],
  });
  assert.ok(turn2.usage.prompt_tokens_details.cached_tokens > 0, JSON.stringify(turn2.usage));

  // Sampling with a seed is reproducible.
  const seeded = { ...greedy("Pick a word", 8), temperature: 1.0, top_p: 0.9, seed: 1234, presence_penalty: 0.5, frequency_penalty: 0.5 };
  const a = await openai.chat.completions.create(seeded);
  const b = await openai.chat.completions.create(seeded);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);

  // Options the server does not implement: refused by name when turned on, accepted in their "off" form
  // (what clients send by default), which answers as if they were absent.
  for (const [extra, name] of [[{ response_format: { type: "json_schema", json_schema: { name: "x", schema: {} } } }, "response_format"],
                               [{ tools: [{ type: "function", function: { name: "f", parameters: {} } }] }, "tools"],
                               [{ tool_choice: "required" }, "tool_choice"]])
    await assert.rejects(openai.chat.completions.create({ ...greedy("Hi", 4), ...extra }),
                         (e) => e instanceof OpenAI.BadRequestError && e.status === 400 &&
                                e.message.includes(`'${name}'`) && e.code === "unsupported_parameter", name);
  const plain = await openai.chat.completions.create(greedy("Hi", 6));
  const off = await openai.chat.completions.create({ ...greedy("Hi", 6), logprobs: false, top_logprobs: 0,
    response_format: { type: "text" }, tools: [], tool_choice: "none", logit_bias: {} });
  assert.equal(off.choices[0].message.content, plain.choices[0].message.content);

  // logit_bias: +100 makes a token (one greedy decoding would not pick) the pick at every step, so the
  // request took the full logits; the sampler's own tests (tests/sampler_test.cpp, api_test.cpp) cover bans.
  const word = (await json(main, "POST", "/tokenize", { content: " river" })).body.tokens.at(-1);
  const forced = await openai.chat.completions.create({ ...greedy("Hi", 5), logit_bias: { [word]: 100 } });
  const want = (await json(main, "POST", "/detokenize", { tokens: [word, word, word, word, word] })).body.content;
  assert.equal(forced.choices[0].message.content, want.trimStart());
  assert.notEqual(forced.choices[0].message.content, (await openai.chat.completions.create(greedy("Hi", 5))).choices[0].message.content);
  for (const bias of [{ "-1": 5 }, { "99999999": 5 }, { "x": 5 }, { "5": 101 }, { "5": "high" }])
    await assert.rejects(openai.chat.completions.create({ ...greedy("Hi", 2), logit_bias: bias }),
                         (e) => e instanceof OpenAI.BadRequestError && e.message.includes("'logit_bias'"));
});

await section("openai: completions, stop strings, usage against /tokenize", async () => {
  const prompt = "Once upon a time";
  const full = await openai.completions.create({ model: "tiny", prompt, max_tokens: 16, temperature: 0 });
  assert.equal(full.object, "text_completion");
  assert.equal(full.choices[0].finish_reason, "length");
  assert.equal(full.usage.completion_tokens, 16);
  const tok = await json(main, "POST", "/tokenize", { content: prompt, add_special: true });
  assert.equal(full.usage.prompt_tokens, tok.body.tokens.length);
  const text = full.choices[0].text;
  assert.ok(text.length > 6, text);

  let stream = await openai.completions.create({ model: "tiny", prompt, max_tokens: 16, temperature: 0, stream: true });
  let streamed = "";
  for await (const c of stream) streamed += c.choices[0]?.text ?? "";
  assert.equal(streamed, text);

  // A stop string from the middle of the greedy text: the answer ends right before it.
  const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 2);
  const expected = text.slice(0, text.indexOf(stop));
  const cut = await openai.completions.create({ model: "tiny", prompt, max_tokens: 16, temperature: 0, stop: [stop, "never-produced"] });
  assert.equal(cut.choices[0].text, expected);
  assert.equal(cut.choices[0].finish_reason, "stop");
  stream = await openai.completions.create({ model: "tiny", prompt, max_tokens: 16, temperature: 0, stop, stream: true });
  streamed = "";
  let finish = null;
  for await (const c of stream) { streamed += c.choices[0]?.text ?? ""; finish = c.choices[0]?.finish_reason ?? finish; }
  assert.equal(streamed, expected);
  assert.equal(finish, "stop");

  // Errors come back as the client's error classes with the status.
  await assert.rejects(openai.completions.create({ model: "tiny", prompt, temperature: 7 }),
                       (e) => e instanceof OpenAI.BadRequestError && e.status === 400);
  for (const [extra, name] of [[{ echo: true }, "echo"], [{ best_of: 3 }, "best_of"],
                               [{ suffix: "The end." }, "suffix"]])
    await assert.rejects(openai.completions.create({ model: "tiny", prompt, max_tokens: 4, ...extra }),
                         (e) => e instanceof OpenAI.BadRequestError && e.message.includes(`'${name}'`), name);
  const off = await openai.completions.create({ model: "tiny", prompt, max_tokens: 16, temperature: 0, logprobs: null,
                                               echo: false, best_of: 1, suffix: "" });
  assert.equal(off.choices[0].text, text);
  assert.equal(off.choices[0].logprobs, null);
});

await section("openai: JSON mode (response_format json_object), streamed and not", async () => {
  // The tiny model left alone: its reply starts an object and, if it ended on its own, is one.
  const free = await openai.chat.completions.create({ ...greedy("Give me JSON", 24), response_format: { type: "json_object" } });
  const text = free.choices[0].message.content;
  assert.ok(text.startsWith("{"), JSON.stringify(text));
  if (free.choices[0].finish_reason === "stop") assert.equal(typeof JSON.parse(text), "object");
  let streamed = "";
  const stream = await openai.chat.completions.create({ ...greedy("Give me JSON", 24), response_format: { type: "json_object" }, stream: true });
  for await (const c of stream) streamed += c.choices[0]?.delta?.content ?? "";
  assert.equal(streamed, text);
  // Biases steer it through a whole object: the reply ends as the object closes (finish_reason "stop").
  const id = async (t) => (await json(main, "POST", "/tokenize", { content: "a" + t })).body.tokens.at(-1);
  const bias = { [await id("{")]: 50, [await id('"')]: 100, [await id(":")]: 90, [await id("}")]: 80 };
  const steered = await openai.chat.completions.create({ ...greedy("Give me JSON", 40), response_format: { type: "json_object" }, logit_bias: bias });
  assert.equal(steered.choices[0].message.content, '{"":""}');
  assert.equal(steered.choices[0].finish_reason, "stop");
  assert.deepEqual(JSON.parse(steered.choices[0].message.content), { "": "" });
  const comp = await openai.completions.create({ model: "tiny", prompt: "Once upon a time", max_tokens: 40, temperature: 0,
                                                 response_format: { type: "json_object" }, logit_bias: bias });
  assert.equal(comp.choices[0].text, '{"":""}');
  assert.equal(comp.choices[0].finish_reason, "stop");
});

await section("openai: log probabilities (chat and completions, streamed and not, with a stop string)", async () => {
  // Greedy: each token is its step's most likely one, so it heads its own top_logprobs.
  const checkEntry = (e, top) => {
    assert.equal(typeof e.logprob, "number");
    assert.ok(e.logprob <= 0 && e.logprob >= -9999, JSON.stringify(e));
    assert.equal(e.top_logprobs.length, top);
    if (top > 0) {
      assert.equal(e.top_logprobs[0].logprob, e.logprob, JSON.stringify(e));
      assert.deepEqual(e.top_logprobs[0].bytes, e.bytes);
    }
    for (let k = 1; k < top; ++k) assert.ok(e.top_logprobs[k].logprob <= e.top_logprobs[k - 1].logprob);
    const total = e.top_logprobs.reduce((sum, a) => sum + Math.exp(a.logprob), 0);
    assert.ok(total <= 1 + 1e-5, "probabilities add up to more than 1: " + total);
    for (const a of [e, ...e.top_logprobs]) {
      const bytes = Buffer.from(a.bytes);
      assert.equal(a.token, bytes.toString("utf8") === a.token ? a.token : "bytes:" + [...bytes].map((b) => "\\x" + b.toString(16).padStart(2, "0")).join(""));
    }
  };
  const request = { ...greedy("Tell me about the sea", 16), logprobs: true, top_logprobs: 4 };
  const full = await openai.chat.completions.create(request);
  const content = full.choices[0].logprobs.content;
  assert.equal(content.length, full.usage.completion_tokens);
  for (const e of content) checkEntry(e, 4);
  // The tokens' bytes are the reply (whose first token loses its word-start space).
  const joined = Buffer.concat(content.map((e) => Buffer.from(e.bytes))).toString("utf8");
  assert.equal(joined.replace(/^ /, ""), full.choices[0].message.content);

  // Streamed: the same tokens and values, each chunk's tokens with the text they make.
  const stream = await openai.chat.completions.create({ ...request, stream: true });
  const streamed = [];
  let text = "";
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    const lp = c.logprobs?.content ?? [];
    if (lp.length) assert.ok(c.delta.content, "log probabilities without their text: " + JSON.stringify(chunk));
    text += c.delta?.content ?? "";
    streamed.push(...lp);
  }
  assert.equal(text, full.choices[0].message.content);
  assert.equal(streamed.length, content.length);
  streamed.forEach((e, i) => {
    assert.equal(e.token, content[i].token);
    assert.ok(Math.abs(e.logprob - content[i].logprob) <= 1e-4 * (1 + Math.abs(content[i].logprob)), `${e.logprob} ${content[i].logprob}`);
  });
  // Chat's logprobs without top_logprobs: the tokens alone.
  const bare = await openai.chat.completions.create({ ...greedy("Tell me about the sea", 4), logprobs: true });
  assert.equal(bare.choices[0].logprobs.content.length, 4);
  bare.choices[0].logprobs.content.forEach((e) => checkEntry(e, 0));
  assert.equal((await openai.chat.completions.create(greedy("Tell me about the sea", 4))).choices[0].logprobs, null);

  // Completions: the legacy shape, offsets into the text, and a stop string (tokens it cut away are gone).
  const prompt = "Once upon a time";
  const comp = await openai.completions.create({ model: "tiny", prompt, max_tokens: 16, temperature: 0, logprobs: 3 });
  const lp = comp.choices[0].logprobs, ctext = Buffer.from(comp.choices[0].text);
  assert.equal(lp.tokens.length, 16);
  assert.equal(lp.token_logprobs.length, 16);
  assert.equal(lp.top_logprobs.length, 16);
  assert.equal(lp.text_offset[0], 0);
  for (let i = 0; i < 16; ++i) {
    assert.ok(Object.keys(lp.top_logprobs[i]).length >= 1 && Object.keys(lp.top_logprobs[i]).length <= 3);
    assert.equal(Math.max(...Object.values(lp.top_logprobs[i])), lp.token_logprobs[i]);
    if (i > 0) assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1]);
    if (!lp.tokens[i].startsWith("bytes:")) {  // a whole-character token: its text at its offset
      const bytes = Buffer.from(lp.tokens[i]);
      assert.equal(ctext.subarray(lp.text_offset[i], lp.text_offset[i] + bytes.length).toString(), lp.tokens[i]);
    }
  }
  const mid = lp.text_offset.findIndex((o, i) => i >= 8 && o > 0 && lp.tokens[i].length >= 2 &&
                                       ctext.indexOf(Buffer.from(lp.tokens[i])) === o);
  assert.ok(mid > 0, "no token to stop at in " + JSON.stringify(lp.tokens));
  const cut = await openai.completions.create({ model: "tiny", prompt, max_tokens: 16, temperature: 0, logprobs: 1,
                                                stop: lp.tokens[mid] });
  assert.equal(cut.choices[0].finish_reason, "stop");
  assert.equal(cut.choices[0].text, ctext.subarray(0, lp.text_offset[mid]).toString());
  assert.deepEqual(cut.choices[0].logprobs.tokens, lp.tokens.slice(0, mid));
  const cstream = await openai.completions.create({ model: "tiny", prompt, max_tokens: 16, temperature: 0, logprobs: 3, stream: true });
  let received = 0;
  const tokens = [];
  for await (const chunk of cstream) {
    const c = chunk.choices[0];
    received += Buffer.byteLength(c?.text ?? "");
    for (const [i, o] of (c?.logprobs?.text_offset ?? []).entries()) {
      assert.ok(o < received, "a token ahead of its text");
      tokens.push(c.logprobs.tokens[i]);
    }
  }
  assert.deepEqual(tokens, lp.tokens);

  // Out of range, or top_logprobs without logprobs: 400 naming the field.
  for (const [extra, name] of [[{ logprobs: true, top_logprobs: 21 }, "top_logprobs"], [{ top_logprobs: 2 }, "top_logprobs"],
                               [{ logprobs: 1 }, "logprobs"]])
    await assert.rejects(openai.chat.completions.create({ ...greedy("Hi", 2), ...extra }),
                         (e) => e instanceof OpenAI.BadRequestError && e.message.includes(`'${name}'`), name);
  for (const bad of [-1, 21, "3", true])
    await assert.rejects(openai.completions.create({ model: "tiny", prompt, max_tokens: 2, logprobs: bad }),
                         (e) => e instanceof OpenAI.BadRequestError && e.message.includes("'logprobs'"), String(bad));
});

await section("curl: raw Server-Sent Events, UTF-8 never split; tokenize/detokenize; metrics", async () => {
  const body = JSON.stringify({ messages: [{ role: "user", content: "中文和emoji 🙂 please" }], max_tokens: 24,
                                temperature: 0, stream: true });
  const r = spawnSync("curl", ["-sN", "-D", "-", "-H", "Content-Type: application/json", "-d", body,
                               main.base + "/v1/chat/completions"], { maxBuffer: 1 << 24 });
  assert.equal(r.status, 0, "curl failed");
  const out = r.stdout;
  const split = out.indexOf("\r\n\r\n");
  const head = out.subarray(0, split).toString();
  assert.match(head, /^HTTP\/1\.1 200/);
  assert.match(head, /content-type: text\/event-stream/i);
  const events = out.subarray(split + 4).toString("latin1").split("\n\n").filter((e) => e.length);
  assert.equal(events.at(-1), "data: [DONE]");
  const fatal = new TextDecoder("utf-8", { fatal: true });
  for (const e of events.slice(0, -1)) {
    assert.match(e, /^data: \{/);
    // Each event on its own is valid UTF-8: no character is cut between two events.
    const j = JSON.parse(fatal.decode(Buffer.from(e.slice(6), "latin1")));
    assert.equal(j.object, "chat.completion.chunk");
  }
  const text = "中文和emoji 🙂 ok";
  const ids = (await json(main, "POST", "/tokenize", { content: text })).body.tokens;
  assert.ok(ids.length > 3);
  const back = (await json(main, "POST", "/detokenize", { tokens: ids })).body.content;
  assert.equal(back.trimStart(), text);
  checkErrorShape(await json(main, "POST", "/detokenize", { tokens: [1, 99999999] }), 400);
  checkErrorShape(await json(main, "POST", "/tokenize", { content: 5 }), 400);
  assert.ok((await metric(main, "kinfer_generated_tokens_total")) > 0);
  assert.equal(await metric(main, "kinfer_slots"), 8);
});

// Greedy expected texts of the good requests, each served alone.
const goodPrompts = Array.from({ length: 16 }, (_, i) =>
  `Story number ${i}: tell me about the ${["cat", "dog", "sea", "sky"][i % 4]} that lived by the old river, in a few words.`);
const alone = [];

await section("16 concurrent greedy streams each equal the same request served alone", async () => {
  for (const p of goodPrompts) alone.push((await streamChat(openai, greedy(p, 8))).text);
  const together = await Promise.all(goodPrompts.map((p) => streamChat(openai, greedy(p, 8))));
  together.forEach((t, i) => {
    assert.equal(t.finish, "length");
    assert.equal(t.text, alone[i], `stream ${i} differs`);
  });
  assert.ok(new Set(alone).size > 1, "different prompts should give different texts");
  await waitIdle(main);
});

await section(`hostile and malformed requests (${HOSTILE}) mixed with good ones`, async () => {
  if (!alone.length) for (const p of goodPrompts) alone.push((await streamChat(openai, greedy(p, 8))).text);
  const big = "a".repeat(2 << 20);
  const bad = [
    () => json(main, "POST", "/v1/chat/completions", '{"messages": [').then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", "").then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", "[]").then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { messages: "hi" }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { messages: [] }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { messages: [{ role: "wizard", content: "x" }] }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { messages: [{ role: "user", content: 5 }] }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { messages: [{ role: "user" }] }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), max_tokens: "5" }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), max_tokens: -1 }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), temperature: 5 }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), top_p: 2 }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), n: 3 }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), response_format: "json" }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), tools: { f: 1 } }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), logprobs: "yes" }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", '{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":1e400}').then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), logprobs: true, top_logprobs: -1 }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/completions", { prompt: "x", logprobs: 99999999999 }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), logit_bias: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [i, -1])) }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", '{"messages":[{"role":"user","content":"x"}],"logit_bias":{"5":1e400}}').then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), logit_bias: [5, 1] }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), stream: "yes" }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", { ...greedy("x"), stop: ["a", "b", "c", "d", "e"] }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", '{"messages":[{"role":"user","content":"x"}],"max_tokens":1e400}').then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", '{"messages":[{"role":"user","content":"x"}],"max_tokens":123456789012345678901234567890}').then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", '{"messages":[{"role":"user","content":"\\ud800"}]}').then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}]}')])).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", "[".repeat(100000) + "]".repeat(100000)).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/chat/completions", '{"a":'.repeat(50000)).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/completions", { prompt: "word ".repeat(3000), max_tokens: 4 }).then((r) => checkErrorShape(r, 400)),
    () => json(main, "POST", "/v1/completions", { prompt: big }).then((r) => checkErrorShape(r, 413)),
    () => raw(main, `POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${(10 << 20) + 16}\r\n\r\n{"prompt": "${"b".repeat(10 << 20)}"}`)
      .then((r) => assert.equal(r.status, 413)),
    () => json(main, "POST", "/v1/nothing", {}).then((r) => checkErrorShape(r, 404)),
    () => json(main, "GET", "/v1/chat/completions").then((r) => checkErrorShape(r, 405)),
    () => json(main, "DELETE", "/v1/completions").then((r) => checkErrorShape(r, 405)),
    () => json(main, "POST", "/health", {}).then((r) => checkErrorShape(r, 405)),
    () => raw(main, "GARBAGE\r\n\r\n").then((r) => assert.ok(r.status === 400 || r.status === 0, String(r.status))),
  ];
  // Slow clients: half a request, then nothing; the server drops them after --timeout (3 s) and its
  // keep-alive wait (2 s).
  const slow = Array.from({ length: 3 }, () => new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(main.port, "127.0.0.1", () => sock.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\n"));
    sock.on("error", () => {});
    sock.resume();  // read (and drop) the 400: the close is only seen by a socket that reads
    sock.on("close", () => resolve(Date.now() - t0));
  }));
  const goods = [];
  const jobs = [];
  for (let i = 0; i < HOSTILE; i++) {
    if (i % 5 === 0) {
      const k = goods.length % goodPrompts.length;
      goods.push(k);
      // Every other good request also asks for log probabilities (20 alternatives: the most there are).
      const lp = goods.length % 2 === 0 ? { logprobs: true, top_logprobs: 20 } : {};
      jobs.push(() => openai.chat.completions.create({ ...greedy(goodPrompts[k], 8), ...lp })
        .then((r) => {
          assert.equal(r.choices[0].message.content, alone[k], `good request ${k}`);
          if (lp.logprobs) assert.equal(r.choices[0].logprobs.content.length, r.usage.completion_tokens);
        }));
    } else {
      jobs.push(bad[i % bad.length]);
    }
  }
  // 16 at a time.
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < jobs.length) { const k = next++; if (process.env.SERVE_TEST_DEBUG) console.log("job", k); await jobs[k](); if (process.env.SERVE_TEST_DEBUG) console.log("done", k); }
  }));
  if (process.env.SERVE_TEST_DEBUG) console.log("jobs done");
  const slowTimes = await Promise.all(slow);
  if (process.env.SERVE_TEST_DEBUG) console.log("slow done", slowTimes);
  for (const t of slowTimes) assert.ok(t < 15000, `a slow client was held ${t} ms`);
  await waitIdle(main);
  assert.equal((await json(main, "GET", "/health")).body.status, "ok");
  assert.equal(main.exited, false);
});

await section("20 clients disconnect mid-stream; their slots come back", async () => {
  if (!alone.length) for (const p of goodPrompts) alone.push((await streamChat(openai, greedy(p, 8))).text);
  const before = await metric(main, "kinfer_requests_cancelled_total");
  await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const controller = new AbortController();
    const res = await fetch(main.base + "/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" }, signal: controller.signal,
      body: JSON.stringify({ ...greedy(`Disconnect ${i}`, 400), stream: true }),
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    let seen = "";
    while (!seen.includes('"content":"') || !/"content":"[^"]/.test(seen)) {
      const { value, done } = await reader.read();
      assert.ok(!done, "stream ended before any text");
      seen += Buffer.from(value).toString();
    }
    controller.abort();
  }).map((p) => p.catch((e) => { if (e.name !== "AbortError") throw e; })));
  await waitIdle(main, 10000);
  assert.equal((await metric(main, "kinfer_requests_cancelled_total")) - before, 20);
  const after = await openai.chat.completions.create(greedy(goodPrompts[3], 8));
  assert.equal(after.choices[0].message.content, alone[3]);
});

await section("a client that drops a non-stream request frees its slot (or queue place) at once", async () => {
  // One slot, a context of 2048: the running request would take seconds to generate its 2000 tokens.
  const solo = await startServer(["--parallel", "1", "--ctx", "2048"]);
  try {
    const long = { model: "tiny", prompt: "Once", max_tokens: 2000, ignore_eos: true, temperature: 0 };
    const send = (controller) => fetch(solo.base + "/v1/completions", {
      method: "POST", headers: { "Content-Type": "application/json" }, signal: controller.signal,
      body: JSON.stringify(long),
    }).catch((e) => { if (e.name !== "AbortError") throw e; });
    const until = async (what, ok, ms = 5000) => {
      const t0 = Date.now();
      for (;;) {
        const h = (await json(solo, "GET", "/health")).body;
        if (ok(h)) return Date.now() - t0;
        assert.ok(Date.now() - t0 < ms, `${what}: ${JSON.stringify(h)} after ${ms} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const running = new AbortController(), queued = new AbortController();
    const a = send(running);
    await until("the first request runs", (h) => h.slots_busy === 1);
    const b = send(queued);
    await until("the second request waits", (h) => h.queued === 1);
    queued.abort();
    const queueMs = await until("the dropped queued request leaves the queue", (h) => h.queued === 0 && h.slots_busy === 1, 1000);
    running.abort();
    const slotMs = await until("the dropped running request frees its slot", (h) => h.slots_busy === 0, 1000);
    await Promise.all([a, b]);
    assert.equal(await metric(solo, "kinfer_requests_cancelled_total"), 2);
    const generated = await metric(solo, "kinfer_generated_tokens_total");
    assert.ok(generated < 2000, `the dropped request ran on to ${generated} tokens`);
    const r = await client(solo).completions.create({ model: "tiny", prompt: "Once", max_tokens: 3, temperature: 0 });
    assert.equal(r.usage.completion_tokens, 3);
    if (process.env.SERVE_TEST_DEBUG) console.log("queue freed in", queueMs, "ms, slot in", slotMs, "ms, after", generated, "tokens");
  } finally {
    await stopServer(solo);
  }
});

await section("queue full -> 503 with Retry-After; API key -> 401", async () => {
  const keyFile = path.join(work, "key");
  fs.writeFileSync(keyFile, "s3cret\n");
  const small = await startServer(["--parallel", "1", "--queue", "0", "--api-key-file", keyFile]);
  try {
    checkErrorShape(await json(small, "GET", "/v1/models"), 401);
    checkErrorShape(await json(small, "POST", "/v1/chat/completions", greedy("x"), { Authorization: "Bearer wrong" }), 401);
    await assert.rejects(client(small, { apiKey: "wrong" }).models.list(), (e) => e.status === 401);
    assert.equal((await json(small, "GET", "/health")).status, 200);
    const ok = client(small, { apiKey: "s3cret" });
    assert.equal((await ok.models.list()).data.length, 1);

    const controller = new AbortController();
    const res = await fetch(small.base + "/v1/chat/completions", {
      method: "POST", signal: controller.signal,
      headers: { "Content-Type": "application/json", Authorization: "Bearer s3cret" },
      body: JSON.stringify({ ...greedy("long", 400), stream: true }),
    });
    const reader = res.body.getReader();
    await reader.read();
    const busy = await json(small, "POST", "/v1/chat/completions", greedy("x"), { Authorization: "Bearer s3cret" });
    checkErrorShape(busy, 503);
    assert.equal(busy.headers.get("retry-after"), "1");
    await assert.rejects(ok.chat.completions.create(greedy("x")), (e) => e.status === 503);
    controller.abort();
    await waitIdle(small);
    const done = await ok.chat.completions.create(greedy("x", 3));
    assert.equal(done.usage.completion_tokens, 3);
    assert.ok((await metric(small, "kinfer_requests_rejected_total", { Authorization: "Bearer s3cret" })) >= 2);
  } finally {
    await stopServer(small);
  }
});

await section("chat page in headless Chromium: type, streamed reply, stop, second turn, tokens/s", async () => {
  if (!BROWSER) return;
  const { chromium } = await import("playwright-core");
  assert.ok(fs.existsSync("/usr/bin/chromium"), "/usr/bin/chromium is missing (scripts/setup-debian.sh installs it)");
  // A server of its own with the model's whole context, so that the first reply can be long (up to 900
  // tokens): the stop below must land while it streams.
  const srv = await startServer(["--parallel", "1", "--ctx", "1024"]);
  const profile = fs.mkdtempSync(path.join(work, "chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium", headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await context.newPage();
    const posted = [];
    page.on("request", (r) => { if (r.url().endsWith("/v1/chat/completions")) posted.push(JSON.parse(r.postData())); });
    await page.goto(srv.base + "/");
    // The reply reaches the page at ~16 KB/s (Chromium's network emulation), so it streams for seconds
    // however fast the server decodes (900 tokens took ~0.6 s at full speed, and the stop below raced them).
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions",
                   { offline: false, latency: 0, downloadThroughput: 16 * 1024, uploadThroughput: -1 });
    await page.fill("#temperature", "0");
    await page.fill("#max_tokens", "900");
    await page.fill("#input", "Tell me a story");
    await page.press("#input", "Enter");
    const first = page.locator(".msg.assistant").first();
    // Polled from here: the page's CSP forbids the eval that page.waitForFunction needs.
    const content = first.locator(".content");
    for (const t0 = Date.now(); !(await content.textContent()); ) {
      assert.ok(Date.now() - t0 < 30000, "no streamed text after 30 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await first.getAttribute("data-state"), "streaming");
    // force: no wait for the button to be "stable" (animation frames), the reply is still streaming now
    await page.click("#stop", { force: true });
    await page.waitForSelector('.msg.assistant[data-state="stopped"]', { timeout: 10000 });
    await waitIdle(srv, 5000);  // the stop reached the server: the slot is free

    await page.fill("#max_tokens", "8");
    await page.fill("#input", "And then?");
    await page.press("#input", "Enter");
    await page.waitForSelector('.msg.assistant:nth-of-type(4)[data-state="done"]', { timeout: 30000 });
    const stats = await page.locator(".msg.assistant").nth(1).locator(".stats").textContent();
    assert.match(stats, /8 tokens, [\d.]+ tokens\/s/);
    assert.equal(posted.length, 2);
    assert.deepEqual(posted[1].messages.map((m) => m.role), ["user", "assistant", "user"]);
    assert.ok(posted[1].messages[1].content.length > 0, "the stopped reply is part of the history");
  } finally {
    await context.close();
    await stopServer(srv);
  }
});

await stopServer(main).catch((e) => { failures++; console.log("FAIL clean shutdown: " + e.message); });
fs.rmSync(work, { recursive: true, force: true });
console.log(failures ? `${failures} section(s) failed` : "all server checks passed");
process.exit(failures ? 1 : 0);
