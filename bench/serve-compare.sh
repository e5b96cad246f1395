#!/usr/bin/env bash
# `infer serve` side by side with llama.cpp's llama-server on the same GGUF file, same machine, same load:
# each server in turn on loopback (kinfer, then llama-server, repeated --rounds times so that drifting
# machine load hits both alike), the same bench/serve_load.mjs run against each (1 stream, then N
# concurrent streams; fixed max_tokens with ignore_eos; greedy by default), then a table of the medians
# over the rounds: aggregate tokens/s, tokens/s per stream, time to first token p50/p99, and kinfer's
# ratio to llama-server.
#
#   bench/serve-compare.sh -m models/kjv-q8_0.gguf
#   bench/serve-compare.sh -m /tmp/m7b/q4km.gguf --max-tokens 16 --requests 8 --rounds 1
#
# Options (defaults in brackets):
#   -m FILE              the model (required)
#   --infer PATH         kinfer's CLI [build/bin/infer]
#   --llama-server PATH  llama.cpp's server [$LLAMA_SERVER or /tmp/llref/llama.cpp/build/bin/llama-server];
#                        "none": kinfer alone
#   --threads N          CPU threads of each server [2]
#   --parallel N         slots of each server, and the concurrent streams of the second level [8]
#   --ctx N              context per slot (llama-server gets -c parallel*N) [1024]
#   --max-tokens N       tokens per request [64]     --requests N   requests per level [16]
#   --per-stream N       instead of --requests: N requests per stream at each level (N x streams in all), so
#                        that both levels run as many rounds per stream [0: off]
#   --rounds N           kinfer/llama-server alternations [2]
#   --temperature T      0: greedy [0]               --seconds S    time bound of a level [120]
#   --port N             first port tried (the next free one is used) [18500]
#   --out DIR            where logs and results go [a new directory under /tmp]
# The environment goes to both servers. llama-server's CPU threads are OpenMP's (libgomp), which spin when idle
# and, on a small machine, starve the HTTP threads and the load client: OMP_WAIT_POLICY=passive set here stops
# that (the header line says which); kinfer's own thread pool spins 50 us at most.
# Bounded: each server must be ready within 300 s, each load run ends within 2*seconds + 120 s; servers
# are stopped (TERM, then KILL) when the script exits in any way.
set -euo pipefail

model="" infer="build/bin/infer" llama="${LLAMA_SERVER:-/tmp/llref/llama.cpp/build/bin/llama-server}"
threads=2 parallel=8 ctx=1024 max_tokens=64 requests=16 per_stream=0 rounds=2 temperature=0 seconds=120 port=18500
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -m|--model) model="$2" ;;
    --infer) infer="$2" ;;
    --llama-server) llama="$2" ;;
    --threads) threads="$2" ;;
    --parallel) parallel="$2" ;;
    --ctx) ctx="$2" ;;
    --max-tokens) max_tokens="$2" ;;
    --requests) requests="$2" ;;
    --per-stream) per_stream="$2" ;;
    --rounds) rounds="$2" ;;
    --temperature) temperature="$2" ;;
    --seconds) seconds="$2" ;;
    --port) port="$2" ;;
    --out) out="$2" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "serve-compare: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift 2
done
[ -n "$model" ] || { echo "serve-compare: give the model with -m FILE" >&2; exit 2; }
[ -f "$model" ] || { echo "serve-compare: no such model file: $model" >&2; exit 2; }
[ -x "$infer" ] || { echo "serve-compare: $infer is not executable (build the infer target)" >&2; exit 2; }
if [ "$llama" != none ] && [ ! -x "$llama" ]; then
  echo "serve-compare: $llama is not executable (build llama.cpp's llama-server target, or --llama-server none)" >&2
  exit 2
fi
for n in "$threads" "$parallel" "$ctx" "$max_tokens" "$requests" "$per_stream" "$rounds" "$seconds" "$port"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "serve-compare: '$n' is not a number" >&2; exit 2; }
done
command -v node > /dev/null || { echo "serve-compare: node is needed for bench/serve_load.mjs" >&2; exit 2; }
command -v curl > /dev/null || { echo "serve-compare: curl is needed" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
out="${out:-$(mktemp -d /tmp/serve-compare.XXXXXX)}"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

server_pid="" load_pid=""
stop_load() {
  [ -n "$load_pid" ] || return 0
  kill -TERM "$load_pid" 2> /dev/null || true
  wait "$load_pid" 2> /dev/null || true
  load_pid=""
}
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2> /dev/null || true
  for _ in $(seq 100); do kill -0 "$server_pid" 2> /dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2> /dev/null || true
  wait "$server_pid" 2> /dev/null || true
  server_pid=""
}
trap 'stop_load; stop_server' EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
free_port() {
  local p="$port"
  while port_busy "$p"; do
    p=$((p + 1))
    [ "$p" -lt $((port + 100)) ] || { echo "serve-compare: no free port in $port..$((port + 99))" >&2; exit 1; }
  done
  echo "$p"
}

# Starts server $1 on port $2 (its log in $3) and waits until it answers /health with 200.
start_server() {
  local name="$1" p="$2" log="$3"
  if [ "$name" = kinfer ]; then
    "$infer" serve -m "$model" --host 127.0.0.1 --port "$p" --parallel "$parallel" --ctx "$ctx" -t "$threads" \
      > "$log" 2>&1 &
  else
    "$llama" -m "$model" --host 127.0.0.1 --port "$p" --parallel "$parallel" -c $((parallel * ctx)) \
      --threads "$threads" --threads-batch "$threads" --no-webui > "$log" 2>&1 &
  fi
  server_pid=$!
  local t0=$SECONDS
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/health")" = 200 ]; do
    kill -0 "$server_pid" 2> /dev/null || { echo "serve-compare: $name exited at start:" >&2; tail -20 "$log" >&2; exit 1; }
    [ $((SECONDS - t0)) -lt 300 ] || { echo "serve-compare: $name not ready after 300 s" >&2; exit 1; }
    sleep 0.2
  done
}

servers=(kinfer)
[ "$llama" = none ] || servers+=(llama-server)
echo "serve-compare: $(basename "$model"), $threads threads, $parallel slots of $ctx tokens, $requests requests of" \
  "$max_tokens tokens per level, temperature $temperature, $rounds round(s), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset};" \
  "logs in $out" >&2
for round in $(seq "$rounds"); do
  for name in "${servers[@]}"; do
    p="$(free_port)"
    log="$out/$name-$round.log"
    echo "serve-compare: round $round: $name on port $p" >&2
    start_server "$name" "$p" "$log"
    # In the background and waited for: a signal to this script then ends the run at once (see the traps).
    timeout $((2 * seconds + 120)) node "$here/serve_load.mjs" --url "http://127.0.0.1:$p" --streams "1,$parallel" \
      --requests "$requests" --per-stream "$per_stream" --max-tokens "$max_tokens" --seconds "$seconds" \
      --temperature "$temperature" \
      > "$out/$name-$round.load" 2> "$out/$name-$round.load-err" &
    load_pid=$!
    # The client's errors go to a file of their own: appended to the server's log, they were overwritten
    # by the server's next lines (its own file offset).
    wait "$load_pid" || {
      echo "serve-compare: the load run against $name failed (client: $out/$name-$round.load-err):" >&2
      tail -5 "$out/$name-$round.load-err" >&2; echo "  server log ($log):" >&2; tail -5 "$log" >&2; exit 1; }
    load_pid=""
    grep '^{' "$out/$name-$round.load" | sed "s/^{/{\"server\":\"$name\",\"round\":$round,/" >> "$results"
    sed 's/^/  /' "$out/$name-$round.load" >&2
    stop_server
  done
done

# The table: medians over the rounds.
node - "$results" << 'EOF'
const fs = require("fs");
const rows = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1;
                         return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const servers = [...new Set(rows.map((r) => r.server))], levels = [...new Set(rows.map((r) => r.streams))];
const stat = (server, streams, key) => median(rows.filter((r) => r.server === server && r.streams === streams).map((r) => r[key]));
const cols = [["aggregate_tokens_per_s", "aggregate t/s"], ["per_stream_tokens_per_s_p50", "per-stream t/s"],
              ["ttft_ms_p50", "TTFT p50 ms"], ["ttft_ms_p99", "TTFT p99 ms"]];
const pad = (s, n) => String(s).padStart(n);
console.log(`| server       | streams | ${cols.map(([, h]) => pad(h, 14)).join(" | ")} |`);
console.log(`| ------------ | ------: | ${cols.map(() => "-------------:").join(" | ")} |`);
for (const server of servers)
  for (const streams of levels)
    console.log(`| ${server.padEnd(12)} | ${pad(streams, 7)} | ${cols.map(([k]) => pad(stat(server, streams, k).toFixed(1), 14)).join(" | ")} |`);
for (const r of rows.filter((r) => r.failed > 0))
  console.log(`${r.server}, round ${r.round}, ${r.streams} stream(s): ${r.failed} request(s) failed (see its .load-err)`);
for (const server of servers) {
  const a = stat(server, levels.at(-1), "aggregate_tokens_per_s") / stat(server, levels[0], "aggregate_tokens_per_s");
  console.log(`${server}: aggregate ${levels.at(-1)} vs ${levels[0]} streams ${a.toFixed(2)}x`);
}
if (servers.length > 1)
  for (const streams of levels)
    console.log(`kinfer / llama-server, ${streams} stream(s): aggregate ${(stat("kinfer", streams, "aggregate_tokens_per_s") /
      stat("llama-server", streams, "aggregate_tokens_per_s")).toFixed(2)}x, TTFT p50 ${(stat("kinfer", streams, "ttft_ms_p50") /
      stat("llama-server", streams, "ttft_ms_p50")).toFixed(2)}x`);
EOF
