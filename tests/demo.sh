#!/bin/sh
# Start a demo: the mock OpenAI backend on 127.0.0.1:8000 serving
# "demo-model", and switchyard on the default config (conf/switchyard.yaml)
# with the plugins of this build tree.  Ctrl-C stops both.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top}
[ -x "$build/switchyard" ] && [ -x "$build/tests/mock_backend" ] || {
    echo "demo: build first: ./autogen.sh && ./configure && make && make tests/mock_backend" >&2
    exit 2
}
"$build/tests/mock_backend" --host 127.0.0.1 --port 8000 --name demo-backend --models demo-model &
mock=$!
trap 'kill $mock 2>/dev/null' EXIT INT TERM
sleep 0.3
cat <<MSG

switchyard is starting on http://127.0.0.1:8001 in front of a demo backend.
Try, from another terminal:

  curl -s http://127.0.0.1:8001/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{"model":"demo-model","messages":[{"role":"user","content":"Hello"}]}'
  curl -sN http://127.0.0.1:8001/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{"model":"demo","stream":true,"messages":[]}'
  curl -s http://127.0.0.1:8001/v1/models
  curl -s http://127.0.0.1:8001/metrics

MSG
"$build/switchyard" -c "$top/conf/switchyard.yaml" --plugin-dir "$build/plugins/.libs"
