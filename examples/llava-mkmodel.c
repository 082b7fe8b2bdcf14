/*
 * llava-mkmodel - write a random-weight LLaVA model pair (llama LM GGUF +
 * legacy LLaVA-1.5/1.6 mmproj GGUF) in exactly the layout of the files in the
 * wild (shared/spec/llava-format.md §3 and §6), for tests and benchmarks.
 *
 *   llava-mkmodel --out-lm LM.gguf --out-mmproj MMPROJ.gguf [options]
 *
 * Layout notes (why the tensors look the way they do):
 *  - mmproj: the legacy converter's key set and names, including its
 *    mis-named FFN: "ffn_down" holds CLIP's fc1 (ne [D, F]) and "ffn_up"
 *    holds fc2 (ne [F, D]). The patch embedding is always F16 (the converter
 *    forces 4-D tensors to f16); 1-D tensors are always F32.
 *  - LM: llama names; output.weight omitted with --tied. Q/K rows are
 *    random, so no permutation question arises.
 *  - LLaVA family presets (llava16-vicuna, llava16-mistral, bakllava,
 *    sharegpt4v) set what makes each family's files different - GQA ratio,
 *    RoPE base, training context, LLaVA-1.6's any-resolution keys and
 *    model.image_newline - and leave the sizes to the size presets (tiny by
 *    default) and options; see the family table below for the sources.
 *  - Weights come from our own PRNG (splitmix64 + a sum of four uniforms,
 *    only integer and IEEE double arithmetic, so the files are identical on
 *    every platform). Each tensor has its own stream seeded from --seed and
 *    its name, so e.g. --tied or another --n-layer leaves the other tensors
 *    unchanged. Scales give signals of order 1 through the network (norms
 *    near 1, matrices ~ g/sqrt(fan_in)), so greedy decoding has clear margins.
 */
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PROJ_MLP = 0, PROJ_LINEAR = 1 };

typedef struct opts {
    const char *out_lm, *out_mmproj, *vocab, *name;
    /* LM */
    long   n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    double rope_base, rope_scale, rms_eps;
    int    tied;
    int    wtype;            /* LLV_TYPE_F32 or LLV_TYPE_F16, for matrices */
    /* vision + projector */
    long   vision_size, patch, v_embd, v_layer, v_head, v_ff, proj_dim;
    double v_eps;
    int    gelu;
    int    projector;
    int    needs_vocab;      /* set by presets with a real 32000-token vocabulary */
    int    post_ln;          /* write v.post_ln.{weight,bias} */
    int    n_feature;        /* entries of clip.vision.feature_layer (0: key absent) */
    int32_t feature[16];
    unsigned long long seed;
    /* family traits (see the family presets) */
    int    kv_ratio;         /* > 0: n_head_kv = n_head / kv_ratio unless --n-head-kv is given */
    int    n_head_kv_set;    /* --n-head-kv was given */
    int    n_pin;            /* values in pins (2 per pinpoint); 0: no clip.vision.image_grid_pinpoints */
    int32_t pins[64];
    int    pins_in_tiles;    /* pins count tiles of --vision-size (family presets), not pixels */
    const char *merge_type;  /* clip.vision.mm_patch_merge_type; NULL: key absent */
    int    image_newline;    /* write model.image_newline [n_embd] */
    int    llava16_keys;     /* the other LLaVA-1.6 config keys the converter copies */
    const char *chat_template; /* tokenizer.chat_template; NULL: absent */
} opts;

static void set_tiny(opts *o)
{
    o->n_embd = 128; o->n_layer = 2; o->n_head = 4; o->n_head_kv = 2; o->n_ff = 256; o->n_ctx = 2048;
    o->vision_size = 336; o->patch = 14; o->v_embd = 64; o->v_layer = 2; o->v_head = 4; o->v_ff = 128;
    o->proj_dim = 0;
}

static void set_clip_l_336(opts *o)
{
    o->vision_size = 336; o->patch = 14; o->v_embd = 1024; o->v_layer = 23; o->v_head = 16; o->v_ff = 4096;
    o->proj_dim = 768; o->gelu = 0;
}

static void set_tinyllama(opts *o)
{
    o->n_embd = 2048; o->n_layer = 22; o->n_head = 32; o->n_head_kv = 4; o->n_ff = 5632; o->n_ctx = 2048;
    o->rope_base = 10000.0; o->rms_eps = 1e-5; o->needs_vocab = 1;
}

/* ---- LLaVA family presets ----
 *
 * Only the traits that tell the families apart; the sizes stay tiny (or
 * whatever the size presets and options say), so `--preset clip-l-336
 * --preset llava16-mistral` is a full-size vision tower in 1.6 layout. The
 * family is applied after all size presets, whatever the order on the
 * command line, and explicit options override it.
 *
 * | family          | LM (source)                          | KV heads | RoPE base | ctx   | mmproj          |
 * | llava16-vicuna  | Vicuna-7B-v1.5 (LLaMA-2)             | = heads  | 1e4       | 4096  | 1.6 any-res     |
 * | llava16-mistral | Mistral-7B-Instruct-v0.2             | heads/4  | 1e6       | 32768 | 1.6 any-res     |
 * | bakllava        | Mistral-7B-v0.1 (llama arch)         | heads/4  | 1e4       | 32768 | 1.5 (mlp, 336)  |
 * | sharegpt4v      | Vicuna-7B-v1.5 (LLaVA-1.5 arch)      | = heads  | 1e4       | 4096  | 1.5 (mlp, 336)  |
 *
 * Sources: spec §6.1 (head_count_kv 8 of 32 for the Mistral-based LMs, rope
 * freq_base 1e6 for Mistral-7B-v0.2-based 1.6), §3.1 (image_grid_pinpoints,
 * mm_patch_merge_type, model.image_newline). Not in the spec, from the
 * reference LLaVA repository and the base models' HF configs: the 1.6
 * pinpoints (336x672, 672x336, 672x672, 1008x336, 336x1008 - here as tile
 * multiples so they follow --vision-size), "spatial_unpad", the 1.6 config's
 * image_aspect_ratio "anyres", image_crop_resolution 224,
 * image_split_resolution 224 and mm_projector_type "mlp2x_gelu" (keys the
 * converter copies into the mmproj, spec §3.1 "1.6 configs only");
 * max_position_embeddings 4096 (Vicuna-v1.5) and 32768 (Mistral-7B);
 * BakLLaVA-1 = LLaVA-1.5 training on Mistral-7B (GQA 32/8, base 1e4);
 * ShareGPT4V-7B = the LLaVA-1.5 architecture (its fine-tuned CLIP is simply
 * the mmproj's tower). Every family uses RMS eps 1e-5 and a 32000-token SPM
 * vocabulary (give --vocab for it; Mistral's differs from LLaMA's in the
 * pieces, not in the layout). No tokenizer.chat_template is written: we could
 * not confirm that the converted LMs carry one (add one with
 * --chat-template); the chat helper's AUTO template copes without it.
 */
static const int32_t llava16_pin_tiles[10] = { 1, 2, 2, 1, 2, 2, 3, 1, 1, 3 };

static void set_llava16_mmproj(opts *o)
{
    memcpy(o->pins, llava16_pin_tiles, sizeof llava16_pin_tiles);
    o->n_pin = 10;
    o->pins_in_tiles = 1;
    o->merge_type = "spatial_unpad";
    o->image_newline = 1;
    o->llava16_keys = 1;
}

static void set_family_lm(opts *o, int kv_ratio, double rope_base, long n_ctx, const char *name)
{
    o->kv_ratio = kv_ratio;
    o->rope_base = rope_base;
    o->rms_eps = 1e-5;
    o->n_ctx = n_ctx;
    o->name = name;
}

/* Returns 1 if p names a family preset (and applies it), 0 if not. */
static int apply_family(opts *o, const char *p)
{
    if (!p)
        return 0;
    if (!strcmp(p, "llava16-vicuna")) {
        set_family_lm(o, 1, 10000.0, 4096, "llava-v1.6-vicuna (llava-mkmodel)");
        set_llava16_mmproj(o);
    } else if (!strcmp(p, "llava16-mistral")) {
        set_family_lm(o, 4, 1000000.0, 32768, "llava-v1.6-mistral (llava-mkmodel)");
        set_llava16_mmproj(o);
    } else if (!strcmp(p, "bakllava")) {
        set_family_lm(o, 4, 10000.0, 32768, "bakllava-1 (llava-mkmodel)");
    } else if (!strcmp(p, "sharegpt4v")) {
        set_family_lm(o, 1, 10000.0, 4096, "sharegpt4v (llava-mkmodel)");
    } else {
        return 0;
    }
    return 1;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: llava-mkmodel [--out-lm LM.gguf] [--out-mmproj MMPROJ.gguf] [options]\n"
        "Write a random-weight LLaVA model pair (llama LM + legacy mmproj) in the layout of the\n"
        "files in the wild.\n"
        "  --preset NAME       start from a preset (several may be given). Sizes:\n"
        "                      tiny: LM E128 L2 H4 KV2 FF256, vision 336/14 D64 L2 H4 FF128 (default)\n"
        "                      clip-l-336: vision of CLIP ViT-L/14-336 as LLaVA-1.5 stores it (23 blocks)\n"
        "                      tinyllama: LM E2048 L22 H32 KV4 FF5632 (needs --vocab with 32000 tokens)\n"
        "                    Families (applied after the sizes; options override them):\n"
        "                      llava16-vicuna:  MHA, rope base 1e4, ctx 4096, 1.6 any-res mmproj\n"
        "                      llava16-mistral: KV heads = heads/4, rope base 1e6, ctx 32768, 1.6 mmproj\n"
        "                      bakllava:        KV heads = heads/4, rope base 1e4, ctx 32768, 1.5 mmproj\n"
        "                      sharegpt4v:      MHA, rope base 1e4, ctx 4096, 1.5 mmproj\n"
        "                      (1.6 mmproj: pinpoints 1x2,2x1,2x2,3x1,1x3 tiles of --vision-size,\n"
        "                      spatial_unpad, model.image_newline, the 1.6 config keys)\n"
        "  --vocab FILE        copy the tokenizer.* keys from this GGUF (e.g. ggml-vocab-llama-spm.gguf);\n"
        "                      default: a built-in byte-level SPM vocabulary of 380 tokens\n"
        "  LM:     --n-embd N --n-layer N --n-head N --n-head-kv N --n-ff N --n-ctx N\n"
        "          --rope-base F --rope-scale F (linear factor, 0 = none) --rms-eps F\n"
        "          --tied (no output.weight)  --wtype f32|f16 (matrices; default f16)\n"
        "  vision: --vision-size N --patch N --v-embd N --v-layer N --v-head N --v-ff N --v-eps F\n"
        "          --gelu (clip.use_gelu; default quick-GELU) --proj-dim N (clip.vision.projection_dim)\n"
        "          --projector mlp|linear (mm.0 -> GELU -> mm.2, or mm.0 only)\n"
        "          --feature-layer K[,K...] (clip.vision.feature_layer: hidden states 0..v-layer,\n"
        "                      concatenated; mm.0 then takes v-embd * count inputs)  --post-ln\n"
        "  any-res: --pinpoints W,H[,W,H...]|none (clip.vision.image_grid_pinpoints, pixels)\n"
        "          --merge-type STR|none (clip.vision.mm_patch_merge_type)\n"
        "          --image-newline | --no-image-newline (model.image_newline [n-embd])\n"
        "  --chat-template STR (tokenizer.chat_template of the LM)\n"
        "  --seed N  --name STR  -h/--help\n");
}

/* ---- deterministic PRNG ---- */

typedef struct rng { uint64_t s; } rng;

static uint64_t rng_next(rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }

/* Approximately standard normal: (sum of 4 uniforms - 2) * sqrt(3), bounded by +-3.46. */
static double rng_normal(rng *r)
{
    double s = rng_uniform(r) + rng_uniform(r) + rng_uniform(r) + rng_uniform(r);
    return (s - 2.0) * 1.7320508075688772;
}

static rng rng_for(uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the tensor name */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    rng r = { seed ^ h };
    rng_next(&r);
    return r;
}

/* ---- tensor writing ---- */

typedef struct ctx {
    llv_gguf_writer *w;
    const opts      *o;
    const char      *file;
} ctx;

static int fail_rc(const ctx *c, int rc, const char *what)
{
    fprintf(stderr, "llava-mkmodel: %s: %s (%s)\n", c->file, what, llava_strerror(rc));
    return rc;
}

/* Add a tensor of ne[0..n_dims-1] with values mean + std * normal, stored as type. */
static int add_rand(ctx *c, const char *name, int type, uint32_t n_dims, const int64_t *ne, double mean, double std)
{
    size_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] <= 0 || llv_mul_overflow(n, (size_t)ne[d], &n))
            return fail_rc(c, LLAVA_E_INVALID_ARG, name);
    size_t esize = type == LLV_TYPE_F32 ? 4 : 2, nbytes;
    if (llv_mul_overflow(n, esize, &nbytes))
        return fail_rc(c, LLAVA_E_INVALID_ARG, name);
    void *buf = malloc(nbytes);
    if (!buf)
        return fail_rc(c, LLAVA_E_NOMEM, name);
    rng r = rng_for(c->o->seed, name);
    for (size_t i = 0; i < n; i++) {
        float v = (float)(mean + std * rng_normal(&r));
        if (type == LLV_TYPE_F32)
            ((float *)buf)[i] = v;
        else
            ((uint16_t *)buf)[i] = llv_fp32_to_fp16(v);
    }
    int rc = llv_gguf_add_tensor(c->w, name, type, n_dims, ne, buf, nbytes);
    free(buf);
    return rc ? fail_rc(c, rc, name) : LLAVA_OK;
}

static int add_vec(ctx *c, const char *name, int64_t n, double mean, double std)
{
    return add_rand(c, name, LLV_TYPE_F32, 1, &n, mean, std);
}

/* A matrix with ne = [n_in, n_out] (a torch Linear weight [n_out, n_in]). */
static int add_mat(ctx *c, const char *name, int64_t n_in, int64_t n_out, int type, double gain)
{
    int64_t ne[2] = { n_in, n_out };
    return add_rand(c, name, type, 2, ne, 0.0, gain / sqrt((double)n_in));
}

/* ---- tokenizer keys ---- */

/* Copy the tokenizer.* keys of a vocabulary GGUF, keeping their types. */
static int copy_tokenizer(ctx *c, const char *path, long *n_vocab)
{
    llv_gguf *g = NULL;
    llv_err err = { 0 };
    int rc = llv_gguf_open_file(path, 1, &g, &err);
    if (rc) {
        fprintf(stderr, "llava-mkmodel: %s\n", err.msg);
        return rc;
    }
    *n_vocab = -1;
    for (int64_t i = 0; i < llv_gguf_n_kv(g) && rc == LLAVA_OK; i++) {
        llv_str k = llv_gguf_key(g, i);
        if (k.len < 10 || memcmp(k.ptr, "tokenizer.", 10) != 0)
            continue;
        if (c->o->chat_template && k.len == 23 && memcmp(k.ptr, "tokenizer.chat_template", 23) == 0)
            continue; /* replaced by --chat-template */
        char key[256];
        if (k.len >= sizeof key) {
            rc = LLAVA_E_FORMAT;
            break;
        }
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        int t = llv_gguf_kv_type(g, i);
        if (t == LLV_GGUF_ARRAY && llv_gguf_arr_type(g, i) == LLV_GGUF_STRING) {
            uint64_t n = 0;
            if ((rc = llv_gguf_get_arr_str(g, key, &n, &err)))
                break;
            size_t total = 0;
            for (uint64_t j = 0; j < n; j++)
                total += llv_gguf_arr_str(g, i, j).len + 1;
            char **v = malloc(n ? n * sizeof *v : 1), *pool = malloc(total ? total : 1), *p = pool;
            if (!v || !pool) {
                free(v);
                free(pool);
                rc = LLAVA_E_NOMEM;
                break;
            }
            for (uint64_t j = 0; j < n && rc == LLAVA_OK; j++) {
                llv_str s = llv_gguf_arr_str(g, i, j);
                if (memchr(s.ptr, 0, s.len))
                    rc = LLAVA_E_UNSUPPORTED; /* a NUL inside a token cannot pass the C-string API */
                memcpy(p, s.ptr, s.len);
                p[s.len] = '\0';
                v[j] = p;
                p += s.len + 1;
            }
            if (rc == LLAVA_OK)
                rc = llv_gguf_add_arr_str(c->w, key, (const char *const *)v, n);
            free(v);
            free(pool);
            if (strcmp(key, "tokenizer.ggml.tokens") == 0)
                *n_vocab = (long)n;
        } else if (t == LLV_GGUF_ARRAY) {
            const void *data;
            uint64_t n;
            int et = llv_gguf_arr_type(g, i);
            if ((rc = llv_gguf_get_arr(g, key, et, &data, &n, &err)) == LLAVA_OK)
                rc = llv_gguf_add_arr(c->w, key, et, data, n);
        } else if (t == LLV_GGUF_STRING) {
            llv_str s = llv_gguf_kv_str(g, i);
            char *v = malloc(s.len + 1);
            if (!v) {
                rc = LLAVA_E_NOMEM;
                break;
            }
            memcpy(v, s.ptr, s.len);
            v[s.len] = '\0';
            rc = memchr(s.ptr, 0, s.len) ? LLAVA_E_UNSUPPORTED : llv_gguf_add_str(c->w, key, v);
            free(v);
        } else if (t == LLV_GGUF_UINT32) {
            rc = llv_gguf_add_u32(c->w, key, (uint32_t)llv_gguf_kv_uint(g, i));
        } else if (t == LLV_GGUF_INT32) {
            rc = llv_gguf_add_i32(c->w, key, (int32_t)llv_gguf_kv_int(g, i));
        } else if (t == LLV_GGUF_UINT64) {
            rc = llv_gguf_add_u64(c->w, key, llv_gguf_kv_uint(g, i));
        } else if (t == LLV_GGUF_FLOAT32) {
            rc = llv_gguf_add_f32(c->w, key, (float)llv_gguf_kv_float(g, i));
        } else if (t == LLV_GGUF_BOOL) {
            rc = llv_gguf_add_bool(c->w, key, llv_gguf_kv_int(g, i) != 0);
        } else {
            fprintf(stderr, "llava-mkmodel: %s: key %s has type %s, not copied\n", path, key,
                    llv_gguf_type_name(t));
        }
        if (rc)
            fprintf(stderr, "llava-mkmodel: copying %s from %s failed\n", key, path);
    }
    llv_gguf_close(g);
    if (rc == LLAVA_OK && *n_vocab <= 0) {
        fprintf(stderr, "llava-mkmodel: %s has no tokenizer.ggml.tokens\n", path);
        rc = LLAVA_E_FORMAT;
    }
    return rc;
}

/* A byte-level SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte
 * tokens, "▁", the printable ASCII characters and "▁a".."▁z". */
static int builtin_tokenizer(ctx *c, long *n_vocab)
{
    enum { N = 3 + 256 + 1 + 94 + 26 };
    static char text[N][8];
    const char *tok[N];
    float score[N];
    int32_t type[N];
    int n = 0;
    const char *special[3] = { "<unk>", "<s>", "</s>" };
    for (int i = 0; i < 3; i++, n++) {
        snprintf(text[n], sizeof text[n], "%s", special[i]);
        score[n] = 0.0f;
        type[n] = i == 0 ? 2 : 3; /* UNKNOWN, CONTROL */
    }
    for (int b = 0; b < 256; b++, n++) {
        snprintf(text[n], sizeof text[n], "<0x%02X>", b);
        score[n] = 0.0f;
        type[n] = 6; /* BYTE */
    }
    snprintf(text[n], sizeof text[n], "\xE2\x96\x81");
    score[n] = -1.0f;
    type[n++] = 1;
    for (int ch = 33; ch <= 126; ch++, n++) {
        text[n][0] = (char)ch;
        text[n][1] = '\0';
        score[n] = (float)-n;
        type[n] = 1; /* NORMAL */
    }
    for (int ch = 'a'; ch <= 'z'; ch++, n++) {
        snprintf(text[n], sizeof text[n], "\xE2\x96\x81%c", ch);
        score[n] = (float)-n;
        type[n] = 1;
    }
    for (int i = 0; i < N; i++)
        tok[i] = text[i];
    int rc;
    if ((rc = llv_gguf_add_str(c->w, "tokenizer.ggml.model", "llama")) ||
        (rc = llv_gguf_add_str(c->w, "tokenizer.ggml.pre", "default")) ||
        (rc = llv_gguf_add_arr_str(c->w, "tokenizer.ggml.tokens", tok, N)) ||
        (rc = llv_gguf_add_arr(c->w, "tokenizer.ggml.scores", LLV_GGUF_FLOAT32, score, N)) ||
        (rc = llv_gguf_add_arr(c->w, "tokenizer.ggml.token_type", LLV_GGUF_INT32, type, N)) ||
        (rc = llv_gguf_add_u32(c->w, "tokenizer.ggml.bos_token_id", 1)) ||
        (rc = llv_gguf_add_u32(c->w, "tokenizer.ggml.eos_token_id", 2)) ||
        (rc = llv_gguf_add_u32(c->w, "tokenizer.ggml.unknown_token_id", 0)) ||
        (rc = llv_gguf_add_bool(c->w, "tokenizer.ggml.add_bos_token", true)) ||
        (rc = llv_gguf_add_bool(c->w, "tokenizer.ggml.add_eos_token", false)))
        return fail_rc(c, rc, "tokenizer keys");
    *n_vocab = N;
    return LLAVA_OK;
}

/* Peek at the vocabulary size before writing the LM keys (llama.vocab_size
 * comes before the tokenizer keys, as in converted files). */
static long vocab_size_of(const char *path)
{
    llv_gguf *g = NULL;
    llv_err err = { 0 };
    if (llv_gguf_open_file(path, 1, &g, &err)) {
        fprintf(stderr, "llava-mkmodel: %s\n", err.msg);
        return -1;
    }
    uint64_t n = 0;
    long v = llv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &n, &err) ? -1 : (long)n;
    if (v < 0)
        fprintf(stderr, "llava-mkmodel: %s: %s\n", path, err.msg);
    llv_gguf_close(g);
    return v;
}

/* ---- the two files ---- */

static int finish(ctx *c)
{
    llv_err err = { 0 };
    int rc = llv_gguf_write_file(c->w, c->file, &err);
    if (rc) {
        fprintf(stderr, "llava-mkmodel: %s\n", err.msg);
        return rc;
    }
    /* Read it back with the library's validating reader. */
    llv_gguf *g = NULL;
    rc = llv_gguf_open_file(c->file, 1, &g, &err);
    if (rc) {
        fprintf(stderr, "llava-mkmodel: written file does not read back: %s\n", err.msg);
        return rc;
    }
    printf("wrote %s: %lld keys, %lld tensors, %zu bytes\n", c->file, (long long)llv_gguf_n_kv(g),
           (long long)llv_gguf_n_tensors(g), llv_gguf_file_size(g));
    llv_gguf_close(g);
    return LLAVA_OK;
}

static int write_lm(const opts *o)
{
    ctx c = { llv_gguf_writer_new(), o, o->out_lm };
    if (!c.w)
        return fail_rc(&c, LLAVA_E_NOMEM, "writer");
    long n_vocab = o->vocab ? vocab_size_of(o->vocab) : 3 + 256 + 1 + 94 + 26;
    const int64_t E = o->n_embd, F = o->n_ff, hd = o->n_embd / o->n_head, Hk = hd * o->n_head_kv;
    char name[LLV_GGUF_MAX_NAME], desc[128];
    int rc = n_vocab > 0 ? LLAVA_OK : LLAVA_E_FORMAT;
    snprintf(desc, sizeof desc, "%s-lm", o->name);
    if (rc ||
        (rc = llv_gguf_add_str(c.w, "general.architecture", "llama")) ||
        (rc = llv_gguf_add_str(c.w, "general.name", desc)) ||
        (rc = llv_gguf_add_u32(c.w, "llama.context_length", (uint32_t)o->n_ctx)) ||
        (rc = llv_gguf_add_u32(c.w, "llama.embedding_length", (uint32_t)E)) ||
        (rc = llv_gguf_add_u32(c.w, "llama.block_count", (uint32_t)o->n_layer)) ||
        (rc = llv_gguf_add_u32(c.w, "llama.feed_forward_length", (uint32_t)F)) ||
        (rc = llv_gguf_add_u32(c.w, "llama.attention.head_count", (uint32_t)o->n_head)) ||
        (rc = llv_gguf_add_u32(c.w, "llama.attention.head_count_kv", (uint32_t)o->n_head_kv)) ||
        (rc = llv_gguf_add_f32(c.w, "llama.attention.layer_norm_rms_epsilon", (float)o->rms_eps)) ||
        (rc = llv_gguf_add_u32(c.w, "llama.rope.dimension_count", (uint32_t)hd)) ||
        (rc = llv_gguf_add_f32(c.w, "llama.rope.freq_base", (float)o->rope_base)))
        goto out;
    if (o->rope_scale > 0 &&
        ((rc = llv_gguf_add_str(c.w, "llama.rope.scaling.type", "linear")) ||
         (rc = llv_gguf_add_f32(c.w, "llama.rope.scaling.factor", (float)o->rope_scale))))
        goto out;
    if ((rc = llv_gguf_add_u32(c.w, "llama.vocab_size", (uint32_t)n_vocab)) ||
        (rc = llv_gguf_add_u32(c.w, "general.file_type", o->wtype == LLV_TYPE_F32 ? 0 : 1)))
        goto out;
    long got = 0;
    if ((rc = o->vocab ? copy_tokenizer(&c, o->vocab, &got) : builtin_tokenizer(&c, &got)))
        goto out;
    if (got != n_vocab) {
        rc = fail_rc(&c, LLAVA_E_INTERNAL, "vocabulary size changed");
        goto out;
    }
    if (o->chat_template && (rc = llv_gguf_add_str(c.w, "tokenizer.chat_template", o->chat_template))) {
        fail_rc(&c, rc, "tokenizer.chat_template");
        goto out;
    }

    const int wt = o->wtype;
    /* Embedding rows of std 1; output scaled so the logits have std ~11 at any width. */
    if ((rc = add_mat(&c, "token_embd.weight", E, n_vocab, wt, sqrt((double)E))))
        goto out;
    for (long i = 0; i < o->n_layer; i++) {
#define BLK(s) (snprintf(name, sizeof name, "blk.%ld." s, i), name)
        if ((rc = add_vec(&c, BLK("attn_norm.weight"), E, 1.0, 0.1)) ||
            (rc = add_mat(&c, BLK("attn_q.weight"), E, E, wt, 1.7)) ||
            (rc = add_mat(&c, BLK("attn_k.weight"), E, Hk, wt, 1.7)) ||
            (rc = add_mat(&c, BLK("attn_v.weight"), E, Hk, wt, 1.7)) ||
            (rc = add_mat(&c, BLK("attn_output.weight"), E, E, wt, 0.9)) ||
            (rc = add_vec(&c, BLK("ffn_norm.weight"), E, 1.0, 0.1)) ||
            (rc = add_mat(&c, BLK("ffn_gate.weight"), E, F, wt, 1.13)) ||
            (rc = add_mat(&c, BLK("ffn_up.weight"), E, F, wt, 1.13)) ||
            (rc = add_mat(&c, BLK("ffn_down.weight"), F, E, wt, 1.28)))
            goto out;
#undef BLK
    }
    if ((rc = add_vec(&c, "output_norm.weight", E, 1.0, 0.1)))
        goto out;
    if (!o->tied && (rc = add_mat(&c, "output.weight", E, n_vocab, wt, 11.0)))
        goto out;
    rc = finish(&c);
out:
    llv_gguf_writer_free(c.w);
    return rc;
}

/* clip.vision.image_grid_pinpoints and the other LLaVA-1.6 keys (spec §3.1). */
static int write_anyres_keys(ctx *c)
{
    const opts *o = c->o;
    int rc = LLAVA_OK;
    if (o->n_pin > 0) {
        int32_t px[64];
        for (int i = 0; i < o->n_pin; i++)
            px[i] = o->pins_in_tiles ? (int32_t)(o->pins[i] * o->vision_size) : o->pins[i];
        rc = llv_gguf_add_arr(c->w, "clip.vision.image_grid_pinpoints", LLV_GGUF_INT32, px, (uint64_t)o->n_pin);
    }
    if (rc == LLAVA_OK && o->merge_type)
        rc = llv_gguf_add_str(c->w, "clip.vision.mm_patch_merge_type", o->merge_type);
    /* Copied by the converter from the llava-v1.6 config.json; no reader uses them. */
    if (rc == LLAVA_OK && o->llava16_keys &&
        (rc = llv_gguf_add_u32(c->w, "clip.vision.image_crop_resolution", 224)) == LLAVA_OK &&
        (rc = llv_gguf_add_str(c->w, "clip.vision.image_aspect_ratio", "anyres")) == LLAVA_OK &&
        (rc = llv_gguf_add_u32(c->w, "clip.vision.image_split_resolution", 224)) == LLAVA_OK)
        rc = llv_gguf_add_str(c->w, "clip.vision.mm_projector_type", "mlp2x_gelu");
    return rc;
}

static int write_mmproj(const opts *o)
{
    ctx c = { llv_gguf_writer_new(), o, o->out_mmproj };
    if (!c.w)
        return fail_rc(&c, LLAVA_E_NOMEM, "writer");
    static const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
    static const float stdv[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
    const int64_t D = o->v_embd, F = o->v_ff, P = o->patch, E = o->n_embd;
    const int64_t G = o->vision_size / o->patch, n_pos = G * G + 1;
    const int wt = o->wtype;
    char name[LLV_GGUF_MAX_NAME], desc[128];
    snprintf(desc, sizeof desc, "%s-mmproj", o->name);
    int rc;
    if ((rc = llv_gguf_add_str(c.w, "general.architecture", "clip")) ||
        (rc = llv_gguf_add_bool(c.w, "clip.has_text_encoder", false)) ||
        (rc = llv_gguf_add_bool(c.w, "clip.has_vision_encoder", true)) ||
        (rc = llv_gguf_add_bool(c.w, "clip.has_llava_projector", true)) ||
        (rc = llv_gguf_add_u32(c.w, "general.file_type", wt == LLV_TYPE_F32 ? 0 : 1)) ||
        (rc = llv_gguf_add_str(c.w, "general.name", desc)) ||
        (rc = llv_gguf_add_str(c.w, "general.description", "image encoder for LLaVA")) ||
        (rc = llv_gguf_add_str(c.w, "clip.projector_type", o->projector == PROJ_MLP ? "mlp" : "linear")) ||
        (rc = llv_gguf_add_u32(c.w, "clip.vision.image_size", (uint32_t)o->vision_size)) ||
        (rc = llv_gguf_add_u32(c.w, "clip.vision.patch_size", (uint32_t)P)) ||
        (rc = llv_gguf_add_u32(c.w, "clip.vision.embedding_length", (uint32_t)D)) ||
        (rc = llv_gguf_add_u32(c.w, "clip.vision.feed_forward_length", (uint32_t)F)) ||
        (rc = llv_gguf_add_u32(c.w, "clip.vision.projection_dim", (uint32_t)(o->proj_dim ? o->proj_dim : E))) ||
        (rc = llv_gguf_add_u32(c.w, "clip.vision.attention.head_count", (uint32_t)o->v_head)) ||
        (rc = llv_gguf_add_f32(c.w, "clip.vision.attention.layer_norm_epsilon", (float)o->v_eps)) ||
        (rc = llv_gguf_add_u32(c.w, "clip.vision.block_count", (uint32_t)o->v_layer)) ||
        (rc = llv_gguf_add_arr(c.w, "clip.vision.image_mean", LLV_GGUF_FLOAT32, mean, 3)) ||
        (rc = llv_gguf_add_arr(c.w, "clip.vision.image_std", LLV_GGUF_FLOAT32, stdv, 3)) ||
        (rc = llv_gguf_add_bool(c.w, "clip.use_gelu", o->gelu != 0))) {
        fail_rc(&c, rc, "keys");
        goto out;
    }
    if ((rc = write_anyres_keys(&c))) {
        fail_rc(&c, rc, "any-res keys");
        goto out;
    }
    /* Tensor order as the legacy converter writes it: projector first. */
    if (o->n_feature > 0 &&
        (rc = llv_gguf_add_arr(c.w, "clip.vision.feature_layer", LLV_GGUF_INT32, o->feature, (uint64_t)o->n_feature))) {
        fail_rc(&c, rc, "keys");
        goto out;
    }
    const int64_t D_feat = D * (o->n_feature > 0 ? o->n_feature : 1);
    if ((rc = add_mat(&c, "mm.0.weight", D_feat, E, wt, 0.8)) || (rc = add_vec(&c, "mm.0.bias", E, 0.0, 0.02)))
        goto out;
    if (o->projector == PROJ_MLP &&
        ((rc = add_mat(&c, "mm.2.weight", E, E, wt, 1.13)) || (rc = add_vec(&c, "mm.2.bias", E, 0.0, 0.02))))
        goto out;
    /* LLaVA-1.6's row separator, kept under its PyTorch name by llava_surgery_v2 (spec §3.2). */
    if (o->image_newline && (rc = add_vec(&c, "model.image_newline", E, 0.0, 1.0)))
        goto out;
    int64_t ne_patch[4] = { P, P, 3, D }, ne_pos[2] = { D, n_pos };
    if ((rc = add_vec(&c, "v.class_embd", D, 0.0, 0.5)) ||
        (rc = add_rand(&c, "v.patch_embd.weight", LLV_TYPE_F16, 4, ne_patch, 0.0, 1.2 / sqrt(3.0 * P * P))) ||
        (rc = add_rand(&c, "v.position_embd.weight", wt, 2, ne_pos, 0.0, 0.2)) ||
        (rc = add_vec(&c, "v.pre_ln.weight", D, 1.0, 0.1)) ||
        (rc = add_vec(&c, "v.pre_ln.bias", D, 0.0, 0.1)))
        goto out;
    for (long i = 0; i < o->v_layer; i++) {
#define BLK(s) (snprintf(name, sizeof name, "v.blk.%ld." s, i), name)
        if ((rc = add_mat(&c, BLK("attn_k.weight"), D, D, wt, 0.65)) ||
            (rc = add_vec(&c, BLK("attn_k.bias"), D, 0.0, 0.02)) ||
            (rc = add_mat(&c, BLK("attn_v.weight"), D, D, wt, 0.65)) ||
            (rc = add_vec(&c, BLK("attn_v.bias"), D, 0.0, 0.02)) ||
            (rc = add_mat(&c, BLK("attn_q.weight"), D, D, wt, 0.65)) ||
            (rc = add_vec(&c, BLK("attn_q.bias"), D, 0.0, 0.02)) ||
            (rc = add_mat(&c, BLK("attn_out.weight"), D, D, wt, 0.65)) ||
            (rc = add_vec(&c, BLK("attn_out.bias"), D, 0.0, 0.02)) ||
            (rc = add_vec(&c, BLK("ln1.weight"), D, 1.0, 0.1)) ||
            (rc = add_vec(&c, BLK("ln1.bias"), D, 0.0, 0.1)) ||
            /* legacy naming: "ffn_down" is fc1 (D -> F), "ffn_up" is fc2 (F -> D) */
            (rc = add_mat(&c, BLK("ffn_down.weight"), D, F, wt, 0.65)) ||
            (rc = add_vec(&c, BLK("ffn_down.bias"), F, 0.0, 0.02)) ||
            (rc = add_mat(&c, BLK("ffn_up.weight"), F, D, wt, 0.9)) ||
            (rc = add_vec(&c, BLK("ffn_up.bias"), D, 0.0, 0.02)) ||
            (rc = add_vec(&c, BLK("ln2.weight"), D, 1.0, 0.1)) ||
            (rc = add_vec(&c, BLK("ln2.bias"), D, 0.0, 0.1)))
            goto out;
#undef BLK
    }
    if (o->post_ln &&
        ((rc = add_vec(&c, "v.post_ln.weight", D, 1.0, 0.1)) || (rc = add_vec(&c, "v.post_ln.bias", D, 0.0, 0.1))))
        goto out;
    rc = finish(&c);
out:
    llv_gguf_writer_free(c.w);
    return rc;
}

/* ---- command line ---- */

/* "K[,K...]" -> o->feature (each 0..4096, at most 16). */
static int parse_features(const char *s, opts *o)
{
    o->n_feature = 0;
    while (s && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || v < 0 || v > 4096 || o->n_feature == 16 || (*end && *end != ','))
            break;
        o->feature[o->n_feature++] = (int32_t)v;
        if (!*end)
            return 0;
        s = end + 1;
    }
    fprintf(stderr, "llava-mkmodel: --feature-layer needs up to 16 comma-separated indices 0..4096\n");
    return -1;
}

/* "W,H[,W,H...]" (pixels) or "none" -> o->pins. */
static int parse_pinpoints(const char *s, opts *o)
{
    o->n_pin = 0;
    o->pins_in_tiles = 0;
    if (s && !strcmp(s, "none"))
        return 0;
    while (s && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || v < 1 || v > 65536 || o->n_pin == 64 || (*end && *end != ','))
            break;
        o->pins[o->n_pin++] = (int32_t)v;
        if (!*end && o->n_pin % 2 == 0)
            return 0;
        if (!*end)
            break; /* an odd count: not W,H pairs */
        s = end + 1;
    }
    fprintf(stderr, "llava-mkmodel: --pinpoints needs up to 32 comma-separated W,H pairs (1..65536) or none\n");
    return -1;
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "llava-mkmodel: %s needs an integer in [%ld, %ld]\n", opt, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || errno || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "llava-mkmodel: %s needs a number in [%g, %g]\n", opt, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int apply_preset(opts *o, const char *p)
{
    if (apply_family(o, p))
        return 0; /* applied again after the size presets, see parse_args */
    if (p && strcmp(p, "tiny") == 0)
        set_tiny(o);
    else if (p && strcmp(p, "clip-l-336") == 0)
        set_clip_l_336(o);
    else if (p && strcmp(p, "tinyllama") == 0)
        set_tinyllama(o);
    else {
        fprintf(stderr, "llava-mkmodel: unknown preset '%s' (tiny, clip-l-336, tinyllama, llava16-vicuna, "
                "llava16-mistral, bakllava, sharegpt4v)\n", p ? p : "");
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
    /* Presets first, in order, so explicit options override them wherever they appear;
     * then the family presets again, so the family's traits win over the sizes'. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--preset") == 0 && apply_preset(o, i + 1 < argc ? argv[++i] : NULL))
            return -1;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--preset") == 0)
            apply_family(o, argv[++i]);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = 0, used = 1;
        double d;
        const long BIG = 1L << 20;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--preset")) {
        } else if (!strcmp(a, "--out-lm")) o->out_lm = v;
        else if (!strcmp(a, "--out-mmproj")) o->out_mmproj = v;
        else if (!strcmp(a, "--vocab")) o->vocab = v;
        else if (!strcmp(a, "--name")) o->name = v;
        else if (!strcmp(a, "--n-embd")) r = parse_long(a, v, 1, BIG, &o->n_embd);
        else if (!strcmp(a, "--n-layer")) r = parse_long(a, v, 1, 4096, &o->n_layer);
        else if (!strcmp(a, "--n-head")) r = parse_long(a, v, 1, 4096, &o->n_head);
        else if (!strcmp(a, "--n-head-kv")) {
            r = parse_long(a, v, 1, 4096, &o->n_head_kv);
            o->n_head_kv_set = 1;
        }
        else if (!strcmp(a, "--n-ff")) r = parse_long(a, v, 1, BIG, &o->n_ff);
        else if (!strcmp(a, "--n-ctx")) r = parse_long(a, v, 1, BIG, &o->n_ctx);
        else if (!strcmp(a, "--rope-base")) r = parse_double(a, v, 1.0, 1e12, &o->rope_base);
        else if (!strcmp(a, "--rope-scale")) r = parse_double(a, v, 0.0, 1e6, &o->rope_scale);
        else if (!strcmp(a, "--rms-eps")) r = parse_double(a, v, 0.0, 1.0, &o->rms_eps);
        else if (!strcmp(a, "--v-eps")) r = parse_double(a, v, 0.0, 1.0, &o->v_eps);
        else if (!strcmp(a, "--vision-size")) r = parse_long(a, v, 1, 4096, &o->vision_size);
        else if (!strcmp(a, "--patch")) r = parse_long(a, v, 1, 4096, &o->patch);
        else if (!strcmp(a, "--v-embd")) r = parse_long(a, v, 1, BIG, &o->v_embd);
        else if (!strcmp(a, "--v-layer")) r = parse_long(a, v, 1, 4096, &o->v_layer);
        else if (!strcmp(a, "--v-head")) r = parse_long(a, v, 1, 4096, &o->v_head);
        else if (!strcmp(a, "--v-ff")) r = parse_long(a, v, 1, BIG, &o->v_ff);
        else if (!strcmp(a, "--proj-dim")) r = parse_long(a, v, 0, BIG, &o->proj_dim);
        else if (!strcmp(a, "--feature-layer")) r = parse_features(v, o);
        else if (!strcmp(a, "--pinpoints")) r = parse_pinpoints(v, o);
        else if (!strcmp(a, "--merge-type")) o->merge_type = v && !strcmp(v, "none") ? NULL : v;
        else if (!strcmp(a, "--chat-template")) o->chat_template = v;
        else if (!strcmp(a, "--seed")) {
            r = parse_double(a, v, 0, 1.8e19, &d);
            o->seed = r ? 0 : strtoull(v, NULL, 10);
        } else if (!strcmp(a, "--wtype")) {
            if (v && !strcmp(v, "f32")) o->wtype = LLV_TYPE_F32;
            else if (v && !strcmp(v, "f16")) o->wtype = LLV_TYPE_F16;
            else {
                fprintf(stderr, "llava-mkmodel: --wtype f32|f16 (quantize with llava-quantize)\n");
                r = -1;
            }
        } else if (!strcmp(a, "--projector")) {
            if (v && !strcmp(v, "mlp")) o->projector = PROJ_MLP;
            else if (v && !strcmp(v, "linear")) o->projector = PROJ_LINEAR;
            else {
                fprintf(stderr, "llava-mkmodel: --projector mlp|linear\n");
                r = -1;
            }
        } else {
            used = 0;
            if (!strcmp(a, "--tied")) o->tied = 1;
            else if (!strcmp(a, "--gelu")) o->gelu = 1;
            else if (!strcmp(a, "--post-ln")) o->post_ln = 1;
            else if (!strcmp(a, "--image-newline")) o->image_newline = 1;
            else if (!strcmp(a, "--no-image-newline")) o->image_newline = 0;
            else {
                fprintf(stderr, "llava-mkmodel: unknown option '%s'\n", a);
                usage(stderr);
                return -1;
            }
        }
        if (r)
            return -1;
        if (used) {
            if (!v) {
                fprintf(stderr, "llava-mkmodel: %s needs a value\n", a);
                return -1;
            }
            i++;
        }
    }
    return 0;
}

static int check_opts(opts *o)
{
    const char *why = NULL;
    /* the family's GQA ratio follows --n-head unless --n-head-kv says otherwise */
    if (o->kv_ratio > 0 && !o->n_head_kv_set) {
        if (o->n_head % o->kv_ratio) {
            fprintf(stderr, "llava-mkmodel: this family has %d query heads per KV head: --n-head must be a "
                    "multiple of %d (or give --n-head-kv)\n", o->kv_ratio, o->kv_ratio);
            return -1;
        }
        o->n_head_kv = o->n_head / o->kv_ratio;
    }
    if (!o->out_lm && !o->out_mmproj)
        why = "give --out-lm and/or --out-mmproj";
    else if (o->needs_vocab && o->out_lm && !o->vocab)
        why = "--preset tinyllama needs --vocab (e.g. ggml-vocab-llama-spm.gguf, 32000 tokens)";
    else if (o->n_embd % o->n_head)
        why = "--n-embd must be a multiple of --n-head";
    else if ((o->n_embd / o->n_head) % 2)
        why = "the head dimension must be even (RoPE rotates pairs)";
    else if (o->n_head % o->n_head_kv)
        why = "--n-head must be a multiple of --n-head-kv";
    else if (o->vision_size % o->patch)
        why = "--vision-size must be a multiple of --patch";
    else if (o->v_embd % o->v_head)
        why = "--v-embd must be a multiple of --v-head";
    for (int i = 0; !why && i < o->n_feature; i++)
        if (o->feature[i] > o->v_layer)
            why = "--feature-layer indices must be <= --v-layer";
    if (why) {
        fprintf(stderr, "llava-mkmodel: %s\n", why);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o = { 0 };
    set_tiny(&o);
    o.rope_base = 10000.0;
    o.rms_eps = 1e-5;
    o.v_eps = 1e-5;
    o.wtype = LLV_TYPE_F16;
    o.projector = PROJ_MLP;
    o.seed = 42;
    o.name = "llava-mkmodel";
    if (parse_args(argc, argv, &o) || check_opts(&o))
        return 2;
    if (o.out_lm && write_lm(&o))
        return 1;
    if (o.out_mmproj && write_mmproj(&o))
        return 1;
    return 0;
}
