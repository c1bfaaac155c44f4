#!/bin/sh
# Kubernetes discovery at scale: N pods (default 1000) behind the fake API
# server of tests/k8s/, and EVENTS status changes a second (default 20: a
# pod's Ready condition flips) for SECONDS_RUN seconds (default 20), the
# router started with the Helm chart's flags.  Every pod is one mock engine
# listening on 0.0.0.0 (pod IPs 127.1.x.y all reach it), so /v1/models
# answers for each.  Prints the router's CPU per event (the k8s plugin and
# the core's rebuilds together), the rebuilds, and the RSS.
#
#   bench/k8s_scale.sh [--no-build]     BUILD_DIR=dir N=1000 EVENTS=20 SECONDS_RUN=20
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-1000}
EVENTS=${EVENTS:-20}
SECS=${SECONDS_RUN:-20}
BUILD_DIR=${BUILD_DIR:-$top/_build/bench}
if [ "${1:-}" != "--no-build" ]; then
    mkdir -p "$BUILD_DIR"
    (cd "$BUILD_DIR" && { [ -f Makefile ] || "$top/configure" -q; } && make -s -j2 >/dev/null &&
        make -s -j2 tests/fake_kube_apiserver tests/mock_backend >/dev/null)
fi
work=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM

wait_file() { i=0; while [ ! -s "$1" ]; do i=$((i + 1)); [ $i -lt 200 ] || exit 1; sleep 0.05; done; }

"$BUILD_DIR/tests/fake_kube_apiserver" --port 0 --port-file "$work/api.port" --history 100000 \
    --bookmark-interval 10s >"$work/api.log" 2>&1 &
pids="$pids $!"
wait_file "$work/api.port"
api=$(head -n 1 "$work/api.port")
"$BUILD_DIR/tests/mock_backend" --host 0.0.0.0 --port 0 --port-file "$work/engine.port" \
    --name engine --models llama >"$work/engine.log" 2>&1 &
pids="$pids $!"
wait_file "$work/engine.port"
engine=$(head -n 1 "$work/engine.port")

ip() { echo "127.1.$(($1 / 250)).$(($1 % 250 + 1))"; }
pod() { # index, Ready status
    printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"vllm-%d","namespace":"default","labels":{"app":"bench"}},"spec":{"containers":[{"name":"vllm"}]},"status":{"phase":"Running","podIP":"%s","conditions":[{"type":"Ready","status":"%s"}]}}' \
        "$1" "$(ip "$1")" "$2"
}
{
    printf '{"items":['
    i=0
    while [ $i -lt "$N" ]; do
        [ $i -eq 0 ] || printf ','
        pod $i True
        i=$((i + 1))
    done
    printf ']}'
} >"$work/pods.json"
curl -sf -X POST --data-binary @"$work/pods.json" "http://127.0.0.1:$api/_fake/load" >/dev/null
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: bench
contexts: [{name: bench, context: {cluster: fake, user: nobody}}]
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$api"}}]
users: [{name: nobody, user: {}}]
EOF
# a port nothing listens on
port=$(awk 'BEGIN { srand(); print 20000 + int(rand() * 20000) }')
while ss -ltn 2>/dev/null | grep -q ":$port "; do port=$((port + 1)); done
KUBECONFIG=$work/kubeconfig "$BUILD_DIR/switchyard" --host 127.0.0.1 --port "$port" \
    --plugin-dir "$BUILD_DIR/plugins/.libs" --access-log false \
    --service-discovery k8s --k8s-namespace default --k8s-label-selector app=bench \
    --k8s-port "$engine" --k8s-service-discovery-type pod-ip >"$work/router.log" 2>&1 &
router=$!
pids="$pids $router"
ready() { curl -s "http://127.0.0.1:$port/metrics" |
    awk '/^switchyard_discovered_backends\{state="ready"\}/ { print $2 }'; }
start=$(date +%s)
while [ "$(ready)" != "$N" ]; do
    [ $(($(date +%s) - start)) -lt 120 ] || { tail -n 20 "$work/router.log"; exit 1; }
    sleep 0.2
done
synced=$(($(date +%s) - start))
cpu() { awk '{ print $14 + $15 }' "/proc/$router/stat"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$router/status"; }
hz=$(getconf CLK_TCK)
rss0=$(rss); cpu0=$(cpu); rebuilds0=$(grep -c "discovery: now" "$work/router.log" || true)
events=$((EVENTS * SECS)); step=$(awk "BEGIN { print 1 / $EVENTS }")
k=0
while [ $k -lt $events ]; do
    i=$((k * 37 % N)); state=False
    [ $((k / N % 2)) -eq 0 ] || state=True
    curl -sf -X PATCH -H 'Content-Type: application/merge-patch+json' \
        --data "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"$state\"}]}}" \
        "http://127.0.0.1:$api/api/v1/namespaces/default/pods/vllm-$i/status" >/dev/null &
    k=$((k + 1)); sleep "$step"
done
wait_curls() { sleep 2; }
wait_curls
cpu1=$(cpu); rss1=$(rss); rebuilds=$(( $(grep -c "discovery: now" "$work/router.log") - rebuilds0 ))
awk -v c0="$cpu0" -v c1="$cpu1" -v hz="$hz" -v ev="$events" -v rb="$rebuilds" -v n="$N" \
    -v r0="$rss0" -v r1="$rss1" -v secs="$SECS" -v synced="$synced" 'BEGIN {
    cpu = (c1 - c0) / hz
    printf "pods: %d (all ready after %d s), status changes: %d over %d s, rebuilds: %d\n",
        n, synced, ev, secs, rb
    printf "router CPU: %.2f s (%.1f%% of one core), %.2f ms an event, %.2f ms a rebuild\n",
        cpu, 100 * cpu / (secs + 2), 1000 * cpu / ev, rb ? 1000 * cpu / rb : 0
    printf "RSS: %d KiB when synced, %d KiB after\n", r0, r1
}'
