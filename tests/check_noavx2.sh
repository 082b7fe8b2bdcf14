#!/bin/sh
# check_noavx2.sh - libllava on an x86-64 CPU without AVX, AVX2 or FMA.
#
# The kernels are picked at run time (cpuid), so one x86-64 build must also
# run on CPUs that lack AVX2: older laptops, some virtual machines, x86
# emulators. Under qemu-user with `-cpu Nehalem` (SSE4.2, no AVX) this runs:
#   - check_lm and check_vision, whose expected values come from the golden
#     data and PyTorch (not from this library), with the kernels the
#     dispatch picks there;
#   - llava-bench on its tiny preset: its machine probes (which executed
#     AVX2 loops on any x86-64 CPU and died with SIGILL before they checked
#     the CPU) and the kernel set it reports, which must be the scalar one.
#     Its scenarios run in child processes that qemu-user does not follow
#     (they run on the host CPU); check_lm/check_vision cover that code.
# An AVX2 instruction reached on that CPU ends the process with SIGILL.
# Needs qemu-user (qemu-x86_64); exit 77 (SKIP) without it or off x86-64.
BUILD=${LLAVA_BUILDDIR:-.}
QEMU=${QEMU_X86_64:-qemu-x86_64}
case "$(uname -m)" in
x86_64) ;;
*) echo "SKIP: not an x86-64 machine"; exit 77 ;;
esac
if ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "SKIP: $QEMU not found (apt-get install qemu-user)"
    exit 77
fi
# Sanitizer builds (check-all's ASan and TSan legs) map their shadow memory
# in ways qemu-user does not support; this test is for the plain build.
for f in "$BUILD/llava-bench" "$BUILD/tests/check_lm"; do
    if [ -f "$f" ] && grep -aqE '__asan_init|__tsan_init' "$f"; then
        echo "SKIP: sanitizer build ($f); qemu-user cannot run it"
        exit 77
    fi
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check_noavx2.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
run() { "$QEMU" -cpu Nehalem "$@"; }

# The emulated CPU really lacks AVX2: a probe that executes one must fault.
cat > "$WORK/probe.c" <<'EOF'
#include <immintrin.h>
__attribute__((target("avx2"))) int main(void)
{
    volatile int k = 3;
    __m256i v = _mm256_add_epi32(_mm256_set1_epi32(k), _mm256_set1_epi32(k));
    return _mm256_extract_epi32(v, 0) == 6 ? 0 : 1;
}
EOF
# (run in $WORK with core dumps off: qemu-user writes its core file into the
# current directory, which is the build tree under make check)
if ${CC:-cc} -O1 "$WORK/probe.c" -o "$WORK/probe" 2>/dev/null; then
    if (cd "$WORK" && ulimit -c 0 && run ./probe) 2>/dev/null; then
        echo "FAIL: an AVX2 instruction ran under $QEMU -cpu Nehalem: this test would prove nothing"
        exit 1
    fi
    echo "an AVX2 instruction faults under $QEMU -cpu Nehalem, as it must"
else
    echo "note: ${CC:-cc} could not build the AVX2 probe; not checked that $QEMU -cpu Nehalem faults on AVX2"
fi

fail=0
for t in check_lm check_vision; do
    exe="$BUILD/tests/$t"
    [ -x "$BUILD/tests/.libs/$t" ] && exe="$BUILD/tests/.libs/$t" # a libtool wrapper cannot run under qemu
    if [ ! -x "$exe" ]; then
        echo "skipped $t: not built (no Check library)"
        continue
    fi
    echo "$QEMU -cpu Nehalem $t"
    if ! CK_FORK=no run "$exe" > "$WORK/$t.log" 2>&1; then
        tail -20 "$WORK/$t.log"
        echo "FAIL: $t on a CPU without AVX2"
        fail=1
    else
        tail -1 "$WORK/$t.log"
    fi
done

bench="$BUILD/llava-bench"
[ -x "$BUILD/.libs/llava-bench" ] && bench="$BUILD/.libs/llava-bench"
echo "$QEMU -cpu Nehalem llava-bench all (tiny preset)"
if ! PATH="$BUILD:$PATH" run "$bench" all --make "$WORK/models" --make-preset tiny --make-types q4_0 -r 1 \
        --threads 2 -p 8 -n 4 --prompt 2 --question 3 --no-warmup --json "$WORK/bench.json" \
        > "$WORK/bench.md" 2> "$WORK/bench.err"; then
    tail -20 "$WORK/bench.err"
    echo "FAIL: llava-bench on a CPU without AVX2"
    fail=1
elif ! grep -q '"kernels": "scalar"' "$WORK/bench.json"; then
    grep '"machine"' "$WORK/bench.json"
    echo "FAIL: the dispatch did not pick the scalar kernels on a CPU without AVX2"
    fail=1
else
    rows=$(grep -c '^| [a-z]' "$WORK/bench.md")
    echo "llava-bench: $rows table rows, scalar kernels"
    [ "$rows" -eq 8 ] || { echo "FAIL: expected 8 table rows (header + 7 scenarios)"; fail=1; }
fi
exit $fail
