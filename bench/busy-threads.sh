#!/usr/bin/env bash
# Does a second thread still pay off when another process is using a core? Runs `infer bench` with 1 and 2
# threads, quiet and next to one busy-looping process, alternating between builds (e.g. an older OpenMP
# build and this one), ROUNDS times, and prints the median tokens/s of each case. The rule the engine
# must keep (issue 9): under load, 2 threads are never slower than 1.
#
# usage: bench/busy-threads.sh [-m MODEL] [-r ROUNDS] [-a "bench args"] INFER [INFER ...]
#   e.g. bench/busy-threads.sh -m /tmp/m7b/q4km.gguf ./build/bin/infer /tmp/infer-openmp
# Defaults: MODEL /tmp/m7b/q4km.gguf (`infer synth --preset mistral-7b --type Q4_K_M`), ROUNDS 3,
# bench args "-p 32 -n 8 -r 2". Needs python3 for the summary. Not run in CI (minutes per round).
set -euo pipefail

model=/tmp/m7b/q4km.gguf
rounds=3
bench_args="-p 32 -n 8 -r 2"
while getopts "m:r:a:" opt; do
  case $opt in
    m) model=$OPTARG ;;
    r) rounds=$OPTARG ;;
    a) bench_args=$OPTARG ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,10p' "$0"; exit 2; }
[ -f "$model" ] || { echo "busy-threads: no model at $model" >&2; exit 1; }

out=$(mktemp -d /tmp/busy-threads.XXXXXX)
busy_pid=""
stop_busy() {
  if [ -n "$busy_pid" ]; then kill "$busy_pid" 2>/dev/null || true; wait "$busy_pid" 2>/dev/null || true; fi
  busy_pid=""
}
trap stop_busy EXIT INT TERM

echo "busy-threads: $(nproc) CPUs, model $model, $rounds rounds, results in $out" >&2
for round in $(seq 1 "$rounds"); do
  for load in quiet busy; do
    for i in $(seq 1 $#); do
      bin=${!i}
      if [ "$load" = busy ]; then
        sh -c 'while :; do :; done' &
        busy_pid=$!
      fi
      echo "busy-threads: round $round, $load, $bin" >&2
      # shellcheck disable=SC2086
      "$bin" bench -m "$model" $bench_args -t 1,2 --no-bandwidth -o jsonl 2>"$out/err.log" |
        sed "s|^{|{\"bin\": \"$bin\", \"load\": \"$load\", \"round\": $round, |" >>"$out/results.jsonl"
      stop_busy
    done
  done
done

python3 - "$out/results.jsonl" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    test = ("pp%d" % r["n_prompt"]) if r["n_prompt"] else ("tg%d" % r["n_gen"])
    rows.setdefault((r["bin"], r["load"], test, r["n_threads"]), []).append(r["avg_ts"])
print("| build | load | test | threads | median t/s | runs | 2 threads / 1 |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
for (b, load, test, t), v in sorted(rows.items()):
    one = rows.get((b, load, test, 1))
    ratio = statistics.median(v) / statistics.median(one) if one and t == 2 else None
    print("| %s | %s | %s | %d | %.3f | %s | %s |" % (b, load, test, t, statistics.median(v),
          " ".join("%.2f" % x for x in v), "%.2f" % ratio if ratio else ""))
PY
