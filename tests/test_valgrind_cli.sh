#!/bin/sh
# tests/test_valgrind_cli.sh - llava-cli under valgrind memcheck on the tiny
# llava-mkmodel pair (tests/fuzz/data) with a PNG and a JPEG, then again from
# a saved embedding: no invalid access, no use of uninitialised values, no
# leak (definite, indirect or possible). --threads 1 keeps libgomp from
# starting a thread pool; tests/valgrind.supp holds the suppressions, if any.
# Skips (77) without valgrind or when llava-cli is sanitizer-instrumented.
set -u
srcdir=${LLAVA_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${LLAVA_BUILDDIR:-.}
cli=$builddir/llava-cli
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not found: skipped"; exit 77; }
[ -x "$cli" ] || { echo "$cli not built: skipped"; exit 77; }
if grep -q -e __asan_init -e __tsan_init -e __msan_init "$cli"; then
  echo "llava-cli is built with a sanitizer: valgrind skipped"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/llava-vg.XXXXXX")
trap 'rm -rf "$work"' EXIT
data=$srcdir/tests/fuzz/data
img=$srcdir/tests/fuzz/corpus/image

vg() {
  valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
    --suppressions="$srcdir/tests/valgrind.supp" "$cli" "$@"
}

set -e
echo "1/2: two images (PNG + JPEG), greedy, 8 tokens, saving the embedding"
vg -m "$data/lm.gguf" --mmproj "$data/mmproj.gguf" --image "$img/rgba.png" --image "$img/progressive.jpg" \
   -p "What is in these pictures?" -n 8 --temp 0 -t 1 --save-embed "$work/e.bin" > "$work/out1.txt"
echo "2/2: from the saved embedding, sampled (seed 3)"
vg -m "$data/lm.gguf" --image-embed "$work/e.bin" -p "And now?" -n 8 --temp 0.7 --seed 3 -t 1 > "$work/out2.txt"
[ -s "$work/e.bin" ] || { echo "no embedding was saved"; exit 1; }
echo "valgrind: no errors, no leaks"
