#!/usr/bin/python3
"""Vision tower + projector of the C library (public API through ctypes, tests/reference/llava_c.py)
against the independent PyTorch reference (tests/reference/llava_ref.py, float64) on model
configurations the golden data does not cover: another geometry (224 px, patch 16, 3 heads,
3 blocks, 197 positions), clip.use_gelu (exact erf GELU), the LLaVA-1 linear projector,
clip.vision.feature_layer, a stored post-LN and a patch-embedding bias. Models come from
llava-mkmodel; the last three are edited with the reference's own GGUF writer.
Pass: max|C - ref| <= 1e-5 * max|ref| for every model and image (float32 arithmetic measures
about 7e-7; 1e-5 keeps a margin and still fails if e.g. use_gelu ran the tanh GELU, about 1e-4).
Exit 0 pass, 1 fail, 77 skip (torch/numpy missing, or llava-mkmodel / libllava not built)."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    print("SKIP: numpy or torch missing")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LLAVA_SRCDIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "reference"))
import gguf  # noqa: E402
import gguf_write  # noqa: E402
import llava_c  # noqa: E402
import llava_ref  # noqa: E402

BUILD = os.environ.get("LLAVA_BUILDDIR", "")
TOOL = os.path.join(BUILD, "llava-mkmodel")
DATA = os.environ.get("LLAVA_TEST_DATA") or os.path.join(SRC, "..", "shared", "data")
IMAGES = [os.path.join(DATA, "images", n) for n in ("test-1.jpeg", "shapes336.png")]
TOL = 1e-5

GEOM = ["--vision-size", "224", "--patch", "16", "--v-embd", "48", "--v-head", "3", "--v-ff", "96",
        "--v-layer", "3", "--n-embd", "80"]

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


def edit(src, dst, add_keys=(), add_tensors=()):
    """Copy src to dst with extra/replaced keys (key, type, value, elem_type) and extra tensors
    (name, ne, float32 values)."""
    r = gguf.GGUFFile(src)
    w = gguf_write.GGUFWriter(r.alignment)
    w.copy_keys(r)
    for k, vt, val, et in add_keys:
        w.add(k, vt, val, et)
    for name in r.tensor_order:
        ti = r.tensors[name]
        w.add_tensor(name, ti.ne, ti.type, bytes(r.raw(name)))
    for name, ne, vals in add_tensors:
        w.add_tensor(name, ne, gguf.F32, np.asarray(vals, "<f4").tobytes())
    r.close()
    w.write(dst)


def compare(lib, path, label):
    ref = llava_ref.ClipRef(path, torch.float64, "erf")
    params = lib.params(n_threads=2)
    vis = lib.load_vision(path, params)
    proj = lib.load_projector(path, params)
    try:
        for img_path in IMAGES:
            want = ref.encode(img_path).numpy()
            img = lib.load_image(img_path)
            e, got = lib.encode_image(vis, proj, img, params)
            lib.L.llava_free_embed(e)
            lib.L.llava_free_image(img)
            name = "%s / %s" % (label, os.path.basename(img_path))
            if not check(got.shape == want.shape, "%s: shape %s, reference %s" % (name, got.shape, want.shape)):
                continue
            err, scale = float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))
            print("%-44s %s max abs error %.3g, max|ref| %.4g, ratio %.3g" %
                  (name, got.shape, err, scale, err / scale))
            check(err <= TOL * scale, "%s: ratio %.3g > %g" % (name, err / scale, TOL))
    finally:
        lib.L.llava_free_projector(proj)
        lib.L.llava_free_vision(vis)
        lib.L.llava_free_params(params)


def main():
    libpath = llava_c.find_library(BUILD)
    if not libpath or not os.path.exists(TOOL):
        print("SKIP: libllava or llava-mkmodel not built (LLAVA_BUILDDIR=%r)" % BUILD)
        return 77
    lib = llava_c.Lib(libpath)
    torch.set_num_threads(2)
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        P = lambda n: os.path.join(tmp, n)  # noqa: E731
        mkmodel(P("geom.gguf"), GEOM)
        mkmodel(P("gelu.gguf"), GEOM + ["--gelu", "--seed", "3"])
        mkmodel(P("linear.gguf"), ["--projector", "linear", "--seed", "5"])
        D, n_pos = 48, (224 // 16) ** 2 + 1
        edit(P("geom.gguf"), P("feat1.gguf"),
             add_keys=[("clip.vision.feature_layer", gguf.ARRAY, [1], gguf.INT32)])
        post_ln = [("v.post_ln.weight", (D,), 1.0 + 0.2 * rng.standard_normal(D)),
                   ("v.post_ln.bias", (D,), 0.1 * rng.standard_normal(D)),
                   ("v.patch_embd.bias", (D,), 0.5 * rng.standard_normal(D))]
        edit(P("geom.gguf"), P("postln.gguf"), add_tensors=post_ln)
        edit(P("geom.gguf"), P("feat2_postln.gguf"), add_tensors=post_ln,
             add_keys=[("clip.vision.feature_layer", gguf.ARRAY, [2], gguf.INT32)])
        check(n_pos == 197, "geometry")

        for name, label in [("geom.gguf", "224px/16, D48, 3 heads, 3 blocks"),
                            ("gelu.gguf", "clip.use_gelu (erf)"),
                            ("linear.gguf", "linear projector (mm.0 only)"),
                            ("feat1.gguf", "feature_layer [1]"),
                            ("postln.gguf", "post-LN + patch bias"),
                            ("feat2_postln.gguf", "feature_layer [2] + post-LN")]:
            try:
                compare(lib, P(name), label)
            except (llava_c.CError, ValueError, RuntimeError) as ex:
                check(False, "%s: %s" % (label, ex))
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
