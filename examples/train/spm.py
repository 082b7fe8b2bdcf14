"""spm.py - a small SentencePiece-compatible vocabulary and a Python re-implementation of the
SPM tokenization algorithm of spec 8.3 (highest-score bigram merges, byte fallback), so that
training segments text exactly as libllava's C tokenizer does.

Vocabulary layout (LLaMA-like): 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then "▁",
the single characters of the corpus, then every prefix of "▁"+word for each corpus word.
Score of token i = -i (integers are exact in the GGUF's f32), so earlier pieces win ties.
Every multi-character piece starts with "▁" and holds no other "▁", hence merges never cross
a "▁" boundary; encode() uses that to cache per segment (the test against the C tokenizer
checks the whole corpus anyway).
"""
import heapq
import re

SPACE = "\u2581"
TYPE_NORMAL, TYPE_UNKNOWN, TYPE_CONTROL, TYPE_BYTE = 1, 2, 3, 6
_WORD = re.compile(r"[A-Za-z0-9']+")


class Vocab:
    def __init__(self, pieces):
        self.pieces = list(pieces)
        self.scores = [0.0, 0.0, 0.0] + [-float(i) for i in range(3, len(self.pieces))]
        self.types = [TYPE_UNKNOWN, TYPE_CONTROL, TYPE_CONTROL] + [TYPE_BYTE] * 256 + \
            [TYPE_NORMAL] * (len(self.pieces) - 259)
        self.index = {p: i for i, p in enumerate(self.pieces) if self.types[i] == TYPE_NORMAL}
        self.bos, self.eos, self.unk = 1, 2, 0
        self._cache = {}

    @classmethod
    def build(cls, texts):
        chars, words = set(), set()
        for t in texts:
            chars.update(t)
            words.update(_WORD.findall(t))
        chars.discard(" ")
        chars.discard("\n")                                  # "\n" stays a byte token, as in LLaMA
        pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + [SPACE]
        pieces += sorted(chars)
        seen = set(pieces)
        for w in sorted(words):
            p = SPACE + w
            for k in range(2, len(p) + 1):
                if p[:k] not in seen:
                    seen.add(p[:k])
                    pieces.append(p[:k])
        return cls(pieces)

    # ---- the algorithm of spec 8.3 on one already-escaped string (no BOS, no prefix handling)
    def _encode_escaped(self, text):
        sym = list(text)                          # symbol texts; "" once merged away
        prev = list(range(-1, len(sym) - 1))
        nxt = list(range(1, len(sym) + 1))
        nxt[-1:] = [-1] if sym else []
        heap, rev = [], {}

        def add(l, r):
            if l < 0 or r < 0:
                return
            s = sym[l] + sym[r]
            tid = self.index.get(s)
            if tid is None:
                return
            heapq.heappush(heap, (-self.scores[tid], l, r, len(s)))
            rev[s] = (sym[l], sym[r])

        for i in range(len(sym) - 1):
            add(i, i + 1)
        while heap:
            _, l, r, size = heapq.heappop(heap)
            if not sym[l] or not sym[r] or len(sym[l]) + len(sym[r]) != size or nxt[l] != r:
                continue
            sym[l] += sym[r]
            sym[r] = ""
            nxt[l] = nxt[r]
            if nxt[r] >= 0:
                prev[nxt[r]] = l
            add(prev[l], l)
            add(l, nxt[l])
        out = []

        def emit(s):
            tid = self.index.get(s)
            if tid is not None:
                out.append(tid)
            elif s in rev:
                emit(rev[s][0])
                emit(rev[s][1])
            else:
                out.extend(3 + b for b in s.encode("utf-8"))
        i = 0 if sym else -1
        while i >= 0:
            if sym[i]:
                emit(sym[i])
            i = nxt[i]
        return out

    def encode(self, text, add_bos=False):
        """Tokenize one raw-text fragment as llava_tokenize(add_space_prefix=true) does."""
        ids = [self.bos] if add_bos else []
        if not text:
            return ids
        esc = (" " + text).replace(" ", SPACE)
        for seg in re.split("(?=%s)" % SPACE, esc):
            if not seg:
                continue
            r = self._cache.get(seg)
            if r is None:
                r = self._cache[seg] = self._encode_escaped(seg)
            ids.extend(r)
        return ids

    def encode_exact(self, text):
        """The same without the per-segment cache (used to check the cache's assumption)."""
        return self._encode_escaped((" " + text).replace(" ", SPACE)) if text else []

    def decode(self, ids):
        bs = bytearray()
        for i in ids:
            t = self.types[i]
            if t == TYPE_BYTE:
                bs.append(i - 3)
            elif t == TYPE_NORMAL:
                bs += self.pieces[i].replace(SPACE, " ").encode("utf-8")
        s = bs.decode("utf-8", errors="replace")
        return s[1:] if s.startswith(" ") else s

    def __len__(self):
        return len(self.pieces)
