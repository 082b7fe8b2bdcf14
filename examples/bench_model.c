/*
 * bench_model.c - model shapes read from a GGUF header, and the work they
 * imply: FLOPs of an image encode and of an LM evaluation, weight bytes read
 * per decoded token, KV cache bytes.
 *
 * The shapes come from the tensor table (not from the library under test),
 * so the figures stay correct whatever the loader does. Only the header is
 * parsed; the file is mapped but its weights are not touched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "gguf.h"
#include "quant.h"

/* llama.cpp's general.file_type values (LLAMA_FTYPE_MOSTLY_*) for the types
 * llava-quantize writes. */
static const char *file_type_name(uint32_t ft)
{
    switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return NULL;
    }
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* u32 metadata "<arch>.<key>", or def if absent. */
static int64_t meta_u32(const llv_gguf *g, const char *arch, const char *key, int64_t def)
{
    char full[160];
    snprintf(full, sizeof full, "%s%s%s", arch, arch[0] ? "." : "", key);
    uint32_t v;
    if (llv_gguf_get_u32_opt(g, full, (uint32_t)def, &v, NULL) != 0)
        return def;
    return (int64_t)v;
}

/* The most common type among the 2-D tensors whose name starts with prefix,
 * by element count; used when general.file_type is missing. */
static int dominant_type(const llv_gguf *g, const char *prefix)
{
    double count[LLV_TYPE_COUNT] = { 0 };
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        if (t->n_dims == 2 && starts_with(t->name, prefix) && t->type >= 0 && t->type < LLV_TYPE_COUNT)
            count[t->type] += (double)t->n_elements;
    }
    int best = 0;
    for (int k = 1; k < LLV_TYPE_COUNT; k++)
        if (count[k] > count[best]) best = k;
    return best;
}

static int read_lm(const llv_gguf *g, const char *arch, bench_model *m, char *err, size_t err_size)
{
    m->kind = BENCH_LM;
    m->n_embd = meta_u32(g, arch, "embedding_length", 0);
    m->n_layer = meta_u32(g, arch, "block_count", 0);
    m->n_head = meta_u32(g, arch, "attention.head_count", 0);
    m->n_head_kv = meta_u32(g, arch, "attention.head_count_kv", m->n_head);
    m->n_ff = meta_u32(g, arch, "feed_forward_length", 0);
    const llv_gguf_tensor *emb = llv_gguf_find_tensor(g, "token_embd.weight");
    const llv_gguf_tensor *out = llv_gguf_find_tensor(g, "output.weight");
    if (!emb || emb->n_dims != 2 || m->n_embd <= 0 || m->n_layer <= 0 || m->n_head <= 0 || m->n_head_kv <= 0) {
        snprintf(err, err_size, "%s: not a llama LM (missing token_embd.weight or shape keys)", m->path);
        return -1;
    }
    m->n_vocab = emb->ne[1];
    m->out_params = (double)(out ? out->n_elements : emb->n_elements);
    uint64_t all = 0;
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        all += t->nbytes;
        if (t->n_dims == 2 && starts_with(t->name, "blk."))
            m->blk_params += (double)t->n_elements;
    }
    /* Decoding reads every tensor once per token, except the embedding
     * table: one row of it (unless it is also the output matrix). */
    uint64_t emb_row = emb->nbytes / (uint64_t)emb->ne[1];
    m->decode_weight_bytes = out ? all - emb->nbytes + emb_row : all + emb_row;
    return 0;
}

static int read_mmproj(const llv_gguf *g, bench_model *m, char *err, size_t err_size)
{
    m->kind = BENCH_MMPROJ;
    m->v_embd = meta_u32(g, "clip.vision", "embedding_length", 0);
    m->image_size = meta_u32(g, "clip.vision", "image_size", 0);
    m->patch_size = meta_u32(g, "clip.vision", "patch_size", 0);
    m->has_class_token = llv_gguf_find_tensor(g, "v.class_embd") != NULL;
    const llv_gguf_tensor *patch = llv_gguf_find_tensor(g, "v.patch_embd.weight");
    if (!patch || m->v_embd <= 0 || m->image_size <= 0 || m->patch_size <= 0) {
        snprintf(err, err_size, "%s: not an mmproj (missing v.patch_embd.weight or clip.vision keys)", m->path);
        return -1;
    }
    m->patch_params = (double)patch->n_elements;
    int64_t max_blk = -1;
    for (int64_t i = 0; i < llv_gguf_n_tensors(g); i++) {
        const llv_gguf_tensor *t = llv_gguf_tensor_at(g, i);
        if (starts_with(t->name, "v.blk.")) {
            long b = strtol(t->name + 6, NULL, 10);
            if (b > max_blk) max_blk = b;
            if (t->n_dims == 2)
                m->v_blk_params += (double)t->n_elements;
        } else if (starts_with(t->name, "mm.") && t->n_dims == 2) {
            m->proj_params += (double)t->n_elements;
        }
    }
    m->v_layer = max_blk + 1;
    return 0;
}

int bench_model_read(const char *path, bench_model *m, char *err, size_t err_size)
{
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    const char *slash = strrchr(path, '/');
    snprintf(m->name, sizeof m->name, "%s", slash ? slash + 1 : path);

    llv_gguf *g = NULL;
    llv_err e = { 0 };
    if (llv_gguf_open_file(path, 1, &g, &e) != 0) {
        snprintf(err, err_size, "%s: %s", path, e.msg);
        return -1;
    }
    m->file_bytes = llv_gguf_file_size(g);
    char arch[64] = "";
    llv_str s;
    if (llv_gguf_get_str_opt(g, "general.architecture", &s, NULL) == 0 && s.ptr && s.len < sizeof arch) {
        memcpy(arch, s.ptr, s.len);
        arch[s.len] = '\0';
    }
    int rc = !strcmp(arch, "clip") ? read_mmproj(g, m, err, err_size) : read_lm(g, arch, m, err, err_size);
    if (rc == 0) {
        uint32_t ft;
        const char *name = NULL;
        if (llv_gguf_get_u32_opt(g, "general.file_type", UINT32_MAX, &ft, NULL) == 0 && ft != UINT32_MAX)
            name = file_type_name(ft);
        if (!name)
            name = llv_type_name(dominant_type(g, m->kind == BENCH_LM ? "blk." : "v.blk."));
        snprintf(m->weight_type, sizeof m->weight_type, "%s", name);
    }
    llv_gguf_close(g);
    return rc;
}

int64_t bench_vision_n_patches(const bench_model *v)
{
    int64_t side = v->image_size / v->patch_size;
    return side * side;
}

double bench_encode_flops(const bench_model *v)
{
    double np = (double)bench_vision_n_patches(v);
    double T = np + (v->has_class_token ? 1.0 : 0.0); /* sequence length in the tower */
    double patch = 2.0 * np * v->patch_params;         /* the patch convolution as a matmul */
    double blocks = 2.0 * T * v->v_blk_params;         /* q, k, v, out, fc1, fc2 of all blocks */
    double attn = 4.0 * T * T * (double)v->v_embd * (double)v->v_layer; /* QK^T + AV */
    double proj = 2.0 * np * v->proj_params;           /* mm.0, mm.2 on the patch tokens */
    return patch + blocks + attn + proj;
}

double bench_lm_flops(const bench_model *lm, int64_t p0, int64_t n, int64_t n_logit_rows)
{
    /* sum over the n tokens of (p + 1) keys attended */
    double keys = (double)n * (double)p0 + (double)n * (double)(n + 1) / 2.0;
    return 2.0 * (double)n * lm->blk_params + 4.0 * (double)lm->n_embd * (double)lm->n_layer * keys +
           2.0 * (double)n_logit_rows * lm->out_params;
}

static double kv_row_values(const bench_model *lm)
{
    /* K and V, every layer, n_head_kv heads of n_embd / n_head */
    return 2.0 * (double)lm->n_layer * (double)(lm->n_embd / lm->n_head * lm->n_head_kv);
}

double bench_kv_bytes(const bench_model *lm, int64_t n_ctx, int elem_bytes)
{
    return kv_row_values(lm) * (double)n_ctx * elem_bytes;
}

double bench_kv_read_bytes(const bench_model *lm, int64_t p0, int64_t n, int elem_bytes)
{
    double keys = (double)n * (double)p0 + (double)n * (double)(n + 1) / 2.0;
    return kv_row_values(lm) * keys * elem_bytes;
}
