"""gguf_write.py - a minimal independent GGUF v3 writer (spec section 1) for the reference tests,
plus helpers that make valid random quantized tensors without a quantizer.

    w = GGUFWriter()
    w.add("llama.block_count", gguf.UINT32, 2)
    w.add("tokenizer.ggml.tokens", gguf.ARRAY, ["a", "b"], elem_type=gguf.STRING)
    w.add_tensor("x", ne=(256, 4), ggml_type=gguf.Q4_K, data=raw_bytes)
    w.write(path)
"""
import struct

import numpy as np

import gguf

_FMT = {gguf.UINT8: "<B", gguf.INT8: "<b", gguf.UINT16: "<H", gguf.INT16: "<h", gguf.UINT32: "<I",
        gguf.INT32: "<i", gguf.FLOAT32: "<f", gguf.BOOL: "<B", gguf.UINT64: "<Q", gguf.INT64: "<q",
        gguf.FLOAT64: "<d"}
_NP = {gguf.UINT8: "<u1", gguf.INT8: "<i1", gguf.UINT16: "<u2", gguf.INT16: "<i2", gguf.UINT32: "<u4",
       gguf.INT32: "<i4", gguf.FLOAT32: "<f4", gguf.BOOL: "<u1", gguf.UINT64: "<u8", gguf.INT64: "<i8",
       gguf.FLOAT64: "<f8"}


def _str(s):
    b = s.encode("utf-8", errors="surrogateescape") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


class GGUFWriter:
    def __init__(self, alignment=32):
        self.kv = []          # (key, type, encoded value)
        self.tensors = []     # (name, ne, type, bytes)
        self.alignment = alignment

    def add(self, key, vtype, value, elem_type=None):
        if vtype == gguf.STRING:
            enc = _str(value)
        elif vtype == gguf.ARRAY:
            if elem_type == gguf.STRING:
                enc = struct.pack("<iQ", elem_type, len(value)) + b"".join(_str(s) for s in value)
            else:
                a = np.asarray(value).astype(_NP[elem_type])
                enc = struct.pack("<iQ", elem_type, a.size) + a.tobytes()
        else:
            enc = struct.pack(_FMT[vtype], value)
        self.kv = [kv for kv in self.kv if kv[0] != key] + [(key, vtype, enc)]

    def copy_keys(self, reader, keep=lambda k: True):
        for k in reader.key_order:
            if keep(k):
                vt, et = reader.meta_type(k)
                self.add(k, vt, reader.meta[k], et)

    def add_tensor(self, name, ne, ggml_type, data):
        data = bytes(data)
        if len(data) != gguf.tensor_nbytes(list(ne), ggml_type):
            raise ValueError("%s: %d bytes, expected %d" % (name, len(data), gguf.tensor_nbytes(list(ne), ggml_type)))
        self.tensors.append((name, tuple(ne), ggml_type, data))

    def write(self, path):
        a = self.alignment
        pad = lambda n: (n + a - 1) // a * a  # noqa: E731
        out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
        for k, vt, enc in self.kv:
            out += _str(k) + struct.pack("<i", vt) + enc
        off = 0
        for name, ne, t, data in self.tensors:
            out += _str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
            out += struct.pack("<iQ", t, off)
            off += pad(len(data))
        if self.tensors:
            out += b"\0" * (pad(len(out)) - len(out))
        for _, _, _, data in self.tensors:
            out += data + b"\0" * (pad(len(data)) - len(data))
        with open(path, "wb") as f:
            f.write(out)


# ---- random quantized tensors ----

# byte offsets of the f16 "d" and "dmin"/"m" fields in each block
_D_FIELDS = {gguf.Q4_0: (0, None), gguf.Q4_1: (0, 2), gguf.Q5_0: (0, None), gguf.Q5_1: (0, 2),
             gguf.Q8_0: (0, None), gguf.Q2_K: (80, 82), gguf.Q3_K: (108, None), gguf.Q4_K: (0, 2),
             gguf.Q5_K: (0, 2), gguf.Q6_K: (208, None)}


def _set_f16(blocks, off, value):
    blocks[:, off:off + 2] = np.frombuffer(np.array([value], "<f2").tobytes(), np.uint8)


def random_tensor_bytes(rng, ne, ggml_type, std):
    """Valid bytes for a tensor of shape ne and type ggml_type whose dequantized values have
    roughly zero mean and standard deviation std (random codes; the f16 scale fields are set
    so that the value distribution has the wanted moments)."""
    n = int(np.prod(ne))
    if ggml_type == gguf.F32:
        return (rng.standard_normal(n) * std).astype("<f4").tobytes()
    if ggml_type == gguf.F16:
        return (rng.standard_normal(n) * std).astype("<f2").tobytes()
    if ggml_type == gguf.BF16:
        v = (rng.standard_normal(n) * std).astype("<f4").view("<u4")
        return ((v + 0x7FFF + ((v >> 16) & 1)) >> 16).astype("<u2").tobytes()   # round to nearest even
    _, blck, bsize = gguf.GGML_TYPES[ggml_type]
    nb = n // blck
    blocks = rng.integers(0, 256, size=(nb, bsize), dtype=np.uint8)
    d_off, m_off = _D_FIELDS[ggml_type]
    # moments of the code part (d = 1, dmin = 0) and of the min part (d = 0, dmin = 1)
    _set_f16(blocks, d_off, 1.0)
    if m_off is not None:
        _set_f16(blocks, m_off, 0.0)
    A = gguf.dequantize(blocks.reshape(-1), ggml_type, n).astype(np.float64)
    k_min = 0.0
    if m_off is not None:
        _set_f16(blocks, d_off, 0.0)
        _set_f16(blocks, m_off, 1.0)
        B = gguf.dequantize(blocks.reshape(-1), ggml_type, n).astype(np.float64)
        # Q4_1/Q5_1 add m (y = d*q + m), the K types subtract dmin*m (dequant gives -m):
        # choose the min field so the mean cancels.
        k_min = -A.mean() / B.mean() if B.mean() != 0 else 0.0
    s = float(np.std(A + k_min * (B if m_off is not None else 0)))
    k = std / s if s > 0 else 0.0
    _set_f16(blocks, d_off, k)
    if m_off is not None:
        _set_f16(blocks, m_off, k * k_min)
    return blocks.tobytes()
