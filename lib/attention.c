/*
 * attention.c - multi-head attention with an online (streaming) softmax.
 *
 * For one query row q (head_dim) and the keys it may see:
 *   out = sum_j softmax_j(scale * q.k_j) v_j
 * computed chunk by chunk over keys keeping the running max m, the running
 * sum l of exp(s - m) and the running weighted sum acc of V rows (rescaled
 * by exp(m_old - m_new) when the max grows). Extra memory: one head_dim
 * slice of acc plus a chunk of scores on the stack, independent of n_kv.
 * Work items are (query row, head) pairs spread over the threads.
 */
#include "kernels_impl.h"

#include <math.h>

#define KEY_CHUNK 64      /* scores computed per step */
#define ACC_SLICE 512     /* head dims accumulated per pass (larger heads take several) */

typedef struct attn_args {
    const llv_kernel_ops *ops;
    const void *k, *v;
    int kv_type;
    int64_t kv_stride;
    int head_dim;
    float scale;
} attn_args;

static inline float kdot(const attn_args *a, const float *q, int64_t j, int kvh)
{
    int64_t off = j * a->kv_stride + (int64_t)kvh * a->head_dim;
    if (a->kv_type == LLV_TYPE_F16)
        return a->ops->dot_f16((const uint16_t *)a->k + off, q, a->head_dim);
    return a->ops->dot_f32((const float *)a->k + off, q, a->head_dim);
}

static inline void vaxpy(const attn_args *a, float *acc, float p, int64_t j, int kvh, int d0, int dn)
{
    int64_t off = j * a->kv_stride + (int64_t)kvh * a->head_dim + d0;
    if (a->kv_type == LLV_TYPE_F16)
        a->ops->axpy_f16(acc, p, (const uint16_t *)a->v + off, dn);
    else
        a->ops->axpy_f32(acc, p, (const float *)a->v + off, dn);
}

/* One query row against keys [0, n_keys) of kv head kvh -> out[head_dim]. */
static void attend_row(const attn_args *a, const float *q, int kvh, int64_t n_keys, float *out)
{
    float acc[ACC_SLICE] __attribute__((aligned(32)));
    float s[KEY_CHUNK] __attribute__((aligned(32)));
    for (int d0 = 0; d0 < a->head_dim; d0 += ACC_SLICE) {
        int dn = LLV_MIN(ACC_SLICE, a->head_dim - d0);
        float m = -INFINITY, l = 0.0f;
        for (int i = 0; i < dn; i++)
            acc[i] = 0.0f;
        for (int64_t j0 = 0; j0 < n_keys; j0 += KEY_CHUNK) {
            int nc = (int)LLV_MIN(KEY_CHUNK, n_keys - j0);
            float cmax = -INFINITY;
            for (int jj = 0; jj < nc; jj++) {
                s[jj] = a->scale * kdot(a, q, j0 + jj, kvh);
                if (s[jj] > cmax) cmax = s[jj];
            }
            if (cmax > m) { /* rescale what was accumulated under the old max */
                float corr = expf(m - cmax); /* 0 on the first chunk */
                l *= corr;
                a->ops->scale_f32(acc, corr, dn);
                m = cmax;
            }
            for (int jj = 0; jj < nc; jj++)
                s[jj] -= m;
            a->ops->exp_f32(s, nc);
            for (int jj = 0; jj < nc; jj++) {
                l += s[jj];
                vaxpy(a, acc, s[jj], j0 + jj, kvh, d0, dn);
            }
        }
        float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int i = 0; i < dn; i++)
            out[d0 + i] = acc[i] * inv;
    }
}

void llv_attention(float *out, int64_t out_stride, const float *q, int64_t q_stride, int64_t n_q,
                   const void *k, const void *v, int kv_type, int64_t kv_stride, int64_t n_kv,
                   int n_head, int n_head_kv, int head_dim, float scale, bool causal, int64_t q_pos0,
                   int n_threads)
{
    attn_args a = { llv_ops(), k, v, kv_type, kv_stride, head_dim, scale };
    const int group = n_head_kv > 0 ? n_head / n_head_kv : 1;
    const int64_t n_items = n_q * n_head;
    if (n_threads < 1)
        n_threads = 1;
    LLV_OMP(parallel for schedule(dynamic, 4) num_threads(n_threads))
    for (int64_t it = 0; it < n_items; it++) {
        int64_t i = it / n_head;
        int h = (int)(it % n_head);
        int64_t n_keys = n_kv;
        if (causal)
            n_keys = LLV_MAX(0, LLV_MIN(n_kv, q_pos0 + i + 1));
        const float *qi = q + i * q_stride + (int64_t)h * head_dim;
        float *oi = out + i * out_stride + (int64_t)h * head_dim;
        attend_row(&a, qi, h / (group > 0 ? group : 1), n_keys, oi);
    }
}
