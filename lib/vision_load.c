/*
 * vision_load.c - read the CLIP tower of an mmproj GGUF (spec §3.1, §3.2).
 *
 * The file is hostile input: every hyperparameter is range-checked before
 * anything is allocated, every tensor shape is checked against them, and all
 * sizes derived from them are small by construction (see the caps in
 * vision.h).
 */
#include "vision.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- hyperparameters ---------------------------------------------------- */

static int get_dim(const llv_gguf *g, const char *key, int64_t lo, int64_t hi, int32_t *out, llv_err *err)
{
    uint32_t v;
    int rc = llv_gguf_get_u32(g, key, &v, err);
    if (rc != LLAVA_OK)
        return llv_err_prefix(err, "mmproj");
    if ((int64_t)v < lo || (int64_t)v > hi)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s = %u is out of range [%lld, %lld]", key, v,
                        (long long)lo, (long long)hi);
    *out = (int32_t)v;
    return LLAVA_OK;
}

/* image_mean / image_std: FLOAT32 arrays with at least 3 finite entries. */
static int get_rgb3(const llv_gguf *g, const char *key, float out[3], llv_err *err)
{
    const void *data;
    uint64_t count;
    int rc = llv_gguf_get_arr(g, key, LLV_GGUF_FLOAT32, &data, &count, err);
    if (rc != LLAVA_OK)
        return llv_err_prefix(err, "mmproj");
    if (count < 3)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s has %llu values, expected at least 3", key,
                        (unsigned long long)count);
    for (int c = 0; c < 3; c++) {
        memcpy(&out[c], (const char *)data + 4 * c, 4); /* packed, little-endian host (configure) */
        if (!isfinite(out[c]))
            return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s[%d] is not finite", key, c);
    }
    return LLAVA_OK;
}

static bool is_int_type(int t)
{
    return t == LLV_GGUF_UINT8 || t == LLV_GGUF_INT8 || t == LLV_GGUF_UINT16 || t == LLV_GGUF_INT16 ||
           t == LLV_GGUF_UINT32 || t == LLV_GGUF_INT32 || t == LLV_GGUF_UINT64 || t == LLV_GGUF_INT64;
}

/* clip.vision.feature_layer: hidden-state indices (0 = after pre-LN, k =
 * output of block k-1), each in 0..n_layer. */
static int read_feature_layers(const llv_gguf *g, llv_vision_hparams *hp, llv_err *err)
{
    const char *key = "clip.vision.feature_layer";
    int64_t idx = llv_gguf_find_key(g, key);
    hp->explicit_features = false;
    hp->n_feature = 1;
    hp->feature[0] = hp->n_layer;
    if (idx < 0)
        return LLAVA_OK;
    if (llv_gguf_kv_type(g, idx) != LLV_GGUF_ARRAY || !is_int_type(llv_gguf_arr_type(g, idx)))
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s must be an array of integers", key);
    uint64_t n = llv_gguf_arr_n(g, idx);
    if (n == 0)
        return LLAVA_OK; /* empty = absent, as RC */
    if (n > LLV_VISION_MAX_FEATURES)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s has %llu entries (at most %d supported)", key,
                        (unsigned long long)n, LLV_VISION_MAX_FEATURES);
    for (uint64_t i = 0; i < n; i++) {
        int64_t v = llv_gguf_arr_get_int(g, idx, i);
        if (v < 0 || v > hp->n_layer)
            return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s[%llu] = %lld is not a hidden-state index in 0..%d",
                            key, (unsigned long long)i, (long long)v, hp->n_layer);
        hp->feature[i] = (int32_t)v;
    }
    hp->n_feature = (int32_t)n;
    hp->explicit_features = true;
    return LLAVA_OK;
}

static int read_hparams(const llv_gguf *g, llv_vision_hparams *hp, llv_err *err)
{
    int rc;
    bool has_vision = false;
    memset(hp, 0, sizeof *hp);

    if ((rc = llv_gguf_get_bool_opt(g, "clip.has_vision_encoder", false, &has_vision, err)) != LLAVA_OK)
        return llv_err_prefix(err, "mmproj");
    if (!has_vision)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: clip.has_vision_encoder is absent or false: no vision tower");

    if ((rc = get_dim(g, "clip.vision.image_size", 1, LLV_VISION_MAX_IMAGE, &hp->image_size, err)) ||
        (rc = get_dim(g, "clip.vision.patch_size", 1, LLV_VISION_MAX_IMAGE, &hp->patch_size, err)) ||
        (rc = get_dim(g, "clip.vision.embedding_length", 1, LLV_VISION_MAX_EMBD, &hp->n_embd, err)) ||
        (rc = get_dim(g, "clip.vision.feed_forward_length", 1, LLV_VISION_MAX_FF, &hp->n_ff, err)) ||
        (rc = get_dim(g, "clip.vision.block_count", 1, LLV_VISION_MAX_LAYERS, &hp->n_layer, err)) ||
        (rc = get_dim(g, "clip.vision.attention.head_count", 1, LLV_VISION_MAX_EMBD, &hp->n_head, err)))
        return rc;

    if (hp->patch_size > hp->image_size || hp->image_size % hp->patch_size != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: image_size %d is not a multiple of patch_size %d",
                        hp->image_size, hp->patch_size);
    hp->grid = hp->image_size / hp->patch_size;
    if ((int64_t)hp->grid * hp->grid > LLV_VISION_MAX_PATCHES)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %d x %d patches is more than the supported %d",
                        hp->grid, hp->grid, LLV_VISION_MAX_PATCHES);
    hp->n_patches = hp->grid * hp->grid;

    if (hp->n_embd % hp->n_head != 0)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: head_count %d does not divide embedding_length %d",
                        hp->n_head, hp->n_embd);
    hp->head_dim = hp->n_embd / hp->n_head;
    if (hp->head_dim > LLV_VISION_MAX_HEAD_DIM)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: head size %d is larger than the supported %d",
                        hp->head_dim, LLV_VISION_MAX_HEAD_DIM);
    uint32_t kv_heads, head_dim;
    if ((rc = llv_gguf_get_u32_opt(g, "clip.vision.attention.head_count_kv", (uint32_t)hp->n_head, &kv_heads, err)) ||
        (rc = llv_gguf_get_u32_opt(g, "clip.vision.attention.head_dim", (uint32_t)hp->head_dim, &head_dim, err)))
        return llv_err_prefix(err, "mmproj");
    if (kv_heads != (uint32_t)hp->n_head || head_dim != (uint32_t)hp->head_dim)
        return llv_fail(err, LLAVA_E_UNSUPPORTED,
                        "mmproj: vision attention with %u kv heads of size %u (expected %d x %d) is not supported",
                        kv_heads, head_dim, hp->n_head, hp->head_dim);

    if ((rc = llv_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", &hp->eps, err)) != LLAVA_OK)
        return llv_err_prefix(err, "mmproj");
    if (!(hp->eps > 0.0f && hp->eps <= 1.0f))
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: layer_norm_epsilon %g is not in (0, 1]", (double)hp->eps);

    if ((rc = get_rgb3(g, "clip.vision.image_mean", hp->mean, err)) ||
        (rc = get_rgb3(g, "clip.vision.image_std", hp->std, err)))
        return rc;
    for (int c = 0; c < 3; c++) {
        /* The pad colour is int(mean*255), so the mean must be a pixel value. */
        if (!(hp->mean[c] >= 0.0f && hp->mean[c] <= 1.0f))
            return llv_fail(err, LLAVA_E_FORMAT, "mmproj: image_mean[%d] = %g is not in [0, 1]", c, (double)hp->mean[c]);
        if (!(hp->std[c] > 0.0f))
            return llv_fail(err, LLAVA_E_FORMAT, "mmproj: image_std[%d] = %g is not positive", c, (double)hp->std[c]);
    }

    bool use_gelu = false, use_silu = false;
    if ((rc = llv_gguf_get_bool_opt(g, "clip.use_gelu", false, &use_gelu, err)) ||
        (rc = llv_gguf_get_bool_opt(g, "clip.use_silu", false, &use_silu, err)))
        return llv_err_prefix(err, "mmproj");
    if (use_gelu && use_silu)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: clip.use_gelu and clip.use_silu are both set");
    hp->act = use_gelu ? LLV_ACT_GELU : use_silu ? LLV_ACT_SILU : LLV_ACT_QUICK_GELU;

    if ((rc = read_feature_layers(g, hp, err)) != LLAVA_OK)
        return rc;
    hp->n_run = 0;
    for (int i = 0; i < hp->n_feature; i++)
        hp->n_run = LLV_MAX(hp->n_run, hp->feature[i]);
    /* The output width D * n_feature must fit a projector. */
    if ((int64_t)hp->n_embd * hp->n_feature > LLV_PROJ_MAX_WIDTH)
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %d feature layers of width %d are too wide",
                        hp->n_feature, hp->n_embd);
    return LLAVA_OK;
}

/* ---- tensors ------------------------------------------------------------ */

static int load_norm(const llv_gguf *g, const char *prefix, bool required, int64_t n, float **w, float **b,
                     llv_err *err)
{
    char name[LLV_GGUF_MAX_NAME + 16];
    snprintf(name, sizeof name, "%s.weight", prefix);
    int rc = llv_vt_vector(g, name, required, n, w, err);
    if (rc != LLAVA_OK || !*w)
        return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return llv_vt_vector(g, name, false, n, b, err);
}

/* A linear layer "<prefix>.weight" [n_in, n_out] with optional bias. */
static int load_linear(const llv_gguf *g, const char *prefix, int64_t n_in, int64_t n_out, llv_weight *w,
                       float **b, llv_err *err)
{
    char name[LLV_GGUF_MAX_NAME + 16];
    snprintf(name, sizeof name, "%s.weight", prefix);
    int rc = llv_vt_matrix(g, name, true, n_in, n_out, w, NULL, err);
    if (rc != LLAVA_OK)
        return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return llv_vt_vector(g, name, false, n_out, b, err);
}

static int load_block(const llv_gguf *g, const llv_vision_hparams *hp, int il, llv_vision_block *blk, llv_err *err)
{
    const int64_t D = hp->n_embd, F = hp->n_ff;
    char p[48], name[LLV_GGUF_MAX_NAME + 16];
    int rc;

    snprintf(p, sizeof p, "v.blk.%d.attn_q.weight", il);
    snprintf(name, sizeof name, "v.blk.%d.attn_qkv.weight", il);
    if (llv_gguf_find_tensor(g, name) && !llv_gguf_find_tensor(g, p))
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: fused %s is not supported", name);
    snprintf(name, sizeof name, "v.blk.%d.ffn_gate.weight", il);
    if (llv_gguf_find_tensor(g, name))
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: gated vision FFN (%s) is not supported", name);

#define BLK(suffix) (snprintf(p, sizeof p, "v.blk.%d." suffix, il), p)
    if ((rc = load_norm(g, BLK("ln1"), true, D, &blk->ln1_w, &blk->ln1_b, err)) ||
        (rc = load_norm(g, BLK("ln2"), true, D, &blk->ln2_w, &blk->ln2_b, err)) ||
        (rc = load_linear(g, BLK("attn_q"), D, D, &blk->q, &blk->q_b, err)) ||
        (rc = load_linear(g, BLK("attn_k"), D, D, &blk->k, &blk->k_b, err)) ||
        (rc = load_linear(g, BLK("attn_v"), D, D, &blk->v, &blk->v_b, err)) ||
        (rc = load_linear(g, BLK("attn_out"), D, D, &blk->o, &blk->o_b, err)))
        return rc;

    /* FFN naming swap (spec §3.2): the legacy converter stores fc1 as
     * ffn_down. Decide by shape like RC: if ffn_down.ne[0] == D it is the
     * up-projection (fc1). Missing tensors fall through to the shape checks. */
    snprintf(name, sizeof name, "v.blk.%d.ffn_down.weight", il);
    const llv_gguf_tensor *down = llv_gguf_find_tensor(g, name);
    bool swapped = down && down->ne[0] == D;
    if ((rc = load_linear(g, swapped ? BLK("ffn_down") : BLK("ffn_up"), D, F, &blk->fc1, &blk->fc1_b, err)) ||
        (rc = load_linear(g, swapped ? BLK("ffn_up") : BLK("ffn_down"), F, D, &blk->fc2, &blk->fc2_b, err)))
        return rc;
#undef BLK
    return LLAVA_OK;
}

static int load_tensors(const llv_gguf *g, llava_vision *v, llv_err *err)
{
    const llv_vision_hparams *hp = &v->hp;
    const int64_t D = hp->n_embd, P = hp->patch_size;
    int rc;

    /* Patch conv: PyTorch [D,3,P,P] -> GGUF ne [P,P,3,D]: row o holds
     * (c, ky, kx) with kx fastest, i.e. already a [D][3*P*P] matrix. */
    const int64_t ne_patch[4] = { P, P, 3, D };
    const llv_gguf_tensor *t;
    if ((rc = llv_vt_find(g, "v.patch_embd.weight", true, 4, ne_patch, &t, err)) ||
        (rc = llv_vt_weight_of(t, 3 * P * P, D, &v->patch_w, err)) ||
        (rc = llv_vt_vector(g, "v.patch_embd.bias", false, D, &v->patch_b, err)) ||
        (rc = llv_vt_vector(g, "v.class_embd", false, D, &v->cls, err)))
        return rc;
    v->hp.has_cls = v->cls != NULL;
    v->hp.n_pos = hp->n_patches + (v->hp.has_cls ? 1 : 0);

    /* Position table [D, n_pos] -> owned f32 [n_pos][D]. */
    const int64_t ne_pos[2] = { D, hp->n_pos };
    if ((rc = llv_vt_find(g, "v.position_embd.weight", true, 2, ne_pos, &t, err)) != LLAVA_OK)
        return rc;
    const llv_type_info *ti = llv_type_get(t->type);
    size_t row_bytes, total;
    if (!ti || !ti->weights || !llv_row_bytes(t->type, D, &row_bytes))
        return llv_fail(err, LLAVA_E_UNSUPPORTED, "mmproj: tensor %s has unsupported type %s", t->name,
                        llv_type_name(t->type));
    if (llv_mul3_overflow((size_t)hp->n_pos, (size_t)D, sizeof(float), &total))
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: position table too large");
    if (!(v->pos = llv_malloc(total)))
        return llv_fail(err, LLAVA_E_NOMEM, "mmproj: out of memory for the position table");
    for (int64_t r = 0; r < hp->n_pos; r++) {
        float *dst = v->pos + r * D;
        const char *src = (const char *)t->data + (size_t)r * row_bytes;
        if (t->type == LLV_TYPE_F32)
            memcpy(dst, src, (size_t)D * sizeof(float));
        else
            llv_dequantize_row(t->type, src, dst, D);
        for (int64_t i = 0; i < D; i++)
            if (!isfinite(dst[i]))
                return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s holds a non-finite value", t->name);
    }

    if ((rc = load_norm(g, "v.pre_ln", false, D, &v->pre_ln_w, &v->pre_ln_b, err)) ||
        (rc = load_norm(g, "v.post_ln", false, D, &v->post_ln_w, &v->post_ln_b, err)))
        return rc;

    if (!(v->blocks = llv_calloc((size_t)hp->n_layer, sizeof *v->blocks)))
        return llv_fail(err, LLAVA_E_NOMEM, "mmproj: out of memory for %d blocks", hp->n_layer);
    for (int il = 0; il < hp->n_layer; il++)
        if ((rc = load_block(g, hp, il, &v->blocks[il], err)) != LLAVA_OK)
            return rc;
    /* More stored blocks than block_count would mean the key lies. */
    char name[48];
    snprintf(name, sizeof name, "v.blk.%d.ln1.weight", hp->n_layer);
    if (llv_gguf_find_tensor(g, name))
        return llv_fail(err, LLAVA_E_FORMAT, "mmproj: %s exists but clip.vision.block_count is %d", name,
                        hp->n_layer);
    return LLAVA_OK;
}

/* ---- object ------------------------------------------------------------- */

void llv_vision_destroy(llava_vision *v)
{
    if (!v)
        return;
    if (v->blocks) {
        for (int il = 0; il < v->hp.n_layer; il++) {
            llv_vision_block *b = &v->blocks[il];
            float *vecs[] = { b->ln1_w, b->ln1_b, b->ln2_w, b->ln2_b, b->q_b, b->k_b, b->v_b, b->o_b,
                              b->fc1_b, b->fc2_b };
            for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
                llv_free(vecs[i]);
        }
        llv_free(v->blocks);
    }
    llv_free(v->patch_b);
    llv_free(v->cls);
    llv_free(v->pos);
    llv_free(v->pre_ln_w);
    llv_free(v->pre_ln_b);
    llv_free(v->post_ln_w);
    llv_free(v->post_ln_b);
    llv_free(v->anyres.newline);
    llv_gguf_close(v->gguf);
    llv_handle_kill(&v->hdr);
    llv_free(v);
}

int llv_vision_from_gguf(llv_gguf *g, const llava_params *params, llava_vision **out, llv_err *err)
{
    *out = NULL;
    llv_vision_hparams hp;
    int rc = read_hparams(g, &hp, err);
    if (rc != LLAVA_OK)
        return rc;

    llava_vision *v = llv_calloc(1, sizeof *v);
    if (!v)
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for the vision encoder");
    llv_handle_init(&v->hdr, LLV_MAGIC_VISION);
    v->hp = hp;
    v->n_threads = llv_resolve_threads(llv_param_int(params, LLAVA_PARAM_N_THREADS));
    v->cb = llv_param_callbacks(params);
    if ((rc = load_tensors(g, v, err)) != LLAVA_OK || (rc = llv_anyres_load(g, v, err)) != LLAVA_OK) {
        llv_vision_destroy(v); /* v->gguf is still NULL: the caller keeps g */
        return rc;
    }
    v->gguf = g;
    static const char *act_names[] = { "quick-GELU", "GELU", "SiLU" };
    llv_log(&v->cb, 2, "vision: %dpx, patch %d (%d tokens), D=%d, %d heads, FFN %d, %d blocks (running %d), %s%s",
            hp.image_size, hp.patch_size, hp.n_patches, hp.n_embd, hp.n_head, hp.n_ff, hp.n_layer, v->hp.n_run,
            act_names[hp.act], v->hp.has_cls ? ", class token" : "");
    if (v->anyres.n_pinpoints > 0) {
        static const char *merge_names[] = { "flat", "spatial", "spatial_unpad" };
        llv_log(&v->cb, 2, "vision: LLaVA-1.6 any resolution, %d pinpoints, merge %s%s", v->anyres.n_pinpoints,
                merge_names[v->anyres.merge], v->anyres.newline ? ", image_newline" : "");
    }
    *out = v;
    return LLAVA_OK;
}

int32_t llv_vision_out_width(const llava_vision *v)
{
    return v->hp.n_embd * v->hp.n_feature;
}

void llv_vision_pad_colour(const llava_vision *v, uint8_t rgb[3])
{
    /* Python's int(x*255) on the float mean: truncation (mean is in [0,1]). */
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)(int)((double)v->hp.mean[c] * 255.0);
}
