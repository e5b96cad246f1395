#!/usr/bin/env bash
# Dev-only: regenerates the chat template fixtures (never run by the build or CI).
#   LLAMA_CPP=/tmp/llama.cpp scripts/dev/gen_chat_fixtures.sh
# Needs a llama.cpp checkout built in $LLAMA_CPP/build (libllama.so, libggml-base.so) and a python3 with jinja2.
# Writes tests/fixtures/tokenizer/chat_expected.llama-cpp.txt   (llama_chat_apply_template, built-in templates)
#    and tests/fixtures/tokenizer/chat_expected.jinja.txt       (the Mistral v0.3 file's own Jinja template)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
llama=${LLAMA_CPP:-/tmp/llama.cpp}
shared=${SHARED_DIR:-$repo/../shared}
fixtures=$repo/tests/fixtures/tokenizer
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

g++ -std=c++17 -O1 -o "$work/chat_template_ref" "$here/chat_template_ref.cpp" \
    -I"$llama/include" -I"$llama/ggml/include" -L"$llama/build/bin" -lllama -lggml-base \
    -Wl,-rpath,"$llama/build/bin"

"$work/chat_template_ref" "$fixtures/chat_conversations.txt" \
    mistral-v3 mistral-v1 llama2 llama2-sys llama2-sys-bos llama2-sys-strip chatml zephyr \
    > "$fixtures/chat_expected.llama-cpp.txt"

"$work/chat_template_ref" --print-template "$shared/vocab/mistral-v0.3-vocab.gguf" > "$work/mistral-v0.3.jinja"
python3 "$here/render_jinja_chat.py" "$work/mistral-v0.3.jinja" "$fixtures/chat_conversations.txt" \
    mistral-v3 '<s>' '</s>' > "$fixtures/chat_expected.jinja.txt"
wc -l "$fixtures"/chat_expected.*.txt
