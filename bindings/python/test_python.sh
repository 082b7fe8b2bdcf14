#!/bin/sh
# Run the unittest suite of the Python binding against the libllava of this
# build tree (make check wrapper). Exit 77 (skip) without Python or without a
# shared libllava (e.g. a --disable-shared build).
srcdir=${LLAVA_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${LLAVA_BUILDDIR:-$(pwd)}
py=${PYTHON_REF:-/usr/bin/python3}
lib="$builddir/.libs/libllava.so.0"
command -v "$py" >/dev/null 2>&1 || { echo "skip: no Python ($py)"; exit 77; }
[ -f "$lib" ] || { echo "skip: no shared libllava at $lib"; exit 77; }
LLAVA_LIBRARY=$lib
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
export LLAVA_LIBRARY
cd "$srcdir/bindings/python/tests" || exit 99
# -B: no __pycache__ in the source tree (distcheck makes it read-only)
exec "$py" -B -m unittest discover -s . -p 'test_*.py' -v
