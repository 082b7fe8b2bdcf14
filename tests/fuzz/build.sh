#!/bin/sh
# tests/fuzz/build.sh OUTDIR - build the libFuzzer harnesses with clang
# (-fsanitize=fuzzer,address,undefined), compiling the library sources
# straight in (no OpenMP: single-threaded, deterministic). Used by
# `make fuzz` and tests/fuzz/run.sh. Needs clang (CLANG=..., default
# clang-14 or clang) and its libFuzzer runtime (Debian: libclang-rt-14-dev).
#   HARNESSES="gguf lm" limits the set.
set -eu
srcdir=${LLAVA_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=${1:-fuzz-bin}
harnesses=${HARNESSES:-"gguf lm mmproj image pixels tokenizer embed session"}
if [ -z "${CLANG:-}" ]; then
  if command -v clang-14 >/dev/null 2>&1; then CLANG=clang-14; else CLANG=clang; fi
fi
command -v "$CLANG" >/dev/null 2>&1 || { echo "build.sh: $CLANG not found" >&2; exit 77; }

mkdir -p "$out/obj"
out=$(cd "$out" && pwd)
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
# LLV_DISABLE_SIMD: the scalar kernels only (the fuzz targets are the parsers and
# validators; clang-14 also rejects __builtin_cpu_supports("f16c") in kernels.c).
cflags="-std=gnu11 -g -O1 -DLLV_DISABLE_SIMD -fno-omit-frame-pointer -Wno-unknown-pragmas $san \
  -I$srcdir/include -I$srcdir/lib -I$srcdir/tests/fuzz \
  -DFUZZ_DATA_DIR=\"$srcdir/tests/fuzz/data\" \
  $(pkg-config --cflags libpng libjpeg)"
libs="$(pkg-config --libs libpng libjpeg) -lm"

# Probe: the libFuzzer runtime must be there.
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; return (int)n & 0; }\n' \
  > "$out/obj/probe.c"
if ! "$CLANG" -fsanitize=fuzzer "$out/obj/probe.c" -o "$out/obj/probe" 2>/dev/null; then
  echo "build.sh: $CLANG cannot link -fsanitize=fuzzer (install libclang-rt-14-dev)" >&2
  exit 77
fi

# The library, once, instrumented for coverage (fuzzer-no-link).
objs=""
for src in "$srcdir"/lib/*.c; do
  o="$out/obj/$(basename "$src" .c).o"
  objs="$objs $o"
  echo "$CLANG $cflags -fsanitize=fuzzer-no-link -c $src -o $o"
done > "$out/obj/commands"
# two at a time (CI has 2 cores)
tr '\n' '\0' < "$out/obj/commands" | xargs -0 -n1 -P"${JOBS:-2}" sh -c 'eval "$0"'
for h in $harnesses; do
  echo "  CCLD  $out/fuzz_$h"
  # shellcheck disable=SC2086
  "$CLANG" $cflags -fsanitize=fuzzer "$srcdir/tests/fuzz/fuzz_$h.c" $objs $libs -o "$out/fuzz_$h"
done
