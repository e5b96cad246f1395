#!/usr/bin/env bash
# kinfer against llama.cpp on the same files, the same machine, the same thread count: runs `infer bench` and
# llama.cpp's `llama-bench` alternately (one repetition of each in turn, so that a change in the machine's
# load hits both alike) on the synthetic Mistral-7B files of each type, then prints and appends to
# bench/RESULTS.md a markdown table: both tools' t/s (mean ± sd over the repetitions), the ratio, kinfer's GB/s
# and its share of the measured read bandwidth. Never in CI: it needs the 7B files (4-15 GB each) and an hour.
# Run it on a quiet machine.
#
#   bench/compare-llamacpp.sh [-r REPS] [-t THREADS] [-p N_PROMPT] [-n N_GEN] [--types "Q4_K_M Q6_K ..."]
#                             [--dir DIR] [--out FILE] [--llama-bench PATH] [--preset mistral-7b|tiny]
#
# Defaults: -r 5, -t 2, -p 512, -n 128, the types Q4_K_M Q6_K Q8_0 Q4_0, --dir ~/.cache/kinfer/bench (the
# cache of `infer bench --all-types`: files are synthesised there when missing), --out bench/RESULTS.md.
# llama-bench is built once by bench/build-llama-bench.sh (from the llama.cpp source bundle of the
# node-llama-cpp npm package, in /tmp/llref) unless --llama-bench names one. `infer` is build/bin/infer
# (INFER=path to use another). --preset tiny is for checking the script itself in seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reps=5 threads=2 n_prompt=512 n_gen=128 types="Q4_K_M Q6_K Q8_0 Q4_0" preset=mistral-7b
dir=${XDG_CACHE_HOME:-$HOME/.cache}/kinfer/bench out=$root/bench/RESULTS.md llama_bench=""
infer=${INFER:-$root/build/bin/infer}
while (($#)); do
  case $1 in
    -r) reps=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    -p) n_prompt=$2; shift 2 ;;
    -n) n_gen=$2; shift 2 ;;
    --types) types=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --llama-bench) llama_bench=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare-llamacpp.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
log() { echo "compare-llamacpp: $*" >&2; }
[ -x "$infer" ] || { echo "compare-llamacpp.sh: $infer not found: build it first (cmake --build build --target infer)" >&2; exit 1; }
[ -n "$llama_bench" ] || llama_bench=$("$root/bench/build-llama-bench.sh" | tail -n 1)
[ -x "$llama_bench" ] || { echo "compare-llamacpp.sh: no llama-bench at $llama_bench" >&2; exit 1; }

load=$(cut -d' ' -f1 /proc/loadavg)
if python3 -c "import sys; sys.exit(0 if $load > 0.5 else 1)"; then
  log "warning: load average $load: other processes will distort both tools' numbers"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dir"

# The same files `infer bench --all-types` uses (and `infer synth` writes).
for type in $types; do
  file=$dir/$preset-$type.gguf
  if [ ! -f "$file" ]; then
    log "synthesising $file"
    "$infer" synth --preset "$preset" --type "$type" -o "$file" --quiet >&2
  fi
done

# The read bandwidth (infer bench's read probe), measured before every repetition: on a shared host it moves
# by tens of percent within minutes, so each type's share is taken against the median of its own probes.
probe() {
  "$infer" bench -m "$1" -p 0 -n 1 -r 1 --no-warmup -t "$threads" -o jsonl 2>/dev/null |
    python3 -c 'import json,sys; print("%.2f" % json.loads(sys.stdin.readline())["mem_read_gbps"])'
}

kinfer_cmd="infer bench -m FILE -t $threads -p $n_prompt -n $n_gen -r 1 --no-bandwidth -o jsonl"
llama_cmd="llama-bench -m FILE -t $threads -p $n_prompt -n $n_gen -r 1 -o jsonl"
for type in $types; do
  file=$dir/$preset-$type.gguf
  for ((rep = 1; rep <= reps; rep++)); do
    bw=$(probe "$file")
    echo "$type $bw" >>"$work/probes.txt"
    log "$type: repetition $rep/$reps: read probe $bw GB/s; kinfer"
    "$infer" bench -m "$file" -t "$threads" -p "$n_prompt" -n "$n_gen" -r 1 --no-bandwidth -o jsonl 2>/dev/null |
      sed "s/^/$type kinfer /" >>"$work/results.txt"
    log "$type: repetition $rep/$reps: llama.cpp"
    "$llama_bench" -m "$file" -t "$threads" -p "$n_prompt" -n "$n_gen" -r 1 -o jsonl 2>/dev/null |
      sed "s/^/$type llama /" >>"$work/results.txt"
  done
done

[ -f "$out" ] || printf '# Benchmark results\n\nWritten by bench/compare-llamacpp.sh, newest last.\n' >"$out"
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
kernels=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.readline()).get("cpu_kernels","?"))' \
  < <(grep -m1 ' kinfer ' "$work/results.txt" | cut -d' ' -f3-))
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
llama_version=$(git -C "$(dirname "$llama_bench")/../.." describe --tags --always 2>/dev/null || echo unknown)
{
  echo
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC'): kinfer $commit vs llama.cpp $llama_version"
  echo
  echo "CPU: $cpu ($(nproc) threads available); load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
  range=$(python3 -c 'import sys; v=[float(l.split()[1]) for l in open(sys.argv[1])]; print("%.1f-%.1f" % (min(v), max(v)))' \
    "$work/probes.txt")
  echo "kinfer CPU kernels: $kernels. Memory read bandwidth (infer bench's read probe, before each repetition):"
  echo "$range GB/s; % of read bw is against the median of the type's own probes."
  echo "Files: \`infer synth --preset $preset --type TYPE\` in $dir. $reps repetitions of each tool, alternating:"
  echo "\`$kinfer_cmd\` and \`$llama_cmd\`."
  echo
  python3 - "$work/results.txt" "$work/probes.txt" "$types" <<'EOF'
import json, statistics, sys
path, probes, types = sys.argv[1], sys.argv[2], sys.argv[3].split()
bws = {}
for line in open(probes):
    t, v = line.split()
    bws.setdefault(t, []).append(float(v))
runs = {}
for line in open(path):
    type_, tool, obj = line.split(" ", 2)
    o = json.loads(obj)
    test = ("pp%d" % o["n_prompt"] if o["n_prompt"] else "") + ("+" if o["n_prompt"] and o["n_gen"] else "") + \
           ("tg%d" % o["n_gen"] if o["n_gen"] else "")
    runs.setdefault((type_, test), {}).setdefault(tool, []).append(o)
def stats(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)
print("| type | test | kinfer t/s | llama.cpp t/s | kinfer / llama.cpp | kinfer GB/s | % of read bw |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for type_ in types:
    for (t, test), tools in runs.items():
        if t != type_:
            continue
        k = [o["avg_ts"] for o in tools.get("kinfer", [])]
        l = [o["avg_ts"] for o in tools.get("llama", [])]
        km, ks = stats(k) if k else (0, 0)
        lm, ls = stats(l) if l else (0, 0)
        gbps = [o["weights_gbps"] for o in tools.get("kinfer", []) if o.get("weights_gbps") is not None]
        g = statistics.mean(gbps) if gbps else None
        bw = statistics.median(bws.get(type_, [0.0]))
        print("| %s | %s | %.2f ± %.2f | %.2f ± %.2f | %s | %s | %s |" % (
            type_, test, km, ks, lm, ls, "%.2f×" % (km / lm) if lm else "",
            "%.2f" % g if g is not None else "", "%.1f" % (100 * g / bw) if g is not None and bw else ""))
EOF
} | tee -a "$out"
log "appended to $out"
