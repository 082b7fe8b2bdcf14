#!/usr/bin/python3
"""Generate tests/data/tokenizer_pretok.txt: BPE pre-tokenizer test vectors
computed with Python's own `re` engine (an independent implementation of
the regex semantics) for the GPT-2 and Llama-3 ("llama-bpe") patterns of
shared/spec/llava-format.md §8.5. \\p{L}, \\p{N} and \\s are spelled out as
explicit classes (Python's re has no \\p{..}, and its \\s differs from the
Unicode White_Space set), built from unicodedata.

Run at development time and commit the output:
    /usr/bin/python3 tests/gen_tokenizer_pretok.py > tests/data/tokenizer_pretok.txt
Each line: input as hex UTF-8 <TAB> GPT-2 word start offsets <TAB> Llama-3
word start offsets (byte offsets, comma separated).
"""
import random
import re
import unicodedata


def cls_ranges(prefix):
    out, start = [], None
    for cp in range(0x110000):
        hit = unicodedata.category(chr(cp))[0] == prefix
        if hit and start is None:
            start = cp
        elif not hit and start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return "".join("\\U%08x-\\U%08x" % (a, b) for a, b in out)


L = cls_ranges("L")
N = cls_ranges("N")
S = "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"

GPT2 = (r"'s|'t|'re|'ve|'m|'ll|'d| ?[%s]+| ?[%s]+| ?[^%s%s%s]+|[%s]+(?![^%s])|[%s]+"
        % (L, N, S, L, N, S, S, S))
LLAMA3 = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n%s%s]?[%s]+|[%s]{1,3}|"
          r" ?[^%s%s%s]+[\r\n]*|[%s]*[\r\n]+|[%s]+(?![^%s])|[%s]+"
          % (L, N, L, N, S, L, N, S, S, S, S))
RE_GPT2 = re.compile(GPT2)
RE_LLAMA3 = re.compile(LLAMA3)


def starts(rx, s):
    """Byte offsets where words start; text no alternative covers would
    stay in place (never happens with the final \\s+ and the catch-all)."""
    out, pos = [], 0
    for m in rx.finditer(s):
        assert m.start() == pos, (s, m.start(), pos)
        out.append(len(s[:m.start()].encode()))
        pos = m.end()
    assert pos == len(s)
    return out


FIXED = [
    "Hello world", " Hello World!", "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
    "I'VE been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like",
    "3 33 333 3333 33333 3.3 3..3", "   Hello\n    Hello", "\n =", "a  \n\n  b", "x \r\n\r\n y",
    "tab\tsep\t\tend\t", "trailing   ", "  ", " ", "\n", "'", "'s", "'S'", "don't", "ⅫⅢ²³ 12½",
    "Cửa Việt", "нещо на Български", "e\u0301 combining", "a\u00a0b\u2003c\u3000d",
    "!!!!!!", "``````\"\"\"\"......", "(foo)[bar]{baz}", "a1b2c3", "١٢٣٤ digits", "🦙.cpp",
    "\u200b zero width", "x\x1cy\x1f z",
]

ALPHABET = (list("aZé ß'sStTrReEvVmMlLdD0123456789 \t\n\r.,!?-_()\"`") +
            ["  ", "\n\n", " \n", "我", "天", "😁", "🦙", "\u00a0", "\u2003", "\u3000", "²", "½", "Ⅻ",
             "\u0301", "١", "\u200b", "\x1c", "ក", "ា", "\u0085"])


def main():
    rnd = random.Random(1234)
    cases = list(FIXED)
    for _ in range(600):
        cases.append("".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(1, 24))))
    for s in cases:
        print("%s\t%s\t%s" % (s.encode().hex(),
                              ",".join(map(str, starts(RE_GPT2, s))),
                              ",".join(map(str, starts(RE_LLAMA3, s)))))


main()
