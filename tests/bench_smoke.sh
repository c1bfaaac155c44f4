#!/bin/sh
# tests/bench_smoke.sh - a smoke test of bench/run.sh, not a benchmark: it
# runs every mode for about a second each against the built tree and checks
# that the output parses (tables with numeric rows, no failed requests, the
# ratio and goal lines).  It asserts nothing about speed.
#
# Environment (set by `make check`): top_srcdir, top_builddir.
# Exit status: 0 pass, 1 fail, 77 skip (nginx, wrk, curl or cc missing).

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}

missing=
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
for t in wrk curl cc; do
	command -v $t >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
	echo "SKIP: missing:$missing (sudo apt-get install -y nginx-light wrk curl)"
	exit 77
fi
if [ ! -x "$top_builddir/switchyard" ]; then
	echo "FAIL: $top_builddir/switchyard is not built"
	exit 1
fi

log=$(mktemp "${TMPDIR:-/tmp}/bench_smoke.XXXXXX") || exit 1
trap 'rm -f "$log"' EXIT
BUILD_DIR=$top_builddir timeout 300 bash "$top_srcdir/bench/run.sh" --quick --all --no-build > "$log" 2>&1
rc=$?
cat "$log"
if [ $rc -ne 0 ]; then
	echo "FAIL: bench/run.sh exited $rc"
	exit 1
fi

workers=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
# Every table row: a name, then numbers; request tables have 8 numbers and
# no errors, the stream table has 9 (RSS "-" for direct) and ok == streams.
awk -v workers="$workers" '
function num(x) { return x ~ /^[0-9]+(\.[0-9]+)?$/ }
function fail(m) { print "FAIL: " m; bad = 1 }
/^== requests:/ { sec = "req"; next }
/^== large:/ { sec = "large"; next }
/^== stream:/ { sec = "stream"; next }
/^== memory:/ { sec = "memory"; next }
/^rss: / { if ($0 ~ /^rss: idle [0-9]+ KiB, after [0-9]+ requests [0-9]+ KiB, after [0-9]+ requests [0-9]+ KiB: -?[0-9.]+%$/) rss = 1; else fail("rss line: " $0); next }
/^(ratios|added|goal|done|\(|target)/ || NF == 0 { if ($1 == "ratios:") ratios[sec]++; if ($1 == "goal:") goals++; if ($1 == "done") done = 1; next }
sec != "" && $1 ~ /^(direct|switchyard-[0-9]+|nginx-1)$/ {
	rows[sec "/" $1] = 1
	if (sec == "stream") {
		if (NF != 10) fail("stream row: " $0)
		for (i = 2; i <= 8; i++) if (!num($i)) fail("stream row, field " i ": " $0)
		if ($1 != "direct" && (!num($9) || !num($10) || $10 + 0 <= 0)) fail("stream row, RSS: " $0)
		if ($2 != $3) fail("failed streams: " $0)
	} else {
		if (NF != 9) fail("row: " $0)
		for (i = 2; i <= 9; i++) if (!num($i)) fail("row, field " i ": " $0)
		if ($2 + 0 <= 0) fail("no requests: " $0)
		if ($9 != 0) fail("errors: " $0)
	}
}
END {
	n = split("req/direct req/switchyard-1 req/nginx-1 large/direct large/switchyard-1 large/nginx-1 stream/direct stream/switchyard-1", want, " ")
	for (i = 1; i <= n; i++) if (!(want[i] in rows)) fail("missing row " want[i])
	if (workers > 1 && !(("req/switchyard-" workers) in rows)) fail("missing row switchyard-" workers)
	if (ratios["req"] != 1 || ratios["large"] != 1) fail("ratio lines missing")
	if (goals != 6) fail("goal lines: " goals " (want 6)")
	if (!rss) fail("no rss line")
	if (!done) fail("no final done")
	exit bad
}' "$log" || exit 1
echo "PASS: bench/run.sh output parses"
