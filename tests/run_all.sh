#!/bin/sh
# Every test switchyard has, each build in its own directory under _build/:
#   1. a -Werror build and `make check` (unit, end-to-end, install layout),
#   2. `make distcheck` (the tarball builds, installs, checks, uninstalls),
#   3. an ASan/UBSan build and `make check` (leaks and undefined behaviour
#      in the daemon, its plugins and the tests fail the run),
#   4. the end-to-end tests again with the daemon under valgrind memcheck,
#   5. when clang is installed, the libFuzzer harnesses for 10 s each
#      (`make fuzz`, docs/fuzzing.md).
# Ends with one line "N passed, M failed" over all the test programs.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
cd "$top"
[ -x configure ] || ./autogen.sh
if [ -f Makefile ]; then
    echo "run_all: the source tree is configured in place; run 'make distclean' first" >&2
    exit 2
fi

summary() {
    count='^[a-z0-9_]*: \([0-9]*\) passed, \([0-9]*\) failed$'
    {
        cat "$1"/tests/*.log "$1"/tests/*/*.log 2>/dev/null | sed -n "s/$count/\\1 \\2/p"
        # a test script that prints no count is one test, passed or not
        for trs in "$1"/tests/*.trs "$1"/tests/*/*.trs; do
            [ -e "$trs" ] || continue
            grep -q "$count" "${trs%.trs}.log" 2>/dev/null && continue
            if grep -q '^:test-result: PASS' "$trs"; then echo "1 0"; else echo "0 1"; fi
        done
    } | awk -v what="$2" '{p += $1; f += $2} END {printf "%s: %d passed, %d failed\n", what, p, f}'
}

run_build() { # name, configure flags...
    name=$1; shift
    dir="$top/_build/$name"
    mkdir -p "$dir"
    echo "== $name build: configure $*"
    (cd "$dir" && "$top/configure" -q "$@" && make -s -j"$jobs" && make -s -j"$jobs" check) || {
        cat "$dir"/tests/*.log 2>/dev/null | grep -E -A3 "FAIL|failed|ERROR|Sanitizer|leak" | head -80
        summary "$dir" "$name"
        return 1
    }
    summary "$dir" "$name"
}

run_valgrind() {
    dir="$top/_build/plain"
    command -v valgrind >/dev/null || { echo "run_all: valgrind is not installed" >&2; return 1; }
    echo "== valgrind: end-to-end tests, the daemon under memcheck"
    rm -f "$dir"/valgrind-*.log
    (cd "$dir" && SY_TEST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --log-file=$dir/valgrind-%p.log" \
        ./tests/e2e_tests >tests/e2e_valgrind.log 2>&1) || {
        grep -E -B3 -A6 "FAILED|failed$" "$dir/tests/e2e_valgrind.log" | head -60
        cat "$dir"/valgrind-*.log 2>/dev/null | head -80
        return 1
    }
    tail -n 1 "$dir/tests/e2e_valgrind.log"
}

run_fuzz() {
    dir="$top/_build/fuzz"
    mkdir -p "$dir"
    rm -f "$dir/tests/fuzz.log"
    echo "== fuzz: configure CC=clang --enable-fuzzing; make fuzz FUZZ_SECONDS=10"
    (cd "$dir" && CC=clang "$top/configure" -q --enable-fuzzing &&
        make -s -j"$jobs" fuzz FUZZ_SECONDS=10) || {
        [ -f "$dir/tests/fuzz.log" ] || { mkdir -p "$dir/tests" &&
            echo "fuzz: 0 passed, 1 failed" >"$dir/tests/fuzz.log"; }
        return 1
    }
}

status=0
run_build plain --enable-werror || status=1
run_build sanitizers --enable-werror --enable-sanitizers || status=1
[ "$status" -eq 0 ] && { run_valgrind || status=1; }
if [ "$status" -eq 0 ]; then
    echo "== distcheck"
    (cd "$top/_build/plain" && make -s distcheck >distcheck.log 2>&1) || {
        tail -40 "$top/_build/plain/distcheck.log"
        # the failing tests' own words, from the tree distcheck leaves behind
        find "$top/_build/plain" -path '*/_build/sub/tests/*.log' -exec \
            grep -h -B3 -A4 -E "FAILED|failed$|^FAIL|Sanitizer" {} + 2>/dev/null | head -80
        echo "distcheck: 0 passed, 1 failed" >"$top/_build/plain/tests/distcheck.log"
        status=1; }
fi
fuzzed=""
if command -v clang >/dev/null; then
    fuzzed=1
    run_fuzz || status=1
else
    echo "== fuzz: skipped (clang is not installed)"
fi
summary "$top/_build/plain" plain >"$top/_build/summary"
summary "$top/_build/sanitizers" sanitizers >>"$top/_build/summary"
[ -z "$fuzzed" ] || summary "$top/_build/fuzz" fuzz >>"$top/_build/summary"
awk '{p += $2; f += $4} END {printf "%d passed, %d failed\n", p, f + 0}' "$top/_build/summary"
exit $status
