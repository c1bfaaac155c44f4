#!/bin/sh
# What a large, busy fleet costs the router's discovery: N discovered
# backends (default 1000) and EVENTS changes a second (default 20: a pod
# turns ready or not ready) for SECONDS (default 20), published through the
# discovery_file example plugin.  Prints the router's CPU per change and
# per rebuild (changes are coalesced: at most one rebuild every 200 ms), the
# rebuilds, and the RSS before and after.  No request is sent: this is the
# cost of keeping the table, on top of serving.
#
#   bench/discovery.sh [--no-build]        BUILD_DIR=dir N=1000 EVENTS=20 SECONDS=20
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-1000}
EVENTS=${EVENTS:-20}
SECS=${SECONDS_RUN:-${SECONDS:-20}}
BUILD_DIR=${BUILD_DIR:-$top/_build/bench}
if [ "${1:-}" != "--no-build" ]; then
    mkdir -p "$BUILD_DIR"
    (cd "$BUILD_DIR" && { [ -f Makefile ] || "$top/configure" -q; } &&
        make -s -j2 >/dev/null && make -s -j2 sdk/examples/discovery_file.la >/dev/null)
fi
bin=$BUILD_DIR/switchyard
plugins="$BUILD_DIR/sdk/examples/.libs:$BUILD_DIR/plugins/.libs"
work=$(mktemp -d)
pid=""
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
[ -z "${KEEP_LOG:-}" ] || trap 'cp "$work/log" "$KEEP_LOG"; cleanup' EXIT INT TERM

# N backends on distinct addresses, one model each of 10
lines() { # $1: which backend is not ready
    i=0
    while [ $i -lt "$N" ]; do
        state=ready
        [ $i -eq "$1" ] && state=notready
        echo "http://10.$((i / 65536 % 256)).$((i / 256 % 256)).$((i % 256)):8000 model-$((i % 10)) $state"
        i=$((i + 1))
    done
}
lines -1 >"$work/backends"
# a port nothing listens on
port=$(awk 'BEGIN { srand(); print 20000 + int(rand() * 20000) }')
while ss -ltn 2>/dev/null | grep -q ":$port "; do port=$((port + 1)); done
cat >"$work/switchyard.yaml" <<EOF
listen: 127.0.0.1:$port
workers: 2
access_log: false
discovery: [discovery_file]
plugin_config:
  discovery_file: {file: "$work/backends", interval: 25ms}
EOF
"$bin" -c "$work/switchyard.yaml" --plugin-dir "${plugins%%:*}" --plugin-dir "${plugins#*:}" \
    >"$work/log" 2>&1 &
pid=$!
i=0
while ! grep -q "discovery: now" "$work/log" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 200 ] || { cat "$work/log"; exit 1; }; sleep 0.05
done
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; }
hz=$(getconf CLK_TCK)
rss0=$(rss); cpu0=$(cpu); rebuilds0=$(grep -c "discovery: now" "$work/log")
# pre-render the files of each change: the writer's own cost stays out
k=0
while [ $k -lt 50 ]; do lines $((k * 7 % N)) >"$work/change.$k"; k=$((k + 1)); done
events=$((EVENTS * SECS)); step=$(awk "BEGIN { print 1 / $EVENTS }")
k=0
while [ $k -lt $events ]; do
    cp "$work/change.$((k % 50))" "$work/backends.tmp" && mv "$work/backends.tmp" "$work/backends"
    k=$((k + 1)); sleep "$step"
done
sleep 1
cpu1=$(cpu); rss1=$(rss); rebuilds=$(( $(grep -c "discovery: now" "$work/log") - rebuilds0 ))
awk -v c0="$cpu0" -v c1="$cpu1" -v hz="$hz" -v ev="$events" -v rb="$rebuilds" \
    -v n="$N" -v r0="$rss0" -v r1="$rss1" -v secs="$SECS" 'BEGIN {
    cpu = (c1 - c0) / hz
    printf "backends: %d, changes: %d over %d s, rebuilds: %d\n", n, ev, secs, rb
    printf "router CPU: %.2f s (%.1f%% of one core), %.2f ms a change, %.2f ms a rebuild\n",
        cpu, 100 * cpu / secs, 1000 * cpu / ev, rb ? 1000 * cpu / rb : 0
    printf "RSS: %d KiB at start, %d KiB after\n", r0, r1
}'
