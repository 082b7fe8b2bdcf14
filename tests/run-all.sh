#!/bin/sh
# tests/run-all.sh - everything CI checks, run from a configured build tree by
# `make check-all`:
#   1. make check (the whole suite: Check unit tests, reference tests)
#   2. the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. a --disable-openmp build and its unit tests
#   4. make install into a temporary prefix: exactly the expected files, and a
#      program built with `cc x.c $(pkg-config --cflags --libs llava)` runs
#   5. make distcheck
set -eu
srcdir=$(cd "${LLAVA_SRCDIR:?}" && pwd)
builddir=$(pwd)
data=${LLAVA_TEST_DATA:?}
work=$(mktemp -d "${TMPDIR:-/tmp}/llava-ci.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { printf '\n===== %s =====\n' "$*"; }

step "1/5 make check"
make -j2 check

c_tests=$(make -s print-c-tests)

step "2/5 ASan + UBSan unit tests"
mkdir "$work/asan" && cd "$work/asan"
"$srcdir/configure" -q --disable-shared --with-test-data="$data" \
  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
  LDFLAGS="-fsanitize=address,undefined"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  make -j2 check TESTS="$c_tests"

step "3/5 --disable-openmp"
mkdir "$work/noomp" && cd "$work/noomp"
"$srcdir/configure" -q --disable-openmp --disable-shared --with-test-data="$data"
make -j2 check TESTS="$c_tests"

step "4/5 install + pkg-config"
mkdir "$work/inst" && cd "$work/inst"
prefix="$work/prefix"
"$srcdir/configure" -q --prefix="$prefix" --with-test-data="$data"
make -j2 install >/dev/null
sh "$srcdir/tests/check_install.sh" "$prefix"

step "5/5 distcheck"
cd "$builddir"
make -j2 distcheck
echo "check-all: every step passed"
