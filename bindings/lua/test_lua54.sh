#!/bin/sh
# make check: the Lua binding under Lua 5.4.
exec sh "${LLAVA_SRCDIR:-$(dirname "$0")/../..}/bindings/lua/run_lua_tests.sh" lua5.4 "${LLAVA_BUILDDIR:-.}/bindings/lua/lua54"
