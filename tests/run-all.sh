#!/bin/sh
# tests/run-all.sh - everything CI checks, run from a configured build tree by
# `make check-all`:
#   1. make check (the whole suite: unit tests, reference tests, bindings)
#   2. the compiled tests again under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. the other threading layer (--with-threads=openmp) and its compiled tests
#   4. the thread tests under ThreadSanitizer (sessions on threads, the pool)
#   5. every libFuzzer harness for a bounded time (skipped without clang)
#   6. make install into a temporary prefix: exactly the expected files, and a
#      program built with `cc x.c $(pkg-config --cflags --libs llava)` runs
#   7. make distcheck
# Steps 2-6 configure pristine copies of the distributed sources (make distdir),
# since the source tree itself may be configured in place.
set -eu
srcdir=$(cd "${LLAVA_SRCDIR:?}" && pwd)
builddir=$(pwd)
data=${LLAVA_TEST_DATA:?}
work=$(mktemp -d "${TMPDIR:-/tmp}/llava-ci.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { printf '\n===== %s (%s) =====\n' "$*" "$(date +%H:%M:%S)"; }

step "1/7 make check"
make -j2 check
# The suite's counts, for the closing line.
n_pass=$(sed -n 's/^# PASS: *//p' test-suite.log | head -n 1)
n_fail=$(sed -n 's/^# FAIL: *//p' test-suite.log | head -n 1)

c_tests=$(make -s print-c-tests)
make -s distdir distdir="$work/src" >/dev/null
src="$work/src"

step "2/7 ASan + UBSan: compiled tests"
mkdir "$work/asan" && cd "$work/asan"
"$src/configure" -q --disable-shared --with-test-data="$data" \
  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
  LDFLAGS="-fsanitize=address,undefined"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  make -j2 check TESTS="$c_tests"

step "3/7 --with-threads=openmp: compiled tests"
mkdir "$work/omp" && cd "$work/omp"
"$src/configure" -q --with-threads=openmp --disable-shared --with-test-data="$data"
make -j2 check TESTS="$c_tests"

step "4/7 ThreadSanitizer: check_threads, check_threadpool"
mkdir "$work/tsan" && cd "$work/tsan"
"$src/configure" -q --disable-shared --with-test-data="$data" \
  CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread"
TSAN_OPTIONS=halt_on_error=1 make -j2 check TESTS="tests/check_threads tests/check_threadpool"

step "5/7 fuzzing (30 s per harness, 2 at a time)"
rc=0
LLAVA_TEST_DATA="$data" FUZZ_OUT="$work/fuzz" JOBS=2 sh "$src/tests/fuzz/run.sh" 30 || rc=$?
if [ $rc -eq 77 ]; then echo "clang/libFuzzer missing: fuzzing skipped"; elif [ $rc -ne 0 ]; then exit $rc; fi

step "6/7 install + pkg-config"
mkdir "$work/inst" && cd "$work/inst"
prefix="$work/prefix"
"$src/configure" -q --prefix="$prefix" --with-test-data="$data"
make -j2 install >/dev/null
sh "$src/tests/check_install.sh" "$prefix"

step "7/7 distcheck"
cd "$builddir"
make -j2 distcheck
echo "check-all: every step passed ($(date +%H:%M:%S)); make check counts:"
echo "check-all: ${n_pass:-0} passed, ${n_fail:-0} failed"
