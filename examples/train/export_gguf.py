"""export_gguf.py - a small GGUF v3 writer (spec 1) and the exporters that write the trained
models in the layout of real LLaVA-1.5 files:

- mmproj (spec 3): general.architecture "clip", legacy tensor names v.*, mm.0/mm.2, with the
  legacy swap (v.blk.N.ffn_down = fc1, ffn_up = fc2); only the blocks LLaVA's feature layer
  uses are stored (block_count = trained blocks - 1), no post-LN, no CLIP projection.
- LM (spec 6, 8): general.architecture "llama", Q/K rows permuted per head from HF's
  rotate-half layout to the adjacent-pair layout, output tied to token_embd (no output.weight),
  SPM tokenizer keys.
Matrices are F32 (or F16 with f16=True); 1-D tensors always F32.
"""
import struct

import numpy as np

T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
G_F32, G_F16 = 0, 1
ALIGN = 32


class Writer:
    def __init__(self):
        self.kv = []            # (key, type, value[, elem_type])
        self.tensors = []       # (name, np.ndarray, ggml_type)

    def add(self, key, vtype, value, elem=None):
        self.kv.append((key, vtype, value, elem))

    def u32(self, k, v):
        self.add(k, T_U32, int(v))

    def f32(self, k, v):
        self.add(k, T_F32, float(v))

    def str(self, k, v):
        self.add(k, T_STR, v)

    def bool(self, k, v):
        self.add(k, T_BOOL, bool(v))

    def arr(self, k, elem, values):
        self.add(k, T_ARR, list(values), elem)

    def tensor(self, name, array, f16=False):
        a = np.ascontiguousarray(array, dtype=np.float32)
        if f16 and a.ndim >= 2:
            self.tensors.append((name, a.astype(np.float16), G_F16))
        else:
            self.tensors.append((name, a, G_F32))

    @staticmethod
    def _s(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _scalar(self, t, v):
        fmt = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i", T_F32: "<f",
               T_BOOL: "<B", T_U64: "<Q", T_I64: "<q", T_F64: "<d"}
        return self._s(v) if t == T_STR else struct.pack(fmt[t], v)

    def write(self, path):
        out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
        for key, t, v, elem in self.kv:
            out += self._s(key) + struct.pack("<i", t)
            if t == T_ARR:
                out += struct.pack("<iQ", elem, len(v))
                for x in v:
                    out += self._scalar(elem, x)
            else:
                out += self._scalar(t, v)
        offset, blobs = 0, []
        for name, a, gt in self.tensors:
            ne = list(reversed(a.shape))        # ne[0] = fastest axis = last numpy axis
            out += self._s(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
            out += struct.pack("<iQ", gt, offset)
            data = a.astype("<f4" if gt == G_F32 else "<f2").tobytes()
            blobs.append(data)
            offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
        out += b"\0" * ((-len(out)) % ALIGN)
        for data in blobs:
            out += data + b"\0" * ((-len(data)) % ALIGN)
        with open(path, "wb") as f:
            f.write(out)


def _np(t):
    return t.detach().cpu().float().numpy()


def export_mmproj(path, vit, proj, f16=False, name="libllava synthetic-world CLIP + projector"):
    from models import CLIP_MEAN, CLIP_STD
    n_blocks = len(vit.blocks) - 1           # LLaVA's second-to-last layer: store what C runs
    w = Writer()
    w.str("general.architecture", "clip")
    w.str("general.name", name)
    w.str("general.description", "image encoder for LLaVA (examples/train)")
    w.u32("general.file_type", 1 if f16 else 0)
    w.bool("clip.has_text_encoder", False)
    w.bool("clip.has_vision_encoder", True)
    w.bool("clip.has_llava_projector", True)
    w.str("clip.projector_type", "mlp")
    w.u32("clip.vision.image_size", vit.image_size)
    w.u32("clip.vision.patch_size", vit.patch)
    w.u32("clip.vision.embedding_length", vit.d)
    w.u32("clip.vision.feed_forward_length", vit.d_ff)
    w.u32("clip.vision.projection_dim", vit.proj.out_features)
    w.u32("clip.vision.block_count", n_blocks)
    w.u32("clip.vision.attention.head_count", vit.n_head)
    w.f32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.arr("clip.vision.image_mean", T_F32, CLIP_MEAN)
    w.arr("clip.vision.image_std", T_F32, CLIP_STD)
    w.bool("clip.use_gelu", False)
    w.tensor("v.patch_embd.weight", _np(vit.patch_embd.weight), f16)       # [D,3,P,P] -> ne [P,P,3,D]
    w.tensor("v.class_embd", _np(vit.class_embd))
    w.tensor("v.position_embd.weight", _np(vit.pos_embd), f16)
    w.tensor("v.pre_ln.weight", _np(vit.pre_ln.weight))
    w.tensor("v.pre_ln.bias", _np(vit.pre_ln.bias))
    for i, b in enumerate(vit.blocks[:n_blocks]):
        p = "v.blk.%d." % i
        for gg, lin in (("attn_q", b.q), ("attn_k", b.k), ("attn_v", b.v), ("attn_out", b.o),
                        ("ffn_down", b.fc1), ("ffn_up", b.fc2)):       # legacy swap: ffn_down = fc1
            w.tensor(p + gg + ".weight", _np(lin.weight), f16)
            w.tensor(p + gg + ".bias", _np(lin.bias))
        for gg, ln in (("ln1", b.ln1), ("ln2", b.ln2)):
            w.tensor(p + gg + ".weight", _np(ln.weight))
            w.tensor(p + gg + ".bias", _np(ln.bias))
    w.tensor("mm.0.weight", _np(proj.mm0.weight), f16)
    w.tensor("mm.0.bias", _np(proj.mm0.bias))
    w.tensor("mm.2.weight", _np(proj.mm2.weight), f16)
    w.tensor("mm.2.bias", _np(proj.mm2.bias))
    w.write(path)


def permute_qk(wt, n_head):
    """HF rotate-half rows -> GGUF adjacent-pair rows (convert_hf_to_gguf's permute)."""
    n_out, n_in = wt.shape
    return wt.reshape(n_head, 2, n_out // n_head // 2, n_in).swapaxes(1, 2).reshape(n_out, n_in)


def export_lm(path, lm, vocab, f16=False, name="libllava synthetic-world LLaMA"):
    w = Writer()
    w.str("general.architecture", "llama")
    w.str("general.name", name)
    w.u32("general.file_type", 1 if f16 else 0)
    w.u32("llama.context_length", lm.ctx)
    w.u32("llama.embedding_length", lm.e)
    w.u32("llama.block_count", lm.n_layer)
    w.u32("llama.feed_forward_length", lm.f)
    w.u32("llama.attention.head_count", lm.n_head)
    w.u32("llama.attention.head_count_kv", lm.n_head)
    w.f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.u32("llama.rope.dimension_count", lm.e // lm.n_head)
    w.f32("llama.rope.freq_base", lm.rope_base)
    w.u32("llama.vocab_size", len(vocab))
    w.str("tokenizer.ggml.model", "llama")
    w.arr("tokenizer.ggml.tokens", T_STR, vocab.pieces)
    w.arr("tokenizer.ggml.scores", T_F32, vocab.scores)
    w.arr("tokenizer.ggml.token_type", T_I32, vocab.types)
    w.u32("tokenizer.ggml.bos_token_id", vocab.bos)
    w.u32("tokenizer.ggml.eos_token_id", vocab.eos)
    w.u32("tokenizer.ggml.unknown_token_id", vocab.unk)
    w.bool("tokenizer.ggml.add_bos_token", True)
    w.bool("tokenizer.ggml.add_eos_token", False)
    w.bool("tokenizer.ggml.add_space_prefix", True)
    w.tensor("token_embd.weight", _np(lm.tok_embd.weight), f16)
    w.tensor("output_norm.weight", _np(lm.norm.weight))
    for i, L in enumerate(lm.layers):
        p = "blk.%d." % i
        w.tensor(p + "attn_norm.weight", _np(L.attn_norm.weight))
        w.tensor(p + "attn_q.weight", permute_qk(_np(L.q.weight), lm.n_head), f16)
        w.tensor(p + "attn_k.weight", permute_qk(_np(L.k.weight), lm.n_head), f16)
        w.tensor(p + "attn_v.weight", _np(L.v.weight), f16)
        w.tensor(p + "attn_output.weight", _np(L.o.weight), f16)
        w.tensor(p + "ffn_norm.weight", _np(L.ffn_norm.weight))
        w.tensor(p + "ffn_gate.weight", _np(L.gate.weight), f16)
        w.tensor(p + "ffn_up.weight", _np(L.up.weight), f16)
        w.tensor(p + "ffn_down.weight", _np(L.down.weight), f16)
    w.write(path)
