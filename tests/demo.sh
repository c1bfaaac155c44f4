#!/bin/sh
# Build switchyard and start a demo: the mock OpenAI backend on
# 127.0.0.1:8000 serving "demo-model", and switchyard on the default config
# (conf/switchyard.yaml) with the plugins of the build tree.  Ctrl-C stops
# both.
#
# It builds out of tree in _build/demo (running ./autogen.sh first in a git
# checkout), so the source tree stays unconfigured for tests/run_all.sh;
# BUILD_DIR=DIR uses another build directory, and a tree configured in
# place is used as it is.  Needs only what the build needs (no CUnit: the
# tests are not built).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${BUILD_DIR:-}" ]; then
    build=$BUILD_DIR
elif [ -f "$top/Makefile" ]; then
    build=$top
else
    build=$top/_build/demo
fi
jobs=$(nproc 2>/dev/null || echo 2)
echo "demo: building in $build" >&2
[ -x "$top/configure" ] || (cd "$top" && ./autogen.sh)
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || "$top/configure" -q
make -s -j"$jobs"
make -s tests/mock_backend

"$build/tests/mock_backend" --host 127.0.0.1 --port 8000 --name demo-backend --models demo-model &
mock=$!
trap 'kill $mock 2>/dev/null' EXIT INT TERM
sleep 0.3
kill -0 $mock 2>/dev/null || { echo "demo: the mock backend did not start (is port 8000 taken?)" >&2; exit 1; }
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
