#!/usr/bin/env bash
# Dev-only: checks that `infer quantize` picks the same tensor types as llama.cpp's llama-quantize, and
# regenerates tests/fixtures/quantize_recipes.tsv (the expected type table tests/quantize_test.cpp checks).
#
# For a few synthetic F32 models (`infer synth`) chosen to reach every branch of the recipes (GQA 4 vs 2, 16
# layers for the n/8 and n/16 rules, rows that are not a multiple of 256 or of 32, Llama-70B's 80 layers),
# it quantizes each model to every file type with llama-quantize and with `infer quantize`, reads the written
# types and shapes back with `infer inspect --json`, and compares them (and `infer quantize --dry-run`'s plan).
#
# usage: scripts/dev/compare_quantize_recipes.sh [--no-fixture]
# env:   INFER (default build/bin/infer), LLAMA_QUANTIZE (default /tmp/llama.cpp/build/bin/llama-quantize),
#        WORK (default /tmp/kinfer-recipes)
set -euo pipefail
cd "$(dirname "$0")/../.."
INFER=${INFER:-build/bin/infer}
LLAMA_QUANTIZE=${LLAMA_QUANTIZE:-/tmp/llama.cpp/build/bin/llama-quantize}
WORK=${WORK:-/tmp/kinfer-recipes}
FIXTURE=tests/fixtures/quantize_recipes.tsv
write_fixture=1
[[ "${1:-}" == "--no-fixture" ]] && write_fixture=0

TYPES="Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K F16 BF16 F32"
# name|synth flags. Keep them small: every model is quantized once per type by both tools.
MODELS=(
  "gqa4_16l|--n-embd 256 --n-layer 16 --n-head 8 --n-head-kv 2 --n-ff 512 --n-vocab 512"
  "gqa2_ff800|--n-embd 256 --n-layer 8 --n-head 4 --n-head-kv 2 --n-ff 800 --n-vocab 512"
  "embd384_ff1000|--n-embd 384 --n-layer 4 --n-head 6 --n-head-kv 2 --n-ff 1000 --n-vocab 512"
  "l80_gqa4|--n-embd 256 --n-layer 80 --n-head 4 --n-head-kv 1 --n-ff 256 --n-vocab 300"
)

mkdir -p "$WORK"
rows="$WORK/rows.tsv"
: >"$rows"
header="$WORK/header.tsv"
: >"$header"
mismatches=0
for m in "${MODELS[@]}"; do
  name=${m%%|*}
  flags=${m#*|}
  src="$WORK/$name.f32.gguf"
  # shellcheck disable=SC2086
  "$INFER" synth -o "$src" --type F32 --vocab none --seed 1 --quiet $flags >/dev/null
  echo -e "model\t$name\t$flags" >>"$header"
  for t in $TYPES; do
    out="$WORK/$name.$t.gguf"
    "$LLAMA_QUANTIZE" "$src" "$out" "$t" >"$WORK/$name.$t.log" 2>&1 || {
      echo "llama-quantize failed for $name $t (see $WORK/$name.$t.log)"
      exit 1
    }
    "$INFER" inspect --json "$out" >"$WORK/$name.$t.llama.json"
    "$INFER" quantize --dry-run "$src" "$t" >"$WORK/$name.$t.ours.txt"
    # and the file `infer quantize` actually writes
    "$INFER" quantize --quiet "$src" "$out.kinfer" "$t" >/dev/null
    "$INFER" inspect --json "$out.kinfer" >"$WORK/$name.$t.kinfer.json"
    rm -f "$out" "$out.kinfer"
  done
  # one row per tensor of this model: name, then llama.cpp's type for each file type; compare with ours
  python3 - "$WORK" "$name" "$TYPES" "$rows" <<'EOF' || mismatches=$((mismatches + 1))
import json, sys
work, name, types, rows_path = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4]
table = {}   # tensor -> [llama type per file type]
order = []
bad = 0
for i, t in enumerate(types):
    llama = json.load(open(f"{work}/{name}.{t}.llama.json"))
    ours = {}
    for line in open(f"{work}/{name}.{t}.ours.txt"):
        f = line.split()
        if len(f) >= 5 and f[3] == "->":
            ours[f[1]] = f[4]
    for tensor in llama["tensors"]:
        n, ty = tensor["name"], tensor["type"]
        if n not in table:
            table[n] = [None] * len(types)
            order.append(n)
        table[n][i] = ty
        if ours.get(n) != ty:
            bad += 1
            print(f"MISMATCH {name} {t} {n}: llama.cpp {ty}, kinfer {ours.get(n)}")
    if set(ours) != {x["name"] for x in llama["tensors"]}:
        bad += 1
        print(f"MISMATCH {name} {t}: tensor sets differ")
    written = {x["name"]: (x["type"], x["shape"]) for x in json.load(open(f"{work}/{name}.{t}.kinfer.json"))["tensors"]}
    for tensor in llama["tensors"]:
        if written.get(tensor["name"]) != (tensor["type"], tensor["shape"]):
            bad += 1
            print(f"MISMATCH {name} {t} {tensor['name']}: llama.cpp wrote {tensor['type']} {tensor['shape']}, "
                  f"infer quantize wrote {written.get(tensor['name'])}")

def key(n):  # layer, then the tensor's name, as a readable order
    if n.startswith("blk."):
        parts = n.split(".")
        return (int(parts[1]), ".".join(parts[2:]))
    return (-1 if n == "token_embd.weight" else 10**6, n)

with open(rows_path, "a") as out:
    for n in sorted(order, key=key):
        # the 80-layer model is only there for Llama-70B's attn_v rule: keep its attn_v rows only
        if name.startswith("l80") and "attn_v" not in n:
            continue
        out.write(f"{name}\t{n}\t{' '.join(table[n])}\n")
print(f"{name}: {len(order)} tensors x {len(types)} types compared, {bad} mismatches")
sys.exit(1 if bad else 0)
EOF
done

if [[ $mismatches -ne 0 ]]; then
  echo "FAILED: kinfer's recipes differ from llama.cpp's for $mismatches model(s)"
  exit 1
fi
echo "OK: kinfer quantize --dry-run matches llama-quantize for every model and type"

if [[ $write_fixture -eq 1 ]]; then
  llama_rev=$(git -C "$(dirname "$LLAMA_QUANTIZE")/../.." log -1 --format=%h 2>/dev/null || echo unknown)
  {
    echo "# Tensor types chosen by llama.cpp's llama-quantize (llama.cpp $llama_rev) for synthetic F32 models."
    echo "# Generated by scripts/dev/compare_quantize_recipes.sh; checked by tests/quantize_test.cpp."
    echo "# model<TAB>name<TAB>infer synth flags (with --vocab none); types<TAB>file types of the type columns;"
    echo "# then one row per tensor: model<TAB>tensor<TAB>type per file type (the 80-layer model: attn_v only)."
    cat "$header"
    echo -e "types\t$TYPES"
    cat "$rows"
  } >"$FIXTURE"
  echo "wrote $FIXTURE ($(wc -l <"$FIXTURE") lines, $(wc -c <"$FIXTURE") bytes)"
fi
