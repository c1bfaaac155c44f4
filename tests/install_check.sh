#!/bin/sh
# install_check: `make install` into a scratch DESTDIR gives a working layout:
# the daemon, its plugins, the SDK header (libc-only), switchyard.pc, the
# default config; the SDK examples build out of tree with only
# `pkg-config switchyard` and install; least_inflight loads into the
# installed daemon and sends each request to the backend with the fewest
# requests in flight (checked over three backends).
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

# Every example: `make` in sdk/examples builds each NAME.c into NAME.so.
mkdir -p "$tmp/example"
examples=""
for f in "$top_srcdir"/sdk/examples/Makefile "$top_srcdir"/sdk/examples/*.c "$top_srcdir"/sdk/examples/*.h; do
    [ -f "$f" ] || continue
    cp "$f" "$tmp/example/"
    case "$f" in *.c) n=${f##*/}; examples="$examples ${n%.c}" ;; esac
done
check "SDK examples build out of tree with pkg-config:$examples" $MAKE -s -C "$tmp/example"
check "SDK examples install into the plugin dir" $MAKE -s -C "$tmp/example" install
for e in $examples; do
    [ -f "$tmp/example/$e.so" ] && [ -f "$plugindir/$e.so" ] &&
        ok "example $e: built and installed" || bad "example $e: $e.so not built or not installed in $plugindir"
done

check "installed default config passes --check-config" "$bin" --check-config -c "$conf" --plugin-dir "$plugindir"

# The least_inflight example routes real traffic through the installed
# daemon, and its picks are checked: three backends a, b, c serve demo-model;
# requests held in flight on them (X-Mock-Delay-Ms, sent through the router
# to models pinned to one backend each, so the router counts them) make one
# backend the least busy, and the next demo-model request must land there
# (the answer's X-Mock-Backend).  The expected backends, c b a b, are no
# round-robin order and no fixed position, so a plugin that declines, picks
# a constant or the busiest fails.
hold_ms=15000
for be in a b c; do
    "$top_builddir/tests/mock_backend" --port 0 --port-file "$tmp/mock-$be.port" --name "backend-$be" \
        --models demo-model 2>"$tmp/mock-$be.log" &
    pids="$pids $!"
done
for be in a b c; do
    i=0; while [ ! -s "$tmp/mock-$be.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$tmp/mock-$be.port" ] || { bad "mock backend $be did not start"; cat "$tmp/mock-$be.log"; finish; }
done
url_a=http://127.0.0.1:$(cat "$tmp/mock-a.port")
url_b=http://127.0.0.1:$(cat "$tmp/mock-b.port")
url_c=http://127.0.0.1:$(cat "$tmp/mock-c.port")
# a port nobody holds: try a few, the daemon refuses a busy one
for try in 1 2 3 4 5 6 7 8; do
    port=$(( 20000 + ($$ * 7 + try * 7919) % 20000 ))
    cat >"$tmp/sy.yaml" <<YAML
listen: 127.0.0.1:$port
workers: 2
drain_timeout: 1s
routing: [least_inflight, roundrobin]
plugin_config:
  least_inflight: {min_gap: 1}
models:
  demo-model:
    backends: [$url_a, $url_b, $url_c]
  pin-a: {backends: [$url_a]}
  pin-b: {backends: [$url_b]}
  pin-c: {backends: [$url_c]}
YAML
    "$bin" -c "$tmp/sy.yaml" --plugin-dir "$plugindir" 2>"$tmp/sy.log" &
    sypid=$!
    i=0; until curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 || [ $i -ge 100 ] ||
               ! kill -0 $sypid 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
    if kill -0 $sypid 2>/dev/null; then pids="$pids $sypid"; break; fi
    grep -q "Address already in use" "$tmp/sy.log" || break
done
chat() { # model: the answer in $tmp/headers and $tmp/body
    curl -s -o "$tmp/body" -D "$tmp/headers" -H 'Content-Type: application/json' \
        -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
        "http://127.0.0.1:$port/v1/chat/completions"
}
show() { for f in "$@"; do cat "$f"; echo; done | tr -d '\r' | sed '/^$/d; s/^/    /'; }
served_by() { sed -n 's/^[Xx]-[Mm]ock-[Bb]ackend: *\([^[:space:]]*\).*/\1/p' "$tmp/headers" | tr -d '\r'; }
inflight() { # backend: requests the mock holds
    curl -s "http://127.0.0.1:$(cat "$tmp/mock-$1.port")/_mock/stats" | sed -n 's/.*"inflight": *\([0-9]*\).*/\1/p'
}
held_a=0 held_b=0 held_c=0
# hold BACKEND COUNT: COUNT more requests held on BACKEND; returns once the
# mock holds them all (the router counted each before sending it); the
# check cannot go on when they do not arrive
hold() {
    eval "want=\$((held_$1 + $2))"
    n=0
    while [ $n -lt "$2" ]; do
        curl -s -o /dev/null --max-time 60 -H "X-Mock-Delay-Ms: $hold_ms" -H 'Content-Type: application/json' \
            -d "{\"model\":\"pin-$1\",\"messages\":[]}" "http://127.0.0.1:$port/v1/chat/completions" &
        pids="$pids $!"
        n=$((n + 1))
    done
    i=0; while [ "$(inflight "$1")" != "$want" ] && [ $i -lt 200 ]; do sleep 0.025; i=$((i + 1)); done
    eval "held_$1=\$want"
    [ "$(inflight "$1")" = "$want" ] ||
        { bad "backend $1 holds $(inflight "$1") requests, not $want"; show "$tmp/sy.log"; finish; }
}
# pick EXPECTED: the next demo-model request is served by backend EXPECTED
pick() {
    loads="a=$held_a b=$held_b c=$held_c"
    chat demo-model
    got=$(served_by)
    [ "$got" = "backend-$1" ] && ok "least_inflight ($loads in flight) picks $1" ||
        { bad "least_inflight ($loads in flight) should pick $1, picked '${got:-nothing}'"; show "$tmp/headers" "$tmp/body"; }
}
chat demo-model
if [ "$(served_by)" = "" ] || ! grep -q '"backend"' "$tmp/body"; then
    bad "installed daemon with the example plugin: no answer from a backend"; show "$tmp/headers" "$tmp/body" "$tmp/sy.log"; finish
fi
ok "installed daemon with the example plugin proxies a chat request"
# The backend that served the last request never becomes the least busy
# one next, even if the router still counted that request: one count more
# there changes no pick.
hold a 2; hold b 2; pick c
hold c 3; hold a 1; pick b
hold b 2; hold c 1; pick a
hold a 2; hold c 1; pick b
finish
