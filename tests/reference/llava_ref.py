#!/usr/bin/python3
"""llava_ref.py - independent PyTorch reference of LLaVA (LLaMA LM + CLIP vision tower + projector)
for the libllava tests. Written from shared/spec/llava-format.md (sections 4-7 and "Decisions");
it shares no code with the C library. Needs /usr/bin/python3 with torch (1.13), numpy, Pillow.

CLI (all outputs are raw little-endian float32 unless said otherwise; token lists are comma-separated):

  llava_ref.py lm-logits MODEL.gguf --tokens 1,2,3 [IMAGE OPTIONS] --out logits.f32 [--all]
        logits of the last position (n_vocab floats), or of every position with --all
        (n_positions x n_vocab, position-major).
  llava_ref.py greedy MODEL.gguf --tokens 1,2,3 [IMAGE OPTIONS] --n 32 [--stop-eos] [--out-logits F]
        prints the generated ids (argmax, comma-separated) on stdout; --out-logits writes the
        logits of every generated step (n x n_vocab).
  llava_ref.py encode MMPROJ.gguf IMAGE --out embd.f32
        projector output, n_image_tokens x n_embd_text, token-major.
  llava_ref.py preprocess MMPROJ.gguf IMAGE --out pixels.f32 [--out-u8 pixels.u8]
        normalised planar [3][S][S] float32; --out-u8 the resized 8-bit RGB (interleaved, S*S*3).
  llava_ref.py vision-hidden MMPROJ.gguf IMAGE --out h.f32
        vision tower output before the projector (CLS dropped): n_patches x n_embd_vision.

  IMAGE OPTIONS (image embeddings spliced after the --tokens ids, then --suffix ids follow):
        --mmproj MMPROJ.gguf --image IMAGE    encode the image with the reference
        --embd FILE                           or read precomputed embeddings (rows of n_embd f32)
        --suffix 29871,13,...                 ids after the image
  Common: --dtype f64|f32 (default f64), --threads N, --vision-gelu erf|tanh (only used when
  clip.use_gelu is true; default erf as in HF CLIP's "gelu", which libllava also uses).
  LM numerics emulation (lm-logits, greedy): --act-quant N rounds the activation rows of
  quantized-weight products with at most N rows through Q8_0/Q8_K as llama.cpp does (spec 2.1;
  libllava's AVX2 decode path uses N = 4); --last-only computes the last layer for the last row
  only (as the C library does when it evaluates a prompt).

Semantics (spec "Decisions"): vision = [CLS, patches] with position rows 0..N, pre-LN, all stored
blocks (or clip.vision.feature_layer), quick-GELU unless clip.use_gelu, legacy ffn_down/ffn_up swap
detected by shape, post-LN only if present, CLS dropped; projector mlp = mm.0 -> erf GELU -> mm.2,
linear = mm.0. Preprocessing = LLaVA-1.5 expand2square with int(mean*255) at the original
resolution, Pillow BICUBIC resize to SxS, /255, (x-mean)/std. LM = llama: RMSNorm, adjacent-pair
RoPE on the GGUF Q/K rows, GQA, SwiGLU, tied output when output.weight is absent.
"""

import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402

DTYPES = {"f64": torch.float64, "f32": torch.float32}


def _t(r, name, dtype):
    return torch.from_numpy(r.array(name).copy()).to(dtype)


def _opt(r, name, dtype):
    return _t(r, name, dtype) if name in r.tensors else None


# =====================================================================
# LLaMA language model (spec 6)
# =====================================================================

class LlamaRef:
    def __init__(self, path, dtype=torch.float64):
        r = gguf.GGUFFile(path)
        self.dtype = dtype
        arch = r.meta.get("general.architecture", "llama")
        k = lambda s: "%s.%s" % (arch, s)  # noqa: E731
        self.n_embd = int(r.meta[k("embedding_length")])
        self.n_layer = int(r.meta[k("block_count")])
        self.n_head = int(r.meta[k("attention.head_count")])
        self.n_head_kv = int(r.meta.get(k("attention.head_count_kv"), self.n_head))
        self.head_dim = int(r.meta.get(k("attention.key_length"), self.n_embd // self.n_head))
        self.n_rot = int(r.meta.get(k("rope.dimension_count"), self.head_dim))
        self.eps = float(r.meta[k("attention.layer_norm_rms_epsilon")])
        self.rope_base = float(r.meta.get(k("rope.freq_base"), 10000.0))
        scaling = r.meta.get(k("rope.scaling.type"), "linear")
        factor = float(r.meta.get(k("rope.scaling.factor"), r.meta.get(k("rope.scale_linear"), 0.0)))
        if scaling not in ("none", "linear"):
            raise ValueError("rope scaling %r not supported by the reference" % scaling)
        self.freq_scale = 1.0 / factor if (scaling == "linear" and factor > 0) else 1.0
        self.bos = int(r.meta.get("tokenizer.ggml.bos_token_id", 1))
        self.eos = int(r.meta.get("tokenizer.ggml.eos_token_id", 2))

        self.tok_embd = _t(r, "token_embd.weight", dtype)               # [V, E]
        self.n_vocab = self.tok_embd.shape[0]
        self.output = _opt(r, "output.weight", dtype)
        self.tied = self.output is None
        if self.tied:
            self.output = self.tok_embd
        self.output_type = r.tensors["output.weight" if not self.tied else "token_embd.weight"].type
        # act_quant: round the activation rows of quantized-weight products through the partner
        # format (Q8_0 or Q8_K, spec 2.1) as llama.cpp does, for products with at most
        # act_quant_rows rows (0 = never). The weights stay exactly dequantized.
        self.act_quant_rows = 0
        self.output_norm = _t(r, "output_norm.weight", dtype)
        rf = _opt(r, "rope_freqs.weight", torch.float64)
        self.layers = []
        for i in range(self.n_layer):
            p = "blk.%d." % i
            L = {n: _t(r, p + n + ".weight", dtype) for n in
                 ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                  "ffn_gate", "ffn_up", "ffn_down")}
            for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
                L[n + ".bias"] = _opt(r, p + n + ".bias", dtype)
            for n in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
                L[n + ".type"] = r.tensors[p + n + ".weight"].type
            self.layers.append(L)
        # theta_i = pos * freq_scale * base^(-2i/n_rot) [/ rope_freqs_i]; computed in float64.
        i = torch.arange(self.n_rot // 2, dtype=torch.float64)
        self.inv_freq = self.freq_scale * self.rope_base ** (-2.0 * i / self.n_rot)
        if rf is not None:
            self.inv_freq = self.inv_freq / rf
        r.close()

    def embed(self, ids):
        return self.tok_embd[torch.as_tensor(ids, dtype=torch.long)]

    def _rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def _rope(self, x, pos):
        """x [T, H, hd]; rotates adjacent pairs (2i, 2i+1) for i < n_rot/2."""
        theta = pos.to(torch.float64)[:, None] * self.inv_freq[None, :]     # [T, n_rot/2]
        c = torch.cos(theta).to(x.dtype)[:, None, :]
        s = torch.sin(theta).to(x.dtype)[:, None, :]
        xr = x[..., :self.n_rot]
        x0, x1 = xr[..., 0::2], xr[..., 1::2]
        out = torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2)
        return torch.cat([out, x[..., self.n_rot:]], dim=-1)

    def new_cache(self):
        return {"n": 0, "k": [None] * self.n_layer, "v": [None] * self.n_layer}

    def forward(self, x, cache, last_only=False):
        """x [T, E] input embeddings at positions cache['n']..; returns final hidden [T, E]
        (before output_norm) and extends the cache. last_only: in the last layer compute the
        attention queries, output projection and FFN only for the last row (as llama.cpp and
        libllava do when only the last logits are wanted); returns [1, E]. Identical in exact
        arithmetic, it changes which products see one row (see act_quant_rows)."""
        x = x.to(self.dtype)
        T = T_in = x.shape[0]
        n0 = cache["n"]
        pos = torch.arange(n0, n0 + T)
        hd, H, Hk = self.head_dim, self.n_head, self.n_head_kv
        group = H // Hk
        for li, L in enumerate(self.layers):
            h = self._rmsnorm(x, L["attn_norm"])
            k = self._lin(h, L, "attn_k").view(T, Hk, hd)
            v = self._lin(h, L, "attn_v").view(T, Hk, hd)
            k = self._rope(k, pos)
            if last_only and li == self.n_layer - 1 and T > 1:
                h, x, pos_q, Tq = h[-1:], x[-1:], pos[-1:], 1
            else:
                pos_q, Tq = pos, T
            q = self._rope(self._lin(h, L, "attn_q").view(Tq, H, hd), pos_q)
            if cache["k"][li] is not None:
                k = torch.cat([cache["k"][li], k], 0)
                v = torch.cat([cache["v"][li], v], 0)
            cache["k"][li], cache["v"][li] = k, v
            T, pos = Tq, pos_q
            S = k.shape[0]
            kk = k.repeat_interleave(group, dim=1)                          # [S, H, hd]
            vv = v.repeat_interleave(group, dim=1)
            att = torch.einsum("thd,shd->hts", q, kk) / math.sqrt(hd)        # [H, T, S]
            mask = torch.arange(S)[None, :] > pos[:, None]                   # key pos > query pos
            att = att.masked_fill(mask[None], float("-inf")).softmax(-1)
            a = torch.einsum("hts,shd->thd", att, vv).reshape(T, H * hd)
            x = x + self._lin(a, L, "attn_output")
            h = self._rmsnorm(x, L["ffn_norm"])
            x = x + self._lin(F.silu(self._lin(h, L, "ffn_gate")) * self._lin(h, L, "ffn_up"), L, "ffn_down")
        cache["n"] = n0 + T_in
        return x

    def logits(self, hidden):
        """hidden [T, E] -> logits [T, V]"""
        h = self._rmsnorm(hidden, self.output_norm)
        return F.linear(self._act_quant(h, self.output_type), self.output)

    def _lin(self, h, L, name):
        return F.linear(self._act_quant(h, L[name + ".type"]), L[name], L.get(name + ".bias"))

    def _act_quant(self, h, wtype):
        if not self.act_quant_rows or h.shape[0] > self.act_quant_rows:
            return h
        partner = ACT_PARTNER.get(wtype)
        if partner is None:
            return h
        return quant_dequant_q8(h, partner).to(h.dtype)

    def greedy(self, prompt_embd, n, stop_eos=False, last_only=False):
        """prompt_embd [T, E]; returns (ids, logits list of each generated step)."""
        cache = self.new_cache()
        hidden = self.forward(prompt_embd, cache, last_only=last_only)
        lg = self.logits(hidden[-1:])[0]
        ids, all_logits = [], []
        for step in range(n):
            all_logits.append(lg)
            t = int(torch.argmax(lg))
            ids.append(t)
            if (stop_eos and t == self.eos) or step == n - 1:
                break
            lg = self.logits(self.forward(self.embed([t]), cache))[0]
        return ids, all_logits


# Activation partner formats of the quantized weight types (spec 2.1). Q4_1/Q5_1 pair with Q8_1,
# whose values are those of Q8_0 (only its extra sum field differs).
ACT_PARTNER = {gguf.Q4_0: gguf.Q8_0, gguf.Q4_1: gguf.Q8_0, gguf.Q5_0: gguf.Q8_0, gguf.Q5_1: gguf.Q8_0,
               gguf.Q8_0: gguf.Q8_0, gguf.Q2_K: gguf.Q8_K, gguf.Q3_K: gguf.Q8_K, gguf.Q4_K: gguf.Q8_K,
               gguf.Q5_K: gguf.Q8_K, gguf.Q6_K: gguf.Q8_K}


def quant_dequant_q8(x, t):
    """Round rows of x through Q8_0 (blocks of 32: d = amax/127, q = roundf(x/d) with ties away
    from zero, value q*fp16(d)) or Q8_K (blocks of 256: max = the element of largest |x|,
    iscale = -127/max, q = min(127, round-half-even(iscale*x)), value q/iscale), in float32
    arithmetic as the C reference quantizers (spec 2.1). Returns float64."""
    T, n = x.shape
    blk = 32 if t == gguf.Q8_0 else 256
    xb = x.to(torch.float32).reshape(T, n // blk, blk)
    if t == gguf.Q8_0:
        amax = xb.abs().amax(-1, keepdim=True)
        d = amax / 127.0
        inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
        v = (xb * inv).to(torch.float64)
        q = (torch.sign(v) * torch.floor(v.abs() + 0.5)).clamp(-127, 127)
        out = q * d.to(torch.float16).to(torch.float64)
    else:
        idx = xb.abs().argmax(-1, keepdim=True)          # first of equal maxima
        mx = torch.gather(xb, -1, idx)
        safe = torch.where(mx != 0, mx, torch.ones_like(mx))
        iscale = torch.tensor(-127.0, dtype=torch.float32) / safe
        q = torch.round((iscale * xb).to(torch.float64)).clamp(max=127)
        d = (1.0 / iscale).to(torch.float64)
        out = torch.where(mx != 0, q * d, torch.zeros_like(q))
    return out.reshape(T, n)


# =====================================================================
# CLIP vision tower + projector (spec 3, 4) and preprocessing (spec 5)
# =====================================================================

class ClipRef:
    def __init__(self, path, dtype=torch.float64, gelu_kind="erf"):
        r = gguf.GGUFFile(path)
        self.dtype = dtype
        m = r.meta
        if not m.get("clip.has_vision_encoder", True):
            raise ValueError("mmproj has no vision encoder")
        self.image_size = int(m["clip.vision.image_size"])
        self.patch = int(m["clip.vision.patch_size"])
        self.n_embd = int(m["clip.vision.embedding_length"])
        self.n_head = int(m["clip.vision.attention.head_count"])
        self.head_dim = int(m.get("clip.vision.attention.head_dim", self.n_embd // self.n_head))
        self.eps = float(m.get("clip.vision.attention.layer_norm_epsilon", 1e-5))
        self.n_block = int(m["clip.vision.block_count"])
        self.mean = np.asarray(m["clip.vision.image_mean"], np.float32)[:3]
        self.std = np.asarray(m["clip.vision.image_std"], np.float32)[:3]
        self.use_gelu = bool(m.get("clip.use_gelu", False))
        self.gelu_kind = gelu_kind
        self.projector = m.get("clip.projector_type", m.get("clip.vision.projector_type", "mlp"))
        if self.projector not in ("mlp", "linear"):
            raise ValueError("projector %r not supported by the reference" % self.projector)
        fl = m.get("clip.vision.feature_layer")
        if fl is not None and len(fl) > 0:
            self.feature_layers = [int(v) if v >= 0 else self.n_block + int(v) + 1 for v in fl]
        else:
            self.feature_layers = [self.n_block]         # all stored blocks (Decision 2)
        self.depth = max(self.feature_layers)
        if self.depth > self.n_block:
            raise ValueError("feature_layer beyond block_count")

        self.patch_w = _t(r, "v.patch_embd.weight", dtype)                 # [D, 3, P, P]
        self.patch_b = _opt(r, "v.patch_embd.bias", dtype)
        self.cls = _t(r, "v.class_embd", dtype)                             # [D]
        self.pos = _t(r, "v.position_embd.weight", dtype)                   # [N+1, D]
        self.pre_ln = (_opt(r, "v.pre_ln.weight", dtype), _opt(r, "v.pre_ln.bias", dtype))
        self.post_ln = (_opt(r, "v.post_ln.weight", dtype), _opt(r, "v.post_ln.bias", dtype))
        self.blocks = []
        for i in range(self.n_block):
            p = "v.blk.%d." % i
            B = {}
            for n in ("attn_q", "attn_k", "attn_v", "attn_out", "ln1", "ln2"):
                B[n] = (_t(r, p + n + ".weight", dtype), _opt(r, p + n + ".bias", dtype))
            down, up = (_t(r, p + "ffn_down.weight", dtype), _opt(r, p + "ffn_down.bias", dtype)), \
                       (_t(r, p + "ffn_up.weight", dtype), _opt(r, p + "ffn_up.bias", dtype))
            # Legacy converter names fc1 "ffn_down" (spec 3.2): the matrix whose ne[0] == n_embd
            # (numpy shape[1] == D) is the up-projection fc1.
            if r.tensors[p + "ffn_down.weight"].ne[0] == self.n_embd:
                B["fc1"], B["fc2"] = down, up
                self.legacy_swap = True
            else:
                B["fc1"], B["fc2"] = up, down
                self.legacy_swap = False
            self.blocks.append(B)
        self.mm0 = (_t(r, "mm.0.weight", dtype), _opt(r, "mm.0.bias", dtype))
        self.mm2 = None
        if self.projector == "mlp" and "mm.2.weight" in r.tensors:
            self.mm2 = (_t(r, "mm.2.weight", dtype), _opt(r, "mm.2.bias", dtype))
        self.n_embd_out = (self.mm2 or self.mm0)[0].shape[0]
        g = self.image_size // self.patch
        self.n_patches = g * g
        if self.pos.shape[0] != self.n_patches + 1:
            raise ValueError("position table has %d rows, expected %d" % (self.pos.shape[0], self.n_patches + 1))
        r.close()

    # ---- preprocessing (LLaVA-1.5 reference) ----
    def preprocess_u8(self, image_path):
        """-> uint8 array [S, S, 3] exactly as Pillow produces it."""
        from PIL import Image
        img = Image.open(image_path).convert("RGB")
        w, h = img.size
        bg = tuple(int(float(c) * 255) for c in self.mean)
        if w != h:
            side = max(w, h)
            sq = Image.new("RGB", (side, side), bg)
            sq.paste(img, ((side - w) // 2, (side - h) // 2))
            img = sq
        S = self.image_size
        img = img.resize((S, S), Image.BICUBIC)
        return np.asarray(img, dtype=np.uint8)

    def normalize(self, u8):
        """uint8 [S,S,3] -> float32 planar [3,S,S]: (u8/255 - mean)/std in float32."""
        x = (u8.astype(np.float64) / 255.0).astype(np.float32)
        x = (x - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1).astype(np.float32))

    def preprocess(self, image_path):
        return self.normalize(self.preprocess_u8(image_path))

    # ---- tower ----
    def _act(self, x):
        if self.use_gelu:
            return F.gelu(x, approximate="tanh" if self.gelu_kind == "tanh" else "none")
        return x * torch.sigmoid(1.702 * x)                                  # quick GELU

    @staticmethod
    def _ln(x, wb, eps):
        w, b = wb
        return F.layer_norm(x, (x.shape[-1],), w, b, eps)

    def vision_hidden(self, pixels):
        """pixels float [3,S,S] -> features [N, D_feat] (CLS dropped)."""
        x = torch.as_tensor(pixels).to(self.dtype)[None]
        e = F.conv2d(x, self.patch_w, self.patch_b, stride=self.patch)       # [1, D, G, G]
        e = e.flatten(2)[0].t()                                              # [N, D], p = py*G + px
        x = torch.cat([self.cls[None], e], 0) + self.pos                     # CLS first, rows 0..N
        if self.pre_ln[0] is not None:
            x = self._ln(x, self.pre_ln, self.eps)
        hs = [x]
        T, H, hd = x.shape[0], self.n_head, self.head_dim
        for B in self.blocks[:self.depth]:
            h = self._ln(x, B["ln1"], self.eps)
            q = F.linear(h, *B["attn_q"]).view(T, H, hd)
            k = F.linear(h, *B["attn_k"]).view(T, H, hd)
            v = F.linear(h, *B["attn_v"]).view(T, H, hd)
            att = (torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd)).softmax(-1)
            a = torch.einsum("hts,shd->thd", att, v).reshape(T, H * hd)
            x = x + F.linear(a, *B["attn_out"])
            h = self._ln(x, B["ln2"], self.eps)
            x = x + F.linear(self._act(F.linear(h, *B["fc1"])), *B["fc2"])
            hs.append(x)
        feats = [hs[i] for i in self.feature_layers]
        x = torch.cat(feats, -1) if len(feats) > 1 else feats[0]
        if self.post_ln[0] is not None:
            x = self._ln(x, self.post_ln, self.eps)
        return x[1:]                                                         # drop CLS

    def project(self, f):
        y = F.linear(f, *self.mm0)
        if self.mm2 is not None:
            y = F.linear(F.gelu(y), *self.mm2)                               # exact erf GELU
        return y

    def encode_pixels(self, pixels):
        return self.project(self.vision_hidden(pixels))

    def encode(self, image_path):
        return self.encode_pixels(self.preprocess(image_path))


# =====================================================================
# CLI
# =====================================================================

def parse_ids(s):
    return [int(v) for v in s.replace(" ", "").split(",") if v != ""] if s else []


def write_f32(path, t):
    np.ascontiguousarray(np.asarray(t.detach().cpu().to(torch.float32).numpy(), dtype="<f4")).tofile(path)


def build_prompt(lm, a, dtype):
    parts = [lm.embed(parse_ids(a.tokens))]
    img = None
    if a.embd:
        img = torch.from_numpy(np.fromfile(a.embd, dtype="<f4").reshape(-1, lm.n_embd).astype(np.float64))
    elif a.image:
        if not a.mmproj:
            sys.exit("--image needs --mmproj")
        img = ClipRef(a.mmproj, dtype, a.vision_gelu).encode(a.image)
    if img is not None:
        if img.shape[1] != lm.n_embd:
            sys.exit("image embeddings have width %d, LM n_embd is %d" % (img.shape[1], lm.n_embd))
        parts.append(img.to(lm.dtype))
    parts.append(lm.embed(parse_ids(a.suffix)))
    return torch.cat(parts, 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description="independent LLaVA reference (see the module docstring)")
    ap.add_argument("cmd", choices=["lm-logits", "greedy", "encode", "preprocess", "vision-hidden"])
    ap.add_argument("model")
    ap.add_argument("image_arg", nargs="?")
    ap.add_argument("--tokens", default="")
    ap.add_argument("--suffix", default="")
    ap.add_argument("--mmproj")
    ap.add_argument("--image")
    ap.add_argument("--embd")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--stop-eos", action="store_true")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--out-u8")
    ap.add_argument("--out-logits")
    ap.add_argument("--dtype", choices=list(DTYPES), default="f64")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--vision-gelu", choices=["erf", "tanh"], default="erf")
    ap.add_argument("--act-quant", type=int, default=0)
    ap.add_argument("--last-only", action="store_true")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = DTYPES[a.dtype]
    with torch.no_grad():
        if a.cmd in ("encode", "preprocess", "vision-hidden"):
            if not a.image_arg:
                sys.exit("%s needs MMPROJ IMAGE" % a.cmd)
            clip = ClipRef(a.model, dtype, a.vision_gelu)
            if a.cmd == "preprocess":
                u8 = clip.preprocess_u8(a.image_arg)
                if a.out_u8:
                    u8.tofile(a.out_u8)
                out = torch.from_numpy(clip.normalize(u8))
            elif a.cmd == "vision-hidden":
                out = clip.vision_hidden(clip.preprocess(a.image_arg))
            else:
                out = clip.encode(a.image_arg)
            if a.out:
                write_f32(a.out, out)
            print("shape %s" % (list(out.shape),))
            return 0
        lm = LlamaRef(a.model, dtype)
        lm.act_quant_rows = a.act_quant
        x = build_prompt(lm, a, dtype)
        if a.cmd == "lm-logits":
            h = lm.forward(x, lm.new_cache(), last_only=a.last_only and not a.all)
            lg = lm.logits(h if a.all else h[-1:])
            if a.out:
                write_f32(a.out, lg if a.all else lg[0])
            print("argmax %d" % int(torch.argmax(lg[-1])))
            return 0
        ids, lgs = lm.greedy(x, a.n, a.stop_eos, last_only=a.last_only)
        if a.out_logits:
            write_f32(a.out_logits, torch.stack(lgs))
        print(",".join(str(i) for i in ids))
        return 0


if __name__ == "__main__":
    sys.exit(main())
