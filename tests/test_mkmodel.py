#!/usr/bin/python3
"""Check llava-mkmodel's output with the independent Python GGUF reader (tests/reference/gguf.py):
every key (name, type, value) and every tensor (name, ne, type, order, offset) must match the
layout that shared/spec/llava-format.md §3 (legacy mmproj) and §6 (llama LM) describe, for several
option sets (GQA, tied output, GELU, linear projector, 224 px, f32 weights, RoPE scaling, copied
vocabulary). Also: weight statistics, determinism, per-tensor PRNG streams, bad options, and that
the reference model (llava_ref.py) loads the files and runs.
Exit 0 pass, 1 fail, 77 skip (no numpy or no built llava-mkmodel)."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy missing")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LLAVA_SRCDIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "reference"))
import gguf  # noqa: E402

BUILD = os.environ.get("LLAVA_BUILDDIR", "")
TOOL = os.path.join(BUILD, "llava-mkmodel")
DATA = os.environ.get("LLAVA_TEST_DATA") or os.path.join(SRC, "..", "shared", "data")
VOCAB = os.path.join(DATA, "vocab", "ggml-vocab-llama-spm.gguf")
F32, F16 = gguf.F32, gguf.F16
U32, I32, F32V, BOOL, STR, ARR = gguf.UINT32, gguf.INT32, gguf.FLOAT32, gguf.BOOL, gguf.STRING, gguf.ARRAY
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

failures = []


def check(cond, msg):
    if not cond:
        print("FAIL " + msg)
        failures.append(msg)
    return cond


def run(args, expect_rc=0):
    p = subprocess.run([TOOL] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check(p.returncode == expect_rc, "llava-mkmodel %s: exit %d, expected %d\n%s" %
          (" ".join(args), p.returncode, expect_rc, p.stderr))
    return p


# ---- expected layouts, from the spec tables ----

def lm_expected(c):
    """(ordered list of (name, ne, type)) for the llama LM, spec 6.2."""
    E, L, F, V, w = c["n_embd"], c["n_layer"], c["n_ff"], c["n_vocab"], c["wtype"]
    hd = E // c["n_head"]
    Hk = hd * c["n_head_kv"]
    t = [("token_embd.weight", (E, V), w)]
    for i in range(L):
        p = "blk.%d." % i
        t += [(p + "attn_norm.weight", (E,), F32), (p + "attn_q.weight", (E, E), w),
              (p + "attn_k.weight", (E, Hk), w), (p + "attn_v.weight", (E, Hk), w),
              (p + "attn_output.weight", (E, E), w), (p + "ffn_norm.weight", (E,), F32),
              (p + "ffn_gate.weight", (E, F), w), (p + "ffn_up.weight", (E, F), w),
              (p + "ffn_down.weight", (F, E), w)]
    t.append(("output_norm.weight", (E,), F32))
    if not c["tied"]:
        t.append(("output.weight", (E, V), w))
    return t


def mm_expected(c):
    """Legacy converter layout, spec 3.2 (ffn_down = fc1 [D,F], ffn_up = fc2 [F,D])."""
    D, F, P, E, w = c["v_embd"], c["v_ff"], c["patch"], c["n_embd"], c["wtype"]
    n_pos = (c["vision_size"] // P) ** 2 + 1
    t = [("mm.0.weight", (D * max(1, len(c.get("feature_layer", []))), E), w), ("mm.0.bias", (E,), F32)]
    if c["projector"] == "mlp":
        t += [("mm.2.weight", (E, E), w), ("mm.2.bias", (E,), F32)]
    t += [("v.class_embd", (D,), F32), ("v.patch_embd.weight", (P, P, 3, D), F16),
          ("v.position_embd.weight", (D, n_pos), w), ("v.pre_ln.weight", (D,), F32), ("v.pre_ln.bias", (D,), F32)]
    for i in range(c["v_layer"]):
        p = "v.blk.%d." % i
        for n in ("attn_k", "attn_v", "attn_q", "attn_out"):
            t += [(p + n + ".weight", (D, D), w), (p + n + ".bias", (D,), F32)]
        t += [(p + "ln1.weight", (D,), F32), (p + "ln1.bias", (D,), F32),
              (p + "ffn_down.weight", (D, F), w), (p + "ffn_down.bias", (F,), F32),
              (p + "ffn_up.weight", (F, D), w), (p + "ffn_up.bias", (D,), F32),
              (p + "ln2.weight", (D,), F32), (p + "ln2.bias", (D,), F32)]
    if c.get("post_ln"):
        t += [("v.post_ln.weight", (D,), F32), ("v.post_ln.bias", (D,), F32)]
    return t


def check_tensors(r, want, label):
    got = [(n, r.tensors[n].ne, r.tensors[n].type) for n in r.tensor_order]
    if not check([n for n, _, _ in got] == [n for n, _, _ in want], "%s: tensor names/order\n got  %s\n want %s"
                 % (label, [n for n, _, _ in got], [n for n, _, _ in want])):
        return
    for (n, ne, t), (_, ne_w, t_w) in zip(got, want):
        check(tuple(ne) == tuple(ne_w), "%s: %s ne %s, want %s" % (label, n, ne, ne_w))
        check(t == t_w, "%s: %s type %s, want %s" % (label, n, gguf.type_name(t), gguf.type_name(t_w)))
    probs = r.check_strict_layout()
    check(not probs, "%s: llama.cpp strict offset layout: %s" % (label, probs))


def check_key(r, key, vtype, value, label, etype=None):
    if not check(key in r.meta, "%s: key %s missing" % (label, key)):
        return
    vt, et = r.meta_type(key)
    check(vt == vtype and et == etype, "%s: key %s type (%s,%s), want (%s,%s)" % (label, key, vt, et, vtype, etype))
    v = r.meta[key]
    if vtype == F32V:
        ok = abs(v - value) <= 1e-6 * max(1.0, abs(value))
    elif vtype == ARR and etype == F32V:
        ok = np.allclose(v, value, rtol=1e-6, atol=0)
    elif vtype == ARR:
        ok = np.array_equal(np.asarray(v), np.asarray(value))
    else:
        ok = v == value
    check(ok, "%s: key %s = %r, want %r" % (label, key, v, value))


def check_lm(path, c):
    r = gguf.GGUFFile(path)
    label = os.path.basename(path)
    hd = c["n_embd"] // c["n_head"]
    keys = [("general.architecture", STR, "llama"), ("llama.context_length", U32, c["n_ctx"]),
            ("llama.embedding_length", U32, c["n_embd"]), ("llama.block_count", U32, c["n_layer"]),
            ("llama.feed_forward_length", U32, c["n_ff"]), ("llama.attention.head_count", U32, c["n_head"]),
            ("llama.attention.head_count_kv", U32, c["n_head_kv"]),
            ("llama.attention.layer_norm_rms_epsilon", F32V, c["rms_eps"]),
            ("llama.rope.dimension_count", U32, hd), ("llama.rope.freq_base", F32V, c["rope_base"]),
            ("llama.vocab_size", U32, c["n_vocab"]),
            ("general.file_type", U32, 0 if c["wtype"] == F32 else 1),
            ("tokenizer.ggml.model", STR, "llama"), ("tokenizer.ggml.bos_token_id", U32, 1),
            ("tokenizer.ggml.eos_token_id", U32, 2), ("tokenizer.ggml.unknown_token_id", U32, 0),
            ("tokenizer.ggml.add_bos_token", BOOL, True), ("tokenizer.ggml.add_eos_token", BOOL, False)]
    if c.get("rope_scale"):
        keys += [("llama.rope.scaling.type", STR, "linear"), ("llama.rope.scaling.factor", F32V, c["rope_scale"])]
    for k, t, v in keys:
        check_key(r, k, t, v, label)
    check(r.meta_type("tokenizer.ggml.tokens") == (ARR, STR), "%s: tokens must be a string array" % label)
    check(r.meta_type("tokenizer.ggml.scores") == (ARR, F32V), "%s: scores must be a float32 array" % label)
    check(r.meta_type("tokenizer.ggml.token_type") == (ARR, I32), "%s: token_type must be an int32 array" % label)
    toks = r.meta["tokenizer.ggml.tokens"]
    check(len(toks) == c["n_vocab"] == len(r.meta["tokenizer.ggml.scores"]) == len(r.meta["tokenizer.ggml.token_type"]),
          "%s: vocabulary arrays have %d entries, want %d" % (label, len(toks), c["n_vocab"]))
    # LLaMA layout of the first 259 tokens (spec 8.1), builtin or copied
    check(toks[:3] == ["<unk>", "<s>", "</s>"] and toks[3] == "<0x00>" and toks[258] == "<0xFF>",
          "%s: special and byte tokens" % label)
    tt = r.meta["tokenizer.ggml.token_type"]
    check(list(tt[:3]) == [2, 3, 3] and all(tt[3:259] == 6) and all(tt[259:] == 1), "%s: token types" % label)
    if c.get("vocab"):
        v = gguf.GGUFFile(c["vocab"])
        for k in v.key_order:
            if not k.startswith("tokenizer."):
                continue
            same = k in r.meta and r.meta_type(k) == v.meta_type(k)
            if same:
                a, b = r.meta[k], v.meta[k]
                same = (np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b)
            check(same, "%s: tokenizer key %s not copied exactly" % (label, k))
        extra = [k for k in r.key_order if k.startswith("tokenizer.") and k not in v.meta]
        check(not extra, "%s: extra tokenizer keys %s" % (label, extra))
        check(not [k for k in r.key_order if k.startswith("general.") and k in v.meta and r.meta[k] != v.meta[k]
                   and k != "general.file_type" and k != "general.name"], "%s: general.* leaked from vocab" % label)
    check_tensors(r, lm_expected(c), label)
    # weight statistics: norms ~ 1 +- 0.1, matrices ~ zero-mean, token_embd std ~ 1
    E = c["n_embd"]
    a = r.array("blk.0.attn_norm.weight")
    check(abs(a.mean() - 1) < 0.05 and 0.05 < a.std() < 0.2, "%s: attn_norm mean %.3f std %.3f" % (label, a.mean(), a.std()))
    a = r.array("token_embd.weight")
    check(abs(a.mean()) < 0.05 and 0.9 < a.std() < 1.1, "%s: token_embd std %.3f" % (label, a.std()))
    a = r.array("blk.0.attn_q.weight")
    s = 1.7 / np.sqrt(E)
    check(abs(a.mean()) < 0.2 * s and 0.85 * s < a.std() < 1.15 * s, "%s: attn_q std %.4f want ~%.4f" % (label, a.std(), s))
    check(np.isfinite(r.array("blk.0.ffn_down.weight")).all(), "%s: finite weights" % label)
    r.close()


def check_mm(path, c):
    r = gguf.GGUFFile(path)
    label = os.path.basename(path)
    keys = [("general.architecture", STR, "clip"), ("clip.has_text_encoder", BOOL, False),
            ("clip.has_vision_encoder", BOOL, True), ("clip.has_llava_projector", BOOL, True),
            ("general.file_type", U32, 0 if c["wtype"] == F32 else 1),
            ("clip.projector_type", STR, c["projector"]),
            ("clip.vision.image_size", U32, c["vision_size"]), ("clip.vision.patch_size", U32, c["patch"]),
            ("clip.vision.embedding_length", U32, c["v_embd"]), ("clip.vision.feed_forward_length", U32, c["v_ff"]),
            ("clip.vision.projection_dim", U32, c.get("proj_dim", c["n_embd"])),
            ("clip.vision.attention.head_count", U32, c["v_head"]),
            ("clip.vision.attention.layer_norm_epsilon", F32V, 1e-5),
            ("clip.vision.block_count", U32, c["v_layer"]), ("clip.use_gelu", BOOL, c["gelu"])]
    for k, t, v in keys:
        check_key(r, k, t, v, label)
    check_key(r, "clip.vision.image_mean", ARR, CLIP_MEAN, label, F32V)
    check_key(r, "clip.vision.image_std", ARR, CLIP_STD, label, F32V)
    if c.get("feature_layer"):
        check_key(r, "clip.vision.feature_layer", ARR, c["feature_layer"], label, I32)
    else:
        check("clip.vision.feature_layer" not in r.meta, "%s: feature_layer written without --feature-layer" % label)
    check(not any(k.startswith("tokenizer.") or k.startswith("llama.") for k in r.meta), "%s: stray keys" % label)
    check_tensors(r, mm_expected(c), label)
    a = r.array("v.blk.0.ln1.weight")
    check(abs(a.mean() - 1) < 0.1, "%s: ln1 mean %.3f" % (label, a.mean()))
    r.close()


TINY = dict(n_embd=128, n_layer=2, n_head=4, n_head_kv=2, n_ff=256, n_ctx=2048, rms_eps=1e-5, rope_base=10000.0,
            n_vocab=380, tied=False, wtype=F16, vision_size=336, patch=14, v_embd=64, v_layer=2, v_head=4,
            v_ff=128, gelu=False, projector="mlp")


M64 = (1 << 64) - 1


def prng_values(seed, name, n, mean, std):
    h = 1469598103934665603
    for b in name.encode():
        h = ((h ^ b) * 1099511628211) & M64
    state = [(seed ^ h) & M64]

    def nxt():
        state[0] = (state[0] + 0x9E3779B97F4A7C15) & M64
        z = state[0]
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    nxt()
    out = []
    for _ in range(n):
        u = [(nxt() >> 11) * 2.0 ** -53 for _ in range(4)]
        z = (((u[0] + u[1]) + u[2]) + u[3] - 2.0) * 1.7320508075688772
        out.append(mean + std * z)
    return out


def reference_smoke(lm_path, mm_path, c, image):
    """The independent reference must load the pair and produce sane shapes/values."""
    try:
        import torch
        import llava_ref
    except ImportError:
        print("note: torch missing, reference smoke test skipped")
        return
    torch.set_num_threads(1)
    with torch.no_grad():
        clip = llava_ref.ClipRef(mm_path)
        check(clip.legacy_swap, "reference detects the legacy ffn naming in %s" % mm_path)
        e = clip.encode(image)
        n_tok = (c["vision_size"] // c["patch"]) ** 2
        check(tuple(e.shape) == (n_tok, c["n_embd"]), "reference embd shape %s" % (tuple(e.shape),))
        check(bool(torch.isfinite(e).all()) and 0.05 < float(e.std()) < 20, "reference embd std %.3g" % float(e.std()))
        lm = llava_ref.LlamaRef(lm_path)
        check(lm.tied == c["tied"], "reference sees tied=%s" % lm.tied)
        x = torch.cat([lm.embed([1, 5, 6]), e[:8].to(lm.dtype)])
        ids, lg = lm.greedy(x, 4)
        check(len(ids) == 4 and bool(torch.isfinite(lg[0]).all()) and float(lg[0].std()) > 1,
              "reference greedy on mkmodel LM: %s, logit std %.3g" % (ids, float(lg[0].std())))


def main():
    if not os.path.exists(TOOL):
        print("SKIP: %s not built" % TOOL)
        return 77
    image = os.path.join(DATA, "images", "test-1.jpeg")
    with tempfile.TemporaryDirectory() as d:
        P = lambda n: os.path.join(d, n)  # noqa: E731
        # 1. defaults (= --preset tiny), built-in vocabulary
        run(["--out-lm", P("a-lm.gguf"), "--out-mmproj", P("a-mm.gguf")])
        check_lm(P("a-lm.gguf"), TINY)
        check_mm(P("a-mm.gguf"), TINY)
        print("ok   default tiny pair")
        # 2. GQA 8:1, tied, GELU, linear projector, 224 px, f32, RoPE scaling, copied vocabulary
        c = dict(TINY, n_embd=64, n_head=8, n_head_kv=1, n_ff=96, n_layer=3, tied=True, gelu=True,
                 projector="linear", vision_size=224, v_layer=3, v_embd=32, v_head=2, v_ff=80, wtype=F32,
                 rope_base=500000.0, rope_scale=4.0, rms_eps=1e-6, n_ctx=4096, proj_dim=48)
        args = ["--n-embd", "64", "--n-head", "8", "--n-head-kv", "1", "--n-ff", "96", "--n-layer", "3", "--tied",
                "--gelu", "--projector", "linear", "--vision-size", "224", "--v-layer", "3", "--v-embd", "32",
                "--v-head", "2", "--v-ff", "80", "--wtype", "f32", "--rope-base", "500000", "--rope-scale", "4",
                "--rms-eps", "1e-6", "--n-ctx", "4096", "--proj-dim", "48", "--seed", "9"]
        if os.path.exists(VOCAB):
            args += ["--vocab", VOCAB]
            c.update(vocab=VOCAB, n_vocab=32000)
        run(args + ["--out-lm", P("b-lm.gguf"), "--out-mmproj", P("b-mm.gguf")])
        check_lm(P("b-lm.gguf"), c)
        check_mm(P("b-mm.gguf"), c)
        print("ok   GQA/tied/gelu/linear/224px/f32/rope-scale/vocab pair")
        # 3. presets: clip-l-336 vision (spec 3.1/3.2 numbers), mmproj only
        run(["--preset", "clip-l-336", "--n-embd", "256", "--n-head", "4", "--v-layer", "1", "--out-mmproj", P("c-mm.gguf")])
        cl = dict(TINY, n_embd=256, v_embd=1024, v_layer=1, v_head=16, v_ff=4096, proj_dim=768)
        check_mm(P("c-mm.gguf"), cl)
        print("ok   clip-l-336 preset (1 block)")
        run(["--feature-layer", "1,3", "--v-layer", "3", "--post-ln", "--out-mmproj", P("f-mm.gguf")])
        check_mm(P("f-mm.gguf"), dict(TINY, v_layer=3, feature_layer=[1, 3], post_ln=True))
        run(["--feature-layer", "4", "--v-layer", "3", "--out-mmproj", P("x.gguf")], expect_rc=2)
        run(["--feature-layer", "1,,2", "--out-mmproj", P("x.gguf")], expect_rc=2)
        print("ok   feature_layer / post-LN")
        # 4. determinism and per-tensor streams
        run(["--out-lm", P("a2-lm.gguf"), "--out-mmproj", P("a2-mm.gguf")])
        for n in ("lm", "mm"):
            check(open(P("a-%s.gguf" % n), "rb").read() == open(P("a2-%s.gguf" % n), "rb").read(),
                  "same options give byte-identical %s files" % n)
        run(["--out-lm", P("s-lm.gguf"), "--seed", "43", "--tied"])
        ra, rs = gguf.GGUFFile(P("a-lm.gguf")), gguf.GGUFFile(P("s-lm.gguf"))
        check(not np.array_equal(ra.raw("blk.0.attn_q.weight"), rs.raw("blk.0.attn_q.weight")),
              "another seed gives other weights")
        run(["--out-lm", P("t-lm.gguf"), "--tied"])
        rt = gguf.GGUFFile(P("t-lm.gguf"))
        check(np.array_equal(ra.raw("token_embd.weight"), rt.raw("token_embd.weight")) and
              np.array_equal(ra.raw("blk.1.ffn_down.weight"), rt.raw("blk.1.ffn_down.weight")),
              "--tied leaves the other tensors unchanged (per-name PRNG streams)")
        # The PRNG re-implemented here (splitmix64 seeded with seed ^ FNV-1a(name), normal = (sum of
        # 4 uniforms - 2) * sqrt(3)) must give exactly the stored values: F32 vectors bit for bit.
        got = gguf.GGUFFile(P("a-mm.gguf")).array("v.class_embd")
        want = np.array(prng_values(42, "v.class_embd", len(got), 0.0, 0.5), np.float32)
        check(np.array_equal(got, want), "PRNG stream of v.class_embd: %s vs %s" % (got[:3], want[:3]))
        got = gguf.GGUFFile(P("a-lm.gguf")).array("blk.1.ffn_norm.weight")
        want = np.array(prng_values(42, "blk.1.ffn_norm.weight", len(got), 1.0, 0.1), np.float32)
        check(np.array_equal(got, want), "PRNG stream of blk.1.ffn_norm.weight")
        print("ok   determinism")
        # 5. bad options
        run([], expect_rc=2)
        run(["--out-lm", P("x.gguf"), "--n-embd", "100", "--n-head", "3"], expect_rc=2)
        run(["--out-lm", P("x.gguf"), "--n-head", "4", "--n-head-kv", "3"], expect_rc=2)
        run(["--out-mmproj", P("x.gguf"), "--vision-size", "300"], expect_rc=2)
        run(["--out-lm", P("x.gguf"), "--wtype", "q4_0"], expect_rc=2)
        run(["--out-lm", P("x.gguf"), "--preset", "nope"], expect_rc=2)
        run(["--out-lm", P("x.gguf"), "--preset", "tinyllama"], expect_rc=2)
        run(["--out-lm", P("x.gguf"), "--bogus"], expect_rc=2)
        run(["--out-lm", os.path.join(d, "no-such-dir", "x.gguf")], expect_rc=1)
        print("ok   bad options rejected")
        # 6. the reference runs the files
        reference_smoke(P("a-lm.gguf"), P("a-mm.gguf"), TINY, image)
        reference_smoke(P("b-lm.gguf"), P("b-mm.gguf"), c, image)
        print("ok   reference loads and runs mkmodel pairs")
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
