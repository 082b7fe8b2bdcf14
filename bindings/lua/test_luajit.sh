#!/bin/sh
# make check: the Lua binding under LuaJIT (Lua 5.1 API).
exec sh "${LLAVA_SRCDIR:-$(dirname "$0")/../..}/bindings/lua/run_lua_tests.sh" luajit "${LLAVA_BUILDDIR:-.}/bindings/lua/luajit"
