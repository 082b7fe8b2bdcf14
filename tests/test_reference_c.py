#!/usr/bin/python3
"""Compare the C library (public API through ctypes on $LLAVA_BUILDDIR/.libs/libllava.so) with the
independent PyTorch reference (tests/reference/llava_ref.py, float64) on random-weight model pairs
written by llava-mkmodel:
  A: --preset tiny (F16 weights, mlp projector, quick-GELU, 336 px, GQA 4:2)
  B: F32 weights, GQA 8:1, tied output, linear projector, --gelu, 224 px, RoPE base 5e5 with
     linear scaling 4, rms eps 1e-6, 3 LM layers / 3 vision blocks
  C, D, E (vision only): clip.vision.feature_layer [1] and [1,3] of 3 blocks (concatenated), v.post_ln
For each pair and both test images: image embeddings (C preprocessing + tower + projector vs
Pillow + reference), LM logits after a text prompt, after the spliced image and after a suffix,
and 12 greedy steps (C tokens fed back to the reference, teacher forcing), with the F32 KV
cache (tight tolerance) and the default F16 KV cache (looser).
Exit 0 pass, 1 fail, 77 skip (no torch / no built library)."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:
    print("SKIP: %s" % e)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LLAVA_SRCDIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "reference"))
import llava_c  # noqa: E402
import llava_ref  # noqa: E402

BUILD = os.environ.get("LLAVA_BUILDDIR", "")
DATA = os.environ.get("LLAVA_TEST_DATA") or os.path.join(SRC, "..", "shared", "data")
IMAGES = [os.path.join(DATA, "images", n) for n in ("test-1.jpeg", "shapes336.png")]

EMBD_TOL = 1e-4        # max|C - ref| / max|ref|, image embeddings (pixels must match Pillow exactly)
LOGIT_TOL_F32KV = 1e-4  # max|C - ref| / max|ref| of the logits, F32 KV cache
LOGIT_TOL_F16KV = 3e-3  # same with the F16 KV cache (K/V rounded to half)
N_GREEDY = 12

failures = []
worst = {}


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)
    return cond


def rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max() / np.abs(b).max())


def note(kind, v):
    worst[kind] = max(worst.get(kind, 0.0), v)


CASES = {
    "A": ([], {"gelu_kind": "erf"}),
    "B": (["--n-embd", "64", "--n-head", "8", "--n-head-kv", "1", "--n-ff", "96", "--n-layer", "3", "--tied",
           "--wtype", "f32", "--projector", "linear", "--gelu", "--vision-size", "224", "--v-layer", "3",
           "--v-embd", "32", "--v-head", "2", "--v-ff", "80", "--rope-base", "500000", "--rope-scale", "4",
           "--rms-eps", "1e-6", "--seed", "5"],
          # clip.use_gelu = HF CLIP's "gelu", the exact erf form (llama.cpp uses tanh; the
          # two differ by ~1e-4 relative here, so this test tells them apart).
          {"gelu_kind": "erf"}),
    # vision-only variants (one image, no LM comparison)
    "C": (["--feature-layer", "1", "--v-layer", "3"], {"gelu_kind": "erf", "vision_only": True}),
    "D": (["--feature-layer", "1,3", "--v-layer", "3"], {"gelu_kind": "erf", "vision_only": True}),
    "E": (["--post-ln"], {"gelu_kind": "erf", "vision_only": True}),
}


def compare_lm(lib, lm_c, ref_lm, embd_c, kv_type, tol, label):
    params = lib.params(n_threads=2, kv_type=kv_type)
    sess = lib.new_session(lm_c, params)
    lib.L.llava_free_params(params)
    prefix, suffix = [1, 319, 13563, 29871], [29871, 13, 5618, 29973]
    n_vocab = ref_lm.n_vocab
    prefix = [t % n_vocab for t in prefix]
    suffix = [t % n_vocab for t in suffix]
    cache = ref_lm.new_cache()
    steps = [("prompt", lambda: lib.eval_tokens(sess, prefix), ref_lm.embed(prefix)),
             ("image", lambda: lib.eval_embed(sess, embd_c[0]), torch.from_numpy(embd_c[1]).to(ref_lm.dtype)),
             ("suffix", lambda: lib.eval_tokens(sess, suffix), ref_lm.embed(suffix))]
    errs = []
    for _name, c_step, ref_in in steps:
        c_step()
        lc = lib.logits(sess)
        lr = ref_lm.logits(ref_lm.forward(ref_in, cache)[-1:])[0].numpy()
        errs.append(rel(lc, lr))
    # greedy, teacher-forced: the C token must be the reference argmax unless the
    # reference's own top-2 margin is below the tolerance.
    greedy_ok, toks = True, []
    for _ in range(N_GREEDY):
        t = int(np.argmax(lc))
        top = np.sort(lr)[-1]
        if lr[t] < top - tol * np.abs(lr).max():
            greedy_ok = False
        toks.append(t)
        lib.eval_tokens(sess, [t])
        lc = lib.logits(sess)
        lr = ref_lm.logits(ref_lm.forward(ref_lm.embed([t]), cache)[-1:])[0].numpy()
        errs.append(rel(lc, lr))
    lib.L.llava_free_session(sess)
    e = max(errs)
    note("logits kv=%s" % ("f32" if kv_type == 0 else "f16"), e)
    check(e < tol, "%s KV %s: logits max rel err %.3g over prompt/image/suffix/%d greedy steps"
          % (label, "F32" if kv_type == 0 else "F16", e, N_GREEDY))
    check(greedy_ok, "%s KV %s: greedy tokens agree with the reference %s"
          % (label, "F32" if kv_type == 0 else "F16", toks))


def main():
    lib_path = llava_c.find_library(BUILD) if BUILD else None
    tool = os.path.join(BUILD, "llava-mkmodel")
    if not lib_path or not os.path.exists(tool):
        print("SKIP: libllava.so or llava-mkmodel not built in %r" % BUILD)
        return 77
    torch.set_num_threads(1)  # the reference side is tiny; threads only add spin-waiting
    lib = llava_c.Lib(lib_path)
    with tempfile.TemporaryDirectory() as d, torch.no_grad():
        for case, (args, ref_opts) in CASES.items():
            lm_path, mm_path = os.path.join(d, case + "-lm.gguf"), os.path.join(d, case + "-mm.gguf")
            p = subprocess.run([tool, "--out-lm", lm_path, "--out-mmproj", mm_path] + args,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if p.returncode != 0:
                check(False, "llava-mkmodel case %s: %s" % (case, p.stderr))
                continue
            params = lib.params(n_threads=2)
            try:
                vis, proj, lm_c = lib.load_vision(mm_path, params), lib.load_projector(mm_path, params), \
                    lib.load_lm(lm_path, params)
            except llava_c.CError as e:
                check(False, "case %s: C load failed: %s" % (case, e))
                continue
            ref_clip = llava_ref.ClipRef(mm_path, torch.float64, ref_opts["gelu_kind"])
            ref_lm = llava_ref.LlamaRef(lm_path, torch.float64)
            for img_path in IMAGES[:1] if ref_opts.get("vision_only") else IMAGES:
                label = "%s/%s" % (case, os.path.basename(img_path))
                img = lib.load_image(img_path, params)
                embd_h, embd = lib.encode_image(vis, proj, img, params)
                ref = ref_clip.encode(img_path).numpy()
                if not check(embd.shape == ref.shape, "%s: embd shape C %s ref %s" % (label, embd.shape, ref.shape)):
                    continue
                e = rel(embd, ref)
                note("embd", e)
                check(e < EMBD_TOL, "%s: embd max abs err / max|ref| = %.3g" % (label, e))
                if not ref_opts.get("vision_only"):
                    compare_lm(lib, lm_c, ref_lm, (embd_h, embd), 0, LOGIT_TOL_F32KV, label)
                    compare_lm(lib, lm_c, ref_lm, (embd_h, embd), 1, LOGIT_TOL_F16KV, label)
                lib.L.llava_free_embed(embd_h)
                lib.L.llava_free_image(img)
            lib.L.llava_free_lm(lm_c)
            lib.L.llava_free_projector(proj)
            lib.L.llava_free_vision(vis)
            lib.L.llava_free_params(params)
    print("worst: " + ", ".join("%s %.3g" % kv for kv in sorted(worst.items())))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
