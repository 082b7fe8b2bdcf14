#!/bin/sh
# llava-cli with the tiny-dev golden pair, the LLaVA-1.5 template and greedy
# sampling must print exactly the golden token ids (made by an independent
# PyTorch implementation) for both shared images; and --save-embed then
# --image-embed must give the same ids again.
set -u
data=${LLAVA_TEST_DATA:?}
cli=${LLAVA_BUILDDIR:?}/llava-cli
g=$data/golden/tiny-dev
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
status=0
for img in shapes336.png test-1.jpeg; do
  want=$(sed -n "s/^chat_greedy32\[$img\]: //p" "$g/golden.txt")
  "$cli" -m "$g/model-lm.gguf" --mmproj "$g/model-mmproj.gguf" --image "$data/images/$img" \
      -p "What is in the picture?" --template llava-1.5 --temp 0 -n 32 --print-ids \
      --save-embed "$tmp/$img.embd" > "$tmp/out" 2> "$tmp/err" || { echo "FAIL $img: llava-cli failed"; cat "$tmp/err"; status=1; continue; }
  got=$(tail -n 1 "$tmp/out")
  if [ "$got" = "$want" ]; then echo "PASS $img: 32 golden ids"; else echo "FAIL $img"; echo " got  $got"; echo " want $want"; status=1; fi
  grep -q "^timings: load" "$tmp/err" || { echo "FAIL $img: no timing summary on stderr"; status=1; }
  "$cli" -m "$g/model-lm.gguf" --image-embed "$tmp/$img.embd" -p "What is in the picture?" \
      --template llava-1.5 --temp 0 -n 32 --print-ids --no-timings > "$tmp/out2" 2>&1 || { echo "FAIL $img: --image-embed run failed"; cat "$tmp/out2"; status=1; continue; }
  got2=$(tail -n 1 "$tmp/out2")
  if [ "$got2" = "$want" ]; then echo "PASS $img: saved embedding gives the same ids"; else echo "FAIL $img (saved embedding): $got2"; status=1; fi
done
# Usage errors are reported, not crashed on.
"$cli" --bogus >/dev/null 2>&1; [ $? -eq 2 ] || { echo "FAIL: unknown option should exit 2"; status=1; }
"$cli" --help | grep -q -- "--image-embed" || { echo "FAIL: --help incomplete"; status=1; }
exit $status
