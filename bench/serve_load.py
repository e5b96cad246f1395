#!/usr/bin/env python3
"""Load test for `infer serve`, the same as bench/serve_load.mjs for machines without Node (the device
machine has Python only): for each concurrency level, that many clients stream chat completions back to
back, bounded in requests and in time. Reports aggregate decode tokens/s, tokens/s per stream, and time to
first token p50/p99, one JSON object a line per level, then the speedup of the last level over the first.
Loopback only; standard library only (a thread per stream, http.client).

  infer serve -m MODEL --parallel 8 &
  python3 bench/serve_load.py --url http://127.0.0.1:8080 --streams 1,8 --requests 16 --max-tokens 128

Options and their defaults are serve_load.mjs's: --url, --streams 1,8, --requests 16 (per level),
--max-tokens 128, --seconds 120 (per level), --temperature 0.8 (0: greedy; each request seeded by its
number), --warmup 1 (requests before the first level, not counted), --api-key KEY, --per-stream N
(instead of --requests: N requests per stream at each level, so that every level runs as many rounds per
stream and the first prefills and the last requests' tail weigh alike). Every request asks for
exactly max-tokens (ignore_eos), so servers are compared on the same work.
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

TOPICS = ["the sea", "a mountain village", "an old clock", "the first snow", "a lost letter",
          "a lighthouse keeper", "a city at night", "a garden in spring"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--streams", default="1,8")
    p.add_argument("--requests", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--api-key", default="")
    p.add_argument("--per-stream", type=int, default=0)
    a = p.parse_args()
    url = urllib.parse.urlparse(a.url)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        p.error("loopback servers only (127.0.0.1, localhost, [::1])")
    try:
        a.levels = [int(s) for s in a.streams.split(",")]
    except ValueError:
        p.error("--streams needs a list of numbers, e.g. 1,8")
    for name in ("requests", "per_stream", "max_tokens", "seconds", "temperature", "warmup"):
        if getattr(a, name) < 0:
            p.error(f"--{name.replace('_', '-')} needs a number >= 0")
    if any(n < 1 for n in a.levels):
        p.error("--streams needs levels >= 1")
    a.host, a.port = url.hostname, url.port or 80
    return a


def one(a, i, max_tokens):
    """One streamed chat completion: (time to first text, completion tokens, seconds after the first)."""
    body = json.dumps({
        "messages": [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}],
        "max_tokens": max_tokens, "temperature": a.temperature, "seed": i, "stream": True,
        "stream_options": {"include_usage": True}, "ignore_eos": True,
    })
    headers = {"Content-Type": "application/json"}
    if a.api_key:
        headers["Authorization"] = "Bearer " + a.api_key
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(a.host, a.port, timeout=a.seconds + 60)
    try:
        conn.request("POST", "/v1/chat/completions", body, headers)
        res = conn.getresponse()
        if res.status != 200:
            raise RuntimeError(f"HTTP {res.status}: {res.read()[:200]!r}")
        first = 0.0
        tokens = chunks = 0
        for raw in res:  # SSE: "data: {...}" lines, blank lines between events
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            # Parsed only until the first text and for the usage, as serve_load.mjs does.
            if first and '"usage"' not in line:
                chunks += 1
                continue
            j = json.loads(line[6:])
            if j.get("usage"):
                tokens = j["usage"]["completion_tokens"]
            choices = j.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                chunks += 1
                if not first:
                    first = time.perf_counter()
        t1 = time.perf_counter()
        return (first or t1) - t0, tokens or chunks, t1 - (first or t1)
    finally:
        conn.close()


def percentile(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


def level(a, streams):
    deadline = time.perf_counter() + a.seconds
    lock = threading.Lock()
    state = {"next": 0, "failed": 0, "last": ""}
    results = []
    total = a.per_stream * streams if a.per_stream > 0 else a.requests

    def client():
        while True:
            with lock:
                if state["next"] >= total or time.perf_counter() >= deadline:
                    return
                i = state["next"]
                state["next"] += 1
            try:
                r = one(a, i, a.max_tokens)
                with lock:
                    results.append(r)
            except Exception as e:  # counted and reported, not fatal: the level goes on
                with lock:
                    state["failed"] += 1
                    state["last"] = str(e)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if state["failed"]:
        print(f"serve_load: {state['failed']} request(s) failed at {streams} streams; last: {state['last']}",
              file=sys.stderr)
    tokens = sum(r[1] for r in results)
    per_stream = [(r[1] - 1) / r[2] if r[2] > 0 else 0.0 for r in results]
    return {
        "streams": streams, "requests": len(results), "failed": state["failed"], "tokens": tokens,
        "seconds": round(wall, 2), "aggregate_tokens_per_s": round(tokens / wall, 1) if wall > 0 else 0.0,
        "per_stream_tokens_per_s_p50": round(percentile(per_stream, 50), 1) if results else None,
        "ttft_ms_p50": round(1000 * percentile([r[0] for r in results], 50)) if results else None,
        "ttft_ms_p99": round(1000 * percentile([r[0] for r in results], 99)) if results else None,
    }


def main():
    a = parse_args()
    for i in range(a.warmup):
        one(a, 1000 + i, 8)
    summary = []
    for streams in a.levels:
        row = level(a, streams)
        summary.append(row)
        print(json.dumps(row), flush=True)
    if len(summary) > 1 and summary[0]["aggregate_tokens_per_s"] > 0:
        print(f"aggregate speedup {summary[-1]['streams']} vs {summary[0]['streams']} streams: "
              f"{summary[-1]['aggregate_tokens_per_s'] / summary[0]['aggregate_tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
