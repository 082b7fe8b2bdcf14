/*
 * lm_forward.c - the llama decoder forward pass over a block of rows (spec
 * §6.3), the KV cache and the per-session scratch buffers.
 *
 * A block of n rows (a prefill chunk, an image slice or one decoded token)
 * goes through every layer at once, so each weight matrix is streamed from
 * memory once per block (llv_matmul with n_rows = n: a GEMM). Only the last
 * row's logits are computed.
 */
#include "lm.h"

#include <math.h>
#include <string.h>

/* ---- KV cache ------------------------------------------------------------ */

int llv_kv_init(llv_kv_cache *kv, const llv_lm_hparams *hp, int kv_type, int64_t n_ctx, llv_err *err)
{
    memset(kv, 0, sizeof *kv);
    if (kv_type != LLV_TYPE_F32 && kv_type != LLV_TYPE_F16)
        return llv_fail(err, LLAVA_E_INVALID_ARG, "KV cache type %d is not F32 or F16", kv_type);
    kv->kv_type = kv_type;
    kv->elt = kv_type == LLV_TYPE_F32 ? 4 : 2;
    kv->n_ctx = n_ctx;
    kv->kv_dim = llv_lm_kv_dim(hp);
    kv->n_layer = hp->n_layer;
    size_t n;
    if (n_ctx <= 0 || llv_mul3_overflow((size_t)hp->n_layer, (size_t)n_ctx, (size_t)kv->kv_dim, &n) ||
        llv_mul_overflow(n, kv->elt, &n))
        return llv_fail(err, LLAVA_E_NOMEM, "KV cache for %lld positions is too large", (long long)n_ctx);
    kv->k = llv_malloc_aligned(n);
    kv->v = llv_malloc_aligned(n);
    if (!kv->k || !kv->v) {
        llv_kv_free(kv);
        return llv_fail(err, LLAVA_E_NOMEM, "out of memory for a KV cache of %zu bytes x 2", n);
    }
    return LLAVA_OK;
}

void llv_kv_free(llv_kv_cache *kv)
{
    llv_free_aligned(kv->k);
    llv_free_aligned(kv->v);
    kv->k = kv->v = NULL;
}

/* ---- scratch ------------------------------------------------------------- */

int llv_lm_scratch_init(llv_lm_scratch *s, const llv_lm_hparams *hp, int64_t n_batch, llv_err *err)
{
    memset(s, 0, sizeof *s);
    s->n_batch = n_batch;
    const size_t E = (size_t)hp->n_embd, QD = (size_t)llv_lm_q_dim(hp), KVD = (size_t)llv_lm_kv_dim(hp),
                 F = (size_t)hp->n_ff, B = (size_t)n_batch;
    struct { float **p; size_t width; } bufs[] = {
        { &s->x, E }, { &s->xn, E }, { &s->q, QD }, { &s->k, KVD }, { &s->v, KVD },
        { &s->att, QD }, { &s->tmp, E }, { &s->gate, F }, { &s->up, F },
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        size_t n;
        if (llv_mul3_overflow(B, bufs[i].width, sizeof(float), &n) ||
            !(*bufs[i].p = llv_malloc_aligned(n))) {
            llv_lm_scratch_free(s);
            return llv_fail(err, LLAVA_E_NOMEM, "out of memory for scratch buffers of %lld rows", (long long)n_batch);
        }
    }
    return LLAVA_OK;
}

void llv_lm_scratch_free(llv_lm_scratch *s)
{
    float **all[] = { &s->x, &s->xn, &s->q, &s->k, &s->v, &s->att, &s->tmp, &s->gate, &s->up };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        llv_free_aligned(*all[i]);
        *all[i] = NULL;
    }
}

/* ---- pieces ------------------------------------------------------------- */

void llv_lm_embed_tokens(const llava_lm *lm, const int32_t *tokens, int64_t n, float *x)
{
    const llv_weight *w = &lm->tok_embd;
    for (int64_t i = 0; i < n; i++)
        llv_dequantize_row(w->type, (const char *)w->data + (size_t)tokens[i] * w->row_bytes,
                           x + i * w->n_in, w->n_in);
}

/* RoPE with Llama-3 frequency factors (rope_freqs.weight): theta_i is divided
 * by factor_i. The plain case goes to the kernel llv_rope_norm. Same
 * accumulation as the kernel: theta_{i+1} = theta_i * base^(-2/n_rot). */
static void rope_with_factors(float *x, int n_heads, int head_dim, int n_rot, int64_t pos, float base,
                              float scale, const float *factors)
{
    const float step = powf(base, -2.0f / (float)n_rot);
    for (int h = 0; h < n_heads; h++) {
        float *xh = x + (size_t)h * head_dim;
        float theta = (float)pos * scale;
        for (int i = 0; i < n_rot / 2; i++) {
            float t = theta / factors[i];
            float c = cosf(t), s = sinf(t);
            float a = xh[2 * i], b = xh[2 * i + 1];
            xh[2 * i] = a * c - b * s;
            xh[2 * i + 1] = a * s + b * c;
            theta *= step;
        }
    }
}

static void rope_rows(const llava_lm *lm, float *x, int64_t n, int64_t stride, int n_heads, int64_t pos0)
{
    const llv_lm_hparams *hp = &lm->hp;
    for (int64_t i = 0; i < n; i++) {
        if (lm->rope_freqs)
            rope_with_factors(x + i * stride, n_heads, hp->head_dim, hp->n_rot, pos0 + i, hp->rope_freq_base,
                              hp->rope_freq_scale, lm->rope_freqs);
        else
            llv_rope_norm(x + i * stride, n_heads, hp->head_dim, hp->n_rot, pos0 + i, hp->rope_freq_base,
                          hp->rope_freq_scale);
    }
}

/* Copy n rows of K (or V) into the cache at pos0, converting to its type. */
static void kv_store(const llv_kv_cache *kv, void *base, int32_t layer, int64_t pos0, const float *src, int64_t n)
{
    const int64_t d = kv->kv_dim;
    for (int64_t i = 0; i < n; i++) {
        void *row = llv_kv_row(kv, base, layer, pos0 + i);
        const float *s = src + i * d;
        if (kv->kv_type == LLV_TYPE_F32) {
            memcpy(row, s, (size_t)d * sizeof(float));
        } else {
            uint16_t *h = row;
            for (int64_t j = 0; j < d; j++)
                h[j] = llv_fp32_to_fp16(s[j]);
        }
    }
}

static void add_rows(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* ---- row-wise stages ------------------------------------------------------
 * Between the matrix products a layer does row-wise work (norms, RoPE, KV
 * stores, residual adds, SwiGLU). On the calling thread alone that was ~5%
 * of a Q4_0 prefill while the other threads waited; llv_parallel_rows runs
 * it in chunks of ROW_CHUNK rows. */

#define ROW_CHUNK 16

typedef struct {
    const llava_lm *lm;
    const llv_lm_layer *L;
    llv_kv_cache *kv;
    llv_lm_scratch *s;
    int32_t il;
    int64_t n, pos, r0; /* rows, position of row 0, first row kept after the last layer */
} layer_rows;

/* rows [i0, i1) of all n: attention norm */
static void stage_attn_norm(void *ctx, int64_t i0, int64_t i1)
{
    const layer_rows *j = ctx;
    const int64_t E = j->lm->hp.n_embd;
    for (int64_t i = i0; i < i1; i++)
        llv_rmsnorm(j->s->xn + i * E, j->s->x + i * E, j->L->attn_norm, E, j->lm->hp.rms_eps);
}

/* rows [i0, i1) of all n: RoPE on k (and on q for kept rows), then K and V into the cache */
static void stage_rope_store(void *ctx, int64_t i0, int64_t i1)
{
    const layer_rows *j = ctx;
    const llv_lm_hparams *hp = &j->lm->hp;
    const int64_t QD = llv_lm_q_dim(hp), KVD = j->kv->kv_dim, q0 = LLV_MAX(i0, j->r0);
    if (i1 > q0)
        rope_rows(j->lm, j->s->q + (q0 - j->r0) * QD, i1 - q0, QD, hp->n_head, j->pos + q0);
    rope_rows(j->lm, j->s->k + i0 * KVD, i1 - i0, KVD, hp->n_head_kv, j->pos + i0);
    kv_store(j->kv, j->kv->k, j->il, j->pos + i0, j->s->k + i0 * KVD, i1 - i0);
    kv_store(j->kv, j->kv->v, j->il, j->pos + i0, j->s->v + i0 * KVD, i1 - i0);
}

/* kept rows [i0, i1) (0 = row r0): x += attention output, then the FFN norm */
static void stage_attn_residual(void *ctx, int64_t i0, int64_t i1)
{
    const layer_rows *j = ctx;
    const int64_t E = j->lm->hp.n_embd;
    float *x = j->s->x + j->r0 * E, *xn = j->s->xn + j->r0 * E;
    add_rows(x + i0 * E, j->s->tmp + i0 * E, (i1 - i0) * E);
    for (int64_t i = i0; i < i1; i++)
        llv_rmsnorm(xn + i * E, x + i * E, j->L->ffn_norm, E, j->lm->hp.rms_eps);
}

/* kept rows [i0, i1): gate = silu(gate) * up */
static void stage_swiglu(void *ctx, int64_t i0, int64_t i1)
{
    const layer_rows *j = ctx;
    const int64_t F = j->lm->hp.n_ff;
    llv_swiglu(j->s->gate + i0 * F, j->s->gate + i0 * F, j->s->up + i0 * F, (i1 - i0) * F);
}

/* kept rows [i0, i1): x += FFN output */
static void stage_ffn_residual(void *ctx, int64_t i0, int64_t i1)
{
    const layer_rows *j = ctx;
    const int64_t E = j->lm->hp.n_embd;
    add_rows(j->s->x + (j->r0 + i0) * E, j->s->tmp + i0 * E, (i1 - i0) * E);
}

/* ---- the forward pass ----------------------------------------------------- */

int llv_lm_forward(const llava_lm *lm, llv_kv_cache *kv, llv_lm_scratch *s, int64_t n, int64_t pos,
                   float *logits, const llv_callbacks *cb, int n_threads, llv_err *err)
{
    const llv_lm_hparams *hp = &lm->hp;
    const int64_t E = hp->n_embd, QD = llv_lm_q_dim(hp), KVD = kv->kv_dim;
    const float scale = 1.0f / sqrtf((float)hp->head_dim);

    if (n < 1 || n > s->n_batch || pos < 0 || pos + n > kv->n_ctx)
        return llv_fail(err, LLAVA_E_INTERNAL, "forward: %lld rows at %lld do not fit", (long long)n, (long long)pos);

    for (int32_t il = 0; il < hp->n_layer; il++) {
        if (llv_should_abort(cb))
            return llv_fail(err, LLAVA_E_ABORTED, "aborted by the abort callback");
        const llv_lm_layer *L = &lm->layers[il];
        /* Every row's K/V is needed, but after the last layer only the last
         * row's output matters when logits are asked for: rows r0..n-1. */
        const int64_t r0 = (logits && il == hp->n_layer - 1) ? n - 1 : 0, m = n - r0;
        float *xn = s->xn + r0 * E;
        layer_rows rows = { lm, L, kv, s, il, n, pos, r0 };

        /* attention: xn = rmsnorm(x) * attn_norm; q [m][QD], k,v [n][KVD] */
        llv_parallel_rows(n, ROW_CHUNK, n_threads, stage_attn_norm, &rows);
        if (m == n) { /* one group: decode GEMVs share a parallel region */
            const llv_weight *ws[3] = { &L->wq, &L->wk, &L->wv };
            float *ys[3] = { s->q, s->k, s->v };
            const float *bs[3] = { L->bq, L->bk, L->bv };
            llv_matmul_group(ws, 3, s->xn, n, ys, bs, n_threads);
        } else {
            llv_matmul(&L->wq, xn, m, s->q, L->bq, n_threads);
            llv_matmul(&L->wk, s->xn, n, s->k, L->bk, n_threads);
            llv_matmul(&L->wv, s->xn, n, s->v, L->bv, n_threads);
        }
        llv_parallel_rows(n, ROW_CHUNK, n_threads, stage_rope_store, &rows);

        /* att [m][QD] = softmax(q K^T * scale, causal) V over positions 0..pos+n-1 */
        llv_attention(s->att, QD, s->q, QD, m,
                      llv_kv_row(kv, kv->k, il, 0), llv_kv_row(kv, kv->v, il, 0), kv->kv_type, KVD, pos + n,
                      hp->n_head, hp->n_head_kv, hp->head_dim, scale, true, pos + r0, n_threads);
        llv_matmul(&L->wo, s->att, m, s->tmp, L->bo, n_threads);

        /* x += attention; feed-forward: x += W_down(silu(W_gate xn) * (W_up xn)), xn = rmsnorm(x) */
        llv_parallel_rows(m, ROW_CHUNK, n_threads, stage_attn_residual, &rows);
        {
            const llv_weight *ws[2] = { &L->w_gate, &L->w_up };
            float *ys[2] = { s->gate, s->up };
            const float *bs[2] = { L->b_gate, L->b_up };
            llv_matmul_group(ws, 2, xn, m, ys, bs, n_threads);
        }
        llv_parallel_rows(m, ROW_CHUNK, n_threads, stage_swiglu, &rows);
        llv_matmul(&L->w_down, s->gate, m, s->tmp, L->b_down, n_threads);
        llv_parallel_rows(m, ROW_CHUNK, n_threads, stage_ffn_residual, &rows);
    }

    if (logits) {
        const float *last = s->x + (n - 1) * E;
        llv_rmsnorm(s->xn, last, lm->output_norm, E, hp->rms_eps);
        llv_matmul(&lm->output, s->xn, 1, logits, NULL, n_threads);
    }
    return LLAVA_OK;
}
