/*
 * lm_load.c - read a llama-architecture LM from GGUF (spec §6.1, §6.2):
 * hyperparameters with hostile-value checks, then every tensor bound to a
 * view into the mapping after its type and shape are checked.
 */
#include "lm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define ARCH "llama"

/* ---- hyperparameters ---------------------------------------------------- */

/* A u32 key that may also be stored as a per-layer array (feed_forward_length,
 * head_count, head_count_kv). Arrays must hold one value for every layer and
 * all values equal: per-layer widths are not supported. */
static int get_u32_or_layer_arr(const llv_gguf *g, const char *key, bool required, uint32_t def,
                                int32_t n_layer, uint32_t *out, llv_err *err)
{
    int64_t i = llv_gguf_find_key(g, key);
    if (i < 0) {
        if (required)
            return llv_fail(err, LLAVA_E_FORMAT, "missing key %s", key);
        *out = def;
        return LLAVA_OK;
    }
    if (llv_gguf_kv_type(g, i) != LLV_GGUF_ARRAY)
        return llv_gguf_get_u32(g, key, out, err);
    int et = llv_gguf_arr_type(g, i);
    if (et == LLV_GGUF_STRING || et == LLV_GGUF_ARRAY || et == LLV_GGUF_FLOAT32 || et == LLV_GGUF_FLOAT64)
        return llv_fail(err, LLAVA_E_FORMAT, "key %s: array of %s, expected integers", key, llv_gguf_type_name(et));
    uint64_t n = llv_gguf_arr_n(g, i);
    if (n != (uint64_t)n_layer)
        return llv_fail(err, LLAVA_E_FORMAT, "key %s: %llu values for %d layers", key,
                        (unsigned long long)n, (int)n_layer);
    int64_t v0 = llv_gguf_arr_get_int(g, i, 0);
    for (uint64_t j = 1; j < n; j++)
        if (llv_gguf_arr_get_int(g, i, j) != v0)
            return llv_fail(err, LLAVA_E_UNSUPPORTED, "key %s: per-layer values differ (layer %llu)", key,
                            (unsigned long long)j);
    if (v0 < 0 || v0 > (int64_t)UINT32_MAX)
        return llv_fail(err, LLAVA_E_FORMAT, "key %s: value %lld out of range", key, (long long)v0);
    *out = (uint32_t)v0;
    return LLAVA_OK;
}

static int check_range(const char *key, uint32_t v, uint32_t lo, uint32_t hi, llv_err *err)
{
    if (v < lo || v > hi)
        return llv_fail(err, LLAVA_E_FORMAT, "key %s = %u is outside [%u, %u]", key, v, lo, hi);
    return LLAVA_OK;
}

static int read_hparams(const llv_gguf *g, llv_lm_hparams *hp, llv_err *err)
{
    uint32_t ctx, embd, layers, ff, heads, heads_kv, rot, key_len, val_len;
    float eps, base, factor;
    int rc;

#define TRY(x) do { if ((rc = (x)) != LLAVA_OK) return rc; } while (0)
    TRY(llv_gguf_get_u32(g, ARCH ".context_length", &ctx, err));
    TRY(check_range(ARCH ".context_length", ctx, 1, LLV_LM_MAX_CTX, err));
    TRY(llv_gguf_get_u32(g, ARCH ".embedding_length", &embd, err));
    TRY(check_range(ARCH ".embedding_length", embd, 1, LLV_LM_MAX_EMBD, err));
    TRY(llv_gguf_get_u32(g, ARCH ".block_count", &layers, err));
    TRY(check_range(ARCH ".block_count", layers, 1, LLV_LM_MAX_LAYERS, err));
    TRY(get_u32_or_layer_arr(g, ARCH ".feed_forward_length", true, 0, (int32_t)layers, &ff, err));
    TRY(check_range(ARCH ".feed_forward_length", ff, 1, LLV_LM_MAX_FF, err));
    TRY(get_u32_or_layer_arr(g, ARCH ".attention.head_count", true, 0, (int32_t)layers, &heads, err));
    TRY(check_range(ARCH ".attention.head_count", heads, 1, LLV_LM_MAX_HEADS, err));
    TRY(get_u32_or_layer_arr(g, ARCH ".attention.head_count_kv", false, heads, (int32_t)layers, &heads_kv, err));
    TRY(check_range(ARCH ".attention.head_count_kv", heads_kv, 1, heads, err));
    if (heads % heads_kv != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "key " ARCH ".attention.head_count (%u) is not a multiple of "
                        ARCH ".attention.head_count_kv (%u)", heads, heads_kv);

    /* head_dim: attention.key_length if present, else E / n_head. */
    if (llv_gguf_find_key(g, ARCH ".attention.key_length") < 0 && embd % heads != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "key " ARCH ".embedding_length (%u) is not divisible by "
                        ARCH ".attention.head_count (%u)", embd, heads);
    TRY(llv_gguf_get_u32_opt(g, ARCH ".attention.key_length", embd / heads, &key_len, err));
    TRY(check_range(ARCH ".attention.key_length", key_len, 2, LLV_LM_MAX_HEAD_DIM, err));
    TRY(llv_gguf_get_u32_opt(g, ARCH ".attention.value_length", key_len, &val_len, err));
    if (val_len != key_len)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "key " ARCH ".attention.value_length (%u) differs from key_length (%u)",
                        val_len, key_len);
    TRY(llv_gguf_get_u32_opt(g, ARCH ".rope.dimension_count", key_len, &rot, err));
    if (rot < 2 || rot > key_len || rot % 2 != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "key " ARCH ".rope.dimension_count = %u: must be even and in [2, %u]",
                        rot, key_len);

    uint32_t experts;
    TRY(llv_gguf_get_u32_opt(g, ARCH ".expert_count", 0, &experts, err));
    if (experts > 0)
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "mixture-of-experts models (" ARCH ".expert_count = %u) are not supported",
                        experts);

    TRY(llv_gguf_get_f32(g, ARCH ".attention.layer_norm_rms_epsilon", &eps, err));
    if (!(eps > 0.0f && eps < 1.0f))
        return llv_fail(err, LLAVA_E_FORMAT, "key " ARCH ".attention.layer_norm_rms_epsilon = %g is not in (0, 1)",
                        (double)eps);
    TRY(llv_gguf_get_f32_opt(g, ARCH ".rope.freq_base", 10000.0f, &base, err));
    if (!(base > 0.0f && isfinite(base)))
        return llv_fail(err, LLAVA_E_FORMAT, "key " ARCH ".rope.freq_base = %g is not positive", (double)base);

    /* RoPE scaling: none or linear (freq_scale = 1/factor); 0 means none. */
    llv_str stype;
    TRY(llv_gguf_get_str_opt(g, ARCH ".rope.scaling.type", &stype, err));
    bool linear = true;
    if (stype.ptr) {
        if (stype.len == 4 && memcmp(stype.ptr, "none", 4) == 0)
            linear = false;
        else if (!(stype.len == 6 && memcmp(stype.ptr, "linear", 6) == 0))
            return llv_fail(err, LLAVA_E_UNSUPPORTED, "RoPE scaling type \"%.*s\" is not supported",
                            (int)LLV_MIN(stype.len, 32), stype.ptr);
    }
    factor = 0.0f;
    if (llv_gguf_find_key(g, ARCH ".rope.scaling.factor") >= 0)
        TRY(llv_gguf_get_f32(g, ARCH ".rope.scaling.factor", &factor, err));
    else
        TRY(llv_gguf_get_f32_opt(g, ARCH ".rope.scale_linear", 0.0f, &factor, err));
    if (!isfinite(factor) || factor < 0.0f)
        return llv_fail(err, LLAVA_E_FORMAT, "RoPE scaling factor %g is invalid", (double)factor);
    hp->rope_freq_scale = (linear && factor != 0.0f) ? 1.0f / factor : 1.0f;
    if (!(hp->rope_freq_scale > 0.0f && isfinite(hp->rope_freq_scale)))
        return llv_fail(err, LLAVA_E_FORMAT, "RoPE scaling factor %g is invalid", (double)factor);
#undef TRY

    hp->n_ctx_train = (int32_t)ctx;
    hp->n_embd = (int32_t)embd;
    hp->n_layer = (int32_t)layers;
    hp->n_ff = (int32_t)ff;
    hp->n_head = (int32_t)heads;
    hp->n_head_kv = (int32_t)heads_kv;
    hp->head_dim = (int32_t)key_len;
    hp->n_rot = (int32_t)rot;
    hp->rms_eps = eps;
    hp->rope_freq_base = base;
    hp->n_vocab = 0; /* from token_embd */
    return LLAVA_OK;
}

/* ---- tensors ------------------------------------------------------------ */

typedef struct binder {
    const llv_gguf *g;
    llava_lm       *lm;
    bool           *used;   /* per tensor index of the file */
    llv_err        *err;
} binder;

static void fmt_shape(char *buf, size_t n, const int64_t *ne, uint32_t n_dims)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (uint32_t d = 0; d < n_dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, d ? ",%lld" : "%lld", (long long)ne[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

static const llv_gguf_tensor *find_tensor(binder *b, const char *name, bool required, int *rc)
{
    *rc = LLAVA_OK;
    const llv_gguf_tensor *t = llv_gguf_find_tensor(b->g, name);
    if (!t) {
        if (required)
            *rc = llv_fail(b->err, LLAVA_E_FORMAT, "missing tensor %s", name);
        return NULL;
    }
    for (int64_t i = 0; i < llv_gguf_n_tensors(b->g); i++)
        if (llv_gguf_tensor_at(b->g, i) == t)
            b->used[i] = true;
    return t;
}

/* Check the shape: exactly ne0 x ne1 (ne1 = 0 for a 1-D tensor); trailing
 * dimensions must be 1. */
static int check_shape(binder *b, const llv_gguf_tensor *t, int64_t ne0, int64_t ne1)
{
    int64_t want[LLV_GGUF_MAX_DIMS] = { ne0, ne1 > 0 ? ne1 : 1, 1, 1 };
    uint32_t want_dims = ne1 > 0 ? 2 : 1;
    bool ok = true;
    for (int d = 0; d < LLV_GGUF_MAX_DIMS; d++)
        if (t->ne[d] != want[d])
            ok = false;
    if (ok)
        return LLAVA_OK;
    char got_s[96], want_s[96];
    fmt_shape(got_s, sizeof got_s, t->ne, t->n_dims);
    fmt_shape(want_s, sizeof want_s, want, want_dims);
    return llv_fail(b->err, LLAVA_E_FORMAT, "tensor %s has shape %s, expected %s", t->name, got_s, want_s);
}

/* A matrix [n_in, n_out] as a weight view. */
static int bind_matrix(binder *b, const char *name, bool required, int64_t n_in, int64_t n_out,
                       llv_weight *w, bool *present)
{
    int rc;
    const llv_gguf_tensor *t = find_tensor(b, name, required, &rc);
    if (present)
        *present = t != NULL;
    if (!t)
        return rc;
    if ((rc = check_shape(b, t, n_in, n_out)) != LLAVA_OK)
        return rc;
    const llv_type_info *ti = llv_type_get(t->type);
    if (!ti || !ti->weights)
        return llv_fail(b->err, LLAVA_E_UNSUPPORTED, "tensor %s: type %s cannot be used as weights", name,
                        llv_type_name(t->type));
    if (!llv_weight_init(w, t->type, n_in, n_out, t->data))
        return llv_fail(b->err, LLAVA_E_FORMAT, "tensor %s: %lld values per row do not fit type %s", name,
                        (long long)n_in, llv_type_name(t->type));
    return LLAVA_OK;
}

/* A vector of n values (any float-convertible type) as an owned f32 copy. */
static int bind_vector(binder *b, const char *name, bool required, int64_t n, const float **out)
{
    int rc;
    *out = NULL;
    const llv_gguf_tensor *t = find_tensor(b, name, required, &rc);
    if (!t)
        return rc;
    if ((rc = check_shape(b, t, n, 0)) != LLAVA_OK)
        return rc;
    const llv_type_info *ti = llv_type_get(t->type);
    if (!ti || !ti->weights || n % ti->blck != 0)
        return llv_fail(b->err, LLAVA_E_UNSUPPORTED, "tensor %s: type %s is not supported for a vector", name,
                        llv_type_name(t->type));
    if (b->lm->n_owned == b->lm->cap_owned)
        return llv_fail(b->err, LLAVA_E_INTERNAL, "too many vectors at tensor %s", name);
    float *v = llv_malloc((size_t)n * sizeof *v);
    if (!v)
        return llv_fail(b->err, LLAVA_E_NOMEM, "out of memory copying tensor %s", name);
    llv_dequantize_row(t->type, t->data, v, n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            llv_free(v);
            return llv_fail(b->err, LLAVA_E_FORMAT, "tensor %s: non-finite value at %lld", name, (long long)i);
        }
    b->lm->owned[b->lm->n_owned++] = v;
    *out = v;
    return LLAVA_OK;
}

/* View rows [row0, row0+n_rows) of a weight as its own weight. */
static llv_weight weight_rows(const llv_weight *w, int64_t row0, int64_t n_rows)
{
    llv_weight r = *w;
    r.n_out = n_rows;
    r.data = (const char *)w->data + (size_t)row0 * w->row_bytes;
    return r;
}

static int bind_layer(binder *b, int32_t il, llv_lm_layer *L)
{
    const llv_lm_hparams *hp = &b->lm->hp;
    const int64_t E = hp->n_embd, F = hp->n_ff, QD = llv_lm_q_dim(hp), KVD = llv_lm_kv_dim(hp);
    char name[LLV_GGUF_MAX_NAME + 16];
    int rc;
#define NAME(s) (snprintf(name, sizeof name, "blk.%d." s, (int)il), name)
#define TRY(x) do { if ((rc = (x)) != LLAVA_OK) return rc; } while (0)
    TRY(bind_vector(b, NAME("attn_norm.weight"), true, E, &L->attn_norm));

    bool fused;
    llv_weight qkv;
    TRY(bind_matrix(b, NAME("attn_qkv.weight"), false, E, QD + 2 * KVD, &qkv, &fused));
    if (fused) {
        L->wq = weight_rows(&qkv, 0, QD);
        L->wk = weight_rows(&qkv, QD, KVD);
        L->wv = weight_rows(&qkv, QD + KVD, KVD);
        const float *bqkv;
        TRY(bind_vector(b, NAME("attn_qkv.bias"), false, QD + 2 * KVD, &bqkv));
        if (bqkv) {
            L->bq = bqkv;
            L->bk = bqkv + QD;
            L->bv = bqkv + QD + KVD;
        }
    } else {
        TRY(bind_matrix(b, NAME("attn_q.weight"), true, E, QD, &L->wq, NULL));
        TRY(bind_matrix(b, NAME("attn_k.weight"), true, E, KVD, &L->wk, NULL));
        TRY(bind_matrix(b, NAME("attn_v.weight"), true, E, KVD, &L->wv, NULL));
        TRY(bind_vector(b, NAME("attn_q.bias"), false, QD, &L->bq));
        TRY(bind_vector(b, NAME("attn_k.bias"), false, KVD, &L->bk));
        TRY(bind_vector(b, NAME("attn_v.bias"), false, KVD, &L->bv));
    }
    TRY(bind_matrix(b, NAME("attn_output.weight"), true, QD, E, &L->wo, NULL));
    TRY(bind_vector(b, NAME("attn_output.bias"), false, E, &L->bo));

    TRY(bind_vector(b, NAME("ffn_norm.weight"), true, E, &L->ffn_norm));
    TRY(bind_matrix(b, NAME("ffn_gate.weight"), true, E, F, &L->w_gate, NULL));
    TRY(bind_matrix(b, NAME("ffn_up.weight"), true, E, F, &L->w_up, NULL));
    TRY(bind_matrix(b, NAME("ffn_down.weight"), true, F, E, &L->w_down, NULL));
    TRY(bind_vector(b, NAME("ffn_gate.bias"), false, F, &L->b_gate));
    TRY(bind_vector(b, NAME("ffn_up.bias"), false, F, &L->b_up));
    TRY(bind_vector(b, NAME("ffn_down.bias"), false, E, &L->b_down));
#undef NAME
#undef TRY
    return LLAVA_OK;
}

/* Tensors a llama file may carry that inference does not use. */
static bool ignorable_tensor(const char *name)
{
    const char *suffix = ".attn_rot_embd"; /* old converters stored RoPE tables */
    size_t n = strlen(name), s = strlen(suffix);
    return n >= s && strcmp(name + n - s, suffix) == 0;
}

static int bind_all(binder *b, const llv_callbacks *cb)
{
    llava_lm *lm = b->lm;
    llv_lm_hparams *hp = &lm->hp;
    int rc;

    /* Vocabulary size comes from token_embd (ne = [E, V]). */
    const llv_gguf_tensor *te = find_tensor(b, "token_embd.weight", true, &rc);
    if (!te)
        return rc;
    if (te->ne[1] < 1 || te->ne[1] > LLV_LM_MAX_VOCAB)
        return llv_fail(b->err, LLAVA_E_FORMAT, "tensor token_embd.weight: %lld rows is not a valid vocabulary size",
                        (long long)te->ne[1]);
    hp->n_vocab = (int32_t)te->ne[1];
    uint32_t vs;
    if ((rc = llv_gguf_get_u32_opt(b->g, ARCH ".vocab_size", (uint32_t)hp->n_vocab, &vs, b->err)) != LLAVA_OK)
        return rc;
    if (vs != (uint32_t)hp->n_vocab)
        return llv_fail(b->err, LLAVA_E_FORMAT, "key " ARCH ".vocab_size (%u) disagrees with tensor token_embd.weight (%d rows)",
                        vs, (int)hp->n_vocab);
    const int64_t E = hp->n_embd, V = hp->n_vocab;
    if ((rc = bind_matrix(b, "token_embd.weight", true, E, V, &lm->tok_embd, NULL)) != LLAVA_OK)
        return rc;
    if ((rc = bind_vector(b, "output_norm.weight", true, E, &lm->output_norm)) != LLAVA_OK)
        return rc;
    bool has_output;
    if ((rc = bind_matrix(b, "output.weight", false, E, V, &lm->output, &has_output)) != LLAVA_OK)
        return rc;
    if (!has_output)
        lm->output = lm->tok_embd; /* tied embeddings */
    if ((rc = bind_vector(b, "rope_freqs.weight", false, hp->n_rot / 2, &lm->rope_freqs)) != LLAVA_OK)
        return rc;
    if (lm->rope_freqs)
        for (int i = 0; i < hp->n_rot / 2; i++)
            if (!(lm->rope_freqs[i] > 0.0f))
                return llv_fail(b->err, LLAVA_E_FORMAT, "tensor rope_freqs.weight: factor %d is not positive", i);

    for (int32_t il = 0; il < hp->n_layer; il++) {
        if ((rc = bind_layer(b, il, &lm->layers[il])) != LLAVA_OK)
            return rc;
        if (llv_report_progress(cb, (float)(il + 1) / (float)hp->n_layer))
            return llv_fail(b->err, LLAVA_E_ABORTED, "loading aborted by the progress callback");
    }

    /* Like llama.cpp, refuse files with tensors we do not know: they are a
     * sign of a different architecture or a broken converter. */
    for (int64_t i = 0; i < llv_gguf_n_tensors(b->g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(b->g, i);
        if (!b->used[i] && !ignorable_tensor(t->name))
            return llv_fail(b->err, LLAVA_E_FORMAT, "unexpected tensor %s (block_count is %d)", t->name,
                            (int)hp->n_layer);
    }
    return LLAVA_OK;
}

/* ---- entry -------------------------------------------------------------- */

void llv_lm_free(llava_lm *lm)
{
    if (!lm)
        return;
    for (size_t i = 0; i < lm->n_owned; i++)
        llv_free(lm->owned[i]);
    llv_free(lm->owned);
    llv_free(lm->layers);
    llv_vocab_free(lm->vocab);
    llv_gguf_close(lm->gguf);
    llv_handle_kill(&lm->hdr);
    llv_free(lm);
}

int llv_lm_load(llv_gguf *g, const llv_callbacks *cb, llava_lm **out, llv_err *err)
{
    *out = NULL;
    llv_str arch;
    int rc = llv_gguf_get_str(g, "general.architecture", &arch, err);
    if (rc != LLAVA_OK)
        return rc;
    if (!(arch.len == strlen(ARCH) && memcmp(arch.ptr, ARCH, arch.len) == 0))
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "architecture \"%.*s\" is not supported (only \"" ARCH "\")",
                        (int)LLV_MIN(arch.len, 64), arch.ptr);
    if (llv_report_progress(cb, 0.0f))
        return llv_fail(err, LLAVA_E_ABORTED, "loading aborted by the progress callback");

    llava_lm *lm = llv_calloc(1, sizeof *lm);
    if (!lm)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory");
    llv_handle_init(&lm->hdr, LLV_MAGIC_LM);
    bool *used = NULL;

    if ((rc = read_hparams(g, &lm->hp, err)) != LLAVA_OK)
        goto fail;
    /* f32 copies: per layer at most 2 norms + 7 biases; output_norm and
     * rope_freqs globally. Leave room to spare. */
    size_t n_tensors = (size_t)llv_gguf_n_tensors(g);
    size_t max_owned = 8 + 12 * (size_t)lm->hp.n_layer;
    lm->layers = llv_calloc((size_t)lm->hp.n_layer, sizeof *lm->layers);
    lm->owned = llv_calloc(max_owned, sizeof *lm->owned);
    lm->cap_owned = lm->owned ? max_owned : 0;
    used = llv_calloc(n_tensors ? n_tensors : 1, sizeof *used);
    if (!lm->layers || !lm->owned || !used) {
        rc = llv_fail(err, LLAVA_E_NOMEM, "out of memory");
        goto fail;
    }
    binder b = { g, lm, used, err };
    if ((rc = bind_all(&b, cb)) != LLAVA_OK)
        goto fail;

    if ((rc = llv_vocab_load(g, &lm->vocab, err)) != LLAVA_OK) {
        llv_err_prefix(err, "tokenizer");
        goto fail;
    }
    if (llv_vocab_n_tokens(lm->vocab) != lm->hp.n_vocab) {
        rc = llv_fail(err, LLAVA_E_FORMAT, "the vocabulary has %d tokens but token_embd.weight has %d rows",
                      (int)llv_vocab_n_tokens(lm->vocab), (int)lm->hp.n_vocab);
        goto fail;
    }
    llv_free(used);
    lm->gguf = g; /* taken over only on success */
    *out = lm;
    return LLAVA_OK;

fail:
    llv_free(used);
    llv_lm_free(lm); /* lm->gguf is NULL: the caller still owns g */
    return rc;
}
