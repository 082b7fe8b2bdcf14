#!/usr/bin/python3
"""The LLaVA family through the common paths: LLaVA-1.6-Vicuna, LLaVA-1.6-Mistral, BakLLaVA-1 and
ShareGPT4V-7B. For each, llava-mkmodel --preset FAMILY writes a small random-weight pair (tiny
sizes, the real 32000-token LLaMA SentencePiece vocabulary) and the test checks:

 1. the layout, read with the independent GGUF reader (tests/reference/gguf.py) against values
    written out here from the families' published facts (not read back from the C code):
    LM: llama arch, KV heads = heads (Vicuna) or heads/4 (Mistral-7B: 32 query / 8 KV heads),
    RoPE base 1e4 or 1e6 (Mistral-7B-Instruct-v0.2 under LLaVA-1.6-Mistral), training context
    4096 (Vicuna-v1.5) or 32768 (Mistral-7B), RMS eps 1e-5, 32000 tokens, untied output, every
    llama tensor name and shape, no tokenizer.chat_template; mmproj: the legacy CLIP/mlp layout
    (mm.0 -> mm.2, fc1 stored as "ffn_down", F16 patch embedding, 577 position rows) and for 1.6
    the any-res keys (pinpoints 336x672 672x336 672x672 1008x336 336x1008 as an INT32 array,
    mm_patch_merge_type "spatial_unpad", the 1.6 config keys) and model.image_newline;
 2. one chat turn (image, then a question) through the C chat helper (public API via ctypes),
    with LLAVA_TEMPLATE_AUTO, against the PyTorch reference (tests/reference/llava_ref.py; the
    any-res merge in anyres_ref.py) which builds the prompt by itself from the reference LLaVA
    conversation templates written out below, tokenized by the SentencePiece algorithm
    implemented here (spec 8.3; checked first on the llama-spm vocabulary's test vectors):
      - the template AUTO picks (vicuna_v1 for all but LLaVA-1.6-Mistral, whose LM has no
        template and is recognised by its GQA + RoPE base 1e6; also with a Mistral-Instruct
        tokenizer.chat_template added),
      - the exact token sequence the chat evaluated (read from the session state's history,
        image rows as -1) = the reference's, including the image token count (also checked
        against llava_vision_n_tokens_for),
      - the image embeddings (rel err <= 1e-4),
      - the first-step logits, F32 KV cache: max|C - ref| / max|ref| <= 1e-4,
      - N_GREEDY greedy tokens identical to the reference's free-running greedy path.
Exit 0 pass, 1 fail, 77 skip (no torch/numpy/PIL, or libllava / llava-mkmodel not built)."""
import ctypes as C
import heapq
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from PIL import Image
except ImportError as e:
    print("SKIP: %s" % e)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LLAVA_SRCDIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "reference"))
import anyres_ref  # noqa: E402
import gguf  # noqa: E402
import llava_c  # noqa: E402
import llava_ref  # noqa: E402

BUILD = os.environ.get("LLAVA_BUILDDIR", "")
TOOL = os.path.join(BUILD, "llava-mkmodel")
DATA = os.environ.get("LLAVA_TEST_DATA") or os.path.join(SRC, "..", "shared", "data")
VOCAB = os.path.join(DATA, "vocab", "ggml-vocab-llama-spm.gguf")
IMAGE = os.path.join(DATA, "images", "test-1.jpeg")    # 640x488: the 1.6 grid is 2x2 (672x672)

EMBD_TOL = 1e-4
LOGIT_TOL = 1e-4       # F32 KV cache
N_GREEDY = 8
QUESTION = "What is in the picture?"

# ---- the reference LLaVA conversation templates (llava/conversation.py), one user turn ----
# vicuna_v1: sep_style TWO, sep " ", sep2 "</s>", roles USER/ASSISTANT; the image message is
# "<image>\n" + question.
VICUNA_SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the human's questions.")
VICUNA_V1 = VICUNA_SYSTEM + " USER: <image>\n" + QUESTION + " ASSISTANT:"
# mistral_instruct: sep_style LLAMA_2, empty system (so no <<SYS>> block), sep "", sep2 "</s>":
# "[INST] " + message + " [/INST]".
MISTRAL_INSTRUCT = "[INST] <image>\n" + QUESTION + " [/INST]"
# Mistral-7B-Instruct-v0.2's tokenizer_config chat_template (shortened to its essentials).
MISTRAL_CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
                         "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
                         "'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}")

TEMPLATE_LLAVA_1_5, TEMPLATE_MISTRAL = 1, 2   # enum llava_template
PINPOINTS_1_6 = [336, 672, 672, 336, 672, 672, 1008, 336, 336, 1008]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# family -> (conversation template, query heads per KV head, RoPE base, training context, any-res)
FAMILIES = {
    "llava16-vicuna": (VICUNA_V1, TEMPLATE_LLAVA_1_5, 1, 1e4, 4096, True),
    "llava16-mistral": (MISTRAL_INSTRUCT, TEMPLATE_MISTRAL, 4, 1e6, 32768, True),
    "bakllava": (VICUNA_V1, TEMPLATE_LLAVA_1_5, 4, 1e4, 32768, False),
    "sharegpt4v": (VICUNA_V1, TEMPLATE_LLAVA_1_5, 1, 1e4, 4096, False),
}

failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)
    return cond


def rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max() / np.abs(b).max())


# =====================================================================
# SentencePiece tokenizer (spec 8.2-8.3), independent of the C one
# =====================================================================

class Spm:
    CONTROL, UNKNOWN, USER_DEFINED = 3, 2, 4

    def __init__(self, path):
        r = gguf.GGUFFile(path)
        self.tokens = list(r.meta["tokenizer.ggml.tokens"])
        self.scores = [float(s) for s in r.meta["tokenizer.ggml.scores"]]
        types = [int(t) for t in r.meta["tokenizer.ggml.token_type"]]
        self.bos = int(r.meta.get("tokenizer.ggml.bos_token_id", 1))
        r.close()
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.special = sorted(((t, i) for i, t in enumerate(self.tokens)
                               if types[i] in (self.CONTROL, self.UNKNOWN, self.USER_DEFINED)),
                              key=lambda ti: -len(ti[0]))

    def _fragment(self, text):
        """One raw-text fragment (space prefix already applied)."""
        syms = list(text.replace(" ", "\u2581"))
        if not syms:
            return []
        nxt = list(range(1, len(syms))) + [-1]
        heap = []

        def push(left, right):
            if left < 0 or right < 0:
                return
            s = syms[left] + syms[right]
            if s in self.ids:
                heapq.heappush(heap, (-self.scores[self.ids[s]], left, right, len(s)))

        for i in range(len(syms) - 1):
            push(i, i + 1)
        prev = [-1] + list(range(len(syms) - 1))
        while heap:
            _, left, right, size = heapq.heappop(heap)
            if not syms[left] or not syms[right] or len(syms[left]) + len(syms[right]) != size:
                continue
            syms[left] += syms[right]
            syms[right] = ""
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prev[nxt[right]] = left
            push(prev[left], left)
            push(left, nxt[left])
        out = []
        for s in syms:
            if not s:
                continue
            if s in self.ids:
                out.append(self.ids[s])
            else:  # byte fallback
                out += [self.ids["<0x%02X>" % b] for b in s.encode("utf-8")]
        return out

    def encode(self, text, add_bos=False, parse_special=False):
        out = [self.bos] if add_bos else []
        pieces, i, start = [], 0, 0
        while parse_special and i < len(text):
            for t, tid in self.special:
                if text.startswith(t, i):
                    pieces += [text[start:i], tid]
                    i += len(t)
                    start = i
                    break
            else:
                i += 1
        pieces.append(text[start:])
        after_special = True   # the first fragment gets the prefix too
        for p in pieces:
            if isinstance(p, int):
                out.append(p)
                after_special = True
            elif p:
                out += self._fragment((" " if after_special else "") + p)
                after_special = False
        return out


def check_tokenizer(spm):
    """The tokenizer above against the vocabulary's own test vectors (made by llama.cpp)."""
    inp = open(VOCAB + ".inp", encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
    out = open(VOCAB + ".out", encoding="utf-8").read().strip("\n").split("\n")
    bad = [i for i, (s, o) in enumerate(zip(inp, out))
           if spm.encode(s) != [int(v) for v in o.split()]]
    check(len(inp) >= 40 and len(out) >= len(inp) - 1 and not bad,
          "reference SentencePiece tokenizer matches %d llama-spm test vectors (mismatches: %s)"
          % (min(len(inp), len(out)), bad))


def reference_prompt(spm, conversation):
    """tokenizer_image_token of the reference LLaVA: split at <image>, tokenize each chunk (BOS
    only on the first), the image in between. Returns (ids before, ids after)."""
    before, after = conversation.split("<image>")
    return spm.encode(before, add_bos=True), spm.encode(after)


# =====================================================================
# layout
# =====================================================================

def check_layout(fam, lm_path, mm_path):
    _conv, _tmpl, kv_div, rope, ctx, anyres = FAMILIES[fam]
    r = gguf.GGUFFile(lm_path)
    m, T = r.meta, r.tensors
    E, L = int(m["llama.embedding_length"]), int(m["llama.block_count"])
    H, Hkv = int(m["llama.attention.head_count"]), int(m["llama.attention.head_count_kv"])
    F, hd = int(m["llama.feed_forward_length"]), E // H
    V = len(m["tokenizer.ggml.tokens"])
    ok = [m["general.architecture"] == "llama", Hkv * kv_div == H, float(m["llama.rope.freq_base"]) == rope,
          int(m["llama.context_length"]) == ctx,
          abs(float(m["llama.attention.layer_norm_rms_epsilon"]) - 1e-5) < 1e-9,
          int(m["llama.rope.dimension_count"]) == hd, int(m["llama.vocab_size"]) == 32000 == V,
          m["tokenizer.ggml.model"] == "llama", "tokenizer.chat_template" not in m,
          r.meta_type("llama.attention.head_count_kv")[0] == gguf.UINT32,
          r.meta_type("llama.rope.freq_base")[0] == gguf.FLOAT32]
    want = {"token_embd.weight": (E, V), "output_norm.weight": (E,), "output.weight": (E, V)}
    for i in range(L):
        p = "blk.%d." % i
        want.update({p + "attn_norm.weight": (E,), p + "attn_q.weight": (E, E), p + "attn_k.weight": (E, hd * Hkv),
                     p + "attn_v.weight": (E, hd * Hkv), p + "attn_output.weight": (E, E),
                     p + "ffn_norm.weight": (E,), p + "ffn_gate.weight": (E, F), p + "ffn_up.weight": (E, F),
                     p + "ffn_down.weight": (F, E)})
    got = {n: tuple(t.ne) for n, t in T.items()}
    ok.append(got == want)
    ok.append(all(T[n].type == gguf.F32 for n in want if len(want[n]) == 1))
    r.close()
    check(all(ok), "%s LM layout: llama, %d heads / %d KV heads, rope base %g, ctx %d, 32000 SPM tokens, "
          "untied, no chat template (want: 1/%d KV heads, base %g, ctx %d; checks %s)"
          % (fam, H, Hkv, float(m["llama.rope.freq_base"]), int(m["llama.context_length"]), kv_div, rope, ctx, ok))

    r = gguf.GGUFFile(mm_path)
    m, T = r.meta, r.tensors
    D, F_v, B = int(m["clip.vision.embedding_length"]), int(m["clip.vision.feed_forward_length"]), \
        int(m["clip.vision.block_count"])
    ok = [m["general.architecture"] == "clip", m["clip.projector_type"] == "mlp",
          m["clip.has_vision_encoder"] is True or m["clip.has_vision_encoder"] == 1,
          m["clip.has_llava_projector"] in (True, 1), m["clip.use_gelu"] in (False, 0),
          int(m["clip.vision.image_size"]) == 336, int(m["clip.vision.patch_size"]) == 14,
          np.allclose(m["clip.vision.image_mean"], CLIP_MEAN, atol=1e-7),
          np.allclose(m["clip.vision.image_std"], CLIP_STD, atol=1e-7)]
    anyres_keys = {"clip.vision.image_grid_pinpoints": ((gguf.ARRAY, gguf.INT32), PINPOINTS_1_6),
                   "clip.vision.mm_patch_merge_type": ((gguf.STRING, None), "spatial_unpad"),
                   "clip.vision.image_aspect_ratio": ((gguf.STRING, None), "anyres"),
                   "clip.vision.image_crop_resolution": ((gguf.UINT32, None), 224),
                   "clip.vision.image_split_resolution": ((gguf.UINT32, None), 224),
                   "clip.vision.mm_projector_type": ((gguf.STRING, None), "mlp2x_gelu")}
    for k, (typ, val) in anyres_keys.items():
        if anyres:
            ok.append(k in m and tuple(r.meta_type(k)) == typ and
                      (list(m[k]) == val if isinstance(val, list) else m[k] == val))
        else:
            ok.append(k not in m)
    want = {"mm.0.weight": (D, E), "mm.0.bias": (E,), "mm.2.weight": (E, E), "mm.2.bias": (E,),
            "v.class_embd": (D,), "v.patch_embd.weight": (14, 14, 3, D), "v.position_embd.weight": (D, 577),
            "v.pre_ln.weight": (D,), "v.pre_ln.bias": (D,)}
    for i in range(B):
        p = "v.blk.%d." % i
        for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
            want.update({p + n + ".weight": (D, D), p + n + ".bias": (D,)})
        for n in ("ln1", "ln2"):
            want.update({p + n + ".weight": (D,), p + n + ".bias": (D,)})
        # the legacy converter's names: fc1 (D -> F) is "ffn_down", fc2 is "ffn_up" (spec 3.2)
        want.update({p + "ffn_down.weight": (D, F_v), p + "ffn_down.bias": (F_v,),
                     p + "ffn_up.weight": (F_v, D), p + "ffn_up.bias": (D,)})
    if anyres:
        want["model.image_newline"] = (E,)
    got = {n: tuple(t.ne) for n, t in T.items()}
    ok.append(got == want)
    ok.append(T["v.patch_embd.weight"].type == gguf.F16)
    ok.append(all(T[n].type == gguf.F32 for n in want if len(want[n]) == 1))
    r.close()
    check(all(ok), "%s mmproj layout: CLIP 336/14 + mlp%s (%s)"
          % (fam, ", any-res keys + model.image_newline" if anyres else ", no any-res keys", ok))


# =====================================================================
# one chat turn, C vs reference
# =====================================================================

def bind_chat(lib):
    L = lib.L
    vp = C.c_void_p
    sig = {"llava_new_chat": (C.c_int, [vp, vp, C.POINTER(vp), C.c_char_p, C.c_size_t]),
           "llava_free_chat": (None, [vp]),
           "llava_chat_template": (C.c_int, [vp]),
           "llava_chat_add_text": (C.c_int, [vp, C.c_char_p]),
           "llava_chat_add_image": (C.c_int, [vp, vp]),
           "llava_chat_step": (C.c_int, [vp, C.POINTER(C.c_int32), C.POINTER(C.c_char_p),
                                         C.POINTER(C.c_size_t), C.POINTER(C.c_int)]),
           "llava_chat_session": (vp, [vp]),
           "llava_session_position": (C.c_int32, [vp]),
           "llava_session_rewind": (C.c_int, [vp, C.c_int32]),
           "llava_session_save": (C.c_int, [vp, vp, C.c_size_t, C.POINTER(C.c_size_t)]),
           "llava_vision_n_tokens_for": (C.c_int32, [vp, vp, C.c_int32, C.c_int32])}
    for name, (res, args) in sig.items():
        f = getattr(L, name)
        f.restype, f.argtypes = res, args


def new_chat(lib, lm, params):
    chat, buf = C.c_void_p(), C.create_string_buffer(256)
    lib._check(lib.L.llava_new_chat(lm, params, C.byref(chat), buf, 256), "new_chat", buf.value.decode())
    return chat


def session_history(lib, sess):
    """Token history from llava_session_save's documented blob (lib/session_state.c, version 1:
    u32 pos at byte 36, i32 history[pos] from byte 76; image rows are -1)."""
    size = C.c_size_t()
    lib.L.llava_session_save(sess, None, 0, C.byref(size))
    buf = C.create_string_buffer(size.value)
    lib._check(lib.L.llava_session_save(sess, buf, size.value, C.byref(size)), "session_save")
    raw = buf.raw
    if raw[:4] != b"LLVS" or struct.unpack_from("<I", raw, 4)[0] != 1:
        raise llava_c.CError("unexpected session state layout")
    pos = struct.unpack_from("<I", raw, 36)[0]
    return list(struct.unpack_from("<%di" % pos, raw, 76))


def chat_turn(lib, fam, lm_path, mm_path, spm):
    conv, want_tmpl, *_rest, anyres = FAMILIES[fam]
    params = lib.params(n_threads=2, kv_type=0, n_ctx=4096)
    lib._check(lib.L.llava_set_param_float(params, llava_c.LLAVA_PARAM_TEMPERATURE, 0.0), "temperature")
    lib._check(lib.L.llava_set_param_int(params, 401, N_GREEDY), "max_tokens")     # LLAVA_PARAM_MAX_TOKENS
    vis, proj, lm = lib.load_vision(mm_path, params), lib.load_projector(mm_path, params), lib.load_lm(lm_path, params)
    img = lib.load_image(IMAGE, params)
    embd_h, embd = lib.encode_image(vis, proj, img, params)
    W, H = Image.open(IMAGE).size
    n_for = lib.L.llava_vision_n_tokens_for(vis, proj, W, H)

    # ---- the C chat helper: AUTO template, image, question, N_GREEDY greedy steps ----
    chat = new_chat(lib, lm, params)
    tmpl = lib.L.llava_chat_template(chat)
    lib._check(lib.L.llava_chat_add_image(chat, embd_h), "chat_add_image")
    lib._check(lib.L.llava_chat_add_text(chat, QUESTION.encode()), "chat_add_text")
    sess = lib.L.llava_chat_session(chat)
    c_tokens, history = [], None
    tok, done = C.c_int32(), C.c_int()
    for step in range(N_GREEDY):
        lib._check(lib.L.llava_chat_step(chat, C.byref(tok), None, None, C.byref(done)), "chat_step",
                   (lib.L.llava_errmsg(chat) or b"").decode())
        if done.value:
            break
        c_tokens.append(tok.value)
        if step == 0:
            history = session_history(lib, sess)      # the prompt + the first reply token
    prompt_c = history[:-1]
    # first-step logits through the chat's own KV cache: back to before the last prompt token
    # and evaluate it again
    lib._check(lib.L.llava_session_rewind(sess, len(prompt_c) - 1), "rewind")
    lib.eval_tokens(sess, [prompt_c[-1]])
    logits_c = lib.logits(sess)

    # ---- the reference ----
    before, after = reference_prompt(spm, conv)
    if anyres:
        ref_clip = anyres_ref.AnyresRef(mm_path, mm_path)
        n_ref = ref_clip.n_tokens(W, H)
    else:
        ref_clip = llava_ref.ClipRef(mm_path, torch.float64)
        n_ref = ref_clip.n_patches
    embd_ref = ref_clip.encode(IMAGE)
    ref_lm = llava_ref.LlamaRef(lm_path, torch.float64)
    prompt_ref = before + [-1] * n_ref + after
    x = torch.cat([ref_lm.embed(before), embd_ref.to(torch.float64), ref_lm.embed(after)], 0)
    ids_ref, lgs_ref = ref_lm.greedy(x, N_GREEDY, stop_eos=True)
    if ids_ref and ids_ref[-1] == ref_lm.eos:
        ids_ref = ids_ref[:-1]

    label = "%s (%s)" % (fam, "LLaVA-1.6 any-res" if anyres else "LLaVA-1.5 layout")
    check(tmpl == want_tmpl, "%s: AUTO template %d, want %d" % (label, tmpl, want_tmpl))
    n_img_c = sum(1 for t in prompt_c if t == -1)
    check(embd.shape[0] == n_ref == n_img_c == n_for,
          "%s: image tokens: C embed %d, in the chat's prompt %d, n_tokens_for %d, reference %d"
          % (label, embd.shape[0], n_img_c, n_for, n_ref))
    check(prompt_c == prompt_ref, "%s: prompt token sequence (%d positions) equals the reference's:\n"
          "       text %s | %d image rows | %s" % (label, len(prompt_ref), before, n_ref, after))
    if embd.shape == tuple(embd_ref.shape):
        e = rel(embd, embd_ref.numpy())
        check(e <= EMBD_TOL, "%s: image embeddings max rel err %.3g" % (label, e))
    e = rel(logits_c, lgs_ref[0].numpy())
    check(e <= LOGIT_TOL, "%s: first-step logits max rel err %.3g (F32 KV)" % (label, e))
    check(c_tokens == ids_ref and len(c_tokens) > 0,
          "%s: greedy tokens C %s, reference %s" % (label, c_tokens, ids_ref))

    lib.L.llava_free_chat(chat)
    lib.L.llava_free_embed(embd_h)
    lib.L.llava_free_image(img)
    lib.L.llava_free_lm(lm)
    lib.L.llava_free_projector(proj)
    lib.L.llava_free_vision(vis)
    lib.L.llava_free_params(params)


def auto_template_of(lib, lm_path):
    params = lib.params(n_threads=1, n_ctx=64)
    lm = lib.load_lm(lm_path, params)
    chat = new_chat(lib, lm, params)
    t = lib.L.llava_chat_template(chat)
    lib.L.llava_free_chat(chat)
    lib.L.llava_free_lm(lm)
    lib.L.llava_free_params(params)
    return t


def mkmodel(args):
    p = subprocess.run([TOOL] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("llava-mkmodel %s: %s" % (" ".join(args), p.stderr))


def main():
    libpath = llava_c.find_library(BUILD) if BUILD else None
    if not libpath or not os.path.exists(TOOL):
        print("SKIP: libllava or llava-mkmodel not built (LLAVA_BUILDDIR=%r)" % BUILD)
        return 77
    torch.set_num_threads(1)
    lib = llava_c.Lib(libpath)
    bind_chat(lib)
    spm = Spm(VOCAB)
    check_tokenizer(spm)
    with tempfile.TemporaryDirectory() as d, torch.no_grad():
        for fam in FAMILIES:
            lm_path, mm_path = os.path.join(d, fam + "-lm.gguf"), os.path.join(d, fam + "-mmproj.gguf")
            seed = str(1 + list(FAMILIES).index(fam))  # distinct weights per family
            try:
                mkmodel(["--preset", fam, "--seed", seed, "--vocab", VOCAB,
                         "--out-lm", lm_path, "--out-mmproj", mm_path])
                check_layout(fam, lm_path, mm_path)
                chat_turn(lib, fam, lm_path, mm_path, spm)
            except (RuntimeError, llava_c.CError, KeyError, ValueError) as ex:
                check(False, "%s: %s: %s" % (fam, type(ex).__name__, ex))
        # the LLaVA-1.6-Mistral LM with Mistral-Instruct's chat template: AUTO reads it
        p = os.path.join(d, "mistral-tmpl-lm.gguf")
        try:
            mkmodel(["--preset", "llava16-mistral", "--vocab", VOCAB, "--chat-template", MISTRAL_CHAT_TEMPLATE,
                     "--out-lm", p])
            r = gguf.GGUFFile(p)
            stored = r.meta.get("tokenizer.chat_template")
            r.close()
            check(stored == MISTRAL_CHAT_TEMPLATE, "--chat-template is stored as tokenizer.chat_template")
            t = auto_template_of(lib, p)
            check(t == TEMPLATE_MISTRAL, "llava16-mistral LM with a [INST] chat template: AUTO -> %d" % t)
        except (RuntimeError, llava_c.CError) as ex:
            check(False, "mistral with template: %s" % ex)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
