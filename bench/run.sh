#!/usr/bin/env bash
# bench/run.sh - switchyard's benchmark: direct vs switchyard vs nginx as a
# reverse proxy, in front of a fast fixed backend (nginx returning a canned
# chat completion).  See bench/README.md for what each number means.
#
# usage: bench/run.sh [--quick] [--stream] [--large] [--rss] [--all]
#                     [--no-requests] [--no-build] [--duration S] [--workers N]
#
#   (no mode)   the request table: 1 KB chat POSTs at 32 and 1 connections
#   --stream    also N concurrent SSE streams of M chunks (bench/sse_backend.c)
#   --large     also 1 MiB prompt bodies
#   --rss       also the router's RSS after 100k and after 1M requests
#   --all       all four
#   --no-requests  skip the request table (with --stream and/or --large)
#   --quick     1 s per measurement, no warm-up, small stream run (smoke test)
#   --no-build  use an existing build: BUILD_DIR, else _build/bench
#
# Environment: BUILD_DIR (a configured and built tree; implies --no-build),
# RSS_REQUESTS (--rss: the long run, default 1000000; --quick: 20000),
# DURATION (seconds per measurement, default 5), WORKERS (default nproc),
# STREAMS, CHUNKS, CHUNK_DELAY_MS (streaming mode, default 200, 100, 10),
# BENCH_PORT (first port to try; default random, below the ephemeral range),
# PIN=0 (do not pin the single-connection runs to one CPU).
#
# Everything listens on 127.0.0.1 only, lives in a temporary directory, and
# is stopped on exit.  Installs nothing.  Exit status: 0 done, 1 a
# measurement failed, 2 usage or a missing tool / build.

set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(dirname "$here")

quick=0 stream=0 large=0 rss=0 requests=1 build=1
DURATION=${DURATION:-}
WORKERS=${WORKERS:-}
[ -n "${BUILD_DIR:-}" ] && build=0

usage() { sed -n '6,25s/^# \{0,1\}//p' "$0"; }
die() { echo "bench: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--stream) stream=1 ;;
	--large) large=1 ;;
	--rss) rss=1 ;;
	--all) stream=1 large=1 rss=1 ;;
	--no-requests) requests=0 ;;
	--no-build) build=0 ;;
	--duration) shift; DURATION=${1:-} ;;
	--duration=*) DURATION=${1#*=} ;;
	--workers) shift; WORKERS=${1:-} ;;
	--workers=*) WORKERS=${1#*=} ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

if [ $quick = 1 ]; then
	DURATION=${DURATION:-1}
	STREAMS=${STREAMS:-8} CHUNKS=${CHUNKS:-10} CHUNK_DELAY_MS=${CHUNK_DELAY_MS:-5}
	warmup=0
else
	DURATION=${DURATION:-5}
	warmup=1
fi
STREAMS=${STREAMS:-200} CHUNKS=${CHUNKS:-100} CHUNK_DELAY_MS=${CHUNK_DELAY_MS:-10}
NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
WORKERS=${WORKERS:-$NPROC}
for v in DURATION WORKERS STREAMS CHUNKS CHUNK_DELAY_MS; do
	eval "x=\$$v"
	case $x in ''|*[!0-9]*) die "$v must be a number (got '$x')" ;; esac
done
[ "$WORKERS" -ge 1 ] && [ "$DURATION" -ge 1 ] && [ "$STREAMS" -ge 1 ] || die "WORKERS, DURATION, STREAMS must be >= 1"

# ---- tools ----
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; })
WRK=$(command -v wrk)
missing=
[ -n "$NGINX" ] || missing="$missing nginx"
[ -n "$WRK" ] || missing="$missing wrk"
if [ -n "$missing" ]; then
	echo "bench: missing:$missing" >&2
	echo "bench: install with: sudo apt-get install -y nginx-light wrk   (or nginx instead of nginx-light)" >&2
	exit 2
fi
command -v curl >/dev/null || die "missing: curl (sudo apt-get install -y curl)"

# ---- build ----
if [ $build = 1 ]; then
	BUILD_DIR=$srcdir/_build/bench
	echo "bench: building in $BUILD_DIR" >&2
	mkdir -p "$BUILD_DIR" || exit 2
	( cd "$BUILD_DIR" &&
	  { [ -f Makefile ] || ../../configure -q 2> configure.err || { cat configure.err >&2; false; }; } &&
	  make -s -j2 >/dev/null ) || die "build failed"
fi
BUILD_DIR=${BUILD_DIR:-$srcdir/_build/bench}
BUILD_DIR=$(cd "$BUILD_DIR" 2>/dev/null && pwd) || die "no build directory (run without --no-build, or set BUILD_DIR)"
SWITCHYARD=$BUILD_DIR/switchyard
PLUGIN_DIR=$BUILD_DIR/plugins/.libs
[ -x "$SWITCHYARD" ] || die "$SWITCHYARD not built"
[ -d "$PLUGIN_DIR" ] || die "$PLUGIN_DIR missing"

# ---- processes and cleanup ----
TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX") || die "mktemp failed"
pids=
stop_pid() {
	local p=$1 i
	kill "$p" 2>/dev/null || return 0
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}
cleanup() {
	local p
	trap - EXIT INT TERM HUP
	for p in $pids; do stop_pid "$p"; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM HUP
forget() { local p out=; for p in $pids; do [ "$p" = "$1" ] || out="$out $p"; done; pids=$out; }
stop() { stop_pid "$1"; forget "$1"; }

# A free loopback port: no socket (listening or not, IPv4 or IPv6) has it
# as its local port.  Taken below the kernel's ephemeral range, where client
# connections (wrk's, the proxies' upstream ones) take theirs.
eph_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
[ "${eph_low:-0}" -gt 12000 ] 2>/dev/null || eph_low=32768
next_port=${BENCH_PORT:-$((10000 + ($$ * 7 + RANDOM) % (eph_low - 12000)))}
in_use() {
	awk -v p="$(printf '%04X' "$1")" 'FNR > 1 { split($2, a, ":"); if (a[2] == p) f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}
pick_port() { # pick_port VAR (no subshell: next_port must advance)
	while in_use "$next_port"; do next_port=$((next_port + 1)); done
	eval "$1=\$next_port"
	next_port=$((next_port + 1))
}
# wait_port PORT PID NAME LOG: until PORT accepts, at most 10 s.
wait_port() {
	local i
	for i in $(seq 1 100); do
		if ! kill -0 "$2" 2>/dev/null; then
			echo "bench: $3 exited at start:" >&2; tail -n 5 "$4" >&2; exit 1
		fi
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench: $3 does not listen on $1:" >&2; tail -n 5 "$4" >&2; exit 1
}

# ---- bodies ----
MODEL=bench-model
SYSTEM='You are a helpful, concise assistant for a software company. Answer the user accurately, cite the relevant section of the documentation when you can, and say so plainly when you do not know. Prefer short paragraphs and code blocks for commands. Never invent configuration keys.'
USER_TEXT='Our team runs three inference servers behind a router and we see occasional 503 answers when one of them restarts. The router is configured with two models, a large one and a small one, and the large one should fall back to the small one when all of its backends are down. Could you explain how retries and fallback interact, what the client sees in the response headers, and which settings control how long a request may wait before it gets an error? Please also suggest a way to test this locally with a mock backend.'
chat_body() { # chat_body STREAM [USER_CONTENT_FILE]
	printf '{"model":"%s","messages":[{"role":"system","content":"%s"},{"role":"user","content":"' "$MODEL" "$SYSTEM"
	if [ -n "${2:-}" ]; then cat "$2"; else printf '%s' "$USER_TEXT"; fi
	printf '"}],"max_tokens":256,"temperature":0.7,"top_p":0.95,"stream":%s,"user":"bench-client-0042"}' "$1"
}
chat_body false > "$TMP/body.json"
BODY_BYTES=$(wc -c < "$TMP/body.json")
if [ $large = 1 ]; then
	# 1 MiB of prompt text, then the same chat envelope.
	yes "$USER_TEXT" | tr -d '\n' | head -c $((1024 * 1024)) > "$TMP/prompt.txt"
	chat_body false "$TMP/prompt.txt" > "$TMP/large.json"
	rm -f "$TMP/prompt.txt"
fi
[ $stream = 1 ] && chat_body true > "$TMP/stream.json"

cat > "$TMP/post.lua" <<'EOF'
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
EOF

# A canned, realistic chat completion (nginx's return takes it verbatim).
COMPLETION='{"id":"chatcmpl-bench0001","object":"chat.completion","created":1700000000,"model":"bench-model","system_fingerprint":"fp_bench","choices":[{"index":0,"message":{"role":"assistant","content":"When every backend of the large model fails, the router retries on the small model and adds an X-Switchyard-Fallback header to the answer."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":187,"completion_tokens":31,"total_tokens":218}}'

# ---- servers ----
nginx_common() { # nginx_common DIR
	mkdir -p "$1/tmp"
	cat <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_max_body_size 64m;
    client_body_buffer_size 2m;
EOF
}
start_nginx() { # start_nginx NAME DIR: sets PID
	"$NGINX" -p "$2" -c "$2/nginx.conf" -e "$2/error.log" > "$2/out.log" 2>&1 &
	PID=$!
	pids="$pids $PID"
}
# The backend: one nginx process, two ports.  BACKEND_PORT answers at once
# ("return" discards the body; fine for 1 KB bodies, which come with the
# headers).  LARGE_PORT reads the whole body first, as an inference server
# does: mirror reads it before the content phase, the static handler
# refuses POST (405) and error_page turns that into the canned answer.
# Without this, nginx answers a 1 MiB POST before it has read it, and a
# proxy that is still sending must drop its upstream connection.
start_backend() { # sets BACKEND_PORT LARGE_PORT BACKEND_PID
	local d=$TMP/backend
	pick_port BACKEND_PORT
	pick_port LARGE_PORT
	mkdir -p "$d/www/v1/chat"
	printf '%s' "$COMPLETION" > "$d/www/v1/chat/completions"
	{ nginx_common "$d"; cat <<EOF
    default_type application/json;
    server {
        listen 127.0.0.1:$BACKEND_PORT;
        location / { return 200 '$COMPLETION'; }
    }
    server {
        listen 127.0.0.1:$LARGE_PORT;
        root $d/www;
        location / { mirror /_read_body; error_page 404 405 =200 @canned; }
        location = /_read_body { internal; return 204; }
        location @canned { return 200 '$COMPLETION'; }
    }
}
EOF
	} > "$d/nginx.conf"
	start_nginx backend "$d"; BACKEND_PID=$PID
	wait_port "$BACKEND_PORT" "$PID" "nginx backend" "$d/error.log"
	wait_port "$LARGE_PORT" "$PID" "nginx backend" "$d/error.log"
}
start_nginx_proxy() { # start_nginx_proxy UPSTREAM_PORT: sets PORT PID
	local d=$TMP/nginx-proxy
	pick_port PORT
	mkdir -p "$d"
	{ nginx_common "$d"; cat <<EOF
    upstream backend {
        server 127.0.0.1:$1;
        keepalive 64;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
	} > "$d/nginx.conf"
	start_nginx nginx-proxy "$d"
	wait_port "$PORT" "$PID" "nginx proxy" "$d/error.log"
}
start_switchyard() { # start_switchyard NAME WORKERS BACKEND_URL: sets PORT PID
	local d=$TMP/$1
	pick_port PORT
	mkdir -p "$d"
	cat > "$d/switchyard.yaml" <<EOF
listen: 127.0.0.1:$PORT
workers: $2
log_level: warning
access_log: false   # as the nginx proxy's access_log off
plugin_dir: $PLUGIN_DIR
models:
  $MODEL:
    backends: [$3]
EOF
	"$SWITCHYARD" -c "$d/switchyard.yaml" > "$d/log" 2>&1 &
	PID=$!
	pids="$pids $PID"
	wait_port "$PORT" "$PID" "$1" "$d/log"
}
start_sse() { # sets SSE_PORT SSE_PID
	pick_port SSE_PORT
	"$TMP/sse_backend" --host 127.0.0.1 --port "$SSE_PORT" \
		--chunks "$CHUNKS" --chunk-delay-ms "$CHUNK_DELAY_MS" > "$TMP/sse.log" 2>&1 &
	SSE_PID=$!
	pids="$pids $SSE_PID"
	wait_port "$SSE_PORT" "$SSE_PID" sse_backend "$TMP/sse.log"
}

# check NAME PORT BODY: one request must answer 200.
check() {
	local code
	code=$(curl -s -m 10 -o "$TMP/check.out" -w '%{http_code}' -H 'Content-Type: application/json' \
		-H 'Expect:' --data-binary "@$3" "http://127.0.0.1:$2/v1/chat/completions")
	if [ "$code" != 200 ]; then
		echo "bench: $1 answered $code, not 200:" >&2; head -c 300 "$TMP/check.out" >&2; echo >&2
		exit 1
	fi
}

# ---- measuring ----
CLK_TCK=$(getconf CLK_TCK)
# cpu_ns PID: CPU time of a process, all its threads, in nanoseconds: the
# scheduler's exact figure (/proc/PID/task/*/schedstat) when the kernel has
# it, else utime + stime from /proc/PID/stat (clock ticks, 10 ms apiece).
cpu_ns() {
	local f
	for f in /proc/"$1"/task/*/schedstat; do
		if [ -r "$f" ]; then
			cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
			return
		fi
		break
	done
	sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$CLK_TCK" '{ printf "%.0f\n", ($12 + $13) * 1e9 / hz }'
}
vm_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# At one connection every process of the chain (wrk, router, backend) runs
# on one CPU: there is nothing to run in parallel, and on a VM a wake-up
# across CPUs costs tens of microseconds or not, as placement falls, which
# makes unpinned single-connection latencies bimodal.  PIN=0 turns it off.
PIN_CPU= ALL_CPUS=
if [ "${PIN:-1}" != 0 ] && command -v taskset >/dev/null; then
	ALL_CPUS=$(taskset -p -c $$ 2>/dev/null | sed 's/.*: *//')
	PIN_CPU=$(echo "$ALL_CPUS" | tr ',' '\n' | tail -n 1 | sed 's/.*-//')
fi
pin() { # pin CPUS PID...: all threads of each PID
	local cpus=$1 p
	shift
	[ -n "$PIN_CPU" ] || return 0
	for p in "$@"; do taskset -a -p -c "$cpus" "$p" >/dev/null 2>&1; done
}

# wrk_run CONNS THREADS SECONDS PORT BODY OUT (PINNED=cpu: run wrk there)
wrk_run() {
	BENCH_BODY=$5 timeout $(($3 + 30)) ${PINNED:+taskset -c "$PINNED"} "$WRK" -t"$2" -c"$1" -d"$3"s --timeout 10s --latency \
		-s "$TMP/post.lua" "http://127.0.0.1:$4/v1/chat/completions" > "$6" 2>&1
}
# wrk_parse FILE: prints "req/s p50_us p99_us requests errors"
wrk_parse() {
	awk '
	function us(v) {
		if (v ~ /us$/) return v + 0
		if (v ~ /ms$/) return (v + 0) * 1000
		if (v ~ /m$/) return (v + 0) * 60e6
		if (v ~ /s$/) return (v + 0) * 1e6
		return -1
	}
	$1 == "50%" { p50 = us($2) }
	$1 == "99%" { p99 = us($2) }
	/requests in/ { n = $1 }
	/^Requests\/sec:/ { rps = $2 }
	/Non-2xx or 3xx responses:/ { err += $NF }
	/Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
	END {
		if (rps == "" || n == "") { print "fail"; exit }
		printf "%.1f %.1f %.1f %d %d\n", rps, p50, p99, n, err
	}' "$1"
}

# per_req NS WRK_PARSE_FIELDS...: CPU microseconds per request
per_req() {
	awk -v d="$1" -v n="${5:-0}" 'BEGIN { printf "%.1f", (n > 0 ? d / 1e3 / n : 0) }'
}
# measure NAME PORT PID BODY: one table row (c32 and c1 runs).
ROWS=$TMP/rows
measure() {
	local name=$1 port=$2 pid=$3 body=$4 t0 t1 c32 c1 cpu cpu1 out=$TMP/wrk.$1
	check "$name" "$port" "$body"
	[ $warmup = 1 ] && wrk_run 32 2 1 "$port" "$body" /dev/null
	t0=$(cpu_ns "$pid")
	wrk_run 32 2 "$DURATION" "$port" "$body" "$out.c32"
	t1=$(cpu_ns "$pid")
	c32=$(wrk_parse "$out.c32")
	cpu=$(per_req $((t1 - t0)) $c32)
	pin "$PIN_CPU" "$pid" "$BACKEND_PID"
	t0=$(cpu_ns "$pid")
	PINNED=$PIN_CPU wrk_run 1 1 "$DURATION" "$port" "$body" "$out.c1"
	t1=$(cpu_ns "$pid")
	pin "$ALL_CPUS" "$pid" "$BACKEND_PID"
	c1=$(wrk_parse "$out.c1")
	if [ "$c32" = fail ] || [ "$c1" = fail ]; then
		echo "bench: wrk failed against $name:" >&2; cat "$out.c32" "$out.c1" >&2
		exit 1
	fi
	cpu1=$(per_req $((t1 - t0)) $c1)
	set -- $c32; local rps=$1 p50=$2 p99=$3 err=$5
	set -- $c1; local q50=$2 q99=$3
	err=$((err + $5))
	printf '%-14s %10s %9s %9s %9s %9s %9s %9s %7s\n' "$name" "$rps" "$p50" "$p99" "$q50" "$q99" \
		"$cpu" "$cpu1" "$err" | tee -a "$ROWS"
}
table_head() {
	printf '%-14s %10s %9s %9s %9s %9s %9s %9s %7s\n' target 'req/s' c32_p50 c32_p99 c1_p50 c1_p99 \
		cpu/req c1_cpu/req errors
}
# col NAME N: column N of NAME's row (of the current table)
col() { awk -v t="$1" -v c="$2" '$1 == t { v = $c } END { print v }' "$ROWS"; }
sy_targets() { echo switchyard-1; [ "$WORKERS" = 1 ] || echo "switchyard-$WORKERS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.0f", a - b }'; }

# ---- header ----
echo "== switchyard benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $NPROC CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
echo "tools: $("$NGINX" -v 2>&1 | sed 's/.*version: //'), $("$WRK" -v 2>&1 | head -n 1 | awk '{ print "wrk " $2 }'), $("$SWITCHYARD" --version 2>/dev/null | head -n 1) ($BUILD_DIR)"
echo "times in microseconds; cpu/req = CPU time of the measured server process / requests served"
if [ -n "$PIN_CPU" ]; then
	echo "c1 runs: wrk, the measured server and the backend all pinned to CPU $PIN_CPU (PIN=0: not pinned)"
else
	echo "c1 runs: not pinned"
fi

start_backend
BACKEND=http://127.0.0.1:$BACKEND_PORT

# ---- requests ----
if [ $requests = 1 ]; then
	: > "$ROWS"
	echo
	echo "== requests: ${BODY_BYTES}-byte chat body; c32: wrk -t2 -c32 -d${DURATION}s, c1: wrk -t1 -c1 -d${DURATION}s"
	table_head
	measure direct "$BACKEND_PORT" "$BACKEND_PID" "$TMP/body.json"
	start_switchyard switchyard-1 1 "$BACKEND"
	measure switchyard-1 "$PORT" "$PID" "$TMP/body.json"
	stop "$PID"
	if [ "$WORKERS" != 1 ]; then
		start_switchyard "switchyard-$WORKERS" "$WORKERS" "$BACKEND"
		measure "switchyard-$WORKERS" "$PORT" "$PID" "$TMP/body.json"
		stop "$PID"
	fi
	start_nginx_proxy "$BACKEND_PORT"
	measure nginx-1 "$PORT" "$PID" "$TMP/body.json"
	stop "$PID"

	sy_rps=$(col switchyard-1 2) ng_rps=$(col nginx-1 2) d_rps=$(col direct 2)
	sy_cpu=$(col switchyard-1 7) ng_cpu=$(col nginx-1 7)
	echo "ratios: switchyard-1/direct req/s $(ratio "$sy_rps" "$d_rps"), switchyard-1/nginx-1 req/s $(ratio "$sy_rps" "$ng_rps"), switchyard-$WORKERS/nginx-1 req/s $(ratio "$(col "switchyard-$WORKERS" 2)" "$ng_rps"), switchyard-1/nginx-1 cpu/req $(ratio "$sy_cpu" "$ng_cpu")"
	for t in $(sy_targets) nginx-1; do
		[ -n "$(col "$t" 2)" ] || continue
		echo "added at c1 over direct: $t p50 $(diff_us "$(col "$t" 5)" "$(col direct 5)") us, p99 $(diff_us "$(col "$t" 6)" "$(col direct 6)") us"
	done
	goal() { if awk "BEGIN { exit !($2) }"; then echo "goal: $1: met"; else echo "goal: $1: MISSED"; fi; }
	goal "switchyard-1 req/s >= nginx-1 ($(ratio "$sy_rps" "$ng_rps")x)" "$sy_rps >= $ng_rps"
	goal "switchyard-1 cpu/req <= nginx-1 ($sy_cpu vs $ng_cpu us)" "$sy_cpu <= $ng_cpu"
	a50=$(diff_us "$(col switchyard-1 5)" "$(col direct 5)") a99=$(diff_us "$(col switchyard-1 6)" "$(col direct 6)")
	goal "switchyard-1 added p50 at c1 <= 30 us ($a50)" "$a50 <= 30"
	goal "switchyard-1 added p99 at c1 <= 150 us ($a99)" "$a99 <= 150"
fi

# ---- large bodies ----
if [ $large = 1 ]; then
	: > "$ROWS"
	echo
	echo "== large: $(wc -c < "$TMP/large.json")-byte chat body (1 MiB prompt); c32: wrk -t2 -c32 -d${DURATION}s, c1: wrk -t1 -c1 -d${DURATION}s"
	echo "(backend reads the whole body before answering)"
	table_head
	measure direct "$LARGE_PORT" "$BACKEND_PID" "$TMP/large.json"
	start_switchyard switchyard-1 1 "http://127.0.0.1:$LARGE_PORT"
	measure switchyard-1 "$PORT" "$PID" "$TMP/large.json"
	stop "$PID"
	start_nginx_proxy "$LARGE_PORT"
	measure nginx-1 "$PORT" "$PID" "$TMP/large.json"
	stop "$PID"
	echo "ratios: switchyard-1/direct req/s $(ratio "$(col switchyard-1 2)" "$(col direct 2)"), switchyard-1/nginx-1 req/s $(ratio "$(col switchyard-1 2)" "$(col nginx-1 2)"), switchyard-1/nginx-1 cpu/req $(ratio "$(col switchyard-1 7)" "$(col nginx-1 7)")"
fi

# ---- memory over many requests ----
# The router's RSS after a tenth of the run and after all of it: a leak or
# a pool that grows with every request shows as growth between the two.
if [ $rss = 1 ]; then
	total=${RSS_REQUESTS:-}
	[ -n "$total" ] || { [ $quick = 1 ] && total=20000 || total=1000000; }
	case $total in ''|*[!0-9]*) die "RSS_REQUESTS must be a number (got '$total')" ;; esac
	echo
	echo "== memory: switchyard-1 RSS after $((total / 10)) and after $total requests (wrk -t2 -c32)"
	start_switchyard switchyard-1 1 "$BACKEND"
	check switchyard-1 "$PORT" "$TMP/body.json"
	idle=$(vm_kib "$PID" VmRSS)
	# serve_until N: wrk runs of 1 s until N requests in all have been served
	served=0
	serve_until() {
		while [ "$served" -lt "$1" ]; do
			wrk_run 32 2 1 "$PORT" "$TMP/body.json" "$TMP/wrk.rss"
			set -- "$1" $(wrk_parse "$TMP/wrk.rss")
			[ "$2" != fail ] && [ "$6" = 0 ] || { echo "bench: wrk failed or saw errors:" >&2; cat "$TMP/wrk.rss" >&2; exit 1; }
			served=$((served + $5))
		done
	}
	serve_until $((total / 10))
	n1=$served r1=$(vm_kib "$PID" VmRSS)
	serve_until "$total"
	n2=$served r2=$(vm_kib "$PID" VmRSS)
	stop "$PID"
	growth=$(awk -v a="$r1" -v b="$r2" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')
	echo "rss: idle $idle KiB, after $n1 requests $r1 KiB, after $n2 requests $r2 KiB: $growth%"
	if awk -v g="$growth" 'BEGIN { exit !(g <= 5) }'; then
		echo "goal: RSS flat (within 5%) from $n1 to $n2 requests: met"
	else
		echo "goal: RSS flat (within 5%) from $n1 to $n2 requests: MISSED"
	fi
	if [ "$idle" -lt 16384 ]; then echo "goal: idle RSS < 16 MiB ($idle KiB): met"
	else echo "goal: idle RSS < 16 MiB ($idle KiB): MISSED"; fi
fi

# ---- streaming ----
if [ $stream = 1 ]; then
	for prog in stream_client sse_backend; do
		libs=
		[ $prog = stream_client ] && libs=$(curl-config --libs 2>/dev/null || echo -lcurl)
		cc -O2 -o "$TMP/$prog" "$here/$prog.c" $libs 2> "$TMP/cc.log" || {
			cat "$TMP/cc.log" >&2
			die "cannot build bench/$prog.c (needs cc and libcurl4-openssl-dev)"
		}
	done
	start_sse
	echo
	echo "== stream: $STREAMS concurrent SSE streams x $CHUNKS chunks, one every $CHUNK_DELAY_MS ms; delay = arrival - backend's write time, per chunk"
	printf '%-14s %7s %7s %9s %9s %9s %9s %9s %9s %9s\n' target streams ok first delay_mean delay_p50 delay_p99 \
		cpu/chunk rss_idle rss_max
	: > "$ROWS"
	stream_run() { # stream_run NAME PORT PID(of the router, or - direct)
		local out=$TMP/stream.$1 idle=- hwm=- tmo=$(( (CHUNKS + 1) * CHUNK_DELAY_MS / 1000 + 30 ))
		local cpid=$3 t0 t1
		[ "$3" = - ] && cpid=$SSE_PID
		[ "$3" != - ] && idle=$(vm_kib "$3" VmRSS)
		t0=$(cpu_ns "$cpid")
		timeout $((tmo + 10)) "$TMP/stream_client" "http://127.0.0.1:$2/v1/chat/completions" \
			"$TMP/stream.json" "$STREAMS" "$tmo" > "$out" 2> "$out.err"
		t1=$(cpu_ns "$cpid")
		[ "$3" != - ] && hwm=$(vm_kib "$3" VmHWM)
		if ! grep -q '^streams=' "$out"; then
			echo "bench: stream client failed against $1:" >&2; head -n 5 "$out.err" >&2; exit 1
		fi
		awk -v name="$1" -v idle="$idle" -v hwm="$hwm" -v d=$((t1 - t0)) '{
			for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			printf "%-14s %7d %7d %9.1f %9.1f %9.1f %9.1f %9.2f %9s %9s\n", name, v["streams"], v["ok"],
				v["first_mean_us"], v["delay_mean_us"], v["delay_p50_us"], v["delay_p99_us"],
				(v["events"] > 0 ? d / 1e3 / v["events"] : 0), idle, hwm
		}' "$out" | tee -a "$ROWS"
	}
	stream_run direct "$SSE_PORT" -
	start_switchyard switchyard-1 1 "http://127.0.0.1:$SSE_PORT"
	stream_run switchyard-1 "$PORT" "$PID"
	stop "$PID"
	if [ "$WORKERS" != 1 ]; then
		start_switchyard "switchyard-$WORKERS" "$WORKERS" "http://127.0.0.1:$SSE_PORT"
		stream_run "switchyard-$WORKERS" "$PORT" "$PID"
		stop "$PID"
	fi
	for t in $(sy_targets); do
		[ -n "$(col "$t" 2)" ] || continue
		echo "added per chunk over direct: $t mean $(diff_us "$(col "$t" 5)" "$(col direct 5)") us, p50 $(diff_us "$(col "$t" 6)" "$(col direct 6)") us, p99 $(diff_us "$(col "$t" 7)" "$(col direct 7)") us; first event $(diff_us "$(col "$t" 4)" "$(col direct 4)") us; router CPU $(col "$t" 8) us/chunk, RSS $(col "$t" 9) KiB idle, $(col "$t" 10) KiB max"
	done
	bad=$(awk '$2 != $3' "$ROWS")
	[ -z "$bad" ] || { echo "bench: some streams failed" >&2; exit 1; }
fi
echo
echo "done"
