#!/bin/sh
# gguf_tool.sh - llava-gguf on the golden LM file (shapes from
# shared/data/README.md: E=128, 2 KV heads of 32 -> attn_k is 128 x 64, F16)
# and on bad input (message and exit status 1).
set -u
B=${LLAVA_BUILDDIR:-.}
D=${LLAVA_TEST_DATA:-../shared/data}
TOOL=$B/llava-gguf
LM=$D/golden/tiny-dev/model-lm.gguf
[ -x "$TOOL" ] || { echo "no $TOOL"; exit 77; }
[ -f "$LM" ] || { echo "no $LM"; exit 77; }
fail=0
check() { # description, command...
    d=$1; shift
    if "$@"; then echo "ok: $d"; else echo "FAIL: $d"; fail=1; fi
}
out=$("$TOOL" "$LM") || { echo "FAIL: exit status $?"; exit 1; }
check "version line" sh -c 'printf "%s\n" "$1" | grep -qx "version: 3"' - "$out"
check "alignment line" sh -c 'printf "%s\n" "$1" | grep -qx "alignment: 32"' - "$out"
check "architecture" sh -c 'printf "%s\n" "$1" | grep -qx "  general.architecture: string = \"llama\""' - "$out"
check "head_count_kv" sh -c 'printf "%s\n" "$1" | grep -qx "  llama.attention.head_count_kv: uint32 = 2"' - "$out"
check "tokens array" sh -c 'printf "%s\n" "$1" | grep -q "^  tokenizer.ggml.tokens: array of string \[32000\] = \[\"<unk>\", \"<s>\", \"</s>\""' - "$out"
check "bool" sh -c 'printf "%s\n" "$1" | grep -qx "  tokenizer.ggml.add_bos_token: bool = true"' - "$out"
check "tensor count" sh -c 'printf "%s\n" "$1" | grep -qx "tensors: 21"' - "$out"
check "attn_k row" sh -c 'printf "%s\n" "$1" | grep -Eq "^ +[0-9]+ +blk\.0\.attn_k\.weight +F16 +128 x 64 +[0-9]+ +16384$"' - "$out"
check "token_embd row" sh -c 'printf "%s\n" "$1" | grep -Eq "^ +0 +token_embd\.weight +F16 +128 x 32000 +0 +8192000$"' - "$out"
check "norm row" sh -c 'printf "%s\n" "$1" | grep -Eq "^ +[0-9]+ +output_norm\.weight +F32 +128 +[0-9]+ +512$"' - "$out"
# --no-arrays
out2=$("$TOOL" --no-arrays "$LM")
check "--no-arrays" sh -c 'printf "%s\n" "$1" | grep -qx "  tokenizer.ggml.tokens: array of string \[32000\]"' - "$out2"
# a bad file: message on stderr, exit 1
tmp=${TMPDIR:-/tmp}/gguf_tool_$$.gguf
printf 'GGUF\004\000\000\000' > "$tmp"
head -c 40 /dev/zero >> "$tmp"
err=$("$TOOL" "$tmp" 2>&1 >/dev/null); st=$?
check "bad file exit 1" test "$st" -eq 1
check "bad file message" sh -c 'printf "%s\n" "$1" | grep -q "^llava-gguf: .*: unsupported GGUF version 4"' - "$err"
rm -f "$tmp"
"$TOOL" >/dev/null 2>&1; st=$?
check "no args exit 2" test "$st" -eq 2
exit $fail
