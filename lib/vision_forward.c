/*
 * vision_forward.c - the CLIP vision tower forward pass (spec §4, following
 * the reference HF CLIP / LLaVA semantics of the "Decisions" section):
 *
 *   patches = conv(P x P, stride P)(image)          [n_patches][D]  (im2col + GEMM)
 *   x       = [cls, patches] + position rows 0..     [n_pos][D]
 *   x       = LN_pre(x)                               hidden state 0
 *   for each block: x += Wo·attn(LN1(x)); x += W2·act(W1·LN2(x))
 *                                                      hidden state k = after block k-1
 *   out     = requested hidden states without the CLS row, side by side
 *
 * Every matrix product runs over all n_pos rows at once (GEMM) - of
 * several images when batched (LLaVA-1.6 tiles) -, attention
 * included (attention_gemm; llv_attention is the reference and the fallback
 * for very long sequences). OpenMP lives in the kernels; the attention heads
 * run in parallel through llv_parallel_for (with their softmaxes); the
 * row-wise norms and activations here are serial and cheap next to the GEMMs.
 */
#include "vision.h"

#include <math.h>
#include <string.h>

/* Attention as GEMMs needs an n_pos x n_pos score matrix per head; above
 * this many floats (n_pos > 4096) the streaming llv_attention is used. */
#define GEMM_ATTN_MAX_SCORES ((size_t)1 << 24)
#define GEMM_ATTN_SLOTS_BUDGET ((size_t)1 << 26) /* floats (256 MiB) for all slots together */

static int force_ref_attention; /* tests: always use llv_attention */

void llv_vision_force_reference_attention(int on)
{
    __atomic_store_n(&force_ref_attention, on ? 1 : 0, __ATOMIC_RELAXED);
}

/* Scratch of one forward pass over B images: one aligned block, laid out
 * so that buffers whose lives do not overlap share memory (the peak RSS of
 * an encode is mostly this block). Sizes in floats, every part starting on
 * a 16-float (64-byte) boundary; rows = B*n_pos, nd = rows*D:
 *
 *   x  [nd]                       the residual stream, alive throughout
 *   R  [region]                   reused by the phases of a block:
 *      LN1 + QKV:   q k v at R+0, R+nd, R+2nd; h (LN output) at the END of R
 *      attention:   GEMM path: head slots right after v (they may overlap h,
 *                   dead by then), the output written over q in place (each
 *                   head reads and writes only its own columns); streaming
 *                   path (llv_attention): att at R+3nd
 *      out proj:    att -> h
 *      MLP:         LN2 -> h; ff [rows*F] at R+0 (over q k v att); fc2 -> h
 *      patch embed: im2col at R+0, its product right after, and (optionally)
 *                   the caller's planar input after that (llv_vision_workspace_planar)
 *   region = max(5nd, 3nd + slots, ff + nd, im2col + product + planar),
 * h = R + region - nd. Both attention paths always fit, so the plan depends
 * only on (shapes, B, threads), not on the test switch. */
typedef struct fwd_plan {
    size_t nd, ff, cols, prod, planar; /* part sizes (rounded to 16 floats) */
    size_t region, total;              /* R and the whole block, floats */
    size_t slot_floats;                /* 0: sequence too long for GEMM attention */
    int n_slots;
} fwd_plan;

typedef struct fwd_bufs {
    float *x, *h, *q, *k, *v, *ff, *cols, *prod;
    float *heads;        /* GEMM attention slots; NULL: use llv_attention */
    float *att_ref;      /* llv_attention output */
    size_t slot_floats;
    int n_slots;
} fwd_bufs;

/* n rounded up to a multiple of 16 floats; false on overflow. */
static bool round16(size_t n, size_t *out)
{
    if (llv_add_overflow(n, 15, out))
        return false;
    *out = *out / 16 * 16;
    return true;
}

static int plan_forward(const llv_vision_hparams *hp, size_t n_images, int n_slots, fwd_plan *pl, llv_err *err)
{
    const size_t npos = (size_t)hp->n_pos, D = (size_t)hp->n_embd, hd = (size_t)hp->head_dim;
    const size_t patch_in = 3 * (size_t)hp->patch_size * (size_t)hp->patch_size;
    const size_t plane3 = 3 * (size_t)hp->image_size * (size_t)hp->image_size;
    size_t rows, prows, t, n_scores = 0, a, b, c;
    memset(pl, 0, sizeof *pl);
    if (llv_mul_overflow(npos, n_images, &rows) || llv_mul_overflow((size_t)hp->n_patches, n_images, &prows) ||
        llv_mul_overflow(rows, D, &t) || !round16(t, &pl->nd) ||
        llv_mul_overflow(rows, (size_t)hp->n_ff, &t) || !round16(t, &pl->ff) ||
        llv_mul_overflow(prows, patch_in, &t) || !round16(t, &pl->cols) ||
        llv_mul_overflow(prows, D, &t) || !round16(t, &pl->prod) ||
        llv_mul_overflow(plane3, n_images, &t) || !round16(t, &pl->planar))
        return llv_fail(err, LLAVA_E_NOMEM, "vision: activation buffers are too large");
    /* caps in vision.h keep the products below far from overflow once nd did not */
    if (llv_mul_overflow(pl->nd, 5, &a) || llv_add_overflow(pl->ff, pl->nd, &b) ||
        llv_add_overflow(pl->cols, pl->prod, &c) || llv_add_overflow(c, pl->planar, &c))
        return llv_fail(err, LLAVA_E_NOMEM, "vision: activation buffers are too large");
    pl->region = LLV_MAX(a, LLV_MAX(b, c));
    if (!llv_mul_overflow(npos, npos, &n_scores) && n_scores <= GEMM_ATTN_MAX_SCORES) {
        size_t n_heads = 4 * npos * hd; /* qh, kh, vt, oh; npos*hd <= nd, no overflow */
        size_t slot = (n_heads + n_scores + 15) / 16 * 16, slots;
        if (n_slots < 1)
            n_slots = 1;
        /* one slot per thread, but never more than GEMM_ATTN_SLOTS_BUDGET floats in all
         * (fewer heads then run at once): many threads on a long sequence must not
         * turn into a gigabyte of scratch or an E_NOMEM the one-slot path would avoid */
        if ((size_t)n_slots > GEMM_ATTN_SLOTS_BUDGET / slot)
            n_slots = (int)LLV_MAX(GEMM_ATTN_SLOTS_BUDGET / slot, (size_t)1);
        if (llv_mul_overflow(slot, (size_t)n_slots, &slots) || llv_mul_overflow(pl->nd, 3, &a) ||
            llv_add_overflow(a, slots, &a))
            return llv_fail(err, LLAVA_E_NOMEM, "vision: activation buffers are too large");
        pl->region = LLV_MAX(pl->region, a);
        pl->slot_floats = slot;
        pl->n_slots = n_slots;
    }
    if (llv_add_overflow(pl->nd, pl->region, &pl->total) || llv_mul_overflow(pl->total, sizeof(float), &t))
        return llv_fail(err, LLAVA_E_NOMEM, "vision: activation buffers are too large");
    return LLAVA_OK;
}

static void bufs_carve(const fwd_plan *pl, float *mem, fwd_bufs *b)
{
    float *r = mem + pl->nd;
    memset(b, 0, sizeof *b);
    b->x = mem;
    b->q = r;
    b->k = r + pl->nd;
    b->v = r + 2 * pl->nd;
    b->att_ref = r + 3 * pl->nd;
    b->h = r + pl->region - pl->nd;
    b->ff = r;
    b->cols = r;
    b->prod = r + pl->cols;
    if (pl->slot_floats && !__atomic_load_n(&force_ref_attention, __ATOMIC_RELAXED)) {
        b->heads = r + 3 * pl->nd;
        b->slot_floats = pl->slot_floats;
        b->n_slots = pl->n_slots;
    }
}

static int slots_for(const llv_vision_hparams *hp, int n_threads)
{
    return LLV_MIN(n_threads, hp->n_head);
}

int llv_vision_workspace_bytes(const llava_vision *v, int32_t n_images, int n_threads, size_t *bytes, llv_err *err)
{
    fwd_plan pl;
    if (n_images < 1)
        return llv_fail(err, LLAVA_E_INTERNAL, "vision: batch of %d images", n_images);
    int rc = plan_forward(&v->hp, (size_t)n_images, slots_for(&v->hp, n_threads), &pl, err);
    if (rc == LLAVA_OK)
        *bytes = pl.total * sizeof(float); /* checked by plan_forward */
    return rc;
}

bool llv_vision_features_in_workspace(const llava_vision *v, size_t *feat_offset, size_t *feat_end)
{
    const llv_vision_hparams *hp = &v->hp;
    /* one image, one requested state, the last: its rows after the CLS row
     * of x are the features; x starts the workspace (bufs_carve) */
    if (hp->n_feature != 1 || hp->feature[0] != hp->n_run)
        return false;
    size_t nd = ((size_t)hp->n_pos * (size_t)hp->n_embd + 15) / 16 * 16; /* as plan_forward; caps: no overflow */
    *feat_offset = (hp->has_cls ? (size_t)hp->n_embd : 0) * sizeof(float);
    *feat_end = nd * sizeof(float);
    return true;
}

float *llv_vision_workspace_planar(const llava_vision *v, int32_t n_images, int n_threads, void *ws)
{
    fwd_plan pl;
    llv_err err;
    if (n_images < 1 || plan_forward(&v->hp, (size_t)n_images, slots_for(&v->hp, n_threads), &pl, &err) != LLAVA_OK)
        return NULL;
    return (float *)ws + pl.nd + pl.cols + pl.prod;
}

/* Non-causal multi-head attention as two GEMMs per head through the tiled
 * llv_matmul (the streaming llv_attention, built for decoding, walks K and V
 * once per query row and is several times slower on 577 x 577):
 *   S  = (scale·Q_h) K_hᵀ      [n][n]   (K_h as an F32 weight: n outputs of hd inputs)
 *   P  = softmax(S) per row
 *   O_h = P V_h                [n][hd]  (V_hᵀ as an F32 weight: hd outputs of n inputs)
 * q, k, v: [n][D] with head h at columns h*hd; O_h replaces Q_h in q (a
 * head reads only its own columns, all of them before it writes). The heads run in
 * parallel, each on one thread with its own scratch slot: the gathers and
 * softmaxes are parallel too, and there is one parallel region per image
 * instead of two per head (the products are the same as on more threads:
 * llv_matmul's summation order does not depend on the thread count). */
typedef struct head_job {
    const llv_vision_hparams *hp;
    fwd_bufs *b;
    int64_t image;
} head_job;

static void attention_head(void *ctx, int64_t h, int slot)
{
    const head_job *job = ctx;
    const llv_vision_hparams *hp = job->hp;
    fwd_bufs *b = job->b;
    const int64_t n = hp->n_pos, D = hp->n_embd, hd = hp->head_dim;
    const int64_t base = job->image * n * D; /* first row of this image in q, k, v, att */
    const float scale = 1.0f / sqrtf((float)hd);
    float *qh = b->heads + (size_t)slot * b->slot_floats, *kh = qh + n * hd, *vt = kh + n * hd, *oh = vt + n * hd;
    float *sc = oh + n * hd;
    for (int64_t t = 0; t < n; t++) {
        const int64_t src = base + t * D + h * hd;
        for (int64_t d = 0; d < hd; d++) {
            qh[t * hd + d] = b->q[src + d] * scale;
            kh[t * hd + d] = b->k[src + d];
            vt[d * n + t] = b->v[src + d];
        }
    }
    llv_weight wk, wv;
    llv_weight_init(&wk, LLV_TYPE_F32, hd, n, kh); /* F32 rows of any length: cannot fail */
    llv_weight_init(&wv, LLV_TYPE_F32, n, hd, vt);
    llv_matmul(&wk, qh, n, sc, NULL, 1);
    for (int64_t t = 0; t < n; t++)
        llv_softmax(sc + t * n, n);
    llv_matmul(&wv, sc, n, oh, NULL, 1);
    for (int64_t t = 0; t < n; t++) /* over q: only this head's columns, gathered above */
        memcpy(b->q + base + t * D + h * hd, oh + t * hd, (size_t)hd * sizeof(float));
}

static void attention_gemm(const llv_vision_hparams *hp, fwd_bufs *b, int64_t image, int nt)
{
    head_job job = { hp, b, image };
    llv_parallel_for(hp->n_head, LLV_MIN(nt, b->n_slots), attention_head, &job);
}

/* im2col: row p = (py, px) holds the P x P x 3 patch in (c, ky, kx) order,
 * the order of the conv weight rows. planar is [3][S][S]. */
static void im2col(const float *planar, int32_t S, int32_t P, int32_t grid, float *cols)
{
    const size_t plane = (size_t)S * S;
    for (int32_t py = 0; py < grid; py++)
        for (int32_t px = 0; px < grid; px++) {
            float *row = cols + ((size_t)py * grid + px) * 3 * P * P;
            for (int c = 0; c < 3; c++)
                for (int32_t ky = 0; ky < P; ky++) {
                    const float *src = planar + c * plane + (size_t)(py * P + ky) * S + (size_t)px * P;
                    memcpy(row + ((size_t)c * P + ky) * P, src, (size_t)P * sizeof(float));
                }
        }
}

static void layernorm_rows(float *out, const float *x, const float *w, const float *b, int64_t rows,
                           int64_t n, float eps)
{
    for (int64_t r = 0; r < rows; r++)
        llv_layernorm(out + r * n, x + r * n, w, b, n, eps);
}

static void add_rows(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

static void activate(int act, float *x, int64_t n)
{
    switch (act) {
    case LLV_ACT_GELU: llv_gelu_erf(x, n); break;
    case LLV_ACT_SILU: llv_silu(x, n); break;
    default:           llv_quick_gelu(x, n); break;
    }
}

/* The row-wise steps of a block, run in chunks of ROW_CHUNK rows by
 * llv_parallel_rows (on the calling thread alone they left the other
 * threads waiting for ~2.5% of an encode). */
#define ROW_CHUNK 16

typedef struct {
    const llv_vision_hparams *hp;
    const llv_vision_block *blk;
    fwd_bufs *b;
} block_rows;

static void stage_ln1(void *ctx, int64_t r0, int64_t r1)
{
    const block_rows *j = ctx;
    const int64_t D = j->hp->n_embd;
    layernorm_rows(j->b->h + r0 * D, j->b->x + r0 * D, j->blk->ln1_w, j->blk->ln1_b, r1 - r0, D, j->hp->eps);
}

/* x += h (attention output), then h = LN2(x) */
static void stage_residual_ln2(void *ctx, int64_t r0, int64_t r1)
{
    const block_rows *j = ctx;
    const int64_t D = j->hp->n_embd;
    add_rows(j->b->x + r0 * D, j->b->h + r0 * D, (size_t)((r1 - r0) * D));
    layernorm_rows(j->b->h + r0 * D, j->b->x + r0 * D, j->blk->ln2_w, j->blk->ln2_b, r1 - r0, D, j->hp->eps);
}

static void stage_act(void *ctx, int64_t r0, int64_t r1)
{
    const block_rows *j = ctx;
    const int64_t F = j->hp->n_ff;
    activate(j->hp->act, j->b->ff + r0 * F, (r1 - r0) * F);
}

static void stage_residual(void *ctx, int64_t r0, int64_t r1)
{
    const block_rows *j = ctx;
    const int64_t D = j->hp->n_embd;
    add_rows(j->b->x + r0 * D, j->b->h + r0 * D, (size_t)((r1 - r0) * D));
}

/* Copy hidden state `state` (rows of x, CLS skipped) into every feature slot
 * that asks for it. */
static void take_features(const llv_vision_hparams *hp, int32_t state, const float *x, int64_t n_images,
                          float *features)
{
    const size_t D = (size_t)hp->n_embd, W = D * (size_t)hp->n_feature;
    for (int64_t i = 0; i < n_images; i++) {
        const float *first = x + ((size_t)i * (size_t)hp->n_pos + (hp->has_cls ? 1 : 0)) * D;
        float *dst = features + (size_t)i * (size_t)hp->n_patches * W;
        for (int j = 0; j < hp->n_feature; j++) {
            if (hp->feature[j] != state)
                continue;
            for (int32_t p = 0; p < hp->n_patches; p++) {
                float *d = dst + (size_t)p * W + (size_t)j * D;
                const float *src = first + (size_t)p * D;
                if (d != src) /* features read in place from x (llv_vision_features_in_workspace) */
                    memcpy(d, src, D * sizeof(float));
            }
        }
    }
}

static void run_block(const llv_vision_hparams *hp, const llv_vision_block *blk, int64_t n_images, fwd_bufs *b,
                      int nt)
{
    const int64_t n = hp->n_pos, rows = n * n_images, D = hp->n_embd;
    block_rows br = { hp, blk, b };

    /* attention: x += Wo · softmax(q kᵀ / sqrt(d)) v, all heads, no mask */
    llv_parallel_rows(rows, ROW_CHUNK, nt, stage_ln1, &br);
    llv_matmul(&blk->q, b->h, rows, b->q, blk->q_b, nt);
    llv_matmul(&blk->k, b->h, rows, b->k, blk->k_b, nt);
    llv_matmul(&blk->v, b->h, rows, b->v, blk->v_b, nt);
    float *att = b->heads ? b->q : b->att_ref;
    for (int64_t i = 0; i < n_images; i++) {
        const int64_t o = i * n * D; /* attention never crosses images */
        if (b->heads)
            attention_gemm(hp, b, i, nt);
        else
            llv_attention(att + o, D, b->q + o, D, n, b->k + o, b->v + o, LLV_TYPE_F32, D, n, hp->n_head,
                          hp->n_head, hp->head_dim, 1.0f / sqrtf((float)hp->head_dim), false, 0, nt);
    }
    llv_matmul(&blk->o, att, rows, b->h, blk->o_b, nt);

    /* MLP: x += W2 · act(W1 · LN2(x)), after x += the attention output */
    llv_parallel_rows(rows, ROW_CHUNK, nt, stage_residual_ln2, &br);
    llv_matmul(&blk->fc1, b->h, rows, b->ff, blk->fc1_b, nt);
    llv_parallel_rows(rows, ROW_CHUNK, nt, stage_act, &br);
    llv_matmul(&blk->fc2, b->ff, rows, b->h, blk->fc2_b, nt);
    llv_parallel_rows(rows, ROW_CHUNK, nt, stage_residual, &br);
}

size_t llv_vision_bytes_per_image(const llava_vision *v)
{
    const llv_vision_hparams *hp = &v->hp;
    size_t patch_in = 3 * (size_t)hp->patch_size * (size_t)hp->patch_size;
    size_t D = (size_t)hp->n_embd, npos = (size_t)hp->n_pos, np = (size_t)hp->n_patches;
    size_t plane3 = 3 * (size_t)hp->image_size * (size_t)hp->image_size;
    /* x plus the region of plan_forward without the attention slots (per
     * batch, not per image); caps in vision.h keep this far from overflow */
    size_t region = LLV_MAX(5 * npos * D, LLV_MAX(npos * ((size_t)hp->n_ff + D), np * (patch_in + D) + plane3));
    return (npos * D + region) * sizeof(float);
}

int llv_vision_forward(const llava_vision *v, const float *planar, float *features, int n_threads,
                       const llv_callbacks *cb, llv_err *err)
{
    return llv_vision_forward_batch(v, planar, 1, features, n_threads, cb, 0.0f, 1.0f, err);
}

int llv_vision_forward_batch(const llava_vision *v, const float *planar, int32_t n_images, float *features,
                             int n_threads, const llv_callbacks *cb, float prog0, float prog_span, llv_err *err)
{
    return llv_vision_forward_ws(v, planar, n_images, features, n_threads, cb, prog0, prog_span, NULL, err);
}

int llv_vision_forward_ws(const llava_vision *v, const float *planar, int32_t n_images, float *features,
                          int n_threads, const llv_callbacks *cb, float prog0, float prog_span, void *ws,
                          llv_err *err)
{
    const llv_vision_hparams *hp = &v->hp;
    const int64_t D = hp->n_embd, B = n_images, rows = (int64_t)hp->n_pos * B;
    const size_t nd = (size_t)hp->n_pos * (size_t)D;
    const size_t plane3 = 3 * (size_t)hp->image_size * (size_t)hp->image_size;
    if (n_images < 1)
        return llv_fail(err, LLAVA_E_INTERNAL, "vision: batch of %d images", n_images);
    fwd_plan pl;
    int rc = plan_forward(hp, (size_t)B, slots_for(hp, n_threads), &pl, err);
    if (rc != LLAVA_OK)
        return rc;
    float *mem = ws;
    if (!mem && !(mem = llv_malloc_aligned(pl.total * sizeof(float))))
        return llv_fail(err, LLAVA_E_NOMEM, "vision: out of memory for %zu bytes of activations",
                        pl.total * sizeof(float));
    fwd_bufs b;
    bufs_carve(&pl, mem, &b);
    if (llv_should_abort(cb)) {
        rc = llv_fail(err, LLAVA_E_ABORTED, "vision: aborted by the abort callback before the patch embedding");
        goto done;
    }

    /* 1. patch embedding of every image into rows has_cls.. of its block of
     * x (one GEMM over all images' patches, scattered after); 2. CLS row 0;
     * positions. planar may lie in the workspace (llv_vision_workspace_planar):
     * after cols and prod, read before anything else is written there. */
    const size_t patch_in = 3 * (size_t)hp->patch_size * (size_t)hp->patch_size;
    for (int64_t i = 0; i < B; i++)
        im2col(planar + (size_t)i * plane3, hp->image_size, hp->patch_size, hp->grid,
               b.cols + (size_t)i * (size_t)hp->n_patches * patch_in);
    llv_matmul(&v->patch_w, b.cols, B * hp->n_patches, b.prod, v->patch_b, n_threads);
    for (int64_t i = 0; i < B; i++) {
        float *xi = b.x + (size_t)i * nd;
        memcpy(xi + (hp->has_cls ? D : 0), b.prod + (size_t)i * (size_t)hp->n_patches * (size_t)D,
               (size_t)hp->n_patches * (size_t)D * sizeof(float));
        if (hp->has_cls)
            memcpy(xi, v->cls, (size_t)D * sizeof(float));
        add_rows(xi, v->pos, nd);
    }

    /* 3. pre-LN (optional in the file; CLIP has it). */
    if (v->pre_ln_w)
        layernorm_rows(b.x, b.x, v->pre_ln_w, v->pre_ln_b, rows, D, hp->eps);
    if (hp->n_run > 0)
        take_features(hp, 0, b.x, B, features);

    /* 4. blocks */
    for (int32_t il = 0; il < hp->n_run; il++) {
        if (llv_should_abort(cb)) {
            rc = llv_fail(err, LLAVA_E_ABORTED, "vision: aborted by the abort callback before block %d", il);
            goto done;
        }
        run_block(hp, &v->blocks[il], B, &b, n_threads);
        if (il + 1 < hp->n_run)
            take_features(hp, il + 1, b.x, B, features);
        if (llv_report_progress(cb, prog0 + prog_span * (float)(il + 1) / (float)(hp->n_run + 1))) {
            rc = llv_fail(err, LLAVA_E_ABORTED, "vision: aborted by the progress callback after block %d", il);
            goto done;
        }
    }

    /* 5. post-LN, if the file has one (absent in LLaVA mmproj files), on the
     * last computed hidden state only, as RC and the project's reference do;
     * earlier requested states are taken before it. */
    if (v->post_ln_w)
        layernorm_rows(b.x, b.x, v->post_ln_w, v->post_ln_b, rows, D, hp->eps);
    take_features(hp, hp->n_run, b.x, B, features);
    rc = LLAVA_OK;
done:
    if (mem != ws)
        llv_free_aligned(mem);
    return rc;
}
