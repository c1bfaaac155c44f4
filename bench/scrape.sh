#!/bin/sh
# What scraping engine stats costs the router: N backends (default 200),
# each a port of one nginx serving a static /metrics shaped like vLLM 0.10's
# (two data-parallel engines, 60 KB), scraped every second
# (`engine_stats_interval: 1`), no request sent.  The same router with
# `engine_stats_interval: 0` gives the baseline, in the same run.  Prints the
# scrapes nginx served, the router's CPU in percent of one core with and
# without scraping and the difference, nginx's CPU for reference, and the
# router's RSS; also how many scrapes opened a new connection and how far
# apart the scrapes of a backend came (from nginx's access log).  Checks that every backend has fresh engine stats in
# /engines (not null, not stale, the values of the file).
#
#   bench/scrape.sh [--no-build]     BUILD_DIR=dir N=200 SECONDS_RUN=30 INTERVAL=1 TARGET=2
#
# KEEP_LOG=file: keep the scraping router's log there.
# WRAP: a command to run the router under (valgrind --tool=callgrind ...:
# then its CPU figures are valgrind's, only its profile counts).
# Exit status: 0 the cost is under TARGET percent of one core (default 2),
# the scrapes came as often as asked (at least 90% of N / INTERVAL a second)
# and every backend has fresh stats; 1 not; 2 a missing tool or a failed start.
set -eu
export LC_ALL=C
top=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-200}
SECS=${SECONDS_RUN:-30}
INTERVAL=${INTERVAL:-1}
TARGET=${TARGET:-2}
WARMUP=3
BUILD_DIR=${BUILD_DIR:-$top/_build/bench}
if [ "${1:-}" != "--no-build" ]; then
    mkdir -p "$BUILD_DIR"
    (cd "$BUILD_DIR" && { [ -f Makefile ] || "$top/configure" -q; } && make -s -j2 >/dev/null)
fi
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
for t in curl jq; do command -v $t >/dev/null || { echo "scrape: missing $t" >&2; exit 2; }; done
[ -n "$NGINX" ] || { echo "scrape: missing nginx (apt-get install -y nginx-light)" >&2; exit 2; }
bin=$BUILD_DIR/switchyard
work=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-scrape.XXXXXX")
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE
[ -z "${KEEP_LOG:-}" ] || trap 'cp "$work/router-$INTERVAL.log" "$KEEP_LOG" 2>/dev/null; cleanup' EXIT

# ---- /metrics of a vLLM 0.10 server with two data-parallel engines ----
# running 3+4, waiting 1+2, kv_cache_usage 0.25 and 0.5, prefix cache hits
# 1000+3000 of 4000+6000 queries, 16-token blocks, 8192+8192 GPU blocks.
mkdir -p "$work/nginx/www" "$work/nginx/tmp"
awk -v model="meta-llama/Llama-3.1-8B-Instruct" 'BEGIN {
    m = "model_name=\"" model "\""
    created = 1759300000.123
    print "# HELP python_gc_objects_collected_total Objects collected during gc"
    print "# TYPE python_gc_objects_collected_total counter"
    for (g = 0; g < 3; g++) printf "python_gc_objects_collected_total{generation=\"%d\"} %d.0\n", g, 31245 / (g + 1)
    print "# HELP python_gc_objects_uncollectable_total Uncollectable objects found during GC"
    print "# TYPE python_gc_objects_uncollectable_total counter"
    for (g = 0; g < 3; g++) printf "python_gc_objects_uncollectable_total{generation=\"%d\"} 0.0\n", g
    print "# HELP python_gc_collections_total Number of times this generation was collected"
    print "# TYPE python_gc_collections_total counter"
    for (g = 0; g < 3; g++) printf "python_gc_collections_total{generation=\"%d\"} %d.0\n", g, 1900 / (g * 5 + 1)
    print "# HELP python_info Python platform information"
    print "# TYPE python_info gauge"
    print "python_info{implementation=\"CPython\",major=\"3\",minor=\"12\",patchlevel=\"11\",version=\"3.12.11\"} 1.0"
    print "# HELP process_virtual_memory_bytes Virtual memory size in bytes."
    print "# TYPE process_virtual_memory_bytes gauge"
    print "process_virtual_memory_bytes 4.1851404288e+010"
    print "# HELP process_resident_memory_bytes Resident memory size in bytes."
    print "# TYPE process_resident_memory_bytes gauge"
    print "process_resident_memory_bytes 3.032014848e+09"
    print "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds."
    print "# TYPE process_start_time_seconds gauge"
    print "process_start_time_seconds 1.75929981248e+09"
    print "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds."
    print "# TYPE process_cpu_seconds_total counter"
    print "process_cpu_seconds_total 1234.56"
    print "# HELP process_open_fds Number of open file descriptors."
    print "# TYPE process_open_fds gauge"
    print "process_open_fds 87.0"
    print "# HELP process_max_fds Maximum number of open file descriptors."
    print "# TYPE process_max_fds gauge"
    print "process_max_fds 1.048576e+06"
    gauge("vllm:num_requests_running", "Number of requests in model execution batches.", "3.0", "4.0")
    gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", "1.0", "2.0")
    gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.DEPRECATED: Use vllm:kv_cache_usage_perc instead.", "0.25", "0.5")
    gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", "0.25", "0.5")
    counter("vllm:gpu_prefix_cache_queries", "GPU prefix cache queries, in terms of number of queried tokens.DEPRECATED: Use vllm:prefix_cache_queries instead.", 4000, 6000)
    counter("vllm:gpu_prefix_cache_hits", "GPU prefix cache hits, in terms of number of cached tokens.DEPRECATED: Use vllm:prefix_cache_hits instead.", 1000, 3000)
    counter("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", 4000, 6000)
    counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", 1000, 3000)
    counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.", 2, 5)
    counter("vllm:prompt_tokens", "Number of prefill tokens processed.", 1843211, 1790022)
    counter("vllm:generation_tokens", "Number of generation tokens processed.", 402117, 398765)
    print "# HELP vllm:request_success_total Count of successfully processed requests."
    print "# TYPE vllm:request_success_total counter"
    split("abort length stop", reasons, " ")
    for (e = 0; e < 2; e++) for (r = 1; r <= 3; r++)
        printf "vllm:request_success_total{engine=\"%d\",finished_reason=\"%s\",%s} %d.0\n", e, reasons[r], m, 1000 * r + e
    print "# HELP vllm:request_success_created Count of successfully processed requests."
    print "# TYPE vllm:request_success_created gauge"
    for (e = 0; e < 2; e++) for (r = 1; r <= 3; r++)
        printf "vllm:request_success_created{engine=\"%d\",finished_reason=\"%s\",%s} %.3f\n", e, reasons[r], m, created
    tok = "1 2 5 10 20 50 100 200 500 1000 2000 5000"
    hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", tok, 1)
    hist("vllm:request_generation_tokens", "Number of generation tokens processed.", tok, 1)
    hist("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", "1 8 16 32 64 128 256 512 1024 2048 4096 8192", 1)
    hist("vllm:request_params_n", "Histogram of the n request parameter.", "1 2 5 10 20", 1)
    hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", "0.001 0.005 0.01 0.02 0.04 0.06 0.08 0.1 0.25 0.5 0.75 1.0 2.5 5.0 7.5 10.0 20.0 40.0 80.0 160.0 640.0 2560.0", 0.01)
    hist("vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.", "0.01 0.025 0.05 0.075 0.1 0.15 0.2 0.3 0.4 0.5 0.75 1.0 2.5 5.0 7.5 10.0 20.0 40.0 80.0", 0.001)
    lat = "0.3 0.5 0.8 1.0 1.5 2.0 2.5 5.0 10.0 15.0 20.0 30.0 40.0 50.0 60.0 120.0 240.0 480.0 960.0 1920.0 7680.0"
    hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", lat, 0.1)
    hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", lat, 0.01)
    hist("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", lat, 0.01)
    hist("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", lat, 0.1)
    print "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig"
    print "# TYPE vllm:cache_config_info gauge"
    for (e = 0; e < 2; e++)
        printf "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",calculate_kv_scales=\"False\",cpu_offload_gb=\"0\",enable_prefix_caching=\"True\",engine=\"%d\",gpu_memory_utilization=\"0.9\",is_attention_free=\"False\",num_cpu_blocks=\"None\",num_gpu_blocks=\"8192\",num_gpu_blocks_override=\"None\",prefix_caching_hash_algo=\"builtin\",sliding_window=\"None\",swap_space=\"4\",swap_space_bytes=\"4294967296\"} 1.0\n", e
    print "# HELP vllm:lora_requests_info Running stats on lora requests."
    print "# TYPE vllm:lora_requests_info gauge"
    printf "vllm:lora_requests_info{max_lora=\"0\",running_lora_adapters=\"\",waiting_lora_adapters=\"\"} %.9e\n", created
}
function gauge(name, help, v0, v1) {
    print "# HELP " name " " help
    print "# TYPE " name " gauge"
    printf "%s{engine=\"0\",%s} %s\n%s{engine=\"1\",%s} %s\n", name, m, v0, name, m, v1
}
function counter(name, help, v0, v1) {
    print "# HELP " name "_total " help
    print "# TYPE " name "_total counter"
    printf "%s_total{engine=\"0\",%s} %d.0\n%s_total{engine=\"1\",%s} %d.0\n", name, m, v0, name, m, v1
    print "# HELP " name "_created " help
    print "# TYPE " name "_created gauge"
    printf "%s_created{engine=\"0\",%s} %.3f\n%s_created{engine=\"1\",%s} %.3f\n", name, m, created, name, m, created
}
function hist(name, help, buckets, scale,    nb, b, e, i, c, sum) {
    nb = split(buckets, b, " ")
    print "# HELP " name " " help
    print "# TYPE " name " histogram"
    for (e = 0; e < 2; e++) {
        c = 0
        for (i = 1; i <= nb; i++) {
            c += int(3000 / (i + 1)) + 7 * e
            printf "%s_bucket{engine=\"%d\",le=\"%s\",%s} %d.0\n", name, e, b[i] ~ /\./ ? b[i] : b[i] ".0", m, c
        }
        printf "%s_bucket{engine=\"%d\",le=\"+Inf\",%s} %d.0\n", name, e, m, c + 11
        printf "%s_count{engine=\"%d\",%s} %d.0\n", name, e, m, c + 11
        printf "%s_sum{engine=\"%d\",%s} %.15g\n", name, e, m, (c + 11) * scale * 37.123456789
    }
    print "# HELP " name "_created " help
    print "# TYPE " name "_created gauge"
    for (e = 0; e < 2; e++) printf "%s_created{engine=\"%d\",%s} %.3f\n", name, e, m, created
}' >"$work/nginx/www/metrics"
size=$(wc -c <"$work/nginx/www/metrics")

# ---- N + 1 free consecutive ports below the ephemeral range ----
eph_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
awk 'FNR > 1 { split($2, a, ":"); p = 0
    for (i = 1; i <= 4; i++) p = p * 16 + index("0123456789ABCDEF", substr(a[2], i, 1)) - 1
    print p }' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
    sort -un >"$work/used" || true
base=$(awk -v n="$N" -v hi="$eph_low" 'BEGIN { srand() } { used[$1] = 1 } END {
    for (t = 0; t < 100; t++) {
        b = 10000 + int(rand() * (hi - 10000 - n - 2)); ok = 1
        for (p = b; p <= b + n; p++) if (p in used) { ok = 0; break }
        if (ok) { print b; exit }
    }
}' "$work/used")
[ -n "$base" ] || { echo "scrape: no $N free ports in a row" >&2; exit 2; }
port=$((base + N))

# ---- nginx: one process, N ports, the file as /metrics ----
d=$work/nginx
{
    cat <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    log_format scrape '\$server_port \$status \$msec \$connection_requests';
    access_log $d/access.log scrape;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    types { }
    default_type "text/plain; version=0.0.4";
    server {
EOF
    i=0
    while [ $i -lt "$N" ]; do echo "        listen 127.0.0.1:$((base + i));"; i=$((i + 1)); done
    cat <<EOF
        root $d/www;
        location = /metrics { }
        location / { return 404; }
    }
}
EOF
} >"$d/nginx.conf"
"$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/out.log" 2>&1 &
nginx=$!
pids="$pids $nginx"
i=0
until curl -sf -o /dev/null "http://127.0.0.1:$((base + N - 1))/metrics"; do
    i=$((i + 1))
    kill -0 $nginx 2>/dev/null && [ $i -lt 100 ] || { echo "scrape: nginx did not start" >&2; cat "$d/error.log" >&2; exit 2; }
    sleep 0.1
done
ctype=$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$base/metrics")

hz=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
utime() { awk '{ print $14 }' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
logged() { wc -l <"$d/access.log"; }

# run INTERVAL: starts the router, waits WARMUP s, measures SECS s; sets
# R_CPU (ticks), R_RSS0, R_RSS1 (KiB), NG_CPU (ticks), SCRAPES, PORTS, R_PID
run() {
    cfg=$work/router-$1.yaml
    {
        echo "listen: 127.0.0.1:$port"
        echo "workers: 1"
        echo "access_log: false"
        echo "engine_stats_interval: $1"
        echo "models:"
        echo "  bench-model:"
        echo "    backends:"
        i=0
        while [ $i -lt "$N" ]; do echo "      - http://127.0.0.1:$((base + i))"; i=$((i + 1)); done
    } >"$cfg"
    ${WRAP:-} "$bin" -c "$cfg" --plugin-dir "$BUILD_DIR/plugins/.libs" >"$work/router-$1.log" 2>&1 &
    R_PID=$!
    pids="$pids $R_PID"
    i=0
    until curl -sf -o /dev/null "http://127.0.0.1:$port/health"; do
        i=$((i + 1))
        kill -0 $R_PID 2>/dev/null && [ $i -lt 100 ] ||
            { echo "scrape: the router did not start" >&2; cat "$work/router-$1.log" >&2; exit 2; }
        sleep 0.1
    done
    sleep $WARMUP & wait $!   # (a signal's trap runs at once)
    R_RSS0=$(rss $R_PID)
    c0=$(cpu $R_PID); u0=$(utime $R_PID); n0=$(cpu $nginx); l0=$(logged)
    sleep "$SECS" & wait $!
    c1=$(cpu $R_PID); u1=$(utime $R_PID); n1=$(cpu $nginx); l1=$(logged)
    R_RSS1=$(rss $R_PID)
    R_CPU=$((c1 - c0)); R_USER=$((u1 - u0)); NG_CPU=$((n1 - n0))
    SCRAPES=$((l1 - l0))
    PORTS=$(sed -n "$((l0 + 1)),${l1}p" "$d/access.log" | awk '$2 == 200 { print $1 }' | sort -u | wc -l)
    BAD=$(sed -n "$((l0 + 1)),${l1}p" "$d/access.log" | awk '$2 != 200' | wc -l)
    # scrapes on a new connection (its first request)
    FRESH=$(sed -n "$((l0 + 1)),${l1}p" "$d/access.log" | awk '$4 == 1' | wc -l)
    # time between two scrapes of a backend: mean and longest
    GAPS=$(sed -n "$((l0 + 1)),${l1}p" "$d/access.log" | awk '
        ($1 in last) { g = $3 - last[$1]; sum += g; n++; if (g > max) max = g }
        { last[$1] = $3 }
        END { printf "%.2f %.2f\n", n ? sum / n : 0, max }')
}
stop_router() {
    kill "$R_PID" 2>/dev/null || true
    wait "$R_PID" 2>/dev/null || true
}

# with scraping
run "$INTERVAL"
cpu_on=$R_CPU user_on=$R_USER ng_on=$NG_CPU scrapes=$SCRAPES ports=$PORTS bad=$BAD fresh=$FRESH rss0=$R_RSS0 rss1=$R_RSS1 gaps=$GAPS
curl -sf "http://127.0.0.1:$port/engines" >"$work/engines.json" || echo '{}' >"$work/engines.json"
stop_router
# without
run 0
cpu_off=$R_CPU user_off=$R_USER ng_off=$NG_CPU scrapes_off=$SCRAPES rss0_off=$R_RSS0 rss1_off=$R_RSS1
stop_router

# every backend: engine stats present, fresh, and the file's values
jq -r '(if type == "array" then . else .engines // [] end) | map(.engine_stats) |
    [length,
     (map(select(. != null and .stale == false and .running == 7 and .waiting == 3 and
                 .kv_usage == 0.375 and .prefix_hits == 4000 and .prefix_queries == 10000 and
                 .block_size == 16 and .gpu_blocks == 16384)) | length),
     (map(select(. != null) | .age_seconds) | max // -1)] | @tsv' \
    "$work/engines.json" >"$work/check" || echo "? 0 ?" >"$work/check"
read -r engines good maxage <"$work/check"
warnings=$(grep -c "engine stats of" "$work/router-$INTERVAL.log" || true)

status=0
awk -v n="$N" -v secs="$SECS" -v hz="$hz" -v on="$cpu_on" -v off="$cpu_off" -v ngon="$ng_on" \
    -v ngoff="$ng_off" -v sc="$scrapes" -v scoff="$scrapes_off" -v ports="$ports" -v bad="$bad" \
    -v size="$size" -v ctype="$ctype" -v iv="$INTERVAL" -v r0="$rss0" -v r1="$rss1" \
    -v r0off="$rss0_off" -v r1off="$rss1_off" -v target="$TARGET" -v warm="$WARMUP" -v uon="$user_on" -v uoff="$user_off" -v gaps="$gaps" -v fresh="$fresh" 'BEGIN {
    split(gaps, gap, " ")
    pon = 100 * on / hz / secs; poff = 100 * off / hz / secs
    printf "backends: %d, /metrics %d bytes (%s), engine_stats_interval %s s, %d s measured after %d s\n",
        n, size, ctype, iv, secs, warm
    printf "scrapes: %d (%.1f a second, %.2f per backend a second), %d backends answered, %d not 200; without scraping: %d\n",
        sc, sc / secs, sc / secs / n, ports, bad, scoff
    printf "new connections: %d of %d scrapes (%.0f%%)\n", fresh, sc, sc ? 100 * fresh / sc : 0
    printf "per backend: a scrape every %.2f s on average, at most %.2f s apart\n", gap[1], gap[2]
    printf "router CPU: %.2f%% of one core scraping, %.2f%% not (%d and %d ticks of 1/%d s; user %d and %d, system %d and %d)\n",
        pon, poff, on, off, hz, uon, uoff, on - uon, off - uoff
    cost = pon - poff
    per = sc ? (on - off) / hz / sc : 0
    asked = n / iv
    printf "scraping costs: %.2f%% of one core, %.0f us a scrape; at the %d scrapes a second asked for: %.2f%%\n",
        cost, per * 1e6, asked, 100 * per * asked
    printf "nginx CPU: %.2f%% of one core serving them (%.2f%% without)\n",
        100 * ngon / hz / secs, 100 * ngoff / hz / secs
    printf "router RSS: %d KiB after warm-up, %d KiB after (not scraping: %d, %d KiB)\n", r0, r1, r0off, r1off
    rate_ok = sc / secs >= 0.9 * asked
    printf "target: every backend scraped every %s s (%.2f s measured): %s\n", iv, gap[1], rate_ok ? "met" : "MISSED"
    printf "target: scraping costs under %s%% of one core: %s\n", target, cost < target ? "met" : "MISSED"
    exit !(cost < target && rate_ok)
}' || status=1
echo "engines: $engines, with fresh stats and the file's values: $good, oldest $maxage s; router warnings about scrapes: $warnings"
if [ "$engines" != "$N" ] || [ "$good" != "$N" ]; then
    echo "scrape: not every backend has fresh engine stats" >&2
    jq -c '(if type == "array" then .[] else .engines[]? end) | select(.engine_stats == null or .engine_stats.stale != false) | {url, engine_stats}' \
        "$work/engines.json" | head -n 5 >&2
    status=1
fi
if [ "$warnings" -gt 0 ]; then grep "engine stats of" "$work/router-$INTERVAL.log" | head -n 5 >&2; fi
exit $status
