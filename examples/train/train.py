#!/usr/bin/python3
"""train.py - visual instruction tuning, reproduced small (issue 11).

    nice -n 19 /usr/bin/python3 examples/train/train.py --out DIR [--preset demo|quick] [--from STEP]

Steps (each caches its result in DIR, --from re-runs from a step on):
  data    synthetic scenes (train/val/test, held-out colour-shape pairs), images, instruction data
  vocab   SentencePiece-compatible vocabulary built from the training text
  clip    tiny CLIP: ViT + text encoder trained contrastively on image-caption pairs
  lm      tiny LLaMA trained on the corpus text
  stage1  projector only (vision + LM frozen) on image-caption pairs (brief prompts)
  stage2  projector + LM (vision frozen) on the instruction data
  export  mmproj + LM GGUF files (stage 1 and stage 2)
  eval1   (optional, may run in parallel with stage2) the stage-1 model's test answers
  eval    PyTorch greedy answers on the test split, judged per kind, for the stage-1 model,
          the stage-2 model and the text-only reference; writes results.json + RESULTS.md
Everything is seeded; torch runs with a fixed thread count so a rerun gives the same files.
"""
import argparse
import json
import os
import random
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import instruct  # noqa: E402
import world  # noqa: E402
from export_gguf import export_lm, export_mmproj  # noqa: E402
from models import Llama, Projector, TextEncoder, VisionTower, normalize_images  # noqa: E402
from spm import Vocab  # noqa: E402

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
STEPS = ["data", "vocab", "clip", "lm", "stage1", "eval1", "stage2", "export", "eval"]

PRESETS = {
    # name: sizes and step counts
    # the bundled model (examples/train/model): see RESULTS.md for the step times measured.
    # 64 px images in 8 px patches (64 image tokens), ViT width 96 / 4 blocks, LM width 192 / 3 layers
    "demo": dict(n_train=12000, n_val=100, n_test=100, img=64, patch=8, vd=96, vheads=4, vlayers=4,
                 e=192, layers=3, heads=6, ff=512, clip_steps=1200, lm_steps=600, s1_steps=300,
                 s2_steps=3000, s2_rounds=1, batch=16, s2_batch=16, n_eval=100, lm_f16=1),
    # the previous bundled model (31.6%: 16 px patches, LM width 128 / 2 layers), kept for comparison
    "demo-v1": dict(n_train=6000, n_val=100, n_test=100, img=64, patch=16, vd=64, vheads=4, vlayers=3,
                    e=128, layers=2, heads=4, ff=344, clip_steps=400, lm_steps=150, s1_steps=150,
                    s2_steps=900, s2_rounds=2, batch=16, s2_batch=16, n_eval=100),
    "quick": dict(n_train=1000, n_val=50, n_test=20, img=64, patch=16, vd=64, vheads=4, vlayers=3,
                  e=96, layers=2, heads=4, ff=256, clip_steps=10, lm_steps=10, s1_steps=5,
                  s2_steps=10, batch=16),
}


def log(*a):
    print("[%s]" % time.strftime("%H:%M:%S"), *a, flush=True)


# ------------------------------------------------------------------ data
def step_data(cfg, out):
    splits = {}
    for name, n in (("train", cfg["n_train"]), ("val", cfg["n_val"]), ("test", cfg["n_test"])):
        scenes = world.make_split(name, n, 0)
        imgs = np.stack([np.asarray(world.render(s, cfg["img"])) for s in scenes])
        for i, s in enumerate(scenes):
            s["id"] = "%s-%05d" % (name, i)
            s["captions"] = [world.caption(s, k) for k in range(world.CAPTION_STYLES)]
            s["instruct"] = instruct.instruct_samples(s, "instr-" + s["id"])
            s["brief"] = instruct.brief_sample(s, "brief-" + s["id"])
        np.save(os.path.join(out, "images_%s.npy" % name), imgs)
        splits[name] = scenes
    with open(os.path.join(out, "data.json"), "w") as f:
        json.dump(splits, f)
    held = sum(any((o["colour"], o["shape"]) in world.HELD_OUT for o in s["objects"]) for s in splits["test"])
    log("data: %d/%d/%d scenes; %d test scenes hold a held-out pair" % (
        len(splits["train"]), len(splits["val"]), len(splits["test"]), held))


def load_data(out):
    with open(os.path.join(out, "data.json")) as f:
        d = json.load(f)
    imgs = {k: np.load(os.path.join(out, "images_%s.npy" % k)) for k in d}
    return d, imgs


def corpus_texts(scenes):
    """All text of the training corpus (used for the vocabulary and the LM)."""
    out = [SYSTEM, "USER: ASSISTANT:"] + instruct.BRIEF_PROMPTS + instruct.DETAIL_PROMPTS
    for s in scenes:
        out += s["captions"]
        for smp in s["instruct"] + [s["brief"]]:
            for q, a, _ in smp["turns"]:
                out += [q, a]
    return out


def step_vocab(cfg, out):
    d, _ = load_data(out)
    v = Vocab.build(corpus_texts(d["train"]))
    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump(v.pieces, f)
    log("vocab: %d pieces" % len(v))


def load_vocab(out):
    with open(os.path.join(out, "vocab.json")) as f:
        return Vocab(json.load(f))


def cosine(opt, n, warm=0.05):
    """Linear warm-up then cosine decay to 0 over n steps."""
    w = max(1, int(warm * n))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / w) * 0.5 * (1 + np.cos(np.pi * min(i, n) / n)))


def pad(seqs, value=0):
    n = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (n - len(s)) for s in seqs], dtype=torch.long)


# ------------------------------------------------------------------ CLIP
def make_vit(cfg):
    return VisionTower(cfg["img"], cfg["patch"], cfg["vd"], cfg["vheads"], 4 * cfg["vd"], cfg["vlayers"], cfg["vd"])


def step_clip(cfg, out):
    d, imgs = load_data(out)
    vocab = load_vocab(out)
    torch.manual_seed(1)
    rng = random.Random(1)
    vit, txt = make_vit(cfg), TextEncoder(len(vocab), cfg["vd"], cfg["vd"])
    scale = torch.nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))
    params = list(vit.parameters()) + list(txt.parameters()) + [scale]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.05)
    train, x_all = d["train"], torch.from_numpy(imgs["train"])
    B, n = 4 * cfg["batch"], cfg["clip_steps"]
    sched = cosine(opt, n)
    for step in range(n):
        idx = rng.sample(range(len(train)), B)
        ids = [vocab.encode(rng.choice(train[i]["captions"])) for i in idx]
        tok = pad(ids)
        mask = pad([[1] * len(s) for s in ids])
        zi = F.normalize(vit.embed(normalize_images(x_all[idx])), dim=-1)
        zt = F.normalize(txt(tok, mask), dim=-1)
        logits = scale.exp() * zi @ zt.t()
        lab = torch.arange(B)
        loss = (F.cross_entropy(logits, lab) + F.cross_entropy(logits.t(), lab)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == n - 1:
            acc = (logits.argmax(1) == lab).float().mean().item()
            log("clip %d/%d loss %.3f in-batch i->t acc %.2f" % (step, n, loss.item(), acc))
    torch.save({"vit": vit.state_dict(), "txt": txt.state_dict()}, os.path.join(out, "clip.pt"))
    # frozen LLaVA features of every split, computed once
    vit.eval()
    with torch.no_grad():
        for k, x in imgs.items():
            f = torch.cat([vit.features(normalize_images(torch.from_numpy(x[i:i + 256])))
                           for i in range(0, len(x), 256)])
            torch.save(f, os.path.join(out, "feats_%s.pt" % k))
        # retrieval check on the test split: image -> its caption among the test captions
        ids = [vocab.encode(s["captions"][0]) for s in d["test"]]
        zt = F.normalize(txt(pad(ids), pad([[1] * len(s) for s in ids])), dim=-1)
        zi = F.normalize(vit.embed(normalize_images(torch.from_numpy(imgs["test"]))), dim=-1)
        r1 = ((zi @ zt.t()).argmax(1) == torch.arange(len(ids))).float().mean().item()
    log("clip: test image->caption recall@1 %.3f (among %d)" % (r1, len(ids)))
    return {"clip_loss": loss.item(), "clip_r1": r1}


# ------------------------------------------------------------------ LM pretraining
def lm_docs(scenes, vocab, rng):
    """Text documents: a caption followed by questions and answers about the same scene."""
    docs = []
    for s in scenes:
        parts = [rng.choice(s["captions"])]
        for smp in s["instruct"]:
            for q, a, _ in smp["turns"]:
                parts += [q, a]
        docs.append(([vocab.bos] + vocab.encode(" ".join(parts)))[:128])
    return docs


def make_lm(cfg, vocab):
    return Llama(len(vocab), cfg["e"], cfg["layers"], cfg["heads"], cfg["ff"], ctx=256)


def step_lm(cfg, out):
    d, _ = load_data(out)
    vocab = load_vocab(out)
    torch.manual_seed(2)
    rng = random.Random(2)
    docs = lm_docs(d["train"], vocab, rng)
    lm = make_lm(cfg, vocab)
    n, B = cfg["lm_steps"], cfg["batch"]
    opt = torch.optim.AdamW(lm.parameters(), lr=3e-3, weight_decay=0.05)
    sched = cosine(opt, n)
    for step in range(n):
        batch = [docs[i] for i in rng.sample(range(len(docs)), B)]
        ids = pad(batch)
        mask = pad([[1] * len(s) for s in batch])
        logits = lm(lm.tok_embd(ids[:, :-1]))
        loss = (F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
                * mask[:, 1:].reshape(-1)).sum() / mask[:, 1:].sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 10 == 0 or step == n - 1:
            log("lm %d/%d loss %.3f" % (step, n, loss.item()))
    torch.save(lm.state_dict(), os.path.join(out, "lm.pt"))
    return {"lm_loss": loss.item()}


# ------------------------------------------------------------------ multimodal batches
class Prompter:
    """The exact LLaVA-1.5 (vicuna_v1) token layout, chunked around the image as the C chat does:
    [<s> + SYSTEM + " USER: "] [image rows] ["\\n" + q1 + " ASSISTANT:"] [a1 </s>]
    ["USER: " + q2 + " ASSISTANT:"] [a2 </s>] ... (each text chunk SPM-prefixed separately)."""

    def __init__(self, vocab):
        self.v = vocab
        self.prefix = vocab.encode(SYSTEM + " USER: ", add_bos=True)

    def question(self, q, first=True):
        return self.v.encode(("\n" + q if first else "USER: " + q) + " ASSISTANT:")

    def suffix(self, turns):
        """Token ids after the image and the mask of tokens the loss is taken on."""
        ids, lab = [], []
        for t, (q, a) in enumerate(turns):
            qi = self.question(q, t == 0)
            ai = self.v.encode(a) + [self.v.eos]
            ids += qi + ai
            lab += [0] * len(qi) + [1] * len(ai)
        return ids, lab


def mm_forward(lm, proj, prompter, feats, suffixes):
    """Loss over answer tokens for a batch: feats [B,N,Dv], suffixes [(ids, lab)]."""
    B = feats.shape[0]
    P, N = len(prompter.prefix), feats.shape[1]
    prefix = []
    lm(lm.tok_embd(torch.tensor([prompter.prefix])), 0, prefix)     # shared system prompt, batch 1
    ids = pad([s[0] for s in suffixes])
    lab = pad([s[1] for s in suffixes])
    x = torch.cat([proj(feats), lm.tok_embd(ids)], 1)
    logits = lm(x[:, :-1], P, prefix=prefix)[:, N - 1:]      # predictions of suffix tokens
    l = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1), reduction="none")
    return (l * lab.reshape(-1)).sum() / lab.sum()


def train_mm(cfg, out, stage, lm, proj, samples, feats, n, lr, params, seed, B):
    prompter = Prompter(load_vocab(out))
    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = cosine(opt, n)
    for step in range(n):
        pick = [samples[i] for i in rng.sample(range(len(samples)), B)]
        f = feats[[p[0] for p in pick]]
        loss = mm_forward(lm, proj, prompter, f, [prompter.suffix(p[1]) for p in pick])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 10 == 0 or step == n - 1:
            log("%s %d/%d loss %.3f" % (stage, step, n, loss.item()))
    return loss.item()


def load_lm(cfg, out, name):
    lm = make_lm(cfg, load_vocab(out))
    lm.load_state_dict(torch.load(os.path.join(out, name)))
    return lm


def step_stage1(cfg, out):
    d, _ = load_data(out)
    feats = torch.load(os.path.join(out, "feats_train.pt"))
    lm = load_lm(cfg, out, "lm.pt")
    for p in lm.parameters():
        p.requires_grad_(False)
    proj = Projector(cfg["vd"], cfg["e"])
    samples = [(i, [t[:2] for t in s["brief"]["turns"]]) for i, s in enumerate(d["train"])]
    loss = train_mm(cfg, out, "stage1", lm, proj, samples, feats, cfg["s1_steps"], 2e-3,
                    list(proj.parameters()), 3, cfg["batch"])
    torch.save(proj.state_dict(), os.path.join(out, "proj1.pt"))
    return {"stage1_loss": loss}


def step_stage2(cfg, out):
    """Projector + LM on the instruction data. s2_rounds > 1 repeats the whole schedule (warm-up,
    cosine decay, fresh optimizer, new sample order) from the previous round's weights (preset demo-v1
    had two rounds; s2_resume=N starts at round N from lm2.pt/proj2.pt)."""
    d, _ = load_data(out)
    feats = torch.load(os.path.join(out, "feats_train.pt"))
    samples = [(i, [t[:2] for t in smp["turns"]]) for i, s in enumerate(d["train"]) for smp in s["instruct"]]
    first = cfg.get("s2_resume", 0)
    stats = {}
    for r in range(first, first + cfg.get("s2_rounds", 1)):
        lm = load_lm(cfg, out, "lm2.pt" if r else "lm.pt")
        proj = Projector(cfg["vd"], cfg["e"])
        proj.load_state_dict(torch.load(os.path.join(out, "proj2.pt" if r else "proj1.pt")))
        loss = train_mm(cfg, out, "stage2", lm, proj, samples, feats, cfg["s2_steps"], 2e-3,
                        list(lm.parameters()) + list(proj.parameters()), 4 + 100 * r,
                        cfg.get("s2_batch", cfg["batch"]))
        torch.save(lm.state_dict(), os.path.join(out, "lm2.pt"))
        torch.save(proj.state_dict(), os.path.join(out, "proj2.pt"))
        stats["stage2_round%d_loss" % (r + 1)] = loss
    if cfg.get("lm_f16"):
        round_f16_(lm)
        torch.save(lm.state_dict(), os.path.join(out, "lm2.pt"))
    stats["stage2_loss"] = loss
    return stats


def round_f16_(lm):
    """Rounds the LM's matrices to F16 values, so the F16 GGUF holds exactly the weights that the
    PyTorch evaluation uses (half the file size; vectors and the mmproj stay F32)."""
    with torch.no_grad():
        for p in lm.parameters():
            if p.dim() == 2:
                p.copy_(p.half().float())


# ------------------------------------------------------------------ export
def load_vit(cfg, out):
    vit = make_vit(cfg)
    vit.load_state_dict(torch.load(os.path.join(out, "clip.pt"))["vit"])
    return vit


def step_export(cfg, out):
    vocab = load_vocab(out)
    vit = load_vit(cfg, out)
    for tag, lmf, pf in (("stage1", "lm.pt", "proj1.pt"), ("stage2", "lm2.pt", "proj2.pt")):
        proj = Projector(cfg["vd"], cfg["e"])
        proj.load_state_dict(torch.load(os.path.join(out, pf)))
        export_mmproj(os.path.join(out, "%s-mmproj.gguf" % tag), vit, proj)
        f16 = tag == "stage2" and bool(cfg.get("lm_f16"))    # stage 1's LM was evaluated unrounded
        export_lm(os.path.join(out, "%s-lm.gguf" % tag), load_lm(cfg, out, lmf), vocab, f16=f16)
    log("export: " + ", ".join("%s %d B" % (f, os.path.getsize(os.path.join(out, f)))
                               for f in sorted(os.listdir(out)) if f.endswith(".gguf")))


# ------------------------------------------------------------------ evaluation
def test_questions(scenes):
    """Every test question asked alone with the image (one turn), with its kind."""
    qs = []
    for si, s in enumerate(scenes):
        for smp in s["instruct"]:
            for q, a, sub in smp["turns"]:
                qs.append({"scene": si, "kind": smp["kind"], "sub": sub, "q": q, "ref": a})
    return qs


@torch.no_grad()
def greedy(lm, prompter, feat, q, max_new=96):
    cache = []
    pre = lm.tok_embd(torch.tensor(prompter.prefix))
    x = torch.cat([pre, feat, lm.tok_embd(torch.tensor(prompter.question(q)))]).unsqueeze(0)
    logits = lm(x, 0, cache)
    pos, out = x.shape[1], []
    for _ in range(max_new):
        t = int(logits[0, -1].argmax())
        if t == prompter.v.eos:
            break
        out.append(t)
        logits = lm(lm.tok_embd(torch.tensor([[t]])), pos, cache)
        pos += 1
    return out


def score(items, scenes, key):
    res = {}
    for it in items:
        ok, nt, ns = instruct.judge(it[key], it["ref"], scenes[it["scene"]])
        r = res.setdefault(it["kind"], [0, 0, 0, 0])
        r[0] += ok
        r[1] += 1
        r[2] += nt
        r[3] += ns
    allr = [sum(r[i] for r in res.values()) for i in range(4)]
    res["all"] = allr
    return {k: {"acc": 100.0 * r[0] / r[1], "n": r[1], "fact_prec": 100.0 * r[2] / max(1, r[3])}
            for k, r in res.items()}


def eval_model(cfg, out, tag):
    """Greedy PyTorch answers of one model to every test question, cached in answers_<tag>.json."""
    path = os.path.join(out, "answers_%s.json" % tag)
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    d, _ = load_data(out)
    vocab = load_vocab(out)
    prompter = Prompter(vocab)
    feats = torch.load(os.path.join(out, "feats_test.pt"))
    lm = load_lm(cfg, out, {"stage1": "lm.pt", "stage2": "lm2.pt"}[tag]).eval()
    proj = Projector(cfg["vd"], cfg["e"])
    proj.load_state_dict(torch.load(os.path.join(out, {"stage1": "proj1.pt", "stage2": "proj2.pt"}[tag])))
    t0, emb, ans = time.time(), {}, []
    for it in test_questions(d["test"][:cfg.get("n_eval")]):
        si = it["scene"]
        if si not in emb:
            with torch.no_grad():
                emb[si] = proj(feats[si])
        ids = greedy(lm, prompter, emb[si], it["q"])
        ans.append({"ids": ids, "text": vocab.decode(ids)})
    log("eval %s: %d questions in %.0f s" % (tag, len(ans), time.time() - t0))
    with open(path, "w") as f:
        json.dump(ans, f)
    return ans


def step_eval1(cfg, out):
    eval_model(cfg, out, "stage1")


def step_eval(cfg, out):
    d, _ = load_data(out)
    scenes = d["test"]
    qs = test_questions(scenes[:cfg.get("n_eval")])
    for tag in ("stage1", "stage2"):
        for it, a in zip(qs, eval_model(cfg, out, tag)):
            it[tag + "_ids"], it[tag] = a["ids"], a["text"]
    for it in qs:      # text-only reference: the generator (our GPT-4) reading the caption
        sc = scenes[it["scene"]]
        cap_scene = instruct.scene_from_caption(sc["captions"][0])
        smps = instruct.instruct_samples(cap_scene, "instr-" + sc["id"])
        it["text_ref"] = {q: a for smp in smps for q, a, _ in smp["turns"]}.get(it["q"], "")
    table = {tag: score(qs, scenes, tag) for tag in ("stage1", "stage2", "text_ref")}
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump({"questions": qs, "table": table}, f)
    log("eval: " + json.dumps({k: {kk: round(vv["acc"], 1) for kk, vv in v.items()} for k, v in table.items()}))
    return table


# ------------------------------------------------------------------ main
def cpu_seconds():
    """User + system CPU time of this process (all its threads) so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def blas_note():
    """Debian's torch calls the system BLAS (libblas.so.3). The reference (netlib) one runs matrix
    products at ~5 GFLOP/s; OpenBLAS (apt-get install libopenblas0-openmp) makes training ~13x faster."""
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"):
        p = os.path.join(d, "libblas.so.3")
        if os.path.exists(p):
            real = os.path.realpath(p)
            log("BLAS: %s%s" % (real, "" if "openblas" in real else
                                "  (reference BLAS: install libopenblas0-openmp, training is ~13x faster)"))
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    ap.add_argument("--from", dest="start", default="data", choices=STEPS)
    ap.add_argument("--to", dest="stop", default="eval", choices=STEPS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], help="override a preset value: KEY=INT")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    blas_note()
    cfg = dict(PRESETS[a.preset])
    for kv in a.set:
        k, v = kv.split("=")
        cfg[k] = int(v)
    os.makedirs(a.out, exist_ok=True)
    for name in STEPS[STEPS.index(a.start):STEPS.index(a.stop) + 1]:
        t0, c0 = time.time(), cpu_seconds()
        r = globals()["step_" + name](cfg, a.out)
        stats = {"seconds": round(time.time() - t0, 1), "cpu_seconds": round(cpu_seconds() - c0, 1),
                 "threads": a.threads, "preset": a.preset}
        if isinstance(r, dict) and name != "eval":
            stats.update(r)
        with open(os.path.join(a.out, "stats_%s.json" % name), "w") as f:   # one file per step:
            json.dump(stats, f, indent=1)                                   # steps may run in parallel
        log("step %s done in %.0f s" % (name, time.time() - t0))


if __name__ == "__main__":
    main()
