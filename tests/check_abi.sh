#!/bin/sh
# tests/check_abi.sh - the ABI guard: compare the built libllava.so with the
# committed baseline abi/libllava-0.1.abi (abigail-tools; made by
# `make abi-dump`, see RELEASING).
#   - an incompatible change (a function or variable removed, a signature
#     or type layout changed: abidiff bit 8) fails;
#   - a compatible change (functions added: bit 4 only) passes with a note
#     asking for a -version-info bump and a version-script node review.
# Skips (77) without abidiff or without a shared library (--disable-shared).
set -u
srcdir=${LLAVA_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${LLAVA_BUILDDIR:-.}
baseline=$srcdir/abi/libllava-0.1.abi
lib=$builddir/.libs/libllava.so
command -v abidiff >/dev/null 2>&1 || { echo "abidiff not found (apt-get install abigail-tools): skipped"; exit 77; }
[ -f "$lib" ] || { echo "$lib not built (static-only build): skipped"; exit 77; }
[ -f "$baseline" ] || { echo "no baseline $baseline"; exit 1; }

report=$(abidiff --headers-dir2 "$srcdir/include" "$baseline" "$lib" 2>&1)
status=$?
# abidiff sets bit 8 only for some incompatible changes (removed symbols);
# a changed signature or type of a public function is bit 4 with a
# "N Changed" count. Both count as incompatible here; "Added" does not.
removed_or_changed=$(printf '%s\n' "$report" | sed -n \
  's/^\(Functions\|Variables\) changes summary: \([0-9]*\) Removed, \([0-9]*\) Changed.*/\2 \3/p' \
  | awk '{ n += $1 + $2 } END { print n + 0 }')

if [ $((status & 1)) -ne 0 ] || [ $((status & 2)) -ne 0 ]; then
  echo "abidiff could not compare (exit $status):"
  echo "$report"
  exit 1
fi
if [ "$removed_or_changed" -gt 0 ]; then
  status=$((status | 8))
fi
if [ $((status & 8)) -ne 0 ]; then
  echo "INCOMPATIBLE ABI CHANGE against $baseline:"
  echo "$report"
  echo
  echo "Removing or changing a public function or type breaks every program built"
  echo "against libllava 0.1. Restore it, or (for a new major ABI) follow RELEASING:"
  echo "bump -version-info (current+1, revision 0, age 0), add a new version-script"
  echo "node, and regenerate the baseline with 'make abi-dump'."
  exit 1
fi
if [ $((status & 4)) -ne 0 ]; then
  echo "Compatible ABI change against $baseline:"
  echo "$report"
  echo
  echo "NOTE: before the next release bump -version-info in configure.ac"
  echo "(interfaces added: current+1, revision 0, age+1), put the new symbols in a"
  echo "new node of lib/libllava.map, and regenerate the baseline ('make abi-dump')."
  echo "See RELEASING."
  exit 0
fi
echo "ABI identical to $baseline"
exit 0
