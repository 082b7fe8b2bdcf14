#!/usr/bin/python3
"""anyres_ref.py - independent PyTorch reference of LLaVA-1.6 (NeXT) any-resolution encoding and of
the other LLaVA-family projectors (Yi-VL's LayerNorm MLP, MobileVLM ldp / ldpv2), for the libllava
tests. Written from shared/spec/llava-format.md (Decision 5, sections 3.3 and 5.3) and the public
MobileVLM module structure; it shares no code with the C library and reuses only the CLIP tower of
llava_ref.py (ClipRef.vision_hidden / normalize).

Any resolution (spec 5.3), with Pillow and torch doing the work:
  select_best_resolution -> resize_and_pad (Pillow BICUBIC, black canvas) -> S x S crops in raster
  order; base image = plain resize to S x S; each through tower + projector; merge as LLaVA-NeXT's
  prepare_inputs_labels_for_multimodal: spatial_unpad (view (gh,gw,G,G,C) -> (C, gh*G, gw*G),
  unpad_image with the original size, image_newline column, flatten), spatial (raster order only),
  flat (everything concatenated, base first).

CLI:
  anyres_ref.py encode MMPROJ.gguf IMAGE --out embd.f32 [--projector PROJ.gguf] [--dtype f64|f32]
  anyres_ref.py tokens MMPROJ.gguf WIDTH HEIGHT          token count (prints an integer)
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
import llava_ref  # noqa: E402


# =====================================================================
# Layout (pure Python, as the reference llava/mm_utils.py and llava_arch.py)
# =====================================================================

def pinpoints_of(meta):
    flat = meta.get("clip.vision.image_grid_pinpoints")
    if flat is None or len(flat) == 0:
        return []
    flat = [int(v) for v in flat]
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def select_best_resolution(original_size, possible_resolutions):
    ow, oh = original_size
    best, max_eff, min_waste = None, 0, float("inf")
    for w, h in possible_resolutions:
        scale = min(w / ow, h / oh)
        dw, dh = int(ow * scale), int(oh * scale)
        eff = min(dw * dh, ow * oh)
        waste = w * h - eff
        if eff > max_eff or (eff == max_eff and waste < min_waste):
            best, max_eff, min_waste = (w, h), eff, waste
    return best


def resize_and_pad(image, target):
    from PIL import Image
    ow, oh = image.size
    tw, th = target
    sw, sh = tw / ow, th / oh
    if sw < sh:
        nw, nh = tw, min(math.ceil(oh * sw), th)
    else:
        nh, nw = th, min(math.ceil(ow * sh), tw)
    resized = image.resize((nw, nh), Image.BICUBIC)
    canvas = Image.new("RGB", (tw, th), (0, 0, 0))
    canvas.paste(resized, ((tw - nw) // 2, (th - nh) // 2))
    return canvas


def divide_to_patches(image, size):
    w, h = image.size
    return [image.crop((x, y, x + size, y + size)) for y in range(0, h, size) for x in range(0, w, size)]


def unpad_image(t, original_size):
    """t: (C, cur_h, cur_w); original_size = (W, H) of the input image."""
    ow, oh = original_size
    cur_h, cur_w = t.shape[1:]
    if ow / oh > cur_w / cur_h:
        scale = cur_w / ow
        new_h = int(oh * scale)
        pad = (cur_h - new_h) // 2
        return t[:, pad:cur_h - pad, :]
    scale = cur_h / oh
    new_w = int(ow * scale)
    pad = (cur_w - new_w) // 2
    return t[:, :, pad:cur_w - pad]


def merge_type_of(meta, has_newline):
    m = meta.get("clip.vision.mm_patch_merge_type")
    if m is None:   # libllava's documented default for files without the key
        return "spatial_unpad" if has_newline else "flat"
    return m


def merge(feats, grid, G, merge_type, original_size, newline):
    """feats: [1 + gh*gw, G*G, C] (base first, tiles in raster order) -> [n_tokens, C]."""
    gw, gh = grid
    base, tiles = feats[0], feats[1:]
    if merge_type == "flat":
        return feats.flatten(0, 1)
    C = feats.shape[-1]
    t = tiles.reshape(gh, gw, G, G, C)
    if "unpad" in merge_type:
        t = t.permute(4, 0, 2, 1, 3).contiguous().flatten(1, 2).flatten(2, 3)   # (C, gh*G, gw*G)
        t = unpad_image(t, original_size)
        t = torch.cat((t, newline[:, None, None].expand(*t.shape[:-1], 1).to(t.dtype)), dim=-1)
        t = t.flatten(1, 2).transpose(0, 1)
    else:
        t = t.permute(0, 2, 1, 3, 4).contiguous().flatten(0, 3)
    return torch.cat((base, t), 0)


def n_tokens(meta, has_newline, width, height, grid_side):
    """Token count without encoding (runs the merge on index tensors)."""
    pins = pinpoints_of(meta)
    G = grid_side
    if not pins:
        return G * G
    S = int(meta["clip.vision.image_size"])
    bw, bh = select_best_resolution((width, height), pins)
    gw, gh = bw // S, bh // S
    feats = torch.zeros(1 + gw * gh, G * G, 1)
    return merge(feats, (gw, gh), G, merge_type_of(meta, has_newline), (width, height), torch.zeros(1)).shape[0]


# =====================================================================
# Projectors
# =====================================================================

class Projector:
    """Projector of an mmproj file: mlp / linear (as llava_ref), Yi-VL MLP_NORM, ldp, ldpv2."""

    def __init__(self, path, dtype=torch.float64):
        r = gguf.GGUFFile(path)
        m = r.meta
        self.dtype = dtype
        self.kind = m.get("clip.projector_type", m.get("clip.vision.projector_type", "mlp"))
        self.eps = float(m.get("clip.vision.attention.layer_norm_epsilon", 1e-5))
        T = lambda n: llava_ref._t(r, n, dtype)          # noqa: E731
        O = lambda n: llava_ref._opt(r, n, dtype)        # noqa: E731
        if self.kind == "mlp" and "mm.3.weight" in r.tensors:
            self.kind = "mlp_norm"
        if self.kind == "mlp_norm":
            self.l0, self.n1, self.l3, self.n4 = ((T("mm.0.weight"), O("mm.0.bias")), (T("mm.1.weight"), O("mm.1.bias")),
                                                  (T("mm.3.weight"), O("mm.3.bias")), (T("mm.4.weight"), O("mm.4.bias")))
        elif self.kind in ("mlp", "linear"):
            self.layers = []
            i = 0
            while "mm.%d.weight" % i in r.tensors and (self.kind == "mlp" or i == 0):
                self.layers.append((T("mm.%d.weight" % i), O("mm.%d.bias" % i)))
                i += 2
        elif self.kind in ("ldp", "ldpv2"):
            a, b = (1, 3) if self.kind == "ldp" else (0, 2)
            self.mlp = [(T("mm.model.mlp.%d.weight" % a), T("mm.model.mlp.%d.bias" % a)),
                        (T("mm.model.mlp.%d.weight" % b), T("mm.model.mlp.%d.bias" % b))]
            C = self.mlp[1][0].shape[0]
            if self.kind == "ldp":
                self.blocks = []
                for k in (1, 2):
                    p = "mm.model.mb_block.%d.block." % k
                    self.blocks.append(dict(
                        dw=T(p + "0.0.weight").reshape(C, 1, 3, 3),
                        ln0=(T(p + "0.1.weight"), T(p + "0.1.bias")),
                        fc1=(T(p + "1.fc1.weight").reshape(-1, C), T(p + "1.fc1.bias")),
                        fc2=(T(p + "1.fc2.weight").reshape(C, -1), T(p + "1.fc2.bias")),
                        pw=T(p + "2.0.weight").reshape(C, C, 1, 1),
                        ln1=(T(p + "2.1.weight"), T(p + "2.1.bias")),
                        stride=1 if k == 1 else 2))
            else:
                self.peg = (T("mm.model.peg.0.weight").reshape(C, 1, 3, 3), T("mm.model.peg.0.bias"))
        else:
            raise ValueError("projector %r not in the reference" % self.kind)
        r.close()

    def _ln2d(self, x, wb):
        """LayerNorm over channels of an NCHW map (timm LayerNorm2d semantics)."""
        return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), wb[0], wb[1], self.eps).permute(0, 3, 1, 2)

    def _ldp_block(self, x, B):
        C = x.shape[1]
        h = F.conv2d(x, B["dw"], None, B["stride"], 1, groups=C)
        h = F.hardswish(self._ln2d(h, B["ln0"]))
        s = h.mean((2, 3))
        s = F.hardsigmoid(F.linear(F.relu(F.linear(s, *B["fc1"])), *B["fc2"]))
        h = h * s[:, :, None, None]
        h = self._ln2d(F.conv2d(h, B["pw"]), B["ln1"])
        return h + x if B["stride"] == 1 else h

    def __call__(self, f):
        """f: [N, D] vision features of ONE image -> [N_out, n_embd]."""
        f = f.to(self.dtype)
        if self.kind == "mlp_norm":
            y = F.layer_norm(F.linear(f, *self.l0), (self.l0[0].shape[0],), *self.n1, self.eps)
            y = F.linear(F.gelu(y), *self.l3)
            return F.layer_norm(y, (self.l3[0].shape[0],), *self.n4, self.eps)
        if self.kind in ("mlp", "linear"):
            y = f
            for i, l in enumerate(self.layers):
                y = F.linear(y if i == 0 else F.gelu(y), *l)
            return y
        y = F.linear(F.gelu(F.linear(f, *self.mlp[0])), *self.mlp[1])
        N, C = y.shape
        side = int(round(math.sqrt(N)))
        x = y.t().reshape(1, C, side, side)
        if self.kind == "ldp":
            for B in self.blocks:
                x = self._ldp_block(x, B)
        else:
            x = F.adaptive_avg_pool2d(x, (side // 2, side // 2))   # the reference's (12,12) on 24x24
            x = F.conv2d(x, self.peg[0], self.peg[1], 1, 1, groups=C) + x
        return x.flatten(2)[0].t()


# =====================================================================
# Encoder
# =====================================================================

class AnyresRef:
    def __init__(self, mmproj, projector=None, dtype=torch.float64):
        self.tower = llava_ref.ClipRef(mmproj, dtype, "erf")
        self.proj = Projector(projector or mmproj, dtype)
        r = gguf.GGUFFile(mmproj)
        self.meta = dict(r.meta)
        self.newline = None
        for n in ("model.image_newline", "v.image_newline"):
            if n in r.tensors and self.newline is None:
                self.newline = llava_ref._t(r, n, dtype)
        r.close()
        self.pins = pinpoints_of(self.meta)
        self.S = self.tower.image_size
        self.G = self.S // self.tower.patch

    def _encode_u8(self, u8):
        return self.proj(self.tower.vision_hidden(self.tower.normalize(np.asarray(u8, np.uint8))))

    def n_tokens(self, width, height):
        if not self.pins:
            return self._encode_u8(np.zeros((self.S, self.S, 3), np.uint8)).shape[0]
        return n_tokens(self.meta, self.newline is not None, width, height, self.G)

    def encode_pil(self, image):
        from PIL import Image
        image = image.convert("RGB")
        if not self.pins:
            raise ValueError("not an any-resolution mmproj: use encode(path)")
        W, H = image.size
        best = select_best_resolution((W, H), self.pins)
        tiles = divide_to_patches(resize_and_pad(image, best), self.S)
        base = image.resize((self.S, self.S), Image.BICUBIC)
        feats = torch.stack([self._encode_u8(np.asarray(im)) for im in [base] + tiles])
        return merge(feats, (best[0] // self.S, best[1] // self.S), self.G,
                     merge_type_of(self.meta, self.newline is not None), (W, H), self.newline)

    def encode(self, image_path):
        from PIL import Image
        if not self.pins:
            return self.proj(self.tower.vision_hidden(self.tower.preprocess(image_path)))
        return self.encode_pil(Image.open(image_path))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode")
    e.add_argument("mmproj")
    e.add_argument("image")
    e.add_argument("--out", required=True)
    e.add_argument("--projector")
    e.add_argument("--dtype", default="f64", choices=["f64", "f32"])
    t = sub.add_parser("tokens")
    t.add_argument("mmproj")
    t.add_argument("width", type=int)
    t.add_argument("height", type=int)
    a = ap.parse_args(argv)
    if a.cmd == "encode":
        ref = AnyresRef(a.mmproj, a.projector, llava_ref.DTYPES[a.dtype])
        y = ref.encode(a.image)
        y.to(torch.float32).numpy().astype("<f4").tofile(a.out)
        print("%d tokens x %d" % tuple(y.shape))
    else:
        print(AnyresRef(a.mmproj).n_tokens(a.width, a.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
