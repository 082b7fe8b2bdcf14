#!/bin/sh
# After `make install` into PREFIX: the installed files are exactly the public
# header, the libraries, the pkg-config file and the llava-* programs; and a
# program built with pkg-config links and runs against the installed library.
set -eu
prefix=${1:?usage: check_install.sh PREFIX}
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
unexpected=$(cd "$prefix" && find . -type f -o -type l | sort | grep -v -E \
  '^\./include/llava\.h$|^\./lib/libllava\.(a|la|so(\.[0-9]+)*)$|^\./lib/pkgconfig/llava\.pc$|^\./bin/llava-[a-z]+$' || true)
if [ -n "$unexpected" ]; then echo "unexpected installed files:"; echo "$unexpected"; exit 1; fi
for f in include/llava.h lib/pkgconfig/llava.pc; do
  [ -f "$prefix/$f" ] || { echo "missing $f"; exit 1; }
done
ls "$prefix"/lib/libllava.so.* >/dev/null && ls "$prefix/lib/libllava.a" >/dev/null
cat > "$tmp/x.c" <<'C'
#include <llava.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    if (llava_version_number() != LLAVA_VERSION_NUMBER) { puts("version mismatch"); return 1; }
    llava_params *p = llava_new_params();
    int rc = llava_set_param_int(p, LLAVA_PARAM_N_THREADS, 2);
    llava_lm *lm = (llava_lm *)1;
    char err[LLAVA_ERRBUF_SIZE] = "";
    int rc2 = llava_load_lm("/nonexistent/model.gguf", p, &lm, err, sizeof err);
    llava_free_params(p);
    if (rc != LLAVA_OK || rc2 == LLAVA_OK || lm != NULL || err[0] == '\0') { puts("unexpected results"); return 1; }
    printf("ok %s: %s (%s)\n", llava_version_string(), llava_strerror(rc2), err);
    return 0;
}
C
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc "$tmp/x.c" -o "$tmp/x" $(pkg-config --cflags --libs llava)
LD_LIBRARY_PATH="$prefix/lib" "$tmp/x"
# Static linking through pkg-config --static also works.
cc "$tmp/x.c" -o "$tmp/xs" $(pkg-config --cflags llava) "$prefix/lib/libllava.a" $(pkg-config --static --libs-only-other --libs-only-l llava | sed 's/-lllava//')
"$tmp/xs" >/dev/null
echo "PASS: install layout and pkg-config program"
