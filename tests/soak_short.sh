#!/bin/sh
# tests/soak_short.sh - the short form of the soak-and-faults test
# (tests/soak.c, docs/soak.md), run by `make check`: 3000 requests at
# concurrency 32, paced at 150 requests/s so that the chaos thread (mock
# backends killed and restarted, failure modes, reloads) has about 20 s to
# work, then the checks.  It takes about 25 s.
#
# Environment (set by `make check`): top_srcdir, top_builddir.
# SOAK_SEED=N picks another chaos schedule (default 1); SOAK_ARGS adds flags.
# Exit status: 0 pass, 1 fail.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}

for f in switchyard tests/mock_backend tests/soak; do
	if [ ! -x "$top_builddir/$f" ]; then
		echo "FAIL: $top_builddir/$f is not built"
		exit 1
	fi
done

run=
command -v timeout >/dev/null 2>&1 && run="timeout 180"
# shellcheck disable=SC2086
$run "$top_builddir/tests/soak" \
	--router "$top_builddir/switchyard" \
	--mock "$top_builddir/tests/mock_backend" \
	--plugin-dir "$top_builddir/plugins/.libs" \
	--requests 3000 --concurrency 32 --seconds 60 --rate 150 \
	--seed "${SOAK_SEED:-1}" ${SOAK_ARGS:-}
rc=$?
if [ $rc -eq 124 ]; then
	echo "FAIL: the soak did not finish within 180 s"
	exit 1
fi
exit $rc
