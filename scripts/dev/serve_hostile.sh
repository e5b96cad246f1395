#!/usr/bin/env bash
# The full hostile run of issue 12: 500 malformed or hostile requests mixed with good ones against
# `infer serve` (each gets its status, the good ones their full greedy text, the server never restarts),
# then 20 clients disconnecting mid-stream. CI runs the same checks with 60 requests (ctest serve_clients).
#   scripts/dev/serve_hostile.sh [INFER]   (default: build-asan/bin/infer when built, else build/bin/infer)
set -euo pipefail
cd "$(dirname "$0")/../.."
infer=${1:-}
if [ -z "$infer" ]; then
  infer=build/bin/infer
  [ -x build-asan/bin/infer ] && infer=build-asan/bin/infer
fi
[ -d tests/server/node_modules ] || npm ci --prefix tests/server --no-audit --no-fund --loglevel=error
for only in hostile disconnect; do
  ASAN_OPTIONS=detect_leaks=1 node tests/server/serve_test.mjs --infer "$infer" \
    --vocab data/vocab/mistral-v0.3-vocab.gguf --hostile 500 --only "$only" --no-browser
done
