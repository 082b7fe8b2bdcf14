#!/bin/sh
# run_lua_tests.sh INTERPRETER MODULE_DIR - run test_llava.lua with one Lua
# interpreter and the llava module built for it. Exit 77 (skip) when the
# interpreter or the module (built only when configure found that Lua, and
# only with --enable-shared) is missing.
interp=$1
moddir=$2
srcdir=${LLAVA_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${LLAVA_BUILDDIR:-$(pwd)}
command -v "$interp" >/dev/null 2>&1 || { echo "skip: $interp not installed"; exit 77; }
[ -f "$moddir/.libs/llava.so" ] || { echo "skip: no llava module in $moddir (Lua not found by configure, or static build)"; exit 77; }
[ -f "$builddir/.libs/libllava.so.0" ] || { echo "skip: no shared libllava"; exit 77; }
LUA_CPATH="$moddir/.libs/?.so"
LD_LIBRARY_PATH="$builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LUA_CPATH LD_LIBRARY_PATH
exec "$interp" "$srcdir/bindings/lua/test_llava.lua"
