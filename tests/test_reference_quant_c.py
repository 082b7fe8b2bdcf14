#!/usr/bin/python3
"""Quantized weights: the C library (ctypes, public API) against the reference, which dequantizes
every block exactly with the independent numpy dequantizers of tests/reference/gguf.py.

For each weight type (F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) and
for one file mixing all of them, an LM is written in Python (tests/reference/gguf_write.py) with
the keys and 1-D tensors of a llava-mkmodel LM and random valid quantized blocks for every matrix
(token_embd and output included), scaled to the f32 model's statistics. Then the logits of a
16-token prompt and 4 greedy steps (teacher-forced) are compared, F32 KV cache.

The C library may quantize activation rows as llama.cpp does (spec Decision 7, section 2.1); the
reference can do the same (LlamaRef.act_quant_rows), so both variants are computed and each
decode step must match one of them closely. The errors against both are printed.
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

# max |C - ref| / max |ref| over the logits, against the closest reference variant.
TOL_PROMPT = 1e-4
TOL_STEP = 1e-4
TYPES = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
PROMPT = [1, 300, 301, 259, 270, 280, 290, 100, 13, 32, 33, 34, 35, 36, 37, 38]
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
    """Prompt (16 rows: the C library's exact-dequantize product) must match the exact reference;
    each decode step must match either the exact reference or the one that rounds activation
    rows through Q8_0/Q8_K (spec 2.1), whichever the C kernels use on this CPU."""
    ref = llava_ref.LlamaRef(path, torch.float64)
    params = lib.params(n_threads=2, kv_type=0)
    try:
        lm = lib.load_lm(path, params)
        sess = lib.new_session(lm, params)
    except llava_c.CError as e:
        lib.L.llava_free_params(params)
        return check(False, "%s: C load failed: %s" % (label, e))
    lib.L.llava_free_params(params)
    caches = {"exact": ref.new_cache(), "q8": ref.new_cache()}

    def ref_step(mode, x):
        ref.act_quant_rows = 0 if mode == "exact" else 4
        return ref.logits(ref.forward(x, caches[mode])[-1:])[0].numpy()

    lib.eval_tokens(sess, PROMPT)
    lc = lib.logits(sess)
    lr = {m: ref_step(m, ref.embed(PROMPT)) for m in caches}
    e = {m: rel(lc, lr[m]) for m in caches}
    prompt_err, prompt_mode = min(e.values()), "%.2g/%.2g" % (e["exact"], e["q8"])
    step_err, modes = [], []
    for _ in range(N_STEPS):
        t = int(np.argmax(lc))
        lib.eval_tokens(sess, [t])
        lc = lib.logits(sess)
        lr = {m: ref_step(m, ref.embed([t])) for m in caches}
        e = {m: rel(lc, lr[m]) for m in caches}
        best = min(e, key=e.get)
        step_err.append(e[best])
        modes.append("%s %.2g/%.2g" % (best, e["exact"], e["q8"]))
    lib.L.llava_free_session(sess)
    lib.L.llava_free_lm(lm)
    check(float(np.std(lr["exact"])) > 0.5, "%s: the reference logits are not flat" % label)
    check(prompt_err < TOL_PROMPT, "%-5s prompt logits max rel err %.3g (exact/q8: %s)" % (label, prompt_err, prompt_mode))
    return check(max(step_err) < TOL_STEP, "%-5s decode steps max rel err %.3g (closest reference, exact/q8: %s)"
                 % (label, max(step_err), "; ".join(modes)))


def main():
    lib_path = llava_c.find_library(BUILD) if BUILD else None
    tool = os.path.join(BUILD, "llava-mkmodel")
    if not lib_path or not os.path.exists(tool):
        print("SKIP: libllava.so or llava-mkmodel not built in %r" % BUILD)
        return 77
    torch.set_num_threads(2)
    lib = llava_c.Lib(lib_path)
    with tempfile.TemporaryDirectory() as d, torch.no_grad():
        base_path = os.path.join(d, "base-lm.gguf")
        subprocess.run([tool, "--out-lm", base_path, "--n-embd", "256", "--n-ff", "512", "--n-head", "4",
                        "--n-head-kv", "2", "--wtype", "f32", "--seed", "11"], check=True, stdout=subprocess.DEVNULL)
        base = gguf.GGUFFile(base_path)
        for i, tname in enumerate(TYPES):
            p = os.path.join(d, "%s.gguf" % tname)
            make_model(base, p, lambda n, t=gguf.TYPE_BY_NAME[tname]: t, 100 + i)
            compare(lib, p, tname)
        order = [gguf.TYPE_BY_NAME[t] for t in TYPES]
        idx = {n: k for k, n in enumerate(base.tensor_order)}
        p = os.path.join(d, "mixed.gguf")
        make_model(base, p, lambda n: order[idx[n] % len(order)], 99)
        compare(lib, p, "mixed")
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
