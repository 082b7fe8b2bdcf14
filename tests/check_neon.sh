#!/bin/sh
# check_neon.sh - cross-compile the kernel sources for aarch64 together with
# tests/neon_selftest.c (static, no Check library) and run the result under
# qemu-user: the NEON kernels (lib/kernels_neon.c) against the scalar
# references, and the dispatch must pick "neon".
# Needs Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user;
# exit 77 (SKIP) when the cross compiler or qemu-aarch64 is missing.
SRC=${LLAVA_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
CC=${AARCH64_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "SKIP: $CC not found (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
    exit 77
fi
if ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "SKIP: $QEMU not found (apt-get install qemu-user)"
    exit 77
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check_neon.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT INT TERM

# Everything llv_matmul and the kernel tables need (no libpng/libjpeg).
# With OpenMP when the cross toolchain has a static libgomp, else without
# (the pragmas compile away).
WARN="-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter"
CFLAGS="-std=gnu11 -O2 -I$SRC/include -I$SRC/lib"
OMP=-fopenmp
echo 'int main(void){return 0;}' > "$WORK/t.c"
"$CC" -static -fopenmp "$WORK/t.c" -o "$WORK/t" 2>/dev/null || OMP=
# The NEON file itself must build without a single warning.
if ! "$CC" $CFLAGS $OMP $WARN -Werror -c "$SRC/lib/kernels_neon.c" -o "$WORK/kernels_neon.o"; then
    echo "FAIL: lib/kernels_neon.c does not compile cleanly for aarch64"
    exit 1
fi
SOURCES="$SRC/lib/quant.c $SRC/lib/quant_quantize.c $SRC/lib/kernels.c $SRC/lib/kernels_ref.c
 $SRC/lib/kernels_avx2.c $SRC/lib/kernels_avx2_q8.c $SRC/lib/kernels_i8.c $SRC/lib/kernels_avx2_gemm_i8.c $SRC/lib/matmul.c $SRC/lib/attention.c
 $SRC/lib/error.c $SRC/lib/threadpool.c $SRC/tests/neon_selftest.c"
echo "$CC $CFLAGS $OMP -static <kernel sources> tests/neon_selftest.c"
# shellcheck disable=SC2086
# (the link log is shown only on failure: static libgomp warns about dlopen)
if ! "$CC" $CFLAGS $OMP -pthread -static $SOURCES "$WORK/kernels_neon.o" -lm -o "$WORK/neon_selftest" \
        2>"$WORK/link.log"; then
    cat "$WORK/link.log"
    echo "FAIL: cross compilation"
    exit 1
fi
OMP_NUM_THREADS=2 "$QEMU" "$WORK/neon_selftest"
