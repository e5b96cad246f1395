#include "tools/infer/serve_page.hpp"

namespace kinfer::cli::serve {

// Multi-turn chat over /v1/chat/completions with stream: true. Replies stream in as they are generated
// (the SSE events are parsed from fetch's body stream), the Stop button aborts the request (the server
// frees the slot when the connection closes), and each reply shows its tokens/s from the usage chunk.
std::string_view chat_page_html() {
    static constexpr std::string_view page = R"PAGE(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kinfer chat</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; }
  header { padding: 8px 12px; background: #234; color: #fff; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
  header input { width: 8em; }
  #log { flex: 1; overflow-y: auto; padding: 12px; }
  .msg { white-space: pre-wrap; margin: 8px 0; padding: 8px 10px; border-radius: 6px; max-width: 80%; }
  .user { background: #dfe9f5; margin-left: auto; }
  .assistant { background: #f1f1f1; }
  .error { background: #fbe0e0; }
  .stats { font-size: 12px; color: #666; }
  form { display: flex; gap: 8px; padding: 12px; border-top: 1px solid #ccc; }
  textarea { flex: 1; height: 3em; font: inherit; }
</style>
</head>
<body>
<header>
  <b>kinfer</b> <span id="model"></span>
  <label>system <input id="system" placeholder="(none)"></label>
  <label>temperature <input id="temperature" type="number" value="0.7" step="0.1" min="0" max="2"></label>
  <label>max tokens <input id="max_tokens" type="number" value="512" min="1"></label>
  <label>API key <input id="key" type="password"></label>
  <button id="clear" type="button">New chat</button>
</header>
<div id="log"></div>
<form id="form">
  <textarea id="input" placeholder="Message (Enter sends, Shift+Enter: new line)"></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let history = [];        // {role, content} of the finished turns
let controller = null;   // AbortController of the reply being streamed

$("key").value = localStorage.getItem("kinfer-key") || "";
$("key").onchange = () => localStorage.setItem("kinfer-key", $("key").value);

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}

fetch("/v1/models", { headers: headers() }).then((r) => r.json())
  .then((j) => { if (j.data) $("model").textContent = j.data[0].id; }).catch(() => {});

function bubble(cls, text) {
  const div = document.createElement("div");
  div.className = "msg " + cls;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

function busy(on) {
  $("send").disabled = on;
  $("stop").disabled = !on;
}

async function send(text) {
  history.push({ role: "user", content: text });
  bubble("user", text);
  const reply = bubble("assistant", "");
  reply.dataset.state = "streaming";
  const content = document.createElement("span");
  content.className = "content";
  const stats = document.createElement("div");
  stats.className = "stats";
  reply.textContent = "";
  reply.appendChild(content);
  reply.appendChild(stats);

  const messages = [];
  if ($("system").value) messages.push({ role: "system", content: $("system").value });
  messages.push(...history);
  controller = new AbortController();
  busy(true);
  const t0 = performance.now();
  let tFirst = 0, answer = "", usage = null, finish = null;
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ messages, stream: true, stream_options: { include_usage: true },
                             temperature: Number($("temperature").value),
                             max_tokens: Number($("max_tokens").value) }),
    });
    if (!res.ok) {
      const j = await res.json().catch(() => ({}));
      throw new Error((j.error && j.error.message) || ("HTTP " + res.status));
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const j = JSON.parse(data);
          if (j.error) throw new Error(j.error.message);
          if (j.usage) usage = j.usage;
          const c = j.choices && j.choices[0];
          if (!c) continue;
          if (c.finish_reason) finish = c.finish_reason;
          if (c.delta && c.delta.content) {
            if (!tFirst) tFirst = performance.now();
            answer += c.delta.content;
            content.textContent = answer;
            $("log").scrollTop = $("log").scrollHeight;
          }
        }
      }
    }
    const seconds = (performance.now() - (tFirst || t0)) / 1000;
    const n = usage ? usage.completion_tokens : 0;
    stats.textContent = n + " tokens, " + (seconds > 0 ? (n / seconds).toFixed(1) : "-") + " tokens/s" +
      (tFirst ? ", first token after " + ((tFirst - t0) / 1000).toFixed(2) + " s" : "") +
      (finish ? ", " + finish : "");
    reply.dataset.state = "done";
  } catch (e) {
    if (e.name === "AbortError") {
      stats.textContent = "stopped";
      reply.dataset.state = "stopped";
    } else {
      reply.className = "msg error";
      stats.textContent = String(e.message || e);
      reply.dataset.state = "error";
    }
  }
  history.push({ role: "assistant", content: answer });
  controller = null;
  busy(false);
}

$("form").onsubmit = (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
};
$("input").onkeydown = (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
};
$("stop").onclick = () => { if (controller) controller.abort(); };
$("clear").onclick = () => { if (controller) controller.abort(); history = []; $("log").textContent = ""; };
</script>
</body>
</html>
)PAGE";
    return page;
}

}  // namespace kinfer::cli::serve
