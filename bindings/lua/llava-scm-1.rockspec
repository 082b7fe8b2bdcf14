-- LuaRocks spec of the Lua binding of libllava. From a libllava checkout:
--   cd bindings/lua && luarocks make llava-scm-1.rockspec \
--       LLAVA_INCDIR=/usr/local/include LLAVA_LIBDIR=/usr/local/lib
-- (libllava must be installed first: make install). Works with Lua 5.1
-- (LuaJIT) to 5.4.
rockspec_format = "3.0"
package = "llava"
version = "scm-1"
source = {
   url = "git+file:///path/to/libllava", -- `luarocks make` builds the checkout it runs in
}
description = {
   summary = "Run LLaVA vision-language models (GGUF) on the CPU from Lua",
   detailed = [[
Binding of libllava: language model, CLIP vision encoder and projector,
images from files, bytes or raw RGBA frames, and a pull-based chat helper
(chat:step()) that fits game loops.]],
   license = "MIT",
   labels = { "llava", "llm", "vision", "gguf" },
}
dependencies = {
   "lua >= 5.1, < 5.5",
}
external_dependencies = {
   LLAVA = {
      header = "llava.h",
      library = "llava",
   },
}
build = {
   type = "builtin",
   modules = {
      llava = {
         sources = { "llava.c" },
         libraries = { "llava" },
         incdirs = { "$(LLAVA_INCDIR)" },
         libdirs = { "$(LLAVA_LIBDIR)" },
      },
   },
}
