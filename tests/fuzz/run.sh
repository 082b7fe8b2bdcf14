#!/bin/sh
# tests/fuzz/run.sh SECONDS [HARNESS...] - build the libFuzzer harnesses
# (tests/fuzz/build.sh) and run each for SECONDS (-max_total_time) on a
# scratch copy of its seeds + regressions. Fails if any harness finds a
# crash, leak, timeout, out-of-memory or a failed property; the input is
# kept in $FUZZ_OUT/artifacts/<harness>/ (default ./fuzz-out): add it to
# tests/fuzz/regressions/<harness>/ once fixed. Prints executions per harness.
#   JOBS=N runs N harnesses at once (default 1); FUZZ_OUT=DIR keeps builds;
#   FUZZ_KEEP_CORPUS=1 goes on from the corpus grown by the last run there.
# Exit 77 (skip) if clang / libFuzzer are missing.
set -eu
secs=${1:?usage: run.sh SECONDS [HARNESS...]}
shift
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
all="gguf lm mmproj image pixels tokenizer embed session"
harnesses=${*:-$all}
out=${FUZZ_OUT:-fuzz-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
: "${LLAVA_TEST_DATA:=$srcdir/../shared/data}"
export LLAVA_TEST_DATA
export LLAVA_FUZZ_DATA="$srcdir/tests/fuzz/data"

rc=0
LLAVA_SRCDIR=$srcdir HARNESSES="$harnesses" sh "$srcdir/tests/fuzz/build.sh" "$out/bin" >"$out/build.log" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
  tail -20 "$out/build.log" >&2
  exit $rc
fi

# -max_len: the biggest seed plus room; models need their whole file.
maxlen() {
  case $1 in lm|mmproj|gguf) echo 65536 ;; session) echo 8192 ;; *) echo 4096 ;; esac
}

run_one() {
  h=$1
  [ -n "${FUZZ_KEEP_CORPUS:-}" ] || rm -rf "$out/corpus/$h"
  rm -rf "$out/artifacts/$h"
  mkdir -p "$out/corpus/$h" "$out/artifacts/$h"
  set -- "$out/corpus/$h" "$srcdir/tests/fuzz/corpus/$h"
  [ -d "$srcdir/tests/fuzz/regressions/$h" ] && set -- "$@" "$srcdir/tests/fuzz/regressions/$h"
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  "$out/bin/fuzz_$h" -max_total_time="$secs" -max_len="$(maxlen "$h")" -timeout=20 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$out/artifacts/$h/" "$@" \
      >"$out/$h.log" 2>&1 && status=0 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$h.log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$out/$h.log" | tail -1)
  if [ $status -eq 0 ]; then
    printf '%-10s ok    %s executions in %s s (%s)\n' "$h" "${execs:-?}" "$secs" "$cov"
  else
    printf '%-10s FAIL  (exit %s) after %s executions; see %s/%s.log, input in %s/artifacts/%s/\n' \
      "$h" "$status" "${execs:-?}" "$out" "$h" "$out" "$h"
    grep -m3 -E 'ERROR|check failed|SUMMARY|libFuzzer: ' "$out/$h.log" | sed 's/^/    /'
    # The input, so that a CI log is enough to make it a regression file.
    for a in "$out/artifacts/$h/"*; do
      [ -f "$a" ] || continue
      if [ "$(wc -c < "$a")" -le 65536 ]; then
        # whole input, so that the log alone is enough for a regression file:
        #   base64 -d > tests/fuzz/regressions/<harness>/<name>
        echo "    input $(basename "$a") ($(wc -c < "$a") bytes, base64):"
        base64 -w 76 "$a" | sed 's/^/     /'
      else
        echo "    input $(basename "$a") ($(wc -c < "$a") bytes; first 1 KiB, hex):"
        od -An -tx1 -v "$a" | head -n 64 | sed 's/^/     /'
      fi
    done
    return 1
  fi
}

# batches of JOBS harnesses at once
jobs=${JOBS:-1}
fail=0
batch=""
n=0
for h in $harnesses; do
  ( run_one "$h" ) > "$out/$h.result" &
  batch="$batch $!"
  n=$((n + 1))
  if [ $n -ge "$jobs" ]; then
    for p in $batch; do wait "$p" || fail=1; done
    batch=""
    n=0
  fi
done
for p in $batch; do wait "$p" || fail=1; done
for h in $harnesses; do cat "$out/$h.result"; done
if [ $fail -ne 0 ]; then
  echo "run.sh: a harness found a problem" >&2
  exit 1
fi
echo "run.sh: no findings"
