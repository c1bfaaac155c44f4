#!/bin/sh
# install_check: `make install` into a scratch DESTDIR gives a working layout:
# the daemon, its plugins, the SDK header (libc-only), switchyard.pc, the
# default config; the SDK example builds out of tree with only
# `pkg-config switchyard`, loads into the installed daemon and routes.
set -u
: "${top_srcdir:?}" "${top_builddir:?}" "${MAKE:=make}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sy-install.XXXXXX")
pids=""
passed=0 failed=0
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    chmod -R u+w "$tmp" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
check() { desc=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$desc"; else bad "$desc"; sed 's/^/    /' "$tmp/out"; fi; }
finish() { echo "install_check: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

dest="$tmp/dest"
if ! $MAKE -s -C "$top_builddir" install DESTDIR="$dest" >"$tmp/install.log" 2>&1; then
    bad "make install DESTDIR"; cat "$tmp/install.log"; finish
fi
ok "make install DESTDIR"
pc=$(find "$dest" -name switchyard.pc | head -n 1)
bin=$(find "$dest" -path '*/bin/switchyard' | head -n 1)
hdr=$(find "$dest" -path '*/include/switchyard/plugin.h' | head -n 1)
conf=$(find "$dest" -path '*/switchyard/switchyard.yaml' | head -n 1)
rr=$(find "$dest" -name roundrobin.so | head -n 1)
for f in "$pc" "$bin" "$hdr" "$conf" "$rr"; do
    [ -n "$f" ] || { bad "installed layout (missing file)"; find "$dest" -type f; finish; }
done
ok "installed layout: bin, plugins, header, pkg-config, config"
plugindir=$(dirname "$rr")
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$dest"

check "plugin.h compiles with libc alone (C99, pedantic)" \
    cc -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only $(pkg-config --cflags switchyard) -x c "$hdr"
# (pkg-config prefixes its variables with PKG_CONFIG_SYSROOT_DIR)
[ "$(pkg-config --variable=plugindir switchyard)" = "$plugindir" ] &&
    ok "pkg-config plugindir is the installed plugin dir" || bad "pkg-config plugindir: $(pkg-config --variable=plugindir switchyard) vs $plugindir"

mkdir -p "$tmp/example"
cp "$top_srcdir/sdk/examples/Makefile" "$top_srcdir/sdk/examples/least_inflight.c" "$tmp/example/"
check "SDK example builds out of tree with pkg-config" $MAKE -s -C "$tmp/example"
check "SDK example installs into the plugin dir" $MAKE -s -C "$tmp/example" install

check "installed default config passes --check-config" "$bin" --check-config -c "$conf" --plugin-dir "$plugindir"

# The example plugin routes real traffic through the installed daemon.
"$top_builddir/tests/mock_backend" --port 0 --port-file "$tmp/mock.port" --name example-backend \
    --models demo-model 2>"$tmp/mock.log" &
pids="$pids $!"
i=0; while [ ! -s "$tmp/mock.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
mport=$(cat "$tmp/mock.port")
# a port nobody holds: try a few, the daemon refuses a busy one
for try in 1 2 3 4 5 6 7 8; do
    port=$(( 20000 + ($$ * 7 + try * 7919) % 20000 ))
    cat >"$tmp/sy.yaml" <<YAML
listen: 127.0.0.1:$port
workers: 1
routing: [least_inflight, roundrobin]
plugin_config:
  least_inflight: {min_gap: 1}
models:
  demo-model:
    backends: [http://127.0.0.1:$mport]
YAML
    "$bin" -c "$tmp/sy.yaml" --plugin-dir "$plugindir" 2>"$tmp/sy.log" &
    sypid=$!
    i=0; until curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 || [ $i -ge 100 ] ||
               ! kill -0 $sypid 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
    if kill -0 $sypid 2>/dev/null; then pids="$pids $sypid"; break; fi
    grep -q "Address already in use" "$tmp/sy.log" || break
done
out=$(curl -s -H 'Content-Type: application/json' -d '{"model":"demo-model","messages":[{"role":"user","content":"hi"}]}' \
    "http://127.0.0.1:$port/v1/chat/completions")
case "$out" in
    *'"backend":"example-backend"'*) ok "installed daemon with the example plugin proxies a chat request" ;;
    *) bad "installed daemon with the example plugin: got '$out'"; cat "$tmp/sy.log" ;;
esac
finish
