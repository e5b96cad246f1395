#!/usr/bin/env bash
# Dev check (never run by CI): a GGUF SentencePiece vocabulary survives tools/train/gguf_vocab_to_hf.py
# (GGUF -> tokenizer.json) and back through `infer convert` (tokenizer.json -> GGUF): same pieces, token
# types, special ids, flags and chat template, and the same token ids for a text.
#   scripts/dev/check_vocab_roundtrip.sh [VOCAB.gguf] [TEXT]   (defaults: the Mistral v0.3 vocabulary; the
#   Pentateuch from Debian's bible-kjv plus a line of accents, CJK, tabs and control-token look-alikes)
set -euo pipefail
cd "$(dirname "$0")/../.."
vocab=${1:-data/vocab/mistral-v0.3-vocab.gguf}
work=$(mktemp -d /tmp/kinfer_vocab_rt.XXXXXX)
trap 'rm -rf "$work"' EXIT
text=${2:-}
if [[ -z $text ]]; then
  text=$work/text.txt
  bible -f "Gen1:1-Deu34:12" | sed 's/^[^ ]* //' >"$text"
  printf 'Unicode: naïve café ☕ 日本語 \t tabs  and   spaces\n[INST] not special [/INST] <s>\n' >>"$text"
fi
python3 tools/train/gguf_vocab_to_hf.py "$vocab" "$work/model"
# A minimal zero-weight model around the tokenizer, so that `infer convert` accepts the folder.
python3 - "$vocab" "$work/model" <<'PY'
import json, os, struct, sys
sys.path.insert(0, "tools/train")
from gguf_vocab_to_hf import read_gguf_metadata
n_vocab = len(read_gguf_metadata(sys.argv[1])["tokenizer.ggml.tokens"])
H, F = 8, 16
out = sys.argv[2]
json.dump({"architectures": ["MistralForCausalLM"], "hidden_size": H, "intermediate_size": F,
           "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": n_vocab,
           "max_position_embeddings": 64, "tie_word_embeddings": True}, open(os.path.join(out, "config.json"), "w"))
shapes = {"model.embed_tokens.weight": [n_vocab, H], "model.norm.weight": [H],
          "model.layers.0.input_layernorm.weight": [H], "model.layers.0.post_attention_layernorm.weight": [H],
          "model.layers.0.self_attn.q_proj.weight": [H, H], "model.layers.0.self_attn.k_proj.weight": [4, H],
          "model.layers.0.self_attn.v_proj.weight": [4, H], "model.layers.0.self_attn.o_proj.weight": [H, H],
          "model.layers.0.mlp.gate_proj.weight": [F, H], "model.layers.0.mlp.up_proj.weight": [F, H],
          "model.layers.0.mlp.down_proj.weight": [H, F]}
header, off = {}, 0
for name, shape in shapes.items():
    n = 4
    for d in shape:
        n *= d
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}
    off += n
h = json.dumps(header).encode()
open(os.path.join(out, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + bytes(off))
PY
./build/bin/infer convert "$work/model" "$work/back.gguf" --type F32 --quiet >/dev/null
python3 - "$vocab" "$work/back.gguf" <<'PY'
import sys
sys.path.insert(0, "tools/train")
from gguf_vocab_to_hf import read_gguf_metadata
a, b = read_gguf_metadata(sys.argv[1]), read_gguf_metadata(sys.argv[2])
bad = [k for k in ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id",
                   "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
                   "tokenizer.chat_template"] if a.get(k) != b.get(k)]
print("metadata:", "identical" if not bad else "DIFFERS in " + ", ".join(bad))
sys.exit(1 if bad else 0)
PY
./build/bin/infer tokenize -m "$vocab" -f "$text" --ids >"$work/a.ids"
./build/bin/infer tokenize -m "$work/back.gguf" -f "$text" --ids >"$work/b.ids"
n=$(tr ',' '\n' <"$work/a.ids" | wc -l)
if cmp -s "$work/a.ids" "$work/b.ids"; then echo "tokens: identical ($n tokens)"; else echo "tokens: DIFFER"; exit 1; fi
