#!/usr/bin/python3
"""eval_c.py - run the exported GGUF files through libllava (ctypes on libllava.so) and compare
with PyTorch: the tokenizer on the whole corpus, the image embeddings, and the greedy answers
to the test questions (identical-answer rate and judged accuracy).

    eval_c.py --lib BUILDDIR/.libs/libllava.so --run DIR [--tag stage2] [--tokenizer] [--limit N]
"""
import argparse
import ctypes as C
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
import instruct  # noqa: E402
import llava_c  # noqa: E402
from spm import Vocab  # noqa: E402

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")


class Runtime:
    """The C side: an LM, a vision encoder and projector, greedy answers about image files."""

    def __init__(self, lib_path, lm_path, mmproj_path, n_threads=1):
        self.c = llava_c.Lib(lib_path)
        L = self.c.L
        L.llava_tokenize.restype = C.c_int
        L.llava_tokenize.argtypes = [C.c_void_p, C.c_char_p, C.c_size_t, C.c_uint,
                                     C.POINTER(C.c_int32), C.c_size_t, C.POINTER(C.c_size_t)]
        L.llava_session_position = getattr(L, "llava_session_position", None)
        self.params = self.c.params(n_threads=n_threads, n_ctx=256)
        self.lm = self.c.load_lm(lm_path, self.params)
        self.vision = self.c.load_vision(mmproj_path, self.params) if mmproj_path else None
        self.proj = self.c.load_projector(mmproj_path, self.params) if mmproj_path else None
        self.eos = 2

    def tokenize(self, text, bos=False):
        b = text.encode("utf-8")
        cap = 4 * len(b) + 8
        buf = (C.c_int32 * cap)()
        n = C.c_size_t()
        flags = 2 | (1 if bos else 0)                # PARSE_SPECIAL (+ ADD_BOS), as the chat helper
        rc = self.c.L.llava_tokenize(self.lm, b, len(b), flags, buf, cap, C.byref(n))
        if rc != 0:
            raise llava_c.CError("tokenize rc %d" % rc)
        return list(buf[: n.value])

    def embed(self, image_path):
        img = self.c.load_image(image_path, self.params)
        e, arr = self.c.encode_image(self.vision, self.proj, img, self.params)
        self.c.L.llava_free_image(img)
        return e, arr

    def answer(self, e, question, max_new=96):
        s = self.c.new_session(self.lm, self.params)
        try:
            self.c.eval_tokens(s, self.tokenize(SYSTEM + " USER: ", bos=True))
            self.c.eval_embed(s, e)
            self.c.eval_tokens(s, self.tokenize("\n" + question + " ASSISTANT:"))
            out = []
            for _ in range(max_new):
                t = int(np.argmax(self.c.logits(s)))
                if t == self.eos:
                    break
                out.append(t)
                self.c.eval_tokens(s, [t])
            return out
        finally:
            self.c.L.llava_free_session(s)


def corpus(data):
    texts = [(SYSTEM + " USER: ", True)]
    for split in data.values():
        for s in split:
            texts += [(c, False) for c in s["captions"]]
            for smp in s["instruct"] + [s["brief"]]:
                for q, a, _ in smp["turns"]:
                    texts += [("\n" + q + " ASSISTANT:", False), ("USER: " + q + " ASSISTANT:", False),
                              (a, False)]
    return texts


def check_tokenizer(rt, vocab, data):
    texts = list(dict.fromkeys(corpus(data)))
    bad = 0
    for t, bos in texts:
        py = vocab.encode(t, add_bos=bos)
        if rt.tokenize(t, bos) != py or (not bos and vocab.encode_exact(t) != py):
            bad += 1
            if bad <= 3:
                print("tokenizer mismatch:", repr(t), rt.tokenize(t, bos), py)
    return len(texts), bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--tag", default="stage2")
    ap.add_argument("--tokenizer", action="store_true")
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    from PIL import Image
    with open(os.path.join(a.run, "vocab.json")) as f:
        vocab = Vocab(json.load(f))
    with open(os.path.join(a.run, "data.json")) as f:
        data = json.load(f)
    rt = Runtime(a.lib, os.path.join(a.run, a.tag + "-lm.gguf"), os.path.join(a.run, a.tag + "-mmproj.gguf"))
    res = {}
    if a.tokenizer:
        n, bad = check_tokenizer(rt, vocab, data)
        res["tokenizer"] = {"texts": n, "mismatches": bad}
        print("tokenizer: %d distinct corpus texts, %d mismatches" % (n, bad))
    with open(os.path.join(a.run, "eval.json")) as f:
        ev = json.load(f)
    qs = ev["questions"][: a.limit] if a.limit else ev["questions"]
    imgs = np.load(os.path.join(a.run, "images_test.npy"))
    scenes = data["test"]
    t0 = time.time()
    same, emb, max_diff = 0, {}, 0.0
    import torch
    feats = torch.load(os.path.join(a.run, "feats_test.pt"))
    sys.path.insert(0, HERE)
    from models import Projector
    proj_state = torch.load(os.path.join(a.run, "proj2.pt" if a.tag == "stage2" else "proj1.pt"))
    proj = Projector(proj_state["mm0.weight"].shape[1], proj_state["mm0.weight"].shape[0])
    proj.load_state_dict(proj_state)
    with tempfile.TemporaryDirectory() as tmp:
        for it in qs:
            si = it["scene"]
            if si not in emb:
                p = os.path.join(tmp, "%d.png" % si)
                Image.fromarray(imgs[si]).save(p)
                emb[si] = rt.embed(p)
                with torch.no_grad():
                    ref = proj(feats[si]).numpy()
                max_diff = max(max_diff, float(np.abs(emb[si][1] - ref).max()))
            ids = rt.answer(emb[si][0], it["q"])
            it["c_ids"] = ids
            it["c"] = vocab.decode(ids)
            same += ids == it[a.tag + "_ids"]
    from train import score
    tab = score(qs, scenes, "c")
    tab_py = score(qs, scenes, a.tag)
    res.update({"questions": len(qs), "identical": same, "identical_pct": 100.0 * same / len(qs),
                "embed_max_abs_diff": max_diff, "acc_c": tab, "acc_torch": tab_py,
                "seconds": round(time.time() - t0, 1)})
    print("C vs PyTorch: %d/%d identical greedy answers (%.1f%%), embedding max |diff| %.2e" % (
        same, len(qs), res["identical_pct"], max_diff))
    print("accuracy C %.1f / PyTorch %.1f" % (tab["all"]["acc"], tab_py["all"]["acc"]))
    with open(os.path.join(a.run, "eval_c_%s.json" % a.tag), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(a.run, "answers_c_%s.json" % a.tag), "w") as f:
        json.dump(qs, f)


if __name__ == "__main__":
    main()
