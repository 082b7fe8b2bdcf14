#!/bin/sh
# The exported dynamic symbols of libllava.so, the version script and the
# LLAVA_API declarations of llava.h must be the same set (curl test1119
# analogue). Fails with the differences listed.
set -u
src=${LLAVA_SRCDIR:?}
build=${LLAVA_BUILDDIR:?}
so=$(ls "$build"/.libs/libllava.so.* 2>/dev/null | head -n 1)
if [ -z "$so" ]; then
  echo "SKIP: no shared libllava built"; exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# Declarations: every "LLAVA_API <type> <name>(" in the header (may span the type).
tr '\n' ' ' < "$src/include/llava.h" | grep -oE 'LLAVA_API[^;(]*\(' \
  | sed -E 's/.*[ *]([a-z_0-9]+)\($/\1/' | grep -E '^llava_' | sort -u > "$tmp/header"
# Version script: names inside global: sections.
sed -n '/global:/,/local:/p' "$src/lib/libllava.map" | grep -oE '^[[:space:]]*llava_[a-z0-9_]+;' \
  | tr -d ' ;' | sort -u > "$tmp/map"
# Library: defined dynamic symbols.
nm -D --defined-only "$so" | awk '{print $NF}' | sed 's/@.*//' | grep -v -E '^(LLAVA_[0-9_.]+)$' | sort -u > "$tmp/lib"

status=0
for pair in "header map" "header lib"; do
  set -- $pair
  if ! diff -u "$tmp/$1" "$tmp/$2" > "$tmp/diff"; then
    echo "symbol sets differ between $1 and $2:"; cat "$tmp/diff"; status=1
  fi
done
n=$(wc -l < "$tmp/header")
if [ "$n" -lt 10 ]; then echo "only $n declarations found: the parser is broken"; status=1; fi
# Everything exported must carry the LLAVA_0.x version node.
if nm -D --defined-only "$so" | grep ' T ' | grep -v '@@LLAVA_0\.' ; then
  echo "exported functions without a LLAVA_0.x version node (above)"; status=1
fi
[ $status -eq 0 ] && echo "PASS: $n symbols agree (header, version script, libllava.so)"
exit $status
