#!/usr/bin/python3
"""Quantized weights: the C library (ctypes, public API) against the reference, which dequantizes
every block exactly with the independent numpy dequantizers of tests/reference/gguf.py.

For each weight type (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) and
for one file mixing all of them, an LM is written in Python (tests/reference/gguf_write.py) with
the keys and 1-D tensors of a llava-mkmodel LM and random valid quantized blocks for every matrix
(token_embd and output included), scaled to the f32 model's statistics. Then the logits of a
16-token prompt and 4 greedy steps (teacher-forced) are compared, F32 KV cache.

The C library may quantize activation rows as llama.cpp does (spec Decision 7, section 2.1); the
reference can do the same (LlamaRef.act_quant_rows), so three variants are computed (exact,
8-bit activations for products of <= 4 rows, 8-bit everywhere) and each comparison counts
against the closest. The errors against each are printed. Two prompts per model (fresh sessions):
with 8-bit activations everywhere a 16-token prompt makes ~10^5 rounding decisions, and one that
lands on the other side of a .5 boundary (f32 vs float64 activations) offsets every later logit
of that run by ~1e-2, so one run per model alone would leave a type's tight match to chance.
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
import gguf  # noqa: E402
import gguf_write  # noqa: E402
import llava_c  # noqa: E402
import llava_ref  # noqa: E402

BUILD = os.environ.get("LLAVA_BUILDDIR", "")

# max |C - ref| / max |ref| over the logits, against the closest reference variant. When the C
# library rounds activations to 8 bits, its f32 activations (not bit-identical to the float64
# reference's) can round a value near a .5 boundary the other way: one such flip moves the logits
# by up to ~1e-2 relative. So: each comparison within TOL_LOOSE, each type matching tightly at
# least once, and most comparisons overall (MIN_TIGHT_SHARE) matching tightly; a systematic
# kernel error would match never.
TOL_TIGHT = 1e-5
TOL_LOOSE = 5e-2
MIN_TIGHT_SHARE = 0.6
TYPES = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
PROMPTS = ([1, 300, 301, 259, 270, 280, 290, 100, 13, 32, 33, 34, 35, 36, 37, 38],
           [1, 17, 230, 231, 45, 46, 199, 12, 350, 351, 7, 8, 9, 300, 64, 65])
N_STEPS = 4

failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)
    return cond


def rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max() / np.abs(b).max())


def make_model(base, path, type_of, seed):
    """Copy base's keys and 1-D tensors; matrices become random tensors of type_of(name)."""
    rng = np.random.default_rng(seed)
    w = gguf_write.GGUFWriter()
    w.copy_keys(base)
    for name in base.tensor_order:
        ti = base.tensors[name]
        if len(ti.ne) == 1:
            w.add_tensor(name, ti.ne, ti.type, base.raw(name).tobytes())
        else:
            t = type_of(name)
            std = float(base.array(name).std())
            w.add_tensor(name, ti.ne, t, gguf_write.random_tensor_bytes(rng, ti.ne, t, std))
    w.write(path)


def compare(lib, path, label):
    """Both PROMPTS through run(); the checks count over all their comparisons. Returns (tight, total)."""
    errs = []
    for prompt in PROMPTS:
        e = run(lib, path, label, prompt)
        if e is None:
            return 0, 1
        errs += e
    n_tight = sum(e < TOL_TIGHT for e in errs)
    check(max(errs) < TOL_LOOSE, "%-5s all %d comparisons within %g (worst %.3g)" % (label, len(errs), TOL_LOOSE, max(errs)))
    if label in ("F16", "BF16"):
        check(n_tight == len(errs), "%-5s exact path: all comparisons within %g" % (label, TOL_TIGHT))
    else:
        check(n_tight >= 1, "%-5s at least one comparison matches a reference variant within %g (%d/%d)"
              % (label, TOL_TIGHT, n_tight, len(errs)))
    return n_tight, len(errs)


def run(lib, path, label, prompt):
    """Logits after the 16-token prompt and after each of N_STEPS greedy tokens, each compared with
    three reference variants: exact products, and products that round activation rows through
    Q8_0/Q8_K (spec 2.1) for <= 4 rows or always; the closest counts (the C kernels choose per
    CPU). All variants
    compute the last layer for the last row only, as the C library does. Returns the errors
    against the closest variant (None if the C library could not load the model)."""
    ref = llava_ref.LlamaRef(path, torch.float64)
    params = lib.params(n_threads=2, kv_type=0)
    try:
        lm = lib.load_lm(path, params)
        sess = lib.new_session(lm, params)
    except llava_c.CError as e:
        lib.L.llava_free_params(params)
        check(False, "%s: C load failed: %s" % (label, e))
        return None
    lib.L.llava_free_params(params)
    # exact products (libllava without integer kernels); 8-bit activations for products of <= 4
    # rows only (its AVX2/NEON default before the integer GEMM); 8-bit activations everywhere
    # (its default now, and llama.cpp's, for any batch size)
    rows = {"exact": 0, "q8": 4, "q8all": 1 << 30}
    caches = {m: ref.new_cache() for m in rows}

    def ref_step(mode, x):
        ref.act_quant_rows = rows[mode]
        return ref.logits(ref.forward(x, caches[mode], last_only=True)[-1:])[0].numpy()

    lib.eval_tokens(sess, prompt)
    lc = lib.logits(sess)
    lr = {m: ref_step(m, ref.embed(prompt)) for m in caches}
    e = {m: rel(lc, lr[m]) for m in caches}
    prompt_err, prompt_mode = min(e.values()), "/".join("%.2g" % e[m] for m in rows)
    modes = []
    step_err = []
    for _ in range(N_STEPS):
        t = int(np.argmax(lc))
        lib.eval_tokens(sess, [t])
        lc = lib.logits(sess)
        lr = {m: ref_step(m, ref.embed([t])) for m in caches}
        e = {m: rel(lc, lr[m]) for m in caches}
        best = min(e, key=e.get)
        step_err.append(e[best])
        modes.append("%s %s" % (best, "/".join("%.2g" % e[m] for m in rows)))
    lib.L.llava_free_session(sess)
    lib.L.llava_free_lm(lm)
    if float(np.std(lr["exact"])) < 0.5:
        check(False, "%s: the reference logits are flat (std %.3g)" % (label, float(np.std(lr["exact"]))))
    print("     %-5s prompt %.2g (exact/q8/q8all %s); steps: %s" % (label, prompt_err, prompt_mode, "; ".join(modes)))
    return [prompt_err] + step_err


def main():
    lib_path = llava_c.find_library(BUILD) if BUILD else None
    tool = os.path.join(BUILD, "llava-mkmodel")
    if not lib_path or not os.path.exists(tool):
        print("SKIP: libllava.so or llava-mkmodel not built in %r" % BUILD)
        return 77
    torch.set_num_threads(1)  # the reference side is tiny; threads only add spin-waiting
    lib = llava_c.Lib(lib_path)
    tally = []
    with tempfile.TemporaryDirectory() as d, torch.no_grad():
        base_path = os.path.join(d, "base-lm.gguf")
        subprocess.run([tool, "--out-lm", base_path, "--n-embd", "256", "--n-ff", "512", "--n-head", "4",
                        "--n-head-kv", "2", "--wtype", "f32", "--seed", "11"], check=True, stdout=subprocess.DEVNULL)
        base = gguf.GGUFFile(base_path)
        for i, tname in enumerate(TYPES):
            p = os.path.join(d, "%s.gguf" % tname)
            make_model(base, p, lambda n, t=gguf.TYPE_BY_NAME[tname]: t, 100 + i)
            tally.append(compare(lib, p, tname))
        order = [gguf.TYPE_BY_NAME[t] for t in TYPES]
        idx = {n: k for k, n in enumerate(base.tensor_order)}
        p = os.path.join(d, "mixed.gguf")
        make_model(base, p, lambda n: order[idx[n] % len(order)], 99)
        tally.append(compare(lib, p, "mixed"))
    tight, total = sum(t for t, _ in tally), sum(n for _, n in tally)
    check(tight >= MIN_TIGHT_SHARE * total, "%d of %d comparisons match a reference variant within %g"
          % (tight, total, TOL_TIGHT))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
