#!/usr/bin/python3
"""Validate the independent PyTorch reference (tests/reference/llava_ref.py) against the
golden data in $LLAVA_TEST_DATA/golden/tiny-dev (made outside this project).

Checks: projector embeddings of both images, first-step logits of the text and chat prompts,
and the 32-token greedy continuations (text, chat for each image).
Exit 0 = pass, 1 = fail, 77 = skip (no torch/numpy/PIL or no golden data).
"""
import os
import sys
import time

try:
    import numpy as np
    import torch
    import PIL  # noqa: F401
except ImportError as e:
    print("SKIP: %s" % e)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LLAVA_SRCDIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "reference"))
import llava_ref  # noqa: E402

DATA = os.environ.get("LLAVA_TEST_DATA") or os.path.join(SRC, "..", "shared", "data")
GOLD = os.path.join(DATA, "golden", "tiny-dev")
IMAGES = os.path.join(DATA, "images")

# Tolerances. Golden = a float32 PyTorch run; we run float64, so differences are f32 rounding
# (plus the golden writer's own GELU/normalisation order). Measured values are printed.
EMBD_TOL = 1e-5      # max |ref - golden| / max |golden|
LOGIT_TOL = 1e-5     # max |ref - golden| / max |golden|

failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def load_golden():
    g = {}
    with open(os.path.join(GOLD, "golden.txt")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            g[k.strip()] = v.strip()
    return g


def ids(s):
    return [int(v) for v in s.split(",")]


def main():
    if not os.path.exists(os.path.join(GOLD, "golden.txt")):
        print("SKIP: no golden data at %s" % GOLD)
        return 77
    torch.set_num_threads(1)  # tiny model: threads only add spin-waiting on a busy machine
    t0 = time.time()
    g = load_golden()
    with torch.no_grad():
        clip = llava_ref.ClipRef(os.path.join(GOLD, "model-mmproj.gguf"), torch.float64)
        lm = llava_ref.LlamaRef(os.path.join(GOLD, "model-lm.gguf"), torch.float64)
        check(clip.legacy_swap, "mmproj uses the legacy ffn_down/ffn_up naming (swap detected)")

        embd = {}
        for name in ("shapes336.png", "test-1.jpeg"):
            e = clip.encode(os.path.join(IMAGES, name))
            gold = np.fromfile(os.path.join(GOLD, name + ".embd.f32"), dtype="<f4").reshape(-1, lm.n_embd)
            check(tuple(e.shape) == gold.shape, "%s embd shape %s" % (name, tuple(e.shape)))
            err = float(np.abs(e.numpy() - gold).max() / np.abs(gold).max())
            check(err < EMBD_TOL, "%s embd max abs err / max|golden| = %.3g (max|golden| %.3g)"
                  % (name, err, float(np.abs(gold).max())))
            embd[name] = e
            if name == "shapes336.png":
                # Negative control: llama.cpp's depth (one block fewer) must be detected.
                clip.feature_layers, clip.depth = [clip.n_block - 1], clip.n_block - 1
                e2 = clip.encode(os.path.join(IMAGES, name)).numpy()
                clip.feature_layers, clip.depth = [clip.n_block], clip.n_block
                err2 = float(np.abs(e2 - gold).max() / np.abs(gold).max())
                check(err2 > 100 * EMBD_TOL, "control: one block fewer gives err %.3g (must be large)" % err2)

        # text prompt
        text_ids = ids(g["text_prompt_ids"])
        got, lgs = lm.greedy(lm.embed(text_ids), 32)
        gold = np.fromfile(os.path.join(GOLD, "text_prompt.logits0.f32"), dtype="<f4")
        err = float(np.abs(lgs[0].numpy() - gold).max() / np.abs(gold).max())
        check(err < LOGIT_TOL, "text_prompt logits0 max rel err = %.3g" % err)
        # Negative control: NEOX (rotate-half) RoPE on GGUF rows must change the logits.
        rope = lm._rope
        lm._rope = lambda x, pos: _rope_neox(lm, x, pos)
        lg2 = lm.logits(lm.forward(lm.embed(text_ids), lm.new_cache())[-1:])[0]
        lm._rope = rope
        err2 = float(np.abs(lg2.numpy() - gold).max() / np.abs(gold).max())
        check(err2 > 100 * LOGIT_TOL, "control: rotate-half RoPE gives logits err %.3g (must be large)" % err2)
        want = ids(g["text_greedy32"])
        check(got == want, "text_greedy32 (%d/%d ids agree before first difference)"
              % (_agree(got, want), len(want)))

        pre, suf = ids(g["chat_prefix_ids"]), ids(g["chat_suffix_ids"])
        check(int(g.get("image_insert_at", len(pre))) == len(pre), "image_insert_at == len(prefix)")
        for name in ("shapes336.png", "test-1.jpeg"):
            x = torch.cat([lm.embed(pre), embd[name], lm.embed(suf)], 0)
            got, lgs = lm.greedy(x, 32)
            lpath = os.path.join(GOLD, "chat_%s.logits0.f32" % name)
            if os.path.exists(lpath):
                gold = np.fromfile(lpath, dtype="<f4")
                err = float(np.abs(lgs[0].numpy() - gold).max() / np.abs(gold).max())
                check(err < LOGIT_TOL, "chat %s logits0 max rel err = %.3g" % (name, err))
            want = ids(g["chat_greedy32[%s]" % name])
            check(got == want, "chat_greedy32[%s] (%d/%d ids agree before first difference)"
                  % (name, _agree(got, want), len(want)))
    # The command line other tests use (llava_ref.py greedy / encode / lm-logits).
    import subprocess
    import tempfile
    cli = [sys.executable, os.path.join(SRC, "tests", "reference", "llava_ref.py")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(cli + ["greedy", os.path.join(GOLD, "model-lm.gguf"), "--tokens", g["text_prompt_ids"],
                              "--n", "8", "--threads", "1"], stdout=subprocess.PIPE, text=True, env=env)
    check(p.returncode == 0 and p.stdout.strip() == ",".join(g["text_greedy32"].split(",")[:8]),
          "CLI greedy: %s" % p.stdout.strip())
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "e.f32")
        p = subprocess.run(cli + ["encode", os.path.join(GOLD, "model-mmproj.gguf"), os.path.join(IMAGES, "shapes336.png"),
                                  "--out", out, "--threads", "1"], stdout=subprocess.PIPE, text=True, env=env)
        gold = np.fromfile(os.path.join(GOLD, "shapes336.png.embd.f32"), dtype="<f4")
        ok = p.returncode == 0 and os.path.exists(out)
        err = float(np.abs(np.fromfile(out, dtype="<f4") - gold).max() / np.abs(gold).max()) if ok else 1.0
        check(ok and err < EMBD_TOL, "CLI encode: err %.3g" % err)
        p = subprocess.run(cli + ["lm-logits", os.path.join(GOLD, "model-lm.gguf"), "--tokens", g["text_prompt_ids"],
                                  "--out", out, "--threads", "1"], stdout=subprocess.PIPE, text=True, env=env)
        gold = np.fromfile(os.path.join(GOLD, "text_prompt.logits0.f32"), dtype="<f4")
        ok = p.returncode == 0 and os.path.getsize(out) == gold.nbytes
        err = float(np.abs(np.fromfile(out, dtype="<f4") - gold).max() / np.abs(gold).max()) if ok else 1.0
        check(ok and err < LOGIT_TOL, "CLI lm-logits: err %.3g" % err)
    print("time %.1f s" % (time.time() - t0))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


def _rope_neox(lm, x, pos):
    theta = pos.to(torch.float64)[:, None] * lm.inv_freq[None, :]
    c, s = torch.cos(theta).to(x.dtype)[:, None, :], torch.sin(theta).to(x.dtype)[:, None, :]
    h = lm.n_rot // 2
    x0, x1 = x[..., :h], x[..., h:lm.n_rot]
    return torch.cat([x0 * c - x1 * s, x0 * s + x1 * c, x[..., lm.n_rot:]], -1)


def _agree(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


if __name__ == "__main__":
    sys.exit(main())
