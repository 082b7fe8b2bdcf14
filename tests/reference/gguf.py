"""gguf.py - a small, independent GGUF (v2/v3) reader for the libllava reference.

Written from shared/spec/llava-format.md sections 1-2 only (no code from other
projects). numpy only. Used by llava_ref.py and by the tests that check files
written by the C side (llava-mkmodel, llava-quantize).

    r = GGUFFile(path)
    r.meta["llama.embedding_length"]        -> python value (int/float/bool/str/list/np.ndarray)
    r.meta_type("clip.use_gelu")            -> (value_type, elem_type or None)
    r.tensors["token_embd.weight"]          -> TensorInfo(name, ne, type, offset, nbytes)
    r.array("token_embd.weight")            -> np.float32 array, numpy shape = reversed(ne)

Supported tensor types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K,
Q3_K, Q4_K, Q5_K, Q6_K, Q8_K. Each quantized type has a vectorised dequantizer
(dequant_*) and a plain per-element version written straight from the spec
formula (dequant_scalar), which tests/test_reference_quants.py compares.
"""

import mmap
import struct
from collections import namedtuple

import numpy as np

# ---- metadata value types (spec 1.2) ----
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
VALUE_TYPE_NAMES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool",
                    "string", "array", "uint64", "int64", "float64"]
_SCALAR_FMT = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
               FLOAT32: "<f", BOOL: "<B", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}
_SCALAR_NP = {UINT8: "<u1", INT8: "<i1", UINT16: "<u2", INT16: "<i2", UINT32: "<u4", INT32: "<i4",
              FLOAT32: "<f4", BOOL: "<u1", UINT64: "<u8", INT64: "<i8", FLOAT64: "<f8"}

# ---- ggml tensor types (spec 1.3): id -> (name, elements per block, bytes per block) ----
F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 = 0, 1, 2, 3, 6, 7, 8, 9
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, BF16 = 10, 11, 12, 13, 14, 15, 30
GGML_TYPES = {
    F32: ("F32", 1, 4), F16: ("F16", 1, 2), Q4_0: ("Q4_0", 32, 18), Q4_1: ("Q4_1", 32, 20),
    Q5_0: ("Q5_0", 32, 22), Q5_1: ("Q5_1", 32, 24), Q8_0: ("Q8_0", 32, 34), Q8_1: ("Q8_1", 32, 36),
    Q2_K: ("Q2_K", 256, 84), Q3_K: ("Q3_K", 256, 110), Q4_K: ("Q4_K", 256, 144),
    Q5_K: ("Q5_K", 256, 176), Q6_K: ("Q6_K", 256, 210), Q8_K: ("Q8_K", 256, 292), BF16: ("BF16", 1, 2),
}
TYPE_BY_NAME = {v[0]: k for k, v in GGML_TYPES.items()}
GGML_TYPE_COUNT = 43
DEFAULT_ALIGNMENT = 32

TensorInfo = namedtuple("TensorInfo", "name n_dims ne type offset nbytes")


class GGUFError(Exception):
    pass


def type_name(t):
    return GGML_TYPES[t][0] if t in GGML_TYPES else "type%d" % t


def tensor_nbytes(ne, t):
    _, blck, size = GGML_TYPES[t]
    if ne[0] % blck:
        raise GGUFError("ne[0]=%d not a multiple of block size %d" % (ne[0], blck))
    n = ne[0] // blck * size
    for d in ne[1:]:
        n *= d
    return n


class GGUFFile:
    """Parses the whole header eagerly; tensor bytes stay in the mapping."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.buf = memoryview(self._mm)
        self.pos = 0
        self.meta = {}
        self._types = {}
        self.key_order = []
        self.tensors = {}
        self.tensor_order = []
        self._parse()

    # -- low level --
    def _take(self, fmt):
        n = struct.calcsize(fmt)
        if self.pos + n > len(self.buf):
            raise GGUFError("truncated file at offset %d" % self.pos)
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += n
        return v

    def _string(self):
        n = self._take("<Q")
        if n > (1 << 30) or self.pos + n > len(self.buf):
            raise GGUFError("bad string length %d at offset %d" % (n, self.pos))
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", errors="surrogateescape")
        self.pos += n
        return s

    def _value(self, vt):
        if vt == STRING:
            return self._string()
        if vt == ARRAY:
            et = self._take("<i")
            n = self._take("<Q")
            if n > (1 << 30):
                raise GGUFError("array too long")
            if et == STRING:
                return [self._string() for _ in range(n)], et
            if et == ARRAY or et not in _SCALAR_NP:
                raise GGUFError("bad array element type %d" % et)
            dt = np.dtype(_SCALAR_NP[et])
            end = self.pos + n * dt.itemsize
            if end > len(self.buf):
                raise GGUFError("truncated array")
            a = np.frombuffer(self.buf[self.pos:end], dtype=dt).copy()
            if et == BOOL:
                a = a != 0
            self.pos = end
            return a, et
        if vt not in _SCALAR_FMT:
            raise GGUFError("bad value type %d" % vt)
        v = self._take(_SCALAR_FMT[vt])
        if vt == BOOL:
            v = bool(v)
        return v

    def _parse(self):
        if bytes(self.buf[:4]) != b"GGUF":
            raise GGUFError("bad magic")
        self.pos = 4
        self.version = self._take("<I")
        if self.version not in (2, 3):
            raise GGUFError("unsupported version %d" % self.version)
        n_tensors = self._take("<q")
        n_kv = self._take("<q")
        if n_tensors < 0 or n_kv < 0:
            raise GGUFError("negative counts")
        for _ in range(n_kv):
            key = self._string()
            if not key or key in self.meta:
                raise GGUFError("empty or duplicate key %r" % key)
            vt = self._take("<i")
            v = self._value(vt)
            et = None
            if vt == ARRAY:
                v, et = v
            self.meta[key] = v
            self._types[key] = (vt, et)
            self.key_order.append(key)
        self.alignment = DEFAULT_ALIGNMENT
        if "general.alignment" in self.meta:
            if self._types["general.alignment"][0] != UINT32:
                raise GGUFError("general.alignment must be uint32")
            a = self.meta["general.alignment"]
            if a == 0 or a & (a - 1):
                raise GGUFError("alignment %d not a power of two" % a)
            self.alignment = a
        for _ in range(n_tensors):
            name = self._string()
            if len(name.encode()) >= 64 or name in self.tensors:
                raise GGUFError("bad or duplicate tensor name %r" % name)
            n_dims = self._take("<I")
            if not 1 <= n_dims <= 4:
                raise GGUFError("bad n_dims %d for %s" % (n_dims, name))
            ne = [self._take("<q") for _ in range(n_dims)]
            if any(d < 0 for d in ne):
                raise GGUFError("negative dim in %s" % name)
            t = self._take("<i")
            if t not in GGML_TYPES:
                raise GGUFError("unsupported tensor type %d for %s" % (t, name))
            off = self._take("<Q")
            self.tensors[name] = TensorInfo(name, n_dims, tuple(ne), t, off, tensor_nbytes(ne, t))
            self.tensor_order.append(name)
        self.info_end = self.pos
        a = self.alignment
        self.data_start = (self.pos + a - 1) // a * a if n_tensors > 0 else self.pos
        for ti in self.tensors.values():
            if ti.offset % a:
                raise GGUFError("tensor %s offset %d not aligned" % (ti.name, ti.offset))
            if self.data_start + ti.offset + ti.nbytes > len(self.buf):
                raise GGUFError("tensor %s runs past end of file" % ti.name)

    # -- public --
    def meta_type(self, key):
        """(value_type, elem_type) of a key; elem_type is None unless an ARRAY."""
        return self._types[key]

    def get(self, key, default=None):
        return self.meta.get(key, default)

    def check_strict_layout(self):
        """The llama.cpp reader's stricter rule (spec 1.4): tensors in info order,
        offset_i = sum of PAD(nbytes_j) for j < i. Returns a list of problems."""
        probs = []
        expect = 0
        a = self.alignment
        for name in self.tensor_order:
            ti = self.tensors[name]
            if ti.offset != expect:
                probs.append("%s: offset %d, expected %d" % (name, ti.offset, expect))
            expect += (ti.nbytes + a - 1) // a * a
        pad = bytes(self.buf[self.info_end:self.data_start])
        if pad.strip(b"\0"):
            probs.append("non-zero padding before the data section")
        return probs

    def raw(self, name):
        ti = self.tensors[name]
        s = self.data_start + ti.offset
        return np.frombuffer(self.buf[s:s + ti.nbytes], dtype=np.uint8)

    def array(self, name):
        """Dequantized float32 array with numpy shape reversed(ne)."""
        ti = self.tensors[name]
        flat = dequantize(self.raw(name), ti.type, int(np.prod(ti.ne)))
        return flat.reshape(tuple(reversed(ti.ne)))

    def close(self):
        self.buf.release()
        self._mm.close()


# =====================================================================
# Dequantizers (spec 2). Input: uint8 bytes of whole blocks. Output: float32.
# =====================================================================

def _f16(b, off):
    """Per-block f16 field at byte offset off -> float32 column [nb,1]."""
    return b[:, off:off + 2].copy().view("<f2").astype(np.float32)


def _blocks(raw, bsize):
    return raw.reshape(-1, bsize)


def dequant_q4_0(raw):
    b = _blocks(raw, 18)
    d = _f16(b, 0)
    qs = b[:, 2:18].astype(np.int32)
    q = np.concatenate([qs & 15, qs >> 4], axis=1) - 8
    return (q * d).reshape(-1)


def dequant_q4_1(raw):
    b = _blocks(raw, 20)
    d, m = _f16(b, 0), _f16(b, 2)
    qs = b[:, 4:20].astype(np.int32)
    q = np.concatenate([qs & 15, qs >> 4], axis=1)
    return (q * d + m).reshape(-1)


def _q5_values(b, qh_off, qs_off):
    H = b[:, qh_off:qh_off + 4].copy().view("<u4").astype(np.int64)     # [nb,1]
    qs = b[:, qs_off:qs_off + 16].astype(np.int64)
    j = np.arange(32)
    low = np.concatenate([qs & 15, qs >> 4], axis=1)                    # [nb,32]
    hi = (H >> j) & 1                                                   # bit j for element j
    return low | (hi << 4)


def dequant_q5_0(raw):
    b = _blocks(raw, 22)
    d = _f16(b, 0)
    return ((_q5_values(b, 2, 6) - 16) * d).reshape(-1)


def dequant_q5_1(raw):
    b = _blocks(raw, 24)
    d, m = _f16(b, 0), _f16(b, 2)
    return (_q5_values(b, 4, 8) * d + m).reshape(-1)


def dequant_q8_0(raw):
    b = _blocks(raw, 34)
    d = _f16(b, 0)
    qs = b[:, 2:34].copy().view(np.int8).astype(np.float32)
    return (qs * d).reshape(-1)


def dequant_q8_k(raw):
    b = _blocks(raw, 292)
    d = b[:, 0:4].copy().view("<f4")
    qs = b[:, 4:260].copy().view(np.int8).astype(np.float32)
    return (qs * d).reshape(-1)


# Per-element index tables for the 256-element k-quant blocks.
_E = np.arange(256)
_H, _J, _R = _E // 128, (_E % 128) // 32, _E % 32


def dequant_q2_k(raw):
    b = _blocks(raw, 84)
    scales = b[:, 0:16].astype(np.int32)
    qs = b[:, 16:80].astype(np.int32)
    d, dmin = _f16(b, 80), _f16(b, 82)
    q = (qs[:, 32 * _H + _R] >> (2 * _J)) & 3
    s = scales[:, 8 * _H + 2 * _J + (_R >= 16)]
    return (d * (s & 15) * q - dmin * (s >> 4)).astype(np.float32).reshape(-1)


def _q3_scales(sc):
    """sc: [nb,12] int -> [nb,16] signed 6-bit scales."""
    i = np.arange(16)
    low = np.where(i < 8, sc[:, i % 8] & 15, sc[:, i % 8] >> 4)
    high = (sc[:, 8 + (i % 4)] >> (2 * (i // 4))) & 3
    return (low | (high << 4)) - 32


def dequant_q3_k(raw):
    b = _blocks(raw, 110)
    hmask = b[:, 0:32].astype(np.int32)
    qs = b[:, 32:96].astype(np.int32)
    sc = _q3_scales(b[:, 96:108].astype(np.int32))
    d = _f16(b, 108)
    q2 = (qs[:, 32 * _H + _R] >> (2 * _J)) & 3
    hb = (hmask[:, _R] >> (4 * _H + _J)) & 1
    q = q2 - np.where(hb != 0, 0, 4)
    return (d * sc[:, 8 * _H + 2 * _J + (_R >= 16)] * q).astype(np.float32).reshape(-1)


def _k4_scale_min(S):
    """S: [nb,12] int -> (sc [nb,8], m [nb,8]) per get_scale_min_k4."""
    sc = np.empty((S.shape[0], 8), np.int32)
    m = np.empty((S.shape[0], 8), np.int32)
    for j in range(4):
        sc[:, j] = S[:, j] & 63
        m[:, j] = S[:, j + 4] & 63
    for j in range(4, 8):
        sc[:, j] = (S[:, j + 4] & 15) | ((S[:, j - 4] >> 6) << 4)
        m[:, j] = (S[:, j + 4] >> 4) | ((S[:, j] >> 6) << 4)
    return sc, m


_C64, _R64 = _E // 64, _E % 64
_SUB = 2 * _C64 + (_R64 >= 32)               # sub-block index 0..7


def _q4k_nibbles(qs):
    bb = qs[:, 32 * _C64 + (_R64 % 32)]
    return np.where(_R64 < 32, bb & 15, bb >> 4)


def dequant_q4_k(raw):
    b = _blocks(raw, 144)
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, m = _k4_scale_min(b[:, 4:16].astype(np.int32))
    q = _q4k_nibbles(b[:, 16:144].astype(np.int32))
    return (d * sc[:, _SUB] * q - dmin * m[:, _SUB]).astype(np.float32).reshape(-1)


def dequant_q5_k(raw):
    b = _blocks(raw, 176)
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, m = _k4_scale_min(b[:, 4:16].astype(np.int32))
    qh = b[:, 16:48].astype(np.int32)
    q = _q4k_nibbles(b[:, 48:176].astype(np.int32))
    q = q + ((qh[:, _R64 % 32] >> _SUB) & 1) * 16
    return (d * sc[:, _SUB] * q - dmin * m[:, _SUB]).astype(np.float32).reshape(-1)


_G6, _L6 = (_E % 128) // 32, _E % 32


def dequant_q6_k(raw):
    b = _blocks(raw, 210)
    ql = b[:, 0:128].astype(np.int32)
    qh = b[:, 128:192].astype(np.int32)
    scales = b[:, 192:208].copy().view(np.int8).astype(np.int32)
    d = _f16(b, 208)
    bb = ql[:, 64 * _H + _L6 + 32 * (_G6 & 1)]
    nib = np.where(_G6 < 2, bb & 15, bb >> 4)
    hi = (qh[:, 32 * _H + _L6] >> (2 * _G6)) & 3
    q = (nib | (hi << 4)) - 32
    return (d * scales[:, 8 * _H + _L6 // 16 + 2 * _G6] * q).astype(np.float32).reshape(-1)


DEQUANT = {Q4_0: dequant_q4_0, Q4_1: dequant_q4_1, Q5_0: dequant_q5_0, Q5_1: dequant_q5_1,
           Q8_0: dequant_q8_0, Q2_K: dequant_q2_k, Q3_K: dequant_q3_k, Q4_K: dequant_q4_k,
           Q5_K: dequant_q5_k, Q6_K: dequant_q6_k, Q8_K: dequant_q8_k}


def dequantize(raw, t, n):
    """raw uint8 bytes of n elements of ggml type t -> float32[n]."""
    raw = np.asarray(raw, dtype=np.uint8)
    if t == F32:
        out = raw.view("<f4").astype(np.float32)
    elif t == F16:
        out = raw.view("<f2").astype(np.float32)
    elif t == BF16:
        out = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    elif t in DEQUANT:
        out = DEQUANT[t](raw)
    else:
        raise GGUFError("no dequantizer for %s" % type_name(t))
    if out.size != n:
        raise GGUFError("size mismatch: %d elements decoded, %d expected" % (out.size, n))
    return out


# ---------------------------------------------------------------------
# Plain per-element versions, literally the spec formulas (slow; for tests).
# ---------------------------------------------------------------------

def _h(blk, off):
    return float(np.frombuffer(bytes(blk[off:off + 2]), "<f2")[0])


def dequant_scalar(raw, t):
    """One-block-at-a-time, one-element-at-a-time dequantization (spec 2)."""
    _, blck, bsize = GGML_TYPES[t]
    raw = bytes(np.asarray(raw, np.uint8))
    out = []
    for bo in range(0, len(raw), bsize):
        B = raw[bo:bo + bsize]
        if t in (Q4_0, Q4_1, Q5_0, Q5_1):
            d = _h(B, 0)
            m = _h(B, 2) if t in (Q4_1, Q5_1) else 0.0
            qs_off = {Q4_0: 2, Q4_1: 4, Q5_0: 6, Q5_1: 8}[t]
            H = 0
            if t == Q5_0:
                H = struct.unpack_from("<I", B, 2)[0]
            if t == Q5_1:
                H = struct.unpack_from("<I", B, 4)[0]
            y = [0.0] * 32
            for j in range(16):
                lo, hi = B[qs_off + j] & 15, B[qs_off + j] >> 4
                if t in (Q5_0, Q5_1):
                    lo |= ((H >> j) & 1) << 4
                    hi |= ((H >> (j + 16)) & 1) << 4
                if t == Q4_0:
                    y[j], y[j + 16] = (lo - 8) * d, (hi - 8) * d
                elif t == Q5_0:
                    y[j], y[j + 16] = (lo - 16) * d, (hi - 16) * d
                else:
                    y[j], y[j + 16] = lo * d + m, hi * d + m
            out += y
        elif t == Q8_0:
            d = _h(B, 0)
            out += [struct.unpack_from("<b", B, 2 + j)[0] * d for j in range(32)]
        elif t == Q8_K:
            d = struct.unpack_from("<f", B, 0)[0]
            out += [struct.unpack_from("<b", B, 4 + j)[0] * d for j in range(256)]
        elif t == Q2_K:
            d, dmin = _h(B, 80), _h(B, 82)
            for e in range(256):
                h, j, r = e // 128, (e % 128) // 32, e % 32
                q = (B[16 + 32 * h + r] >> (2 * j)) & 3
                s = B[8 * h + 2 * j + (r >= 16)]
                out.append(d * (s & 15) * q - dmin * (s >> 4))
        elif t == Q3_K:
            d = _h(B, 108)
            S = B[96:108]
            sc = []
            for i in range(16):
                low = S[i] & 15 if i < 8 else S[i - 8] >> 4
                high = (S[8 + (i % 4)] >> (2 * (i // 4))) & 3
                sc.append((low | (high << 4)) - 32)
            for e in range(256):
                h, j, r = e // 128, (e % 128) // 32, e % 32
                q2 = (B[32 + 32 * h + r] >> (2 * j)) & 3
                hb = (B[r] >> (4 * h + j)) & 1
                q = q2 - (0 if hb else 4)
                out.append(d * sc[8 * h + 2 * j + (r >= 16)] * q)
        elif t in (Q4_K, Q5_K):
            d, dmin = _h(B, 0), _h(B, 2)
            S = B[4:16]
            scm = []
            for j in range(8):
                if j < 4:
                    scm.append((S[j] & 63, S[j + 4] & 63))
                else:
                    scm.append(((S[j + 4] & 15) | ((S[j - 4] >> 6) << 4),
                                (S[j + 4] >> 4) | ((S[j] >> 6) << 4)))
            qs_off = 16 if t == Q4_K else 48
            for e in range(256):
                c, r = e // 64, e % 64
                bb = B[qs_off + 32 * c + (r % 32)]
                q = bb & 15 if r < 32 else bb >> 4
                s = 2 * c + (r >= 32)
                if t == Q5_K:
                    q += ((B[16 + r % 32] >> s) & 1) * 16
                out.append(d * scm[s][0] * q - dmin * scm[s][1])
        elif t == Q6_K:
            d = _h(B, 208)
            for e in range(256):
                h, g, l = e // 128, (e % 128) // 32, e % 32
                bb = B[64 * h + l + 32 * (g & 1)]
                nib = bb & 15 if g < 2 else bb >> 4
                hi = (B[128 + 32 * h + l] >> (2 * g)) & 3
                q = (nib | (hi << 4)) - 32
                sc = struct.unpack_from("<b", B, 192 + 8 * h + l // 16 + 2 * g)[0]
                out.append(d * sc * q)
        else:
            raise GGUFError("no scalar dequantizer for %s" % type_name(t))
    return np.array(out, dtype=np.float64)


def _main(argv):
    """python3 gguf.py FILE  - dump keys and tensors."""
    r = GGUFFile(argv[1])
    print("version %d, alignment %d, %d keys, %d tensors" % (r.version, r.alignment, len(r.meta), len(r.tensors)))
    for k in r.key_order:
        vt, et = r.meta_type(k)
        v = r.meta[k]
        if vt == ARRAY:
            head = list(v[:6]) if et == STRING else v[:6].tolist()
            print("  %-50s array[%s] n=%d %s" % (k, VALUE_TYPE_NAMES[et], len(v), head))
        else:
            print("  %-50s %-8s %r" % (k, VALUE_TYPE_NAMES[vt], v))
    for n in r.tensor_order:
        ti = r.tensors[n]
        print("  %-40s %-6s %s off=%d" % (n, type_name(ti.type), list(ti.ne), ti.offset))


if __name__ == "__main__":
    import sys
    _main(sys.argv)
