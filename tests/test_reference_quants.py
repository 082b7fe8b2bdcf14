#!/usr/bin/python3
"""Check the reference GGUF reader's dequantizers (tests/reference/gguf.py):
1. hand-worked blocks (values computed by hand from spec section 2);
2. the vectorised numpy dequantizers against the plain per-element spec formulas on random blocks.
Exit 0 pass, 1 fail, 77 skip (no numpy)."""
import os
import struct
import sys

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy missing")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LLAVA_SRCDIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "reference"))
import gguf  # noqa: E402

failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def f16b(v):
    return np.array([v], "<f2").tobytes()


def hand_worked():
    # Q4_0: d = 0.5, qs[0] = 0x1F -> y[0] = (15-8)*0.5 = 3.5, y[16] = (1-8)*0.5 = -3.5;
    # all other qs = 0x88 -> 0.
    blk = f16b(0.5) + bytes([0x1F] + [0x88] * 15)
    y = gguf.dequantize(np.frombuffer(blk, np.uint8), gguf.Q4_0, 32)
    want = np.zeros(32)
    want[0], want[16] = 3.5, -3.5
    check(np.array_equal(y, want), "Q4_0 hand block")
    # Q8_0: d = 0.25, qs = -128..-97 -> y = qs * 0.25
    qs = np.arange(-128, -96, dtype=np.int8)
    y = gguf.dequantize(np.frombuffer(f16b(0.25) + qs.tobytes(), np.uint8), gguf.Q8_0, 32)
    check(np.array_equal(y, qs * 0.25), "Q8_0 hand block")
    # Q5_1: d = 1, m = -2, qh bit 0 and bit 31 set, qs[0] = 0x03, qs[15] = 0xF0:
    # y[0] = (3|16)*1-2 = 17, y[31] = (15|16)-2 = 29, y[15] = 0-2, y[16] = 0-2, rest -2.
    blk = f16b(1.0) + f16b(-2.0) + struct.pack("<I", 1 | (1 << 31)) + bytes([0x03] + [0] * 14 + [0xF0])
    y = gguf.dequantize(np.frombuffer(blk, np.uint8), gguf.Q5_1, 32)
    want = np.full(32, -2.0)
    want[0], want[31] = 17, 29
    check(np.array_equal(y, want), "Q5_1 hand block")
    # Q4_K: d = 1, dmin = 0.5, scales: sub-block 0 sc = 3, m = 4 (S[0]=3, S[4]=4);
    # sub-block 5 (j>=4): sc = (S[9]&15)|((S[1]>>6)<<4) = 2|16 = 18, m = (S[9]>>4)|((S[5]>>6)<<4) = 1|0 = 1.
    S = [0] * 12
    S[0], S[4], S[1], S[9] = 3, 4, 0x40, 0x12
    qs = [0] * 128
    qs[0] = 0x07           # element 0: low nibble 7 (sub-block 0); element 32: high nibble 0 (sub-block 1)
    qs[64 + 5] = 0x90      # chunk c=2: element 128+5 (sub 4) low 0; element 128+32+5 (sub 5) high 9
    blk = f16b(1.0) + f16b(0.5) + bytes(S) + bytes(qs)
    y = gguf.dequantize(np.frombuffer(blk, np.uint8), gguf.Q4_K, 256)
    check(y[0] == 3 * 7 - 0.5 * 4, "Q4_K hand element 0 = %g" % y[0])
    check(y[165] == 18 * 9 - 0.5 * 1, "Q4_K hand element 165 = %g" % y[165])
    # BF16: 0x3FC0 -> 1.5
    y = gguf.dequantize(np.frombuffer(struct.pack("<H", 0x3FC0), np.uint8), gguf.BF16, 1)
    check(y[0] == 1.5, "BF16 0x3FC0 = 1.5")


F16_FIELDS = {gguf.Q4_0: [0], gguf.Q4_1: [0, 2], gguf.Q5_0: [0], gguf.Q5_1: [0, 2], gguf.Q8_0: [0],
              gguf.Q2_K: [80, 82], gguf.Q3_K: [108], gguf.Q4_K: [0, 2], gguf.Q5_K: [0, 2],
              gguf.Q6_K: [208]}


def random_vs_scalar():
    rng = np.random.default_rng(1234)
    for t in list(F16_FIELDS) + [gguf.Q8_K]:
        name, blck, bsize = gguf.GGML_TYPES[t]
        nb = 6
        raw = rng.integers(0, 256, size=(nb, bsize), dtype=np.uint8)
        for b in range(nb):
            for off in F16_FIELDS.get(t, []):
                raw[b, off:off + 2] = np.frombuffer(f16b(rng.normal(0, 0.1)), np.uint8)
            if t == gguf.Q8_K:
                raw[b, 0:4] = np.frombuffer(np.array([rng.normal(0, 0.01)], "<f4").tobytes(), np.uint8)
        raw = raw.reshape(-1)
        fast = gguf.dequantize(raw, t, nb * blck).astype(np.float64)
        slow = gguf.dequant_scalar(raw, t)
        err = np.abs(fast - slow).max() / max(np.abs(slow).max(), 1e-30)
        check(fast.shape == slow.shape and err < 1e-6, "%s vectorised vs per-element: max rel err %.2g" % (name, err))


def main():
    hand_worked()
    random_vs_scalar()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
