// Load test for `infer serve` (or any OpenAI-compatible server, e.g. llama.cpp's llama-server, for a side
// by side): for each concurrency level, that many clients stream chat completions back to back, bounded
// in requests and in time. Reports aggregate decode tokens/s, tokens/s per stream, and time to first
// token p50/p99. Loopback only; no npm packages needed (Node's fetch).
//
//   infer serve -m MODEL --parallel 8 &
//   node bench/serve_load.mjs --url http://127.0.0.1:8080 --streams 1,8 --requests 16 --max-tokens 128
//
// Options: --url U (default http://127.0.0.1:8080), --streams LIST (default 1,8), --requests N per level
// (default 16), --max-tokens N (default 128), --seconds S per level (default 120), --temperature T (default
// 0.8; 0: greedy; each request seeded by its number), --warmup N (requests before the first level, not
// counted: page faults and first-call costs stay out of the numbers; default 1), --api-key KEY,
// --per-stream N (instead of --requests: N requests per stream at each level, N x streams in all, so that
// every level runs as many rounds per stream and the first prefills and the last requests' tail weigh alike:
// with 16 requests at 8 streams, two rounds each, they weigh far more than at one stream's 16 rounds).
// Every request asks for exactly max-tokens (ignore_eos), so servers are compared on the same work.
// Output: one JSON object a line per level (requests: those completed; failed: those the server failed,
// each reported on stderr), then the speedup of the last level over the first.
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const url = new URL(arg("--url", "http://127.0.0.1:8080"));
if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
  console.error("serve_load: loopback servers only (127.0.0.1, localhost, [::1])");
  process.exit(2);
}
const levels = arg("--streams", "1,8").split(",").map(Number);
const requests = Number(arg("--requests", "16"));
const maxTokens = Number(arg("--max-tokens", "128"));
const seconds = Number(arg("--seconds", "120"));
const apiKey = arg("--api-key", "");
const temperature = Number(arg("--temperature", "0.8"));
const warmup = Number(arg("--warmup", "1"));
const requestsPerStream = Number(arg("--per-stream", "0"));
for (const [name, v] of [["--requests", requests], ["--per-stream", requestsPerStream], ["--max-tokens", maxTokens],
                         ["--seconds", seconds], ["--temperature", temperature], ["--warmup", warmup],
                         ...levels.map((l) => ["--streams", l])])
  if (!Number.isFinite(v) || v < 0) { console.error(`serve_load: ${name} needs a number >= 0`); process.exit(2); }

const topics = ["the sea", "a mountain village", "an old clock", "the first snow", "a lost letter",
                "a lighthouse keeper", "a city at night", "a garden in spring"];

async function one(i, max_tokens = maxTokens) {
  const t0 = performance.now();
  const res = await fetch(new URL("/v1/chat/completions", url), {
    signal: AbortSignal.timeout(seconds * 1000 + 60000),
    method: "POST",
    headers: { "Content-Type": "application/json", ...(apiKey ? { Authorization: "Bearer " + apiKey } : {}) },
    body: JSON.stringify({
      messages: [{ role: "user", content: `Write a long story about ${topics[i % topics.length]}.` }],
      max_tokens, temperature, seed: i, stream: true, stream_options: { include_usage: true },
      ignore_eos: true,
    }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let buffer = "", first = 0, tokens = 0, chunks = 0;
  for await (const part of res.body) {
    buffer += decoder.decode(part, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      // Parsed only until the first text and for the usage: the client shares the machine with the
      // server, so it does as little per token as it can.
      if (first && !line.includes('"usage"')) { chunks++; continue; }
      const j = JSON.parse(line.slice(6));
      if (j.usage) tokens = j.usage.completion_tokens;
      if (j.choices?.[0]?.delta?.content) {
        chunks++;
        if (!first) first = performance.now();
      }
    }
  }
  const t1 = performance.now();
  return { ttft: (first || t1) - t0, tokens: tokens || chunks, decodeMs: t1 - (first || t1) };
}

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

for (let i = 0; i < warmup; i++) await one(1000 + i, 8);

const summary = [];
for (const streams of levels) {
  const deadline = performance.now() + seconds * 1000;
  let next = 0;
  const results = [];
  const t0 = performance.now();
  let failed = 0, lastError = "";
  await Promise.all(Array.from({ length: streams }, async () => {
    while (next < (requestsPerStream > 0 ? requestsPerStream * streams : requests) && performance.now() < deadline) {
      // A request the server fails (an error status, a connection it closes) is counted and reported,
      // not fatal: the level goes on, and its row says how many failed.
      try {
        results.push(await one(next++));
      } catch (e) {
        failed++;
        lastError = String(e.cause?.message ?? e.message ?? e);
      }
    }
  }));
  if (failed) console.error(`serve_load: ${failed} request(s) failed at ${streams} streams; last: ${lastError}`);
  const wall = (performance.now() - t0) / 1000;
  const tokens = results.reduce((a, r) => a + r.tokens, 0);
  const perStream = results.map((r) => (r.decodeMs > 0 ? (r.tokens - 1) / (r.decodeMs / 1000) : 0));
  const row = {
    streams, requests: results.length, failed, tokens, seconds: +wall.toFixed(2),
    aggregate_tokens_per_s: +(tokens / wall).toFixed(1),
    per_stream_tokens_per_s_p50: +percentile(perStream, 50).toFixed(1),
    ttft_ms_p50: +percentile(results.map((r) => r.ttft), 50).toFixed(0),
    ttft_ms_p99: +percentile(results.map((r) => r.ttft), 99).toFixed(0),
  };
  summary.push(row);
  console.log(JSON.stringify(row));
}
if (summary.length > 1)
  console.log(`aggregate speedup ${summary.at(-1).streams} vs ${summary[0].streams} streams: ` +
              (summary.at(-1).aggregate_tokens_per_s / summary[0].aggregate_tokens_per_s).toFixed(2) + "x");
