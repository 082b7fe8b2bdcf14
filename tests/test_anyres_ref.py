#!/usr/bin/python3
"""LLaVA-1.6 any-resolution encoding and the other LLaVA-family projectors of the C library (public
API through ctypes) against the independent PyTorch reference tests/reference/anyres_ref.py
(float64; Pillow does the resizing, torch the merge exactly as LLaVA-NeXT's code).

Models come from llava-mkmodel, edited with the reference's GGUF writer (gguf_write.py):
  - a small tower (56 px, patch 14: G=4 tokens a side, D=32, 2 blocks) with pinpoints scaled from
    LLaVA-1.6's set (56x112, 112x56, 112x112, 168x56, 56x168), merge spatial_unpad with
    model.image_newline; the same without the merge key and with v.image_newline (default
    spatial_unpad); "flat"; "spatial";
  - the tiny preset (336 px, G=24) with LLaVA-1.6's real pinpoints (336x672, ... 336x1008);
  - Yi-VL's mm.0 -> LN(mm.1) -> GELU -> mm.3 -> LN(mm.4) projector (plain and with anyres);
  - MobileVLM ldp and ldpv2 projectors (G=4 and G=24);
  - an unknown projector type (must fail naming it).
Images: synthetic PNGs of many sizes and aspect ratios (the test checks that every pinpoint gets
chosen at least once) and the golden test-1.jpeg.
Pass: same token count as the reference (also llava_vision_n_tokens_for for more sizes, including
extreme aspect ratios), and max|C - ref| <= 1e-5 * max|ref| per image.
Exit 0 pass, 1 fail, 77 skip (torch/numpy/PIL missing, or llava-mkmodel / libllava not built)."""
import ctypes as C
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from PIL import Image
except ImportError:
    print("SKIP: numpy, torch or PIL missing")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LLAVA_SRCDIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "reference"))
import anyres_ref  # noqa: E402
import gguf  # noqa: E402
import gguf_write  # noqa: E402
import llava_c  # noqa: E402

BUILD = os.environ.get("LLAVA_BUILDDIR", "")
TOOL = os.path.join(BUILD, "llava-mkmodel")
DATA = os.environ.get("LLAVA_TEST_DATA") or os.path.join(SRC, "..", "shared", "data")
TOL = 1e-5

SMALL = ["--vision-size", "56", "--patch", "14", "--v-embd", "32", "--v-head", "2", "--v-ff", "64",
         "--v-layer", "2", "--n-embd", "48"]
PINS_SMALL = [56, 112, 112, 56, 112, 112, 168, 56, 56, 168]
PINS_LLAVA = [336, 672, 672, 336, 672, 672, 1008, 336, 336, 1008]
SIZES = [(40, 30), (120, 50), (50, 120), (130, 125), (200, 60), (60, 200), (100, 100), (77, 131),
         (300, 37), (57, 56), (1, 1), (13, 400), (111, 57)]
COUNT_ONLY_SIZES = [(1000, 1), (1, 1000), (3000, 2000), (641, 480), (17, 19), (112, 112), (169, 55)]

failures = []


def check(cond, msg):
    if not cond:
        print("FAIL " + msg)
        failures.append(msg)
    return cond


def mkmodel(path, args):
    p = subprocess.run([TOOL, "--out-mmproj", path] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError("llava-mkmodel %s: %s" % (" ".join(args), p.stderr))


def edit(src, dst, add_keys=(), add_tensors=(), drop_tensors=(), drop_keys=()):
    """Copy src to dst with extra/replaced keys (key, type, value, elem_type), extra float32 tensors
    (name, ne, values) and without the named tensors/keys."""
    r = gguf.GGUFFile(src)
    w = gguf_write.GGUFWriter(r.alignment)
    w.copy_keys(r, keep=lambda k: k not in drop_keys)
    for k, vt, val, et in add_keys:
        w.add(k, vt, val, et)
    for name in r.tensor_order:
        if name in drop_tensors:
            continue
        ti = r.tensors[name]
        w.add_tensor(name, ti.ne, ti.type, bytes(r.raw(name)))
    for name, ne, vals in add_tensors:
        w.add_tensor(name, ne, gguf.F32, np.asarray(vals, "<f4").reshape(-1).tobytes())
    r.close()
    w.write(dst)


def meta_of(path):
    r = gguf.GGUFFile(path)
    m = dict(r.meta)
    r.close()
    return m


def pin_keys(pins, merge=None):
    k = [("clip.vision.image_grid_pinpoints", gguf.ARRAY, pins, gguf.INT32)]
    if merge is not None:
        k.append(("clip.vision.mm_patch_merge_type", gguf.STRING, merge, None))
    return k


def synth_image(path, w, h, seed):
    """Smooth gradients plus noise, so tiles and borders differ."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255.0 / max(w - 1, 1)), (y * 255.0 / max(h - 1, 1)), ((x + y) * 97 % 256)], -1)
    img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img, "RGB").save(path)


class Runner:
    def __init__(self, lib):
        self.lib = lib
        f = lib.L.llava_vision_n_tokens_for
        f.restype, f.argtypes = C.c_int32, [C.c_void_p, C.c_void_p, C.c_int32, C.c_int32]
        self.n_tokens_for = f

    def compare(self, label, mmproj, images, projector=None, ref_vision=None, count_sizes=()):
        """Encode every image with C (vision + projector from the files) and the reference."""
        lib = self.lib
        ref = anyres_ref.AnyresRef(ref_vision or mmproj, projector or mmproj)
        params = lib.params(n_threads=2)
        vis = lib.load_vision(mmproj, params)
        proj = lib.load_projector(projector or mmproj, params)
        chosen = set()
        try:
            for (w, h) in count_sizes:
                got, want = self.n_tokens_for(vis, proj, w, h), ref.n_tokens(w, h)
                check(got == want, "%s: n_tokens_for(%dx%d) = %d, reference %d" % (label, w, h, got, want))
            for img_path in images:
                im = Image.open(img_path)
                W, H = im.size
                if ref.pins:
                    chosen.add(anyres_ref.select_best_resolution((W, H), ref.pins))
                want = ref.encode(img_path).numpy()
                img = lib.load_image(img_path)
                e, got = lib.encode_image(vis, proj, img, params)
                lib.L.llava_free_embed(e)
                lib.L.llava_free_image(img)
                n_for = self.n_tokens_for(vis, proj, W, H)
                name = "%s / %s %dx%d" % (label, os.path.basename(img_path), W, H)
                check(n_for == want.shape[0], "%s: n_tokens_for %d, reference %d tokens" % (name, n_for,
                                                                                           want.shape[0]))
                if not check(got.shape == want.shape, "%s: shape %s, reference %s" % (name, got.shape, want.shape)):
                    continue
                err, scale = float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))
                print("%-58s %-11s ratio %.3g" % (name, "%dx%d" % got.shape, err / scale))
                check(err <= TOL * scale, "%s: ratio %.3g > %g" % (name, err / scale, TOL))
        finally:
            lib.L.llava_free_projector(proj)
            lib.L.llava_free_vision(vis)
            lib.L.llava_free_params(params)
        return chosen


def ldp_tensors(rng, C_, S_, four_d_pw=False):
    """MobileVLM ldp projector tensors for LM width C_ (input width from the tower: D)."""
    t = []
    for k in (1, 2):
        p = "mm.model.mb_block.%d.block." % k
        t += [(p + "0.0.weight", (3, 3, 1, C_), 0.3 * rng.standard_normal(9 * C_)),
              (p + "0.1.weight", (C_,), 1 + 0.2 * rng.standard_normal(C_)),
              (p + "0.1.bias", (C_,), 0.2 * rng.standard_normal(C_)),
              (p + "1.fc1.weight", (1, 1, C_, S_) if four_d_pw else (C_, S_), rng.standard_normal(C_ * S_) / np.sqrt(C_)),
              (p + "1.fc1.bias", (S_,), 0.1 * rng.standard_normal(S_)),
              (p + "1.fc2.weight", (1, 1, S_, C_) if four_d_pw else (S_, C_), rng.standard_normal(C_ * S_) / np.sqrt(S_)),
              (p + "1.fc2.bias", (C_,), 0.5 * rng.standard_normal(C_)),
              (p + "2.0.weight", (1, 1, C_, C_) if four_d_pw else (C_, C_), rng.standard_normal(C_ * C_) / np.sqrt(C_)),
              (p + "2.1.weight", (C_,), 1 + 0.2 * rng.standard_normal(C_)),
              (p + "2.1.bias", (C_,), 0.2 * rng.standard_normal(C_))]
    return t


def mlp2(rng, names, D, C_):
    (w0, b0), (w1, b1) = names
    return [(w0, (D, C_), rng.standard_normal(D * C_) / np.sqrt(D)), (b0, (C_,), 0.1 * rng.standard_normal(C_)),
            (w1, (C_, C_), rng.standard_normal(C_ * C_) / np.sqrt(C_)), (b1, (C_,), 0.1 * rng.standard_normal(C_))]


def main():
    libpath = llava_c.find_library(BUILD)
    if not libpath or not os.path.exists(TOOL):
        print("SKIP: libllava or llava-mkmodel not built (LLAVA_BUILDDIR=%r)" % BUILD)
        return 77
    lib = llava_c.Lib(libpath)
    run = Runner(lib)
    torch.set_num_threads(2)
    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory() as tmp:
        P = lambda n: os.path.join(tmp, n)  # noqa: E731
        images = []
        for i, (w, h) in enumerate(SIZES):
            images.append(P("img_%dx%d.png" % (w, h)))
            synth_image(images[-1], w, h, i)
        jpeg = os.path.join(DATA, "images", "test-1.jpeg")
        big = [jpeg]
        for i, (w, h) in enumerate([(700, 500), (300, 900), (900, 300), (400, 800), (700, 350)]):
            big.append(P("big_%dx%d.png" % (w, h)))
            synth_image(big[-1], w, h, 100 + i)

        mkmodel(P("small.gguf"), SMALL)
        mkmodel(P("tiny.gguf"), ["--preset", "tiny", "--seed", "4"])
        D, E = 32, 48
        nl = [("model.image_newline", (E,), rng.standard_normal(E))]
        edit(P("small.gguf"), P("unpad.gguf"), pin_keys(PINS_SMALL, "spatial_unpad"), nl)
        edit(P("small.gguf"), P("default.gguf"), pin_keys(PINS_SMALL),
             [("v.image_newline", (E,), rng.standard_normal(E))])
        edit(P("small.gguf"), P("flat.gguf"), pin_keys(PINS_SMALL, "flat"))
        edit(P("small.gguf"), P("spatial.gguf"), pin_keys(PINS_SMALL, "spatial"))
        r = gguf.GGUFFile(P("tiny.gguf"))
        E_tiny = r.tensors["mm.2.weight"].ne[1]
        D_tiny = r.tensors["mm.0.weight"].ne[0]
        r.close()
        edit(P("tiny.gguf"), P("tiny_unpad.gguf"), pin_keys(PINS_LLAVA, "spatial_unpad"),
             [("model.image_newline", (E_tiny,), rng.standard_normal(E_tiny))])

        # Yi-VL: mm.0, LN mm.1, mm.3, LN mm.4 (replacing mm.0/mm.2)
        H = 40
        yi = [("mm.0.weight", (D, H), rng.standard_normal(D * H) / np.sqrt(D)),
              ("mm.0.bias", (H,), 0.1 * rng.standard_normal(H)),
              ("mm.1.weight", (H,), 1 + 0.2 * rng.standard_normal(H)), ("mm.1.bias", (H,), 0.2 * rng.standard_normal(H)),
              ("mm.3.weight", (H, E), rng.standard_normal(H * E) / np.sqrt(H)),
              ("mm.3.bias", (E,), 0.1 * rng.standard_normal(E)),
              ("mm.4.weight", (E,), 1 + 0.2 * rng.standard_normal(E)), ("mm.4.bias", (E,), 0.2 * rng.standard_normal(E))]
        mm = ("mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias")
        edit(P("small.gguf"), P("yi.gguf"), add_tensors=yi, drop_tensors=mm)
        edit(P("small.gguf"), P("yi_anyres.gguf"), pin_keys(PINS_SMALL, "spatial_unpad"), yi + nl, drop_tensors=mm)

        # MobileVLM
        typ = lambda t: [("clip.projector_type", gguf.STRING, t, None)]  # noqa: E731
        v1 = mlp2(rng, [("mm.model.mlp.1.weight", "mm.model.mlp.1.bias"), ("mm.model.mlp.3.weight", "mm.model.mlp.3.bias")], D, E)
        edit(P("small.gguf"), P("ldp.gguf"), typ("ldp"), v1 + ldp_tensors(rng, E, 16), drop_tensors=mm)
        edit(P("small.gguf"), P("ldp_4d.gguf"), typ("ldp"), v1 + ldp_tensors(rng, E, 8, True), drop_tensors=mm)
        v2 = mlp2(rng, [("mm.model.mlp.0.weight", "mm.model.mlp.0.bias"), ("mm.model.mlp.2.weight", "mm.model.mlp.2.bias")], D, E)
        peg = [("mm.model.peg.0.weight", (3, 3, 1, E), 0.3 * rng.standard_normal(9 * E)),
               ("mm.model.peg.0.bias", (E,), 0.2 * rng.standard_normal(E))]
        edit(P("small.gguf"), P("ldpv2.gguf"), typ("ldpv2"), v2 + peg, drop_tensors=mm)
        mm_t = ("mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias")
        C_ = E_tiny
        v1t = mlp2(rng, [("mm.model.mlp.1.weight", "mm.model.mlp.1.bias"), ("mm.model.mlp.3.weight", "mm.model.mlp.3.bias")], D_tiny, C_)
        edit(P("tiny.gguf"), P("tiny_ldp.gguf"), typ("ldp"), v1t + ldp_tensors(rng, C_, 32), drop_tensors=mm_t)
        v2t = mlp2(rng, [("mm.model.mlp.0.weight", "mm.model.mlp.0.bias"), ("mm.model.mlp.2.weight", "mm.model.mlp.2.bias")], D_tiny, C_)
        pegt = [("mm.model.peg.0.weight", (3, 3, 1, C_), 0.3 * rng.standard_normal(9 * C_)),
                ("mm.model.peg.0.bias", (C_,), 0.2 * rng.standard_normal(C_))]
        edit(P("tiny.gguf"), P("tiny_ldpv2.gguf"), typ("ldpv2"), v2t + pegt, drop_tensors=mm_t)
        edit(P("small.gguf"), P("foo.gguf"), typ("qwen9_merger"))

        counts = SIZES + COUNT_ONLY_SIZES
        try:
            chosen = run.compare("anyres spatial_unpad", P("unpad.gguf"), images, count_sizes=counts)
            check(chosen == set(zip(PINS_SMALL[0::2], PINS_SMALL[1::2])),
                  "not every pinpoint was chosen by the test images: %s" % sorted(chosen))
            run.compare("anyres default merge, v.image_newline", P("default.gguf"), images[:6], count_sizes=counts)
            run.compare("anyres flat", P("flat.gguf"), images[:6], count_sizes=counts)
            run.compare("anyres spatial", P("spatial.gguf"), images[:6], count_sizes=counts)
            chosen = run.compare("anyres 336 LLaVA pinpoints", P("tiny_unpad.gguf"), big, count_sizes=counts)
            check(chosen == set(zip(PINS_LLAVA[0::2], PINS_LLAVA[1::2])),
                  "336 model: not every pinpoint was chosen: %s" % sorted(chosen))
            run.compare("Yi-VL projector", P("yi.gguf"), [images[3], jpeg], ref_vision=P("small.gguf"))
            run.compare("Yi-VL projector + anyres", P("yi_anyres.gguf"), images[:4], ref_vision=P("unpad.gguf"))
            run.compare("ldp (G=4)", P("ldp.gguf"), [images[3], jpeg], ref_vision=P("small.gguf"))
            run.compare("ldp, 1x1 convs stored 4-D", P("ldp_4d.gguf"), [images[3]], ref_vision=P("small.gguf"))
            run.compare("ldpv2 (G=4)", P("ldpv2.gguf"), [images[3], jpeg], ref_vision=P("small.gguf"))
            run.compare("ldp (G=24)", P("tiny_ldp.gguf"), [jpeg], ref_vision=P("tiny.gguf"))
            run.compare("ldpv2 (G=24)", P("tiny_ldpv2.gguf"), [jpeg], ref_vision=P("tiny.gguf"))
        except (llava_c.CError, ValueError, RuntimeError) as ex:
            check(False, "%s" % ex)

        # unknown projector type: a clear error naming it
        try:
            p = lib.load_projector(P("foo.gguf"))
            lib.L.llava_free_projector(p)
            check(False, "projector type qwen9_merger was accepted")
        except llava_c.CError as ex:
            print("unknown projector type -> %s" % ex)
            check("unknown projector type 'qwen9_merger'" in str(ex), "error does not name the type: %s" % ex)

        # anyres with a token-reducing projector: refused at encode, n_tokens_for 0
        try:
            params = lib.params(n_threads=2)
            vis, proj = lib.load_vision(P("unpad.gguf"), params), lib.load_projector(P("ldp.gguf"), params)
            check(run.n_tokens_for(vis, proj, 100, 100) == 0, "anyres + ldp: n_tokens_for not 0")
            img = lib.load_image(images[0])
            try:
                lib.encode_image(vis, proj, img, params)
                check(False, "anyres + ldp encoded")
            except llava_c.CError as ex:
                check("not supported" in str(ex), "anyres + ldp: %s" % ex)
            lib.L.llava_free_image(img)
            lib.L.llava_free_projector(proj)
            lib.L.llava_free_vision(vis)
            lib.L.llava_free_params(params)
        except llava_c.CError as ex:
            check(False, "anyres + ldp setup: %s" % ex)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
